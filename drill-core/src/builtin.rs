//! The built-in scenario pack (`core`): files the daemon and the CLI read at run time,
//! never compiled into a binary. A host's PID 1 is `drilld host-init`, so whatever the
//! binary holds a learner can read with `strings /proc/1/exe`; the scenarios (hints,
//! solutions) therefore live only in the pack directory, which no host can see.
//!
//! Where the pack is found, first match wins ([`dir`]):
//! 1. `$DRILL_BUILTIN_PACK`;
//! 2. `<directory of the running binary>/../share/drill/packs/core` (an installed tree);
//! 3. `/usr/share/drill/packs/core` (the Debian package);
//! 4. the source tree's `scenarios/` (a development build, when it still exists).

use std::path::{Path, PathBuf};

use crate::pack::{self, LoadError, Pack};
use crate::scenario::Scenario;

/// The built-in pack's name.
pub const NAME: &str = "core";
/// Overrides where the built-in pack is read from.
pub const ENV: &str = "DRILL_BUILTIN_PACK";
/// Where packaged installs put the built-in pack.
pub const SYSTEM_DIR: &str = "/usr/share/drill/packs/core";
/// The source tree's pack (development builds).
const SOURCE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios");

/// The built-in pack's directory, or None when none of the places holds one.
pub fn dir() -> Option<PathBuf> {
    locate(std::env::var_os(ENV))
}

fn locate(env: Option<std::ffi::OsString>) -> Option<PathBuf> {
    if let Some(d) = env.filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    let beside_exe = std::env::current_exe().ok().and_then(|e| e.parent().map(|p| p.join("../share/drill/packs/core")));
    beside_exe.into_iter().chain([PathBuf::from(SYSTEM_DIR), PathBuf::from(SOURCE_DIR)]).find(|d| d.join(pack::MANIFEST).is_file())
}

/// The places [`dir`] looks in, for an error that says where the pack was not found.
pub fn searched() -> String {
    let exe = std::env::current_exe().ok().and_then(|e| e.parent().map(|p| p.join("../share/drill/packs/core").display().to_string())).unwrap_or_default();
    format!("${ENV}, {exe}, {SYSTEM_DIR}, {SOURCE_DIR}")
}

/// Reads and validates the built-in pack (about 2 ms in release for the built-in files:
/// callers read it afresh on each use, so an edit shows at the next start).
pub fn load() -> Result<Pack, LoadError> {
    let d = dir().ok_or_else(|| LoadError::Io { path: "the built-in pack".into(), message: format!("not found (looked in {})", searched()) })?;
    pack::load(&d)
}

/// Every built-in scenario (empty when the pack is missing or invalid; [`load`] says why).
pub fn scenarios() -> Vec<Scenario> {
    load().map(|p| p.scenarios.into_iter().map(|s| s.scenario).collect()).unwrap_or_default()
}

/// (file name, text) of every scenario file of the built-in pack, sorted by name (for
/// tests that mutate or snapshot the texts). Panics when the pack cannot be read.
pub fn files() -> Vec<(String, String)> {
    let d = dir().unwrap_or_else(|| panic!("built-in pack not found (looked in {})", searched()));
    scenario_files(&d).unwrap_or_else(|e| panic!("reading the built-in pack {}: {e}", d.display()))
}

fn scenario_files(d: &Path) -> std::io::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".toml") && name != pack::MANIFEST {
            out.push((name.clone(), std::fs::read_to_string(d.join(&name))?));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_builtin_scenario_validates() {
        let p = super::load().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.manifest.name, super::NAME);
        assert_eq!(p.scenarios.len(), super::files().len());
        assert!(p.scenarios.len() >= 11);
    }

    #[test]
    fn the_environment_overrides_where_the_pack_is() {
        let d = std::path::PathBuf::from("/nonexistent/drill-pack");
        assert_eq!(super::locate(Some(d.clone().into())), Some(d.clone()));
        assert!(matches!(crate::pack::load(&d), Err(crate::pack::LoadError::Io { .. })));
        // Unset or empty: the source tree's pack in a development build.
        let found = super::locate(Some("".into())).expect("the source tree's scenarios/");
        assert!(found.join("pack.toml").is_file(), "{}", found.display());
    }

    #[test]
    fn the_pack_loads_again_and_again() {
        // Its time is printed, not asserted (figures live in `cargo xtask bench`): a timed
        // assertion fails on a loaded machine and proves nothing about the code.
        let t = std::time::Instant::now();
        for _ in 0..10 {
            super::load().unwrap();
        }
        let each = t.elapsed() / 10;
        eprintln!("built-in pack loaded in {each:?} (mean of 10)");
        assert!(!super::load().unwrap().scenarios.is_empty());
    }
}
