//! delay: the delay wire spliced for it at build time (`create_wires`) or netem
//! where the kernel has it, measured by ping RTT before and after. The wire's
//! threads are a [`Created::Wire`](super::super::Created) of the build; netem goes
//! with the host's namespace.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::anyhow;
use drill_core::scenario::Fault;

use super::super::measure::{LOSS_PINGS, RTT_INTERVAL_SECS, RTT_PINGS};
use super::super::{Created, Drill, Env};
use crate::error::{DrillError, Result};
use crate::kernel::linux::faults;
use crate::kernel::{DelayBackend, Kernel, Splice};

impl<K: Kernel> Drill<K> {
    /// Delay faults: netem when the kernel has it, else a delay wire spliced into the
    /// link (a hidden namespace per delayed interface).
    pub(in crate::drill) async fn create_wires(&mut self, env: &Env<'_, K>) -> Result<Vec<Splice>> {
        let delays: Vec<(String, String)> =
            self.scenario.faults.iter().filter_map(|f| if let Fault::Delay { host, interface, .. } = f { Some((host.clone(), interface.clone())) } else { None }).collect();
        let mut splices = Vec::new();
        let Some(first) = self.hosts.first() else { return Ok(splices) };
        if delays.is_empty() || self.kernel.delay_backend(&first.netns).await != DelayBackend::Wire {
            return Ok(splices);
        }
        for (host, iface) in delays {
            let name = drill_core::plan::wire_netns_name(&self.id, &host, &iface);
            self.journal.netns.push(name.clone());
            self.journal.save(env.state)?;
            self.kernel.create_netns(&name).await?;
            self.created(Created::Netns(name.clone()));
            splices.push(Splice { host, iface, netns: name });
        }
        Ok(splices)
    }

    /// Sets a delay (the wire spliced for it, or netem) between two ping RTT
    /// measurements from the host to its neighbour on that interface.
    pub(super) async fn apply_delay(&self, host: &str, iface: &str, delay_ms: f64, jitter_ms: f64, loss: f64) -> Result<String> {
        let (addr, base) = self.delay_baseline(host, iface).await?;
        let wire = drill_core::plan::wire_netns_name(&self.id, host, iface);
        let backend = if self.created_so_far().contains(&Created::Wire(wire.clone())) {
            self.kernel.set_wire(&wire, Duration::from_secs_f64(delay_ms / 1e3), Duration::from_secs_f64(jitter_ms / 1e3), loss)?;
            DelayBackend::Wire
        } else {
            self.kernel.set_netem(&self.host(host)?.netns, host, iface, delay_ms, jitter_ms, loss).await?;
            DelayBackend::Netem
        };
        self.measure_delay(host, iface, addr, base, (delay_ms, jitter_ms, loss), backend).await
    }

    /// The ping RTT before a delay is set: the neighbour's address and the RTT.
    async fn delay_baseline(&self, host: &str, iface: &str) -> Result<(IpAddr, f64)> {
        let (_, addr) = self.neighbour(host, iface)?;
        let base = self.kernel.ping_rtt(&self.host(host)?.netns, addr, RTT_PINGS, RTT_INTERVAL_SECS).await?;
        let base = base.ok_or_else(|| DrillError::Internal(anyhow!("host {host}: no ping reply from {addr} before the delay was set")))?;
        Ok((addr, base))
    }

    /// Measures a delay just set: the added ping RTT must be about the delay
    /// ([`faults::delay_within`]), the loss about the loss asked.
    async fn measure_delay(&self, host: &str, iface: &str, addr: IpAddr, base: f64, (delay_ms, jitter_ms, loss): (f64, f64, f64), backend: DelayBackend) -> Result<String> {
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
}
