//! Inside a host: `drilld host-init`, its PID 1. It sets up the host's mounts and
//! hostname, supervises the services and answers `svc` on its control socket.

use super::*;

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
    rootfs::build(spec)?;
    std::fs::create_dir_all(HOST_BIN)?;
    // The binary's path is not visible inside the host: reach it through PID 1's exe
    // magic link instead.
    std::os::unix::fs::symlink("/proc/1/exe", Path::new(HOST_BIN).join("svc")).context("linking /run/drill/bin/svc")?;
    sethostname(&spec.hostname).context("sethostname")?;
    caps::drop_all(&caps::dropped(spec.isolation.owner_is_root))?;
    Ok(())
}

struct Svc {
    spec: ServiceSpec,
    pid: Option<i32>,
    state: String,
    restarts: u32,
    /// `svc stop` (or a restart's stop) is ending it: no automatic restart.
    stopping: bool,
    /// When its restart policy starts it again.
    restart_at: Option<std::time::Instant>,
}

/// How long the init waits before restarting a service its policy restarts (systemd's
/// RestartSec).
const RESTART_DELAY: Duration = Duration::from_millis(500);

struct Supervisor {
    host: String,
    services: BTreeMap<String, Svc>,
}

/// Services run from our own binary through `/proc/self/exe`, which works even when
/// the binary's path is not visible inside the host.
const SELF_EXE: &str = "/proc/self/exe";

impl Supervisor {
    fn new(spec: &HostSpec) -> Supervisor {
        let services = spec.services.iter().map(|s| (s.name.clone(), Svc { spec: s.clone(), pid: None, state: "stopped".into(), restarts: 0, stopping: false, restart_at: None })).collect();
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
        if let Some(dir) = Path::new(&svc.spec.log_path).parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        svc.restart_at = None;
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
        let svc = self.services.get_mut(name).ok_or_else(|| anyhow!("no service `{name}` on this host"))?;
        let pending = svc.restart_at.take().is_some();
        let Some(pid) = svc.pid else {
            if pending {
                svc.state = "stopped".into();
            }
            return Ok(format!("{name} is not running"));
        };
        svc.stopping = true;
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
        svc.stopping = false;
        svc.restart_at = None;
        Ok(format!("{name} stopped"))
    }

    /// Collects every exited child (PID 1 adopts all orphans of the host).
    fn reap(&mut self) {
        loop {
            match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.exited(pid.as_raw(), format!("exited (status {code})"), code != 0),
                Ok(WaitStatus::Signaled(pid, sig, _)) => self.exited(pid.as_raw(), format!("killed ({sig})"), true),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    /// After `svc start|restart`: returns once the new process is up as a drill's start
    /// waits for its services: it has recorded the config it started with (its
    /// effective config, which checks that follow a client service read) and, for a
    /// server, listens on its config's port; or it has exited; or after 3 s. A `drill
    /// submit` right after a restart then judges the service as now configured, not the
    /// instant before (measured: a loadgen's check read the old effective config, and
    /// a server's first request was refused).
    async fn wait_ready(&mut self, name: &str) {
        let Some(svc) = self.services.get(name) else { return };
        let effective = drill_core::workload::effective_config_path(name);
        let text = std::fs::read_to_string(&svc.spec.config_path).unwrap_or_default();
        let ports = match drill_core::workload::Workload::parse_config(&svc.spec.kind, &text) {
            Ok(w) => w.listen_ports(),
            Err(_) if svc.spec.kind == "nginx" => drill_core::workload::nginx::listen_ports_of(&text),
            Err(_) => Vec::new(),
        };
        for _ in 0..300 {
            self.reap();
            let recorded = std::path::Path::new(&effective).exists();
            if self.services.get(name).is_none_or(|s| s.pid.is_none()) || (recorded && ports.iter().all(|p| crate::kernel::linux::faults::listening(*p))) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// `svc reload`: the service re-reads its config file without a restart. The file is
    /// tested first (`nginx -T` for nginx, parsed for a built-in workload): a broken one
    /// is refused with its error and the service keeps running what it had, as
    /// `systemctl reload` does. Then SIGHUP; returns once the service runs the new
    /// config (nginx: new workers are up; a built-in: it recorded its config again and
    /// listens), or after 3 s.
    async fn reload(&mut self, name: &str) -> Result<String> {
        let svc = self.services.get(name).ok_or_else(|| anyhow!("no service `{name}` on this host"))?;
        let Some(pid) = svc.pid else {
            bail!("{name} is not running; start it with `svc start {name}`");
        };
        let (kind, config) = (svc.spec.kind.clone(), svc.spec.config_path.clone());
        if let Some(ext) = crate::workload::external::of_kind(&kind) {
            let before = children_of(pid);
            crate::workload::external::test_and_record(ext, name, &config).map_err(|e| {
                anyhow!(
                    "{e}
{name} keeps running its previous configuration; fix {config} and reload again"
                )
            })?;
            kill(Pid::from_raw(pid), Signal::SIGHUP).with_context(|| format!("SIGHUP to {name} (pid {pid})"))?;
            for _ in 0..300 {
                let now = children_of(pid);
                if now.iter().any(|c| !before.contains(c)) && before.iter().all(|c| !now.contains(c) || is_exiting(*c)) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            return Ok(format!("{name} reloaded (pid {pid})"));
        }
        let text = std::fs::read_to_string(&config).with_context(|| format!("reading {config}"))?;
        drill_core::workload::Workload::parse_config(&kind, &text).map_err(|e| anyhow!("{config}: {e}; {name} keeps running its previous configuration"))?;
        Self::forget_effective(name);
        kill(Pid::from_raw(pid), Signal::SIGHUP).with_context(|| format!("SIGHUP to {name} (pid {pid})"))?;
        self.wait_ready(name).await;
        Ok(format!("{name} reloaded (pid {pid})"))
    }

    /// Before a (re)start: the old process's effective config goes, so [`Self::wait_ready`]
    /// sees the new one's.
    fn forget_effective(name: &str) {
        let _ = std::fs::remove_file(drill_core::workload::effective_config_path(name));
    }

    fn exited(&mut self, pid: i32, how: String, failed: bool) {
        use drill_core::model::Restart;
        if let Some(s) = self.services.values_mut().find(|s| s.pid == Some(pid)) {
            eprintln!("host-init: service {} (pid {pid}) {how}", s.spec.name);
            s.pid = None;
            let again = !s.stopping && (s.spec.restart == Restart::Always || (s.spec.restart == Restart::OnFailure && failed));
            // As a service manager's journal: the service's own log says how it ended.
            let mut line = format!("host-init: {} (pid {pid}) {how}", s.spec.name);
            if again {
                s.restart_at = Some(std::time::Instant::now() + RESTART_DELAY);
                line += &format!("; restarting in {} ms (restart #{})", RESTART_DELAY.as_millis(), s.restarts + 1);
                s.state = "auto-restart".into();
            } else {
                s.state = how;
            }
            if !s.stopping
                && let Ok(mut f) = File::options().append(true).open(&s.spec.log_path)
            {
                let _ = writeln!(f, "{line}");
            }
        }
    }

    /// Starts the services whose restart time has come; the next such time.
    fn restart_due(&mut self) -> Option<std::time::Instant> {
        let now = std::time::Instant::now();
        let due: Vec<String> = self.services.iter().filter(|(_, s)| s.pid.is_none() && s.restart_at.is_some_and(|t| t <= now)).map(|(n, _)| n.clone()).collect();
        for n in due {
            if let Some(s) = self.services.get_mut(&n) {
                s.restarts += 1;
            }
            if let Err(e) = self.start(&n) {
                eprintln!("host-init: restarting {n}: {e:#}");
                if let Some(s) = self.services.get_mut(&n) {
                    s.state = format!("failed to start: {e:#}");
                    s.restart_at = None;
                }
            }
        }
        self.services.values().filter_map(|s| s.restart_at).min()
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
            Request::Start { service } => {
                let running = self.services.get(&service).is_some_and(|s| s.pid.is_some());
                if !running {
                    Self::forget_effective(&service);
                }
                let r = self.start(&service);
                self.wait_ready(&service).await;
                r
            }
            Request::Stop { service } => self.stop(&service).await,
            Request::Reload { service } => self.reload(&service).await,
            Request::Restart { service } => match self.stop(&service).await {
                Ok(_) => {
                    Self::forget_effective(&service);
                    let r = self.start(&service);
                    if r.is_ok()
                        && let Some(s) = self.services.get_mut(&service)
                    {
                        s.restarts += 1;
                    }
                    self.wait_ready(&service).await;
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
            let next = self.restart_due();
            let wake = next.map_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600), tokio::time::Instant::from_std);
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
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

/// PIDs whose parent is `pid` (an nginx master's workers), from the host's /proc.
fn children_of(pid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        // Fields after the command name in parentheses: state, ppid, ...
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok());
        if ppid == Some(pid) {
            v.push(child);
        }
    }
    v
}

/// Whether an nginx worker is shutting down gracefully (its title says so).
fn is_exiting(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("shutting down"))
}
