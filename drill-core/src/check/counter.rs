//! `counter`: one of the kernel's own MIB counters of a host's network namespace
//! (`/proc/net/snmp`, `/proc/net/netstat`, `/proc/net/snmp6`, as `nstat` shows them)
//! moved at most `max` (and at least `min`) during the window. E.g. listen-queue
//! overflows (`TcpExt:ListenOverflows`), UDP datagrams sent (`Udp:OutDatagrams`: DNS
//! queries of a client), ICMP errors received.

use super::{Check, Env, Kind, shape};
use crate::schema::{Entry, Key, Ty, key};

/// The counter groups of the three files (snmp6's `Ip6InReceives` is `Ip6:InReceives`).
pub const GROUPS: &[&str] = &["Ip", "Icmp", "IcmpMsg", "Tcp", "Udp", "UdpLite", "TcpExt", "IpExt", "MPTcpExt", "TcpExtended", "Ip6", "Icmp6", "Udp6", "UdpLite6"];

const KEYS: &[Key] = &[
    key("host", Ty::Str, "\"api\"", "the host whose counter is read (its network namespace)"),
    key("counter", Ty::Str, "\"TcpExt:ListenOverflows\"", "GROUP:FIELD of /proc/net/snmp, netstat or snmp6 (as `nstat -az` names it, with a colon)"),
    key("max", Ty::Int, "0", "largest increase tolerated during the window (at least 0; default 0)").from(0.0, f64::INFINITY, "events"),
    key("min", Ty::Int, "1", "smallest increase required during the window (proof the counted thing happened; default none)").from(1.0, f64::INFINITY, "events"),
];

pub const KIND: Kind = Kind { shape: shape("counter", KEYS), build };

/// Splits `GROUP:FIELD`; the error says what is wrong.
pub fn split(counter: &str) -> Result<(&str, &str), String> {
    let Some((g, f)) = counter.split_once(':') else {
        return Err(format!("`{counter}` is not GROUP:FIELD"));
    };
    if !GROUPS.contains(&g) {
        return Err(format!("`{g}` is not a counter group of /proc/net/snmp, netstat or snmp6"));
    }
    if f.is_empty() || !f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{f}` is not a counter name"));
    }
    Ok((g, f))
}

fn build(e: &mut Entry, env: &Env) -> Option<Check> {
    let name = e.str("name").map(|n| n.into_inner());
    let (host, counter) = (e.str("host"), e.str("counter"));
    let (max, min) = (e.int_opt("max"), e.int_opt("min"));
    let (Some(host), Some(counter)) = (host, counter) else {
        e.need("a counter check needs `host` and `counter`", "e.g. host = \"api\", counter = \"TcpExt:ListenOverflows\"");
        return None;
    };
    let host_ok = env.hosts.check(e.cx, &host);
    if let Err(why) = split(counter.get_ref()) {
        e.err(counter.span(), why, format!("write GROUP:FIELD, e.g. \"TcpExt:ListenOverflows\" or \"Udp:OutDatagrams\" (groups: {})", GROUPS.join(", ")));
        return None;
    }
    let (true, Ok(max), Ok(min)) = (host_ok, max, min) else { return None };
    let max = max.map_or(0, i64::unsigned_abs);
    let min = min.map(i64::unsigned_abs);
    if let Some(m) = min
        && m > max
    {
        e.err(e.span.clone(), format!("min = {m} is above max = {max}: the check could never pass"), "give a min at most max");
        return None;
    }
    let bound = match min {
        Some(m) => format!("{m} to {max}"),
        None => format!("at most {max}"),
    };
    let name = name.unwrap_or_else(|| format!("{} moves {bound} on {}", counter.get_ref(), host.get_ref()));
    Some(Check::Counter { name, host: host.into_inner(), counter: counter.into_inner(), max, min })
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_group_and_field() {
        assert_eq!(split("TcpExt:ListenOverflows"), Ok(("TcpExt", "ListenOverflows")));
        assert!(split("ListenOverflows").unwrap_err().contains("GROUP:FIELD"));
        assert!(split("Tpc:OutSegs").unwrap_err().contains("`Tpc`"));
        assert!(split("Tcp:").is_err());
    }
}
