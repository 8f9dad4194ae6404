//! On-disk journal of what each drill created, so that a daemon restarted after a
//! crash (or `drill reset`) removes exactly those leftovers and nothing else.
//!
//! One directory per drill under `<state>/drills/<id>/` holds `journal.json` plus the
//! hosts' state (overlay upper layers, logs). Removing a drill = undo its journal,
//! then delete the directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::host;
use crate::kernel::linux::netns;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Journal {
    pub drill_id: String,
    pub scenario: String,
    /// The pack of the scenario (`core`; empty for a file sent by root).
    #[serde(default)]
    pub pack: String,
    /// Who started it: the socket peer's uid (SO_PEERCRED).
    #[serde(default)]
    pub owner_uid: u32,
    /// Named network namespaces, in creation order.
    pub netns: Vec<String>,
    /// PIDs of host inits (root PID namespace).
    pub host_pids: Vec<i32>,
}

pub fn drills_dir(state: &Path) -> PathBuf {
    state.join("drills")
}

pub fn drill_dir(state: &Path, id: &str) -> PathBuf {
    drills_dir(state).join(id)
}

impl Journal {
    pub fn save(&self, state: &Path) -> Result<()> {
        let dir = drill_dir(state, &self.drill_id);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join("journal.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join("journal.json")).with_context(|| format!("renaming {}", tmp.display()))?;
        Ok(())
    }

    pub fn load_all(state: &Path) -> Vec<(PathBuf, Option<Journal>)> {
        let Ok(rd) = std::fs::read_dir(drills_dir(state)) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| {
                let j = std::fs::read(e.path().join("journal.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
                (e.path(), j)
            })
            .collect()
    }
}

/// Is `pid` one of our host inits? (Guards against killing a recycled PID.)
fn is_host_init(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"drilld\0host-init\0")
}

/// Undoes a journal: kills surviving host inits, deletes namespaces, removes the
/// drill's directory. Keeps going after errors and returns all of them.
pub fn undo(dir: &Path, j: Option<&Journal>) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(j) = j {
        // Processes that outlived a crashed daemon in the drill's namespaces (a
        // measurement's ping, a host init spawned but not yet recorded) keep them and
        // their cgroups alive: they go first.
        for ns in &j.netns {
            if let Err(e) = netns::kill_members(ns, std::time::Duration::from_secs(2)) {
                errors.push(format!("drill {}: {e:#}", j.drill_id));
            }
        }
        for &pid in &j.host_pids {
            if is_host_init(pid)
                && let Err(e) = host::kill_and_reap(pid, std::time::Duration::from_secs(2))
            {
                errors.push(format!("drill {}: {e:#}", j.drill_id));
            }
        }
        // Hosts' cgroups, once their inits are gone (recorded per host; also found by id).
        errors.extend(host::cgroup::remove_for_drill(dir, Some(&j.drill_id)).into_iter().map(|e| format!("drill {}: {e}", j.drill_id)));
        for ns in &j.netns {
            if let Err(e) = netns::delete(ns) {
                errors.push(format!("drill {}: deleting netns {ns}: {e:#}", j.drill_id));
            }
        }
    } else {
        // No readable journal: the hosts' cgroup records still say what to remove.
        errors.extend(host::cgroup::remove_for_drill(dir, None));
    }
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        errors.push(format!("removing {}: {e}", dir.display()));
    }
    errors
}

/// Removes every leftover recorded under `state`; returns (drills cleaned, errors).
pub fn recover(state: &Path) -> (Vec<String>, Vec<String>) {
    let mut cleaned = Vec::new();
    let mut errors = Vec::new();
    for (dir, j) in Journal::load_all(state) {
        let id = j.as_ref().map_or_else(|| dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(), |j| j.drill_id.clone());
        errors.extend(undo(&dir, j.as_ref()));
        cleaned.push(id);
    }
    (cleaned, errors)
}
