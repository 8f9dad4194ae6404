//! `cargo xtask bench` (start latency as a user feels it). Run as root.
//!
//! For every built-in drill, the wall time of `drill start ID --json` measured around
//! the CLI process, in two situations:
//! - the daemon auto-started by that very `drill start` (nothing listening on the
//!   socket before; the daemon exits again when the drill stops): the first thing a
//!   learner types;
//! - the daemon already running.
//!
//! Targets (issue 10): p50 <= 300 ms auto-started and <= 100 ms running; a drill whose
//! fault is a delay may add one round trip through that delay. The ratio column is
//! target / value, so above 1 means within the target.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Rounds per drill and situation.
const ROUNDS: usize = 5;

fn cli() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_drilld")).with_file_name("drill")
}

struct Bench {
    dir: PathBuf,
    socket: PathBuf,
}

impl Bench {
    fn drill(&self, args: &[&str]) -> (bool, Value) {
        let out = Command::new(cli())
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .env("DRILL_STATE_DIR", self.dir.join("state"))
            .env("DRILL_HISTORY", self.dir.join("history.sqlite"))
            .env("DRILLD", env!("CARGO_BIN_EXE_drilld"))
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null())
            .output()
            .expect("drill CLI (cargo build --release -p drill-cli)");
        (out.status.success(), serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
    }

    /// Times one `drill start`, then stops the drill.
    fn start_stop(&self, id: &str) -> f64 {
        let t = Instant::now();
        let (ok, v) = self.drill(&["start", id, "--json"]);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        assert!(ok, "drill start {id} failed: {v}");
        let drill = v["drill"]["id"].as_str().expect("drill id").to_string();
        assert!(self.drill(&["stop", &drill, "--json"]).0, "drill stop {drill}");
        ms
    }

    /// Waits until nothing serves the socket (an auto-started daemon exits when idle).
    fn wait_no_daemon(&self) {
        let t = Instant::now();
        while std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
            assert!(t.elapsed() < Duration::from_secs(20), "the auto-started drilld did not exit when idle");
            std::thread::sleep(Duration::from_millis(10));
        }
        // The socket file may stay; the CLI treats a refused connect as no daemon.
    }
}

struct Running(std::process::Child);

impl Running {
    fn start(b: &Bench) -> Running {
        let child = Command::new(env!("CARGO_BIN_EXE_drilld"))
            .args(["serve", "--socket"])
            .arg(&b.socket)
            .arg("--state-dir")
            .arg(b.dir.join("state"))
            .env("DRILL_HISTORY", b.dir.join("history.sqlite"))
            .env("RUST_LOG", "warn")
            .stderr(std::fs::File::create(b.dir.join("drilld.log")).expect("log"))
            .spawn()
            .expect("drilld");
        let t = Instant::now();
        while std::os::unix::net::UnixStream::connect(&b.socket).is_err() {
            assert!(t.elapsed() < Duration::from_secs(20), "drilld did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        Running(child)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0.id() as i32), nix::sys::signal::Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

fn scenario_ids(dir: &Path) -> Vec<(String, bool)> {
    let mut ids = Vec::new();
    for e in std::fs::read_dir(dir).expect("scenarios/").flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "toml") && p.file_name().is_some_and(|n| n != "pack.toml") {
            let text = std::fs::read_to_string(&p).expect("scenario");
            let s = drill_core::scenario::parse(&p.display().to_string(), &text).expect("built-in scenario parses");
            let delayed = s.faults.iter().any(|f| matches!(f, drill_core::scenario::Fault::Delay { .. }));
            ids.push((s.id, delayed));
        }
    }
    ids.sort();
    ids
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("the start-latency benchmark needs root: run `cargo xtask bench`, which uses sudo");
        std::process::exit(2);
    }
    let json_out = std::env::args().any(|a| a == "--json");
    let dir = PathBuf::from(format!("/run/drill-bench-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    // Removed on every way out, a failed start's panic included.
    let _cleanup = RemoveDir(dir.clone());
    let b = Bench { socket: dir.join("d.sock"), dir: dir.clone() };
    let ids = scenario_ids(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios"));
    let mut rows = Vec::new();
    let (mut all_auto, mut all_running) = (Vec::new(), Vec::new());
    for (id, delayed) in &ids {
        eprintln!("bench: drill start {id}, {ROUNDS} rounds auto-started and {ROUNDS} running ...");
        let mut auto = Vec::new();
        for _ in 0..ROUNDS {
            b.wait_no_daemon();
            auto.push(b.start_stop(id));
        }
        b.wait_no_daemon();
        let running = {
            let _d = Running::start(&b);
            // One start first so the daemon's lazy work is not counted as the drill's.
            b.start_stop(id);
            (0..ROUNDS).map(|_| b.start_stop(id)).collect::<Vec<f64>>()
        };
        let note = if *delayed { " (delay drill: one round trip of its delay allowed)" } else { "" };
        let (a50, r50) = (common::median(auto.clone()), common::median(running.clone()));
        rows.push(common::row(&format!("drill start {id}, daemon auto-started, p50 (target 300 ms){note}"), a50, "ms", Some(300.0), true));
        rows.push(common::row(&format!("drill start {id}, daemon running, p50 (target 100 ms){note}"), r50, "ms", Some(100.0), true));
        all_auto.extend(auto);
        all_running.extend(running);
    }
    rows.push(common::row("drill start, every built-in drill, daemon auto-started, p95", common::percentile(&mut all_auto, 95.0), "ms", None, true));
    rows.push(common::row("drill start, every built-in drill, daemon running, p95", common::percentile(&mut all_running, 95.0), "ms", None, true));
    common::print(&rows, json_out);
}

struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
