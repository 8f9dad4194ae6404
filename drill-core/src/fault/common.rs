//! Keys and checks several fault kinds share.

use std::ops::Range;

use serde_spanned::Spanned;

use super::{Env, Fault, NftSource};
use crate::model::{self, Cidr};
use crate::schema::{Entry, Key, Reported, Ty, key};

pub const HOST: Key = key("host", Ty::Str, "\"api\"", "the host the fault is on");
pub const INTERFACE: Key = key("interface", Ty::Str, "\"eth0\"", "an interface of the host");
pub const PROTO: Key = key("proto", Ty::Str, "\"tcp\"", "tcp, udp or icmp; every protocol when left out");
pub const DPORT: Key = key("dport", Ty::Int, "8080", "destination port (1-65535), with proto tcp or udp").from(1.0, 65535.0, "").says("port {} is out of range", "use a port between 1 and 65535");
pub const FROM: Key = key("from", Ty::Str, "\"client\"", "only packets from this host or IPv4 prefix");

/// `host`, checked against the declared hosts; None when missing (not reported) or
/// unknown (reported).
pub fn host(e: &mut Entry, env: &Env) -> Result<Option<Spanned<String>>, ()> {
    match e.str("host") {
        Some(h) if env.hosts.check(e.cx, &h) => Ok(Some(h)),
        Some(_) => Err(()),
        None => Ok(None),
    }
}

/// The one service named `svc` (on `host` when given); reported when there is none or
/// several. `what` says what the fault wants it for ("to patch", "to hold the file").
pub fn service(e: &mut Entry, env: &Env, svc: &Spanned<String>, host: Option<&Spanned<String>>, what: &str) -> Option<crate::model::Service> {
    let matches: Vec<_> = env.services.iter().filter(|s| &s.name == svc.get_ref() && host.is_none_or(|h| h.get_ref() == &s.host)).collect();
    match matches.as_slice() {
        [one] => Some((*one).clone()),
        [] => {
            e.err(svc.span(), format!("no service `{}` {what}", svc.get_ref()), "name a service declared in [[services]]");
            None
        }
        _ => {
            e.err(svc.span(), format!("service `{}` exists on several hosts", svc.get_ref()), "add `host = \"NAME\"` to say which");
            None
        }
    }
}

/// A port (1-65535); reported when out of range.
pub fn port(e: &mut Entry, p: &Spanned<i64>) -> Option<u16> {
    model::port(e.cx, p)
}

/// Whether `host` has an interface named `iface`; reports the error (with the host's
/// interfaces) when not.
pub fn has_interface(e: &mut Entry, env: &Env, host: &Spanned<String>, iface: &Spanned<String>) -> bool {
    let ifs: Vec<&str> = env.segments.iter().flat_map(|sg| sg.members.iter()).filter(|m| &m.host == host.get_ref()).map(|m| m.ifname.as_str()).collect();
    if ifs.contains(&iface.get_ref().as_str()) {
        return true;
    }
    e.err(iface.span(), format!("host `{}` has no interface `{}`", host.get_ref(), iface.get_ref()), format!("its interfaces are: {}", ifs.join(", ")));
    false
}

/// Whether an earlier tc-rate or delay fault already owns `host:iface`'s root qdisc
/// (both replace it); reports it.
pub fn root_qdisc_taken(e: &mut Entry, env: &Env, host: &Spanned<String>, iface: &Spanned<String>, span: Range<usize>, help: &str) -> bool {
    let other = env.earlier.iter().find(|x| matches!(x, Fault::Delay { host: h, interface: i, .. } | Fault::TcRate { host: h, interface: i, .. } if h == host.get_ref() && i == iface.get_ref()));
    if let Some(other) = other {
        e.err(span, format!("{}/{} already has a fault on its root qdisc ({})", host.get_ref(), iface.get_ref(), other.describe()), help);
    }
    other.is_some()
}

/// `proto` (tcp, udp, icmp or none) and `dport` (only with tcp or udp); Err when reported.
pub fn proto_and_port(e: &mut Entry) -> Result<(Option<String>, Option<u16>), ()> {
    let proto = match e.str("proto") {
        Some(p) if ["tcp", "udp", "icmp"].contains(&p.get_ref().as_str()) => Some(p.get_ref().clone()),
        Some(p) => {
            e.err(p.span(), format!("protocol `{}` is not supported", p.get_ref()), "use tcp, udp or icmp (or leave it out to match every protocol)");
            return Err(());
        }
        None => None,
    };
    let dport = match e.int("dport") {
        Some(d) => match port(e, &d) {
            Some(p) if matches!(proto.as_deref(), Some("tcp" | "udp")) => Some(p),
            Some(_) => {
                e.err(d.span(), "`dport` needs `proto = \"tcp\"` or `\"udp\"`", "say which protocol's port it is");
                return Err(());
            }
            None => return Err(()),
        },
        None => None,
    };
    Ok((proto, dport))
}

/// `from = HOST` or `from = "PREFIX"`; Err when reported.
pub fn source(e: &mut Entry, env: &Env) -> Result<Option<NftSource>, ()> {
    match e.str("from") {
        Some(src) if env.hosts.contains(src.get_ref()) => Ok(Some(NftSource::Host(src.get_ref().clone()))),
        Some(src) => match src.get_ref().parse::<Cidr>() {
            Ok(c) if c.addr.is_ipv4() => Ok(Some(NftSource::Prefix(c))),
            _ => {
                e.err(src.span(), format!("`{}` is neither a host nor an IPv4 prefix", src.get_ref()), format!("use a host ({}) or a prefix such as \"10.77.0.0/24\"", env.hosts.known));
                Err(())
            }
        },
        None => Ok(None),
    }
}

/// `percent` (its kind declares the bounds) as a fraction, `default` when absent; Err
/// when reported.
pub fn loss_fraction(e: &mut Entry, default: f64) -> Result<f64, Reported> {
    Ok(e.num_opt("percent")?.map_or(default, |p| p / 100.0))
}
