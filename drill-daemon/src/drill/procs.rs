//! Reading a host's process table from the machine's /proc: every process whose PID
//! namespace is the host's (what `ps` inside the host shows), with its state and CPU
//! time. The `zombies` and `process-cpu` checks sample it through the window.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use drill_core::check::processes::{ProcSample, ProcTable};

/// How often the window reads a host's process table.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Clock ticks per second (`getconf CLK_TCK`).
pub fn ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// Every process of the PID namespace `pidns` (its inode), as the machine sees it.
pub fn read_table(pidns: u32) -> Vec<ProcSample> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(md) = std::fs::metadata(format!("/proc/{pid}/ns/pid")) else { continue };
        if md.ino() != u64::from(pidns) {
            continue;
        }
        if let Some(s) = read_one(pid) {
            out.push(s);
        }
    }
    out
}

/// One process: its stat line, with its PIDs as seen inside its namespace.
fn read_one(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state(3) ppid(4) ... utime(14) stime(15) ... starttime(22).
    let state = f.first()?.chars().next()?;
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let start = f.get(19)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let inner = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().last()).and_then(|v| v.parse::<u32>().ok());
    let ns_pid = inner("NSpid:").unwrap_or(pid);
    // The parent inside the namespace: its own NSpid (0 for the host's init).
    let ppid_machine = f.get(1)?.parse::<u32>().ok()?;
    let ppid = if ns_pid == 1 {
        0
    } else {
        std::fs::read_to_string(format!("/proc/{ppid_machine}/status"))
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("NSpid:")).and_then(|v| v.split_whitespace().last()).and_then(|v| v.parse().ok()))
            .unwrap_or(ppid_machine)
    };
    Some(ProcSample { pid: ns_pid, ppid, comm, state, ticks, start })
}

/// Reads the table of `pidns` every [`SAMPLE_EVERY`] until `deadline` (the first read
/// at once, the last at the deadline).
pub async fn sample(pidns: u32, deadline: Instant) -> Vec<ProcTable> {
    let t0 = Instant::now();
    let mut tables = Vec::new();
    loop {
        let now = Instant::now();
        let t = tokio::task::spawn_blocking(move || read_table(pidns)).await.unwrap_or_default();
        tables.push((now.duration_since(t0).as_secs_f64(), t));
        if now >= deadline {
            break;
        }
        tokio::time::sleep_until((now + SAMPLE_EVERY).min(deadline).into()).await;
    }
    tables
}
