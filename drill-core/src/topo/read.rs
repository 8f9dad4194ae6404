//! Reading the network tables of a file (`[[hosts]]`, `[[links]]`, `[[switches]]`, their
//! routes and endpoints) against their declared keys, with every error collected.

use std::collections::BTreeMap;
use std::ops::Range;

use serde_spanned::Spanned;
use toml::de::DeTable;

use super::{RawEndpoint, RawHost, RawLink, RawRoute, RawSwitch};
use crate::schema::{Entry, Key, Shape, Ty, key};
use crate::source::Collector;

const fn table(name: &'static str, keys: &'static [Key]) -> Shape {
    Shape { name, is_kind: false, keys, common: &[] }
}

const MTU: Key = key("mtu", Ty::Int, "1500", "MTU (68-65535)");
const SUBNET: Key = key("subnet", Ty::Str, "\"10.77.5.0/24\"", "IPv4 subnet the missing addresses are allocated from");

pub const HOST: Shape = table(
    "[[hosts]]",
    &[
        key("name", Ty::Str, "\"api\"", "the host's name"),
        key("forwarding", Ty::Bool, "true", "a router: IPv4 and IPv6 forwarding"),
        key("sysctls", Ty::Table, "{ \"net.ipv4.tcp_syn_retries\" = 2 }", "per-namespace net.* sysctls"),
        key("routes", Ty::List, "[{ to = \"default\", via = \"router\" }]", "routes: to, via"),
        key("masquerade", Ty::Str, "\"eth1\"", "source NAT for traffic leaving through this interface"),
        key("dns", Ty::Table, "{ nameservers = [\"dns\"], search = [\"corp.example\"], ndots = 1 }", "the host's /etc/resolv.conf: nameservers, search, ndots, timeout, attempts"),
        key("limits", Ty::Sub, "{ memory = \"64M\", pids = 128, cpus = 0.5, disk = \"32M\" }", "the host's cgroup limits and disk size"),
    ],
);
pub const LIMITS: Shape = table(
    "limits",
    &[
        key("memory", Ty::Str, "\"64M\"", "memory limit of the host's cgroup, its disk included (16M-4G; default 256M)"),
        key("pids", Ty::Int, "128", "processes and threads of the host (16-65536; default 512)").from(16.0, 65536.0, "processes"),
        key("cpus", Ty::Num, "0.5", "CPUs' worth of time (0.05-64; default 1)").from(0.05, 64.0, "CPUs"),
        key("disk", Ty::Str, "\"32M\"", "size of the host's disk, the tmpfs holding its root (4M-1G; default 64M)"),
    ],
);

/// Memory and disk ranges (bytes) of `limits`.
const MEMORY_RANGE: (u64, u64) = (16 << 20, 4 << 30);
const DISK_RANGE: (u64, u64) = (4 << 20, 1 << 30);
pub const ROUTE: Shape = table("a route", &[key("to", Ty::Str, "\"default\"", "default, default6 or a prefix"), key("via", Ty::Str, "\"router\"", "a gateway address or a neighbour host")]);
pub const LINK: Shape = table(
    "[[links]]",
    &[
        key("a", Ty::Sub, "{ host = \"client\" }", "one end (an endpoint)"),
        key("b", Ty::Sub, "{ host = \"api\" }", "the other end (an endpoint)"),
        SUBNET,
        MTU,
        key("tunnel", Ty::Str, "\"vxlan\"", "a real tunnel instead of a cable: a VXLAN whose underlay lies where no host reaches, carrying exactly `mtu` bytes"),
    ],
);
/// The largest packet a switch's fabric may be made to carry (`path_mtu`).
pub const PATH_MTU_RANGE: (u32, u32) = (576, 9000);
pub const SWITCH: Shape = table(
    "[[switches]]",
    &[
        key("name", Ty::Str, "\"sw\"", "the switch's name"),
        SUBNET,
        MTU,
        key("members", Ty::List, "[{ host = \"a\" }, { host = \"b\" }]", "the endpoints it joins"),
        key(
            "path_mtu",
            Ty::Int,
            "1400",
            "the largest packet (L3 bytes) the fabric really carries, whatever its members' interfaces say (576-9000): larger frames are dropped in the switch without a word",
        )
        .from(PATH_MTU_RANGE.0 as f64, PATH_MTU_RANGE.1 as f64, "bytes"),
    ],
);
pub const ENDPOINT: Shape = table(
    "an endpoint",
    &[
        key("host", Ty::Str, "\"api\"", "the host of this end"),
        key("address", Ty::Str, "\"10.77.0.2/24\"", "an address with its prefix"),
        key("addresses", Ty::List, "[\"10.77.0.2/24\", \"fd77::2/64\"]", "addresses with their prefix"),
        key("name", Ty::Str, "\"eth0\"", "the interface name in the host"),
        MTU,
    ],
);

/// One `[[hosts]]` table; None (reported) without a name.
pub(crate) fn read_host(cx: &mut Collector, span: Range<usize>, t: &DeTable<'_>) -> Option<RawHost> {
    let mut e = Entry::new(cx, span, t, &HOST, &[]);
    let forwarding = e.bool("forwarding").is_some_and(|b| *b.get_ref());
    let masquerade = e.str("masquerade");
    let dns = e.table("dns");
    let sysctls: BTreeMap<String, Spanned<toml::Value>> = match e.sub("sysctls") {
        Some((_, t)) => t.iter().map(|(k, v)| (k.get_ref().to_string(), Spanned::new(v.span(), crate::schema::to_value(v.get_ref())))).collect(),
        None => BTreeMap::new(),
    };
    let mut routes = Vec::new();
    for (span, r) in e.tables("routes") {
        let mut re = Entry::new(&mut *e.cx, span.clone(), r, &ROUTE, &[]);
        re.require(&["to", "via"]);
        if let (Some(to), Some(via)) = (re.str("to"), re.str("via")) {
            routes.push(Spanned::new(span, RawRoute { to, via }));
        }
    }
    let limits = match e.sub("limits") {
        Some((span, t)) => read_limits(&mut *e.cx, span, t),
        None => super::HostLimits::default(),
    };
    e.require(&["name"]);
    let name = e.str("name")?;
    Some(RawHost { name, forwarding, sysctls, routes, masquerade, dns, limits })
}

/// A host's `limits` table, every value in its range (reported otherwise).
fn read_limits(cx: &mut Collector, span: Range<usize>, t: &DeTable<'_>) -> super::HostLimits {
    let mut e = Entry::new(cx, span, t, &LIMITS, &[]);
    fn size(e: &mut Entry, name: &str, (lo, hi): (u64, u64)) -> Option<u64> {
        let v = e.str(name)?;
        match super::parse_size(v.get_ref()) {
            Some(n) if (lo..=hi).contains(&n) => Some(n),
            Some(_) => {
                e.err(
                    v.span(),
                    format!("{name} = {:?} is out of range: it must be from {}M to {}M", v.get_ref(), lo >> 20, hi >> 20),
                    format!("give {name} a size from {}M to {}M", lo >> 20, hi >> 20),
                );
                None
            }
            None => {
                e.err(v.span(), format!("{name} = {:?} is not a size", v.get_ref()), format!("write a size with its unit, e.g. {name} = \"64M\" (K, M, G: powers of 1024)"));
                None
            }
        }
    }
    let memory_bytes = size(&mut e, "memory", MEMORY_RANGE);
    let disk_bytes = size(&mut e, "disk", DISK_RANGE);
    let pids = e.int("pids").map(|p| p.into_inner().unsigned_abs());
    let cpus = e.num("cpus").map(|c| c.into_inner());
    super::HostLimits { memory_bytes, pids, cpus, disk_bytes }
}

fn read_endpoint(cx: &mut Collector, span: Range<usize>, t: &DeTable<'_>) -> Option<RawEndpoint> {
    let mut e = Entry::new(cx, span, t, &ENDPOINT, &[]);
    let (address, name, mtu) = (e.str("address"), e.str("name"), e.int("mtu"));
    let addresses = e.strs("addresses");
    e.require(&["host"]);
    Some(RawEndpoint { host: e.str("host")?, address, addresses, name, mtu })
}

/// One `[[links]]` table; None (reported) without both ends.
pub(crate) fn read_link(cx: &mut Collector, span: Range<usize>, t: &DeTable<'_>) -> Option<Spanned<RawLink>> {
    let mut e = Entry::new(cx, span.clone(), t, &LINK, &[]);
    let (subnet, mtu, tunnel) = (e.str("subnet"), e.int("mtu"), e.str("tunnel"));
    e.require(&["a", "b"]);
    let a = e.sub("a").and_then(|(s, t)| read_endpoint(&mut *e.cx, s, t));
    let b = e.sub("b").and_then(|(s, t)| read_endpoint(&mut *e.cx, s, t));
    Some(Spanned::new(span, RawLink { a: a?, b: b?, subnet, mtu, tunnel }))
}

/// One `[[switches]]` table; None (reported) without a name.
pub(crate) fn read_switch(cx: &mut Collector, span: Range<usize>, t: &DeTable<'_>) -> Option<Spanned<RawSwitch>> {
    let mut e = Entry::new(cx, span.clone(), t, &SWITCH, &[]);
    let (subnet, mtu) = (e.str("subnet"), e.int("mtu"));
    let path_mtu = e.int("path_mtu");
    e.require(&["name", "members"]);
    let mut members = Vec::new();
    for (s, m) in e.tables("members") {
        members.extend(read_endpoint(&mut *e.cx, s, m));
    }
    let name = e.str("name")?;
    Some(Spanned::new(span, RawSwitch { name, subnet, mtu, path_mtu, members }))
}
