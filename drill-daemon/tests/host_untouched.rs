//! The host is untouched (issue 14): a snapshot of the machine before and after drills of
//! every built-in scenario, passes and failures mixed, with the commands a learner
//! experimenting as root runs inside the hosts (links, addresses, routes, sysctls, nft
//! tables, qdiscs, files in /usr, /etc, /root and /var, a disk filled to ENOSPC, writes
//! to vm.* and kernel.* sysctls, mounts). The snapshot holds what drill could change in
//! the machine's own namespaces: links with their addresses and MTUs, routes and rules
//! of every table (IPv4 and IPv6), the nftables ruleset, qdiscs and filters, pinned eBPF
//! objects, every sysctl (minus counters the kernel moves by itself), mounts, cgroups,
//! /etc, /usr, /root and /run/netns. Identical, or the test names each difference.
//! By default (CI) a spread of 8 of the built-in scenarios, one drill each (about 20 s a
//! drill); `DRILL_UNTOUCHED_ALL=1` takes every one and `DRILL_UNTOUCHED_ROUNDS` repeats
//! the pass (`cargo xtask soak`: all, 4 rounds, over 100 drills, about 35 minutes).
//! Runs as root (see common/mod.rs).

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;

/// Sysctls the kernel or the machine's other work moves by itself.
const VOLATILE: &[&str] = &[
    "kernel/random/",
    "kernel/ns_last_pid",
    "kernel/pty/nr",
    "kernel/tainted",
    "fs/dentry-state",
    "fs/inode-nr",
    "fs/inode-state",
    "fs/file-nr",
    "fs/quota/",
    "net/netfilter/nf_conntrack_count",
    "kernel/sched_domain",
    "kernel/keys/",
    "fs/binfmt_misc",
    "net/ipv4/route/gc_",
    "net/ipv6/route/gc_",
    "kernel/perf_event_max_sample_rate",
    "vm/stat_refresh",
    "fs/aio-nr",
    "kernel/cad_pid",
    "kernel/usermodehelper",
];

/// Whether a line names a drill's own resource (`drill-<id>-...`) or another test's
/// (`drill-test-...`): those are checked per drill when it stops (`stop_clean`), and
/// must not make a run beside other tests fail.
fn per_drill(line: &str) -> bool {
    line.match_indices("drill-").any(|(i, _)| {
        let rest = &line[i + 6..];
        rest.starts_with("test-") || (rest.len() > 7 && rest[..6].bytes().all(|b| b.is_ascii_hexdigit()) && rest.as_bytes()[6] == b'-')
    })
}

fn lines(cmd: &str) -> Vec<String> {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !per_drill(l)).map(String::from).collect()
}

/// Every readable sysctl of the machine's namespaces, by path under /proc/sys.
fn sysctls() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut stack = vec![std::path::PathBuf::from("/proc/sys")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let rel = p.strip_prefix("/proc/sys").unwrap().to_string_lossy().into_owned();
            if VOLATILE.iter().any(|v| rel.starts_with(v)) {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                _ => {
                    if let Ok(v) = std::fs::read_to_string(&p) {
                        m.insert(rel, v.trim().to_string());
                    }
                }
            }
        }
    }
    m
}

/// The machine as drill could change it, one entry per aspect.
fn snapshot() -> BTreeMap<String, Vec<String>> {
    let mut s = BTreeMap::new();
    // Links without their counters or dynamic state: name, flags, MTU, qdisc, master.
    s.insert("links".into(), lines("ip -o link show | sed -E 's/^[0-9]+: //; s/ state [A-Z]+//; s/link\\/ether [0-9a-f:]+ brd [0-9a-f:]+//'"));
    s.insert("addresses".into(), lines("ip -o addr show | sed -E 's/^[0-9]+: //; s/valid_lft.*//'"));
    s.insert("routes".into(), lines("ip route show table all; ip -6 route show table all | grep -v expires"));
    s.insert("rules".into(), lines("ip rule; ip -6 rule"));
    s.insert("nftables".into(), lines("nft list ruleset"));
    s.insert("qdiscs and filters".into(), lines("tc qdisc show; for d in $(ls /sys/class/net); do tc filter show dev $d ingress; tc filter show dev $d egress; done 2>/dev/null"));
    s.insert("pinned eBPF objects".into(), lines("find /sys/fs/bpf 2>/dev/null"));
    s.insert("sysctls".into(), sysctls().into_iter().map(|(k, v)| format!("{k} = {v}")).collect());
    s.insert("mounts".into(), lines("cut -d' ' -f1-4 /proc/self/mounts | grep -v '^/dev/loop' | sort"));
    s.insert("cgroups".into(), lines("find /sys/fs/cgroup -maxdepth 2 -type d | sort"));
    s.insert("/run/netns".into(), lines("ls /run/netns 2>/dev/null"));
    // Files: path, size, mode and mtime (the machine's own work under /root's toolchain
    // and caches, and /etc's ld.so.cache & co, are not drill's).
    s.insert("/etc".into(), lines("find /etc -xdev -printf '%p %s %m %T@\\n' 2>/dev/null | grep -v -e '^/etc/ld.so.cache' | sort"));
    s.insert("/usr".into(), lines("find /usr -xdev -printf '%p %s %m %T@\\n' 2>/dev/null | sort"));
    s.insert("/root".into(), lines("find /root -xdev -maxdepth 2 -not -path '/root/.cargo*' -not -path '/root/.rustup*' -not -path '/root/.cache*' -printf '%p %s %m\\n' 2>/dev/null | sort"));
    s
}

fn differences(a: &BTreeMap<String, Vec<String>>, b: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut d = Vec::new();
    for (k, before) in a {
        let after = &b[k];
        for l in after.iter().filter(|l| !before.contains(l)) {
            d.push(format!("{k}: now {l}"));
        }
        for l in before.iter().filter(|l| !after.contains(l)) {
            d.push(format!("{k}: was {l}"));
        }
    }
    d
}

/// A learner experimenting as root inside a host: each command may fail (that is the
/// isolation at work); none may reach the machine.
const LEARNER: &[&str] = &[
    "ip link set lo mtu 1400; ip addr add 10.99.99.1/32 dev lo; ip route add 10.99.0.0/16 dev lo; ip rule add from 10.99.0.0/16 table 99",
    "sysctl -w net.ipv4.ip_forward=1 net.ipv4.tcp_fin_timeout=7 net.core.somaxconn=77",
    "sysctl -w vm.swappiness=77; sysctl -w kernel.hostname=drill-learner; sysctl -w kernel.printk_ratelimit=7",
    "nft add table inet learner; nft add chain inet learner c '{ type filter hook input priority 0; }'; nft add rule inet learner c counter",
    "tc qdisc add dev lo root tbf rate 1mbit burst 32k latency 50ms",
    "touch /usr/local/drill-learner /etc/drill-learner /root/drill-learner /var/drill-learner; mkdir -p /usr/lib/drill-learner",
    "rm -f /etc/hostname /usr/bin/true.bak; echo x >> /etc/hosts",
    "mount -t tmpfs none /mnt; umount /mnt; hostname learner",
    // Last: in a host with a memory limit the tmpfs pages count against it, and the
    // OOM killer may end the shell itself.
    "dd if=/dev/zero of=/var/tmp/fill bs=1M count=4096 2>/dev/null; rm -f /var/tmp/fill",
    // Block devices, insmod, reboot and the clock: tests/isolation.rs (each refused, and
    // the machine checked) rather than here, where a hole would damage the machine.
];

#[test]
fn the_machine_is_the_same_after_every_built_in_drill_and_a_learners_experiments() {
    if !privileged_or_skip("the_machine_is_the_same_after_every_built_in_drill_and_a_learners_experiments") {
        return;
    }
    let rounds: usize = std::env::var("DRILL_UNTOUCHED_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let before = snapshot();
    let mut drills = 0;
    let mut passed = 0;
    {
        let d = TestDaemon::start("untouched");
        let list = d.drill_json(&["list", "--json"], 0);
        let ids: Vec<String> = list.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
        assert!(ids.len() >= 20, "{list}");
        let ids: Vec<String> = if std::env::var("DRILL_UNTOUCHED_ALL").is_ok_and(|v| v == "1") {
            ids
        } else {
            // Every third: a spread over the kinds of drills (the pack is sorted by id).
            ids.into_iter().step_by(3).take(8).collect()
        };
        for round in 0..rounds {
            for (i, sc) in ids.iter().enumerate() {
                let started = d.drill_json(&["start", sc, "--json"], 0);
                let id = started["drill"]["id"].as_str().unwrap().to_string();
                let hosts: Vec<String> = started["drill"]["hosts"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap().to_string()).collect();
                // One shell per host runs them all (each may fail; the rest still run).
                let all = String::from("echo learner-start; ") + &LEARNER.iter().map(|c| format!("( {c} ) >/dev/null 2>&1")).collect::<Vec<_>>().join("; ");
                for h in &hosts {
                    let out = d.drill(&["exec", "--drill", &id, h, "--", "sh", "-c", &all]);
                    assert!(String::from_utf8_lossy(&out.stdout).contains("learner-start"), "{sc}: the learner's commands did not run in {h}: {}", String::from_utf8_lossy(&out.stderr));
                }
                // Passes and failures mixed: every other drill gets its reference fix.
                if (i + round) % 2 == 0 {
                    let _ = d.drill(&["solve", &id, "--apply"]);
                }
                let v = d.drill(&["submit", &id, "--json"]);
                passed += usize::from(v.status.code() == Some(0));
                d.stop_clean(&id);
                drills += 1;
            }
        }
    }
    let after = snapshot();
    let diff = differences(&before, &after);
    eprintln!("{drills} drills ({passed} passed), {} learner commands in each host: {} differences", LEARNER.len(), diff.len());
    assert!(diff.is_empty(), "the machine changed after {drills} drills:\n{}", diff.join("\n"));
}
