//! The pure logic of timed incidents (docs/incidents.md): when the service level
//! recovered (from the continuous evaluation's windows), the figures (MTTA, MTTM, MTTR,
//! impact), the score and its parts, and the damage the engine recognises in the
//! commands a responder ran.

use std::collections::BTreeSet;

use crate::record::{Command, DrillRecord, EventKind, Figures, Mode, Outcome, Score, ScorePart, Window};

/// Consecutive passing windows that make a recovery (one passing window between failing
/// ones is a flap, not a recovery).
pub const SUSTAIN_WINDOWS: usize = 2;

/// The score's rules, all in one place (docs/incidents.md quotes them).
pub mod rules {
    /// Points for a passing submit before the clock ran out.
    pub const RESOLVED: i64 = 40;
    /// Points for speed: all of them at time 0, none at the limit, linear between.
    pub const SPEED: i64 = 30;
    /// Points for acknowledging: all within `ACK_FULL_MS`, none after `ACK_NONE_MS`.
    pub const ACK: i64 = 10;
    pub const ACK_FULL_MS: u64 = 60_000;
    pub const ACK_NONE_MS: u64 = 300_000;
    /// Points for mitigating (the service level recovered) before the clock ran out.
    pub const MITIGATED: i64 = 20;
    /// Deductions.
    pub const PER_HINT: i64 = 5;
    pub const PER_FAILED_SUBMIT: i64 = 5;
    pub const PER_COLLATERAL: i64 = 10;
    pub const MAX: i64 = RESOLVED + SPEED + ACK + MITIGATED;
}

/// The start of the first window of the first run of `SUSTAIN_WINDOWS` passing windows
/// that begins after `after_ms` and is not followed by a failing window (the service
/// level recovered and stayed so), or of a shorter passing run that reaches the last
/// window when the drill ended resolved. `None` if the service level never recovered.
pub fn mitigated_at(windows: &[Window], after_ms: u64, resolved: bool) -> Option<u64> {
    let ws: Vec<&Window> = windows.iter().filter(|w| w.start_ms >= after_ms).collect();
    // Recovery starts after the last failing window.
    let run_start = ws.iter().rposition(|w| !w.passed).map_or(0, |i| i + 1);
    if run_start >= ws.len() {
        return None;
    }
    let run = ws.len() - run_start;
    (run >= SUSTAIN_WINDOWS || (resolved && run >= 1)).then(|| ws[run_start].start_ms)
}

/// What a command line did that the engine counts as damage: the responder removed more
/// than the cause, or stopped what the drill measures with.
pub struct Context<'a> {
    /// Services the faults act on (host, service): restarting those is a fix, not damage.
    pub faulty_services: &'a BTreeSet<(String, String)>,
    /// Load generators (host, service): stopping them hides the symptom.
    pub loadgens: &'a BTreeSet<(String, String)>,
    /// Every service (host, service).
    pub services: &'a BTreeSet<(String, String)>,
}

/// Sysctls whose value is a safety net on every interface (`all`/`default`): turning them
/// off machine-wide is damage even when it makes a symptom go away.
const SAFETY_SYSCTLS: [(&str, &str); 4] =
    [("net.ipv4.conf.all.rp_filter", "0"), ("net.ipv4.conf.default.rp_filter", "0"), ("net.ipv4.tcp_syncookies", "0"), ("net.ipv4.conf.all.accept_redirects", "1")];

/// The damage one command did, described, or `None`.
pub fn collateral(c: &Command, ctx: &Context<'_>) -> Option<String> {
    let argv: Vec<&str> = c.argv.iter().map(String::as_str).collect();
    let prog = argv.first().map(|a| a.rsplit('/').next().unwrap_or(a)).unwrap_or("");
    match prog {
        "nft" => {
            let words: Vec<&str> = argv[1..].iter().copied().filter(|a| !a.starts_with('-')).collect();
            if words.starts_with(&["flush", "ruleset"]) {
                return Some("flushed the whole nftables ruleset (the site's own rules with the bad one)".into());
            }
            None
        }
        "iptables" | "ip6tables" | "iptables-nft" | "iptables-legacy" => {
            let flush = argv.iter().any(|a| *a == "-F" || *a == "--flush");
            let chain_named = argv.iter().position(|a| *a == "-F" || *a == "--flush").and_then(|i| argv.get(i + 1)).is_some_and(|a| !a.starts_with('-'));
            (flush && !chain_named).then(|| "flushed every iptables chain".to_string())
        }
        "sysctl" => {
            for a in &argv[1..] {
                let Some((k, v)) = a.split_once('=') else { continue };
                let k = k.replace('/', ".");
                if SAFETY_SYSCTLS.iter().any(|(sk, sv)| *sk == k && *sv == v.trim()) {
                    return Some(format!("set {k}={} (a safety net on every interface)", v.trim()));
                }
            }
            None
        }
        "svc" => match argv.get(1..3) {
            Some([action @ ("restart" | "stop"), s]) => {
                let key = (c.host.clone(), s.to_string());
                if ctx.loadgens.contains(&key) && *action == "stop" {
                    Some(format!("stopped the load generator `{s}` (hides the symptom, measures nothing)"))
                } else if ctx.services.contains(&key) && !ctx.faulty_services.contains(&key) && !ctx.loadgens.contains(&key) {
                    Some(format!("{action}ed `{s}`, a service that was healthy (its users saw the outage)", action = if *action == "stop" { "stopp" } else { "restart" }))
                } else {
                    None
                }
            }
            _ => None,
        },
        _ => None,
    }
}

/// The figures of a record, from its events and windows; `now_ms` (since the start) is the
/// end of a drill still running.
pub fn figures(rec: &DrillRecord, now_ms: u64) -> Figures {
    let mut f = Figures::default();
    // What happens after the end (a submit once the clock ran out) changes nothing.
    let mut ended = false;
    for e in &rec.events {
        if ended {
            break;
        }
        match &e.kind {
            EventKind::Ended { .. } => ended = true,
            EventKind::Ack if f.mtta_ms.is_none() => f.mtta_ms = Some(e.t_ms),
            EventKind::Hint { .. } => f.hints += 1,
            EventKind::Submit { passed, .. } => {
                f.submits += 1;
                if *passed {
                    if f.mttr_ms.is_none() {
                        f.mttr_ms = Some(e.t_ms);
                    }
                } else {
                    f.failed_submits += 1;
                }
            }
            EventKind::Mitigated if f.mttm_ms.is_none() => f.mttm_ms = Some(e.t_ms),
            _ => {}
        }
    }
    if f.mttm_ms.is_none() {
        f.mttm_ms = mitigated_at(&rec.windows, 0, rec.outcome == Outcome::Resolved);
    }
    f.duration_ms = rec.ended_unix_ms.map_or(now_ms, |e| e.saturating_sub(rec.started_unix_ms));
    for w in rec.windows.iter().filter(|w| !w.passed) {
        f.requests += w.requests;
        f.failed_requests += w.failed_requests;
        f.slow_requests += w.slow_requests;
        f.impact_ms += w.end_ms.saturating_sub(w.start_ms);
    }
    f
}

/// The score of an incident: its parts, each with its points and why, and their sum
/// (floored at 0, shown as a part when it applies). `None` for a plain drill.
pub fn score(rec: &DrillRecord) -> Option<Score> {
    if rec.mode != Mode::Incident {
        return None;
    }
    let limit = rec.time_limit_ms.unwrap_or(0).max(1);
    let f = &rec.figures;
    let mut parts = Vec::new();
    let in_time = |t: Option<u64>| t.filter(|t| *t <= limit);
    let resolved = in_time(f.mttr_ms).filter(|_| rec.outcome == Outcome::Resolved);
    parts.push(ScorePart {
        name: "resolved".into(),
        points: if resolved.is_some() { rules::RESOLVED } else { 0 },
        max: rules::RESOLVED,
        why: match (resolved, rec.outcome) {
            (Some(t), _) => format!("a passing submit at {} of the {} limit", clock(t), clock(limit)),
            (None, o) => format!("no passing submit within the limit ({})", o.as_str()),
        },
    });
    let speed = resolved.map_or(0, |t| ((rules::SPEED as f64) * (1.0 - t as f64 / limit as f64)).round() as i64);
    parts.push(ScorePart {
        name: "speed".into(),
        points: speed,
        max: rules::SPEED,
        why: match resolved {
            Some(t) => format!("{} × (1 − {} / {}), rounded", rules::SPEED, clock(t), clock(limit)),
            None => "not resolved".into(),
        },
    });
    let mitigated = in_time(f.mttm_ms);
    parts.push(ScorePart {
        name: "mitigated".into(),
        points: if mitigated.is_some() { rules::MITIGATED } else { 0 },
        max: rules::MITIGATED,
        why: match mitigated {
            Some(t) => format!("the service level recovered at {} (measured, not submitted)", clock(t)),
            None => "the service level did not recover within the limit".into(),
        },
    });
    let ack = match f.mtta_ms {
        Some(t) if t <= rules::ACK_FULL_MS => rules::ACK,
        Some(t) if t >= rules::ACK_NONE_MS => 0,
        Some(t) => ((rules::ACK as f64) * (rules::ACK_NONE_MS - t) as f64 / (rules::ACK_NONE_MS - rules::ACK_FULL_MS) as f64).round() as i64,
        None => 0,
    };
    parts.push(ScorePart {
        name: "acknowledged".into(),
        points: ack,
        max: rules::ACK,
        why: match f.mtta_ms {
            Some(t) => format!("acknowledged at {} (all points within {}, none after {})", clock(t), clock(rules::ACK_FULL_MS), clock(rules::ACK_NONE_MS)),
            None => "never acknowledged".into(),
        },
    });
    if f.hints > 0 {
        parts.push(ScorePart { name: "hints".into(), points: -(f.hints as i64) * rules::PER_HINT, max: 0, why: format!("{} hint(s) × −{}", f.hints, rules::PER_HINT) });
    }
    if f.failed_submits > 0 {
        parts.push(ScorePart {
            name: "failed submits".into(),
            points: -(f.failed_submits as i64) * rules::PER_FAILED_SUBMIT,
            max: 0,
            why: format!("{} failed submit(s) × −{}", f.failed_submits, rules::PER_FAILED_SUBMIT),
        });
    }
    let damage: Vec<&str> = rec.events.iter().filter_map(|e| if let EventKind::Collateral { what, .. } = &e.kind { Some(what.as_str()) } else { None }).collect();
    if !damage.is_empty() {
        parts.push(ScorePart {
            name: "collateral damage".into(),
            points: -(damage.len() as i64) * rules::PER_COLLATERAL,
            max: 0,
            why: format!("{} × −{}: {}", damage.len(), rules::PER_COLLATERAL, damage.join("; ")),
        });
    }
    let sum: i64 = parts.iter().map(|p| p.points).sum();
    if sum < 0 {
        parts.push(ScorePart { name: "floor".into(), points: -sum, max: 0, why: "a score is never below 0".into() });
    }
    let total = parts.iter().map(|p| p.points).sum();
    Some(Score { total, max: rules::MAX, parts })
}

/// One window of the continuous evaluation from a verdict and what it saw: every check,
/// the service-level clients' requests (slow: successful but above the check's latency
/// bound), their latency percentiles, and the counters that moved.
pub fn window(start_ms: u64, end_ms: u64, verdict: &crate::verdict::Verdict, requests: &[(Option<f64>, Vec<crate::verdict::HttpSample>)], counters: std::collections::BTreeMap<String, u64>) -> Window {
    let mut ok_lat: Vec<f64> = Vec::new();
    let (mut n, mut failed, mut slow) = (0u64, 0u64, 0u64);
    for (bound, samples) in requests {
        for s in samples {
            n += 1;
            if !s.ok {
                failed += 1;
                continue;
            }
            ok_lat.push(s.latency_ms);
            if bound.is_some_and(|b| s.latency_ms > b) {
                slow += 1;
            }
        }
    }
    ok_lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| (!ok_lat.is_empty()).then(|| ok_lat[((ok_lat.len() as f64 * p).ceil() as usize).clamp(1, ok_lat.len()) - 1]);
    Window {
        start_ms,
        end_ms,
        passed: verdict.passed,
        checks: verdict.checks.iter().map(|c| crate::record::WindowCheck { name: c.name.clone(), passed: c.passed, saw: c.saw.clone() }).collect(),
        requests: n,
        failed_requests: failed,
        slow_requests: slow,
        latency_p50_ms: pct(0.5),
        latency_p95_ms: pct(0.95),
        counters,
    }
}

/// A window whose observation could not be made: it fails (no measurement is never a pass).
pub fn unmeasured_window(start_ms: u64, end_ms: u64, why: &str) -> Window {
    Window {
        start_ms,
        end_ms,
        passed: false,
        checks: vec![crate::record::WindowCheck { name: "observation".into(), passed: false, saw: format!("not measured: {why}") }],
        requests: 0,
        failed_requests: 0,
        slow_requests: 0,
        latency_p50_ms: None,
        latency_p95_ms: None,
        counters: Default::default(),
    }
}

/// The checks whose result changed from the previous window to this one (the first
/// window: every check, as it is).
pub fn flips(prev: Option<&Window>, cur: &Window) -> Vec<(String, bool, String)> {
    cur.checks.iter().filter(|c| prev.is_none_or(|p| p.checks.iter().find(|q| q.name == c.name).is_none_or(|q| q.passed != c.passed))).map(|c| (c.name.clone(), c.passed, c.saw.clone())).collect()
}

/// A duration as people write it: `90s`, `15m`, `1h30m`, or a bare number of minutes.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let bad = || format!("`{s}` is not a duration: write e.g. 15m, 90s, 1h30m (or a number of minutes)");
    if let Ok(m) = t.parse::<f64>() {
        return if m.is_finite() && m > 0.0 && m <= 600.0 { Ok(std::time::Duration::from_secs_f64(m * 60.0)) } else { Err(format!("{} (from 1 second to 10 hours)", bad())) };
    }
    let mut total = 0f64;
    let mut num = String::new();
    for ch in t.chars() {
        match ch {
            '0'..='9' | '.' => num.push(ch),
            'h' | 'm' | 's' => {
                let n: f64 = num.parse().map_err(|_| bad())?;
                total += n * match ch {
                    'h' => 3600.0,
                    'm' => 60.0,
                    _ => 1.0,
                };
                num.clear();
            }
            _ => return Err(bad()),
        }
    }
    if !num.is_empty() || !(1.0..=36_000.0).contains(&total) {
        return Err(format!("{} (from 1 second to 10 hours)", bad()));
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

/// `m:ss` of a duration in ms.
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::*;

    fn w(start: u64, passed: bool) -> Window {
        Window {
            start_ms: start,
            end_ms: start + 4000,
            passed,
            checks: vec![],
            requests: 20,
            failed_requests: if passed { 0 } else { 20 },
            slow_requests: 0,
            latency_p50_ms: None,
            latency_p95_ms: None,
            counters: Default::default(),
        }
    }

    #[test]
    fn recovery_needs_a_sustained_run() {
        let ws = vec![w(0, false), w(4000, false), w(8000, true), w(12000, false), w(16000, true), w(20000, true)];
        assert_eq!(mitigated_at(&ws, 0, false), Some(16000));
        assert_eq!(mitigated_at(&ws[..5], 0, false), None, "one passing window is a flap");
        assert_eq!(mitigated_at(&ws[..5], 0, true), Some(16000), "a resolved drill's last window counts");
        assert_eq!(mitigated_at(&ws[..2], 0, false), None);
        assert_eq!(mitigated_at(&[], 0, false), None);
    }

    fn cmd(host: &str, argv: &[&str]) -> Command {
        Command {
            host: host.into(),
            pid: 1,
            ppid: 1,
            host_pid: 1,
            uid: 0,
            cwd: "/".into(),
            filename: argv[0].into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            argv_truncated: false,
            exit: None,
            ended_ms: None,
            service: false,
        }
    }

    #[test]
    fn damage_is_recognised_and_fixes_are_not() {
        let set = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<BTreeSet<_>>();
        let (faulty, loadgens, services) = (set(&[("api", "broken")]), set(&[("client", "loadgen")]), set(&[("api", "httpd"), ("api", "broken"), ("client", "loadgen")]));
        let ctx = Context { faulty_services: &faulty, loadgens: &loadgens, services: &services };
        let d = |h: &str, a: &[&str]| collateral(&cmd(h, a), &ctx);
        assert!(d("api", &["nft", "flush", "ruleset"]).is_some());
        assert!(d("api", &["/usr/sbin/nft", "-a", "flush", "ruleset"]).is_some());
        assert!(d("api", &["nft", "flush", "chain", "inet", "filter", "input"]).is_none());
        assert!(d("api", &["nft", "list", "ruleset"]).is_none());
        assert!(d("api", &["iptables", "-F"]).is_some());
        assert!(d("api", &["iptables", "-F", "INPUT"]).is_none());
        assert!(d("api", &["sysctl", "-w", "net.ipv4.conf.all.rp_filter=0"]).is_some());
        assert!(d("api", &["sysctl", "-w", "net.ipv4.conf.eth1.rp_filter=2"]).is_none());
        assert!(d("api", &["svc", "restart", "httpd"]).is_some(), "httpd was healthy");
        assert!(d("api", &["svc", "restart", "broken"]).is_none(), "restarting the faulty service is the fix");
        assert!(d("client", &["svc", "stop", "loadgen"]).is_some());
        assert!(d("client", &["svc", "restart", "loadgen"]).is_none());
        assert!(d("api", &["svc", "status"]).is_none());
    }

    fn record(events: Vec<Event>, windows: Vec<Window>, outcome: Outcome) -> DrillRecord {
        let mut r = DrillRecord {
            schema_version: SCHEMA_VERSION,
            id: "d1".into(),
            scenario: "firewall-drop".into(),
            pack: "core".into(),
            title: "t".into(),
            severity: "SEV2".into(),
            alert: "a".into(),
            owner_uid: 0,
            mode: Mode::Incident,
            time_limit_ms: Some(600_000),
            started_unix_ms: 1_000_000,
            ended_unix_ms: Some(1_000_000 + 300_000),
            outcome,
            hosts: vec!["client".into(), "api".into()],
            events,
            windows,
            root_cause: None,
            figures: Figures::default(),
            score: None,
        };
        r.figures = figures(&r, 0);
        r
    }

    #[test]
    fn the_parts_add_up() {
        let ev = vec![
            Event::new(30_000, EventKind::Ack),
            Event::new(60_000, EventKind::Hint { index: 1, total: 4 }),
            Event::new(90_000, EventKind::Submit { passed: false, failed_checks: vec!["x".into()] }),
            Event::new(150_000, EventKind::Mitigated),
            Event::new(180_000, EventKind::Submit { passed: true, failed_checks: vec![] }),
        ];
        let mut after = ev.clone();
        after.push(Event::new(180_000, EventKind::Ended { outcome: Outcome::Resolved }));
        after.push(Event::new(190_000, EventKind::Submit { passed: false, failed_checks: vec![] }));
        after.push(Event::new(191_000, EventKind::Hint { index: 2, total: 4 }));
        let late = record(after, vec![], Outcome::Resolved);
        assert_eq!((late.figures.failed_submits, late.figures.hints), (1, 1), "nothing after the end counts");
        let r = record(ev, vec![], Outcome::Resolved);
        assert_eq!((r.figures.mtta_ms, r.figures.mttm_ms, r.figures.mttr_ms), (Some(30_000), Some(150_000), Some(180_000)));
        let s = score(&r).unwrap();
        // 40 resolved + 30*(1-180/600)=21 + 20 mitigated + 10 ack - 5 hint - 5 failed submit
        assert_eq!(s.total, 40 + 21 + 20 + 10 - 5 - 5);
        assert_eq!(s.total, s.parts.iter().map(|p| p.points).sum::<i64>());
        assert_eq!(s.max, 100);
    }

    #[test]
    fn an_unresolved_incident_with_damage_floors_at_zero() {
        let mut ev = vec![];
        for i in 0..5 {
            ev.push(Event::new(1000 * i, EventKind::Collateral { what: "flushed".into(), host: "api".into() }));
        }
        let r = record(ev, vec![w(0, false), w(4000, false)], Outcome::Unresolved);
        let s = score(&r).unwrap();
        assert_eq!(s.total, 0);
        assert_eq!(s.total, s.parts.iter().map(|p| p.points).sum::<i64>());
        assert!(s.parts.iter().any(|p| p.name == "floor"));
        assert_eq!(r.figures.impact_ms, 8000);
        assert_eq!(r.figures.failed_requests, 40);
    }

    #[test]
    fn a_plain_drill_has_no_score_and_exit_statuses_decode() {
        let mut r = record(vec![], vec![], Outcome::Resolved);
        r.mode = Mode::Drill;
        assert!(score(&r).is_none());
        assert_eq!(Exit::from_wait_status(0), Exit::Code(0));
        assert_eq!(Exit::from_wait_status(1 << 8), Exit::Code(1));
        assert_eq!(Exit::from_wait_status(9), Exit::Signal(9));
        assert_eq!(clock(125_000), "2:05");
        assert_eq!(parse_duration("15m").unwrap().as_secs(), 900);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("20").unwrap().as_secs(), 1200);
        for bad in ["", "abc", "15x", "0", "-3", "nan", "11h", "5m3"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
