//! Fixtures shared by the tests of the scenario modules.

use super::{Scenario, parse};
use crate::source::SourceErrors;

pub(crate) const GOOD: &str = r#"
id = "t-leak"
title = "T"
alert = "a"
briefing = "b"
hints = ["h1"]

[[hosts]]
name = "client"
[[hosts]]
name = "api"

[[links]]
a = { host = "client", address = "10.77.0.1/24" }
b = { host = "api", address = "10.77.0.2/24" }

[[services]]
name = "httpd"
host = "api"
kind = "httpd"
config = { listen = "0.0.0.0:8080" }

[[faults]]
kind = "service-config"
service = "httpd"
set = { close_on_eof = false }

[verify]
window_secs = 4.0

[[checks]]
kind = "tcp-state-dwell"
host = "api"
port = 8080
state = "close_wait"
max_secs = 2.0

[[checks]]
kind = "http-slo"
from = "client"
target = "api:8080"

[solution]
summary = "s"
steps = [{ host = "api", run = "svc restart httpd" }]
"#;

/// GOOD with one more fault `f` (a `[[faults]]` body) before `[verify]`.
pub(crate) fn with_fault(f: &str) -> Result<Scenario, SourceErrors> {
    parse("t.toml", &GOOD.replace("[verify]", &format!("[[faults]]\n{f}\n[verify]")))
}

/// The one error of a scenario with fault `f`, as `file:line:column: message`.
pub(crate) fn fault_err(f: &str) -> String {
    let e = with_fault(f).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    e.to_string()
}

/// GOOD with one more check `c` (a `[[checks]]` body) before `[solution]`.
pub(crate) fn with_check(c: &str) -> Result<Scenario, SourceErrors> {
    parse("t.toml", &GOOD.replace("[solution]", &format!("[[checks]]\n{c}\n\n[solution]")))
}
