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
    ],
);
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
pub const SWITCH: Shape =
    table("[[switches]]", &[key("name", Ty::Str, "\"sw\"", "the switch's name"), SUBNET, MTU, key("members", Ty::List, "[{ host = \"a\" }, { host = \"b\" }]", "the endpoints it joins")]);
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
    e.require(&["name"]);
    let name = e.str("name")?;
    Some(RawHost { name, forwarding, sysctls, routes, masquerade, dns })
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
    e.require(&["name", "members"]);
    let mut members = Vec::new();
    for (s, m) in e.tables("members") {
        members.extend(read_endpoint(&mut *e.cx, s, m));
    }
    let name = e.str("name")?;
    Some(Spanned::new(span, RawSwitch { name, subnet, mtu, members }))
}
