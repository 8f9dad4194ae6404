//! The conntrack-table fault and the conntrack-headroom check: keys, ranges, references,
//! and the plan step.

use super::*;
use crate::plan::{Measure, Mechanism};

const ROUTED: &str = r#"
id = "t-ct"
title = "T"
alert = "a"
briefing = "b"

[[hosts]]
name = "client"
routes = [{ to = "default", via = "router" }]
[[hosts]]
name = "router"
forwarding = true
[[hosts]]
name = "server"
routes = [{ to = "default", via = "router" }]

[[links]]
a = { host = "client", address = "10.77.1.2/24" }
b = { host = "router", address = "10.77.1.1/24" }
[[links]]
a = { host = "router", address = "10.77.2.1/24" }
b = { host = "server", address = "10.77.2.2/24" }

[[services]]
name = "statsd"
host = "client"
kind = "worker"
config = { tasks_per_sec = 20, task = "true" }

[[faults]]
FAULT

[verify]
window_secs = 4.0

[[checks]]
CHECK

[solution]
summary = "s"
steps = [{ host = "router", run = "true" }]
"#;

const FAULT: &str = "kind = \"conntrack-table\"\nhost = \"router\"\nmax_entries = 2048\nfill_from = \"client\"\nfill_to = \"server\"\nfill_port = 8125";
const CHECK: &str = "kind = \"conntrack-headroom\"\nhost = \"router\"\nchurn = \"statsd\"";

fn scenario(fault: &str, check: &str) -> Result<Scenario, SourceErrors> {
    parse("t.toml", &ROUTED.replace("FAULT", fault).replace("CHECK", check))
}

fn one_err(fault: &str, check: &str) -> String {
    let e = scenario(fault, check).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    e.to_string()
}

#[test]
fn reads_the_fault_and_the_check() {
    let s = scenario(FAULT, &format!("{CHECK}\nmargin = 3")).unwrap();
    assert_eq!(s.faults[0], Fault::ConntrackTable { host: "router".into(), max_entries: 2048, fill_from: "client".into(), fill_to: "server".into(), fill_port: 8125 });
    assert!(matches!(&s.checks[0], Check::ConntrackHeadroom { host, churn, flows_per_sec: 20, margin, .. } if host == "router" && churn == "statsd" && *margin == 3.0));
    let plan = crate::plan::compile(&s, "abcdef", 0, Default::default()).unwrap();
    let step = &plan.faults[0];
    assert!(
        matches!(&step.mechanism, Mechanism::ConntrackTable { table, chain, max: 2048, fill_from, fill_to } if table == "conntrack" && chain == "table_size" && fill_from == "client" && fill_to.to_string() == "10.77.2.2:8125"),
        "{:?}",
        step.mechanism
    );
    assert!(matches!(&step.measure, Measure::ConntrackFull { from, max: 2048, .. } if from == "client"), "{:?}", step.measure);
    assert!(!step.mechanism.to_string().contains("drill"), "{}", step.mechanism);
}

#[test]
fn ranges_references_and_unknown_keys_are_errors() {
    let e = one_err(&FAULT.replace("2048", "1000000"), CHECK);
    assert!(e.contains("max_entries = 1000000 is out of range") && e.contains("between 16 and 20000"), "{e}");
    let e = one_err(&FAULT.replace("8125", "70000"), CHECK);
    assert!(e.contains("port 70000 is out of range"), "{e}");
    let e = one_err(&FAULT.replace("fill_to = \"server\"", "fill_to = \"router\""), CHECK);
    assert!(e.contains("is the table's own host"), "{e}");
    let e = one_err(&FAULT.replace("fill_to = \"server\"", "fill_to = \"db\""), CHECK);
    assert!(e.contains("unknown host `db`"), "{e}");
    let e = one_err(&format!("{FAULT}\nproto = \"udp\""), CHECK);
    assert!(e.contains("`proto` is not a key of `conntrack-table`"), "{e}");
    let e = one_err(&FAULT.replace("max_entries = 2048\n", ""), CHECK);
    assert!(e.contains("needs `host`, `max_entries`"), "{e}");
    let e = one_err(FAULT, &format!("{CHECK}\nmargin = 0.5"));
    assert!(e.contains("margin 0.5 is out of range"), "{e}");
    let e = one_err(FAULT, &CHECK.replace("statsd", "nope"));
    assert!(e.contains("no service `nope`"), "{e}");
    let e = one_err(FAULT, &format!("{CHECK}\nmax = 3"));
    assert!(e.contains("`max` is not a key of `conntrack-headroom`"), "{e}");
}
