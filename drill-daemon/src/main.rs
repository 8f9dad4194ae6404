//! drilld: the drill daemon. See README.md and docs/API.md.
//!
//! One binary, several roles (chosen by the first argument, or by argv[0]):
//! - `drilld [serve]`: the daemon (root); API on a Unix socket;
//! - `drilld reset`: removes leftovers of earlier runs, without a daemon;
//! - `drilld host-init` (internal): PID 1 of a drill host;
//! - `drilld workload KIND` (internal): a built-in service inside a host;
//! - `svc` (argv[0], inside a host): manage the host's services.
//!
//! Under systemd (drilld.service + drilld.socket): the socket comes in as fd 3
//! (LISTEN_FDS/LISTEN_PID, socket activation) and drilld neither creates nor removes its
//! file; READY=1 goes to NOTIFY_SOCKET once it serves; with JOURNAL_STREAM pointing at
//! stderr the log lines carry syslog priorities instead of timestamps and colours.

use drill_daemon::{daemon, host, journal, probes, workload};

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser, Subcommand};
use tracing::{info, warn};

#[derive(Parser)]
#[command(name = "drilld", version, about = "The drill daemon: builds drill networks, injects faults, watches the kernel, judges fixes.")]
struct Cli {
    /// Unix socket of the API.
    #[arg(long, global = true, env = "DRILL_SOCKET", default_value = drill_core::api::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Where drills keep their journals and hosts' private files.
    #[arg(long, global = true, env = "DRILL_STATE_DIR", default_value = "/run/drill")]
    state_dir: PathBuf,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon (the default).
    Serve {
        /// Exit when the last drill stops (used when `drill start` launches the daemon).
        #[arg(long)]
        exit_when_idle: bool,
    },
    /// Remove every leftover of earlier runs recorded in the state directory.
    Reset,
    /// The history with no daemon running (root): its rows, newest first, as JSON.
    History {
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// One drill's whole record from the history, as JSON.
    Record { id: String },
    /// The machine's facts for `drill doctor` (root), as JSON: what `GET /v1/doctor` answers.
    Doctor,
    #[command(hide = true)]
    HostInit,
    #[command(hide = true)]
    Workload {
        kind: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        config: String,
    },
    /// The deleted-open-file fault's filler, run by the daemon in the host's cgroup.
    #[command(hide = true)]
    FillHeldFile {
        #[arg(long)]
        init: i32,
        #[arg(long)]
        path: String,
    },
    /// Write the man pages (drilld.1, drilld-SUBCOMMAND.1) into DIR.
    #[command(hide = true)]
    Man { dir: PathBuf },
    #[command(hide = true)]
    Svc {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Capabilities the daemon needs, and what for.
const NEEDED_CAPS: &[(caps::Capability, &str)] = &[
    (caps::Capability::CAP_SYS_ADMIN, "create namespaces and mounts, enter hosts"),
    (caps::Capability::CAP_NET_ADMIN, "create links, addresses and routes"),
    (caps::Capability::CAP_BPF, "load eBPF probes"),
    (caps::Capability::CAP_PERFMON, "attach eBPF probes to tracepoints"),
    (caps::Capability::CAP_KILL, "stop hosts and services"),
    (caps::Capability::CAP_SYS_PTRACE, "read hosts' namespaces under /proc"),
];

/// Capabilities that help but are not required, and what is lost without them.
const OPTIONAL_CAPS: &[(caps::Capability, &str)] =
    &[(caps::Capability::CAP_SYS_RESOURCE, "services cannot raise limits above their hard limit, and kernels before 5.11 may refuse BPF maps (RLIMIT_MEMLOCK)")];

fn check_caps() -> Result<()> {
    for (cap, loss) in OPTIONAL_CAPS {
        if caps::has_cap(None, caps::CapSet::Effective, *cap).is_ok_and(|has| !has) {
            warn!("running without {cap}: {loss}");
        }
    }
    let mut missing = Vec::new();
    for (cap, why) in NEEDED_CAPS {
        match caps::has_cap(None, caps::CapSet::Effective, *cap) {
            Ok(true) => {}
            // CAP_BPF / CAP_PERFMON are unknown to kernels before 5.8: CAP_SYS_ADMIN covers them there.
            Ok(false) => missing.push(format!("{cap} ({why})")),
            Err(e) => warn!("cannot read capability {cap}: {e}"),
        }
    }
    if !missing.is_empty() {
        bail!("drilld lacks capabilities: {}. Run it as root: `sudo drilld` (or `sudo drill start ...`, which starts it).", missing.join(", "));
    }
    Ok(())
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let f = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if stderr_is_journal() {
        // journald stamps each line itself and reads `<N>` as its priority (sd-daemon(3)):
        // no time, no colour, the level only as that prefix.
        f.with_ansi(false).without_time().event_format(JournalFormat(tracing_subscriber::fmt::format().without_time().with_ansi(false).with_level(false))).init();
    } else {
        f.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
}

/// stderr is connected to the journal: JOURNAL_STREAM names its device and inode
/// (systemd.exec(5)); a variable inherited by a process whose stderr was redirected
/// elsewhere does not count.
fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(st) = nix::sys::stat::fstat(std::io::stderr()) else {
        return false;
    };
    dev.parse::<u64>().is_ok_and(|d| d == st.st_dev) && ino.parse::<u64>().is_ok_and(|i| i == st.st_ino)
}

/// The default line format behind a syslog priority prefix (`<3>` error ... `<7>` debug).
struct JournalFormat<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for JournalFormat<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>, mut w: tracing_subscriber::fmt::format::Writer<'_>, event: &tracing::Event<'_>) -> std::fmt::Result {
        let prio = match *event.metadata().level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        };
        write!(w, "<{prio}>")?;
        self.0.format_event(ctx, w, event)
    }
}

fn main() {
    let argv0 = std::env::args().next().unwrap_or_default();
    if std::path::Path::new(&argv0).file_name().is_some_and(|n| n == "svc") {
        std::process::exit(host::svc_main(std::env::args().skip(1).collect()));
    }
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::Man { dir }) => std::process::exit(write_man_pages(&dir)),
        Some(Cmd::HostInit) => host::init_main(),
        Some(Cmd::Workload { kind, name, config }) => std::process::exit(workload::main(&kind, &name, &config)),
        Some(Cmd::Svc { args }) => std::process::exit(host::svc_main(args)),
        Some(Cmd::FillHeldFile { init, path }) => std::process::exit(drill_daemon::kernel::linux::disk::fill_main(init, &path)),
        Some(Cmd::Reset) => {
            init_tracing();
            let _ = std::fs::create_dir_all(&cli.state_dir);
            let _lock = match daemon::StateLock::acquire_blocking(&cli.state_dir, std::time::Duration::from_secs(5)) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    std::process::exit(2);
                }
            };
            let (cleaned, errors) = journal::recover(&cli.state_dir);
            println!("removed the leftovers of {} drill(s){}", cleaned.len(), if cleaned.is_empty() { String::new() } else { format!(": {}", cleaned.join(", ")) });
            for done in host::procview::recover(&cli.state_dir).into_iter().chain(host::kmsg::recover(&cli.state_dir)) {
                println!("{done}");
            }
            // What a dead daemon was running is over: the history says so.
            let history = drill_daemon::history::path();
            if history.exists() {
                match drill_daemon::history::History::open(&history).and_then(|h| h.abort_running()) {
                    Ok(ids) if !ids.is_empty() => println!("marked {} interrupted drill(s) as aborted in the history: {}", ids.len(), ids.join(", ")),
                    Ok(_) => {}
                    Err(e) => eprintln!("warning: the history {}: {e:#}", history.display()),
                }
            }
            for e in &errors {
                eprintln!("error: {e}");
            }
            std::process::exit(if errors.is_empty() { 0 } else { 1 });
        }
        Some(Cmd::History { limit }) => std::process::exit(print_history(|h| Ok(serde_json::to_string(&h.list(None, limit)?)?))),
        Some(Cmd::Record { id }) => std::process::exit(print_history(|h| match h.get(&id)? {
            Some(r) => Ok(serde_json::to_string(&r)?),
            None => bail!("no drill `{id}` in the history {}", h.path().display()),
        })),
        Some(Cmd::Doctor) => {
            println!("{}", serde_json::to_string(&drill_daemon::doctor::gather()).unwrap_or_default());
            std::process::exit(0)
        }
        Some(Cmd::Serve { exit_when_idle }) => run_daemon(cli.socket, cli.state_dir, exit_when_idle),
        None => run_daemon(cli.socket, cli.state_dir, false),
    }
}

/// drilld.1 and a page per subcommand in `dir` (for the package); the exit code.
fn write_man_pages(dir: &std::path::Path) -> i32 {
    match std::fs::create_dir_all(dir).and_then(|_| clap_mangen::generate_to(Cli::command(), dir)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("drilld: error: writing the man pages into {}: {e}", dir.display());
            1
        }
    }
}

/// Opens the history and prints what `f` makes of it; the exit code.
fn print_history(f: impl FnOnce(&drill_daemon::history::History) -> Result<String>) -> i32 {
    let path = drill_daemon::history::path();
    if !path.exists() {
        println!("[]");
        return 0;
    }
    match drill_daemon::history::History::open(&path).and_then(|h| f(&h)) {
        Ok(s) => {
            println!("{s}");
            0
        }
        Err(e) => {
            eprintln!("drilld: error: {e:#}");
            1
        }
    }
}

fn run_daemon(socket: PathBuf, state: PathBuf, exit_when_idle: bool) {
    init_tracing();
    // A socket passed in by systemd (socket activation). Read, and the variables removed
    // so no child inherits them, before any thread exists.
    // SAFETY: single-threaded here: no runtime, no thread has started yet.
    let passed = match unsafe { sd_notify::listen_fds_and_unset_env() } {
        Ok(fds) => {
            let mut fds: Vec<std::os::fd::OwnedFd> = fds.map(|fd| unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }).collect();
            if fds.len() > 1 {
                warn!(count = fds.len(), "the service manager passed {} sockets; serving the first, closing the others (the socket unit should have one ListenStream=)", fds.len());
            }
            fds.drain(..).next()
        }
        Err(e) => {
            eprintln!("drilld: error: LISTEN_FDS/LISTEN_PID are set but unusable ({e}); start drilld through its socket unit or without them");
            std::process::exit(1);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    if let Err(e) = rt.block_on(daemon_main(socket, passed, state, exit_when_idle)) {
        eprintln!("drilld: error: {e:#}");
        std::process::exit(1);
    }
}

async fn daemon_main(socket: PathBuf, passed: Option<std::os::fd::OwnedFd>, state: PathBuf, exit_when_idle: bool) -> Result<()> {
    // First: a SIGTERM during the start must reach serve's teardown, not kill drilld.
    let mut stop = daemon::StopSignals::install().context("installing the SIGTERM/SIGINT handlers")?;
    check_caps()?;
    std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
    // Every host mounts its own disk over /tmp (host/rootfs.rs) before it binds its
    // kernel log, /proc view and files from the state directory: under /tmp they would
    // be hidden (each start failed with ENOENT binding /dev/kmsg).
    let canonical = std::fs::canonicalize(&state).unwrap_or_else(|_| state.clone());
    if canonical.starts_with(host::rootfs::STAGE) {
        bail!(
            "the state directory {} is under {}, which every drill host mounts its own disk over, so hosts could not reach what drilld serves them there; use a directory outside it (--state-dir or DRILL_STATE_DIR; the default is /run/drill)",
            canonical.display(),
            host::rootfs::STAGE
        );
    }
    // One daemon per state directory, for the whole life of this one (declared first
    // among the locals, so dropped last): an exiting daemon's teardown must not unmount
    // what the next one set up.
    let _state_lock = tokio::select! {
        l = daemon::StateLock::acquire(&state, daemon::STATE_LOCK_WAIT) => l?,
        _ = stop.stopped() => return Ok(()),
    };
    let (cleaned, errors) = journal::recover(&state);
    if !cleaned.is_empty() {
        info!(drills = ?cleaned, "removed leftovers of an earlier run");
    }
    for e in errors {
        warn!("recovering: {e}");
    }
    let exe = std::fs::read_link("/proc/self/exe").context("reading /proc/self/exe")?;
    let started = std::time::Instant::now();
    // The kernel's delay backend (a netem probe in a throwaway namespace) is found while
    // the probes load, not at the first drill's plan.
    std::thread::spawn(drill_daemon::kernel::linux::tc::backends);
    let probes = Arc::new(probes::Probes::load());
    info!(ms = started.elapsed().as_millis() as u64, "probes loaded");
    // The hosts' own /proc view; serving before the socket is
    // (a daemon that answers serves hosts with it); dropped (lxcfs stopped, unmounted)
    // when serving ends.
    let proc_view = match host::procview::ProcView::start(&state) {
        Ok(v) => v,
        Err(e) => {
            warn!("{e:#}; hosts show the machine's memory, CPUs and uptime in /proc");
            None
        }
    };
    // The hosts' kernel logs (their /dev/kmsg), the same way: served before the socket,
    // unmounted when serving ends.
    let kmsg = match host::kmsg::KmsgView::start(&state) {
        Ok(v) => v,
        Err(e) => {
            warn!("{e:#}; hosts' /dev/kmsg stays empty");
            None
        }
    };
    let (conn, root_nl, _) = rtnetlink::new_connection().context("opening a netlink socket")?;
    tokio::spawn(conn);
    let api = match passed {
        Some(fd) => daemon::adopt_socket(fd, &socket)?,
        None => daemon::bind_socket(&socket)?,
    };
    let kernel = Arc::new(
        drill_daemon::kernel::linux::LinuxKernel::new(probes, host::Spawner::start()?, root_nl)
            .with_proc_view(proc_view.as_ref().map(|v| v.dir().to_path_buf()))
            .with_kmsg(kmsg.as_ref().map(|v| (v.dir().to_path_buf(), v.logs()))),
    );
    let history = open_history();
    let d = Arc::new(daemon::Daemon {
        state,
        exe,
        kernel,
        drills: Default::default(),
        starting: Default::default(),
        exit_when_idle,
        idle: Default::default(),
        sessions: Default::default(),
        history,
        limits: daemon::Limits::from_env()?,
    });
    if exit_when_idle {
        // If no drill ever starts (the first start failed), do not linger.
        let d2 = d.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            d2.idle.notify_one();
        });
    }
    let served = daemon::serve(d, api, stop).await;
    drop(kmsg);
    drop(proc_view);
    served
}

/// The drills' history (SQLite): drills an earlier daemon left running are marked
/// aborted; without it drills run but are not kept.
fn open_history() -> Option<Arc<drill_daemon::history::Writer>> {
    match drill_daemon::history::History::open(&drill_daemon::history::path()) {
        Ok(h) => {
            match h.abort_running() {
                Ok(ids) if !ids.is_empty() => info!(drills = ?ids, "history: marked the drills an earlier daemon was running as aborted"),
                Ok(_) => {}
                Err(e) => warn!("history: marking interrupted drills aborted: {e:#}"),
            }
            Some(Arc::new(drill_daemon::history::Writer::start(Arc::new(h))))
        }
        Err(e) => {
            warn!("history: {e:#}; drills will run but not be kept");
            None
        }
    }
}
