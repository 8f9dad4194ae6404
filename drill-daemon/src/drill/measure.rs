//! After-apply measurement of the plan's fault steps ([`drill_core::plan::Measure`]),
//! from outside the faulty host, through the kernel's primitives only (so the judging
//! is plain Rust, tested on the fake). Each measurement has a control taken before its
//! fault is applied (the path answers, its round trip, how a connection ends without
//! the fault) and a reading after; a measurement that sees nothing (no reply at all,
//! no reading) fails the start, and so does one whose control already shows the
//! expected effect (the fault would not be what made the difference). A figure out of
//! tolerance is [`DrillError::FaultDidNotTake`], naming the fault and the figure.
//!
//! Measurements are bursts, not paced probes: a loss figure is 500 echo requests sent
//! 50 us apart and counted back (about 25 ms plus a round trip); a TCP drop ends the
//! wait as soon as the kernel's drop counter of the faulty host moves (the probe's
//! `kfree_skb`), not at a connect timeout.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use drill_core::plan::{ConnectOutcome, FaultStep, LOSS_ECHOES, Measure};

use super::Drill;
use crate::error::{DrillError, Result};
use crate::icmp::{self, Burst, EchoStats};
use crate::kernel::linux::faults;
use crate::kernel::{ConnRun, Connect, Kernel};

/// What the control measurement (before apply) saw.
#[derive(Clone, Debug, Default)]
pub(super) struct Control {
    /// Round trip of the measured path before the fault, when it answers echoes.
    rtt: Option<Duration>,
    /// How the measured TCP connection ended before the fault.
    connect: Option<Connect>,
}

/// The drop reasons of a filter: nftables, and a tc classifier (the eBPF fault). A SYN
/// to a closed port is dropped too (NO_SOCKET) as the kernel answers it with a reset:
/// that must not count as the fault's drop.
const FILTER_DROPS: &[&str] = &["NETFILTER_DROP", "TC_INGRESS", "TC_EGRESS"];

/// Echo requests of a control burst, and how long it waits for the slowest.
const CONTROL_ECHOES: u32 = 5;
const CONTROL_LINGER: Duration = Duration::from_secs(2);
/// Echoes of a path MTU probe, and their spacing.
const PMTU_ECHOES: u32 = 3;
/// Measured rate over asked rate that counts as the fault taking, and the seconds of
/// traffic at the asked rate a rate measurement sends.
const RATE_RATIO_OK: std::ops::RangeInclusive<f64> = 0.8..=1.15;
const RATE_SECS: f64 = 1.0;

/// How long a measuring connection waits: four round trips of the path before the
/// fault plus scheduling slack, so a timeout means no answer came.
fn connect_timeout(rtt: Option<Duration>) -> Duration {
    Duration::from_millis(drill_core::plan::CONNECT_TIMEOUT_MS) + rtt.unwrap_or_default() * 4
}

fn v4(a: IpAddr) -> Result<Ipv4Addr> {
    match a {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(a) => Err(DrillError::Internal(anyhow!("{a} is IPv6; measurements probe IPv4"))),
    }
}

fn frag_needed(s: &EchoStats) -> u16 {
    s.unreachable.iter().filter(|(code, _)| *code == 4).map(|(_, n)| *n).sum()
}

impl<K: Kernel> Drill<K> {
    async fn burst(&self, from: &str, to: IpAddr, b: Burst) -> Result<EchoStats> {
        self.kernel.echo_burst(&self.host(from)?.netns, v4(to)?, b).await
    }

    /// A few echoes: the path's round trip, or `None` when it does not answer.
    async fn rtt(&self, from: &str, to: IpAddr) -> Result<Option<Duration>> {
        let s = self.burst(from, to, Burst::new(CONTROL_ECHOES, Duration::from_micros(200), CONTROL_LINGER)).await?;
        Ok(s.median_rtt_ms().map(|ms| Duration::from_secs_f64(ms / 1e3)))
    }

    /// The control of `step`, taken before its fault is applied.
    pub(super) async fn control(&self, step: &FaultStep) -> Result<Control> {
        let mut c = Control::default();
        match &step.measure {
            Measure::ReadBack { .. } | Measure::ConnLimit { .. } | Measure::Transfer { .. } | Measure::Dnat { .. } => {}
            Measure::EchoLoss { from, to, .. } | Measure::EchoPolicer { from, to, .. } | Measure::EchoDelay { from, to, .. } => c.rtt = self.rtt(from, *to).await?,
            Measure::Connect { from, to, .. } => {
                c.rtt = self.rtt(from, to.ip()).await?;
                c.connect = Some(self.kernel.try_connect(&self.host(from)?.netns, *to, connect_timeout(c.rtt)).await?.0);
            }
            // Only the round trip: a large echo before the rule would teach the sender's
            // kernel the path MTU (a cached exception the learner would then see, and
            // that would heal the drill's own traffic to that address).
            Measure::PmtuBlackhole { from, to, .. } => c.rtt = self.rtt(from, *to).await?,
            Measure::ConntrackFull { max, .. } => self.control_conntrack(&step.summary, &step.host, *max).await?,
        }
        Ok(c)
    }

    fn need_rtt(step: &FaultStep, from: &str, to: IpAddr, rtt: Option<Duration>) -> Result<Duration> {
        rtt.ok_or_else(|| DrillError::not_measured(&step.summary, &step.host, format!("before the fault, {from} got no echo reply from {to} (the path does not work: nothing to measure against)")))
    }

    /// Measures `step` after its fault was applied; returns what was seen (for the
    /// reveal). `c` is its control.
    pub(super) async fn measure(&self, step: &FaultStep, c: &Control) -> Result<String> {
        let took = |figure: String| Err(DrillError::did_not_take(&step.summary, &step.host, figure));
        match &step.measure {
            Measure::ReadBack { what } => Ok(format!("read back: {what}")),
            Measure::EchoLoss { from, to, count, spacing_us, loss } => {
                let base = Self::need_rtt(step, from, *to, c.rtt)?;
                let s = self.burst(from, *to, Burst::new(*count, Duration::from_micros(*spacing_us), icmp::linger_for(base))).await?;
                if !faults::loss_within(*loss, s.loss(), s.sent) {
                    return took(format!("{:.1}% of {} echoes from {from} to {to} were lost, not about {:.1}%", s.loss() * 100.0, s.sent, loss * 100.0));
                }
                Ok(format!("{:.1}% of {} echoes from {from} to {to} lost (a {} ms burst)", s.loss() * 100.0, s.sent, s.elapsed.as_millis()))
            }
            Measure::EchoPolicer { from, to, count, spacing_us, per_second, burst } => {
                let base = Self::need_rtt(step, from, *to, c.rtt)?;
                let s = self.burst(from, *to, Burst::new(*count, Duration::from_micros(*spacing_us), icmp::linger_for(base))).await?;
                let sending = (Duration::from_micros(*spacing_us) * count.saturating_sub(1)).as_secs_f64();
                let expected = f64::from(*per_second) * sending + f64::from(*burst);
                let passed = f64::from(s.received);
                if passed > expected * 1.5 + 5.0 || passed < expected * 0.5 {
                    return took(format!("{passed:.0} of {count} echoes sent over {:.0} ms passed, expected about {expected:.0}", sending * 1e3));
                }
                Ok(format!("{passed:.0} of {count} echoes from {from} sent over {:.0} ms passed (expected about {expected:.0})", sending * 1e3))
            }
            Measure::EchoDelay { from, to, count, added_ms, jitter_ms, loss } => self.measure_delay(step, c, from, *to, *count, (*added_ms, *jitter_ms, *loss)).await,
            Measure::Connect { from, to, expect } => self.measure_connect(step, c, from, *to, *expect).await,
            Measure::ConntrackFull { from, to, max } => self.measure_conntrack(&step.summary, &step.host, from, *to, *max).await,
            Measure::ConnLimit { from, to, max } => match self.kernel.connect_until_timeout(&self.host(from)?.netns, *to, max + 1, connect_timeout(None)).await? {
                ConnRun::TimedOut { attempt } => Ok(format!("connection {attempt} of {} from {from} to {to} timed out after {} were open", max + 1, attempt - 1)),
                ConnRun::Failed { attempt, error } => {
                    Err(DrillError::not_measured(&step.summary, &step.host, format!("connection {attempt} from {from} to {to} failed: {error} (nothing listens there?)")))
                }
                ConnRun::AllConnected => took(format!("{} connections from {from} to {to} all connected", max + 1)),
            },
            Measure::Transfer { from, to_host, to, from_port, rate_bps } => {
                let bytes = (*rate_bps as f64 / 8.0 * RATE_SECS) as u64;
                let measured = self.kernel.transfer_rate(&self.host(from)?.netns, &self.host(to_host)?.netns, *to, from_port.unwrap_or(0), bytes).await?;
                if !RATE_RATIO_OK.contains(&(measured / *rate_bps as f64)) {
                    return took(format!("a transfer from {from} to {to_host} ran at {:.0} kbit/s, asked {} kbit/s", measured / 1000.0, rate_bps / 1000));
                }
                Ok(format!("a transfer from {from} to {to_host}{} ran at {:.0} kbit/s", from_port.map(|p| format!(" port {p}")).unwrap_or_default(), measured / 1000.0))
            }
            Measure::Dnat { from, via, direct } => {
                let netns = &self.host(from)?.netns;
                let (got_via, _) = self.kernel.try_connect(netns, *via, connect_timeout(None)).await?;
                let (got_direct, _) = self.kernel.try_connect(netns, *direct, connect_timeout(None)).await?;
                if got_via != got_direct {
                    return took(format!("a connection from {from} to {via} {got_via}, but one straight to {direct} {got_direct}"));
                }
                if got_via != Connect::Connected {
                    let why = format!("a connection from {from} to {via} {got_via}, and so does one straight to {direct}: the forward cannot be told from a dead target");
                    return Err(DrillError::not_measured(&step.summary, &step.host, why));
                }
                Ok(format!("a connection from {from} to {via} {got_via}, as one straight to {direct} does"))
            }
            Measure::PmtuBlackhole { from, to, payload } => {
                // The faulty host's drop counter shows the "fragmentation needed" it made
                // and dropped; the sender sees silence (and so learns no path MTU).
                let base = Self::need_rtt(step, from, *to, c.rtt)?;
                let ino = self.host(&step.host)?.netns_ino;
                let Some(drops0) = self.kernel.drop_count(ino, FILTER_DROPS) else {
                    return Err(DrillError::not_measured(&step.summary, &step.host, "the drop probe is not loaded, and a dropped \"fragmentation needed\" shows nowhere else"));
                };
                let s = self.burst(from, *to, Burst { count: PMTU_ECHOES, spacing: Duration::from_millis(5), linger: icmp::linger_for(base), payload: *payload, dont_fragment: true }).await?;
                let dropped = self.kernel.drop_count(ino, FILTER_DROPS).unwrap_or(drops0).saturating_sub(drops0);
                let fn_seen = frag_needed(&s);
                if fn_seen > 0 || s.received > 0 {
                    return took(format!("a {payload}-byte don't-fragment echo from {from} to {to} still got {fn_seen} \"fragmentation needed\" and {} replies", s.received));
                }
                if dropped == 0 {
                    let why = format!("a {payload}-byte don't-fragment echo from {from} to {to} got silence, but {} dropped nothing: the path has no narrow link for the rule to matter", step.host);
                    return Err(DrillError::not_measured(&step.summary, &step.host, why));
                }
                Ok(format!("{PMTU_ECHOES} {payload}-byte don't-fragment echoes from {from} to {to}: silence, and {} dropped {dropped} packets meanwhile (its \"fragmentation needed\")", step.host))
            }
        }
    }

    /// The round trip must grow by the delay (`faults::delay_within`); with a loss, a
    /// loss burst too. The echoes wait for the delay itself: one round trip of it.
    async fn measure_delay(&self, step: &FaultStep, c: &Control, from: &str, to: IpAddr, count: u32, (added_ms, jitter_ms, loss): (f64, f64, f64)) -> Result<String> {
        let took = |figure: String| Err(DrillError::did_not_take(&step.summary, &step.host, figure));
        let base = Self::need_rtt(step, from, to, c.rtt)?;
        let base_ms = base.as_secs_f64() * 1e3;
        let linger = icmp::linger_for(base) + Duration::from_secs_f64((2.0 * added_ms + 2.0 * jitter_ms) / 1e3);
        let mut note = String::new();
        if added_ms > 0.0 {
            let s = self.burst(from, to, Burst::new(count, Duration::from_micros(100), linger)).await?;
            let Some(after) = s.mean_rtt_ms() else { return took(format!("every echo from {from} to {to} was lost")) };
            let added = after - base_ms;
            if !faults::delay_within(added_ms, jitter_ms, added) {
                return took(format!("the round trip from {from} to {to} went from {base_ms:.2} to {after:.2} ms (+{added:.2} ms), asked +{added_ms} ms"));
            }
            note = format!("measured +{added:.2} ms round trip from {from} to {to} (from {base_ms:.2} ms)");
        }
        if loss > 0.0 {
            let s = self.burst(from, to, Burst::new(LOSS_ECHOES, Duration::from_micros(50), linger)).await?;
            if !faults::loss_within(loss, s.loss(), s.sent) {
                return took(format!("{:.1}% of {} echoes were lost, not about {:.1}%", s.loss() * 100.0, s.sent, loss * 100.0));
            }
            note += &format!("; {:.1}% of {} echoes lost", s.loss() * 100.0, s.sent);
        }
        Ok(note)
    }

    /// A TCP connection after apply. For an expected timeout, the kernel's drop counter
    /// of the faulty host ends the wait as soon as the SYN is dropped there; without
    /// the probe, the wait is the full timeout. The note says which.
    async fn measure_connect(&self, step: &FaultStep, c: &Control, from: &str, to: SocketAddr, expect: ConnectOutcome) -> Result<String> {
        let before = c.connect.clone().ok_or_else(|| DrillError::Internal(anyhow!("no control connection for `{}`", step.summary)))?;
        let same = match expect {
            ConnectOutcome::TimesOut => before == Connect::TimedOut,
            ConnectOutcome::Refused => before == Connect::Refused,
            // An ICMP error ends a connection as Refused (port-unreachable) or as another
            // error (admin-prohibited: EHOSTUNREACH); the ending after apply must differ
            // from the control's, checked below.
            ConnectOutcome::IcmpError => matches!(before, Connect::Other(_)),
            ConnectOutcome::Connects => before == Connect::Connected,
        };
        if same {
            let why = format!("a connection from {from} to {to} already {before} before the fault, so the fault cannot be shown; aim it at a port a service answers on");
            return Err(DrillError::not_measured(&step.summary, &step.host, why));
        }
        let faulty = self.host(&step.host)?.netns_ino;
        let timeout = connect_timeout(c.rtt);
        let drops0 = self.kernel.drop_count(faulty, FILTER_DROPS);
        let t = Instant::now();
        let attempt = self.kernel.try_connect(&self.host(from)?.netns, to, timeout);
        tokio::pin!(attempt);
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let (got, by_counter) = loop {
            tokio::select! {
                r = &mut attempt => break (r?.0, false),
                _ = tick.tick(), if expect == ConnectOutcome::TimesOut && drops0.is_some() => {
                    if self.kernel.drop_count(faulty, FILTER_DROPS) > drops0 {
                        break (Connect::TimedOut, true);
                    }
                }
            }
        };
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if expect == ConnectOutcome::IcmpError && got == before {
            let why = format!(
                "a connection from {from} to {to} {got} after the fault as it did before, so the fault cannot be shown; aim it at a port a service answers on, or reject with another ICMP error"
            );
            return Err(DrillError::not_measured(&step.summary, &step.host, why));
        }
        let met = matches!(
            (expect, &got),
            (ConnectOutcome::Connects, Connect::Connected)
                | (ConnectOutcome::TimesOut, Connect::TimedOut)
                | (ConnectOutcome::Refused, Connect::Refused)
                | (ConnectOutcome::IcmpError, Connect::Refused | Connect::Other(_))
        );
        if !met {
            return Err(DrillError::did_not_take(
                &step.summary,
                &step.host,
                format!("a TCP connection from {from} to {to} {got} after {ms:.1} ms (expected: it {expect}; before the fault it {before})"),
            ));
        }
        let how = if by_counter { format!("its SYN was dropped on {} after {ms:.1} ms (the kernel's drop counter)", step.host) } else { format!("{got} after {ms:.1} ms") };
        Ok(format!("a TCP connection from {from} to {to}: {how}; before the fault it {before}"))
    }
}
