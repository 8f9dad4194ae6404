//! `tc-rate`: the egress of an interface shaped to a rate (tbf), or one port's traffic
//! (an htb class).

use super::{Env, Fault, Kind, common, parse_rate, shape};
use crate::schema::{Entry, Key, Ty, key};

const KEYS: &[Key] = &[
    common::HOST,
    common::INTERFACE,
    key("rate", Ty::Str, "\"10mbit\"", "egress rate, tc syntax, 8kbit-10gbit"),
    key("port", Ty::Int, "8080", "only this port's traffic (source or destination, 1-65535)").from(1.0, 65535.0, "").says("port {} is out of range", "use a port between 1 and 65535"),
];

pub const KIND: Kind = Kind { shape: shape("tc-rate", KEYS), build };

fn build(e: &mut Entry, env: &Env) -> Option<Fault> {
    let host = common::host(e, env);
    let (iface, rate, port) = (e.str("interface"), e.str("rate"), e.int("port"));
    let (Ok(Some(host)), Some(iface), Some(rate)) = (host.clone(), iface, rate) else {
        if host.is_ok() {
            e.need("a tc-rate fault needs `host`, `interface` and `rate`", "e.g. host = \"router\", interface = \"eth1\", rate = \"10mbit\"");
        }
        return None;
    };
    if !common::has_interface(e, env, &host, &iface) {
        return None;
    }
    let port = match &port {
        Some(p) => Some(common::port(e, p)?),
        None => None,
    };
    if common::root_qdisc_taken(e, env, &host, &iface, e.span.clone(), "put the rate limit on another interface of the path") {
        return None;
    }
    match parse_rate(rate.get_ref()) {
        Some(bps) if (8_000..=10_000_000_000).contains(&bps) => Some(Fault::TcRate { host: host.into_inner(), interface: iface.into_inner(), rate_bps: bps, port }),
        _ => {
            e.err(rate.span(), format!("rate `{}` is not usable", rate.get_ref()), "write it as tc does, between 8kbit and 10gbit, e.g. \"10mbit\" or \"512kbit\"");
            None
        }
    }
}
