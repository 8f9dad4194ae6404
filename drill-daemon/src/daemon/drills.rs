//! The handlers of `/v1/drills`: start, list, status, stop, and what a learner does to a
//! running drill (submit, exec, solve, hint, counters, retune, ack).

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use axum::Json;
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use drill_core::api::*;
use drill_core::plan;
use tracing::{Instrument, info, info_span};

use super::error::Api;
use super::resolve::{Resolved, read_files};
use super::{ApiError, Daemon, bad, resolve_scenario};
use crate::api_guard::ApiJson;
use crate::drill::{Drill, Env, Origin};
use crate::error::DrillError;
use crate::peer::Peer;
use crate::session::Session;
use drill_core::record::Mode;

pub(super) async fn start_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, ApiJson(req): ApiJson<StartRequest>) -> Api<StartResponse> {
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
pub(super) async fn list_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>) -> Api<Vec<DrillInfo>> {
    let drills: Vec<Arc<Drill>> = d.drills.lock().await.values().filter(|x| peer.may_see(x.origin.owner_uid)).cloned().collect();
    let mut v = Vec::new();
    for x in drills {
        v.push(d.info(&x).await);
    }
    Ok(Json(v))
}

pub(super) async fn status_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>) -> Api<DrillInfo> {
    let drill = d.get(&id, &peer).await?;
    Ok(Json(d.info(&drill).await))
}

pub(super) async fn stop_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>) -> Api<StopResponse> {
    let errors = d.stop_as(&id, &peer).await?;
    Ok(Json(StopResponse { stopped: vec![id], errors }))
}

pub(super) async fn submit_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>) -> Api<SubmitResponse> {
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

pub(super) async fn exec_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>, ApiJson(req): ApiJson<ExecRequest>) -> Api<ExecResponse> {
    let drill = d.get(&id, &peer).await?;
    drill.host(&req.host)?;
    Ok(Json(drill.exec(&req.host, &req.command, Duration::from_secs(req.timeout_secs)).await?))
}

pub(super) async fn solve_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>, ApiJson(req): ApiJson<SolveRequest>) -> Api<SolveResponse> {
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

pub(super) async fn counters_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>) -> Api<DrillCounters> {
    let drill = d.get(&id, &peer).await?;
    let d2 = drill.clone();
    let mut counters = tokio::task::spawn_blocking(move || d2.counters()).await.map_err(|e| anyhow!(e))?;
    counters.requests = drill.sample_requests().await;
    Ok(Json(counters))
}

pub(super) async fn hint_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>) -> Api<HintResponse> {
    let (index, total, text) = d.get(&id, &peer).await?.next_hint();
    if let Some(s) = d.session(&id).await {
        s.hint(index, total);
    }
    Ok(Json(HintResponse { index, total, text }))
}

pub(super) async fn tune_h(
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

pub(super) async fn ack_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>) -> Api<AckResponse> {
    d.get(&id, &peer).await?;
    let s = d.session(&id).await.filter(|s| s.mode == Mode::Incident).ok_or_else(|| ApiError(DrillError::NotIncident { drill: id.clone() }))?;
    let (acked_secs, already) = s.ack();
    Ok(Json(AckResponse { acked_secs, already }))
}
