//! Faults: the firewall-drop drill end to end, a fault that does not take, and the
//! nft fault contract (idempotent apply, revert, the learner's own removal), each
//! checked from outside with curl, nft and TCP connects.

mod common;

use std::time::Duration;

use common::*;
use drill_core::scenario::{NftAction, NftRule, NftSource};
use drill_daemon::kernel::linux::faults::{self, Connect};
use drill_daemon::kernel::linux::{nft, topology};

fn curl_code(ns: &str, url: &str) -> i32 {
    std::process::Command::new("ip").args(["netns", "exec", ns, "curl", "-s", "-o", "/dev/null", "-m", "2", url]).status().unwrap().code().unwrap_or(-1)
}

#[test]
fn firewall_drop_drill_end_to_end() {
    if !privileged_or_skip("firewall_drop_drill_end_to_end") {
        return;
    }
    let d = TestDaemon::start("fwdrop");
    let id = d.drill_json(&["start", "firewall-drop", "--json"], 0)["drill"]["id"].as_str().unwrap().to_string();
    let (client, api) = (format!("drill-{id}-client"), format!("drill-{id}-api"));
    // From outside: the connection times out (curl 28), it is not refused (7).
    assert_eq!(curl_code(&client, "http://10.77.0.2:8080/"), 28);
    // ... while the service answers on the api host itself.
    assert_eq!(curl_code(&api, "http://127.0.0.1:8080/"), 0);
    let rules = sh(&format!("ip netns exec {api} nft list table inet filter"));
    assert!(rules.contains("ip saddr 10.77.0.1 tcp dport 8080") && rules.contains("drop"), "{rules}");

    let v = d.drill_json(&["submit", &id, "--json"], 1);
    assert!(v["checks"].as_array().unwrap().iter().all(|c| c["passed"] == false), "every check fails under the fault: {v}");

    // The learner's fix, their way: delete the whole table.
    sh(&format!("ip netns exec {api} nft delete table inet filter"));
    assert_eq!(curl_code(&client, "http://10.77.0.2:8080/"), 0);
    // A moment between fixing and submitting, as a learner takes: connections opened
    // before the fix finish their SYN retries (at most ~1 s, see the dwell semantics).
    std::thread::sleep(Duration::from_secs(1));
    let out = d.drill(&["submit", &id, "--json"]);
    if out.status.code() != Some(0) {
        let ss = sh(&format!("ip netns exec {client} ss -tanpoei; ip netns exec {api} ss -tanpoei"));
        panic!("the fixed drill did not pass: {}\nsockets: {ss}\ndaemon log: {}", String::from_utf8_lossy(&out.stdout), d.logs());
    }
    // The engine does not fight the fix: the table stays gone.
    assert!(std::process::Command::new("ip").args(["netns", "exec", &api, "nft", "list", "table", "inet", "drill"]).output().unwrap().status.code() != Some(0));
    d.drill_json(&["stop", &id, "--json"], 0);
    assert!(netns_of(&id).is_empty());
}

#[test]
fn a_fault_that_does_not_take_stops_the_start() {
    if !privileged_or_skip("a_fault_that_does_not_take_stops_the_start") {
        return;
    }
    let d = TestDaemon::start("notake");
    // Drops traffic from a prefix no host is in: measured from the client, the port
    // answers (refused: nothing listens on 9999), so the fault did not take.
    let text = std::fs::read_to_string(drill_core::builtin::dir().expect("the built-in pack").join("firewall-drop.toml"))
        .unwrap()
        .replace("dport = 8080\nfrom = \"client\"", "dport = 9999\nfrom = \"10.99.0.0/24\"");
    let path = d.dir.join("notake.toml");
    std::fs::write(&path, text).unwrap();
    let out = d.drill(&["start", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did not take") && err.contains("host api") && err.contains("was refused") && err.contains("expected: it times out"), "{err}");
    let id = err.split("could not start drill ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap();
    assert!(netns_of(id).is_empty(), "nothing left after the refused start");
}

#[test]
fn nft_fault_apply_is_idempotent_and_revert_is_complete() {
    if !privileged_or_skip("nft_fault_apply_is_idempotent_and_revert_is_complete") {
        return;
    }
    let net = TwoHost::new(0x5a5a5a);
    let plan = &net.plan;
    net.rt.block_on(async {
        let ns = topology::build(plan, &root_netlink()).await.unwrap();
        let (client, server) = (&ns["client"].worker, &ns["server"].worker);
        let to = "10.77.9.2:7777".parse().unwrap();
        let connect = || faults::try_connect(client, to, Duration::from_millis(500));
        // No fault: nothing listens on 7777, the kernel answers with a RST.
        assert_eq!(connect().await.unwrap().0, Connect::Refused);
        let drop = NftRule::input(Some("tcp"), Some(7777), Some(NftSource::Host("client".into())), NftAction::Drop);
        nft::apply_nft(server, plan, "server", &nft::HostNft::of(vec![drop.clone()])).await.unwrap();
        nft::apply_nft(server, plan, "server", &nft::HostNft::of(vec![drop.clone()])).await.unwrap();
        assert_eq!(connect().await.unwrap().0, Connect::TimedOut);
        let listed = sh(&format!("ip netns exec {} nft list chain inet filter input", plan.hosts[1].netns));
        assert_eq!(listed.matches("drop").count(), 1, "applied twice, present once: {listed}");
        // Retune in place: the same call with another rule replaces it.
        let reject = NftRule { action: NftAction::RejectAdminProhibited, ..drop.clone() };
        nft::apply_nft(server, plan, "server", &nft::HostNft::of(vec![reject])).await.unwrap();
        let (got, took) = connect().await.unwrap();
        assert!(matches!(got, Connect::Other(_)), "admin-prohibited surfaces as an ICMP error: {got:?}");
        assert!(took < Duration::from_millis(400));
        // Revert: back to the kernel's own answer; reverting twice is fine.
        nft::revert_nft(server, "server").await.unwrap();
        nft::revert_nft(server, "server").await.unwrap();
        assert_eq!(connect().await.unwrap().0, Connect::Refused);
    });
}

#[test]
fn loss_sysctl_mtu_and_route_faults_from_outside() {
    if !privileged_or_skip("loss_sysctl_mtu_and_route_faults_from_outside") {
        return;
    }
    let d = TestDaemon::start("hostfaults");
    let faults = r#"
[[faults]]
kind = "nft-loss"
host = "server"
proto = "icmp"
percent = 20

[[faults]]
kind = "sysctl"
host = "client"
key = "net.ipv4.ip_local_port_range"
value = "40000 40003"

[[faults]]
kind = "mtu"
host = "router"
interface = "wan"
mtu = 1280

[[faults]]
kind = "route-remove"
host = "db1"
to = "default"

[[faults]]
kind = "tc-rate"
host = "router"
interface = "wan"
rate = "20mbit"
"#;
    let id = d.start_router_with("hostfaults", faults);
    let ns = |h: &str| format!("drill-{id}-{h}");
    // Loss: 1000 pings from the client lose about 20% (numgen is random: a generous bound).
    let ping = sh(&format!("ip netns exec {} ping -q -n -i 0.002 -W 1 -c 1000 10.77.2.2 || true", ns("client")));
    let lost: f64 = ping.split(',').find(|p| p.contains("packet loss")).and_then(|p| p.trim().split('%').next()?.parse().ok()).unwrap();
    assert!((lost - 20.0).abs() <= 6.0, "asked 20% loss, ping saw {lost}%");
    // Sysctl, only on that host.
    assert_eq!(sh(&format!("ip netns exec {} cat /proc/sys/net/ipv4/ip_local_port_range", ns("client"))).split_whitespace().collect::<Vec<_>>(), ["40000", "40003"]);
    assert_ne!(sh(&format!("ip netns exec {} cat /proc/sys/net/ipv4/ip_local_port_range", ns("server"))).split_whitespace().next(), Some("40000"));
    // MTU 1280 on the router's wan: a 1252-byte DF payload fits, 1253 does not. (Several
    // probes: the server loses 20% of ICMP here; ping succeeds if any reply comes.)
    sh(&format!("ip netns exec {} ping -M do -s 1252 -c 5 -i 0.05 -W 2 10.77.2.2", ns("router")));
    let big = std::process::Command::new("ip").args(["netns", "exec", &ns("router"), "ping", "-M", "do", "-s", "1253", "-c", "1", "-W", "1", "10.77.2.2"]).output().unwrap();
    assert!(!big.status.success());
    // Rate: iperf3 through the router's shaped wan runs at about 20 Mbit/s.
    let mut srv = std::process::Command::new("ip").args(["netns", "exec", &ns("server"), "iperf3", "-s", "-1"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = sh(&format!("ip netns exec {} iperf3 -c 10.77.2.2 -t 2 -J", ns("client")));
    let _ = srv.wait();
    let bps = serde_json::from_str::<serde_json::Value>(&out).unwrap()["end"]["sum_received"]["bits_per_second"].as_f64().unwrap();
    assert!((bps / 20e6 - 1.0).abs() <= 0.15, "asked 20 Mbit/s, iperf3 saw {:.1} Mbit/s", bps / 1e6);
    // Route removed: db1 has no default route and cannot reach the client's network.
    assert!(sh(&format!("ip -n {} route show default", ns("db1"))).trim().is_empty());
    let unreach = std::process::Command::new("ip").args(["netns", "exec", &ns("db1"), "ping", "-c", "1", "-W", "1", "10.77.1.2"]).output().unwrap();
    assert!(String::from_utf8_lossy(&unreach.stderr).contains("Network is unreachable"), "{}", String::from_utf8_lossy(&unreach.stderr));
    d.drill_json(&["stop", &id, "--json"], 0);
    assert!(netns_of(&id).is_empty());
}
