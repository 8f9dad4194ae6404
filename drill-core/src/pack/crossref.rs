//! Cross-references the scenario reader does not see: names inside services' configs
//! and ports that checks and clients expect a service on.
//!
//! `scenario::parse` already checks every host a fault, check, step, route, link or file
//! names, every interface a fault names (`has_interface`), every service a
//! `service-config` fault patches and every loadgen an `http-slo` check follows. Here, on
//! the healthy drill (faults are what break it):
//! - a loadgen's `target` and a proxy's `upstream` name a declared host (or an address),
//!   and a service on that host listens on that port;
//! - an `http-slo` check's `target` and a `tcp-state-dwell` check's own `port` have a
//!   service listening there; a `peer_port` is some service's port;
//! - no two `[[files]]` entries place a file at one path of one host, and none under the
//!   kernel's and the devices' trees (/proc, /sys, /dev), which are not files to place.

use std::net::IpAddr;

use super::spans::Spans;
use crate::scenario::{Check, Scenario};
use crate::source::SourceError;
use crate::workload::Workload;

/// The port a workload listens on, if it serves.
fn listens_on(w: &Workload, port: u16) -> bool {
    w.listen_ports().contains(&port)
}

/// Every cross-reference problem of scenario `s`.
pub fn crossref(file: &str, text: &str, s: &Scenario) -> Vec<SourceError> {
    let sp = Spans::new(text);
    let mut out = Vec::new();
    let listens = |host: Option<&str>, port: u16| s.services.iter().any(|svc| host.is_none_or(|h| svc.host == h) && listens_on(&svc.workload, port));
    let hosts: Vec<&str> = s.hosts.iter().map(|h| h.name.as_str()).collect();
    for (i, svc) in s.services.iter().enumerate() {
        let (key, target) = match &svc.workload {
            Workload::Loadgen(c) => ("target", &c.target),
            Workload::Proxy(c) => ("upstream", &c.upstream),
            Workload::Httpd(_) | Workload::Nginx(_) | Workload::Worker(_) | Workload::Overlay(_) => continue,
            Workload::Dnsmasq(c) => {
                for h in c.named_hosts().iter().filter(|h| !hosts.contains(&h.as_str())) {
                    let span = sp.service_config(i, "records");
                    out.push(SourceError::at(
                        file,
                        text,
                        span,
                        format!("service `{}`: `{h}` is neither an address nor a host of the scenario", svc.name),
                        format!("in records and upstreams, write an address or one of: {}", hosts.join(", ")),
                    ));
                }
                continue;
            }
            Workload::KubeProxy(c) => {
                if let Err(e) = c.parsed() {
                    out.push(SourceError::at(
                        file,
                        text,
                        sp.service_config(i, "endpoints"),
                        format!("service `{}`: {e}", svc.name),
                        "write cluster_ip as an IPv4 address, each endpoint as \"10.77.0.11:8080\", protocol tcp or udp",
                    ));
                }
                continue;
            }
        };
        let span = sp.service_config(i, key);
        let mut err = |msg: String, help: String| out.push(SourceError::at(file, text, span.clone(), msg, help));
        let Some((h, p)) = target.rsplit_once(':') else {
            err(format!("service `{}`: {key} `{target}` is not HOST:PORT", svc.name), "write it as e.g. \"api:8080\"".into());
            continue;
        };
        let port = p.parse::<u16>().ok().filter(|p| *p > 0);
        // An address, or a DNS name (host names have no dots): the host's resolver finds it.
        if h.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() || h.contains('.') {
            continue;
        }
        if !hosts.contains(&h) {
            err(format!("service `{}`: {key} names host `{h}`, which the scenario does not declare", svc.name), format!("use one of: {}", hosts.join(", ")));
        } else if let Some(port) = port
            && !listens(Some(h), port)
        {
            err(format!("service `{}`: {key} {target}, but no service on host `{h}` listens on port {port}", svc.name), "point it at a port a service of that host listens on (its `listen`)".into());
        } else if port.is_none() {
            err(format!("service `{}`: port `{p}` of {key} is not a port", svc.name), "use a port between 1 and 65535".into());
        }
    }
    files(file, text, &sp, s, &mut out);
    check_ports(file, text, &sp, s, &mut out);
    out
}

/// Every check that connects to a port names one a service of the scenario listens on.
fn check_ports(file: &str, text: &str, sp: &Spans, s: &Scenario, out: &mut Vec<SourceError>) {
    let listens = |host: Option<&str>, port: u16| s.services.iter().any(|svc| host.is_none_or(|h| svc.host == h) && listens_on(&svc.workload, port));
    for (i, c) in s.checks.iter().enumerate() {
        let (key, host, port) = match c {
            Check::HttpSlo { port, resolve: true, .. } => ("target", None, *port),
            // An address (a virtual IP) is reached through whatever the drill routes it to.
            Check::HttpSlo { target_host, .. } if target_host.parse::<IpAddr>().is_ok() => continue,
            Check::HttpSlo { target_host, port, .. } => ("target", Some(target_host.as_str()), *port),
            Check::TcpStateDwell { host, port, peer: false, .. } => ("port", Some(host.as_str()), *port),
            Check::TcpStateDwell { port, peer: true, .. } => ("peer_port", None, *port),
            Check::Count { .. } | Check::Counter { .. } | Check::Processes { .. } | Check::FabricDrops { .. } | Check::ConntrackHeadroom { .. } => continue,
        };
        if !listens(host, port) {
            let whose = host.map_or_else(|| "no service of the scenario".to_string(), |h| format!("no service on host `{h}`"));
            out.push(SourceError::at(
                file,
                text,
                sp.item_key("checks", i, key),
                format!("check `{}`: {whose} listens on port {port}", c.name()),
                "declare the service in [[services]] with that port in its `listen` (the check judges the healthy drill too)",
            ));
        }
    }
}

/// Trees of a host's root where a pack may not place files.
const NOT_FILES: &[&str] = &["/proc", "/sys", "/dev"];

fn files(file: &str, text: &str, sp: &Spans, s: &Scenario, out: &mut Vec<SourceError>) {
    for (i, f) in s.files.iter().enumerate() {
        let span = sp.item_key("files", i, "path");
        if let Some(tree) = NOT_FILES.iter().find(|t| f.path == **t || f.path.starts_with(&format!("{t}/"))) {
            out.push(SourceError::at(
                file,
                text,
                span,
                format!("file {} on host `{}` is under {tree}", f.path, f.host),
                "place files in the host's own tree (/etc, /srv, /var, /opt ...); /proc, /sys and /dev are the kernel's",
            ));
        } else if s.files[..i].iter().any(|g| g.host == f.host && g.path == f.path) {
            out.push(SourceError::at(file, text, span, format!("two [[files]] entries place {} on host `{}`", f.path, f.host), "keep one of them"));
        }
    }
}
