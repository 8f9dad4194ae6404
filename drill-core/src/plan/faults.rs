//! The fault steps of a plan: for every fault of the scenario, the mechanism the
//! daemon will use (with every name and parameter resolved: interfaces, tables and
//! chains, the delay backend and its wire namespace, the eBPF program and its rule)
//! and the measurement that proves it took, with the prober host, the address, the
//! count and the tolerance. The daemon applies and measures exactly these steps and
//! never reads the scenario's faults; `drill start --dry-run` prints them.
//!
//! A fault whose parameters the engine cannot measure is refused here with the
//! reason ([`PlanError`]): a drill never starts on a fault nobody checked.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::{Plan, wire_netns_name};
use crate::scenario::{Cidr, Fault, NftAction, NftHook, NftRule, NftSource};

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

/// The host at the other end of `host:iface` and its IPv4 address there (behind a
/// switch: the first other host on it with an address in the same subnet).
pub fn neighbour(plan: &Plan, host: &str, iface: &str) -> Option<(String, IpAddr)> {
    let pi = plan.hosts.iter().find(|h| h.name == host)?.interfaces.iter().find(|i| i.name == iface)?;
    let mine = pi.addresses.iter().find(|c| c.addr.is_ipv4()).copied();
    for h in plan.hosts.iter().filter(|h| h.name != host) {
        for i in &h.interfaces {
            let linked = (pi.peer == h.name && i.peer == host) || (pi.peer == i.peer && plan.switches.iter().any(|s| s.name == pi.peer));
            if !linked {
                continue;
            }
            if let Some(c) = i.addresses.iter().find(|c| c.addr.is_ipv4() && mine.is_none_or(|m| m.same_subnet(c))) {
                return Some((h.name.clone(), c.addr));
            }
        }
    }
    None
}

struct Cx<'a> {
    plan: &'a Plan,
    index: usize,
    fault: &'a Fault,
}

impl Cx<'_> {
    fn refuse<T>(&self, why: impl Into<String>, help: impl Into<String>) -> Result<T, PlanError> {
        Err(PlanError { index: self.index, fault: self.fault.describe(), why: why.into(), help: help.into() })
    }

    fn v4(&self, host: &str) -> Result<IpAddr, PlanError> {
        match self.plan.host_address(host, false) {
            Some(a) => Ok(a),
            None => self.refuse(format!("host {host} has no IPv4 address to measure against"), "give the host an IPv4 address on a link"),
        }
    }

    fn neighbour(&self, host: &str, iface: &str) -> Result<(String, IpAddr), PlanError> {
        match neighbour(self.plan, host, iface) {
            Some(n) => Ok(n),
            None => self.refuse(format!("nobody with an IPv4 address is at the other end of {host}/{iface}"), "put the fault on an interface whose link has a host with an IPv4 address"),
        }
    }

    /// The host an nft rule on `host` is measured from: the rule's `from` host; for an
    /// output rule the host itself; else the first host that is neither `host` nor the
    /// rule's destination.
    fn prober(&self, host: &str, rule: &NftRule) -> Result<String, PlanError> {
        match &rule.from {
            Some(NftSource::Host(f)) => Ok(f.clone()),
            _ if rule.hook == NftHook::Output => Ok(host.to_string()),
            _ => match self.plan.hosts.iter().find(|x| x.name != host && rule.to.as_deref() != Some(x.name.as_str())) {
                Some(h) => Ok(h.name.clone()),
                None => self.refuse(format!("no other host to measure the rule on {host} from"), "add a host that sends the traffic the rule filters"),
            },
        }
    }
}

/// The resolved nft rule text of `rule` on `host` (sources that name a host become its
/// addresses), as `nft list` would show it.
fn resolved_rule(plan: &Plan, rule: &NftRule) -> String {
    let mut text = rule.describe();
    for (h, kw) in [(rule.from.as_ref().and_then(|f| if let NftSource::Host(h) = f { Some(h) } else { None }), "ip saddr"), (rule.to.as_ref(), "ip daddr")] {
        if let Some(h) = h {
            let addrs: Vec<String> = plan.host_addresses(h, false).iter().map(IpAddr::to_string).collect();
            let from_or_to = if kw == "ip saddr" { format!("from {h}") } else { format!("to {h}") };
            text = text.replace(&from_or_to, &format!("{kw} {{ {} }}", addrs.join(", ")));
        }
    }
    text
}

/// Compiles the faults of `faults` (the scenario's, in order) into steps.
pub fn compile(plan: &Plan, faults: &[Fault], backends: Backends) -> Result<Vec<FaultStep>, PlanError> {
    faults.iter().enumerate().map(|(index, fault)| step(&Cx { plan, index, fault }, backends)).collect()
}

fn step(cx: &Cx, backends: Backends) -> Result<FaultStep, PlanError> {
    let host = match cx.fault {
        Fault::ServiceConfig { host, .. }
        | Fault::Nft { host, .. }
        | Fault::Sysctl { host, .. }
        | Fault::Mtu { host, .. }
        | Fault::RouteRemove { host, .. }
        | Fault::TcRate { host, .. }
        | Fault::Delay { host, .. }
        | Fault::Dnat { host, .. }
        | Fault::EbpfDrop { host, .. }
        | Fault::ResolvConf { host, .. }
        | Fault::DeletedOpenFile { host, .. }
        | Fault::ConntrackTable { host, .. } => host.clone(),
    };
    let (mechanism, measure) = match cx.fault {
        Fault::ServiceConfig { service, set, faulty, .. } => (
            Mechanism::ServiceConfig { service: service.clone(), config_path: faulty.config_path(service), set: set.clone() },
            Measure::ReadBack { what: format!("the config {service} runs with (recorded by the running service in {})", crate::workload::effective_config_path(service)) },
        ),
        Fault::ResolvConf { .. } => {
            let text = cx.plan.hosts.iter().find(|h| h.name == host).map(|h| h.resolv_conf.clone()).unwrap_or_default();
            (Mechanism::ResolvConf { text }, Measure::ReadBack { what: "the host's /etc/resolv.conf, as every lookup in it reads it".into() })
        }
        Fault::DeletedOpenFile { service, path, .. } => (
            Mechanism::DeletedOpenFile { service: service.clone(), path: path.clone() },
            Measure::ReadBack { what: format!("statfs of the host's disk shows no free block, and {service}'s /proc/PID/fd shows {path} (deleted)") },
        ),
        Fault::Sysctl { key, value, .. } => (Mechanism::Sysctl { key: key.clone(), value: value.clone() }, Measure::ReadBack { what: format!("{key} in the host's network namespace") }),
        Fault::Mtu { interface, mtu, .. } => (Mechanism::Mtu { interface: interface.clone(), mtu: *mtu }, Measure::ReadBack { what: format!("the MTU of {interface} (netlink)") }),
        Fault::RouteRemove { to, .. } => (Mechanism::RouteRemove { to: *to }, Measure::ReadBack { what: "the host's routing table no longer has the route (netlink)".into() }),
        Fault::TcRate { interface, rate_bps, port, .. } => {
            let (to_host, to) = cx.neighbour(&host, interface)?;
            let mechanism = match port {
                Some(p) => Mechanism::Htb { interface: interface.clone(), port: *p, rate_bps: *rate_bps },
                None => Mechanism::Tbf { interface: interface.clone(), rate_bps: *rate_bps },
            };
            (mechanism, Measure::Transfer { from: host.clone(), to_host, to, from_port: *port, rate_bps: *rate_bps })
        }
        Fault::Delay { interface, delay_ms, jitter_ms, loss, .. } => {
            let (_, to) = cx.neighbour(&host, interface)?;
            let mechanism = match backends.delay {
                DelayBackend::Netem => Mechanism::Netem { interface: interface.clone(), delay_ms: *delay_ms, jitter_ms: *jitter_ms, loss: *loss },
                DelayBackend::Wire => Mechanism::DelayWire {
                    interface: interface.clone(),
                    netns: wire_netns_name(&cx.plan.drill_id, &host, interface),
                    host_end: WIRE_HOST_END.into(),
                    peer_end: WIRE_PEER_END.into(),
                    delay_ms: *delay_ms,
                    jitter_ms: *jitter_ms,
                    loss: *loss,
                },
            };
            (mechanism, Measure::EchoDelay { from: host.clone(), to, count: DELAY_ECHOES, added_ms: *delay_ms, jitter_ms: *jitter_ms, loss: *loss })
        }
        Fault::Dnat { proto, dport, to, to_host, .. } => {
            let direct = match to_host {
                Some(h) => SocketAddr::new(cx.v4(h)?, to.port()),
                None => *to,
            };
            if proto != "tcp" {
                return cx.refuse(format!("a {proto} port forward cannot be measured by a connection"), "forward a TCP port");
            }
            let Some(from) = cx.plan.hosts.iter().find(|x| x.name != host).map(|x| x.name.clone()) else {
                return cx.refuse(format!("no other host to measure the forward on {host} from"), "add a client host");
            };
            let via = SocketAddr::new(cx.v4(&host)?, *dport);
            (Mechanism::Dnat { table: NFT_TABLE.into(), chain: "prerouting".into(), proto: proto.clone(), dport: *dport, to: direct }, Measure::Dnat { from, via, direct })
        }
        Fault::Nft { rule, .. } => nft_step(cx, &host, rule)?,
        Fault::ConntrackTable { max_entries, fill_from, fill_to, fill_port, .. } => {
            let to = SocketAddr::new(cx.v4(fill_to)?, *fill_port);
            let mechanism = Mechanism::ConntrackTable { table: CT_TABLE.into(), chain: CT_CHAIN.into(), max: *max_entries, fill_from: fill_from.clone(), fill_to: to };
            (mechanism, Measure::ConntrackFull { from: fill_from.clone(), to, max: *max_entries })
        }
        Fault::EbpfDrop { interface, egress, proto, dport, from, loss, .. } => ebpf_step(cx, &host, interface, *egress, proto.as_deref(), *dport, from.as_ref(), *loss)?,
    };
    Ok(FaultStep { index: cx.index, host, summary: cx.fault.describe(), mechanism, measure })
}

fn nft_step(cx: &Cx, host: &str, rule: &NftRule) -> Result<(Mechanism, Measure), PlanError> {
    let from = cx.prober(host, rule)?;
    let mechanism = Mechanism::Nft { table: NFT_TABLE.into(), chain: rule.hook.name().into(), rule: rule.clone(), resolved: resolved_rule(cx.plan, rule) };
    if rule.frag_needed {
        return pmtu_step(cx, host, mechanism);
    }
    let target = match (rule.hook, &rule.to) {
        (NftHook::Input, _) => host.to_string(),
        (_, Some(t)) => t.clone(),
        (hook, None) => return cx.refuse(format!("a rule on the {} hook without `to` has no destination to probe", hook.name()), "add `to = \"HOST\"`, the host whose traffic the rule filters"),
    };
    let to = cx.v4(&target)?;
    let icmp_like = rule.proto.as_deref().is_none_or(|p| p == "icmp");
    let measure = match rule.action {
        NftAction::Loss { permille } if icmp_like => Measure::EchoLoss { from, to, count: LOSS_ECHOES, spacing_us: 50, loss: f64::from(permille) / 1000.0 },
        NftAction::Loss { .. } => {
            return cx.refuse("loss on one protocol other than ICMP cannot be measured by echoes", "leave `proto` out (loss on every protocol, TCP included) or use proto = \"icmp\"");
        }
        NftAction::Limit { per_second, burst } if icmp_like => {
            // Spread the burst over at most 100 ms, shorter for a fast policer, so that
            // at most about half of it should pass.
            let count = LOSS_ECHOES;
            let want_secs = ((f64::from(count) / 2.0 - f64::from(burst)).max(1.0) / f64::from(per_second)).clamp(0.005, 0.1);
            let spacing_us = ((want_secs * 1e6 / f64::from(count)) as u64).max(10);
            Measure::EchoPolicer { from, to, count, spacing_us, per_second, burst }
        }
        NftAction::Limit { .. } => return cx.refuse("a policer on one protocol other than ICMP cannot be measured by echoes", "leave `proto` out or use proto = \"icmp\""),
        NftAction::ConnLimit { max } if max <= MAX_CONN_LIMIT_MEASURED => Measure::ConnLimit { from, to: SocketAddr::new(to, rule.dport.unwrap_or(0)), max },
        NftAction::ConnLimit { .. } => {
            return cx.refuse(format!("more than {MAX_CONN_LIMIT_MEASURED} connections would be needed to show the limit"), format!("use max_connections of at most {MAX_CONN_LIMIT_MEASURED}"));
        }
        action => {
            let expect = match (rule.proto.as_deref(), rule.dport, action) {
                (Some("tcp"), Some(_), NftAction::Drop) => ConnectOutcome::TimesOut,
                (Some("tcp"), Some(_), NftAction::RejectTcpReset) => ConnectOutcome::Refused,
                (Some("tcp"), Some(_), _) => ConnectOutcome::IcmpError,
                (None | Some("icmp"), None, NftAction::Drop) => {
                    return Ok((mechanism, Measure::EchoLoss { from, to, count: 50, spacing_us: 100, loss: 1.0 }));
                }
                _ => return cx.refuse("this match cannot be measured by a TCP connection or echoes", "match TCP with a `dport`, or ICMP / every protocol"),
            };
            Measure::Connect { from, to: SocketAddr::new(to, rule.dport.unwrap_or(0)), expect }
        }
    };
    Ok((mechanism, measure))
}

/// A frag-needed drop on `host` (a router) is probed by a don't-fragment echo across
/// it: from the neighbour on one of its other interfaces to the neighbour behind its
/// smallest-MTU interface, one full 1500-byte datagram, which that link cannot carry.
fn pmtu_step(cx: &Cx, host: &str, mechanism: Mechanism) -> Result<(Mechanism, Measure), PlanError> {
    let Some(h) = cx.plan.hosts.iter().find(|h| h.name == host) else { return cx.refuse(format!("no host {host}"), "name a declared host") };
    let small = h.interfaces.iter().filter(|i| i.mtu.is_some_and(|m| (m as usize) < PMTU_PROBE_PAYLOAD + 28)).min_by_key(|i| i.mtu);
    let Some(small) = small else {
        return cx.refuse(format!("{host} has no interface with an MTU below 1500 for a frag-needed drop to matter"), "give the narrow link of the path a smaller `mtu`");
    };
    let (far, to) = cx.neighbour(host, &small.name)?;
    let near = h.interfaces.iter().filter(|i| i.name != small.name).find_map(|i| neighbour(cx.plan, host, &i.name)).filter(|(n, _)| *n != far);
    let Some((from, _)) = near else {
        return cx.refuse(format!("no host on another side of {host} to send a large packet through {}", small.name), "put the router between two links with hosts on them");
    };
    Ok((mechanism, Measure::PmtuBlackhole { from, to, payload: PMTU_PROBE_PAYLOAD }))
}

#[allow(clippy::too_many_arguments)]
fn ebpf_step(cx: &Cx, host: &str, interface: &str, egress: bool, proto: Option<&str>, dport: Option<u16>, from: Option<&NftSource>, loss: f64) -> Result<(Mechanism, Measure), PlanError> {
    let source = match from {
        None => None,
        Some(NftSource::Prefix(c)) => Some(*c),
        Some(NftSource::Host(h)) => Some(Cidr { addr: cx.v4(h)?, prefix: 32 }),
    };
    let mechanism = Mechanism::EbpfTc {
        interface: interface.into(),
        direction: if egress { "egress" } else { "ingress" }.into(),
        program: TC_PROGRAM.into(),
        proto: proto.map(str::to_string),
        dport,
        source,
        drop_ppm: (loss.clamp(0.0, 1.0) * 1e6).round() as u32,
    };
    let (nb, nb_addr) = cx.neighbour(host, interface)?;
    let prober = match from {
        Some(NftSource::Host(x)) => x.clone(),
        _ => nb,
    };
    let target = cx.v4(host)?;
    let measure = match (proto, dport) {
        (None | Some("icmp"), None) if egress => Measure::EchoLoss { from: host.to_string(), to: nb_addr, count: LOSS_ECHOES, spacing_us: 50, loss },
        (None | Some("icmp"), None) => Measure::EchoLoss { from: prober, to: target, count: LOSS_ECHOES, spacing_us: 50, loss },
        (Some("tcp"), Some(p)) if loss >= 1.0 && !egress => Measure::Connect { from: prober, to: SocketAddr::new(target, p), expect: ConnectOutcome::TimesOut },
        _ => {
            return cx.refuse(
                "only ICMP/every-protocol drops, and a full TCP drop on ingress, can be measured from outside",
                "drop every protocol or ICMP (any percent), or TCP to a port at 100% on ingress",
            );
        }
    };
    Ok((mechanism, measure))
}

#[cfg(test)]
#[path = "faults_tests.rs"]
mod tests;
