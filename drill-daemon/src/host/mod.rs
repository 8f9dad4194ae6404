//! Drill hosts as processes: each host is a PID 1 (`drilld host-init`) in its own PID,
//! mount, UTS and IPC namespaces, joined to the host's network namespace, inside its
//! own cgroup (`cgroup.rs`, joined before the init execs).
//!
//! Inside a host (`rootfs.rs`; docs/hosts.md has the whole picture):
//! - `/` is a size-capped tmpfs built from an allowlist and pivoted into: `/usr`, `/etc`,
//!   `/opt`, `/var/lib/dpkg` are overlays over the machine's (upper layers on that
//!   tmpfs; `/etc`'s starts as the one the daemon prepared in the host's state dir),
//!   the machine's secrets are whited out, every other top-level dir is empty;
//! - `/var/log` is on the host's disk (its tmpfs), like `/run` and `/tmp`;
//!   `/proc` (with `/proc/sys` read-only but `net`) and a read-only `/sys` are the host's
//!   PID and network namespaces'; `/dev` is minimal;
//! - processes hold the capability set of `caps.rs`;
//! - PID 1 reaps every orphan, supervises the services and answers `svc` on
//!   `/run/drill/init.sock`. `/run/drill/bin/svc` is a link to this binary.
//!
//! The daemon reaches a host by its init's PID: `/proc/PID/ns/*` to enter it (and
//! [`entry_limits`] to take on its cgroup and capabilities),
//! `/proc/PID/root/run/drill/init.sock` to talk to its init.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, sethostname};
use serde::{Deserialize, Serialize};

pub mod caps;
pub mod cgroup;
mod init;
pub mod kmsg;
mod kmsgfs;
pub mod procview;
pub mod rootfs;
mod svc;

pub use init::init_main;
pub use svc::svc_main;

/// Control socket of a host's init, inside the host.
pub const INIT_SOCK: &str = "/run/drill/init.sock";
use drill_core::api::ServiceInfo;
use drill_core::host::{BIN_DIR as HOST_BIN, PATH as HOST_PATH};
/// Environment variable carrying the [`HostSpec`] to `drilld host-init`.
const SPEC_ENV: &str = "DRILL_HOST_SPEC";
/// fd on which host-init reports `ready` or `error: ...`.
const READY_FD: RawFd = 3;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostSpec {
    pub drill_id: String,
    pub name: String,
    pub hostname: String,
    /// Per-host directory on the machine: `etc-upper/`, `etc-work/`, `log/`.
    pub state_dir: PathBuf,
    /// The drilld binary, exec'd as the host's init (inside, services and `svc` reach it via /proc).
    pub exe: PathBuf,
    pub services: Vec<ServiceSpec>,
    /// Machine paths the host must not see even where an overlay would show them (the
    /// packs: scenario texts, hints, solutions); whited out in the overlay's upper layer.
    #[serde(default)]
    pub hidden: Vec<PathBuf>,
    /// What the host may use and do (docs/hosts.md).
    #[serde(default)]
    pub isolation: Isolation,
    /// Where the daemon's lxcfs serves (procview.rs): the host's /proc shows its own
    /// memory, CPUs and uptime. None: the machine's figures show.
    #[serde(default)]
    pub proc_view: Option<PathBuf>,
    /// The host's kernel log in the daemon's kmsg file system (kmsg.rs), bound onto its
    /// `/dev/kmsg`. None: an empty `/dev/kmsg` (never the machine's).
    #[serde(default)]
    pub kmsg: Option<PathBuf>,
    /// A file the host sees as its `net.netfilter.nf_conntrack_max` (bound over it):
    /// the size of a modelled conntrack table (drill/fault/conntrack.rs). None: the
    /// kernel's read-only one.
    #[serde(default)]
    pub conntrack_max: Option<PathBuf>,
}

/// A host's limits and capability set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Isolation {
    /// The drill's owner is root: its hosts keep CAP_BPF, CAP_PERFMON and CAP_SYSLOG
    /// (they read the whole machine's kernel). The daemon sets it from the uid of the
    /// socket peer that started the drill (SO_PEERCRED).
    pub owner_is_root: bool,
    /// The host's cgroup limits (memory, pids, CPU).
    pub limits: cgroup::Limits,
    /// Size of the tmpfs holding the host's root and its overlays' upper layers.
    pub disk_bytes: u64,
}

impl Isolation {
    /// The isolation of a host whose scenario gives `limits` (the defaults elsewhere).
    pub fn for_host(owner_is_root: bool, limits: &drill_core::topo::HostLimits) -> Isolation {
        let d = Isolation::default();
        Isolation {
            owner_is_root,
            limits: cgroup::Limits { memory_bytes: limits.memory_bytes.unwrap_or(d.limits.memory_bytes), pids: limits.pids.unwrap_or(d.limits.pids), cpus: limits.cpus.or(d.limits.cpus) },
            disk_bytes: limits.disk_bytes.unwrap_or(d.disk_bytes),
        }
    }
}

impl Default for Isolation {
    fn default() -> Isolation {
        Isolation { owner_is_root: true, limits: cgroup::Limits::default(), disk_bytes: rootfs::DEFAULT_DISK_BYTES }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub name: String,
    pub kind: String,
    pub config_path: String,
    pub log_path: String,
    #[serde(default)]
    pub restart: drill_core::model::Restart,
}

impl HostSpec {
    pub fn etc_upper(&self) -> PathBuf {
        self.state_dir.join("etc-upper")
    }
    pub fn etc_work(&self) -> PathBuf {
        self.state_dir.join("etc-work")
    }
    /// Pack files for the host, as a tree mirroring its root (copied in by its init).
    pub fn files_dir(&self) -> PathBuf {
        self.state_dir.join("files")
    }
}

// ------------------------------------------------------------------ control protocol

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    Status,
    Start {
        service: String,
    },
    Stop {
        service: String,
    },
    Restart {
        service: String,
    },
    /// SIGHUP after testing the config file: the service re-reads it in place.
    Reload {
        service: String,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    pub message: String,
    pub services: Vec<ServiceInfo>,
}

/// Sends one request to the init listening at `sock` (blocking, with a timeout).
pub fn request(sock: &Path, req: &Request, timeout: Duration) -> Result<Response> {
    let s = std::os::unix::net::UnixStream::connect(sock).with_context(|| format!("connecting to {}", sock.display()))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut w = &s;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    w.write_all(line.as_bytes())?;
    let mut resp = String::new();
    BufReader::new(&s).read_line(&mut resp).with_context(|| format!("reading the answer of {}", sock.display()))?;
    serde_json::from_str(&resp).with_context(|| format!("bad answer from {}: {resp:?}", sock.display()))
}

/// The host init's control socket as seen from the machine.
pub fn init_sock_from_outside(pid: i32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root{INIT_SOCK}"))
}

// ------------------------------------------------------------------ spawning (daemon side)

struct SpawnJob {
    spec: HostSpec,
    netns: PathBuf,
    console: PathBuf,
    /// `cgroup.procs` files the init joins before it execs.
    cgroup: Vec<PathBuf>,
    reply: mpsc::Sender<Result<(i32, OwnedFd)>>,
}

/// Spawns host inits from one long-lived thread: `PR_SET_PDEATHSIG` fires when the
/// *thread* that created a process exits, so that thread must live as long as the
/// daemon (if the daemon dies, every host dies with it).
pub struct Spawner {
    tx: mpsc::Sender<SpawnJob>,
}

impl Spawner {
    pub fn start() -> Result<Spawner> {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("host-spawner".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    let r = spawn_init(&job.spec, &job.netns, &job.console, &job.cgroup);
                    let _ = job.reply.send(r);
                }
            })
            .context("starting the host spawner thread")?;
        Ok(Spawner { tx })
    }

    /// Starts the init of one host; returns its PID and the read end of its ready pipe.
    /// Inside the host, the init is in the cgroups of `cgroup` (their `cgroup.procs`).
    pub fn spawn(&self, spec: HostSpec, netns: PathBuf, console: PathBuf, cgroup: Vec<PathBuf>) -> Result<(i32, OwnedFd)> {
        let (reply, rx) = mpsc::channel();
        self.tx.send(SpawnJob { spec, netns, console, cgroup, reply }).map_err(|_| anyhow!("host spawner thread is gone"))?;
        rx.recv().map_err(|_| anyhow!("host spawner thread is gone"))?
    }
}

fn spawn_init(spec: &HostSpec, netns: &Path, console: &Path, cgroup: &[PathBuf]) -> Result<(i32, OwnedFd)> {
    let exe = CString::new(spec.exe.as_os_str().as_encoded_bytes())?;
    let argv = [CString::new("drilld")?, CString::new("host-init")?];
    let mut envp = vec![CString::new(format!("{SPEC_ENV}={}", serde_json::to_string(spec)?))?, CString::new(format!("PATH={HOST_PATH}"))?, CString::new("HOME=/root")?, CString::new("LANG=C.UTF-8")?];
    if let Ok(v) = std::env::var("RUST_LOG") {
        envp.push(CString::new(format!("RUST_LOG={v}"))?);
    }
    let argv_p: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    let envp_p: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    let ns = File::open(netns).with_context(|| format!("opening {}", netns.display()))?;
    let log = File::options().create(true).append(true).open(console).with_context(|| format!("opening {}", console.display()))?;
    let devnull = File::open("/dev/null")?;
    let cg_files: Vec<File> = cgroup.iter().map(|p| File::options().write(true).open(p).with_context(|| format!("opening {}", p.display()))).collect::<Result<_>>()?;
    let cg_fds: Vec<RawFd> = cg_files.iter().map(|f| f.as_raw_fd()).collect();
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (ns_fd, log_fd, null_fd, w_fd) = (ns.as_raw_fd(), log.as_raw_fd(), devnull.as_raw_fd(), ready_w.as_raw_fd());
    let flags = CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    let mut stack = vec![0u8; 256 * 1024];
    // The child runs only async-signal-safe calls on memory prepared above, then execs.
    let cb = Box::new(|| -> isize {
        // SAFETY: raw syscalls on fds and pointers that stay valid in the child.
        unsafe {
            // Into the host's cgroup first: everything the init starts is inside.
            for &fd in &cg_fds {
                if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return 119;
                }
            }
            if libc::setns(ns_fd, libc::CLONE_NEWNET) != 0 {
                return 120;
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if w_fd == READY_FD {
                libc::fcntl(READY_FD, libc::F_SETFD, 0);
            } else if libc::dup2(w_fd, READY_FD) < 0 {
                return 121;
            }
            if libc::dup2(null_fd, 0) < 0 || libc::dup2(log_fd, 1) < 0 || libc::dup2(log_fd, 2) < 0 {
                return 121;
            }
            libc::execve(exe.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr());
            122
        }
    });
    // SAFETY: the callback only performs raw syscalls and execs (see above).
    let pid = unsafe { nix::sched::clone(cb, &mut stack, flags, Some(libc::SIGCHLD)) }.with_context(|| format!("clone() of the init of host {}", spec.name))?;
    drop(ready_w);
    Ok((pid.as_raw(), ready_r))
}

/// Waits until the init behind `ready` says `ready` (or reports an error / dies).
pub async fn wait_ready(host: &str, ready: OwnedFd, console: &Path, timeout: Duration) -> Result<()> {
    let host = host.to_string();
    let console = console.to_path_buf();
    let read = tokio::task::spawn_blocking(move || -> String {
        let mut s = String::new();
        let _ = BufReader::new(File::from(ready)).read_line(&mut s);
        s
    });
    let line = tokio::time::timeout(timeout, read).await.map_err(|_| anyhow!("host {host}: its init did not get ready within {timeout:?}; see {}", console.display()))??;
    match line.trim() {
        "ready" => Ok(()),
        "" => bail!("host {host}: its init exited before getting ready; its output is in {}: {}", console.display(), tail(&console, 5)),
        other => bail!("host {host}: {}", other.trim_start_matches("error: ")),
    }
}

/// Last `n` lines of a file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    last_lines(&std::fs::read_to_string(path).unwrap_or_default(), n)
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// The last `n` lines of a file inside a running host (`path` as the host sees it),
/// read through its init's root with every symlink resolved inside that root (openat2
/// RESOLVE_IN_ROOT): a link a learner planted toward `/etc/shadow` reads the host's.
pub fn tail_in_host(init: i32, path: &str, n: usize) -> String {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
    let read = || -> Option<String> {
        let root = std::fs::File::open(format!("/proc/{init}/root")).ok()?;
        let how = OpenHow::new().flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = openat2(&root, path.trim_start_matches('/'), how).ok()?;
        let f = std::fs::File::from(fd);
        if !f.metadata().ok()?.is_file() {
            return None; // a FIFO or a device is not a log
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(f, 1 << 20), &mut text).ok()?;
        Some(text)
    };
    last_lines(&read().unwrap_or_default(), n)
}

/// Kills a host (SIGKILL to its PID 1 takes the whole PID namespace down) and reaps it.
pub fn kill_and_reap(pid: i32, timeout: Duration) -> Result<()> {
    let p = Pid::from_raw(pid);
    match kill(p, Signal::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => bail!("kill -9 {pid}: {e}"),
    }
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match waitpid(p, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) | Err(nix::errno::Errno::ECHILD) => return Ok(()),
            Err(e) => bail!("waitpid {pid}: {e}"),
        }
        if std::time::Instant::now() > deadline {
            bail!("host init {pid} did not exit within {timeout:?} after SIGKILL");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Opens the namespaces of host init `pid`, in the order they must be entered.
pub fn open_namespaces(pid: i32) -> Result<Vec<(OwnedFd, CloneFlags)>> {
    let mut v = Vec::new();
    for n in drill_core::host::NAMESPACES {
        let p = format!("/proc/{pid}/ns/{n}");
        let fd: OwnedFd = File::open(&p).with_context(|| format!("opening {p} (is the host still running?)"))?.into();
        v.push((fd, ns_flag(n)));
    }
    Ok(v)
}

/// The setns flag of a namespace named as in /proc/PID/ns.
pub fn ns_flag(name: &str) -> CloneFlags {
    match name {
        "ipc" => CloneFlags::CLONE_NEWIPC,
        "uts" => CloneFlags::CLONE_NEWUTS,
        "net" => CloneFlags::CLONE_NEWNET,
        "pid" => CloneFlags::CLONE_NEWPID,
        "mnt" => CloneFlags::CLONE_NEWNS,
        _ => CloneFlags::empty(),
    }
}

/// Builds a command that runs `/bin/sh -c command` inside host init `pid`'s namespaces.
/// The shell's children live in the host's PID namespace.
pub fn command_in_host(pid: i32, command: &str) -> Result<tokio::process::Command> {
    // setns into a PID namespace places only the children there: this shell forks the
    // one that runs `command` (a plain `sh -c command` would itself stay outside the
    // host's PID namespace, and a shell that execs a lone command in place would take it
    // out of the timeline's capture).
    wrapped_in_host(pid, &["-c", "/bin/sh -c \"$0\"; exit $?", command])
}

/// Builds a command that runs `argv` (no shell parsing) inside host init `pid`'s
/// namespaces, as a child of a `/bin/sh` that stays outside (as [`command_in_host`]), so
/// `argv[0]` lives in the host's PID namespace; the exit status is its.
pub fn argv_in_host(pid: i32, argv: &[String]) -> Result<tokio::process::Command> {
    if argv.is_empty() {
        bail!("no command given");
    }
    let mut args: Vec<&str> = vec!["-c", "\"$@\"; exit $?", "sh"];
    args.extend(argv.iter().map(String::as_str));
    wrapped_in_host(pid, &args)
}

/// `/bin/sh ARGS` that enters host init `pid` before it execs: its cgroups, its
/// bounding set, its namespaces, `/` as the working directory, a clean environment.
fn wrapped_in_host(pid: i32, args: &[&str]) -> Result<tokio::process::Command> {
    let (cg_files, drop) = entry_limits(pid)?;
    let nss = open_namespaces(pid)?;
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(args).env_clear().env("PATH", HOST_PATH).env("HOME", "/root").env("LANG", "C.UTF-8");
    // SAFETY: pre_exec runs in the forked child, which is single-threaded: setns of a
    // mount namespace is allowed there. Only syscalls are made.
    unsafe {
        cmd.pre_exec(move || {
            for f in &cg_files {
                if libc::write(f.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            caps::drop_bounding_raw(&drop)?;
            for (fd, flag) in &nss {
                setns(fd.as_fd(), *flag).map_err(std::io::Error::from)?;
            }
            nix::unistd::chdir("/").map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    Ok(tokio::process::Command::from(cmd))
}

/// What a process entering host init `pid` takes on before it execs: the init's cgroups
/// (their `cgroup.procs`, opened now, while the machine's cgroupfs is reachable) and the
/// capabilities the init's bounding set lacks.
pub fn entry_limits(pid: i32) -> Result<(Vec<File>, Vec<u32>)> {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).with_context(|| format!("reading /proc/{pid}/cgroup (is the host still running?)"))?;
    let mi = std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let files = drill_core::host::cgroup_procs_files(&cg, &mi).iter().map(|p| File::options().write(true).open(p).with_context(|| format!("opening {p}"))).collect::<Result<Vec<_>>>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok();
    Ok((files, drill_core::host::caps_to_drop(status.as_deref())))
}
