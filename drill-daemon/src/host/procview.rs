//! The host's own view of the files where tools would show the machine's: `free`,
//! `top`, `uptime`, `nproc` and `cat /proc/meminfo` inside a host read its cgroup's
//! memory, CPU and age, not the laptop's. The daemon runs one lxcfs (Debian's, the FUSE
//! file system LXC and Incus use for the same purpose) mounted under its state
//! directory; each host's init binds its `proc/*` files over the host's `/proc` before
//! `pivot_root` (rootfs.rs). lxcfs answers each read for the cgroup of the process
//! that reads, so one instance serves every host of every drill.
//!
//! Lifetime: lxcfs is the daemon's child with `PR_SET_PDEATHSIG` (it dies with the
//! daemon, even on SIGKILL); its pid file and mount point are in the state directory,
//! so a daemon that starts, or `drilld reset`, removes what a killed one left.
//! Without lxcfs on the machine hosts show the machine's figures; `drill doctor` says
//! so.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::mount::{MntFlags, umount2};
use tracing::{info, warn};

/// The files of lxcfs's `proc/` a host's /proc shows instead of the machine's.
/// Not `uptime`: process start times in /proc/PID/stat count from the machine's boot, and
/// `ps` computes %CPU from them and /proc/uptime; a host's own uptime made every process's
/// %CPU 0.0 (the runaway-cpu drill's symptom gone). Without a time namespace both stay the machine's.
pub const PROC_FILES: [&str; 6] = ["meminfo", "cpuinfo", "stat", "loadavg", "diskstats", "swaps"];
/// sysfs files lxcfs virtualizes (the CPUs `nproc` and `lscpu` count).
pub const SYS_FILES: [&str; 1] = ["devices/system/cpu/online"];

/// Where lxcfs is mounted under a daemon's state directory.
pub fn mount_point(state: &Path) -> PathBuf {
    state.join("lxcfs")
}

fn pid_file(state: &Path) -> PathBuf {
    state.join("lxcfs.pid")
}

/// Whether `dir` is a mount point of a FUSE file system (lxcfs) in this mount namespace.
pub(crate) fn is_fuse_mount(dir: &Path) -> bool {
    let d = dir.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default().lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let fstype = f.iter().position(|x| *x == "-").and_then(|i| f.get(i + 1)).copied().unwrap_or("");
        f.get(4).is_some_and(|m| *m == d) && fstype.starts_with("fuse")
    })
}

/// The daemon's running lxcfs.
pub struct ProcView {
    child: Child,
    dir: PathBuf,
    state: PathBuf,
}

impl ProcView {
    /// Starts lxcfs on `<state>/lxcfs` and waits until it answers. `Ok(None)` when the
    /// machine has no lxcfs (hosts then show the machine's figures).
    pub fn start(state: &Path) -> Result<Option<ProcView>> {
        let Some(bin) = which("lxcfs") else {
            warn!("lxcfs is not installed: hosts show the machine's memory, CPUs and uptime in /proc (apt-get install lxcfs)");
            return Ok(None);
        };
        recover(state);
        let dir = mount_point(state);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut cmd = Command::new(&bin);
        // Foreground (our child), loadavg and CPU-quota views, its pid file ours.
        cmd.args(["-f", "-l", "--enable-cfs", "-p"]).arg(pid_file(state)).arg(&dir).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        // SAFETY: prctl in the child between fork and exec, async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
        let started = Instant::now();
        let probe = dir.join("proc/meminfo");
        loop {
            if is_fuse_mount(&dir) && std::fs::read_to_string(&probe).is_ok_and(|s| s.starts_with("MemTotal:")) {
                break;
            }
            if let Some(status) = child.try_wait()? {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                let _ = std::fs::remove_dir(&dir);
                bail!("lxcfs exited ({status}) before it served {}: {}", dir.display(), err.trim());
            }
            if started.elapsed() > Duration::from_secs(5) {
                let mut v = ProcView { child, dir, state: state.to_path_buf() };
                v.stop();
                bail!("lxcfs did not serve {} within 5 s", probe.display());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // lxcfs's log lines are not ours to keep; drain them so it never blocks.
        if let Some(e) = child.stderr.take() {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut { e }, &mut std::io::sink());
            });
        }
        info!(ms = started.elapsed().as_millis() as u64, dir = %dir.display(), "lxcfs serves the hosts' /proc view");
        Ok(Some(ProcView { child, dir, state: state.to_path_buf() }))
    }

    /// Where lxcfs serves.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops lxcfs and removes its mount point.
    pub fn stop(&mut self) {
        // Detached first: lxcfs then sees its FUSE connection end and exits at once
        // (measured: 11 ms; on SIGTERM alone, with the mount in place, 4.5 s, which
        // held up the next daemon waiting for the state directory).
        if is_fuse_mount(&self.dir) {
            let _ = umount2(&self.dir, MntFlags::MNT_DETACH);
        }
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        clean_mount(&self.dir);
        let _ = std::fs::remove_file(pid_file(&self.state));
    }
}

impl Drop for ProcView {
    fn drop(&mut self) {
        self.stop();
    }
}

fn clean_mount(dir: &Path) {
    if is_fuse_mount(dir) {
        let _ = umount2(dir, MntFlags::MNT_DETACH);
    }
    let _ = std::fs::remove_dir(dir);
}

/// Removes what a killed daemon's lxcfs left in `state`: the process (only if the pid
/// file names an lxcfs serving that mount point) and the mount.
pub fn recover(state: &Path) -> Vec<String> {
    let mut done = Vec::new();
    let dir = mount_point(state);
    if let Some(pid) = std::fs::read_to_string(pid_file(state)).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let ours = args.first().is_some_and(|a| a.ends_with(b"lxcfs")) && args.iter().any(|a| *a == dir.as_os_str().as_encoded_bytes());
        if ours {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            done.push(format!("stopped lxcfs (pid {pid})"));
        }
        let _ = std::fs::remove_file(pid_file(state));
    }
    if is_fuse_mount(&dir) {
        done.push(format!("unmounted {}", dir.display()));
    }
    clean_mount(&dir);
    done
}

pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).chain(["/usr/bin".into(), "/usr/sbin".into()]).map(|d| d.join(name)).find(|p| p.is_file())
}
