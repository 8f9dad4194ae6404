//! The network probes: TCP state dwell times, and the counters of drops, retransmissions,
//! resets, OOM kills and execs with RTT samples; drop reasons named from the kernel's BTF.

use super::*;

/// TCP state dwell times (`sock:inet_sock_set_state`).
pub struct TcpStateProbe {
    pub(super) tracked: Mutex<Array<MapData, u32>>,
    pub(super) open: Arc<Mutex<HashMap<MapData, u64, DwellOpen>>>,
    pub(super) counters: Mutex<Array<MapData, u64>>,
    pub(super) events: Store<DwellEvent>,
}

impl TcpStateProbe {
    pub(super) fn track(&self, states: &[TcpState]) -> Result<()> {
        let bits = states.iter().fold(0u32, |m, s| m | (1 << s.number()));
        let mut t = self.tracked.lock().map_err(|_| anyhow!("poisoned"))?;
        let cur = t.get(&0, 0).unwrap_or(0);
        t.set(0, cur | bits, 0).context("updating tracked_states")
    }

    pub(super) fn forget(&self, netns: u32) {
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

    /// Events the probe could not record: exits whose event did not fit the ring buffer,
    /// and entries into a state it could not remember (open_dwell full or busy).
    pub fn events_lost(&self) -> u64 {
        self.counters.lock().ok().map_or(0, |c| [counters::EVENTS_LOST, counters::OPEN_FULL].iter().filter_map(|i| c.get(i, 0).ok()).sum())
    }

    /// What the probe saw for netns/port/state between `start_ns` and `end_ns`
    /// (CLOCK_MONOTONIC): exits inside the window and sockets still in the state.
    /// `lost_before` is [`TcpStateProbe::events_lost`] read at the window's start.
    /// With `peer`, `port` is matched against the remote port instead of the local one.
    // The check's own fields, passed as they are (one caller, verify.rs).
    #[allow(clippy::too_many_arguments)]
    /// `live`: inodes of the namespace's sockets in `state` per its socket table, read
    /// at the window's end; a record of a socket with a file that the table does not
    /// show in the state is a record the probe failed to clear (its exit was not seen),
    /// not a stuck socket. Without `live` (table unreadable) every record counts.
    pub fn observe(&self, netns: u32, port: u16, peer: bool, state: TcpState, start_ns: u64, end_ns: u64, lost_before: u64, live: Option<&std::collections::HashSet<u32>>) -> DwellObservation {
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
                open.iter().filter_map(|r| r.ok()).filter(|(_, v)| v.netns == netns && ports(v.port, v.remote_port) && v.state == u32::from(st) && v.enter_ns <= end_ns && (v.ino == 0 || live.is_none_or(|l| l.contains(&v.ino)))).map(|(_, v)| DwellSample {
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
    pub(super) counts: Mutex<HashMap<MapData, EventKey, u64>>,
    pub(super) rtt: Mutex<PerCpuHashMap<MapData, RttKey, Rtt>>,
    pub(super) execs: Store<ExecEvent>,
    /// `enum skb_drop_reason` of the running kernel, from its BTF.
    /// Filled by a thread of its own after the daemon starts (the BTF parse takes a few
    /// hundred milliseconds); readers wait for it.
    pub(super) drop_reasons: Arc<std::sync::OnceLock<BTreeMap<u32, String>>>,
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

    pub(super) fn forget(&self, netns: u32) {
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
pub(super) fn drop_reasons() -> BTreeMap<u32, String> {
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

/// Drains the dwell exit events into `store`. An exit whose `open_dwell` entry the
/// kernel side could not delete (probes.bpf.c counts it, DELETE_FAILED) would leave a
/// record of the socket as still in the state; it is removed here, before the event
/// becomes visible in the store, so no window sees both. (Records of exits the probe
/// never saw at all are filtered against the socket table instead, see `observe`.)
pub(super) fn drain_dwell(ring: aya::maps::RingBuf<MapData>, store: Store<DwellEvent>, open: Arc<Mutex<HashMap<MapData, u64, DwellOpen>>>) -> anyhow::Result<()> {
    super::drain_with(ring, DwellEvent::from_bytes, move |batch| {
        if let Ok(mut open) = open.lock() {
            for e in &batch {
                // Same socket and same stay: a later stay of a reused socket address has
                // a later enter time and is left alone.
                if let Ok(v) = open.get(&e.skaddr, 0)
                    && v.enter_ns == e.enter_ns
                    && v.state == u32::from(e.state)
                {
                    let _ = open.remove(&e.skaddr);
                }
            }
        }
        super::keep(&store, batch.into_iter().map(|e| (e.netns, e)));
    })
}
