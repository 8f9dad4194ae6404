//! One module per fault kind, each with its apply, its after-apply measurement and,
//! when it leaves something that deleting the host's namespaces would not remove,
//! the [`Created`](super::Created) record that teardown undoes. Kinds are registered
//! in [`Drill::apply_faults`] below, one line each; the kernel operations they use
//! are in `crate::kernel`, the shared measurement tools in `drill/measure.rs`.
//!
//! - `readback.rs`: sysctl, mtu, route-remove (measured by reading the effect back);
//! - `rate.rs`: tc-rate; `delay.rs`: delay (wire or netem); `ebpf.rs`: ebpf-drop;
//! - `nft.rs`: every nftables kind (drop, reject, loss, limit, connlimit, dnat), one
//!   table per host.
//!
//! `service-config` faults are applied before the service starts: the host's config
//! is written faulty (`drill/apply.rs`, `prepare_host_dir`); nothing to do here.

use std::collections::BTreeSet;

use drill_core::scenario::Fault;

use super::Drill;
use crate::error::Result;
use crate::kernel::Kernel;
use crate::kernel::linux::nft as nft_rules;

mod delay;
mod ebpf;
mod nft;
mod rate;
mod readback;

impl<K: Kernel> Drill<K> {
    /// Applies the network faults in scenario order, measuring each before the next:
    /// a fault that does not take stops the start (the learner would chase a ghost).
    /// A host's nft faults are one table, applied where its first one stands.
    pub(super) async fn apply_faults(&self) -> Result<()> {
        let tables = nft_rules::nft_rules(&self.plan, &self.scenario.faults);
        let mut tables_done = BTreeSet::new();
        for f in &self.scenario.faults {
            // The registry: one line per kind. `None`: the kind recorded its own notes.
            let note = match f {
                Fault::Sysctl { host, key, value } => Some(self.apply_sysctl(host, key, value).await?),
                Fault::Mtu { host, interface, mtu } => Some(self.apply_mtu(host, interface, *mtu).await?),
                Fault::RouteRemove { host, to } => Some(self.apply_route_remove(host, *to).await?),
                Fault::TcRate { host, interface, rate_bps, port } => Some(self.apply_rate(host, interface, *rate_bps, *port).await?),
                Fault::Delay { host, interface, delay_ms, jitter_ms, loss } => Some(self.apply_delay(host, interface, *delay_ms, *jitter_ms, *loss).await?),
                Fault::EbpfDrop { .. } => Some(self.apply_ebpf(f).await?),
                Fault::Nft { host, .. } | Fault::Dnat { host, .. } if tables_done.insert(host.clone()) => self.apply_nft_table(host, &tables[host]).await.map(|()| None)?,
                Fault::Nft { .. } | Fault::Dnat { .. } | Fault::ServiceConfig { .. } => None,
            };
            if let Some(note) = note {
                self.record(f.describe(), note);
            }
        }
        Ok(())
    }
}
