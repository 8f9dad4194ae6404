//! A switch's path MTU: `fabric_mtu` (drill-ebpf/src/bpf/pathmtu.bpf.c) attached as a
//! clsact direct-action classifier on the ingress of every port of the switch, in the
//! switch's own namespace (no host can enter it). One object per switch: its ports
//! share the program, its config (the MTU) and its counters. Deleting the switch's
//! namespace removes the filters with the ports; [`Fabric::forget`] lets go of the maps.

use anyhow::{Context, Result, anyhow};
use aya::maps::{Array, PerCpuArray};
use aya::programs::SchedClassifier;
use aya::programs::tc::{NlOptions, SchedClassifierLink, TcAttachOptions, TcAttachType};
use aya::{Ebpf, EbpfLoader};
use drill_ebpf::{PathMtuConfig, PathMtuCounters, pathmtu};

use crate::kernel::linux::netns::NetnsWorker;

/// One switch's attached classifier.
pub struct Fabric {
    ebpf: Option<Ebpf>,
    links: Vec<SchedClassifierLink>,
    pub switch: String,
}

impl Fabric {
    /// Loads the program with `mtu` and attaches it to the ingress of every port (in
    /// the worker's namespace, the switch's), adding each port's clsact qdisc.
    pub async fn attach(worker: &NetnsWorker, switch: &str, ports: &[String], mtu: u32) -> Result<Fabric> {
        let ports = ports.to_vec();
        let (ebpf, links) = worker
            .run(move || -> Result<(Ebpf, Vec<SchedClassifierLink>)> {
                let mut ebpf = EbpfLoader::new().load(drill_ebpf::PATHMTU_OBJ).context("loading the path MTU object")?;
                Array::<_, PathMtuConfig>::try_from(ebpf.map_mut(pathmtu::CONFIG).ok_or_else(|| anyhow!("no map {}", pathmtu::CONFIG))?)?
                    .set(0, PathMtuConfig { mtu, pad: 0 }, 0)
                    .context("writing the path MTU")?;
                let prog: &mut SchedClassifier = ebpf.program_mut(pathmtu::PROGRAM).ok_or_else(|| anyhow!("no program {}", pathmtu::PROGRAM))?.try_into()?;
                prog.load().context("loading fabric_mtu into the kernel")?;
                let mut links = Vec::new();
                for p in &ports {
                    if let Err(e) = aya::programs::tc::qdisc_add_clsact(p)
                        && !matches!(&e, aya::programs::tc::TcError::NetlinkError(n) if n.raw_os_error() == Some(libc::EEXIST))
                    {
                        return Err(anyhow!("adding a clsact qdisc to port {p}: {e}"));
                    }
                    let id = prog.attach_with_options(p, TcAttachType::Ingress, TcAttachOptions::Netlink(NlOptions::default())).with_context(|| format!("attaching fabric_mtu to port {p}"))?;
                    links.push(prog.take_link(id)?);
                }
                Ok((ebpf, links))
            })
            .await?
            .with_context(|| format!("switch {switch}: path MTU {mtu}"))?;
        Ok(Fabric { ebpf: Some(ebpf), links, switch: switch.to_string() })
    }

    /// What the fabric saw and dropped, summed over CPUs.
    pub fn counters(&self) -> Result<PathMtuCounters> {
        let ebpf = self.ebpf.as_ref().ok_or_else(|| anyhow!("the fabric's object is gone"))?;
        let m = ebpf.map(pathmtu::COUNTERS).ok_or_else(|| anyhow!("no map {}", pathmtu::COUNTERS))?;
        let per_cpu = PerCpuArray::<_, PathMtuCounters>::try_from(m)?.get(&0, 0)?;
        Ok(per_cpu.iter().fold(PathMtuCounters::default(), |a, c| a.merge(*c)))
    }

    /// Lets go without detaching: the filters go with the switch's namespace.
    pub fn forget(mut self) {
        for l in self.links.drain(..) {
            std::mem::forget(l);
        }
        self.ebpf.take();
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        // Never detach from whatever namespace this thread is in.
        for l in self.links.drain(..) {
            std::mem::forget(l);
        }
    }
}
