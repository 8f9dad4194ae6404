//! `loadgen`: keeps sending requests to its target at a fixed rate, one connection
//! per request, and logs a summary every five seconds (and the first failures).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use drill_core::workload::LoadgenConfig;
use tokio::net::TcpSocket;

use super::{http, log};

pub async fn run(name: &str, c: LoadgenConfig) -> Result<()> {
    let (host, _) = c.target.rsplit_once(':').ok_or_else(|| anyhow!("target `{}` is not HOST:PORT", c.target))?;
    let host = host.to_string();
    log(name, &format!("sending {} requests/s to http://{}{}", c.rate_per_sec, c.target, c.path));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let last_error = Arc::new(std::sync::Mutex::new(String::new()));
    let period = Duration::from_secs_f64(1.0 / f64::from(c.rate_per_sec.max(1)));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut report = tokio::time::interval(Duration::from_secs(5));
    report.tick().await;
    let timeout = Duration::from_millis(c.timeout_ms);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let (ok, failed, last_error) = (ok.clone(), failed.clone(), last_error.clone());
                let (target, host, path) = (c.target.clone(), host.clone(), c.path.clone());
                tokio::spawn(async move {
                    let out = match resolve(&target).await {
                        Ok(addr) => match if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() } {
                            Ok(s) => http::get(s, addr, &host, &path, timeout).await,
                            Err(e) => http::Outcome { ok: false, latency: Duration::ZERO, error: Some(format!("socket: {e}")) },
                        },
                        Err(e) => http::Outcome { ok: false, latency: Duration::ZERO, error: Some(format!("{e:#}")) },
                    };
                    if out.ok {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut l) = last_error.lock() {
                            *l = out.error.unwrap_or_default();
                        }
                    }
                });
            }
            _ = report.tick() => {
                let (o, f) = (ok.swap(0, Ordering::Relaxed), failed.swap(0, Ordering::Relaxed));
                let err = last_error.lock().map(|l| l.clone()).unwrap_or_default();
                let tail = if f > 0 { format!(", last error: {err}") } else { String::new() };
                log(name, &format!("last 5 s: {o} ok, {f} failed{tail}"));
            }
        }
    }
}

async fn resolve(target: &str) -> Result<std::net::SocketAddr> {
    tokio::net::lookup_host(target).await.with_context(|| format!("could not resolve {target}"))?.next().ok_or_else(|| anyhow!("could not resolve {target}"))
}
