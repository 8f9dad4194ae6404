//! What the engine keeps of one drill or incident: its timeline (every command run in its
//! hosts, the engine's own moves, the learner's hints, acks and submits, each flip of a
//! continuously evaluated check), the windows of those evaluations, its figures (MTTA,
//! MTTM, MTTR) and, for an incident, its score. One `DrillRecord` is what the history
//! stores, what `GET /v1/history/{id}` returns, and what `drill report` renders; its JSON
//! form is versioned (`SCHEMA_VERSION`, docs/report.md).
//!
//! Times are milliseconds since the drill's start (`started_unix_ms`): the page, for an
//! incident, is sent at the moment the drill is ready, so `t_ms` is also the time since
//! the page.

use serde::{Deserialize, Serialize};

/// Version of the record's JSON form. Bump it on any change a reader must know of.
pub const SCHEMA_VERSION: u32 = 1;

/// Bounds of a captured command line (the eBPF program's): at most this many bytes of
/// argv are read; a longer one is marked `argv_truncated`.
pub const ARGV_BYTES: usize = 1024;
/// At most this many argv entries are kept; more are marked `argv_truncated`.
pub const ARGV_ENTRIES: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// `drill start`: timeline, figures and report, no clock and no score.
    Drill,
    /// `drill incident`: paged, timed, scored.
    Incident,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Still running.
    Running,
    /// A passing submit ended it.
    Resolved,
    /// The clock ran out before a passing submit (incidents only).
    Unresolved,
    /// `drill solve` during a running incident.
    Abandoned,
    /// `drill stop` before any passing submit.
    Stopped,
    /// The daemon died while it ran (found on the next start).
    Aborted,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Resolved => "resolved",
            Outcome::Unresolved => "unresolved",
            Outcome::Abandoned => "abandoned",
            Outcome::Stopped => "stopped",
            Outcome::Aborted => "aborted",
        }
    }
    pub fn is_over(&self) -> bool {
        *self != Outcome::Running
    }
}

/// How a captured process ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "how", content = "value")]
pub enum Exit {
    /// exit(N)
    Code(i32),
    /// Killed by signal N.
    Signal(i32),
}

impl Exit {
    /// From a kernel wait status (`task->exit_code`).
    pub fn from_wait_status(status: u32) -> Exit {
        if status & 0x7f == 0 { Exit::Code(((status >> 8) & 0xff) as i32) } else { Exit::Signal((status & 0x7f) as i32) }
    }
    pub fn ok(&self) -> bool {
        *self == Exit::Code(0)
    }
}

/// One program started in a drill host, as the kernel saw its exec
/// (`sched:sched_process_exec`) and its exit (`sched:sched_process_exit`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub host: String,
    /// PID and parent PID in the machine's PID namespace.
    pub pid: u32,
    pub ppid: u32,
    /// PID as the host sees it (its own PID namespace).
    pub host_pid: u32,
    pub uid: u32,
    /// Working directory at exec, as the host sees it (its own root).
    pub cwd: String,
    /// The file the kernel executed.
    pub filename: String,
    pub argv: Vec<String>,
    /// argv was longer than the capture's bounds (`ARGV_BYTES`, `ARGV_ENTRIES`).
    pub argv_truncated: bool,
    /// `None` while it runs, or when its exit was not seen (it outlived the drill).
    pub exit: Option<Exit>,
    /// When it exited, ms since the drill's start.
    pub ended_ms: Option<u64>,
    /// Started by the host's init (a service the engine supervises), not by a person.
    pub service: bool,
}

impl Command {
    /// argv joined for display, with a marker when the capture cut it.
    pub fn line(&self) -> String {
        let mut s = self.argv.join(" ");
        if s.is_empty() {
            s = self.filename.clone();
        }
        if self.argv_truncated {
            s.push_str(" …[truncated]");
        }
        s
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum EventKind {
    /// The scenario's fault was applied (its note: mechanism and after-apply measurement).
    FaultInjected {
        fault: String,
        note: String,
    },
    /// The page went out (incidents).
    Paged {
        severity: String,
        alert: String,
    },
    Ack,
    Command(Command),
    /// A `svc` action inside a host.
    Svc {
        host: String,
        action: String,
        service: String,
    },
    Hint {
        index: usize,
        total: usize,
    },
    /// A submit and its verdict (the checks that failed, by name).
    Submit {
        passed: bool,
        failed_checks: Vec<String>,
    },
    /// A continuously evaluated check changed between failing and passing.
    CheckFlip {
        check: String,
        passed: bool,
        saw: String,
    },
    /// The service level recovered and stayed so (the start of the first window of the
    /// passing run): the moment that gives MTTM.
    Mitigated,
    /// Damage the engine itself saw (costs points in an incident).
    Collateral {
        what: String,
        host: String,
    },
    /// `drill solve` (the answer was shown; applied or not).
    Solve {
        applied: bool,
    },
    /// The clock ran out (incidents).
    TimeUp,
    Ended {
        outcome: Outcome,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// ms since the drill's start.
    pub t_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    pub fn new(t_ms: u64, kind: EventKind) -> Event {
        Event { t_ms, kind }
    }
}

/// One check in one window of the continuous evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowCheck {
    pub name: String,
    pub passed: bool,
    pub saw: String,
}

/// One window of the continuous evaluation: every check, the synthetic clients' requests
/// and the probe counters that moved in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub start_ms: u64,
    pub end_ms: u64,
    pub passed: bool,
    pub checks: Vec<WindowCheck>,
    /// Requests of the service-level checks' clients in the window.
    pub requests: u64,
    pub failed_requests: u64,
    /// Requests that succeeded slower than their check's latency bound.
    pub slow_requests: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    /// Probe counters that moved in the window, summed over the hosts
    /// (`drops:NETFILTER_DROP`, `retransmits`, `resets_sent`, ...).
    pub counters: std::collections::BTreeMap<String, u64>,
}

/// What the scenario says went wrong: revealed once the drill is over.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RootCause {
    pub summary: String,
    /// What the engine injected, by mechanism, as measured after apply.
    pub faults: Vec<String>,
    /// The reference fix.
    pub solution_steps: Vec<String>,
}

/// Times since the page, in ms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Time to acknowledge.
    pub mtta_ms: Option<u64>,
    /// Time to mitigate: when the service level recovered, as the probes and the
    /// synthetic clients saw it, independent of any submit.
    pub mttm_ms: Option<u64>,
    /// Time to resolve: the passing submit.
    pub mttr_ms: Option<u64>,
    /// How long the drill ran (until it ended, or until now).
    pub duration_ms: u64,
    pub hints: usize,
    pub submits: usize,
    pub failed_submits: usize,
    /// Requests of the continuous evaluation while the service level was failing.
    pub requests: u64,
    pub failed_requests: u64,
    pub slow_requests: u64,
    /// How long the continuous evaluation saw the service level failing, in ms.
    pub impact_ms: u64,
}

/// One line of a score: what it is for, the points it gives (negative: a deduction), and
/// how it was computed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScorePart {
    pub name: String,
    pub points: i64,
    pub max: i64,
    pub why: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The sum of the parts' points, floored at 0 (a `floor` part says so when it applies).
    pub total: i64,
    pub max: i64,
    pub parts: Vec<ScorePart>,
}

/// Everything kept of one drill or incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrillRecord {
    pub schema_version: u32,
    pub id: String,
    pub scenario: String,
    #[serde(default)]
    pub pack: String,
    pub title: String,
    pub severity: String,
    pub alert: String,
    pub owner_uid: u32,
    pub mode: Mode,
    /// The incident's clock (incidents only).
    pub time_limit_ms: Option<u64>,
    pub started_unix_ms: u64,
    pub ended_unix_ms: Option<u64>,
    pub outcome: Outcome,
    /// The hosts, in the scenario's order (the timeline's lanes).
    pub hosts: Vec<String>,
    pub events: Vec<Event>,
    pub windows: Vec<Window>,
    /// Filled once the drill is over (never shown while it runs).
    pub root_cause: Option<RootCause>,
    pub figures: Figures,
    /// Incidents only.
    pub score: Option<Score>,
}

impl DrillRecord {
    /// The commands of the timeline (not the services the engine started).
    pub fn commands(&self) -> impl Iterator<Item = (u64, &Command)> {
        self.events.iter().filter_map(|e| match &e.kind {
            EventKind::Command(c) if !c.service => Some((e.t_ms, c)),
            _ => None,
        })
    }

    /// Events sorted by time (stable: same-time events keep their order).
    pub fn sort_events(&mut self) {
        self.events.sort_by_key(|e| e.t_ms);
    }
}
