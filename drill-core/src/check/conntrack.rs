//! `conntrack-headroom`: a router's connection-tracking table has room for its traffic.
//! It judges the cause, not a moment: a table flushed by hand is empty for a while and
//! drops nothing in a short window, yet refills. It passes only when every one of these
//! holds, read from the host at the end of the window:
//! - the table's size (the host's `nf_conntrack_max`) is at least `margin` times what
//!   the churn keeps tracked: the churn service's flows per second times the host's
//!   real `nf_conntrack_udp_timeout` (its network namespace's own);
//! - the stand-in rule that enforces the size is there, unchanged but for its size,
//!   which must be what `nf_conntrack_max` says (it cannot be deleted or retuned by hand
//!   on a real kernel);
//! - the real entry count (`nf_conntrack_count`) is below the size;
//! - the stand-in dropped nothing during the window.
//!
//! Anything unreadable fails and says what was missing.

use super::{Check, Env, Kind, shape};
use crate::schema::{Entry, Key, Ty, key};
use crate::verdict::CheckResult;
use crate::workload::Workload;

const KEYS: &[Key] = &[
    key("host", Ty::Str, "\"router\"", "the host whose conntrack table is judged (a conntrack-table fault's host)"),
    key("churn", Ty::Str, "\"statsd\"", "the worker service whose tasks each open one new UDP flow across the host: its tasks_per_sec is the churn"),
    key("margin", Ty::Num, "2", "how many times the tracked churn the table must hold (1-100; default 2)")
        .from(1.0, 100.0, "x")
        .says("margin {} is out of range", "give a factor from 1 to 100, e.g. 2"),
];

pub const KIND: Kind = Kind { shape: shape("conntrack-headroom", KEYS), build };

fn build(e: &mut Entry, env: &Env) -> Option<Check> {
    let name = e.str("name").map(|n| n.into_inner());
    let (host, churn, margin) = (e.str("host"), e.str("churn"), e.num_opt("margin"));
    let (Some(host), Some(churn)) = (host, churn) else {
        e.need("a conntrack-headroom check needs `host` and `churn`", "e.g. host = \"router\", churn = \"statsd\"");
        return None;
    };
    let host_ok = env.hosts.check(e.cx, &host);
    let flows = match env.services.iter().find(|s| &s.name == churn.get_ref()).map(|s| &s.workload) {
        Some(Workload::Worker(w)) if w.tasks_per_sec > 0 => Some(w.tasks_per_sec),
        Some(_) => {
            e.err(churn.span(), format!("service `{}` is not a worker with tasks_per_sec above 0", churn.get_ref()), "name the worker service whose tasks open the churning flows");
            None
        }
        None => {
            e.err(churn.span(), format!("no service `{}`", churn.get_ref()), "name a worker service declared in [[services]]");
            None
        }
    };
    let (true, Some(flows), Ok(margin)) = (host_ok, flows, margin) else { return None };
    let margin = margin.unwrap_or(2.0);
    let name = name.unwrap_or_else(|| format!("the conntrack table on {} holds {margin}x its churn", host.get_ref()));
    Some(Check::ConntrackHeadroom { name, host: host.into_inner(), churn: churn.into_inner(), flows_per_sec: flows, margin })
}

/// What the daemon read of the host's table; None: could not be read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    /// `net.netfilter.nf_conntrack_udp_timeout` in the host's network namespace.
    pub udp_timeout_secs: Option<u64>,
    /// `net.netfilter.nf_conntrack_max` as the host shows it (the size it was given).
    pub max: Option<u64>,
    /// The stand-in rule's size; None when the rule is gone or was changed.
    pub rule_max: Option<u64>,
    /// Why the rule does not read back, when it does not.
    pub rule_problem: Option<String>,
    /// `nf_conntrack_count`: the entries the host tracks.
    pub count: Option<u64>,
    /// Packets the stand-in dropped during the window.
    pub dropped: Option<u64>,
}

pub fn evaluate(name: &str, host: &str, churn: &str, flows_per_sec: u32, margin: f64, o: &Observation) -> CheckResult {
    let mut fails: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let need = o.udp_timeout_secs.map(|t| (f64::from(flows_per_sec) * t as f64 * margin).ceil() as u64);
    match (o.max, o.udp_timeout_secs) {
        (Some(m), Some(t)) => {
            let tracked = u64::from(flows_per_sec) * t;
            let line = format!("{churn} opens {flows_per_sec} UDP flows/s, each tracked for nf_conntrack_udp_timeout = {t} s: about {tracked} entries; nf_conntrack_max = {m}");
            if need.is_some_and(|n| m < n) {
                fails.push(format!("{line}, below the {margin}x ({}) it must hold: the table fills", need.unwrap_or(0)));
            } else {
                notes.push(format!("{line} (at least {margin}x: {})", need.unwrap_or(0)));
            }
        }
        (None, _) => fails.push(format!("net.netfilter.nf_conntrack_max of {host} could not be read")),
        (_, None) => fails.push(format!("net.netfilter.nf_conntrack_udp_timeout of {host} could not be read")),
    }
    match (o.rule_max, o.max) {
        (Some(r), Some(m)) if r == m => {}
        (Some(r), Some(m)) => fails.push(format!("the table's size enforced on {host} is {r}, not its nf_conntrack_max {m}: the size is set only through nf_conntrack_max")),
        (Some(_), None) => {}
        (None, _) => fails.push(format!(
            "the conntrack table's size on {host} ({}) is gone or changed: a real kernel's table cannot be deleted; set its size with `sysctl -w net.netfilter.nf_conntrack_max=N`",
            o.rule_problem.as_deref().unwrap_or("table inet conntrack")
        )),
    }
    match (o.count, o.max) {
        (Some(c), Some(m)) if c >= m => fails.push(format!("{host} tracks {c} connections: the table ({m}) is full")),
        (Some(c), _) => notes.push(format!("{host} tracks {c} connections")),
        (None, _) => fails.push(format!("net.netfilter.nf_conntrack_count of {host} could not be read")),
    }
    match o.dropped {
        Some(0) => notes.push("no packet dropped for a full table during the window".into()),
        Some(d) => fails.push(format!("{d} packets dropped for a full table during the window")),
        None => fails.push(format!("the drops of {host}'s conntrack table could not be read")),
    }
    let passed = fails.is_empty();
    let saw = if passed { notes.join("; ") } else { fails.iter().chain(notes.iter()).cloned().collect::<Vec<_>>().join("; ") };
    CheckResult {
        name: name.to_string(),
        kind: "conntrack-headroom".into(),
        passed,
        saw,
        details: serde_json::json!({
            "host": host, "churn": churn, "flows_per_sec": flows_per_sec, "margin": margin, "needed": need,
            "udp_timeout_secs": o.udp_timeout_secs, "max": o.max, "rule_max": o.rule_max, "count": o.count, "dropped": o.dropped,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::{Observation, evaluate};

    fn fixed() -> Observation {
        Observation { udp_timeout_secs: Some(30), max: Some(2048), rule_max: Some(2048), rule_problem: None, count: Some(300), dropped: Some(0) }
    }

    #[test]
    fn passes_only_with_room_for_the_churn() {
        assert!(evaluate("c", "router", "statsd", 20, 2.0, &fixed()).passed);
        // The fault: an hour-long UDP timeout, whatever the count right now.
        let long = Observation { udp_timeout_secs: Some(3600), count: Some(10), ..fixed() };
        let r = evaluate("c", "router", "statsd", 20, 2.0, &long);
        assert!(!r.passed && r.saw.contains("the table fills"), "{}", r.saw);
        // Raised enough, with the long timeout: passes; raised too little: fails.
        assert!(evaluate("c", "router", "statsd", 20, 2.0, &Observation { max: Some(262_144), rule_max: Some(262_144), ..long.clone() }).passed);
        assert!(!evaluate("c", "router", "statsd", 20, 2.0, &Observation { max: Some(8192), rule_max: Some(8192), ..long }).passed);
    }

    #[test]
    fn fails_closed() {
        let full = Observation { count: Some(2048), ..fixed() };
        assert!(evaluate("c", "router", "statsd", 20, 2.0, &full).saw.contains("full"));
        assert!(!evaluate("c", "router", "statsd", 20, 2.0, &Observation { dropped: Some(3), ..fixed() }).passed);
        for o in [
            Observation { udp_timeout_secs: None, ..fixed() },
            Observation { max: None, ..fixed() },
            Observation { count: None, ..fixed() },
            Observation { dropped: None, ..fixed() },
            Observation { rule_max: None, rule_problem: Some("table inet conntrack is gone".into()), ..fixed() },
            Observation { rule_max: Some(1_000_000), ..fixed() },
        ] {
            let r = evaluate("c", "router", "statsd", 20, 2.0, &o);
            assert!(!r.passed, "{o:?}: {}", r.saw);
        }
    }
}
