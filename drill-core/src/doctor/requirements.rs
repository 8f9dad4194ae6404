//! What each drill needs of the machine, derived from its compiled plan: the needs every
//! drill has, the eBPF programs its checks load, the binaries and kernel features its
//! faults and services use; hard (it cannot run without) or soft (it runs changed).

use serde::{Deserialize, Serialize};

use super::{MIN_KERNEL, Need, TIMELINE_KERNEL, engine};
use crate::check::{Check, Counted};
use crate::plan::{Mechanism, Plan};
use crate::workload::Workload;

/// What a drill loses without a need.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Without {
    /// The drill cannot start or cannot be judged.
    CannotRun,
    /// It runs, changed like this.
    Changes(String),
}

/// One need of one drill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub need: Need,
    pub without: Without,
}

fn hard(need: Need) -> Requirement {
    Requirement { need, without: Without::CannotRun }
}

fn soft(need: Need, change: &str) -> Requirement {
    Requirement { need, without: Without::Changes(change.into()) }
}

/// The probe programs' tracepoints (drill-ebpf's `PROGRAMS`; a daemon test keeps the two
/// lists equal): (program, tracepoint, a tp_btf program rather than a raw one).
pub const TRACEPOINTS: &[(&str, &str, bool)] = &[
    ("drill_tcpstate", "sock:inet_sock_set_state", false),
    ("drill_drop", "skb:kfree_skb", false),
    ("drill_retransmit", "tcp:tcp_retransmit_skb", false),
    ("drill_rst_sent", "tcp:tcp_send_reset", false),
    ("drill_rst_received", "tcp:tcp_receive_reset", false),
    ("drill_rtt", "tcp:tcp_probe", true),
    ("drill_exec", "sched:sched_process_exec", false),
    ("drill_oom", "oom:mark_victim", false),
    ("drill_enospc", "raw_syscalls:sys_exit", false),
    ("drill_cmd", "sched:sched_process_exec", false),
    ("drill_cmd_exit", "sched:sched_process_exit", false),
];

/// The probe program a check cannot be judged without.
pub fn check_program(c: &Check) -> Option<&'static str> {
    Some(match c {
        Check::TcpStateDwell { .. } => "drill_tcpstate",
        Check::Count { counted: Counted::Drops { .. }, .. } => "drill_drop",
        Check::Count { counted: Counted::Retransmits, .. } => "drill_retransmit",
        Check::Count { counted: Counted::ResetsSent, .. } => "drill_rst_sent",
        Check::Count { counted: Counted::ResetsReceived, .. } => "drill_rst_received",
        Check::Count { counted: Counted::OomKills, .. } => "drill_oom",
        Check::Count { counted: Counted::Enospc, .. } => "drill_enospc",
        // fabric-drops reads the switch's tc classifier (the scheduler-classifier program type, checked for every drill).
        Check::HttpSlo { .. } | Check::Counter { .. } | Check::Processes { .. } | Check::FabricDrops { .. } | Check::ConntrackHeadroom { .. } => return None,
    })
}

fn tracepoint_of(program: &str) -> (&'static str, bool) {
    TRACEPOINTS.iter().find(|(p, ..)| *p == program).map(|(_, t, btf)| (*t, *btf)).unwrap_or(("", false))
}

fn binary(path: &str, package: &str) -> Need {
    Need::Binary { path: path.into(), package: package.into() }
}

const TIMELINE: &str = "the timeline records no commands (the postmortem's command list is empty)";
const DELAY_WIRE: &str = "its delay runs on the userspace delay wire (AF_PACKET in a hidden namespace) instead of netem: the same figures, a little more CPU";

/// Everything drills need whatever their scenario.
fn common() -> Vec<Requirement> {
    vec![
        hard(Need::Kernel(MIN_KERNEL.0, MIN_KERNEL.1)),
        soft(Need::Kernel(TIMELINE_KERNEL.0, TIMELINE_KERNEL.1), TIMELINE),
        // Without BTF the probe object's CO-RE relocations fail: no probe, no watch.
        hard(Need::Btf),
        hard(Need::Cgroup("memory".into())),
        hard(Need::Cgroup("cpu".into())),
        hard(Need::Cgroup("pids".into())),
        hard(Need::LinkType("veth".into())),
        hard(Need::Daemon),
        soft(Need::ProgramType("raw_tracepoint".into()), TIMELINE),
        soft(Need::Tracepoint("sched:sched_process_exec".into()), TIMELINE),
        soft(Need::Tracepoint("sched:sched_process_exit".into()), "the timeline has no exit status of commands"),
        soft(Need::ProgramType("tp_btf".into()), "no smoothed RTT in `drill watch` and `drill status`"),
        soft(Need::Tracepoint("tcp:tcp_probe".into()), "no smoothed RTT in `drill watch` and `drill status`"),
        soft(binary("/usr/bin/tcpdump", "tcpdump"), "the learner has no tcpdump inside hosts"),
        soft(binary("/usr/bin/ss", "iproute2"), "the learner has no ss inside hosts"),
        soft(binary("/usr/bin/curl", "curl"), "the learner has no curl inside hosts"),
    ]
}

/// What one drill needs of the machine, from its compiled plan (compile it with the
/// delay wire: its delay faults then show up whatever the kernel has, see
/// [`Mechanism::DelayWire`]). Common needs come first; the list may repeat a need.
pub fn requirements(plan: &Plan) -> Vec<Requirement> {
    let mut r = common();
    for c in &plan.checks {
        if let Some(p) = check_program(c) {
            let (tp, btf) = tracepoint_of(p);
            r.push(hard(Need::Tracepoint(tp.into())));
            r.push(hard(Need::ProgramType(if btf { "tp_btf" } else { "raw_tracepoint" }.into())));
        }
    }
    if !plan.switches.is_empty() {
        r.push(hard(Need::LinkType("bridge".into())));
    }
    if plan.links.iter().any(|l| l.tunnel.is_some()) {
        r.push(hard(Need::LinkType("vxlan".into())));
    }
    if plan.hosts.iter().any(|h| h.masquerade.is_some()) {
        r.push(hard(Need::Nftables));
    }
    if plan.tls {
        r.push(soft(binary("/usr/bin/openssl", "openssl"), "the learner cannot inspect certificates with openssl inside hosts"));
    }
    if plan.hosts.iter().any(|h| !h.resolv_conf.is_empty()) {
        r.push(soft(binary("/usr/bin/dig", "bind9-dnsutils"), "the learner has no dig inside hosts"));
    }
    for f in &plan.faults {
        match &f.mechanism {
            Mechanism::Nft { .. } | Mechanism::Dnat { .. } => r.push(hard(Need::Nftables)),
            Mechanism::Tbf { .. } => r.extend([hard(Need::Tc), hard(Need::Qdisc("tbf".into()))]),
            Mechanism::Htb { .. } => r.extend([hard(Need::Tc), hard(Need::Qdisc("htb".into()))]),
            Mechanism::Netem { .. } => r.extend([hard(Need::Tc), hard(Need::Qdisc("netem".into()))]),
            Mechanism::DelayWire { .. } => r.push(soft(Need::Qdisc("netem".into()), DELAY_WIRE)),
            Mechanism::EbpfTc { .. } => r.extend([hard(Need::ProgramType("sched_cls".into())), hard(Need::Qdisc("clsact".into()))]),
            // The stand-in is an nft table; the learner reads and cleans the table with conntrack.
            Mechanism::ConntrackTable { .. } => r.extend([hard(Need::Nftables), soft(binary("/usr/sbin/conntrack", "conntrack"), "the learner cannot list or delete conntrack entries inside hosts")]),
            _ => {}
        }
    }
    for h in &plan.hosts {
        for s in &h.services {
            if let Some((path, package)) = s.workload.binary() {
                r.push(hard(binary(path, package)));
            }
            if let Workload::KubeProxy(_) = s.workload {
                // kube-proxy's rules are one `nft -f`; its stale-entry cleanup is conntrack -D.
                r.push(hard(Need::Nftables));
                r.push(hard(binary("/usr/sbin/conntrack", "conntrack")));
            }
        }
    }
    r
}

/// Each scenario's requirements, keyed by its id; a scenario that does not compile is
/// named in the second list with the reason (it cannot run anywhere).
pub fn drill_requirements(scenarios: &[crate::scenario::Scenario]) -> (Vec<(String, Vec<Requirement>)>, Vec<String>) {
    let backends = crate::plan::Backends { delay: crate::plan::DelayBackend::Wire };
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for s in scenarios {
        match crate::plan::compile(s, "000000", 0, backends) {
            Ok(p) => ok.push((s.id.clone(), requirements(&p))),
            Err(e) => bad.push(format!("{}: {e}", s.id)),
        }
    }
    (ok, bad)
}

/// Every need of these drills, each once, in report order.
pub fn all_needs(drills: &[(String, Vec<Requirement>)]) -> Vec<Need> {
    let mut v: Vec<Need> = drills.iter().flat_map(|(_, r)| r.iter().map(|q| q.need.clone())).collect();
    v.extend(common().into_iter().map(|r| r.need));
    v.extend(engine());
    v.sort_by(|a, b| (a.group(), a).cmp(&(b.group(), b)));
    v.dedup();
    v
}
