//! `drill watch` in a terminal, as a user sees it (issue 15): the dashboard runs in a
//! tmux pane against a private daemon's firewall-drop drill; the test reads the pane
//! (`tmux capture-pane`) and types into it (`tmux send-keys`): the map names the hosts
//! and their link, the probe counters grow sparklines as the firewall drops the
//! client's SYNs, the service level shows the failing requests, `p` pauses and
//! resumes, `q` quits and gives the terminal back.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

/// A tmux session of the test's own, killed on drop (even on panic).
struct Tmux(String);

impl Tmux {
    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux").args(["-L", &self.0]).args(args).env("SHELL", "/bin/sh").output().expect("tmux (apt-get install tmux; `cargo xtask setup` does)")
    }

    fn pane(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", &self.0]).stdout).into_owned()
    }

    fn alive(&self) -> bool {
        self.tmux(&["has-session", "-t", &self.0]).status.success()
    }

    /// Waits (up to `secs`) until the pane satisfies `f`; the last pane either way.
    fn wait(&self, secs: u64, f: impl Fn(&str) -> bool) -> (bool, String) {
        let mut last = String::new();
        let ok = wait_until(Duration::from_secs(secs), || {
            last = self.pane();
            f(&last)
        });
        (ok, last)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // -L: the test's own server, so this touches no one else's sessions.
        let _ = self.tmux(&["kill-server"]);
    }
}

const SPARK: &[char] = &['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

#[test]
fn the_dashboard_under_tmux() {
    if !privileged_or_skip("the_dashboard_under_tmux") {
        return;
    }
    let d = TestDaemon::start("tmux");
    let id = d.start_scenario("firewall-drop");
    let t = Tmux(format!("drilltest-{}", std::process::id()));
    let cmd = format!("{} --socket {} watch {id}", drill_bin().display(), d.socket.display());
    let out = t.tmux(&["new-session", "-d", "-s", &t.0, "-x", "150", "-y", "45", "-e", "TERM=xterm-256color", &cmd]);
    assert!(out.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&out.stderr));

    // The frame: header with the drill, the map, the counters, the service level.
    let (ok, pane) = t.wait(15, |p| p.contains(&format!("drill {id}")) && p.contains(" map ") && p.contains("probe counters") && p.contains(" service level "));
    assert!(ok, "the dashboard's frame did not appear:\n{pane}");
    assert!(pane.contains("client") && pane.contains("api"), "the map names both hosts:\n{pane}");
    assert!(pane.contains("firewall-drop"), "the header names the scenario:\n{pane}");
    assert!(pane.contains("q quit"), "the footer lists the keys:\n{pane}");

    // The firewall drops the loadgen's SYNs: a counter grows a sparkline, and the
    // service level shows requests failing.
    let (ok, pane) = t.wait(30, |p| p.chars().any(|c| SPARK.contains(&c)) && p.contains("% ok"));
    assert!(ok, "no sparkline or service level after 30 s:\n{pane}");
    assert!(pane.lines().any(|l| l.contains("drops")), "a drops counter is shown:\n{pane}");
    assert!(pane.contains("0% ok") || pane.contains("FAILED"), "the service level shows the failing requests:\n{pane}");

    // p pauses (the header says so), p again resumes.
    t.tmux(&["send-keys", "-t", &t.0, "p"]);
    let (ok, pane) = t.wait(5, |p| p.contains("PAUSED"));
    assert!(ok, "`p` did not pause:\n{pane}");
    t.tmux(&["send-keys", "-t", &t.0, "p"]);
    let (ok, pane) = t.wait(5, |p| !p.contains("PAUSED"));
    assert!(ok, "`p` again did not resume:\n{pane}");

    // q quits: the program exits and its pane (the session's only one) closes.
    t.tmux(&["send-keys", "-t", &t.0, "q"]);
    assert!(wait_until(Duration::from_secs(5), || !t.alive()), "`q` did not end drill watch:\n{}", t.pane());
    d.stop_clean(&id);
}
