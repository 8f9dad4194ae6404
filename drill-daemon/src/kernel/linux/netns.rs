//! Named network namespaces and work done inside them.
//!
//! A namespace is created by a throwaway thread that `unshare(CLONE_NEWNET)`s and
//! bind-mounts `/proc/thread-self/ns/net` onto `/run/netns/NAME`, as `ip netns add`
//! does, so the learner can use `ip netns exec NAME` and `ip -n NAME`.
//!
//! Work that must happen *inside* a namespace (opening a netlink socket, creating a
//! TCP socket for the synthetic client) runs on a [`NetnsWorker`]: a dedicated std
//! thread that entered the namespace once. Tokio worker threads never `setns`.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::{Context, Result, anyhow, bail};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

pub const NETNS_DIR: &str = "/run/netns";

pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Makes /run/netns a shared bind mount of itself, as iproute2 does, so namespaces
/// created later are visible in mount namespaces created earlier.
fn ensure_netns_dir() -> Result<()> {
    std::fs::create_dir_all(NETNS_DIR).with_context(|| format!("creating {NETNS_DIR}"))?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let is_mount = mounts.lines().any(|l| l.split(' ').nth(4) == Some(NETNS_DIR));
    if !is_mount {
        mount(Some(NETNS_DIR), NETNS_DIR, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>).with_context(|| format!("bind-mounting {NETNS_DIR} onto itself"))?;
    }
    // Ignore failure: already shared, or a kernel that refuses; the bind mounts still work.
    let _ = mount(None::<&str>, NETNS_DIR, None::<&str>, MsFlags::MS_SHARED | MsFlags::MS_REC, None::<&str>);
    Ok(())
}

/// Creates the named network namespace `name`; returns its inode number.
pub fn create(name: &str) -> Result<u32> {
    ensure_netns_dir()?;
    let path = netns_path(name);
    if path.exists() {
        bail!("network namespace {name} already exists ({}); run `drill reset` to remove leftovers", path.display());
    }
    File::options().write(true).create_new(true).open(&path).with_context(|| format!("creating {}", path.display()))?;
    let p = path.clone();
    let res = std::thread::spawn(move || -> Result<()> {
        unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET)")?;
        mount(Some("/proc/thread-self/ns/net"), &p, None::<&str>, MsFlags::MS_BIND, None::<&str>).with_context(|| format!("bind-mounting the new namespace onto {}", p.display()))?;
        Ok(())
    })
    .join()
    .map_err(|_| anyhow!("netns creation thread panicked"))?;
    if let Err(e) = res {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    inode(name)
}

/// Inode number of a named namespace (what the eBPF probes see as `ns.inum`).
pub fn inode(name: &str) -> Result<u32> {
    let ino = std::fs::metadata(netns_path(name)).with_context(|| format!("stat {}", netns_path(name).display()))?.ino();
    u32::try_from(ino).map_err(|_| anyhow!("netns inode {ino} does not fit 32 bits"))
}

/// Removes a named namespace: unmounts and unlinks. Missing is not an error.
pub fn delete(name: &str) -> Result<()> {
    let path = netns_path(name);
    if !path.exists() {
        return Ok(());
    }
    match umount2(&path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(anyhow!("unmounting {}: {e}", path.display())),
    }
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))
}

/// Kills (SIGKILL) every process whose network namespace is the named one, this
/// process excepted, and waits up to `timeout` for them to be gone. After a crash these
/// are the daemon's helpers that outlived it (a measurement's `ping`, a host init the
/// journal had not recorded yet): deleting the name alone would leave them running and
/// the namespace alive. Returns the PIDs killed.
pub fn kill_members(name: &str, timeout: std::time::Duration) -> Result<Vec<i32>> {
    use nix::sys::signal::{Signal, kill};
    // Only a drill's own namespace, never the machine's (a damaged journal must not
    // make this kill every process of the machine).
    if !name.starts_with("drill-") || name.contains('/') {
        bail!("refusing to kill the processes of network namespace {name:?}: not a drill's");
    }
    let path = netns_path(name);
    let Ok(meta) = std::fs::metadata(&path) else { return Ok(Vec::new()) };
    let (dev, ino) = (meta.dev(), meta.ino());
    if std::fs::metadata("/proc/1/ns/net").is_ok_and(|m| (m.dev(), m.ino()) == (dev, ino)) || std::fs::metadata("/proc/self/ns/net").is_ok_and(|m| (m.dev(), m.ino()) == (dev, ino)) {
        bail!("refusing to kill the processes of network namespace {name}: it is the machine's");
    }
    let me = std::process::id() as i32;
    let members = || -> Vec<i32> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != me && std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.dev() == dev && m.ino() == ino))
            .collect()
    };
    let mut killed = Vec::new();
    let deadline = std::time::Instant::now() + timeout;
    loop {
        // Each pass kills what is there now (one may have forked meanwhile).
        let left = members();
        if left.is_empty() {
            return Ok(killed);
        }
        for &pid in &left {
            let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            if !killed.contains(&pid) {
                killed.push(pid);
            }
        }
        if std::time::Instant::now() > deadline {
            bail!("processes {left:?} in network namespace {name} did not exit within {timeout:?} after SIGKILL");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Names of namespaces under /run/netns that start with `prefix`.
pub fn list_with_prefix(prefix: &str) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.starts_with(prefix)).collect();
    v.sort();
    v
}

type Job = Box<dyn FnOnce() + Send>;

/// A thread living inside one network namespace, running jobs sent to it.
pub struct NetnsWorker {
    name: String,
    tx: mpsc::Sender<Job>,
}

impl NetnsWorker {
    /// Starts a worker inside the named namespace `name`. `rt` is entered on the
    /// thread so that async sockets (tokio `AsyncFd`) can be registered there.
    pub fn start(name: &str, rt: tokio::runtime::Handle) -> Result<NetnsWorker> {
        let f = File::open(netns_path(name)).with_context(|| format!("opening {}", netns_path(name).display()))?;
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let thread_name = format!("netns-{name}");
        std::thread::Builder::new()
            .name(thread_name.chars().take(15).collect())
            .spawn(move || {
                let entered = setns(f.as_fd(), CloneFlags::CLONE_NEWNET).context("setns(CLONE_NEWNET)");
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if !ok {
                    return;
                }
                let _guard = rt.enter();
                while let Ok(job) = rx.recv() {
                    job();
                }
            })
            .context("spawning netns worker thread")?;
        ready_rx.recv().map_err(|_| anyhow!("netns worker for {name} died"))??;
        Ok(NetnsWorker { name: name.to_string(), tx })
    }

    /// Runs `f` inside the namespace and returns its result.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| anyhow!("netns worker for {} has stopped", self.name))?;
        rx.await.map_err(|_| anyhow!("netns worker for {} dropped a job", self.name))
    }

    /// Opens an rtnetlink connection inside the namespace; the connection future
    /// is spawned on the current runtime.
    pub async fn netlink(&self) -> Result<rtnetlink::Handle> {
        let (conn, handle) = self.run(|| rtnetlink::new_connection().map(|(c, h, _)| (c, h))).await?.with_context(|| format!("opening a netlink socket in {}", self.name))?;
        tokio::spawn(conn);
        Ok(handle)
    }

    /// A non-blocking TCP socket created inside the namespace (usable from any thread).
    pub async fn tcp_socket(&self, v6: bool) -> Result<tokio::net::TcpSocket> {
        let fd: OwnedFd = self
            .run(move || {
                use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
                let fam = if v6 { AddressFamily::Inet6 } else { AddressFamily::Inet };
                socket(fam, SockType::Stream, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC, None)
            })
            .await?
            .with_context(|| format!("creating a TCP socket in {}", self.name))?;
        let std = std::net::TcpStream::from(fd);
        Ok(tokio::net::TcpSocket::from_std_stream(std))
    }

    /// A non-blocking IPv4 UDP socket created inside the namespace, bound to an
    /// ephemeral port of it.
    pub async fn udp_socket(&self) -> Result<tokio::net::UdpSocket> {
        let s = self.run(|| std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| s.set_nonblocking(true).map(|()| s))).await?.with_context(|| format!("creating a UDP socket in {}", self.name))?;
        Ok(tokio::net::UdpSocket::from_std(s)?)
    }
}
