//! Scenario packs: a directory holding `pack.toml` (the [`Manifest`]), scenario files
//! beside it (`*.toml`), and optional assets under `files/` that scenarios place in hosts
//! (`[[files]]`). The built-in pack is the repository's top-level `scenarios/`.
//!
//! [`load`] reads a whole pack and reports every problem of every file in one run; it
//! never reads outside the pack directory (no `..`, no absolute path, no symlink that
//! leaves it). The format is documented in docs/packs.md.

mod manifest;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::scenario::{self, Scenario};
use crate::source::SourceError;

pub use manifest::{KERNEL_FEATURES, Manifest, parse_manifest};

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

/// Reads and validates the pack in `dir`.
pub fn load(dir: &Path) -> Result<Pack, LoadError> {
    let io = |p: &Path, e: std::io::Error| LoadError::Io { path: p.display().to_string(), message: e.to_string() };
    let meta = std::fs::metadata(dir).map_err(|e| io(dir, e))?;
    if !meta.is_dir() {
        return Err(LoadError::Io { path: dir.display().to_string(), message: "is not a directory (a pack is a directory holding pack.toml)".into() });
    }
    let mut problems = Vec::new();
    let manifest_path = dir.join(MANIFEST);
    let manifest = match read_text(dir, MANIFEST) {
        Ok(text) => match parse_manifest(MANIFEST, &text) {
            Ok(m) => Some(m),
            Err(e) => {
                problems.extend(e);
                None
            }
        },
        Err(Refused::Io(e)) => return Err(io(&manifest_path, e)),
        Err(Refused::Unsafe(why)) => {
            problems.push(SourceError::at(MANIFEST, "", None, why, "make pack.toml a regular file inside the pack"));
            None
        }
    };
    let mut files: Vec<String> =
        std::fs::read_dir(dir).map_err(|e| io(dir, e))?.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".toml") && n != MANIFEST).collect();
    files.sort();
    if files.len() > MAX_SCENARIOS {
        problems.push(SourceError::at(MANIFEST, "", None, format!("the pack holds {} scenario files", files.len()), format!("a pack holds at most {MAX_SCENARIOS}; split it")));
        files.truncate(MAX_SCENARIOS);
    }
    let mut scenarios = Vec::new();
    for f in &files {
        let text = match read_text(dir, f) {
            Ok(t) => t,
            Err(Refused::Io(e)) => return Err(io(&dir.join(f), e)),
            Err(Refused::Unsafe(why)) => {
                problems.push(SourceError::at(f, "", None, why, "make every scenario a regular file inside the pack"));
                continue;
            }
        };
        match scenario::parse(f, &text) {
            Ok(s) => {
                problems.extend(check_files(dir, f, &text, &s));
                scenarios.push(PackScenario { file: f.clone(), scenario: s });
            }
            Err(e) => problems.extend(e.0),
        }
    }
    for (i, a) in scenarios.iter().enumerate() {
        if let Some(b) = scenarios[..i].iter().find(|b| b.scenario.id == a.scenario.id) {
            problems.push(SourceError::at(&a.file, "", None, format!("scenario id `{}` is also the id of {}", a.scenario.id, b.file), "give every scenario of a pack its own id"));
        }
    }
    if files.is_empty() {
        problems.push(SourceError::at(MANIFEST, "", None, "the pack holds no scenario", "put scenario files (*.toml) beside pack.toml"));
    }
    match manifest {
        Some(manifest) if problems.is_empty() => Ok(Pack { dir: dir.to_path_buf(), manifest, scenarios }),
        _ => Err(LoadError::Invalid(problems)),
    }
}

enum Refused {
    Io(std::io::Error),
    Unsafe(String),
}

/// Reads `rel` inside `dir`, refusing a path that leaves it, a symlink, a non-regular
/// file and a file over [`MAX_FILE_BYTES`].
fn read_text(dir: &Path, rel: &str) -> Result<String, Refused> {
    let bytes = read_inside(dir, rel)?;
    String::from_utf8(bytes).map_err(|_| Refused::Unsafe(format!("{rel} is not UTF-8 text")))
}

/// The bytes of pack file `rel` (see [`read_text`] for what is refused).
pub fn read_inside_pack(dir: &Path, rel: &str) -> Result<Vec<u8>, String> {
    read_inside(dir, rel).map_err(|e| match e {
        Refused::Io(e) => format!("{rel}: {e}"),
        Refused::Unsafe(why) => why,
    })
}

fn read_inside(dir: &Path, rel: &str) -> Result<Vec<u8>, Refused> {
    if let Some(why) = scenario::source_problem(rel) {
        return Err(Refused::Unsafe(format!("{rel} {why}")));
    }
    // Every component is checked with lstat: a symlink anywhere on the way is refused
    // (it could point out of the pack, now or after a later change).
    let mut p = dir.to_path_buf();
    for c in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
        p.push(c);
        let m = std::fs::symlink_metadata(&p).map_err(Refused::Io)?;
        if m.file_type().is_symlink() {
            return Err(Refused::Unsafe(format!("{rel} is or passes through a symlink; a pack may not link outside itself")));
        }
    }
    let m = std::fs::symlink_metadata(&p).map_err(Refused::Io)?;
    if !m.is_file() {
        return Err(Refused::Unsafe(format!("{rel} is not a regular file")));
    }
    if m.len() > MAX_FILE_BYTES {
        return Err(Refused::Unsafe(format!("{rel} is {} bytes; a pack file may hold at most {MAX_FILE_BYTES}", m.len())));
    }
    std::fs::read(&p).map_err(Refused::Io)
}

/// Every `[[files]]` source of scenario `s` exists inside the pack (as a regular file).
fn check_files(dir: &Path, file: &str, text: &str, s: &Scenario) -> Vec<SourceError> {
    let mut out = Vec::new();
    for f in &s.files {
        if let Err(why) = read_inside_pack(dir, &f.source) {
            let span = text.find(&format!("\"{}\"", f.source)).map(|i| i..i + 1);
            out.push(SourceError::at(
                file,
                text,
                span,
                format!("file `{}` for host `{}`: {why}", f.source, f.host),
                "put the file under the pack's files/ directory and name it by its path relative to pack.toml",
            ));
        }
    }
    out
}
