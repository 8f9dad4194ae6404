//! Tunnel links (`tunnel = "vxlan"`), checked from outside with `ip` and `ping`: the
//! tunnel carries what the scenario says and no command in a host makes it carry more;
//! its underlay lives in namespaces no host sees, and goes with the drill.

mod common;

use common::*;

const TUNNEL: &str = r#"
id = "tunnel-test"
title = "t"
alert = "a"
briefing = "b"

[[hosts]]
name = "edge"

[[hosts]]
name = "core"

[[links]]
a = { host = "edge", address = "10.77.9.1/30", name = "tun" }
b = { host = "core", address = "10.77.9.2/30", name = "tun" }
mtu = 1280
tunnel = "vxlan"

[[checks]]
kind = "resets"
host = "core"

[solution]
summary = "s"
steps = []
"#;

/// A DF echo of `payload` bytes from `ns` to `to`: did it come back?
fn df_ping(ns: &str, to: &str, payload: usize) -> bool {
    sh(&format!("ip netns exec {ns} ping -n -q -c 1 -W 1 -M do -s {payload} {to} >/dev/null 2>&1 && echo yes || echo no")).trim() == "yes"
}

#[test]
fn a_tunnel_carries_its_mtu_whatever_its_ends_are_set_to() {
    if !privileged_or_skip("a_tunnel_carries_its_mtu_whatever_its_ends_are_set_to") {
        return;
    }
    let d = TestDaemon::start("tunnel");
    let path = d.dir.join("tunnel.toml");
    std::fs::write(&path, TUNNEL).unwrap();
    let out = d.drill(&["start", path.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{} {}", String::from_utf8_lossy(&out.stderr), d.logs());
    let id = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["drill"]["id"].as_str().unwrap().to_string();
    let (edge, core) = (format!("drill-{id}-edge"), format!("drill-{id}-core"));

    // A real tunnel device in the host, its underlay elsewhere.
    let link = in_ns(&edge, "ip -d link show dev tun");
    assert!(link.contains("vxlan id") && link.contains("mtu 1280") && link.contains("link-netns"), "{link}");
    let hidden: Vec<String> = netns_of(&id).into_iter().filter(|n| n.contains("underlay")).collect();
    assert_eq!(hidden.len(), 2, "{:?}", netns_of(&id));
    assert!(in_ns(&hidden[0], "ip link show dev u0").contains("mtu 1330"));

    // 1280 bytes go through (1252 + 8 ICMP + 20 IP), 1281 do not leave the host.
    assert!(df_ping(&edge, "10.77.9.2", 1252), "a 1280-byte packet must cross the tunnel");
    assert!(!df_ping(&edge, "10.77.9.2", 1253), "a 1281-byte DF packet must not leave edge");

    // The learner raises both ends to 1500: the underlay does not grow, so a 1400-byte
    // DF packet still cannot cross (the endpoint learns the path MTU of 1280).
    for ns in [&edge, &core] {
        sh(&format!("ip netns exec {ns} ip link set tun mtu 1500"));
    }
    assert!(in_ns(&edge, "ip link show dev tun").contains("mtu 1500"));
    for _ in 0..2 {
        assert!(!df_ping(&edge, "10.77.9.2", 1400), "a 1428-byte DF packet crossed a tunnel that carries 1280");
    }
    assert!(in_ns(&hidden[0], "ip link show dev u0").contains("mtu 1330"), "the underlay must not change");
    // The hosts cannot see the underlay namespaces (no /run/netns inside a host).
    let seen = d.drill(&["exec", "--drill", &id, "edge", "--", "sh", "-c", "ls /run/netns 2>/dev/null; ip netns list 2>/dev/null"]);
    assert!(!String::from_utf8_lossy(&seen.stdout).contains("underlay"), "{}", String::from_utf8_lossy(&seen.stdout));

    let stop = d.drill(&["stop", &id]);
    assert!(stop.status.success(), "{}", String::from_utf8_lossy(&stop.stderr));
    assert!(netns_of(&id).is_empty(), "left after stop: {:?}", netns_of(&id));
}
