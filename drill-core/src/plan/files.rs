//! The plan's `[[files]]`: each pack file placed in a host's root at start, before its
//! services (in the host's own writable layer; the machine's path is never touched).

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// One file a host gets at start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanFile {
    pub host: String,
    /// Absolute path inside the host.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Path relative to the pack directory.
    pub source: String,
    /// Its size in bytes, once read from the pack ([`sized`]); None in a plan made
    /// without the pack directory.
    #[serde(default)]
    pub size: Option<u64>,
}

impl fmt::Display for PlanFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = self.size.map(|s| format!(", {s} bytes")).unwrap_or_default();
        write!(f, "file {} (mode {:04o}{size}) from the pack's {}", self.path, self.mode, self.source)
    }
}

/// The files of `s`, in scenario order (sizes unknown yet).
pub(crate) fn compile(s: &Scenario) -> Vec<PlanFile> {
    s.files.iter().map(|f| PlanFile { host: f.host.clone(), path: f.path.clone(), mode: f.mode, source: f.source.clone(), size: None }).collect()
}

/// Reads every planned file from the pack in `dir` (inside it only: see
/// [`crate::pack::read_inside_pack`]), records its size, and returns the contents in
/// plan order. The error names the file and why.
pub fn read(files: &mut [PlanFile], dir: &Path) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::with_capacity(files.len());
    for f in files.iter_mut() {
        let bytes = crate::pack::read_inside_pack(dir, &f.source).map_err(|e| format!("file {} for host {}: {e}", f.source, f.host))?;
        f.size = Some(bytes.len() as u64);
        out.push(bytes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn files_are_planned_and_read_from_inside_the_pack() {
        let dir = std::env::temp_dir().join(format!("drill-plan-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("files")).unwrap();
        std::fs::write(dir.join("files/motd"), "hello\n").unwrap();
        let mut files = vec![super::PlanFile { host: "lb".into(), path: "/etc/motd".into(), mode: 0o640, source: "files/motd".into(), size: None }];
        assert_eq!(super::read(&mut files, &dir).unwrap(), vec![b"hello\n".to_vec()]);
        assert_eq!(files[0].size, Some(6));
        assert_eq!(files[0].to_string(), "file /etc/motd (mode 0640, 6 bytes) from the pack's files/motd");
        files[0].source = "../motd".into();
        assert!(super::read(&mut files, &dir).unwrap_err().contains(".."));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
