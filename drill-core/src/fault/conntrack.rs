//! `conntrack-table`: a router's connection-tracking table full. The kernel's
//! `nf_conntrack_max` is machine-wide (read-only in a child network namespace), so the
//! table size is a stand-in: `ct state new ct count over N counter drop` in a table of
//! its own in the host (`inet conntrack`, commented as the table's size), with N shown
//! and set through the host's `net.netfilter.nf_conntrack_max` (a file the daemon binds
//! over it: a write retunes the rule). While the rule drops, the host's kernel log gets
//! the kernel's own `nf_conntrack: table full, dropping packet`. At apply the engine
//! fills the table with UDP flows from `fill_from` to `fill_to:fill_port` (the hours of
//! traffic before the drill: with a long UDP timeout they are all still tracked) and
//! measures that a new flow is dropped.

use super::{Env, Fault, Kind, common, shape};
use crate::schema::{Entry, Key, Ty, key};

/// Largest table size a scenario may set (the fill sends one datagram per entry).
pub const MAX_ENTRIES: u32 = 20_000;

const KEYS: &[Key] = &[
    common::HOST,
    key("max_entries", Ty::Int, "2048", "the table's size: nf_conntrack_max as the host shows it (16-20000)")
        .from(16.0, MAX_ENTRIES as f64, "entries")
        .says("max_entries = {} is out of range", "give a table size between 16 and 20000"),
    key("fill_from", Ty::Str, "\"client\"", "the host whose UDP flows fill the table at apply (one on one side of the router)"),
    key("fill_to", Ty::Str, "\"server\"", "the host the filling flows go to (across the router)"),
    key("fill_port", Ty::Int, "8125", "UDP port of the filling flows on `fill_to` (1-65535)").from(1.0, 65535.0, "").says("port {} is out of range", "use a port between 1 and 65535"),
];

pub const KIND: Kind = Kind { shape: shape("conntrack-table", KEYS), build };

fn build(e: &mut Entry, env: &Env) -> Option<Fault> {
    let host = common::host(e, env);
    let (max, from, to, port) = (e.int("max_entries"), e.str("fill_from"), e.str("fill_to"), e.int("fill_port"));
    let (Ok(Some(host)), Some(max), Some(from), Some(to), Some(port)) = (host.clone(), max, from, to, port) else {
        if host.is_ok() {
            e.need(
                "a conntrack-table fault needs `host`, `max_entries`, `fill_from`, `fill_to` and `fill_port`",
                "e.g. host = \"router\", max_entries = 2048, fill_from = \"client\", fill_to = \"server\", fill_port = 8125",
            );
        }
        return None;
    };
    if !(env.hosts.check(e.cx, &from) & env.hosts.check(e.cx, &to)) {
        return None;
    }
    for h in [&from, &to] {
        if h.get_ref() == host.get_ref() {
            e.err(h.span(), format!("`{}` is the table's own host", h.get_ref()), "the filling flows cross the router: name hosts on either side of it");
            return None;
        }
    }
    if from.get_ref() == to.get_ref() {
        e.err(to.span(), "`fill_from` and `fill_to` are the same host", "name hosts on either side of the router");
        return None;
    }
    // In range: the keys' bounds.
    let (max_entries, fill_port) = (u32::try_from(*max.get_ref()).ok()?, u16::try_from(*port.get_ref()).ok()?);
    Some(Fault::ConntrackTable { host: host.into_inner(), max_entries, fill_from: from.into_inner(), fill_to: to.into_inner(), fill_port })
}
