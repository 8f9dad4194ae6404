//! Helpers of the privileged end-to-end tests: a private drilld per test (own socket,
//! own state directory) whose guard tears everything down on drop, even on panic.
#![allow(dead_code)]

pub mod tmux;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Returns false (after saying why) when the test cannot run here. Under CI or
/// `cargo xtask test` (DRILL_REQUIRE_PRIVILEGED) it panics instead: CI must not skip.
pub fn privileged_or_skip(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if root {
        return true;
    }
    let why = "needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_BPF, CAP_PERFMON): run `cargo xtask test`, which uses sudo";
    if std::env::var_os("CI").is_some() || std::env::var_os("DRILL_REQUIRE_PRIVILEGED").is_some() {
        panic!("{test}: {why}; privileged tests must not be skipped here");
    }
    eprintln!("SKIPPED {test}: {why}");
    false
}

pub fn drilld_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_drilld"))
}

pub fn drill_bin() -> PathBuf {
    let p = drilld_bin().with_file_name("drill");
    assert!(p.is_file(), "{} is missing: build it first (`cargo build -p drill-cli`; `cargo xtask test` does)", p.display());
    p
}

/// A drilld of our own. Drop: SIGTERM (the daemon tears its drills down), then
/// SIGKILL if needed, then `drilld reset` on the state dir, then remove the dir.
pub struct TestDaemon {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub state: PathBuf,
    pub child: Option<Child>,
    /// Environment given to the daemon and to every CLI run (e.g. where packs are).
    pub env: Vec<(String, String)>,
}

impl TestDaemon {
    pub fn start(tag: &str) -> TestDaemon {
        Self::start_with_env(tag, &[])
    }

    /// A daemon (and CLI runs) with these environment variables set.
    pub fn start_with_env(tag: &str, env: &[(&str, &str)]) -> TestDaemon {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = PathBuf::from(format!("/run/drill-test-{tag}-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        // Each test daemon keeps its own history, never the machine's.
        if !env.iter().any(|(k, _)| k == "DRILL_HISTORY") {
            env.push(("DRILL_HISTORY".into(), dir.join("history.sqlite").display().to_string()));
        }
        let mut d = TestDaemon { socket: dir.join("d.sock"), state: dir.join("state"), dir, child: None, env };
        d.spawn();
        d
    }

    pub fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.join(format!("drilld-{}.log", Instant::now().elapsed().as_nanos()))).unwrap();
        let child = Command::new(drilld_bin())
            .arg("serve")
            .arg("--socket")
            .arg(&self.socket)
            .arg("--state-dir")
            .arg(&self.state)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting drilld");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("drilld exited early ({st}); logs in {}: {}", self.dir.display(), self.logs());
            }
            assert!(Instant::now() < deadline, "drilld did not listen within 20 s: {}", self.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn logs(&self) -> String {
        let mut s = String::new();
        for e in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().ends_with(".log") {
                s.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        s
    }

    /// Starts a built-in (or installed) scenario; its drill id.
    pub fn start_scenario(&self, scenario: &str) -> String {
        self.drill_json(&["start", scenario, "--json"], 0)["drill"]["id"].as_str().unwrap().to_string()
    }

    /// Stops drill `id` and checks nothing of it is left: no stop error, namespaces,
    /// host processes, mounts or cgroups.
    pub fn stop_clean(&self, id: &str) {
        self.stop_checked(id);
        self.assert_nothing_running();
    }

    /// Stops drill `id` and checks nothing of that drill is left (stop errors,
    /// namespaces, cgroups), while other drills of this daemon may still run.
    pub fn stop_checked(&self, id: &str) {
        let stop = self.drill_json(&["stop", id, "--json"], 0);
        assert_eq!(stop["errors"].as_array().map_or(0, Vec::len), 0, "{stop}");
        assert!(netns_of(id).is_empty(), "namespaces of {id} left: {:?}", netns_of(id));
        let left = sh(&format!("find /sys/fs/cgroup -maxdepth 2 -name 'drill-{id}-*'"));
        assert!(left.trim().is_empty(), "cgroups of {id} left: {left}");
    }

    /// No drill of this daemon is left: no host process, no mount under its state dir.
    pub fn assert_nothing_running(&self) {
        assert!(host_inits_with_parent(self.pid()).is_empty(), "host processes left: {:?}", host_inits_with_parent(self.pid()));
        assert!(self.drill_mounts().is_empty(), "mounts left: {:?}", self.drill_mounts());
    }

    /// Mounts of drills under the state dir: all but the daemon's own lxcfs (host/procview.rs)
    /// and hosts' kernel logs (host/kmsg.rs), which serve until the daemon ends.
    pub fn drill_mounts(&self) -> Vec<String> {
        let own = [self.state.join("lxcfs").display().to_string(), self.state.join("kmsg").display().to_string()];
        mounts_under(&self.state).into_iter().filter(|m| !own.iter().any(|o| m.split(' ').nth(1) == Some(o.as_str()))).collect()
    }

    /// Runs the CLI against this daemon.
    pub fn drill(&self, args: &[&str]) -> Output {
        Command::new(drill_bin()).arg("--socket").arg(&self.socket).args(args).envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))).output().expect("running drill")
    }

    /// The CLI started in the background against this daemon, its output discarded. A
    /// CLI whose daemon dies under it does not start one of its own (DRILLD points
    /// nowhere): the test owns the daemon.
    pub fn drill_background(&self, args: &[&str]) -> std::process::Child {
        Command::new(drill_bin())
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("DRILLD", "/nonexistent/drilld-not-started-by-a-test")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("running drill")
    }

    /// Runs the CLI, asserts its exit code, returns stdout parsed as JSON.
    /// Starts the router fixture with `faults` (TOML `[[faults]]` tables) added; returns
    /// the drill id.
    pub fn start_router_with(&self, name: &str, faults: &str) -> String {
        let text = include_str!("../fixtures/router.toml").replace("[[checks]]", &format!("{faults}\n[[checks]]"));
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        let out = self.drill(&["start", path.to_str().unwrap(), "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["drill"]["id"].as_str().unwrap().to_string()
    }

    pub fn drill_json(&self, args: &[&str], code: i32) -> serde_json::Value {
        let out = self.drill(args);
        assert_eq!(out.status.code(), Some(code), "drill {args:?}: stdout {} stderr {}\ndaemon log: {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr), self.logs());
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("drill {args:?}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// SIGTERM and wait for a clean exit (the daemon tears its drills down).
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// kill -9, as a crash would.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub fn reset(&self) -> Output {
        Command::new(drilld_bin()).arg("reset").arg("--state-dir").arg(&self.state).output().expect("drilld reset")
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.terminate();
        let _ = self.reset();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a command, returns stdout (asserting success).
/// `curl` over the daemon's socket as `uid` (gid the same): (HTTP status, body as JSON,
/// Null when it is not). An empty `body` sends none.
/// A file inside a running host, as the host sees it (`drill exec ... cat`); empty when
/// it is missing. A host's /var/log is on its own disk, not in the daemon's state.
pub fn host_file(d: &TestDaemon, id: &str, host: &str, path: &str) -> String {
    let out = d.drill(&["exec", "--drill", id, host, "--", "cat", path]);
    if out.status.success() { String::from_utf8_lossy(&out.stdout).to_string() } else { String::new() }
}

pub fn curl_as(uid: u32, socket: &Path, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new("curl");
    c.args(["-s", "-w", "\n%{http_code}", "--unix-socket"]).arg(socket).args(["-X", method]);
    if !body.is_empty() {
        c.args(["-H", "content-type: application/json", "--data-binary", body]);
    }
    let out = c.arg(format!("http://drill{path}")).uid(uid).gid(uid).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}

pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(out.status.success(), "`{cmd}` failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command inside a named network namespace, returns stdout (asserting success).
pub fn in_ns(ns: &str, cmd: &str) -> String {
    sh(&format!("ip netns exec {ns} {cmd}"))
}

/// Whether `pid` is still one of our host inits (not gone, not recycled).
pub fn is_host_init(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"drilld\0host-init\0")
}

/// Named network namespaces of drill `id` still on the machine.
pub fn netns_of(id: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns").into_iter().flatten().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with(&format!("drill-{id}-"))).collect()
}

/// Host init processes (of any drill) whose parent is `daemon_pid`, or orphans of it.
pub fn host_inits_with_parent(daemon_pid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmd != b"drilld\0host-init\0" {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid: i32 = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == daemon_pid {
            v.push(pid);
        }
    }
    v
}

/// Mount points under `dir` (overlays and binds of hosts) still in the root mount namespace.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mounts").unwrap_or_default().lines().filter(|l| l.contains(&d)).map(String::from).collect()
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// CLOSE_WAIT sockets on :8080 in a namespace, counted by `ss` from outside the drill.
pub fn close_wait_count(netns: &str) -> usize {
    sh(&format!("ip netns exec {netns} ss -Htan state close-wait '( sport = :8080 )'")).lines().count()
}

/// Deletes the named namespaces on drop, even when the test panics.
pub struct NetnsCleanup(pub Vec<String>);

impl Drop for NetnsCleanup {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = drill_daemon::kernel::linux::netns::delete(n);
        }
    }
}

/// The two-host fixture (client 10.77.9.1 -- server 10.77.9.2) planned under a unique
/// id (`salt` keeps tests of one binary apart); its namespaces are deleted on drop.
pub struct TwoHost {
    pub rt: tokio::runtime::Runtime,
    pub plan: drill_core::plan::Plan,
    pub cleanup: NetnsCleanup,
}

impl TwoHost {
    pub fn new(salt: u32) -> TwoHost {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let id = format!("{:06x}", (std::process::id() ^ salt) & 0xff_ffff);
        let s = drill_core::scenario::parse("two-host.toml", include_str!("../fixtures/two-host.toml")).unwrap();
        let plan = drill_core::plan::compile(&s, &id, 0, drill_daemon::kernel::linux::tc::backends()).expect("plan compiles");
        let cleanup = NetnsCleanup(plan.namespaces());
        TwoHost { rt, plan, cleanup }
    }

    /// The namespace of `host`.
    pub fn netns(&self, host: &str) -> String {
        self.plan.hosts.iter().find(|h| h.name == host).unwrap().netns.clone()
    }
}

/// A netlink handle in the root namespace (call inside the runtime).
pub fn root_netlink() -> rtnetlink::Handle {
    let (conn, root, _) = rtnetlink::new_connection().unwrap();
    tokio::spawn(conn);
    root
}

/// Requests out of `n` to `url` from netns `ns` that curl answers with 200.
pub fn curl_ok(ns: &str, url: &str, n: usize) -> usize {
    (0..n)
        .filter(|_| {
            let out = std::process::Command::new("ip").args(["netns", "exec", ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "1", url]).output().unwrap();
            std::thread::sleep(Duration::from_millis(100));
            String::from_utf8_lossy(&out.stdout) == "200"
        })
        .count()
}
