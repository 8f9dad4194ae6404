//! drilld itself: `drill reset`, and finding and starting drilld (in the background for a
//! drill, or for `drill pack test` and `drill doctor`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use drill_core::api::StopResponse;

use crate::client::{CallError, Client};
use crate::{Outcome, api_err, is_root, output};

/// `drill reset`: every drill stopped and the leftovers removed (by drilld, or by
/// `drilld reset` when none runs).
pub(crate) async fn reset(c: &Client, socket: &Path) -> Result<Outcome> {
    let e = |err: CallError| api_err(socket, err);
    match c.post::<(), StopResponse>("/v1/reset", &()).await {
        Ok(r) => output::print_stop(&r, false)?,
        Err(CallError::NoDaemon(io)) if io.kind() != std::io::ErrorKind::PermissionDenied => {
            if !is_root() {
                bail!("`drill reset` with no daemon running needs root: `sudo drill reset`");
            }
            let st = std::process::Command::new(find_drilld()?).arg("reset").status().context("running drilld reset")?;
            return Ok(Outcome::Code(if st.success() { 0 } else { 2 }));
        }
        Err(err) => return Err(e(err)),
    }
    Ok(Outcome::Code(0))
}

/// drilld next to this binary, else $DRILLD, else on PATH.
pub(crate) fn find_drilld() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("DRILLD") {
        return Ok(PathBuf::from(p));
    }
    if let Ok(me) = std::env::current_exe() {
        let sib = me.with_file_name("drilld");
        if sib.is_file() {
            return Ok(sib);
        }
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("drilld");
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("cannot find drilld (not next to drill, not on PATH, DRILLD unset); build it with `cargo xtask build`")
}

/// Starts drilld in the background (it exits by itself when its last drill stops).
pub(crate) fn start_daemon(socket: &Path, quiet: bool) -> Result<()> {
    spawn_daemon(socket, &["--exit-when-idle"], if quiet { None } else { Some("") }).map(drop)
}

/// `drilld serve --socket SOCKET EXTRA..` in a session of its own (detached from our
/// terminal: Ctrl-C reaches only us), logging to drilld.log beside the socket; returns
/// once it serves, or with the end of its log when it exits first. `announce`: print
/// "starting drilld" (with these words after it) on stderr.
pub(crate) fn spawn_daemon(socket: &Path, extra: &[&str], announce: Option<&str>) -> Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let exe = find_drilld()?;
    let dir = socket.parent().unwrap_or(Path::new("/run/drill"));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let log_path = dir.join("drilld.log");
    let log = std::fs::File::options().create(true).append(true).open(&log_path).with_context(|| format!("opening {}", log_path.display()))?;
    if let Some(words) = announce {
        eprintln!("starting drilld{words} ({}; log in {}) ...", exe.display(), log_path.display());
    }
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(["serve", "--socket"]).arg(socket).args(extra).stdin(std::process::Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // SAFETY: setsid in the child only: detach from our terminal and session.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    let mut child = cmd.spawn().with_context(|| format!("starting {}", exe.display()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Ok(child);
        }
        if let Some(st) = child.try_wait()? {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            bail!("drilld exited ({st}) before serving {}; the end of {}:\n{}", socket.display(), log_path.display(), tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
    bail!("drilld did not open {} within 30 s; see {}", socket.display(), log_path.display())
}
