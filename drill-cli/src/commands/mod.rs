//! The subcommands that talk to drilld, one module per group: `scenarios.rs` (list,
//! start, incident), `drills.rs` (what a learner does to a running drill), `records.rs`
//! (history, report), `daemon.rs` (reset, finding and starting drilld). `pack` and
//! `doctor` have modules of their own.

use anyhow::{Result, anyhow, bail};
use drill_core::api::DrillInfo;

use crate::api_err;
use crate::client::Client;

pub(crate) mod daemon;
pub(crate) mod drills;
pub(crate) mod records;
pub(crate) mod scenarios;

/// The drill id to act on: the given one, or the only running one.
pub(crate) async fn resolve(c: &Client, id: Option<String>) -> Result<String> {
    if let Some(id) = id {
        return Ok(id);
    }
    let all: Vec<DrillInfo> = c.get("/v1/drills").await.map_err(|e| api_err(&c.socket, e))?;
    match all.as_slice() {
        [] => bail!("no drill is running; start one with `sudo drill start SCENARIO` (`drill list` shows them)"),
        [one] => Ok(one.id.clone()),
        many => {
            let ids: Vec<&str> = many.iter().map(|d| d.id.as_str()).collect();
            bail!("{} drills are running ({}): name one, e.g. `drill status {}`", many.len(), ids.join(", "), ids[0])
        }
    }
}

/// PID of the init of `host`, for root to enter it itself (anyone else goes through
/// the daemon's relay, `relay.rs`).
pub(crate) async fn host_pid(c: &Client, id: Option<String>, host: &str) -> Result<i32> {
    let id = resolve(c, id).await?;
    let d: DrillInfo = c.get(&format!("/v1/drills/{id}")).await.map_err(|e| api_err(&c.socket, e))?;
    let h = d.hosts.iter().find(|h| h.name == host).ok_or_else(|| {
        let names: Vec<&str> = d.hosts.iter().map(|h| h.name.as_str()).collect();
        anyhow!("drill {id} has no host `{host}`; its hosts are: {}", names.join(", "))
    })?;
    Ok(h.pid)
}
