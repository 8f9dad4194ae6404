//! Entering a drill host: `setns` into the ipc, uts, net, pid and mount namespaces
//! of the host's init, then run the command as our child (so it lives in the host's
//! PID namespace too). Requires root and a single-threaded process (mount namespaces
//! cannot be entered by a multi-threaded process).
//!
//! The command gets what every process in the host gets (docs/hosts.md): before it
//! execs, the child joins the host init's cgroups and drops from its bounding set every
//! capability the init's lacks. This is done here, in the child, rather than by asking
//! the host's init to spawn the command: the command stays our child (its exit status,
//! signals and terminal are ours, as before), no new protocol is needed, and this
//! process itself never joins the cgroup (so it cannot hold the cgroup up at teardown).
//! The cgroup files are opened before entering the host's mount namespace, where the
//! machine's cgroupfs is not visible.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{SigHandler, Signal, signal};

use drill_core::host::PATH as HOST_PATH;

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status").ok().and_then(|s| s.lines().find(|l| l.starts_with("Threads:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())).unwrap_or(0)
}

/// Runs `argv` inside host init `pid`; returns the exit code to exit with.
pub fn run_in_host(pid: i32, argv: &[String], interactive: bool) -> u8 {
    let (cg_files, drop) = match entry_limits(pid) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("drill: error: entering the host (init pid {pid}): {e}");
            return 2;
        }
    };
    match enter(pid) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("drill: error: entering the host (init pid {pid}): {e}");
            return 2;
        }
    }
    let Some((prog, args)) = argv.split_first() else {
        eprintln!("drill: error: no command given");
        return 2;
    };
    let mut cmd = std::process::Command::new(prog);
    cmd.args(args).env("PATH", HOST_PATH);
    if interactive {
        cmd.env("DRILL_HOST", "1");
    }
    // While the child runs, Ctrl-C is for it, not for us.
    // SAFETY: installing SIG_IGN for two signals in a single-threaded process.
    unsafe {
        let _ = signal(Signal::SIGINT, SigHandler::SigIgn);
        let _ = signal(Signal::SIGQUIT, SigHandler::SigIgn);
        cmd.pre_exec(move || {
            let _ = signal(Signal::SIGINT, SigHandler::SigDfl);
            let _ = signal(Signal::SIGQUIT, SigHandler::SigDfl);
            for f in &cg_files {
                if libc::write(f.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for &c in &drop {
                // EINVAL: a capability this kernel does not have.
                if libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    match cmd.status() {
        Ok(st) => match (st.code(), st.signal()) {
            (Some(c), _) => u8::try_from(c).unwrap_or(255),
            (None, Some(s)) => 128u8.saturating_add(u8::try_from(s).unwrap_or(0)),
            _ => 255,
        },
        Err(e) => {
            eprintln!("drill: error: running {prog} in the host: {e}");
            if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 }
        }
    }
}

/// The host init's cgroups (`cgroup.procs`, opened now) and the capabilities its
/// bounding set lacks.
fn entry_limits(pid: i32) -> Result<(Vec<File>, Vec<u32>), String> {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| format!("reading /proc/{pid}/cgroup: {e} (has the drill stopped?)"))?;
    let mi = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    let files = drill_core::host::cgroup_procs_files(&cg, &mi).iter().map(|p| File::options().write(true).open(p).map_err(|e| format!("opening {p}: {e}"))).collect::<Result<Vec<_>, _>>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok();
    Ok((files, drill_core::host::caps_to_drop(status.as_deref())))
}

fn enter(pid: i32) -> Result<(), String> {
    let n = threads();
    if n != 1 {
        return Err(format!("this process has {n} threads; entering a mount namespace needs exactly one"));
    }
    let mut fds = Vec::new();
    for name in drill_core::host::NAMESPACES {
        let flag = match name {
            "ipc" => CloneFlags::CLONE_NEWIPC,
            "uts" => CloneFlags::CLONE_NEWUTS,
            "net" => CloneFlags::CLONE_NEWNET,
            "pid" => CloneFlags::CLONE_NEWPID,
            _ => CloneFlags::CLONE_NEWNS,
        };
        let p = format!("/proc/{pid}/ns/{name}");
        let f = File::open(&p).map_err(|e| format!("opening {p}: {e} (has the drill stopped?)"))?;
        fds.push((p, f, flag));
    }
    for (p, f, flag) in &fds {
        setns(f.as_fd(), *flag).map_err(|e| format!("setns {p}: {e}"))?;
    }
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))?;
    Ok(())
}
