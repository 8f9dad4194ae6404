//! `cargo xtask bench` (the timeline's command capture). Run as root.
//!
//! One burst of short-lived execs inside a drill host (8 parallel shell loops of a copy
//! of `true`), watched at the same time by drill's capture and by a bpftrace one-liner on
//! the same tracepoint (Debian's bpftrace, the reference tool). Rows:
//! - execs drill captured, against the number run (ratio 1 = every one);
//! - execs bpftrace saw on the same burst, against the number run;
//! - the burst's wall time in a drill host against the same burst on the machine itself:
//!   the whole cost of running there (the host's cgroup, its overlay root, `drill exec`,
//!   the capture), not the capture's alone (`bench probes` has its ns per event).

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const LOOPS: usize = 8;
const PER_LOOP: usize = 500;

fn cli() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_drilld")).with_file_name("drill")
}

struct Bench {
    dir: PathBuf,
    socket: PathBuf,
    daemon: std::process::Child,
}

impl Bench {
    fn start() -> Bench {
        let dir = PathBuf::from(format!("/run/drill-bench-timeline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("d.sock");
        let daemon = Command::new(env!("CARGO_BIN_EXE_drilld"))
            .args(["serve", "--socket"])
            .arg(&socket)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("DRILL_HISTORY", dir.join("history.sqlite"))
            .env("RUST_LOG", "warn")
            .stderr(std::fs::File::create(dir.join("drilld.log")).unwrap())
            .spawn()
            .expect("drilld");
        let t = Instant::now();
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(t.elapsed() < Duration::from_secs(20), "drilld did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Bench { dir, socket, daemon }
    }

    fn drill(&self, args: &[&str]) -> std::process::Output {
        Command::new(cli()).arg("--socket").arg(&self.socket).args(args).env("DRILL_HISTORY", self.dir.join("history.sqlite")).output().expect("drill CLI")
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.drill(&["stop", "--all"]);
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.daemon.id() as i32), nix::sys::signal::Signal::SIGTERM);
        let _ = self.daemon.wait();
        let _ = Command::new(env!("CARGO_BIN_EXE_drilld")).arg("reset").arg("--state-dir").arg(self.dir.join("state")).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The burst as a shell script: `LOOPS` loops of `PER_LOOP` execs of `bin`, in parallel.
fn burst(bin: &str) -> String {
    let one = format!("(i=0; while [ $i -lt {PER_LOOP} ]; do {bin}; i=$((i+1)); done) &");
    format!("{} wait", std::iter::repeat_n(one.as_str(), LOOPS).collect::<Vec<_>>().join(" "))
}

/// tracefs for bpftrace; unmounted again if we mounted it.
struct Tracefs(bool);

impl Tracefs {
    fn ensure() -> Tracefs {
        if std::path::Path::new("/sys/kernel/tracing/events").exists() {
            return Tracefs(false);
        }
        let ok = Command::new("mount").args(["-t", "tracefs", "tracefs", "/sys/kernel/tracing"]).status().is_ok_and(|s| s.success());
        Tracefs(ok)
    }
}

impl Drop for Tracefs {
    fn drop(&mut self) {
        if self.0 {
            let _ = Command::new("umount").arg("/sys/kernel/tracing").status();
        }
    }
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    if Command::new("bpftrace").arg("--version").output().is_err() {
        panic!("bpftrace is missing: `apt-get install bpftrace` (or `cargo xtask setup`)");
    }
    let _tracefs = Tracefs::ensure();
    let b = Bench::start();
    let out = b.drill(&["start", "firewall-drop", "--json"]);
    assert!(out.status.success(), "drill start: {}", String::from_utf8_lossy(&out.stderr));
    let id = serde_json::from_slice::<Value>(&out.stdout).unwrap()["drill"]["id"].as_str().unwrap().to_string();
    let dir = format!("/tmp/burst-{}", std::process::id());
    let bin = format!("{dir}/true");
    let prep = b.drill(&["exec", "--drill", &id, "api", "--", "sh", "-c", &format!("mkdir -p {dir} && cp /bin/true {bin}")]);
    assert!(prep.status.success());

    // bpftrace on the same tracepoint, one line per exec of the burst's binary.
    let script = format!("tracepoint:sched:sched_process_exec /str(args->filename) == \"{bin}\"/ {{ printf(\"x\\n\"); }}");
    let mut bt = Command::new("bpftrace").arg("-e").arg(&script).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("bpftrace");
    let stdout = bt.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let counter = std::thread::spawn(move || {
        let mut n = 0usize;
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if l.starts_with("Attaching") {
                let _ = tx.send(());
            } else if l == "x" {
                n += 1;
            }
        }
        n
    });
    // Its banner says it attached; give it a moment more either way.
    let _ = rx.recv_timeout(Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));

    let t = Instant::now();
    let run = b.drill(&["exec", "--drill", &id, "api", "--", "sh", "-c", &burst(&bin)]);
    let in_host = t.elapsed().as_secs_f64();
    assert!(run.status.success(), "the burst: {}", String::from_utf8_lossy(&run.stderr));
    std::thread::sleep(Duration::from_millis(1500));
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(bt.id() as i32), nix::sys::signal::Signal::SIGINT);
    let _ = bt.wait();
    let bt_seen = counter.join().unwrap();

    // The same burst on the machine (not watched), for the cost.
    let local = format!("{}/true", std::env::temp_dir().join(format!("drill-burst-{}", std::process::id())).display());
    std::fs::create_dir_all(std::path::Path::new(&local).parent().unwrap()).unwrap();
    std::fs::copy("/bin/true", &local).unwrap();
    let t = Instant::now();
    assert!(Command::new("sh").arg("-c").arg(burst(&local)).status().unwrap().success());
    let on_machine = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(std::path::Path::new(&local).parent().unwrap());

    // What drill kept: the record's commands of the burst's binary (after its exits are in).
    std::thread::sleep(Duration::from_secs(1));
    let rec = b.drill(&["report", &id, "--format", "json"]);
    let rec: Value = serde_json::from_slice(&rec.stdout).expect("the record");
    let rec = if rec.get("record").is_some() { rec["record"].clone() } else { rec };
    let captured = rec["events"].as_array().unwrap().iter().filter(|e| e["type"] == "command" && e["filename"] == bin.as_str()).count();
    let total = (LOOPS * PER_LOOP) as f64;
    let rows = vec![
        common::row(&format!("timeline: execs captured by drill of {} ({LOOPS} parallel shell loops in a host)", LOOPS * PER_LOOP), captured as f64, "execs", Some(total), false),
        common::row(&format!("timeline: execs seen by bpftrace of the same {} (reference)", LOOPS * PER_LOOP), bt_seen as f64, "execs", Some(total), false),
        common::row("timeline: the burst in a drill host (its cgroup, overlay root, capture on) vs on the machine, wall s", in_host, "s", Some(on_machine), false),
    ];
    common::print(&rows, json);
}
