//! `drill doctor`: what this machine offers drills, and what each missing piece disables.
//!
//! Pure: the facts come in from outside (drilld gathers what needs root behind
//! `GET /v1/doctor`, the CLI what any user can see: the socket, files, `/proc`), the
//! requirements are derived from each scenario's compiled plan ([`requirements`]), and
//! [`report`] joins them: for every check its status, the drills it keeps from running
//! or changes, how to get it, and the exit code (1 when a built-in drill cannot run).
//!
//! A [`Need`] is one line of the report; its stable id ([`Need::id`]) is what `--json`
//! carries and what the daemon's facts are keyed by.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::check::{Check, Counted};
use crate::plan::{Mechanism, Plan};
use crate::workload::Workload;

/// Version of the `--json` document (bumped on an incompatible change).
pub const JSON_VERSION: u32 = 1;

/// Oldest kernel the probes load on: BPF ring buffers (5.8).
pub const MIN_KERNEL: (u32, u32) = (5, 8);
/// Oldest kernel the command capture loads on: `bpf_loop` walks the cwd (5.17).
pub const TIMELINE_KERNEL: (u32, u32) = (5, 17);

/// How a report groups its checks (in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    Kernel,
    Ebpf,
    Network,
    Cgroups,
    Packages,
    Daemon,
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Group::Kernel => "kernel",
            Group::Ebpf => "eBPF",
            Group::Network => "network (nftables, tc, links)",
            Group::Cgroups => "cgroups",
            Group::Packages => "packages",
            Group::Daemon => "daemon",
        })
    }
}

/// Something a drill may need of the machine: one check of the report.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Need {
    /// Linux at least this (major, minor).
    Kernel(u32, u32),
    /// `/sys/kernel/btf/vmlinux` (CO-RE relocations, tp_btf).
    Btf,
    /// A tracepoint, `category:name` (e.g. `sock:inet_sock_set_state`).
    Tracepoint(String),
    /// An eBPF program type the engine loads: `raw_tracepoint`, `tp_btf`, `sched_cls`.
    ProgramType(String),
    /// nftables: the `nft` command and the kernel's nf_tables.
    Nftables,
    /// The `tc` command (iproute2).
    Tc,
    /// A queueing discipline: `netem`, `htb`, `tbf`, `clsact`.
    Qdisc(String),
    /// A link type: `veth`, `bridge`, `vxlan`.
    LinkType(String),
    /// A cgroup controller (`memory`, `cpu`, `pids`), on v1 or v2.
    Cgroup(String),
    /// A program from a Debian package.
    Binary { path: String, package: String },
    /// drilld reachable on its socket by the calling user (or startable by them).
    Daemon,
    /// What gives hosts their own view (docs/hosts.md): `fuse` (their /dev/kmsg),
    /// `lxcfs` (their /proc/meminfo, cpuinfo, uptime).
    HostView(String),
}

impl Need {
    /// The stable id of the check (`--json`, the daemon's facts).
    pub fn id(&self) -> String {
        match self {
            Need::Kernel(a, b) => format!("kernel:{a}.{b}"),
            Need::Btf => "btf".into(),
            Need::Tracepoint(t) => format!("tracepoint:{t}"),
            Need::ProgramType(p) => format!("program-type:{p}"),
            Need::Nftables => "nftables".into(),
            Need::Tc => "tc".into(),
            Need::Qdisc(q) => format!("qdisc:{q}"),
            Need::LinkType(l) => format!("link:{l}"),
            Need::Cgroup(c) => format!("cgroup:{c}"),
            Need::Binary { path, .. } => format!("binary:{path}"),
            Need::Daemon => "daemon".into(),
            Need::HostView(v) => format!("host-view:{v}"),
        }
    }

    pub fn group(&self) -> Group {
        match self {
            Need::Kernel(..) | Need::Btf => Group::Kernel,
            Need::Tracepoint(_) | Need::ProgramType(_) => Group::Ebpf,
            Need::Nftables | Need::Tc | Need::Qdisc(_) | Need::LinkType(_) => Group::Network,
            Need::Cgroup(_) => Group::Cgroups,
            Need::Binary { .. } => Group::Packages,
            Need::Daemon => Group::Daemon,
            Need::HostView(v) if v == "fuse" => Group::Kernel,
            Need::HostView(_) => Group::Packages,
        }
    }

    /// What the check is, for people.
    pub fn title(&self) -> String {
        match self {
            Need::Kernel(a, b) => format!("Linux {a}.{b} or newer"),
            Need::Btf => "BTF (/sys/kernel/btf/vmlinux)".into(),
            Need::Tracepoint(t) => format!("tracepoint {t}"),
            Need::ProgramType(p) => format!("program type {p}"),
            Need::Nftables => "nftables (nft, nf_tables)".into(),
            Need::Tc => "tc (iproute2)".into(),
            Need::Qdisc(q) => format!("qdisc {q}"),
            Need::LinkType(l) => format!("link type {l}"),
            Need::Cgroup(c) => format!("cgroup controller {c}"),
            Need::Binary { path, package } => format!("{path} ({package})"),
            Need::Daemon => "drilld and its socket".into(),
            Need::HostView(v) if v == "fuse" => "FUSE (/dev/fuse, the fuse file system): each host's own /dev/kmsg for dmesg".into(),
            Need::HostView(v) => format!("{v}: each host's own /proc/meminfo, cpuinfo, uptime, loadavg"),
        }
    }

    /// How to get it.
    pub fn fix(&self) -> String {
        match self {
            Need::Kernel(a, b) => format!("boot a Linux {a}.{b} or newer kernel"),
            Need::Btf => "boot a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian, Ubuntu and Fedora kernels are)".into(),
            Need::Tracepoint(t) => format!("a kernel with the {t} tracepoint (CONFIG_TRACEPOINTS; it came with Linux 4.x-5.x, so a newer kernel has it)"),
            Need::ProgramType(p) => match p.as_str() {
                "tp_btf" => "a kernel with CONFIG_BPF_SYSCALL, CONFIG_DEBUG_INFO_BTF and BPF trampolines (x86_64/arm64, Linux 5.5+); run drilld as root".into(),
                "sched_cls" => "a kernel with CONFIG_NET_CLS_BPF and CONFIG_NET_SCH_INGRESS; run drilld as root".into(),
                _ => "a kernel with CONFIG_BPF_SYSCALL and CONFIG_BPF_EVENTS; run drilld as root (CAP_BPF, CAP_PERFMON)".into(),
            },
            Need::Nftables => "apt-get install nftables (and a kernel with CONFIG_NF_TABLES, CONFIG_NFT_NAT, CONFIG_NFT_CT)".into(),
            Need::Tc => "apt-get install iproute2".into(),
            Need::Qdisc(q) => {
                let cfg = match q.as_str() {
                    "netem" => "NET_SCH_NETEM",
                    "htb" => "NET_SCH_HTB",
                    "tbf" => "NET_SCH_TBF",
                    _ => "NET_SCH_INGRESS",
                };
                format!("modprobe sch_{q} (a kernel with CONFIG_{cfg}; Debian's ship it as a module)")
            }
            Need::LinkType(l) => format!("modprobe {l} (a kernel with CONFIG_{})", l.to_uppercase()),
            Need::Cgroup(c) => format!("enable the {c} controller: on cgroup v2 add +{c} to /sys/fs/cgroup/cgroup.subtree_control; on v1 mount it (mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c})"),
            Need::Binary { package, .. } => format!("apt-get install {package} (or `cargo xtask setup`)"),
            Need::Daemon => "run drill as root (sudo), or join the `drill` group (sudo usermod -aG drill $USER, then log in again)".into(),
            Need::HostView(v) if v == "fuse" => "modprobe fuse (a kernel with CONFIG_FUSE_FS); without it dmesg in a host shows nothing".into(),
            Need::HostView(v) => format!("apt-get install {v}; without it hosts show the machine's memory, CPUs and uptime"),
        }
    }
}

impl Need {
    /// The fault and check kinds that cannot be used without it (whatever the pack).
    pub fn kinds(&self) -> Vec<&'static str> {
        match self {
            Need::Nftables => vec!["nft-drop", "nft-reject", "nft-loss", "nft-limit", "nft-conn-limit", "nft-dnat", "masquerade", "kube-proxy"],
            Need::Tc => vec!["tc-rate"],
            Need::Qdisc(q) if q == "tbf" || q == "htb" => vec!["tc-rate"],
            Need::Qdisc(q) if q == "clsact" => vec!["ebpf-drop"],
            Need::ProgramType(p) if p == "sched_cls" => vec!["ebpf-drop"],
            Need::LinkType(l) if l == "bridge" => vec!["switches"],
            Need::LinkType(l) if l == "vxlan" => vec!["tunnel = \"vxlan\""],
            Need::Tracepoint(t) => match TRACEPOINTS.iter().find(|(_, tp, _)| tp == t).map(|(p, ..)| *p) {
                Some("drill_tcpstate") => vec!["tcp-state-dwell"],
                Some("drill_drop") => vec!["drops"],
                Some("drill_retransmit") => vec!["retransmits"],
                Some("drill_rst_sent") | Some("drill_rst_received") => vec!["resets"],
                Some("drill_oom") => vec!["oom-kills"],
                Some("drill_enospc") => vec!["enospc"],
                _ => vec![],
            },
            Need::ProgramType(p) if p == "raw_tracepoint" => vec!["tcp-state-dwell", "drops", "retransmits", "resets", "oom-kills", "enospc"],
            _ => vec![],
        }
    }
}

/// What the engine can use beyond what the built-in drills need: checked always, so a
/// pack author learns what their kinds need here.
fn engine() -> Vec<Need> {
    let mut v: Vec<Need> = TRACEPOINTS.iter().map(|(_, t, _)| Need::Tracepoint(t.to_string())).collect();
    v.extend(["raw_tracepoint", "tp_btf", "sched_cls"].map(|p| Need::ProgramType(p.into())));
    v.extend([Need::Nftables, Need::Tc]);
    v.extend(["netem", "htb", "tbf", "clsact"].map(|q| Need::Qdisc(q.into())));
    v.extend(["veth", "bridge", "vxlan"].map(|l| Need::LinkType(l.into())));
    v.extend(["fuse", "lxcfs"].map(|h| Need::HostView(h.into())));
    v
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.title())
    }
}

/// Whether a fact holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    Missing,
    /// Not checked: it needs the daemon or root.
    Unknown,
}

/// One fact about the machine, as gathered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    /// [`Need::id`].
    pub id: String,
    pub status: Status,
    /// What was seen (a version, where a controller is mounted, the kernel's error).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Fact {
    pub fn new(need: &Need, ok: bool, detail: impl Into<String>) -> Fact {
        Fact { id: need.id(), status: if ok { Status::Ok } else { Status::Missing }, detail: detail.into() }
    }

    pub fn unknown(need: &Need, why: impl Into<String>) -> Fact {
        Fact { id: need.id(), status: Status::Unknown, detail: why.into() }
    }
}

/// The daemon's answer to `GET /v1/doctor`: what it found with its privileges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub facts: Vec<Fact>,
}

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

/// How serious a check's result is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Ok,
    /// Missing, but no drill needs it, or every drill that does runs without it (changed).
    Warning,
    /// Missing, and a drill cannot run.
    Error,
    /// Not checked.
    Unknown,
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckLine {
    pub id: String,
    pub group: Group,
    pub title: String,
    pub status: Status,
    pub level: Level,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Drills that cannot run without it (missing only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disables: Vec<String>,
    /// What changes in the drills that run without it, and which (missing only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// Fault and check kinds it is needed for (missing only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// How to get it (missing or unknown only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fix: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub what: String,
    pub drills: Vec<String>,
}

/// The whole report (`drill doctor --json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    pub checks: Vec<CheckLine>,
    /// Built-in drills that cannot run here, each with the ids of the checks that stop it.
    pub cannot_run: BTreeMap<String, Vec<String>>,
    /// How many built-in drills were considered.
    pub drills: usize,
    /// Checks not made (they need the daemon or root).
    pub unchecked: usize,
    /// 0: every built-in drill can run (perhaps changed); 1: one cannot.
    pub exit_code: u8,
}

/// Joins facts and the drills' requirements. A need no fact speaks of is unknown.
pub fn report(facts: &[Fact], drills: &[(String, Vec<Requirement>)]) -> Report {
    let by_id: BTreeMap<&str, &Fact> = facts.iter().map(|f| (f.id.as_str(), f)).collect();
    let mut cannot_run: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut checks = Vec::new();
    for need in all_needs(drills) {
        let id = need.id();
        let fact = by_id.get(id.as_str());
        let status = fact.map_or(Status::Unknown, |f| f.status);
        let detail = fact.map_or_else(|| "not checked".to_string(), |f| f.detail.clone());
        let mut disables: Vec<String> = Vec::new();
        let mut changes: Vec<Change> = Vec::new();
        if status == Status::Missing {
            for (drill, reqs) in drills {
                for q in reqs.iter().filter(|q| q.need == need) {
                    match &q.without {
                        Without::CannotRun => {
                            if !disables.contains(drill) {
                                disables.push(drill.clone());
                            }
                        }
                        Without::Changes(what) => match changes.iter_mut().find(|c| &c.what == what) {
                            Some(c) if !c.drills.contains(drill) => c.drills.push(drill.clone()),
                            Some(_) => {}
                            None => changes.push(Change { what: what.clone(), drills: vec![drill.clone()] }),
                        },
                    }
                }
            }
            // A drill that cannot run is not also "changed".
            for c in &mut changes {
                c.drills.retain(|d| !disables.contains(d));
            }
            changes.retain(|c| !c.drills.is_empty());
            for d in &disables {
                cannot_run.entry(d.clone()).or_default().push(id.clone());
            }
        }
        let level = match status {
            Status::Ok => Level::Ok,
            Status::Unknown => Level::Unknown,
            Status::Missing if disables.is_empty() => Level::Warning,
            Status::Missing => Level::Error,
        };
        let fix = if status == Status::Ok { String::new() } else { need.fix() };
        let kinds = if status == Status::Missing { need.kinds().into_iter().map(String::from).collect() } else { Vec::new() };
        checks.push(CheckLine { id, group: need.group(), title: need.title(), status, level, detail, disables, changes, kinds, fix });
    }
    let unchecked = checks.iter().filter(|c| c.status == Status::Unknown).count();
    let exit_code = u8::from(!cannot_run.is_empty());
    Report { version: JSON_VERSION, checks, cannot_run, drills: drills.len(), unchecked, exit_code }
}

/// The kernel version fact for `release` (`uname -r`, e.g. `6.18.44-fc-v1045`).
pub fn kernel_facts(release: &str) -> Vec<Fact> {
    let mut nums = release.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse::<u32>().unwrap_or(0));
    let have = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    [MIN_KERNEL, TIMELINE_KERNEL].iter().map(|&(a, b)| Fact::new(&Need::Kernel(a, b), have >= (a, b), format!("running {release}"))).collect()
}

/// The cgroup controllers' facts from `/proc/self/mountinfo` and, when there is a
/// cgroup2 mount, its root's `cgroup.controllers` (`read` reads a file, None when it
/// cannot). A controller counts where it is: on a v1 hierarchy or enabled on v2.
pub fn cgroup_facts(mountinfo: &str, read: impl Fn(&str) -> Option<String>) -> Vec<Fact> {
    let layout = crate::cgroupfs::parse_mountinfo(mountinfo);
    let v1: BTreeMap<String, String> = layout.v1.iter().map(|(c, m)| (c.clone(), m.display().to_string())).collect();
    let v2: Option<String> = layout.v2.as_ref().map(|m| m.display().to_string());
    let v2_has: Vec<String> = v2.as_ref().and_then(|m| read(&format!("{m}/cgroup.controllers"))).map(|t| t.split_whitespace().map(String::from).collect()).unwrap_or_default();
    ["memory", "cpu", "pids"]
        .iter()
        .map(|c| {
            let need = Need::Cgroup(c.to_string());
            if let Some(m) = v1.get(*c) {
                Fact::new(&need, true, format!("cgroup v1 at {m}"))
            } else if v2_has.iter().any(|x| x == c) {
                Fact::new(&need, true, format!("cgroup v2 at {}", v2.as_deref().unwrap_or("?")))
            } else {
                let where_ = match &v2 {
                    Some(m) => format!("not on a v1 hierarchy, and cgroup v2 at {m} offers only: {}", if v2_has.is_empty() { "nothing".into() } else { v2_has.join(" ") }),
                    None => "no v1 hierarchy holds it and cgroup2 is not mounted".into(),
                };
                Fact::new(&need, false, where_)
            }
        })
        .collect()
}

/// The message of a start refused for a need the machine lacks (the same words the
/// report uses), pointing to `drill doctor`.
pub fn refusal(need: &Need, what: &str) -> String {
    format!("{what} needs {}, which this machine lacks: {}; `drill doctor` lists everything this machine lacks and the drills it disables", need.title(), need.fix())
}

/// The drills of `drills` that cannot run without `need` (in their order).
pub fn disabled_by(need: &Need, drills: &[(String, Vec<Requirement>)]) -> Vec<String> {
    drills.iter().filter(|(_, reqs)| reqs.iter().any(|q| &q.need == need && q.without == Without::CannotRun)).map(|(d, _)| d.clone()).collect()
}

/// [`refusal`] with what the need disables among `drills` (the built-in ones, for the
/// daemon), in [`drills_phrase`] words: "... lacks: FIX; without it X, Y cannot run; ...".
pub fn refusal_disabling(need: &Need, what: &str, drills: &[(String, Vec<Requirement>)]) -> String {
    let off = disabled_by(need, drills);
    if off.is_empty() {
        return refusal(need, what);
    }
    format!(
        "{what} needs {}, which this machine lacks: {}; without it these built-in drills cannot run: {}; `drill doctor` lists everything this machine lacks and the drills it disables",
        need.title(),
        need.fix(),
        drills_phrase(&off, drills.len())
    )
}

/// `names` compressed for a line: every drill as "every drill", else the list.
pub fn drills_phrase(names: &[String], all: usize) -> String {
    if all > 1 && names.len() == all { format!("every drill ({all})") } else { names.join(", ") }
}

#[cfg(test)]
mod tests;
