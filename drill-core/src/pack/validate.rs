//! `drill pack validate`: everything wrong with a pack (or one scenario file) in one run:
//! schema errors, cross-references, addresses and routes, and the authoring lints. Each
//! problem names its file, line and column and says what to do.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{LoadError, MANIFEST, check_files, crossref, lint, parse_manifest, read_pack, read_text};
use crate::scenario::{self, Scenario};
use crate::source::SourceError;

/// Whether a problem is an error of the format (the drill cannot run, or runs wrong) or
/// an authoring lint (it runs, but is not yet a good drill). Both make a pack invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProblemKind {
    Error,
    Lint,
}

/// One problem, where it is and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: String,
    pub kind: ProblemKind,
}

impl Problem {
    fn new(e: SourceError, kind: ProblemKind, prefix: &str) -> Problem {
        Problem { file: format!("{prefix}{}", e.file), line: e.line, column: e.column, message: e.message, help: e.help, kind }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lint = if self.kind == ProblemKind::Lint { "lint: " } else { "" };
        write!(f, "{}:{}:{}: {lint}{}", self.file, self.line, self.column, self.message)?;
        if !self.help.is_empty() {
            write!(f, "\n  help: {}", self.help)?;
        }
        Ok(())
    }
}

/// A scenario that parsed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioSummary {
    pub file: String,
    pub id: String,
    pub title: String,
}

/// What `drill pack validate --json` prints (a stable shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub valid: bool,
    /// The pack's name (its pack.toml), when it has one that parsed.
    pub pack: Option<String>,
    pub scenarios: Vec<ScenarioSummary>,
    pub problems: Vec<Problem>,
}

/// Validates `path`: a pack directory, or one scenario file (whose `[[files]]` resolve
/// against its directory when that holds pack.toml). Err only when `path` cannot be read
/// (missing, unreadable, not a file or directory): exit 2.
pub fn validate(path: &Path) -> Result<Report, LoadError> {
    let io = |e: std::io::Error| LoadError::Io { path: path.display().to_string(), message: e.to_string() };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return validate_dir(path);
    }
    if !meta.is_file() {
        return Err(LoadError::Io { path: path.display().to_string(), message: "is not a regular file or a directory".into() });
    }
    let canon = std::fs::canonicalize(path).map_err(io)?;
    let file = path.display().to_string();
    let text = match super::read::read_regular(&canon, &file) {
        Ok(b) => String::from_utf8(b).map_err(|_| LoadError::Io { path: file.clone(), message: "is not UTF-8 text".into() })?,
        Err(super::Refused::Io(e)) => return Err(io(e)),
        Err(super::Refused::Unsafe(why)) => return Err(LoadError::Io { path: file.clone(), message: why }),
    };
    let dir = canon.parent().filter(|d| d.join(MANIFEST).is_file());
    let pack = dir.and_then(|d| read_text(d, MANIFEST).ok()).and_then(|t| parse_manifest(MANIFEST, &t).ok()).map(|m| m.name);
    let mut problems = Vec::new();
    let mut scenarios = Vec::new();
    match scenario::parse(&file, &text) {
        Ok(s) => {
            problems.extend(check_files(dir, &file, &text, &s).into_iter().map(|e| Problem::new(e, ProblemKind::Error, "")));
            problems.extend(checks_of(&file, &text, &s, ""));
            scenarios.push(ScenarioSummary { file: file.clone(), id: s.id, title: s.title });
        }
        Err(e) => problems.extend(e.0.into_iter().map(|e| Problem::new(e, ProblemKind::Error, ""))),
    }
    Ok(Report { valid: problems.is_empty(), pack, scenarios, problems })
}

/// The cross-reference errors, the plan's refusals and the lints of a scenario that parsed.
fn checks_of(file: &str, text: &str, s: &Scenario, prefix: &str) -> Vec<Problem> {
    let mut out: Vec<Problem> = crossref(file, text, s).into_iter().chain(plan_refusals(file, text, s)).map(|e| Problem::new(e, ProblemKind::Error, prefix)).collect();
    out.extend(lint(file, text, s).into_iter().map(|e| Problem::new(e, ProblemKind::Lint, prefix)));
    out
}

/// What `drill start` would refuse when it compiles the plan: a fault the engine could
/// not measure after apply. Compiled with each delay backend (the daemon picks one by
/// the kernel), so a refusal on either machine is found here.
fn plan_refusals(file: &str, text: &str, s: &Scenario) -> Vec<SourceError> {
    use crate::plan::{Backends, DelayBackend, compile};
    let sp = super::spans::Spans::new(text);
    let mut out: Vec<SourceError> = Vec::new();
    for (delay, on) in [(DelayBackend::Netem, "with netem"), (DelayBackend::Wire, "with the userspace delay wire (kernels without netem)")] {
        if let Err(e) = compile(s, "abcdef", 0, Backends { delay }) {
            let message = format!("fault `{}` cannot be measured after apply {on}: {}", s.fault_names.get(e.index).map_or("?", String::as_str), e.why);
            if !out.iter().any(|o| o.help == e.help) {
                out.push(SourceError::at(file, text, sp.item("faults", e.index), message, e.help));
            }
        }
    }
    out
}

fn validate_dir(dir: &Path) -> Result<Report, LoadError> {
    let r = read_pack(dir)?;
    let d = dir.display().to_string();
    let prefix = if d.ends_with('/') { d } else { format!("{d}/") };
    let mut problems: Vec<Problem> = r.problems.into_iter().map(|e| Problem::new(e, ProblemKind::Error, &prefix)).collect();
    let mut scenarios = Vec::new();
    for (ps, text) in &r.scenarios {
        problems.extend(checks_of(&ps.file, text, &ps.scenario, &prefix));
        scenarios.push(ScenarioSummary { file: format!("{prefix}{}", ps.file), id: ps.scenario.id.clone(), title: ps.scenario.title.clone() });
    }
    problems.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    Ok(Report { valid: problems.is_empty(), pack: r.manifest.map(|m| m.name), scenarios, problems })
}
