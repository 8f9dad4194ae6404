//! The eBPF probes, loaded once when the daemon starts and shared by every drill.
//! All programs filter by network namespace inode (`watched_netns`), so a drill's
//! verdict only ever sees its own hosts. Each program loads and attaches on its own:
//! one that the kernel refuses is reported by name with the reason, and only the
//! drills that need it refuse to start.

use std::collections::{BTreeMap, HashMap as StdHashMap, VecDeque};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow};
use aya::maps::{Array, HashMap, MapData, PerCpuHashMap, RingBuf};
use aya::programs::{BtfTracePoint, RawTracePoint};
use drill_core::api::ProbeStatus;
use drill_core::scenario::TcpState;
use drill_core::verdict::{DwellObservation, DwellSample};
use drill_ebpf::{DwellEvent, DwellOpen, EventKey, ExecEvent, PROGRAMS, Rtt, RttKey, counters, maps};
use tokio::io::unix::AsyncFd;

mod commands;
mod net;
pub use commands::{Captured, CommandProbe};
use net::drop_reasons;
pub use net::{EventProbe, TcpStateProbe};

/// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns()`.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: plain syscall writing into a local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Ring buffer records kept per namespace (older ones are dropped first).
const EVENTS_PER_NETNS: usize = 200_000;

type Store<T> = Arc<Mutex<StdHashMap<u32, VecDeque<T>>>>;

fn take<T>(ebpf: &mut aya::Ebpf, name: &str) -> Result<T>
where
    T: TryFrom<aya::maps::Map>,
    <T as TryFrom<aya::maps::Map>>::Error: std::error::Error + Send + Sync + 'static,
{
    let map = ebpf.take_map(name).ok_or_else(|| anyhow!("map {name} missing from the object"))?;
    T::try_from(map).with_context(|| format!("map {name} has an unexpected type"))
}

/// Drains a ring buffer on the runtime, handing each batch of records to `take`.
fn drain_with<T: Send + 'static>(ring: RingBuf<MapData>, parse: fn(&[u8]) -> Option<T>, mut take: impl FnMut(Vec<T>) + Send + 'static) -> Result<()> {
    // SAFETY: the RingBuf owns its map fd and keeps it open, unchanged, for as long as
    // the AsyncFd (which owns the RingBuf) lives.
    let mut afd = unsafe { AsyncFd::register(ring) }.map_err(|e| anyhow!("registering a ring buffer with tokio: {e}"))?;
    tokio::spawn(async move {
        loop {
            let Ok(mut guard) = afd.readable_mut().await else {
                break;
            };
            let rb = guard.get_inner_mut();
            let mut batch = Vec::new();
            while let Some(item) = rb.next() {
                if let Some(x) = parse(&item) {
                    batch.push(x);
                }
            }
            guard.clear_ready();
            take(batch);
        }
    });
    Ok(())
}

/// Drains a ring buffer into a per-netns store, parsing records with `parse`.
fn drain<T: Send + 'static>(ring: RingBuf<MapData>, store: Store<T>, parse: fn(&[u8]) -> Option<(u32, T)>) -> Result<()> {
    drain_with(ring, parse, move |batch| keep(&store, batch))
}

/// Appends records to their namespace's queue in `store`, the oldest dropped past
/// [`EVENTS_PER_NETNS`].
fn keep<T>(store: &Store<T>, batch: impl IntoIterator<Item = (u32, T)>) {
    if let Ok(mut s) = store.lock() {
        for (netns, x) in batch {
            let q = s.entry(netns).or_default();
            if q.len() >= EVENTS_PER_NETNS {
                q.pop_front();
            }
            q.push_back(x);
        }
    }
}

/// Every probe of the daemon, and why any could not load.
/// An on-demand program's link and the drills holding it.
#[derive(Default)]
struct Hold {
    owners: std::collections::BTreeSet<String>,
    link: Option<aya::programs::raw_trace_point::RawTracePointLink>,
}

pub struct Probes {
    // Keeps the attached programs alive; the on-demand ones attach through it.
    ebpf: Option<Mutex<aya::Ebpf>>,
    /// The on-demand programs attached now, with the drills that hold them.
    holds: Mutex<BTreeMap<&'static str, Hold>>,
    watched: Option<Mutex<HashMap<MapData, u32, u32>>>,
    pub tcpstate: Option<Arc<TcpStateProbe>>,
    pub events: Option<Arc<EventProbe>>,
    pub commands: Option<Arc<CommandProbe>>,
    pub status: Vec<ProbeStatus>,
}

impl Probes {
    /// Loads the object and every program; must run inside a tokio runtime.
    pub fn load() -> Probes {
        // Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK, libc::RLIM_INFINITY, libc::RLIM_INFINITY);
        match Self::try_load() {
            Ok(p) => p,
            Err(e) => {
                let why = format!("{e:#}");
                tracing::error!(error = %why, "the probe object could not load; drills with checks will refuse to start");
                Probes {
                    ebpf: None,
                    holds: Mutex::default(),
                    watched: None,
                    tcpstate: None,
                    events: None,
                    commands: None,
                    status: PROGRAMS.iter().map(|p| ProbeStatus { name: p.describes.into(), loaded: false, error: Some(why.clone()) }).collect(),
                }
            }
        }
    }

    fn try_load() -> Result<Probes> {
        // The drop reasons come from the same BTF through another parser: read them on a
        // thread of their own, not awaited here (only verdicts and a start that names a
        // reason need them, and they wait for them).
        let reasons: Arc<std::sync::OnceLock<BTreeMap<u32, String>>> = Arc::default();
        let fill = reasons.clone();
        std::thread::Builder::new()
            .name("drop-reasons".into())
            .spawn(move || {
                let _ = fill.set(drop_reasons());
            })
            .context("spawning the BTF reader")?;
        // The kernel's BTF is parsed once, for the CO-RE relocations and the tp_btf loads
        // alike (aya's default loader would parse it again for itself).
        let t = std::time::Instant::now();
        let btf = aya::Btf::from_sys_fs().context("reading the kernel's BTF (/sys/kernel/btf/vmlinux)");
        tracing::debug!(ms = t.elapsed().as_millis() as u64, "kernel BTF parsed");
        let mut ebpf = aya::EbpfLoader::new().btf(btf.as_ref().ok()).load(drill_ebpf::PROBES_OBJ).context("loading the probe object (BTF/CO-RE relocation or map creation failed)")?;
        tracing::debug!(ms = t.elapsed().as_millis() as u64, "probe object loaded (relocated, maps created)");
        let mut status = Vec::new();
        for p in PROGRAMS {
            let r = (|| -> Result<()> {
                let prog = ebpf.program_mut(p.program).ok_or_else(|| anyhow!("program {} missing from the object", p.program))?;
                if p.btf {
                    let btf = btf.as_ref().map_err(|e| anyhow!("{e:#}"))?;
                    let prog: &mut BtfTracePoint = prog.try_into()?;
                    prog.load(p.tracepoint, btf).context("the kernel's verifier refused it")?;
                    prog.attach().with_context(|| format!("attaching to BTF tracepoint {}", p.tracepoint))?;
                } else {
                    let prog: &mut RawTracePoint = prog.try_into()?;
                    prog.load().context("the kernel's verifier refused it")?;
                    let id = prog.attach(p.tracepoint).with_context(|| format!("attaching to raw tracepoint {}", p.tracepoint))?;
                    if p.on_demand {
                        // Attached once to prove it can be; detached until a drill holds it.
                        drop(prog.take_link(id)?);
                    }
                }
                Ok(())
            })();
            tracing::debug!(ms = t.elapsed().as_millis() as u64, program = p.program, "program loaded and attached");
            if let Err(e) = &r {
                tracing::error!(probe = p.describes, error = %format!("{e:#}"), "probe could not load; drills that need it will refuse to start");
            }
            status.push(ProbeStatus { name: p.describes.into(), loaded: r.is_ok(), error: r.err().map(|e| format!("{e:#}")) });
        }
        let watched = take(&mut ebpf, maps::WATCHED_NETNS)?;
        let tcpstate_loaded = status.iter().any(|s| s.loaded && s.name == drill_ebpf::describes("drill_tcpstate"));
        let tcpstate = if tcpstate_loaded {
            let store: Store<DwellEvent> = Arc::default();
            let open = Arc::new(Mutex::new(take(&mut ebpf, maps::OPEN_DWELL)?));
            net::drain_dwell(take(&mut ebpf, maps::DWELL_EVENTS)?, store.clone(), open.clone())?;
            Some(Arc::new(TcpStateProbe {
                tracked: Mutex::new(take(&mut ebpf, maps::TRACKED_STATES)?),
                open,
                counters: Mutex::new(take(&mut ebpf, maps::COUNTERS)?),
                events: store,
            }))
        } else {
            None
        };
        let execs: Store<ExecEvent> = Arc::default();
        drain(take(&mut ebpf, maps::EXEC_EVENTS)?, execs.clone(), |b| ExecEvent::from_bytes(b).map(|e| (e.netns, e)))?;
        let events = Some(Arc::new(EventProbe { counts: Mutex::new(take(&mut ebpf, maps::EVENT_COUNTS)?), rtt: Mutex::new(take(&mut ebpf, maps::RTT_STATS)?), execs, drop_reasons: reasons }));
        let commands_loaded = status.iter().any(|s| s.loaded && s.name == drill_ebpf::describes("drill_cmd"));
        let commands = if commands_loaded {
            let store: Arc<Mutex<StdHashMap<u32, VecDeque<Captured>>>> = Arc::default();
            CommandProbe::drain(take(&mut ebpf, maps::CMD_EVENTS)?, store.clone())?;
            Some(Arc::new(CommandProbe { watched: Mutex::new(take(&mut ebpf, maps::WATCHED_PIDNS)?), counters: Mutex::new(take(&mut ebpf, maps::CMD_COUNTERS)?), store }))
        } else {
            None
        };
        Ok(Probes { ebpf: Some(Mutex::new(ebpf)), holds: Mutex::default(), watched: Some(Mutex::new(watched)), tcpstate, events, commands, status })
    }

    /// Refuses when a program `need`ed (by its description) is not attached.
    pub fn require(&self, need: &str) -> Result<()> {
        match self.status.iter().find(|s| s.name == need) {
            Some(s) if s.loaded => Ok(()),
            Some(s) => Err(anyhow!("the probe `{}` is not loaded: {}", s.name, s.error.clone().unwrap_or_default())),
            None => Err(anyhow!("no probe `{need}`")),
        }
    }

    /// Attaches the on-demand program `program` for `owner` (a drill id), if no one
    /// holds it yet; a program that is always attached needs no hold.
    pub fn hold(&self, owner: &str, program: &str) -> Result<()> {
        let p = PROGRAMS.iter().find(|p| p.program == program).ok_or_else(|| anyhow!("no probe program named {program}"))?;
        if !p.on_demand {
            return Ok(());
        }
        self.require(p.describes)?;
        let mut holds = self.holds.lock().map_err(|_| anyhow!("poisoned"))?;
        let h = holds.entry(p.program).or_default();
        if h.link.is_none() {
            let ebpf = self.ebpf.as_ref().ok_or_else(|| anyhow!("probes not loaded"))?;
            let mut ebpf = ebpf.lock().map_err(|_| anyhow!("poisoned"))?;
            let prog: &mut RawTracePoint = ebpf.program_mut(p.program).ok_or_else(|| anyhow!("program {} missing from the object", p.program))?.try_into()?;
            let id = prog.attach(p.tracepoint).with_context(|| format!("attaching {} to raw tracepoint {}", p.program, p.tracepoint))?;
            h.link = Some(prog.take_link(id)?);
            tracing::info!(program = p.program, owner, "on-demand probe attached");
        }
        h.owners.insert(owner.to_string());
        Ok(())
    }

    /// Gives up `owner`'s hold on `program`; the last hold's release detaches it.
    pub fn release(&self, owner: &str, program: &str) -> Result<()> {
        let mut holds = self.holds.lock().map_err(|_| anyhow!("poisoned"))?;
        if let Some(h) = holds.get_mut(program) {
            h.owners.remove(owner);
            if h.owners.is_empty() {
                // Dropping the link detaches the program.
                if h.link.take().is_some() {
                    tracing::info!(program, "on-demand probe detached (no drill needs it)");
                }
            }
        }
        Ok(())
    }

    /// Whether the on-demand program `program` is attached now (tests, bench).
    pub fn attached(&self, program: &str) -> bool {
        self.holds.lock().is_ok_and(|h| h.get(program).is_some_and(|h| h.link.is_some()))
    }

    pub fn tcpstate(&self) -> Result<&Arc<TcpStateProbe>> {
        self.require(drill_ebpf::describes("drill_tcpstate"))?;
        self.tcpstate.as_ref().ok_or_else(|| anyhow!("the tcpstate probe is not loaded"))
    }

    pub fn events(&self) -> Result<&Arc<EventProbe>> {
        let why = || self.status.iter().find_map(|s| s.error.clone()).unwrap_or_else(|| "the probe object did not load".into());
        self.events.as_ref().ok_or_else(|| anyhow!("the event probes are not loaded: {}", why()))
    }

    pub fn commands(&self) -> Result<&Arc<CommandProbe>> {
        self.require(drill_ebpf::describes("drill_cmd"))?;
        self.commands.as_ref().ok_or_else(|| anyhow!("the command capture is not loaded"))
    }

    /// Starts recording a namespace; `states` are the TCP states to time in it.
    pub fn watch(&self, netns: u32, states: &[TcpState]) -> Result<()> {
        if let (Some(t), false) = (&self.tcpstate, states.is_empty()) {
            t.track(states)?;
            t.events.lock().map_err(|_| anyhow!("poisoned"))?.entry(netns).or_default();
        }
        let w = self.watched.as_ref().ok_or_else(|| anyhow!("probes not loaded"))?;
        w.lock().map_err(|_| anyhow!("poisoned"))?.insert(netns, 1, 0).context("updating watched_netns (is it full?)")
    }

    /// Stops recording a namespace and forgets everything recorded for it.
    pub fn unwatch(&self, netns: u32) -> Result<()> {
        if let Some(w) = &self.watched {
            let mut w = w.lock().map_err(|_| anyhow!("poisoned"))?;
            if w.get(&netns, 0).is_ok() {
                w.remove(&netns).map_err(|e| anyhow!("removing netns {netns} from watched_netns: {e}"))?;
            }
        }
        if let Some(t) = &self.tcpstate {
            t.forget(netns);
        }
        if let Some(e) = &self.events {
            e.forget(netns);
        }
        Ok(())
    }
}
