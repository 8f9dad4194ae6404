//! ebpf-drop: the `cls_main` classifier attached to a host's interface, its rule
//! in a BPF map (measured from outside, `drill/measure.rs`; its own counters are in
//! the note). Its program and maps are a [`Created::TcFault`]: teardown releases them.

use anyhow::anyhow;
use drill_core::plan::{FaultStep, Mechanism};
use drill_core::scenario::NftSource;

use super::super::{Created, Drill};
use crate::error::{DrillError, Result};
use crate::kernel::Kernel;
use crate::kernel::linux::tcfault;

impl<K: Kernel> Drill<K> {
    pub(super) async fn apply_ebpf(&self, step: &FaultStep) -> Result<String> {
        let Mechanism::EbpfTc { interface, direction, proto, dport, source, drop_ppm, program } = &step.mechanism else {
            return Err(DrillError::Internal(anyhow!("apply_ebpf takes eBPF steps, not `{}`", step.summary)));
        };
        let host = step.host.as_str();
        let from = source.map(NftSource::Prefix);
        let rule = tcfault::rule(&self.plan, proto.as_deref(), *dport, from.as_ref(), f64::from(*drop_ppm) / 1e6)
            .map_err(|e| DrillError::kernel("building the eBPF fault's rule", Some(host), Some(interface), e))?;
        let netns = self.host(host)?.netns.clone();
        self.kernel.attach_tc_fault(&netns, host, interface, direction == "egress", rule).await?;
        self.created(Created::TcFault { host: host.to_string(), netns: netns.clone(), iface: interface.clone() });
        let c = self.kernel.tc_fault_counters(&netns, interface)?;
        Ok(format!("tc clsact {direction} bpf {program}; its counters so far: {} packets seen, {} matched, {} dropped", c.seen, c.matched, c.dropped))
    }
}
