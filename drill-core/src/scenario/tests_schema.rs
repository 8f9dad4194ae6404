//! The schema's promises: every error of a file in one run, each at file:line:column
//! with a suggestion; ranges that mean something; strict keys at every level.

use super::tests_support::{GOOD, fault_err, with_check, with_fault};
use super::*;
use crate::source::SourceError;

fn errs(text: &str) -> Vec<SourceError> {
    parse("t.toml", text).unwrap_err().0
}

/// Line (1-based) of the first line of `text` equal to `line`, after `after`.
fn line_of(text: &str, after: usize, line: &str) -> usize {
    text.lines().enumerate().skip(after).find(|(_, l)| *l == line).map(|(i, _)| i + 1).unwrap()
}

#[test]
fn wrong_kind_key_unknown_kind_and_bad_address_are_three_errors_in_one_run() {
    let text = GOOD
        .replace("b = { host = \"api\", address = \"10.77.0.2/24\" }", "b = { host = \"api\", address = \"10.77.0.300/24\" }")
        .replace("[verify]", "[[faults]]\nkind = \"nft-drop\"\nhost = \"api\"\nproto = \"tcp\"\ndport = 8080\npercent = 20\n\n[[faults]]\nkind = \"nft-dorp\"\nhost = \"api\"\n\n[verify]");
    let e = errs(&text);
    assert_eq!(e.len(), 3, "{}", SourceErrors(e.clone()));
    let link = line_of(&text, 0, "b = { host = \"api\", address = \"10.77.0.300/24\" }");
    assert_eq!((e[0].line, e[0].column), (link, 31), "{}", e[0]);
    assert!(e[0].message.contains("`10.77.0.300` is not an IP address") && e[0].help.contains("e.g. \"10.77.0.2/24\""), "{}", e[0]);
    let pct = line_of(&text, 0, "percent = 20");
    assert_eq!((e[1].line, e[1].column), (pct, 1), "{}", e[1]);
    assert_eq!(e[1].message, "`percent` is not a key of `nft-drop`");
    assert!(e[1].help.starts_with("`nft-loss`, "), "{}", e[1]);
    assert!(e[1].help.contains("take `percent` (keys of nft-drop: host, proto, dport, from, to, hook, icmp)"), "{}", e[1]);
    let kind = line_of(&text, 0, "kind = \"nft-dorp\"");
    assert_eq!((e[2].line, e[2].column), (kind, 8), "{}", e[2]);
    assert_eq!(e[2].message, "unknown fault kind `nft-dorp`; did you mean `nft-drop`?");
    assert!(e[2].help.contains("service-config, nft-drop, nft-reject"), "{}", e[2]);
    for x in &e {
        assert!(x.to_string().starts_with(&format!("t.toml:{}:{}: ", x.line, x.column)), "{x}");
    }
}

#[test]
fn a_key_only_one_other_kind_takes_names_that_kind() {
    let e = fault_err("kind = \"nft-drop\"\nhost = \"api\"\nmax_connections = 5");
    assert!(e.contains("`max_connections` is not a key of `nft-drop`") && e.contains("`nft-conn-limit` takes `max_connections` (keys of nft-drop:"), "{e}");
    let e = fault_err("kind = \"nft-drop\"\nhost = \"api\"\nproto = \"tcp\"\ndprot = 80");
    assert!(e.contains("`dprot` is not a key of `nft-drop`") && e.contains("did you mean `dport`?"), "{e}");
}

#[test]
fn unknown_check_keys_suggest_the_nearest() {
    let e = with_check("kind = \"tcp-state-dwell\"\nhost = \"api\"\nport = 8080\nstate = \"CLOSE_WAIT\"\nmax_sec = 1.0\nmax_secs = 1.0").unwrap_err().to_string();
    assert!(e.contains("`max_sec` is not a key of `tcp-state-dwell`") && e.contains("did you mean `max_secs`?"), "{e}");
    let e = with_check("kind = \"drops\"\nhost = \"api\"\nport = 8080").unwrap_err().to_string();
    assert!(e.contains("`port` is not a key of `drops`") && e.contains("`resets`, `retransmits` and `tcp-state-dwell` take `port`"), "{e}");
    let e = with_check("kind = \"http-slo\"\nfrom = \"client\"\ntarget = \"api:8080\"\ntimeout = 5").unwrap_err().to_string();
    assert!(e.contains("did you mean `timeout_ms`?"), "{e}");
}

#[test]
fn check_numbers_out_of_range_are_errors_that_give_the_range() {
    let slo = "kind = \"http-slo\"\nfrom = \"client\"\ntarget = \"api:8080\"\n";
    let dwell = "kind = \"tcp-state-dwell\"\nhost = \"api\"\nport = 8080\nstate = \"CLOSE_WAIT\"\n";
    let cases = [
        (format!("{slo}max_latency_ms = -1"), "max_latency_ms = -1 is out of range: it must be above 0 and at most 60000 ms"),
        (format!("{slo}max_latency_ms = nan"), "`max_latency_ms = nan` is not a finite number"),
        (format!("{slo}max_latency_ms = inf"), "`max_latency_ms = inf` is not a finite number"),
        (format!("{slo}max_latency_ms = 1e308"), "max_latency_ms = 1e308 is out of range: it must be above 0 and at most 60000 ms"),
        (format!("{slo}min_success_ratio = 0"), "min_success_ratio = 0 is out of range: it must be above 0 and at most 1"),
        (format!("{slo}min_success_ratio = 1.5"), "min_success_ratio = 1.5 is out of range"),
        (format!("{slo}interval_ms = 0"), "interval_ms = 0 is out of range: it must be from 10 to 60000 ms"),
        (format!("{slo}interval_ms = 9"), "interval_ms = 9 is out of range"),
        (format!("{slo}timeout_ms = 0"), "timeout_ms = 0 is out of range: it must be from 1 to 60000 ms"),
        (format!("{slo}timeout_ms = 60001"), "timeout_ms = 60001 is out of range"),
        (format!("{dwell}max_secs = nan"), "`max_secs = nan` is not a finite number"),
        (format!("{dwell}max_secs = 0"), "max_secs = 0 is out of range: it must be above 0"),
        (format!("{dwell}max_secs = -1.5"), "max_secs = -1.5 is out of range"),
        (format!("{dwell}max_secs = 1.0\nmin_connections = 0"), "min_connections = 0 is out of range: it must be at least 1 connections"),
        ("kind = \"retransmits\"\nhost = \"api\"\nmax_ratio = 2".to_string(), "max_ratio = 2 is out of range: it must be from 0 to 1"),
        ("kind = \"retransmits\"\nhost = \"api\"\nmax_ratio = nan".to_string(), "`max_ratio = nan` is not a finite number"),
        ("kind = \"resets\"\nhost = \"api\"\nmax = -1".to_string(), "max = -1 is out of range: it must be at least 0 events"),
    ];
    for (check, want) in &cases {
        let e = with_check(check).unwrap_err();
        assert_eq!(e.0.len(), 1, "{check}: {e}");
        assert!(e.0[0].message.contains(want), "{check}: {e}");
        let line = line_of(&GOOD.replace("[solution]", &format!("[[checks]]\n{check}\n\n[solution]")), 0, check.lines().last().unwrap());
        assert_eq!(e.0[0].line, line, "{check}: {e}");
    }
    for w in ["0", "nan", "301", "-5"] {
        let e = errs(&GOOD.replace("window_secs = 4.0", &format!("window_secs = {w}")));
        assert!(e.iter().any(|e| e.message.contains("window_secs")), "{w}: {e:?}");
    }
}

#[test]
fn fault_numbers_reject_nan_infinity_huge_and_negative() {
    let delay = "kind = \"delay\"\nhost = \"client\"\ninterface = \"eth0\"\n";
    let nft = "kind = \"nft-limit\"\nhost = \"api\"\nrate = \"50/second\"\n";
    let cases = [
        format!("{delay}delay_ms = nan"),
        format!("{delay}delay_ms = inf"),
        format!("{delay}delay_ms = 1e308"),
        format!("{delay}delay_ms = -1"),
        format!("{delay}delay_ms = 5\njitter_ms = nan"),
        format!("{delay}delay_ms = 5\njitter_ms = -1"),
        format!("{delay}delay_ms = 5\npercent = nan"),
        format!("{delay}delay_ms = 5\npercent = -1"),
        format!("{delay}delay_ms = 5\npercent = 1e308"),
        "kind = \"nft-loss\"\nhost = \"api\"\npercent = -inf".to_string(),
        "kind = \"nft-loss\"\nhost = \"api\"\npercent = 1e308".to_string(),
        "kind = \"ebpf-drop\"\nhost = \"api\"\ninterface = \"eth0\"\npercent = -5".to_string(),
        "kind = \"tc-rate\"\nhost = \"api\"\ninterface = \"eth0\"\nrate = \"-1mbit\"".to_string(),
        "kind = \"tc-rate\"\nhost = \"api\"\ninterface = \"eth0\"\nrate = \"1e308mbit\"".to_string(),
        "kind = \"tc-rate\"\nhost = \"api\"\ninterface = \"eth0\"\nrate = \"nanmbit\"".to_string(),
        "kind = \"tc-rate\"\nhost = \"api\"\ninterface = \"eth0\"\nrate = \"1mbit\"\nport = -80".to_string(),
        format!("{nft}burst = -1"),
        format!("{nft}burst = 1e308"),
        "kind = \"nft-limit\"\nhost = \"api\"\nrate = \"-5/second\"".to_string(),
        "kind = \"mtu\"\nhost = \"api\"\ninterface = \"eth0\"\nmtu = -1".to_string(),
        "kind = \"mtu\"\nhost = \"api\"\ninterface = \"eth0\"\nmtu = 1e308".to_string(),
        "kind = \"nft-drop\"\nhost = \"api\"\nproto = \"tcp\"\ndport = -1".to_string(),
        "kind = \"nft-conn-limit\"\nhost = \"api\"\nproto = \"tcp\"\ndport = 80\nmax_connections = -3".to_string(),
        "kind = \"nft-conn-limit\"\nhost = \"api\"\nproto = \"tcp\"\ndport = 80\nmax_connections = nan".to_string(),
    ];
    for f in &cases {
        let e = with_fault(f).unwrap_err();
        assert_eq!(e.0.len(), 1, "{f}: {e}");
    }
    // An integer is accepted where a number is wanted; a float is not an integer.
    assert!(with_fault(&format!("{delay}delay_ms = 300")).is_ok());
    let e = fault_err("kind = \"mtu\"\nhost = \"api\"\ninterface = \"eth0\"\nmtu = 1280.5");
    assert!(e.contains("`mtu = 1280.5`: `mtu` takes an integer, not float") && e.contains("write e.g. mtu = 1280"), "{e}");
}

#[test]
fn unknown_keys_at_every_level_come_out_together() {
    let text = GOOD
        .replace("title = \"T\"", "title = \"T\"\nseverty = \"SEV1\"")
        .replace("name = \"client\"", "name = \"client\"\nforwardng = true")
        .replace("a = { host = \"client\", address = \"10.77.0.1/24\" }", "a = { host = \"client\", adress = \"10.77.0.1/24\" }")
        .replace("kind = \"httpd\"\nconfig", "kind = \"httpd\"\nport = 8080\nconfig")
        .replace("window_secs = 4.0", "window_secs = 4.0\nwindow = 3")
        .replace("summary = \"s\"", "summary = \"s\"\nnotes = \"n\"")
        .replace("run = \"svc restart httpd\"", "run = \"svc restart httpd\", as = \"root\"");
    let e = errs(&text);
    let want = [
        ("`severty` is not a key of the top level", "did you mean `severity`?"),
        ("`forwardng` is not a key of [[hosts]]", "did you mean `forwarding`?"),
        ("`adress` is not a key of an endpoint", "did you mean `address`?"),
        ("`port` is not a key of [[services]]", "(keys of [[services]]: name, host, kind, config, restart)"),
        ("`window` is not a key of [verify]", "did you mean `window_secs`?"),
        ("`notes` is not a key of [solution]", "keys of [solution]: summary, steps"),
        ("`as` is not a key of a solution step", "keys of a solution step: host, run"),
    ];
    for (msg, help) in want {
        assert!(e.iter().any(|x| x.message == msg && x.help.contains(help)), "{msg} / {help}: {}", SourceErrors(e.clone()));
    }
    assert_eq!(e.len(), want.len(), "{}", SourceErrors(e.clone()));
}

#[test]
fn missing_and_mistyped_top_level_keys_are_all_reported() {
    let text = GOOD.replace("title = \"T\"\n", "").replace("alert = \"a\"", "alert = 5").replace("hints = [\"h1\"]", "hints = [\"h1\", 2]");
    let e = errs(&text);
    assert!(e.iter().any(|x| x.message == "the top level needs `title`"), "{e:?}");
    assert!(e.iter().any(|x| x.message.contains("`alert` takes a string, not integer")), "{e:?}");
    assert!(e.iter().any(|x| x.message.contains("an item of `hints` is integer, not a string")), "{e:?}");
    assert_eq!(e.len(), 3, "{e:?}");
}

#[test]
fn a_scenario_without_hosts_or_checks_says_so() {
    let e = errs("id = \"x\"\ntitle = \"t\"\nalert = \"a\"\nbriefing = \"b\"\nhosts = []\n[solution]\nsummary = \"s\"\nsteps = []\n");
    let msgs: Vec<&str> = e.iter().map(|x| x.message.as_str()).collect();
    assert_eq!(msgs, ["the scenario declares no hosts", "the scenario has no [[checks]]"]);
}

#[test]
fn a_table_where_a_list_is_wanted_names_both() {
    let e = errs(&GOOD.replace("[[hosts]]\nname = \"client\"\n[[hosts]]\nname = \"api\"", "[hosts]\nname = \"client\""));
    assert!(e.iter().any(|x| x.message == "`hosts` takes a list, not table" && x.help.starts_with("write e.g. hosts = [{ name")), "{e:?}");
}

#[test]
fn registries_list_every_kind_once_and_the_readme_documents_every_key() {
    assert_eq!(
        FAULT_KINDS,
        [
            "service-config",
            "nft-drop",
            "nft-reject",
            "nft-loss",
            "nft-limit",
            "nft-conn-limit",
            "nft-dnat",
            "sysctl",
            "mtu",
            "route-remove",
            "tc-rate",
            "delay",
            "ebpf-drop",
            "resolv-conf",
            "deleted-open-file",
            "conntrack-table"
        ]
    );
    assert_eq!(CHECK_KINDS, ["tcp-state-dwell", "http-slo", "drops", "retransmits", "resets", "oom-kills", "enospc", "counter", "zombies", "process-cpu", "fabric-drops", "conntrack-headroom"]);
    let readme = include_str!("../../../scenarios/README.md");
    let shapes = crate::fault::KINDS.iter().map(|k| &k.shape).chain(crate::check::KINDS.iter().map(|k| &k.shape));
    for s in shapes {
        assert!(readme.contains(&format!("`{}`", s.name)), "README does not document kind `{}`", s.name);
        for k in s.keys {
            assert!(readme.contains(&format!("`{}", k.name)), "README does not document key `{}` of `{}`", k.name, s.name);
        }
    }
}
