//! The scenarios: `drill list`, `drill start` (and its dry run, planned locally) and
//! `drill incident`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use drill_core::api::*;

use super::daemon::start_daemon;
use crate::client::{CallError, Client};
use crate::{Outcome, api_err, is_root, output, progress};

/// `drill list`: from the daemon, else the packs read here.
pub(crate) async fn list(c: &Client, socket: &Path, json: bool) -> Result<Outcome> {
    let e = |err: CallError| api_err(socket, err);
    let list: Vec<ScenarioSummary> = match c.get("/v1/scenarios").await {
        Ok(l) => l,
        Err(CallError::NoDaemon(_)) => builtin_list_offline(),
        Err(err) => return Err(e(err)),
    };
    output::print_list(&list, json)?;
    Ok(Outcome::Code(0))
}

/// `drill start SCENARIO` (a built-in id or a .toml file); `--dry-run` plans without a daemon.
pub(crate) async fn start(c: &Client, socket: &Path, scenario: String, dry_run: bool, json: bool) -> Result<Outcome> {
    let e = |err: CallError| api_err(socket, err);
    let source = if scenario.ends_with(".toml") || Path::new(&scenario).is_file() {
        let text = std::fs::read_to_string(&scenario).with_context(|| format!("reading {scenario}"))?;
        // Its [[files]] are read by the daemon from the file's own directory (its pack).
        let pack_dir = std::fs::canonicalize(&scenario).ok().and_then(|p| p.parent().map(|d| d.display().to_string()));
        Some(ScenarioSource { file: scenario.clone(), text, pack_dir })
    } else {
        None
    };
    // Validate and plan locally (pure logic): a bad file or a dry run needs
    // neither root nor a daemon.
    let (parsed, pack_dir) = match &source {
        Some(src) => (drill_core::scenario::parse(&src.file, &src.text).map_err(|e| anyhow!("{e}"))?, src.pack_dir.as_ref().map(PathBuf::from)),
        None => {
            let e = drill_core::catalog::load().find(&scenario).map_err(|e| anyhow!("{e} (or give a path to a .toml file)"))?.clone();
            (e.scenario, Some(e.dir))
        }
    };
    if dry_run {
        let mut plan = drill_core::plan::compile(&parsed, "000000", 0, local_backends()).map_err(|e| anyhow!("{}: {e}", source.as_ref().map_or(scenario.as_str(), |s| s.file.as_str())))?;
        if let Some(dir) = &pack_dir {
            drill_core::plan::files::read(&mut plan.files, dir).map_err(|e| anyhow!("{e}"))?;
        }
        output::print_start(&StartResponse { plan, drill: None }, json)?;
        return Ok(Outcome::Code(0));
    }
    let req = StartRequest { scenario: scenario.clone(), source, dry_run, ..Default::default() };
    let resp: StartResponse = match progress::spin(STARTING, c.post("/v1/drills", &req)).await {
        Err(CallError::NoDaemon(io)) if is_root() && io.kind() != std::io::ErrorKind::PermissionDenied => {
            start_daemon(socket, json)?;
            progress::spin(STARTING, c.post("/v1/drills", &req)).await.map_err(e)?
        }
        r => r.map_err(e)?,
    };
    output::print_start(&resp, json)?;
    Ok(Outcome::Code(0))
}

/// `drill incident`: a scenario the learner is not told, paged.
pub(crate) async fn incident(c: &Client, socket: &Path, pack: Option<String>, scenario: Option<String>, time_limit: Option<std::time::Duration>, json: bool) -> Result<Outcome> {
    let e = |err: CallError| api_err(socket, err);
    let name = match scenario {
        Some(s) => s,
        None => pick_scenario(pack.as_deref())?,
    };
    let req = StartRequest { scenario: name, incident: Some(IncidentRequest { time_limit_secs: time_limit.map(|d| d.as_secs()) }), ..Default::default() };
    let resp: StartResponse = match progress::spin(STARTING, c.post("/v1/drills", &req)).await {
        Err(CallError::NoDaemon(io)) if is_root() && io.kind() != std::io::ErrorKind::PermissionDenied => {
            start_daemon(socket, json)?;
            progress::spin(STARTING, c.post("/v1/drills", &req)).await.map_err(e)?
        }
        r => r.map_err(e)?,
    };
    let d = resp.drill.ok_or_else(|| anyhow!("the daemon started no drill"))?;
    output::print_page(&d, json)?;
    Ok(Outcome::Code(0))
}

/// The spinner's words while a drill's hosts, links, services and faults come up.
const STARTING: &str = "starting the drill: hosts, links, services, faults";

/// A scenario for `drill incident`: one at random among those that load (of `pack`).
fn pick_scenario(pack: Option<&str>) -> Result<String> {
    let cat = drill_core::catalog::load();
    let names: Vec<String> = cat.entries.iter().filter(|e| pack.is_none_or(|p| e.pack == p)).map(|e| ScenarioSummary::from(e).name()).collect();
    if names.is_empty() {
        match pack {
            Some(p) => bail!("no scenario in a pack named `{p}` (`drill pack list` shows the packs)"),
            None => bail!("no scenarios found (`drill list`)"),
        }
    }
    let mut b = [0u8; 8];
    std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b)).context("reading /dev/urandom")?;
    Ok(names[(u64::from_le_bytes(b) % names.len() as u64) as usize].clone())
}

/// The scenario list when no daemon runs (the same packs the daemon reads).
fn builtin_list_offline() -> Vec<ScenarioSummary> {
    let c = drill_core::catalog::load();
    for p in &c.problems {
        eprintln!("drill: warning: {p}");
    }
    c.entries.iter().map(ScenarioSummary::from).collect()
}

/// The backends a dry run plans with, found without privileges: netem when the
/// kernel has the module (loaded, built in, or on disk), else the delay wire;
/// `DRILL_DELAY_BACKEND=wire|netem` forces one, as it does for drilld.
fn local_backends() -> drill_core::plan::Backends {
    use drill_core::plan::DelayBackend;
    let delay = match std::env::var(DelayBackend::FORCE_ENV).ok().as_deref().and_then(DelayBackend::from_name) {
        Some(forced) => forced,
        None => {
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
            let modules = Path::new("/lib/modules").join(release.trim());
            let on_disk = ["modules.builtin", "modules.dep"].iter().any(|f| std::fs::read_to_string(modules.join(f)).is_ok_and(|t| t.contains("/sch_netem.ko")));
            if Path::new("/sys/module/sch_netem").exists() || on_disk { DelayBackend::Netem } else { DelayBackend::Wire }
        }
    };
    drill_core::plan::Backends { delay }
}
