//! overlay-mtu seen from outside the engine, with the learner's tools (`ip netns exec`,
//! curl, ping, tc, nstat): a small request works and a large one hangs; between the nodes
//! `ping -M do` finds the fabric's real path MTU; after the fix the large transfer
//! completes and the fabric drops nothing more.

mod common;

use common::*;

/// `curl` from `ns`: (HTTP code, bytes received); code 000 when it gave up.
fn curl(ns: &str, url: &str) -> (String, u64) {
    let out = in_ns(ns, &format!("curl -s -m 3 -o /dev/null -w '%{{http_code}} %{{size_download}}' {url}; true"));
    let mut w = out.split_whitespace();
    (w.next().unwrap_or("").to_string(), w.next().and_then(|b| b.parse().ok()).unwrap_or(0))
}

/// Whether a single don't-fragment ping of `payload` bytes from `ns` to `to` is answered.
fn df_ping(ns: &str, to: &str, payload: u32) -> bool {
    in_ns(ns, &format!("ping -n -c 1 -W 1 -M do -s {payload} {to}; true")).contains(" 0% packet loss")
}

#[test]
fn overlay_mtu_hangs_large_responses_until_the_pods_mtu_leaves_room_for_vxlan() {
    if !privileged_or_skip("overlay_mtu_hangs_large_responses_until_the_pods_mtu_leaves_room_for_vxlan") {
        return;
    }
    let d = TestDaemon::start("cur-ovl");
    let id = d.start_scenario("overlay-mtu");
    let ns = |h: &str| format!("drill-{id}-{h}");
    // What the hosts say: nodes 1500, vxlan0 1450 (the kernel's), pods 1450 (the fault).
    assert!(in_ns(&ns("node-a"), "ip -o link show eth0").contains("mtu 1500"));
    assert!(in_ns(&ns("node-a"), "ip -o link show vxlan0").contains("mtu 1450"));
    assert!(in_ns(&ns("pod-b"), "ip -o link show eth0").contains("mtu 1450"));
    // The symptom: small works, large hangs.
    assert_eq!(curl(&ns("pod-a"), "http://10.78.0.12:8080/").0, "200", "a small request works");
    let (code, bytes) = curl(&ns("pod-a"), "http://10.78.0.12:8080/bytes/20000");
    assert!(code == "000" && bytes < 20000, "a large response hangs: {code} {bytes}");
    // The cause, between the nodes: 1400-byte packets cross, 1401 are lost without a word.
    assert!(df_ping(&ns("node-a"), "10.77.0.3", 1372), "1400 bytes cross the nodes' network");
    let over = in_ns(&ns("node-a"), "ping -n -c 2 -W 1 -M do -s 1373 10.77.0.3; true");
    assert!(over.contains("100% packet loss") && !over.contains("Frag needed"), "1401 bytes are lost silently: {over}");
    // Out of every host's reach: the classifier lives in the switch's own namespace.
    let f = in_ns(&ns("underlay"), "tc filter show dev node-a ingress");
    assert!(f.contains("fabric_mtu"), "{f}");
    // Between the pods the overlay carries 1350 (1400 less VXLAN's 50), not 1450.
    assert!(df_ping(&ns("pod-a"), "10.78.0.12", 1322), "1350 bytes cross the overlay");
    assert!(!df_ping(&ns("pod-a"), "10.78.0.12", 1323), "1351 bytes do not");
    // No "fragmentation needed" reaches pod-b: nothing heals by itself.
    let icmp0 = in_ns(&ns("pod-b"), "nstat -az IcmpInDestUnreachs");
    assert!(icmp0.lines().any(|l| l.starts_with("IcmpInDestUnreachs") && l.split_whitespace().nth(1) == Some("0")), "{icmp0}");

    // The fix: the pods' MTU leaves room for VXLAN's 50 bytes.
    for p in ["pod-a", "pod-b"] {
        let out = d.drill(&["exec", "--drill", &id, p, "--", "ip", "link", "set", "eth0", "mtu", "1350"]);
        assert!(out.status.success(), "{p}: {}", String::from_utf8_lossy(&out.stderr));
    }
    for _ in 0..3 {
        assert_eq!(curl(&ns("pod-a"), "http://10.78.0.12:8080/bytes/20000"), ("200".to_string(), 20000), "the large transfer completes after the fix");
    }
    let v = d.drill_json(&["submit", &id, "--json"], 0);
    assert_eq!(v["passed"], true, "submit passes after the fix: {v}");
    d.stop_clean(&id);
}
