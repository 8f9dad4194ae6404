//! The `deleted-open-file` fault on a running host: wait until one of the host's
//! processes holds the file open, append to it until the host's disk answers ENOSPC,
//! unlink it, and read the result back the way the learner's tools see it (statfs of
//! the disk, the holder's `/proc/PID/fd` link ending in ` (deleted)`).
//!
//! The filler writes through the holder's own descriptor (never a path a symlink could
//! turn toward the machine), on the host's own disk (its tmpfs, `limits.disk`). It runs
//! as a helper process (`drilld fill-held-file`) that joins the host's cgroups first, so
//! the tmpfs pages it writes are charged to the host's memory limit like every other
//! write of the host (DECISIONS.md); it stays in the machine's PID namespace, out of the
//! learner's `ps` and of the timeline.

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// What the fault did, as measured afterwards.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
/// `path` open: its pid and the fd's /proc path (reopening that magic link reaches the
/// same file without resolving `path` again).
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
                    return Some((pid, fd.path().to_string_lossy().into_owned()));
                }
            }
        }
    }
    None
}

/// Whether the holder's descriptor shows the file deleted.
fn held_deleted(fd_path: &str, path: &str) -> bool {
    std::fs::read_link(fd_path).is_ok_and(|l| l.to_string_lossy() == format!("{path} (deleted)"))
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

/// How long the filler keeps taking every block freed after the first ENOSPC: the
/// host's services free some as they go (a job runner removing the job files queued
/// before the disk filled); a few of its poll intervals.
const SETTLE: Duration = Duration::from_millis(1500);

/// Writes `chunk` (then smaller pieces) until the disk refuses even one byte.
fn top_up(f: &mut std::fs::File, chunk: &[u8], written: &mut u64, path: &str) -> Result<()> {
    loop {
        match f.write(chunk) {
            Ok(0) => break,
            Ok(n) => *written += n as u64,
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ENOSPC as i32) => break,
            Err(e) => return Err(anyhow!(e).context(format!("writing {path} in the host"))),
        }
        if *written > MAX_FILL {
            bail!("{path}: the host's disk did not fill after {} MiB: give the host a small disk (`[[hosts]] limits = {{ disk = \"32M\" }}`)", MAX_FILL >> 20);
        }
    }
    for n in [4096usize, 512, 64, 1] {
        while f.write(&chunk[..n]).map(|w| w > 0).unwrap_or(false) {
            *written += n as u64;
        }
    }
    Ok(())
}

/// Waits for the holder, then runs the filler in the host's cgroups; its measurement.
pub async fn fill_deleted(init: i32, path: &str, wait: Duration) -> Result<DiskFill> {
    use std::os::unix::process::CommandExt;
    let deadline = Instant::now() + wait;
    while holder(init, path).is_none() {
        if Instant::now() >= deadline {
            bail!("no process of the host holds {path} open after {} s (the holder must open it at start)", wait.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (cgroups, _) = crate::host::entry_limits(init)?;
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.args(["fill-held-file", "--init", &init.to_string(), "--path", path]).stdin(std::process::Stdio::null());
    // SAFETY: between fork and exec the child only writes to already-open files.
    unsafe {
        cmd.pre_exec(move || {
            for f in &cgroups {
                nix::unistd::write(f, b"0").map_err(std::io::Error::from)?;
            }
            Ok(())
        });
    }
    let out = tokio::process::Command::from(cmd).output().await.context("running the filler (drilld fill-held-file)")?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    serde_json::from_slice(&out.stdout).context("the filler's report")
}

/// `drilld fill-held-file`: fills, unlinks, prints the [`DiskFill`] as JSON (exit 0) or
/// the error on stderr (exit 1).
pub fn fill_main(init: i32, path: &str) -> i32 {
    match fill_held(init, path) {
        Ok(f) => {
            println!("{}", serde_json::to_string(&f).unwrap_or_default());
            0
        }
        Err(e) => {
            eprintln!("{e:#}");
            1
        }
    }
}

fn fill_held(init: i32, path: &str) -> Result<DiskFill> {
    use std::os::unix::fs::MetadataExt;
    let (holder_pid, fd_path) = holder(init, path).ok_or_else(|| anyhow!("no process of the host holds {path} open"))?;
    // Through the holder's own descriptor: the very file it has open, whatever the path
    // names meanwhile (never a file of the machine).
    let mut f = std::fs::OpenOptions::new().append(true).open(&fd_path).with_context(|| format!("opening {path} through {fd_path}"))?;
    let fs = nix::sys::statvfs::fstatvfs(&f).with_context(|| format!("statfs of {path}"))?;
    let size = fs.blocks() as u64 * fs.fragment_size() as u64;
    if size > MAX_FILL {
        bail!("{path} is on a {} MiB filesystem, not a host's own small disk: give the host `[[hosts]] limits = {{ disk = \"32M\" }}`", size >> 20);
    }
    let chunk = filler_chunk();
    let mut written = 0u64;
    top_up(&mut f, &chunk, &mut written, path)?;
    let settle = Instant::now() + SETTLE;
    while Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(5));
        top_up(&mut f, &chunk, &mut written, path)?;
    }
    // Unlink by name only if the name still is the held file.
    let full = format!("/proc/{init}/root{path}");
    let (held, named) = (f.metadata()?, std::fs::symlink_metadata(&full).with_context(|| format!("{path} in the host"))?);
    if (held.dev(), held.ino()) != (named.dev(), named.ino()) {
        bail!("{path} no longer names the file its holder has open: not unlinking it");
    }
    std::fs::remove_file(&full).with_context(|| format!("unlinking {path} in the host"))?;
    top_up(&mut f, &chunk, &mut written, path)?;
    let st = nix::sys::statvfs::fstatvfs(&f).with_context(|| format!("statfs of {path}"))?;
    drop(f);
    if !held_deleted(&fd_path, path) {
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
