//! Drill hosts as processes: each host is a PID 1 (`drilld host-init`) in its own PID,
//! mount, UTS and IPC namespaces, joined to the host's network namespace.
//!
//! Inside a host:
//! - `/` is made private; `/etc` is an overlay over the machine's `/etc` whose upper
//!   layer lives in the drill's state directory (the host's own hosts, resolv.conf,
//!   hostname and service configs; edits stay in the host);
//! - `/var/log` is a bind of the host's log directory; `/run` and `/tmp` are fresh tmpfs;
//!   `/proc` and `/sys` are mounted for the host's PID and network namespaces;
//! - PID 1 reaps every orphan, supervises the services and answers `svc` on
//!   `/run/drill/init.sock`. `/run/drill/bin/svc` is a link to this binary.
//!
//! The daemon reaches a host by its init's PID: `/proc/PID/ns/*` to enter it,
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
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, sethostname};
use serde::{Deserialize, Serialize};

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
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub name: String,
    pub kind: String,
    pub config_path: String,
    pub log_path: String,
}

impl HostSpec {
    pub fn etc_upper(&self) -> PathBuf {
        self.state_dir.join("etc-upper")
    }
    pub fn etc_work(&self) -> PathBuf {
        self.state_dir.join("etc-work")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.state_dir.join("log")
    }
}

// ------------------------------------------------------------------ control protocol

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    Status,
    Start { service: String },
    Stop { service: String },
    Restart { service: String },
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
                    let r = spawn_init(&job.spec, &job.netns, &job.console);
                    let _ = job.reply.send(r);
                }
            })
            .context("starting the host spawner thread")?;
        Ok(Spawner { tx })
    }

    /// Starts the init of one host; returns its PID and the read end of its ready pipe.
    pub fn spawn(&self, spec: HostSpec, netns: PathBuf, console: PathBuf) -> Result<(i32, OwnedFd)> {
        let (reply, rx) = mpsc::channel();
        self.tx.send(SpawnJob { spec, netns, console, reply }).map_err(|_| anyhow!("host spawner thread is gone"))?;
        rx.recv().map_err(|_| anyhow!("host spawner thread is gone"))?
    }
}

fn spawn_init(spec: &HostSpec, netns: &Path, console: &Path) -> Result<(i32, OwnedFd)> {
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
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (ns_fd, log_fd, null_fd, w_fd) = (ns.as_raw_fd(), log.as_raw_fd(), devnull.as_raw_fd(), ready_w.as_raw_fd());
    let flags = CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    let mut stack = vec![0u8; 256 * 1024];
    // The child runs only async-signal-safe calls on memory prepared above, then execs.
    let cb = Box::new(|| -> isize {
        // SAFETY: raw syscalls on fds and pointers that stay valid in the child.
        unsafe {
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
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
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
    let nss = open_namespaces(pid)?;
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c").arg(command).env_clear().env("PATH", HOST_PATH).env("HOME", "/root").env("LANG", "C.UTF-8");
    // SAFETY: pre_exec runs in the forked child, which is single-threaded: setns of a
    // mount namespace is allowed there. Only syscalls are made.
    unsafe {
        cmd.pre_exec(move || {
            for (fd, flag) in &nss {
                setns(fd.as_fd(), *flag).map_err(std::io::Error::from)?;
            }
            nix::unistd::chdir("/").map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    Ok(tokio::process::Command::from(cmd))
}

// ------------------------------------------------------------------ inside the host

/// Entry point of `drilld host-init`: PID 1 of a drill host.
pub fn init_main() -> ! {
    // SAFETY: fd 3 was set up by spawn_init for us alone.
    let mut ready = unsafe { File::from_raw_fd(READY_FD) };
    let spec: HostSpec = match std::env::var(SPEC_ENV).map_err(anyhow::Error::from).and_then(|s| Ok(serde_json::from_str(&s)?)) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(ready, "error: host-init: bad {SPEC_ENV}: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = setup(&spec) {
        let _ = writeln!(ready, "error: setting up host {}: {e:#}", spec.name);
        std::process::exit(1);
    }
    let listener = match std::os::unix::net::UnixListener::bind(INIT_SOCK) {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(ready, "error: host {}: binding {INIT_SOCK}: {e}", spec.name);
            std::process::exit(1);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async move {
        let mut sup = Supervisor::new(&spec);
        sup.start_all();
        let _ = writeln!(ready, "ready");
        drop(ready);
        sup.run(listener).await
    });
    std::process::exit(0)
}

fn setup(spec: &HostSpec) -> Result<()> {
    let none = None::<&str>;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none).context("making / private")?;
    let opts = format!("lowerdir=/etc,upperdir={},workdir={}", spec.etc_upper().display(), spec.etc_work().display());
    mount(Some("overlay"), "/etc", Some("overlay"), MsFlags::empty(), Some(opts.as_str())).context("mounting the overlay on /etc (is the overlay filesystem available?)")?;
    mount(Some(&spec.log_dir()), "/var/log", none, MsFlags::MS_BIND, none).context("bind-mounting /var/log")?;
    mount(Some("proc"), "/proc", Some("proc"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, none).context("mounting /proc")?;
    // sysfs shows the host's own interfaces under /sys/class/net; not fatal if refused.
    if let Err(e) = mount(Some("sysfs"), "/sys", Some("sysfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, none) {
        eprintln!("host-init: mounting /sys: {e} (continuing with the machine's /sys)");
    }
    mount(Some("tmpfs"), "/run", Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0755")).context("mounting /run")?;
    mount(Some("tmpfs"), "/tmp", Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777")).context("mounting /tmp")?;
    std::fs::create_dir_all(HOST_BIN)?;
    // The binary's path may be hidden inside the host (e.g. under /tmp): reach it
    // through PID 1's exe magic link instead.
    std::os::unix::fs::symlink("/proc/1/exe", Path::new(HOST_BIN).join("svc")).context("linking /run/drill/bin/svc")?;
    sethostname(&spec.hostname).context("sethostname")?;
    Ok(())
}

struct Svc {
    spec: ServiceSpec,
    pid: Option<i32>,
    state: String,
    restarts: u32,
}

struct Supervisor {
    host: String,
    services: BTreeMap<String, Svc>,
}

/// Services run from our own binary through `/proc/self/exe`, which works even when
/// the binary's path is not visible inside the host.
const SELF_EXE: &str = "/proc/self/exe";

impl Supervisor {
    fn new(spec: &HostSpec) -> Supervisor {
        let services = spec.services.iter().map(|s| (s.name.clone(), Svc { spec: s.clone(), pid: None, state: "stopped".into(), restarts: 0 })).collect();
        Supervisor { host: spec.name.clone(), services }
    }

    fn start_all(&mut self) {
        let names: Vec<String> = self.services.keys().cloned().collect();
        for n in names {
            if let Err(e) = self.start(&n) {
                eprintln!("host-init: starting {n}: {e:#}");
                if let Some(s) = self.services.get_mut(&n) {
                    s.state = format!("failed to start: {e:#}");
                }
            }
        }
    }

    fn start(&mut self, name: &str) -> Result<String> {
        let svc = self.services.get_mut(name).ok_or_else(|| anyhow!("no service `{name}` on this host"))?;
        if svc.pid.is_some() {
            return Ok(format!("{name} is already running (pid {})", svc.pid.unwrap_or(0)));
        }
        let log = File::options().create(true).append(true).open(&svc.spec.log_path).with_context(|| format!("opening {}", svc.spec.log_path))?;
        let child = std::process::Command::new(SELF_EXE)
            .arg0(&svc.spec.name)
            .args(["workload", &svc.spec.kind, "--name", &svc.spec.name, "--config", &svc.spec.config_path])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id() as i32;
        // The reaper below collects it; the std handle is not waited on.
        drop(child);
        svc.pid = Some(pid);
        svc.state = "running".into();
        Ok(format!("{name} started (pid {pid})"))
    }

    async fn stop(&mut self, name: &str) -> Result<String> {
        let svc = self.services.get(name).ok_or_else(|| anyhow!("no service `{name}` on this host"))?;
        let Some(pid) = svc.pid else {
            return Ok(format!("{name} is not running"));
        };
        let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
        for i in 0..300 {
            self.reap();
            if self.services.get(name).is_some_and(|s| s.pid.is_none()) {
                break;
            }
            if i == 200 {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let svc = self.services.get_mut(name).ok_or_else(|| anyhow!("no service `{name}`"))?;
        svc.state = "stopped".into();
        Ok(format!("{name} stopped"))
    }

    /// Collects every exited child (PID 1 adopts all orphans of the host).
    fn reap(&mut self) {
        loop {
            match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.exited(pid.as_raw(), format!("exited (status {code})")),
                Ok(WaitStatus::Signaled(pid, sig, _)) => self.exited(pid.as_raw(), format!("killed ({sig})")),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    fn exited(&mut self, pid: i32, how: String) {
        if let Some(s) = self.services.values_mut().find(|s| s.pid == Some(pid)) {
            eprintln!("host-init: service {} (pid {pid}) {how}", s.spec.name);
            s.pid = None;
            s.state = how;
        }
    }

    fn status(&self) -> Vec<ServiceInfo> {
        self.services
            .values()
            .map(|s| ServiceInfo {
                host: self.host.clone(),
                name: s.spec.name.clone(),
                kind: s.spec.kind.clone(),
                state: s.state.clone(),
                pid: s.pid,
                restarts: s.restarts,
                config_path: s.spec.config_path.clone(),
            })
            .collect()
    }

    async fn handle(&mut self, req: Request) -> Response {
        let r = match req {
            Request::Status => Ok(String::new()),
            Request::Start { service } => self.start(&service),
            Request::Stop { service } => self.stop(&service).await,
            Request::Restart { service } => match self.stop(&service).await {
                Ok(_) => {
                    let r = self.start(&service);
                    if r.is_ok() {
                        if let Some(s) = self.services.get_mut(&service) {
                            s.restarts += 1;
                        }
                    }
                    r.map(|m| m.replace("started", "restarted"))
                }
                Err(e) => Err(e),
            },
        };
        match r {
            Ok(message) => Response { ok: true, message, services: self.status() },
            Err(e) => Response { ok: false, message: format!("{e:#}"), services: self.status() },
        }
    }

    async fn run(&mut self, listener: std::os::unix::net::UnixListener) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        use tokio::signal::unix::{SignalKind, signal};
        listener.set_nonblocking(true).expect("nonblocking listener");
        let listener = tokio::net::UnixListener::from_std(listener).expect("tokio listener");
        let mut sigchld = signal(SignalKind::child()).expect("SIGCHLD handler");
        loop {
            tokio::select! {
                _ = sigchld.recv() => self.reap(),
                acc = listener.accept() => {
                    let Ok((stream, _)) = acc else { continue };
                    let (r, mut w) = stream.into_split();
                    let mut line = String::new();
                    let mut r = tokio::io::BufReader::new(r);
                    if tokio::time::timeout(Duration::from_secs(5), r.read_line(&mut line)).await.is_err() {
                        continue;
                    }
                    let resp = match serde_json::from_str::<Request>(&line) {
                        Ok(req) => self.handle(req).await,
                        Err(e) => Response { ok: false, message: format!("bad request: {e}"), services: Vec::new() },
                    };
                    let mut out = serde_json::to_string(&resp).unwrap_or_default();
                    out.push('\n');
                    let _ = w.write_all(out.as_bytes()).await;
                }
            }
        }
    }
}

// ------------------------------------------------------------------ `svc` inside a host

/// `svc`: manage the services of the drill host you are in.
pub fn svc_main(args: Vec<String>) -> i32 {
    let usage = "usage: svc status | svc start|stop|restart SERVICE | svc logs SERVICE [-n LINES] [-f]";
    let sock = Path::new(INIT_SOCK);
    if !sock.exists() {
        eprintln!("svc: this is not a drill host ({INIT_SOCK} is missing). Enter one with `sudo drill shell HOST`.");
        return 2;
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let req = match args.as_slice() {
        [] | ["status"] => Request::Status,
        ["start", s] => Request::Start { service: s.to_string() },
        ["stop", s] => Request::Stop { service: s.to_string() },
        ["restart", s] => Request::Restart { service: s.to_string() },
        ["logs", s, rest @ ..] => return svc_logs(s, rest),
        ["-h" | "--help" | "help"] => {
            println!("{usage}");
            return 0;
        }
        _ => {
            eprintln!("{usage}");
            return 2;
        }
    };
    match request(sock, &req, Duration::from_secs(15)) {
        Ok(resp) => {
            if !resp.message.is_empty() {
                if resp.ok {
                    println!("{}", resp.message);
                } else {
                    eprintln!("svc: {}", resp.message);
                }
            }
            if matches!(req, Request::Status) {
                println!("{:<12} {:<8} {:<22} {:<8} {:<9} CONFIG", "SERVICE", "KIND", "STATE", "PID", "RESTARTS");
                for s in &resp.services {
                    let pid = s.pid.map_or("-".to_string(), |p| p.to_string());
                    println!("{:<12} {:<8} {:<22} {:<8} {:<9} {}", s.name, s.kind, s.state, pid, s.restarts, s.config_path);
                }
            }
            if resp.ok { 0 } else { 1 }
        }
        Err(e) => {
            eprintln!("svc: {e:#}");
            2
        }
    }
}

fn svc_logs(service: &str, rest: &[&str]) -> i32 {
    let path = drill_core::workload::log_path(service);
    let mut cmd = std::process::Command::new("tail");
    let mut n = "50".to_string();
    let mut follow = false;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match *a {
            "-f" => follow = true,
            "-n" => n = it.next().map_or(n.clone(), |v| v.to_string()),
            _ => {}
        }
    }
    cmd.args(["-n", &n]);
    if follow {
        cmd.arg("-f");
    }
    if !Path::new(&path).exists() {
        eprintln!("svc: no log for `{service}` ({path} does not exist); `svc status` lists the services");
        return 1;
    }
    let err = cmd.arg(&path).exec();
    eprintln!("svc: running tail: {err}");
    2
}
