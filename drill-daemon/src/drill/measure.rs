//! After-apply measurement: every network fault is measured from outside before the
//! learner gets the drill (pings for loss, policers and delay, TCP connections for
//! drops and rejects, a transfer for a rate); a figure outside its tolerance stops
//! the start with [`DrillError::FaultDidNotTake`], naming the fault and the figure.
//! Only the kernel's primitives are used (`Kernel::ping_loss` and friends), so the
//! judging here is plain Rust.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use drill_core::scenario::{Fault, NftAction, NftHook, NftRule, NftSource};

use super::{Drill, RunningHost};
use crate::error::{DrillError, Result};
use crate::kernel::linux::faults;
use crate::kernel::linux::nft::DnatRule;
use crate::kernel::{ConnRun, Connect, DelayBackend, Kernel};

/// Pings sent to measure a random loss (or a policer): 2 ms apart, about a second.
pub const LOSS_PINGS: u32 = 500;
/// How long a TCP connection attempt of a measurement may take before it counts as
/// timed out (a drop), far above any RTT of a drill without a delay fault.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(700);
/// Pings, and their interval in seconds, of each ping RTT measurement of a delay.
const RTT_PINGS: u32 = 20;
const RTT_INTERVAL_SECS: f64 = 0.01;
/// Seconds of traffic at the asked rate a rate measurement sends.
const RATE_SECS: f64 = 1.5;
/// Measured rate over asked rate that counts as the fault taking.
const RATE_RATIO_OK: std::ops::RangeInclusive<f64> = 0.8..=1.15;
/// Above this many connections, a connection limit is not probed at start.
const CONN_LIMIT_MAX_PROBED: u32 = 200;
/// A policer above this many packets a second is more than LOSS_PINGS a second shows.
const POLICER_MAX_PROBED: u32 = 400;

fn no_ipv4(host: &str) -> DrillError {
    DrillError::Internal(anyhow!("host {host} has no IPv4 address to measure a fault against"))
}

impl<K: Kernel> Drill<K> {
    /// The host at the other end of `host:iface` and its IPv4 address there (for a
    /// switch: the first other host on it).
    pub(super) fn neighbour(&self, host: &str, iface: &str) -> Result<(&RunningHost, IpAddr)> {
        let pi = self
            .plan
            .hosts
            .iter()
            .find(|h| h.name == host)
            .and_then(|h| h.interfaces.iter().find(|i| i.name == iface))
            .ok_or_else(|| DrillError::Internal(anyhow!("host {host} has no interface {iface}")))?;
        let mine = pi.addresses.iter().find(|c| c.addr.is_ipv4()).copied();
        for h in self.plan.hosts.iter().filter(|h| h.name != host) {
            for i in &h.interfaces {
                let linked = (pi.peer == h.name && i.peer == host) || (pi.peer == i.peer && self.plan.switches.iter().any(|s| s.name == pi.peer));
                if !linked {
                    continue;
                }
                if let Some(c) = i.addresses.iter().find(|c| c.addr.is_ipv4() && mine.is_none_or(|m| m.same_subnet(c))) {
                    return Ok((self.host(&h.name)?, c.addr));
                }
            }
        }
        Err(DrillError::Internal(anyhow!("host {host}: nobody with an IPv4 address is at the other end of {iface}")))
    }

    /// The host a rule on `host` is measured from: the rule's `from` host when it names
    /// one; for an output rule the host itself; else the first host that is neither
    /// `host` nor the rule's destination.
    fn prober(&self, host: &str, rule: &NftRule) -> Result<&RunningHost> {
        match &rule.from {
            Some(NftSource::Host(f)) => self.host(f),
            _ if rule.hook == NftHook::Output => self.host(host),
            _ => self
                .hosts
                .iter()
                .find(|x| x.name != host && rule.to.as_deref() != Some(x.name.as_str()))
                .ok_or_else(|| DrillError::Internal(anyhow!("no other host to measure the fault on {host} from"))),
        }
    }

    /// A loss measurement: `LOSS_PINGS` pings from `netns` to `to`, judged against `target`.
    async fn ping_loss_within(&self, fault: &str, host: &str, netns: &str, to: IpAddr, target: f64) -> Result<f64> {
        let measured = self.kernel.ping_loss(netns, to, LOSS_PINGS).await?;
        if !faults::loss_within(target, measured, LOSS_PINGS) {
            return Err(DrillError::did_not_take(fault, host, format!("{:.1}% of {LOSS_PINGS} pings to {to} were lost, not about {:.1}%", measured * 100.0, target * 100.0)));
        }
        Ok(measured)
    }

    /// The ping RTT before a delay is set: the neighbour's address and the RTT.
    pub(super) async fn delay_baseline(&self, host: &str, iface: &str) -> Result<(IpAddr, f64)> {
        let (_, addr) = self.neighbour(host, iface)?;
        let base = self.kernel.ping_rtt(&self.host(host)?.netns, addr, RTT_PINGS, RTT_INTERVAL_SECS).await?;
        let base = base.ok_or_else(|| DrillError::Internal(anyhow!("host {host}: no ping reply from {addr} before the delay was set")))?;
        Ok((addr, base))
    }

    /// Measures a delay just set: the added ping RTT must be about the delay
    /// ([`faults::delay_within`]), the loss about the loss asked.
    pub(super) async fn measure_delay(&self, host: &str, iface: &str, addr: IpAddr, base: f64, (delay_ms, jitter_ms, loss): (f64, f64, f64), backend: DelayBackend) -> Result<String> {
        let netns = &self.host(host)?.netns;
        let fault = format!("delay on {iface}");
        let mut note = format!("{} ", backend.describe());
        if delay_ms > 0.0 {
            let after = self.kernel.ping_rtt(netns, addr, RTT_PINGS, RTT_INTERVAL_SECS).await?;
            let Some(after) = after else { return Err(DrillError::did_not_take(fault, host, format!("every ping to {addr} was lost"))) };
            let added = after - base;
            if !faults::delay_within(delay_ms, jitter_ms, added) {
                let figure = format!("ping RTT to {addr} went from {base:.2} to {after:.2} ms (+{added:.2} ms), asked +{delay_ms} ms ({})", backend.describe());
                return Err(DrillError::did_not_take(fault, host, figure));
            }
            note.push_str(&format!("measured +{added:.2} ms ping RTT to {addr} (from {base:.2} ms)"));
        }
        if loss > 0.0 {
            let measured = self.ping_loss_within(&fault, host, netns, addr, loss).await?;
            note.push_str(&format!("; {:.1}% of {LOSS_PINGS} pings lost", measured * 100.0));
        }
        Ok(note)
    }

    /// Measures an eBPF drop from outside: random loss by pings, a full TCP drop by a
    /// connection that times out; the fault's own counters are logged too.
    pub(super) async fn measure_ebpf(&self, f: &Fault) -> Result<String> {
        let Fault::EbpfDrop { host, interface, egress, proto, dport, from, loss } = f else {
            return Err(DrillError::Internal(anyhow!("measure_ebpf takes eBPF faults, not `{}`", f.describe())));
        };
        let (nb, nb_addr) = self.neighbour(host, interface)?;
        let prober = match from {
            Some(NftSource::Host(x)) => self.host(x)?,
            _ => nb,
        };
        let target = self.plan.host_address(host, false).ok_or_else(|| no_ipv4(host))?;
        let note = match (proto.as_deref(), dport) {
            (None | Some("icmp"), None) => {
                // Ingress: the neighbour pings the host; egress: the host pings out.
                let (netns, to) = if *egress { (&self.host(host)?.netns, nb_addr) } else { (&prober.netns, target) };
                let measured = self.ping_loss_within(&f.describe(), host, netns, to, *loss).await?;
                format!("{:.1}% of {LOSS_PINGS} pings lost", measured * 100.0)
            }
            (Some("tcp"), Some(p)) if *loss >= 1.0 && !*egress => {
                let to = SocketAddr::new(target, *p);
                let (got, took) = self.kernel.try_connect(&prober.netns, to, CONNECT_TIMEOUT).await?;
                if got != Connect::TimedOut {
                    return Err(DrillError::did_not_take(f.describe(), host, format!("a TCP connection from {} to {to} {got} after {took:?} (expected: it times out)", prober.name)));
                }
                format!("a TCP connection from {} to {to} timed out", prober.name)
            }
            _ => "attached (this match is not measured at start)".to_string(),
        };
        let c = self.kernel.tc_fault_counters(&self.host(host)?.netns, interface)?;
        let dir = if *egress { "egress" } else { "ingress" };
        Ok(format!("tc clsact {dir} bpf drill_tc_fault; {note}; its counters: {} packets seen, {} matched, {} dropped", c.seen, c.matched, c.dropped))
    }

    /// Measures a shaped interface by a transfer of `RATE_SECS` at the asked rate to
    /// the host on its other end (behind a switch: the first other host on it).
    pub(super) async fn measure_rate(&self, host: &str, iface: &str, rate_bps: u64, port: Option<u16>) -> Result<String> {
        // To the neighbour's address on this link, so the transfer crosses the shaped interface.
        let (peer, addr) = self.neighbour(host, iface)?;
        let bytes = (rate_bps as f64 / 8.0 * RATE_SECS) as u64;
        let measured = match self.kernel.transfer_rate(&self.host(host)?.netns, &peer.netns, addr, port.unwrap_or(0), bytes).await {
            Ok(m) => m,
            Err(e) if port.is_some() => return Ok(format!("not measured: port {} is busy on {host} ({e})", port.unwrap_or(0))),
            Err(e) => return Err(e),
        };
        if !RATE_RATIO_OK.contains(&(measured / rate_bps as f64)) {
            let figure = format!("a transfer to {} ran at {:.0} kbit/s, asked {} kbit/s", peer.name, measured / 1000.0, rate_bps / 1000);
            return Err(DrillError::did_not_take(format!("tc-rate on {iface}"), host, figure));
        }
        Ok(format!("a transfer to {}{} ran at {:.0} kbit/s", peer.name, port.map(|p| format!(" from port {p}")).unwrap_or_default(), measured / 1000.0))
    }

    /// Measures one nft rule from outside: random loss and policers by pings (ICMP
    /// rules), a drop or reject by one TCP connection to the filtered port, a
    /// connection limit by connections until one times out. The address probed is the
    /// host's own (input) or the rule's `to` host (forward, output). Returns how it was
    /// measured; what cannot be measured that way is said so.
    pub(super) async fn measure_nft(&self, host: &str, r: &NftRule) -> Result<String> {
        let prober = self.prober(host, r)?;
        if r.frag_needed {
            return Ok("applied; it matches only when a packet exceeds a path MTU, so it is read back, not probed".into());
        }
        let target_host = match (r.hook, &r.to) {
            (NftHook::Input, _) => host,
            (_, Some(t)) => t.as_str(),
            (_, None) => return Ok(format!("applied; not measured (a {} rule without `to` has no destination to probe)", r.hook.name())),
        };
        let addr = self.plan.host_address(target_host, false).ok_or_else(|| no_ipv4(target_host))?;
        let icmp_like = r.proto.as_deref().is_none_or(|p| p == "icmp");
        match r.action {
            NftAction::Loss { .. } | NftAction::Limit { .. } if !icmp_like => Ok("applied; loss or a policer on a non-ICMP protocol is not measured at start".into()),
            NftAction::Loss { permille } => {
                let measured = self.ping_loss_within(&r.describe(), host, &prober.netns, addr, f64::from(permille) / 1000.0).await?;
                Ok(format!("{:.1}% of {LOSS_PINGS} pings from {} to {addr} lost", measured * 100.0, prober.name))
            }
            NftAction::Limit { per_second, burst } => self.measure_policer(host, r, prober, addr, per_second, burst).await,
            NftAction::ConnLimit { max } => self.measure_conn_limit(host, r, prober, SocketAddr::new(addr, r.dport.unwrap_or(0)), max).await,
            _ => {
                let Some(want) = faults::expected(r) else {
                    return Ok("applied; not measurable by a TCP connection".into());
                };
                let to = SocketAddr::new(addr, r.dport.unwrap_or(0));
                let (got, took) = self.kernel.try_connect(&prober.netns, to, CONNECT_TIMEOUT).await?;
                if !want.met_by(&got) {
                    return Err(DrillError::did_not_take(r.describe(), host, format!("a TCP connection from {} to {to} {got} after {took:?} (expected: it {want})", prober.name)));
                }
                Ok(format!("a TCP connection from {} to {to} {got} after {} ms", prober.name, took.as_millis()))
            }
        }
    }

    /// A policer by `LOSS_PINGS` pings 2 ms apart (about a second): about rate + burst pass.
    async fn measure_policer(&self, host: &str, r: &NftRule, prober: &RunningHost, addr: IpAddr, per_second: u32, burst: u32) -> Result<String> {
        if per_second >= POLICER_MAX_PROBED {
            return Ok(format!("applied; not measured (a policer above what {LOSS_PINGS} pings a second would show)"));
        }
        let t = Instant::now();
        let lost = self.kernel.ping_loss(&prober.netns, addr, LOSS_PINGS).await?;
        let secs = t.elapsed().as_secs_f64().max(1.0);
        let passed = (1.0 - lost) * f64::from(LOSS_PINGS);
        let expected = f64::from(per_second) * secs + f64::from(burst);
        if passed > expected * 1.5 + 5.0 || passed < expected * 0.5 {
            return Err(DrillError::did_not_take(r.describe(), host, format!("{passed:.0} of {LOSS_PINGS} pings in {secs:.1} s passed, expected about {expected:.0}")));
        }
        Ok(format!("{passed:.0} of {LOSS_PINGS} pings from {} passed in {secs:.1} s (expected about {expected:.0})", prober.name))
    }

    /// A connection limit: connections beyond it time out. Ours may share it with the
    /// drill's own traffic, so one must time out within max + 1 attempts.
    async fn measure_conn_limit(&self, host: &str, r: &NftRule, prober: &RunningHost, to: SocketAddr, max: u32) -> Result<String> {
        if max > CONN_LIMIT_MAX_PROBED {
            return Ok(format!("applied; not measured (more than {CONN_LIMIT_MAX_PROBED} connections to {to})"));
        }
        match self.kernel.connect_until_timeout(&prober.netns, to, max + 1, CONNECT_TIMEOUT).await? {
            ConnRun::TimedOut { attempt } => Ok(format!("connection {attempt} of {} from {} to {to} timed out after {} were open", max + 1, prober.name, attempt - 1)),
            ConnRun::Failed { attempt, error } => {
                Err(DrillError::did_not_take(r.describe(), host, format!("connection {attempt} from {} to {to} failed: {error} (nothing listens there?)", prober.name)))
            }
            ConnRun::AllConnected => Err(DrillError::did_not_take(r.describe(), host, format!("{} connections from {} to {to} all connected", max + 1, prober.name))),
        }
    }

    /// Measures a port forward: a connection to the forwarded port must end as a
    /// connection straight to the target does (both connect, or both fail alike).
    pub(super) async fn measure_dnat(&self, host: &str, d: &DnatRule) -> Result<String> {
        let prober = self.hosts.iter().find(|x| x.name != host).ok_or_else(|| DrillError::Internal(anyhow!("no other host to measure the fault on {host} from")))?;
        let addr = self.plan.host_address(host, false).ok_or_else(|| no_ipv4(host))?;
        let via = SocketAddr::new(addr, d.dport);
        let (got_via, _) = self.kernel.try_connect(&prober.netns, via, CONNECT_TIMEOUT).await?;
        let (got_direct, _) = self.kernel.try_connect(&prober.netns, d.to, CONNECT_TIMEOUT).await?;
        if got_via != got_direct {
            return Err(DrillError::did_not_take("nft-dnat", host, format!("a connection from {} to {via} {got_via}, but one straight to {} {got_direct}", prober.name, d.to)));
        }
        Ok(format!("a connection from {} to {via} {got_via}, as one straight to {} does", prober.name, d.to))
    }
}
