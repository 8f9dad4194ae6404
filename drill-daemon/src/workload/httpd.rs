//! `httpd`: a small HTTP/1.1 server whose connection handling is configurable, so
//! that scenarios can make it misbehave as real servers do. With
//! `close_on_eof = false` and no idle timer, a connection whose client has sent FIN
//! is never closed: the socket sits in CLOSE_WAIT holding a file descriptor until
//! the process hits its open-file limit and `accept` fails with EMFILE.

use std::time::Duration;

use anyhow::{Context, Result};
use drill_core::workload::HttpdConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::log;

pub async fn run(name: &str, c: HttpdConfig) -> Result<()> {
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, c.max_open_files, c.max_open_files).with_context(|| format!("setting the open-file limit to {}", c.max_open_files))?;
    let listener = listen(&c.listen, c.backlog).await?;
    let tls = if c.tls_cert.is_empty() {
        None
    } else {
        let cfg = crate::tls::server_config(&c.tls_cert, &c.tls_key).with_context(|| format!("tls_cert = {:?}, tls_key = {:?}", c.tls_cert, c.tls_key))?;
        log(name, &format!("serving HTTPS with {}", c.tls_cert));
        Some(tokio_rustls::TlsAcceptor::from(cfg))
    };
    let handshake_errors = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    log(
        name,
        &format!(
            "listening on {} (close_on_eof={}, idle_timeout_secs={}, max_open_files={}, backlog={}, cache_mb={}, workers={})",
            c.listen, c.close_on_eof, c.idle_timeout_secs, c.max_open_files, c.backlog, c.cache_mb, c.workers
        ),
    );
    if !c.spool_dir.is_empty() {
        let _ = std::fs::create_dir_all(&c.spool_dir);
    }
    if c.cache_mb > 0 {
        tokio::spawn(warm_cache(name.to_string(), c.cache_mb));
    }
    // The worker pool: a connection holds a permit while it is served; with none free
    // the loop does not call accept, so new connections wait in the kernel's queue.
    let pool = (c.workers > 0).then(|| std::sync::Arc::new(tokio::sync::Semaphore::new(c.workers as usize)));
    let mut last_err = std::time::Instant::now() - Duration::from_secs(10);
    let mut suppressed = 0u64;
    loop {
        let permit = match &pool {
            Some(p) => Some(p.clone().acquire_owned().await.context("the worker pool closed")?),
            None => None,
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                // As nginx's tcp_nodelay: responses and TLS handshakes are written in
                // pieces, which must not wait for the client's delayed ACKs.
                let _ = stream.set_nodelay(true);
                let c = c.clone();
                match tls.clone() {
                    None => {
                        tokio::spawn(async move {
                            serve(stream, c).await;
                            drop(permit);
                        });
                    }
                    Some(acc) => {
                        let (name, errors) = (name.to_string(), handshake_errors.clone());
                        tokio::spawn(async move {
                            let _permit = permit;
                            match acc.accept(stream).await {
                                Ok(s) => serve(s, c).await,
                                Err(e) => {
                                    // The first failures, then one line per hundred.
                                    let n = errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                    if n < 3 || n % 100 == 0 {
                                        log(&name, &format!("TLS handshake with {peer} failed: {e} ({} so far)", n + 1));
                                    }
                                }
                            }
                        });
                    }
                }
            }
            Err(e) => {
                // EMFILE and friends: log at most once a second, back off a little.
                if last_err.elapsed() >= Duration::from_secs(1) {
                    let extra = if suppressed > 0 { format!(" ({suppressed} more since last report)") } else { String::new() };
                    log(name, &format!("accept: {e}{extra}"));
                    last_err = std::time::Instant::now();
                    suppressed = 0;
                } else {
                    suppressed += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Fills the response cache (`cache_mb` MiB) in 4 MiB steps, every page written, and
/// keeps it: the process's resident set grows by the cache's size over about a second,
/// as a cache warmed from a backing store would.
async fn warm_cache(name: String, mb: u64) {
    const STEP: usize = 4 << 20;
    let total = (mb as usize) << 20;
    let mut cache: Vec<Vec<u8>> = Vec::new();
    let mut filled = 0usize;
    while filled < total {
        let n = STEP.min(total - filled);
        let mut chunk = vec![0u8; n];
        for (i, page) in chunk.chunks_mut(4096).enumerate() {
            page[0] = (i as u8) | 1;
        }
        cache.push(chunk);
        filled += n;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    log(&name, &format!("response cache warmed: {mb} MiB"));
    std::future::pending::<()>().await;
    drop(cache);
}

/// The response body: `GET /bytes/N` answers N bytes (at most 16 MiB, as httpbin
/// does; for transfers that must cross a path MTU); any other path the configured body.
fn body_for(head: &str, body: &str) -> Vec<u8> {
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    match path.strip_prefix("/bytes/").and_then(|n| n.parse::<usize>().ok()) {
        Some(n) => body.as_bytes().iter().copied().cycle().take(n.min(16 << 20)).collect(),
        None => body.as_bytes().to_vec(),
    }
}

/// Binds and listens with the given accept-queue length (what `listen(2)` is asked).
pub async fn listen(addr: &str, backlog: u32) -> Result<TcpListener> {
    let sa: std::net::SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(_) => tokio::net::lookup_host(addr).await.with_context(|| format!("resolving {addr}"))?.next().with_context(|| format!("resolving {addr}"))?,
    };
    let sock = if sa.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    sock.set_reuseaddr(true)?;
    sock.bind(sa).with_context(|| format!("listening on {addr}"))?;
    sock.listen(backlog).with_context(|| format!("listening on {addr}"))
}

/// Queues the request as a job file in `spool_dir` (nothing when empty): a new file
/// each time, so a full disk fails it at once. A job that cannot be written is removed;
/// the first failure and every 100th after it go to the service's log.
fn enqueue(spool_dir: &str, request_line: &str) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    static FAILED: AtomicU64 = AtomicU64::new(0);
    if spool_dir.is_empty() {
        return Ok(());
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let path = format!("{spool_dir}/{}{:03}-{}-{n}.job", now.as_secs(), now.subsec_millis(), std::process::id());
    let job = format!("{{\"received\": {}.{:03}, \"request\": {request_line:?}}}\n", now.as_secs(), now.subsec_millis());
    let r = std::fs::write(&path, job);
    if let Err(e) = &r {
        let _ = std::fs::remove_file(&path);
        let n = FAILED.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(100) {
            super::log("httpd", &format!("writing {path}: {e} ({} requests answered 500 so far)", n + 1));
        }
    }
    r
}

async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut stream: S, c: HttpdConfig) {
    let idle = (c.idle_timeout_secs > 0).then(|| Duration::from_secs(c.idle_timeout_secs));
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let read = match idle {
            Some(d) => match tokio::time::timeout(d, stream.read(&mut chunk)).await {
                Ok(r) => r,
                Err(_) => return, // idle: close
            },
            None => stream.read(&mut chunk).await,
        };
        let n = match read {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            // The client closed its side.
            if c.close_on_eof {
                return;
            }
            // The bug: keep the connection "for the next request" although none can
            // come; only the idle timer (if any) ever closes it.
            match idle {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending::<()>().await,
            }
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        // A whole request: its head, and its body when it announces one.
        while let Some((head_len, body_len)) = super::http::head_and_length(&buf).filter(|(h, b)| buf.len() >= h + b) {
            let head = String::from_utf8_lossy(&buf[..head_len]).to_string();
            buf.drain(..head_len + body_len);
            if c.response_delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(c.response_delay_ms)).await;
            }
            let close = head.lines().any(|l| l.to_ascii_lowercase().starts_with("connection:") && l.to_ascii_lowercase().contains("close"));
            let backlog = (c.spool_max > 0).then(|| std::fs::read_dir(&c.spool_dir).map(|d| d.count()).unwrap_or(0)).filter(|&n| n >= c.spool_max as usize);
            let (status, body) = match backlog {
                Some(n) => ("503 Service Unavailable", format!("the job queue {} is full ({n} jobs waiting for the runner)\n", c.spool_dir).into_bytes()),
                None => match enqueue(&c.spool_dir, head.lines().next().unwrap_or("")) {
                    Ok(()) => ("200 OK", body_for(&head, &c.body)),
                    Err(e) => ("500 Internal Server Error", format!("cannot queue the job in {}: {e}\n", c.spool_dir).into_bytes()),
                },
            };
            let mut resp =
                format!("HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n", body.len(), if close { "close" } else { "keep-alive" }).into_bytes();
            resp.extend_from_slice(&body);
            if stream.write_all(&resp).await.is_err() || close {
                return;
            }
        }
    }
}
