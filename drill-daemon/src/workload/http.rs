//! A minimal HTTP/1.1 client exchange over an already created TCP socket: used by
//! the load generator and by the verifier's synthetic client (which creates its
//! sockets inside a host's network namespace).
//!
//! `get` makes one request per connection, keep-alive (no `Connection: close`), so
//! the *client* closes first once it has the whole response, as short-lived clients
//! do. `send` runs one exchange on a connection the caller keeps (keep-alive reuse).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpSocket;

/// A connection a request can run on: plain TCP or TLS over it.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Connects to `addr` (TLS with `tls`, checking the certificate against `host`).
pub async fn connect(socket: TcpSocket, addr: SocketAddr, host: &str, tls: Option<&Arc<rustls::ClientConfig>>, nodelay: bool) -> Result<Box<dyn Io>, String> {
    let stream = socket.connect(addr).await.map_err(|e| describe_io(&e, "connect"))?;
    stream.set_nodelay(nodelay).map_err(|e| format!("TCP_NODELAY: {e}"))?;
    match tls {
        None => Ok(Box::new(stream)),
        Some(cfg) => {
            let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| format!("TLS: bad server name {host}: {e}"))?;
            let s = tokio_rustls::TlsConnector::from(cfg.clone()).connect(name, stream).await.map_err(|e| crate::tls::describe(&e))?;
            Ok(Box::new(s))
        }
    }
}

/// One request on a kept-alive connection: on `reused` when given, else on the one
/// `open` makes. Returns the connection (the caller keeps or drops it) and the
/// answer's status. The load generator and the verifier's keep-alive client both
/// run their requests through this, so a check behaves as the client it imitates.
pub async fn keepalive_request(
    reused: Option<Box<dyn Io>>,
    open: impl std::future::Future<Output = Result<Box<dyn Io>, String>>,
    host: &str,
    path: &str,
    body_bytes: usize,
) -> Result<(Box<dyn Io>, u16), String> {
    let mut c = match reused {
        Some(c) => c,
        None => open.await?,
    };
    let status = send(&mut *c, host, path, body_bytes).await?;
    Ok((c, status))
}

/// A status a client counts as success (2xx, 3xx); otherwise the error it reports.
pub fn status_ok(status: u16) -> Result<(), String> {
    if (200..400).contains(&status) { Ok(()) } else { Err(format!("HTTP status {status}")) }
}

/// Outcome of one request.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub ok: bool,
    pub latency: Duration,
    pub error: Option<String>,
}

/// Connects `socket` to `addr` (over TLS with `tls`), sends `GET path`, reads the
/// response, closes.
pub async fn get(socket: TcpSocket, addr: SocketAddr, host: &str, path: &str, timeout: Duration, tls: Option<&Arc<rustls::ClientConfig>>) -> Outcome {
    let start = Instant::now();
    let r = tokio::time::timeout(timeout, async {
        let stream = connect(socket, addr, host, tls, true).await?;
        exchange(stream, host, path).await
    })
    .await;
    let latency = start.elapsed();
    match r {
        Ok(Ok(())) => Outcome { ok: true, latency, error: None },
        Ok(Err(e)) => Outcome { ok: false, latency, error: Some(e) },
        Err(_) => Outcome { ok: false, latency, error: Some(format!("timed out after {} ms", timeout.as_millis())) },
    }
}

fn describe_io(e: &std::io::Error, what: &str) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => format!("{what}: connection refused"),
        std::io::ErrorKind::ConnectionReset => format!("{what}: connection reset by peer"),
        _ => format!("{what}: {e}"),
    }
}

async fn exchange(mut stream: Box<dyn Io>, host: &str, path: &str) -> Result<(), String> {
    let status = send(&mut stream, host, path, 0).await?;
    if (200..400).contains(&status) { Ok(()) } else { Err(format!("HTTP status {status}")) }
}

/// One request on `stream` (a GET, or a POST of `body_bytes` written after the head
/// in a second write); returns the response's status once the whole response is in.
pub async fn send<S: AsyncRead + AsyncWrite + Unpin + ?Sized>(stream: &mut S, host: &str, path: &str, body_bytes: usize) -> Result<u16, String> {
    if body_bytes == 0 {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: drill\r\nAccept: */*\r\n\r\n");
        stream.write_all(req.as_bytes()).await.map_err(|e| describe_io(&e, "send"))?;
    } else {
        let head = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: drill\r\nAccept: */*\r\nContent-Length: {body_bytes}\r\n\r\n");
        stream.write_all(head.as_bytes()).await.map_err(|e| describe_io(&e, "send"))?;
        stream.write_all(&vec![b'x'; body_bytes]).await.map_err(|e| describe_io(&e, "send"))?;
    }
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|e| describe_io(&e, "receive"))?;
        if n == 0 {
            return Err(if buf.is_empty() { "empty reply from server".into() } else { "connection closed mid-response".into() });
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(done) = complete_response(&buf)? {
            return Ok(done);
        }
        if buf.len() > 1 << 20 {
            return Err("response larger than 1 MiB".into());
        }
    }
}

/// Length of the message head (up to and including the blank line) and the value of
/// its Content-Length (0 when absent), once `buf` holds a whole head.
pub fn head_and_length(buf: &[u8]) -> Option<(usize, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let len = head.split("\r\n").filter_map(|l| l.split_once(':')).find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.trim().parse::<usize>().ok()).unwrap_or(0);
    Some((end + 4, len))
}

/// If `buf` holds a whole response (head + Content-Length body), its status code.
fn complete_response(buf: &[u8]) -> Result<Option<u16>, String> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| "response head is not UTF-8".to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let len = lines.filter_map(|l| l.split_once(':')).find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.trim().parse::<usize>().ok()).unwrap_or(0);
    Ok((buf.len() >= head_end + 4 + len).then_some(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_completeness() {
        assert_eq!(complete_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok"), Ok(None));
        assert_eq!(complete_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"), Ok(Some(200)));
        assert_eq!(complete_response(b"HTTP/1.1 503 Nope\r\n\r\n"), Ok(Some(503)));
        assert!(complete_response(b"garbage\r\n\r\n").is_err());
    }
}
