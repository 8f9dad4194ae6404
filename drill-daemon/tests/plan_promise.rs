//! What `drill start --dry-run` promises is what a start creates. For every built-in
//! drill: the dry run's plan (made by the CLI alone, no daemon) equals the plan the
//! daemon started (but for the drill's id); the drill's journal and the machine hold
//! exactly the planned namespaces (hosts, switches, delay wires); and every planned
//! fault step is there in the kernel, looked at with the learner's tools (nft, tc, ip).

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::Value;

fn planned_namespaces(plan: &Value) -> BTreeSet<String> {
    let mut s: BTreeSet<String> = plan["hosts"].as_array().unwrap().iter().chain(plan["switches"].as_array().unwrap()).map(|h| h["netns"].as_str().unwrap().to_string()).collect();
    for step in plan["faults"].as_array().unwrap() {
        if step["mechanism"]["mechanism"] == "delay-wire" {
            s.insert(step["mechanism"]["netns"].as_str().unwrap().to_string());
        }
    }
    // A tunnel link's two hidden underlays.
    for l in plan["links"].as_array().unwrap() {
        for u in l["tunnel"]["underlay"].as_array().into_iter().flatten() {
            s.insert(u.as_str().unwrap().to_string());
        }
    }
    s
}

/// The dry run's plan with the placeholder id `000000` replaced by `id`, wherever it
/// stands as an id (not inside a number such as a rate of 2000000 bit/s).
fn with_id(json: &str, id: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut rest = json;
    while let Some(at) = rest.find("000000") {
        let digit_before = rest[..at].ends_with(|c: char| c.is_ascii_digit()) || (at == 0 && out.ends_with(|c: char| c.is_ascii_digit()));
        let digit_after = rest[at + 6..].starts_with(|c: char| c.is_ascii_digit());
        out.push_str(&rest[..at]);
        out.push_str(if digit_before || digit_after { "000000" } else { id });
        rest = &rest[at + 6..];
    }
    out.push_str(rest);
    out
}

fn host_netns(plan: &Value, host: &str) -> String {
    plan["hosts"].as_array().unwrap().iter().find(|h| h["name"] == host).unwrap()["netns"].as_str().unwrap().to_string()
}

/// Checks one planned fault step in the kernel of the started drill.
fn step_is_there(d: &TestDaemon, id: &str, plan: &Value, step: &Value) -> Result<(), String> {
    let m = &step["mechanism"];
    let ns = host_netns(plan, step["host"].as_str().unwrap());
    let text = |cmd: &str| in_ns(&ns, cmd);
    let ok = match m["mechanism"].as_str().unwrap() {
        "nft" => {
            let chain = text(&format!("nft list chain inet filter {}", m["chain"].as_str().unwrap()));
            chain.contains("drop") || chain.contains("reject")
        }
        "dnat" => text("nft list chain inet filter prerouting").contains("dnat"),
        "delay-wire" => std::path::Path::new("/run/netns").join(m["netns"].as_str().unwrap()).exists(),
        "netem" => text(&format!("tc qdisc show dev {}", m["interface"].as_str().unwrap())).contains("netem"),
        "ebpf-tc" => text(&format!("tc filter show dev {} {}", m["interface"].as_str().unwrap(), m["direction"].as_str().unwrap())).contains("cls_main"),
        "tbf" => text(&format!("tc qdisc show dev {}", m["interface"].as_str().unwrap())).contains("tbf"),
        "htb" => text(&format!("tc qdisc show dev {}", m["interface"].as_str().unwrap())).contains("htb"),
        "mtu" => text(&format!("ip -o link show {}", m["interface"].as_str().unwrap())).contains(&format!("mtu {}", m["mtu"])),
        "route-remove" => !text("ip route show").contains("default"),
        "sysctl" => {
            let got = text(&format!("sysctl -n {}", m["key"].as_str().unwrap()));
            got.split_whitespace().collect::<Vec<_>>() == m["value"].as_str().unwrap().split_whitespace().collect::<Vec<_>>()
        }
        // The host's own /etc/resolv.conf (its mount namespace), read inside the host.
        "resolv-conf" => {
            let out = d.drill(&["exec", "--drill", id, step["host"].as_str().unwrap(), "--", "cat", "/etc/resolv.conf"]);
            String::from_utf8_lossy(&out.stdout).trim() == m["text"].as_str().unwrap().trim()
        }
        // The host's disk full (df inside the host) and the file held open, deleted (lsof).
        "deleted-open-file" => {
            let host = step["host"].as_str().unwrap();
            let sh_in = |c: &str| String::from_utf8_lossy(&d.drill(&["exec", "--drill", id, host, "--", "sh", "-c", c]).stdout).into_owned();
            sh_in("df -P / | tail -1").split_whitespace().nth(3) == Some("0") && sh_in("lsof -nP +L1 2>/dev/null").contains(&format!("{} (deleted)", m["path"].as_str().unwrap()))
        }
        // The stand-in's rule at the planned size, and the host's nf_conntrack_max saying it.
        "conntrack-table" => {
            let max = m["max"].as_u64().unwrap();
            let rule = text(&format!("nft list chain inet {} {}", m["table"].as_str().unwrap(), m["chain"].as_str().unwrap()));
            let out = d.drill(&["exec", "--drill", id, step["host"].as_str().unwrap(), "--", "sysctl", "-n", "net.netfilter.nf_conntrack_max"]);
            rule.contains(&format!("ct state new ct count over {max} counter")) && String::from_utf8_lossy(&out.stdout).trim() == max.to_string()
        }
        "service-config" => true, // read back by the engine from the running service; its config file is checked by the self-tests
        other => return Err(format!("unknown mechanism {other}")),
    };
    if ok { Ok(()) } else { Err(format!("planned step not found in the kernel: {step}")) }
}

#[test]
fn every_builtin_drill_creates_what_its_dry_run_promised() {
    if !privileged_or_skip("every_builtin_drill_creates_what_its_dry_run_promised") {
        return;
    }
    let d = TestDaemon::start("promise");
    let list = d.drill_json(&["list", "--json"], 0);
    let ids: Vec<String> = list.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    assert!(ids.len() >= 11, "{list}");
    for scenario in &ids {
        // The dry run: the CLI plans alone (no daemon is asked).
        let out = std::process::Command::new(drill_bin()).args(["--socket", "/nonexistent/drilld.sock", "start", scenario, "--dry-run", "--json"]).output().unwrap();
        assert!(out.status.success(), "{scenario}: dry run: {}", String::from_utf8_lossy(&out.stderr));
        let dry: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(dry["drill"].is_null(), "a dry run starts nothing");
        let started = d.drill_json(&["start", scenario, "--json"], 0);
        let id = started["drill"]["id"].as_str().unwrap().to_string();
        let plan = &started["plan"];
        assert_eq!(plan["slot"], 0, "{scenario}: a fresh daemon's drills run one at a time in block 0");
        // Equal but for the drill id.
        let promised: Value = serde_json::from_str(&with_id(&serde_json::to_string(&dry["plan"]).unwrap(), &id)).unwrap();
        assert_eq!(&promised, plan, "{scenario}: the started plan differs from the dry run's");
        assert_eq!(plan["faults"].as_array().unwrap().len(), promised["faults"].as_array().unwrap().len());
        // The journal and the machine hold exactly the planned namespaces.
        let want = planned_namespaces(plan);
        let journal: Value = serde_json::from_slice(&std::fs::read(d.state.join("drills").join(&id).join("journal.json")).unwrap()).unwrap();
        let journaled: BTreeSet<String> = journal["netns"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect();
        assert_eq!(journaled, want, "{scenario}: journal vs plan");
        let present: BTreeSet<String> = netns_of(&id).into_iter().collect();
        assert_eq!(present, want, "{scenario}: /run/netns vs plan");
        // A switch's path MTU: fabric_mtu on the ingress of every port, in its namespace.
        for sw in plan["switches"].as_array().unwrap().iter().filter(|s| s["path_mtu"].is_u64()) {
            for p in sw["ports"].as_array().unwrap() {
                let f = in_ns(sw["netns"].as_str().unwrap(), &format!("tc filter show dev {} ingress", p["port"].as_str().unwrap()));
                assert!(f.contains("fabric_mtu"), "{scenario}: switch {} port {}: no fabric_mtu filter: {f}", sw["name"], p["port"]);
            }
        }
        // Every planned fault step is in the kernel, seen with the learner's tools.
        for step in plan["faults"].as_array().unwrap() {
            if let Err(e) = step_is_there(&d, &id, plan, step) {
                panic!("{scenario}: {e}");
            }
        }
        d.drill_json(&["stop", &id, "--json"], 0);
        assert!(netns_of(&id).is_empty(), "{scenario}: namespaces left");
    }
}
