//! The daemon: the registry of running drills and the HTTP+JSON API on the Unix
//! socket (see docs/API.md).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use drill_core::api::*;
use drill_core::plan;
use drill_core::scenario::{self, Scenario};
use tokio::sync::Mutex;
use tracing::{Instrument, info, info_span, warn};

use crate::api_guard::ApiJson;
use crate::drill::{Drill, Env, Origin};
use crate::error::DrillError;
use crate::journal;
use crate::kernel::linux::LinuxKernel;
use crate::peer::Peer;
use crate::session::Session;
use drill_core::record::{DrillRecord, Mode};

pub struct Daemon {
    pub state: PathBuf,
    pub exe: PathBuf,
    /// The machine, as drills see it (probes, namespaces, hosts, faults).
    pub kernel: Arc<LinuxKernel>,
    pub drills: Mutex<BTreeMap<String, Arc<Drill>>>,
    /// Serialises starts so ids and names are never raced.
    pub starting: Mutex<()>,
    /// Exit once the last drill is stopped (set when `drill start` launched us).
    pub exit_when_idle: bool,
    pub idle: tokio::sync::Notify,
    /// The timeline of each running drill that keeps one (all but `ephemeral` starts).
    pub sessions: Mutex<BTreeMap<String, Arc<Session>>>,
    /// Where drills are kept once over; `None` when it could not be opened (said at start).
    pub history: Option<Arc<crate::history::Writer>>,
    /// What drills may take of the machine.
    pub limits: Limits,
}

/// The machine-wide caps on what drills take (docs/security.md, "Resource limits"). Each
/// host is also held to its own cgroup (memory, CPU, pids) and disk size.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Drills running at once.
    pub max_drills: usize,
    /// The sum of the running hosts' memory limits (cgroup memory.max; a host's disk is
    /// a tmpfs charged to it, so it is inside that figure).
    pub memory_budget: u64,
}

impl Limits {
    pub const DEFAULT_MAX_DRILLS: usize = 24;

    /// `DRILL_MAX_DRILLS` and `DRILL_MEMORY_BUDGET` (a size: `8G`, `512M`), else 24 drills
    /// and three quarters of the machine's memory.
    pub fn from_env() -> anyhow::Result<Limits> {
        let max_drills = match std::env::var("DRILL_MAX_DRILLS") {
            Ok(v) => v.trim().parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| anyhow!("DRILL_MAX_DRILLS={v:?} is not a count of drills (give 1 or more)"))?,
            Err(_) => Self::DEFAULT_MAX_DRILLS,
        };
        let memory_budget = match std::env::var("DRILL_MEMORY_BUDGET") {
            Ok(v) => parse_size(&v).filter(|b| *b >= 16 << 20).ok_or_else(|| anyhow!("DRILL_MEMORY_BUDGET={v:?} is not a size of at least 16M (write it like 8G or 512M)"))?,
            Err(_) => mem_total().map(|t| t / 4 * 3).unwrap_or(4 << 30),
        };
        Ok(Limits { max_drills, memory_budget })
    }

    /// Whether a drill of `plan` may start beside `running`; the error says which cap and
    /// the figures.
    pub fn admit<'a>(&self, running: impl Iterator<Item = &'a plan::Plan>, plan: &plan::Plan) -> Result<(), DrillError> {
        let (mut drills, mut committed) = (0usize, 0u64);
        for p in running {
            drills += 1;
            committed += plan_memory(p);
        }
        if drills >= self.max_drills {
            return Err(DrillError::OverLimit { what: "drills".into(), figure: format!("{drills} drills are running, the most this daemon allows (DRILL_MAX_DRILLS={})", self.max_drills) });
        }
        let asked = plan_memory(plan);
        if committed + asked > self.memory_budget {
            return Err(DrillError::OverLimit {
                what: "memory".into(),
                figure: format!(
                    "drill {} asks {} MiB for its {} hosts, and the running drills' hosts hold {} MiB of the {} MiB budget (DRILL_MEMORY_BUDGET)",
                    plan.drill_id,
                    asked >> 20,
                    plan.hosts.len(),
                    committed >> 20,
                    self.memory_budget >> 20
                ),
            });
        }
        Ok(())
    }
}

/// The memory a drill's hosts may hold together (their cgroups' memory.max).
fn plan_memory(p: &plan::Plan) -> u64 {
    let default = crate::host::Isolation::default().limits.memory_bytes;
    p.hosts.iter().map(|h| h.limits.memory_bytes.unwrap_or(default)).sum()
}

/// `512M`, `8G`, `1048576`: bytes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, shift) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 10),
        (i, 'M' | 'm') => (&s[..i], 20),
        (i, 'G' | 'g') => (&s[..i], 30),
        _ => (s, 0),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(1 << shift)
}

fn mem_total() -> Option<u64> {
    let m = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = m.lines().find_map(|l| l.strip_prefix("MemTotal:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb << 10)
}

/// An error as the API answers it: the kind's HTTP status and an [`ErrorBody`] with
/// its stable code, the object it is about and what to do (docs/API.md, "Errors").
#[derive(Debug)]
pub struct ApiError(pub DrillError);

impl ApiError {
    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: self.0.to_string(), code: self.0.code().to_string(), about: self.0.about(), hint: self.0.hint().map(String::from) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

impl From<DrillError> for ApiError {
    fn from(e: DrillError) -> Self {
        ApiError(e)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError(DrillError::Internal(e))
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(DrillError::BadRequest(msg.into()))
}

type Api<T> = Result<Json<T>, ApiError>;

/// A scenario to start, with the pack it came from.
pub struct Resolved {
    pub scenario: Scenario,
    /// The pack's name (empty for a file sent by the client).
    pub pack: String,
    /// Where its `[[files]]` are read from.
    pub pack_dir: Option<PathBuf>,
}

/// The scenario `req` names: a file sent by a root client, or `ID` / `PACK/ID` in the
/// built-in pack and the installed ones (read afresh: an edit shows at the next start).
pub fn resolve_scenario(req: &StartRequest, peer: &Peer) -> Result<Resolved, ApiError> {
    if let Some(src) = &req.source {
        if !peer.is_root() {
            return Err(ApiError(DrillError::SourceForbidden { uid: peer.uid }));
        }
        let scenario = scenario::parse(&src.file, &src.text).map_err(|e| ApiError(DrillError::InvalidScenario(e)))?;
        return Ok(Resolved { scenario, pack: String::new(), pack_dir: src.pack_dir.as_ref().map(PathBuf::from) });
    }
    let catalog = drill_core::catalog::load();
    for p in &catalog.problems {
        warn!("scenario catalog: {p}");
    }
    match catalog.find(&req.scenario) {
        Ok(e) => Ok(Resolved { scenario: e.scenario.clone(), pack: e.pack.clone(), pack_dir: Some(e.dir.clone()) }),
        Err(drill_core::catalog::FindError::NotFound { id, known }) => {
            // A pack that did not load may be the one meant: say so.
            let skipped = if catalog.problems.is_empty() { String::new() } else { format!("; not loaded: {}", catalog.problems.join("; ")) };
            Err(ApiError(DrillError::ScenarioNotFound { id, known: format!("{}{skipped}", known.join(", ")) }))
        }
        Err(drill_core::catalog::FindError::Ambiguous { id, choices }) => Err(ApiError(DrillError::AmbiguousScenario { id, choices: choices.join(", ") })),
    }
}

/// The contents of the plan's files, read by the daemon from the pack directory (inside
/// it only); the plan records each file's size.
fn read_files(plan: &mut plan::Plan, pack_dir: Option<&std::path::Path>) -> Result<Vec<Vec<u8>>, ApiError> {
    if plan.files.is_empty() {
        return Ok(Vec::new());
    }
    let dir = pack_dir.ok_or_else(|| bad("the scenario places [[files]] but names no pack directory to read them from; start it from its pack (ScenarioSource.pack_dir)"))?;
    plan::files::read(&mut plan.files, dir).map_err(bad)
}

impl Daemon {
    /// A fresh drill id, and the lowest address block no running drill uses.
    async fn new_id(&self) -> Result<(String, u8), ApiError> {
        let drills = self.drills.lock().await;
        let used: Vec<u8> = drills.values().map(|d| d.plan.slot).collect();
        let slots = drill_core::topo::POOL.1 - drill_core::topo::POOL.0 + 1;
        let slot = (0..slots)
            .find(|s| !used.contains(s))
            .ok_or_else(|| ApiError(DrillError::Busy(format!("{} drills are running, the most drill can give distinct address blocks to; stop one first", drills.len()))))?;
        loop {
            let id = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
            let clash = drills.contains_key(&id)
                || self.history.as_ref().is_some_and(|h| h.history.contains(&id))
                || journal::drill_dir(&self.state, &id).exists()
                || !crate::kernel::linux::netns::list_with_prefix(&plan::netns_name(&id, "")).is_empty();
            if !clash {
                return Ok((id, slot));
            }
        }
    }

    async fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.lock().await.get(id).cloned()
    }

    /// A drill's info with its timeline; a running incident does not name its scenario.
    async fn info(&self, drill: &Arc<Drill>) -> DrillInfo {
        let mut info = drill.info().await;
        if let Some(s) = self.session(&drill.id).await {
            let t = s.info();
            if t.mode == Mode::Incident && !t.outcome.is_over() {
                info.scenario = String::new();
                info.title = "(named once the incident is over)".into();
            }
            info.timeline = Some(t);
        }
        info
    }

    /// The running drill `id` as `peer` may see it: root sees every drill, anyone else
    /// only their own (another uid's drill answers as if it did not exist).
    pub(crate) async fn get(&self, id: &str, peer: &Peer) -> Result<Arc<Drill>, ApiError> {
        if !plan::is_drill_id(id) {
            return Err(bad(format!("`{id}` is not a drill id (drill ids are 6 hex digits, e.g. 3fa2c1); `drill status` lists the running drills")));
        }
        let drills = self.drills.lock().await;
        drills.get(id).filter(|d| peer.may_see(d.origin.owner_uid)).cloned().ok_or_else(|| not_running(id, &drills, peer))
    }

    /// Stops drill `id` if `peer` may see it.
    pub async fn stop_as(&self, id: &str, peer: &Peer) -> Result<Vec<String>, ApiError> {
        self.get(id, peer).await?;
        self.stop(id).await
    }

    pub async fn stop(&self, id: &str) -> Result<Vec<String>, ApiError> {
        let d = {
            let mut drills = self.drills.lock().await;
            let found = drills.remove(id);
            found.ok_or_else(|| not_running(id, &drills, &Peer::ROOT))?
        };
        let session = self.sessions.lock().await.remove(id);
        if let Some(s) = session {
            s.close().await;
        }
        let errs = tokio::task::spawn_blocking(move || d.teardown()).await.map_err(|e| anyhow!(e))?;
        let errs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        if self.drills.lock().await.is_empty() {
            self.idle.notify_one();
        }
        Ok(errs)
    }

    /// Stops every drill (daemon shutdown).
    pub async fn stop_all(&self) -> Vec<String> {
        let ids: Vec<String> = self.drills.lock().await.keys().cloned().collect();
        let mut errs = Vec::new();
        for id in ids {
            match self.stop(&id).await {
                Ok(e) => errs.extend(e),
                Err(ApiError(e)) => errs.push(e.to_string()),
            }
        }
        errs
    }
}

async fn info_h(State(d): State<Arc<Daemon>>) -> Api<DaemonInfo> {
    let probes = crate::kernel::Kernel::probes(d.kernel.as_ref())?.status.clone();
    Ok(Json(DaemonInfo { version: env!("CARGO_PKG_VERSION").into(), pid: std::process::id(), probes, drills: d.drills.lock().await.len() }))
}

async fn scenarios_h() -> Api<Vec<ScenarioSummary>> {
    let catalog = drill_core::catalog::load();
    for p in &catalog.problems {
        warn!("scenario catalog: {p}");
    }
    Ok(Json(catalog.entries.iter().map(ScenarioSummary::from).collect()))
}

async fn start_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, ApiJson(req): ApiJson<StartRequest>) -> Api<StartResponse> {
    let Resolved { scenario, pack, pack_dir } = resolve_scenario(&req, &peer)?;
    let scenario = if req.without_faults { scenario.without_faults() } else { scenario };
    let _serial = d.starting.lock().await;
    let (id, slot) = d.new_id().await?;
    let mut plan = plan::compile(&scenario, &id, slot, crate::kernel::Kernel::backends(d.kernel.as_ref())).map_err(|e| ApiError(DrillError::Unmeasurable(e)))?;
    let files = read_files(&mut plan, pack_dir.as_deref())?;
    if req.dry_run {
        return Ok(Json(StartResponse { plan, drill: None }));
    }
    {
        let drills = d.drills.lock().await;
        d.limits.admit(drills.values().map(|x| &x.plan), &plan)?;
    }
    let span = info_span!("drill", id = %id, scenario = %scenario.id, owner = peer.uid);
    let env = Env { state: &d.state, exe: &d.exe, kernel: &d.kernel };
    let origin = Origin { pack, owner_uid: peer.uid, sudo_uid: peer.sudo_uid(), files, pack_dir };
    let drill = Drill::start(&env, scenario, plan.clone(), origin).instrument(span).await.map_err(ApiError);
    let drill = match drill {
        Ok(x) => x,
        Err(e) => {
            if d.drills.lock().await.is_empty() {
                d.idle.notify_one();
            }
            return Err(e);
        }
    };
    let drill = Arc::new(drill);
    if !req.ephemeral {
        let mode = if req.incident.is_some() { Mode::Incident } else { Mode::Drill };
        let limit = req.incident.as_ref().and_then(|i| i.time_limit_secs).map(Duration::from_secs);
        let s = Session::begin(drill.clone(), mode, limit, d.history.clone());
        d.sessions.lock().await.insert(id.clone(), s);
    }
    d.drills.lock().await.insert(id.clone(), drill.clone());
    let info = d.info(&drill).await;
    if req.incident.is_some() {
        // The page names no cause: the plan's faults, probes and checks would.
        plan.faults.clear();
        plan.probes.clear();
        plan.checks.clear();
    }
    Ok(Json(StartResponse { plan, drill: Some(info) }))
}

/// The running drills `peer` may see (root: all; anyone else: their own).
async fn list_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>) -> Api<Vec<DrillInfo>> {
    let drills: Vec<Arc<Drill>> = d.drills.lock().await.values().filter(|x| peer.may_see(x.origin.owner_uid)).cloned().collect();
    let mut v = Vec::new();
    for x in drills {
        v.push(d.info(&x).await);
    }
    Ok(Json(v))
}

async fn status_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>) -> Api<DrillInfo> {
    let drill = d.get(&id, &peer).await?;
    Ok(Json(d.info(&drill).await))
}

async fn stop_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>) -> Api<StopResponse> {
    let errors = d.stop_as(&id, &peer).await?;
    Ok(Json(StopResponse { stopped: vec![id], errors }))
}

async fn submit_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>) -> Api<SubmitResponse> {
    let drill = d.get(&id, &peer).await?;
    let verdict = match d.session(&id).await {
        Some(s) => {
            let mut v = s.submit().instrument(info_span!("submit", id = %id)).await?;
            if s.mode == Mode::Incident && !s.outcome().is_over() {
                // A running incident is not named.
                v.scenario = String::new();
            }
            v
        }
        None => drill.verify().instrument(info_span!("submit", id = %id)).await?,
    };
    info!(drill = %id, passed = verdict.passed, "verdict");
    Ok(Json(SubmitResponse { verdict }))
}

async fn exec_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>, ApiJson(req): ApiJson<ExecRequest>) -> Api<ExecResponse> {
    let drill = d.get(&id, &peer).await?;
    drill.host(&req.host)?;
    Ok(Json(drill.exec(&req.host, &req.command, Duration::from_secs(req.timeout_secs)).await?))
}

async fn solve_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>, ApiJson(req): ApiJson<SolveRequest>) -> Api<SolveResponse> {
    let drill = d.get(&id, &peer).await?;
    let session = d.session(&id).await;
    if let Some(s) = &session {
        if s.solving_abandons() && !req.abandon {
            return Err(ApiError(DrillError::IncidentRunning { drill: id }));
        }
        s.solve(req.apply);
    }
    let sol = &drill.scenario.solution;
    let mut steps = Vec::new();
    for s in &sol.steps {
        // Applying stops at the first step that fails; its output says why.
        let result = if req.apply { Some(drill.exec(&s.host, &s.run, Duration::from_secs(60)).await?) } else { None };
        let failed = result.as_ref().is_some_and(|r| r.exit_code != 0);
        steps.push(SolveStep { host: s.host.clone(), run: s.run.clone(), result });
        if failed {
            break;
        }
    }
    Ok(Json(SolveResponse { summary: sol.summary.clone(), steps, faults: drill.fault_notes() }))
}

async fn counters_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>) -> Api<DrillCounters> {
    let drill = d.get(&id, &peer).await?;
    let d2 = drill.clone();
    let mut counters = tokio::task::spawn_blocking(move || d2.counters()).await.map_err(|e| anyhow!(e))?;
    counters.requests = drill.sample_requests().await;
    Ok(Json(counters))
}

async fn hint_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>) -> Api<HintResponse> {
    let (index, total, text) = d.get(&id, &peer).await?.next_hint();
    if let Some(s) = d.session(&id).await {
        s.hint(index, total);
    }
    Ok(Json(HintResponse { index, total, text }))
}

async fn tune_h(
    State(d): State<Arc<Daemon>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    UrlPath((id, n)): UrlPath<(String, usize)>,
    ApiJson(req): ApiJson<drill_core::api::TuneRequest>,
) -> Api<drill_core::api::TuneResponse> {
    let drill = d.get(&id, &peer).await?;
    if !(0.0..=100.0).contains(&req.percent) {
        return Err(bad(format!("percent {} is impossible: give 0 (pause) to 100", req.percent)));
    }
    let c = drill.retune_ebpf(n, req.percent / 100.0)?;
    Ok(Json(drill_core::api::TuneResponse { percent: req.percent, seen: c.seen, matched: c.matched, dropped: c.dropped }))
}

async fn ack_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>) -> Api<AckResponse> {
    d.get(&id, &peer).await?;
    let s = d.session(&id).await.filter(|s| s.mode == Mode::Incident).ok_or_else(|| ApiError(DrillError::NotIncident { drill: id.clone() }))?;
    let (acked_secs, already) = s.ack();
    Ok(Json(AckResponse { acked_secs, already }))
}

/// The record of a drill: the live one while it runs, else the history's. A peer that is
/// not root sees only its own drills.
async fn record_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>) -> Api<DrillRecord> {
    if !plan::is_drill_id(&id) {
        return Err(bad(format!("`{id}` is not a drill id (drill ids are 6 hex digits, e.g. 3fa2c1); `drill history` lists them")));
    }
    let live = d.session(&id).await.map(|s| s.record());
    let rec = match live {
        Some(r) => Some(r),
        None => match &d.history {
            Some(h) => {
                let h = h.history.clone();
                let id2 = id.clone();
                tokio::task::spawn_blocking(move || h.get(&id2)).await.map_err(|e| anyhow!(e))??
            }
            None => None,
        },
    };
    match rec {
        Some(r) if peer.is_root() || r.owner_uid == peer.uid => Ok(Json(r)),
        _ => Err(ApiError(DrillError::RecordNotFound { id, mine_only: !peer.is_root() })),
    }
}

#[derive(serde::Deserialize)]
struct HistoryQuery {
    #[serde(default = "default_history_limit")]
    limit: usize,
}

fn default_history_limit() -> usize {
    200
}

/// The history, newest first (running drills included); a peer that is not root sees
/// only its own.
async fn history_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, axum::extract::Query(q): axum::extract::Query<HistoryQuery>) -> Api<Vec<HistoryEntry>> {
    let Some(h) = d.history.as_ref().map(|w| w.history.clone()) else {
        return Err(ApiError(DrillError::Internal(anyhow!("the history could not be opened when drilld started (see its log)"))));
    };
    let owner = (!peer.is_root()).then_some(peer.uid);
    let mut list = tokio::task::spawn_blocking(move || h.list(owner, q.limit.min(10_000))).await.map_err(|e| anyhow!(e))??;
    // The live figures of running drills (the rows hold the last sync's).
    for s in d.sessions.lock().await.values() {
        if let Some(row) = list.iter_mut().find(|r| r.id == s.drill.id) {
            *row = HistoryEntry::from(&s.record());
        }
    }
    Ok(Json(list))
}

/// Stops every drill and removes the leftovers of earlier runs: root's alone, since it
/// acts on every user's drills (`drill stop --all` stops one's own).
async fn reset_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>) -> Api<StopResponse> {
    if !peer.is_root() {
        return Err(ApiError(DrillError::RootOnly { what: "drill reset".into(), uid: peer.uid }));
    }
    let stopped: Vec<String> = d.drills.lock().await.keys().cloned().collect();
    let mut errors = d.stop_all().await;
    let (_, e) = journal::recover(&d.state);
    errors.extend(e);
    Ok(Json(StopResponse { stopped, errors }))
}

pub fn router(d: Arc<Daemon>) -> Router {
    let r = Router::new()
        .route("/v1/info", get(info_h))
        .route("/v1/scenarios", get(scenarios_h))
        .route("/v1/drills", get(list_h).post(start_h))
        .route("/v1/drills/{id}", get(status_h).delete(stop_h))
        .route("/v1/drills/{id}/submit", post(submit_h))
        .route("/v1/drills/{id}/exec", post(exec_h))
        .route("/v1/drills/{id}/hosts/{host}/shell", get(crate::relay::handler))
        .route("/v1/drills/{id}/solve", post(solve_h))
        .route("/v1/drills/{id}/hint", post(hint_h))
        .route("/v1/drills/{id}/counters", get(counters_h))
        .route("/v1/drills/{id}/faults/ebpf/{n}", post(tune_h))
        .route("/v1/drills/{id}/ack", post(ack_h))
        .route("/v1/drills/{id}/record", get(record_h))
        .route("/v1/history", get(history_h))
        .route("/v1/history/{id}", get(record_h))
        .route("/v1/reset", post(reset_h))
        .route("/v1/doctor", get(crate::doctor::handler));
    // A request that panics, for the test that proves the daemon serves on after one;
    // only in a daemon started with DRILLD_TEST_HOOKS=1.
    let r = if std::env::var_os("DRILLD_TEST_HOOKS").is_some_and(|v| v == "1") { r.route("/v1/test/panic", post(panic_h)) } else { r };
    r.with_state(d).layer(axum::extract::DefaultBodyLimit::max(crate::api_guard::MAX_BODY)).layer(tower_http::catch_panic::CatchPanicLayer::custom(crate::api_guard::panic_response))
}

async fn panic_h() -> Api<()> {
    panic!("a request that panics (DRILLD_TEST_HOOKS)")
}

/// The error for a drill id no running drill has, naming the ones that run.
/// (Only those `peer` may see.)
fn not_running(id: &str, drills: &BTreeMap<String, Arc<Drill>>, peer: &Peer) -> ApiError {
    let visible: Vec<&str> = drills.iter().filter(|(_, d)| peer.may_see(d.origin.owner_uid)).map(|(k, _)| k.as_str()).collect();
    let running = if visible.is_empty() {
        let yours = if peer.is_root() { "" } else { " of yours" };
        format!("no drills{yours} are running; start one with `drill start SCENARIO`")
    } else {
        format!("running: {}", visible.join(", "))
    };
    ApiError(DrillError::DrillNotFound { id: id.to_string(), running })
}

/// The API socket drilld serves on: bound by drilld itself (it creates the file, with its
/// owner and mode, and removes it at exit) or passed in by systemd's socket activation
/// (the socket unit owns the file, its mode and group: drilld leaves the file alone).
pub struct ApiSocket {
    pub listener: tokio::net::UnixListener,
    pub path: PathBuf,
    /// drilld made the file (and removes it when it exits).
    pub owned: bool,
}

/// Creates the socket: root-owned, 0660 with group `drill` when it exists, else 0600.
pub fn bind_socket(path: &std::path::Path) -> anyhow::Result<ApiSocket> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("another drilld is already serving {}; stop it first (or use --socket)", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    // Bound under a temporary name, given its owner and mode, then renamed into place:
    // at the final path the socket never has the umask's mode, not even for an instant
    // (measured: a client connecting right after the bind saw 0755).
    let tmp = path.with_file_name(format!(".{}.{}", path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let l = std::os::unix::net::UnixListener::bind(&tmp).with_context(|| format!("binding {}", tmp.display()))?;
    let group = nix::unistd::Group::from_name("drill").ok().flatten();
    let mode = if let Some(g) = &group {
        nix::unistd::chown(&tmp, Some(nix::unistd::Uid::from_raw(0)), Some(g.gid)).with_context(|| format!("chown {}", tmp.display()))?;
        0o660
    } else {
        0o600
    };
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    l.set_nonblocking(true).context("making the API socket non-blocking")?;
    let l = tokio::net::UnixListener::from_std(l).context("registering the API socket")?;
    info!(socket = %path.display(), mode = format!("{mode:o}"), group = group.as_ref().map(|g| g.name.as_str()).unwrap_or("-"), "listening");
    Ok(ApiSocket { listener: l, path: path.to_path_buf(), owned: true })
}

/// Serves on a listening Unix stream socket passed in by the service manager (socket
/// activation, fd 3 of `LISTEN_FDS`); refuses any other kind of descriptor. `configured`
/// is the `--socket` path, only for a warning when the passed socket is elsewhere.
pub fn adopt_socket(fd: std::os::fd::OwnedFd, configured: &std::path::Path) -> anyhow::Result<ApiSocket> {
    use nix::sys::socket::{SockType, UnixAddr, getsockname, getsockopt, sockopt};
    use std::os::fd::AsRawFd;
    let raw = fd.as_raw_fd();
    let what = format!("the socket passed in by the service manager (fd {raw}, LISTEN_FDS)");
    let addr: UnixAddr = getsockname(raw).with_context(|| format!("{what} is not a Unix socket: use ListenStream=/path in the socket unit"))?;
    if getsockopt(&fd, sockopt::SockType).ok() != Some(SockType::Stream) || getsockopt(&fd, sockopt::AcceptConn).ok() != Some(true) {
        anyhow::bail!("{what} is not a listening stream socket: use ListenStream= (not ListenDatagram= or Accept=yes) in the socket unit");
    }
    let path = addr.path().map(std::path::Path::to_path_buf).unwrap_or_else(|| configured.to_path_buf());
    if path != configured {
        warn!(passed = %path.display(), configured = %configured.display(), "serving the socket the service manager passed in, not --socket/DRILL_SOCKET: clients must use the passed one");
    }
    let l = std::os::unix::net::UnixListener::from(fd);
    l.set_nonblocking(true).context("making the API socket non-blocking")?;
    let l = tokio::net::UnixListener::from_std(l).context("registering the API socket")?;
    info!(socket = %path.display(), "listening on the socket passed in by the service manager (socket activation)");
    Ok(ApiSocket { listener: l, path, owned: false })
}

/// Serves until SIGINT/SIGTERM (or idle exit), then tears every drill down. Tells the
/// service manager (sd_notify, when NOTIFY_SOCKET is set) once it serves and when it stops.
pub async fn serve(d: Arc<Daemon>, api: ApiSocket) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let app = router(d.clone());
    let d2 = d.clone();
    let shutdown = async move {
        loop {
            tokio::select! {
                _ = term.recv() => { info!("SIGTERM: stopping every drill"); break }
                _ = int.recv() => { info!("SIGINT: stopping every drill"); break }
                _ = d2.idle.notified(), if d2.exit_when_idle => {
                    if d2.drills.lock().await.is_empty() { info!("no drills left: exiting (started with --exit-when-idle)"); break }
                }
            }
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping, sd_notify::NotifyState::Status("stopping every drill")]);
    };
    crate::api_guard::raise_fd_limit();
    let status = format!("serving {}", api.path.display());
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status(&status)]) {
        warn!("telling the service manager drilld is ready (NOTIFY_SOCKET): {e}");
    }
    axum::serve(crate::api_guard::Admission::new(api.listener), app.into_make_service_with_connect_info::<Peer>()).with_graceful_shutdown(shutdown).await.context("serving the API")?;
    let errs = d.stop_all().await;
    for e in &errs {
        warn!("teardown: {e}");
    }
    if api.owned {
        let _ = std::fs::remove_file(&api.path);
    }
    // Every drill is gone: leave no empty journal directory behind (the log stays).
    let _ = std::fs::remove_dir(journal::drills_dir(&d.state));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_answer_with_their_kind_s_status_and_code() {
        let e = ApiError(DrillError::DrillNotFound { id: "abc123".into(), running: "no drills are running".into() });
        let b = e.body();
        assert_eq!((b.code.as_str(), b.about.as_deref()), ("drill_not_found", Some("drill abc123")));
        assert!(b.hint.is_some(), "says what to do");
        assert_eq!(e.into_response().status(), StatusCode::NOT_FOUND);
        // A retune of a fault that does not exist is a 404 for the fault, a bad
        // figure a 400: the kind decides, never the message.
        let nf = ApiError(DrillError::FaultNotFound { drill: "abc123".into(), kind: "eBPF", index: 2, count: 1 });
        assert_eq!(nf.into_response().status(), StatusCode::NOT_FOUND);
        assert_eq!(bad("percent 200 is impossible").into_response().status(), StatusCode::BAD_REQUEST);
        let internal = ApiError::from(anyhow!("journal unwritable"));
        assert_eq!((internal.body().code.as_str(), internal.into_response().status()), ("internal", StatusCode::INTERNAL_SERVER_ERROR));
    }

    #[test]
    fn an_invalid_scenario_is_400_and_names_the_file_position() {
        let errs = drill_core::scenario::parse("bad.toml", "id = 3\n[[faults]]\nkind = \"nope\"\n").expect_err("invalid");
        let e = ApiError(DrillError::InvalidScenario(errs));
        let b = e.body();
        assert_eq!(b.code, "invalid_scenario");
        assert!(b.about.as_deref().is_some_and(|a| a.starts_with("bad.toml:")), "{:?}", b.about);
        assert_eq!(e.into_response().status(), StatusCode::BAD_REQUEST);
    }

    fn source_start() -> StartRequest {
        let (file, text) = drill_core::builtin::files().into_iter().find(|(f, _)| f == "firewall-drop.toml").unwrap();
        StartRequest { scenario: String::new(), source: Some(ScenarioSource { file, text, pack_dir: None }), dry_run: true, ..Default::default() }
    }

    #[test]
    fn only_root_may_start_an_uninstalled_file() {
        let nobody = Peer { uid: 65534, pid: None };
        let Err(e) = resolve_scenario(&source_start(), &nobody) else { panic!("a non-root source start must be refused") };
        assert_eq!(e.body().code, "source_forbidden");
        assert_eq!(e.into_response().status(), StatusCode::FORBIDDEN);
        assert!(resolve_scenario(&source_start(), &Peer::ROOT).is_ok());
        // By name, anyone may start a scenario of the built-in pack.
        let by_name = StartRequest { scenario: "firewall-drop".into(), source: None, dry_run: true, ..Default::default() };
        let r = resolve_scenario(&by_name, &nobody).expect("a built-in scenario by name");
        assert_eq!((r.pack.as_str(), r.scenario.id.as_str()), ("core", "firewall-drop"));
        let unknown = StartRequest { scenario: "nope".into(), ..by_name };
        let Err(e) = resolve_scenario(&unknown, &nobody) else { panic!("unknown") };
        assert_eq!(e.body().code, "scenario_not_found");
        assert!(e.body().error.contains("missing-route"), "lists the known ids: {}", e.body().error);
    }
}
