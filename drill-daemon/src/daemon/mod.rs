//! The daemon: the registry of running drills and the HTTP+JSON API on the Unix
//! socket (see docs/API.md).
//!
//! By concern: `limits.rs` (what drills may take of the machine), `error.rs` (ApiError ->
//! ErrorBody), `resolve.rs` (the scenario a start names, the pack files it reads),
//! `routes.rs` (the route table), one module of handlers per resource (`drills.rs`,
//! `records.rs`, `machine.rs`) and `socket.rs` (the API socket and serving it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::anyhow;
use drill_core::plan;
use tokio::sync::Mutex;

use crate::drill::Drill;
use crate::error::DrillError;
use crate::journal;
use crate::kernel::linux::LinuxKernel;
use crate::peer::Peer;
use crate::session::Session;
use drill_core::api::DrillInfo;
use drill_core::record::Mode;

mod drills;
mod error;
mod limits;
mod machine;
mod records;
mod resolve;
mod routes;
mod socket;
mod statelock;

pub use error::ApiError;
use error::bad;
pub use limits::Limits;
pub use resolve::{Resolved, resolve_scenario};
pub use routes::router;
pub use socket::{ApiSocket, StopSignals, adopt_socket, bind_socket, serve};
pub use statelock::{STATE_LOCK_WAIT, StateLock};

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
