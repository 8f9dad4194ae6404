//! The two-cause and red-herring drills seen from outside, with the learner's tools
//! (curl, ping, tc, ip netns exec): the symptom changes after the first fix and heals
//! after the second; a red herring stays in place and the service heals anyway.

mod common;

use common::*;

/// curl from `host` of drill `id`: (exit code, stderr), one try, 2 s at most.
fn curl(d: &TestDaemon, id: &str, host: &str, url: &str) -> (i32, String) {
    let out = d.drill(&["exec", "--drill", id, host, "--", "curl", "-sS", "-o", "/dev/null", "-m", "2", url]);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

fn exec(d: &TestDaemon, id: &str, host: &str, cmd: &str) -> String {
    let out = d.drill(&["exec", "--drill", id, host, "--", "sh", "-c", cmd]);
    assert!(out.status.success(), "{host}: {cmd}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn deploy_blocked_says_no_route_to_host_then_refused_then_heals() {
    if !privileged_or_skip("deploy_blocked_says_no_route_to_host_then_refused_then_heals") {
        return;
    }
    let d = TestDaemon::start("multi-deploy");
    let id = d.start_scenario("deploy-blocked");
    let url = "http://10.77.0.2:8080/";
    let nc = || d.drill(&["exec", "--drill", &id, "client", "--", "nc", "-z", "-v", "-w", "2", "10.77.0.2", "8080"]);
    let out = nc();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success() && err.contains("No route to host"), "the reject's ICMP admin-prohibited reads as no route to host: {err}");
    assert_ne!(curl(&d, &id, "client", url).0, 0);
    assert!(exec(&d, &id, "client", "ip route get 10.77.0.2").contains("dev eth0"), "the client's route is fine");
    // First cause fixed: the firewall. The error changes to a refusal (a RST from TCP).
    exec(&d, &id, "api", "nft flush chain inet filter input");
    let out = nc();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success() && err.contains("Connection refused"), "{err}");
    assert!(exec(&d, &id, "api", "ss -Htln").contains("127.0.0.1:8080"), "httpd listens on loopback only");
    // Second cause fixed: the listen address.
    exec(&d, &id, "api", "sed -i 's/^listen = .*/listen = \"0.0.0.0:8080\"/' /etc/httpd/httpd.toml && svc restart httpd");
    assert!(wait_until(std::time::Duration::from_secs(5), || curl(&d, &id, "client", url).0 == 0), "healed: {:?}", curl(&d, &id, "client", url));
    d.stop_clean(&id);
}

#[test]
fn unreachable_no_ping_heals_while_ping_still_fails() {
    if !privileged_or_skip("unreachable_no_ping_heals_while_ping_still_fails") {
        return;
    }
    let d = TestDaemon::start("multi-noping");
    let id = d.start_scenario("unreachable-no-ping");
    let url = "http://10.77.2.2:8080/";
    let (code, err) = curl(&d, &id, "client", url);
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("Network is unreachable") || err.contains("Couldn't connect"), "{err}");
    exec(&d, &id, "client", "ip route add default via 10.77.1.1");
    assert_eq!(curl(&d, &id, "client", url).0, 0, "the service answers once the route is back");
    // The red herring stays: ping to api is still dropped by the router's policy.
    let ping = d.drill(&["exec", "--drill", &id, "client", "--", "ping", "-c", "3", "-i", "0.2", "-W", "1", "10.77.2.2"]);
    assert!(!ping.status.success(), "ping to api must still fail: {}", String::from_utf8_lossy(&ping.stdout));
    assert!(String::from_utf8_lossy(&ping.stdout).contains("100% packet loss"), "{}", String::from_utf8_lossy(&ping.stdout));
    assert!(exec(&d, &id, "client", "ping -c 2 -i 0.2 -W 1 10.77.1.1 >/dev/null && echo up").contains("up"), "the router itself answers ping");
    let v = d.drill_json(&["submit", &id, "--json"], 0);
    assert_eq!(v["passed"], true, "{v}");
    d.stop_clean(&id);
}

#[test]
fn timeouts_with_shaper_the_shaper_drops_nothing_and_stays() {
    if !privileged_or_skip("timeouts_with_shaper_the_shaper_drops_nothing_and_stays") {
        return;
    }
    let d = TestDaemon::start("multi-shaper");
    let id = d.start_scenario("timeouts-with-shaper");
    let url = "http://10.77.0.2:8080/";
    let (code, err) = curl(&d, &id, "client", url);
    assert_eq!(code, 28, "a timeout, not a refusal: {err}");
    let drops = |q: &str| q.split("dropped ").nth(1).and_then(|r| r.split(',').next()).and_then(|n| n.trim().parse::<u64>().ok()).unwrap_or_else(|| panic!("no drop counter in {q}"));
    let q = exec(&d, &id, "client", "tc -s qdisc show dev eth0");
    assert!(q.contains("tbf") && q.contains("rate 2Mbit"), "{q}");
    let before = drops(&q);
    assert_eq!(curl(&d, &id, "client", url).0, 28);
    let q = exec(&d, &id, "client", "tc -s qdisc show dev eth0");
    assert_eq!(drops(&q), before, "the shaper drops nothing while requests time out: {q}");
    // Removing the firewall rule alone heals the service; the shaper stays in place.
    exec(&d, &id, "api", "nft flush chain inet filter input");
    assert_eq!(curl(&d, &id, "client", url).0, 0);
    let q = exec(&d, &id, "client", "tc -s qdisc show dev eth0");
    assert!(q.contains("tbf") && drops(&q) == before, "the shaper is still there and dropped nothing more: {q}");
    d.stop_clean(&id);
}

#[test]
fn unreachable_then_timeout_changes_its_error_after_the_first_fix() {
    if !privileged_or_skip("unreachable_then_timeout_changes_its_error_after_the_first_fix") {
        return;
    }
    let d = TestDaemon::start("multi-route");
    let id = d.start_scenario("unreachable-then-timeout");
    let url = "http://10.77.2.2:8080/";
    let (code, err) = curl(&d, &id, "client", url);
    assert_eq!(code, 7, "{err}");
    exec(&d, &id, "client", "ip route add default via 10.77.1.1");
    let (code, err) = curl(&d, &id, "client", url);
    assert_eq!(code, 28, "the route is back and the firewall drops the SYNs: a timeout: {err}");
    exec(&d, &id, "api", "nft flush chain inet filter input");
    assert_eq!(curl(&d, &id, "client", url).0, 0);
    d.stop_clean(&id);
}
