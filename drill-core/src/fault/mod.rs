//! Faults: what a scenario breaks.
//!
//! The validated [`Fault`] enum, the nftables rule it may carry ([`NftRule`]), how each is
//! described to the learner, and the registry of fault kinds ([`KINDS`]): each kind is
//! one module here that declares its keys (a [`Shape`]) and turns one `[[faults]]` table
//! into its variant, registered in one line. To add a kind: write `fault/<kind>.rs` with
//! its `KIND` (keys and `build`) and its tests, add its line to [`KINDS`], document its
//! keys in scenarios/README.md (a test checks every key is mentioned there).

mod common;
mod conntrack;
mod delay;
mod deleted_file;
mod dnat;
mod ebpf_drop;
mod mtu;
mod nft;
mod resolv_conf;
mod route_remove;
mod service_config;
mod sysctl;
mod tc_rate;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::de::DeTable;

use crate::model::{Cidr, Hosts, Service};
use crate::schema::{self, Entry, Key, Shape, Ty, key};
use crate::source::Collector;
use crate::topo::{Host, Segment};
use crate::workload::Workload;

/// A fault kind: its keys and how one table of it becomes a [`Fault`].
pub struct Kind {
    pub shape: Shape,
    /// Validates the entry (every error reported to it) and returns the fault, or None.
    pub build: fn(&mut Entry<'_, '_, '_, '_>, &Env<'_>) -> Option<Fault>,
}

/// Every fault kind, one line each.
#[rustfmt::skip]
pub const KINDS: &[Kind] = &[
    service_config::KIND,
    nft::DROP,
    nft::REJECT,
    nft::LOSS,
    nft::LIMIT,
    nft::CONN_LIMIT,
    dnat::KIND,
    sysctl::KIND,
    mtu::KIND,
    route_remove::KIND,
    tc_rate::KIND,
    delay::KIND,
    ebpf_drop::KIND,
    resolv_conf::KIND,
    deleted_file::KIND,
    conntrack::KIND,
];

const NAMES: [&str; KINDS.len()] = {
    let mut out = [""; KINDS.len()];
    let mut i = 0;
    while i < KINDS.len() {
        out[i] = KINDS[i].shape.name;
        i += 1;
    }
    out
};

/// Fault kinds the engine knows (the names of [`KINDS`]).
pub const FAULT_KINDS: &[&str] = &NAMES;

/// The key every fault kind takes.
const COMMON: &[Key] = &[
    key("kind", Ty::Str, "\"nft-drop\"", "the fault kind"),
    key("name", Ty::Str, "\"drop-api\"", "what checks' `guards` call it (default: its kind, `kind-N` when the kind repeats)"),
    key("red_herring", Ty::Bool, "true", "a harmless anomaly that looks guilty: applied and measured like any fault, guarded by no check; fixing it alone fixes nothing"),
];

/// A fault kind's shape.
const fn shape(name: &'static str, keys: &'static [Key]) -> Shape {
    Shape { name, is_kind: true, keys, common: COMMON }
}

/// What a fault may refer to: the scenario around it.
pub struct Env<'a> {
    pub hosts: &'a Hosts,
    pub topo: &'a [Host],
    pub segments: &'a [Segment],
    pub services: &'a [Service],
    /// (host, service) -> (healthy config table, workload kind).
    pub service_tables: &'a BTreeMap<(String, String), (toml::Table, String)>,
    /// The faults before this one (two faults may not own one root qdisc).
    pub earlier: &'a [Fault],
}

/// Reads one `[[faults]]` table; every problem goes to `cx`.
pub fn read(cx: &mut Collector, span: Range<usize>, table: &DeTable<'_>, env: &Env) -> Option<Fault> {
    let i = schema::kind_of(cx, span.clone(), table, "fault", FAULT_KINDS)?;
    let family: Vec<&'static Shape> = KINDS.iter().map(|k| &k.shape).collect();
    let mut e = Entry::new(cx, span, table, &KINDS[i].shape, &family);
    (KINDS[i].build)(&mut e, env)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// The service starts with `set` patched over its healthy config.
    ServiceConfig { host: String, service: String, set: toml::Table, faulty: Workload },
    /// A rule in the host's own nftables table (`inet filter`, chain `input`) that drops
    /// or rejects matching packets arriving at the host.
    Nft { host: String, rule: NftRule },
    /// A per-namespace sysctl set to a bad value.
    Sysctl { host: String, key: String, value: String },
    /// An interface's MTU lowered (or raised).
    Mtu { host: String, interface: String, mtu: u32 },
    /// A route removed (`None`: the default route).
    RouteRemove { host: String, to: Option<Cidr> },
    /// Egress of an interface shaped to `rate_bps` bits per second: tc tbf for the whole
    /// interface, or an htb class for the traffic of one `port` (source or destination).
    TcRate {
        host: String,
        interface: String,
        rate_bps: u64,
        #[serde(default)]
        port: Option<u16>,
    },
    /// Latency, jitter and loss on the egress of an interface: netem where the kernel
    /// has it, else the userspace delay wire spliced into the link.
    Delay { host: String, interface: String, delay_ms: f64, jitter_ms: f64, loss: f64 },
    /// A port forward to the wrong place: `proto dport` arriving at the host is
    /// DNATed to `to` (address and port).
    Dnat { host: String, proto: String, dport: u16, to: SocketAddr, to_host: Option<String> },
    /// An eBPF tc classifier on an interface that drops matching packets with a
    /// probability, driven by a BPF map (retunable live).
    EbpfDrop { host: String, interface: String, egress: bool, proto: Option<String>, dport: Option<u16>, from: Option<NftSource>, loss: f64 },
    /// The host's /etc/resolv.conf written from `dns` instead of its healthy `dns` key.
    ResolvConf { host: String, dns: crate::resolv::HostDns },
    /// `path`, held open by `service`, fills the host's disk and is deleted by name.
    DeletedOpenFile { host: String, service: String, path: String },
    /// The host's connection-tracking table (a stand-in of `max_entries`, shown as its
    /// nf_conntrack_max) filled at apply by UDP flows from `fill_from` to
    /// `fill_to:fill_port` across it.
    ConntrackTable { host: String, max_entries: u32, fill_from: String, fill_to: String, fill_port: u16 },
}

/// Parses a tc-style rate: "10mbit", "500kbit", "1gbit", "64000bit".
pub fn parse_rate(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = [("gbit", 1_000_000_000u64), ("mbit", 1_000_000), ("kbit", 1_000), ("bit", 1)].iter().find_map(|(u, m)| s.strip_suffix(u).map(|n| (n.to_string(), *m)))?;
    let v: f64 = num.trim().parse().ok()?;
    (v > 0.0).then_some((v * mult as f64) as u64)
}

/// What an nft fault matches and does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NftRule {
    /// "tcp", "udp" or "icmp"; `None` matches every protocol.
    pub proto: Option<String>,
    pub dport: Option<u16>,
    /// Only packets from this host (its addresses) or prefix.
    pub from: Option<NftSource>,
    /// Only packets to this host (its addresses); for rules on a router's forward hook.
    #[serde(default)]
    pub to: Option<String>,
    /// Only ICMP "fragmentation needed" (destination-unreachable, code 4): the PMTU
    /// discovery messages whose loss makes an MTU black hole.
    #[serde(default)]
    pub frag_needed: bool,
    #[serde(default)]
    pub hook: NftHook,
    pub action: NftAction,
}

/// Which netfilter hook a rule's chain sits on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NftHook {
    /// Packets for the host itself.
    #[default]
    Input,
    /// Packets the host routes (a router).
    Forward,
    /// Packets the host sends (its own, ICMP errors included).
    Output,
}

impl NftHook {
    pub fn name(self) -> &'static str {
        match self {
            NftHook::Input => "input",
            NftHook::Forward => "forward",
            NftHook::Output => "output",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NftSource {
    Host(String),
    Prefix(Cidr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NftAction {
    Drop,
    /// Drop this many packets per thousand, at random (`numgen random mod 1000 < N`).
    Loss {
        permille: u16,
    },
    /// `reject with tcp reset`
    RejectTcpReset,
    /// `reject with icmpx port-unreachable`
    RejectPortUnreachable,
    /// `reject with icmpx admin-prohibited`
    RejectAdminProhibited,
    /// A policer: `limit rate over N/second burst B packets drop`.
    Limit {
        per_second: u32,
        burst: u32,
    },
    /// `ct count over N drop`: connections beyond N are dropped (a full conntrack table).
    ConnLimit {
        max: u32,
    },
}

impl NftRule {
    /// A rule on the input hook (the common case).
    pub fn input(proto: Option<&str>, dport: Option<u16>, from: Option<NftSource>, action: NftAction) -> NftRule {
        NftRule { proto: proto.map(str::to_string), dport, from, to: None, frag_needed: false, hook: NftHook::Input, action }
    }

    /// The rule as `nft list` shows it (sources as given; the daemon resolves hosts).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match &self.from {
            Some(NftSource::Host(h)) => parts.push(format!("from {h}")),
            Some(NftSource::Prefix(c)) => parts.push(format!("ip saddr {c}")),
            None => {}
        }
        if let Some(t) = &self.to {
            parts.push(format!("to {t}"));
        }
        if self.frag_needed {
            parts.push("icmp type destination-unreachable icmp code frag-needed".into());
        }
        match (&self.proto, self.dport) {
            _ if self.frag_needed => {}
            (Some(p), Some(d)) => parts.push(format!("{p} dport {d}")),
            (Some(p), None) => parts.push(format!("meta l4proto {p}")),
            _ => {}
        }
        parts.push(
            match self.action {
                NftAction::Drop => "drop",
                NftAction::Loss { permille } => {
                    return format!("{} numgen random mod 1000 < {permille} drop ({}% loss)", parts.join(" "), f64::from(permille) / 10.0).trim().to_string();
                }
                NftAction::RejectTcpReset => "reject with tcp reset",
                NftAction::RejectPortUnreachable => "reject with icmpx port-unreachable",
                NftAction::RejectAdminProhibited => "reject with icmpx admin-prohibited",
                NftAction::Limit { per_second, burst } => {
                    return format!("{} limit rate over {per_second}/second burst {burst} packets drop", parts.join(" ")).trim().to_string();
                }
                NftAction::ConnLimit { max } => {
                    return format!("{} ct count over {max} drop", parts.join(" ")).trim().to_string();
                }
            }
            .to_string(),
        );
        parts.join(" ")
    }
}

fn pct(fraction: f64) -> String {
    if fraction >= 1.0 { "all".to_string() } else { format!("{}%", (fraction * 1000.0).round() / 10.0) }
}

impl Fault {
    pub fn describe(&self) -> String {
        match self {
            Fault::ServiceConfig { host, service, set, .. } => {
                let keys: Vec<String> = set.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("service-config on {host}/{service}: {}", keys.join(", "))
            }
            Fault::Nft { host, rule } => format!("nftables on {host} (table inet filter, {}): {}", rule.hook.name(), rule.describe()),
            Fault::Sysctl { host, key, value } => format!("sysctl on {host}: {key} = {value}"),
            Fault::ConntrackTable { host, max_entries, fill_from, fill_to, fill_port } => {
                format!("conntrack table on {host}: {max_entries} entries (nf_conntrack_max), filled by UDP flows from {fill_from} to {fill_to}:{fill_port}")
            }
            Fault::DeletedOpenFile { host, service, path } => format!("deleted-open-file on {host}: {path} fills the disk, deleted while {service} holds it open"),
            Fault::ResolvConf { host, dns } => {
                let mut d = format!("resolv.conf on {host}: nameserver {}", dns.nameservers.join(" "));
                if !dns.search.is_empty() {
                    let _ = write!(d, ", search {}", dns.search.join(" "));
                }
                if let Some(n) = dns.ndots {
                    let _ = write!(d, ", ndots:{n}");
                }
                d
            }
            Fault::Mtu { host, interface, mtu } => format!("mtu on {host}: {interface} mtu {mtu}"),
            Fault::RouteRemove { host, to } => format!("route removed on {host}: {}", to.map_or_else(|| "default".to_string(), |c| c.to_string())),
            Fault::TcRate { host, interface, rate_bps, port: None } => format!("tc tbf on {host}/{interface}: egress rate {} kbit/s", rate_bps / 1000),
            Fault::TcRate { host, interface, rate_bps, port: Some(p) } => format!("tc htb on {host}/{interface}: egress of port {p} limited to {} kbit/s", rate_bps / 1000),
            Fault::Delay { host, interface, delay_ms, jitter_ms, loss } => {
                let mut d = format!("delay on {host}/{interface} egress: {delay_ms} ms");
                if *jitter_ms > 0.0 {
                    let _ = write!(d, " +-{jitter_ms} ms jitter");
                }
                if *loss > 0.0 {
                    let _ = write!(d, ", {}% loss", loss * 100.0);
                }
                d
            }
            Fault::Dnat { host, proto, dport, to, to_host } => {
                let target = to_host.as_ref().map_or_else(|| to.to_string(), |h| format!("{h}:{}", to.port()));
                format!("nftables on {host} (table inet filter, prerouting): {proto} dport {dport} dnat to {target}")
            }
            Fault::EbpfDrop { host, interface, egress, proto, dport, from, loss } => {
                let mut m = Vec::new();
                match from {
                    Some(NftSource::Host(h)) => m.push(format!("from {h}")),
                    Some(NftSource::Prefix(c)) => m.push(format!("from {c}")),
                    None => {}
                }
                if let Some(p) = proto {
                    m.push(p.clone());
                }
                if let Some(d) = dport {
                    m.push(format!("dport {d}"));
                }
                let what = if m.is_empty() { "every packet".to_string() } else { m.join(" ") };
                format!("eBPF tc classifier on {host}/{interface} {}: drops {} of {what}", if *egress { "egress" } else { "ingress" }, pct(*loss))
            }
        }
    }
}

/// A packet rate: "50/second", "600/minute". Returns packets per second (>= 1).
pub fn parse_packet_rate(s: &str) -> Option<u32> {
    let (n, unit) = s.trim().split_once('/')?;
    let n: u32 = n.trim().parse().ok()?;
    let per = match unit.trim() {
        "second" | "s" => n,
        "minute" | "m" => n / 60,
        _ => return None,
    };
    (per >= 1).then_some(per)
}
