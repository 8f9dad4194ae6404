//! `resolv-conf`: a host's /etc/resolv.conf with other values than its `dns` key says
//! (a wrong nameserver, ndots:5, a search list). Written into the host's /etc before it
//! starts, so every lookup in it (dig, host, getent, curl, the services) reads it;
//! measured by reading the file back from the running host.

use super::{Env, Fault, Kind, common, shape};
use crate::schema::{Entry, Key, Ty, key};

const KEYS: &[Key] = &[
    common::HOST,
    key("nameservers", Ty::List, "[\"api\"]", "replaces the host's nameservers (host names or addresses)"),
    key("search", Ty::List, "[\"corp.example\"]", "replaces the host's search list ([] removes it)"),
    key("ndots", Ty::Int, "5", "replaces ndots (0-15)"),
    key("timeout", Ty::Int, "5", "replaces the per-query timeout, seconds (1-30)"),
    key("attempts", Ty::Int, "2", "replaces the attempts per nameserver (1-5)"),
];

pub const KIND: Kind = Kind { shape: shape("resolv-conf", KEYS), build };

fn build(e: &mut Entry, env: &Env) -> Option<Fault> {
    let host = common::host(e, env);
    let Ok(Some(host)) = host else {
        if host.is_ok() {
            e.need("a resolv-conf fault needs `host`", "e.g. host = \"client\", ndots = 5");
        }
        return None;
    };
    let base = env.topo.iter().find(|h| &h.name == host.get_ref()).and_then(|h| h.dns.clone());
    let Some(mut dns) = base else {
        e.err(host.span(), format!("host `{}` has no `dns` key to change", host.get_ref()), "give the host its healthy resolver first: [[hosts]] dns = { nameservers = [\"dns\"] }");
        return None;
    };
    let mut changed = false;
    if e.has("nameservers") {
        dns.nameservers = e.strs("nameservers").into_iter().map(|s| s.into_inner()).collect();
        changed = true;
    }
    if e.has("search") {
        dns.search = e.strs("search").into_iter().map(|s| s.into_inner()).collect();
        changed = true;
    }
    for k in ["ndots", "timeout", "attempts"] {
        let Ok(Some(v)) = e.int_opt(k) else { continue };
        let v = u32::try_from(v).unwrap_or(u32::MAX);
        match k {
            "ndots" => dns.ndots = Some(v),
            "timeout" => dns.timeout = Some(v),
            _ => dns.attempts = Some(v),
        }
        changed = true;
    }
    if !changed {
        e.need("a resolv-conf fault changes nothing", "set at least one of nameservers, search, ndots, timeout, attempts");
        return None;
    }
    if let Some((why, help)) = dns.problem(&|n| env.hosts.contains(n)) {
        e.need(format!("resolv-conf on `{}`: {why}", host.get_ref()), help);
        return None;
    }
    Some(Fault::ResolvConf { host: host.into_inner(), dns })
}

#[cfg(test)]
mod tests {
    use crate::scenario::tests_support::fault_err;

    #[test]
    fn needs_a_host_with_dns_and_a_change() {
        let e = fault_err("kind = \"resolv-conf\"\nhost = \"client\"\nndots = 5");
        assert!(e.contains("has no `dns` key"), "{e}");
    }
}
