//! `cargo xtask`: the project's tasks. See README.md.
//!
//! - `setup`: install the Debian packages drill needs (apt-get; sudo when not root);
//! - `build [--release]`: setup, then build drilld and drill;
//! - `run SCENARIO`: setup, build (release), start the drill (this starts drilld too);
//! - `bench [--json]`: benchmarks (as root) with baselines measured in the same run, and
//!   how long the built-in pack's self-test takes;
//! - `test`: setup, build, then every test: unit tests and the privileged end-to-end
//!   tests (as root; with sudo when not root), then the built-in pack's self-test
//!   (`drill pack test scenarios`). In CI (CI=true) a privileged test that cannot run
//!   fails instead of skipping.
//! - `fuzz [--secs N]`: the scenario and pack parsers under proptest (drill-core's
//!   tests/pack_fuzz.rs) in release, with fresh seeds, for N seconds (default 300).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

mod package;
mod progress;

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install missing Debian packages (build: clang, libbpf-dev; drills: iproute2, nftables, tcpdump, ...).
    Setup,
    /// Build drilld and drill.
    Build {
        #[arg(long)]
        release: bool,
    },
    /// Build everything and start a drill (starts drilld when none runs).
    Run {
        #[arg(default_value = "close-wait-leak")]
        scenario: String,
    },
    /// Benchmarks (as root): a table of figures with baselines measured in the same run.
    Bench {
        /// Print a JSON array of {name, value, unit, baseline, ratio} instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Run the whole test suite (unit + privileged end-to-end).
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The long forms of the robustness tests (as root): SIGKILL of drilld at random
    /// moments of start, submit, stop and idle, then reset or restart, `cycles` times
    /// (CI runs 8), printing the clean count and each recovery's time; then the machine
    /// snapshot before and after 4 rounds of every built-in scenario (CI runs 8 drills).
    Soak {
        #[arg(long, default_value_t = 50)]
        cycles: u32,
    },
    /// The Debian package: release build, man pages, completions, cargo-deb (target/debian/drill_*.deb).
    Package,
    /// (as root) Build the package, install it, check its files, units, man pages and
    /// completion, run a drill through the installed binaries on a socket-activated drilld,
    /// then purge it and check nothing remains. The package holds the debug build that
    /// `cargo xtask test` has just built (same files, units and scripts; no second
    /// optimised build of the whole workspace); `--release` packages the release build.
    PackageTest {
        #[arg(long)]
        release: bool,
    },
    /// Fuzz the scenario and pack parsers and validator (proptest, release) for a while.
    Fuzz {
        /// How long, in seconds (each of the fuzz targets gets this long).
        #[arg(long, default_value_t = 300)]
        secs: u64,
    },
}

/// Packages needed to build (first group) and inside drill hosts (second group).
// chromium: drill-core's report test renders the HTML report in it (tests/report_chromium.rs);
// tmux: the dashboard's test runs `drill watch` in a tmux pane (drill-daemon/tests/watch_tmux.rs).
const BUILD_PACKAGES: &[&str] = &["clang", "libbpf-dev", "linux-libc-dev", "pkg-config", "chromium", "tmux"];
const HOST_PACKAGES: &[&str] = &[
    "iproute2",
    "nftables",
    "iptables",
    "tcpdump",
    "iputils-ping",
    "iputils-tracepath",
    "dnsutils",
    "curl",
    "netcat-openbsd",
    "socat",
    "iperf3",
    "mtr-tiny",
    "traceroute",
    "conntrack",
    "ethtool",
    "strace",
    "lsof",
    "procps",
    "openssl",
    "util-linux",
    // insmod/modprobe/lsmod: learners expect them; tests/isolation.rs checks they fail in hosts.
    "kmod",
    // The reference the timeline's capture is compared with in `cargo xtask bench`.
    "bpftrace",
    // The real load balancer / ingress of the `nginx` service kind.
    "nginx-light",
    // The DNS server of the dns drills (workload `dnsmasq`).
    "dnsmasq-base",
    // The hosts' own /proc/meminfo, cpuinfo, uptime, loadavg (drill-daemon/src/host/procview.rs).
    "lxcfs",
];

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Setup => setup(),
        Cmd::Build { release } => setup().and_then(|_| build(release)),
        Cmd::Run { scenario } => setup().and_then(|_| build(true)).and_then(|_| run(&scenario)),
        Cmd::Test { args } => setup().and_then(|_| test(&args)),
        Cmd::Bench { json } => setup().and_then(|_| bench(json)),
        Cmd::Fuzz { secs } => fuzz(secs),
        Cmd::Package => setup().and_then(|_| package::package(true)).map(|_| ()),
        Cmd::PackageTest { release } => setup().and_then(|_| package::package_test(release)),
        Cmd::Soak { cycles } => setup().and_then(|_| soak(cycles)),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo test --release` of drill-core's pack_fuzz with DRILL_FUZZ_SECS: each target
/// runs rounds of fresh random cases until the time is up (no root needed).
fn fuzz(secs: u64) -> Result<()> {
    eprintln!("xtask fuzz: {secs} s per target (arbitrary bytes, mutated scenarios, mutated packs on disk)");
    run_cmd(Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).current_dir(root()).env("DRILL_FUZZ_SECS", secs.to_string()).args([
        "test",
        "--release",
        "-p",
        "drill-core",
        "--test",
        "pack_fuzz",
        "--",
        "--nocapture",
        "--test-threads",
        "3",
    ]))
}

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

pub(crate) fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `cmd` as is when root, else under sudo (keeping PATH and cargo's environment).
fn privileged(prog: &str) -> Command {
    if is_root() {
        Command::new(prog)
    } else {
        let mut c = Command::new("sudo");
        c.args(["--preserve-env=PATH,CARGO_HOME,RUSTUP_HOME,RUST_LOG,CI,DRILL_REQUIRE_PRIVILEGED,DRILL_HISTORY,DRILL_STATE_DIR", "--"]).arg(prog);
        c
    }
}

pub(crate) fn run_cmd(c: &mut Command) -> Result<()> {
    let desc = format!("{c:?}");
    let st = c.status().with_context(|| format!("running {desc}"))?;
    if !st.success() {
        bail!("{desc} failed ({st})");
    }
    Ok(())
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]).output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn setup() -> Result<()> {
    if Command::new("dpkg-query").arg("--version").output().is_err() {
        eprintln!("xtask setup: not a Debian-family system (no dpkg-query); install these yourself: {} {}", BUILD_PACKAGES.join(" "), HOST_PACKAGES.join(" "));
        return Ok(());
    }
    let missing: Vec<&str> = BUILD_PACKAGES.iter().chain(HOST_PACKAGES).copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        eprintln!("xtask setup: all {} packages present", BUILD_PACKAGES.len() + HOST_PACKAGES.len());
        return Ok(());
    }
    eprintln!("xtask setup: installing {} with apt-get{}", missing.join(" "), if is_root() { "" } else { " (through sudo)" });
    progress::spin("apt-get update", {
        let mut c = privileged("apt-get");
        c.args(["update", "-q"]);
        c
    })?;
    // Servers that drills run inside hosts (nginx, dnsmasq, ...) must not start on the
    // machine itself when their package is installed: without a policy-rc.d (Docker-like
    // images have one), one that refuses every start is put in place for the install and
    // removed after it, whatever the install's outcome.
    let policy = std::path::Path::new(POLICY_RC_D);
    let guard = !policy.exists();
    if guard {
        run_cmd(privileged("sh").args(["-c", &format!("printf '#!/bin/sh\\n# cargo xtask setup: no service starts during the install\\nexit 101\\n' > {POLICY_RC_D} && chmod 755 {POLICY_RC_D}")]))?;
    }
    let mut install = privileged("apt-get");
    install.env("DEBIAN_FRONTEND", "noninteractive").args(["install", "-y", "-q", "--no-install-recommends"]).args(&missing);
    let r = progress::apt_install(install);
    if guard {
        run_cmd(privileged("rm").args(["-f", POLICY_RC_D]))?;
    }
    r
}

/// Debian's hook that tells maintainer scripts whether a service may start (101: no).
const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    // A CI clone is built once: incremental state would only take disk.
    if std::env::var_os("CI").is_some_and(|v| v == "true") && std::env::var_os("CARGO_INCREMENTAL").is_none() {
        c.env("CARGO_INCREMENTAL", "0");
    }
    c
}

/// Free disk where target/ lives and target/'s size, printed so that a run that
/// fails for want of disk says so (the suite's target/ is ~3 GB; see Cargo.toml).
fn disk_report(when: &str) {
    let target = root().join("target");
    let dir = if target.exists() { target.clone() } else { root() };
    let free = Command::new("df").args(["-Pk"]).arg(&dir).output().ok().and_then(|o| {
        let s = String::from_utf8_lossy(&o.stdout).into_owned();
        s.lines().nth(1).and_then(|l| l.split_whitespace().nth(3).and_then(|k| k.parse::<u64>().ok()))
    });
    let used = Command::new("du").args(["-sk"]).arg(&target).output().ok().and_then(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().next().and_then(|k| k.parse::<u64>().ok()));
    let gib = |k: u64| k as f64 / (1024.0 * 1024.0);
    match (free, used) {
        (Some(f), u) => {
            eprintln!("xtask test: disk {when}: {:.1} GiB free, target/ {:.1} GiB", gib(f), gib(u.unwrap_or(0)));
            if f < 4 * 1024 * 1024 {
                eprintln!("xtask test: warning: under 4 GiB free; the build and the test binaries need about 3 GiB");
            }
        }
        (None, _) => eprintln!("xtask test: disk {when}: df gave no figure"),
    }
}

fn build(release: bool) -> Result<()> {
    let mut c = cargo();
    c.args(["build", "-p", "drill-daemon", "-p", "drill-cli"]);
    if release {
        c.arg("--release");
    }
    run_cmd(&mut c)
}

fn run(scenario: &str) -> Result<()> {
    let bin = root().join("target/release");
    let drill = bin.join("drill");
    if !is_root() {
        eprintln!("xtask run: starting the drill needs root; running it through sudo");
    }
    run_cmd(privileged(drill.to_str().unwrap_or("drill")).args(["start", scenario]))?;
    eprintln!();
    eprintln!("The binaries are in {}: put them on your PATH to type `drill ...`:", bin.display());
    eprintln!("  export PATH={}:$PATH", bin.display());
    Ok(())
}

fn test(args: &[String]) -> Result<()> {
    disk_report("before the build");
    // Binaries the end-to-end tests drive (drill and drilld, debug profile).
    run_cmd(cargo().args(["build", "--workspace", "--bins"]))?;
    test_suites(args)?;
    disk_report("after the tests");
    if !args.is_empty() {
        eprintln!("xtask test: a test filter was given: the built-in pack's self-test (`drill pack test scenarios`) is skipped");
        return Ok(());
    }
    // Every built-in scenario through its five stages (baseline, broken, workarounds,
    // fixed, clean) on this machine; exits non-zero when any stage fails.
    eprintln!("xtask test: the built-in pack's self-test: drill pack test scenarios");
    let drill = root().join("target/debug/drill");
    // A daemon it starts keeps its (empty: pack test's drills are ephemeral) history in
    // target/, not the machine's /var/lib/drill.
    // Its daemon's socket, log and state live in target/pack-test, not in the machine's
    // /run/drill (where an auto-started daemon leaves its drilld.log).
    // Not under /tmp (a checkout there): drilld refuses a state directory its hosts
    // mount their own /tmp over. Then in /run, removed after the run.
    let in_tmp = root().starts_with("/tmp");
    let pt = if in_tmp { PathBuf::from(format!("/run/drill-pack-test-{}", std::process::id())) } else { root().join("target/pack-test") };
    std::fs::create_dir_all(&pt)?;
    let _remove = in_tmp.then(|| RemoveDirOnDrop(pt.clone()));
    let state = pt.join("state");
    run_cmd(
        privileged(drill.to_str().unwrap_or("drill"))
            .arg("--socket")
            .arg(pt.join("drilld.sock"))
            .arg("pack")
            .arg("test")
            .arg(root().join("scenarios"))
            .env("DRILL_HISTORY", pt.join("history.sqlite"))
            .env("DRILL_STATE_DIR", &state),
    )?;
    // Lints: clippy over every target, warnings as errors (the debt stays at zero).
    if cargo().args(["clippy", "--version"]).output().is_ok_and(|o| o.status.success()) {
        eprintln!("xtask test: cargo clippy --workspace --all-targets -- -D warnings");
        run_cmd(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    } else {
        eprintln!("xtask test: clippy is not installed with this toolchain (`rustup component add clippy`): the lints are skipped");
    }
    // Last: the Debian package, installed, used and purged (as root; a few minutes).
    if is_root() {
        eprintln!("xtask test: the package test: cargo xtask package-test");
        let t = std::time::Instant::now();
        package::package_test(false)?;
        eprintln!("xtask test: package-test took {:.0?}", t.elapsed());
    } else {
        eprintln!("xtask test: not root: the package test (`sudo cargo xtask package-test`) is skipped");
    }
    Ok(())
}

fn soak(cycles: u32) -> Result<()> {
    if !is_root() {
        bail!("xtask soak kills and recovers drilld as root: run it with sudo");
    }
    run_cmd(cargo().args(["build", "--workspace", "--bins"]))?;
    run_cmd(cargo().args(["test", "-p", "drill-daemon", "--test", "crash", "--", "--nocapture"]).env("DRILL_CRASH_CYCLES", cycles.to_string()).env("DRILL_REQUIRE_PRIVILEGED", "1"))?;
    // The machine before and after every built-in scenario, 4 rounds (over 100 drills).
    run_cmd(
        cargo()
            .args(["test", "-p", "drill-daemon", "--test", "host_untouched", "--", "--nocapture"])
            .env("DRILL_UNTOUCHED_ALL", "1")
            .env("DRILL_UNTOUCHED_ROUNDS", "4")
            .env("DRILL_REQUIRE_PRIVILEGED", "1"),
    )
}

/// The unit and privileged end-to-end tests (`cargo test --workspace`).
fn test_suites(args: &[String]) -> Result<()> {
    if is_root() {
        return run_cmd(cargo().args(["test", "--workspace"]).args(args).env("DRILL_REQUIRE_PRIVILEGED", "1"));
    }
    // Not root: build the tests as this user, run them under sudo so that the
    // privileged ones run instead of skipping.
    eprintln!("xtask test: the privileged tests need root; running the test binaries through sudo");
    let out = cargo().args(["test", "--workspace", "--no-run", "--message-format=json"]).output().context("building the tests")?;
    if !out.status.success() {
        bail!("building the tests failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut failed = false;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(exe), true) = (v["executable"].as_str(), v["profile"]["test"].as_bool() == Some(true)) else {
            continue;
        };
        let st = privileged(exe).args(args).env("DRILL_REQUIRE_PRIVILEGED", "1").status()?;
        failed |= !st.success();
    }
    if failed {
        bail!("some tests failed");
    }
    Ok(())
}

fn bench(json: bool) -> Result<()> {
    // The benchmarks drive the release drill and drilld binaries.
    build(true)?;
    let out = cargo().args(["bench", "-p", "drill-daemon", "--no-run", "--message-format=json"]).output().context("building the benchmarks")?;
    if !out.status.success() {
        bail!("building the benchmarks failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut exes = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let (true, Some(exe)) = (v["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|x| x == "bench")), v["executable"].as_str()) {
            exes.push(exe.to_string());
        }
    }
    if !is_root() {
        eprintln!("xtask bench: the benchmarks need root; running them through sudo");
    }
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for exe in exes {
        let out = privileged(&exe).arg("--json").stderr(std::process::Stdio::inherit()).output().with_context(|| format!("running {exe}"))?;
        if !out.status.success() {
            bail!("{exe} failed ({})", out.status);
        }
        let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).with_context(|| format!("{exe} did not print a JSON array"))?;
        rows.extend(v);
    }
    rows.extend(bench_pack()?);
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{:<78} {:>10} {:<7} {:>10} {:>8}", "benchmark", "value", "unit", "baseline", "ratio");
    for r in &rows {
        let num = |k: &str| r[k].as_f64().map(|x| format!("{x:.2}")).unwrap_or_default();
        let ratio = r["ratio"].as_f64().map(|x| format!("{x:.2}x")).unwrap_or_default();
        println!("{:<78} {:>10} {:<7} {:>10} {:>8}", r["name"].as_str().unwrap_or(""), num("value"), r["unit"].as_str().unwrap_or(""), num("baseline"), ratio);
    }
    println!("(ratio = baseline / value: above 1 means faster or smaller than the baseline)");
    Ok(())
}

/// How long the built-in pack's self-test takes (`drill pack test scenarios`, release
/// binaries, `--jobs` the number of cores): the whole run and each stage summed over the
/// scenarios. A failing stage does not stop the bench; its count is in the row's name.
fn bench_pack() -> Result<Vec<serde_json::Value>> {
    let drill = root().join("target/release/drill");
    eprintln!("xtask bench: timing the built-in pack's self-test (drill pack test scenarios) ...");
    let out = privileged(drill.to_str().unwrap_or("drill"))
        .arg("pack")
        .arg("test")
        .arg(root().join("scenarios"))
        .arg("--json")
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running drill pack test")?;
    if out.status.code() == Some(2) {
        bail!("drill pack test scenarios could not run ({})", out.status);
    }
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).context("drill pack test --json did not print its report")?;
    let n = r["scenarios"].as_array().map_or(0, Vec::len);
    let failed = r["scenarios"].as_array().map_or(0, |v| v.iter().filter(|s| s["stages"].as_array().is_some_and(|st| st.iter().any(|x| x["status"] != "pass"))).count());
    let jobs = r["jobs"].as_u64().unwrap_or(0);
    let note = if failed > 0 { format!(", {failed} FAILED") } else { String::new() };
    let row = |name: String, v: f64| serde_json::json!({"name": name, "value": v, "unit": "s", "baseline": null, "ratio": null});
    let mut rows = vec![row(format!("pack test, built-in pack ({n} scenarios, --jobs {jobs}{note}): whole run"), r["wall_secs"].as_f64().unwrap_or(0.0))];
    if let Some(stages) = r["stage_secs"].as_object() {
        for (stage, secs) in stages {
            rows.push(row(format!("pack test, built-in pack: stage {stage}, summed over scenarios"), secs.as_f64().unwrap_or(0.0)));
        }
    }
    Ok(rows)
}

/// Removes a directory when dropped (on every way out of the function holding it).
struct RemoveDirOnDrop(PathBuf);

impl Drop for RemoveDirOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
