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
        let listen = match drill_core::workload::Workload::parse_config(&svc.spec.kind, &text) {
            Ok(drill_core::workload::Workload::Httpd(c)) => Some(c.listen),
            Ok(drill_core::workload::Workload::Proxy(c)) => Some(c.listen),
            _ => None,
        };
        let port = listen.and_then(|l| l.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()));
        for _ in 0..300 {
            self.reap();
            let recorded = std::path::Path::new(&effective).exists();
            if self.services.get(name).is_none_or(|s| s.pid.is_none()) || (recorded && port.is_none_or(crate::kernel::linux::faults::listening)) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Before a (re)start: the old process's effective config goes, so [`Self::wait_ready`]
    /// sees the new one's.
    fn forget_effective(name: &str) {
        let _ = std::fs::remove_file(drill_core::workload::effective_config_path(name));
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
