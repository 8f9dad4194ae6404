//! `cargo xtask bench` (topology part). Run as root. Prints one JSON array of
//! {name, value, unit, baseline, ratio} on stdout with `--json`, a table otherwise;
//! progress goes to stderr. Every figure is measured in this run, baselines included.
//!
//! - apply / teardown of a three-host router topology (3 namespaces, 2 veth pairs,
//!   addresses, routes, forwarding) through drilld's netlink engine, against the same
//!   topology built by a bash script of `ip` commands;
//! - `drill start` to "ready for the learner" of that topology with its web service;
//! - density: 20 concurrent three-host drills: all start, all pass their health check
//!   (`drill submit`), all stop leaving nothing; total time and memory.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use drill_core::plan::Plan;
use drill_daemon::kernel::linux::netns;
use drill_daemon::kernel::linux::topology;
use serde_json::Value;

const THREE_HOST: &str = include_str!("../tests/fixtures/three-host.toml");
const ITER: usize = 30;

use common::percentile as pct;

/// Ratios here say "how many times faster/smaller than the baseline": baseline / value.
fn row(name: &str, value: f64, unit: &str, baseline: Option<f64>) -> Value {
    common::row(name, value, unit, baseline, true)
}

fn plan(id: &str, slot: u8) -> Plan {
    let s = drill_core::scenario::parse("three-host.toml", THREE_HOST).expect("fixture parses");
    drill_core::plan::compile(&s, id, slot, drill_daemon::kernel::linux::tc::backends()).expect("plan compiles")
}

/// One netlink build: namespaces + workers + links/addresses/routes/sysctls.
async fn netlink_apply(p: &Plan, root: &rtnetlink::Handle) -> (f64, f64) {
    let t = Instant::now();
    let ns = topology::build(p, root).await.expect("apply");
    let apply = t.elapsed().as_secs_f64() * 1e3;
    // Sanity: the router forwards (outside the timing).
    let dst = p.host_address("server", false).unwrap();
    let ok = Command::new("ip").args(["netns", "exec", &p.hosts[0].netns, "ping", "-c1", "-W2", &dst.to_string()]).output().unwrap();
    assert!(ok.status.success(), "netlink-built topology does not forward");
    let t = Instant::now();
    drop(ns);
    for h in &p.hosts {
        netns::delete(&h.netns).expect("delete");
    }
    (apply, t.elapsed().as_secs_f64() * 1e3)
}

/// The same topology as a bash script of `ip` commands (what a shell-script lab does).
fn script(p: &Plan) -> (String, String) {
    let mut s = String::from("set -e\n");
    for h in &p.hosts {
        s += &format!("ip netns add {}\n", h.netns);
    }
    let ns = |n: &str| p.hosts.iter().find(|h| h.name == n).unwrap().netns.clone();
    for l in &p.links {
        s += &format!("ip link add {} netns {} type veth peer name {} netns {}\n", l.a_if, ns(&l.a_host), l.b_if, ns(&l.b_host));
    }
    for h in &p.hosts {
        s += &format!("ip -n {} link set lo up\n", h.netns);
        for i in &h.interfaces {
            for a in &i.addresses {
                s += &format!("ip -n {} addr add {a} dev {}\n", h.netns, i.name);
            }
            s += &format!("ip -n {} link set {} up\n", h.netns, i.name);
        }
        for r in &h.routes {
            s += &format!("ip -n {} route replace {} via {}\n", h.netns, r.to.map_or("default".into(), |c| c.to_string()), r.via);
        }
        for (k, v) in &h.sysctls {
            s += &format!("ip netns exec {} sysctl -qw {k}={v}\n", h.netns);
        }
    }
    let mut down = String::new();
    for h in &p.hosts {
        down += &format!("ip netns del {}\n", h.netns);
    }
    (s, down)
}

fn bash(script: &str) -> f64 {
    let t = Instant::now();
    let out = Command::new("bash").arg("-c").arg(script).output().expect("bash");
    assert!(out.status.success(), "script failed: {}", String::from_utf8_lossy(&out.stderr));
    t.elapsed().as_secs_f64() * 1e3
}

fn id(i: usize, tag: u32) -> String {
    format!("{:06x}", (tag.wrapping_mul(2654435761).wrapping_add(i as u32)) & 0xff_ffff)
}

struct Daemon {
    child: std::process::Child,
    dir: PathBuf,
    socket: PathBuf,
}

impl Daemon {
    fn start() -> Daemon {
        let dir = PathBuf::from(format!("/run/drill-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("d.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_drilld"))
            .args(["serve", "--socket"])
            .arg(&socket)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("DRILL_HISTORY", dir.join("history.sqlite"))
            .env("RUST_LOG", "warn")
            .stderr(std::fs::File::create(dir.join("drilld.log")).unwrap())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(t.elapsed() < Duration::from_secs(20), "drilld did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        Daemon { child, dir, socket }
    }

    fn drill(&self, args: &[&str]) -> (bool, Value) {
        let cli = PathBuf::from(env!("CARGO_BIN_EXE_drilld")).with_file_name("drill");
        let out = Command::new(cli).arg("--socket").arg(&self.socket).args(args).output().expect("drill CLI (cargo build --release -p drill-cli)");
        (out.status.success(), serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
    }

    fn rss_kib(pid: u32) -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status")).ok().and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())).unwrap_or(0)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// RSS of every process of our drills (host inits and services), in KiB.
fn drill_processes_rss() -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmd.starts_with(b"drilld\0host-init") || cmd.windows(9).any(|w| w == b"workload\0") {
            total += Daemon::rss_kib(pid);
        }
    }
    total
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("the topology benchmark needs root (namespaces, netlink): run `cargo xtask bench`, which uses sudo");
        std::process::exit(2);
    }
    let json_out = std::env::args().any(|a| a == "--json");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let tag = std::process::id();
    let mut rows = Vec::new();

    // 1. apply / teardown: netlink engine vs bash script of `ip` commands, interleaved.
    eprintln!("bench: apply/teardown, {ITER} rounds each ...");
    let (mut nl_apply, mut nl_down, mut sh_apply, mut sh_down) = (vec![], vec![], vec![], vec![]);
    rt.block_on(async {
        let (conn, root, _) = rtnetlink::new_connection().unwrap();
        tokio::spawn(conn);
        for i in 0..ITER {
            let p = plan(&id(2 * i, tag), 0);
            let (a, d) = netlink_apply(&p, &root).await;
            nl_apply.push(a);
            nl_down.push(d);
            let p = plan(&id(2 * i + 1, tag), 0);
            let (up, down) = script(&p);
            sh_apply.push(bash(&up));
            sh_down.push(bash(&down));
        }
    });
    for (what, nl, sh) in [("apply", &mut nl_apply, &mut sh_apply), ("teardown", &mut nl_down, &mut sh_down)] {
        for p in [50.0, 95.0] {
            let (b, v) = (pct(sh, p), pct(nl, p));
            rows.push(row(&format!("three-host router {what} p{p:.0}, ip script"), b, "ms", None));
            rows.push(row(&format!("three-host router {what} p{p:.0}, netlink (ratio: script/netlink)"), v, "ms", Some(b)));
        }
    }

    // 2. drill start -> ready (topology + host inits + service listening), via the daemon.
    eprintln!("bench: drill start to ready ...");
    let d = Daemon::start();
    let file = d.dir.join("three-host.toml");
    std::fs::write(&file, THREE_HOST).unwrap();
    let f = file.to_str().unwrap();
    let mut ready = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let (ok, v) = d.drill(&["start", f, "--json"]);
        ready.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(ok, "start failed: {v}");
        let id = v["drill"]["id"].as_str().unwrap().to_string();
        assert!(d.drill(&["stop", &id, "--json"]).0);
    }
    rows.push(row("drill start to ready p50 (three hosts + web service; target < 300)", pct(&mut ready, 50.0), "ms", Some(300.0)));
    rows.push(row("drill start to ready p95", pct(&mut ready, 95.0), "ms", None));

    // 3. density: 20 concurrent drills.
    eprintln!("bench: 20 concurrent drills ...");
    let rss0 = Daemon::rss_kib(d.child.id());
    let t = Instant::now();
    let mut rss10 = 0;
    let ids: Vec<String> = (0..20)
        .map(|i| {
            let (ok, v) = d.drill(&["start", f, "--json"]);
            assert!(ok, "start failed: {v}");
            if i == 9 {
                rss10 = Daemon::rss_kib(d.child.id());
            }
            v["drill"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    let started = t.elapsed().as_secs_f64();
    let handles: Vec<_> = ids
        .iter()
        .map(|id| {
            let (sock, id) = (d.socket.clone(), id.clone());
            std::thread::spawn(move || {
                let cli = PathBuf::from(env!("CARGO_BIN_EXE_drilld")).with_file_name("drill");
                Command::new(cli).arg("--socket").arg(sock).args(["submit", &id, "--json"]).output().map(|o| o.status.success()).unwrap_or(false)
            })
        })
        .collect();
    let passed = handles.into_iter().map(|h| h.join().unwrap_or(false)).filter(|ok| *ok).count();
    let rss_daemon = Daemon::rss_kib(d.child.id());
    let rss_hosts = drill_processes_rss();
    for id in &ids {
        assert!(d.drill(&["stop", id, "--json"]).0);
    }
    let total = t.elapsed().as_secs_f64();
    let left: usize = ids.iter().map(|id| std::fs::read_dir("/run/netns").unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with(&format!("drill-{id}-"))).count()).sum();
    rows.push(row("density: drills started", 20.0, "drills", None));
    rows.push(row("density: drills passing their health check", passed as f64, "drills", Some(20.0)));
    rows.push(row("density: time to start 20 drills", started, "s", None));
    rows.push(row("density: start, check and stop 20 drills", total, "s", None));
    rows.push(row("density: daemon RSS idle", rss0 as f64 / 1024.0, "MiB", None));
    rows.push(row("density: daemon RSS with 10 drills", rss10 as f64 / 1024.0, "MiB", None));
    rows.push(row("density: daemon RSS with 20 drills", rss_daemon as f64 / 1024.0, "MiB", None));
    rows.push(row("density: RSS of the 20 drills' processes (inits + services)", rss_hosts as f64 / 1024.0, "MiB", None));
    rows.push(row("density: namespaces left after stopping all", left as f64, "netns", None));
    drop(d);

    common::print(&rows, json_out);
}
