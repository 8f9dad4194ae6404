//! drill's kernel-side programs, embedded as compiled BPF objects, and the
//! `#[repr(C)]` mirrors of their map keys, values and events.
//!
//! The C sources live in `src/bpf/`; `build.rs` compiles them with clang. The layouts
//! below must match `src/bpf/*.h` byte for byte; the unit tests pin the sizes.

/// Object file of the TCP state dwell probe (`src/bpf/tcpstate.bpf.c`).
pub static TCPSTATE_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tcpstate.bpf.o"));

/// Name of the program inside [`TCPSTATE_OBJ`].
pub const TCPSTATE_PROG: &str = "drill_tcpstate";
/// Raw tracepoint it attaches to.
pub const TCPSTATE_TRACEPOINT: &str = "inet_sock_set_state";

/// Map names inside [`TCPSTATE_OBJ`].
pub mod maps {
    pub const WATCHED_NETNS: &str = "watched_netns";
    pub const TRACKED_STATES: &str = "tracked_states";
    pub const OPEN_DWELL: &str = "open_dwell";
    pub const DWELL_STATS: &str = "dwell_stats";
    pub const DWELL_EVENTS: &str = "dwell_events";
    pub const COUNTERS: &str = "tcpstate_counters";
}

/// Indices into the `tcpstate_counters` array.
pub mod counters {
    pub const SEEN: u32 = 0;
    pub const EVENTS_LOST: u32 = 1;
    pub const OPEN_FULL: u32 = 2;
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
    pub _pad: u32,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_c_headers() {
        assert_eq!(std::mem::size_of::<DwellOpen>(), 24);
        assert_eq!(std::mem::size_of::<DwellKey>(), 8);
        assert_eq!(std::mem::size_of::<DwellStats>(), 32);
        assert_eq!(std::mem::size_of::<DwellEvent>(), 40);
    }

    #[test]
    fn object_is_an_elf_for_bpf() {
        assert_eq!(&TCPSTATE_OBJ[..4], b"\x7fELF");
        // e_machine at offset 18: EM_BPF = 247.
        assert_eq!(u16::from_le_bytes([TCPSTATE_OBJ[18], TCPSTATE_OBJ[19]]), 247);
    }

    #[test]
    fn event_parses_from_bytes() {
        let ev = DwellEvent { enter_ns: 1, exit_ns: 5, netns: 7, port: 8080, state: 8, ..Default::default() };
        // SAFETY: DwellEvent is plain data.
        let bytes = unsafe {
            std::slice::from_raw_parts((&ev as *const DwellEvent).cast::<u8>(), std::mem::size_of::<DwellEvent>())
        };
        assert_eq!(DwellEvent::from_bytes(bytes), Some(ev));
        assert_eq!(DwellEvent::from_bytes(&bytes[..10]), None);
    }
}
