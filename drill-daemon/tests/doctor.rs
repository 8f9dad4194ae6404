//! `drill doctor` end to end (issue 15): through a private daemon (GET /v1/doctor), as
//! root with no daemon (`drilld doctor`), and as an unprivileged user (what any process
//! can see, and the socket line). On a kernel without netem (this project's machines)
//! the report names netem missing and the drills that use the delay wire instead; on a
//! kernel with it, that case is skipped by name.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use common::*;

const NOBODY: u32 = 65534;

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn check<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["checks"].as_array().and_then(|a| a.iter().find(|c| c["id"] == id)).unwrap_or_else(|| panic!("no check {id} in {report}"))
}

/// The built-in drills whose delay uses netem where the kernel has it.
fn delay_drills(report: &serde_json::Value) -> Vec<String> {
    check(report, "qdisc:netem")["changes"].as_array().into_iter().flatten().flat_map(|c| c["drills"].as_array().cloned().unwrap_or_default()).filter_map(|d| d.as_str().map(String::from)).collect()
}

/// What the human report must say of netem, whichever way the facts came.
fn assert_netem_words(out: &str, report: &serde_json::Value) {
    if check(report, "qdisc:netem")["status"] != "missing" {
        eprintln!("SKIPPED the netem-missing case: this kernel has netem");
        return;
    }
    let drills = delay_drills(report);
    assert!(drills.contains(&"wan-latency-504".to_string()) && drills.contains(&"dns-ndots".to_string()), "{drills:?}");
    let lines: Vec<&str> = out.lines().collect();
    let i = lines.iter().position(|l| l.contains("missing") && l.contains("qdisc netem")).unwrap_or_else(|| panic!("no netem line:\n{out}"));
    assert!(lines[i + 1].contains(&format!("changes {}", drills.join(", "))) && lines[i + 1].contains("delay wire"), "{}", lines[i + 1]);
    assert!(lines[i + 2].contains("fix: modprobe sch_netem"), "{}", lines[i + 2]);
}

#[test]
fn doctor_through_the_daemon_reports_and_exits_0_here() {
    if !privileged_or_skip("doctor_through_the_daemon_reports_and_exits_0_here") {
        return;
    }
    let d = TestDaemon::start("doctor");
    let report = d.drill_json(&["doctor", "--json"], 0);
    assert_eq!(report["version"], 1);
    assert_eq!(report["exit_code"], 0, "{}", serde_json::to_string_pretty(&report["cannot_run"]).unwrap());
    assert_eq!(report["unchecked"], 0, "the daemon checks everything");
    assert!(report["drills"].as_u64().unwrap() > 20);
    for id in ["kernel:5.8", "btf", "program-type:raw_tracepoint", "tracepoint:sock:inet_sock_set_state", "nftables", "link:veth", "cgroup:memory", "binary:/usr/sbin/nginx"] {
        assert_eq!(check(&report, id)["status"], "ok", "{id}: {}", check(&report, id));
    }
    let daemon = check(&report, "daemon");
    assert_eq!(daemon["status"], "ok");
    let detail = daemon["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("socket {}: srw", d.socket.display())) && detail.contains("uid 0 (root) can connect"), "{detail}");

    let o = d.drill(&["doctor"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains(&format!("facts from drilld (pid {})", d.pid())), "{out}");
    assert!(out.contains("every built-in drill"), "{out}");
    assert!(out.contains(&format!("socket {}", d.socket.display())), "{out}");
    assert_netem_words(&out, &report);
    // No scratch namespace of the daemon's doctor is left.
    let left = sh(&format!("ip netns list | grep -- '-doctor-{}-' || true", d.pid()));
    assert!(left.trim().is_empty(), "{left}");
}

#[test]
fn doctor_as_root_without_a_daemon_runs_drilld_doctor() {
    if !privileged_or_skip("doctor_as_root_without_a_daemon_runs_drilld_doctor") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("drill-doctor-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("none.sock");
    let run = |json: bool| {
        let mut c = Command::new(drill_bin());
        c.arg("doctor").env("DRILL_SOCKET", &sock).env("DRILLD", drilld_bin());
        if json {
            c.arg("--json");
        }
        c.output().unwrap()
    };
    let o = run(true);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["unchecked"], 0, "drilld doctor checks everything as root");
    assert_eq!(check(&report, "daemon")["status"], "ok", "root can start the daemon");
    let o = run(false);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains(&format!("facts from `{} doctor`", drilld_bin().display())), "{out}");
    assert!(out.contains(&format!("socket {}: does not exist; as root, `drill start` starts drilld on demand", sock.display())), "{out}");
    assert_netem_words(&out, &report);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A user who cannot reach the daemon gets the facts any process can see, the socket
/// line and the checks that need root; one who can gets the daemon's facts.
#[test]
fn doctor_as_an_unprivileged_user() {
    if !privileged_or_skip("doctor_as_an_unprivileged_user") {
        return;
    }
    let d = TestDaemon::start("doctor-user");
    let nobody = |json: bool| {
        let mut c = Command::new(drill_bin());
        c.arg("--socket").arg(&d.socket).arg("doctor").env("DRILLD", "/nonexistent/drilld").uid(NOBODY).gid(NOBODY);
        if json {
            c.arg("--json");
        }
        c.output().unwrap()
    };
    // The test daemon's socket is root's (and the `drill` group's, where it exists).
    let o = nobody(false);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "no drill can run for a user who cannot reach drilld: {out}\n{err}");
    assert!(out.contains("not root: only what an unprivileged process can see"), "{out}");
    for line in [
        "ok       Linux 5.8 or newer",
        "ok       cgroup controller memory",
        "ok       tc (iproute2)",
        "ok       /usr/sbin/nginx (nginx-light)",
        "unknown  qdisc netem",
        "unknown  program type raw_tracepoint",
    ] {
        assert!(out.contains(line), "no `{line}` in:\n{out}");
    }
    assert!(out.contains(&format!("socket {}: srw", d.socket.display())) && out.contains(&format!("uid {NOBODY} cannot connect (permission denied)")), "{out}");
    assert!(out.contains("checks not made") && out.contains("they need root: run `sudo drill doctor`"), "{out}");
    assert!(out.contains("fix: run drill as root (sudo), or join the `drill` group"), "{out}");
    let report: serde_json::Value = serde_json::from_slice(&nobody(true).stdout).unwrap();
    assert_eq!(check(&report, "daemon")["status"], "missing");
    assert_eq!(check(&report, "qdisc:netem")["status"], "unknown");
    assert!(report["unchecked"].as_u64().unwrap() > 10, "{report}");

    // Opened to every user (what the `drill` group gives its members), the daemon answers.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = nobody(false);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains(&format!("facts from drilld (pid {})", d.pid())), "{out}");
    assert!(out.contains(&format!("uid {NOBODY} can connect (it is open to every user)")), "{out}");
    let report: serde_json::Value = serde_json::from_slice(&nobody(true).stdout).unwrap();
    assert_eq!(report["unchecked"], 0);
    assert_netem_words(&out, &report);
}
