//! `drill pack test`'s results: the data (`--json`), the table, the live progress lines.

use std::collections::BTreeMap;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

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

/// The live progress on stderr. On a terminal (and not under CI): a bar over the
/// scenarios and one line per scenario with what it is doing (indicatif); otherwise a
/// plain line per finished stage.
pub struct Progress {
    live: Option<Live>,
}

struct Live {
    multi: MultiProgress,
    overall: ProgressBar,
    lines: Vec<ProgressBar>,
}

/// The bar's template: done of all, the time so far.
const BAR: &str = "{bar:30.cyan/blue} {pos}/{len} scenarios tested ({elapsed})";

impl Progress {
    /// `enabled`: drawing is wanted at all (it also needs a terminal, see
    /// [`crate::progress::enabled`]).
    pub fn new(ids: &[String], enabled: bool) -> Progress {
        if !(enabled && crate::progress::enabled()) {
            return Progress { live: None };
        }
        Progress { live: Some(Live::new(ids, ProgressDrawTarget::stderr())) }
    }

    /// What scenario `i` is doing now (live only).
    pub fn status(&self, i: usize, _id: &str, text: &str) {
        if let Some(l) = &self.live {
            l.set(i, text);
        }
    }

    /// A stage of scenario `i` ended (also printed as a plain line off a terminal).
    pub fn event(&self, i: usize, id: &str, text: &str) {
        match &self.live {
            Some(l) => l.set(i, text),
            None => eprintln!("{id}: {text}"),
        }
    }

    /// Scenario `i` is done: its line keeps `text`, the bar moves on.
    pub fn finished(&self, i: usize, id: &str, text: &str) {
        match &self.live {
            Some(l) => {
                if let Some(b) = l.lines.get(i) {
                    b.finish_with_message(text.to_string());
                }
                l.overall.inc(1);
            }
            None => eprintln!("{id}: {text}"),
        }
    }

    /// The run is over: the bar stops where it is (drawn once more, then left).
    pub fn done(&self) {
        if let Some(l) = &self.live {
            l.overall.abandon();
            for b in &l.lines {
                if !b.is_finished() {
                    b.abandon();
                }
            }
        }
    }

    /// Prints `line` on stderr without tearing the live lines.
    pub fn println(&self, line: &str) {
        match &self.live {
            Some(l) => l.multi.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// How many scenarios the bar counts as done (tests).
    #[cfg(test)]
    fn position(&self) -> Option<u64> {
        self.live.as_ref().map(|l| l.overall.position())
    }
}

impl Live {
    fn new(ids: &[String], target: ProgressDrawTarget) -> Live {
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(ids.len() as u64));
        overall.set_style(ProgressStyle::with_template(BAR).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=>-"));
        overall.enable_steady_tick(std::time::Duration::from_millis(200));
        let w = ids.iter().map(|s| s.len()).max().unwrap_or(0);
        let style = ProgressStyle::with_template(&format!("  {{prefix:<{w}}}  {{wide_msg}}")).unwrap_or_else(|_| ProgressStyle::default_spinner());
        let lines = ids
            .iter()
            .map(|id| {
                let b = multi.add(ProgressBar::new_spinner());
                b.set_style(style.clone());
                b.set_prefix(id.clone());
                b.set_message("waiting");
                b
            })
            .collect();
        Live { multi, overall, lines }
    }

    fn set(&self, i: usize, text: &str) {
        if let Some(b) = self.lines.get(i) {
            b.set_message(text.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_counts_finished_scenarios() {
        let ids: Vec<String> = ["a", "bb"].map(String::from).to_vec();
        let p = Progress { live: Some(Live::new(&ids, ProgressDrawTarget::hidden())) };
        p.status(0, "a", "baseline ...");
        p.event(0, "a", "baseline pass (1.0s)");
        assert_eq!(p.position(), Some(0));
        p.finished(0, "a", "done (2.0s)");
        assert_eq!(p.position(), Some(1));
        p.finished(1, "bb", "done (2.0s)");
        assert_eq!(p.position(), Some(2));
        p.done();
        // Off a terminal: no bar.
        assert_eq!(Progress { live: None }.position(), None);
    }

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
