//! Access and hostile input at the API (issue 14; docs/security.md): a drill belongs to
//! the uid that started it (SO_PEERCRED) and no other member of the `drill` group can
//! see, stop, exec into, submit or read it; reset is root's; a user who cannot open the
//! socket is told to join the group; malformed, oversized and unknown requests get API
//! errors, a panicking request is answered and the drills go on, thousands of idle
//! connections and a slow client do not stop the API, and one uid cannot hold more than
//! its share of connections. Caps on drills and memory refuse a start with the figures.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const NOBODY: u32 = 65534;
const OTHER: u32 = 65533;

fn open_socket_to_all(d: &TestDaemon) {
    use std::os::unix::fs::PermissionsExt;
    // What the `drill` group gives its members on a real machine.
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
}

/// One raw HTTP/1.1 request over a fresh connection (as root): (status, body).
fn raw(d: &TestDaemon, request: &[u8]) -> (u16, String) {
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // A server that refuses a body it will not read may close before it is all sent.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: drill\r\nconnection: close\r\n\r\n").into_bytes()
}

#[test]
fn a_drill_is_its_owner_s_alone() {
    if !privileged_or_skip("a_drill_is_its_owner_s_alone") {
        return;
    }
    let d = TestDaemon::start("access");
    open_socket_to_all(&d);
    let root_id = d.start_scenario("missing-route");
    let (status, body) = curl_as(NOBODY, &d.socket, "POST", "/v1/drills", r#"{"scenario":"missing-route"}"#);
    assert_eq!(status, 200, "{body}");
    let mine = body["drill"]["id"].as_str().unwrap().to_string();

    // Each user lists only their own drills; root lists every drill.
    let (_, list) = curl_as(NOBODY, &d.socket, "GET", "/v1/drills", "");
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [mine.as_str()], "uid {NOBODY} sees only its drill");
    let (_, list) = curl_as(OTHER, &d.socket, "GET", "/v1/drills", "");
    assert_eq!(list.as_array().map(Vec::len), Some(0), "another member sees none: {list}");
    let all = d.drill_json(&["status", "--json"], 0);
    let all = all.as_array().map(|a| a.len()).unwrap_or(0);
    assert_eq!(all, 2, "root sees both");

    // Nothing of another's drill: every endpoint answers as if it did not exist, and the
    // error does not name it among the running drills.
    let exec = r#"{"host":"client","command":"id -u"}"#;
    for (victim, asker) in [(&root_id, NOBODY), (&mine, OTHER)] {
        for (method, path, body) in [
            ("GET", format!("/v1/drills/{victim}"), ""),
            ("GET", format!("/v1/drills/{victim}/counters"), ""),
            ("POST", format!("/v1/drills/{victim}/submit"), "{}"),
            ("POST", format!("/v1/drills/{victim}/exec"), exec),
            ("POST", format!("/v1/drills/{victim}/hint"), "{}"),
            ("POST", format!("/v1/drills/{victim}/solve"), r#"{"apply":false}"#),
            ("POST", format!("/v1/drills/{victim}/ack"), "{}"),
            ("POST", format!("/v1/drills/{victim}/faults/ebpf/0"), r#"{"percent":0}"#),
            ("DELETE", format!("/v1/drills/{victim}"), ""),
        ] {
            let (status, v) = curl_as(asker, &d.socket, method, &path, body);
            assert_eq!((status, v["code"].as_str()), (404, Some("drill_not_found")), "uid {asker} {method} {path}: {v}");
            let running = v["error"].as_str().unwrap_or("").split_once(" is running (").map(|(_, r)| r.to_string()).unwrap_or_default();
            assert!(!running.contains(victim.as_str()), "does not list another's drill among the running ones: {v}");
        }
        let (status, v) = curl_as(asker, &d.socket, "GET", &format!("/v1/drills/{victim}/record"), "");
        assert_eq!((status, v["code"].as_str()), (404, Some("record_not_found")), "{v}");
    }
    // Both drills still run, untouched.
    assert_eq!(d.drill_json(&["status", "--json"], 0).as_array().map(Vec::len), Some(2));

    // Reset acts on every user's drills: root's alone.
    let (status, v) = curl_as(NOBODY, &d.socket, "POST", "/v1/reset", "{}");
    assert_eq!((status, v["code"].as_str()), (403, Some("root_only")), "{v}");
    assert!(v["hint"].as_str().unwrap_or("").contains("drill stop --all"), "{v}");

    // The owner works its own drill: exec runs inside the host (as the host's root).
    let (status, v) = curl_as(NOBODY, &d.socket, "POST", &format!("/v1/drills/{mine}/exec"), exec);
    assert_eq!((status, v["exit_code"].as_i64(), v["stdout"].as_str()), (200, Some(0), Some("0\n")), "{v}");
    // Through the CLI too: `drill stop --all` as that user stops only its own drill.
    let out = Command::new(drill_bin()).arg("--socket").arg(&d.socket).args(["stop", "--all", "--json"]).env("DRILLD", "/nonexistent").uid(NOBODY).gid(NOBODY).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stopped"], serde_json::json!([mine]), "{v}");
    let left = d.drill_json(&["status", "--json"], 0);
    assert_eq!(left.as_array().map(|a| a.iter().map(|x| x["id"].as_str().unwrap().to_string()).collect::<Vec<_>>()), Some(vec![root_id.clone()]));
    assert!(netns_of(&mine).is_empty(), "the owner's stop removed its drill");
    d.stop_clean(&root_id);
}

#[test]
fn a_user_who_cannot_open_the_socket_is_told_to_join_the_group() {
    if !privileged_or_skip("a_user_who_cannot_open_the_socket_is_told_to_join_the_group") {
        return;
    }
    let d = TestDaemon::start("access-denied");
    let mode = std::fs::metadata(&d.socket).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777).unwrap();
    assert!(mode == 0o600 || mode == 0o660, "the socket is root's (and group drill's when it exists): {mode:o}");
    let out = Command::new(drill_bin()).arg("--socket").arg(&d.socket).args(["status"]).env("DRILLD", "/nonexistent").uid(NOBODY).gid(NOBODY).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused");
    assert!(err.contains("permission denied") && err.contains("`drill` group") && err.contains("usermod -aG drill"), "{err}");
}

#[test]
fn hostile_requests_get_errors_and_the_daemon_serves_on() {
    if !privileged_or_skip("hostile_requests_get_errors_and_the_daemon_serves_on") {
        return;
    }
    let d = TestDaemon::start_with_env("hostile", &[("DRILLD_TEST_HOOKS", "1")]);
    let id = d.start_scenario("missing-route");

    // Malformed and misshapen bodies: 400 in the API's error shape, naming the problem.
    for body in ["{not json", r#"{"scenario": 5}"#, r#""start""#, "\u{0}\u{1}"] {
        let req = format!("POST /v1/drills HTTP/1.1\r\nhost: drill\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        let (status, text) = raw(&d, req.as_bytes());
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{body:?}: not an API error ({e}): {text}"));
        assert_eq!((status, v["code"].as_str()), (400, Some("bad_request")), "{body:?}: {v}");
        assert!(v["error"].as_str().unwrap().contains("request body"), "{v}");
    }
    // An oversized body (2 MiB, over the 1 MiB limit): 413, not read whole.
    let big = format!("{{\"scenario\":\"{}\"}}", "x".repeat(2 << 20));
    let req = format!("POST /v1/drills HTTP/1.1\r\nhost: drill\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{big}", big.len());
    let (status, text) = raw(&d, req.as_bytes());
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    assert_eq!((status, v["code"].as_str()), (413, Some("body_too_large")), "{text:.300}");
    // Unknown and impossible ids.
    let (status, text) = raw(&d, &get("/v1/drills/abcdef"));
    assert_eq!(status, 404, "{text}");
    let (status, text) = raw(&d, &get("/v1/drills/..%2f..%2fetc"));
    assert_eq!(status, 400, "{text}");
    let (status, _) = raw(&d, &get("/v1/nothing-here"));
    assert_eq!(status, 404);

    // A request that panics is answered, logged, and the drill goes on.
    let (status, text) = raw(&d, b"POST /v1/test/panic HTTP/1.1\r\nhost: drill\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    assert_eq!((status, v["code"].as_str()), (500, Some("internal")), "{text}");
    assert!(d.logs().contains("a request panicked"), "logged");
    assert_eq!(d.drill_json(&["status", &id, "--json"], 0)[0]["id"], id.as_str(), "the drill survived the panic");

    // Thousands of idle connections and a client that never finishes its request: the
    // API still answers, and every concurrent caller gets its answer.
    let idle: Vec<UnixStream> = (0..2000).map(|_| UnixStream::connect(&d.socket).expect("connect")).collect();
    let mut slow = UnixStream::connect(&d.socket).unwrap();
    slow.write_all(b"POST /v1/drills HTTP/1.1\r\nhost: drill\r\ncontent-length: 100\r\n\r\n{\"scen").unwrap();
    let t = Instant::now();
    let answers: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..100).map(|_| s.spawn(|| raw(&d, &get(&format!("/v1/drills/{id}"))).0)).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let took = t.elapsed();
    assert!(answers.iter().all(|s| *s == 200), "every status call answered beside 2000 idle connections: {answers:?}");
    eprintln!("100 concurrent status calls beside 2000 idle connections and a slow client: {} ms", took.as_millis());
    drop(idle);
    drop(slow);

    // One uid holds at most its share of connections; the next gets a readable 503, and
    // root (and the others) go on.
    std::fs::set_permissions(&d.socket, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let script = format!(
        r#"
import socket, time
held = []
for i in range(64):
    s = socket.socket(socket.AF_UNIX); s.connect({sock:?}); held.append(s)
time.sleep(0.5)
s = socket.socket(socket.AF_UNIX); s.connect({sock:?}); s.settimeout(10)
s.sendall(b"GET /v1/drills HTTP/1.1\r\nhost: drill\r\nconnection: close\r\n\r\n")
data = b""
while True:
    b = s.recv(65536)
    if not b: break
    data += b
print(data.decode(errors="replace").split("\r\n")[0])
print(data.decode(errors="replace").split("\r\n\r\n", 1)[-1])
for h in held: h.close()
time.sleep(0.5)
s = socket.socket(socket.AF_UNIX); s.connect({sock:?}); s.settimeout(10)
s.sendall(b"GET /v1/drills HTTP/1.1\r\nhost: drill\r\nconnection: close\r\n\r\n")
print(s.recv(65536).decode(errors="replace").split("\r\n")[0])
"#,
        sock = d.socket.display().to_string()
    );
    let out = Command::new("/usr/bin/python3").args(["-c", &script]).uid(NOBODY).gid(NOBODY).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(out.status.success() && lines.len() >= 3, "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(lines[0].starts_with("HTTP/1.1 503"), "the 65th connection of one uid is refused: {text}");
    let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(v["code"], "busy", "{v}");
    assert!(lines[2].starts_with("HTTP/1.1 200"), "closing them gives the slots back: {text}");

    // The drill is still judged after all of it.
    let out = d.drill(&["submit", &id, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    assert!(v["passed"].is_boolean(), "submit answers with a verdict: {v} {}", String::from_utf8_lossy(&out.stderr));
    d.stop_clean(&id);
}

#[test]
fn caps_on_drills_and_memory_refuse_a_start_with_the_figures() {
    if !privileged_or_skip("caps_on_drills_and_memory_refuse_a_start_with_the_figures") {
        return;
    }
    // missing-route has 3 hosts of 256 MiB (768 MiB), firewall-drop 2 (512 MiB): a budget
    // of 1280M holds one of each, not two of the first.
    let d = TestDaemon::start_with_env("caps", &[("DRILL_MAX_DRILLS", "2"), ("DRILL_MEMORY_BUDGET", "1280M")]);
    let first = d.start_scenario("missing-route");
    let out = d.drill(&["start", "missing-route"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second 768 MiB drill is over a 1280 MiB budget");
    assert!(
        err.contains("over the limit on memory") && err.contains("asks 768 MiB for its 3 hosts") && err.contains("hold 768 MiB of the 1280 MiB budget") && err.contains("DRILL_MEMORY_BUDGET"),
        "{err}"
    );
    // A small drill fits; then the count cap says so.
    let small = d.drill_json(&["start", "firewall-drop", "--json"], 0)["drill"]["id"].as_str().unwrap().to_string();
    let out = d.drill(&["start", "firewall-drop"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("over the limit on drills") && err.contains("DRILL_MAX_DRILLS=2"), "{err}");
    assert_eq!(d.drill_json(&["status", "--json"], 0).as_array().map(Vec::len), Some(2), "the refused starts left nothing");
    assert!(d.drill(&["stop", &small]).status.success());
    d.stop_clean(&first);
}
