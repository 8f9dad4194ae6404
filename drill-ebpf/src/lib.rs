//! drill's kernel-side programs, embedded as compiled BPF objects, and the
//! `#[repr(C)]` mirrors of their map keys, values and events.
//!
//! The C sources live in `src/bpf/`; `build.rs` compiles them with clang. The layouts
//! below must match `src/bpf/*.h` byte for byte; the unit tests pin the sizes.

/// Object file of every probe (`src/bpf/probes.bpf.c`).
pub static PROBES_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/probes.bpf.o"));

/// Object file of the eBPF fault (`src/bpf/tcfault.bpf.c`): a tc classifier whose
/// rule lives in a map. Loaded once per fault, so each fault owns its maps.
pub static TCFAULT_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tcfault.bpf.o"));

/// Object file of `drill doctor`'s trivial programs (`src/bpf/doctor.bpf.c`): one of
/// each program type the engine loads.
pub static DOCTOR_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/doctor.bpf.o"));

/// Names inside [`DOCTOR_OBJ`].
pub mod doctor {
    pub const RAW_TP: &str = "doctor_raw_tp";
    pub const TP_BTF: &str = "doctor_tp_btf";
    pub const CLASSIFIER: &str = "doctor_cls";
}

/// Names inside [`TCFAULT_OBJ`].
pub mod tcfault {
    pub const PROGRAM: &str = "cls_main";
    pub const RULE: &str = "tc_rule";
    pub const COUNTERS: &str = "tc_counters";
}

/// `struct tc_match_rule` (tcfault.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcRule {
    pub enabled: u32,
    /// Drop probability in parts per million (>= 1_000_000: every match).
    pub drop_ppm: u32,
    /// IPv4 source, network byte order, compared under `saddr_mask` (0: any).
    pub saddr: u32,
    pub saddr_mask: u32,
    /// Destination port, host order (0: any).
    pub dport: u16,
    /// IPPROTO_* (0: any).
    pub proto: u8,
    pub pad: u8,
}

/// `struct tc_match_counters` (tcfault.h), one per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcCounters {
    pub seen: u64,
    pub matched: u64,
    pub dropped: u64,
}

/// Object file of a switch's path MTU (`src/bpf/pathmtu.bpf.c`): a tc classifier on
/// every port of a switch that drops frames larger than the fabric carries. Loaded once
/// per switch (its ports share the program and its maps).
pub static PATHMTU_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/pathmtu.bpf.o"));

/// Names inside [`PATHMTU_OBJ`].
pub mod pathmtu {
    pub const PROGRAM: &str = "fabric_mtu";
    pub const CONFIG: &str = "pathmtu_config";
    pub const COUNTERS: &str = "pathmtu_counters";
}

/// `struct pathmtu_config` (pathmtu.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathMtuConfig {
    /// The largest L3 packet the fabric carries; 0: no limit.
    pub mtu: u32,
    pub pad: u32,
}

/// `struct pathmtu_counters` (pathmtu.h), one per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathMtuCounters {
    /// Frames that entered the fabric.
    pub seen: u64,
    /// Frames (a GSO packet counts once) dropped as too big.
    pub dropped: u64,
    /// The wire segments those drops stood for.
    pub dropped_segs: u64,
    /// The largest packet seen (a GSO packet's segment), L3 bytes.
    pub largest: u64,
    /// The largest packet dropped, L3 bytes.
    pub largest_dropped: u64,
}

impl PathMtuCounters {
    /// Sums per-CPU values (largest: the maximum).
    pub fn merge(self, o: PathMtuCounters) -> PathMtuCounters {
        PathMtuCounters {
            seen: self.seen + o.seen,
            dropped: self.dropped + o.dropped,
            dropped_segs: self.dropped_segs + o.dropped_segs,
            largest: self.largest.max(o.largest),
            largest_dropped: self.largest_dropped.max(o.largest_dropped),
        }
    }
}

unsafe impl aya::Pod for PathMtuConfig {}
unsafe impl aya::Pod for PathMtuCounters {}
unsafe impl aya::Pod for TcRule {}
unsafe impl aya::Pod for TcCounters {}

/// A program of [`PROBES_OBJ`]: its name in the object, the raw tracepoint it
/// attaches to, and what it is for (as users see it).
pub struct ProbeProgram {
    pub program: &'static str,
    pub tracepoint: &'static str,
    pub describes: &'static str,
    /// A BTF tracepoint (`tp_btf`) rather than a raw one.
    pub btf: bool,
    /// Attached only while a drill needs it (loaded and test-attached once at daemon
    /// start): for a hot tracepoint whose program would cost every process on the
    /// machine something on every call while no drill reads it.
    pub on_demand: bool,
}

/// Every program of [`PROBES_OBJ`]; the first is the TCP state dwell probe.
pub const PROGRAMS: &[ProbeProgram] = &[
    ProbeProgram { program: "drill_tcpstate", tracepoint: "inet_sock_set_state", describes: "TCP state dwell (sock:inet_sock_set_state)", btf: false, on_demand: false },
    ProbeProgram { program: "drill_drop", tracepoint: "kfree_skb", describes: "packet drops by reason (skb:kfree_skb)", btf: false, on_demand: false },
    ProbeProgram { program: "drill_retransmit", tracepoint: "tcp_retransmit_skb", describes: "retransmissions (tcp:tcp_retransmit_skb)", btf: false, on_demand: false },
    ProbeProgram { program: "drill_rst_sent", tracepoint: "tcp_send_reset", describes: "resets sent (tcp:tcp_send_reset)", btf: false, on_demand: false },
    ProbeProgram { program: "drill_rst_received", tracepoint: "tcp_receive_reset", describes: "resets received (tcp:tcp_receive_reset)", btf: false, on_demand: false },
    ProbeProgram { program: "drill_rtt", tracepoint: "tcp_probe", describes: "smoothed RTT (tcp:tcp_probe)", btf: true, on_demand: false },
    ProbeProgram { program: "drill_exec", tracepoint: "sched_process_exec", describes: "processes started (sched:sched_process_exec)", btf: false, on_demand: false },
    ProbeProgram { program: "drill_oom", tracepoint: "mark_victim", describes: "OOM kills (oom:mark_victim)", btf: false, on_demand: false },
    ProbeProgram { program: "drill_enospc", tracepoint: "sys_exit", describes: "system calls failing with ENOSPC (raw_syscalls:sys_exit)", btf: false, on_demand: true },
    ProbeProgram { program: "drill_cmd", tracepoint: "sched_process_exec", describes: "commands run in hosts (sched:sched_process_exec)", btf: false, on_demand: false },
    ProbeProgram { program: "drill_cmd_exit", tracepoint: "sched_process_exit", describes: "how those commands ended (sched:sched_process_exit)", btf: false, on_demand: false },
];

/// What the program named `program` is for (its name in /v1/info and in errors).
/// Panics on a name that is not in [`PROGRAMS`]: that is a programming error.
pub fn describes(program: &str) -> &'static str {
    PROGRAMS.iter().find(|p| p.program == program).map(|p| p.describes).unwrap_or_else(|| panic!("no probe program named {program}"))
}

/// Map names inside [`PROBES_OBJ`].
pub mod maps {
    pub const WATCHED_NETNS: &str = "watched_netns";
    pub const TRACKED_STATES: &str = "tracked_states";
    pub const OPEN_DWELL: &str = "open_dwell";
    pub const DWELL_STATS: &str = "dwell_stats";
    pub const DWELL_EVENTS: &str = "dwell_events";
    pub const COUNTERS: &str = "tcpstate_counters";
    pub const EVENT_COUNTS: &str = "event_counts";
    pub const RTT_STATS: &str = "rtt_stats";
    pub const EXEC_EVENTS: &str = "exec_events";
    pub const WATCHED_PIDNS: &str = "watched_pidns";
    pub const CMD_EVENTS: &str = "cmd_events";
    pub const CMD_COUNTERS: &str = "cmd_counters";
}

/// `DRILL_CMD_*` of probes.h: the command capture's bounds and record types.
pub mod cmd {
    pub const ARGV: usize = 1024;
    pub const FILENAME: usize = 256;
    pub const CWD_DEPTH: usize = 16;
    pub const CWD_NAME: usize = 64;
    pub const EXEC: u32 = 1;
    pub const EXIT: u32 = 2;
}

/// A program started in a watched PID namespace (`struct drill_cmd_exec`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CmdExec {
    pub kind: u32,
    pub pidns: u32,
    pub ts_ns: u64,
    pub pid: u32,
    pub ppid: u32,
    pub host_pid: u32,
    pub uid: u32,
    pub argv_len: u32,
    pub argv_total: u32,
    pub cwd_depth: u32,
    pub cwd_cut: u32,
    pub comm: [u8; 16],
    pub filename: [u8; cmd::FILENAME],
    pub cwd: [[u8; cmd::CWD_NAME]; cmd::CWD_DEPTH],
    pub argv: [u8; cmd::ARGV],
}

/// A thread-group leader of a watched PID namespace exited (`struct drill_cmd_exit`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdExit {
    pub kind: u32,
    pub pidns: u32,
    pub ts_ns: u64,
    pub pid: u32,
    /// A wait status: exit code << 8 | terminating signal.
    pub exit_code: u32,
}

/// One record of `cmd_events`.
#[derive(Clone, Debug)]
pub enum CmdRecord {
    Exec(Box<CmdExec>),
    Exit(CmdExit),
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

impl CmdRecord {
    pub fn from_bytes(b: &[u8]) -> Option<CmdRecord> {
        let kind = u32::from_ne_bytes(b.get(..4)?.try_into().ok()?);
        match kind {
            cmd::EXEC if b.len() >= std::mem::size_of::<CmdExec>() => {
                // SAFETY: length checked; plain data; unaligned read.
                Some(CmdRecord::Exec(Box::new(unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<CmdExec>()) })))
            }
            cmd::EXIT if b.len() >= std::mem::size_of::<CmdExit>() => {
                // SAFETY: as above.
                Some(CmdRecord::Exit(unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<CmdExit>()) }))
            }
            _ => None,
        }
    }
}

impl CmdExec {
    pub fn comm(&self) -> String {
        cstr(&self.comm)
    }

    pub fn filename(&self) -> String {
        cstr(&self.filename)
    }

    /// argv split at its NULs, at most `max_entries` of them; `true` when cut (by the
    /// byte bound or the entry bound).
    pub fn argv(&self, max_entries: usize) -> (Vec<String>, bool) {
        let n = (self.argv_len as usize).min(cmd::ARGV);
        let mut bytes = &self.argv[..n];
        // The last NUL ends the last entry; a cut argv has none at its end.
        if bytes.last() == Some(&0) {
            bytes = &bytes[..bytes.len() - 1];
        }
        let mut cut = self.argv_total as usize > n;
        let mut v: Vec<String> = if bytes.is_empty() { Vec::new() } else { bytes.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect() };
        if v.len() > max_entries {
            v.truncate(max_entries);
            cut = true;
        }
        (v, cut)
    }

    /// The working directory as the host sees it (`/` for its root); `true` when cut.
    pub fn cwd(&self) -> (String, bool) {
        let depth = (self.cwd_depth as usize).min(cmd::CWD_DEPTH);
        let parts: Vec<String> = self.cwd[..depth].iter().rev().map(|c| cstr(c)).collect();
        let mut s = String::from("/");
        s.push_str(&parts.join("/"));
        if self.cwd_cut != 0 {
            s.insert(0, '…');
        }
        (s, self.cwd_cut != 0)
    }
}

/// Kinds of [`EventKey`] (`DRILL_EV_*` in probes.h).
pub mod kinds {
    pub const DROP: u16 = 1;
    pub const RETRANSMIT: u16 = 2;
    pub const RST_SENT: u16 = 3;
    pub const RST_RECEIVED: u16 = 4;
    pub const OOM_KILL: u16 = 5;
    pub const EXEC: u16 = 6;
    /// A system call that returned -ENOSPC.
    pub const ENOSPC: u16 = 7;
}

/// Key of `event_counts` (`struct drill_event_key`); the value is a u64 count.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKey {
    pub netns: u32,
    pub kind: u16,
    /// Local port (retransmissions, resets); 0 otherwise.
    pub port: u16,
    /// Drop reason (`enum skb_drop_reason`) for drops; 0 otherwise.
    pub reason: u32,
}

/// Key of `rtt_stats` (`struct drill_rtt_key`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RttKey {
    pub netns: u32,
    pub port: u16,
    pub _pad: u16,
}

/// Smoothed RTT samples (`struct drill_rtt`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rtt {
    pub samples: u64,
    pub srtt_sum_us: u64,
    pub srtt_max_us: u64,
}

/// A process started in a watched namespace (`struct drill_exec_event`).
/// PIDs are in the machine's (root) PID namespace.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecEvent {
    pub ts_ns: u64,
    pub netns: u32,
    pub pid: u32,
    pub ppid: u32,
    pub comm: [u8; 16],
    pub argv_len: u32,
    /// argv, NUL-separated, truncated to [`ARGV_MAX`] bytes.
    pub argv: [u8; ARGV_MAX],
}

/// `DRILL_ARGV_MAX` of probes.h.
pub const ARGV_MAX: usize = 128;

impl Default for ExecEvent {
    fn default() -> Self {
        ExecEvent { ts_ns: 0, netns: 0, pid: 0, ppid: 0, comm: [0; 16], argv_len: 0, argv: [0; ARGV_MAX] }
    }
}

impl ExecEvent {
    /// The command line, arguments joined by spaces.
    pub fn argv(&self) -> String {
        let n = (self.argv_len as usize).min(ARGV_MAX);
        self.argv[..n].split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" ")
    }

    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < std::mem::size_of::<Self>() {
            return None;
        }
        // SAFETY: length checked; plain data; unaligned read.
        Some(unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<Self>()) })
    }

    pub fn comm(&self) -> String {
        let end = self.comm.iter().position(|&c| c == 0).unwrap_or(self.comm.len());
        String::from_utf8_lossy(&self.comm[..end]).into_owned()
    }
}

/// Indices into the `tcpstate_counters` array.
pub mod counters {
    pub const SEEN: u32 = 0;
    pub const EVENTS_LOST: u32 = 1;
    pub const OPEN_FULL: u32 = 2;
    /// An exit whose `open_dwell` entry could not be deleted in the kernel (the daemon
    /// deletes it when it reads the exit's event).
    pub const DELETE_FAILED: u32 = 3;
}

/// A socket currently in a tracked state (`struct drill_dwell_open`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DwellOpen {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when the socket entered the state.
    pub enter_ns: u64,
    pub netns: u32,
    /// Local port, host byte order.
    pub port: u16,
    pub remote_port: u16,
    pub state: u32,
    /// The socket's inode (/proc/net/tcp's `inode` column); 0 when it had no file
    /// yet (a connection not accepted yet).
    pub ino: u32,
}

/// Key of the cumulative per-(netns, port, state) counters (`struct drill_dwell_key`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DwellKey {
    pub netns: u32,
    pub port: u16,
    pub state: u16,
}

/// Cumulative counters (`struct drill_dwell_stats`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DwellStats {
    pub entered: u64,
    pub exited: u64,
    pub dwell_total_ns: u64,
    pub dwell_max_ns: u64,
}

/// One socket leaving a tracked state (`struct drill_dwell_event`), from the ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DwellEvent {
    pub enter_ns: u64,
    pub exit_ns: u64,
    pub skaddr: u64,
    pub netns: u32,
    pub port: u16,
    pub remote_port: u16,
    pub state: u16,
    pub new_state: u16,
    pub _pad: u32,
}

impl DwellEvent {
    /// Parses a ring buffer record; `None` if it is too short.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < std::mem::size_of::<Self>() {
            return None;
        }
        // SAFETY: the length is checked, the type is plain old data and
        // read_unaligned copes with any alignment of the ring buffer slice.
        Some(unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<Self>()) })
    }
}

// SAFETY: all four are #[repr(C)] plain data with explicit padding fields.
unsafe impl aya::Pod for DwellOpen {}
unsafe impl aya::Pod for DwellKey {}
unsafe impl aya::Pod for DwellStats {}
unsafe impl aya::Pod for DwellEvent {}
unsafe impl aya::Pod for EventKey {}
unsafe impl aya::Pod for RttKey {}
unsafe impl aya::Pod for Rtt {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_c_headers() {
        assert_eq!(std::mem::size_of::<DwellOpen>(), 24);
        assert_eq!(std::mem::size_of::<TcRule>(), 20);
        assert_eq!(std::mem::size_of::<TcCounters>(), 24);
        assert_eq!(std::mem::size_of::<PathMtuConfig>(), 8);
        assert_eq!(std::mem::size_of::<PathMtuCounters>(), 40);
        assert_eq!(std::mem::size_of::<DwellKey>(), 8);
        assert_eq!(std::mem::size_of::<DwellStats>(), 32);
        assert_eq!(std::mem::size_of::<DwellEvent>(), 40);
        assert_eq!(std::mem::size_of::<EventKey>(), 12);
        assert_eq!(std::mem::size_of::<RttKey>(), 8);
        assert_eq!(std::mem::size_of::<Rtt>(), 24);
        assert_eq!(std::mem::size_of::<ExecEvent>(), 168);
        assert_eq!(std::mem::size_of::<CmdExec>(), 8 + 8 + 32 + 16 + 256 + 1024 + 1024);
        assert_eq!(std::mem::size_of::<CmdExit>(), 24);
    }

    #[test]
    fn every_program_is_described_once() {
        for p in PROGRAMS {
            assert_eq!(describes(p.program), p.describes);
            assert_eq!(PROGRAMS.iter().filter(|q| q.program == p.program).count(), 1);
        }
    }

    #[test]
    fn object_is_an_elf_for_bpf() {
        assert_eq!(&PROBES_OBJ[..4], b"\x7fELF");
        // e_machine at offset 18: EM_BPF = 247.
        assert_eq!(u16::from_le_bytes([PROBES_OBJ[18], PROBES_OBJ[19]]), 247);
    }

    #[test]
    fn event_parses_from_bytes() {
        let ev = DwellEvent { enter_ns: 1, exit_ns: 5, netns: 7, port: 8080, state: 8, ..Default::default() };
        // SAFETY: DwellEvent is plain data.
        let bytes = unsafe { std::slice::from_raw_parts((&ev as *const DwellEvent).cast::<u8>(), std::mem::size_of::<DwellEvent>()) };
        assert_eq!(DwellEvent::from_bytes(bytes), Some(ev));
        assert_eq!(DwellEvent::from_bytes(&bytes[..10]), None);
    }
}
