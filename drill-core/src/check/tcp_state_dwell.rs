//! `tcp-state-dwell`: no socket stays in a TCP state longer than a bound, and enough
//! sockets went through it (proof of load).

use super::{Check, Env, Kind, shape};
use crate::model::{self, TcpState};
use crate::schema::{Entry, Key, Ty, key};

const KEYS: &[Key] = &[
    key("host", Ty::Str, "\"api\"", "the host whose sockets are watched"),
    key("port", Ty::Int, "8080", "the host's own port (1-65535); or give peer_port"),
    key("peer_port", Ty::Int, "8080", "the remote port (1-65535), for the host's client sockets"),
    key("state", Ty::Str, "\"CLOSE_WAIT\"", "the TCP state, as `ss` names it"),
    key("max_secs", Ty::Num, "2.0", "longest tolerated stay in the state, seconds (> 0, shorter than the window)").above(0.0, f64::INFINITY, "seconds"),
    key("min_connections", Ty::Int, "5", "sockets that must go through the state (at least 1; default 1)").from(1.0, f64::INFINITY, "connections"),
];

pub const KIND: Kind = Kind { shape: shape("tcp-state-dwell", KEYS), build };

/// How a dwell check names its sockets: "on api:8080", or "on client to port 8080".
pub fn dwell_subject(host: &str, port: u16, peer: bool) -> String {
    if peer { format!("on {host} to port {port}") } else { format!("on {host}:{port}") }
}

fn build(e: &mut Entry, env: &Env) -> Option<Check> {
    let name = e.str("name").map(|n| n.into_inner());
    let (host, port, peer_port, state) = (e.str("host"), e.int("port"), e.int("peer_port"), e.str("state"));
    let max = e.num_opt("max_secs");
    let min_connections = e.int_opt("min_connections");
    let (port, peer) = match (port, peer_port) {
        (Some(p), None) => (Some(p), false),
        (None, Some(p)) => (Some(p), true),
        (Some(_), Some(p)) => {
            e.err(p.span(), "give `port` (the host's own) or `peer_port` (the remote one), not both", "one check watches one side of the connection");
            return None;
        }
        (None, None) => (None, false),
    };
    let (Some(host), Some(port), Some(state), Ok(Some(max))) = (host, port, state, max) else {
        if max.is_ok() {
            e.need("a tcp-state-dwell check needs `host`, `port` (or `peer_port`), `state` and `max_secs`", "see scenarios/README.md for the keys of each check kind");
        }
        return None;
    };
    let host_ok = env.hosts.check(e.cx, &host);
    let port_ok = model::port(e.cx, &port);
    let st = match state.get_ref().parse::<TcpState>() {
        Ok(s) => Some(s),
        Err(err) => {
            e.err(state.span(), err, "use the kernel's name, as `ss` shows it, e.g. CLOSE_WAIT");
            None
        }
    };
    let (true, Some(port), Some(state), Ok(min_connections)) = (host_ok, port_ok, st, min_connections) else { return None };
    let on = dwell_subject(host.get_ref(), port, peer);
    let name = name.unwrap_or_else(|| format!("no socket {on} stays in {state} longer than {max} s"));
    Some(Check::TcpStateDwell { name, host: host.into_inner(), port, peer, state, max_secs: max, min_connections: min_connections.map_or(1, |m| m.unsigned_abs()) })
}
