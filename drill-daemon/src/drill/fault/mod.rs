//! Applying the plan's fault steps ([`drill_core::plan::FaultStep`]): one module per
//! mechanism family, each with its apply and, when it leaves something that deleting
//! the host's namespaces would not remove, the [`Created`](super::Created) record that
//! teardown undoes. Every step runs the same way: the control of its measurement
//! (before), the apply, the measurement (after, `drill/measure.rs`); a step that does
//! not measure as planned stops the start. Mechanisms are dispatched in
//! [`Drill::apply_faults`] below, one line each.
//!
//! - `readback.rs`: sysctl, mtu, route-remove, and service-config (read back from the
//!   running service; its faulty config is written before the host starts,
//!   `drill/apply.rs`);
//! - `rate.rs`: tbf and htb; `delay.rs`: the delay wire (spliced at build) or netem;
//!   `ebpf.rs`: the tc classifier; `nft.rs`: rules and port forwards, one table per host.

use std::collections::BTreeMap;

use drill_core::plan::Mechanism;

use super::Drill;
use crate::error::Result;
use crate::kernel::Kernel;
use crate::kernel::linux::nft::HostNft;

pub use conntrack::{max_file, write_max_file};

mod conntrack;
mod delay;
mod ebpf;
mod nft;
mod rate;
mod readback;

impl<K: Kernel> Drill<K> {
    /// Applies the plan's fault steps in order, each measured before the next: a fault
    /// that does not take stops the start (the learner would chase a ghost).
    pub(super) async fn apply_faults(&self) -> Result<()> {
        let mut tables: BTreeMap<String, HostNft> = BTreeMap::new();
        for step in &self.plan.faults {
            let control = self.control(step).await?;
            let host = step.host.as_str();
            // The registry: one line per mechanism.
            let how = match &step.mechanism {
                Mechanism::ServiceConfig { service, .. } => self.read_back_service(host, service).await?,
                Mechanism::Nft { .. } | Mechanism::Dnat { .. } => self.apply_nft(step, tables.entry(host.to_string()).or_default()).await?,
                Mechanism::Sysctl { key, value } => self.apply_sysctl(host, key, value).await?,
                Mechanism::ResolvConf { text } => self.read_back_resolv_conf(host, text)?,
                Mechanism::DeletedOpenFile { service, path } => self.apply_deleted_open_file(host, service, path).await?,
                Mechanism::Mtu { interface, mtu } => self.apply_mtu(host, interface, *mtu).await?,
                Mechanism::RouteRemove { to } => self.apply_route_remove(host, *to).await?,
                Mechanism::Tbf { interface, rate_bps } => self.apply_rate(host, interface, *rate_bps, None).await?,
                Mechanism::Htb { interface, port, rate_bps } => self.apply_rate(host, interface, *rate_bps, Some(*port)).await?,
                Mechanism::Netem { interface, delay_ms, jitter_ms, loss } => self.apply_netem(host, interface, *delay_ms, *jitter_ms, *loss).await?,
                Mechanism::DelayWire { netns, delay_ms, jitter_ms, loss, .. } => self.apply_wire(netns, *delay_ms, *jitter_ms, *loss)?,
                Mechanism::EbpfTc { .. } => self.apply_ebpf(step).await?,
                Mechanism::ConntrackTable { max, .. } => self.apply_conntrack(host, *max).await?,
            };
            let seen = self.measure(step, &control).await?;
            self.record(step.summary.clone(), format!("{how}; {seen}"));
        }
        Ok(())
    }
}
