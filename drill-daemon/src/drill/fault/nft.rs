//! nftables kinds (nft-drop, nft-reject, nft-loss, nft-limit, nft-connlimit,
//! nft-dnat): a host's rules are one table (`kernel::linux::nft`), applied in one
//! transaction, then each rule measured from outside. The table lives in the host's
//! namespace: nothing to undo at teardown.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use anyhow::anyhow;
use drill_core::scenario::{Fault, NftAction, NftHook, NftRule, NftSource};

use super::super::measure::{CONN_LIMIT_MAX_PROBED, CONNECT_TIMEOUT, LOSS_PINGS, POLICER_MAX_PROBED, no_ipv4};
use super::super::{Drill, RunningHost};
use crate::error::{DrillError, Result};
use crate::kernel::linux::faults;
use crate::kernel::linux::nft::{DnatRule, HostNft};
use crate::kernel::{ConnRun, Kernel};

impl<K: Kernel> Drill<K> {
    /// One host's nft table, then each of its rules measured.
    pub(super) async fn apply_nft_table(&self, host: &str, nft: &HostNft) -> Result<()> {
        self.kernel.apply_nft(&self.host(host)?.netns, &self.plan, host, nft).await?;
        // Port forwards first: a connection limit's probe connections would count
        // against theirs while they close.
        for d in &nft.dnats {
            let note = self.measure_dnat(host, d).await?;
            self.record(format!("nftables on {host}: {} dport {} dnat to {}", d.proto, d.dport, d.to), note);
        }
        for r in &nft.rules {
            let note = self.measure_nft(host, r).await?;
            self.record(Fault::Nft { host: host.to_string(), rule: r.clone() }.describe(), note);
        }
        Ok(())
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

    /// Measures one nft rule from outside: random loss and policers by pings (ICMP
    /// rules), a drop or reject by one TCP connection to the filtered port, a
    /// connection limit by connections until one times out. The address probed is the
    /// host's own (input) or the rule's `to` host (forward, output). Returns how it was
    /// measured; what cannot be measured that way is said so.
    async fn measure_nft(&self, host: &str, r: &NftRule) -> Result<String> {
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
    async fn measure_dnat(&self, host: &str, d: &DnatRule) -> Result<String> {
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
