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
    drain_with(ring, parse, move |batch| {
        if let Ok(mut s) = store.lock() {
            for (netns, x) in batch {
                let q = s.entry(netns).or_default();
                if q.len() >= EVENTS_PER_NETNS {
                    q.pop_front();
                }
                q.push_back(x);
            }
        }
    })
}

/// TCP state dwell times (`sock:inet_sock_set_state`).
pub struct TcpStateProbe {
    tracked: Mutex<Array<MapData, u32>>,
    open: Mutex<HashMap<MapData, u64, DwellOpen>>,
    counters: Mutex<Array<MapData, u64>>,
    events: Store<DwellEvent>,
}

impl TcpStateProbe {
    fn track(&self, states: &[TcpState]) -> Result<()> {
        let bits = states.iter().fold(0u32, |m, s| m | (1 << s.number()));
        let mut t = self.tracked.lock().map_err(|_| anyhow!("poisoned"))?;
        let cur = t.get(&0, 0).unwrap_or(0);
        t.set(0, cur | bits, 0).context("updating tracked_states")
    }

    fn forget(&self, netns: u32) {
        if let Ok(mut open) = self.open.lock() {
            let stale: Vec<u64> = open.iter().filter_map(|r| r.ok()).filter(|(_, v)| v.netns == netns).map(|(k, _)| k).collect();
            for k in stale {
                let _ = open.remove(&k);
            }
        }
        if let Ok(mut e) = self.events.lock() {
            e.remove(&netns);
        }
    }

    pub fn events_lost(&self) -> u64 {
        self.counters.lock().ok().and_then(|c| c.get(&counters::EVENTS_LOST, 0).ok()).unwrap_or(0)
    }

    /// What the probe saw for netns/port/state between `start_ns` and `end_ns`
    /// (CLOCK_MONOTONIC): exits inside the window and sockets still in the state.
    /// `lost_before` is [`TcpStateProbe::events_lost`] read at the window's start.
    /// With `peer`, `port` is matched against the remote port instead of the local one.
    pub fn observe(&self, netns: u32, port: u16, peer: bool, state: TcpState, start_ns: u64, end_ns: u64, lost_before: u64) -> DwellObservation {
        let st = state.number();
        let ports = |local: u16, remote: u16| if peer { remote == port } else { local == port };
        let mut samples: Vec<DwellSample> = Vec::new();
        if let Ok(store) = self.events.lock()
            && let Some(q) = store.get(&netns)
        {
            samples.extend(q.iter().filter(|e| ports(e.port, e.remote_port) && e.state == st && e.exit_ns >= start_ns && e.exit_ns <= end_ns).map(|e| DwellSample {
                enter_ns: e.enter_ns,
                exit_ns: Some(e.exit_ns),
                remote_port: e.remote_port,
            }));
        }
        if let Ok(open) = self.open.lock() {
            samples.extend(
                open.iter().filter_map(|r| r.ok()).filter(|(_, v)| v.netns == netns && ports(v.port, v.remote_port) && v.state == u32::from(st) && v.enter_ns <= end_ns).map(|(_, v)| DwellSample {
                    enter_ns: v.enter_ns,
                    exit_ns: None,
                    remote_port: v.remote_port,
                }),
            );
        }
        DwellObservation { window_start_ns: start_ns, window_end_ns: end_ns, samples, events_lost: self.events_lost().saturating_sub(lost_before) }
    }

    /// Sockets currently in `state` in a namespace (any port).
    pub fn open_count(&self, netns: u32, state: TcpState) -> u64 {
        let st = u32::from(state.number());
        self.open.lock().map(|o| o.iter().filter_map(|r| r.ok()).filter(|(_, v)| v.netns == netns && v.state == st).count() as u64).unwrap_or(0)
    }
}

/// Counters of drops, retransmissions, resets, OOM kills and execs; RTT samples;
/// the processes started in drill hosts.
pub struct EventProbe {
    counts: Mutex<HashMap<MapData, EventKey, u64>>,
    rtt: Mutex<PerCpuHashMap<MapData, RttKey, Rtt>>,
    execs: Store<ExecEvent>,
    /// `enum skb_drop_reason` of the running kernel, from its BTF.
    /// Filled by a thread of its own after the daemon starts (the BTF parse takes a few
    /// hundred milliseconds); readers wait for it.
    drop_reasons: Arc<std::sync::OnceLock<BTreeMap<u32, String>>>,
}

impl EventProbe {
    /// Every counter of one namespace. A map that cannot be read is an error, never
    /// zeros: a verdict on unread counters would pass by failing.
    pub fn snapshot(&self, netns: u32) -> Result<BTreeMap<EventKey, u64>> {
        let c = self.counts.lock().map_err(|_| anyhow!("the event counters' lock was poisoned"))?;
        let mut m = BTreeMap::new();
        for r in c.iter() {
            let (k, v) = r.context("reading the event counters map")?;
            if k.netns == netns {
                m.insert(k, v);
            }
        }
        Ok(m)
    }

    /// RTT samples of (netns, port), summed over the CPUs.
    pub fn rtt(&self, netns: u32, port: u16) -> Rtt {
        let Some(per_cpu) = self.rtt.lock().ok().and_then(|r| r.get(&RttKey { netns, port, _pad: 0 }, 0).ok()) else {
            return Rtt::default();
        };
        per_cpu.iter().fold(Rtt::default(), |acc, c| Rtt { samples: acc.samples + c.samples, srtt_sum_us: acc.srtt_sum_us + c.srtt_sum_us, srtt_max_us: acc.srtt_max_us.max(c.srtt_max_us) })
    }

    /// Processes started in a namespace, oldest first.
    pub fn execs(&self, netns: u32) -> Vec<ExecEvent> {
        self.execs.lock().map(|s| s.get(&netns).map(|q| q.iter().copied().collect()).unwrap_or_default()).unwrap_or_default()
    }

    /// Kernel name of a drop reason without the `SKB_DROP_REASON_` prefix.
    pub fn reason_name(&self, reason: u32) -> String {
        self.drop_reasons.wait().get(&reason).cloned().unwrap_or_else(|| format!("reason {reason}"))
    }

    /// The number of a drop reason by name (with or without the prefix), on this kernel.
    pub fn reason_number(&self, name: &str) -> Option<u32> {
        let n = name.trim_start_matches("SKB_DROP_REASON_");
        self.drop_reasons.wait().iter().find(|(_, v)| v.eq_ignore_ascii_case(n)).map(|(k, _)| *k)
    }

    fn forget(&self, netns: u32) {
        if let Ok(mut c) = self.counts.lock() {
            let keys: Vec<EventKey> = c.keys().filter_map(|k| k.ok()).filter(|k| k.netns == netns).collect();
            for k in keys {
                let _ = c.remove(&k);
            }
        }
        if let Ok(mut r) = self.rtt.lock() {
            let keys: Vec<RttKey> = r.keys().filter_map(|k| k.ok()).filter(|k| k.netns == netns).collect();
            for k in keys {
                let _ = r.remove(&k);
            }
        }
        if let Ok(mut e) = self.execs.lock() {
            e.remove(&netns);
        }
    }
}

/// `enum skb_drop_reason` from the kernel's BTF: numbers differ between kernels. The
/// direct scan ([`crate::btf`]) takes milliseconds; the full parser is the fallback.
fn drop_reasons() -> BTreeMap<u32, String> {
    let blob = std::fs::read("/sys/kernel/btf/vmlinux").unwrap_or_default();
    if let Some(m) = crate::btf::enum_members(&blob, "skb_drop_reason") {
        return m.into_iter().map(|(v, n)| (v, n.trim_start_matches("SKB_DROP_REASON_").to_string())).collect();
    }
    let mut m = BTreeMap::new();
    let Ok(btf) = btf_rs::Btf::from_bytes(&blob) else {
        return m;
    };
    for t in btf.resolve_types_by_name("skb_drop_reason").unwrap_or_default() {
        if let btf_rs::Type::Enum(e) = t {
            for member in &e.members {
                if let Ok(name) = btf.resolve_name(member) {
                    m.insert(member.val(), name.trim_start_matches("SKB_DROP_REASON_").to_string());
                }
            }
        }
    }
    m
}

/// Commands kept per PID namespace (older ones are dropped first).
const COMMANDS_PER_PIDNS: usize = 100_000;

/// One program started in a watched PID namespace, with its exit once seen.
#[derive(Clone, Debug)]
pub struct Captured {
    pub exec: Box<drill_ebpf::CmdExec>,
    /// (CLOCK_MONOTONIC ns, wait status).
    pub exit: Option<(u64, u32)>,
}

/// The timeline's command capture (`drill_cmd`, `drill_cmd_exit`): every exec and exit
/// in the PID namespaces of drill hosts.
pub struct CommandProbe {
    watched: Mutex<HashMap<MapData, u32, u32>>,
    counters: Mutex<Array<MapData, u64>>,
    store: Arc<Mutex<StdHashMap<u32, VecDeque<Captured>>>>,
}

impl CommandProbe {
    pub fn watch(&self, pidns: u32) -> Result<()> {
        self.store.lock().map_err(|_| anyhow!("poisoned"))?.entry(pidns).or_default();
        self.watched.lock().map_err(|_| anyhow!("poisoned"))?.insert(pidns, 1, 0).context("updating watched_pidns (is it full?)")
    }

    pub fn unwatch(&self, pidns: u32) -> Result<()> {
        let mut w = self.watched.lock().map_err(|_| anyhow!("poisoned"))?;
        if w.get(&pidns, 0).is_ok() {
            w.remove(&pidns).map_err(|e| anyhow!("removing pidns {pidns} from watched_pidns: {e}"))?;
        }
        drop(w);
        if let Ok(mut s) = self.store.lock() {
            s.remove(&pidns);
        }
        Ok(())
    }

    /// What was captured in `pidns`, oldest first.
    pub fn commands(&self, pidns: u32) -> Vec<Captured> {
        self.store.lock().map(|s| s.get(&pidns).map(|q| q.iter().cloned().collect()).unwrap_or_default()).unwrap_or_default()
    }

    /// Records the ring buffer had no room for.
    pub fn lost(&self) -> u64 {
        self.counters.lock().ok().and_then(|c| c.get(&0, 0).ok()).unwrap_or(0)
    }

    fn drain(ring: RingBuf<MapData>, store: Arc<Mutex<StdHashMap<u32, VecDeque<Captured>>>>) -> Result<()> {
        drain_with(ring, drill_ebpf::CmdRecord::from_bytes, move |batch| {
            let Ok(mut s) = store.lock() else { return };
            for r in batch {
                match r {
                    drill_ebpf::CmdRecord::Exec(e) => {
                        // Only namespaces being watched (a record may outlive its drill).
                        let Some(q) = s.get_mut(&e.pidns) else { continue };
                        if q.len() >= COMMANDS_PER_PIDNS {
                            q.pop_front();
                        }
                        q.push_back(Captured { exec: e, exit: None });
                    }
                    drill_ebpf::CmdRecord::Exit(x) => {
                        // Every exec of that pid still open ended with it (`env` or
                        // `setpriv` exec their program in the same process).
                        if let Some(q) = s.get_mut(&x.pidns) {
                            for c in q.iter_mut().rev().filter(|c| c.exec.pid == x.pid && c.exit.is_none()) {
                                c.exit = Some((x.ts_ns, x.exit_code));
                            }
                        }
                    }
                }
            }
        })
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
            drain(take(&mut ebpf, maps::DWELL_EVENTS)?, store.clone(), |b| DwellEvent::from_bytes(b).map(|e| (e.netns, e)))?;
            Some(Arc::new(TcpStateProbe {
                tracked: Mutex::new(take(&mut ebpf, maps::TRACKED_STATES)?),
                open: Mutex::new(take(&mut ebpf, maps::OPEN_DWELL)?),
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
