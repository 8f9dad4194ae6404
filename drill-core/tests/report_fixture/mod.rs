//! The report tests' fixture: an incident on firewall-drop, resolved (docs/report.md).
#![allow(dead_code)]

use drill_core::incident;
use drill_core::record::*;

pub const START: u64 = 1_796_166_000_000; // 2026-12-01 23:00:00 UTC

pub fn cmd(host: &str, argv: &[&str], exit: Option<Exit>, service: bool) -> EventKind {
    EventKind::Command(Command {
        host: host.into(),
        pid: 4242,
        ppid: 4000,
        host_pid: 42,
        uid: if service { 0 } else { 1000 },
        cwd: "/root".into(),
        filename: format!("/usr/bin/{}", argv[0]),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        argv_truncated: false,
        exit,
        ended_ms: None,
        service,
    })
}

fn window(i: u64, passed: bool, failed: u64) -> Window {
    let (p50, p95) = if failed >= 30 {
        (None, None)
    } else if passed {
        (Some(11.0 + i as f64 % 3.0), Some(29.0 + i as f64))
    } else {
        (Some(980.0), Some(2900.0))
    };
    let mut counters = std::collections::BTreeMap::new();
    if !passed {
        counters.insert("drops:NETFILTER_DROP".to_string(), 40 + 3 * i);
        counters.insert("retransmits".to_string(), 25 + i);
    }
    let check = |name: &str| WindowCheck { name: name.into(), passed, saw: if passed { "ok".into() } else { "timeout after 3s".into() } };
    Window {
        start_ms: i * 30_000,
        end_ms: (i + 1) * 30_000,
        passed,
        checks: vec![check("api-reachable"), check("http-ok"), check("no-drops")],
        requests: 30,
        failed_requests: failed,
        slow_requests: if passed { 0 } else { 30 - failed },
        latency_p50_ms: p50,
        latency_p95_ms: p95,
        counters,
    }
}

/// The incident: paged at 0, fixed by deleting the drop rule at 2:20, resolved at 4:28.
pub fn incident() -> DrillRecord {
    let flip = |check: &str| EventKind::CheckFlip { check: check.into(), passed: true, saw: "ok".into() };
    let events = vec![
        Event::new(0, EventKind::Paged { severity: "SEV2".into(), alert: "api: HTTP checks from client time out (5/5 failing)".into() }),
        Event::new(0, EventKind::FaultInjected { fault: "firewall-drop".into(), note: "nft rule `tcp dport 8080 drop` in inet filter input (handle 4); 30/30 probes dropped".into() }),
        Event::new(1_200, cmd("api", &["/usr/sbin/httpd", "-f", "-p", "8080"], None, true)),
        Event::new(40_000, EventKind::Ack),
        Event::new(55_000, cmd("client", &["curl", "-v", "-m", "3", "http://api:8080/"], Some(Exit::Code(28)), false)),
        Event::new(75_000, cmd("api", &["nft", "-a", "list", "ruleset"], Some(Exit::Code(0)), false)),
        Event::new(90_000, EventKind::Hint { index: 1, total: 3 }),
        Event::new(110_000, EventKind::Submit { passed: false, failed_checks: vec!["api-reachable".into(), "http-ok".into()] }),
        Event::new(140_000, cmd("api", &["nft", "delete", "rule", "inet", "filter", "input", "handle", "4"], Some(Exit::Code(0)), false)),
        Event::new(150_000, flip("api-reachable")),
        Event::new(150_000, flip("http-ok")),
        Event::new(150_000, flip("no-drops")),
        Event::new(150_000, EventKind::Mitigated),
        Event::new(268_000, EventKind::Submit { passed: true, failed_checks: vec![] }),
        Event::new(268_000, EventKind::Ended { outcome: Outcome::Resolved }),
    ];
    let windows = vec![
        window(0, false, 30),
        window(1, false, 28),
        window(2, false, 29),
        window(3, false, 30),
        window(4, false, 27),
        window(5, true, 0),
        window(6, true, 0),
        window(7, true, 0),
        window(8, true, 0),
    ];
    let mut rec = DrillRecord {
        schema_version: SCHEMA_VERSION,
        id: "inc-20261201-2300-7f3a".into(),
        scenario: "firewall-drop".into(),
        pack: "core".into(),
        title: "The API stopped answering its clients".into(),
        severity: "SEV2".into(),
        alert: "api: HTTP checks from client time out (5/5 failing)".into(),
        owner_uid: 1000,
        mode: Mode::Incident,
        time_limit_ms: Some(900_000),
        started_unix_ms: START,
        ended_unix_ms: Some(START + 270_000),
        outcome: Outcome::Resolved,
        hosts: vec!["client".into(), "api".into()],
        events,
        windows,
        root_cause: Some(RootCause {
            summary: "A rule in api's nftables input chain dropped TCP to port 8080: the service ran, the packets never reached it.".into(),
            faults: vec!["nft: `tcp dport 8080 drop` in table inet filter, chain input (handle 4); after apply 30/30 probes dropped".into()],
            solution_steps: vec!["On api, list the ruleset with handles: `nft -a list ruleset`".into(), "Delete the drop rule: `nft delete rule inet filter input handle 4`".into()],
        }),
        figures: Figures::default(),
        score: None,
    };
    rec.figures = incident::figures(&rec, 0);
    rec.score = incident::score(&rec);
    rec
}

/// The incident plus one event of every other kind and every exit form (for the JSON
/// schema's documentation test).
pub fn full() -> DrillRecord {
    let mut rec = incident();
    rec.events.push(Event::new(100_000, EventKind::Svc { host: "api".into(), action: "restart".into(), service: "httpd".into() }));
    rec.events.push(Event::new(101_000, EventKind::Collateral { what: "restarted the healthy service `httpd`".into(), host: "api".into() }));
    rec.events.push(Event::new(120_000, cmd("client", &["ping", "api"], Some(Exit::Signal(2)), false)));
    rec.events.push(Event::new(121_000, cmd("client", &["tcpdump", "-i", "any"], None, false)));
    rec.events.push(Event::new(200_000, EventKind::Solve { applied: false }));
    rec.events.push(Event::new(260_000, EventKind::TimeUp));
    rec.sort_events();
    rec.figures = incident::figures(&rec, 0);
    rec.score = incident::score(&rec);
    rec
}
