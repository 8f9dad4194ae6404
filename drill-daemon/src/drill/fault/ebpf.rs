//! ebpf-drop: the `drill_tc_fault` classifier attached to a host's interface,
//! measured by pings (random loss) or a TCP connection that times out (a full drop).
//! Its program and maps are a [`Created::TcFault`]: teardown releases them.

use std::net::SocketAddr;

use anyhow::anyhow;
use drill_core::scenario::{Fault, NftSource};

use super::super::measure::{CONNECT_TIMEOUT, LOSS_PINGS, no_ipv4};
use super::super::{Created, Drill};
use crate::error::{DrillError, Result};
use crate::kernel::linux::tcfault;
use crate::kernel::{Connect, Kernel};

impl<K: Kernel> Drill<K> {
    pub(super) async fn apply_ebpf(&self, f: &Fault) -> Result<String> {
        let Fault::EbpfDrop { host, interface, egress, proto, dport, from, loss } = f else {
            return Err(DrillError::Internal(anyhow!("apply_ebpf takes eBPF faults, not `{}`", f.describe())));
        };
        let rule = tcfault::rule(&self.plan, proto.as_deref(), *dport, from.as_ref(), *loss).map_err(|e| DrillError::kernel("building the eBPF fault's rule", Some(host), Some(interface), e))?;
        let netns = self.host(host)?.netns.clone();
        self.kernel.attach_tc_fault(&netns, host, interface, *egress, rule).await?;
        self.created(Created::TcFault { host: host.clone(), netns, iface: interface.clone() });
        self.measure_ebpf(f).await
    }

    /// Measures an eBPF drop from outside: random loss by pings, a full TCP drop by a
    /// connection that times out; the fault's own counters are logged too.
    async fn measure_ebpf(&self, f: &Fault) -> Result<String> {
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
}
