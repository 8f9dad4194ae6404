//! `drill watch` on a terminal: a dashboard (ratatui over crossterm) of the running
//! drills. The map of the drill, each probe counter as a sparkline, the service level,
//! the clock and events of the timeline; Tab/←/→ switch drill, p or space pauses, q,
//! Esc or Ctrl-C quits. The terminal is given back on every way out: a return, an error,
//! a signal (SIGTERM, SIGHUP, SIGINT) and a panic (ratatui's hook, and the guard's Drop).
//!
//! Pipes and `--json` keep the line output of main.rs.

mod map;
mod model;
mod ui;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use drill_core::api::{DrillCounters, DrillInfo};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tokio::sync::mpsc;

use crate::client::{CallError, Client};
use model::Model;

/// Between two updates of the counters.
const PERIOD: Duration = Duration::from_secs(1);

/// What the fetcher brings back.
enum Update {
    Drills(Result<Vec<DrillInfo>, String>),
    Counters(String, Result<DrillCounters, String>),
}

/// Gives the terminal back when dropped (also while unwinding from a panic).
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

fn words(e: CallError) -> String {
    match e {
        CallError::NoDaemon(io) => format!("cannot reach drilld: {io}"),
        other => other.to_string().lines().next().unwrap_or_default().to_string(),
    }
}

/// Runs the dashboard until q (or `count` updates); `first` is shown first.
pub async fn run(c: &Client, first: Option<String>, count: Option<u64>) -> Result<()> {
    // Before the screen changes: an unknown drill or no daemon is a plain error.
    let list: Vec<DrillInfo> = c.get("/v1/drills").await.map_err(anyhow::Error::from)?;
    if let Some(id) = &first {
        let _: DrillInfo = c.get(&format!("/v1/drills/{id}")).await.map_err(anyhow::Error::from)?;
    } else if list.is_empty() {
        anyhow::bail!("no drill is running; start one with `sudo drill start SCENARIO` (`drill list` shows them)");
    }
    let t0 = Instant::now();
    let mut m = Model { wanted: first, ..Default::default() };
    m.set_drills(list, 0.0);

    let (upd_tx, mut upd_rx) = mpsc::channel::<Update>(16);
    let (want_tx, want_rx) = tokio::sync::watch::channel::<(Option<String>, bool)>((m.shown_id(), false));
    let fetcher = tokio::spawn(fetch(Client::new(&c.socket), want_rx, upd_tx));
    let (key_tx, mut key_rx) = mpsc::channel::<Event>(16);
    std::thread::spawn(move || read_terminal_events(&key_tx));

    use tokio::signal::unix::{SignalKind, signal};
    let mut term_sig = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut terminal = ratatui::try_init().context("setting up the terminal for the dashboard (use `drill watch --json` or a pipe for lines)")?;
    let _restore = Restore;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let r: Result<()> = async {
        loop {
            if !m.paused {
                m.now = t0.elapsed().as_secs_f64();
            }
            terminal.draw(|f| ui::draw(f, &m))?;
            tokio::select! {
                ev = key_rx.recv() => match ev {
                    Some(Event::Key(k)) if k.kind != KeyEventKind::Release => {
                        if key(&mut m, k) {
                            break;
                        }
                        let _ = want_tx.send((m.shown_id(), m.paused));
                    }
                    Some(_) => {}
                    None => break,
                },
                u = upd_rx.recv() => {
                    let Some(u) = u else { break };
                    if m.paused {
                        continue;
                    }
                    let at = t0.elapsed().as_secs_f64();
                    match u {
                        Update::Drills(Ok(list)) => {
                            m.error = None;
                            m.set_drills(list, at);
                            let _ = want_tx.send((m.shown_id(), m.paused));
                        }
                        Update::Drills(Err(e)) => m.error = Some(e),
                        Update::Counters(_, Ok(c)) => {
                            m.add_counters(c, at);
                            m.updates += 1;
                            if count.is_some_and(|n| m.updates >= n) {
                                m.now = at;
                                terminal.draw(|f| ui::draw(f, &m))?;
                                break;
                            }
                        }
                        Update::Counters(id, Err(e)) => m.counters_failed(&id, e),
                    }
                }
                _ = tick.tick() => {}
                _ = term_sig.recv() => break,
                _ = hup.recv() => break,
                _ = int.recv() => break,
            }
        }
        Ok(())
    }
    .await;
    fetcher.abort();
    drop(key_rx);
    r
}

/// The terminal's events, read on a thread of their own (crossterm's reads block) until
/// the dashboard drops its receiver or the terminal goes.
fn read_terminal_events(key_tx: &mpsc::Sender<Event>) {
    loop {
        match event::poll(Duration::from_millis(200)) {
            Ok(true) => match event::read() {
                Ok(ev) => {
                    if key_tx.blocking_send(ev).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            },
            Ok(false) => {
                if key_tx.is_closed() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
}

/// A key: true to quit.
fn key(m: &mut Model, k: KeyEvent) -> bool {
    match k.code {
        KeyCode::Char('q') | KeyCode::Esc => return true,
        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => return true,
        KeyCode::Tab | KeyCode::Right => m.next(),
        KeyCode::BackTab | KeyCode::Left => m.previous(),
        KeyCode::Char('p') | KeyCode::Char(' ') => m.paused = !m.paused,
        _ => {}
    }
    false
}

/// Every period: the list of drills (their status and timeline) and the shown one's
/// counters, unless paused. A slow answer (a service-level request timing out) delays
/// the next update, never the keys.
async fn fetch(c: Client, mut want: tokio::sync::watch::Receiver<(Option<String>, bool)>, tx: mpsc::Sender<Update>) {
    let mut next = tokio::time::Instant::now();
    loop {
        let (id, paused) = want.borrow_and_update().clone();
        if !paused {
            let list = async { c.get::<Vec<DrillInfo>>("/v1/drills").await.map_err(words) };
            let counters = async {
                match &id {
                    Some(id) => Some((id.clone(), c.get::<DrillCounters>(&format!("/v1/drills/{id}/counters")).await.map_err(words))),
                    None => None,
                }
            };
            let (list, counters) = tokio::join!(list, counters);
            if tx.send(Update::Drills(list)).await.is_err() {
                return;
            }
            if let Some((id, r)) = counters
                && tx.send(Update::Counters(id, r)).await.is_err() {
                    return;
                }
        }
        next += PERIOD;
        let now = tokio::time::Instant::now();
        if next < now {
            next = now;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            // Another drill shown, or resumed: fetch at once.
            r = want.changed() => if r.is_err() { return },
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use drill_core::api::*;
    use drill_core::record::{Mode, Outcome};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::map::tests::{host, iface};
    use super::model::*;
    use super::*;

    pub fn info() -> DrillInfo {
        DrillInfo {
            id: "abc123".into(),
            scenario: "firewall-drop".into(),
            title: "The API stopped answering".into(),
            severity: "high".into(),
            alert: String::new(),
            briefing: String::new(),
            hints: 2,
            started_unix: 0,
            elapsed_secs: 75.0,
            hosts: vec![host("client", vec![iface("eth0", "10.77.0.1/24", "api", "veth")]), host("api", vec![iface("eth0", "10.77.0.2/24", "client", "veth")])],
            services: vec![ServiceInfo { host: "api".into(), name: "httpd".into(), kind: "httpd".into(), state: "running".into(), pid: Some(42), restarts: 0, config_path: String::new() }],
            pack: "core".into(),
            owner_uid: 0,
            sudo_uid: None,
            timeline: None,
        }
    }

    fn timeline(mode: Mode) -> TimelineInfo {
        TimelineInfo {
            mode,
            outcome: Outcome::Running,
            paged_unix_ms: 0,
            elapsed_secs: 75.0,
            time_limit_secs: (mode == Mode::Incident).then_some(900.0),
            remaining_secs: Some(825.0),
            acked_secs: Some(12.0),
            mitigated_secs: None,
            resolved_secs: None,
            hints: 1,
            submits: 1,
            failed_submits: 1,
            commands: 4,
            service_level_ok: Some(false),
            windows: 18,
            last_window: Some(WindowLevel { end_secs: 72.0, secs: 4.0, passed: false, requests: 40, failed_requests: 10, slow_requests: 0, latency_p50_ms: Some(1.5), latency_p95_ms: Some(3.0) }),
            score: Some(55),
            recent: vec!["0:12 acked".into(), "0:40 api: nft list ruleset".into()],
        }
    }

    fn counters(i: u64) -> DrillCounters {
        let mut api = HostCounters { host: "api".into(), retransmits: 0, execs: 3 + i / 4, ..Default::default() };
        api.drops.insert("NETFILTER_DROP".into(), i * i);
        let mut client = HostCounters { host: "client".into(), retransmits: i * 2, ..Default::default() };
        client.recent_execs = vec![ExecInfo { comm: "curl".into(), pid: 700, ppid: 1, argv: "curl -m 2 http://api:8080/".into(), at_secs: 61.0 }];
        let ok = !i.is_multiple_of(3);
        let req = RequestSample { from: "client".into(), target: "api:8080/".into(), ok, latency_ms: if ok { 1.0 + i as f64 / 10.0 } else { 1000.0 }, error: (!ok).then(|| "timed out".into()) };
        DrillCounters { id: "abc123".into(), elapsed_secs: 75.0, hosts: vec![client, api], requests: vec![req] }
    }

    /// A model of 30 updates, one a second, of a drill and an incident.
    fn model() -> Model {
        let mut m = Model::default();
        let incident = DrillInfo { id: "def456".into(), scenario: String::new(), timeline: Some(timeline(Mode::Incident)), ..info() };
        m.set_drills(vec![DrillInfo { timeline: Some(timeline(Mode::Drill)), ..info() }, incident], 0.0);
        for i in 0..30 {
            m.add_counters(counters(i), i as f64);
        }
        m.now = 29.5;
        // The status was fetched just now.
        for d in &mut m.drills {
            d.info_at = 29.5;
        }
        m
    }

    fn screen(m: &Model, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| ui::draw(f, m)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..h).map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>().trim_end().to_string()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn the_dashboard_shows_map_sparklines_service_level_and_timeline() {
        let m = model();
        let s = screen(&m, 120, 40);
        if std::env::var_os("DASHBOARD_PRINT").is_some() {
            println!("{s}");
        }
        // Header: the drill, where it is among the running ones.
        assert!(s.lines().next().unwrap().contains("drill abc123") && s.contains("[1/2]"), "{s}");
        // The map: both hosts as boxes, the link between them level, the service.
        assert!(s.contains("│ client") && s.contains("│ api"), "{s}");
        assert!(s.contains("eth0 10.77.0.1/24 ├─────┤ eth0 10.77.0.2/24"), "{s}");
        assert!(s.contains("httpd running"), "{s}");
        // The counters that moved, each with a sparkline; retransmits on client rise.
        let drops = s.lines().find(|l| l.contains("api    drops NETFILTER_DROP")).expect(&s);
        assert!(drops.contains('█') && drops.contains("total 841"), "{drops}");
        let rt = s.lines().find(|l| l.contains("client retransmits")).expect(&s);
        assert!(rt.chars().any(|c| "▁▂▃▄▅▆▇█".contains(c)), "{rt}");
        assert!(!s.contains("RST sent"), "flat zeros are left off: {s}");
        // The service level: 20 of 30 samples succeeded; drilld's own window.
        assert!(s.contains("client → api:8080/  67% ok (20/30"), "{s}");
        assert!(s.contains("drilld: last window FAILING (18 so far)"), "{s}");
        assert!(s.contains("75% ok of 40 in 4 s · p50 1.5 p95 3.0 ms"), "{s}");
        // The timeline and its events; the keys.
        assert!(s.contains("RUNNING  1:15 since ready (no clock)"), "{s}");
        assert!(s.contains("0:40 api: nft list ruleset"), "{s}");
        assert!(s.contains("61s client: curl -m 2 http://api:8080/"), "{s}");
        assert!(s.lines().last().unwrap().contains("Tab/→ next drill") && s.lines().last().unwrap().contains("q quit"), "{s}");
    }

    #[test]
    fn tab_shows_the_incident_with_its_clock_and_p_pauses() {
        let mut m = model();
        key(&mut m, KeyEvent::from(KeyCode::Tab));
        let s = screen(&m, 120, 40);
        assert!(s.lines().next().unwrap().contains("drill def456") && s.contains("[2/2]"), "{s}");
        assert!(s.contains("incident (its scenario is named once it is over)"), "{s}");
        assert!(s.contains("RUNNING  clock 1:15 of 15:00  13:45 left"), "{s}");
        assert!(s.contains("score 55/100 so far"), "{s}");
        // Only the shown drill is sampled: this one has no counters yet.
        assert!(s.contains("waiting for the first counters"), "{s}");
        assert!(!s.contains("PAUSED"));
        key(&mut m, KeyEvent::from(KeyCode::Char('p')));
        let s = screen(&m, 120, 40);
        assert!(s.lines().next().unwrap().contains("PAUSED") && s.contains("p/space resume"), "{s}");
        assert!(key(&mut m, KeyEvent::from(KeyCode::Char('q'))));
        assert!(key(&mut m, KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)));
    }

    #[test]
    fn a_small_terminal_still_draws_and_no_drill_says_so() {
        let m = model();
        let s = screen(&m, 60, 16);
        assert!(s.contains("drill abc123"), "{s}");
        let s = screen(&Model::default(), 80, 10);
        assert!(s.contains("no drills are running"), "{s}");
    }
}
