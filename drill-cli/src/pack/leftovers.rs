//! What a stopped drill may have left on the machine, found from the outside (never by
//! asking the daemon): stage 5 of `drill pack test`.
//!
//! Per drill (after each stop): named network namespaces `drill-<id>-*` (hosts and delay
//! wires, drill-core `plan::netns_name`), links of the root namespace carrying the id
//! (`dr<id>..`), mounts mentioning it (ours and drilld's mountinfo), cgroups
//! `drill-<id>-*` at the root of every hierarchy (drill-daemon `host/cgroup.rs`),
//! processes still in one of the drill's cgroups or network namespaces, and files named
//! with the id under the daemon's directories (journals `<state>/drills/<id>`).
//!
//! Once per run: the root namespace's nftables ruleset, the qdiscs of its links, and the
//! eBPF programs and links drilld holds (its fdinfo) and pins (/sys/fs/bpf), compared
//! with a snapshot taken after the daemon was up (its own probes are in both).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What identifies one drill on the machine, recorded while it runs.
#[derive(Clone, Debug, Default)]
pub struct DrillMarks {
    pub id: String,
    /// Inodes of its network namespaces (a process still in one is a leftover).
    pub netns_inodes: BTreeSet<u64>,
}

/// Records the drill's marks (call while it runs).
pub fn marks(id: &str) -> DrillMarks {
    let prefix = format!("drill-{id}-");
    let inodes = list_dir("/run/netns").into_iter().filter(|n| n.starts_with(&prefix)).filter_map(|n| std::fs::metadata(Path::new("/run/netns").join(n)).ok()).map(|m| m.ino()).collect();
    DrillMarks { id: id.to_string(), netns_inodes: inodes }
}

fn list_dir(dir: impl AsRef<Path>) -> Vec<String> {
    std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
}

/// Everything of drill `m` still on the machine, one line each (empty: clean).
/// `daemon_pid` is drilld's, `dirs` the daemon's directories to look for files in.
pub fn scan(m: &DrillMarks, daemon_pid: Option<u32>, dirs: &[PathBuf]) -> Vec<String> {
    let id = m.id.as_str();
    let named = format!("drill-{id}-");
    let mut out = Vec::new();
    for n in list_dir("/run/netns").into_iter().filter(|n| n.starts_with(&named)) {
        out.push(format!("network namespace {n} (/run/netns/{n})"));
    }
    if let Ok(o) = Command::new("ip").args(["netns", "list"]).output() {
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            let n = l.split_whitespace().next().unwrap_or("");
            if n.starts_with(&named) && !out.iter().any(|x| x.contains(n)) {
                out.push(format!("network namespace {n} (ip netns list)"));
            }
        }
    }
    for n in list_dir("/sys/class/net").into_iter().filter(|n| n.contains(id)) {
        out.push(format!("link {n} in the root network namespace"));
    }
    out.extend(mounts(id, daemon_pid));
    out.extend(cgroups(id));
    out.extend(processes(m, daemon_pid));
    for d in dirs {
        find_files(d, id, 3, &mut out);
    }
    out
}

fn mounts(id: &str, daemon_pid: Option<u32>) -> Vec<String> {
    let pats = [format!("drill-{id}-"), format!("/{id}/"), format!("/{id} ")];
    let mut files = vec!["/proc/self/mountinfo".to_string()];
    files.extend(daemon_pid.map(|p| format!("/proc/{p}/mountinfo")));
    let mut out = Vec::new();
    for f in files {
        for l in std::fs::read_to_string(&f).unwrap_or_default().lines() {
            if pats.iter().any(|p| l.contains(p.as_str())) {
                let point = l.split_whitespace().nth(4).unwrap_or(l);
                let s = format!("mount {point} ({f})");
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// Cgroups `drill-<id>-*` at the root of every hierarchy (v2 at /sys/fs/cgroup or
/// /sys/fs/cgroup/unified, v1 under /sys/fs/cgroup/<controller>).
fn cgroups(id: &str) -> Vec<String> {
    let named = format!("drill-{id}-");
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![root.to_path_buf()];
    dirs.extend(list_dir(root).into_iter().map(|n| root.join(n)).filter(|p| p.is_dir()));
    let mut out = Vec::new();
    for d in dirs {
        for n in list_dir(&d).into_iter().filter(|n| n.starts_with(&named)) {
            out.push(format!("cgroup {}", d.join(n).display()));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Processes in one of the drill's cgroups or network namespaces.
fn processes(m: &DrillMarks, daemon_pid: Option<u32>) -> Vec<String> {
    let named = format!("/drill-{}-", m.id);
    let mut out = Vec::new();
    for e in list_dir("/proc") {
        let Ok(pid) = e.parse::<u32>() else { continue };
        if Some(pid) == daemon_pid {
            continue;
        }
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let ns = std::fs::metadata(format!("/proc/{pid}/ns/net")).map(|m| m.ino()).ok();
        let why = if cg.contains(&named) {
            "is in one of its cgroups"
        } else if ns.is_some_and(|i| m.netns_inodes.contains(&i)) {
            "is in one of its network namespaces"
        } else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        out.push(format!("process {pid} ({}) {why}", cmd.trim()));
    }
    out
}

fn find_files(dir: &Path, id: &str, depth: u32, out: &mut Vec<String>) {
    for n in list_dir(dir) {
        let p = dir.join(&n);
        if n.contains(id) {
            out.push(format!("file {}", p.display()));
        } else if depth > 0 && std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            find_files(&p, id, depth - 1, out);
        }
    }
}

/// The machine-wide state a run must leave as it found it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// `nft list ruleset` of the root namespace (None: nft missing or failed).
    pub nft: Option<String>,
    /// Qdiscs of each root-namespace link.
    pub qdiscs: BTreeMap<String, String>,
    /// eBPF programs and links drilld holds open (fdinfo `prog_id`/`link_id`).
    pub bpf_held: BTreeSet<String>,
    /// Entries under /sys/fs/bpf.
    pub bpf_pinned: BTreeSet<String>,
}

/// Takes the snapshot (root namespace; `daemon_pid` for the eBPF objects it holds).
pub fn snapshot(daemon_pid: Option<u32>) -> Snapshot {
    let nft = Command::new("nft").args(["list", "ruleset"]).output().ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let mut qdiscs = BTreeMap::new();
    if let Ok(o) = Command::new("tc").args(["qdisc", "show"]).output() {
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            // "qdisc noqueue 0: dev lo root refcnt 2"
            let dev = l.split_whitespace().skip_while(|w| *w != "dev").nth(1).unwrap_or("").to_string();
            let e: &mut String = qdiscs.entry(dev).or_default();
            e.push_str(l.trim());
            e.push('\n');
        }
    }
    let mut bpf_held = BTreeSet::new();
    if let Some(pid) = daemon_pid {
        for fd in list_dir(format!("/proc/{pid}/fdinfo")) {
            for l in std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap_or_default().lines() {
                if let Some(v) = l.strip_prefix("prog_id:").or_else(|| l.strip_prefix("link_id:")) {
                    let kind = if l.starts_with("prog") { "program" } else { "link" };
                    bpf_held.insert(format!("eBPF {kind} {} held by drilld", v.trim()));
                }
            }
        }
    }
    let mut bpf_pinned = BTreeSet::new();
    pinned(Path::new("/sys/fs/bpf"), 3, &mut bpf_pinned);
    Snapshot { nft, qdiscs, bpf_held, bpf_pinned }
}

fn pinned(dir: &Path, depth: u32, out: &mut BTreeSet<String>) {
    for n in list_dir(dir) {
        let p = dir.join(n);
        out.insert(format!("pinned eBPF object {}", p.display()));
        if depth > 0 && std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            pinned(&p, depth - 1, out);
        }
    }
}

/// What differs between `before` and `after`, one line each (empty: the same).
/// Qdiscs are compared on links present in both (links that came or went belong to
/// drills, which the per-drill scan covers, or to other users of the machine).
pub fn diff(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    if before.nft != after.nft {
        let b: BTreeSet<&str> = before.nft.as_deref().unwrap_or("").lines().map(str::trim).collect();
        let a: BTreeSet<&str> = after.nft.as_deref().unwrap_or("").lines().map(str::trim).collect();
        let added: Vec<&str> = a.difference(&b).copied().collect();
        let removed: Vec<&str> = b.difference(&a).copied().collect();
        out.push(format!("the root namespace's nftables ruleset changed: added [{}], removed [{}]", added.join(" | "), removed.join(" | ")));
    }
    for (dev, q) in &before.qdiscs {
        if let Some(q2) = after.qdiscs.get(dev).filter(|q2| *q2 != q) {
            out.push(format!("qdiscs of root-namespace link {dev} changed: before `{}`, after `{}`", q.trim().replace('\n', "; "), q2.trim().replace('\n', "; ")));
        }
    }
    for x in after.bpf_held.difference(&before.bpf_held).chain(after.bpf_pinned.difference(&before.bpf_pinned)) {
        out.push(format!("{x} (not there before the run)"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(nft: &str, qdiscs: &[(&str, &str)], held: &[&str]) -> Snapshot {
        Snapshot {
            nft: Some(nft.into()),
            qdiscs: qdiscs.iter().map(|(d, q)| (d.to_string(), q.to_string())).collect(),
            bpf_held: held.iter().map(|s| s.to_string()).collect(),
            bpf_pinned: BTreeSet::new(),
        }
    }

    #[test]
    fn the_same_machine_has_no_diff() {
        let s = snap("table inet filter {\n}\n", &[("eth0", "qdisc fq_codel 0: dev eth0 root\n")], &["eBPF program 7 held by drilld"]);
        assert!(diff(&s, &s.clone()).is_empty());
    }

    #[test]
    fn a_left_rule_qdisc_and_program_are_each_named() {
        let before = snap("table inet filter {\n}\n", &[("eth0", "qdisc fq_codel 0: dev eth0 root\n"), ("gone0", "x\n")], &["eBPF program 7 held by drilld"]);
        let after = snap(
            "table inet filter {\n}\ntable inet leftover {\n}\n",
            &[("eth0", "qdisc netem 8001: dev eth0 root\n"), ("new0", "y\n")],
            &["eBPF program 7 held by drilld", "eBPF program 9 held by drilld"],
        );
        let d = diff(&before, &after);
        assert_eq!(d.len(), 3, "{d:#?}");
        assert!(d[0].contains("nftables") && d[0].contains("table inet leftover {"), "{}", d[0]);
        assert!(d[1].contains("eth0") && d[1].contains("netem"), "{}", d[1]);
        assert!(d[2].contains("eBPF program 9"), "{}", d[2]);
    }

    #[test]
    fn marks_of_an_unknown_drill_find_nothing() {
        let m = marks("fffff0");
        assert!(m.netns_inodes.is_empty());
        assert!(scan(&m, None, &[std::env::temp_dir().join("drill-no-such-dir")]).is_empty());
    }
}
