//! One drilld per state directory: a daemon started while another still holds the
//! directory waits for it, and auto-started daemons that follow one another (an idle
//! daemon exiting while the next `drill start` spawns a new one) never undo each
//! other's setup.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn a_second_daemon_waits_until_the_first_lets_go_of_the_state_directory() {
    if !privileged_or_skip("a_second_daemon_waits_until_the_first_lets_go_of_the_state_directory") {
        return;
    }
    let mut first = TestDaemon::start("handover");
    let socket2 = first.dir.join("second.sock");
    let log2 = first.dir.join("second.log");
    let mut second = Command::new(drilld_bin())
        .args(["serve", "--socket"])
        .arg(&socket2)
        .arg("--state-dir")
        .arg(&first.state)
        .env("RUST_LOG", "info")
        .env("DRILL_HISTORY", first.dir.join("history2.sqlite"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log2).unwrap())
        .stderr(std::fs::File::options().append(true).open(&log2).unwrap())
        .spawn()
        .unwrap();
    // While the first serves, the second neither serves nor touches the directory.
    assert!(wait_until(Duration::from_secs(10), || std::fs::read_to_string(&log2).unwrap_or_default().contains("waiting for the drilld that still holds the state directory")));
    std::thread::sleep(Duration::from_millis(500));
    assert!(!socket2.exists(), "the second daemon serves while the first holds {}", first.state.display());
    assert!(second.try_wait().unwrap().is_none());
    let id = first.start_scenario("firewall-drop");
    first.terminate();
    // Once the first is gone, the second takes over: it recovers nothing (the first
    // stopped its drill) and serves a drill with working /dev/kmsg binds.
    assert!(wait_until(Duration::from_secs(15), || std::os::unix::net::UnixStream::connect(&socket2).is_ok()), "{}", std::fs::read_to_string(&log2).unwrap_or_default());
    assert!(netns_of(&id).is_empty());
    let out = Command::new(drill_bin()).arg("--socket").arg(&socket2).args(["start", "firewall-drop", "--json"]).env("DRILL_HISTORY", first.dir.join("history2.sqlite")).output().unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), std::fs::read_to_string(&log2).unwrap_or_default());
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(second.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let st = second.wait().unwrap();
    assert!(st.success(), "{st}: {}", std::fs::read_to_string(&log2).unwrap_or_default());
    assert!(mounts_under(&first.state).is_empty(), "{:?}", mounts_under(&first.state));
}

#[test]
fn auto_started_daemons_follow_one_another_without_undoing_each_other() {
    if !privileged_or_skip("auto_started_daemons_follow_one_another_without_undoing_each_other") {
        return;
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let dir = std::path::PathBuf::from(format!("/run/drill-test-autostart-{}-{nanos:x}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = DirGuard(dir.clone());
    let (socket, state, history) = (dir.join("d.sock"), dir.join("state"), dir.join("history.sqlite"));
    let drill = |args: &[&str]| {
        Command::new(drill_bin())
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .env("DRILLD", drilld_bin())
            .env("DRILL_STATE_DIR", &state)
            .env("DRILL_HISTORY", &history)
            .output()
            .unwrap()
    };
    // Each stop leaves the daemon idle: it exits on its own while the next start
    // spawns a new one on the same state directory. A smoke test of the hand-over: the
    // race itself (about one start in three failed binding a host's /dev/kmsg, seen with
    // the release build) did not show in this debug-build loop before the lock; the
    // test above is the one that fails without it.
    const CYCLES: usize = 8;
    for i in 0..CYCLES {
        let out = drill(&["start", "firewall-drop", "--json"]);
        let log = || std::fs::read_to_string(dir.join("drilld.log")).unwrap_or_default();
        assert!(out.status.success(), "start {i} of {CYCLES}: {}\n{}", String::from_utf8_lossy(&out.stderr), log());
        let id = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["drill"]["id"].as_str().unwrap().to_string();
        let out = drill(&["stop", &id, "--json"]);
        assert!(out.status.success(), "stop {i}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(netns_of(&id).is_empty());
    }
    // The last daemon exits by itself and takes its views with it.
    assert!(wait_until(Duration::from_secs(20), || std::os::unix::net::UnixStream::connect(&socket).is_err() && mounts_under(&state).is_empty()), "{:?}", mounts_under(&state));
    eprintln!("{CYCLES} start/stop cycles across auto-started daemons: all clean");
}

/// Removes the test's directory, and anything a failed run left in it, on every way out.
struct DirGuard(std::path::PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("pgrep").args(["-f", &format!("drilld serve --socket {}", self.0.display())]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            }
        }
        let _ = wait_until(Duration::from_secs(15), || mounts_under(&self.0).is_empty());
        let _ = Command::new(drilld_bin()).arg("reset").arg("--state-dir").arg(self.0.join("state")).env("DRILL_HISTORY", self.0.join("history.sqlite")).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
