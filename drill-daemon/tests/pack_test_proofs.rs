//! `drill pack test` proves what it claims (privileged; a private drilld each): tiny packs
//! made from scenarios/firewall-drop.toml, each with one mistake, fail the stage that
//! must catch it, with a message naming the check, and exit 1; the good pack passes all
//! five stages and exits 0.

mod common;

use std::path::PathBuf;

use common::*;

const PACK_TOML: &str = include_str!("../../scenarios/pack.toml");
const FIREWALL_DROP: &str = include_str!("../../scenarios/firewall-drop.toml");

/// `text` without the tables whose header is `header` (each from its header to the next
/// table header), e.g. every `[[faults]]`.
fn without_tables(text: &str, header: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for l in text.lines() {
        let t = l.trim_start();
        if t.starts_with('[') && !t.starts_with("[{") && !t.starts_with("[\"") {
            skipping = t.starts_with(header);
        }
        if !skipping {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// firewall-drop with no workarounds and alternatives of its own (the fixtures add the
/// ones they test; fewer drills keep the test short), plus `extra` at the end.
fn firewall_drop(extra: &str) -> String {
    let t = without_tables(&without_tables(FIREWALL_DROP, "[[workarounds]]"), "[[alternatives]]");
    format!("{t}\n{extra}\n")
}

/// The reference solution's steps as a TOML `steps = [...]` line (a JSON string is a
/// TOML basic string), to make a workaround or an alternative that is the real fix
/// whatever the scenario's fault and rules look like today.
fn solution_steps() -> String {
    let sc = drill_core::scenario::parse("firewall-drop.toml", FIREWALL_DROP).expect("firewall-drop parses");
    let steps: Vec<String> = sc.solution.steps.iter().map(|s| format!("{{ host = {}, run = {} }}", serde_json::json!(s.host), serde_json::json!(s.run))).collect();
    format!("steps = [{}]", steps.join(", "))
}

/// A pack directory holding one scenario file.
fn pack(tag: &str, scenario: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let dir = std::env::temp_dir().join(format!("drill-packtest-{tag}-{}-{nanos:x}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pack.toml"), PACK_TOML.replace("name = \"core\"", &format!("name = \"proof-{tag}\""))).unwrap();
    std::fs::write(dir.join("firewall-drop.toml"), scenario).unwrap();
    dir
}

/// Runs `drill pack test DIR --json` on a daemon of its own; (exit code, report).
fn pack_test(tag: &str, scenario: &str) -> (i32, serde_json::Value) {
    let d = TestDaemon::start(tag);
    let dir = pack(tag, scenario);
    let out = d.drill(&["pack", "test", dir.to_str().unwrap(), "--jobs", "1", "--json"]);
    let _ = std::fs::remove_dir_all(&dir);
    let code = out.status.code().unwrap_or(-1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("pack test {tag}: not JSON ({e}), exit {code}: {}\nstderr: {}\ndaemon: {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr), d.logs()));
    (code, v)
}

/// The status of each stage of the only scenario, in order.
fn statuses(v: &serde_json::Value) -> Vec<String> {
    v["scenarios"][0]["stages"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap().to_string()).collect()
}

/// The failure messages of stage `n` (0-based).
fn failures(v: &serde_json::Value, n: usize) -> Vec<String> {
    v["scenarios"][0]["stages"][n]["failures"].as_array().unwrap().iter().map(|f| f["message"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_scenario_without_its_faults_fails_stage_2_naming_the_checks() {
    if !privileged_or_skip("a_scenario_without_its_faults_fails_stage_2_naming_the_checks") {
        return;
    }
    // No [[faults]], and no `guards` that would name them.
    let text: String = without_tables(&firewall_drop(""), "[[faults]]").lines().filter(|l| !l.trim_start().starts_with("guards")).map(|l| format!("{l}\n")).collect();
    let (code, v) = pack_test("nofaults", &text);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(statuses(&v), ["pass", "fail", "skipped", "skipped", "pass"], "{v:#}");
    let f = failures(&v, 1).join("\n");
    assert!(f.contains("the drill is not broken"), "{f}");
    // Every check is named, and its own evidence comes with it.
    let ev = v["scenarios"][0]["stages"][1]["failures"][0]["evidence"].as_array().unwrap().clone();
    for c in drill_core::scenario::parse("f.toml", &text).unwrap().checks {
        let name = c.name().to_string();
        assert!(f.contains(&format!("`{name}`")), "{name} not named in: {f}");
        assert!(ev.iter().any(|e| e["check"] == name.as_str() && e["saw"].as_str().is_some_and(|s| !s.is_empty())), "{name}: {ev:#?}");
    }
}

#[test]
fn a_workaround_that_is_a_fix_fails_stage_3_naming_it() {
    if !privileged_or_skip("a_workaround_that_is_a_fix_fails_stage_3_naming_it") {
        return;
    }
    // The reference solution, listed as a workaround: it must pass, so stage 3 fails.
    let extra = format!("[[workarounds]]\nname = \"flush every rule\"\nwhy = \"opens the whole firewall\"\n{}\n", solution_steps());
    let (code, v) = pack_test("wafix", &firewall_drop(&extra));
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(statuses(&v), ["pass", "pass", "fail", "skipped", "pass"], "{v:#}");
    let f = failures(&v, 2).join("\n");
    assert!(f.contains("workaround `flush every rule` passed: it is a fix, or the checks miss it"), "{f}");
    let ev = v["scenarios"][0]["stages"][2]["failures"][0]["evidence"].as_array().unwrap().clone();
    assert!(!ev.is_empty() && ev.iter().all(|e| e["passed"] == true && e["check"].as_str().is_some_and(|c| !c.is_empty())), "{ev:?}");
}

#[test]
fn a_check_that_fails_without_faults_fails_stage_1_naming_it() {
    if !privileged_or_skip("a_check_that_fails_without_faults_fails_stage_1_naming_it") {
        return;
    }
    let bad = "[[checks]]\nkind = \"http-slo\"\nname = \"requests to api:9099 succeed\"\nfrom = \"client\"\ntarget = \"api:9099\"\nmin_success_ratio = 0.95\nmax_latency_ms = 200\ntimeout_ms = 500\ninterval_ms = 200\n\n[solution]";
    let text = firewall_drop("").replacen("[solution]", bad, 1);
    let (code, v) = pack_test("badcheck", &text);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(statuses(&v), ["fail", "skipped", "skipped", "skipped", "pass"], "{v:#}");
    let f = failures(&v, 0);
    assert_eq!(f.len(), 1, "only the bad check fails: {f:?}");
    assert!(f[0].contains("check `requests to api:9099 succeed` fails without any fault"), "{f:?}");
}

#[test]
fn the_good_pack_passes_all_five_stages() {
    if !privileged_or_skip("the_good_pack_passes_all_five_stages") {
        return;
    }
    let extra = format!(
        "[[workarounds]]\nname = \"look, change nothing\"\nwhy = \"reading the rules fixes nothing\"\nsteps = [{{ host = \"api\", run = \"nft list ruleset\" }}, {{ host = \"api\", run = \"false\" }}]\n\n\
         [[alternatives]]\nname = \"the same fix, typed again\"\nwhy = \"an alternative that is right\"\n{}\n",
        solution_steps()
    );
    let (code, v) = pack_test("good", &firewall_drop(&extra));
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(statuses(&v), ["pass"; 5], "{v:#}");
    let notes: Vec<String> = v["scenarios"][0]["stages"][2]["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect();
    let notes = notes.join("\n");
    assert!(notes.contains("workaround `look, change nothing` caught by") && notes.contains("step `false` on api exited 1"), "{notes}");
    assert_eq!(v["machine"].as_array().unwrap().len(), 0, "{v:#}");
    assert_eq!(v["passed"], true);
}
