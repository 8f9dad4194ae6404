//! Verdicts: turning what the probes and the synthetic client saw during the
//! observation window into pass/fail, with the numbers that back it.
//! Every result says what it saw, on pass and on fail, so a disputed verdict can be
//! explained.

use serde::{Deserialize, Serialize};

pub use crate::check::dwell_subject;
use crate::model::TcpState;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub drill_id: String,
    pub scenario: String,
    pub passed: bool,
    pub window_secs: f64,
    pub checks: Vec<CheckResult>,
}

impl Verdict {
    pub fn new(drill_id: &str, scenario: &str, window_secs: f64, checks: Vec<CheckResult>) -> Verdict {
        Verdict { drill_id: drill_id.into(), scenario: scenario.into(), passed: checks.iter().all(|c| c.passed), window_secs, checks }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub kind: String,
    pub passed: bool,
    /// One sentence: what was seen.
    pub saw: String,
    /// The figures behind it.
    pub details: serde_json::Value,
}

/// One socket's stay in a state, in CLOCK_MONOTONIC nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DwellSample {
    pub enter_ns: u64,
    /// `None`: still in the state at the end of the window.
    pub exit_ns: Option<u64>,
    pub remote_port: u16,
}

/// What the TCP state probe saw for one host:port:state during a window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DwellObservation {
    pub window_start_ns: u64,
    pub window_end_ns: u64,
    /// Sockets that left the state during the window, and those still in it at the end.
    pub samples: Vec<DwellSample>,
    /// Ring buffer records the kernel could not deliver during the window.
    pub events_lost: u64,
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn fmt_dur(ns: u64) -> String {
    let s = secs(ns);
    if s >= 1.0 {
        format!("{s:.1} s")
    } else if s >= 0.001 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

/// Evaluates "no socket on host:port (or to port, with `peer`) stays in `state` longer
/// than `max_secs`, and at least `min_connections` went through it".
#[allow(clippy::too_many_arguments)]
pub fn evaluate_dwell(name: &str, host: &str, port: u16, peer: bool, state: TcpState, max_secs: f64, min_connections: u64, obs: &DwellObservation) -> CheckResult {
    let bound_ns = (max_secs * 1e9) as u64;
    // Only the time spent in the state inside the window counts: a socket stuck since
    // before the window and still stuck fails; the tail of one left over from before a
    // fix does not.
    let dwell = |s: &DwellSample| s.exit_ns.unwrap_or(obs.window_end_ns).min(obs.window_end_ns).saturating_sub(s.enter_ns.max(obs.window_start_ns));
    let total = obs.samples.len() as u64;
    let still_open = obs.samples.iter().filter(|s| s.exit_ns.is_none()).count() as u64;
    let over: Vec<&DwellSample> = obs.samples.iter().filter(|s| dwell(s) > bound_ns).collect();
    let over_open = over.iter().filter(|s| s.exit_ns.is_none()).count() as u64;
    let longest = obs.samples.iter().map(dwell).max().unwrap_or(0);
    let passed = over.is_empty() && total >= min_connections;
    let on = dwell_subject(host, port, peer);
    let mut saw = if !over.is_empty() {
        format!(
            "{} of {total} sockets {on} stayed in {state} longer than {max_secs} s during the window (longest {}); {over_open} of them still in {state} at the end of the window",
            over.len(),
            fmt_dur(longest),
        )
    } else if total < min_connections {
        format!("only {total} socket(s) {on} went through {state} during the window (need at least {min_connections}): is the traffic flowing?")
    } else {
        format!("{total} sockets {on} went through {state}, the longest for {}; none over {max_secs} s", fmt_dur(longest))
    };
    if obs.events_lost > 0 {
        saw.push_str(&format!(" ({} probe events were lost; figures are a lower bound)", obs.events_lost));
    }
    CheckResult {
        name: name.to_string(),
        kind: "tcp-state-dwell".into(),
        passed,
        saw,
        details: serde_json::json!({
            "host": host,
            "port": port,
            "peer": peer,
            "state": state.name(),
            "max_secs": max_secs,
            "sockets_seen": total,
            "over_bound": over.len(),
            "still_in_state": still_open,
            "longest_secs": secs(longest),
            "min_connections": min_connections,
            "events_lost": obs.events_lost,
        }),
    }
}

/// One synthetic request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpSample {
    pub ok: bool,
    pub latency_ms: f64,
    /// Why it failed (status line, timeout, connection refused...).
    pub error: Option<String>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Evaluates a service-level check over the window's synthetic requests.
pub fn evaluate_http(name: &str, from: &str, target: &str, min_success_ratio: f64, max_latency_ms: Option<f64>, samples: &[HttpSample]) -> CheckResult {
    let n = samples.len();
    let ok = samples.iter().filter(|s| s.ok).count();
    let ratio = if n == 0 { 0.0 } else { ok as f64 / n as f64 };
    let mut lat: Vec<f64> = samples.iter().filter(|s| s.ok).map(|s| s.latency_ms).collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let (p50, p95) = (percentile(&lat, 50.0), percentile(&lat, 95.0));
    // Most frequent error, for the explanation.
    let mut errors: Vec<(String, usize)> = Vec::new();
    for e in samples.iter().filter_map(|s| s.error.as_ref()) {
        match errors.iter_mut().find(|(m, _)| m == e) {
            Some((_, c)) => *c += 1,
            None => errors.push((e.clone(), 1)),
        }
    }
    errors.sort_by_key(|e| std::cmp::Reverse(e.1));
    let slow = max_latency_ms.is_some_and(|m| ok > 0 && p95 > m);
    let passed = n > 0 && ratio >= min_success_ratio && !slow;
    let mut saw = format!("{ok}/{n} requests from {from} to {target} succeeded ({:.0}%, need {:.0}%)", ratio * 100.0, min_success_ratio * 100.0);
    if ok > 0 {
        saw.push_str(&format!(", latency p50 {p50:.1} ms p95 {p95:.1} ms"));
        if let Some(m) = max_latency_ms {
            saw.push_str(&format!(" ({} the {m} ms bound)", if slow { "over" } else { "within" }));
        }
    }
    if let Some((e, c)) = errors.first() {
        saw.push_str(&format!("; most common failure: {e} ({c}x)"));
    }
    CheckResult {
        name: name.to_string(),
        kind: "http-slo".into(),
        passed,
        saw,
        details: serde_json::json!({
            "from": from,
            "target": target,
            "requests": n,
            "succeeded": ok,
            "success_ratio": ratio,
            "min_success_ratio": min_success_ratio,
            "max_latency_ms": max_latency_ms,
            "latency_p50_ms": p50,
            "latency_p95_ms": p95,
            "errors": errors.iter().map(|(e, c)| serde_json::json!({"error": e, "count": c})).collect::<Vec<_>>(),
        }),
    }
}

/// Evaluates "at most `max_ratio` retransmissions per segment sent during the window".
pub fn evaluate_ratio(name: &str, what: &str, on: &str, seen: u64, segments: u64, max_ratio: f64) -> CheckResult {
    let ratio = if segments == 0 { 0.0 } else { seen as f64 / segments as f64 };
    let passed = segments > 0 && ratio <= max_ratio;
    let saw = if segments == 0 {
        format!("{on} sent no TCP segments during the window: is the traffic flowing?")
    } else {
        format!("{seen} {what} on {on} during the window: {:.2}% of {segments} segments sent (allowed {}%)", ratio * 100.0, max_ratio * 100.0)
    };
    CheckResult {
        name: name.to_string(),
        kind: "ratio".into(),
        passed,
        saw,
        details: serde_json::json!({"what": what, "on": on, "seen": seen, "segments": segments, "ratio": ratio, "max_ratio": max_ratio}),
    }
}

/// The positive control of a counting check: how much traffic the host handled during
/// the window (e.g. IP packets received and sent, from its own /proc/net/snmp). Zero
/// events of a kind mean nothing when nothing flowed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub packets: u64,
}

/// Evaluates "at most `max` events during the window". `breakdown` lists what the
/// events were (e.g. drops by reason) for the explanation. With `activity` (every
/// packet-counting kind), a window in which the host handled no traffic fails: a count
/// of zero would prove nothing.
pub fn evaluate_count(name: &str, what: &str, on: &str, seen: u64, max: u64, breakdown: &[(String, u64)], activity: Option<Activity>) -> CheckResult {
    let idle = activity.is_some_and(|a| a.packets == 0);
    let passed = seen <= max && !idle;
    let mut saw = format!("{seen} {what} on {on} during the window (allowed {max})");
    if !breakdown.is_empty() {
        let parts: Vec<String> = breakdown.iter().map(|(k, v)| format!("{k} {v}")).collect();
        saw.push_str(&format!(": {}", parts.join(", ")));
    }
    match activity {
        Some(Activity { packets: 0 }) => saw.push_str(&format!("; but {on} handled no traffic during the window, so there was nothing to judge: is the traffic flowing?")),
        Some(Activity { packets }) => saw.push_str(&format!(" over {packets} packets")),
        None => {}
    }
    CheckResult {
        name: name.to_string(),
        kind: "count".into(),
        passed,
        saw,
        details: serde_json::json!({
            "what": what,
            "on": on,
            "seen": seen,
            "max": max,
            "packets": activity.map(|a| a.packets),
            "breakdown": breakdown.iter().map(|(k, v)| serde_json::json!({"what": k, "count": v})).collect::<Vec<_>>(),
        }),
    }
}

/// Evaluates a `counter` check: `seen` is the counter's increase during the window
/// (None: the counter does not exist in the host's kernel, which fails: nothing was
/// read); with `min`, a smaller increase fails (what was to be counted did not happen).
/// `activity` is the host's packets in the window: a window with none fails (a counter
/// of a host that handled no traffic proves nothing).
pub fn evaluate_counter(name: &str, counter: &str, host: &str, seen: Option<u64>, max: u64, min: Option<u64>, activity: Activity) -> CheckResult {
    let (passed, saw) = match seen {
        None => (false, format!("{host} has no counter {counter} in /proc/net/snmp, netstat or snmp6 (this kernel does not keep it), so nothing was measured")),
        Some(n) => {
            let bound = min.map_or_else(|| format!("allowed at most {max}"), |m| format!("wanted {m} to {max}"));
            let mut saw = format!("{counter} on {host} moved {n} during the window ({bound})");
            let idle = activity.packets == 0;
            if idle {
                saw.push_str(&format!("; but {host} handled no traffic during the window, so there was nothing to judge: is the traffic flowing?"));
            } else if min.is_some_and(|m| n < m) {
                saw.push_str(": too few, what it counts did not happen");
            }
            (n <= max && min.is_none_or(|m| n >= m) && !idle, saw)
        }
    };
    CheckResult {
        name: name.to_string(),
        kind: "counter".into(),
        passed,
        saw,
        details: serde_json::json!({ "counter": counter, "on": host, "seen": seen, "max": max, "min": min, "packets": activity.packets }),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counter_fails_closed() {
        use super::{Activity, evaluate_counter};
        let act = Activity { packets: 10 };
        assert!(evaluate_counter("c", "TcpExt:ListenOverflows", "api", Some(0), 0, None, act).passed);
        assert!(!evaluate_counter("c", "TcpExt:ListenOverflows", "api", Some(3), 0, None, act).passed);
        assert!(!evaluate_counter("c", "TcpExt:ListenOverflows", "api", None, 0, None, act).passed);
        assert!(!evaluate_counter("c", "TcpExt:ListenOverflows", "api", Some(0), 0, None, Activity { packets: 0 }).passed);
        assert!(!evaluate_counter("c", "Udp:OutDatagrams", "client", Some(0), 10, Some(1), act).passed);
        assert!(evaluate_counter("c", "Udp:OutDatagrams", "client", Some(4), 10, Some(1), act).passed);
    }

    use super::*;

    const S: u64 = 1_000_000_000;

    fn obs(samples: Vec<DwellSample>) -> DwellObservation {
        DwellObservation { window_start_ns: 100 * S, window_end_ns: 105 * S, samples, events_lost: 0 }
    }

    fn closed(enter: u64, exit: u64) -> DwellSample {
        DwellSample { enter_ns: enter, exit_ns: Some(exit), remote_port: 1 }
    }

    fn open(enter: u64) -> DwellSample {
        DwellSample { enter_ns: enter, exit_ns: None, remote_port: 1 }
    }

    fn eval(o: &DwellObservation) -> CheckResult {
        evaluate_dwell("n", "api", 8080, false, TcpState::CloseWait, 2.0, 3, o)
    }

    #[test]
    fn short_dwells_pass_and_say_so() {
        let r = eval(&obs(vec![closed(101 * S, 101 * S + 1000), closed(102 * S, 102 * S + 2_000_000), closed(103 * S, 103 * S + 5)]));
        assert!(r.passed, "{}", r.saw);
        assert!(r.saw.contains("3 sockets on api:8080 went through CLOSE_WAIT, the longest for 2.0 ms"), "{}", r.saw);
    }

    #[test]
    fn sockets_still_stuck_at_the_end_fail() {
        // entered 2.5 s before the end and never left
        let r = eval(&obs(vec![closed(101 * S, 101 * S + 1), closed(101 * S, 101 * S + 1), open(102 * S + S / 2), open(104 * S)]));
        assert!(!r.passed);
        assert!(r.saw.starts_with("1 of 4 sockets on api:8080 stayed in CLOSE_WAIT longer than 2 s during the window (longest 2.5 s); 1 of them still"), "{}", r.saw);
        assert_eq!(r.details["still_in_state"], 2);
    }

    #[test]
    fn only_time_inside_the_window_counts() {
        // In the state since 90 s, left 3 s into the window: 3 s inside it, over 2 s.
        let r = eval(&obs(vec![closed(90 * S, 103 * S), closed(101 * S, 101 * S + 1), closed(101 * S, 101 * S + 1)]));
        assert!(!r.passed);
        assert_eq!(r.details["over_bound"], 1);
        assert_eq!(r.details["longest_secs"], 3.0);
        // Left over from before a fix, gone 1 s into the window: not a violation.
        let r = eval(&obs(vec![closed(90 * S, 101 * S), closed(101 * S, 101 * S + 1), closed(101 * S, 101 * S + 1)]));
        assert!(r.passed, "{}", r.saw);
    }

    #[test]
    fn no_traffic_is_not_a_pass() {
        let r = eval(&obs(vec![closed(101 * S, 101 * S + 1)]));
        assert!(!r.passed);
        assert!(r.saw.contains("only 1 socket(s) on api:8080"), "{}", r.saw);
    }

    #[test]
    fn unanswered_syns_read_as_such() {
        let o = obs(vec![open(101 * S), open(101 * S), open(101 * S)]);
        let r = evaluate_dwell("n", "client", 8080, true, TcpState::SynSent, 1.0, 1, &o);
        assert!(!r.passed);
        assert!(r.saw.starts_with("3 of 3 sockets on client to port 8080 stayed in SYN_SENT longer than 1 s during the window"), "{}", r.saw);
    }

    #[test]
    fn lost_events_are_mentioned() {
        let mut o = obs(vec![closed(101 * S, 101 * S + 1); 3]);
        o.events_lost = 4;
        assert!(eval(&o).saw.contains("4 probe events were lost"));
    }

    #[test]
    fn http_ratio_latency_and_top_error() {
        let mut s: Vec<HttpSample> = (0..18).map(|i| HttpSample { ok: true, latency_ms: i as f64, error: None }).collect();
        s.push(HttpSample { ok: false, latency_ms: 1000.0, error: Some("timed out after 1000 ms".into()) });
        s.push(HttpSample { ok: false, latency_ms: 1000.0, error: Some("timed out after 1000 ms".into()) });
        let r = evaluate_http("n", "client", "api:8080", 0.95, None, &s);
        assert!(!r.passed);
        assert!(r.saw.starts_with("18/20 requests from client to api:8080 succeeded (90%, need 95%)"), "{}", r.saw);
        assert!(r.saw.contains("most common failure: timed out after 1000 ms (2x)"), "{}", r.saw);
        let r = evaluate_http("n", "client", "api:8080", 0.9, None, &s);
        assert!(r.passed);
        assert!(!evaluate_http("n", "c", "t", 0.0, None, &[]).passed, "no requests is never a pass");
        let r = evaluate_http("n", "client", "api:8080", 0.9, Some(10.0), &s);
        assert!(!r.passed && r.saw.contains("p95 16.0 ms (over the 10 ms bound)"), "{}", r.saw);
    }

    #[test]
    fn retransmission_ratio() {
        let r = evaluate_ratio("n", "retransmissions", "client", 30, 1000, 0.01);
        assert!(!r.passed);
        assert_eq!(r.saw, "30 retransmissions on client during the window: 3.00% of 1000 segments sent (allowed 1%)");
        assert!(evaluate_ratio("n", "retransmissions", "client", 5, 1000, 0.01).passed);
        assert!(!evaluate_ratio("n", "retransmissions", "client", 0, 0, 0.01).passed, "no traffic is not a pass");
    }

    #[test]
    fn counts_pass_up_to_max_and_explain_the_breakdown() {
        let r = evaluate_count("n", "packet drops", "api", 37, 0, &[("NETFILTER_DROP".into(), 37)], None);
        assert!(!r.passed);
        assert_eq!(r.saw, "37 packet drops on api during the window (allowed 0): NETFILTER_DROP 37");
        assert!(evaluate_count("n", "resets sent", "api:80", 2, 2, &[], Some(Activity { packets: 90 })).passed);
    }

    #[test]
    fn a_count_over_an_idle_window_fails_closed() {
        let r = evaluate_count("n", "packet drops", "api", 0, 0, &[], Some(Activity { packets: 0 }));
        assert!(!r.passed, "no drops because no traffic is not a pass");
        assert!(r.saw.contains("handled no traffic"), "{}", r.saw);
        assert!(evaluate_count("n", "packet drops", "api", 0, 0, &[], Some(Activity { packets: 1 })).passed);
    }

    #[test]
    fn verdict_passes_only_if_all_checks_pass() {
        let ok = CheckResult { name: "a".into(), kind: "k".into(), passed: true, saw: String::new(), details: serde_json::Value::Null };
        let bad = CheckResult { passed: false, ..ok.clone() };
        assert!(Verdict::new("i", "s", 5.0, vec![ok.clone(), ok.clone()]).passed);
        assert!(!Verdict::new("i", "s", 5.0, vec![ok, bad]).passed);
    }
}
