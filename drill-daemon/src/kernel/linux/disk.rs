//! The `deleted-open-file` fault on a running host: wait until one of the host's
//! processes holds the file open, append to it until the host's disk answers ENOSPC,
//! unlink it, and read the result back the way the learner's tools see it (statfs of
//! the disk, the holder's `/proc/PID/fd` link ending in ` (deleted)`).
//!
//! The daemon writes through `/proc/INIT/root`, so the path is the host's, never the
//! machine's; the host's disk is its own tmpfs (`limits.disk`), so nothing of the real
//! machine fills up.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// What the fault did, as measured afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskFill {
    pub holder_pid: i32,
    pub holder: String,
    pub written_bytes: u64,
    pub disk_bytes: u64,
    pub free_bytes: u64,
}

/// Most the filler writes: a host disk is small (`limits.disk`, 64 MiB by default).
const MAX_FILL: u64 = 2 << 30;

/// The first process of the host whose init is `init` (same mount namespace) with
/// `path` open, and the fd's link text.
fn holder(init: i32, path: &str) -> Option<(i32, String)> {
    let mnt = std::fs::read_link(format!("/proc/{init}/ns/mnt")).ok()?;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok().as_ref() != Some(&mnt) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(l) = std::fs::read_link(fd.path()) {
                let l = l.to_string_lossy().into_owned();
                if l == path || l == format!("{path} (deleted)") {
                    return Some((pid, l));
                }
            }
        }
    }
    None
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|s| s.trim().to_string()).unwrap_or_else(|_| "?".into())
}

/// Lines a verbose job runner writes, 1 MiB of them.
fn filler_chunk() -> Vec<u8> {
    let mut out = Vec::with_capacity(1 << 20);
    let mut i = 0u64;
    while out.len() < (1 << 20) - 200 {
        let _ = writeln!(
            out,
            "2026-11-28T{:02}:{:02}:{:02}.{:03}Z DEBUG jobs: poll /var/spool/jobs: 0 files; retry queue 0; next look in 500 ms (cycle {i})",
            (i / 3_600_000) % 24,
            (i / 60_000) % 60,
            (i / 1000) % 60,
            i % 1000
        );
        i += 7;
    }
    out
}

pub async fn fill_deleted(init: i32, path: &str, wait: Duration) -> Result<DiskFill> {
    let deadline = Instant::now() + wait;
    let (holder_pid, _) = loop {
        if let Some(h) = holder(init, path) {
            break h;
        }
        if Instant::now() >= deadline {
            bail!("no process of the host holds {path} open after {} s (the holder must open it at start)", wait.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let full = format!("/proc/{init}/root{path}");
    let chunk = filler_chunk();
    let mut f = std::fs::OpenOptions::new().append(true).open(&full).with_context(|| format!("opening {path} in the host ({full})"))?;
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(libc_enospc()) => break,
            Err(e) => return Err(anyhow!(e).context(format!("writing {path} in the host"))),
        }
        if written > MAX_FILL {
            bail!("{path}: the host's disk did not fill after {} MiB: give the host a small disk (`[[hosts]] limits = {{ disk = \"32M\" }}`)", MAX_FILL >> 20);
        }
    }
    // Any partial page left: fill it byte-wise so not one block stays free.
    for n in [4096usize, 512, 64, 1] {
        while f.write(&chunk[..n]).map(|w| w > 0).unwrap_or(false) {
            written += n as u64;
        }
    }
    drop(f);
    std::fs::remove_file(&full).with_context(|| format!("unlinking {path} in the host"))?;
    let dir = Path::new(&full).parent().ok_or_else(|| anyhow!("{path} has no directory"))?;
    let st = nix::sys::statvfs::statvfs(dir).with_context(|| format!("statfs of {} in the host", Path::new(path).parent().map(|p| p.display().to_string()).unwrap_or_default()))?;
    let link = holder(init, path).map(|(_, l)| l);
    if link.as_deref() != Some(&format!("{path} (deleted)")) {
        bail!("after the unlink, {} (pid {holder_pid}) no longer holds {path} open: the blocks were freed", comm(holder_pid));
    }
    Ok(DiskFill {
        holder_pid,
        holder: comm(holder_pid),
        written_bytes: written,
        disk_bytes: st.blocks() as u64 * st.fragment_size() as u64,
        free_bytes: st.blocks_available() as u64 * st.fragment_size() as u64,
    })
}

fn libc_enospc() -> i32 {
    nix::errno::Errno::ENOSPC as i32
}
