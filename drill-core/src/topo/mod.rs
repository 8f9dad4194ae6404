//! The network part of a scenario: hosts (with routes, sysctls, forwarding, NAT),
//! links (veth pairs) and switches (a bridge joining several hosts on one subnet).
//! Validated here, without any kernel: every error names file:line:column.
//! Addresses may be given or left out; [`crate::plan`] allocates the missing ones
//! from the drill's own block of the reserved range (see [`POOL`]).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;

use crate::model::Cidr;
use crate::source::Collector;

mod read;
mod validate;

pub(crate) use read::{read_host, read_link, read_switch};
pub(crate) use validate::{shapes, validate};

/// Reserved for allocated addresses: drill slot `s` gets 10.(200+s).0.0/16, one /24 per
/// segment. Given addresses may not fall in it, so allocations never clash with them.
pub const POOL: (u8, u8) = (200, 255);
/// Longest interface name Linux accepts (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

/// The most hosts one drill may have (each is a namespace, an init, a cgroup and a
/// root filesystem; docs/security.md, "Resource limits").
pub const MAX_HOSTS: usize = 16;

/// Sysctls that exist only once per machine: refused (writing them from a drill
/// namespace fails with EPERM, and would change the learner's machine).
pub const GLOBAL_SYSCTLS: &[&str] = &[
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_buckets",
    "net.nf_conntrack_max",
    "net.core.rmem_max",
    "net.core.wmem_max",
    "net.core.rmem_default",
    "net.core.wmem_default",
    "net.core.netdev_max_backlog",
    "net.ipv4.tcp_mem",
    "net.ipv4.udp_mem",
];

// ------------------------------------------------------------------ raw shape
// As read from the file (by [`read`]), with the spans of every value.

pub(crate) struct RawHost {
    pub name: Spanned<String>,
    forwarding: bool,
    sysctls: BTreeMap<String, Spanned<toml::Value>>,
    routes: Vec<Spanned<RawRoute>>,
    /// Masquerade (source NAT) traffic leaving through this interface.
    masquerade: Option<Spanned<String>>,
    /// `dns = { .. }`: the host's resolv.conf.
    dns: Option<Spanned<toml::Table>>,
    /// Its cgroup and disk limits (validated when read).
    limits: HostLimits,
}

struct RawRoute {
    to: Spanned<String>,
    via: Spanned<String>,
}

pub(crate) struct RawLink {
    a: RawEndpoint,
    b: RawEndpoint,
    subnet: Option<Spanned<String>>,
    mtu: Option<Spanned<i64>>,
    tunnel: Option<Spanned<String>>,
}

pub(crate) struct RawSwitch {
    name: Spanned<String>,
    subnet: Option<Spanned<String>>,
    mtu: Option<Spanned<i64>>,
    /// `path_mtu`: what the fabric carries (in range when read).
    path_mtu: Option<Spanned<i64>>,
    members: Vec<RawEndpoint>,
}

struct RawEndpoint {
    host: Spanned<String>,
    address: Option<Spanned<String>>,
    addresses: Vec<Spanned<String>>,
    name: Option<Spanned<String>>,
    mtu: Option<Spanned<i64>>,
}

// ------------------------------------------------------------------ validated model

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    pub forwarding: bool,
    /// (key, value), e.g. ("net.ipv4.tcp_syn_retries", "2").
    pub sysctls: Vec<(String, String)>,
    pub routes: Vec<Route>,
    pub masquerade: Option<String>,
    /// The host's resolver configuration (its /etc/resolv.conf); None: no DNS server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<crate::resolv::HostDns>,
    /// The host's own limits (`limits = { memory, pids, cpus, disk }`); the engine's
    /// defaults where left out.
    #[serde(default, skip_serializing_if = "HostLimits::is_default")]
    pub limits: HostLimits,
}

/// A host's limits as a scenario gives them: its cgroup's memory, pids and CPU, and the
/// size of its disk (the tmpfs holding its root). `None`: the engine's default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_bytes: Option<u64>,
}

impl HostLimits {
    pub fn is_default(&self) -> bool {
        *self == HostLimits::default()
    }
}

/// Parses a size as written in a scenario: bytes, or a number with K, M or G (powers
/// of 1024, an optional trailing `i`/`B`): "64M", "512K", "1G", "1048576".
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim();
    let t = t.strip_suffix('B').unwrap_or(t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (num, mul) = match t.chars().last()? {
        'K' | 'k' => (&t[..t.len() - 1], 1u64 << 10),
        'M' | 'm' => (&t[..t.len() - 1], 1 << 20),
        'G' | 'g' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// `None`: the default route (of `v6`'s family).
    pub to: Option<Cidr>,
    pub v6: bool,
    pub via: Via,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    Address(IpAddr),
    /// The named host's address on a segment both hosts are on.
    Host(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// `None` for a link (veth pair), the switch's name for a switch.
    pub switch: Option<String>,
    /// Given IPv4 subnet for allocation, if any.
    pub subnet: Option<Cidr>,
    pub members: Vec<Endpoint>,
    /// A link that is a tunnel (`tunnel = "vxlan"`): what it carries is a given of the
    /// story, fixed by an underlay no host can reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<Tunnel>,
    /// A switch's `path_mtu`: the largest packet its fabric carries, a given of the
    /// story enforced in the switch's own namespace (no host can lift it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_mtu: Option<u32>,
}

/// A tunnel link: a VXLAN between its two ends over a hidden underlay whose MTU is the
/// tunnel's plus the VXLAN overhead, so it carries `mtu` bytes and nothing in a host can
/// make it carry more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tunnel {
    /// The MTU it carries (the link's `mtu`).
    pub mtu: u32,
}

impl Tunnel {
    /// VXLAN over IPv4: outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14).
    pub const OVERHEAD: u32 = 50;
    /// Kinds of tunnel a link may be.
    pub const KINDS: &'static [&'static str] = &["vxlan"];

    pub fn underlay_mtu(&self) -> u32 {
        self.mtu + Self::OVERHEAD
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub host: String,
    /// Interface name inside the host (given, or eth0, eth1, ... in file order).
    pub ifname: String,
    /// Given addresses; a missing IPv4 address is allocated.
    pub addresses: Vec<Cidr>,
    pub mtu: Option<u32>,
}

// ------------------------------------------------------------------ validation

pub(crate) type Validator<'a> = Collector<'a>;

#[cfg(test)]
mod tests {
    use crate::plan;
    use crate::scenario::parse;

    const BASE: &str = r#"
id = "t"
title = "t"
alert = "a"
briefing = "b"
[[hosts]]
name = "a"
routes = [{ to = "default", via = "r" }]
[[hosts]]
name = "r"
forwarding = true
[[hosts]]
name = "b"
[[links]]
a = { host = "a" }
b = { host = "r" }
[[switches]]
name = "sw"
members = [{ host = "r" }, { host = "b", addresses = ["fd00::2/64"] }]
[[checks]]
kind = "http-slo"
from = "a"
target = "b:80"
[solution]
summary = "s"
steps = []
"#;

    fn err(text: &str) -> String {
        parse("t.toml", text).unwrap_err().to_string()
    }

    #[test]
    fn a_drill_has_at_most_max_hosts_hosts() {
        let many: String = (0..super::MAX_HOSTS + 2).map(|i| format!("[[hosts]]\nname = \"x{i}\"\n")).collect();
        let e = err(&BASE.replace("[[links]]", &format!("{many}[[links]]")));
        assert!(e.contains("host `x13` is host 17 of 21: a drill has at most 16 hosts"), "{e}");
        assert_eq!(e.matches("at most 16 hosts").count(), 1, "said once, at the first host over: {e}");
        assert!(e.contains("t.toml:"), "names the place: {e}");
    }

    #[test]
    fn host_limits_are_read_with_their_ranges() {
        let s = parse("t.toml", &BASE.replace("forwarding = true", "forwarding = true\nlimits = { memory = \"64M\", pids = 128, cpus = 0.5, disk = \"32M\" }")).unwrap();
        let r = s.hosts.iter().find(|h| h.name == "r").unwrap();
        assert_eq!(r.limits, super::HostLimits { memory_bytes: Some(64 << 20), pids: Some(128), cpus: Some(0.5), disk_bytes: Some(32 << 20) });
        let p = plan::compile(&s, "ab12cd", 0, plan::Backends::default()).unwrap();
        assert!(p.to_string().contains("limits: memory 64 MiB, pids 128, cpus 0.5, disk 32 MiB"), "{p}");
        let e = err(&BASE.replace("forwarding = true", "forwarding = true\nlimits = { memory = \"2M\", pids = 3, cpus = 0, disk = \"lots\", swap = 1 }"));
        for want in
            ["memory = \"2M\" is out of range: it must be from 16M to 4096M", "pids = 3 is out of range", "cpus = 0 is out of range", "disk = \"lots\" is not a size", "`swap` is not a key of limits"]
        {
            assert!(e.contains(want), "{want}: {e}");
        }
        assert_eq!(super::parse_size("1G"), Some(1 << 30));
        assert_eq!(super::parse_size("512KiB"), Some(512 << 10));
        assert_eq!(super::parse_size("-1M"), None);
    }

    #[test]
    fn allocation_names_routes_and_forwarding() {
        let s = parse("t.toml", BASE).unwrap();
        let p = plan::compile(&s, "abcdef", 3, Default::default()).unwrap();
        let a = &p.hosts[0];
        assert_eq!(a.interfaces[0].name, "eth0");
        assert_eq!(a.interfaces[0].addresses[0].to_string(), "10.203.0.1/24");
        let r = &p.hosts[1];
        assert_eq!(r.interfaces.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["eth0", "eth1"]);
        assert_eq!(r.interfaces[1].addresses[0].to_string(), "10.203.1.1/24");
        assert_eq!(a.routes[0].via.to_string(), "10.203.0.2", "via = \"r\" resolves to r's address on the shared link");
        assert!(r.sysctls.contains(&("net.ipv4.ip_forward".into(), "1".into())));
        let b = &p.hosts[2];
        assert_eq!(b.interfaces[0].addresses.iter().map(|c| c.to_string()).collect::<Vec<_>>(), ["10.203.1.2/24", "fd00::2/64"]);
        assert_eq!(p.switches[0].netns, "drill-abcdef-sw");
        assert_eq!(p.namespaces().len(), 4);
        assert_eq!(p.host_address("b", true).unwrap().to_string(), "fd00::2");
    }

    #[test]
    fn interface_name_too_long_is_rejected_with_the_limit() {
        let e = err(&BASE.replace("b = { host = \"r\" }", "b = { host = \"r\", name = \"averyverylongname0\" }"));
        assert!(e.contains("t.toml:16:") && e.contains("interface name `averyverylongname0` is not valid") && e.contains("at most 15"), "{e}");
    }

    #[test]
    fn routes_need_a_neighbour_or_an_on_link_gateway() {
        let e = err(&BASE.replace("via = \"r\"", "via = \"b\""));
        assert!(e.contains("host `b` shares no link or switch with `a`"), "{e}");
        let e = err(&BASE
            .replace("b = { host = \"r\" }", "b = { host = \"r\", address = \"10.9.0.2/24\" }")
            .replace("a = { host = \"a\" }", "a = { host = \"a\", address = \"10.9.0.1/24\" }")
            .replace("via = \"r\"", "via = \"10.8.0.1\""));
        assert!(e.contains("gateway 10.8.0.1 is not on any subnet of host `a`"), "{e}");
    }

    #[test]
    fn bad_sysctls_mtus_pool_addresses_and_switches() {
        let e = err(&BASE.replace("forwarding = true", "forwarding = true\nsysctls = { \"kernel.pid_max\" = 5, \"net.core.rmem_max\" = 1 }"));
        assert!(e.contains("`kernel.pid_max` is not a per-network-namespace setting"), "{e}");
        assert!(e.contains("`net.core.rmem_max` is global to the machine"), "{e}");
        let e = err(&BASE.replace("b = { host = \"r\" }", "b = { host = \"r\", mtu = 20 }"));
        assert!(e.contains("mtu 20 is out of range"), "{e}");
        let e = err(&BASE.replace("a = { host = \"a\" }", "a = { host = \"a\", address = \"10.201.0.1/24\" }"));
        assert!(e.contains("reserved for allocated addresses"), "{e}");
        let e = err(&BASE.replace("members = [{ host = \"r\" }, ", "members = ["));
        assert!(e.contains("switch `sw` has 1 member(s)"), "{e}");
        let e = err(&BASE.replace("name = \"sw\"", "name = \"b\""));
        assert!(e.contains("the name `b` is already taken"), "{e}");
    }

    #[test]
    fn path_mtu_is_read_in_its_range_and_planned() {
        let with = |v: &str| BASE.replace("name = \"sw\"", &format!("name = \"sw\"\npath_mtu = {v}"));
        for bad in ["100", "575", "9001", "-1"] {
            let e = err(&with(bad));
            assert!(e.contains("path_mtu") && e.contains("576") && e.contains("9000"), "{bad}: {e}");
        }
        // Not below the members' MTU: it would drop nothing.
        let e = err(&with("1500"));
        assert!(e.contains("path_mtu 1500 is not below its members' MTU 1500"), "{e}");
        let e = err(&with("1400").replace("members = [{ host = \"r\" }", "mtu = 1300\nmembers = [{ host = \"r\" }"));
        assert!(e.contains("not below its members' MTU 1300"), "{e}");
        let s = parse("t.toml", &with("1400")).unwrap();
        assert_eq!(s.segments.iter().find(|g| g.switch.as_deref() == Some("sw")).unwrap().path_mtu, Some(1400));
        let p = plan::compile(&s, "abcdef", 0, Default::default()).unwrap();
        assert_eq!(p.switches[0].path_mtu, Some(1400));
        let shown = p.to_string();
        assert!(shown.contains("path MTU 1400: the fabric_mtu classifier on every port's ingress (in netns drill-abcdef-sw)"), "{shown}");
        // Without the key the plan says nothing about it (and its JSON holds no key).
        let p = plan::compile(&parse("t.toml", BASE).unwrap(), "abcdef", 0, Default::default()).unwrap();
        assert_eq!(p.switches[0].path_mtu, None);
        assert!(!serde_json::to_string(&p.switches[0]).unwrap().contains("path_mtu"));
    }

    #[test]
    fn fabric_drops_names_a_switch_with_a_path_mtu() {
        let check = "[[checks]]\nkind = \"fabric-drops\"\nswitch = \"sw\"\n";
        let e = err(&format!("{BASE}{check}"));
        assert!(e.contains("switch `sw` has no path_mtu"), "{e}");
        let e = err(&format!("{BASE}{}", check.replace("\"sw\"", "\"nope\"")));
        assert!(e.contains("there is no switch `nope`") && e.contains("sw"), "{e}");
        let s = parse("t.toml", &format!("{}{check}max = 2\n", BASE.replace("name = \"sw\"", "name = \"sw\"\npath_mtu = 1400"))).unwrap();
        let c = s.checks.iter().find(|c| matches!(c, crate::check::Check::FabricDrops { .. })).unwrap();
        assert_eq!(c, &crate::check::Check::FabricDrops { name: "at most 2 frames over 1400 bytes dropped by switch sw".into(), switch: "sw".into(), max: 2 });
    }
}
