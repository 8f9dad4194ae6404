//! A switch's `path_mtu`: the fabric carries packets of at most that size whatever its
//! members' interfaces say, a given of the story made in the switch's own namespace
//! (the `fabric_mtu` classifier on every port), then measured from outside before the
//! drill is handed over: a don't-fragment echo of exactly the path MTU crosses it, one
//! byte more is lost without a word and counted by the fabric.

use std::net::IpAddr;
use std::time::Duration;

use super::{Created, Drill};
use crate::error::{DrillError, Result};
use crate::icmp::Burst;
use crate::kernel::Kernel;

/// Echoes per size in the measurement.
const PROBES: u32 = 3;

impl<K: Kernel> Drill<K> {
    /// Sets and measures every switch's path MTU (right after the topology).
    pub(super) async fn apply_path_mtus(&self) -> Result<()> {
        for s in &self.plan.switches {
            let Some(mtu) = s.path_mtu else { continue };
            let ports: Vec<String> = s.ports.iter().map(|p| p.port.clone()).collect();
            self.kernel.set_path_mtu(&s.netns, &s.name, &ports, mtu).await?;
            self.created(Created::PathMtu { switch: s.name.clone(), netns: s.netns.clone() });
            self.measure_path_mtu(&s.name, &s.netns, mtu).await?;
        }
        Ok(())
    }

    /// From the first member to the second: `mtu` bytes cross, `mtu + 1` are dropped
    /// by the fabric (its counter moves) and nothing comes back.
    async fn measure_path_mtu(&self, switch: &str, netns: &str, mtu: u32) -> Result<()> {
        let what = format!("path_mtu {mtu} of switch {switch}");
        let sw = self.plan.switches.iter().find(|s| s.name == switch).ok_or_else(|| DrillError::Internal(anyhow::anyhow!("plan has no switch {switch}")))?;
        let (Some(a), Some(b)) = (sw.ports.first(), sw.ports.get(1)) else {
            return Err(DrillError::not_measured(what, switch, "the switch has fewer than two members to send across it"));
        };
        let from = self.host(&a.host)?.netns.clone();
        let to = self.plan.hosts.iter().find(|h| h.name == b.host).and_then(|h| h.interfaces.iter().find(|i| i.name == b.host_if)).and_then(|i| {
            i.addresses.iter().find_map(|c| match c.addr {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
        });
        let Some(to) = to else {
            return Err(DrillError::not_measured(what, &b.host, format!("{}:{} has no IPv4 address to send echoes to", b.host, b.host_if)));
        };
        let burst = |payload: usize| Burst { count: PROBES, spacing: Duration::from_millis(5), linger: Duration::from_millis(150), payload, dont_fragment: true };
        // ICMP echo: IPv4 (20) + ICMP (8) + payload.
        let fits = self.kernel.echo_burst(&from, to, burst(mtu as usize - 28)).await?;
        if fits.received == 0 {
            return Err(DrillError::not_measured(what, &a.host, format!("no reply to {PROBES} don't-fragment echoes of {mtu} bytes to {} ({to}): the path does not answer at all", b.host)));
        }
        let before = self.kernel.fabric_counters(netns)?;
        let over = self.kernel.echo_burst(&from, to, burst(mtu as usize - 27)).await?;
        let after = self.kernel.fabric_counters(netns)?;
        let dropped = after.dropped.saturating_sub(before.dropped);
        if over.received > 0 || dropped < u64::from(PROBES) {
            return Err(DrillError::did_not_take(
                what,
                &a.host,
                format!("{} of {PROBES} don't-fragment echoes of {} bytes to {} were answered, {dropped} dropped by the fabric (want none answered, {PROBES} dropped)", over.received, mtu + 1, b.host),
            ));
        }
        Ok(())
    }
}
