//! Every built-in scenario is broken before its reference fix and healthy after it:
//! start, the first submit fails, `drill solve --apply`, the next submit passes, stop
//! leaves nothing. (The self-test an instructor's pack gets.)

mod common;

use std::time::Duration;

use common::*;

#[test]
fn every_builtin_scenario_fails_before_and_passes_after_its_reference_fix() {
    if !privileged_or_skip("every_builtin_scenario_fails_before_and_passes_after_its_reference_fix") {
        return;
    }
    let d = TestDaemon::start("builtin");
    let list = d.drill_json(&["list", "--json"], 0);
    let ids: Vec<String> = list.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    assert!(ids.len() >= 3, "{list}");
    for scenario in &ids {
        let id = d.drill_json(&["start", scenario, "--json"], 0)["drill"]["id"].as_str().unwrap().to_string();
        let v = d.drill_json(&["submit", &id, "--json"], 1);
        assert_eq!(v["passed"], false, "{scenario}: must fail before the fix: {v}");
        let sol = d.drill_json(&["solve", &id, "--apply", "--json"], 0);
        assert!(sol["steps"].as_array().unwrap().iter().all(|s| s["result"]["exit_code"] == 0), "{scenario}: {sol}");
        std::thread::sleep(Duration::from_secs(1));
        let v = d.drill_json(&["submit", &id, "--json"], 0);
        assert_eq!(v["passed"], true, "{scenario}: must pass after the reference fix: {v}");
        d.drill_json(&["stop", &id, "--json"], 0);
        assert!(netns_of(&id).is_empty(), "{scenario}: namespaces left");
    }
}
