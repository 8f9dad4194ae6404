//! One running drill: its hosts, services and faults, and what the learner can do
//! with it. By lifecycle:
//! - `mod.rs` (here): the [`Drill`], `start` (build, or roll back everything built so
//!   far) and `teardown` (undo in reverse, keep going, report every error);
//! - `apply.rs`: namespaces, topology, delay wires, hosts, faults;
//! - `measure.rs`: every fault measured after apply, from a neighbour host;
//! - `verify.rs`: the observation window and the checks' verdict;
//! - `status.rs`: info, counters, hints, exec, live retuning.
//!
//! A drill talks to the machine only through its [`Kernel`]: the daemon passes the
//! Linux one, the unit tests a recording fake. What it builds, breaks, measures and
//! judges comes from its [`Plan`] alone; the scenario is kept for what the learner
//! reads (alert, briefing, hints, solution).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use drill_core::plan::Plan;
use drill_core::scenario::Scenario;
use tracing::{info, warn};

use crate::error::{DrillError, Result};
use crate::journal::{self, Journal};
use crate::kernel::Kernel;
use crate::kernel::linux::LinuxKernel;

mod apply;
mod commands;
mod fabric;
mod fault;
mod measure;
mod procs;
mod status;
#[cfg(test)]
mod tests;
mod verify;
pub use verify::Observed;

pub struct RunningHost {
    pub name: String,
    pub netns: String,
    pub netns_ino: u32,
    pub pid: Option<i32>,
    /// Its PID namespace (the timeline's command capture); 0 until its init runs.
    pub pidns_ino: u32,
}

/// Something a drill created outside what deleting its namespaces removes (or a
/// namespace itself), in creation order: teardown undoes these in reverse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    Netns(String),
    /// The probes record this host's namespace.
    Watch {
        host: String,
        ino: u32,
    },
    /// A drill's hold on an on-demand probe program (by name).
    ProbeHold(&'static str),
    /// A delay wire's threads, by its namespace.
    Wire(String),
    Host {
        name: String,
        pid: i32,
    },
    /// The timeline captures the commands of this host's PID namespace.
    PidWatch {
        host: String,
        ino: u32,
    },
    /// A switch's path MTU classifier (its program and maps), by the switch's namespace.
    PathMtu {
        switch: String,
        netns: String,
    },
    /// An eBPF fault's program and maps.
    TcFault {
        host: String,
        netns: String,
        iface: String,
    },
}

impl Created {
    /// What undoing it is, for errors.
    fn undo_text(&self) -> String {
        match self {
            Created::Netns(n) => format!("deleting network namespace {n}"),
            Created::Watch { host, .. } => format!("host {host}: detaching the probes"),
            Created::ProbeHold(p) => format!("releasing the probe {p}"),
            Created::Wire(w) => format!("closing the delay wire {w}"),
            Created::Host { name, pid } => format!("host {name}: stopping its init {pid}"),
            Created::PidWatch { host, .. } => format!("host {host}: detaching the command capture"),
            Created::PathMtu { switch, .. } => format!("switch {switch}: releasing the path MTU classifier"),
            Created::TcFault { host, iface, .. } => format!("host {host}: releasing the eBPF fault on {iface}"),
        }
    }
}

/// Where a drill's scenario came from and whose drill it is.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    /// The pack (`core`; empty for a file the client sent).
    pub pack: String,
    /// The uid of the client that started it (SO_PEERCRED): root's drills alone get
    /// the tracing capabilities in their hosts.
    pub owner_uid: u32,
    /// What the client's `SUDO_UID` said (shown, never trusted).
    pub sudo_uid: Option<u32>,
    /// The contents of the plan's files, in plan order (read from the pack by the daemon).
    pub files: Vec<Vec<u8>>,
    /// The directory of its pack (hidden from its hosts like every pack).
    pub pack_dir: Option<PathBuf>,
}

impl Origin {
    /// Machine paths no host of this drill may see: the built-in pack, the installed
    /// packs and the drill's own pack directory (canonical, as the overlays see them).
    pub fn hidden_paths(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = drill_core::builtin::dir().into_iter().chain([drill_core::catalog::packs_dir()]).chain(self.pack_dir.clone()).filter_map(|p| std::fs::canonicalize(p).ok()).collect();
        v.sort();
        v.dedup();
        // A path below another hidden one is hidden with it.
        v.iter().filter(|p| !v.iter().any(|q| q != *p && p.starts_with(q))).cloned().collect()
    }
}

pub struct Drill<K: Kernel = LinuxKernel> {
    pub id: String,
    pub scenario: Scenario,
    pub plan: Plan,
    pub started: SystemTime,
    pub started_at: Instant,
    pub dir: PathBuf,
    pub hosts: Vec<RunningHost>,
    pub origin: Origin,
    kernel: Arc<K>,
    hints_given: AtomicUsize,
    journal: Journal,
    /// What to undo, in creation order.
    created: Mutex<Vec<Created>>,
    /// What each fault is and how it was made and measured (revealed with the solution).
    fault_notes: Mutex<Vec<String>>,
    /// When the scenario speaks TLS: a client config trusting the drill's CA (the CA
    /// itself only lives while the hosts' certificates are made).
    tls_client: Option<Arc<rustls::ClientConfig>>,
    /// Tasks that live as long as the drill (the conntrack feeder), aborted first at teardown.
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Milliseconds of each start phase ("namespaces=3 topology=12 ..."), for the log.
    phases: String,
}

/// What starting a drill needs from the daemon.
pub struct Env<'a, K: Kernel = LinuxKernel> {
    pub state: &'a Path,
    pub exe: &'a Path,
    pub kernel: &'a Arc<K>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<K: Kernel> Drill<K> {
    /// Builds the drill of `plan`. On any failure everything created so far is removed
    /// (in reverse order) and the error says which step and which host failed.
    pub async fn start(env: &Env<'_, K>, scenario: Scenario, plan: Plan, origin: Origin) -> Result<Drill<K>> {
        verify::require_probes(env.kernel.as_ref(), &plan)?;
        let dir = journal::drill_dir(env.state, &plan.drill_id);
        let journal = Journal { drill_id: plan.drill_id.clone(), scenario: scenario.id.clone(), pack: origin.pack.clone(), owner_uid: origin.owner_uid, ..Default::default() };
        let mut d = Drill {
            id: plan.drill_id.clone(),
            scenario,
            plan,
            started: SystemTime::now(),
            started_at: Instant::now(),
            dir,
            hosts: Vec::new(),
            origin,
            kernel: env.kernel.clone(),
            hints_given: AtomicUsize::new(0),
            journal,
            created: Mutex::new(Vec::new()),
            fault_notes: Mutex::new(Vec::new()),
            tls_client: None,
            tasks: Mutex::new(Vec::new()),
            phases: String::new(),
        };
        match d.build(env).await {
            Ok(()) => {
                info!(drill = %d.id, scenario = %d.scenario.id, ms = d.started_at.elapsed().as_millis() as u64, phases = %d.phases, "drill ready");
                Ok(d)
            }
            Err(e) => {
                for x in d.teardown() {
                    warn!(drill = %d.id, "cleanup after failed start: {x}");
                }
                Err(DrillError::StartFailed { drill: d.id.clone(), source: Box::new(e) })
            }
        }
    }

    /// Records something created (the journal on disk holds namespaces and PIDs
    /// before they exist, for recovery after a crash).
    fn created(&self, c: Created) {
        lock(&self.created).push(c);
    }

    /// Keeps a task of the drill's life, aborted at teardown.
    fn feeder(&self, t: tokio::task::AbortHandle) {
        lock(&self.tasks).push(t);
    }

    /// What the drill created and not yet undone, in creation order.
    pub fn created_so_far(&self) -> Vec<Created> {
        lock(&self.created).clone()
    }

    /// Removes everything the drill created, newest first. Keeps going after errors
    /// and returns every one of them. A second call finds nothing left to do.
    pub fn teardown(&self) -> Vec<DrillError> {
        for t in std::mem::take(&mut *lock(&self.tasks)) {
            t.abort();
        }
        let created = std::mem::take(&mut *lock(&self.created));
        let mut errors = Vec::new();
        for c in created.iter().rev() {
            let k = self.kernel.as_ref();
            let r = match c {
                Created::TcFault { netns, iface, .. } => k.forget_tc_fault(netns, iface),
                Created::PathMtu { netns, .. } => k.forget_path_mtu(netns),
                Created::Host { name, pid } => k.kill_host(name, *pid),
                Created::Wire(w) => k.close_wire(w),
                Created::Watch { ino, .. } => k.unwatch(*ino),
                Created::ProbeHold(p) => k.release_probe(&self.id, p),
                Created::PidWatch { ino, .. } => k.unwatch_pids(*ino),
                Created::Netns(n) => k.delete_netns(n),
            };
            if let Err(e) = r {
                errors.push(DrillError::Internal(anyhow::anyhow!("{}: {e}", c.undo_text())));
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            errors.push(DrillError::Internal(anyhow::anyhow!("removing {}: {e}", self.dir.display())));
        }
        info!(drill = %self.id, errors = errors.len(), "drill torn down");
        errors
    }

    pub fn host(&self, name: &str) -> Result<&RunningHost> {
        self.hosts.iter().find(|h| h.name == name).ok_or_else(|| DrillError::HostNotFound {
            drill: self.id.clone(),
            host: name.to_string(),
            hosts: self.hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    pub fn host_pid(&self, name: &str) -> Result<i32> {
        self.host(name)?.pid.ok_or_else(|| DrillError::Internal(anyhow::anyhow!("host {name} of drill {} has no running init", self.id)))
    }

    /// Logs an applied fault with how it was made and measured, and keeps that for the reveal.
    fn record(&self, fault: String, note: String) {
        info!(drill = %self.id, %fault, %note, "fault applied");
        lock(&self.fault_notes).push(format!("{fault}: {note}"));
    }

    /// What the engine broke and how each fault was made and measured.
    pub fn fault_notes(&self) -> Vec<String> {
        lock(&self.fault_notes).clone()
    }
}
