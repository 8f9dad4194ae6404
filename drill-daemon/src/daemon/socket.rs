//! The API socket (bound by drilld or passed in by socket activation) and serving on it
//! until a signal or idle exit.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tracing::{info, warn};

use super::{Daemon, router};
use crate::journal;
use crate::peer::Peer;

/// The API socket drilld serves on: bound by drilld itself (it creates the file, with its
/// owner and mode, and removes it at exit) or passed in by systemd's socket activation
/// (the socket unit owns the file, its mode and group: drilld leaves the file alone).
pub struct ApiSocket {
    pub listener: tokio::net::UnixListener,
    pub path: PathBuf,
    /// drilld made the file (and removes it when it exits).
    pub owned: bool,
}

/// Creates the socket: root-owned, 0660 with group `drill` when it exists, else 0600.
pub fn bind_socket(path: &std::path::Path) -> anyhow::Result<ApiSocket> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("another drilld is already serving {}; stop it first (or use --socket)", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    // Bound under a temporary name, given its owner and mode, then renamed into place:
    // at the final path the socket never has the umask's mode, not even for an instant
    // (measured: a client connecting right after the bind saw 0755).
    let tmp = path.with_file_name(format!(".{}.{}", path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let l = std::os::unix::net::UnixListener::bind(&tmp).with_context(|| format!("binding {}", tmp.display()))?;
    let group = nix::unistd::Group::from_name("drill").ok().flatten();
    let mode = if let Some(g) = &group {
        nix::unistd::chown(&tmp, Some(nix::unistd::Uid::from_raw(0)), Some(g.gid)).with_context(|| format!("chown {}", tmp.display()))?;
        0o660
    } else {
        0o600
    };
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    l.set_nonblocking(true).context("making the API socket non-blocking")?;
    let l = tokio::net::UnixListener::from_std(l).context("registering the API socket")?;
    info!(socket = %path.display(), mode = format!("{mode:o}"), group = group.as_ref().map(|g| g.name.as_str()).unwrap_or("-"), "listening");
    Ok(ApiSocket { listener: l, path: path.to_path_buf(), owned: true })
}

/// Serves on a listening Unix stream socket passed in by the service manager (socket
/// activation, fd 3 of `LISTEN_FDS`); refuses any other kind of descriptor. `configured`
/// is the `--socket` path, only for a warning when the passed socket is elsewhere.
pub fn adopt_socket(fd: std::os::fd::OwnedFd, configured: &std::path::Path) -> anyhow::Result<ApiSocket> {
    use nix::sys::socket::{SockType, UnixAddr, getsockname, getsockopt, sockopt};
    use std::os::fd::AsRawFd;
    let raw = fd.as_raw_fd();
    let what = format!("the socket passed in by the service manager (fd {raw}, LISTEN_FDS)");
    let addr: UnixAddr = getsockname(raw).with_context(|| format!("{what} is not a Unix socket: use ListenStream=/path in the socket unit"))?;
    if getsockopt(&fd, sockopt::SockType).ok() != Some(SockType::Stream) || getsockopt(&fd, sockopt::AcceptConn).ok() != Some(true) {
        anyhow::bail!("{what} is not a listening stream socket: use ListenStream= (not ListenDatagram= or Accept=yes) in the socket unit");
    }
    let path = addr.path().map(std::path::Path::to_path_buf).unwrap_or_else(|| configured.to_path_buf());
    if path != configured {
        warn!(passed = %path.display(), configured = %configured.display(), "serving the socket the service manager passed in, not --socket/DRILL_SOCKET: clients must use the passed one");
    }
    let l = std::os::unix::net::UnixListener::from(fd);
    l.set_nonblocking(true).context("making the API socket non-blocking")?;
    let l = tokio::net::UnixListener::from_std(l).context("registering the API socket")?;
    info!(socket = %path.display(), "listening on the socket passed in by the service manager (socket activation)");
    Ok(ApiSocket { listener: l, path, owned: false })
}

/// SIGTERM and SIGINT, caught from the daemon's first step: one that arrives while it
/// starts (probes, lxcfs, the kmsg mount, the socket) is seen by [`serve`], which then
/// tears down at once, instead of the default action killing drilld with its mounts up.
pub struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers (inside the tokio runtime).
    pub fn install() -> std::io::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }

    /// Resolves at the first SIGTERM or SIGINT (before serving: nothing to tear down yet).
    pub async fn stopped(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Serves until SIGINT/SIGTERM (or idle exit), then tears every drill down. Tells the
/// service manager (sd_notify, when NOTIFY_SOCKET is set) once it serves and when it stops.
pub async fn serve(d: Arc<Daemon>, api: ApiSocket, stop: StopSignals) -> anyhow::Result<()> {
    let StopSignals { mut term, mut int } = stop;
    let app = router(d.clone());
    let d2 = d.clone();
    let shutdown = async move {
        loop {
            tokio::select! {
                _ = term.recv() => { info!("SIGTERM: stopping every drill"); break }
                _ = int.recv() => { info!("SIGINT: stopping every drill"); break }
                _ = d2.idle.notified(), if d2.exit_when_idle => {
                    if d2.drills.lock().await.is_empty() { info!("no drills left: exiting (started with --exit-when-idle)"); break }
                }
            }
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping, sd_notify::NotifyState::Status("stopping every drill")]);
    };
    crate::api_guard::raise_fd_limit();
    let status = format!("serving {}", api.path.display());
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status(&status)]) {
        warn!("telling the service manager drilld is ready (NOTIFY_SOCKET): {e}");
    }
    axum::serve(crate::api_guard::Admission::new(api.listener), app.into_make_service_with_connect_info::<Peer>()).with_graceful_shutdown(shutdown).await.context("serving the API")?;
    let errs = d.stop_all().await;
    for e in &errs {
        warn!("teardown: {e}");
    }
    if api.owned {
        let _ = std::fs::remove_file(&api.path);
    }
    // Every drill is gone: leave no empty journal directory behind (the log stays).
    let _ = std::fs::remove_dir(journal::drills_dir(&d.state));
    Ok(())
}
