//! The eBPF fault: `cls_main` (drill-ebpf/src/bpf/tcfault.bpf.c) attached as a
//! clsact direct-action classifier on one interface of a host. Each fault loads its
//! own copy of the object, so its rule map and counters are its own; the rule is
//! rewritten live to retune or pause the fault.
//!
//! It is attached over netlink (cls_bpf), not TCX, so the learner finds it where an
//! engineer looks: `tc filter show dev eth0 ingress` names `cls_main`, and
//! `tc qdisc del dev eth0 clsact` removes it. Attaching and detaching run on the
//! host's namespace worker: aya talks netlink in the calling thread's namespace.

use std::net::IpAddr;

use anyhow::{Context, Result, anyhow};
use aya::maps::{Array, PerCpuArray};
use aya::programs::tc::{NlOptions, SchedClassifierLink, TcAttachOptions, TcAttachType};
use aya::programs::{Link as _, SchedClassifier};
use aya::{Ebpf, EbpfLoader};
use drill_core::plan::Plan;
use drill_core::scenario::NftSource;
use drill_ebpf::{TcCounters, TcRule, tcfault};

use crate::kernel::linux::netns::NetnsWorker;

/// One attached eBPF fault. Drop it only through [`TcFault::remove`] or
/// [`TcFault::forget`]: a detach must run inside the host's namespace.
pub struct TcFault {
    ebpf: Option<Ebpf>,
    link: Option<SchedClassifierLink>,
    pub host: String,
    pub iface: String,
    pub egress: bool,
}

/// The map rule for a fault's match and drop probability.
pub fn rule(plan: &Plan, proto: Option<&str>, dport: Option<u16>, from: Option<&NftSource>, loss: f64) -> Result<TcRule> {
    let (saddr, mask) = match from {
        None => (0, 0),
        Some(NftSource::Host(h)) => match plan.host_address(h, false) {
            Some(IpAddr::V4(a)) => (u32::from_ne_bytes(a.octets()), u32::MAX),
            _ => return Err(anyhow!("host {h} has no IPv4 address to match")),
        },
        Some(NftSource::Prefix(c)) => match c.addr {
            IpAddr::V4(a) => {
                let m = if c.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(c.prefix)) };
                (u32::from_ne_bytes((u32::from(a) & m).to_be_bytes()), u32::from_ne_bytes(m.to_be_bytes()))
            }
            IpAddr::V6(_) => return Err(anyhow!("the eBPF fault matches IPv4 sources only")),
        },
    };
    let proto = match proto {
        Some("tcp") => 6,
        Some("udp") => 17,
        Some("icmp") => 1,
        Some(p) => return Err(anyhow!("protocol {p} is not supported")),
        None => 0,
    };
    Ok(TcRule { enabled: 1, drop_ppm: (loss.clamp(0.0, 1.0) * 1e6).round() as u32, saddr, saddr_mask: mask, dport: dport.unwrap_or(0), proto, pad: 0 })
}

impl TcFault {
    /// Loads a fresh copy of the program, writes `rule`, and attaches it to `iface`
    /// of the worker's namespace (adding the clsact qdisc when missing), replacing any
    /// `cls_main` already attached there (apply is idempotent).
    pub async fn attach(worker: &NetnsWorker, host: &str, iface: &str, egress: bool, rule: TcRule) -> Result<TcFault> {
        let ifname = iface.to_string();
        let (ebpf, link) = worker
            .run(move || -> Result<(Ebpf, SchedClassifierLink)> {
                let mut ebpf = EbpfLoader::new().load(drill_ebpf::TCFAULT_OBJ).context("loading the eBPF fault object")?;
                Array::<_, TcRule>::try_from(ebpf.map_mut(tcfault::RULE).ok_or_else(|| anyhow!("no map {}", tcfault::RULE))?)?.set(0, rule, 0).context("writing the rule")?;
                let prog: &mut SchedClassifier = ebpf.program_mut(tcfault::PROGRAM).ok_or_else(|| anyhow!("no program {}", tcfault::PROGRAM))?.try_into()?;
                prog.load().context("loading cls_main into the kernel")?;
                if let Err(e) = aya::programs::tc::qdisc_add_clsact(&ifname) {
                    // EEXIST: the interface has a clsact qdisc already.
                    if !matches!(&e, aya::programs::tc::TcError::AlreadyAttached) && !matches!(&e, aya::programs::tc::TcError::NetlinkError(n) if n.raw_os_error() == Some(libc::EEXIST)) {
                        return Err(anyhow!("adding a clsact qdisc to {ifname}: {e}"));
                    }
                }
                let kind = if egress { TcAttachType::Egress } else { TcAttachType::Ingress };
                // Replace, not add: a cls_main already on this hook goes first (none
                // there is the usual case, reported as NotFound).
                if let Err(e) = aya::programs::tc::qdisc_detach_program(&ifname, kind, tcfault::PROGRAM)
                    && !matches!(&e, aya::programs::tc::TcError::IoError(io) if io.kind() == std::io::ErrorKind::NotFound)
                {
                    return Err(anyhow!("removing an earlier cls_main from {ifname}: {e}"));
                }
                let id = prog.attach_with_options(&ifname, kind, TcAttachOptions::Netlink(NlOptions::default())).with_context(|| format!("attaching to {ifname}"))?;
                let link = prog.take_link(id)?;
                Ok((ebpf, link))
            })
            .await?
            .with_context(|| format!("host {host}: eBPF fault on {iface}"))?;
        Ok(TcFault { ebpf: Some(ebpf), link: Some(link), host: host.to_string(), iface: iface.to_string(), egress })
    }

    fn ebpf(&self) -> &Ebpf {
        self.ebpf.as_ref().expect("a live fault has its object")
    }

    /// Rewrites the rule: the next packet sees it (retune or pause live).
    pub fn set_rule(&mut self, rule: TcRule) -> Result<()> {
        let m = self.ebpf.as_mut().expect("a live fault has its object").map_mut(tcfault::RULE).ok_or_else(|| anyhow!("no map {}", tcfault::RULE))?;
        Array::<_, TcRule>::try_from(m)?.set(0, rule, 0).context("rewriting the eBPF fault's rule")
    }

    /// The current rule.
    pub fn get_rule(&self) -> Result<TcRule> {
        let m = self.ebpf().map(tcfault::RULE).ok_or_else(|| anyhow!("no map {}", tcfault::RULE))?;
        Ok(Array::<_, TcRule>::try_from(m)?.get(&0, 0)?)
    }

    /// Packets seen, matched and dropped, summed over CPUs.
    pub fn counters(&self) -> Result<TcCounters> {
        let m = self.ebpf().map(tcfault::COUNTERS).ok_or_else(|| anyhow!("no map {}", tcfault::COUNTERS))?;
        let per_cpu = PerCpuArray::<_, TcCounters>::try_from(m)?.get(&0, 0)?;
        Ok(per_cpu.iter().fold(TcCounters::default(), |a, c| TcCounters { seen: a.seen + c.seen, matched: a.matched + c.matched, dropped: a.dropped + c.dropped }))
    }

    /// Detaches the classifier inside the host's namespace. A filter the learner
    /// already removed (`tc filter del`, `tc qdisc del ... clsact`) is not an error.
    pub async fn remove(mut self, worker: &NetnsWorker) -> Result<()> {
        let link = self.link.take();
        let ebpf = self.ebpf.take();
        let host = self.host.clone();
        worker
            .run(move || -> Result<()> {
                let r = match link {
                    Some(l) => match l.detach() {
                        Ok(()) => Ok(()),
                        // The filter, or its whole clsact qdisc, is gone already.
                        Err(e) if ["No such file", "os error 2", "doesn't exist", "Parent Qdisc"].iter().any(|m| format!("{e:?}").contains(m)) => Ok(()),
                        Err(e) => Err(anyhow!("{e}")),
                    },
                    None => Ok(()),
                };
                drop(ebpf);
                r
            })
            .await?
            .with_context(|| format!("host {host}: detaching the eBPF fault"))
    }

    /// Lets go of the fault without detaching it: for teardown, where deleting the
    /// namespace removes the classifier with the interface.
    pub fn forget(mut self) {
        if let Some(l) = self.link.take() {
            std::mem::forget(l);
        }
        // The object's program fd closes here; the filter (if any) keeps its own
        // reference until the namespace goes.
        self.ebpf.take();
    }
}

impl Drop for TcFault {
    fn drop(&mut self) {
        // Never detach from whatever namespace this thread is in: forget the link.
        if let Some(l) = self.link.take() {
            std::mem::forget(l);
        }
    }
}
