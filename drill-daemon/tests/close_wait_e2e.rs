//! The whole close-wait-leak drill, as a learner would run it, checked from outside
//! with `ss` and `ip`, then checked for leftovers. Runs as root (see common/mod.rs).

mod common;

use std::time::Duration;

use common::*;

#[test]
fn close_wait_drill_end_to_end() {
    if !privileged_or_skip("close_wait_drill_end_to_end") {
        return;
    }
    let d = TestDaemon::start("e2e");

    // The API socket is root's: 0660 with group `drill` when it exists, else 0600.
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let m = std::fs::metadata(&d.socket).unwrap();
        assert_eq!(m.uid(), 0);
        let group = nix::unistd::Group::from_name("drill").unwrap();
        match group {
            Some(g) => assert_eq!((m.permissions().mode() & 0o777, m.gid()), (0o660, g.gid.as_raw())),
            None => assert_eq!(m.permissions().mode() & 0o777, 0o600),
        }
    }

    // The plan is printable without touching the kernel.
    let plan = d.drill(&["start", "--dry-run", "close-wait-leak"]);
    assert!(plan.status.success());
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(plan.contains("client:eth0 <-> api:eth0"), "{plan}");
    assert!(plan.contains("service-config on api/httpd: close_on_eof = false"), "{plan}");

    // No test creates links in the root namespace (veth ends are born in their netns),
    // so its link list must come back exactly as it was.
    let root_links = sh("ip -br link | awk '{print $1}' | sort");
    let started = d.drill_json(&["start", "close-wait-leak", "--json"], 0);
    let id = started["drill"]["id"].as_str().unwrap().to_string();
    let api_ns = format!("drill-{id}-api");
    let client_ns = format!("drill-{id}-client");
    let hosts: Vec<&str> = started["drill"]["hosts"].as_array().unwrap().iter().map(|h| h["netns"].as_str().unwrap()).collect();
    assert_eq!(hosts, [client_ns.as_str(), api_ns.as_str()]);

    // Topology, from outside: addresses, reachability.
    let a = sh(&format!("ip -n {api_ns} -br addr show dev eth0"));
    assert!(a.contains("10.77.0.2/24"), "{a}");
    sh(&format!("ip netns exec {client_ns} ping -c 1 -W 2 10.77.0.2"));

    // The leak is visible with ss inside the api namespace and grows.
    assert!(wait_until(Duration::from_secs(10), || close_wait_count(&api_ns) >= 20), "no CLOSE_WAIT pile-up on api: {}", d.logs());
    let owners = sh(&format!("ip netns exec {api_ns} ss -Htanp state close-wait"));
    assert!(owners.contains("\"httpd\""), "ss -p should name httpd as the owner: {owners}");

    // status: hosts with netns names, services running.
    let st = d.drill_json(&["status", &id, "--json"], 0);
    let svcs = st[0]["services"].as_array().unwrap();
    assert!(svcs.iter().all(|s| s["state"] == "running"), "{st}");

    // exec enters every namespace of the host.
    let out = d.drill(&["exec", "--drill", &id, "api", "--", "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '; grep -c close_on_eof /etc/httpd/httpd.toml"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("api\ndrilld host-init"), "hostname and PID 1 of the host: {text}");

    // drill watch shows the pile-up as the probe counts it, and a synthetic request.
    let w = d.drill_json(&["watch", &id, "--count", "1", "--json"], 0);
    let api = w["hosts"].as_array().unwrap().iter().find(|h| h["host"] == "api").unwrap();
    let outside = close_wait_count(&api_ns) as u64;
    let probe = api["close_wait"].as_u64().unwrap();
    assert!(probe >= 20 && probe.abs_diff(outside) <= 30, "probe {probe} vs ss {outside} (load keeps adding ~25/s)");
    assert_eq!(w["requests"].as_array().unwrap().len(), 1, "{w}");

    // First submit fails, and says what it saw.
    let v = d.drill_json(&["submit", &id, "--json"], 1);
    assert_eq!(v["passed"], false);
    let dwell = &v["checks"][0];
    assert_eq!(dwell["passed"], false, "{v}");
    assert!(dwell["details"]["over_bound"].as_u64().unwrap() > 0, "{v}");
    assert!(dwell["saw"].as_str().unwrap().contains("stayed in CLOSE_WAIT longer than 2 s"), "{v}");

    // The reference fix.
    let sol = d.drill_json(&["solve", &id, "--apply", "--json"], 0);
    assert!(sol["steps"].as_array().unwrap().iter().all(|s| s["result"]["exit_code"] == 0), "{sol}");
    // From outside: the leaked sockets are gone and do not come back.
    assert!(wait_until(Duration::from_secs(5), || close_wait_count(&api_ns) == 0), "CLOSE_WAIT sockets remain after the fix");

    let v = d.drill_json(&["submit", &id, "--json"], 0);
    assert_eq!(v["passed"], true, "{v}");
    assert!(v["checks"][0]["details"]["sockets_seen"].as_u64().unwrap() >= 10, "load must have gone through: {v}");
    assert!(v["checks"][1]["details"]["succeeded"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(close_wait_count(&api_ns), 0);

    // Stop removes everything.
    let daemon_pid = d.pid();
    let stop = d.drill_json(&["stop", &id, "--json"], 0);
    assert_eq!(stop["errors"].as_array().unwrap().len(), 0, "{stop}");
    assert!(netns_of(&id).is_empty(), "namespaces left: {:?}", netns_of(&id));
    assert!(host_inits_with_parent(daemon_pid).is_empty(), "host processes left");
    assert!(d.drill_mounts().is_empty(), "mounts left: {:?}", d.drill_mounts());
    assert_eq!(std::fs::read_dir(d.state.join("drills")).unwrap().count(), 0, "drill state left");
    assert_eq!(sh("ip -br link | awk '{print $1}' | sort"), root_links, "links left in the root namespace");

    // With nothing running, commands say so instead of guessing.
    let out = d.drill(&["submit"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no drill is running"));
}

#[test]
fn sigterm_tears_every_drill_down() {
    if !privileged_or_skip("sigterm_tears_every_drill_down") {
        return;
    }
    let mut d = TestDaemon::start("term");
    let id = d.drill_json(&["start", "close-wait-leak", "--json"], 0)["drill"]["id"].as_str().unwrap().to_string();
    let id2 = d.drill_json(&["start", "close-wait-leak", "--json"], 0)["drill"]["id"].as_str().unwrap().to_string();
    assert_ne!(id, id2);
    assert_eq!(netns_of(&id).len(), 2);
    let daemon_pid = d.pid();
    let st = d.terminate().unwrap();
    assert!(st.success(), "drilld exit status after SIGTERM: {st}; {}", d.logs());
    for i in [&id, &id2] {
        assert!(netns_of(i).is_empty(), "namespaces of {i} left after SIGTERM");
    }
    assert!(host_inits_with_parent(daemon_pid).is_empty());
    assert!(mounts_under(&d.state).is_empty());
    assert!(!d.socket.exists(), "socket left behind");
}

#[test]
fn crash_then_reset_leaves_nothing() {
    if !privileged_or_skip("crash_then_reset_leaves_nothing") {
        return;
    }
    let mut d = TestDaemon::start("crash");
    let id = d.drill_json(&["start", "close-wait-leak", "--json"], 0)["drill"]["id"].as_str().unwrap().to_string();
    let inits = host_inits_with_parent(d.pid());
    assert_eq!(inits.len(), 2);
    d.crash();
    // Hosts die with the daemon (PR_SET_PDEATHSIG): these very processes are gone, not
    // reparented. Their namespaces stay until reset.
    assert!(wait_until(Duration::from_secs(5), || !inits.iter().any(|p| is_host_init(*p))), "host inits {inits:?} outlived the daemon");
    assert_eq!(netns_of(&id).len(), 2, "namespaces survive a crash until reset");
    let out = d.reset();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id), "reset names what it removed");
    assert!(netns_of(&id).is_empty(), "reset must remove the namespaces");
    assert!(mounts_under(&d.state).is_empty());
    // Second round: crash again, and this time a restarted daemon cleans up by itself.
    d.spawn();
    let id2 = d.drill_json(&["start", "close-wait-leak", "--json"], 0)["drill"]["id"].as_str().unwrap().to_string();
    d.crash();
    assert_eq!(netns_of(&id2).len(), 2);
    d.spawn();
    assert!(netns_of(&id2).is_empty(), "a restarted drilld must remove the leftovers of the crashed one");
    assert!(d.logs().contains("removed leftovers of an earlier run"), "and say so in its log");
    let st = d.drill_json(&["status", "--json"], 0);
    assert_eq!(st.as_array().unwrap().len(), 0);
}
