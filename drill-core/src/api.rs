//! The daemon's HTTP+JSON API over its Unix socket: paths and wire types.
//! Documented for humans in `docs/API.md`; `curl --unix-socket /run/drill/drilld.sock
//! http://drill/v1/drills` works.

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::verdict::Verdict;

/// API version prefix of every path.
pub const V1: &str = "/v1";
/// Default socket path of drilld.
pub const DEFAULT_SOCKET: &str = "/run/drill/drilld.sock";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSummary {
    pub id: String,
    pub title: String,
    pub summary: String,
    pub severity: String,
    /// The pack holding it (`core` for the built-in pack); start it as `PACK/ID`.
    #[serde(default)]
    pub pack: String,
}

impl ScenarioSummary {
    /// How `drill list` and `drill start` name it: `ID` in the built-in pack, else `PACK/ID`.
    pub fn name(&self) -> String {
        scenario_name(&self.pack, &self.id)
    }
}

/// How `drill start` names scenario `id` of `pack`: `ID` in the built-in pack, else `PACK/ID`.
pub fn scenario_name(pack: &str, id: &str) -> String {
    if pack.is_empty() || pack == crate::builtin::NAME { id.to_string() } else { format!("{pack}/{id}") }
}

impl From<&crate::catalog::Entry> for ScenarioSummary {
    fn from(e: &crate::catalog::Entry) -> Self {
        let s = &e.scenario;
        ScenarioSummary { id: s.id.clone(), title: s.title.clone(), summary: s.summary.clone(), severity: s.severity.clone(), pack: e.pack.clone() }
    }
}

/// A scenario file sent by the client (instructor files, not installed). Only a root
/// client may start one: packs are trusted code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSource {
    pub file: String,
    pub text: String,
    /// The pack directory the scenario's `[[files]]` are read from (absolute); the
    /// daemon reads them itself, inside that directory only.
    #[serde(default)]
    pub pack_dir: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StartRequest {
    /// `ID` or `PACK/ID` of an installed scenario (the built-in pack first); ignored when
    /// `source` is given.
    #[serde(default)]
    pub scenario: String,
    #[serde(default)]
    pub source: Option<ScenarioSource>,
    #[serde(default)]
    pub dry_run: bool,
    /// Start the topology and services without the faults (`drill pack test`'s baseline).
    #[serde(default)]
    pub without_faults: bool,
    /// Start it as a timed incident (`drill incident`): paged, clocked, scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentRequest>,
    /// Keep no timeline, no continuous evaluation and no history of it (`drill pack
    /// test`'s drills: a self-test is not something a learner did).
    #[serde(default)]
    pub ephemeral: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentRequest {
    /// The clock; default the scenario's `time_limit_minutes`, else 30 minutes.
    #[serde(default)]
    pub time_limit_secs: Option<u64>,
}

/// What the timeline has recorded of a running drill (`drill status`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineInfo {
    pub mode: crate::record::Mode,
    pub outcome: crate::record::Outcome,
    /// When the drill was ready (the page, for an incident).
    pub paged_unix_ms: u64,
    pub elapsed_secs: f64,
    pub time_limit_secs: Option<f64>,
    /// Left on the clock (0 once it ran out).
    pub remaining_secs: Option<f64>,
    pub acked_secs: Option<f64>,
    pub mitigated_secs: Option<f64>,
    pub resolved_secs: Option<f64>,
    pub hints: usize,
    pub submits: usize,
    pub failed_submits: usize,
    pub commands: usize,
    /// The service level in the last window of the continuous evaluation.
    pub service_level_ok: Option<bool>,
    pub windows: usize,
    /// The service-level clients' figures of that window (`drill watch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_window: Option<WindowLevel>,
    /// The score so far (incidents; final once the outcome is not `running`).
    pub score: Option<i64>,
    /// The last events, oldest first, as one line each.
    pub recent: Vec<String>,
}

/// The service level of one window of the continuous evaluation: what its synthetic
/// clients saw (no check names: a running incident does not tell its checks).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowLevel {
    /// Seconds since the page at the window's end.
    pub end_secs: f64,
    pub secs: f64,
    pub passed: bool,
    pub requests: u64,
    pub failed_requests: u64,
    /// Successful but slower than their check's latency bound.
    pub slow_requests: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AckResponse {
    /// Seconds from the page to the (first) acknowledgement.
    pub acked_secs: f64,
    /// It had been acknowledged before.
    pub already: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartResponse {
    pub plan: Plan,
    /// `None` for a dry run.
    pub drill: Option<DrillInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrillInfo {
    pub id: String,
    pub scenario: String,
    pub title: String,
    pub severity: String,
    pub alert: String,
    pub briefing: String,
    pub hints: usize,
    pub started_unix: u64,
    pub elapsed_secs: f64,
    pub hosts: Vec<HostInfo>,
    pub services: Vec<ServiceInfo>,
    /// The pack the scenario came from (`core`; empty for a file sent by the client).
    #[serde(default)]
    pub pack: String,
    /// The uid of the client that started it (the socket peer's, SO_PEERCRED): the
    /// drill's owner.
    #[serde(default)]
    pub owner_uid: u32,
    /// `SUDO_UID` of that client as it said it, for display only (never trusted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo_uid: Option<u32>,
    /// What the timeline recorded (absent for an ephemeral drill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<TimelineInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    pub name: String,
    /// Usable with `ip netns exec` / `ip -n`.
    pub netns: String,
    /// PID (in the root PID namespace) of the host's init; its /proc/PID/ns/* are the host.
    pub pid: i32,
    pub addresses: Vec<String>,
    /// Its interfaces and what each leads to (the map of `drill watch`).
    #[serde(default)]
    pub interfaces: Vec<InterfaceInfo>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InterfaceInfo {
    pub name: String,
    /// CIDRs, e.g. `10.77.0.1/24`.
    pub addresses: Vec<String>,
    /// The host at the other end of a link, or the switch it is plugged into.
    pub peer: String,
    /// `veth` (a link), `vxlan` (a tunnel link) or `switch` (a switch port).
    pub link: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub host: String,
    pub name: String,
    pub kind: String,
    /// "running", "exited (status N)", "stopped", "unknown"
    pub state: String,
    pub pid: Option<i32>,
    pub restarts: u32,
    pub config_path: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecRequest {
    pub host: String,
    /// Run by `/bin/sh -c` inside all of the host's namespaces.
    pub command: String,
    #[serde(default = "default_exec_timeout")]
    pub timeout_secs: u64,
}

fn default_exec_timeout() -> u64 {
    30
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecResponse {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SolveRequest {
    #[serde(default)]
    pub apply: bool,
    /// Needed to solve a running incident: it ends it as abandoned.
    #[serde(default)]
    pub abandon: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SolveStep {
    pub host: String,
    pub run: String,
    /// Set when the step was applied.
    pub result: Option<ExecResponse>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SolveResponse {
    pub summary: String,
    pub steps: Vec<SolveStep>,
    /// The faults the engine injected: what, by which mechanism, and how it was
    /// measured at start.
    #[serde(default)]
    pub faults: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubmitResponse {
    pub verdict: Verdict,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HintResponse {
    pub index: usize,
    pub total: usize,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StopResponse {
    pub stopped: Vec<String>,
    /// Teardown problems (teardown keeps going after each).
    pub errors: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    /// Stable code of the error's kind (docs/API.md, "Errors"): clients branch on it,
    /// never on the text.
    #[serde(default)]
    pub code: String,
    /// The object the error is about: drill, host, interface, or file:line:column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub version: String,
    pub pid: u32,
    pub probes: Vec<ProbeStatus>,
    pub drills: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeStatus {
    pub name: String,
    pub loaded: bool,
    /// Why it could not load, when it could not.
    pub error: Option<String>,
}

/// Live counters of a drill (`GET /v1/drills/{id}/counters`, `drill watch`): totals
/// since the drill started, as the probes saw them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DrillCounters {
    pub id: String,
    pub elapsed_secs: f64,
    pub hosts: Vec<HostCounters>,
    /// One synthetic request per service-level check, made for this view.
    #[serde(default)]
    pub requests: Vec<RequestSample>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestSample {
    pub from: String,
    pub target: String,
    pub ok: bool,
    pub latency_ms: f64,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostCounters {
    pub host: String,
    /// Drops by kernel drop reason (e.g. NETFILTER_DROP, NO_SOCKET).
    pub drops: std::collections::BTreeMap<String, u64>,
    pub retransmits: u64,
    pub resets_sent: u64,
    pub resets_received: u64,
    pub oom_kills: u64,
    /// System calls that returned ENOSPC (a full disk).
    #[serde(default)]
    pub enospc: u64,
    pub execs: u64,
    /// Sockets in CLOSE_WAIT now (hosts with a CLOSE_WAIT check only).
    pub close_wait: u64,
    /// Smoothed RTT by local port: (samples, mean ms, max ms).
    pub srtt_ms: std::collections::BTreeMap<u16, (u64, f64, f64)>,
    /// The last processes started in the host, newest first.
    pub recent_execs: Vec<ExecInfo>,
}

/// A process started in a drill host (sched:sched_process_exec).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecInfo {
    pub comm: String,
    /// PIDs in the machine's PID namespace.
    pub pid: u32,
    pub ppid: u32,
    pub argv: String,
    /// Seconds since the drill started (negative: before it was ready).
    pub at_secs: f64,
}

/// Retunes an eBPF fault of a running drill (an instructor's or a simulation's move).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneRequest {
    /// New drop probability in percent; 0 pauses the fault.
    pub percent: f64,
}

/// The fault's counters after the change (summed over CPUs, since it was attached).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneResponse {
    pub percent: f64,
    pub seen: u64,
    pub matched: u64,
    pub dropped: u64,
}

/// One row of `drill history` (`GET /v1/history`): a past or running drill or incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub id: String,
    pub scenario: String,
    #[serde(default)]
    pub pack: String,
    pub title: String,
    pub mode: crate::record::Mode,
    pub outcome: crate::record::Outcome,
    pub owner_uid: u32,
    pub started_unix_ms: u64,
    pub ended_unix_ms: Option<u64>,
    pub duration_ms: u64,
    /// Incidents only.
    pub score: Option<i64>,
    pub mtta_ms: Option<u64>,
    pub mttm_ms: Option<u64>,
    pub mttr_ms: Option<u64>,
}

impl HistoryEntry {
    /// Its scenario as `drill start` names it: `ID` in the built-in pack, else `PACK/ID`.
    pub fn scenario_name(&self) -> String {
        scenario_name(&self.pack, &self.scenario)
    }
}

impl From<&crate::record::DrillRecord> for HistoryEntry {
    fn from(r: &crate::record::DrillRecord) -> Self {
        HistoryEntry {
            id: r.id.clone(),
            scenario: r.scenario.clone(),
            pack: r.pack.clone(),
            title: r.title.clone(),
            mode: r.mode,
            outcome: r.outcome,
            owner_uid: r.owner_uid,
            started_unix_ms: r.started_unix_ms,
            ended_unix_ms: r.ended_unix_ms,
            duration_ms: r.figures.duration_ms,
            score: r.score.as_ref().map(|s| s.total),
            mtta_ms: r.figures.mtta_ms,
            mttm_ms: r.figures.mttm_ms,
            mttr_ms: r.figures.mttr_ms,
        }
    }
}
