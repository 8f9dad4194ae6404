//! The counting checks: `drops`, `retransmits`, `resets`, `oom-kills` and `enospc`. At most `max`
//! events of a kind on a host (and port) during the window.

use super::{Check, Counted, Env, Kind, shape};
use crate::model;
use crate::schema::{Entry, Key, Ty, key};

const HOST: Key = key("host", Ty::Str, "\"api\"", "the host whose events are counted");
const PORT: Key = key("port", Ty::Int, "8080", "only events on this port of the host (1-65535)");
const MAX: Key = key("max", Ty::Int, "0", "most events tolerated (at least 0; default 0)").from(0.0, f64::INFINITY, "events");

pub const DROPS: Kind = Kind {
    shape: shape("drops", &[HOST, key("reason", Ty::Str, "\"NETFILTER_DROP\"", "only drops with this kernel drop reason (without SKB_DROP_REASON_)"), MAX]),
    build: |e, env| build(e, env, "drops"),
};
pub const RETRANSMITS: Kind = Kind {
    shape: shape("retransmits", &[HOST, PORT, MAX, key("max_ratio", Ty::Num, "0.01", "instead of max: retransmissions per segment sent (0-1), whole host only").from(0.0, 1.0, "")]),
    build: |e, env| build(e, env, "retransmits"),
};
pub const RESETS: Kind = Kind { shape: shape("resets", &[HOST, PORT, key("direction", Ty::Str, "\"sent\"", "sent (default) or received"), MAX]), build: |e, env| build(e, env, "resets") };
pub const OOM_KILLS: Kind = Kind { shape: shape("oom-kills", &[HOST, MAX]), build: |e, env| build(e, env, "oom-kills") };
/// System calls of the host's processes that returned ENOSPC (a full disk).
pub const ENOSPC: Kind = Kind { shape: shape("enospc", &[HOST, MAX]), build: |e, env| build(e, env, "enospc") };

fn build(e: &mut Entry, env: &Env, k: &str) -> Option<Check> {
    let name = e.str("name").map(|n| n.into_inner());
    let max = e.int_opt("max");
    let max_ratio = if k == "retransmits" { e.num_opt("max_ratio") } else { Ok(None) };
    let Some(host) = e.str("host") else {
        e.need(format!("a {k} check needs `host`"), "see scenarios/README.md for the keys of each check kind");
        return None;
    };
    if !env.hosts.check(e.cx, &host) {
        return None;
    }
    let port = match matches!(k, "retransmits" | "resets").then(|| e.int("port")).flatten() {
        Some(p) => Some(model::port(e.cx, &p)?),
        None => None,
    };
    let counted = counted(e, k)?;
    let (Ok(max), Ok(max_ratio)) = (max, max_ratio) else { return None };
    if max_ratio.is_some() && port.is_some() {
        e.err(e.span.clone(), "max_ratio applies to a retransmits check over a whole host", "remove `port`, or use `max` (a count)");
        return None;
    }
    let max = max.map_or(0, i64::unsigned_abs);
    let on = port.map_or_else(|| host.get_ref().clone(), |p| format!("{}:{p}", host.get_ref()));
    let bound = max_ratio.map_or_else(|| format!("at most {max}"), |r| format!("at most {}% of segments as", r * 100.0));
    let name = name.unwrap_or_else(|| format!("{bound} {} on {on}", counted.describe()));
    Some(Check::Count { name, host: host.into_inner(), port, counted, max, max_ratio })
}

/// What kind `k` counts, from its own keys; None when reported.
fn counted(e: &mut Entry, k: &str) -> Option<Counted> {
    Some(match k {
        "drops" => Counted::Drops { reason: e.str("reason").map(|r| r.get_ref().trim_start_matches("SKB_DROP_REASON_").to_ascii_uppercase()) },
        "retransmits" => Counted::Retransmits,
        "oom-kills" => Counted::OomKills,
        "enospc" => Counted::Enospc,
        _ => match e.str("direction") {
            None => Counted::ResetsSent,
            Some(d) if d.get_ref() == "sent" => Counted::ResetsSent,
            Some(d) if d.get_ref() == "received" => Counted::ResetsReceived,
            Some(d) => {
                e.err(d.span(), format!("direction `{}` is not `sent` or `received`", d.get_ref()), "resets are counted as sent or received by the host");
                return None;
            }
        },
    })
}
