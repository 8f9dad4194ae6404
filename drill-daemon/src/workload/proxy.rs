//! `proxy`: an HTTP/1.1 reverse proxy in front of one upstream (see
//! `drill_core::workload::ProxyConfig`). Requests are relayed one at a time per client
//! connection; upstream connections are pooled (most recently used first) for
//! `upstream_keepalive_secs`. Errors are answered and logged as a load balancer does:
//! 502 when the upstream connection fails, 504 when the upstream is too slow.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use drill_core::workload::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{http, log};

type Pool = Arc<Mutex<Vec<(Instant, TcpStream)>>>;

pub async fn run(name: &str, c: ProxyConfig) -> Result<()> {
    let listener = super::httpd::listen(&c.listen, 1024).await?;
    log(name, &format!("listening on {}, upstream {} (timeout {} ms, keep-alive {} s)", c.listen, c.upstream, c.upstream_timeout_ms, c.upstream_keepalive_secs));
    let pool: Pool = Arc::new(Mutex::new(Vec::new()));
    let c = Arc::new(c);
    let name: Arc<str> = name.into();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                log(&name, &format!("accept: {e}"));
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (c, pool, name) = (c.clone(), pool.clone(), name.clone());
        tokio::spawn(async move { serve(stream, &c, &pool, &name).await });
    }
}

async fn serve(mut client: TcpStream, c: &ProxyConfig, pool: &Pool, name: &str) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let Some((h, b)) = http::head_and_length(&buf).filter(|(h, b)| buf.len() >= h + b) else {
            match client.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let request: Vec<u8> = buf.drain(..h + b).collect();
        let reply = match relay(&request, c, pool).await {
            Ok(r) => r,
            Err((status, why)) => {
                log(name, &format!("{why} while proxying to upstream {}; answered {status}", c.upstream));
                let reason = if status == 504 { "Gateway Timeout" } else { "Bad Gateway" };
                let body = format!("{status} {reason}\n");
                format!("HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n{body}", body.len()).into_bytes()
            }
        };
        if client.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// Sends one request upstream and returns the whole response, or the status to
/// answer and why.
async fn relay(request: &[u8], c: &ProxyConfig, pool: &Pool) -> Result<Vec<u8>, (u16, String)> {
    let keep = Duration::from_secs(c.upstream_keepalive_secs);
    let pooled = {
        let mut p = pool.lock().expect("pool");
        p.retain(|(idle_since, _)| idle_since.elapsed() < keep);
        p.pop().map(|(_, s)| s)
    };
    let reused = pooled.is_some();
    let mut up = match pooled {
        Some(s) => s,
        None => connect(&c.upstream).await.map_err(|e| (502, format!("connect() failed ({e:#})")))?,
    };
    let exchange = async {
        up.write_all(request).await.map_err(|e| format!("send failed ({e})"))?;
        let mut resp = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            if let Some((h, b)) = http::head_and_length(&resp).filter(|(h, b)| resp.len() >= h + b) {
                resp.truncate(h + b);
                return Ok(resp);
            }
            match up.read(&mut chunk).await {
                Ok(0) => return Err(if resp.is_empty() { "upstream prematurely closed connection".to_string() } else { "upstream closed connection mid-response".to_string() }),
                Ok(n) => resp.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("recv() failed ({e})")),
            }
        }
    };
    let r = tokio::time::timeout(Duration::from_millis(c.upstream_timeout_ms), exchange).await;
    let how = if reused { " on a reused connection" } else { "" };
    match r {
        Err(_) => Err((504, format!("upstream timed out ({} ms){how}", c.upstream_timeout_ms))),
        Ok(Err(e)) => Err((502, format!("{e}{how}"))),
        Ok(Ok(resp)) => {
            if c.upstream_keepalive_secs > 0 {
                pool.lock().expect("pool").push((Instant::now(), up));
            }
            Ok(resp)
        }
    }
}

async fn connect(target: &str) -> Result<TcpStream> {
    let addr = tokio::net::lookup_host(target).await.with_context(|| format!("resolving {target}"))?.next().with_context(|| format!("resolving {target}"))?;
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}
