//! Reading files of a pack without ever leaving it: no `..`, no absolute path, no
//! symlink on the way, nothing but a regular file (a FIFO named x.toml would block a
//! reader: its type is checked with lstat before it is opened), nothing over
//! [`MAX_FILE_BYTES`].

use std::path::Path;

use super::MAX_FILE_BYTES;
use crate::scenario;

pub(super) enum Refused {
    Io(std::io::Error),
    Unsafe(String),
}

/// Reads `rel` inside `dir`, refusing a path that leaves it, a symlink, a non-regular
/// file and a file over [`MAX_FILE_BYTES`].
pub(super) fn read_text(dir: &Path, rel: &str) -> Result<String, Refused> {
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

pub(super) fn read_inside(dir: &Path, rel: &str) -> Result<Vec<u8>, Refused> {
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
    read_regular(&p, rel)
}

/// Opens `p` without following a symlink and without blocking (it may have been
/// swapped for a FIFO since it was checked), checks again that it is a small regular
/// file, and reads at most [`MAX_FILE_BYTES`].
pub(super) fn read_regular(p: &Path, rel: &str) -> Result<Vec<u8>, Refused> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC).open(p).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => Refused::Unsafe(format!("{rel} is a symlink; a pack may not link outside itself")),
        _ => Refused::Io(e),
    })?;
    let m = f.metadata().map_err(Refused::Io)?;
    if !m.is_file() {
        return Err(Refused::Unsafe(format!("{rel} is not a regular file")));
    }
    if m.len() > MAX_FILE_BYTES {
        return Err(Refused::Unsafe(format!("{rel} is {} bytes; a pack file may hold at most {MAX_FILE_BYTES}", m.len())));
    }
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(Refused::Io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Refused::Unsafe(format!("{rel} holds more than {MAX_FILE_BYTES} bytes; a pack file may hold at most that")));
    }
    Ok(bytes)
}
