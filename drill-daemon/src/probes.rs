//! The eBPF probes, loaded once when the daemon starts and shared by every drill.
//! Programs filter by network namespace inode (`watched_netns`), so a drill's
//! verdict only ever sees its own hosts.

use std::collections::{HashMap as StdHashMap, VecDeque};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow};
use aya::maps::{Array, HashMap, MapData, RingBuf};
use aya::programs::RawTracePoint;
use drill_core::api::ProbeStatus;
use drill_core::scenario::TcpState;
use drill_core::verdict::{DwellObservation, DwellSample};
use drill_ebpf::{DwellEvent, DwellOpen, counters, maps};
use tokio::io::unix::AsyncFd;

/// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns()`.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: plain syscall writing into a local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Exit events kept per namespace (older ones are dropped first).
const EVENTS_PER_NETNS: usize = 200_000;

/// The TCP state dwell probe (`sock:inet_sock_set_state`).
pub struct TcpStateProbe {
    // Keeps the program attached for as long as the probe lives.
    _ebpf: aya::Ebpf,
    watched: Mutex<HashMap<MapData, u32, u32>>,
    tracked: Mutex<Array<MapData, u32>>,
    open: Mutex<HashMap<MapData, u64, DwellOpen>>,
    counters: Mutex<Array<MapData, u64>>,
    events: Arc<Mutex<StdHashMap<u32, VecDeque<DwellEvent>>>>,
}

fn take<T>(ebpf: &mut aya::Ebpf, name: &str) -> Result<T>
where
    T: TryFrom<aya::maps::Map>,
    <T as TryFrom<aya::maps::Map>>::Error: std::error::Error + Send + Sync + 'static,
{
    let map = ebpf.take_map(name).ok_or_else(|| anyhow!("map {name} missing from the object"))?;
    T::try_from(map).with_context(|| format!("map {name} has an unexpected type"))
}

impl TcpStateProbe {
    /// Loads and attaches the probe; must be called inside a tokio runtime.
    pub fn load() -> Result<Arc<TcpStateProbe>> {
        let mut ebpf = aya::Ebpf::load(drill_ebpf::TCPSTATE_OBJ).context("loading the tcpstate object (BTF/CO-RE relocation or map creation failed)")?;
        let prog: &mut RawTracePoint = ebpf
            .program_mut(drill_ebpf::TCPSTATE_PROG)
            .ok_or_else(|| anyhow!("program {} missing from the object", drill_ebpf::TCPSTATE_PROG))?
            .try_into()
            .context("program type")?;
        prog.load().context("the kernel's verifier refused the tcpstate program")?;
        prog.attach(drill_ebpf::TCPSTATE_TRACEPOINT)
            .with_context(|| format!("attaching to raw tracepoint {}", drill_ebpf::TCPSTATE_TRACEPOINT))?;
        let watched = take(&mut ebpf, maps::WATCHED_NETNS)?;
        let tracked = take(&mut ebpf, maps::TRACKED_STATES)?;
        let open = take(&mut ebpf, maps::OPEN_DWELL)?;
        let counters = take(&mut ebpf, maps::COUNTERS)?;
        let ring: RingBuf<MapData> = take(&mut ebpf, maps::DWELL_EVENTS)?;
        let events: Arc<Mutex<StdHashMap<u32, VecDeque<DwellEvent>>>> = Arc::default();
        let probe = Arc::new(TcpStateProbe {
            _ebpf: ebpf,
            watched: Mutex::new(watched),
            tracked: Mutex::new(tracked),
            open: Mutex::new(open),
            counters: Mutex::new(counters),
            events: events.clone(),
        });
        // SAFETY: the RingBuf owns its map fd and keeps it open, unchanged, for as long as
        // the AsyncFd (which owns the RingBuf) lives.
        let mut afd = unsafe { AsyncFd::register(ring) }.map_err(|e| anyhow!("registering the ring buffer with tokio: {e}"))?;
        tokio::spawn(async move {
            loop {
                let Ok(mut guard) = afd.readable_mut().await else { break };
                let rb = guard.get_inner_mut();
                let mut batch = Vec::new();
                while let Some(item) = rb.next() {
                    if let Some(ev) = DwellEvent::from_bytes(&item) {
                        batch.push(ev);
                    }
                }
                guard.clear_ready();
                if let Ok(mut store) = events.lock() {
                    for ev in batch {
                        let q = store.entry(ev.netns).or_default();
                        if q.len() >= EVENTS_PER_NETNS {
                            q.pop_front();
                        }
                        q.push_back(ev);
                    }
                }
            }
        });
        Ok(probe)
    }

    /// Starts watching a namespace, tracking `states` (ORed into the global mask).
    pub fn watch(&self, netns: u32, states: &[TcpState]) -> Result<()> {
        let bits = states.iter().fold(0u32, |m, s| m | (1 << s.number()));
        {
            let mut t = self.tracked.lock().map_err(|_| anyhow!("poisoned"))?;
            let cur = t.get(&0, 0).unwrap_or(0);
            t.set(0, cur | bits, 0).context("updating tracked_states")?;
        }
        self.events.lock().map_err(|_| anyhow!("poisoned"))?.entry(netns).or_default();
        self.watched.lock().map_err(|_| anyhow!("poisoned"))?.insert(netns, 1, 0).context("updating watched_netns (is it full?)")?;
        Ok(())
    }

    /// Stops watching a namespace and forgets everything recorded for it.
    pub fn unwatch(&self, netns: u32) -> Result<()> {
        let mut w = self.watched.lock().map_err(|_| anyhow!("poisoned"))?;
        if w.get(&netns, 0).is_ok() {
            w.remove(&netns).map_err(|e| anyhow!("removing netns {netns} from watched_netns: {e}"))?;
        }
        drop(w);
        let mut open = self.open.lock().map_err(|_| anyhow!("poisoned"))?;
        let stale: Vec<u64> = open.iter().filter_map(|r| r.ok()).filter(|(_, v)| v.netns == netns).map(|(k, _)| k).collect();
        for k in stale {
            let _ = open.remove(&k);
        }
        self.events.lock().map_err(|_| anyhow!("poisoned"))?.remove(&netns);
        Ok(())
    }

    fn counter(&self, idx: u32) -> u64 {
        self.counters.lock().ok().and_then(|c| c.get(&idx, 0).ok()).unwrap_or(0)
    }

    pub fn events_lost(&self) -> u64 {
        self.counter(counters::EVENTS_LOST)
    }

    /// What the probe saw for netns/port/state between `start_ns` and `end_ns`
    /// (CLOCK_MONOTONIC): exits inside the window and sockets still in the state.
    /// `lost_before` is [`TcpStateProbe::events_lost`] read at the window's start.
    pub fn observe(&self, netns: u32, port: u16, state: TcpState, start_ns: u64, end_ns: u64, lost_before: u64) -> DwellObservation {
        let st = state.number();
        let mut samples: Vec<DwellSample> = Vec::new();
        if let Ok(store) = self.events.lock() {
            if let Some(q) = store.get(&netns) {
                samples.extend(
                    q.iter()
                        .filter(|e| e.port == port && e.state == st && e.exit_ns >= start_ns && e.exit_ns <= end_ns)
                        .map(|e| DwellSample { enter_ns: e.enter_ns, exit_ns: Some(e.exit_ns), remote_port: e.remote_port }),
                );
            }
        }
        if let Ok(open) = self.open.lock() {
            samples.extend(
                open.iter()
                    .filter_map(|r| r.ok())
                    .filter(|(_, v)| v.netns == netns && v.port == port && v.state == u32::from(st) && v.enter_ns <= end_ns)
                    .map(|(_, v)| DwellSample { enter_ns: v.enter_ns, exit_ns: None, remote_port: v.remote_port }),
            );
        }
        DwellObservation { window_start_ns: start_ns, window_end_ns: end_ns, samples, events_lost: self.events_lost().saturating_sub(lost_before) }
    }
}

/// Every probe of the daemon, and why any could not load.
pub struct Probes {
    pub tcpstate: Option<Arc<TcpStateProbe>>,
    pub status: Vec<ProbeStatus>,
}

impl Probes {
    pub fn load() -> Probes {
        // Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK, libc::RLIM_INFINITY, libc::RLIM_INFINITY);
        let (tcpstate, err) = match TcpStateProbe::load() {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(format!("{e:#}"))),
        };
        if let Some(e) = &err {
            tracing::error!(probe = "tcpstate", error = %e, "probe could not load; drills that need it will refuse to start");
        }
        Probes { tcpstate, status: vec![ProbeStatus { name: "tcpstate (sock:inet_sock_set_state)".into(), loaded: err.is_none(), error: err }] }
    }

    pub fn tcpstate(&self) -> Result<&Arc<TcpStateProbe>> {
        self.tcpstate.as_ref().ok_or_else(|| {
            let why = self.status.first().and_then(|s| s.error.clone()).unwrap_or_default();
            anyhow!("the tcpstate probe (sock:inet_sock_set_state) is not loaded: {why}")
        })
    }
}
