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

    async fn get(&self, id: &str) -> Result<Arc<Drill>, ApiError> {
        if !plan::is_drill_id(id) {
            return Err(bad(format!("`{id}` is not a drill id (drill ids are 6 hex digits, e.g. 3fa2c1); `drill status` lists the running drills")));
        }
        let drills = self.drills.lock().await;
        drills.get(id).cloned().ok_or_else(|| not_running(id, &drills))
    }

    pub async fn stop(&self, id: &str) -> Result<Vec<String>, ApiError> {
        let d = {
            let mut drills = self.drills.lock().await;
            let found = drills.remove(id);
            found.ok_or_else(|| not_running(id, &drills))?
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

async fn start_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, Json(req): Json<StartRequest>) -> Api<StartResponse> {
    let Resolved { scenario, pack, pack_dir } = resolve_scenario(&req, &peer)?;
    let scenario = if req.without_faults { scenario.without_faults() } else { scenario };
    let _serial = d.starting.lock().await;
    let (id, slot) = d.new_id().await?;
    let mut plan = plan::compile(&scenario, &id, slot, crate::kernel::Kernel::backends(d.kernel.as_ref())).map_err(|e| ApiError(DrillError::Unmeasurable(e)))?;
    let files = read_files(&mut plan, pack_dir.as_deref())?;
    if req.dry_run {
        return Ok(Json(StartResponse { plan, drill: None }));
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

async fn list_h(State(d): State<Arc<Daemon>>) -> Api<Vec<DrillInfo>> {
    let drills: Vec<Arc<Drill>> = d.drills.lock().await.values().cloned().collect();
    let mut v = Vec::new();
    for x in drills {
        v.push(d.info(&x).await);
    }
    Ok(Json(v))
}

async fn status_h(State(d): State<Arc<Daemon>>, UrlPath(id): UrlPath<String>) -> Api<DrillInfo> {
    let drill = d.get(&id).await?;
    Ok(Json(d.info(&drill).await))
}

async fn stop_h(State(d): State<Arc<Daemon>>, UrlPath(id): UrlPath<String>) -> Api<StopResponse> {
    let errors = d.stop(&id).await?;
    Ok(Json(StopResponse { stopped: vec![id], errors }))
}

async fn submit_h(State(d): State<Arc<Daemon>>, UrlPath(id): UrlPath<String>) -> Api<SubmitResponse> {
    let drill = d.get(&id).await?;
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

async fn exec_h(State(d): State<Arc<Daemon>>, UrlPath(id): UrlPath<String>, Json(req): Json<ExecRequest>) -> Api<ExecResponse> {
    let drill = d.get(&id).await?;
    drill.host(&req.host)?;
    Ok(Json(drill.exec(&req.host, &req.command, Duration::from_secs(req.timeout_secs)).await?))
}

async fn solve_h(State(d): State<Arc<Daemon>>, UrlPath(id): UrlPath<String>, Json(req): Json<SolveRequest>) -> Api<SolveResponse> {
    let drill = d.get(&id).await?;
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

async fn counters_h(State(d): State<Arc<Daemon>>, UrlPath(id): UrlPath<String>) -> Api<DrillCounters> {
    let drill = d.get(&id).await?;
    let d2 = drill.clone();
    let mut counters = tokio::task::spawn_blocking(move || d2.counters()).await.map_err(|e| anyhow!(e))?;
    counters.requests = drill.sample_requests().await;
    Ok(Json(counters))
}

async fn hint_h(State(d): State<Arc<Daemon>>, UrlPath(id): UrlPath<String>) -> Api<HintResponse> {
    let (index, total, text) = d.get(&id).await?.next_hint();
    if let Some(s) = d.session(&id).await {
        s.hint(index, total);
    }
    Ok(Json(HintResponse { index, total, text }))
}

async fn tune_h(State(d): State<Arc<Daemon>>, UrlPath((id, n)): UrlPath<(String, usize)>, Json(req): Json<drill_core::api::TuneRequest>) -> Api<drill_core::api::TuneResponse> {
    let drill = d.get(&id).await?;
    if !(0.0..=100.0).contains(&req.percent) {
        return Err(bad(format!("percent {} is impossible: give 0 (pause) to 100", req.percent)));
    }
    let c = drill.retune_ebpf(n, req.percent / 100.0)?;
    Ok(Json(drill_core::api::TuneResponse { percent: req.percent, seen: c.seen, matched: c.matched, dropped: c.dropped }))
}

async fn ack_h(State(d): State<Arc<Daemon>>, UrlPath(id): UrlPath<String>) -> Api<AckResponse> {
    d.get(&id).await?;
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

async fn reset_h(State(d): State<Arc<Daemon>>) -> Api<StopResponse> {
    let stopped: Vec<String> = d.drills.lock().await.keys().cloned().collect();
    let mut errors = d.stop_all().await;
    let (_, e) = journal::recover(&d.state);
    errors.extend(e);
    Ok(Json(StopResponse { stopped, errors }))
}

pub fn router(d: Arc<Daemon>) -> Router {
    Router::new()
        .route("/v1/info", get(info_h))
        .route("/v1/scenarios", get(scenarios_h))
        .route("/v1/drills", get(list_h).post(start_h))
        .route("/v1/drills/{id}", get(status_h).delete(stop_h))
        .route("/v1/drills/{id}/submit", post(submit_h))
        .route("/v1/drills/{id}/exec", post(exec_h))
        .route("/v1/drills/{id}/solve", post(solve_h))
        .route("/v1/drills/{id}/hint", post(hint_h))
        .route("/v1/drills/{id}/counters", get(counters_h))
        .route("/v1/drills/{id}/faults/ebpf/{n}", post(tune_h))
        .route("/v1/drills/{id}/ack", post(ack_h))
        .route("/v1/drills/{id}/record", get(record_h))
        .route("/v1/history", get(history_h))
        .route("/v1/history/{id}", get(record_h))
        .route("/v1/reset", post(reset_h))
        .route("/v1/doctor", get(crate::doctor::handler))
        .with_state(d)
}

/// The error for a drill id no running drill has, naming the ones that run.
fn not_running(id: &str, drills: &BTreeMap<String, Arc<Drill>>) -> ApiError {
    let running = if drills.is_empty() {
        "no drills are running; start one with `drill start SCENARIO`".to_string()
    } else {
        format!("running: {}", drills.keys().map(String::as_str).collect::<Vec<_>>().join(", "))
    };
    ApiError(DrillError::DrillNotFound { id: id.to_string(), running })
}

/// Creates the socket: root-owned, 0660 with group `drill` when it exists, else 0600.
pub fn bind_socket(path: &std::path::Path) -> anyhow::Result<tokio::net::UnixListener> {
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
    Ok(l)
}

/// Serves until SIGINT/SIGTERM (or idle exit), then tears every drill down.
pub async fn serve(d: Arc<Daemon>, listener: tokio::net::UnixListener, socket: PathBuf) -> anyhow::Result<()> {
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
    };
    axum::serve(listener, app.into_make_service_with_connect_info::<Peer>()).with_graceful_shutdown(shutdown).await.context("serving the API")?;
    let errs = d.stop_all().await;
    for e in &errs {
        warn!("teardown: {e}");
    }
    let _ = std::fs::remove_file(&socket);
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
