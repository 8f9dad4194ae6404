//! One drilld per state directory: an exclusive `flock` on the directory itself, held
//! for the daemon's whole life.
//!
//! Without it, an idle daemon that is exiting (it has stopped serving its socket and is
//! tearing down its FUSE views under the state directory) and a new daemon that a
//! `drill start` spawned meanwhile share the directory: the old one's teardown unmounted
//! the new one's `STATE/kmsg`, and the new drill failed to bind its hosts' /dev/kmsg
//! (measured: about one start in three when starting and stopping in a loop).
//!
//! The lock is on the directory's own open file (no lock file to leave behind); the
//! kernel drops it when the daemon exits, however it exits (SIGKILL included). The file
//! is opened close-on-exec, so the processes drilld starts (host inits, lxcfs, tools)
//! never hold it.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use tracing::info;

/// How long a daemon waits for the one before it to let go of the directory: an
/// exiting daemon's teardown takes well under a second when idle, and a few seconds
/// when it still has drills to stop.
pub const STATE_LOCK_WAIT: Duration = Duration::from_secs(20);

/// Holds the state directory while alive.
pub struct StateLock {
    _lock: Flock<File>,
}

impl StateLock {
    /// Takes the lock on `dir` if no one holds it; `None` when another process does.
    pub fn try_acquire(dir: &Path) -> Result<Option<StateLock>> {
        let f = File::open(dir).map_err(|e| anyhow::anyhow!("opening the state directory {}: {e}", dir.display()))?;
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(StateLock { _lock: lock })),
            Err((_, Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => bail!("locking the state directory {}: {e}", dir.display()),
        }
    }

    /// Takes the lock on `dir`, waiting up to `wait` for another daemon to release it.
    pub async fn acquire(dir: &Path, wait: Duration) -> Result<StateLock> {
        let deadline = Instant::now() + wait;
        let mut said = false;
        loop {
            if let Some(lock) = Self::try_acquire(dir)? {
                return Ok(lock);
            }
            if Instant::now() >= deadline {
                bail!(
                    "another drilld{} is using the state directory {} and did not let go within {} s; stop it (its drills with `drill reset`, then `kill` it), or give this daemon a directory of its own (--state-dir or DRILL_STATE_DIR)",
                    holder(dir).map(|p| format!(" (pid {p})")).unwrap_or_default(),
                    dir.display(),
                    wait.as_secs()
                );
            }
            if !said {
                info!(dir = %dir.display(), "waiting for the drilld that still holds the state directory to finish");
                said = true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// For `drilld reset`: the lock, or which daemon holds it (waiting up to `wait` for
    /// one that is exiting).
    pub fn acquire_blocking(dir: &Path, wait: Duration) -> Result<StateLock> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(lock) = Self::try_acquire(dir)? {
                return Ok(lock);
            }
            if Instant::now() >= deadline {
                bail!(
                    "a drilld{} is running on the state directory {}: reset through it (`drill reset` with its --socket), it owns those drills",
                    holder(dir).map(|p| format!(" (pid {p})")).unwrap_or_default(),
                    dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The PID holding a flock on `dir`, from /proc/locks (best effort, for the message).
fn holder(dir: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(dir).ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
    locks.lines().find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        let (kind, pid, dev_ino) = (cols.get(1)?, cols.get(4)?, cols.get(5)?);
        (*kind == "FLOCK" && dev_ino.rsplit(':').next()?.parse::<u64>().ok()? == ino).then(|| pid.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_holder_waits_then_names_the_first() {
        let dir = std::env::temp_dir().join(format!("drill-statelock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = StateLock::acquire(&dir, STATE_LOCK_WAIT).await.unwrap();
        let err = StateLock::acquire(&dir, Duration::from_millis(200)).await.err().expect("the directory is held");
        let msg = format!("{err:#}");
        assert!(msg.contains(&dir.display().to_string()) && msg.contains(&format!("pid {}", std::process::id())), "{msg}");
        // Released on drop: the next one gets it, even while it was already waiting.
        let d2 = dir.clone();
        let waiter = tokio::spawn(async move { StateLock::acquire(&d2, STATE_LOCK_WAIT).await.map(drop) });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(first);
        waiter.await.unwrap().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
