//! The five stages of `drill pack test` for one scenario, in order: baseline (no
//! faults: every check passes), broken (every check that guards a fault fails, and still
//! fails a few seconds later), workarounds (each fails, caught by a named check), fixed
//! (the reference solution and each alternative pass), clean (nothing of any of its
//! drills left on the machine after its stop).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drill_core::api::*;
use drill_core::scenario::{Attempt, Scenario};
use drill_core::verdict::Verdict;
use tokio::sync::watch;

use super::leftovers::{self, DrillMarks};
use super::report::{Evidence, Failure, Outcome, Progress, ScenarioReport, Stage, StageReport, Status};
use crate::client::Client;

/// What every worker shares: the daemon, where to look for leftovers, the drills now
/// running (stopped on Ctrl-C), the cancel flag, the progress lines.
pub struct Shared {
    pub socket: PathBuf,
    pub daemon_pid: Option<u32>,
    pub dirs: Vec<PathBuf>,
    pub live: Mutex<BTreeSet<String>>,
    pub cancel: watch::Receiver<bool>,
    pub progress: Progress,
}

/// Why a step did not give its answer: a failure of the stage, or Ctrl-C.
enum E {
    Fail(Failure),
    Cancelled,
}

type R<T> = Result<T, E>;

fn fail<T>(message: String) -> R<T> {
    Err(E::Fail(Failure { message, evidence: Vec::new() }))
}

/// A drill this worker started.
struct Live {
    id: String,
    marks: DrillMarks,
}

#[derive(Default)]
struct Clean {
    secs: f64,
    outcome: Outcome,
}

pub struct Runner {
    idx: usize,
    file: String,
    source: ScenarioSource,
    sc: Scenario,
    client: Client,
    shared: Arc<Shared>,
    clean: Mutex<Clean>,
}

/// The seconds the broken drill waits between its two submits.
const HEAL_WAIT: Duration = Duration::from_secs(3);
/// How long a step of a workaround, alternative or solution may run.
const STEP_TIMEOUT_SECS: u64 = 60;

impl Runner {
    pub fn new(idx: usize, file: String, source: ScenarioSource, sc: Scenario, shared: Arc<Shared>) -> Runner {
        Runner { idx, file, source, sc, client: Client::new(&shared.socket), shared, clean: Mutex::default() }
    }

    fn cancelled(&self) -> bool {
        *self.shared.cancel.borrow()
    }

    fn say(&self, text: &str) {
        self.shared.progress.status(self.idx, &self.sc.id, text);
    }

    /// Runs the stages in order; a failed stage skips the functional stages after it
    /// (clean is judged on every stop that happened).
    pub async fn run(self) -> ScenarioReport {
        let t0 = Instant::now();
        let mut stages = Vec::new();
        let mut stop_here = false;
        let mut keep: Option<Live> = None;
        for stage in [Stage::Baseline, Stage::Broken, Stage::Workarounds, Stage::Fixed] {
            if stop_here || self.cancelled() {
                stages.push(StageReport { stage, status: Status::Skipped, secs: 0.0, outcome: Outcome::default() });
                continue;
            }
            let (t, scan0) = (Instant::now(), self.clean_secs());
            let r = match stage {
                Stage::Baseline => self.baseline().await,
                Stage::Broken => self.broken().await.map(|(o, d)| {
                    keep = d;
                    o
                }),
                Stage::Workarounds => self.workarounds().await,
                _ => self.fixed(keep.take()).await,
            };
            let secs = t.elapsed().as_secs_f64() - (self.clean_secs() - scan0);
            let (status, outcome) = match r {
                Ok(o) if o.failures.is_empty() => (Status::Pass, o),
                Ok(o) => (Status::Fail, o),
                Err(E::Fail(f)) => (Status::Fail, Outcome { failures: vec![f], notes: Vec::new() }),
                Err(E::Cancelled) => (Status::Skipped, Outcome { failures: Vec::new(), notes: vec!["interrupted (Ctrl-C)".into()] }),
            };
            stop_here = status != Status::Pass;
            let word = match status {
                Status::Pass => "pass",
                Status::Fail => "FAIL",
                Status::Skipped => "interrupted",
            };
            self.shared.progress.event(self.idx, &self.sc.id, &format!("{} {word} ({})", stage.name(), super::report::dur(secs)));
            stages.push(StageReport { stage, status, secs, outcome });
        }
        if let Some(d) = keep.take() {
            self.stop(d).await;
        }
        let clean = std::mem::take(&mut *self.clean.lock().unwrap_or_else(|e| e.into_inner()));
        let status = if self.cancelled() {
            Status::Skipped
        } else if clean.outcome.failures.is_empty() {
            Status::Pass
        } else {
            Status::Fail
        };
        self.shared.progress.finished(self.idx, &self.sc.id, &format!("done ({})", super::report::dur(t0.elapsed().as_secs_f64())));
        stages.push(StageReport { stage: Stage::Clean, status, secs: clean.secs, outcome: clean.outcome });
        ScenarioReport { id: self.sc.id.clone(), file: self.file.clone(), stages, secs: t0.elapsed().as_secs_f64() }
    }

    fn clean_secs(&self) -> f64 {
        self.clean.lock().unwrap_or_else(|e| e.into_inner()).secs
    }

    /// Stage 1: the topology and services without the faults; every check passes.
    async fn baseline(&self) -> R<Outcome> {
        let mut out = Outcome::default();
        self.say("baseline: starting without faults");
        let d = self.start(true).await?;
        let v = self.submit(&d, "baseline").await;
        self.stop(d).await;
        for c in v?.checks.iter().filter(|c| !c.passed) {
            out.fail(format!("check `{}` fails without any fault: {} (the check is wrong, not the drill)", c.name, c.saw), vec![c.into()]);
        }
        Ok(out)
    }

    /// Whether check `i` guards at least one fault.
    fn guards_fault(&self, i: usize) -> bool {
        match self.sc.guards.get(i) {
            Some(g) => !g.is_empty(),
            None => !self.sc.faults.is_empty(),
        }
    }

    /// Stage 2: faults applied; every check that guards a fault fails, twice, HEAL_WAIT
    /// apart; a check that guards none passes. On success the drill is kept for stage 4.
    async fn broken(&self) -> R<(Outcome, Option<Live>)> {
        let mut out = Outcome::default();
        self.say("broken: starting with the faults");
        let d = self.start(false).await?;
        let r = async {
            let first = self.submit(&d, "broken").await?;
            self.say("broken: waiting to see that the fault stays");
            self.cancellable(tokio::time::sleep(HEAL_WAIT)).await?;
            let again = self.submit(&d, "broken, again").await?;
            Ok((first, again))
        }
        .await;
        let (first, again) = match r {
            Ok(x) => x,
            Err(e) => {
                self.stop(d).await;
                return Err(e);
            }
        };
        self.judge_broken(&first, &again, &mut out);
        if out.failures.is_empty() {
            return Ok((out, Some(d)));
        }
        self.stop(d).await;
        Ok((out, None))
    }

    fn judge_broken(&self, first: &Verdict, again: &Verdict, out: &mut Outcome) {
        if first.passed {
            let names: Vec<String> = first.checks.iter().map(|c| format!("`{}`", c.name)).collect();
            let why = if self.sc.faults.is_empty() { " (the scenario has no faults)" } else { "" };
            out.fail(format!("the drill is not broken: submit passes with the faults applied{why}; checks {} all pass", names.join(", ")), first.checks.iter().map(Evidence::from).collect());
            return;
        }
        for (i, c) in first.checks.iter().enumerate() {
            let later = again.checks.get(i);
            if !self.guards_fault(i) {
                if !c.passed {
                    out.fail(format!("check `{}` guards no fault but fails with the faults applied: {}", c.name, c.saw), vec![c.into()]);
                }
            } else if c.passed {
                out.fail(format!("check `{}` guards a fault but passes with the faults applied: {}", c.name, c.saw), vec![c.into()]);
            } else if let Some(l) = later.filter(|l| l.passed) {
                out.fail(
                    format!("check `{}` failed, then passed {} s later with nothing fixed: the fault heals by itself (or the check is flaky): {}", c.name, HEAL_WAIT.as_secs(), l.saw),
                    vec![c.into(), l.into()],
                );
            }
        }
    }

    /// Stage 3: each workaround on a fresh broken drill; submit must fail.
    async fn workarounds(&self) -> R<Outcome> {
        let mut out = Outcome::default();
        if self.sc.workarounds.is_empty() {
            out.notes.push("the scenario has no workarounds to try".into());
        }
        for w in &self.sc.workarounds {
            self.say(&format!("workarounds: `{}`", w.name));
            match self.attempt(w, "workaround").await {
                Ok((v, notes)) => {
                    out.notes.extend(notes);
                    let caught: Vec<String> = v.checks.iter().filter(|c| !c.passed).map(|c| format!("`{}`", c.name)).collect();
                    if caught.is_empty() {
                        out.fail(format!("workaround `{}` passed: it is a fix, or the checks miss it", w.name), v.checks.iter().map(Evidence::from).collect());
                    } else {
                        out.notes.push(format!("workaround `{}` caught by {}", w.name, caught.join(", ")));
                    }
                }
                Err(E::Fail(f)) => out.fail(format!("workaround `{}`: {}", w.name, f.message), f.evidence),
                Err(E::Cancelled) => return Err(E::Cancelled),
            }
        }
        Ok(out)
    }

    /// Stage 4: the reference solution on the broken drill (stage 2's, else a fresh
    /// one), then each alternative on a fresh broken drill; every submit passes.
    async fn fixed(&self, d: Option<Live>) -> R<Outcome> {
        let mut out = Outcome::default();
        let d = match d {
            Some(d) => d,
            None => self.start(false).await?,
        };
        self.say("fixed: applying the reference solution");
        let r = async {
            let s: SolveResponse = self.call("solve --apply", self.client.post(&format!("/v1/drills/{}/solve", d.id), &SolveRequest { apply: true, abandon: false })).await?;
            let notes: Vec<String> = s.steps.iter().filter_map(|st| st.result.as_ref().filter(|x| x.exit_code != 0).map(|x| step_note("the solution", &st.host, &st.run, x))).collect();
            Ok((self.submit(&d, "fixed").await?, notes))
        }
        .await;
        self.stop(d).await;
        let (v, notes) = r?;
        out.notes.extend(notes);
        for c in v.checks.iter().filter(|c| !c.passed) {
            out.fail(format!("the reference solution does not pass: check `{}` fails: {}", c.name, c.saw), vec![c.into()]);
        }
        for a in &self.sc.alternatives {
            self.say(&format!("fixed: alternative `{}`", a.name));
            match self.attempt(a, "alternative").await {
                Ok((v, notes)) => {
                    out.notes.extend(notes);
                    for c in v.checks.iter().filter(|c| !c.passed) {
                        out.fail(format!("alternative `{}` does not pass: check `{}` fails: {}", a.name, c.name, c.saw), vec![c.into()]);
                    }
                }
                Err(E::Fail(f)) => out.fail(format!("alternative `{}`: {}", a.name, f.message), f.evidence),
                Err(E::Cancelled) => return Err(E::Cancelled),
            }
        }
        Ok(out)
    }

    /// A fresh broken drill, `a`'s steps run in it (a step exiting non-zero is noted,
    /// and the submit still happens), the verdict.
    async fn attempt(&self, a: &Attempt, what: &str) -> R<(Verdict, Vec<String>)> {
        let d = self.start(false).await?;
        let r = async {
            let mut notes = Vec::new();
            for s in &a.steps {
                let req = ExecRequest { host: s.host.clone(), command: s.run.clone(), timeout_secs: STEP_TIMEOUT_SECS };
                let x: ExecResponse = self.call(&format!("exec on {}", s.host), self.client.post(&format!("/v1/drills/{}/exec", d.id), &req)).await?;
                if x.exit_code != 0 {
                    notes.push(step_note(&format!("{what} `{}`", a.name), &s.host, &s.run, &x));
                }
            }
            Ok((self.submit(&d, &format!("{what} `{}`", a.name)).await?, notes))
        }
        .await;
        self.stop(d).await;
        r
    }

    /// Starts the scenario (not cancellable: a start cut short would leave a drill whose
    /// id we never learn); with `without_faults` for the baseline.
    async fn start(&self, without_faults: bool) -> R<Live> {
        let req = StartRequest { scenario: self.sc.id.clone(), source: Some(self.source.clone()), dry_run: false, without_faults, ephemeral: true, ..Default::default() };
        let r: Result<StartResponse, _> = self.client.post("/v1/drills", &req).await;
        let what = if without_faults { "without faults" } else { "with its faults" };
        let info = match r {
            Ok(StartResponse { drill: Some(info), .. }) => info,
            Ok(_) => return fail(format!("starting the drill {what}: the daemon answered without a drill")),
            Err(e) => return fail(format!("starting the drill {what} failed: {e}")),
        };
        self.shared.live.lock().unwrap_or_else(|e| e.into_inner()).insert(info.id.clone());
        let d = Live { marks: leftovers::marks(&info.id), id: info.id };
        if self.cancelled() {
            self.stop(d).await;
            return Err(E::Cancelled);
        }
        Ok(d)
    }

    async fn submit(&self, d: &Live, stage: &str) -> R<Verdict> {
        self.say(&format!("{stage}: submit (drill {})", d.id));
        let r: SubmitResponse = self.call("submit", self.client.post(&format!("/v1/drills/{}/submit", d.id), &())).await?;
        Ok(r.verdict)
    }

    /// An API call, cut short by Ctrl-C; its error is a stage failure.
    async fn call<T>(&self, what: &str, f: impl Future<Output = Result<T, crate::client::CallError>>) -> R<T> {
        match self.cancellable(f).await? {
            Ok(x) => Ok(x),
            Err(e) => fail(format!("{what}: {e}")),
        }
    }

    async fn cancellable<T>(&self, f: impl Future<Output = T>) -> R<T> {
        let mut rx = self.shared.cancel.clone();
        tokio::select! {
            x = f => Ok(x),
            _ = rx.wait_for(|c| *c) => Err(E::Cancelled),
        }
    }

    /// Stops the drill, then looks for what it left (stage 5). Never cancelled.
    async fn stop(&self, d: Live) {
        let r: Result<StopResponse, _> = self.client.delete(&format!("/v1/drills/{}", d.id)).await;
        self.shared.live.lock().unwrap_or_else(|e| e.into_inner()).remove(&d.id);
        let t = Instant::now();
        let mut problems = match r {
            Ok(s) => s.errors.iter().map(|e| format!("stopping it: {e}")).collect(),
            Err(e) => vec![format!("stopping it failed: {e}")],
        };
        let (pid, dirs) = (self.shared.daemon_pid, self.shared.dirs.clone());
        let marks = d.marks.clone();
        let found = tokio::task::spawn_blocking(move || {
            // Give the kernel a moment to finish what teardown started (a process exiting).
            let mut found = leftovers::scan(&marks, pid, &dirs);
            for _ in 0..10 {
                if found.is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
                found = leftovers::scan(&marks, pid, &dirs);
            }
            found
        })
        .await
        .unwrap_or_else(|e| vec![format!("the leftover scan failed: {e}")]);
        problems.extend(found);
        let mut c = self.clean.lock().unwrap_or_else(|e| e.into_inner());
        c.secs += t.elapsed().as_secs_f64();
        if !problems.is_empty() {
            c.outcome.fail(format!("drill {} left after its stop: {}", d.id, problems.join("; ")), Vec::new());
        }
    }
}

fn step_note(what: &str, host: &str, run: &str, x: &ExecResponse) -> String {
    let err = x.stderr.trim();
    let err = if err.is_empty() { x.stdout.trim() } else { err };
    format!("{what}: step `{run}` on {host} exited {}: {}", x.exit_code, err.lines().last().unwrap_or(""))
}
