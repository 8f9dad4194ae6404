//! `dmesg` inside a host shows the host's own kernel log (host/kmsg.rs): the kernel's
//! banner at its start and the OOM kills in its memory cgroup in the kernel's words,
//! never the machine's ring buffer; another host of the same drill does not see them;
//! the daemon's FUSE mount serving the logs ends with it, and `drilld reset` removes
//! the one a killed daemon left.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;

const TWO: &str = include_str!("fixtures/two-host.toml");

fn start(d: &TestDaemon) -> String {
    let path = d.dir.join("kmsg.toml");
    std::fs::write(&path, TWO).unwrap();
    d.drill_json(&["start", path.to_str().unwrap(), "--json"], 0)["drill"]["id"].as_str().unwrap().to_string()
}

/// `sh -c cmd` in a host through `drill exec`: (exit code, stdout + stderr).
fn run(d: &TestDaemon, id: &str, host: &str, cmd: &str) -> (i32, String) {
    let out = d.drill(&["exec", "--drill", id, host, "--", "sh", "-c", cmd]);
    (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// The kmsg FUSE mounts under the daemon's state directory.
fn kmsg_mounts(d: &TestDaemon) -> Vec<String> {
    let dir = d.state.join("kmsg").display().to_string();
    mounts_under(&d.state).into_iter().filter(|m| m.split(' ').nth(1) == Some(dir.as_str())).collect()
}

/// Waits until the daemon answers its API (it handles SIGTERM from then on: between its
/// socket's bind and serving, a SIGTERM ends it without its teardown).
fn serving(d: &TestDaemon) {
    let url = format!("curl -sf --unix-socket {} http://drilld/v1/info", d.socket.display());
    assert!(wait_until(Duration::from_secs(10), || std::process::Command::new("sh").arg("-c").arg(&url).output().is_ok_and(|o| o.status.success())), "the daemon does not answer: {}", d.logs());
}

/// The memory cgroup directory of host `name` of drill `id`.
fn memory_cgroup(id: &str, name: &str) -> PathBuf {
    let cgs = drill_daemon::host::cgroup::detect().expect("cgroup layout");
    let dirs = cgs.find(&format!("drill-{id}-{name}"));
    dirs.into_iter().find(|p| p.join("memory.limit_in_bytes").exists() || p.join("memory.max").exists()).expect("the host's memory cgroup")
}

#[test]
fn dmesg_in_a_host_shows_its_own_log_only() {
    if !privileged_or_skip("dmesg_in_a_host_shows_its_own_log_only") {
        return;
    }
    let mut d = TestDaemon::start("kmsg");
    assert_eq!(kmsg_mounts(&d).len(), 1, "the daemon serves the hosts' logs; log: {}", d.logs());
    let id = start(&d);
    // A line in the machine's log, written after the hosts started: no host shows it.
    let marker = format!("drill-test-marker-{}", std::process::id());
    std::fs::write("/dev/kmsg", format!("{marker}\n")).expect("writing the machine's /dev/kmsg");
    assert!(sh("dmesg | tail -n 50").contains(&marker), "the machine's log has the marker");

    let (code, out) = run(&d, &id, "server", "dmesg");
    assert_eq!(code, 0, "dmesg in the host: {out}");
    let release = sh("uname -r");
    assert!(out.lines().next().is_some_and(|l| l.contains("Linux version") && l.contains(release.trim())), "banner: {out}");
    assert!(!out.contains(&marker), "the host shows the machine's log: {out}");
    assert!(out.lines().count() <= 4, "only the host's records: {out}");
    // The raw records, as /dev/kmsg gives them (one per read).
    let (_, raw) = run(&d, &id, "server", "dd if=/dev/kmsg iflag=nonblock bs=8k count=1 2>/dev/null");
    assert!(raw.starts_with("5,0,0,-;Linux version"), "{raw}");

    // An OOM kill in the server's memory cgroup: the server's dmesg tells it, with the
    // victim's pid and name, in the kernel's words; the client's does not.
    let cg = memory_cgroup(&id, "server");
    let script = format!("echo $$ > {}; head -c 2147483648 /dev/zero | tail > /dev/null & echo $!; wait", cg.join("cgroup.procs").display());
    let out = std::process::Command::new("nsenter").arg(format!("--net=/run/netns/drill-{id}-server")).args(["sh", "-c", &script]).output().unwrap();
    let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("the victim's pid");
    let line = format!("Memory cgroup out of memory: Killed process {pid} (tail) total-vm:");
    let mut seen = String::new();
    let found = wait_until(Duration::from_secs(10), || {
        seen = run(&d, &id, "server", "dmesg").1;
        seen.contains(&line)
    });
    assert!(found, "no `{line}` in the server's dmesg: {seen}");
    assert!(seen.contains(&format!("task_memcg=/drill-{id}-server,task=tail,pid={pid}")), "{seen}");
    let (_, client) = run(&d, &id, "client", "dmesg");
    assert!(!client.contains("Killed process") && !client.contains("oom-kill"), "the client shows the server's OOM kill: {client}");

    // `dmesg -w` waits for new records as on the machine; it ends when its timeout
    // signals it, and one still waiting does not keep the host from stopping.
    let (code, out) = run(&d, &id, "server", "timeout 2 dmesg -w");
    assert_eq!(code, 124, "dmesg -w ended by its timeout: {out}");
    assert!(out.contains("Linux version"), "{out}");
    let (code, _) = run(&d, &id, "client", "(dmesg -w > /dev/null 2>&1 &); true");
    assert_eq!(code, 0);
    // `dmesg -S` (syslog(2)) reads the machine's buffer where the host holds CAP_SYSLOG
    // (a root owner's drill) or kernel.dmesg_restrict is 0; docs/hosts.md.
    let (code, out) = run(&d, &id, "server", "dmesg -S | tail -n 3");
    eprintln!("dmesg -S in a root owner's host (kernel.dmesg_restrict={}): exit {code}: {out}", sh("sysctl -n kernel.dmesg_restrict").trim());

    d.stop_checked(&id);
    let left: Vec<String> = std::fs::read_dir(d.state.join("kmsg")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(left.is_empty(), "host logs left after stop: {left:?}");
    let status = d.terminate();
    assert!(status.is_some_and(|s| s.success()), "drilld exit: {status:?}");
    assert!(kmsg_mounts(&d).is_empty(), "kmsg mount left after the daemon: {:?}", kmsg_mounts(&d));
    assert!(!d.state.join("kmsg").exists(), "mount point left");
}

#[test]
fn the_daemons_kmsg_mount_ends_with_it_even_when_killed() {
    if !privileged_or_skip("the_daemons_kmsg_mount_ends_with_it_even_when_killed") {
        return;
    }
    let mut d = TestDaemon::start("kmsgcrash");
    let id = start(&d);
    // A reader waiting in the killed daemon's file system must not stay stuck.
    let (code, _) = run(&d, &id, "server", "(dmesg -w > /dev/null 2>&1 &); true");
    assert_eq!(code, 0);
    d.crash();
    // The killed daemon's mount stays (stale) until a reset or the next daemon.
    assert_eq!(kmsg_mounts(&d).len(), 1, "{:?}", mounts_under(&d.state));
    let out = d.reset();
    assert!(out.status.success(), "drilld reset: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("kmsg"), "reset says what it unmounted: {}", String::from_utf8_lossy(&out.stdout));
    assert!(kmsg_mounts(&d).is_empty(), "kmsg mount left after reset: {:?}", kmsg_mounts(&d));
    assert!(wait_until(Duration::from_secs(10), || netns_of(&id).is_empty()), "netns left: {:?}", netns_of(&id));
    assert!(mounts_under(&d.state).is_empty(), "mounts left after reset: {:?}", mounts_under(&d.state));
    // A new daemon on the same state serves one mount, and none after it.
    d.spawn();
    assert_eq!(kmsg_mounts(&d).len(), 1, "{:?}", mounts_under(&d.state));
    d.crash();
    d.spawn();
    serving(&d);
    assert_eq!(kmsg_mounts(&d).len(), 1, "a new daemon replaces a killed one's mount: {:?}", mounts_under(&d.state));
    let status = d.terminate();
    assert!(status.is_some_and(|s| s.success()), "drilld exit: {status:?}");
    assert!(mounts_under(&d.state).is_empty(), "mounts left: {:?}", mounts_under(&d.state));
}
