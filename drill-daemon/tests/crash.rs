//! Crash at any point (issue 14): drilld is killed with SIGKILL at a random moment while
//! a drill starts (topology, services, faults and probes half applied), while a submit
//! watches, while a drill stops, or while it idles; then `drilld reset` or a plain
//! daemon restart (which recovers on start) must leave the machine as it was: no drill
//! namespace, no process in a namespace the test did not see before (a measurement's
//! `ping` that outlived the daemon included), no cgroup, mount, root-namespace link or
//! nftables change. `DRILL_CRASH_CYCLES` sets the count (CI runs a handful; `cargo xtask
//! soak` runs 50); the test prints how many cycles were clean and fails on the first
//! leftover, naming it. Runs as root (see common/mod.rs).

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use common::*;

/// What the drills `ids` could leave on the machine, as seen from the root namespaces,
/// plus the root namespace's own links and nftables ruleset (which no drill may touch).
#[derive(Debug, PartialEq, Eq)]
struct Machine {
    netns: BTreeSet<String>,
    cgroups: BTreeSet<String>,
    mounts: BTreeSet<String>,
    links: BTreeSet<String>,
    nft: String,
}

fn ours(name: &str, ids: &BTreeSet<String>) -> bool {
    ids.iter().any(|id| name.contains(&format!("drill-{id}-")))
}

fn snapshot(ids: &BTreeSet<String>) -> Machine {
    let netns = std::fs::read_dir("/run/netns").into_iter().flatten().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| ours(n, ids)).collect();
    let mut cgroups = BTreeSet::new();
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified"] {
        for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if ours(&n, ids) {
                cgroups.insert(format!("{root}/{n}"));
            }
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default().lines().filter(|l| ours(l, ids)).map(String::from).collect();
    let links = sh("ip -o link show").lines().filter_map(|l| l.split(':').nth(1).map(|n| n.trim().split('@').next().unwrap_or("").to_string())).collect();
    Machine { netns, cgroups, mounts, links, nft: sh("nft list ruleset") }
}

/// Drill ids under the daemon's state directory (a start cut short is there too: its
/// journal is written before anything is created).
fn ids_in(state: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(state.join("drills")).into_iter().flatten().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
}

/// Inodes of the network namespaces named `names` (while they still exist).
fn netns_inodes(names: &BTreeSet<String>) -> BTreeSet<u64> {
    names.iter().filter_map(|n| std::fs::metadata(format!("/run/netns/{n}")).ok().map(|m| m.ino())).collect()
}

/// Processes in any of the network namespaces `inos`. Namespace inodes are reused once
/// freed: one that now belongs to a namespace named by someone else (another test's
/// drill) is not ours any more.
fn processes_in(inos: &BTreeSet<u64>) -> Vec<String> {
    let others: BTreeSet<u64> = std::fs::read_dir("/run/netns").into_iter().flatten().flatten().filter_map(|e| std::fs::metadata(e.path()).ok().map(|m| m.ino())).collect();
    let inos: BTreeSet<u64> = inos.difference(&others).copied().collect();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| inos.contains(&m.ino())))
        .map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).map(|c| String::from_utf8_lossy(&c).replace('\0', " ")).unwrap_or_default();
            format!("pid {pid} `{}`", cmd.trim())
        })
        .collect()
}

/// What differs from `base` (taken with no drill of ours), for the failure message.
fn differences(base: &Machine, now: &Machine, inos: &BTreeSet<u64>) -> Vec<String> {
    let mut d = Vec::new();
    for (what, a, b) in [("netns", &base.netns, &now.netns), ("cgroup", &base.cgroups, &now.cgroups), ("mount", &base.mounts, &now.mounts), ("root-namespace link", &base.links, &now.links)] {
        for x in b.difference(a) {
            d.push(format!("{what} left: {x}"));
        }
    }
    for p in processes_in(inos) {
        d.push(format!("process left in a drill's network namespace: {p}"));
    }
    if base.nft != now.nft {
        d.push(format!("root namespace nftables ruleset changed:\n{}", now.nft));
    }
    d
}

/// A drill started to the end (returns its id).
fn started(d: &TestDaemon, scenario: &str) -> String {
    d.drill_json(&["start", scenario, "--json"], 0)["drill"]["id"].as_str().unwrap().to_string()
}

#[test]
fn sigkill_at_random_moments_then_reset_or_restart_leaves_nothing() {
    if !privileged_or_skip("sigkill_at_random_moments_then_reset_or_restart_leaves_nothing") {
        return;
    }
    let cycles: usize = std::env::var("DRILL_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    // Drills with many kinds of parts: a delay wire and nginx, nft rules and probes, a
    // tunnel with a hidden underlay, a host disk filled by a fault.
    let scenarios = ["wan-latency-504", "packet-loss", "mtu-blackhole", "disk-full"];
    let phases = ["start", "submit", "stop", "idle"];
    let mut d = TestDaemon::start("crash");
    let base = snapshot(&BTreeSet::new());
    let mut clean = 0;
    let mut figures = Vec::new();
    for i in 0..cycles {
        let scenario = scenarios[i % scenarios.len()];
        let phase = phases[(i / scenarios.len() + i) % phases.len()];
        let (child, wait_ms) = match phase {
            "start" => (Some(d.drill_background(&["start", scenario, "--json"])), rand::random_range(0..1500)),
            "submit" => {
                let id = started(&d, scenario);
                (Some(d.drill_background(&["submit", &id, "--json"])), rand::random_range(0..6000))
            }
            "stop" => {
                let id = started(&d, scenario);
                (Some(d.drill_background(&["stop", &id, "--json"])), rand::random_range(0..300))
            }
            _ => {
                started(&d, scenario);
                (None, rand::random_range(0..1000))
            }
        };
        std::thread::sleep(Duration::from_millis(wait_ms));
        d.crash();
        if let Some(mut c) = child {
            let _ = c.wait();
        }
        // What this cycle's drill is made of, before recovery removes its record.
        let ids = ids_in(&d.state);
        let inos = netns_inodes(&snapshot(&ids).netns);
        // Recovery: `drilld reset`, or a plain restart (the daemon recovers on start).
        let how = if i % 2 == 0 { "reset" } else { "restart" };
        let t0 = Instant::now();
        if how == "reset" {
            let out = d.reset();
            assert!(out.status.success(), "drilld reset after a kill during {phase} of {scenario}: {}", String::from_utf8_lossy(&out.stderr));
            d.spawn();
        } else {
            d.spawn();
        }
        let took = t0.elapsed();
        let diff = differences(&base, &snapshot(&ids), &inos);
        assert!(diff.is_empty(), "cycle {i}: SIGKILL {wait_ms} ms into {phase} of {scenario}, then {how}: {diff:#?}\ndaemon log: {}", d.logs());
        clean += 1;
        figures.push(format!("{phase}+{wait_ms}ms {scenario} -> {how} {:.0} ms", took.as_secs_f64() * 1e3));
    }
    drop(d);
    eprintln!("crash cycles: {clean} of {cycles} clean\n  {}", figures.join("\n  "));
}
