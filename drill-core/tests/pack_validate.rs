//! `drill pack validate` on fixtures: the skeleton is valid; schema errors, cross-references,
//! addresses and routes, and every authoring lint come out with file:line:column.

mod common;

use common::{Scratch, line_of, problems, scenario};
use drill_core::pack::{self, ProblemKind, SCENARIO_FILE};

const F: &str = SCENARIO_FILE;

/// The problems after one edit of the skeleton's scenario.
fn after(from: &str, to: &str) -> (Vec<String>, String) {
    let s = Scratch::skeleton("edit");
    s.edit(F, from, to);
    let text = std::fs::read_to_string(s.path().join(F)).unwrap();
    (problems(s.path()), text)
}

fn has(ps: &[String], line: usize, what: &str) -> bool {
    ps.iter().any(|p| p.contains(&format!("{F}:{line}:")) && p.contains(what))
}

#[test]
fn the_skeleton_is_valid() {
    let s = Scratch::skeleton("ok");
    let r = pack::validate(s.path()).unwrap();
    assert!(r.valid, "{:?}", r.problems);
    assert_eq!(r.pack.as_deref(), Some("test-pack"));
    assert_eq!(r.scenarios.len(), 1);
    assert_eq!(r.scenarios[0].id, "web-timeout");
    std::os::unix::fs::symlink("user@host.1234", s.path().join(".#web-timeout.toml")).unwrap();
    assert!(pack::validate(s.path()).unwrap().valid, "an editor's lock file is not a scenario");
    let one = pack::validate(&s.path().join(F)).unwrap();
    assert!(one.valid && one.pack.as_deref() == Some("test-pack"), "{:?}", one.problems);
}

#[test]
fn one_mistake_in_each_of_three_files_gives_three_positioned_errors() {
    let s = Scratch::skeleton("three");
    let base = scenario();
    s.write("a.toml", &base.replace("id = \"web-timeout\"", "id = \"a\"").replace("kind = \"nft-drop\"", "kind = \"nft-dorp\""));
    s.write("b.toml", &base.replace("id = \"web-timeout\"", "id = \"b\"").replace("dport = 8080\nfrom", "dport = 80800\nfrom"));
    s.write("c.toml", &base.replace("id = \"web-timeout\"", "id = \"c\"").replace("window_secs = 4.0", "window = 4.0"));
    let r = pack::validate(s.path()).unwrap();
    assert!(!r.valid);
    let files: Vec<&str> = r.problems.iter().map(|p| p.file.rsplit('/').next().unwrap()).collect();
    assert_eq!(files, ["a.toml", "b.toml", "c.toml"], "{:#?}", r.problems);
    assert!(r.problems.iter().all(|p| p.kind == ProblemKind::Error && p.line > 1 && p.column >= 1 && !p.help.is_empty()));
    assert_eq!(r.problems[0].line, line_of(&base, "kind = \"nft-drop\""));
    assert!(r.problems[2].message.contains("`window` is not a key"), "{}", r.problems[2].message);
}

#[test]
fn lints_point_at_their_line() {
    let (ps, t) = after("time_limit_minutes = 30\n", "");
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert!(has(&ps, line_of(&t, "id = "), "lint: the scenario has no time limit"), "{ps:?}");
    let s = Scratch::skeleton("hints");
    let text = scenario();
    let start = text.find("hints = [").unwrap();
    let end = start + text[start..].find("]\n").unwrap() + 2;
    let t = format!("{}hints = [\"only one\"]\n{}", &text[..start], &text[end..]);
    s.write(F, &t);
    let ps = problems(s.path());
    assert!(has(&ps, line_of(&t, "hints = [\"only one\"]"), "lint: the scenario has 1 hint(s)"), "{ps:?}");
    let (ps, t) = after("{ host = \"web\", run = \"nft -a list ruleset\" },", "{ host = \"web\", run = \" \" },");
    assert!(has(&ps, line_of(&t, "steps = ["), "lint: step 1 of solution on host `web` runs nothing"), "{ps:?}");
}

#[test]
fn a_time_limit_shorter_than_the_estimate_is_a_lint() {
    let (ps, t) = after("time_limit_minutes = 30", "time_limit_minutes = 10");
    assert!(has(&ps, line_of(&t, "time_limit_minutes = 10"), "lint: the time limit (10 min) is shorter than the estimated time (15 min)"), "{ps:?}");
}

#[test]
fn workarounds_and_alternatives_need_steps() {
    let (ps, t) = after("steps = [{ host = \"web\", run = \"svc restart httpd\" }]", "steps = []");
    assert!(has(&ps, line_of(&t, "[[workarounds]]"), "workarounds `restart the service` has no steps"), "{ps:?}");
    let (ps, t) = after("of the chain\"\nsteps = [", "of the chain\"\nstepz = [");
    assert!(has(&ps, line_of(&t, "[[alternatives]]"), "needs `steps`"), "{ps:?}");
    assert!(has(&ps, line_of(&t, "stepz"), "`stepz` is not a key"), "{ps:?}");
}

#[test]
fn empty_alert_briefing_and_solution_steps_are_lints() {
    let s = Scratch::skeleton("empty");
    let text = scenario();
    let a = text.find("alert = \"\"\"").unwrap();
    let a_end = a + text[a..].find("\"\"\"\n\n").unwrap() + 4;
    let mut t = format!("{}alert = \"  \"\n{}", &text[..a], &text[a_end..]);
    let st = t.find("steps = [\n    { host = \"web\", run = \"nft -a list ruleset\" },").unwrap();
    let st_end = st + t[st..].find("]\n").unwrap() + 2;
    t = format!("{}steps = []\n{}", &t[..st], &t[st_end..]);
    s.write(F, &t);
    let ps = problems(s.path());
    assert!(has(&ps, line_of(&t, "alert = \"  \""), "lint: `alert` is empty"), "{ps:?}");
    // `steps = []` in [solution]: the schema takes it, the lint does not.
    assert!(ps.iter().any(|p| p.contains("lint: the solution has no steps")), "{ps:?}");
}

#[test]
fn an_unguarded_fault_is_a_lint_at_the_fault() {
    let (ps, t) = after("guards = [\"drop-http\"]\n", "guards = []\n");
    let s = Scratch::skeleton("guards");
    let all = scenario().replace("guards = [\"drop-http\"]", "guards = []");
    s.write(F, &all);
    let ps_all = problems(s.path());
    let fault_line = line_of(&all, "[[faults]]");
    assert!(ps_all.iter().any(|p| p.contains("lint: fault `drop-http` is guarded by no check") && p.contains(&format!(":{fault_line}:"))), "{ps_all:?}");
    assert!(ps.is_empty(), "two checks still guard it: {ps:?} {}", t.len());
}

#[test]
fn checks_that_pass_without_traffic_are_a_lint() {
    let s = Scratch::skeleton("trivial");
    let text = scenario();
    let second = text.find("[[checks]]\nkind = \"tcp-state-dwell\"").unwrap();
    let sol = text.find("# The reference fix").unwrap();
    let t = format!("{}{}", &text[..second], &text[sol..]);
    s.write(F, &t);
    let ps = problems(s.path());
    assert!(has(&ps, line_of(&t, "[[checks]]"), "lint: every check of the scenario passes without traffic"), "{ps:?}");
    assert!(pack::needs_traffic(&drill_core::scenario::Check::Count {
        name: "r".into(),
        host: "h".into(),
        port: None,
        counted: drill_core::scenario::Counted::Retransmits,
        max: 0,
        max_ratio: Some(0.1)
    }));
}

#[test]
fn cross_references_of_services_and_checks() {
    let (ps, t) = after("target = \"web:8080\", path", "target = \"wbe:8080\", path");
    assert!(has(&ps, line_of(&t, "wbe:8080"), "target names host `wbe`, which the scenario does not declare"), "{ps:?}");
    let (ps, t) = after("target = \"web:8080\", path", "target = \"web:9090\", path");
    assert!(has(&ps, line_of(&t, "web:9090"), "no service on host `web` listens on port 9090"), "{ps:?}");
    let (ps, t) = after("target = \"web:8080\"\nmin", "target = \"web:8081\"\nmin");
    assert!(has(&ps, line_of(&t, "web:8081"), "no service on host `web` listens on port 8081"), "{ps:?}");
    let (ps, t) = after("peer_port = 8080", "peer_port = 8443");
    assert!(has(&ps, line_of(&t, "8443"), "no service of the scenario listens on port 8443"), "{ps:?}");
    let (ps, t) = after("host = \"web\", run = \"svc restart httpd\"", "host = \"wbe\", run = \"svc restart httpd\"");
    assert!(has(&ps, line_of(&t, "wbe"), "unknown host `wbe`"), "{ps:?}");
}

#[test]
fn addresses_and_routes() {
    let (ps, t) = after("[[hosts]]\nname = \"client\"\n", "[[hosts]]\nname = \"client\"\nroutes = [{ to = \"10.9.0.0/24\", via = \"10.78.0.1\" }]\n");
    assert!(has(&ps, line_of(&t, "via = \"10.78.0.1\""), "gateway 10.78.0.1 is host `client`'s own address"), "{ps:?}");
    let (ps, t) = after("[[hosts]]\nname = \"client\"\n", "[[hosts]]\nname = \"client\"\nroutes = [{ to = \"default\", via = \"client\" }]\n");
    assert!(has(&ps, line_of(&t, "via = \"client\""), "host `client` routes via itself"), "{ps:?}");
    let (ps, t) = after("[[hosts]]\nname = \"client\"\n", "[[hosts]]\nname = \"client\"\nroutes = [{ to = \"default\", via = \"10.9.9.9\" }]\n");
    assert!(has(&ps, line_of(&t, "10.9.9.9"), "gateway 10.9.9.9 is not on any subnet of host `client`"), "{ps:?}");
    let extra = "[[hosts]]\nname = \"r\"\n\n[[links]]\na = { host = \"client\", address = \"10.78.0.129/25\" }\nb = { host = \"r\", address = \"10.78.0.130/25\" }\n\n[[services]]";
    let (ps, t) = after("[[services]]", extra);
    assert!(has(&ps, line_of(&t, "10.78.0.129/25"), "host `client` has 10.78.0.129/25 and 10.78.0.1/24 on different links: their subnets overlap"), "{ps:?}");
}

#[test]
fn what_the_plan_would_refuse_is_an_error_at_the_fault() {
    let (ps, t) = after("proto = \"tcp\"\ndport = 8080", "proto = \"udp\"\ndport = 8080");
    assert!(has(&ps, line_of(&t, "[[faults]]"), "fault `drop-http` cannot be measured after apply"), "{ps:?}");
    assert_eq!(ps.len(), 1, "one error, not one per backend: {ps:?}");
}

#[test]
fn a_lone_file_with_files_needs_a_pack() {
    let s = Scratch::new("lone");
    let t = format!("{}\n[[files]]\nhost = \"web\"\npath = \"/etc/motd\"\nsource = \"files/banner\"\n", scenario());
    s.write("x.toml", &t);
    let r = pack::validate(&s.path().join("x.toml")).unwrap();
    assert!(r.pack.is_none());
    assert!(r.problems.iter().any(|p| p.message.contains("not in a pack") && p.line == line_of(&t, "source = \"files/banner\"")), "{:?}", r.problems);
    s.write("pack.toml", &pack::skeleton("lone")[0].1);
    s.write("files/banner", "hello\n");
    let r = pack::validate(&s.path().join("x.toml")).unwrap();
    assert!(r.valid, "{:?}", r.problems);
}

#[test]
fn files_go_to_distinct_paths_outside_the_kernel_trees() {
    let s = Scratch::skeleton("filepaths");
    s.write("files/banner", "hi\n");
    let entry = |path: &str| format!("\n[[files]]\nhost = \"web\"\npath = \"{path}\"\nsource = \"files/banner\"\n");
    let t = format!("{}{}{}{}", scenario(), entry("/etc/banner"), entry("/etc/banner"), entry("/proc/sys/net/ipv4/ip_forward"));
    s.write(F, &t);
    let r = pack::validate(s.path()).unwrap();
    let lines: Vec<(usize, &str)> = r.problems.iter().map(|p| (p.line, p.message.as_str())).collect();
    let second = t.match_indices("path = \"/etc/banner\"").nth(1).map(|(i, _)| t[..i].lines().count() + 1).unwrap();
    assert!(lines.contains(&(second, "two [[files]] entries place /etc/banner on host `web`")), "{lines:?}");
    assert!(lines.iter().any(|(l, m)| *l == line_of(&t, "/proc/sys") && m.contains("is under /proc")), "{lines:?}");
    assert_eq!(lines.len(), 2, "{lines:?}");
}

#[test]
fn json_report_shape_is_stable() {
    let (_, _) = after("time_limit_minutes = 30\n", "");
    let s = Scratch::skeleton("json");
    s.edit(F, "time_limit_minutes = 30\n", "");
    let text = serde_json::to_string(&pack::validate(s.path()).unwrap()).unwrap();
    let order = |keys: &[&str]| {
        let at: Vec<usize> = keys.iter().map(|k| text.find(&format!("\"{k}\":")).unwrap_or_else(|| panic!("no key {k}: {text}"))).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "keys out of order: {text}");
    };
    order(&["valid", "pack", "scenarios", "problems"]);
    order(&["file", "line", "column", "message", "help", "kind"]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let p = &v["problems"][0];
    assert_eq!(p["kind"], "lint");
    assert_eq!(v["valid"], false);
}

#[test]
fn missing_paths_are_io_errors_and_a_dir_without_pack_toml_is_invalid() {
    assert!(matches!(pack::validate(std::path::Path::new("/nonexistent/drill/pack")), Err(pack::LoadError::Io { .. })));
    let s = Scratch::new("nomanifest");
    s.write("x.toml", &scenario());
    let r = pack::validate(s.path()).unwrap();
    assert!(!r.valid && r.problems.iter().any(|p| p.message.contains("no pack.toml")), "{:?}", r.problems);
}
