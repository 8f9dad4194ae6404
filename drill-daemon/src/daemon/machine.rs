//! The daemon-wide handlers: info, the scenario catalog, reset.

use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use drill_core::api::*;
use tracing::warn;

use super::error::Api;
use super::{ApiError, Daemon};
use crate::error::DrillError;
use crate::journal;
use crate::peer::Peer;

pub(super) async fn info_h(State(d): State<Arc<Daemon>>) -> Api<DaemonInfo> {
    let probes = crate::kernel::Kernel::probes(d.kernel.as_ref())?.status.clone();
    Ok(Json(DaemonInfo { version: env!("CARGO_PKG_VERSION").into(), pid: std::process::id(), probes, drills: d.drills.lock().await.len() }))
}

pub(super) async fn scenarios_h() -> Api<Vec<ScenarioSummary>> {
    let catalog = drill_core::catalog::load();
    for p in &catalog.problems {
        warn!("scenario catalog: {p}");
    }
    Ok(Json(catalog.entries.iter().map(ScenarioSummary::from).collect()))
}

/// Stops every drill and removes the leftovers of earlier runs: root's alone, since it
/// acts on every user's drills (`drill stop --all` stops one's own).
pub(super) async fn reset_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>) -> Api<StopResponse> {
    if !peer.is_root() {
        return Err(ApiError(DrillError::RootOnly { what: "drill reset".into(), uid: peer.uid }));
    }
    let stopped: Vec<String> = d.drills.lock().await.keys().cloned().collect();
    let mut errors = d.stop_all().await;
    let (_, e) = journal::recover(&d.state);
    errors.extend(e);
    Ok(Json(StopResponse { stopped, errors }))
}
