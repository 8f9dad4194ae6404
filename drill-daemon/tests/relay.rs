//! The shell relay (issue 14; docs/API.md "Shell relay"): a member of the socket's group
//! who is not root enters the hosts of their own drills through the daemon. As uid
//! NOBODY, who started the drill: `drill exec` runs in the host (its hostname, uid 0
//! there, stderr apart, stdin relayed, the exit code back), `drill shell` under tmux
//! gets a pty of the host (`/dev/pts/N`), resizes reach it, `exit 3` is drill's exit
//! code and the terminal comes back as it was; what the shell writes to /tmp is in the
//! host's /tmp, not the machine's. OTHER, who does not own the drill, is refused both.
//! After every session (ended, or its client killed with SIGKILL) no process of it is
//! left in the host or outside it; a session open when its drill stops ends with 137,
//! and `drill stop` leaves nothing.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::tmux::Tmux;
use common::*;

const NOBODY: u32 = 65534;
const OTHER: u32 = 65533;

/// Removes a directory on drop, even when the test panics.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A daemon with an installed pack holding the two-host fixture (a user who is not root
/// may start installed scenarios by name, not files), its socket open to every uid.
fn daemon(tag: &str) -> (TestDaemon, RemoveOnDrop) {
    use std::os::unix::fs::PermissionsExt;
    let packs = PathBuf::from(format!("/run/drill-test-relay-packs-{}-{tag}", std::process::id()));
    let pack = packs.join("relaytest");
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::write(
        pack.join("pack.toml"),
        "name = \"relaytest\"\nversion = \"0.1.0\"\ndescription = \"the relay test's pack\"\nauthors = [\"drill tests\"]\nlicense = \"Apache-2.0\"\nengine = \">=0.1.0\"\n",
    )
    .unwrap();
    std::fs::write(pack.join("probe-two-host.toml"), include_str!("fixtures/two-host.toml")).unwrap();
    let d = TestDaemon::start_with_env(tag, &[("DRILL_PACKS_DIR", packs.to_str().unwrap())]);
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    (d, RemoveOnDrop(packs))
}

/// Starts the fixture as NOBODY: the drill id.
fn start_as_nobody(d: &TestDaemon) -> String {
    let out = drill_as(d, NOBODY, &["start", "relaytest/probe-two-host", "--json"], "");
    assert!(out.status.success(), "start as {NOBODY}: {}\n{}", text(&out.stderr), d.logs());
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["drill"]["id"].as_str().unwrap().to_string()
}

/// The CLI as `uid` (gid the same; std drops root's supplementary groups), with `stdin`.
fn drill_as(d: &TestDaemon, uid: u32, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut c = Command::new(drill_bin());
    c.arg("--socket").arg(&d.socket).args(args).envs(d.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))).env_remove("DRILL_RELAY").env("DRILLD", "/nonexistent/drilld-not-started-by-a-test");
    c.uid(uid).gid(uid).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("running drill");
    let mut w = child.stdin.take().unwrap();
    w.write_all(stdin.as_bytes()).unwrap();
    drop(w);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Root's own way in (the CLI's setns path, no relay): stdout.
fn root_exec(d: &TestDaemon, id: &str, host: &str, cmd: &str) -> String {
    let out = d.drill(&["exec", "--drill", id, host, "--", "sh", "-c", cmd]);
    assert!(out.status.success(), "root exec `{cmd}`: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Init pid of `host` of drill `id` (as root sees it).
fn init_pid(d: &TestDaemon, id: &str, host: &str) -> i32 {
    let v = d.drill_json(&["status", id, "--json"], 0);
    let hosts = v["hosts"].as_array().or_else(|| v[0]["hosts"].as_array()).expect("hosts in status").clone();
    hosts.iter().find(|h| h["name"] == host).and_then(|h| h["pid"].as_i64()).expect("the host's pid") as i32
}

/// Processes in the PID namespace of host init `init` (seen from the machine): (pid, comm).
fn in_host(init: i32) -> Vec<(i32, String)> {
    let ns = std::fs::read_link(format!("/proc/{init}/ns/pid")).unwrap();
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok().as_ref() == Some(&ns) {
            v.push((pid, std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()));
        }
    }
    v.sort();
    v
}

/// Children of `parent` that are not host inits (the relay's outer shells would be).
fn stray_children(parent: i32) -> Vec<String> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid: i32 = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0);
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string();
        if ppid == parent && comm != "drilld" && comm != "lxcfs" {
            v.push(format!("{pid} {comm}"));
        }
    }
    v
}

/// Waits until the host holds only what it held at `baseline` and the daemon has no
/// stray child; panics with what is left.
fn assert_session_gone(d: &TestDaemon, init: i32, baseline: &[(i32, String)], what: &str) {
    let mut left = Vec::new();
    let ok = wait_until(Duration::from_secs(8), || {
        left = in_host(init).into_iter().filter(|p| !baseline.contains(p)).collect();
        left.is_empty() && stray_children(d.pid()).is_empty()
    });
    assert!(ok, "{what}: left in the host: {left:?}; the daemon's stray children: {:?}", stray_children(d.pid()));
}

#[test]
fn a_member_execs_in_their_own_drill_only() {
    if !privileged_or_skip("a_member_execs_in_their_own_drill_only") {
        return;
    }
    let (d, _packs) = daemon("relay-exec");
    let id = start_as_nobody(&d);
    let init = init_pid(&d, &id, "server");
    let baseline = in_host(init);

    // The command runs in the host, as its root, stdout and stderr apart, exit code back.
    let out = drill_as(&d, NOBODY, &["exec", "server", "--", "sh", "-c", "hostname; id -u; echo err >&2; exit 7"], "");
    assert_eq!(out.status.code(), Some(7), "stdout {} stderr {}\n{}", text(&out.stdout), text(&out.stderr), d.logs());
    assert_eq!(text(&out.stdout), "server\n0\n");
    assert_eq!(text(&out.stderr), "err\n");
    // Stdin is relayed, and its end closes the command's stdin.
    let out = drill_as(&d, NOBODY, &["exec", "--drill", &id, "server", "--", "tr", "a-z", "A-Z"], "hello relay\n");
    assert_eq!((out.status.code(), text(&out.stdout)), (Some(0), "HELLO RELAY\n".to_string()), "{}", text(&out.stderr));
    // The host's capability set: the bounding set of the relayed command is the init's.
    let bnd = |pid: &str| root_exec(&d, &id, "server", &format!("grep CapBnd /proc/{pid}/status"));
    let out = drill_as(&d, NOBODY, &["exec", "server", "--", "grep", "CapBnd", "/proc/self/status"], "");
    assert_eq!(text(&out.stdout), bnd("1"), "{}", text(&out.stderr));

    // A file written in the host's /tmp is there, and not on the machine.
    let name = format!("/tmp/drill-relay-test-{}", std::process::id());
    let out = drill_as(&d, NOBODY, &["exec", "server", "--", "sh", "-c", &format!("echo relayed > {name}")], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(root_exec(&d, &id, "server", &format!("cat {name}")), "relayed\n");
    assert!(!Path::new(&name).exists(), "{name} is on the machine");

    // Unknown host: the daemon's error, exit 2.
    let out = drill_as(&d, NOBODY, &["exec", "nohost", "--", "true"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("has no host `nohost`"), "{}", text(&out.stderr));

    // Another member is refused both, as if the drill did not exist.
    for args in [vec!["exec", "--drill", &id, "server", "--", "id"], vec!["shell", "--drill", &id, "server"]] {
        let out = drill_as(&d, OTHER, &args, "");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&format!("no drill `{id}` is running")) && out.stdout.is_empty(), "{args:?}: {err}");
    }
    assert_session_gone(&d, init, &baseline, "after the sessions ended");

    // A client killed mid-session: the session and the jobs it started go too.
    let mut c = Command::new(drill_bin());
    c.arg("--socket").arg(&d.socket).args(["exec", "server", "--", "sh", "-c", "sleep 300 & sleep 301"]).envs(d.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut client = c.uid(NOBODY).gid(NOBODY).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    assert!(wait_until(Duration::from_secs(10), || in_host(init).iter().filter(|(_, c)| c == "sleep").count() == 2), "the sleeps did not start: {:?}", in_host(init));
    client.kill().unwrap();
    client.wait().unwrap();
    assert_session_gone(&d, init, &baseline, "after the client was killed");

    // A session open while its drill stops ends with 137 (the host's PID namespace goes).
    let mut c = Command::new(drill_bin());
    c.arg("--socket").arg(&d.socket).args(["exec", "server", "--", "sleep", "302"]).envs(d.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let open = c.uid(NOBODY).gid(NOBODY).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    assert!(wait_until(Duration::from_secs(10), || in_host(init).iter().any(|(_, c)| c == "sleep")), "the sleep did not start: {:?}", in_host(init));
    let out = drill_as(&d, NOBODY, &["stop", &id, "--json"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let open = open.wait_with_output().unwrap();
    assert_eq!(open.status.code(), Some(137), "{}", text(&open.stderr));
    assert!(netns_of(&id).is_empty(), "namespaces left: {:?}", netns_of(&id));
    d.assert_nothing_running();
    assert!(stray_children(d.pid()).is_empty(), "{:?}", stray_children(d.pid()));
}

#[test]
fn a_member_s_shell_is_a_terminal_in_the_host() {
    if !privileged_or_skip("a_member_s_shell_is_a_terminal_in_the_host") {
        return;
    }
    let (d, _packs) = daemon("relay-shell");
    let id = start_as_nobody(&d);
    let init = init_pid(&d, &id, "server");
    let baseline = in_host(init);
    let file = format!("/tmp/drill-relay-shell-{}", std::process::id());
    let env: String = d.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    let drill = format!("env {env} {} --socket {} shell server", drill_bin().display(), d.socket.display());

    // The shell, then what drill exits with and whether the terminal is cooked again.
    let t = Tmux::new("relay", NOBODY);
    let cmd = format!("{drill}; echo EXIT=$?; stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e echo | tr '\\n' ' '; echo; sleep 120");
    let out = t.session(100, 30, &cmd);
    assert!(out.status.success(), "tmux new-session: {}", text(&out.stderr));
    let (ok, pane) = t.wait(15, |p| p.contains("root@server"));
    assert!(ok, "no prompt of the host's shell:\n{pane}\n{}", d.logs());
    t.keys(&format!("tty; hostname; stty size; echo from-the-shell > {file}"));
    let (ok, pane) = t.wait(10, |p| p.contains("/dev/pts/") && p.lines().any(|l| l.trim() == "server") && p.contains("30 100"));
    assert!(ok, "tty, hostname and size:\n{pane}");
    t.tmux(&["resize-window", "-t", &t.name, "-x", "120", "-y", "40"]);
    std::thread::sleep(Duration::from_millis(500));
    t.keys("stty size");
    let (ok, pane) = t.wait(10, |p| p.contains("40 120"));
    assert!(ok, "the resize did not reach the pty:\n{pane}");
    t.keys("sleep 200 & exit 3");
    let (ok, pane) = t.wait(10, |p| p.contains("EXIT=3") && p.contains("icanon echo"));
    assert!(ok, "drill's exit code and the cooked terminal:\n{pane}");
    assert_eq!(root_exec(&d, &id, "server", &format!("cat {file}")), "from-the-shell\n");
    assert!(!Path::new(&file).exists(), "{file} is on the machine");
    assert_session_gone(&d, init, &baseline, "after `exit 3` (its background sleep too)");
    drop(t);

    // A shell whose client is killed with SIGKILL: hung up, with its jobs.
    let t = Tmux::new("relay-k", NOBODY);
    let out = t.session(100, 30, &format!("exec {drill}"));
    assert!(out.status.success(), "tmux new-session: {}", text(&out.stderr));
    let (ok, pane) = t.wait(15, |p| p.contains("root@server"));
    assert!(ok, "no prompt:\n{pane}");
    t.keys("sleep 300 & (sleep 301; true) & cat");
    assert!(wait_until(Duration::from_secs(10), || in_host(init).iter().filter(|(_, c)| c == "sleep").count() == 2), "the jobs did not start: {:?}", in_host(init));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(t.pane_pid()), nix::sys::signal::Signal::SIGKILL).unwrap();
    assert_session_gone(&d, init, &baseline, "after the shell's client was killed");
    drop(t);

    let out = drill_as(&d, NOBODY, &["stop", &id, "--json"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(netns_of(&id).is_empty(), "namespaces left: {:?}", netns_of(&id));
    d.assert_nothing_running();
}
