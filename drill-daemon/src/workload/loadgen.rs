//! `loadgen`: keeps sending requests to its target at a fixed rate and logs a summary
//! every five seconds (count, failures with the last error, p50/p99 latency).
//! One connection per request by default; with `keepalive`, idle connections are
//! kept in a pool and reused (most recently used first). `nodelay = false` leaves
//! Nagle's algorithm on, and `body_bytes` makes each request a POST whose body
//! follows the head in a second write.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use drill_core::workload::LoadgenConfig;
use tokio::net::TcpSocket;

use super::{http, log};

#[derive(Default)]
struct Window {
    ok: u64,
    failed: u64,
    last_error: String,
    latencies_us: Vec<u64>,
}

pub async fn run(name: &str, c: LoadgenConfig) -> Result<()> {
    let (host, _) = c.target.rsplit_once(':').ok_or_else(|| anyhow!("target `{}` is not HOST:PORT", c.target))?;
    let host = host.to_string();
    let how = format!(
        "{}{}{}",
        if c.keepalive { "keep-alive" } else { "a connection per request" },
        if c.nodelay { "" } else { ", Nagle on" },
        if c.body_bytes > 0 { format!(", POST {} bytes", c.body_bytes) } else { String::new() }
    );
    let burst = c.burst.max(1);
    let how = if burst > 1 { format!("{how}, in bursts of {burst}") } else { how };
    log(name, &format!("sending {} requests/s to {}://{}{} ({how})", c.rate_per_sec, if c.tls { "https" } else { "http" }, c.target, c.path));
    let window = Arc::new(Mutex::new(Window::default()));
    let pool: Arc<Mutex<Vec<Box<dyn http::Io>>>> = Arc::new(Mutex::new(Vec::new()));
    let tls = if c.tls {
        let ca = std::fs::read_to_string(crate::tls::CA_PATH).with_context(|| format!("tls = true: reading the drill's CA {}", crate::tls::CA_PATH))?;
        Some(crate::tls::client_config(&ca)?)
    } else {
        None
    };
    let period = Duration::from_secs_f64(f64::from(burst) / f64::from(c.rate_per_sec.max(1)));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut report = tokio::time::interval(Duration::from_secs(5));
    report.tick().await;
    let c = Arc::new(c);
    loop {
        tokio::select! {
            _ = tick.tick() => { for _ in 0..burst {
                let (window, pool, c, host, tls) = (window.clone(), pool.clone(), c.clone(), host.clone(), tls.clone());
                tokio::spawn(async move {
                    let start = Instant::now();
                    let r = tokio::time::timeout(Duration::from_millis(c.timeout_ms), one(&c, &host, &pool, tls.as_ref())).await;
                    let r = r.unwrap_or_else(|_| Err(format!("timed out after {} ms", c.timeout_ms)));
                    let mut w = window.lock().expect("window");
                    match r {
                        Ok(()) => {
                            w.ok += 1;
                            w.latencies_us.push(start.elapsed().as_micros() as u64);
                        }
                        Err(e) => {
                            w.failed += 1;
                            w.last_error = e;
                        }
                    }
                });
            } }
            _ = report.tick() => {
                let w = std::mem::take(&mut *window.lock().expect("window"));
                let tail = if w.failed > 0 { format!(", last error: {}", w.last_error) } else { String::new() };
                let mut l = w.latencies_us;
                l.sort_unstable();
                let pct = |p: f64| l.get(((l.len() as f64 - 1.0) * p).round() as usize).map_or_else(|| "-".to_string(), |us| format!("{:.1} ms", *us as f64 / 1000.0));
                log(name, &format!("last 5 s: {} ok, {} failed, latency p50 {} p99 {}{tail}", w.ok, w.failed, pct(0.5), pct(0.99)));
            }
        }
    }
}

/// One request: on a pooled connection when keep-alive is on and one is idle, else
/// on a new one. A pooled connection the server closed meanwhile fails the request
/// (as it would for a real client without retries).
async fn one(c: &LoadgenConfig, host: &str, pool: &Mutex<Vec<Box<dyn http::Io>>>, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<(), String> {
    let reused = if c.keepalive { pool.lock().expect("pool").pop() } else { None };
    let open = async {
        let addr = resolve(&c.target).await.map_err(|e| format!("{e:#}"))?;
        let sock = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(|e| format!("socket: {e}"))?;
        http::connect(sock, addr, host, tls, c.nodelay).await
    };
    let (stream, status) = http::keepalive_request(reused, open, host, &c.path, c.body_bytes as usize).await?;
    if c.keepalive {
        pool.lock().expect("pool").push(stream);
    }
    http::status_ok(status)
}

async fn resolve(target: &str) -> Result<std::net::SocketAddr> {
    tokio::net::lookup_host(target).await.with_context(|| format!("could not resolve {target}"))?.next().ok_or_else(|| anyhow!("could not resolve {target}"))
}
