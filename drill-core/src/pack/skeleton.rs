//! `drill pack new`: the files of a commented skeleton pack. Its one scenario is a
//! two-host firewall drop (the checks of the built-in firewall-drop, which pass on the
//! healthy drill and fail on the broken one), with hints, a time limit, a workaround
//! that must fail and an alternative fix that must pass, so the pack passes
//! `drill pack validate` and `drill pack test` as generated.

use super::ENGINE_VERSION;
use crate::model::is_name;

/// The scenario file of the skeleton.
pub const SCENARIO_FILE: &str = "web-timeout.toml";

/// The skeleton's files, (path relative to the pack, contents). `name`: the pack's
/// name (made valid: `my-pack` when it is not).
pub fn skeleton(name: &str) -> Vec<(&'static str, String)> {
    let name = if is_name(name) && name.len() <= 64 { name } else { "my-pack" };
    let manifest = format!(
        r#"# A drill pack: this file, the scenario files beside it (*.toml), and files/ for
# assets scenarios place in hosts. Every key is documented in docs/packs.md.

# The pack's name: lowercase letters, digits and '-' (`drill start {name}/ID`).
name = "{name}"
# Semantic version; `drill pack install` replaces an installed copy when it changes.
version = "0.1.0"
description = "My first drills."
authors = ["Your Name <you@example.org>"]
license = "CC-BY-4.0"
# The drill versions this pack works with (a semver requirement).
engine = ">={ENGINE_VERSION}"
# Kernel features its scenarios need (btf, nftables, tc-bpf, netem, cgroup-v2, vxlan, conntrack).
kernel_features = ["nftables"]
"#
    );
    vec![("pack.toml", manifest), (SCENARIO_FILE, SCENARIO.to_string())]
}

const SCENARIO: &str = r#"# web-timeout: a firewall rule on the backend silently drops the client's requests.
# Check it with `drill pack validate .`, self-test it with `sudo drill pack test .`.
# Keys: docs/packs.md; fault and check kinds: scenarios/README.md.

id = "web-timeout"
title = "Requests to the web server time out"
summary = "The client's requests hang and time out; the web server says it is fine."
severity = "SEV2"
difficulty = "beginner"
tags = ["firewall", "tcp"]
estimated_minutes = 15
# The clock of a timed incident.
time_limit_minutes = 30

# What the learner receives when the drill starts.
alert = """
[SEV2] client: requests to http://web:8080/ failing
  client log: "connect: timed out after 2000 ms"
  The web team says httpd is up and its own checks pass.
"""

# What the learner is asked to do.
briefing = """
The `client` host cannot get answers from the `web` host's HTTP service (`httpd`, port
8080): connections hang until they time out. Find where the traffic is lost, remove the
cause without opening more than needed, then run `drill submit`.

Useful: `sudo drill shell client`, `sudo drill shell web`, `curl -v`, `ss -tan`,
`tcpdump -ni eth0 port 8080`, `nft list ruleset`.
"""

# Given one at a time by `drill hint`: from the first observation to the cause.
hints = [
    "From the client, `curl -v -m 3 http://web:8080/`: a timeout and a refusal mean different things.",
    "On web, `tcpdump -ni eth0 tcp port 8080` while you retry: do SYNs arrive? Are they answered?",
    "SYNs arrive, httpd listens (`ss -tlnp`), nothing answers: look at `nft -a list ruleset` on web.",
]

[[hosts]]
name = "client"

[[hosts]]
name = "web"

# A veth pair; leave the addresses out to have them allocated.
[[links]]
a = { host = "client", address = "10.78.0.1/24" }
b = { host = "web", address = "10.78.0.2/24" }

# Services and their healthy configs (faults break them, not these tables).
[[services]]
name = "httpd"
host = "web"
kind = "httpd"
config = { listen = "0.0.0.0:8080" }

[[services]]
name = "loadgen"
host = "client"
kind = "loadgen"
config = { target = "web:8080", path = "/", rate_per_sec = 5, timeout_ms = 2000 }

# What is broken. `name` is what checks' `guards` call it.
[[faults]]
kind = "nft-drop"
name = "drop-http"
host = "web"
proto = "tcp"
dport = 8080
from = "client"

[verify]
window_secs = 4.0

# What `drill submit` judges. Each check must pass on the healthy drill and fail while
# the faults it guards are in place (`drill pack test` proves both).
[[checks]]
kind = "drops"
name = "no packets dropped by netfilter on web"
host = "web"
reason = "NETFILTER_DROP"
guards = ["drop-http"]

[[checks]]
kind = "tcp-state-dwell"
name = "every SYN from client to port 8080 answered within 1.5 s"
host = "client"
peer_port = 8080
state = "SYN_SENT"
max_secs = 1.5
min_connections = 5
guards = ["drop-http"]

[[checks]]
kind = "http-slo"
name = "requests from client to web:8080 succeed"
from = "client"
target = "web:8080"
min_success_ratio = 0.95
max_latency_ms = 200
timeout_ms = 1000
interval_ms = 200
guards = ["drop-http"]

# The reference fix: `drill pack test` runs it on the broken drill and submit must pass.
# The commands find the rule's table by listing the ruleset, so they do not depend on
# what the table is called.
[solution]
summary = """
An nftables rule on web dropped TCP packets to port 8080 from the client. Drops are
silent: the client's SYNs went unanswered and every connection timed out, while httpd was
fine. Removing the rule restores the traffic.
"""
steps = [
    { host = "web", run = "nft -a list ruleset" },
    { host = "web", run = '''nft list ruleset | awk '$1 == "table" { fam = $2; tbl = $3 } $1 == "chain" && $2 == "input" { print fam, tbl }' | while read fam tbl; do nft flush chain "$fam" "$tbl" input; done''' },
]

# Looks like a fix but is not: submit must fail (the drop is still there).
[[workarounds]]
name = "restart the service"
why = "httpd was never the problem: the rule still drops the client's packets"
steps = [{ host = "web", run = "svc restart httpd" }]

# Another right fix: submit must pass.
[[alternatives]]
name = "delete only the dropping rule, by its handle"
why = "removes exactly the cause and keeps every other rule of the chain"
steps = [
    { host = "web", run = '''nft -a list ruleset | awk '$1 == "table" { fam = $2; tbl = $3 } $1 == "chain" { ch = $2 } /dport 8080/ && / drop/ { print fam, tbl, ch, $NF }' | while read fam tbl ch h; do nft delete rule "$fam" "$tbl" "$ch" handle "$h"; done''' },
]

# A file of the pack placed in a host at start (source relative to pack.toml):
# [[files]]
# host = "web"
# path = "/etc/motd"
# source = "files/motd"
"#;
