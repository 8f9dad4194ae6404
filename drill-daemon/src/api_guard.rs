//! What keeps the API serving whatever its clients send (docs/security.md, "Hostile
//! input"): JSON bodies read under a size limit and refused as API errors, a panic in a
//! request caught and answered as one, and a cap on the connections each uid but root may
//! hold open, so that no member of the `drill` group can starve the others.

use std::any::Any;
use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tracing::{error, warn};

use crate::daemon::ApiError;
use crate::error::DrillError;
use crate::peer::Peer;

/// The largest request body the API reads (a scenario file is the largest thing sent).
pub const MAX_BODY: usize = 1 << 20;

/// Connections one uid other than root may hold open at once.
pub const CONNECTIONS_PER_UID: usize = 64;

/// A JSON body whose refusals (not JSON, not the endpoint's shape, too large) are API
/// errors with their stable code, like every other error of the API.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError(DrillError::BodyTooLarge { limit: MAX_BODY })),
            Err(r) => Err(ApiError(DrillError::BadRequest(format!("the request body is not what this endpoint takes: {} (docs/API.md shows each body)", r.body_text())))),
        }
    }
}

/// The answer to a request whose handler panicked (tower-http's CatchPanicLayer): logged,
/// answered as a 500 with code `internal`; the daemon and its drills go on.
pub fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let what = err.downcast_ref::<String>().cloned().or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_else(|| "a panic without a message".into());
    error!(panic = %what, "a request panicked; the daemon serves on");
    ApiError(DrillError::Panicked(what)).into_response()
}

/// Open connections per uid: (count, whether the cap was already logged).
type Open = Arc<Mutex<HashMap<u32, (usize, bool)>>>;

/// The API's listener: accepts, reads the peer's credentials once, and refuses a
/// connection past [`CONNECTIONS_PER_UID`] for its uid with a 503 in the API's error shape.
pub struct Admission {
    listener: UnixListener,
    open: Open,
    per_uid: usize,
}

impl Admission {
    pub fn new(listener: UnixListener) -> Admission {
        Admission { listener, open: Arc::default(), per_uid: CONNECTIONS_PER_UID }
    }

    /// Takes a slot for `peer`, or None when its uid holds all of its own.
    fn admit(&self, peer: &Peer) -> Option<Option<Slot>> {
        if peer.is_root() {
            return Some(None);
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (n, warned) = open.entry(peer.uid).or_insert((0, false));
        if *n >= self.per_uid {
            if !*warned {
                *warned = true;
                warn!(uid = peer.uid, cap = self.per_uid, "refusing connections: this uid holds the most it may keep open");
            }
            return None;
        }
        *n += 1;
        Some(Some(Slot { open: self.open.clone(), uid: peer.uid }))
    }
}

/// One connection's place in its uid's count, given back when the connection ends.
struct Slot {
    open: Open,
    uid: u32,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((n, warned)) = open.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            *warned = false;
            if *n == 0 {
                open.remove(&self.uid);
            }
        }
    }
}

/// An admitted connection and its peer.
pub struct Conn {
    pub stream: UnixStream,
    pub peer: Peer,
    _slot: Option<Slot>,
}

fn refusal() -> Vec<u8> {
    let e = ApiError(DrillError::Busy(format!("your uid holds {CONNECTIONS_PER_UID} connections to drilld open, the most one user may; close some (a stuck `drill watch`?) and try again")));
    let body = serde_json::to_string(&e.body()).unwrap_or_default();
    format!("HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).into_bytes()
}

impl axum::serve::Listener for Admission {
    type Io = Conn;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> (Conn, Self::Addr) {
        loop {
            let (stream, addr) = match self.listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors or memory: wait for some to free instead of spinning.
                    warn!("accepting an API connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
            };
            let peer = Peer::from_stream(&stream);
            match self.admit(&peer) {
                Some(slot) => return (Conn { stream, peer, _slot: slot }, addr),
                None => {
                    // Answered at once, then the request is read and dropped for a moment
                    // (closing on an unread request would reset the client's write before
                    // it reads the answer).
                    tokio::spawn(async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut stream = stream;
                        let _ = stream.write_all(&refusal()).await;
                        let mut buf = [0u8; 4096];
                        let drain = async { while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {} };
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drain).await;
                    });
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Admission>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Admission>) -> Self {
        stream.io().peer
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Raises this process's open-file limit to its hard limit: every connection and every
/// drill's namespaces and probes hold descriptors (the soft default, 1024, is a few
/// hundred clients).
pub fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
            && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                warn!("raising the open-file limit from {soft} to {hard}: {e}");
            }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_gets_its_cap_of_connections_and_root_is_not_counted() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let dir = std::env::temp_dir().join(format!("drill-admission-{}", std::process::id()));
            let _ = std::fs::remove_file(&dir);
            let a = Admission { listener: UnixListener::bind(&dir).unwrap(), open: Arc::default(), per_uid: 2 };
            let _ = std::fs::remove_file(&dir);
            let user = Peer { uid: 1000, pid: None };
            let (s1, s2) = (a.admit(&user).unwrap(), a.admit(&user).unwrap());
            assert!(a.admit(&user).is_none(), "a third connection of uid 1000 is refused");
            assert!(a.admit(&Peer { uid: 1001, pid: None }).is_some(), "another uid has its own count");
            for _ in 0..10 {
                assert!(matches!(a.admit(&Peer::ROOT), Some(None)), "root is never refused");
            }
            drop(s1);
            assert!(a.admit(&user).is_some(), "a closed connection gives its slot back");
            drop(s2);
        });
    }

    #[test]
    fn the_refusal_is_an_api_error_a_client_can_read() {
        let r = String::from_utf8(refusal()).unwrap();
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503") && head.contains(&format!("content-length: {}", body.len())), "{head}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["code"], "busy");
        assert!(v["error"].as_str().unwrap().contains("64 connections"), "{v}");
    }

    #[test]
    fn a_panic_answers_500_with_its_message() {
        let r = panic_response(Box::new("boom".to_string()));
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
