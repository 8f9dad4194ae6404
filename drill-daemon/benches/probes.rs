//! `cargo xtask bench` (probe part). Run as root.
//! - overhead: TCP throughput between two drill hosts (iperf3) with every probe
//!   attached and watching both hosts vs no probe loaded, alternating, same run;
//! - per-program cost: ns per event from the kernel's BPF run-time stats
//!   (BPF_ENABLE_STATS, held only while measuring; no sysctl is changed);
//! - verdict latency: `drill submit` wall time minus the observation window.

mod common;

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drill_daemon::kernel::linux::netns;
use drill_daemon::{kernel::linux::topology, probes::Probes};
use serde_json::Value;

const TWO: &str = include_str!("../tests/fixtures/two-host.toml");
const THREE: &str = include_str!("../tests/fixtures/three-host.toml");
const ROUNDS: usize = 5;

fn row(name: &str, value: f64, unit: &str, baseline: Option<f64>) -> Value {
    common::row(name, value, unit, baseline, false)
}

fn median(v: &mut [f64]) -> f64 {
    common::median(v.to_vec())
}

/// One iperf3 run client -> server, 3 s; returns Gbit/s received.
fn iperf(client: &str, server: &str, dst: &str) -> f64 {
    let mut srv = Command::new("ip").args(["netns", "exec", server, "iperf3", "-s", "-1"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("iperf3 (apt-get install iperf3)");
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new("ip").args(["netns", "exec", client, "iperf3", "-c", dst, "-t", "3", "-J"]).output().unwrap();
    let _ = srv.wait();
    let v: Value = serde_json::from_slice(&out.stdout).expect("iperf3 JSON");
    v["end"]["sum_received"]["bits_per_second"].as_f64().expect("bits_per_second") / 1e9
}

/// (run_time_ns, run_cnt) of every loaded program whose name starts with `drill_`.
fn prog_stats() -> BTreeMap<String, (u64, u64)> {
    let mut m = BTreeMap::new();
    for info in aya::programs::loaded_programs().flatten() {
        let Some(name) = info.name_as_str().map(String::from) else {
            continue;
        };
        if !name.starts_with("drill_") {
            continue;
        }
        let Ok(fd) = info.fd() else { continue };
        let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_fd().as_raw_fd())).unwrap_or_default();
        let get = |k: &str| text.lines().find(|l| l.starts_with(k)).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()).unwrap_or(0);
        let e = m.entry(name).or_insert((0, 0));
        e.0 += get("run_time_ns:");
        e.1 += get("run_cnt:");
    }
    m
}

/// Mean wall time of one getppid(2) over 2 million calls (ns).
fn syscall_ns() -> f64 {
    const N: u32 = 2_000_000;
    let t = Instant::now();
    for _ in 0..N {
        // SAFETY: getppid takes no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
    t.elapsed().as_nanos() as f64 / f64::from(N)
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("the probe benchmark needs root: run `cargo xtask bench`, which uses sudo");
        std::process::exit(2);
    }
    let json_out = std::env::args().any(|a| a == "--json");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut rows = Vec::new();
    let id = format!("{:06x}", std::process::id() & 0xff_ffff);
    let s = drill_core::scenario::parse("two-host.toml", TWO).unwrap();
    let plan = drill_core::plan::compile(&s, &id, 0, drill_daemon::kernel::linux::tc::backends()).expect("plan compiles");
    let (client, server) = (plan.hosts[0].netns.clone(), plan.hosts[1].netns.clone());
    let inos: Vec<u32> = rt.block_on(async {
        let (conn, root, _) = rtnetlink::new_connection().unwrap();
        tokio::spawn(conn);
        topology::build(&plan, &root).await.unwrap();
        plan.hosts.iter().map(|h| netns::inode(&h.netns).unwrap()).collect()
    });
    eprintln!("bench: iperf3 with and without probes, {ROUNDS} paired rounds ...");
    // Throughput is measured with BPF run-time stats off (they add timing to every
    // program run); the ns-per-event figures come from one more run with stats on.
    let (mut without, mut with, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let load = |rt: &tokio::runtime::Runtime| {
        let _g = rt.enter();
        let probes = Probes::load();
        assert!(probes.status.iter().all(|p| p.loaded), "probes did not load: {:?}", probes.status);
        for ino in &inos {
            probes.watch(*ino, &[drill_core::scenario::TcpState::CloseWait]).unwrap();
        }
        probes
    };
    for _ in 0..ROUNDS {
        let wo = iperf(&client, &server, "10.77.9.2");
        let probes = load(&rt);
        let w = iperf(&client, &server, "10.77.9.2");
        drop(probes);
        without.push(wo);
        with.push(w);
        ratios.push(w / wo);
    }
    let probes = load(&rt);
    let stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).expect("BPF_ENABLE_STATS");
    iperf(&client, &server, "10.77.9.2");
    let per_prog = prog_stats();
    drop(stats);
    drop(probes);
    let (w, wo) = (median(&mut with), median(&mut without));
    rows.push(row("iperf3 throughput, no probes (median)", wo, "Gbit/s", None));
    rows.push(row("iperf3 throughput, all probes watching both hosts (median)", w, "Gbit/s", Some(wo)));
    rows.push(row(&format!("iperf3 with/without probes, median of {ROUNDS} paired rounds (target >= 0.97)"), median(&mut ratios), "ratio", None));
    for (name, (t, n)) in &per_prog {
        if *n > 0 {
            rows.push(row(&format!("probe {name}: run time per event ({n} events in one 3 s iperf3 run)"), *t as f64 / *n as f64, "ns", None));
        }
    }
    for h in &plan.hosts {
        let _ = netns::delete(&h.netns);
    }

    // What every process on the machine pays per system call: the ENOSPC probe sits on
    // raw_syscalls:sys_exit, so it is attached only while a drill counts ENOSPC.
    eprintln!("bench: system call cost with the ENOSPC probe detached and attached, {ROUNDS} paired rounds ...");
    let (mut none, mut idle, mut held) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        none.push(syscall_ns());
        let probes = {
            let _g = rt.enter();
            Probes::load()
        };
        idle.push(syscall_ns());
        probes.hold("bench", "drill_enospc").expect("attaching drill_enospc");
        held.push(syscall_ns());
        probes.release("bench", "drill_enospc").unwrap();
        drop(probes);
    }
    let n = median(&mut none);
    rows.push(row("getppid(2), no probes loaded (median)", n, "ns", None));
    rows.push(row("getppid(2), probes loaded, no drill needs the ENOSPC probe (detached)", median(&mut idle), "ns", Some(n)));
    rows.push(row("getppid(2), the ENOSPC probe attached (a disk-full drill runs)", median(&mut held), "ns", Some(n)));

    // Verdict latency: submit wall time minus the window, through the daemon.
    eprintln!("bench: verdict latency ...");
    let dir = PathBuf::from(format!("/run/drill-bench-probes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("d.sock");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_drilld"))
        .args(["serve", "--socket"])
        .arg(&sock)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env("DRILL_HISTORY", dir.join("history.sqlite"))
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let cli = PathBuf::from(env!("CARGO_BIN_EXE_drilld")).with_file_name("drill");
    let file = dir.join("three.toml");
    std::fs::write(&file, THREE).unwrap();
    let drill = |args: &[&str]| -> Value {
        let out = Command::new(&cli).arg("--socket").arg(&sock).args(args).output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };
    let did = drill(&["start", file.to_str().unwrap(), "--json"])["drill"]["id"].as_str().unwrap().to_string();
    let mut lat = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let v = drill(&["submit", &did, "--json"]);
        lat.push((t.elapsed().as_secs_f64() - v["window_secs"].as_f64().unwrap_or(1.0)) * 1e3);
    }
    rows.push(row("verdict latency after the window closes p50 (target < 1000)", median(&mut lat), "ms", Some(1000.0)));
    drill(&["stop", &did, "--json"]);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = daemon.wait();
    let _ = std::fs::remove_dir_all(&dir);

    common::print(&rows, json_out);
}
