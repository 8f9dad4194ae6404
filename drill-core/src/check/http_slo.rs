//! `http-slo`: synthetic HTTP requests from a host succeed often (and fast) enough.

use super::{Check, Env, Kind, shape};
use crate::schema::{Entry, Key, Ty, key};
use crate::workload::Workload;

const KEYS: &[Key] = &[
    key("from", Ty::Str, "\"client\"", "the host the requests are sent from"),
    key("target", Ty::Str, "\"api:8080\"", "HOST:PORT (or IPV4:PORT) the requests go to"),
    key("path", Ty::Str, "\"/\"", "the request path (default /)"),
    key("min_success_ratio", Ty::Num, "0.95", "share of requests that must succeed (above 0, at most 1; default 0.95)").above(0.0, 1.0, ""),
    key("max_latency_ms", Ty::Num, "200", "bound on the p95 latency of successful requests, ms (above 0, at most 60000; none by default)").above(0.0, 60_000.0, "ms"),
    key("timeout_ms", Ty::Int, "1000", "timeout of one request, ms (1-60000; default 1000)").from(1.0, 60_000.0, "ms"),
    key("interval_ms", Ty::Int, "250", "time between requests, ms (10-60000; default 250)").from(10.0, 60_000.0, "ms"),
    key("tls", Ty::Bool, "true", "HTTPS verified against the drill's CA (default false)"),
    key("sni", Ty::Str, "\"shop.example\"", "the name the requests ask for: TLS server name (SNI, and the name the certificate must match) and Host header (default: the target's host)"),
    key("client", Ty::Str, "\"loadgen\"", "a loadgen service on `from` whose config the requests follow"),
    key("resolve", Ty::Bool, "true", "the target's host part is a DNS name resolved for every request through `from`'s own /etc/resolv.conf"),
];

pub const KIND: Kind = Kind { shape: shape("http-slo", KEYS), build };

fn build(e: &mut Entry, env: &Env) -> Option<Check> {
    let name = e.str("name").map(|n| n.into_inner());
    let (from, target, path, tls, client) = (e.str("from"), e.str("target"), e.str("path"), e.bool("tls"), e.str("client"));
    let sni = e.str("sni");
    if let Some(n) = &sni
        && (n.get_ref().is_empty() || !n.get_ref().chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'))
    {
        e.err(n.span(), format!("sni `{}` is not a host name", n.get_ref()), "write a DNS name, e.g. \"shop.example\"");
        return None;
    }
    let resolve = e.bool("resolve").is_some_and(|r| *r.get_ref());
    let ratio = e.num_opt("min_success_ratio");
    let latency = e.num_opt("max_latency_ms");
    let timeout = e.int_opt("timeout_ms");
    let interval = e.int_opt("interval_ms");
    let (Some(from), Some(target)) = (from, target) else {
        e.need("an http-slo check needs `from` and `target`", "see scenarios/README.md for the keys of each check kind");
        return None;
    };
    let from_ok = env.hosts.check(e.cx, &from);
    let Some((th, tp)) = target.get_ref().rsplit_once(':') else {
        e.err(target.span(), format!("target `{}` is not HOST:PORT", target.get_ref()), "write it as e.g. \"api:8080\"");
        return None;
    };
    // A host's name, an IPv4 address (a service's virtual IP, a forwarded address), or
    // with resolve = true a DNS name.
    let th_ok = if resolve { crate::resolv::is_domain(th.strip_suffix('.').unwrap_or(th)) } else { env.hosts.contains(th) || th.parse::<std::net::Ipv4Addr>().is_ok() };
    if !th_ok && resolve {
        e.err(target.span(), format!("`{th}` in target is not a domain name"), "with resolve = true, write a name the client's resolver resolves, e.g. \"api.corp.example:8080\"");
    } else if !th_ok {
        e.err(target.span(), format!("unknown host `{th}` in target"), format!("use one of: {} (an IPv4 address, or resolve = true for a DNS name)", env.hosts.known));
    }
    let port = match tp.parse::<u16>() {
        Ok(p) if p > 0 => Some(p),
        _ => {
            e.err(target.span(), format!("port `{tp}` is out of range"), "use a port between 1 and 65535");
            None
        }
    };
    let client = match client {
        Some(cl) if env.services.iter().any(|s| &s.name == cl.get_ref() && &s.host == from.get_ref() && matches!(s.workload, Workload::Loadgen(_))) => Some(cl.into_inner()),
        Some(cl) => {
            e.err(cl.span(), format!("host `{}` has no loadgen service `{}`", from.get_ref(), cl.get_ref()), "name a loadgen service declared on the check's `from` host");
            return None;
        }
        None => None,
    };
    let (true, true, Some(port), Ok(ratio), Ok(max_latency_ms), Ok(timeout), Ok(interval)) = (from_ok, th_ok, port, ratio, latency, timeout, interval) else { return None };
    let path = path.map_or_else(|| "/".to_string(), |p| p.into_inner());
    let name = name.unwrap_or_else(|| format!("HTTP {th}:{port}{path} from {} succeeds", from.get_ref()));
    Some(Check::HttpSlo {
        name,
        from: from.into_inner(),
        target_host: th.to_string(),
        port,
        path,
        min_success_ratio: ratio.unwrap_or(0.95),
        max_latency_ms,
        timeout_ms: timeout.map_or(1000, i64::unsigned_abs),
        interval_ms: interval.map_or(250, i64::unsigned_abs),
        tls: tls.is_some_and(|t| *t.get_ref()),
        sni: sni.map(|n| n.into_inner()),
        client,
        resolve,
    })
}
