//! A running drill as the learner lives it (docs/incidents.md): its timeline, the
//! continuous evaluation of its checks, the incident's clock, and its history.
//!
//! A session wraps a started [`Drill`]. From the moment the drill is ready (the page,
//! for an incident) it evaluates the scenario's checks in consecutive observation
//! windows of the scenario's `window_secs`, records each flip of a check, and finds when
//! the service level recovered and stayed so (MTTM). Acks, hints, submits, solve and
//! stop are recorded as they happen; the commands run in the hosts come from the
//! kernel's exec capture ([`Drill::commands`]). The record is written to the history at
//! the start, after every window and at the end.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use drill_core::api::TimelineInfo;
use drill_core::incident;
use drill_core::record::{DrillRecord, Event, EventKind, Figures, Mode, Outcome, RootCause, SCHEMA_VERSION, Window};
use drill_core::scenario::Fault;
use drill_core::verdict::Verdict;
use drill_core::workload::Workload;
use tracing::warn;

use crate::drill::Drill;
use crate::error::Result;
use crate::history::Writer;

/// The clock of an incident whose scenario sets none.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(30 * 60);

struct State {
    outcome: Outcome,
    ended_unix_ms: Option<u64>,
    /// Events other than commands (those come from the capture), in order.
    events: Vec<Event>,
    windows: Vec<Window>,
    /// Commands already looked at for damage and `svc` actions: (pid, t_ms).
    scanned: HashSet<(u32, u64)>,
    hints_seen: usize,
}

pub struct Session {
    pub drill: Arc<Drill>,
    pub mode: Mode,
    pub time_limit_ms: Option<u64>,
    /// When the drill was ready, in ms since the drill's build began (`started_at`).
    ready_ms: u64,
    started_unix_ms: u64,
    state: Mutex<State>,
    /// One observation at a time: a submit waits for the window in progress.
    observing: tokio::sync::Mutex<()>,
    /// The continuous evaluation's loop goes on while this is set.
    running: AtomicBool,
    wake: tokio::sync::Notify,
    /// Set once to stop the evaluation, cutting a window in progress short.
    stop: tokio::sync::watch::Sender<bool>,
    history: Option<Arc<Writer>>,
    faulty: BTreeSet<(String, String)>,
    loadgens: BTreeSet<(String, String)>,
    services: BTreeSet<(String, String)>,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Session {
    /// The session of a drill just started: records the faults and, for an incident,
    /// the page; writes the history row; starts the continuous evaluation.
    pub fn begin(drill: Arc<Drill>, mode: Mode, time_limit: Option<Duration>, history: Option<Arc<Writer>>) -> Arc<Session> {
        let ready_ms = drill.started_at.elapsed().as_millis() as u64;
        let mut events = Vec::new();
        for note in drill.fault_notes() {
            let (fault, note) = note.split_once(": ").map_or((note.clone(), String::new()), |(a, b)| (a.to_string(), b.to_string()));
            events.push(Event::new(0, EventKind::FaultInjected { fault, note }));
        }
        if mode == Mode::Incident {
            events.push(Event::new(0, EventKind::Paged { severity: drill.scenario.severity.clone(), alert: drill.scenario.alert.clone() }));
        }
        let mut faulty = BTreeSet::new();
        for f in &drill.scenario.faults {
            if let Fault::ServiceConfig { host, service, .. } = f {
                faulty.insert((host.clone(), service.clone()));
            }
        }
        let (mut loadgens, mut services) = (BTreeSet::new(), BTreeSet::new());
        for h in &drill.plan.hosts {
            for s in &h.services {
                services.insert((h.name.clone(), s.name.clone()));
                if matches!(s.workload, Workload::Loadgen(_)) {
                    loadgens.insert((h.name.clone(), s.name.clone()));
                }
            }
        }
        let time_limit_ms =
            (mode == Mode::Incident).then(|| time_limit.or_else(|| drill.scenario.meta.time_limit_minutes.map(|m| Duration::from_secs_f64(m * 60.0))).unwrap_or(DEFAULT_TIME_LIMIT).as_millis() as u64);
        let s = Arc::new(Session {
            started_unix_ms: unix_ms(SystemTime::now()),
            drill,
            mode,
            time_limit_ms,
            ready_ms,
            state: Mutex::new(State { outcome: Outcome::Running, ended_unix_ms: None, events, windows: Vec::new(), scanned: HashSet::new(), hints_seen: 0 }),
            observing: tokio::sync::Mutex::new(()),
            running: AtomicBool::new(true),
            wake: tokio::sync::Notify::new(),
            stop: tokio::sync::watch::Sender::new(false),
            history,
            faulty,
            loadgens,
            services,
        });
        s.sync();
        let me = s.clone();
        tokio::spawn(async move { me.evaluate().await });
        s
    }

    /// ms since the page.
    pub fn now_ms(&self) -> u64 {
        (self.drill.started_at.elapsed().as_millis() as u64).saturating_sub(self.ready_ms)
    }

    pub fn outcome(&self) -> Outcome {
        lock(&self.state).outcome
    }

    /// The continuous evaluation: consecutive windows until the drill is over or stopped.
    async fn evaluate(self: Arc<Self>) {
        while self.running.load(Ordering::Relaxed) {
            if self.clock_ran_out() {
                break;
            }
            if self.outcome().is_over() {
                break;
            }
            let guard = self.observing.lock().await;
            if !self.running.load(Ordering::Relaxed) {
                break;
            }
            let t0 = self.now_ms();
            let mut stop = self.stop.subscribe();
            let r = tokio::select! {
                r = self.drill.observe() => r,
                // A stop does not wait for the window to end (it is dropped unjudged).
                _ = stop.wait_for(|s| *s) => break,
            };
            let t1 = self.now_ms();
            drop(guard);
            if !self.running.load(Ordering::Relaxed) || self.outcome().is_over() {
                break;
            }
            match r {
                Ok((v, o)) => self.add_window(incident::window(t0, t1, &v, &o.requests, o.counters)),
                Err(e) => {
                    warn!(drill = %self.drill.id, "continuous evaluation: {e}");
                    self.add_window(incident::unmeasured_window(t0, t1.max(t0 + 1), &e.to_string()));
                    // Do not spin on a persistent failure.
                    let _ = tokio::time::timeout(Duration::from_secs(2), self.wake.notified()).await;
                }
            }
            self.scan_commands();
            self.sync();
        }
        // Keep the clock even when nothing is evaluated any more (a stopped loop on an
        // incident still running cannot happen, but a time-up must be recorded).
        self.clock_ran_out();
    }

    /// Records the time-up of an incident whose clock ran out; true when it is over by it.
    fn clock_ran_out(&self) -> bool {
        let Some(limit) = self.time_limit_ms else { return false };
        if self.now_ms() < limit {
            return false;
        }
        let mut st = lock(&self.state);
        if st.outcome != Outcome::Running {
            return st.outcome == Outcome::Unresolved;
        }
        st.events.push(Event::new(limit, EventKind::TimeUp));
        st.events.push(Event::new(limit, EventKind::Ended { outcome: Outcome::Unresolved }));
        st.outcome = Outcome::Unresolved;
        st.ended_unix_ms = Some(self.started_unix_ms + limit);
        drop(st);
        self.scan_commands();
        self.sync();
        true
    }

    fn add_window(&self, w: Window) {
        let mut st = lock(&self.state);
        for (check, passed, saw) in incident::flips(st.windows.last(), &w) {
            // The first window records only what already fails: the fault showing.
            if st.windows.is_empty() && passed {
                continue;
            }
            st.events.push(Event::new(w.end_ms, EventKind::CheckFlip { check, passed, saw }));
        }
        st.windows.push(w);
    }

    /// Looks at new commands: damage the engine recognises, `svc` actions.
    fn scan_commands(&self) {
        let cmds = self.drill.commands();
        let ctx = incident::Context { faulty_services: &self.faulty, loadgens: &self.loadgens, services: &self.services };
        let mut st = lock(&self.state);
        for (t, c) in cmds {
            if c.service || !st.scanned.insert((c.pid, t)) {
                continue;
            }
            let t = t.saturating_sub(self.ready_ms);
            let prog = c.argv.first().map(|a| a.rsplit('/').next().unwrap_or(a).to_string()).unwrap_or_default();
            if prog == "svc"
                && let (Some(action), Some(service)) = (c.argv.get(1), c.argv.get(2))
                && matches!(action.as_str(), "start" | "stop" | "restart" | "reload")
            {
                st.events.push(Event::new(t, EventKind::Svc { host: c.host.clone(), action: action.clone(), service: service.clone() }));
            }
            if st.outcome == Outcome::Running
                && let Some(what) = incident::collateral(&c, &ctx)
            {
                st.events.push(Event::new(t, EventKind::Collateral { what, host: c.host.clone() }));
            }
        }
    }

    /// The whole record as it stands (root cause only once over).
    pub fn record(&self) -> DrillRecord {
        let cmds = self.drill.commands();
        let st = lock(&self.state);
        let over = st.outcome.is_over();
        let mut events = st.events.clone();
        if !over {
            // What was injected is the answer: withheld while the drill runs.
            for e in &mut events {
                if let EventKind::FaultInjected { fault, note } = &mut e.kind {
                    *fault = "(named once the drill is over)".into();
                    note.clear();
                }
            }
        }
        events.extend(cmds.into_iter().map(|(t, c)| Event::new(t.saturating_sub(self.ready_ms), EventKind::Command(c))));
        let resolved = st.outcome == Outcome::Resolved;
        if let Some(t) = incident::mitigated_at(&st.windows, 0, resolved) {
            // The page is at 0; a first window passing from the start mitigated nothing.
            if st.windows.iter().any(|w| !w.passed) || resolved {
                events.push(Event::new(t, EventKind::Mitigated));
            }
        }
        events.sort_by_key(|e| e.t_ms);
        let d = &self.drill;
        let mut rec = DrillRecord {
            schema_version: SCHEMA_VERSION,
            id: d.id.clone(),
            scenario: d.scenario.id.clone(),
            pack: d.origin.pack.clone(),
            title: d.scenario.title.clone(),
            severity: d.scenario.severity.clone(),
            alert: d.scenario.alert.clone(),
            owner_uid: d.origin.owner_uid,
            mode: self.mode,
            time_limit_ms: self.time_limit_ms,
            started_unix_ms: self.started_unix_ms,
            ended_unix_ms: st.ended_unix_ms,
            outcome: st.outcome,
            hosts: d.plan.hosts.iter().map(|h| h.name.clone()).collect(),
            events,
            windows: st.windows.clone(),
            root_cause: over.then(|| RootCause {
                summary: d.scenario.solution.summary.clone(),
                faults: d.fault_notes(),
                solution_steps: d.scenario.solution.steps.iter().map(|s| format!("{}: {}", s.host, s.run)).collect(),
            }),
            figures: Figures::default(),
            score: None,
        };
        drop(st);
        rec.figures = incident::figures(&rec, self.now_ms());
        rec.score = incident::score(&rec);
        rec
    }

    /// Hands the record as it stands to the history's writer (in order, off this thread).
    fn sync(&self) {
        if let Some(h) = &self.history {
            h.sync(self.record());
        }
    }

    fn end(&self, st: &mut State, outcome: Outcome) {
        if st.outcome != Outcome::Running {
            return;
        }
        let t = self.now_ms();
        st.events.push(Event::new(t, EventKind::Ended { outcome }));
        st.outcome = outcome;
        st.ended_unix_ms = Some(self.started_unix_ms + t);
        self.running.store(outcome == Outcome::Running, Ordering::Relaxed);
        self.wake.notify_waiters();
    }

    /// `drill ack`: (seconds since the page, acknowledged before).
    pub fn ack(&self) -> (f64, bool) {
        let mut st = lock(&self.state);
        if let Some(e) = st.events.iter().find(|e| matches!(e.kind, EventKind::Ack)) {
            return (e.t_ms as f64 / 1e3, true);
        }
        let t = self.now_ms();
        st.events.push(Event::new(t, EventKind::Ack));
        drop(st);
        self.sync();
        (t as f64 / 1e3, false)
    }

    /// A hint was shown (index from 1); only a hint not shown before costs.
    pub fn hint(&self, index: usize, total: usize) {
        let mut st = lock(&self.state);
        if index > st.hints_seen && st.outcome == Outcome::Running {
            st.hints_seen = index;
            let t = self.now_ms();
            st.events.push(Event::new(t, EventKind::Hint { index, total }));
        }
        drop(st);
        self.sync();
    }

    /// `drill submit`: one observation window (after the one in progress), its verdict
    /// recorded; a pass ends the drill resolved (within the clock, for an incident).
    pub async fn submit(&self) -> Result<Verdict> {
        let guard = self.observing.lock().await;
        let t0 = self.now_ms();
        let r = self.drill.observe().await;
        let t1 = self.now_ms();
        drop(guard);
        self.clock_ran_out();
        let (v, o) = r?;
        let failed_checks = v.checks.iter().filter(|c| !c.passed).map(|c| c.name.clone()).collect();
        {
            let mut st = lock(&self.state);
            if st.outcome == Outcome::Running {
                drop(st);
                self.add_window(incident::window(t0, t1, &v, &o.requests, o.counters));
                st = lock(&self.state);
            }
            st.events.push(Event::new(t1, EventKind::Submit { passed: v.passed, failed_checks }));
            if v.passed {
                self.end(&mut st, Outcome::Resolved);
            }
        }
        self.scan_commands();
        self.sync();
        Ok(v)
    }

    /// Whether solving now would abandon a running incident.
    pub fn solving_abandons(&self) -> bool {
        self.mode == Mode::Incident && self.outcome() == Outcome::Running
    }

    /// `drill solve`: recorded; a running incident ends abandoned.
    pub fn solve(&self, applied: bool) {
        let mut st = lock(&self.state);
        let t = self.now_ms();
        st.events.push(Event::new(t, EventKind::Solve { applied }));
        if self.mode == Mode::Incident {
            self.end(&mut st, Outcome::Abandoned);
        }
        drop(st);
        self.sync();
    }

    /// Before the drill's teardown: ends it as stopped (if still running), stops the
    /// evaluation and writes the final record.
    pub async fn close(&self) {
        self.running.store(false, Ordering::Relaxed);
        self.stop.send_replace(true);
        self.wake.notify_waiters();
        // Wait for the window in progress (its clients use the hosts).
        let _g = self.observing.lock().await;
        self.scan_commands();
        {
            let mut st = lock(&self.state);
            self.end(&mut st, Outcome::Stopped);
        }
        self.sync();
        // The final record is on disk before the drill's teardown (and a daemon's exit).
        if let Some(h) = self.history.clone() {
            let _ = tokio::task::spawn_blocking(move || h.flush()).await;
        }
    }

    /// What `drill status` shows of the timeline.
    pub fn info(&self) -> TimelineInfo {
        let rec = self.record();
        let f = &rec.figures;
        let s = |ms: Option<u64>| ms.map(|m| m as f64 / 1e3);
        let now = self.now_ms();
        let recent: Vec<String> = rec.events.iter().rev().filter(|e| !matches!(&e.kind, EventKind::Command(c) if c.service)).take(8).map(describe).collect::<Vec<_>>().into_iter().rev().collect();
        TimelineInfo {
            mode: self.mode,
            outcome: rec.outcome,
            paged_unix_ms: self.started_unix_ms,
            elapsed_secs: now as f64 / 1e3,
            time_limit_secs: s(self.time_limit_ms),
            remaining_secs: self.time_limit_ms.map(|l| l.saturating_sub(now) as f64 / 1e3),
            acked_secs: s(f.mtta_ms),
            mitigated_secs: s(f.mttm_ms),
            resolved_secs: s(f.mttr_ms),
            hints: f.hints,
            submits: f.submits,
            failed_submits: f.failed_submits,
            commands: rec.commands().count(),
            service_level_ok: rec.windows.last().map(|w| w.passed),
            windows: rec.windows.len(),
            last_window: rec.windows.last().map(|w| drill_core::api::WindowLevel {
                end_secs: w.end_ms as f64 / 1e3,
                secs: w.end_ms.saturating_sub(w.start_ms) as f64 / 1e3,
                passed: w.passed,
                requests: w.requests,
                failed_requests: w.failed_requests,
                slow_requests: w.slow_requests,
                latency_p50_ms: w.latency_p50_ms,
                latency_p95_ms: w.latency_p95_ms,
            }),
            score: rec.score.as_ref().map(|s| s.total),
            recent,
        }
    }
}

/// One line of an event, for `drill status`: the report's words for it, cut to a line.
pub fn describe(e: &Event) -> String {
    use drill_core::report::{event_host, event_text, kind_word, one_line};
    let host = event_host(e).map(|h| format!("{h}: ")).unwrap_or_default();
    let mut text = one_line(&event_text(e));
    if !matches!(e.kind, EventKind::Command(_)) {
        text = format!("{}: {text}", kind_word(e));
    }
    if text.chars().count() > 120 {
        text = text.chars().take(119).collect::<String>() + "…";
    }
    format!("{} {host}{text}", incident::clock(e.t_ms))
}
