//! HTTP+JSON client of drilld over its Unix socket (hyper, one connection per call).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use drill_core::api::ErrorBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub struct Client {
    pub socket: PathBuf,
}

/// Why a call failed: the daemon is not there, or it answered with an error.
#[derive(Debug)]
pub enum CallError {
    NoDaemon(std::io::Error),
    /// The daemon's answer: its message, stable code, the object and what to do.
    Api(ErrorBody),
    Other(anyhow::Error),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::NoDaemon(e) => write!(f, "cannot reach drilld: {e}"),
            CallError::Api(b) => {
                f.write_str(&b.error)?;
                if let Some(a) = &b.about {
                    write!(f, "\n  about: {a}")?;
                }
                if let Some(h) = &b.hint {
                    write!(f, "\n  to do: {h}")?;
                }
                Ok(())
            }
            CallError::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for CallError {}

impl Client {
    pub fn new(socket: &Path) -> Client {
        Client { socket: socket.to_path_buf() }
    }

    pub async fn call<B: Serialize, T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<&B>) -> Result<T, CallError> {
        let stream = tokio::net::UnixStream::connect(&self.socket).await.map_err(CallError::NoDaemon)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| CallError::Other(e.into()))?;
        tokio::spawn(conn);
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| CallError::Other(e.into()))?,
            None => Vec::new(),
        };
        let req = Request::builder()
            .method(method)
            .uri(format!("http://drilld{path}"))
            .header("host", "drilld")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| CallError::Other(e.into()))?;
        let resp = sender.send_request(req).await.map_err(|e| CallError::Other(anyhow!(e).context("talking to drilld")))?;
        let status = resp.status();
        let body = resp.into_body().collect().await.map_err(|e| CallError::Other(e.into()))?.to_bytes();
        if !status.is_success() {
            return Err(api_error(status, &body));
        }
        serde_json::from_slice(&body).with_context(|| format!("decoding drilld's answer to {path}")).map_err(CallError::Other)
    }

    /// `GET path` asking to switch to `protocol` (`Connection: Upgrade`): the upgraded
    /// connection once drilld answers 101, else its error.
    pub async fn upgrade(&self, path: &str, protocol: &str) -> Result<hyper::upgrade::Upgraded, CallError> {
        let stream = tokio::net::UnixStream::connect(&self.socket).await.map_err(CallError::NoDaemon)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| CallError::Other(e.into()))?;
        tokio::spawn(conn.with_upgrades());
        let req = Request::builder()
            .method(Method::GET)
            .uri(format!("http://drilld{path}"))
            .header("host", "drilld")
            .header("connection", "upgrade")
            .header("upgrade", protocol)
            .body(Full::new(Bytes::new()))
            .map_err(|e| CallError::Other(e.into()))?;
        let resp = sender.send_request(req).await.map_err(|e| CallError::Other(anyhow!(e).context("talking to drilld")))?;
        let status = resp.status();
        if status == hyper::StatusCode::SWITCHING_PROTOCOLS {
            return hyper::upgrade::on(resp).await.map_err(|e| CallError::Other(anyhow!(e).context("switching the connection to drilld's relay")));
        }
        let body = resp.into_body().collect().await.map_err(|e| CallError::Other(e.into()))?.to_bytes();
        Err(if status.is_success() { CallError::Other(anyhow!("drilld answered HTTP {status} instead of switching to its relay")) } else { api_error(status, &body) })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CallError> {
        self.call::<(), T>(Method::GET, path, None).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, CallError> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, CallError> {
        self.call::<(), T>(Method::DELETE, path, None).await
    }
}

/// The daemon's error answer (an `ErrorBody`, or what it sent when it is not one).
fn api_error(status: hyper::StatusCode, body: &[u8]) -> CallError {
    CallError::Api(serde_json::from_slice::<ErrorBody>(body).unwrap_or_else(|_| ErrorBody {
        error: format!("drilld answered HTTP {status}: {}", String::from_utf8_lossy(body)),
        code: "internal".into(),
        about: None,
        hint: None,
    }))
}
