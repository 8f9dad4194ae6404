//! `drill watch` in a terminal, as a user sees it (issue 15): the dashboard runs in a
//! tmux pane against a private daemon's firewall-drop drill; the test reads the pane
//! (`tmux capture-pane`) and types into it (`tmux send-keys`): the map names the hosts
//! and their link, the probe counters grow sparklines as the firewall drops the
//! client's SYNs, the service level shows the failing requests, `p` pauses and
//! resumes, `q` quits and gives the terminal back.

mod common;

use std::time::Duration;

use common::tmux::Tmux;
use common::*;

const SPARK: &[char] = &['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

#[test]
fn the_dashboard_under_tmux() {
    if !privileged_or_skip("the_dashboard_under_tmux") {
        return;
    }
    let d = TestDaemon::start("tmux");
    let id = d.start_scenario("firewall-drop");
    let t = Tmux::new("test", 0);
    let cmd = format!("{} --socket {} watch {id}", drill_bin().display(), d.socket.display());
    let out = t.session(150, 45, &cmd);
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
    t.send("p");
    let (ok, pane) = t.wait(5, |p| p.contains("PAUSED"));
    assert!(ok, "`p` did not pause:\n{pane}");
    t.send("p");
    let (ok, pane) = t.wait(5, |p| !p.contains("PAUSED"));
    assert!(ok, "`p` again did not resume:\n{pane}");

    // q quits: the program exits and its pane (the session's only one) closes.
    t.send("q");
    assert!(wait_until(Duration::from_secs(5), || !t.alive()), "`q` did not end drill watch:\n{}", t.pane());
    d.stop_clean(&id);
}
