//! The handlers of drill records and the history (`/v1/drills/{id}/record`, `/v1/history`).

use std::sync::Arc;

use anyhow::anyhow;
use axum::Json;
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use drill_core::api::HistoryEntry;
use drill_core::plan;
use drill_core::record::DrillRecord;

use super::error::Api;
use super::{ApiError, Daemon, bad};
use crate::error::DrillError;
use crate::peer::Peer;

/// The record of a drill: the live one while it runs, else the history's. A peer that is
/// not root sees only its own drills.
pub(super) async fn record_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, UrlPath(id): UrlPath<String>) -> Api<DrillRecord> {
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
pub(super) struct HistoryQuery {
    #[serde(default = "default_history_limit")]
    limit: usize,
}

fn default_history_limit() -> usize {
    200
}

/// The history, newest first (running drills included); a peer that is not root sees
/// only its own.
pub(super) async fn history_h(State(d): State<Arc<Daemon>>, ConnectInfo(peer): ConnectInfo<Peer>, axum::extract::Query(q): axum::extract::Query<HistoryQuery>) -> Api<Vec<HistoryEntry>> {
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
