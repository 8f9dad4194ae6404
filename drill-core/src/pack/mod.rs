//! Scenario packs: a directory holding `pack.toml` (the [`Manifest`]), scenario files
//! beside it (`*.toml`), and optional assets under `files/` that scenarios place in hosts
//! (`[[files]]`). The built-in pack is the repository's top-level `scenarios/`.
//!
//! [`load`] reads a whole pack and reports every problem of every file in one run; it
//! never reads outside the pack directory (no `..`, no absolute path, no symlink that
//! leaves it). The format is documented in docs/packs.md.

mod crossref;
mod install;
mod lint;
mod manifest;
mod read;
mod skeleton;
mod spans;
mod validate;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::scenario::{self, Scenario};
use crate::source::SourceError;

pub use crossref::crossref;
pub use install::{BUILTIN_ENV, BUILTIN_NAME, Listed, PACKS_DIR_ENV, builtin_dir, install_dir, installed, pack_files};
pub use lint::{MIN_HINTS, lint, needs_traffic};
pub use manifest::{KERNEL_FEATURES, Manifest, manifest_keys, parse_manifest};
pub use read::read_inside_pack;
use read::{Refused, read_text};
pub use skeleton::{SCENARIO_FILE, skeleton};
pub use validate::{Problem, ProblemKind, Report, ScenarioSummary, validate};

/// The engine's version, which `engine` requirements of packs are held to.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The manifest's file name.
pub const MANIFEST: &str = "pack.toml";
/// Where installed packs live (one directory per pack, named after it).
pub const INSTALL_DIR: &str = "/var/lib/drill/packs";
/// The largest file a pack may hold (a scenario, the manifest, an asset).
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// The most scenarios a pack may hold.
pub const MAX_SCENARIOS: usize = 500;

/// A scenario of a pack, with the file it came from (relative to the pack directory).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackScenario {
    pub file: String,
    pub scenario: Scenario,
}

/// A loaded, valid pack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pack {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub scenarios: Vec<PackScenario>,
}

impl Pack {
    pub fn scenario(&self, id: &str) -> Option<&Scenario> {
        self.scenarios.iter().map(|s| &s.scenario).find(|s| s.id == id)
    }
}

/// Why a pack did not load: it could not be read (exit 2), or it is invalid (exit 1:
/// every problem, each with its file:line:column).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{}", crate::source::SourceErrors(.0.clone()))]
    Invalid(Vec<SourceError>),
}

/// Reads and validates the pack in `dir` (schema, references, addresses; not the
/// authoring lints, which [`validate`] adds).
pub fn load(dir: &Path) -> Result<Pack, LoadError> {
    let r = read_pack(dir)?;
    match r.manifest {
        Some(manifest) if r.problems.is_empty() => Ok(Pack { dir: dir.to_path_buf(), manifest, scenarios: r.scenarios.into_iter().map(|(s, _)| s).collect() }),
        _ => Err(LoadError::Invalid(r.problems)),
    }
}

/// A pack as read: its manifest if it parsed, every scenario that parsed (with its text),
/// and every problem found.
pub(crate) struct Read {
    pub manifest: Option<Manifest>,
    pub scenarios: Vec<(PackScenario, String)>,
    pub problems: Vec<SourceError>,
}

fn io_error(p: &Path, e: std::io::Error) -> LoadError {
    LoadError::Io { path: p.display().to_string(), message: e.to_string() }
}

/// Reads the pack in `dir`: Err only when it cannot be read at all (exit 2).
pub(crate) fn read_pack(dir: &Path) -> Result<Read, LoadError> {
    let meta = std::fs::metadata(dir).map_err(|e| io_error(dir, e))?;
    if !meta.is_dir() {
        return Err(LoadError::Io { path: dir.display().to_string(), message: "is not a directory (a pack is a directory holding pack.toml)".into() });
    }
    let mut problems = Vec::new();
    let manifest = match read_text(dir, MANIFEST) {
        Ok(text) => parse_manifest(MANIFEST, &text).map_err(|e| problems.extend(e)).ok(),
        Err(Refused::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            problems.push(SourceError::at(MANIFEST, "", None, "the directory has no pack.toml", "a pack is a directory holding pack.toml and its scenario files; `drill pack new DIR` writes one"));
            None
        }
        Err(Refused::Io(e)) => return Err(io_error(&dir.join(MANIFEST), e)),
        Err(Refused::Unsafe(why)) => {
            problems.push(SourceError::at(MANIFEST, "", None, why, "make pack.toml a regular file inside the pack"));
            None
        }
    };
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| io_error(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml") && n != MANIFEST && !n.starts_with('.'))
        .collect();
    files.sort();
    if files.len() > MAX_SCENARIOS {
        problems.push(SourceError::at(MANIFEST, "", None, format!("the pack holds {} scenario files", files.len()), format!("a pack holds at most {MAX_SCENARIOS}; split it")));
        files.truncate(MAX_SCENARIOS);
    }
    let mut scenarios = Vec::new();
    for f in &files {
        let text = match read_text(dir, f) {
            Ok(t) => t,
            Err(Refused::Io(e)) => return Err(io_error(&dir.join(f), e)),
            Err(Refused::Unsafe(why)) => {
                problems.push(SourceError::at(f, "", None, why, "make every scenario a regular file inside the pack"));
                continue;
            }
        };
        match scenario::parse(f, &text) {
            Ok(s) => {
                problems.extend(check_files(Some(dir), f, &text, &s));
                scenarios.push((PackScenario { file: f.clone(), scenario: s }, text));
            }
            Err(e) => problems.extend(e.0),
        }
    }
    for (i, (a, _)) in scenarios.iter().enumerate() {
        if let Some((b, _)) = scenarios[..i].iter().find(|(b, _)| b.scenario.id == a.scenario.id) {
            problems.push(SourceError::at(&a.file, "", None, format!("scenario id `{}` is also the id of {}", a.scenario.id, b.file), "give every scenario of a pack its own id"));
        }
    }
    if files.is_empty() {
        problems.push(SourceError::at(MANIFEST, "", None, "the pack holds no scenario", "put scenario files (*.toml) beside pack.toml"));
    }
    Ok(Read { manifest, scenarios, problems })
}

/// Every `[[files]]` source of scenario `s` exists inside the pack `dir` (as a regular
/// file); with no pack (a lone scenario file), every `[[files]]` entry is a problem.
pub(crate) fn check_files(dir: Option<&Path>, file: &str, text: &str, s: &Scenario) -> Vec<SourceError> {
    let sp = spans::Spans::new(text);
    let mut out = Vec::new();
    for (i, f) in s.files.iter().enumerate() {
        let why = match dir {
            Some(dir) => match read_inside_pack(dir, &f.source) {
                Ok(_) => continue,
                Err(why) => why,
            },
            None => "the scenario is not in a pack (no pack.toml beside it), so it has no files".to_string(),
        };
        out.push(SourceError::at(
            file,
            text,
            sp.item_key("files", i, "source"),
            format!("file `{}` for host `{}`: {why}", f.source, f.host),
            "put the file under the pack's files/ directory and name it by its path relative to pack.toml",
        ));
    }
    out
}
