//! The types of a plan's fault steps: the mechanism each fault uses (every name
//! resolved) and the measurement that proves it took, the constants both the plan and
//! the daemon name, and how a step prints in `drill start --dry-run`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::scenario::{Cidr, NftRule};

/// The table and chain of the conntrack table's stand-in in its host.
pub const CT_TABLE: &str = "conntrack";
pub const CT_CHAIN: &str = "table_size";
/// Echo requests per loss measurement (sent as one burst).
pub const LOSS_ECHOES: u32 = 500;
/// Echo requests per delay measurement, before and after the delay is set.
pub const DELAY_ECHOES: u32 = 20;
/// Most connections a connection-limit measurement opens.
pub const MAX_CONN_LIMIT_MEASURED: u32 = 200;
/// Payload of the echo that probes a path MTU black hole (a 1500-byte IP datagram).
pub const PMTU_PROBE_PAYLOAD: usize = 1472;
/// Longest a measurement's TCP connection waits for an answer on an undelayed path.
pub const CONNECT_TIMEOUT_MS: u64 = 150;

/// How the daemon makes delay: chosen once per daemon (probed at start) and put in
/// the plan so a dry run shows what will really be created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DelayBackend {
    /// tc netem on the delayed interface's peer side of a hidden namespace.
    Netem,
    /// The userspace delay wire spliced into the link (kernels without netem).
    #[default]
    Wire,
}

impl DelayBackend {
    /// The environment variable that forces a backend (`wire` or `netem`), for tests of
    /// the wire on a netem kernel; the daemon and the CLI's dry run both honour it.
    pub const FORCE_ENV: &'static str = "DRILL_DELAY_BACKEND";

    /// A backend by its name in [`DelayBackend::FORCE_ENV`].
    pub fn from_name(name: &str) -> Option<DelayBackend> {
        match name {
            "wire" => Some(DelayBackend::Wire),
            "netem" => Some(DelayBackend::Netem),
            _ => None,
        }
    }
}

/// What the daemon knows of the kernel when it compiles a plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backends {
    pub delay: DelayBackend,
}

/// A fault the engine cannot measure with these parameters (the start is refused).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("fault #{index} ({fault}) cannot be measured after apply: {why}; {help}")]
pub struct PlanError {
    pub index: usize,
    pub fault: String,
    pub why: String,
    pub help: String,
}

/// One fault as the daemon will apply and measure it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultStep {
    /// Position among the scenario's faults (0-based).
    pub index: usize,
    pub host: String,
    /// One line for people.
    pub summary: String,
    pub mechanism: Mechanism,
    pub measure: Measure,
}

/// How a fault is made, every name resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mechanism", rename_all = "kebab-case")]
pub enum Mechanism {
    /// The service starts with this config (written into the host's /etc before it starts).
    ServiceConfig {
        service: String,
        config_path: String,
        set: toml::Table,
    },
    /// A rule in the host's nftables table (one transaction per host rebuilds it).
    Nft {
        table: String,
        chain: String,
        rule: NftRule,
        resolved: String,
    },
    /// A port forward in the host's prerouting nat chain.
    Dnat {
        table: String,
        chain: String,
        proto: String,
        dport: u16,
        to: SocketAddr,
    },
    Sysctl {
        key: String,
        value: String,
    },
    /// The host's /etc/resolv.conf, written with this text before the host starts.
    ResolvConf {
        text: String,
    },
    /// Once `service` holds `path` open: appended to until the host's disk is full, then
    /// unlinked (the holder keeps the blocks).
    DeletedOpenFile {
        service: String,
        path: String,
    },
    Mtu {
        interface: String,
        mtu: u32,
    },
    RouteRemove {
        to: Option<Cidr>,
    },
    /// tc tbf as the interface's root qdisc.
    Tbf {
        interface: String,
        rate_bps: u64,
    },
    /// tc htb: a class at `rate_bps` for traffic from or to `port`, the rest unlimited.
    Htb {
        interface: String,
        port: u16,
        rate_bps: u64,
    },
    /// netem as the root qdisc of the interface.
    Netem {
        interface: String,
        delay_ms: f64,
        jitter_ms: f64,
        loss: f64,
    },
    /// The userspace delay wire: the host's interface is paired with end `host_end` of
    /// the hidden namespace `netns`, the link's other side with `peer_end`.
    DelayWire {
        interface: String,
        netns: String,
        host_end: String,
        peer_end: String,
        delay_ms: f64,
        jitter_ms: f64,
        loss: f64,
    },
    /// The stand-in of a conntrack table of `max` entries: `ct state new ct count over
    /// max counter drop` in `table` (inet), chain `chain` on prerouting after conntrack;
    /// filled at apply by one UDP datagram per fresh source port from `fill_from` to
    /// `fill_to`. The host's nf_conntrack_max shows and sets `max` (a daemon file bound
    /// over it); the rule's drops go to the host's kernel log as the kernel words them.
    ConntrackTable {
        table: String,
        chain: String,
        max: u32,
        fill_from: String,
        fill_to: SocketAddr,
    },
    /// A clsact direct-action classifier (`program`), its rule in a BPF map.
    EbpfTc {
        interface: String,
        direction: String,
        program: String,
        proto: Option<String>,
        dport: Option<u16>,
        source: Option<Cidr>,
        drop_ppm: u32,
    },
}

/// What a TCP connection attempt must end as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectOutcome {
    Connects,
    TimesOut,
    Refused,
    /// An ICMP error (connect reports it as refused or unreachable).
    IcmpError,
}

impl fmt::Display for ConnectOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectOutcome::Connects => "connects",
            ConnectOutcome::TimesOut => "times out",
            ConnectOutcome::Refused => "is refused",
            ConnectOutcome::IcmpError => "fails with an ICMP error",
        })
    }
}

/// How a fault is measured after apply. Every measurement fails closed: no reply, no
/// reading, no traffic is a failed measurement, never a pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum Measure {
    /// The effect read back from the kernel or the running service.
    ReadBack { what: String },
    /// A burst of `count` echo requests from `from` to `to`: the lost fraction must be
    /// `loss` within max(3 points, 4 binomial sigmas).
    EchoLoss { from: String, to: IpAddr, count: u32, spacing_us: u64, loss: f64 },
    /// A policer: a burst of `count` echoes `spacing_us` apart; about
    /// `per_second x duration + burst` pass (within 0.5x-1.5x + 5).
    EchoPolicer { from: String, to: IpAddr, count: u32, spacing_us: u64, per_second: u32, burst: u32 },
    /// Round trip from `from` to `to`, measured before and after: it must grow by
    /// `added_ms` within max(1 ms, 5%) + half the jitter; with `loss`, a loss burst too.
    EchoDelay { from: String, to: IpAddr, count: u32, added_ms: f64, jitter_ms: f64, loss: f64 },
    /// A TCP connection from `from` to `to` must end as `expect` after apply, and must
    /// not end so before (the negative control: the fault made the difference).
    Connect { from: String, to: SocketAddr, expect: ConnectOutcome },
    /// Connections from `from` to `to` held open until one times out: within `max + 1`.
    ConnLimit { from: String, to: SocketAddr, max: u32 },
    /// A transfer from the shaped host to its neighbour `to_host` (at `to`), from
    /// `from_port` when the class is per port: the rate within 0.8x-1.15x.
    Transfer { from: String, to_host: String, to: IpAddr, from_port: Option<u16>, rate_bps: u64 },
    /// A connection from `from` to the forwarded `via` must end as one straight to
    /// `direct` does, and at least one of them must connect.
    Dnat { from: String, via: SocketAddr, direct: SocketAddr },
    /// A path MTU black hole: don't-fragment echoes of `payload` bytes from `from` to
    /// `to` get neither a reply nor "fragmentation needed", while the faulty host's drop
    /// counter shows it dropped what it made (no large echo is sent before the rule: it
    /// would teach the sender the path MTU).
    PmtuBlackhole { from: String, to: IpAddr, payload: usize },
    /// A full conntrack table: after the fill, the host's real entry count is at least
    /// `max`, and a new UDP flow from `from` to `to` is dropped by the stand-in (its
    /// counter moves); before the fill, the control: a new flow passes.
    ConntrackFull { from: String, to: SocketAddr, max: u32 },
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Measure::ReadBack { what } => write!(f, "read back: {what}"),
            Measure::EchoLoss { from, to, count, loss, .. } => write!(f, "{count} echoes from {from} to {to} as one burst: about {:.1}% lost", loss * 100.0),
            Measure::EchoPolicer { from, to, count, spacing_us, per_second, burst } => {
                write!(f, "{count} echoes from {from} to {to}, {spacing_us} us apart: about {per_second}/s + {burst} pass")
            }
            Measure::EchoDelay { from, to, count, added_ms, .. } => write!(f, "{count} echoes from {from} to {to} before and after: round trip +{added_ms} ms"),
            Measure::Connect { from, to, expect } => write!(f, "a TCP connection from {from} to {to} {expect} (and did not before)"),
            Measure::ConnLimit { from, to, max } => write!(f, "connections from {from} to {to} until one times out: within {}", max + 1),
            Measure::Transfer { from, to_host, rate_bps, from_port, .. } => {
                write!(f, "a transfer from {from}{} to {to_host} at about {} kbit/s", from_port.map(|p| format!(" port {p}")).unwrap_or_default(), rate_bps / 1000)
            }
            Measure::Dnat { from, via, direct } => write!(f, "a connection from {from} to {via} ends as one straight to {direct}"),
            Measure::ConntrackFull { from, to, max } => write!(f, "{max} UDP flows from {from} to {to}: the host's nf_conntrack_count reaches {max} and the next new flow is dropped"),
            Measure::PmtuBlackhole { from, to, payload } => write!(f, "{payload}-byte don't-fragment echoes from {from} to {to}: no reply, no frag-needed, and the faulty host's drop counter moves"),
        }
    }
}

impl fmt::Display for FaultStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n      how: {}\n      measured by: {}", self.summary, self.mechanism, self.measure)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mechanism::ServiceConfig { service, config_path, .. } => write!(f, "{service} starts with the faulty {config_path}"),
            Mechanism::Nft { table, chain, resolved, .. } => write!(f, "nft table {table}, chain {chain}: {resolved}"),
            Mechanism::Dnat { table, chain, proto, dport, to } => write!(f, "nft table {table}, chain {chain}: {proto} dport {dport} dnat to {to}"),
            Mechanism::Sysctl { key, value } => write!(f, "sysctl {key} = {value} in the host's network namespace"),
            Mechanism::ConntrackTable { table, chain, max, fill_from, fill_to } => {
                write!(f, "nft table inet {table}, chain {chain}: ct state new ct count over {max} counter drop (nf_conntrack_max = {max}); filled from {fill_from} to udp {fill_to}")
            }
            Mechanism::ResolvConf { text } => {
                let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
                write!(f, "/etc/resolv.conf written before the host starts: {}", lines.join("; "))
            }
            Mechanism::DeletedOpenFile { service, path } => write!(f, "once {service} holds {path} open: appended to until the host's disk is full, then unlinked"),
            Mechanism::Mtu { interface, mtu } => write!(f, "ip link set {interface} mtu {mtu} (netlink)"),
            Mechanism::RouteRemove { to } => write!(f, "route {} deleted (netlink)", to.map_or_else(|| "default".to_string(), |c| c.to_string())),
            Mechanism::Tbf { interface, rate_bps } => write!(f, "tc qdisc replace dev {interface} root tbf rate {}kbit", rate_bps / 1000),
            Mechanism::Htb { interface, port, rate_bps } => write!(f, "tc htb on {interface}: class of port {port} at {}kbit, the rest unlimited", rate_bps / 1000),
            Mechanism::Netem { interface, delay_ms, jitter_ms, loss } => write!(f, "tc qdisc replace dev {interface} root netem delay {delay_ms}ms {jitter_ms}ms loss {}%", loss * 100.0),
            Mechanism::DelayWire { interface, netns, host_end, peer_end, delay_ms, jitter_ms, loss } => write!(
                f,
                "userspace delay wire in hidden namespace {netns} ({interface} <-> {host_end} | {peer_end} <-> the link's other side): {delay_ms} ms +-{jitter_ms} ms, {}% loss",
                loss * 100.0
            ),
            Mechanism::EbpfTc { interface, direction, program, drop_ppm, .. } => write!(f, "tc clsact {direction} on {interface}: bpf {program} (direct-action), drops {drop_ppm} ppm of matches"),
        }
    }
}

/// The nftables table drill's nft faults live in, in each host.
pub const NFT_TABLE: &str = "inet filter";
/// Names of the delay wire's ends in its namespace (`a` faces the delayed host).
pub const WIRE_HOST_END: &str = "a";
pub const WIRE_PEER_END: &str = "b";
/// The eBPF program of an `ebpf-drop` fault.
pub const TC_PROGRAM: &str = "cls_main";

