use super::*;
use drill_core::record::*;

fn record(id: &str) -> DrillRecord {
    DrillRecord {
        schema_version: SCHEMA_VERSION,
        id: id.into(),
        scenario: "firewall-drop".into(),
        pack: "core".into(),
        title: "t".into(),
        severity: "SEV2".into(),
        alert: "a".into(),
        owner_uid: 1000,
        mode: Mode::Incident,
        time_limit_ms: Some(600_000),
        started_unix_ms: 1_700_000_000_000,
        ended_unix_ms: None,
        outcome: Outcome::Running,
        hosts: vec!["client".into(), "api".into()],
        events: vec![Event::new(10, EventKind::Paged { severity: "SEV2".into(), alert: "a".into() })],
        windows: vec![],
        root_cause: None,
        figures: Figures::default(),
        score: None,
    }
}

fn command(pid: u32, exit: Option<Exit>) -> EventKind {
    EventKind::Command(Command {
        host: "api".into(),
        pid,
        ppid: 1,
        host_pid: 7,
        uid: 0,
        cwd: "/root".into(),
        filename: "/usr/sbin/nft".into(),
        argv: vec!["nft".into(), "list".into(), "ruleset".into()],
        argv_truncated: false,
        exit,
        ended_ms: None,
        service: false,
    })
}

#[test]
fn a_record_round_trips_and_commands_are_updated_in_place() {
    let h = History::open_in_memory().unwrap();
    let mut r = record("aaaaaa");
    h.sync(&r).unwrap();
    r.events.push(Event::new(500, command(42, None)));
    h.sync(&r).unwrap();
    r.events[1] = Event::new(500, command(42, Some(Exit::Code(0))));
    r.events.push(Event::new(900, EventKind::Ack));
    r.windows.push(drill_core::record::Window {
        start_ms: 0,
        end_ms: 4000,
        passed: false,
        checks: vec![],
        requests: 3,
        failed_requests: 3,
        slow_requests: 0,
        latency_p50_ms: None,
        latency_p95_ms: None,
        counters: Default::default(),
    });
    r.outcome = Outcome::Resolved;
    r.ended_unix_ms = Some(r.started_unix_ms + 1000);
    h.sync(&r).unwrap();
    let back = h.get("aaaaaa").unwrap().unwrap();
    assert_eq!(back, r);
    assert!(h.contains("aaaaaa"));
    assert!(h.get("bbbbbb").unwrap().is_none());
    let n: i64 = h.conn().query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 3, "the command's row was rewritten, not duplicated");
}

#[test]
fn running_drills_are_aborted_on_the_next_start_and_survive_reopening() {
    let dir = std::env::temp_dir().join(format!("drill-history-test-{}", std::process::id()));
    let path = dir.join("history.sqlite");
    {
        let h = History::open(&path).unwrap();
        let mut r = record("cccccc");
        r.events.push(Event::new(7000, EventKind::Ack));
        h.sync(&r).unwrap();
        let mut done = record("dddddd");
        done.started_unix_ms += 1;
        done.outcome = Outcome::Stopped;
        h.sync(&done).unwrap();
        // Dropped without any goodbye, like a kill -9.
    }
    let h = History::open(&path).unwrap();
    assert_eq!(h.schema_version().unwrap(), MIGRATIONS.len() as i64);
    assert_eq!(h.abort_running().unwrap(), vec!["cccccc".to_string()]);
    let r = h.get("cccccc").unwrap().unwrap();
    assert_eq!(r.outcome, Outcome::Aborted);
    assert_eq!(r.ended_unix_ms, Some(r.started_unix_ms + 7000));
    let list = h.list(None, 10).unwrap();
    assert_eq!(list.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), vec!["dddddd", "cccccc"], "newest first");
    assert_eq!(h.list(Some(0), 10).unwrap().len(), 0, "filtered by owner");
    drop(h);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_newer_schema_is_refused() {
    let conn = Connection::open_in_memory().unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    let e = History::setup(conn, PathBuf::from("x.sqlite")).err().unwrap().to_string();
    assert!(e.contains("newer than this drilld knows"), "{e}");
}
