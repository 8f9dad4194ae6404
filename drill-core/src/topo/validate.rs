//! Validation of the network part: interface names, addresses, segments, then each host's
//! sysctls, routes and NAT. Every error is collected; nothing needs a kernel.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_spanned::Spanned;

use super::{Endpoint, GLOBAL_SYSCTLS, Host, MAX_HOSTS, MAX_IFNAME, POOL, RawEndpoint, RawHost, RawLink, RawRoute, RawSwitch, Route, Segment, Validator, Via};
use crate::model::{self, Cidr};

/// The shapes of the network tables (`[[hosts]]`, a route, `[[links]]`, `[[switches]]`,
/// an endpoint), for the reference test of docs/packs.md.
pub(crate) fn shapes() -> [&'static crate::schema::Shape; 6] {
    [&super::read::HOST, &super::read::ROUTE, &super::read::LINK, &super::read::SWITCH, &super::read::ENDPOINT, &super::read::LIMITS]
}

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

/// What the endpoints of all segments share while they are validated in file order.
struct Ends<'a> {
    hosts_known: &'a BTreeSet<String>,
    known: String,
    used_addrs: BTreeMap<IpAddr, String>,
    /// Interface names per host: given ones first (so generated ones avoid them).
    ifnames: BTreeMap<String, BTreeSet<String>>,
    next_eth: BTreeMap<String, usize>,
    /// Every address accepted: (host, address, its span, the segment it is on).
    given: Vec<(String, Cidr, std::ops::Range<usize>, usize)>,
    /// The segment being read.
    segment: usize,
}

impl Ends<'_> {
    /// Reserves the given interface names of every endpoint (reporting bad or twice-used ones).
    fn reserve_names<'e>(&mut self, v: &mut Validator, eps: impl Iterator<Item = &'e RawEndpoint>) {
        for ep in eps {
            let Some(n) = &ep.name else { continue };
            if !is_ifname(n.get_ref()) {
                v.err(n.span(), format!("interface name `{}` is not valid", n.get_ref()), format!("use at most {MAX_IFNAME} letters, digits, '-', '_' or '.' (Linux limit), and not `lo`"));
            } else if !self.ifnames.entry(ep.host.get_ref().clone()).or_default().insert(n.get_ref().clone()) {
                v.err(n.span(), format!("host `{}` has two interfaces named `{}`", ep.host.get_ref(), n.get_ref()), "give each interface of a host its own name");
            }
        }
    }

    /// One endpoint: its host, addresses (unique, outside the pool, inside the subnet),
    /// MTU and interface name. None when its host is unknown (reported).
    fn endpoint(&mut self, v: &mut Validator, ep: &RawEndpoint, seg_mtu: Option<u32>, subnet: Option<Cidr>) -> Option<Endpoint> {
        let host = ep.host.get_ref();
        let host_ok = self.hosts_known.contains(host);
        if !host_ok {
            v.err(ep.host.span(), format!("unknown host `{host}`"), format!("declare it in [[hosts]] or use one of: {}", self.known));
        }
        let mut addresses = Vec::new();
        for a in ep.address.iter().chain(ep.addresses.iter()) {
            match a.get_ref().parse::<Cidr>() {
                Ok(c) => {
                    if let Some(owner) = self.used_addrs.get(&c.addr) {
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
                        self.used_addrs.insert(c.addr, host.clone());
                        self.given.push((host.clone(), c, a.span(), self.segment));
                        addresses.push(c);
                    }
                }
                Err(e) => v.err(a.span(), e, "write an address with its prefix, e.g. \"10.77.0.2/24\" or \"fd77::2/64\""),
            }
        }
        let ep_mtu = mtu(v, &ep.mtu).or(seg_mtu);
        let ifname = match &ep.name {
            Some(n) => n.get_ref().clone(),
            None => self.next_ifname(host),
        };
        host_ok.then(|| Endpoint { host: host.clone(), ifname, addresses, mtu: ep_mtu })
    }

    /// The first free `ethN` of `host`.
    fn next_ifname(&mut self, host: &str) -> String {
        let taken = self.ifnames.entry(host.to_string()).or_default();
        let counter = self.next_eth.entry(host.to_string()).or_default();
        loop {
            let n = format!("eth{counter}");
            *counter += 1;
            if taken.insert(n.clone()) {
                return n;
            }
        }
    }
}

fn subnet_of(v: &mut Validator, s: &Option<Spanned<String>>, members: usize) -> Option<Cidr> {
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
}

/// Validates hosts, links and switches. `hosts_known` holds the declared host names.
pub(crate) fn validate(v: &mut Validator, raw_hosts: &[RawHost], raw_links: &[Spanned<RawLink>], raw_switches: &[Spanned<RawSwitch>], hosts_known: &BTreeSet<String>) -> (Vec<Host>, Vec<Segment>) {
    let known = hosts_known.iter().cloned().collect::<Vec<_>>().join(", ");
    let mut ends = Ends { hosts_known, known: known.clone(), used_addrs: BTreeMap::new(), ifnames: BTreeMap::new(), next_eth: BTreeMap::new(), given: Vec::new(), segment: 0 };
    let all_eps = raw_links.iter().flat_map(|l| [&l.get_ref().a, &l.get_ref().b]).chain(raw_switches.iter().flat_map(|s| s.get_ref().members.iter()));
    ends.reserve_names(v, all_eps);
    let mut segments = Vec::new();
    for (i, l) in raw_links.iter().enumerate() {
        ends.segment = i;
        segments.extend(link(v, &mut ends, l));
    }
    let mut switch_names = BTreeSet::new();
    for (i, s) in raw_switches.iter().enumerate() {
        ends.segment = raw_links.len() + i;
        segments.push(switch(v, &mut ends, s, &mut switch_names));
    }
    overlapping_subnets(v, &ends.given);
    if let Some(extra) = raw_hosts.get(MAX_HOSTS) {
        v.err(
            extra.name.span(),
            format!("host `{}` is host {} of {}: a drill has at most {MAX_HOSTS} hosts", extra.name.get_ref(), MAX_HOSTS + 1, raw_hosts.len()),
            "split the scenario, or let one host play several roles (each host costs a namespace, a cgroup and a root filesystem)",
        );
    }
    let hosts = raw_hosts.iter().map(|h| host(v, h, &segments, hosts_known, &known)).collect();
    (hosts, segments)
}

/// Two interfaces of one host on different segments whose subnets overlap: the host
/// could not tell which way a packet to the overlap goes.
fn overlapping_subnets(v: &mut Validator, given: &[(String, Cidr, std::ops::Range<usize>, usize)]) {
    for (i, (h, a, span, seg)) in given.iter().enumerate() {
        let clash = given[..i].iter().find(|(h2, b, _, seg2)| h2 == h && seg2 != seg && a.addr.is_ipv4() == b.addr.is_ipv4() && overlap(a, b));
        if let Some((_, b, _, _)) = clash {
            v.err(
                span.clone(),
                format!("host `{h}` has {a} and {b} on different links: their subnets overlap"),
                "give each link or switch of a host its own subnet, or the host cannot tell which way a packet goes",
            );
        }
    }
}

/// Whether the networks of `a` and `b` overlap (the shorter prefix contains the other).
fn overlap(a: &Cidr, b: &Cidr) -> bool {
    let p = a.prefix.min(b.prefix);
    Cidr { addr: a.addr, prefix: p }.network() == Cidr { addr: b.addr, prefix: p }.network()
}

fn link(v: &mut Validator, ends: &mut Ends, l: &Spanned<RawLink>) -> Option<Segment> {
    let span = l.span();
    let l = l.get_ref();
    let seg_mtu = mtu(v, &l.mtu);
    let subnet = subnet_of(v, &l.subnet, 2);
    let a = ends.endpoint(v, &l.a, seg_mtu, subnet);
    let b = ends.endpoint(v, &l.b, seg_mtu, subnet);
    if l.a.host.get_ref() == l.b.host.get_ref() {
        v.err(l.b.host.span(), format!("link joins host `{}` to itself", l.a.host.get_ref()), "a link joins two different hosts");
    }
    let (a, b) = (a?, b?);
    for (x, y) in a.addresses.iter().flat_map(|x| b.addresses.iter().map(move |y| (x, y))) {
        if x.addr.is_ipv4() == y.addr.is_ipv4() && !x.same_subnet(y) {
            v.err(span.clone(), format!("the two ends of this link ({x} and {y}) are not in the same subnet"), "give both ends addresses in one subnet with the same prefix length");
        }
    }
    let tunnel = tunnel(v, l, seg_mtu);
    Some(Segment { switch: None, subnet, members: vec![a, b], tunnel, path_mtu: None })
}

fn switch(v: &mut Validator, ends: &mut Ends, s: &Spanned<RawSwitch>, switch_names: &mut BTreeSet<String>) -> Segment {
    let sp = s.span();
    let s = s.get_ref();
    let name = s.name.get_ref();
    if !model::is_name(name) || name.len() > model::MAX_HOST_NAME {
        v.err(s.name.span(), format!("switch name `{name}` is not valid"), "use lowercase letters, digits and '-', starting with a letter, at most 20 characters");
    }
    if ends.hosts_known.contains(name) || !switch_names.insert(name.clone()) {
        v.err(s.name.span(), format!("the name `{name}` is already taken"), "switches and hosts share one namespace of names; pick another");
    }
    if s.members.len() < 2 {
        v.err(sp, format!("switch `{name}` has {} member(s)", s.members.len()), "a switch joins at least two hosts; use [[links]] for one");
    }
    let seg_mtu = mtu(v, &s.mtu);
    let subnet = subnet_of(v, &s.subnet, s.members.len());
    let mut seen = BTreeSet::new();
    let mut members = Vec::new();
    for m in &s.members {
        if !seen.insert(m.host.get_ref().clone()) {
            v.err(m.host.span(), format!("host `{}` is on switch `{name}` twice", m.host.get_ref()), "list each host once");
        }
        members.extend(ends.endpoint(v, m, seg_mtu, subnet));
    }
    let path_mtu = path_mtu(v, s, name, seg_mtu, &members);
    Segment { tunnel: None, switch: Some(name.clone()), subnet, members, path_mtu }
}

/// A switch's `path_mtu` (its range is the reader's): below what its members' interfaces
/// say, or it would change nothing.
fn path_mtu(v: &mut Validator, s: &RawSwitch, name: &str, seg_mtu: Option<u32>, members: &[Endpoint]) -> Option<u32> {
    let p = s.path_mtu.as_ref()?;
    let value = u32::try_from(*p.get_ref()).ok()?;
    let widest = members.iter().filter_map(|m| m.mtu).chain(seg_mtu).max().unwrap_or(1500);
    if value >= widest {
        v.err(
            p.span(),
            format!("switch `{name}`: path_mtu {value} is not below its members' MTU {widest}, so it would drop nothing"),
            format!("give path_mtu less than {widest} (a narrower fabric under wider interfaces), or remove it"),
        );
        return None;
    }
    Some(value)
}

/// A host: forwarding, sysctls, routes, NAT.
fn host(v: &mut Validator, h: &RawHost, segments: &[Segment], hosts_known: &BTreeSet<String>, known: &str) -> Host {
    let name = h.name.get_ref().clone();
    let sysctls = sysctls(v, h);
    let my_ifs: Vec<&Endpoint> = segments.iter().flat_map(|s| s.members.iter()).filter(|e| e.host == name).collect();
    let routes = h.routes.iter().filter_map(|r| route(v, r.get_ref(), &name, &my_ifs, segments, hosts_known, known)).collect();
    let masquerade = h.masquerade.as_ref().and_then(|m| {
        if my_ifs.iter().any(|e| &e.ifname == m.get_ref()) {
            Some(m.get_ref().clone())
        } else {
            let names: Vec<&str> = my_ifs.iter().map(|e| e.ifname.as_str()).collect();
            v.err(m.span(), format!("host `{name}` has no interface `{}`", m.get_ref()), format!("its interfaces are: {}", names.join(", ")));
            None
        }
    });
    let dns = h.dns.as_ref().and_then(|t| {
        let d: crate::resolv::HostDns = match toml::Value::Table(t.get_ref().clone()).try_into() {
            Ok(d) => d,
            Err(e) => {
                v.err(t.span(), format!("dns: {}", e.message()), "keys of dns: nameservers, search, ndots, timeout, attempts");
                return None;
            }
        };
        match d.problem(&|n| hosts_known.contains(n)) {
            Some((why, help)) => {
                v.err(t.span(), format!("dns of host `{name}`: {why}"), help);
                None
            }
            None => Some(d),
        }
    });
    Host { name, forwarding: h.forwarding, sysctls, routes, masquerade, dns, limits: h.limits.clone() }
}

fn sysctls(v: &mut Validator, h: &RawHost) -> Vec<(String, String)> {
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
    sysctls
}

fn route(v: &mut Validator, r: &RawRoute, name: &str, my_ifs: &[&Endpoint], segments: &[Segment], hosts_known: &BTreeSet<String>, known: &str) -> Option<Route> {
    let (to, v6_hint) = match r.to.get_ref().as_str() {
        "default" => (None, None),
        "default6" | "::/0" => (None, Some(true)),
        t => match t.parse::<Cidr>() {
            Ok(c) => (Some(c), Some(c.addr.is_ipv6())),
            Err(e) => {
                v.err(r.to.span(), e, "write `default`, `default6` or a prefix such as \"10.77.2.0/24\"");
                return None;
            }
        },
    };
    let via = match r.via.get_ref().parse::<IpAddr>() {
        Ok(a) if my_ifs.iter().any(|e| e.addresses.iter().any(|c| c.addr == a)) => {
            v.err(r.via.span(), format!("gateway {a} is host `{name}`'s own address"), "route via a neighbour's address on the shared link (or its host name), not the host itself");
            Via::Address(a)
        }
        Ok(a) => {
            let on_link = my_ifs.iter().flat_map(|e| e.addresses.iter()).any(|c| c.same_subnet(&Cidr { addr: a, prefix: c.prefix }));
            let allocated = my_ifs.iter().any(|e| !e.addresses.iter().any(|c| c.addr.is_ipv4()));
            if !(on_link || allocated && a.is_ipv4()) {
                v.err(r.via.span(), format!("gateway {a} is not on any subnet of host `{name}`"), "use an address on one of the host's links, or the gateway's host name");
            }
            Via::Address(a)
        }
        Err(_) => {
            let gw = r.via.get_ref();
            let shares = segments.iter().any(|s| s.members.iter().any(|m| &m.host == gw) && s.members.iter().any(|m| m.host == name));
            if gw == name {
                v.err(r.via.span(), format!("host `{name}` routes via itself"), "route via a neighbour: a host on one of this host's links or switches");
            } else if !hosts_known.contains(gw) {
                v.err(r.via.span(), format!("`{gw}` is neither an address nor a host"), format!("use an address or one of: {known}"));
            } else if !shares {
                v.err(r.via.span(), format!("host `{gw}` shares no link or switch with `{name}`"), "route via a neighbour: a host on one of this host's links or switches");
            }
            Via::Host(gw.clone())
        }
    };
    let v6 = v6_hint.unwrap_or(matches!(via, Via::Address(IpAddr::V6(_))));
    Some(Route { to, v6, via })
}

/// A link's `tunnel`: a known kind, with the `mtu` it carries (which must leave room for
/// the underlay's overhead below the largest MTU).
fn tunnel(v: &mut Validator, l: &RawLink, seg_mtu: Option<u32>) -> Option<super::Tunnel> {
    let t = l.tunnel.as_ref()?;
    if !super::Tunnel::KINDS.contains(&t.get_ref().as_str()) {
        v.err(t.span(), format!("tunnel `{}` is not a kind of tunnel drill makes", t.get_ref()), format!("use one of: {}", super::Tunnel::KINDS.join(", ")));
        return None;
    }
    let Some(mtu) = seg_mtu else {
        v.err(t.span(), "a tunnel link needs the `mtu` it carries", "add mtu = 1280 (say) to this [[links]] table: the underlay is made that much plus the tunnel's overhead");
        return None;
    };
    if mtu < 576 || mtu + super::Tunnel::OVERHEAD > 65535 {
        v.err(t.span(), format!("a tunnel carrying {mtu} bytes cannot be made"), format!("give the tunnel an mtu from 576 to {}", 65535 - super::Tunnel::OVERHEAD));
        return None;
    }
    Some(super::Tunnel { mtu })
}
