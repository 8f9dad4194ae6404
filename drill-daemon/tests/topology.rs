//! The topology engine checked from outside with `ip`, `ping`, `ss` and `nsenter`:
//! routers, switches, MTU, IPv6, sysctls, NAT, host isolation, concurrent drills,
//! and cleanup after a failed start.

mod common;

use common::*;

const ROUTER: &str = include_str!("fixtures/router.toml");

fn start_file(d: &TestDaemon, file: &str, text: &str) -> (std::process::Output, String) {
    let path = d.dir.join(file);
    std::fs::write(&path, text).unwrap();
    let out = d.drill(&["start", path.to_str().unwrap(), "--json"]);
    let id = serde_json::from_slice::<serde_json::Value>(&out.stdout).ok().and_then(|v| v["drill"]["id"].as_str().map(String::from)).unwrap_or_default();
    (out, id)
}

#[test]
fn router_switch_mtu_ipv6_sysctls_nat() {
    if !privileged_or_skip("router_switch_mtu_ipv6_sysctls_nat") {
        return;
    }
    let d = TestDaemon::start("topo");
    let (out, id) = start_file(&d, "router.toml", ROUTER);
    assert!(out.status.success(), "{} {}", String::from_utf8_lossy(&out.stderr), d.logs());
    let ns = |h: &str| format!("drill-{id}-{h}");

    // Addresses, names and MTU as planned.
    let lan = in_ns(&ns("router"), "ip -br addr show dev lan");
    assert!(lan.contains("10.77.1.1/24") && lan.contains("fd77:1::1/64"), "{lan}");
    assert!(in_ns(&ns("server"), "ip link show dev eth0").contains("mtu 1400"));
    assert!(in_ns(&ns("router"), "ip link show dev wan").contains("mtu 1400"));
    // Routes and forwarding.
    assert!(in_ns(&ns("client"), "ip route show default").contains("via 10.77.1.1"));
    assert_eq!(in_ns(&ns("router"), "cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
    assert_eq!(in_ns(&ns("client"), "cat /proc/sys/net/ipv4/ip_forward").trim(), "0");
    // Per-host sysctls, and only in that host.
    assert_eq!(in_ns(&ns("client"), "cat /proc/sys/net/ipv4/tcp_syn_retries").trim(), "2");
    assert_eq!(in_ns(&ns("client"), "cat /proc/sys/net/core/somaxconn").trim(), "512");
    assert_ne!(in_ns(&ns("server"), "cat /proc/sys/net/core/somaxconn").trim(), "512");
    // The router forwards, over IPv4 and IPv6.
    in_ns(&ns("client"), "ping -c 1 -W 2 10.77.2.2");
    in_ns(&ns("client"), "ping -6 -c 1 -W 2 fd77:2::2");
    // MTU 1400 on the router's wan side: a 1372-byte DF ping fits, 1373 does not.
    in_ns(&ns("router"), "ping -M do -s 1372 -c 1 -W 2 10.77.2.2");
    let too_big = std::process::Command::new("ip").args(["netns", "exec", &ns("router"), "ping", "-M", "do", "-s", "1373", "-c", "1", "-W", "1", "10.77.2.2"]).output().unwrap();
    assert!(!too_big.status.success(), "a 1401-byte DF packet must not pass a 1400 MTU");
    // NAT: the server sees the client's connection coming from the router's wan address.
    in_ns(&ns("client"), "curl -s -m 3 -o /dev/null http://10.77.2.2:8080/");
    assert!(in_ns(&ns("router"), "nft list table ip nat").contains("masquerade"));
    // The router's conntrack entry: the reply direction is addressed to its wan address.
    let conns = in_ns(&ns("router"), "conntrack -L -p tcp --dport 8080 2>/dev/null");
    assert!(conns.contains("src=10.77.1.2") && conns.contains("dst=10.77.2.1"), "client's flow, translated to the router's wan address: {conns}");
    // The switch: a bridge with three ports in its own namespace; allocated addresses.
    let ports = in_ns(&ns("backnet"), "ip -br link show master br0");
    assert_eq!(ports.lines().count(), 3, "{ports}");
    let db1 = in_ns(&ns("db1"), "ip -br -4 addr show dev eth0");
    assert!(db1.contains("10.200.0.2/24"), "allocated from the first block of the pool (router .1, db1 .2): {db1}");
    let db2_addr = in_ns(&ns("db2"), "ip -br -4 addr show dev eth0").split_whitespace().nth(2).unwrap().split('/').next().unwrap().to_string();
    in_ns(&ns("db1"), &format!("ping -c 1 -W 2 {db2_addr}"));
    // db1 reaches the client through the router (default route via `router` resolved on the switch).
    in_ns(&ns("db1"), "ping -c 1 -W 2 10.77.1.2");
    // Hosts: own hostname, /etc/hosts, resolv.conf, PID 1; tools run inside.
    let out = d.drill(&["exec", "--drill", &id, "server", "--", "sh", "-c", "hostname; getent hosts client; cat /etc/resolv.conf | grep -c nameserver; ps -o pid= -p 1; ls /tmp | wc -l"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(lines[0], "server", "{text}");
    assert!(lines[1].starts_with("10.77.1.2"), "{text}");
    assert_eq!(lines[3], "1", "{text}");
    assert_eq!(lines[4], "0", "a fresh /tmp: {text}");
    // Ordinary tools from the machine work inside a host.
    for tool in ["ip -br link", "ss -tan", "nft list ruleset", "tc qdisc show dev eth0", "tcpdump -D", "dig -v", "curl --version", "ping -c1 -W2 10.77.1.2", "ps -e", "mtr --version"] {
        let out = d.drill(&["exec", "--drill", &id, "server", "--", "sh", "-c", tool]);
        assert!(out.status.success(), "`{tool}` inside a host: {}", String::from_utf8_lossy(&out.stderr));
    }
    // The machine's own /etc/hosts did not change.
    assert!(!std::fs::read_to_string("/etc/hosts").unwrap().contains("10.77.1.2"));

    let stop = d.drill_json(&["stop", &id, "--json"], 0);
    assert_eq!(stop["errors"].as_array().unwrap().len(), 0, "{stop}");
    assert!(netns_of(&id).is_empty(), "left: {:?}", netns_of(&id));
}

#[test]
fn concurrent_drills_do_not_interfere() {
    if !privileged_or_skip("concurrent_drills_do_not_interfere") {
        return;
    }
    let d = TestDaemon::start("conc");
    let (o1, a) = start_file(&d, "r1.toml", ROUTER);
    let (o2, b) = start_file(&d, "r2.toml", ROUTER);
    assert!(o1.status.success() && o2.status.success(), "{}", d.logs());
    // Allocated blocks differ between drills.
    let addr = |id: &str| in_ns(&format!("drill-{id}-db1"), "ip -br -4 addr show dev eth0");
    assert_ne!(addr(&a), addr(&b));
    // Breaking one drill's router leaves the other's alone.
    in_ns(&format!("drill-{a}-router"), "ip link set lan down");
    let broken = std::process::Command::new("ip").args(["netns", "exec", &format!("drill-{a}-client"), "ping", "-c", "1", "-W", "1", "10.77.2.2"]).output().unwrap();
    assert!(!broken.status.success());
    in_ns(&format!("drill-{b}-client"), "ping -c 1 -W 2 10.77.2.2");
    d.drill_json(&["stop", &a, "--json"], 0);
    assert!(netns_of(&a).is_empty());
    assert_eq!(netns_of(&b).len(), 6, "the other drill keeps its 5 hosts and 1 switch");
    d.drill_json(&["stop", &b, "--json"], 0);
    assert!(netns_of(&b).is_empty());
}

#[test]
fn failed_start_removes_what_it_created() {
    if !privileged_or_skip("failed_start_removes_what_it_created") {
        return;
    }
    let d = TestDaemon::start("fail");
    // Valid on paper, refused by the kernel half-way: a sysctl that does not exist.
    let bad = ROUTER.replace("\"net.core.somaxconn\" = \"512\"", "\"net.ipv4.no_such_sysctl\" = 1");
    let (out, _) = start_file(&d, "bad.toml", &bad);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("host client") && err.contains("net.ipv4.no_such_sysctl"), "the error names the host and the sysctl: {err}");
    assert!(err.contains("everything it created was removed"), "{err}");
    let id = err.split("could not start drill ").nth(1).and_then(|r| r.split_whitespace().next()).expect("the error names the drill id");
    assert!(netns_of(id).is_empty(), "namespaces left after a failed start: {:?}", netns_of(id));
    assert_eq!(std::fs::read_dir(d.state.join("drills")).unwrap().count(), 0);
    assert!(host_inits_with_parent(d.pid()).is_empty());
}
