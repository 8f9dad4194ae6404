//! Helpers of the pack tests: scratch pack directories made from the skeleton.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

static N: AtomicUsize = AtomicUsize::new(0);

/// A fresh empty directory under the system's temp dir (removed on drop).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("drill-pack-test-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }

    /// A skeleton pack (`drill pack new`) in a fresh directory.
    pub fn skeleton(tag: &str) -> Scratch {
        let s = Scratch::new(tag);
        for (rel, text) in drill_core::pack::skeleton("test-pack") {
            s.write(rel, &text);
        }
        s
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// The skeleton's scenario with `from` replaced by `to` (which must occur).
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let p = self.0.join(rel);
        let t = std::fs::read_to_string(&p).unwrap();
        assert!(t.contains(from), "`{from}` is not in {rel}");
        std::fs::write(p, t.replacen(from, to, 1)).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The skeleton's scenario text.
pub fn scenario() -> String {
    drill_core::pack::skeleton("test-pack").into_iter().find(|(r, _)| *r == drill_core::pack::SCENARIO_FILE).unwrap().1
}

/// The problems of validating `p`, one line each: "file:line:col: [lint: ]message".
pub fn problems(p: &Path) -> Vec<String> {
    let r = drill_core::pack::validate(p).expect("readable");
    r.problems.iter().map(|p| p.to_string().lines().next().unwrap().to_string()).collect()
}

/// The 1-based line of the first line of `text` containing `needle`.
pub fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("`{needle}` not found")) + 1
}
