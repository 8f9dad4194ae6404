//! The timeline's command capture (privileged; a private drilld): a few hundred known
//! commands run in a drill's host every way a learner can (a tight shell loop, parallel
//! loops, programs started by xargs and python, `drill exec`, `drill shell`, the API's
//! exec) are all captured, with host, argv, cwd, uid and exit status; the same markers
//! run on the machine, in another drill's host, or through a netns-only helper are not.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

fn record(d: &TestDaemon, id: &str) -> Value {
    let rec = d.drill_json(&["report", id, "--format", "json"], 0);
    if rec.get("record").is_some() { rec["record"].clone() } else { rec }
}

fn commands(rec: &Value) -> Vec<Value> {
    rec["events"].as_array().unwrap().iter().filter(|e| e["type"] == "command").cloned().collect()
}

fn argv(c: &Value) -> Vec<String> {
    c["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

fn exec(d: &TestDaemon, id: &str, host: &str, script: &str) {
    let out = d.drill(&["exec", "--drill", id, host, "--", "sh", "-c", script]);
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn every_command_of_a_host_is_captured_and_nothing_foreign() {
    if !privileged_or_skip("every_command_of_a_host_is_captured_and_nothing_foreign") {
        return;
    }
    let d = TestDaemon::start("capture");
    let start = |name: &str| d.drill_json(&["start", name, "--json"], 0)["drill"]["id"].as_str().unwrap().to_string();
    let a = start("firewall-drop");
    let b = start("firewall-drop");
    let mut expected: BTreeSet<String> = BTreeSet::new();

    // A tight shell loop of short-lived programs.
    exec(&d, &a, "api", "for i in $(seq 200); do /bin/true mk-loop-$i; done");
    expected.extend((1..=200).map(|i| format!("mk-loop-{i}")));
    // Four loops at once.
    exec(&d, &a, "api", "for j in 1 2 3 4; do (for i in $(seq 50); do /bin/true mk-par-$j-$i; done) & done; wait");
    expected.extend((1..=4).flat_map(|j| (1..=50).map(move |i| format!("mk-par-{j}-{i}"))));
    // Started by programs that are not shells.
    exec(&d, &a, "api", "seq 50 | xargs -n1 -I{} /bin/echo mk-xargs-{} >/dev/null");
    expected.extend((1..=50).map(|i| format!("mk-xargs-{i}")));
    exec(&d, &a, "client", "python3 -c \"import subprocess; [subprocess.run(['/bin/true', 'mk-py-%d' % i]) for i in range(1, 31)]\"");
    expected.extend((1..=30).map(|i| format!("mk-py-{i}")));
    // Inside `drill shell` (its stdin a script, as a terminal's would be lines).
    let mut sh = Command::new(drill_bin()).arg("--socket").arg(&d.socket).args(["shell", "--drill", &a, "api"]).stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = sh.stdin.take().unwrap();
        writeln!(stdin, "cd /var/tmp").unwrap();
        writeln!(stdin, "for i in $(seq 20); do /bin/true mk-shell-$i; done").unwrap();
        writeln!(stdin, "exit").unwrap();
    }
    assert!(sh.wait().unwrap().success());
    expected.extend((1..=20).map(|i| format!("mk-shell-{i}")));
    // Through the API's exec (the daemon enters the host).
    let body = serde_json::json!({"host": "api", "command": "for i in $(seq 30); do /bin/true mk-api-$i; done"}).to_string();
    let api = Command::new("curl")
        .args(["-sf", "--unix-socket", d.socket.to_str().unwrap(), "-H", "content-type: application/json", "-d", &body, &format!("http://drill/v1/drills/{a}/exec")])
        .output()
        .unwrap();
    assert!(api.status.success(), "{}", String::from_utf8_lossy(&api.stderr));
    expected.extend((1..=30).map(|i| format!("mk-api-{i}")));
    // The API's exec runs its shell line inside the host's PID namespace: the line itself
    // is in the timeline, not only what it starts.
    let api_line = Command::new("curl")
        .args([
            "-sf",
            "--unix-socket",
            d.socket.to_str().unwrap(),
            "-H",
            "content-type: application/json",
            "-d",
            &serde_json::json!({"host": "api", "command": "exit 7"}).to_string(),
            &format!("http://drill/v1/drills/{a}/exec"),
        ])
        .output()
        .unwrap();
    let answer: Value = serde_json::from_slice(&api_line.stdout).unwrap();
    assert_eq!(answer["exit_code"], 7, "the exit status comes through: {answer}");
    // Working directory, uid, exit statuses, truncation.
    exec(
        &d,
        &a,
        "api",
        "cd /etc/ssl && /bin/true mk-cwd; setpriv --reuid 65534 /bin/true mk-uid; /bin/sh -c 'exit 3' mk-exit3; /bin/sleep 31 & p=$!; sleep 0.3; kill -9 $p; wait $p; /bin/true $(seq 1 400) ; /bin/true mk-long-$(head -c 2000 /dev/zero | tr '\\0' x)",
    );

    // Foreign: the machine, the other drill, a helper that only enters the network namespace.
    assert!(Command::new("sh").arg("-c").arg("for i in $(seq 20); do /bin/true mk-foreign-machine-$i; done").status().unwrap().success());
    exec(&d, &b, "api", "for i in $(seq 20); do /bin/true mk-foreign-other-$i; done");
    assert!(Command::new("ip").args(["netns", "exec", &format!("drill-{a}-api"), "/bin/true", "mk-foreign-netns"]).status().unwrap().success());

    std::thread::sleep(std::time::Duration::from_millis(500));
    let rec = record(&d, &a);
    let cmds = commands(&rec);
    let seen: BTreeSet<String> = cmds.iter().flat_map(argv).filter(|a| a.starts_with("mk-") && !a.starts_with("mk-long-")).collect();
    let caught = expected.iter().filter(|m| seen.contains(*m)).count();
    let foreign: Vec<&String> = seen.iter().filter(|m| m.starts_with("mk-foreign")).collect();
    eprintln!("capture ratio: {caught}/{} known commands captured ({:.1}%), {} foreign", expected.len(), 100.0 * caught as f64 / expected.len() as f64, foreign.len());
    let missing: Vec<&String> = expected.iter().filter(|m| !seen.contains(*m)).take(10).collect();
    assert_eq!(caught, expected.len(), "missing (first 10): {missing:?}");
    assert!(foreign.is_empty(), "foreign commands in the timeline: {foreign:?}");
    assert!(commands(&record(&d, &b)).iter().flat_map(argv).any(|a| a == "mk-foreign-other-1"), "the other drill has its own");

    // The program itself, not a shell or setpriv that named it.
    let by = |marker: &str| cmds.iter().find(|c| argv(c).iter().any(|a| a == marker) && ["/bin/true", "/bin/sh"].contains(&argv(c)[0].as_str())).unwrap_or_else(|| panic!("{marker} captured")).clone();
    for m in ["mk-loop-1", "mk-par-3-7", "mk-api-5", "mk-shell-4"] {
        let c = by(m);
        assert_eq!(c["host"], "api", "{c}");
        assert_eq!(c["service"], false, "{c}");
        assert_eq!(c["exit"], serde_json::json!({"how": "code", "value": 0}), "{c}");
        assert_eq!(argv(&c)[0], "/bin/true");
    }
    assert_eq!(by("mk-py-3")["host"], "client");
    let line = cmds.iter().find(|c| argv(c) == ["/bin/sh", "-c", "exit 7"]).expect("the API's shell line itself");
    assert_eq!(line["exit"], serde_json::json!({"how": "code", "value": 7}));
    assert_eq!(by("mk-shell-4")["cwd"], "/var/tmp");
    assert_eq!(by("mk-cwd")["cwd"], "/etc/ssl");
    assert_eq!(by("mk-loop-9")["uid"], 0);
    assert_eq!(by("mk-uid")["uid"], 65534);
    let setpriv = cmds.iter().find(|c| argv(c).first().is_some_and(|a| a == "setpriv")).expect("setpriv");
    assert_eq!(setpriv["exit"], serde_json::json!({"how": "code", "value": 0}), "an exec chain's first program ends with the process: {setpriv}");
    // Services are the init's workloads; a program the init inherited is not one.
    assert!(cmds.iter().any(|c| c["service"] == true && argv(c).get(1).is_some_and(|a| a == "workload")), "httpd's start is a service");
    exec(&d, &a, "api", "(sleep 0.2; /bin/true mk-orphan) & exit 0");
    std::thread::sleep(std::time::Duration::from_millis(800));
    let orphan = commands(&record(&d, &a)).into_iter().find(|c| argv(c).iter().any(|x| x == "mk-orphan")).expect("the orphan's program");
    assert_eq!(orphan["service"], false, "{orphan}");
    assert_eq!(by("mk-exit3")["exit"], serde_json::json!({"how": "code", "value": 3}));
    let sleep = cmds.iter().find(|c| argv(c) == ["/bin/sleep", "31"]).expect("the killed sleep");
    assert_eq!(sleep["exit"], serde_json::json!({"how": "signal", "value": 9}));
    let many = cmds.iter().find(|c| argv(c).len() > 1 && argv(c)[0] == "/bin/true" && argv(c)[1] == "1").expect("the 401-argument command");
    assert_eq!(many["argv_truncated"], true);
    assert!(argv(many).len() <= 64);
    let long = cmds.iter().find(|c| argv(c).iter().any(|a| a.starts_with("mk-long-"))).expect("the 2000-byte argument");
    assert_eq!(long["argv_truncated"], true);
    assert!(argv(long).concat().len() <= 1024);
    // The pids are the machine's, with the host's own beside them.
    let c = by("mk-loop-1");
    assert!(c["pid"].as_u64().unwrap() > 0 && c["host_pid"].as_u64().unwrap() > 0 && c["pid"] != c["host_pid"], "{c}");
    for id in [&a, &b] {
        assert!(d.drill(&["stop", id]).status.success());
    }
}
