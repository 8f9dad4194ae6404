//! delay: the delay wire the plan spliced into the link (its hidden namespace made at
//! build time by `create_wires`, its threads a [`Created::Wire`]), or netem where the
//! kernel has it (it goes with the host's namespace). Measured by echo round trips
//! before and after (`drill/measure.rs`).

use std::time::Duration;

use drill_core::plan::Mechanism;

use super::super::{Created, Drill, Env};
use crate::error::Result;
use crate::kernel::{Kernel, Splice};

impl<K: Kernel> Drill<K> {
    /// The hidden namespaces of the plan's delay wires, and where each is spliced.
    pub(in crate::drill) async fn create_wires(&mut self, env: &Env<'_, K>) -> Result<Vec<Splice>> {
        let wires: Vec<(String, String, String)> = self
            .plan
            .faults
            .iter()
            .filter_map(|s| match &s.mechanism {
                Mechanism::DelayWire { interface, netns, .. } => Some((s.host.clone(), interface.clone(), netns.clone())),
                _ => None,
            })
            .collect();
        let mut splices = Vec::new();
        for (host, iface, netns) in wires {
            self.journal.netns.push(netns.clone());
            self.journal.save(env.state)?;
            self.kernel.create_netns(&netns).await?;
            self.created(Created::Netns(netns.clone()));
            splices.push(Splice { host, iface, netns });
        }
        Ok(splices)
    }

    pub(super) fn apply_wire(&self, wire: &str, delay_ms: f64, jitter_ms: f64, loss: f64) -> Result<String> {
        self.kernel.set_wire(wire, Duration::from_secs_f64(delay_ms / 1e3), Duration::from_secs_f64(jitter_ms / 1e3), loss)?;
        Ok(format!("userspace delay wire {wire} (this kernel has no netem) set to {delay_ms} ms +-{jitter_ms} ms, {}% loss", loss * 100.0))
    }

    pub(super) async fn apply_netem(&self, host: &str, iface: &str, delay_ms: f64, jitter_ms: f64, loss: f64) -> Result<String> {
        self.kernel.set_netem(&self.host(host)?.netns, host, iface, delay_ms, jitter_ms, loss).await?;
        Ok(format!("netem on {iface}: {delay_ms} ms +-{jitter_ms} ms, {}% loss", loss * 100.0))
    }
}
