//! The nftables filter faults: `nft-drop`, `nft-reject`, `nft-loss`, `nft-limit` and
//! `nft-conn-limit`. One rule in the host's own table on a hook; the kinds share their
//! match keys and differ in the action (and the keys of the action).

use super::{Env, Fault, Kind, NftAction, NftHook, NftRule, common, parse_packet_rate, shape};
use crate::schema::{Entry, Key, Ty, key};

const TO: Key = key("to", Ty::Str, "\"client\"", "only packets to this host (`ip daddr`), for forward/output rules");
const HOOK: Key = key("hook", Ty::Str, "\"input\"", "input (default: packets for the host), forward (packets it routes) or output (packets it sends)");

/// Keys of every nft filter kind, then those of one kind's action.
macro_rules! nft_keys {
    ($($extra:expr),*) => {
        &[common::HOST, common::PROTO, common::DPORT, common::FROM, TO, HOOK, $($extra),*]
    };
}

pub const DROP: Kind =
    Kind { shape: shape("nft-drop", nft_keys!(key("icmp", Ty::Str, "\"frag-needed\"", "only ICMP fragmentation-needed messages (the PMTU black hole)"))), build: |e, env| build(e, env, "nft-drop") };
pub const REJECT: Kind = Kind {
    shape: shape("nft-reject", nft_keys!(key("with", Ty::Str, "\"tcp-reset\"", "tcp-reset (default for tcp), port-unreachable or admin-prohibited"))),
    build: |e, env| build(e, env, "nft-reject"),
};
pub const LOSS: Kind = Kind {
    shape: shape(
        "nft-loss",
        nft_keys!(key("percent", Ty::Num, "5", "random loss in percent (0.1-100)").from(0.1, 100.0, "%").says("loss of {}% is impossible", "give a percentage from 0.1 to 100, e.g. 5")),
    ),
    build: |e, env| build(e, env, "nft-loss"),
};
pub const LIMIT: Kind = Kind {
    shape: shape(
        "nft-limit",
        nft_keys!(
            key("rate", Ty::Str, "\"50/second\"", "packets per second or minute above which packets are dropped"),
            key("burst", Ty::Int, "10", "packets let through above the rate (at least 1; default 5)")
                .from(1.0, u32::MAX as f64, "packets")
                .says("burst {} is impossible", "give a number of packets of at least 1")
        ),
    ),
    build: |e, env| build(e, env, "nft-limit"),
};
pub const CONN_LIMIT: Kind = Kind {
    shape: shape(
        "nft-conn-limit",
        nft_keys!(
            key("max_connections", Ty::Int, "20", "connections beyond this are dropped (1-100000); needs proto = \"tcp\" and dport")
                .from(1.0, 100_000.0, "")
                .says("max_connections = {} is impossible", "give a number between 1 and 100000")
        ),
    ),
    build: |e, env| build(e, env, "nft-conn-limit"),
};

fn build(e: &mut Entry, env: &Env, k: &str) -> Option<Fault> {
    let host = match common::host(e, env) {
        Ok(Some(h)) => h,
        Ok(None) => {
            e.need(format!("a {k} fault needs `host = \"NAME\"`"), "name the host whose input the rule filters");
            return None;
        }
        Err(()) => return None,
    };
    let (proto, dport) = common::proto_and_port(e).ok()?;
    let from = common::source(e, env).ok()?;
    let hook = match e.str("hook") {
        None => NftHook::Input,
        Some(h) => match h.get_ref().as_str() {
            "input" => NftHook::Input,
            "forward" => NftHook::Forward,
            "output" => NftHook::Output,
            other => {
                e.err(h.span(), format!("hook `{other}` is not supported"), "use input (packets for the host), forward (packets it routes) or output (packets it sends)");
                return None;
            }
        },
    };
    let to = match e.str("to") {
        Some(t) if env.hosts.contains(t.get_ref()) => Some(t.into_inner()),
        Some(t) => {
            e.err(t.span(), format!("`to = \"{}\"` is not a host", t.get_ref()), format!("name the destination host ({})", env.hosts.known));
            return None;
        }
        None => None,
    };
    let frag_needed = k == "nft-drop" && frag_needed(e, proto.as_deref())?;
    let action = action(e, k, proto.as_deref(), dport)?;
    if frag_needed && (dport.is_some() || from.is_some()) {
        e.err(e.span.clone(), "`icmp = \"frag-needed\"` matches every such ICMP message", "remove `dport`/`from` from this rule");
        return None;
    }
    let proto = if frag_needed { Some("icmp".into()) } else { proto };
    Some(Fault::Nft { host: host.into_inner(), rule: NftRule { proto, dport, from, to, frag_needed, hook, action } })
}

/// nft-drop's `icmp = "frag-needed"`; None when reported.
fn frag_needed(e: &mut Entry, proto: Option<&str>) -> Option<bool> {
    match e.str("icmp") {
        Some(i) if i.get_ref() == "frag-needed" && proto.is_none_or(|p| p == "icmp") => Some(true),
        Some(i) => {
            e.err(i.span(), format!("`icmp = \"{}\"` is not supported here", i.get_ref()), "only `icmp = \"frag-needed\"` on an nft-drop fault (without another proto)");
            None
        }
        None => Some(false),
    }
}

/// The action of kind `k` from its own keys; None when reported.
fn action(e: &mut Entry, k: &str, proto: Option<&str>, dport: Option<u16>) -> Option<NftAction> {
    match k {
        "nft-drop" => Some(NftAction::Drop),
        "nft-reject" => match e.str("with") {
            None if proto == Some("tcp") => Some(NftAction::RejectTcpReset),
            Some(w) if w.get_ref() == "tcp-reset" && proto == Some("tcp") => Some(NftAction::RejectTcpReset),
            None => Some(NftAction::RejectPortUnreachable),
            Some(w) if w.get_ref() == "port-unreachable" => Some(NftAction::RejectPortUnreachable),
            Some(w) if w.get_ref() == "admin-prohibited" => Some(NftAction::RejectAdminProhibited),
            Some(w) => {
                e.err(w.span(), format!("`with = \"{}\"` is not supported here", w.get_ref()), "use tcp-reset (tcp only), port-unreachable or admin-prohibited");
                None
            }
        },
        "nft-loss" => match e.num("percent") {
            Some(p) => Some(NftAction::Loss { permille: (p.get_ref() * 10.0).round() as u16 }),
            None => {
                e.need("an nft-loss fault needs `percent`", "e.g. percent = 5 for 5% random loss");
                None
            }
        },
        "nft-limit" => limit(e),
        _ => conn_limit(e, proto, dport),
    }
}

fn limit(e: &mut Entry) -> Option<NftAction> {
    let Some(rate) = e.str("rate") else {
        e.need("an nft-limit fault needs `rate`", "e.g. rate = \"50/second\" (packets)");
        return None;
    };
    let Some(per_second) = parse_packet_rate(rate.get_ref()) else {
        e.err(rate.span(), format!("rate `{}` is not a packet rate", rate.get_ref()), "write N/second or N/minute, e.g. \"50/second\"");
        return None;
    };
    // In 1..=u32::MAX: the key's bounds.
    let burst = e.int_opt("burst").ok()?.map_or(Some(5), |b| u32::try_from(b).ok())?;
    Some(NftAction::Limit { per_second, burst })
}

fn conn_limit(e: &mut Entry, proto: Option<&str>, dport: Option<u16>) -> Option<NftAction> {
    if proto != Some("tcp") || dport.is_none() {
        e.need("an nft-conn-limit fault needs proto = \"tcp\" and `dport`", "it counts the connections to one TCP port");
        return None;
    }
    match e.int("max_connections") {
        // In 1..=100000: the key's bounds.
        Some(m) => u32::try_from(*m.get_ref()).ok().map(|max| NftAction::ConnLimit { max }),
        None => {
            e.need("an nft-conn-limit fault needs `max_connections`", "e.g. max_connections = 20");
            None
        }
    }
}
