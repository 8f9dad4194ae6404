//! `drill pack test DIR [--scenario ID] [--jobs N] [--json]`: the self-test of a pack on
//! this machine (root). Each scenario goes through the five stages of [`super::stages`];
//! scenarios run concurrently (`--jobs`, default the number of cores; the daemon
//! serializes starts itself). Exit 0 only when every stage of every scenario passed, 1
//! when any failed (an invalid pack too), 2 on usage or environment errors and on Ctrl-C
//! (every drill it started is stopped first).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use drill_core::api::{DaemonInfo, ScenarioSource};
use tokio::sync::{Semaphore, watch};

use super::leftovers;
use super::report::{self, Progress, RunReport, STAGES, ScenarioReport};
use super::stages::{Runner, Shared};
use crate::client::{CallError, Client};

pub async fn run(client: &Client, socket: &Path, dir: &Path, scenario: Option<&str>, jobs: Option<usize>, json: bool) -> Result<u8> {
    if !crate::is_root() {
        bail!("`drill pack test` starts drills, which needs root: `sudo drill pack test {}`", dir.display());
    }
    if jobs == Some(0) {
        bail!("--jobs must be at least 1");
    }
    let pack = match drill_core::pack::load(dir) {
        Ok(p) => p,
        Err(drill_core::pack::LoadError::Invalid(p)) => {
            eprintln!("{}", drill_core::source::SourceErrors(p));
            eprintln!("drill: the pack in {} does not validate: nothing was started (`drill pack validate {}`)", dir.display(), dir.display());
            return Ok(1);
        }
        Err(e) => bail!("{e}"),
    };
    let abs = std::fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))?;
    let mut chosen = Vec::new();
    for ps in &pack.scenarios {
        if scenario.is_none_or(|id| id == ps.scenario.id) {
            let text = drill_core::pack::read_inside_pack(&abs, &ps.file).map_err(anyhow::Error::msg)?;
            let text = String::from_utf8(text).with_context(|| format!("{} is not UTF-8", ps.file))?;
            let source = ScenarioSource { file: dir.join(&ps.file).display().to_string(), text, pack_dir: Some(abs.display().to_string()) };
            chosen.push((ps.file.clone(), source, ps.scenario.clone()));
        }
    }
    if let (Some(id), true) = (scenario, chosen.is_empty()) {
        let ids: Vec<&str> = pack.scenarios.iter().map(|s| s.scenario.id.as_str()).collect();
        bail!("pack {} has no scenario `{id}`; its scenarios: {}", pack.manifest.name, ids.join(", "));
    }
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).min(chosen.len()).max(1);
    let mut daemon = OwnDaemon::ensure(client, socket).await?;
    let info: DaemonInfo = client.get("/v1/info").await.map_err(|e| crate::api_err(socket, e))?;
    let pid = Some(info.pid);
    let before = tokio::task::spawn_blocking(move || leftovers::snapshot(pid)).await?;
    let (cancel_tx, cancel) = watch::channel(false);
    let ids: Vec<String> = chosen.iter().map(|c| c.2.id.clone()).collect();
    let shared = Arc::new(Shared { socket: socket.to_path_buf(), daemon_pid: pid, dirs: state_dirs(socket), live: Mutex::default(), cancel, progress: Progress::new(&ids, true) });
    let t0 = Instant::now();
    let (scenarios, interrupted) = run_all(chosen, jobs, &shared, cancel_tx).await;
    shared.progress.done();
    let after = tokio::task::spawn_blocking(move || leftovers::snapshot(pid)).await?;
    let machine = leftovers::diff(&before, &after);
    let mut stage_secs = BTreeMap::new();
    for st in STAGES {
        stage_secs.insert(st, scenarios.iter().flat_map(|s| &s.stages).filter(|x| x.stage == st).map(|x| x.secs).sum());
    }
    let passed = !interrupted && machine.is_empty() && scenarios.iter().all(ScenarioReport::passed);
    let r = RunReport { pack: pack.manifest.name.clone(), dir: abs.display().to_string(), jobs, scenarios, machine, stage_secs, wall_secs: t0.elapsed().as_secs_f64(), interrupted, passed };
    daemon.stop();
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        report::print_table(&r);
    }
    Ok(if interrupted {
        2
    } else if r.passed {
        0
    } else {
        1
    })
}

/// Runs every scenario, `jobs` at once; on Ctrl-C, asks the workers to stop (each stops
/// its drills); a second Ctrl-C stops the drills still running at once.
async fn run_all(chosen: Vec<(String, ScenarioSource, drill_core::scenario::Scenario)>, jobs: usize, shared: &Arc<Shared>, cancel_tx: watch::Sender<bool>) -> (Vec<ScenarioReport>, bool) {
    let sem = Arc::new(Semaphore::new(jobs));
    let mut tasks = Vec::new();
    let mut aborts = Vec::new();
    for (i, (file, source, sc)) in chosen.into_iter().enumerate() {
        let (sem, shared) = (sem.clone(), shared.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            Runner::new(i, file, source, sc, shared).run().await
        }));
        aborts.push(tasks.last().map(|t: &tokio::task::JoinHandle<ScenarioReport>| t.abort_handle()));
    }
    let all = async {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await);
        }
        out
    };
    tokio::pin!(all);
    let mut interrupted = false;
    let results = loop {
        tokio::select! {
            r = &mut all => break r,
            _ = tokio::signal::ctrl_c() => {
                if interrupted {
                    shared.progress.println("drill: stopping every drill now");
                    aborts.iter().flatten().for_each(|a| a.abort());
                    stop_live(shared).await;
                    return (Vec::new(), true);
                }
                interrupted = true;
                shared.progress.println("drill: interrupted: stopping the drills this run started (Ctrl-C again to stop them at once)");
                let _ = cancel_tx.send(true);
            }
        }
    };
    stop_live(shared).await;
    let reports = results.into_iter().filter_map(|r| r.ok()).collect();
    (reports, interrupted)
}

async fn stop_live(shared: &Shared) {
    let ids: Vec<String> = std::mem::take(&mut *shared.live.lock().unwrap_or_else(|e| e.into_inner())).into_iter().collect();
    let c = Client::new(&shared.socket);
    for id in ids {
        if let Err(e) = c.delete::<drill_core::api::StopResponse>(&format!("/v1/drills/{id}")).await {
            eprintln!("drill: stopping drill {id}: {e}");
        }
    }
}

/// The daemon's directories where a drill's files live: its socket's directory (the
/// default state directory is /run/drill) and /var/lib/drill/drills.
fn state_dirs(socket: &Path) -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("/run/drill"), PathBuf::from("/var/lib/drill/drills")];
    if let Some(p) = socket.parent().filter(|p| !v.iter().any(|x| x == p)) {
        v.push(p.to_path_buf());
    }
    v
}

/// The daemon the run talks to: the one already serving the socket, else one started
/// for this run (without --exit-when-idle: the run stops its last drill many times) and
/// stopped at its end.
struct OwnDaemon(Option<std::process::Child>);

impl OwnDaemon {
    async fn ensure(client: &Client, socket: &Path) -> Result<OwnDaemon> {
        match client.get::<DaemonInfo>("/v1/info").await {
            Ok(_) => return Ok(OwnDaemon(None)),
            Err(CallError::NoDaemon(e)) if e.kind() != std::io::ErrorKind::PermissionDenied => {}
            Err(e) => return Err(crate::api_err(socket, e)),
        }
        Ok(OwnDaemon(Some(spawn_daemon(socket)?)))
    }

    /// SIGTERM (the daemon tears down whatever is left) and wait.
    fn stop(&mut self) {
        let Some(mut child) = self.0.take() else { return };
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for OwnDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `drilld serve --socket SOCKET` without `--exit-when-idle` (this run starts and stops
/// many drills), with a state directory of its own beside a non-default socket: a second
/// daemon must not recover (remove) the drills of the one on the default socket.
/// DRILL_STATE_DIR, when set, names it.
fn spawn_daemon(socket: &Path) -> Result<std::process::Child> {
    let state = std::env::var_os("DRILL_STATE_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| socket.parent().unwrap_or(Path::new("/run/drill")).join("state"));
    let state = state.to_string_lossy();
    let extra: Vec<&str> = if socket != Path::new(drill_core::api::DEFAULT_SOCKET) { vec!["--state-dir", &state] } else { vec![] };
    crate::spawn_daemon(socket, &extra, Some(" for this run"))
}
