//! The DNS drills from outside: the real dnsmasq on the `dns` host, the hosts' real
//! resolv.conf, seen with the learner's tools (curl, dig, getent inside the hosts and
//! `ip netns exec ... dig @SERVER` from the machine), fixed as an engineer would, judged,
//! stopped, nothing left.

mod common;

use common::*;

/// `sh -c cmd` inside `host` through the daemon: (exit code, stdout, stderr).
fn exec(d: &TestDaemon, id: &str, host: &str, cmd: &str) -> (i32, String, String) {
    let out = d.drill(&["exec", "--drill", id, host, "--", "sh", "-c", cmd]);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn dns_misconfig_cannot_resolve_until_resolv_conf_names_the_dns_server() {
    if !privileged_or_skip("dns_misconfig_cannot_resolve_until_resolv_conf_names_the_dns_server") {
        return;
    }
    let d = TestDaemon::start("dnsmis");
    let id = d.start_scenario("dns-misconfig");
    let ns = |h: &str| format!("drill-{id}-{h}");

    // The symptom, as the learner meets it: curl cannot resolve the name (after glibc's
    // 2 attempts x 5 s).
    let (code, _, err) = exec(&d, &id, "client", "curl -sS -m 15 http://api.corp.example:8080/");
    assert_eq!(code, 6, "curl exit 6 is 'could not resolve host': {err}");
    assert!(err.contains("Could not resolve host"), "{err}");
    // The resolver the host is configured with refuses (no DNS server on that address),
    let (code, out, _) = exec(&d, &id, "client", "dig +time=1 +tries=1 api.corp.example");
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("10.77.0.20") && (out.contains("refused") || out.contains("no servers could be reached")), "{out}");
    // while the real DNS server answers, from the machine too.
    let a = in_ns(&ns("client"), "dig +short +time=1 +tries=1 @10.77.0.53 api.corp.example");
    assert_eq!(a.trim(), "10.77.0.20");
    let (_, conf, _) = exec(&d, &id, "dns", "grep -c '^host-record=' /etc/dnsmasq.conf; ps -eo comm | grep -x dnsmasq");
    assert!(conf.contains("dnsmasq"), "the DNS server is dnsmasq itself: {conf}");

    // The fix, as an engineer makes it.
    let (code, _, err) = exec(&d, &id, "client", "sed -i 's/^nameserver .*/nameserver 10.77.0.53/' /etc/resolv.conf");
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = exec(&d, &id, "client", "getent hosts api.corp.example && curl -sS -m 3 http://api.corp.example:8080/");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("10.77.0.20") && out.contains("ok"), "{out}");
    let (_, log, _) = exec(&d, &id, "dns", "cat /var/log/dnsmasq.log");
    assert!(log.contains("query[A] api.corp.example from 10.77.0.10"), "the server logged client's query: {log}");

    let out = d.drill(&["submit", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    d.stop_clean(&id);
}

#[test]
fn dns_ndots_walks_the_search_list_over_the_wan_until_ndots_is_default() {
    if !privileged_or_skip("dns_ndots_walks_the_search_list_over_the_wan_until_ndots_is_default") {
        return;
    }
    let d = TestDaemon::start("dnsndots");
    let id = d.start_scenario("dns-ndots");
    let lookup_secs = |d: &TestDaemon| -> f64 {
        let (code, out, err) = exec(d, &id, "client", "curl -sS -m 5 -o /dev/null -w '%{time_namelookup}' http://api.corp.example:8080/");
        assert_eq!(code, 0, "{err}");
        out.trim().parse().unwrap()
    };

    // The symptom: the name lookup alone takes two WAN round trips (400 ms each).
    let slow = lookup_secs(&d);
    assert!(slow > 0.5, "lookup took {slow} s");
    let (_, conf, _) = exec(&d, &id, "client", "cat /etc/resolv.conf");
    assert!(conf.contains("options ndots:5"), "{conf}");
    // The DNS server's log shows the search names it forwarded over the WAN.
    let (_, log, _) = exec(&d, &id, "dns", "cat /var/log/dnsmasq.log");
    assert!(log.contains("forwarded api.corp.example.eu-west.hq.internal to 10.77.9.53") && log.contains("forwarded api.corp.example.hq.internal"), "{log}");
    // The name itself is answered at once by the local server.
    let t0 = std::time::Instant::now();
    assert_eq!(in_ns(&format!("drill-{id}-client"), "dig +short @10.77.0.53 api.corp.example").trim(), "10.77.0.20");
    assert!(t0.elapsed().as_secs_f64() < 0.3);

    // The fix: back to the default ndots.
    let (code, _, err) = exec(&d, &id, "client", "sed -i '/^options/s/ndots:5//; /^options *$/d' /etc/resolv.conf");
    assert_eq!(code, 0, "{err}");
    let fast = lookup_secs(&d);
    assert!(fast < 0.1, "after the fix the lookup took {fast} s");

    let out = d.drill(&["submit", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    d.stop_clean(&id);
}
