//! `nft-dnat`: a port forward to the wrong place, in a `prerouting` nat chain.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::{Env, Fault, Kind, common, shape};
use crate::schema::{Entry, Key, Ty, key};

const KEYS: &[Key] = &[
    common::HOST,
    key("proto", Ty::Str, "\"tcp\"", "tcp or udp"),
    key("dport", Ty::Int, "80", "the forwarded port (1-65535)").from(1.0, 65535.0, "").says("port {} is out of range", "use a port between 1 and 65535"),
    key("to", Ty::Str, "\"api:8081\"", "where it goes: HOST:PORT or IPV4:PORT"),
];

pub const KIND: Kind = Kind { shape: shape("nft-dnat", KEYS), build };

fn build(e: &mut Entry, env: &Env) -> Option<Fault> {
    let host = common::host(e, env);
    let (proto, dport, to) = (e.str("proto"), e.int("dport"), e.str("to"));
    let (Ok(Some(host)), Some(proto), Some(dport), Some(to)) = (host.clone(), proto, dport, to) else {
        if host.is_ok() {
            e.need("an nft-dnat fault needs `host`, `proto`, `dport` and `to`", "e.g. host = \"lb\", proto = \"tcp\", dport = 80, to = \"api:8081\"");
        }
        return None;
    };
    if !["tcp", "udp"].contains(&proto.get_ref().as_str()) {
        e.err(proto.span(), format!("protocol `{}` has no ports to forward", proto.get_ref()), "use tcp or udp");
        return None;
    }
    let dport = common::port(e, &dport)?;
    let target = to.get_ref();
    let parsed = match target.rsplit_once(':') {
        Some((h, p)) => match p.parse::<u16>() {
            Ok(p) if p > 0 => {
                if env.hosts.contains(h) {
                    Some((None, Some(h.to_string()), p))
                } else {
                    h.parse::<Ipv4Addr>().ok().map(|a| (Some(SocketAddr::new(IpAddr::V4(a), p)), None, p))
                }
            }
            _ => None,
        },
        None => None,
    };
    let Some((addr, to_host, port)) = parsed else {
        e.err(to.span(), format!("`to = \"{target}\"` is not HOST:PORT or IPV4:PORT"), format!("e.g. \"api:8081\" (hosts: {})", env.hosts.known));
        return None;
    };
    // A host's address is resolved when the plan is compiled.
    let to = addr.unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    Some(Fault::Dnat { host: host.into_inner(), proto: proto.into_inner(), dport, to, to_host })
}
