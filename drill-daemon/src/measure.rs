//! After-apply measurement of fault steps ([`drill_core::plan::Measure`]), from
//! outside the faulty host. Each measurement has a control taken before the fault is
//! applied (the path works, its round trip, what a connection does without the
//! fault) and a reading after; a measurement that sees nothing (no reply at all, no
//! reading) fails, and so does one whose control already shows the expected effect
//! (the fault would not be what made the difference).
//!
//! Measurements are bursts, not paced probes: a loss figure is 500 echo requests sent
//! 50 us apart and counted back (about 25 ms plus a round trip), a TCP drop is proved
//! by the kernel's own drop counter for the host (the probe's `kfree_skb` with reason
//! NETFILTER_DROP or TC_INGRESS) as soon as the SYN is dropped, not by waiting for a
//! connect timeout.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use drill_core::plan::{ConnectOutcome, Measure};

use crate::faults::{self, Connect};
use crate::icmp::{self, Burst, EchoStats};
use crate::netns::NetnsWorker;
use crate::probes::Probes;

/// A host as measurements see it.
pub struct Host<'a> {
    pub name: &'a str,
    pub worker: &'a NetnsWorker,
    pub netns_ino: u32,
}

/// Why a measurement failed: the fault did not take as asked, or nothing could be
/// measured (both stop the start).
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("did not take as asked: {0}")]
    DidNotTake(String),
    #[error("could not be measured: {0}")]
    NotMeasured(String),
}

/// What the control measurement (before apply) saw.
#[derive(Clone, Debug, Default)]
pub struct Control {
    /// Round trip of the measured path before the fault, when it answers echoes.
    pub rtt: Option<Duration>,
    /// How the measured TCP connection ended before the fault.
    pub connect: Option<String>,
    /// For a path MTU black hole: frag-needed messages seen before the rule.
    pub frag_needed: u16,
}

/// Echo requests of a control burst.
const CONTROL_ECHOES: u32 = 5;
/// The slowest round trip a control may see before the path counts as broken.
const CONTROL_LINGER: Duration = Duration::from_secs(2);

fn v4(a: IpAddr) -> Result<Ipv4Addr, MeasureError> {
    match a {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(a) => Err(MeasureError::NotMeasured(format!("{a} is IPv6; measurements probe IPv4"))),
    }
}

async fn burst(from: &Host<'_>, to: IpAddr, b: Burst) -> Result<EchoStats, MeasureError> {
    let to4 = v4(to)?;
    let name = from.name.to_string();
    from.worker
        .run(move || icmp::burst(to4, b))
        .await
        .map_err(|e| MeasureError::NotMeasured(format!("{e:#}")))?
        .map_err(|e| MeasureError::NotMeasured(format!("echo requests from {name} to {to}: {e}")))
}

/// A few echoes: the path's round trip, or `None` when it does not answer.
async fn rtt(from: &Host<'_>, to: IpAddr) -> Result<Option<Duration>, MeasureError> {
    let s = burst(from, to, Burst { count: CONTROL_ECHOES, spacing: Duration::from_micros(200), linger: CONTROL_LINGER, payload: 56, dont_fragment: false }).await?;
    Ok(s.median_rtt_ms().map(|ms| Duration::from_secs_f64(ms / 1e3)))
}

fn need_rtt(c: &Control, from: &str, to: IpAddr) -> Result<Duration, MeasureError> {
    c.rtt.ok_or_else(|| MeasureError::NotMeasured(format!("before the fault, {from} got no echo reply from {to} (the path does not work; nothing to measure against)")))
}

/// Drops the kernel counted for a host (every reason), from the probe; `None` without
/// the probe.
fn drops(probes: &Probes, ino: u32) -> Option<u64> {
    let ev = probes.events().ok()?;
    Some(ev.snapshot(ino).ok()?.iter().filter(|(k, _)| k.kind == drill_ebpf::kinds::DROP).map(|(_, v)| v).sum())
}

fn find<'a, 'b>(hosts: &'a [Host<'b>], name: &str) -> Result<&'a Host<'b>, MeasureError> {
    hosts.iter().find(|h| h.name == name).ok_or_else(|| MeasureError::NotMeasured(format!("no host {name}")))
}

/// The control, taken before the fault of `m` is applied.
pub async fn control(m: &Measure, hosts: &[Host<'_>]) -> Result<Control, MeasureError> {
    let get = |n: &str| find(hosts, n);
    let mut c = Control::default();
    match m {
        Measure::ReadBack { .. } | Measure::ConnLimit { .. } | Measure::Transfer { .. } | Measure::Dnat { .. } => {}
        Measure::EchoLoss { from, to, .. } | Measure::EchoPolicer { from, to, .. } | Measure::EchoDelay { from, to, .. } => c.rtt = rtt(get(from)?, *to).await?,
        Measure::Connect { from, to, .. } => {
            let f = get(from)?;
            c.rtt = rtt(&f, to.ip()).await?;
            let timeout = connect_timeout(c.rtt);
            let (got, _) = faults::try_connect(f.worker, *to, timeout).await.map_err(|e| MeasureError::NotMeasured(format!("{e:#}")))?;
            c.connect = Some(got.to_string());
        }
        Measure::PmtuBlackhole { from, to, payload } => {
            let f = get(from)?;
            c.rtt = rtt(&f, *to).await?;
            let s = burst(&f, *to, Burst { count: 3, spacing: Duration::from_millis(5), linger: icmp::linger_for(need_rtt(&c, from, *to)?), payload: *payload, dont_fragment: true }).await?;
            c.frag_needed = s.unreachable.iter().filter(|(code, _)| *code == 4).map(|(_, n)| *n).sum();
            if c.frag_needed == 0 {
                return Err(MeasureError::NotMeasured(format!(
                    "before the rule, a {payload}-byte don't-fragment echo from {from} to {to} got no \"fragmentation needed\" back (got {} replies): the path has no narrow link for the rule to matter",
                    s.received
                )));
            }
        }
    }
    Ok(c)
}

/// How long a measuring connection waits: long enough for four round trips of the
/// path before the fault plus scheduling slack, so a timeout means no answer came.
fn connect_timeout(rtt: Option<Duration>) -> Duration {
    Duration::from_millis(drill_core::plan::CONNECT_TIMEOUT_MS) + rtt.unwrap_or_default() * 4
}

/// Measures `m` after its fault was applied on `faulty` (the host the fault is on).
/// Returns what was seen, for the reveal.
pub async fn measure(m: &Measure, c: &Control, faulty: &str, probes: &Probes, hosts: &[Host<'_>]) -> Result<String, MeasureError> {
    let get = |n: &str| find(hosts, n);
    let faulty = find(hosts, faulty)?;
    let took = |s: String| Err(MeasureError::DidNotTake(s));
    match m {
        Measure::ReadBack { what } => Ok(format!("read back ({what})")),
        Measure::EchoLoss { from, to, count, spacing_us, loss } => {
            let base = need_rtt(c, from, *to)?;
            let s = burst(get(from)?, *to, Burst::new(*count, Duration::from_micros(*spacing_us), icmp::linger_for(base))).await?;
            if !faults::loss_within(*loss, s.loss(), s.sent) {
                return took(format!("{:.1}% of {} echoes from {from} to {to} were lost, not about {:.1}%", s.loss() * 100.0, s.sent, loss * 100.0));
            }
            Ok(format!("{:.1}% of {} echoes from {from} to {to} lost in {} ms", s.loss() * 100.0, s.sent, s.elapsed.as_millis()))
        }
        Measure::EchoPolicer { from, to, count, spacing_us, per_second, burst: b } => {
            let base = need_rtt(c, from, *to)?;
            let s = burst(get(from)?, *to, Burst::new(*count, Duration::from_micros(*spacing_us), icmp::linger_for(base))).await?;
            let sending = (Duration::from_micros(*spacing_us) * count.saturating_sub(1)).as_secs_f64();
            let expected = f64::from(*per_second) * sending + f64::from(*b);
            let passed = f64::from(s.received);
            if passed > expected * 1.5 + 5.0 || passed < expected * 0.5 {
                return took(format!("{passed:.0} of {count} echoes sent over {:.0} ms passed, expected about {expected:.0}", sending * 1e3));
            }
            Ok(format!("{passed:.0} of {count} echoes from {from} sent over {:.0} ms passed (expected about {expected:.0})", sending * 1e3))
        }
        Measure::EchoDelay { from, to, count, added_ms, jitter_ms, loss } => {
            let base = need_rtt(c, from, *to)?;
            let linger = icmp::linger_for(base) + Duration::from_secs_f64((2.0 * added_ms + 2.0 * jitter_ms) / 1e3);
            let f = get(from)?;
            let s = burst(&f, *to, Burst::new(*count, Duration::from_millis(1), linger)).await?;
            let Some(after) = s.mean_rtt_ms() else {
                return took(format!("every echo from {from} to {to} was lost"));
            };
            let added = after - base.as_secs_f64() * 1e3;
            if !faults::delay_within(*added_ms, added, *jitter_ms) {
                return took(format!("the round trip from {from} to {to} went from {:.2} to {after:.2} ms (+{added:.2} ms), asked +{added_ms} ms", base.as_secs_f64() * 1e3));
            }
            let mut note = format!("measured +{added:.2} ms round trip from {from} to {to} (from {:.2} ms)", base.as_secs_f64() * 1e3);
            if *loss > 0.0 {
                let s = burst(&f, *to, Burst::new(drill_core::plan::LOSS_ECHOES, Duration::from_micros(50), linger)).await?;
                if !faults::loss_within(*loss, s.loss(), s.sent) {
                    return took(format!("{:.1}% of {} echoes were lost, not about {:.1}%", s.loss() * 100.0, s.sent, loss * 100.0));
                }
                note += &format!("; {:.1}% of {} echoes lost", s.loss() * 100.0, s.sent);
            }
            Ok(note)
        }
        Measure::Connect { from, to, expect } => connect(from, *to, *expect, c, faulty, probes, get(from)?).await,
        Measure::ConnLimit { from, to, max } => {
            let f = get(from)?;
            let mut held = Vec::new();
            for i in 0..=*max {
                let sock = f.worker.tcp_socket(false).await.map_err(|e| MeasureError::NotMeasured(format!("{e:#}")))?;
                match tokio::time::timeout(connect_timeout(None), sock.connect(*to)).await {
                    Ok(Ok(s)) => held.push(s),
                    Ok(Err(e)) => return Err(MeasureError::NotMeasured(format!("connection {} from {from} to {to} failed: {e} (nothing listens there?)", i + 1))),
                    Err(_) => return Ok(format!("connection {} of {} from {from} to {to} timed out after {} were open", i + 1, max + 1, held.len())),
                }
            }
            took(format!("{} connections from {from} to {to} all connected", max + 1))
        }
        Measure::Transfer { from, to_host, to, from_port, rate_bps } => {
            let bytes = (*rate_bps as f64 / 8.0 * 1.0) as u64;
            let measured = faults::measure_rate_to_port(get(from)?.worker, get(to_host)?.worker, *to, from_port.unwrap_or(0), bytes)
                .await
                .map_err(|e| MeasureError::NotMeasured(format!("a transfer from {from} to {to_host}: {e:#}")))?;
            let ratio = measured / *rate_bps as f64;
            if !(0.8..=1.15).contains(&ratio) {
                return took(format!("a transfer from {from} to {to_host} ran at {:.0} kbit/s, asked {} kbit/s", measured / 1000.0, rate_bps / 1000));
            }
            Ok(format!("a transfer from {from} to {to_host}{} ran at {:.0} kbit/s", from_port.map(|p| format!(" to port {p}")).unwrap_or_default(), measured / 1000.0))
        }
        Measure::Dnat { from, via, direct } => {
            let f = get(from)?;
            let t = connect_timeout(None);
            let (got_via, _) = faults::try_connect(f.worker, *via, t).await.map_err(|e| MeasureError::NotMeasured(format!("{e:#}")))?;
            let (got_direct, _) = faults::try_connect(f.worker, *direct, t).await.map_err(|e| MeasureError::NotMeasured(format!("{e:#}")))?;
            if got_via != got_direct {
                return took(format!("a connection from {from} to {via} {got_via}, but one straight to {direct} {got_direct}"));
            }
            if got_via != Connect::Connected {
                return Err(MeasureError::NotMeasured(format!("a connection from {from} to {via} {got_via} and so does one straight to {direct}: the forward cannot be told from a dead target")));
            }
            Ok(format!("a connection from {from} to {via} {got_via}, as one straight to {direct} does"))
        }
        Measure::PmtuBlackhole { from, to, payload } => {
            let base = need_rtt(c, from, *to)?;
            let s = burst(get(from)?, *to, Burst { count: 3, spacing: Duration::from_millis(5), linger: icmp::linger_for(base), payload: *payload, dont_fragment: true }).await?;
            let fn_after: u16 = s.unreachable.iter().filter(|(code, _)| *code == 4).map(|(_, n)| *n).sum();
            if fn_after > 0 || s.received > 0 {
                return took(format!("a {payload}-byte don't-fragment echo from {from} to {to} still got {fn_after} \"fragmentation needed\" and {} replies", s.received));
            }
            Ok(format!(
                "a {payload}-byte don't-fragment echo from {from} to {to} got {} \"fragmentation needed\" before the rule and silence after it",
                c.frag_needed
            ))
        }
    }
}

/// A TCP connection after apply. For an expected timeout the kernel's drop counter of
/// the faulty host ends the wait as soon as the SYN is dropped there (no idle
/// timeout); without the probe, the wait is the full timeout. The note says which.
async fn connect(from: &str, to: SocketAddr, expect: ConnectOutcome, c: &Control, faulty: &Host<'_>, probes: &Probes, f: &Host<'_>) -> Result<String, MeasureError> {
    let before = c.connect.clone().unwrap_or_default();
    let matches = |got: &Connect| matches!((expect, got), (ConnectOutcome::Connects, Connect::Connected) | (ConnectOutcome::TimesOut, Connect::TimedOut) | (ConnectOutcome::Refused, Connect::Refused) | (ConnectOutcome::IcmpError, Connect::Refused | Connect::Other(_)));
    let control_equal = match expect {
        ConnectOutcome::TimesOut => before == Connect::TimedOut.to_string(),
        ConnectOutcome::Refused => before == Connect::Refused.to_string(),
        ConnectOutcome::IcmpError => before != Connect::Connected.to_string() && before != Connect::TimedOut.to_string(),
        ConnectOutcome::Connects => before == Connect::Connected.to_string(),
    };
    if control_equal {
        return Err(MeasureError::NotMeasured(format!("a connection from {from} to {to} already {before} before the fault, so the fault cannot be shown; aim it at a port a service answers on")));
    }
    let timeout = connect_timeout(c.rtt);
    let drops0 = drops(probes, faulty.netns_ino);
    let sock = f.worker.tcp_socket(to.is_ipv6()).await.map_err(|e| MeasureError::NotMeasured(format!("{e:#}")))?;
    let t = Instant::now();
    let attempt = sock.connect(to);
    tokio::pin!(attempt);
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let (got, dropped) = loop {
        tokio::select! {
            r = &mut attempt => break (match r {
                Ok(_) => Connect::Connected,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Connect::Refused,
                Err(e) => Connect::Other(e.to_string()),
            }, false),
            _ = &mut deadline => break (Connect::TimedOut, false),
            _ = tick.tick(), if expect == ConnectOutcome::TimesOut && drops0.is_some() => {
                if drops(probes, faulty.netns_ino) > drops0 {
                    break (Connect::TimedOut, true);
                }
            }
        }
    };
    let took_ms = t.elapsed().as_secs_f64() * 1e3;
    if !matches(&got) {
        return Err(MeasureError::DidNotTake(format!("a TCP connection from {from} to {to} {got} after {took_ms:.1} ms (expected: it {expect}; before the fault it {before})")));
    }
    let how = if dropped { format!("its SYN was dropped on {} after {took_ms:.1} ms (kernel drop counter)", faulty.name) } else { format!("{got} after {took_ms:.1} ms") };
    Ok(format!("a TCP connection from {from} to {to}: {how}; before the fault it {before}"))
}
