//! `drill pack test`'s results: the data (`--json`), the table, the live progress lines.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

use drill_core::verdict::CheckResult;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Baseline,
    Broken,
    Workarounds,
    Fixed,
    Clean,
}

pub const STAGES: [Stage; 5] = [Stage::Baseline, Stage::Broken, Stage::Workarounds, Stage::Fixed, Stage::Clean];

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Baseline => "baseline",
            Stage::Broken => "broken",
            Stage::Workarounds => "workarounds",
            Stage::Fixed => "fixed",
            Stage::Clean => "clean",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pass,
    Fail,
    /// Not run: an earlier stage failed (or the run was interrupted).
    Skipped,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Skipped => "skipped",
        }
    }
}

/// A check's own result, as the daemon's verdict gave it.
#[derive(Clone, Debug, Serialize)]
pub struct Evidence {
    pub check: String,
    pub kind: String,
    pub passed: bool,
    pub saw: String,
    pub details: serde_json::Value,
}

impl From<&CheckResult> for Evidence {
    fn from(c: &CheckResult) -> Evidence {
        Evidence { check: c.name.clone(), kind: c.kind.clone(), passed: c.passed, saw: c.saw.clone(), details: c.details.clone() }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub message: String,
    pub evidence: Vec<Evidence>,
}

/// What a stage found: its failures and what it did on the way (which checks caught a
/// workaround, steps that exited non-zero).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcome {
    pub failures: Vec<Failure>,
    pub notes: Vec<String>,
}

impl Outcome {
    pub fn fail(&mut self, message: String, evidence: Vec<Evidence>) {
        self.failures.push(Failure { message, evidence });
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct StageReport {
    pub stage: Stage,
    pub status: Status,
    pub secs: f64,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    pub id: String,
    pub file: String,
    pub stages: Vec<StageReport>,
    pub secs: f64,
}

impl ScenarioReport {
    pub fn passed(&self) -> bool {
        self.stages.iter().all(|s| s.status == Status::Pass)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub pack: String,
    pub dir: String,
    pub jobs: usize,
    pub scenarios: Vec<ScenarioReport>,
    /// Machine-wide leftovers of the whole run (nftables, qdiscs, eBPF), compared with
    /// the snapshot taken before it.
    pub machine: Vec<String>,
    /// Each stage's time summed over the scenarios.
    pub stage_secs: BTreeMap<Stage, f64>,
    pub wall_secs: f64,
    pub interrupted: bool,
    pub passed: bool,
}

/// "4m12s", "9.1s".
pub fn dur(secs: f64) -> String {
    if secs >= 60.0 {
        let s = secs.round() as u64;
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{secs:.1}s")
    }
}

/// The table, then every failure with its evidence, then the figures.
pub fn print_table(r: &RunReport) {
    let w = r.scenarios.iter().map(|s| s.id.len()).max().unwrap_or(8).max(8);
    let mut head = format!("{:<w$}", "scenario");
    for st in STAGES {
        head.push_str(&format!("  {:<16}", st.name()));
    }
    println!("{head}  total");
    for s in &r.scenarios {
        let mut line = format!("{:<w$}", s.id);
        for st in STAGES {
            let cell = match s.stages.iter().find(|x| x.stage == st) {
                Some(x) if x.status == Status::Skipped => "skipped".to_string(),
                Some(x) => format!("{} {:>7}", x.status.word(), dur(x.secs)),
                None => "-".into(),
            };
            line.push_str(&format!("  {cell:<16}"));
        }
        println!("{line}  {}", dur(s.secs));
    }
    for s in &r.scenarios {
        for st in &s.stages {
            for f in &st.outcome.failures {
                println!("\n{} {}: {}", s.id, st.stage.name(), f.message);
                for e in &f.evidence {
                    println!("    check `{}` ({}, {}): {}", e.check, e.kind, if e.passed { "passed" } else { "failed" }, e.saw);
                }
            }
            for n in &st.outcome.notes {
                println!("  {} {}: {n}", s.id, st.stage.name());
            }
        }
    }
    if r.machine.is_empty() {
        println!("\nmachine: the root namespace's nftables ruleset, its links' qdiscs and drilld's eBPF objects are as before the run");
    } else {
        println!("\nmachine: the run left changes behind:");
        for m in &r.machine {
            println!("    {m}");
        }
    }
    let per: Vec<String> = r.stage_secs.iter().map(|(s, t)| format!("{} {}", s.name(), dur(*t))).collect();
    let summed: f64 = r.scenarios.iter().map(|s| s.secs).sum();
    println!("stages summed: {} (scenarios summed {})", per.join(", "), dur(summed));
    let verdict = if r.interrupted {
        "interrupted"
    } else if r.passed {
        "all passed"
    } else {
        "FAILED"
    };
    println!("pack {}: {} scenarios, {} stages, {} with --jobs {}: {verdict}", r.pack, r.scenarios.len(), STAGES.len(), dur(r.wall_secs), r.jobs);
}

/// One line per scenario on stderr: redrawn in place on a terminal, plain lines (one per
/// finished stage) otherwise.
pub struct Progress {
    tty: bool,
    w: usize,
    state: Mutex<(Vec<String>, usize)>,
}

impl Progress {
    pub fn new(ids: &[String], enabled: bool) -> Progress {
        let tty = enabled && std::io::IsTerminal::is_terminal(&std::io::stderr());
        let w = ids.iter().map(|s| s.len()).max().unwrap_or(0);
        let lines = ids.iter().map(|id| format!("{id:<w$}  waiting")).collect();
        let p = Progress { tty, w, state: Mutex::new((lines, 0)) };
        p.redraw();
        p
    }

    /// What scenario `i` is doing now (live only).
    pub fn status(&self, i: usize, id: &str, text: &str) {
        self.set(i, id, text);
        self.redraw();
    }

    /// A stage of scenario `i` ended (also printed as a plain line off a terminal).
    pub fn event(&self, i: usize, id: &str, text: &str) {
        self.set(i, id, text);
        if self.tty {
            self.redraw();
        } else {
            eprintln!("{id}: {text}");
        }
    }

    fn set(&self, i: usize, id: &str, text: &str) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = st.0.get_mut(i) {
            *l = format!("{id:<w$}  {text}", w = self.w);
        }
    }

    fn redraw(&self) {
        if !self.tty {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = std::io::stderr().lock();
        let mut s = String::new();
        if st.1 > 0 {
            s.push_str(&format!("\x1b[{}A", st.1));
        }
        for l in &st.0 {
            let mut l = l.clone();
            l.truncate(150);
            s.push_str(&format!("\r\x1b[2K{l}\n"));
        }
        let _ = err.write_all(s.as_bytes());
        let _ = err.flush();
        st.1 = st.0.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_a_person_writes_them() {
        assert_eq!(dur(9.14), "9.1s");
        assert_eq!(dur(252.0), "4m12s");
        assert_eq!(dur(60.0), "1m00s");
    }

    #[test]
    fn stages_serialize_by_their_names() {
        let names: Vec<String> = STAGES.iter().map(|s| serde_json::to_value(s).unwrap().as_str().unwrap().to_string()).collect();
        assert_eq!(names, STAGES.iter().map(|s| s.name()).collect::<Vec<_>>());
        assert_eq!(serde_json::to_value(Status::Skipped).unwrap(), "skipped");
    }
}
