//! The process of one relay session: started inside a host (its cgroups, bounding set
//! and namespaces, `host::argv_in_host`) on a pseudo-terminal of the host's own devpts
//! or on three pipes, in a session of its own; and the end of it: every process of that
//! session signalled and gone.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};

/// What the client asked to run (from the request's query, `super::Spec::from_query`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub argv: Vec<String>,
    pub tty: bool,
    pub rows: u16,
    pub cols: u16,
    pub term: Option<String>,
    /// The interactive shell (no argv given): `DRILL_HOST=1` as root's `drill shell` sets.
    pub shell: bool,
}

/// A pty master, non-blocking, registered with tokio (read and written from two tasks).
pub struct Master(AsyncFd<File>);

/// How the session's process is wired.
pub enum Wiring {
    Pty(Arc<Master>),
    Pipes { stdin: Option<ChildStdin>, stdout: ChildStdout, stderr: ChildStderr },
}

pub struct Session {
    pub child: Child,
    /// Its pid in the machine's PID namespace: the id of its session.
    pub leader: i32,
    pub wiring: Wiring,
}

/// Starts `spec` in host init `pid`.
pub fn start(pid: i32, spec: &Spec) -> Result<Session> {
    let mut cmd = crate::host::argv_in_host(pid, &spec.argv)?;
    if let Some(t) = &spec.term {
        cmd.env("TERM", t);
    }
    if spec.shell {
        cmd.env("DRILL_HOST", "1");
    }
    cmd.kill_on_drop(true);
    let master = if spec.tty {
        let (master, slave) = open_pty(pid)?;
        set_size(&master, spec.rows, spec.cols)?;
        cmd.stdin(Stdio::from(slave.try_clone()?)).stdout(Stdio::from(slave.try_clone()?)).stderr(Stdio::from(slave));
        Some(master)
    } else {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        None
    };
    let tty = spec.tty;
    // SAFETY: runs in the forked child before exec (after the host's entry steps): only
    // syscalls. A session of its own, so that its end can find every process it started;
    // with a pty, the slave (already on 0, 1, 2) becomes its controlling terminal.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if tty && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting the command in the host")?;
    // The slave's copies held by `cmd` close with it: only the session holds the pty.
    drop(cmd);
    let leader = child.id().map(|p| p as i32).unwrap_or(0);
    let wiring = match master {
        // SAFETY: the File owns the master's descriptor and keeps it open, unchanged, for
        // as long as the AsyncFd (which owns the File) lives.
        Some(m) => Wiring::Pty(Arc::new(Master(unsafe { AsyncFd::register(m) }.map_err(|e| anyhow::anyhow!("registering the pty with tokio: {e}"))?))),
        None => Wiring::Pipes { stdin: child.stdin.take(), stdout: child.stdout.take().context("the command's stdout")?, stderr: child.stderr.take().context("the command's stderr")? },
    };
    Ok(Session { child, leader, wiring })
}

/// A new pty of the host's own devpts (`/dev/pts/ptmx` as the host sees it): the master
/// (non-blocking) and its slave, opened through the master (TIOCGPTPEER), so the slave
/// is the host's `/dev/pts/N` whatever the machine's `/dev` holds.
fn open_pty(pid: i32) -> Result<(File, OwnedFd)> {
    let path = format!("/proc/{pid}/root/dev/pts/ptmx");
    let master =
        File::options().read(true).write(true).custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC).open(&path).with_context(|| format!("opening {path} (the host's pty multiplexer)"))?;
    let unlock: libc::c_int = 0;
    // SAFETY: ioctls on a descriptor we own, with the argument types the kernel expects.
    unsafe {
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) < 0 {
            return Err(std::io::Error::last_os_error()).context("unlocking the pty");
        }
        let fd = libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("opening the pty's slave (TIOCGPTPEER)");
        }
        Ok((master, OwnedFd::from_raw_fd(fd)))
    }
}

fn set_size(master: &File, rows: u16, cols: u16) -> std::io::Result<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl Master {
    /// Bytes the session wrote; 0 once no process holds the slave any more (EIO).
    pub async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut g = self.0.readable().await?;
            match g.try_io(|f| std::io::Read::read(&mut f.get_ref(), buf)) {
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    pub async fn write_all(&self, mut buf: &[u8]) -> std::io::Result<()> {
        while !buf.is_empty() {
            let mut g = self.0.writable().await?;
            match g.try_io(|f| std::io::Write::write(&mut f.get_ref(), buf)) {
                Ok(Ok(n)) => buf = &buf[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    pub fn resize(&self, rows: u16, cols: u16) -> std::io::Result<()> {
        set_size(self.0.get_ref(), rows, cols)
    }
}

/// The processes of session `leader` (by the machine's /proc): its members (the leader
/// too while it lives) and their descendants.
pub fn members(leader: i32) -> Vec<i32> {
    let mut all = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if let Some((ppid, sid)) = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().as_deref().and_then(parent_and_session) {
            all.push((pid, ppid, sid));
        }
    }
    let mut found: Vec<i32> = all.iter().filter(|(_, _, sid)| *sid == leader).map(|(p, _, _)| *p).collect();
    loop {
        let more: Vec<i32> = all.iter().filter(|(p, ppid, _)| found.contains(ppid) && !found.contains(p)).map(|(p, _, _)| *p).collect();
        if more.is_empty() {
            return found;
        }
        found.extend(more);
    }
}

/// (ppid, session) of a /proc/PID/stat line.
pub fn parent_and_session(stat: &str) -> Option<(i32, i32)> {
    let mut f = stat.rsplit_once(')')?.1.split_whitespace();
    let ppid = f.nth(1)?.parse().ok()?;
    let sid = f.nth(1)?.parse().ok()?;
    Some((ppid, sid))
}

/// Ends every process of session `leader`: SIGHUP (and SIGCONT, for stopped jobs), up
/// to `grace` for them to go, then SIGKILL to those left. Reaping is the caller's
/// (the leader is its child; the others are the host init's).
pub async fn end_session(leader: i32, grace: Duration) {
    if leader <= 0 {
        return;
    }
    let left = members(leader);
    if left.is_empty() {
        return;
    }
    for &p in &left {
        let _ = kill(Pid::from_raw(p), Signal::SIGHUP);
        let _ = kill(Pid::from_raw(p), Signal::SIGCONT);
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if members(leader).iter().all(|p| is_zombie(*p)) {
            return;
        }
    }
    for p in members(leader) {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.rsplit_once(')').is_none_or(|(_, r)| r.trim_start().starts_with('Z'))).unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_parent_and_session() {
        assert_eq!(parent_and_session("4242 (bash) S 4241 4242 4240 34816 4242 4194560"), Some((4241, 4240)));
        assert_eq!(parent_and_session("7 (a) b) c) R 1 7 7 0"), Some((1, 7)));
        assert_eq!(parent_and_session("garbage"), None);
    }

    #[test]
    fn this_process_s_session_holds_it() {
        let sid = nix::unistd::getsid(None).unwrap().as_raw();
        assert!(members(sid).contains(&(std::process::id() as i32)));
    }
}
