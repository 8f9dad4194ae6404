//! Where packs are: the built-in pack ([`builtin_dir`]), the installed ones
//! ([`install_dir`], [`installed`]), and which files of a pack an install copies
//! ([`pack_files`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{INSTALL_DIR, MANIFEST, MAX_FILE_BYTES, load};

/// The environment variable that overrides [`INSTALL_DIR`] (tests, a user's own tree).
pub const PACKS_DIR_ENV: &str = "DRILL_PACKS_DIR";
/// The environment variable that names the built-in pack's directory.
pub const BUILTIN_ENV: &str = crate::builtin::ENV;
/// The name of the built-in pack (an install may not take it).
pub const BUILTIN_NAME: &str = crate::builtin::NAME;
/// The most files (and directories) under a pack's `files/`.
pub const MAX_ASSETS: usize = 1000;

/// Where installed packs live: `$DRILL_PACKS_DIR`, else [`INSTALL_DIR`].
pub fn install_dir() -> PathBuf {
    std::env::var_os(PACKS_DIR_ENV).filter(|v| !v.is_empty()).map_or_else(|| PathBuf::from(INSTALL_DIR), PathBuf::from)
}

/// The built-in pack's directory ([`crate::builtin::dir`], the one place that knows).
pub fn builtin_dir() -> Option<PathBuf> {
    crate::builtin::dir().map(|d| std::fs::canonicalize(&d).unwrap_or(d))
}

/// A pack found by [`installed`]: what it is, or why it did not load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    /// The pack's name (its directory's name when it did not load).
    pub name: String,
    pub version: Option<String>,
    pub scenarios: usize,
    pub path: PathBuf,
    pub builtin: bool,
    /// Why it did not load (every problem), when it did not.
    pub error: Option<String>,
}

fn listed(dir: &Path, builtin: bool) -> Listed {
    let dir_name = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    match load(dir) {
        Ok(p) => Listed { name: p.manifest.name, version: Some(p.manifest.version.to_string()), scenarios: p.scenarios.len(), path: dir.to_path_buf(), builtin, error: None },
        Err(e) => Listed { name: if builtin { BUILTIN_NAME.into() } else { dir_name }, version: None, scenarios: 0, path: dir.to_path_buf(), builtin, error: Some(e.to_string()) },
    }
}

/// The built-in pack (when found) and every pack under [`install_dir`] (each
/// subdirectory; names starting with `.` are an install in progress and skipped), in
/// name order. A pack that fails to load is listed with its error.
pub fn installed() -> std::io::Result<Vec<Listed>> {
    let mut out: Vec<Listed> = builtin_dir().iter().map(|d| listed(d, true)).collect();
    let root = install_dir();
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok()).filter(|e| !e.file_name().to_string_lossy().starts_with('.') && e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect();
    dirs.sort();
    out.extend(dirs.iter().map(|d| listed(d, false)));
    Ok(out)
}

/// The files an install copies, relative to the pack: pack.toml, the scenario files
/// beside it and everything under `files/`; regular files only (a symlink, a FIFO or a
/// device anywhere is refused, as is a file over the size limit).
pub fn pack_files(dir: &Path) -> Result<Vec<String>, String> {
    let mut out = vec![MANIFEST.to_string()];
    let top = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names: Vec<String> = top.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".toml") && n != MANIFEST && !n.starts_with('.')).collect();
    names.sort();
    for n in &names {
        regular(dir, n)?;
    }
    regular(dir, MANIFEST)?;
    out.extend(names);
    let files = dir.join("files");
    match std::fs::symlink_metadata(&files) {
        Ok(m) if m.is_dir() => walk(dir, "files", &mut out, 0)?,
        Ok(_) => return Err("files is not a directory".into()),
        Err(_) => {}
    }
    Ok(out)
}

fn regular(dir: &Path, rel: &str) -> Result<(), String> {
    let m = std::fs::symlink_metadata(dir.join(rel)).map_err(|e| format!("{rel}: {e}"))?;
    if !m.is_file() {
        return Err(format!("{rel} is not a regular file (a pack holds regular files only, no symlinks)"));
    }
    if m.len() > MAX_FILE_BYTES {
        return Err(format!("{rel} is {} bytes; a pack file may hold at most {MAX_FILE_BYTES}", m.len()));
    }
    Ok(())
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<String>, depth: usize) -> Result<(), String> {
    if depth > 16 {
        return Err(format!("{rel} is nested too deep (at most 16 directories)"));
    }
    let mut entries: Vec<(String, std::fs::FileType)> =
        std::fs::read_dir(dir.join(rel)).map_err(|e| format!("{rel}: {e}"))?.filter_map(|e| e.ok()).filter_map(|e| Some((e.file_name().to_str()?.to_string(), e.file_type().ok()?))).collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, ty) in entries {
        let p = format!("{rel}/{name}");
        if out.len() > MAX_ASSETS {
            return Err(format!("the pack holds more than {MAX_ASSETS} files"));
        }
        if ty.is_dir() {
            walk(dir, &p, out, depth + 1)?;
        } else {
            regular(dir, &p)?;
            out.push(p);
        }
    }
    Ok(())
}
