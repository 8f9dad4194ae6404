//! Timed incidents end to end (privileged; a private drilld with its own history): an
//! incident on firewall-drop played as a learner would, its score, figures and report;
//! the history after a kill -9; a clock that runs out; a solve that abandons; a plain
//! drill's timeline without a score.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

fn events_of<'a>(rec: &'a Value, ty: &str) -> Vec<&'a Value> {
    rec["events"].as_array().unwrap().iter().filter(|e| e["type"] == ty).collect()
}

fn t(e: &Value) -> u64 {
    e["t_ms"].as_u64().unwrap()
}

#[test]
fn an_incident_played_as_a_learner_scores_and_reports_and_outlives_a_crash() {
    if !privileged_or_skip("an_incident_played_as_a_learner_scores_and_reports_and_outlives_a_crash") {
        return;
    }
    let mut d = TestDaemon::start("incident");
    let page = d.drill_json(&["incident", "--scenario", "firewall-drop", "--time-limit", "10m", "--json"], 0);
    let id = page["id"].as_str().unwrap().to_string();
    assert_eq!(page["scenario"], "", "a running incident is not named: {page}");
    assert_eq!(page["timeline"]["mode"], "incident");
    let client_ns = format!("drill-{id}-client");
    let api_ns = format!("drill-{id}-api");

    // The learner: ack, two commands, a hint, a failed submit, the fix, a passing submit.
    d.drill_json(&["ack", &id, "--json"], 0);
    let curl = d.drill(&["exec", "--drill", &id, "client", "--", "curl", "-s", "-m", "2", "http://api:8080/"]);
    assert_eq!(curl.status.code(), Some(28), "the fault times the request out (curl exit 28)");
    let rules = d.drill(&["exec", "--drill", &id, "api", "--", "nft", "-a", "list", "ruleset"]);
    let rules = String::from_utf8_lossy(&rules.stdout).to_string();
    // Seen from outside the engine too.
    assert!(sh(&format!("ip netns exec {client_ns} curl -s -m 2 -o /dev/null -w '%{{http_code}}' http://10.77.0.2:8080/; echo rc=$?")).contains("rc=28"));
    d.drill_json(&["hint", &id, "--json"], 0);
    let failed = d.drill_json(&["submit", &id, "--json"], 1);
    assert_eq!(failed["passed"], false);
    assert_eq!(failed["scenario"], "", "nor is it named in a verdict while it runs");
    let handle = rules.lines().find(|l| l.contains("drop")).and_then(|l| l.rsplit("handle ").next()).map(|h| h.trim().to_string()).expect("the drop rule's handle");
    let fix = d.drill(&["exec", "--drill", &id, "api", "--", "nft", "delete", "rule", "inet", "filter", "input", "handle", &handle]);
    assert!(fix.status.success(), "{}", String::from_utf8_lossy(&fix.stderr));
    assert!(in_ns(&api_ns, "nft list ruleset").contains("chain input"));
    assert_eq!(sh(&format!("ip netns exec {client_ns} curl -s -m 2 -o /dev/null -w '%{{http_code}}' http://10.77.0.2:8080/")), "200", "fixed, seen from outside");
    // The continuous evaluation sees the recovery before any submit.
    assert!(wait_until(Duration::from_secs(40), || d.drill_json(&["status", &id, "--json"], 0)[0]["timeline"]["mitigated_secs"].is_number()), "the service level recovered: {}", d.logs());
    let passed = d.drill_json(&["submit", &id, "--json"], 0);
    assert_eq!(passed["passed"], true);

    let rec = d.drill_json(&["report", &id, "--format", "json"], 0);
    let rec = if rec.get("record").is_some() { rec["record"].clone() } else { rec };
    assert_eq!(rec["outcome"], "resolved");
    assert_eq!(rec["scenario"], "firewall-drop", "named once over");
    // The score's parts add up, and hints and the failed submit cost.
    let score = &rec["score"];
    let parts = score["parts"].as_array().unwrap();
    let sum: i64 = parts.iter().map(|p| p["points"].as_i64().unwrap()).sum();
    assert_eq!(sum, score["total"].as_i64().unwrap(), "{score}");
    for name in ["resolved", "speed", "mitigated", "acknowledged", "hints", "failed submits"] {
        assert!(parts.iter().any(|p| p["name"] == name), "part {name} in {score}");
    }
    assert_eq!(parts.iter().find(|p| p["name"] == "hints").unwrap()["points"], -5);
    assert_eq!(parts.iter().find(|p| p["name"] == "failed submits").unwrap()["points"], -5);
    // MTTA, MTTM and MTTR agree with the timeline.
    let f = &rec["figures"];
    let (mtta, mttm, mttr) = (f["mtta_ms"].as_u64().unwrap(), f["mttm_ms"].as_u64().unwrap(), f["mttr_ms"].as_u64().unwrap());
    assert_eq!(mtta, t(events_of(&rec, "ack")[0]));
    assert_eq!(mttm, t(events_of(&rec, "mitigated")[0]));
    let submits = events_of(&rec, "submit");
    assert_eq!(submits.len(), 2);
    assert_eq!(mttr, t(submits[1]));
    assert!(mtta < t(submits[0]) && t(submits[0]) < mttm && mttm <= mttr, "ack {mtta} < failed submit {} < mitigated {mttm} <= resolved {mttr}", t(submits[0]));
    let fix_at = events_of(&rec, "command").into_iter().find(|e| e["argv"].as_array().unwrap().iter().any(|a| a == "delete")).map(t).expect("the fix is in the timeline");
    assert!(fix_at <= mttm + 1_000, "recovered in the window after the fix: fix {fix_at}, mitigated {mttm}");
    // The learner's commands, from the kernel, with host and exit status.
    let cmds = events_of(&rec, "command");
    let curl_cmd = cmds.iter().find(|c| c["argv"][0] == "curl" && c["host"] == "client").expect("curl on client in the timeline");
    assert_eq!(curl_cmd["exit"], serde_json::json!({"how": "code", "value": 28}));
    assert!(cmds.iter().any(|c| c["host"] == "api" && c["argv"][0] == "nft" && c["argv"][1] == "-a"), "nft -a list ruleset on api");
    assert!(!events_of(&rec, "check-flip").is_empty());
    assert_eq!(events_of(&rec, "hint").len(), 1);
    assert!(rec["root_cause"]["faults"][0].as_str().unwrap().contains("nft"), "{}", rec["root_cause"]);
    // The other formats.
    let md = d.drill(&["report", &id, "--format", "md"]);
    let md = String::from_utf8_lossy(&md.stdout).to_string();
    for s in ["MTTA", "MTTR", "curl"] {
        assert!(md.contains(s), "markdown report holds {s}:\n{md}");
    }
    let html_path = d.dir.join("report.html");
    let out = d.drill(&["report", &id, "--format", "html", "-o", html_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_to_string(&html_path).unwrap().contains("<svg"));

    // A second incident still running when drilld is killed: kept, marked aborted; the
    // first is still there.
    let second = d.drill_json(&["incident", "--scenario", "firewall-drop", "--json"], 0)["id"].as_str().unwrap().to_string();
    d.drill_json(&["ack", &second, "--json"], 0);
    d.crash();
    assert!(d.reset().status.success());
    d.spawn();
    let hist = d.drill_json(&["history", "--json"], 0);
    let outcome = |id: &str| hist.as_array().unwrap().iter().find(|e| e["id"] == id).map(|e| e["outcome"].clone());
    assert_eq!(outcome(&id), Some(Value::from("resolved")), "{hist}");
    assert_eq!(outcome(&second), Some(Value::from("aborted")), "{hist}");
    let aborted = d.drill_json(&["report", &second, "--format", "json"], 0);
    let aborted = if aborted.get("record").is_some() { aborted["record"].clone() } else { aborted };
    assert_eq!(events_of(&aborted, "ack").len(), 1, "what was recorded before the crash is kept");
    // With no daemon at all, root reads the history file itself.
    d.terminate();
    let offline = d.drill_json(&["history", "--json"], 0);
    assert_eq!(offline.as_array().unwrap().len(), hist.as_array().unwrap().len());
    assert!(netns_of(&id).is_empty() && netns_of(&second).is_empty());
}

#[test]
fn a_clock_that_runs_out_a_solve_that_abandons_and_a_plain_drill() {
    if !privileged_or_skip("a_clock_that_runs_out_a_solve_that_abandons_and_a_plain_drill") {
        return;
    }
    let d = TestDaemon::start("incident-end");
    let timed = d.drill_json(&["incident", "--scenario", "firewall-drop", "--time-limit", "6s", "--json"], 0)["id"].as_str().unwrap().to_string();
    let solved = d.drill_json(&["incident", "--scenario", "firewall-drop", "--json"], 0)["id"].as_str().unwrap().to_string();
    let plain = d.drill_json(&["start", "firewall-drop", "--json"], 0)["drill"]["id"].as_str().unwrap().to_string();

    // solve without a terminal: said, then abandoned.
    let out = d.drill(&["solve", &solved]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("abandon"), "{}", String::from_utf8_lossy(&out.stderr));
    let status = |id: &str| d.drill_json(&["status", id, "--json"], 0)[0].clone();
    assert_eq!(status(&solved)["timeline"]["outcome"], "abandoned");
    // A plain drill has no clock and no ack.
    assert_eq!(d.drill(&["ack", &plain]).status.code(), Some(2));

    assert!(wait_until(Duration::from_secs(20), || status(&timed)["timeline"]["outcome"] == "unresolved"), "the clock ran out");
    // The hosts stay inspectable; a fix and a passing submit do not change the outcome.
    let rules = d.drill(&["exec", "--drill", &timed, "api", "--", "nft", "flush", "chain", "inet", "filter", "input"]);
    assert!(rules.status.success());
    d.drill_json(&["submit", &timed, "--json"], 0);
    assert_eq!(status(&timed)["timeline"]["outcome"], "unresolved");
    for id in [&timed, &solved, &plain] {
        assert!(d.drill(&["stop", id]).status.success());
    }
    let hist = d.drill_json(&["history", "--json"], 0);
    let row = |id: &str| hist.as_array().unwrap().iter().find(|e| e["id"] == id).cloned().unwrap();
    assert_eq!(row(&timed)["outcome"], "unresolved");
    assert_eq!(row(&solved)["outcome"], "abandoned");
    assert_eq!(row(&plain)["outcome"], "stopped");
    assert!(row(&plain)["score"].is_null(), "a plain drill has no score");
    let rec = d.drill_json(&["report", &timed, "--format", "json"], 0);
    let rec = if rec.get("record").is_some() { rec["record"].clone() } else { rec };
    let score = &rec["score"];
    assert_eq!(score["parts"].as_array().unwrap().iter().find(|p| p["name"] == "resolved").unwrap()["points"], 0, "{score}");
    assert_eq!(events_of(&rec, "time-up").len(), 1);
    let plain_rec = d.drill_json(&["report", &plain, "--format", "json"], 0);
    let plain_rec = if plain_rec.get("record").is_some() { plain_rec["record"].clone() } else { plain_rec };
    assert!(plain_rec["score"].is_null());
    assert!(!plain_rec["windows"].as_array().unwrap().is_empty(), "a plain drill is evaluated continuously too");
}
