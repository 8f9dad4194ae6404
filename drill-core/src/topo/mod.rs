//! The network part of a scenario: hosts (with routes, sysctls, forwarding, NAT),
//! links (veth pairs) and switches (a bridge joining several hosts on one subnet).
//! Validated here, without any kernel: every error names file:line:column.
//! Addresses may be given or left out; [`crate::plan`] allocates the missing ones
//! from the drill's own block of the reserved range (see [`POOL`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;

use crate::model::{self, Cidr};
use crate::source::Collector;

mod read;

pub(crate) use read::{read_host, read_link, read_switch};

/// Reserved for allocated addresses: drill slot `s` gets 10.(200+s).0.0/16, one /24 per
/// segment. Given addresses may not fall in it, so allocations never clash with them.
pub const POOL: (u8, u8) = (200, 255);
/// Longest interface name Linux accepts (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

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
}

pub(crate) struct RawSwitch {
    name: Spanned<String>,
    subnet: Option<Spanned<String>>,
    mtu: Option<Spanned<i64>>,
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

fn is_ifname(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_IFNAME && s != "lo" && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn in_pool(addr: &IpAddr) -> bool {
    matches!(addr, IpAddr::V4(a) if a.octets()[0] == 10 && (POOL.0..=POOL.1).contains(&a.octets()[1]))
}

fn mtu(v: &mut Validator, m: &Option<Spanned<i64>>) -> Option<u32> {
    let m = m.as_ref()?;
    match u32::try_from(*m.get_ref()) {
        Ok(x) if (68..=65535).contains(&x) => Some(x),
        _ => {
            v.err(m.span(), format!("mtu {} is out of range", m.get_ref()), "use an MTU between 68 and 65535 (Ethernet: 1500)");
            None
        }
    }
}

/// Validates hosts, links and switches. `hosts_known` holds the declared host names.
pub(crate) fn validate(v: &mut Validator, raw_hosts: &[RawHost], raw_links: &[Spanned<RawLink>], raw_switches: &[Spanned<RawSwitch>], hosts_known: &BTreeSet<String>) -> (Vec<Host>, Vec<Segment>) {
    let known = hosts_known.iter().cloned().collect::<Vec<_>>().join(", ");
    let mut used_addrs: BTreeMap<IpAddr, String> = BTreeMap::new();
    // Interface names per host: given ones first (so generated ones avoid them).
    let mut ifnames: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let all_eps = raw_links.iter().flat_map(|l| [&l.get_ref().a, &l.get_ref().b]).chain(raw_switches.iter().flat_map(|s| s.get_ref().members.iter()));
    for ep in all_eps {
        if let Some(n) = &ep.name {
            if !is_ifname(n.get_ref()) {
                v.err(n.span(), format!("interface name `{}` is not valid", n.get_ref()), format!("use at most {MAX_IFNAME} letters, digits, '-', '_' or '.' (Linux limit), and not `lo`"));
            } else if !ifnames.entry(ep.host.get_ref().clone()).or_default().insert(n.get_ref().clone()) {
                v.err(n.span(), format!("host `{}` has two interfaces named `{}`", ep.host.get_ref(), n.get_ref()), "give each interface of a host its own name");
            }
        }
    }
    let mut next_eth: BTreeMap<String, usize> = BTreeMap::new();
    let mut endpoint = |v: &mut Validator, ep: &RawEndpoint, seg_mtu: Option<u32>, subnet: Option<Cidr>| -> Option<Endpoint> {
        let host = ep.host.get_ref();
        let host_ok = hosts_known.contains(host);
        if !host_ok {
            v.err(ep.host.span(), format!("unknown host `{host}`"), format!("declare it in [[hosts]] or use one of: {known}"));
        }
        let mut addresses = Vec::new();
        for a in ep.address.iter().chain(ep.addresses.iter()) {
            match a.get_ref().parse::<Cidr>() {
                Ok(c) => {
                    if let Some(owner) = used_addrs.get(&c.addr) {
                        v.err(a.span(), format!("address {} is already used by {owner}", c.addr), "every interface needs its own address; pick a free one in the subnet");
                    } else if in_pool(&c.addr) {
                        v.err(
                            a.span(),
                            format!("address {} is in 10.{}.0.0 - 10.{}.255.255, reserved for allocated addresses", c.addr, POOL.0, POOL.1),
                            "pick another range, or leave the address out to have one allocated",
                        );
                    } else if let Some(s) = subnet.filter(|s| c.addr.is_ipv4() && !s.same_subnet(&Cidr { addr: c.addr, prefix: s.prefix })) {
                        v.err(a.span(), format!("address {c} is outside the segment's subnet {s}"), "use an address inside the subnet, or drop one of them");
                    } else {
                        used_addrs.insert(c.addr, host.clone());
                        addresses.push(c);
                    }
                }
                Err(e) => v.err(a.span(), e, "write an address with its prefix, e.g. \"10.77.0.2/24\" or \"fd77::2/64\""),
            }
        }
        let ep_mtu = mtu(v, &ep.mtu).or(seg_mtu);
        let ifname = match &ep.name {
            Some(n) => n.get_ref().clone(),
            None => {
                let taken = ifnames.entry(host.clone()).or_default();
                let counter = next_eth.entry(host.clone()).or_default();
                loop {
                    let n = format!("eth{counter}");
                    *counter += 1;
                    if taken.insert(n.clone()) {
                        break n;
                    }
                }
            }
        };
        host_ok.then(|| Endpoint { host: host.clone(), ifname, addresses, mtu: ep_mtu })
    };
    let subnet_of = |v: &mut Validator, s: &Option<Spanned<String>>, members: usize| -> Option<Cidr> {
        let s = s.as_ref()?;
        match s.get_ref().parse::<Cidr>() {
            Ok(c) if c.addr.is_ipv4() && c.prefix <= 30 && (1u64 << (32 - c.prefix)) >= members as u64 + 2 => Some(c),
            Ok(c) => {
                v.err(s.span(), format!("subnet {c} cannot hold {members} hosts"), "use an IPv4 subnet with room for every member, e.g. 10.77.5.0/24");
                None
            }
            Err(e) => {
                v.err(s.span(), e, "write the subnet as e.g. \"10.77.5.0/24\"");
                None
            }
        }
    };
    let mut segments = Vec::new();
    for l in raw_links {
        let span = l.span();
        let l = l.get_ref();
        let seg_mtu = mtu(v, &l.mtu);
        let subnet = subnet_of(v, &l.subnet, 2);
        let a = endpoint(v, &l.a, seg_mtu, subnet);
        let b = endpoint(v, &l.b, seg_mtu, subnet);
        if l.a.host.get_ref() == l.b.host.get_ref() {
            v.err(l.b.host.span(), format!("link joins host `{}` to itself", l.a.host.get_ref()), "a link joins two different hosts");
        }
        if let (Some(a), Some(b)) = (a, b) {
            for (x, y) in a.addresses.iter().flat_map(|x| b.addresses.iter().map(move |y| (x, y))) {
                if x.addr.is_ipv4() == y.addr.is_ipv4() && !x.same_subnet(y) {
                    v.err(span.clone(), format!("the two ends of this link ({x} and {y}) are not in the same subnet"), "give both ends addresses in one subnet with the same prefix length");
                }
            }
            segments.push(Segment { switch: None, subnet, members: vec![a, b] });
        }
    }
    let mut switch_names = BTreeSet::new();
    for s in raw_switches {
        let sp = s.span();
        let s = s.get_ref();
        let name = s.name.get_ref();
        if !model::is_name(name) || name.len() > model::MAX_HOST_NAME {
            v.err(s.name.span(), format!("switch name `{name}` is not valid"), "use lowercase letters, digits and '-', starting with a letter, at most 20 characters");
        }
        if hosts_known.contains(name) || !switch_names.insert(name.clone()) {
            v.err(s.name.span(), format!("the name `{name}` is already taken"), "switches and hosts share one namespace of names; pick another");
        }
        if s.members.len() < 2 {
            v.err(sp.clone(), format!("switch `{name}` has {} member(s)", s.members.len()), "a switch joins at least two hosts; use [[links]] for one");
        }
        let seg_mtu = mtu(v, &s.mtu);
        let subnet = subnet_of(v, &s.subnet, s.members.len());
        let mut seen = BTreeSet::new();
        let mut members = Vec::new();
        for m in &s.members {
            if !seen.insert(m.host.get_ref().clone()) {
                v.err(m.host.span(), format!("host `{}` is on switch `{name}` twice", m.host.get_ref()), "list each host once");
            }
            members.extend(endpoint(v, m, seg_mtu, subnet));
        }
        segments.push(Segment { switch: Some(name.clone()), subnet, members });
    }

    // Hosts: forwarding, sysctls, routes, NAT.
    let mut hosts = Vec::new();
    for h in raw_hosts {
        let name = h.name.get_ref().clone();
        let mut sysctls = Vec::new();
        for (k, val) in &h.sysctls {
            let value = match val.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => u8::from(*b).to_string(),
                other => {
                    v.err(val.span(), format!("sysctl {k}: value {other} is not a string or a number"), "write e.g. \"1024 65535\" or 2");
                    continue;
                }
            };
            if !k.starts_with("net.") || k.contains('/') || k.contains("..") {
                v.err(val.span(), format!("sysctl `{k}` is not a per-network-namespace setting"), "only net.* sysctls belong to a drill host; others would change the learner's machine");
            } else if GLOBAL_SYSCTLS.contains(&k.as_str()) {
                v.err(val.span(), format!("sysctl `{k}` is global to the machine, not per host"), "model it another way (e.g. a conntrack limit with an nft `ct count` fault)");
            } else {
                sysctls.push((k.clone(), value));
            }
        }
        let my_ifs: Vec<&Endpoint> = segments.iter().flat_map(|s| s.members.iter()).filter(|e| e.host == name).collect();
        let mut routes = Vec::new();
        for r in &h.routes {
            let r = r.get_ref();
            let (to, v6_hint) = match r.to.get_ref().as_str() {
                "default" => (None, None),
                "default6" | "::/0" => (None, Some(true)),
                t => match t.parse::<Cidr>() {
                    Ok(c) => (Some(c), Some(c.addr.is_ipv6())),
                    Err(e) => {
                        v.err(r.to.span(), e, "write `default`, `default6` or a prefix such as \"10.77.2.0/24\"");
                        continue;
                    }
                },
            };
            let via = match r.via.get_ref().parse::<IpAddr>() {
                Ok(a) => {
                    let on_link = my_ifs.iter().flat_map(|e| e.addresses.iter()).any(|c| c.same_subnet(&Cidr { addr: a, prefix: c.prefix }));
                    let allocated = my_ifs.iter().any(|e| !e.addresses.iter().any(|c| c.addr.is_ipv4()));
                    if !on_link && !(allocated && a.is_ipv4()) {
                        v.err(r.via.span(), format!("gateway {a} is not on any subnet of host `{name}`"), "use an address on one of the host's links, or the gateway's host name");
                    }
                    Via::Address(a)
                }
                Err(_) => {
                    let gw = r.via.get_ref();
                    let shares = segments.iter().any(|s| s.members.iter().any(|m| &m.host == gw) && s.members.iter().any(|m| m.host == name));
                    if !hosts_known.contains(gw) {
                        v.err(r.via.span(), format!("`{gw}` is neither an address nor a host"), format!("use an address or one of: {known}"));
                    } else if !shares {
                        v.err(r.via.span(), format!("host `{gw}` shares no link or switch with `{name}`"), "route via a neighbour: a host on one of this host's links or switches");
                    }
                    Via::Host(gw.clone())
                }
            };
            let v6 = v6_hint.unwrap_or(matches!(via, Via::Address(IpAddr::V6(_))));
            routes.push(Route { to, v6, via });
        }
        let masquerade = h.masquerade.as_ref().and_then(|m| {
            if my_ifs.iter().any(|e| &e.ifname == m.get_ref()) {
                Some(m.get_ref().clone())
            } else {
                let names: Vec<&str> = my_ifs.iter().map(|e| e.ifname.as_str()).collect();
                v.err(m.span(), format!("host `{name}` has no interface `{}`", m.get_ref()), format!("its interfaces are: {}", names.join(", ")));
                None
            }
        });
        hosts.push(Host { name, forwarding: h.forwarding, sysctls, routes, masquerade });
    }
    (hosts, segments)
}

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
    fn allocation_names_routes_and_forwarding() {
        let s = parse("t.toml", BASE).unwrap();
        let p = plan::compile(&s, "abcdef", 3);
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
}
