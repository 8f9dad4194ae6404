//! The networking drills of the curriculum seen from outside the engine, with the
//! learner's own tools (`ip netns exec`, nstat, ss, curl): start the drill, show the
//! symptom, apply the fix, show it healed, stop, nothing left.

mod common;

use std::time::Duration;

use common::*;

fn exec(d: &TestDaemon, host: &str, cmd: &str) -> String {
    let out = d.drill(&["exec", host, "--", "sh", "-c", cmd]);
    assert!(out.status.success(), "{host}: `{cmd}`: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One value of `nstat -az NAME` inside a namespace.
fn nstat(ns: &str, name: &str) -> u64 {
    let out = in_ns(ns, &format!("nstat -az {name}"));
    out.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {name} in {out}"))
}

/// The slowest TCP connect of 20 parallel curls from `ns` to `url`, in seconds.
fn slowest_connect_of_burst(ns: &str, url: &str) -> f64 {
    let out = in_ns(ns, &format!("sh -c 'for i in $(seq 20); do curl -s -m 5 -o /dev/null -w \"%{{time_connect}}\\n\" {url} & done; wait'"));
    out.lines().filter_map(|l| l.trim().parse::<f64>().ok()).fold(0.0, f64::max)
}

#[test]
fn syn_backlog_overflows_the_accept_queue_until_both_limits_are_raised() {
    if !privileged_or_skip("syn_backlog_overflows_the_accept_queue_until_both_limits_are_raised") {
        return;
    }
    let d = TestDaemon::start("cur-syn");
    let id = d.start_scenario("syn-backlog");
    let (api, client) = (format!("drill-{id}-api"), format!("drill-{id}-client"));
    // The listener's queue as ss shows it: Send-Q is its length.
    let ss = in_ns(&api, "ss -Hltn 'sport = :8080'");
    assert_eq!(ss.split_whitespace().nth(2), Some("8"), "{ss}");
    let before = nstat(&api, "TcpExtListenOverflows");
    std::thread::sleep(Duration::from_secs(2));
    let during = nstat(&api, "TcpExtListenOverflows");
    assert!(during > before, "the queue overflows under the bursts: {before} -> {during}");
    // Some connects of a burst wait for the SYN retransmission (1 s).
    let slow = (0..3).map(|_| slowest_connect_of_burst(&client, "http://10.77.0.2:8080/")).fold(0.0, f64::max);
    assert!(slow > 0.9, "a connect of a burst stalls for a retransmission: slowest {slow} s");

    exec(&d, "api", "sysctl -w net.core.somaxconn=4096 && sed -i 's/^backlog = .*/backlog = 1024/' /etc/httpd/httpd.toml && svc restart httpd");
    std::thread::sleep(Duration::from_secs(3));
    let ss = in_ns(&api, "ss -Hltn 'sport = :8080'");
    assert_eq!(ss.split_whitespace().nth(2), Some("1024"), "{ss}");
    let a = nstat(&api, "TcpExtListenOverflows");
    let slow = (0..3).map(|_| slowest_connect_of_burst(&client, "http://10.77.0.2:8080/")).fold(0.0, f64::max);
    std::thread::sleep(Duration::from_secs(1));
    let b = nstat(&api, "TcpExtListenOverflows");
    assert_eq!(a, b, "no overflow after the fix");
    assert!(slow < 0.5, "every connect answered at once after the fix: slowest {slow} s");
    d.stop_clean(&id);
}

/// `n` requests to `url` from `ns`, each with a 1 s limit: how many timed out.
fn timeouts_of(ns: &str, url: &str, n: usize) -> usize {
    let out = in_ns(ns, &format!("sh -c 'for i in $(seq {n}); do curl -s -m 1 -o /dev/null -w \"%{{http_code}}\\n\" {url}; done; true'"));
    out.lines().filter(|l| l.trim() == "000").count()
}

#[test]
fn k8s_stale_endpoint_hangs_a_third_of_the_requests_until_the_endpoint_is_removed() {
    if !privileged_or_skip("k8s_stale_endpoint_hangs_a_third_of_the_requests_until_the_endpoint_is_removed") {
        return;
    }
    let d = TestDaemon::start("cur-k8s");
    let id = d.start_scenario("k8s-stale-endpoint");
    let node = format!("drill-{id}-node");
    let table = in_ns(&node, "nft list table ip kube-proxy");
    assert!(table.contains("numgen random mod 3 vmap"), "{table}");
    assert!(table.contains("dnat to 10.77.0.13:8080"), "{table}");
    let hung = timeouts_of(&node, "http://10.96.0.10:8080/", 15);
    // 1/3 of 15 on average; none at all has odds (2/3)^15 < 0.3%.
    assert!((1..15).contains(&hung), "some but not all requests hang: {hung} of 15");
    let neigh = in_ns(&node, "ip neigh show 10.77.0.13");
    assert!(neigh.contains("FAILED") || neigh.contains("INCOMPLETE"), "nobody answers ARP for the gone pod: {neigh}");

    exec(&d, "node", "sed -i 's/^endpoints = .*/endpoints = [\"10.77.0.11:8080\", \"10.77.0.12:8080\"]/' /etc/kube-proxy/kube-proxy.toml && svc restart kube-proxy");
    let table = in_ns(&node, "nft list table ip kube-proxy");
    assert!(table.contains("numgen random mod 2 vmap") && !table.contains("10.77.0.13"), "{table}");
    assert_eq!(timeouts_of(&node, "http://10.96.0.10:8080/", 15), 0, "every request through the cluster IP answers");
    d.stop_clean(&id);
}

/// How many of `n` TCP connects from `ns` to `to` (host:port) succeed within 1 s each.
fn connects(ns: &str, to: &str, n: usize) -> usize {
    let (h, p) = to.split_once(':').unwrap();
    let out = in_ns(ns, &format!("sh -c 'for i in $(seq {n}); do nc -z -w 1 {h} {p} && echo ok; done; true'"));
    out.lines().filter(|l| l.trim() == "ok").count()
}

#[test]
fn conntrack_full_drops_new_connections_until_the_udp_timeout_is_put_back_or_the_table_raised() {
    if !privileged_or_skip("conntrack_full_drops_new_connections_until_the_udp_timeout_is_put_back_or_the_table_raised") {
        return;
    }
    let d = TestDaemon::start("cur-ct");
    let t0 = std::time::Instant::now();
    let id = d.start_scenario("conntrack-full");
    eprintln!("conntrack-full started (filled) in {} ms", t0.elapsed().as_millis());
    let (router, client) = (format!("drill-{id}-router"), format!("drill-{id}-client"));
    // The learner's tools: the kernel's own count at the table's size, which the host
    // shows as its nf_conntrack_max.
    let count: u64 = in_ns(&router, "conntrack -C").trim().parse().unwrap();
    assert!(count >= 2048, "the router's table is full: conntrack -C = {count}");
    eprintln!("broken: conntrack -C on router = {count}");
    assert_eq!(exec(&d, "router", "sysctl -n net.netfilter.nf_conntrack_max").trim(), "2048");
    assert_eq!(exec(&d, "router", "sysctl -n net.netfilter.nf_conntrack_udp_timeout").trim(), "3600");
    let udp = in_ns(&router, "sh -c 'conntrack -L -p udp 2>/dev/null | grep -c dport=8125'");
    assert!(udp.trim().parse::<u64>().unwrap() >= 2000, "full of the agent's UDP flows: {udp}");
    // New TCP connections through the router are dropped.
    assert_eq!(connects(&client, "10.77.2.2:8080", 3), 0, "new connects through a full table fail");
    // The router's own kernel log says so, in the kernel's words.
    let ok = wait_until(Duration::from_secs(3), || exec(&d, "router", "dmesg").contains("nf_conntrack: nf_conntrack: table full, dropping packet"));
    assert!(ok, "router's dmesg: {}", exec(&d, "router", "dmesg"));
    eprintln!("router dmesg: {}", exec(&d, "router", "dmesg | tail -2").replace('\n', " | "));
    // A value the kernel refuses is put back.
    let _ = d.drill(&["exec", "router", "--", "sh", "-c", "echo lots > /proc/sys/net/netfilter/nf_conntrack_max"]);
    assert!(wait_until(Duration::from_secs(2), || exec(&d, "router", "cat /proc/sys/net/netfilter/nf_conntrack_max").trim() == "2048"));

    // Raising the table from inside the router resizes it.
    exec(&d, "router", "sysctl -w net.netfilter.nf_conntrack_max=262144");
    assert!(wait_until(Duration::from_secs(2), || in_ns(&router, "nft list table inet conntrack").contains("ct count over 262144")), "{}", in_ns(&router, "nft list table inet conntrack"));
    assert_eq!(connects(&client, "10.77.2.2:8080", 5), 5, "connects pass once the table is large enough");
    exec(&d, "router", "sysctl -w net.netfilter.nf_conntrack_max=2048");
    assert!(wait_until(Duration::from_secs(2), || in_ns(&router, "nft list table inet conntrack").contains("ct count over 2048")));
    // (Resizing restarts the stand-in's count: refill it as the hour of metrics would.)
    in_ns(&client, "sh -c 'for i in $(seq 2100); do echo x | socat -u - UDP-SENDTO:10.77.2.2:8125; done' >/dev/null 2>&1; true");
    assert_eq!(connects(&client, "10.77.2.2:8080", 2), 0, "full again at 2048");

    // The fix: the UDP timeout back, the stale entries deleted.
    exec(&d, "router", "sysctl -w net.netfilter.nf_conntrack_udp_timeout=30 && (conntrack -D -p udp >/dev/null 2>&1; true)");
    assert!(wait_until(Duration::from_secs(3), || connects(&client, "10.77.2.2:8080", 1) == 1));
    assert_eq!(connects(&client, "10.77.2.2:8080", 5), 5, "every connect passes after the fix");
    let count: u64 = in_ns(&router, "conntrack -C").trim().parse().unwrap();
    assert!(count < 2048, "room in the table: {count}");
    eprintln!("fixed: conntrack -C on router = {count}");
    let v = d.drill_json(&["submit", &id, "--json"], 0);
    assert_eq!(v["passed"], true, "{v}");
    d.stop_clean(&id);
}
