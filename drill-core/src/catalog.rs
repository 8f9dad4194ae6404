//! Every scenario a drill can be started from by name: the built-in pack (`core`)
//! first, then each installed pack under [`packs_dir`] (a directory holding
//! `pack.toml`), in name order. A scenario is named `ID` or `PACK/ID`; an `ID` that
//! several packs hold must be given with its pack.

use std::path::{Path, PathBuf};

use crate::pack;
use crate::scenario::Scenario;

/// Where installed packs live (`$DRILL_PACKS_DIR`, else [`pack::INSTALL_DIR`]): the
/// directory `drill pack install` writes.
pub fn packs_dir() -> PathBuf {
    pack::install_dir()
}

/// One scenario and the pack it belongs to.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The pack's name (its manifest's `name`).
    pub pack: String,
    /// The pack's directory (its `[[files]]` are read from there).
    pub dir: PathBuf,
    pub scenario: Scenario,
}

impl Entry {
    /// `ID` for the built-in pack, `PACK/ID` for the others.
    pub fn display_name(&self) -> String {
        if self.pack == crate::builtin::NAME { self.scenario.id.clone() } else { self.key() }
    }

    /// `PACK/ID`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.pack, self.scenario.id)
    }
}

/// The scenarios of every pack that loaded, and why the others did not.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub entries: Vec<Entry>,
    /// A pack that could not be read or does not validate (its scenarios are left out).
    pub problems: Vec<String>,
}

/// Why a name found no single scenario.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FindError {
    #[error("no scenario `{id}`; known: {}", .known.join(", "))]
    NotFound { id: String, known: Vec<String> },
    #[error("scenario `{id}` is in several packs; name one of: {}", .choices.join(", "))]
    Ambiguous { id: String, choices: Vec<String> },
}

/// The built-in pack and the installed ones, read now (a few milliseconds).
pub fn load() -> Catalog {
    load_from(crate::builtin::dir().as_deref(), &packs_dir())
}

/// The catalog of the built-in pack in `builtin` and the packs installed in `installed`.
pub fn load_from(builtin: Option<&Path>, installed: &Path) -> Catalog {
    let mut c = Catalog::default();
    match builtin {
        Some(d) => c.add(d),
        None => c.problems.push(format!("the built-in pack was not found (looked in {})", crate::builtin::searched())),
    }
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(installed) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join(pack::MANIFEST).is_file()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            c.problems.push(format!("{}: {e}", installed.display()));
            Vec::new()
        }
    };
    dirs.sort();
    for d in dirs {
        c.add(&d);
    }
    c
}

impl Catalog {
    fn add(&mut self, dir: &Path) {
        match pack::load(dir) {
            Ok(p) if self.entries.iter().any(|e| e.pack == p.manifest.name) => {
                self.problems.push(format!("{}: a pack named `{}` is already known; this one is left out", dir.display(), p.manifest.name));
            }
            Ok(p) => {
                let name = p.manifest.name.clone();
                self.entries.extend(p.scenarios.into_iter().map(|s| Entry { pack: name.clone(), dir: p.dir.clone(), scenario: s.scenario }));
            }
            Err(e) => self.problems.push(format!("pack {}: {e}", dir.display())),
        }
    }

    /// The scenario named `ID` or `PACK/ID`.
    pub fn find(&self, name: &str) -> Result<&Entry, FindError> {
        let hits: Vec<&Entry> = match name.split_once('/') {
            Some((pack, id)) => self.entries.iter().filter(|e| e.pack == pack && e.scenario.id == id).collect(),
            None => self.entries.iter().filter(|e| e.scenario.id == name).collect(),
        };
        match hits.as_slice() {
            [one] => Ok(one),
            [] => Err(FindError::NotFound { id: name.to_string(), known: self.entries.iter().map(Entry::display_name).collect() }),
            many => Err(FindError::Ambiguous { id: name.to_string(), choices: many.iter().map(|e| e.key()).collect() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// A pack named `name` in `dir` holding a copy of the built-in `firewall-drop`.
    fn pack_with_firewall_drop(dir: &Path, name: &str) {
        std::fs::create_dir_all(dir).unwrap();
        let manifest = std::fs::read_to_string(crate::builtin::dir().unwrap().join("pack.toml")).unwrap().replace("name = \"core\"", &format!("name = \"{name}\""));
        std::fs::write(dir.join("pack.toml"), manifest).unwrap();
        let (_, text) = crate::builtin::files().into_iter().find(|(f, _)| f == "firewall-drop.toml").unwrap();
        std::fs::write(dir.join("firewall-drop.toml"), text).unwrap();
    }

    #[test]
    fn names_find_one_scenario_or_say_which() {
        let root = std::env::temp_dir().join(format!("drill-catalog-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        pack_with_firewall_drop(&root.join("net101"), "net101");
        std::fs::create_dir_all(root.join("not-a-pack")).unwrap();
        let c = super::load_from(crate::builtin::dir().as_deref(), &root);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(c.entries.first().map(|e| e.pack.as_str()), Some("core"), "the built-in pack comes first");
        // Unique everywhere: the bare id.
        assert_eq!(c.find("missing-route").unwrap().pack, "core");
        // In two packs: ambiguous, with both choices; each found by PACK/ID.
        let err = c.find("firewall-drop").unwrap_err();
        assert_eq!(err, super::FindError::Ambiguous { id: "firewall-drop".into(), choices: vec!["core/firewall-drop".into(), "net101/firewall-drop".into()] });
        assert_eq!(c.find("net101/firewall-drop").unwrap().dir, root.join("net101"));
        assert_eq!(c.find("core/firewall-drop").unwrap().pack, "core");
        let super::FindError::NotFound { known, .. } = c.find("nope").unwrap_err() else { panic!("not found") };
        assert!(known.contains(&"net101/firewall-drop".to_string()) && known.contains(&"missing-route".to_string()), "{known:?}");
        assert!(matches!(c.find("net101/missing-route"), Err(super::FindError::NotFound { .. })));
        // A second pack of the same name is left out, with the reason.
        pack_with_firewall_drop(&root.join("zz-dup"), "net101");
        let c = super::load_from(crate::builtin::dir().as_deref(), &root);
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
