//! What is kept of drills: `drill history` and `drill report` (offline through drilld
//! when no daemon runs and root asks).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use drill_core::api::*;

use super::daemon::find_drilld;
use crate::client::{CallError, Client};
use crate::{Outcome, api_err, is_root, output};

/// `drill history`, newest first.
pub(crate) async fn history(c: &Client, socket: &Path, limit: usize, json: bool) -> Result<Outcome> {
    let e = |err: CallError| api_err(socket, err);
    let list: Vec<HistoryEntry> = match c.get(&format!("/v1/history?limit={limit}")).await {
        Err(CallError::NoDaemon(io)) if is_root() && io.kind() != std::io::ErrorKind::PermissionDenied => offline_history(limit)?,
        r => r.map_err(e)?,
    };
    output::print_history(&list, json)?;
    Ok(Outcome::Code(0))
}

/// `drill report`: the postmortem of a drill (the only running one, else the newest).
pub(crate) async fn report(c: &Client, socket: &Path, id: Option<String>, format: String, out: Option<PathBuf>) -> Result<Outcome> {
    let e = |err: CallError| api_err(socket, err);
    let fmt: drill_core::report::Format = format.parse().map_err(|m: String| anyhow!(m))?;
    let id = match id {
        Some(id) => id,
        None => latest_drill(c).await?,
    };
    let rec: drill_core::record::DrillRecord = match c.get(&format!("/v1/history/{id}")).await {
        Err(CallError::NoDaemon(io)) if is_root() && io.kind() != std::io::ErrorKind::PermissionDenied => offline_record(&id)?,
        r => r.map_err(e)?,
    };
    let text = drill_core::report::render(&rec, fmt);
    match out {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote the report of drill {id} to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(Outcome::Code(0))
}

/// The drill a report is about when none is named: the only running one, else the
/// newest in the history.
async fn latest_drill(c: &Client) -> Result<String> {
    if let Ok(all) = c.get::<Vec<DrillInfo>>("/v1/drills").await {
        if let [one] = all.as_slice() {
            return Ok(one.id.clone());
        }
        if all.len() > 1 {
            let ids: Vec<&str> = all.iter().map(|d| d.id.as_str()).collect();
            bail!("{} drills are running ({}): name one, e.g. `drill report {}`", all.len(), ids.join(", "), ids[0]);
        }
    }
    let list: Vec<HistoryEntry> = match c.get("/v1/history?limit=1").await {
        Err(CallError::NoDaemon(_)) if is_root() => offline_history(1)?,
        r => r.map_err(|e| api_err(&c.socket, e))?,
    };
    list.first().map(|e| e.id.clone()).ok_or_else(|| anyhow!("the history is empty: run a drill first (`drill list`)"))
}

/// `drilld history` / `drilld record` when no daemon runs (root reads the file).
fn offline_history(limit: usize) -> Result<Vec<HistoryEntry>> {
    let out = std::process::Command::new(find_drilld()?).args(["history", "--limit", &limit.to_string()]).output().context("running drilld history")?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    serde_json::from_slice(&out.stdout).context("reading drilld history's output")
}

fn offline_record(id: &str) -> Result<drill_core::record::DrillRecord> {
    let out = std::process::Command::new(find_drilld()?).args(["record", id]).output().context("running drilld record")?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim().trim_start_matches("drilld: error: "));
    }
    serde_json::from_slice(&out.stdout).context("reading drilld record's output")
}
