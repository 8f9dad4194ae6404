//! `GET /v1/doctor` (and `drilld doctor`): the facts of `drill doctor` that need root,
//! found by trying, the way drills use them:
//! - the eBPF program types: a trivial program of each (drill-ebpf's `doctor.bpf.c`)
//!   loaded through aya with the kernel's BTF, as the probes are; the raw one attached
//!   in turn to every tracepoint the probes use, the tp_btf one to `tcp_probe`;
//! - links, qdiscs and nftables in a scratch network namespace of its own,
//!   `drill-doctor-<pid>-<n>`, deleted before the answer (a guard deletes it on every path);
//! - BTF, the kernel version, the cgroup controllers and the services' programs.
//!
//! What these facts disable is drill-core's `doctor::report`; this module only gathers.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Json;
use drill_core::doctor::{self, Fact, Facts, Need, TRACEPOINTS};

/// The route's handler: the facts, gathered on a blocking thread (it forks `ip`, `tc`, `nft`).
pub async fn handler() -> Json<Facts> {
    let facts = tokio::task::spawn_blocking(gather).await.unwrap_or_else(|e| Facts { facts: vec![Fact::unknown(&Need::Btf, format!("the doctor's thread failed: {e}"))] });
    Json(facts)
}

/// Every fact this process can find (as root: all but the daemon's own socket).
pub fn gather() -> Facts {
    let mut facts = Vec::new();
    let release = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    facts.extend(doctor::kernel_facts(&release));
    facts.extend(ebpf_facts());
    facts.extend(netns_facts());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    facts.extend(doctor::cgroup_facts(&mountinfo, |p| std::fs::read_to_string(p).ok()));
    facts.extend(binary_facts());
    facts.extend(host_view_facts());
    Facts { facts }
}

/// FUSE (the hosts' /dev/kmsg, host/kmsg.rs) and lxcfs (their /proc view, host/procview.rs).
fn host_view_facts() -> Vec<Fact> {
    let (dev, fs) = crate::host::kmsg::fuse_available();
    let fuse = match (dev, fs) {
        (true, true) => "/dev/fuse and the fuse file system are there".to_string(),
        (false, _) => "no /dev/fuse".to_string(),
        (true, false) => "no fuse file system in /proc/filesystems".to_string(),
    };
    let lxcfs = crate::host::procview::which("lxcfs");
    vec![
        Fact::new(&Need::HostView("fuse".into()), dev && fs, fuse),
        Fact::new(&Need::HostView("lxcfs".into()), lxcfs.is_some(), lxcfs.map_or_else(|| "lxcfs is not installed".to_string(), |p| format!("{} installed", p.display()))),
    ]
}

/// The programs the built-in drills' services and the learner's tools need.
pub fn binary_facts() -> Vec<Fact> {
    let (drills, _) = doctor::drill_requirements(&drill_core::builtin::scenarios());
    doctor::all_needs(&drills)
        .into_iter()
        .filter_map(|n| match &n {
            Need::Binary { path, .. } => {
                let ok = Path::new(path).is_file();
                Some(Fact::new(&n, ok, if ok { "installed".to_string() } else { format!("{path} does not exist") }))
            }
            _ => None,
        })
        .collect()
}

fn err(e: impl std::fmt::Display) -> String {
    format!("{e:#}")
}

/// BTF, the program types and the tracepoints.
fn ebpf_facts() -> Vec<Fact> {
    use aya::programs::SchedClassifier;
    let mut f = Vec::new();
    let btf = aya::Btf::from_sys_fs();
    let btf_size = std::fs::metadata("/sys/kernel/btf/vmlinux").map(|m| m.len()).unwrap_or(0);
    f.push(match &btf {
        Ok(_) => Fact::new(&Need::Btf, true, format!("/sys/kernel/btf/vmlinux, {} KiB, parsed", btf_size / 1024)),
        Err(e) => Fact::new(&Need::Btf, false, err(e)),
    });
    let raw = Need::ProgramType("raw_tracepoint".into());
    let tp_btf = Need::ProgramType("tp_btf".into());
    let cls = Need::ProgramType("sched_cls".into());
    let tracepoints = |why: &str| TRACEPOINTS.iter().map(|(_, t, _)| Fact::unknown(&Need::Tracepoint(t.to_string()), why)).collect::<Vec<_>>();
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK, libc::RLIM_INFINITY, libc::RLIM_INFINITY);
    let mut ebpf = match aya::EbpfLoader::new().btf(btf.as_ref().ok()).load(drill_ebpf::DOCTOR_OBJ) {
        Ok(e) => e,
        Err(e) => {
            let why = format!("the doctor's eBPF object did not load: {}", err(e));
            f.extend([&raw, &tp_btf, &cls].map(|n| Fact::new(n, false, why.clone())));
            f.extend(tracepoints("no program could load"));
            return f;
        }
    };
    raw_tracepoint_facts(&mut ebpf, &raw, &mut f);
    tp_btf_facts(&mut ebpf, btf.as_ref().ok(), &tp_btf, &mut f);
    let r = (|| -> anyhow::Result<()> {
        let p: &mut SchedClassifier = ebpf.program_mut(drill_ebpf::doctor::CLASSIFIER).ok_or_else(|| anyhow::anyhow!("program missing"))?.try_into()?;
        p.load()?;
        Ok(())
    })();
    f.push(Fact::new(&cls, r.is_ok(), r.map_or_else(err, |_| "a trivial classifier loaded".into())));
    f
}

/// raw_tracepoint: a trivial program loaded, then attached to each tracepoint in turn.
fn raw_tracepoint_facts(ebpf: &mut aya::Ebpf, raw: &Need, f: &mut Vec<Fact>) {
    use aya::programs::RawTracePoint;
    let mut seen: Vec<&str> = Vec::new();
    // raw_tracepoint, attached to each tracepoint in turn.
    let raw_loaded = (|| -> anyhow::Result<()> {
        let p: &mut RawTracePoint = ebpf.program_mut(drill_ebpf::doctor::RAW_TP).ok_or_else(|| anyhow::anyhow!("program missing from the object"))?.try_into()?;
        p.load()?;
        Ok(())
    })();
    f.push(Fact::new(raw, raw_loaded.is_ok(), raw_loaded.as_ref().map_or_else(err, |_| "a trivial program loaded".into())));
    for (_, tp, is_btf) in TRACEPOINTS {
        if *is_btf || seen.contains(tp) {
            continue;
        }
        seen.push(tp);
        let need = Need::Tracepoint(tp.to_string());
        if raw_loaded.is_err() {
            f.push(Fact::unknown(&need, "the raw_tracepoint program type did not load"));
            continue;
        }
        let name = tp.rsplit(':').next().unwrap_or(tp);
        let r = (|| -> anyhow::Result<()> {
            let p: &mut RawTracePoint = ebpf.program_mut(drill_ebpf::doctor::RAW_TP).ok_or_else(|| anyhow::anyhow!("program missing"))?.try_into()?;
            let link = p.attach(name)?;
            p.detach(link)?;
            Ok(())
        })();
        f.push(Fact::new(&need, r.is_ok(), r.map_or_else(|e| format!("attaching a raw tracepoint program to {name}: {}", err(e)), |_| "attached".into())));
    }
}

/// tp_btf: the doctor's program loaded against each BTF tracepoint (tcp_probe), attached.
fn tp_btf_facts(ebpf: &mut aya::Ebpf, btf: Option<&aya::Btf>, tp_btf: &Need, f: &mut Vec<Fact>) {
    use aya::programs::BtfTracePoint;
    for (_, tp, _) in TRACEPOINTS.iter().filter(|(_, _, b)| *b) {
        let name = tp.rsplit(':').next().unwrap_or(tp);
        let need = Need::Tracepoint(tp.to_string());
        let Some(b) = btf else {
            f.push(Fact::new(tp_btf, false, "needs the kernel's BTF"));
            f.push(Fact::unknown(&need, "needs the kernel's BTF"));
            continue;
        };
        let prog: Option<&mut BtfTracePoint> = ebpf.program_mut(drill_ebpf::doctor::TP_BTF).and_then(|p| p.try_into().ok());
        let Some(p) = prog else {
            f.push(Fact::new(tp_btf, false, "the doctor's tp_btf program is missing from its object"));
            f.push(Fact::unknown(&need, "the tp_btf program type did not load"));
            continue;
        };
        match p.load(name, b) {
            Ok(()) => {
                f.push(Fact::new(tp_btf, true, format!("a trivial program loaded against {name}")));
                let r = p.attach().map_err(anyhow::Error::from).and_then(|l| p.detach(l).map_err(anyhow::Error::from));
                f.push(Fact::new(&need, r.is_ok(), r.map_or_else(|e| format!("attaching to {name}: {}", err(e)), |_| "attached".into())));
            }
            Err(e) => {
                f.push(Fact::new(tp_btf, false, format!("loading against {name}: {}", err(e))));
                f.push(Fact::unknown(&need, "the tp_btf program type did not load"));
            }
        }
    }
}

/// Runs a command; Ok, or its stderr (or why it could not run).
fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(cmd).args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("`{cmd} {}`: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Err(format!("cannot run {cmd}: {e}")),
    }
}

/// The scratch namespace, deleted when dropped.
struct Scratch(String);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = run("ip", &["netns", "del", &self.0]) {
            tracing::warn!(netns = %self.0, error = %e, "the doctor could not delete its scratch namespace");
        }
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// The scratch namespace's name: the project's prefix, `doctor`, the pid and a counter.
pub fn scratch_name() -> String {
    format!("{}-doctor-{}-{}", drill_core::PREFIX, std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Link types, tc and its qdiscs, nftables: tried in a scratch namespace.
fn netns_facts() -> Vec<Fact> {
    let mut f = Vec::new();
    let tc = Need::Tc;
    let tc_ok = run("tc", &["-V"]);
    f.push(Fact::new(&tc, tc_ok.is_ok(), tc_ok.clone().err().unwrap_or_else(|| "installed".into())));
    let ns = scratch_name();
    let all_unknown = |why: String| {
        let mut v: Vec<Fact> = ["veth", "bridge", "vxlan"].iter().map(|l| Fact::unknown(&Need::LinkType(l.to_string()), why.clone())).collect();
        v.extend(["netem", "htb", "tbf", "clsact"].iter().map(|q| Fact::unknown(&Need::Qdisc(q.to_string()), why.clone())));
        v.push(Fact::unknown(&Need::Nftables, why.clone()));
        v
    };
    if let Err(e) = run("ip", &["netns", "add", &ns]) {
        f.extend(all_unknown(format!("no scratch namespace: {e}")));
        return f;
    }
    let _guard = Scratch(ns.clone());
    let link = |name: &str, kind: &[&str]| {
        let mut a = vec!["-n", &ns, "link", "add", name, "type"];
        a.extend_from_slice(kind);
        run("ip", &a)
    };
    let veth = link("v0", &["veth", "peer", "name", "v1"]);
    f.push(Fact::new(&Need::LinkType("veth".into()), veth.is_ok(), veth.clone().err().unwrap_or_else(|| "created".into())));
    let bridge = link("b0", &["bridge"]);
    f.push(Fact::new(&Need::LinkType("bridge".into()), bridge.is_ok(), bridge.err().unwrap_or_else(|| "created".into())));
    let vxlan = link("x0", &["vxlan", "id", "42", "dstport", "4789"]);
    f.push(Fact::new(&Need::LinkType("vxlan".into()), vxlan.is_ok(), vxlan.err().unwrap_or_else(|| "created".into())));
    // The qdiscs go on a dummy link (a veth end where the kernel has no dummy).
    let dev = if link("d0", &["dummy"]).is_ok() { "d0" } else { "v0" };
    let up = run("ip", &["-n", &ns, "link", "set", dev, "up"]);
    for (q, args) in [
        ("netem", vec!["root", "netem", "delay", "1ms"]),
        ("htb", vec!["root", "handle", "1:", "htb", "default", "20"]),
        ("tbf", vec!["root", "tbf", "rate", "1mbit", "burst", "32kbit", "latency", "400ms"]),
        ("clsact", vec!["clsact"]),
    ] {
        let need = Need::Qdisc(q.into());
        if let Err(e) = tc_ok.as_ref().and(up.as_ref()) {
            f.push(Fact::unknown(&need, format!("cannot try it: {e}")));
            continue;
        }
        let mut a = vec!["-n", &ns, "qdisc", "add", "dev", dev];
        a.extend(args.iter().copied());
        let r = run("tc", &a);
        f.push(Fact::new(&need, r.is_ok(), r.clone().err().unwrap_or_else(|| format!("added on a {} link in a scratch namespace", if dev == "d0" { "dummy" } else { "veth" }))));
        if r.is_ok() {
            let parent = if q == "clsact" { "clsact" } else { "root" };
            let _ = run("tc", &["-n", &ns, "qdisc", "del", "dev", dev, parent]);
        }
    }
    let nft = run("ip", &["netns", "exec", &ns, "nft", "add", "table", "inet", "doctor"]);
    f.push(Fact::new(&Need::Nftables, nft.is_ok(), nft.err().unwrap_or_else(|| "a table created in a scratch namespace".into())));
    f
}

#[cfg(test)]
mod tests {
    /// drill-core's list of the probes' tracepoints is drill-ebpf's.
    #[test]
    fn the_tracepoint_list_matches_the_probe_programs() {
        let ours: Vec<(&str, bool)> = drill_core::doctor::TRACEPOINTS.iter().map(|(p, _, b)| (*p, *b)).collect();
        let theirs: Vec<(&str, bool)> = drill_ebpf::PROGRAMS.iter().map(|p| (p.program, p.btf)).collect();
        assert_eq!(ours, theirs);
        for ((_, tp, _), p) in drill_core::doctor::TRACEPOINTS.iter().zip(drill_ebpf::PROGRAMS) {
            assert!(tp.ends_with(&format!(":{}", p.tracepoint)), "{tp} vs {}", p.tracepoint);
            assert!(p.describes.contains(&format!("({tp})")), "{tp} vs {}", p.describes);
        }
    }
}
