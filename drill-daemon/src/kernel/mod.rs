//! The kernel seam: everything a drill does to the machine goes through [`Kernel`].
//!
//! - `linux/` is the real implementation (netns, topology, nft, tc, eBPF, the delay
//!   wire, host processes, probes), used by the daemon.
//! - `fake.rs` is a recording fake: it records every call in order, can fail the Nth
//!   call or the first call of a kind, and answers measurements from a small model of
//!   the faults it was asked to set. The drill lifecycle's unit tests run on it
//!   without root.
//!
//! Namespaces are named by their netns name (unique per drill); a wire by the name
//! of its hidden namespace; an eBPF fault by its host's netns and interface. The
//! operations take the host's name too, for errors that name it.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drill_core::plan::Plan;
use drill_core::scenario::{Cidr, TcpState};
use drill_ebpf::{PathMtuCounters, TcCounters, TcRule};

use crate::error::Result;
use crate::host::HostSpec;
use crate::probes::Probes;

pub mod fake;
pub mod linux;

pub use crate::icmp::{Burst, EchoStats};
pub use drill_core::plan::{Backends, DelayBackend};
pub use linux::conntrack::CtReading;
pub use linux::faults::Connect;
pub use linux::nft::HostNft;
pub use linux::topology::Splice;

/// A namespace's traffic counters (see [`Kernel::snmp`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snmp {
    pub tcp_out_segs: u64,
    pub ip_packets: u64,
}

/// How a run of connections against a connection limit ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnRun {
    /// Attempt `attempt` (1-based) timed out while the earlier ones were held open.
    TimedOut { attempt: u32 },
    /// Attempt `attempt` failed otherwise.
    Failed { attempt: u32, error: String },
    /// Every attempt connected.
    AllConnected,
}

/// What a drill needs from the kernel. Each method is one step the lifecycle can
/// record, fail and undo; `Send` futures so the daemon can run them on any worker.
pub trait Kernel: Send + Sync + 'static {
    // Probes (shared by every drill; loaded once at daemon start).
    /// Refuses when the probe `probe` (by description) is not loaded, saying why.
    fn require_probe(&self, probe: &str) -> Result<()>;
    /// Attaches the on-demand probe program `program` (by name) for drill `owner`.
    fn hold_probe(&self, owner: &str, program: &str) -> Result<()>;
    /// Releases `owner`'s hold on `program` (the last release detaches it).
    fn release_probe(&self, owner: &str, program: &str) -> Result<()>;
    /// Whether this kernel knows the drop reason `reason` (`enum skb_drop_reason`).
    fn drop_reason_known(&self, reason: &str) -> Result<bool>;
    /// Starts recording namespace `ino`, timing `states`.
    fn watch(&self, ino: u32, states: &[TcpState]) -> Result<()>;
    /// Stops recording namespace `ino`.
    fn unwatch(&self, ino: u32) -> Result<()>;
    /// The loaded probes, for the verifier and the counters.
    fn probes(&self) -> Result<&Arc<Probes>>;

    // Namespaces and topology.
    /// Creates the named network namespace; returns its inode.
    fn create_netns(&self, name: &str) -> impl Future<Output = Result<u32>> + Send;
    /// Deletes it (missing is fine).
    fn delete_netns(&self, name: &str) -> Result<()>;
    /// What this kernel offers a plan (how a delay is made), probed once.
    fn backends(&self) -> Backends;
    /// Creates every link, switch, address, route, sysctl and NAT rule of the plan,
    /// with delay wires spliced in. Every namespace must exist.
    fn apply_topology(&self, plan: &Plan, splices: &[Splice]) -> impl Future<Output = Result<()>> + Send;
    /// Starts the delay wire in namespace `wire` (transparent until set).
    fn open_wire(&self, wire: &str, host: &str, iface: &str) -> impl Future<Output = Result<()>> + Send;
    /// Sets the delay, jitter and loss of an open wire.
    fn set_wire(&self, wire: &str, delay: Duration, jitter: Duration, loss: f64) -> Result<()>;
    /// Stops the wire's threads (before its namespace goes).
    fn close_wire(&self, wire: &str) -> Result<()>;

    /// Makes switch `switch`'s fabric (namespace `netns`) carry packets of at most `mtu`
    /// bytes: the `fabric_mtu` classifier on the ingress of each of `ports`.
    fn set_path_mtu(&self, netns: &str, switch: &str, ports: &[String], mtu: u32) -> impl Future<Output = Result<()>> + Send;
    /// What a switch's fabric saw and dropped so far (its classifier's counters).
    fn fabric_counters(&self, netns: &str) -> Result<PathMtuCounters>;
    /// Lets go of a switch's classifier (deleting its namespace removes the filters).
    fn forget_path_mtu(&self, netns: &str) -> Result<()>;

    // Hosts.
    /// Starts a host's init in `netns`; returns its PID.
    fn spawn_host(&self, spec: HostSpec, netns: &str, console: &Path) -> Result<i32>;
    /// Waits until that init says it is ready.
    fn wait_host_ready(&self, host: &str, pid: i32, console: &Path, timeout: Duration) -> impl Future<Output = Result<()>> + Send;
    /// Whether a TCP socket listens on `port` in `netns`.
    fn listening(&self, netns: &str, port: u16) -> impl Future<Output = Result<bool>> + Send;
    /// Kills a host's init (its whole PID namespace) and reaps it.
    fn kill_host(&self, host: &str, pid: i32) -> Result<()>;
    /// The inode of the PID namespace of host init `pid`.
    fn host_pidns(&self, host: &str, pid: i32) -> Result<u32>;

    // The timeline's command capture.
    /// Starts capturing the execs and exits of PID namespace `ino` (a host's).
    fn watch_pids(&self, ino: u32) -> Result<()>;
    /// Stops it and forgets what was captured there.
    fn unwatch_pids(&self, ino: u32) -> Result<()>;
    /// What was captured in PID namespace `ino`, oldest first.
    fn commands(&self, ino: u32) -> Vec<crate::probes::Captured>;

    // Faults (all idempotent).
    fn set_sysctl(&self, netns: &str, host: &str, key: &str, value: &str) -> impl Future<Output = Result<()>> + Send;
    fn set_mtu(&self, netns: &str, host: &str, iface: &str, mtu: u32) -> impl Future<Output = Result<()>> + Send;
    fn remove_route(&self, netns: &str, host: &str, to: Option<Cidr>) -> impl Future<Output = Result<()>> + Send;
    /// tbf on the whole interface, or htb for one port's traffic.
    fn set_rate(&self, netns: &str, host: &str, iface: &str, rate_bps: u64, port: Option<u16>) -> impl Future<Output = Result<()>> + Send;
    fn set_netem(&self, netns: &str, host: &str, iface: &str, delay_ms: f64, jitter_ms: f64, loss: f64) -> impl Future<Output = Result<()>> + Send;
    /// Makes the host's own nft table hold exactly `nft`.
    fn apply_nft(&self, netns: &str, plan: &Plan, host: &str, nft: &HostNft) -> impl Future<Output = Result<()>> + Send;
    fn revert_nft(&self, netns: &str, host: &str) -> impl Future<Output = Result<()>> + Send;
    /// Builds or resizes the host's conntrack table stand-in (linux/conntrack.rs).
    fn ct_table_apply(&self, netns: &str, host: &str, max: u32) -> impl Future<Output = Result<()>> + Send;
    /// The stand-in's size and drops, the host's entry count and UDP timeout.
    fn ct_table_read(&self, netns: &str) -> impl Future<Output = Result<CtReading>> + Send;
    /// One UDP datagram from each of `n` fresh sockets of `netns` to `to`; how many went.
    fn udp_fill(&self, netns: &str, to: SocketAddr, n: u32) -> impl Future<Output = Result<u32>> + Send;
    /// Appends a record (syslog priority `prio`) to the host's kernel log, its /dev/kmsg.
    fn host_log(&self, drill_id: &str, host: &str, prio: u8, msg: &str);
    /// Attaches the eBPF fault classifier to `iface` of `netns`.
    fn attach_tc_fault(&self, netns: &str, host: &str, iface: &str, egress: bool, rule: TcRule) -> impl Future<Output = Result<()>> + Send;
    /// Rewrites an attached eBPF fault's drop probability (0 pauses it); its counters.
    fn retune_tc_fault(&self, netns: &str, iface: &str, loss: f64) -> Result<TcCounters>;
    /// Counters of an attached eBPF fault.
    fn tc_fault_counters(&self, netns: &str, iface: &str) -> Result<TcCounters>;
    /// Lets go of an eBPF fault (deleting its namespace removes the classifier).
    fn forget_tc_fault(&self, netns: &str, iface: &str) -> Result<()>;

    // After-apply measurement (from inside a host's namespace).
    /// A burst of echo requests from `netns` to `to` ([`crate::icmp`]).
    fn echo_burst(&self, netns: &str, to: std::net::Ipv4Addr, burst: Burst) -> impl Future<Output = Result<EchoStats>> + Send;
    /// Packets the kernel dropped in namespace `ino` so far for one of `reasons` (kernel
    /// names without `SKB_DROP_REASON_`, e.g. NETFILTER_DROP), from the drop probe;
    /// `None` without it.
    fn drop_count(&self, ino: u32, reasons: &[&str]) -> Option<u64>;
    /// The config a running service of the host (init `pid`) recorded it started with;
    /// `None` while it has not recorded one yet.
    fn running_config(&self, host: &str, pid: i32, service: &str) -> Result<Option<String>>;
    /// A file inside the running host (init `pid`) as the host sees it (e.g.
    /// /etc/resolv.conf); `None` when it does not exist.
    fn host_file(&self, host: &str, pid: i32, path: &str) -> Result<Option<String>>;
    /// Once a process of the host holds `path` open (waiting up to `wait`): appends to
    /// it until the host's disk is full, unlinks it, and measures the result.
    fn fill_deleted(&self, host: &str, pid: i32, path: &str, wait: Duration) -> impl Future<Output = Result<linux::disk::DiskFill>> + Send;
    /// One TCP connection attempt and how long it took to end.
    fn try_connect(&self, netns: &str, to: SocketAddr, timeout: Duration) -> impl Future<Output = Result<(Connect, Duration)>> + Send;
    /// Up to `attempts` connections, each held open, until one does not connect.
    fn connect_until_timeout(&self, netns: &str, to: SocketAddr, attempts: u32, timeout: Duration) -> impl Future<Output = Result<ConnRun>> + Send;
    /// Bits per second of a `bytes` transfer from `from` to a sink opened in `to` at
    /// `addr`, listening on `port` (0: any), so a per-port class sees it by destination.
    fn transfer_rate(&self, from: &str, to: &str, addr: IpAddr, port: u16, bytes: u64) -> impl Future<Output = Result<f64>> + Send;

    // After start (the verifier's clients and the counters).
    /// A non-blocking TCP socket made inside `netns`.
    fn tcp_socket(&self, netns: &str, v6: bool) -> impl Future<Output = Result<tokio::net::TcpSocket>> + Send;
    /// A non-blocking IPv4 UDP socket made inside `netns` (a resolver's queries).
    fn udp_socket(&self, netns: &str) -> impl Future<Output = Result<tokio::net::UdpSocket>> + Send;
    /// The namespace's own counters (/proc/net/snmp): TCP segments sent (`Tcp: OutSegs`)
    /// and IP packets received plus sent (`Ip: InReceives + OutRequests`).
    fn snmp(&self, netns: &str) -> impl Future<Output = Result<Snmp>> + Send;
    /// Every MIB counter of the namespace (/proc/net/snmp, netstat and snmp6) by
    /// `GROUP:FIELD` (snmp6's `Ip6InReceives` as `Ip6:InReceives`).
    fn mib(&self, netns: &str) -> impl Future<Output = Result<BTreeMap<String, u64>>> + Send;
    /// The namespace's TCP sockets as its socket table shows them (/proc/net/tcp and
    /// tcp6): (inode, state number) of each socket that has a file.
    fn tcp_sockets(&self, netns: &str) -> impl Future<Output = Result<Vec<(u32, u16)>>> + Send;
}

/// Parses /proc/net/tcp or tcp6 into (inode, state) of each socket with an inode
/// (time-wait entries and connections not accepted yet have inode 0 and are left out).
pub fn parse_proc_net_tcp(text: &str) -> Vec<(u32, u16)> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
            let cols: Vec<&str> = l.split_whitespace().collect();
            let state = u16::from_str_radix(cols.get(3)?, 16).ok()?;
            let ino: u32 = cols.get(9)?.parse().ok()?;
            (ino != 0).then_some((ino, state))
        })
        .collect()
}

/// Parses the two-line-per-group tables of /proc/net/snmp and netstat
/// (`Tcp: RtoAlgorithm ...` then `Tcp: 1 ...`) into `GROUP:FIELD` counters.
pub fn parse_mib_tables(text: &str, out: &mut BTreeMap<String, u64>) {
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let (Some((g, ns)), Some((g2, vs))) = (names.split_once(':'), values.split_once(':')) else { return };
        if g != g2 {
            return;
        }
        for (n, v) in ns.split_whitespace().zip(vs.split_whitespace()) {
            if let Ok(v) = v.parse::<i64>() {
                out.insert(format!("{g}:{n}"), v.max(0).unsigned_abs());
            }
        }
    }
}

/// Parses /proc/net/snmp6 (`Ip6InReceives   12`) into `Ip6:InReceives` counters.
pub fn parse_snmp6(text: &str, out: &mut BTreeMap<String, u64>) {
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let (Some(n), Some(v)) = (it.next(), it.next()) else { continue };
        let Ok(v) = v.parse::<u64>() else { continue };
        for g in ["UdpLite6", "Icmp6", "Udp6", "Ip6"] {
            if let Some(f) = n.strip_prefix(g) {
                out.insert(format!("{g}:{f}"), v);
                break;
            }
        }
    }
}

#[cfg(test)]
mod mib_tests {
    #[test]
    fn the_socket_table_gives_inode_and_state() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41234 1 0000000000000000 100 0 0 10 0
   1: 01004D0A:9C40 02004D0A:1F90 02 00000000:00000000 01:00000322 00000002     0        0 41300 1 0000000000000000 200 0 0 1 7
   2: 01004D0A:9C42 02004D0A:1F90 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
";
        assert_eq!(super::parse_proc_net_tcp(t), vec![(41234, 0x0A), (41300, 0x02)]);
        assert!(super::parse_proc_net_tcp("header only\n").is_empty());
    }

    use std::collections::BTreeMap;

    #[test]
    fn parses_the_three_files() {
        let mut m = BTreeMap::new();
        super::parse_mib_tables("Tcp: RtoAlgorithm MaxConn OutSegs\nTcp: 1 -1 42\nUdp: InDatagrams OutDatagrams\nUdp: 3 7\n", &mut m);
        super::parse_mib_tables("TcpExt: SyncookiesSent ListenOverflows\nTcpExt: 0 5\n", &mut m);
        super::parse_snmp6("Ip6InReceives                   \t12\nIcmp6InMsgs 2\nUdp6OutDatagrams 9\nUdpLite6InErrors 1\n", &mut m);
        assert_eq!(m["Tcp:OutSegs"], 42);
        assert_eq!(m["Tcp:MaxConn"], 0);
        assert_eq!(m["Udp:OutDatagrams"], 7);
        assert_eq!(m["TcpExt:ListenOverflows"], 5);
        assert_eq!(m["Ip6:InReceives"], 12);
        assert_eq!(m["Icmp6:InMsgs"], 2);
        assert_eq!(m["Udp6:OutDatagrams"], 9);
        assert_eq!(m["UdpLite6:InErrors"], 1);
    }
}
