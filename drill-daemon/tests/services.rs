//! Service misbehaviours made through the built-in workloads' configs, each checked
//! from outside (ss, curl, the client's own latency log) and each undone by the fix
//! an engineer would make (edit the config, `svc restart`).

mod common;

use std::time::Duration;

use common::*;

fn service_log(d: &TestDaemon, id: &str, host: &str, service: &str) -> String {
    host_file(d, id, host, &format!("/var/log/{service}.log"))
}

/// The last "latency p50 X ms" the loadgen logged after `skip` lines.
fn loadgen_p50(d: &TestDaemon, id: &str, skip: usize) -> Option<f64> {
    let log = service_log(d, id, "client", "loadgen");
    log.lines().skip(skip).filter(|l| !l.contains("failed, latency p50 -")).filter_map(|l| l.split("latency p50 ").nth(1)?.split(" ms").next()?.parse().ok()).last()
}

#[test]
fn keepalive_mismatch_nagle_and_backlog_are_visible_from_outside_and_fixable() {
    if !privileged_or_skip("keepalive_mismatch_nagle_and_backlog_are_visible_from_outside_and_fixable") {
        return;
    }
    let d = TestDaemon::start("svcbug");
    let path = d.dir.join("services.toml");
    std::fs::write(&path, include_str!("fixtures/services.toml")).unwrap();
    let id = d.drill_json(&["start", path.to_str().unwrap(), "--json"], 0)["drill"]["id"].as_str().unwrap().to_string();
    let ns = |h: &str| format!("drill-{id}-{h}");
    // Through `drill exec`: names resolve through the host's own /etc/hosts.
    let curl = |h: &str, url: &str| String::from_utf8_lossy(&d.drill(&["exec", "--drill", &id, h, "--", "curl", "-s", "-o", "/dev/null", "-m", "3", "-w", "%{http_code}", url]).stdout).to_string();

    // A listen backlog of 1: what ss shows as the listener's Send-Q.
    let l = sh(&format!("ip netns exec {} ss -Hltn sport = :8080", ns("api")));
    assert_eq!(l.split_whitespace().nth(2), Some("1"), "{l}");

    // The proxy keeps idle upstream connections for 60 s, the backend closes them after
    // 1 s: a request after a pause reuses a closed connection and gets 502.
    assert_eq!(curl("client", "http://lb/"), "200");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(curl("client", "http://lb/"), "502");
    let log = service_log(&d, &id, "lb", "proxy");
    assert!(log.contains("upstream prematurely closed connection on a reused connection"), "{log}");

    // Nagle on a keep-alive client that writes head and body apart: each request waits
    // for the server's delayed ACK, ~40 ms.
    assert!(wait_until(Duration::from_secs(12), || loadgen_p50(&d, &id, 0).is_some()), "{}", service_log(&d, &id, "client", "loadgen"));
    let slow = loadgen_p50(&d, &id, 0).unwrap();
    assert!((30.0..=60.0).contains(&slow), "with Nagle the client's p50 was {slow} ms");

    // The fixes, as an engineer makes them.
    for (host, cmd) in [
        ("client", "sed -i 's/^nodelay = false/nodelay = true/' /etc/loadgen/loadgen.toml && svc restart loadgen"),
        ("lb", "sed -i 's/^upstream_keepalive_secs = .*/upstream_keepalive_secs = 0/' /etc/proxy/proxy.toml && svc restart proxy"),
        ("api", "sed -i 's/^backlog = .*/backlog = 512/' /etc/httpd/httpd.toml && svc restart httpd"),
    ] {
        let out = d.drill(&["exec", "--drill", &id, host, "--", "sh", "-c", cmd]);
        assert!(out.status.success(), "{host}: {cmd}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(curl("client", "http://lb/"), "200");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(curl("client", "http://lb/"), "200", "no reuse, no 502");
    let l = sh(&format!("ip netns exec {} ss -Hltn sport = :8080", ns("api")));
    assert_eq!(l.split_whitespace().nth(2), Some("512"), "{l}");
    // The restarted loadgen logs anew (its first line says how it sends).
    let restarted = service_log(&d, &id, "client", "loadgen").lines().collect::<Vec<_>>().iter().rposition(|l| l.contains("sending")).unwrap();
    assert!(wait_until(Duration::from_secs(12), || loadgen_p50(&d, &id, restarted).is_some()));
    let fast = loadgen_p50(&d, &id, restarted).unwrap();
    assert!(fast < 10.0, "with TCP_NODELAY the client's p50 was {fast} ms");
    d.drill_json(&["stop", &id, "--json"], 0);
    assert!(netns_of(&id).is_empty());
}
