//! The fault kinds beyond simple drops: the userspace delay wire, the eBPF tc
//! classifier, and the nftables / tc variants (forward and output hooks, policer,
//! connection limit, frag-needed drop, DNAT, per-port htb), each checked from outside
//! with ping, ss, curl, iperf3 and tc, and each reverted.

mod common;

use std::time::Duration;

use common::*;
use drill_daemon::kernel::linux::faults::{self, Connect};
use drill_daemon::kernel::linux::tcfault::{self, TcFault};
use drill_daemon::kernel::linux::{tc, topology, wire};

fn ping_stats(ns: &str, args: &str, addr: &str) -> (f64, Option<f64>) {
    let out = sh(&format!("ip netns exec {ns} ping -q -n {args} {addr} || true"));
    let lost = out.split(',').find(|p| p.contains("packet loss")).and_then(|p| p.trim().split('%').next()?.parse().ok()).unwrap_or_else(|| panic!("no loss figure in {out}"));
    let avg = out.lines().find(|l| l.contains("min/avg/max")).and_then(|l| l.split('=').nth(1)?.trim().split('/').nth(1)?.parse().ok());
    (lost, avg)
}

#[test]
fn delay_wire_adds_the_asked_latency_and_loss_and_reverts() {
    if !privileged_or_skip("delay_wire_adds_the_asked_latency_and_loss_and_reverts") {
        return;
    }
    let mut net = TwoHost::new(0xde1a7);
    let wire_ns = drill_core::plan::wire_netns_name(&net.plan.drill_id, "client", "eth0");
    net.cleanup.0.push(wire_ns.clone());
    let (plan, client) = (&net.plan, net.netns("client"));
    net.rt.block_on(async {
        let root = root_netlink();
        let mut ns = std::collections::BTreeMap::new();
        for h in &plan.hosts {
            ns.insert(h.name.clone(), topology::Ns::create(&h.netns).await.unwrap().1);
        }
        ns.insert(wire_ns.clone(), topology::Ns::create(&wire_ns).await.unwrap().1);
        let splice = topology::Splice { host: "client".into(), iface: "eth0".into(), netns: wire_ns.clone() };
        topology::apply_spliced(plan, &root, &ns, &[splice]).await.unwrap();
        let w = wire::Wire::open(&ns[&wire_ns].worker, &wire_ns).await.unwrap();
        // The client's eth0 is paired with the wire, not with the server.
        let peer = sh(&format!("ip -n {client} -o link show eth0"));
        assert!(peer.contains("eth0@"), "{peer}");
        assert!(sh(&format!("ip -n {wire_ns} -o link")).contains("a@"), "the wire holds end a");
        // Transparent at first: sub-millisecond RTT, and TCP bulk passes (GSO frames
        // cross whole thanks to PACKET_VNET_HDR).
        let (lost, base) = ping_stats(&client, "-c 20 -i 0.01", "10.77.9.2");
        assert_eq!(lost, 0.0);
        assert!(base.unwrap() < 1.0, "rtt through an idle wire: {base:?}");
        let bps = faults::measure_rate(&ns["client"].worker, &ns["server"].worker, "10.77.9.2".parse().unwrap(), 200_000_000).await.unwrap();
        assert!(bps > 500e6, "TCP through the wire at {:.0} Mbit/s", bps / 1e6);

        // 20 ms each way on the client's egress: +20 ms ping RTT (one direction delayed).
        w.set(Duration::from_millis(20), Duration::ZERO, 0.0);
        let (_, rtt) = ping_stats(&client, "-c 20 -i 0.02", "10.77.9.2");
        let added = rtt.unwrap() - base.unwrap();
        assert!(faults::delay_within(20.0, 0.0, added), "asked +20 ms, ping saw +{added:.2} ms");
        // Jitter spreads the RTTs but keeps the mean.
        w.set(Duration::from_millis(20), Duration::from_millis(5), 0.0);
        let out = sh(&format!("ip netns exec {client} ping -q -n -c 40 -i 0.02 10.77.9.2"));
        let mdev: f64 = out.lines().find(|l| l.contains("mdev")).and_then(|l| l.split('=').nth(1)?.split_whitespace().next()?.split('/').nth(3)?.parse().ok()).unwrap_or_else(|| panic!("{out}"));
        assert!(mdev > 1.0, "jitter 5 ms gave mdev {mdev} ms");
        // Loss on the wire: 30% of pings.
        w.set(Duration::ZERO, Duration::ZERO, 0.3);
        let (lost, _) = ping_stats(&client, "-c 1000 -i 0.002 -W 1", "10.77.9.2");
        assert!((lost - 30.0).abs() <= 5.0, "asked 30% loss, ping saw {lost}%");
        assert!(w.egress.lost.load(std::sync::atomic::Ordering::Relaxed) > 200);
        // Revert: back to transparent.
        w.set(Duration::ZERO, Duration::ZERO, 0.0);
        let (lost, rtt) = ping_stats(&client, "-c 20 -i 0.01", "10.77.9.2");
        assert_eq!(lost, 0.0);
        assert!(rtt.unwrap() < 1.0, "rtt after revert: {rtt:?}");
        drop(w);
    });
}

#[test]
fn ebpf_drop_is_map_driven_retunable_and_removable() {
    if !privileged_or_skip("ebpf_drop_is_map_driven_retunable_and_removable") {
        return;
    }
    let net = TwoHost::new(0xeb9f0);
    let (plan, client, server) = (&net.plan, net.netns("client"), net.netns("server"));
    net.rt.block_on(async {
        let ns = topology::build(plan, &root_netlink()).await.unwrap();
        let srv = &ns["server"].worker;
        let rule = tcfault::rule(plan, Some("icmp"), None, Some(&drill_core::scenario::NftSource::Host("client".into())), 0.3).unwrap();
        let mut tf = TcFault::attach(srv, "server", "eth0", false, rule).await.unwrap();
        // Where an engineer looks: tc shows the classifier by name.
        let filters = sh(&format!("ip netns exec {server} tc filter show dev eth0 ingress"));
        assert!(filters.contains("cls_main") && filters.contains("direct-action"), "{filters}");
        // 30% of ICMP from the client, seen by ping and by the fault's own counters.
        let (lost, _) = ping_stats(&client, "-c 1000 -i 0.002 -W 1", "10.77.9.2");
        assert!((lost - 30.0).abs() <= 5.0, "asked 30%, ping saw {lost}%");
        let c = tf.counters().unwrap();
        assert_eq!(c.matched, 1000, "{c:?}");
        assert!((c.dropped as f64 - lost * 10.0).abs() <= 1.0, "counters {c:?} vs ping's {lost}%");
        // Retuned live to a TCP port: connections to 7777 time out instead of being refused.
        let to: std::net::SocketAddr = "10.77.9.2:7777".parse().unwrap();
        let cw = &ns["client"].worker;
        assert_eq!(faults::try_connect(cw, to, Duration::from_millis(500)).await.unwrap().0, Connect::Refused);
        tf.set_rule(tcfault::rule(plan, Some("tcp"), Some(7777), None, 1.0).unwrap()).unwrap();
        assert_eq!(faults::try_connect(cw, to, Duration::from_millis(500)).await.unwrap().0, Connect::TimedOut);
        let (lost, _) = ping_stats(&client, "-c 50 -i 0.005 -W 1", "10.77.9.2");
        assert_eq!(lost, 0.0, "ICMP passes once the rule names TCP");
        // Paused through the map.
        let mut r = tf.get_rule().unwrap();
        r.enabled = 0;
        tf.set_rule(r).unwrap();
        assert_eq!(faults::try_connect(cw, to, Duration::from_millis(500)).await.unwrap().0, Connect::Refused);
        // Removed: the filter is gone.
        tf.remove(srv).await.unwrap();
        assert!(!sh(&format!("ip netns exec {server} tc filter show dev eth0 ingress")).contains("cls_main"));
        // The learner removes it their way (the whole clsact qdisc); removing after that is fine.
        let tf = TcFault::attach(srv, "server", "eth0", false, tcfault::rule(plan, Some("tcp"), Some(7777), None, 1.0).unwrap()).await.unwrap();
        assert_eq!(faults::try_connect(cw, to, Duration::from_millis(500)).await.unwrap().0, Connect::TimedOut);
        sh(&format!("ip netns exec {server} tc qdisc del dev eth0 clsact"));
        assert_eq!(faults::try_connect(cw, to, Duration::from_millis(500)).await.unwrap().0, Connect::Refused);
        tf.remove(srv).await.unwrap();
        // Egress: the server's replies to pings are dropped on the way out.
        let tf = TcFault::attach(srv, "server", "eth0", true, tcfault::rule(plan, Some("icmp"), None, None, 1.0).unwrap()).await.unwrap();
        let (lost, _) = ping_stats(&client, "-c 20 -i 0.01 -W 1", "10.77.9.2");
        assert_eq!(lost, 100.0);
        tf.remove(srv).await.unwrap();
        let (lost, _) = ping_stats(&client, "-c 20 -i 0.01 -W 1", "10.77.9.2");
        assert_eq!(lost, 0.0);
        // Apply is idempotent: attaching again replaces, the interface holds one classifier.
        let rule = tcfault::rule(plan, Some("tcp"), Some(7777), None, 1.0).unwrap();
        let first = TcFault::attach(srv, "server", "eth0", false, rule).await.unwrap();
        let second = TcFault::attach(srv, "server", "eth0", false, rule).await.unwrap();
        let filters = sh(&format!("ip netns exec {server} tc filter show dev eth0 ingress"));
        assert_eq!(filters.matches("cls_main").count(), 2, "one filter (named twice on its line): {filters}");
        assert_eq!(faults::try_connect(cw, to, Duration::from_millis(500)).await.unwrap().0, Connect::TimedOut);
        second.remove(srv).await.unwrap();
        first.remove(srv).await.unwrap();
        assert_eq!(faults::try_connect(cw, to, Duration::from_millis(500)).await.unwrap().0, Connect::Refused);
    });
}

#[test]
fn nft_tc_delay_and_ebpf_faults_in_a_drill_checked_from_outside() {
    if !privileged_or_skip("nft_tc_delay_and_ebpf_faults_in_a_drill_checked_from_outside") {
        return;
    }
    let d = TestDaemon::start("kinds");
    let faults = r#"
[[faults]]
kind = "nft-drop"
host = "router"
hook = "forward"
from = "client"
to = "server"
proto = "tcp"
dport = 9999

[[faults]]
kind = "nft-limit"
host = "server"
proto = "icmp"
rate = "50/second"

[[faults]]
kind = "nft-conn-limit"
host = "server"
proto = "tcp"
dport = 8080
max_connections = 3

[[faults]]
kind = "mtu"
host = "router"
interface = "wan"
mtu = 1280

[[faults]]
kind = "nft-drop"
host = "router"
hook = "output"
icmp = "frag-needed"

[[faults]]
kind = "nft-dnat"
host = "server"
proto = "tcp"
dport = 9000
to = "server:8080"

[[faults]]
kind = "tc-rate"
host = "router"
interface = "wan"
rate = "20mbit"
port = 5201

[[faults]]
kind = "delay"
host = "client"
interface = "eth0"
delay_ms = 30

[[faults]]
kind = "ebpf-drop"
host = "server"
interface = "eth0"
proto = "tcp"
dport = 7000
"#;
    let id = d.start_router_with("kinds", faults);
    let ns = |h: &str| format!("drill-{id}-{h}");
    let curl = |h: &str, url: &str| std::process::Command::new("ip").args(["netns", "exec", &ns(h), "curl", "-s", "-o", "/dev/null", "-m", "2", url]).status().unwrap().code().unwrap_or(-1);

    // Delay (the wire here: no netem): the client's RTT to its router is about +30 ms.
    let (_, rtt) = ping_stats(&ns("client"), "-c 10 -i 0.05", "10.77.1.1");
    assert!((rtt.unwrap() - 30.0).abs() <= 2.0, "asked +30 ms, ping saw {rtt:?} ms");
    assert!(netns_of(&id).iter().any(|n| n.contains("wire.client.eth0")), "{:?}", netns_of(&id));
    // Forward hook on the router: client -> server:9999 times out (curl 28), while the
    // router itself is refused (7): the rule filters only what it routes.
    assert_eq!(curl("client", "http://10.77.2.2:9999/"), 28);
    assert_eq!(curl("router", "http://10.77.2.2:9999/"), 7);
    // Policer: 200 pings in a second from the router, about 50 (+ burst) answered.
    let (lost, _) = ping_stats(&ns("router"), "-c 200 -i 0.005 -W 1", "10.77.2.2");
    assert!((55.0..=85.0).contains(&lost), "a 50/s policer let {}% through", 100.0 - lost);
    // Connection limit: of 5 connections held open from the router, 3 establish.
    let held = sh(&format!(
        "ip netns exec {} bash -c 'for i in 1 2 3 4 5; do (exec 3<>/dev/tcp/10.77.2.2/8080; sleep 2) 2>/dev/null & sleep 0.1; done; sleep 0.5; ss -Htn state established dst 10.77.2.2 | wc -l; ss -Htn state syn-sent dst 10.77.2.2 | wc -l; wait'",
        ns("router")
    ));
    let counts: Vec<u32> = held.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert_eq!(counts, [3, 2], "established, syn-sent: {held}");
    // MTU black hole: a DF ping larger than the router's wan MTU gets no
    // "frag needed" error back (dropped on the router's output), only silence.
    let big = std::process::Command::new("ip").args(["netns", "exec", &ns("client"), "ping", "-M", "do", "-s", "1400", "-c", "2", "-W", "1", "10.77.2.2"]).output().unwrap();
    let txt = String::from_utf8_lossy(&big.stdout);
    assert!(txt.contains("100% packet loss") && !txt.contains("error"), "{txt}");
    // DNAT: server:9000 answers as server:8080.
    assert_eq!(curl("client", "http://10.77.2.2:9000/"), 0);
    // eBPF classifier: server:7000 times out (nothing listens there: else refused).
    assert_eq!(curl("client", "http://10.77.2.2:7000/"), 28);
    // Paused live through the API (its map), then back to dropping everything.
    let tune = |pct: u32| -> serde_json::Value {
        let body = format!("{{\"percent\": {pct}}}");
        let url = format!("http://drill/v1/drills/{id}/faults/ebpf/0");
        let out = sh(&format!("curl -s --unix-socket {} -X POST -H 'content-type: application/json' -d '{body}' {url}", d.socket.display()));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let t = tune(0);
    assert!(t["matched"].as_u64().unwrap() >= 1 && t["dropped"] == t["matched"], "{t}");
    assert_eq!(curl("client", "http://10.77.2.2:7000/"), 7, "paused: refused, not dropped");
    tune(100);
    assert_eq!(curl("client", "http://10.77.2.2:7000/"), 28);
    // The MTU black hole again, as a learner meets it: a bulk transfer stalls.
    let iperf = |secs: u32| -> f64 {
        let mut srv = std::process::Command::new("ip").args(["netns", "exec", &ns("server"), "iperf3", "-s", "-1", "-p", "5201"]).stdout(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let out = sh(&format!("ip netns exec {} iperf3 -c 10.77.2.2 -p 5201 -t {secs} -J", ns("client")));
        let _ = srv.wait();
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["end"]["sum_received"]["bits_per_second"].as_f64().unwrap()
    };
    assert!(iperf(2) < 1e6, "a transfer through the black hole should stall");
    // The reveal names every fault with its mechanism and measurement.
    let sol = d.drill_json(&["solve", &id, "--json"], 0);
    let notes: Vec<&str> = sol["faults"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(notes.len(), 9, "{notes:#?}");
    assert!(notes.iter().any(|n| n.starts_with("delay on client/eth0") && n.contains("delay wire") && n.contains("measured +")), "{notes:#?}");
    assert!(notes.iter().any(|n| n.contains("cls_main") && (n.contains("timed out") || n.contains("SYN was dropped on server"))), "{notes:#?}");

    // Reverts, the learner's way: the server's table deleted lifts the policer, the
    // connection limit and the port forward; the router's lifts the forward drop and
    // lets the frag-needed errors out.
    sh(&format!("ip netns exec {} nft delete table inet filter", ns("server")));
    sh(&format!("ip netns exec {} nft delete table inet filter", ns("router")));
    let (lost, _) = ping_stats(&ns("router"), "-c 200 -i 0.005 -W 1", "10.77.2.2");
    assert_eq!(lost, 0.0);
    assert_eq!(curl("client", "http://10.77.2.2:9000/"), 7, "the port forward is gone: refused");
    assert_eq!(curl("client", "http://10.77.2.2:9999/"), 7);
    let big = std::process::Command::new("ip").args(["netns", "exec", &ns("client"), "ping", "-M", "do", "-s", "1400", "-c", "2", "-W", "1", "10.77.2.2"]).output().unwrap();
    let txt = String::from_utf8_lossy(&big.stdout);
    assert!(txt.contains("error") || txt.contains("Frag needed"), "{txt}");
    // htb for port 5201 only (PMTU discovery works again): iperf3 through the router's
    // wan at about 20 Mbit/s.
    let bps = iperf(3);
    assert!((bps / 20e6 - 1.0).abs() <= 0.15, "asked 20 Mbit/s for port 5201, iperf3 saw {:.1} Mbit/s", bps / 1e6);
    sh(&format!("ip netns exec {} tc qdisc del dev eth0 clsact", ns("server")));
    assert_eq!(curl("client", "http://10.77.2.2:7000/"), 7);
    d.drill_json(&["stop", &id, "--json"], 0);
    assert!(netns_of(&id).is_empty(), "{:?}", netns_of(&id));
}

/// iperf3 from `from_ns` to `addr:port` for a second; received bits per second.
fn iperf(server_ns: &str, from_ns: &str, addr: &str, port: u16) -> f64 {
    let mut srv = std::process::Command::new("ip").args(["netns", "exec", server_ns, "iperf3", "-s", "-1", "-p", &port.to_string()]).stdout(std::process::Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = sh(&format!("ip netns exec {from_ns} iperf3 -c {addr} -p {port} -t 1 -J"));
    let _ = srv.wait();
    serde_json::from_str::<serde_json::Value>(&out).unwrap()["end"]["sum_received"]["bits_per_second"].as_f64().unwrap()
}

#[test]
fn tc_and_mtu_faults_apply_twice_and_revert_completely() {
    if !privileged_or_skip("tc_and_mtu_faults_apply_twice_and_revert_completely") {
        return;
    }
    let net = TwoHost::new(0x7c7c7);
    let (plan, client, server) = (&net.plan, net.netns("client"), net.netns("server"));
    net.rt.block_on(async {
        let ns = topology::build(plan, &root_netlink()).await.unwrap();
        let srv = &ns["server"].worker;
        let within = |bps: f64, mbit: f64| (bps / (mbit * 1e6) - 1.0).abs() <= 0.15;
        // tbf on the server's egress, applied twice: iperf3 from the server at ~20 Mbit/s.
        tc::set_rate(srv, "server", "eth0", 20_000_000).await.unwrap();
        tc::set_rate(srv, "server", "eth0", 20_000_000).await.unwrap();
        let bps = iperf(&client, &server, "10.77.9.1", 5201);
        assert!(within(bps, 20.0), "tbf 20 Mbit/s: iperf3 saw {:.1} Mbit/s", bps / 1e6);
        assert_eq!(sh(&format!("ip netns exec {server} tc qdisc show dev eth0 root")).matches("tbf").count(), 1);
        tc::clear_rate(srv, "server", "eth0").await.unwrap();
        tc::clear_rate(srv, "server", "eth0").await.unwrap();
        let bps = iperf(&client, &server, "10.77.9.1", 5201);
        assert!(bps > 1e9, "after revert iperf3 saw {:.1} Mbit/s", bps / 1e6);
        // htb for port 5202 only, applied twice: 5202 at ~20 Mbit/s, 5201 unlimited.
        tc::set_port_rate(srv, "server", "eth0", 5202, 20_000_000).await.unwrap();
        tc::set_port_rate(srv, "server", "eth0", 5202, 20_000_000).await.unwrap();
        let bps = iperf(&client, &server, "10.77.9.1", 5202);
        assert!(within(bps, 20.0), "htb port 5202 at 20 Mbit/s: iperf3 saw {:.1} Mbit/s", bps / 1e6);
        let bps = iperf(&client, &server, "10.77.9.1", 5201);
        assert!(bps > 1e9, "port 5201 is not limited: iperf3 saw {:.1} Mbit/s", bps / 1e6);
        tc::clear_rate(srv, "server", "eth0").await.unwrap();
        let bps = iperf(&client, &server, "10.77.9.1", 5202);
        assert!(bps > 1e9, "after revert port 5202 ran at {:.1} Mbit/s", bps / 1e6);
        // MTU: a 1300-byte DF ping does not leave a 1280-MTU interface; after revert it does.
        let nl = &ns["server"].nl;
        faults::set_mtu(nl, "server", "eth0", 1280).await.unwrap();
        let big = std::process::Command::new("ip").args(["netns", "exec", &server, "ping", "-M", "do", "-s", "1300", "-c", "1", "-W", "1", "10.77.9.1"]).output().unwrap();
        assert!(!big.status.success() && String::from_utf8_lossy(&big.stderr).contains("mtu=1280"), "{}", String::from_utf8_lossy(&big.stderr));
        faults::set_mtu(nl, "server", "eth0", 1500).await.unwrap();
        sh(&format!("ip netns exec {server} ping -M do -s 1300 -c 1 -W 1 10.77.9.1"));
    });
}
