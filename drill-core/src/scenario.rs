//! Scenario files: parsing, validation, and the validated model.
//!
//! A scenario is one TOML file: what the learner is told (alert, briefing, hints),
//! the hosts and links, the services, the fault, the checks `drill submit` runs and
//! the reference solution. Every problem is reported with file:line:column and what
//! to do; validation collects all problems instead of stopping at the first.
//! The format is documented in `scenarios/README.md`.

use std::collections::{BTreeMap, BTreeSet};

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;


use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;

pub use crate::check::{CHECK_KINDS, Check, Counted};
pub use crate::fault::{FAULT_KINDS, Fault, NftAction, NftHook, NftRule, NftSource, parse_packet_rate, parse_rate};
pub use crate::model::{Cidr, MAX_HOST_NAME, MAX_ID, Service, Solution, Step, TcpState};
use crate::model::is_name;
use crate::source::{SourceError, SourceErrors};
use crate::topo::{self, RawHost, RawLink, RawSwitch, Validator};
pub use crate::topo::{Endpoint, Host, Route, Segment, Via};
use crate::workload::{self, Workload};


// ---------------------------------------------------------------- raw file shape

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    id: Spanned<String>,
    title: String,
    #[serde(default)]
    summary: String,
    #[serde(default = "default_severity")]
    severity: String,
    alert: String,
    briefing: String,
    #[serde(default)]
    hints: Vec<String>,
    hosts: Vec<RawHost>,
    #[serde(default)]
    links: Vec<Spanned<RawLink>>,
    #[serde(default)]
    switches: Vec<Spanned<RawSwitch>>,
    #[serde(default)]
    services: Vec<Spanned<RawService>>,
    #[serde(default)]
    faults: Vec<Spanned<RawFault>>,
    #[serde(default)]
    verify: RawVerify,
    checks: Vec<Spanned<RawCheck>>,
    solution: RawSolution,
}

fn default_severity() -> String {
    "SEV3".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: Spanned<String>,
    host: Spanned<String>,
    kind: Spanned<String>,
    #[serde(default)]
    config: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    kind: Spanned<String>,
    #[serde(default)]
    service: Option<Spanned<String>>,
    #[serde(default)]
    host: Option<Spanned<String>>,
    #[serde(default)]
    set: toml::Table,
    // nft-drop / nft-reject
    #[serde(default)]
    proto: Option<Spanned<String>>,
    #[serde(default)]
    dport: Option<Spanned<i64>>,
    #[serde(default)]
    from: Option<Spanned<String>>,
    #[serde(default)]
    with: Option<Spanned<String>>,
    // nft-loss
    #[serde(default)]
    percent: Option<Spanned<f64>>,
    // sysctl
    #[serde(default)]
    key: Option<Spanned<String>>,
    #[serde(default)]
    value: Option<toml::Value>,
    // mtu
    #[serde(default)]
    interface: Option<Spanned<String>>,
    #[serde(default)]
    mtu: Option<Spanned<i64>>,
    // route-remove
    #[serde(default)]
    to: Option<Spanned<String>>,
    // tc-rate, nft-limit
    #[serde(default)]
    rate: Option<Spanned<String>>,
    // tc-rate: only this port's traffic (htb class)
    #[serde(default)]
    port: Option<Spanned<i64>>,
    // nft-*: which hook's chain (input, forward, output)
    #[serde(default)]
    hook: Option<Spanned<String>>,
    // nft-drop: an ICMP type to match ("frag-needed")
    #[serde(default)]
    icmp: Option<Spanned<String>>,
    // nft-limit
    #[serde(default)]
    burst: Option<Spanned<i64>>,
    // nft-conn-limit
    #[serde(default)]
    max_connections: Option<Spanned<i64>>,
    // delay
    #[serde(default)]
    delay_ms: Option<Spanned<f64>>,
    #[serde(default)]
    jitter_ms: Option<Spanned<f64>>,
    // ebpf-drop
    #[serde(default)]
    direction: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    window_secs: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    kind: Spanned<String>,
    #[serde(default)]
    name: Option<String>,
    // tcp-state-dwell
    host: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    peer_port: Option<Spanned<i64>>,
    state: Option<Spanned<String>>,
    max_secs: Option<Spanned<f64>>,
    min_connections: Option<u64>,
    // drops / retransmits / resets / oom-kills
    reason: Option<String>,
    direction: Option<Spanned<String>>,
    max: Option<u64>,
    max_ratio: Option<Spanned<f64>>,
    // http-slo
    from: Option<Spanned<String>>,
    target: Option<Spanned<String>>,
    path: Option<String>,
    min_success_ratio: Option<Spanned<f64>>,
    timeout_ms: Option<u64>,
    interval_ms: Option<u64>,
    max_latency_ms: Option<Spanned<f64>>,
    tls: Option<bool>,
    client: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSolution {
    summary: String,
    steps: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    host: Spanned<String>,
    run: String,
}

// ---------------------------------------------------------------- validated model

/// A validated scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    pub summary: String,
    pub severity: String,
    pub alert: String,
    pub briefing: String,
    pub hints: Vec<String>,
    pub hosts: Vec<Host>,
    /// Links and switches, in file order (links first).
    pub segments: Vec<Segment>,
    pub services: Vec<Service>,
    pub faults: Vec<Fault>,
    pub window_secs: f64,
    pub checks: Vec<Check>,
    pub solution: Solution,
}

// ---------------------------------------------------------------- validation


struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<SourceError>,
}

impl Ctx<'_> {
    fn err(&mut self, span: Range<usize>, message: impl Into<String>, help: impl Into<String>) {
        self.errors.push(SourceError::at(self.file, self.text, Some(span), message, help));
    }
}

/// Parses and validates one scenario file. `file` is only used in messages.
pub fn parse(file: &str, text: &str) -> Result<Scenario, SourceErrors> {
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let help = if e.message().contains("unknown field") {
            "check the spelling against scenarios/README.md, which lists every key"
        } else if e.message().contains("missing field") {
            "add the missing key; scenarios/README.md documents it"
        } else {
            ""
        };
        SourceErrors(vec![SourceError::at(file, text, e.span(), e.message().trim().to_string(), help)])
    })?;
    let mut cx = Ctx { file, text, errors: Vec::new() };

    // id
    let id = raw.id.get_ref().clone();
    if !is_name(&id) || id.len() > MAX_ID {
        cx.err(raw.id.span(), format!("scenario id `{id}` is not valid"), format!("use lowercase letters, digits and '-', starting with a letter, at most {MAX_ID} characters"));
    }

    // hosts
    let mut host_names = BTreeSet::new();
    for h in &raw.hosts {
        let name = h.name.get_ref();
        if !is_name(name) || name.len() > MAX_HOST_NAME {
            cx.err(h.name.span(), format!("host name `{name}` is not valid"), format!("use lowercase letters, digits and '-', starting with a letter, at most {MAX_HOST_NAME} characters"));
        }
        if !host_names.insert(name.clone()) {
            cx.err(h.name.span(), format!("host `{name}` is declared twice"), "give every host a distinct name");
        }
    }
    if raw.hosts.is_empty() {
        cx.err(0..0, "the scenario declares no hosts", "add at least one [[hosts]] table with a name");
    }
    let known_hosts = host_names.iter().cloned().collect::<Vec<_>>().join(", ");
    let check_host = |cx: &mut Ctx, h: &Spanned<String>| -> bool {
        if host_names.contains(h.get_ref()) {
            true
        } else {
            cx.err(h.span(), format!("unknown host `{}`", h.get_ref()), format!("declare it in [[hosts]] or use one of: {known_hosts}"));
            false
        }
    };

    // links, switches, routes, sysctls
    let mut tv = Validator { file, text, errors: Vec::new() };
    let (hosts, segments) = topo::validate(&mut tv, &raw.hosts, &raw.links, &raw.switches, &host_names);
    cx.errors.append(&mut tv.errors);

    // services (healthy configs first; faults patch them below)
    let mut services = Vec::new();
    let mut service_tables: BTreeMap<(String, String), (toml::Table, String)> = BTreeMap::new();
    for s in &raw.services {
        let s = s.get_ref();
        let host_ok = check_host(&mut cx, &s.host);
        let name = s.name.get_ref();
        if !is_name(name) {
            cx.err(s.name.span(), format!("service name `{name}` is not valid"), "use lowercase letters, digits and '-', starting with a letter");
        }
        let key = (s.host.get_ref().clone(), name.clone());
        if service_tables.contains_key(&key) {
            cx.err(s.name.span(), format!("service `{name}` is declared twice on host `{}`", key.0), "give each service on a host its own name");
            continue;
        }
        match Workload::from_table(s.kind.get_ref(), s.config.clone()) {
            Ok(w) => {
                if host_ok {
                    services.push(Service { name: name.clone(), host: key.0.clone(), workload: w });
                    service_tables.insert(key, (s.config.clone(), s.kind.get_ref().clone()));
                }
            }
            Err(e) => {
                let help = if workload::KINDS.contains(&s.kind.get_ref().as_str()) {
                    "fix the [services.config] table; the workload's keys are documented in scenarios/README.md".to_string()
                } else {
                    format!("use one of: {}", workload::KINDS.join(", "))
                };
                let span = if workload::KINDS.contains(&s.kind.get_ref().as_str()) { s.name.span() } else { s.kind.span() };
                cx.err(span, format!("service `{name}`: {e}"), help);
            }
        }
    }

    // faults
    let mut faults = Vec::new();
    for f in &raw.faults {
        let fspan = f.span();
        let f = f.get_ref();
        match f.kind.get_ref().as_str() {
            "service-config" => {
                let Some(svc) = &f.service else {
                    cx.err(fspan, "a service-config fault needs `service = \"NAME\"`", "name the service whose config it patches");
                    continue;
                };
                let matches: Vec<_> = services.iter().filter(|s| &s.name == svc.get_ref() && f.host.as_ref().is_none_or(|h| h.get_ref() == &s.host)).collect();
                let target = match matches.as_slice() {
                    [one] => (*one).clone(),
                    [] => {
                        cx.err(svc.span(), format!("no service `{}` to patch", svc.get_ref()), "name a service declared in [[services]]");
                        continue;
                    }
                    _ => {
                        cx.err(svc.span(), format!("service `{}` exists on several hosts", svc.get_ref()), "add `host = \"NAME\"` to say which");
                        continue;
                    }
                };
                let Some((base, kind)) = service_tables.get(&(target.host.clone(), target.name.clone())) else {
                    continue;
                };
                let mut patched = base.clone();
                workload::merge_tables(&mut patched, &f.set);
                match Workload::from_table(kind, patched) {
                    Ok(faulty) => faults.push(Fault::ServiceConfig { host: target.host, service: target.name, set: f.set.clone(), faulty }),
                    Err(e) => cx.err(fspan, format!("the patch does not fit service `{}`: {e}", target.name), "only set keys the workload's config has"),
                }
            }
            "sysctl" => {
                let (Some(host), Some(key), Some(value)) = (&f.host, &f.key, &f.value) else {
                    cx.err(fspan, "a sysctl fault needs `host`, `key` and `value`", "e.g. host = \"client\", key = \"net.ipv4.ip_local_port_range\", value = \"40000 40010\"");
                    continue;
                };
                if !check_host(&mut cx, host) {
                    continue;
                }
                let value = match value {
                    toml::Value::String(v) => v.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    other => {
                        cx.err(key.span(), format!("sysctl value {other} is not a string or a number"), "write e.g. \"40000 40010\" or 128");
                        continue;
                    }
                };
                let k = key.get_ref();
                if !k.starts_with("net.") || k.contains('/') || k.contains("..") || crate::topo::GLOBAL_SYSCTLS.contains(&k.as_str()) {
                    cx.err(key.span(), format!("sysctl `{k}` is not a per-network-namespace setting"), "only per-namespace net.* sysctls can be faults; others would change the learner's machine");
                    continue;
                }
                faults.push(Fault::Sysctl { host: host.get_ref().clone(), key: k.clone(), value });
            }
            "mtu" => {
                let (Some(host), Some(iface), Some(m)) = (&f.host, &f.interface, &f.mtu) else {
                    cx.err(fspan, "an mtu fault needs `host`, `interface` and `mtu`", "e.g. host = \"router\", interface = \"eth1\", mtu = 1280");
                    continue;
                };
                if !check_host(&mut cx, host) {
                    continue;
                }
                if !has_interface(&mut cx, &segments, host, iface) {
                    continue;
                }
                match u32::try_from(*m.get_ref()) {
                    Ok(x) if (68..=65535).contains(&x) => faults.push(Fault::Mtu { host: host.get_ref().clone(), interface: iface.get_ref().clone(), mtu: x }),
                    _ => cx.err(m.span(), format!("mtu {} is out of range", m.get_ref()), "use an MTU between 68 and 65535"),
                }
            }
            "tc-rate" => {
                let (Some(host), Some(iface), Some(rate)) = (&f.host, &f.interface, &f.rate) else {
                    cx.err(fspan, "a tc-rate fault needs `host`, `interface` and `rate`", "e.g. host = \"router\", interface = \"eth1\", rate = \"10mbit\"");
                    continue;
                };
                if !check_host(&mut cx, host) {
                    continue;
                }
                if !has_interface(&mut cx, &segments, host, iface) {
                    continue;
                }
                let port = match &f.port {
                    Some(p) => match port_in_range(&mut cx, p) {
                        Some(p) => Some(p),
                        None => continue,
                    },
                    None => None,
                };
                if root_qdisc_taken(&mut cx, &faults, host, iface, fspan.clone(), "put the rate limit on another interface of the path") {
                    continue;
                }
                match parse_rate(rate.get_ref()) {
                    Some(bps) if (8_000..=10_000_000_000).contains(&bps) => faults.push(Fault::TcRate { host: host.get_ref().clone(), interface: iface.get_ref().clone(), rate_bps: bps, port }),
                    _ => cx.err(rate.span(), format!("rate `{}` is not usable", rate.get_ref()), "write it as tc does, between 8kbit and 10gbit, e.g. \"10mbit\" or \"512kbit\""),
                }
            }
            "route-remove" => {
                let (Some(host), Some(to)) = (&f.host, &f.to) else {
                    cx.err(fspan, "a route-remove fault needs `host` and `to`", "e.g. host = \"client\", to = \"default\"");
                    continue;
                };
                if !check_host(&mut cx, host) {
                    continue;
                }
                let dst = match to.get_ref().as_str() {
                    "default" => None,
                    t => match t.parse::<Cidr>() {
                        Ok(c) => Some(c),
                        Err(e) => {
                            cx.err(to.span(), e, "write `default` or a prefix such as \"10.77.2.0/24\"");
                            continue;
                        }
                    },
                };
                let routed = hosts.iter().find(|h| &h.name == host.get_ref()).is_some_and(|h| h.routes.iter().any(|r| r.to == dst && !r.v6));
                if !routed {
                    cx.err(to.span(), format!("host `{}` has no route to {} to remove", host.get_ref(), to.get_ref()), "declare the route in the host's `routes` first");
                    continue;
                }
                faults.push(Fault::RouteRemove { host: host.get_ref().clone(), to: dst });
            }
            k @ ("nft-drop" | "nft-reject" | "nft-loss" | "nft-limit" | "nft-conn-limit") => {
                let Some(host) = &f.host else {
                    cx.err(fspan, format!("a {k} fault needs `host = \"NAME\"`"), "name the host whose input the rule filters");
                    continue;
                };
                if !check_host(&mut cx, host) {
                    continue;
                }
                let Ok((proto, dport)) = proto_and_port(&mut cx, &f.proto, &f.dport) else { continue };
                let Ok(from) = source(&mut cx, &f.from, &host_names, &known_hosts) else {
                    continue;
                };
                let hook = match f.hook.as_ref().map(|h| (h, h.get_ref().as_str())) {
                    None | Some((_, "input")) => NftHook::Input,
                    Some((_, "forward")) => NftHook::Forward,
                    Some((_, "output")) => NftHook::Output,
                    Some((h, other)) => {
                        cx.err(h.span(), format!("hook `{other}` is not supported"), "use input (packets for the host), forward (packets it routes) or output (packets it sends)");
                        continue;
                    }
                };
                let to = match &f.to {
                    Some(t) if host_names.contains(t.get_ref()) => Some(t.get_ref().clone()),
                    Some(t) => {
                        cx.err(t.span(), format!("`to = \"{}\"` is not a host", t.get_ref()), format!("name the destination host ({known_hosts})"));
                        continue;
                    }
                    None => None,
                };
                let frag_needed = match &f.icmp {
                    Some(i) if i.get_ref() == "frag-needed" && k == "nft-drop" && proto.as_deref().is_none_or(|p| p == "icmp") => true,
                    Some(i) => {
                        cx.err(i.span(), format!("`icmp = \"{}\"` is not supported here", i.get_ref()), "only `icmp = \"frag-needed\"` on an nft-drop fault (without another proto)");
                        continue;
                    }
                    None => false,
                };
                let action = match (k, f.with.as_ref().map(|w| w.get_ref().as_str())) {
                    ("nft-limit", _) => {
                        let Some(rate) = &f.rate else {
                            cx.err(fspan, "an nft-limit fault needs `rate`", "e.g. rate = \"50/second\" (packets)");
                            continue;
                        };
                        let Some(per_second) = parse_packet_rate(rate.get_ref()) else {
                            cx.err(rate.span(), format!("rate `{}` is not a packet rate", rate.get_ref()), "write N/second or N/minute, e.g. \"50/second\"");
                            continue;
                        };
                        let burst = match &f.burst {
                            Some(b) => match u32::try_from(*b.get_ref()) {
                                Ok(b) if b >= 1 => b,
                                _ => {
                                    cx.err(b.span(), format!("burst {} is impossible", b.get_ref()), "give a number of packets of at least 1");
                                    continue;
                                }
                            },
                            None => 5,
                        };
                        NftAction::Limit { per_second, burst }
                    }
                    ("nft-conn-limit", _) => {
                        if proto.as_deref() != Some("tcp") || dport.is_none() {
                            cx.err(fspan, "an nft-conn-limit fault needs proto = \"tcp\" and `dport`", "it counts the connections to one TCP port");
                            continue;
                        }
                        match &f.max_connections {
                            Some(m) => match u32::try_from(*m.get_ref()) {
                                Ok(m) if (1..=100_000).contains(&m) => NftAction::ConnLimit { max: m },
                                _ => {
                                    cx.err(m.span(), format!("max_connections = {} is impossible", m.get_ref()), "give a number between 1 and 100000");
                                    continue;
                                }
                            },
                            None => {
                                cx.err(fspan, "an nft-conn-limit fault needs `max_connections`", "e.g. max_connections = 20");
                                continue;
                            }
                        }
                    }
                    ("nft-loss", _) => match &f.percent {
                        Some(p) if *p.get_ref() >= 0.1 && *p.get_ref() <= 100.0 => NftAction::Loss { permille: (p.get_ref() * 10.0).round() as u16 },
                        Some(p) => {
                            cx.err(p.span(), format!("loss of {}% is impossible", p.get_ref()), "give a percentage from 0.1 to 100, e.g. 5");
                            continue;
                        }
                        None => {
                            cx.err(fspan, "an nft-loss fault needs `percent`", "e.g. percent = 5 for 5% random loss");
                            continue;
                        }
                    },
                    ("nft-drop", None) => NftAction::Drop,
                    ("nft-drop", Some(_)) => {
                        cx.err(f.with.as_ref().map_or(fspan.clone(), |w| w.span()), "`with` belongs to nft-reject", "remove it, or use kind = \"nft-reject\"");
                        continue;
                    }
                    (_, None | Some("tcp-reset")) if proto.as_deref() == Some("tcp") => NftAction::RejectTcpReset,
                    (_, None | Some("port-unreachable")) => NftAction::RejectPortUnreachable,
                    (_, Some("admin-prohibited")) => NftAction::RejectAdminProhibited,
                    (_, Some(other)) => {
                        cx.err(
                            f.with.as_ref().map_or(fspan.clone(), |w| w.span()),
                            format!("`with = \"{other}\"` is not supported here"),
                            "use tcp-reset (tcp only), port-unreachable or admin-prohibited",
                        );
                        continue;
                    }
                };
                if frag_needed && (dport.is_some() || from.is_some()) {
                    cx.err(fspan, "`icmp = \"frag-needed\"` matches every such ICMP message", "remove `dport`/`from` from this rule");
                    continue;
                }
                faults.push(Fault::Nft { host: host.get_ref().clone(), rule: NftRule { proto: if frag_needed { Some("icmp".into()) } else { proto }, dport, from, to, frag_needed, hook, action } });
            }
            "nft-dnat" => {
                let (Some(host), Some(proto), Some(dport), Some(to)) = (&f.host, &f.proto, &f.dport, &f.to) else {
                    cx.err(fspan, "an nft-dnat fault needs `host`, `proto`, `dport` and `to`", "e.g. host = \"lb\", proto = \"tcp\", dport = 80, to = \"api:8081\"");
                    continue;
                };
                if !check_host(&mut cx, host) {
                    continue;
                }
                if !["tcp", "udp"].contains(&proto.get_ref().as_str()) {
                    cx.err(proto.span(), format!("protocol `{}` has no ports to forward", proto.get_ref()), "use tcp or udp");
                    continue;
                }
                let Some(dport) = port_in_range(&mut cx, dport) else {
                    continue;
                };
                let target = to.get_ref();
                let parsed = match target.rsplit_once(':') {
                    Some((h, p)) => match p.parse::<u16>() {
                        Ok(p) if p > 0 => {
                            if host_names.contains(&h.to_string()) {
                                Some((None, Some(h.to_string()), p))
                            } else {
                                h.parse::<std::net::Ipv4Addr>().ok().map(|a| (Some(SocketAddr::new(IpAddr::V4(a), p)), None, p))
                            }
                        }
                        _ => None,
                    },
                    None => None,
                };
                let Some((addr, to_host, port)) = parsed else {
                    cx.err(to.span(), format!("`to = \"{target}\"` is not HOST:PORT or IPV4:PORT"), format!("e.g. \"api:8081\" (hosts: {known_hosts})"));
                    continue;
                };
                // A host's address is resolved when the plan is compiled.
                let to = addr.unwrap_or(SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), port));
                faults.push(Fault::Dnat { host: host.get_ref().clone(), proto: proto.get_ref().clone(), dport, to, to_host });
            }
            "delay" => {
                let (Some(host), Some(iface), Some(delay)) = (&f.host, &f.interface, &f.delay_ms) else {
                    cx.err(fspan, "a delay fault needs `host`, `interface` and `delay_ms`", "e.g. host = \"lb\", interface = \"eth1\", delay_ms = 300");
                    continue;
                };
                if !check_host(&mut cx, host) || !has_interface(&mut cx, &segments, host, iface) {
                    continue;
                }
                let d = *delay.get_ref();
                if !(0.0..=10_000.0).contains(&d) || d.is_nan() {
                    cx.err(delay.span(), format!("delay of {d} ms is impossible"), "give a delay from 0 to 10000 ms");
                    continue;
                }
                let jitter = match &f.jitter_ms {
                    Some(j) if *j.get_ref() >= 0.0 && *j.get_ref() <= d => *j.get_ref(),
                    Some(j) => {
                        cx.err(j.span(), format!("jitter of {} ms is impossible with a {d} ms delay", j.get_ref()), "give a jitter from 0 up to the delay");
                        continue;
                    }
                    None => 0.0,
                };
                let Ok(loss) = loss_fraction(&mut cx, &f.percent, 0.0) else {
                    continue;
                };
                if d == 0.0 && loss == 0.0 {
                    cx.err(delay.span(), "this delay fault does nothing", "give a delay above 0 ms or a loss `percent`");
                    continue;
                }
                if root_qdisc_taken(&mut cx, &faults, host, iface, fspan.clone(), "one delay per interface; put a rate limit on another interface of the path") {
                    continue;
                }
                faults.push(Fault::Delay { host: host.get_ref().clone(), interface: iface.get_ref().clone(), delay_ms: d, jitter_ms: jitter, loss });
            }
            "ebpf-drop" => {
                let (Some(host), Some(iface)) = (&f.host, &f.interface) else {
                    cx.err(fspan, "an ebpf-drop fault needs `host` and `interface`", "e.g. host = \"api\", interface = \"eth0\", proto = \"tcp\", dport = 8080, percent = 20");
                    continue;
                };
                if !check_host(&mut cx, host) || !has_interface(&mut cx, &segments, host, iface) {
                    continue;
                }
                let egress = match f.direction.as_ref().map(|d| (d, d.get_ref().as_str())) {
                    None | Some((_, "ingress")) => false,
                    Some((_, "egress")) => true,
                    Some((d, other)) => {
                        cx.err(d.span(), format!("direction `{other}` is not supported"), "use ingress or egress");
                        continue;
                    }
                };
                let Ok((proto, dport)) = proto_and_port(&mut cx, &f.proto, &f.dport) else { continue };
                let Ok(from) = source(&mut cx, &f.from, &host_names, &known_hosts) else {
                    continue;
                };
                let Ok(loss) = loss_fraction(&mut cx, &f.percent, 1.0) else {
                    continue;
                };
                if loss == 0.0 {
                    cx.err(fspan, "this ebpf-drop fault drops nothing", "give a `percent` above 0 (or leave it out: 100%)");
                    continue;
                }
                faults.push(Fault::EbpfDrop { host: host.get_ref().clone(), interface: iface.get_ref().clone(), egress, proto, dport, from, loss });
            }
            other => cx.err(f.kind.span(), format!("unknown fault kind `{other}`"), format!("use one of: {}", FAULT_KINDS.join(", "))),
        }
    }

    // verify
    let window_secs = match &raw.verify.window_secs {
        Some(w) if !(1.0..=300.0).contains(w.get_ref()) => {
            cx.err(w.span(), format!("window_secs = {} is out of range", w.get_ref()), "use a window between 1 and 300 seconds");
            5.0
        }
        Some(w) => *w.get_ref(),
        None => 5.0,
    };

    // checks
    let mut checks = Vec::new();
    for c in &raw.checks {
        let cspan = c.span();
        let c = c.get_ref();
        let need = |cx: &mut Ctx, what: &str| cx.err(cspan.clone(), format!("a {} check needs `{what}`", c.kind.get_ref()), "see scenarios/README.md for the keys of each check kind");
        match c.kind.get_ref().as_str() {
            "tcp-state-dwell" => {
                let (port, peer) = match (&c.port, &c.peer_port) {
                    (Some(p), None) => (Some(p), false),
                    (None, Some(p)) => (Some(p), true),
                    (Some(_), Some(p)) => {
                        cx.err(p.span(), "give `port` (the host's own) or `peer_port` (the remote one), not both", "one check watches one side of the connection");
                        continue;
                    }
                    (None, None) => (None, false),
                };
                let (Some(host), Some(port), Some(state), Some(max)) = (&c.host, port, &c.state, &c.max_secs) else {
                    need(&mut cx, "host, port (or peer_port), state and max_secs");
                    continue;
                };
                let host_ok = check_host(&mut cx, host);
                let port_ok = port_in_range(&mut cx, port);
                let st = match state.get_ref().parse::<TcpState>() {
                    Ok(s) => Some(s),
                    Err(e) => {
                        cx.err(state.span(), e, "use the kernel's name, as `ss` shows it, e.g. CLOSE_WAIT");
                        None
                    }
                };
                if *max.get_ref() <= 0.0 {
                    cx.err(max.span(), "max_secs must be positive", "give the longest tolerated dwell in seconds, e.g. 2.0");
                }
                if let (true, Some(port), Some(state)) = (host_ok, port_ok, st) {
                    let on = crate::check::dwell_subject(host.get_ref(), port, peer);
                    let name = c.name.clone().unwrap_or_else(|| format!("no socket {on} stays in {state} longer than {} s", max.get_ref()));
                    checks.push(Check::TcpStateDwell { name, host: host.get_ref().clone(), port, peer, state, max_secs: *max.get_ref(), min_connections: c.min_connections.unwrap_or(1) });
                }
            }
            "http-slo" => {
                let (Some(from), Some(target)) = (&c.from, &c.target) else {
                    need(&mut cx, "from and target");
                    continue;
                };
                let from_ok = check_host(&mut cx, from);
                let Some((th, tp)) = target.get_ref().rsplit_once(':') else {
                    cx.err(target.span(), format!("target `{}` is not HOST:PORT", target.get_ref()), "write it as e.g. \"api:8080\"");
                    continue;
                };
                let th_ok = if host_names.contains(th) {
                    true
                } else {
                    cx.err(target.span(), format!("unknown host `{th}` in target"), format!("use one of: {known_hosts}"));
                    false
                };
                let port = match tp.parse::<u16>() {
                    Ok(p) if p > 0 => Some(p),
                    _ => {
                        cx.err(target.span(), format!("port `{tp}` is out of range"), "use a port between 1 and 65535");
                        None
                    }
                };
                let ratio = c.min_success_ratio.as_ref().map_or(0.95, |r| *r.get_ref());
                if !(0.0..=1.0).contains(&ratio) {
                    if let Some(r) = &c.min_success_ratio {
                        cx.err(r.span(), format!("min_success_ratio = {ratio} is not between 0 and 1"), "use a fraction, e.g. 0.95");
                    }
                }
                let client = match &c.client {
                    Some(cl) if services.iter().any(|s| &s.name == cl.get_ref() && &s.host == from.get_ref() && matches!(s.workload, Workload::Loadgen(_))) => Some(cl.get_ref().clone()),
                    Some(cl) => {
                        cx.err(cl.span(), format!("host `{}` has no loadgen service `{}`", from.get_ref(), cl.get_ref()), "name a loadgen service declared on the check's `from` host");
                        continue;
                    }
                    None => None,
                };
                if let (true, true, Some(port)) = (from_ok, th_ok, port) {
                    let path = c.path.clone().unwrap_or_else(|| "/".into());
                    let name = c.name.clone().unwrap_or_else(|| format!("HTTP {th}:{port}{path} from {} succeeds", from.get_ref()));
                    checks.push(Check::HttpSlo {
                        name,
                        from: from.get_ref().clone(),
                        target_host: th.to_string(),
                        port,
                        path,
                        min_success_ratio: ratio,
                        max_latency_ms: c.max_latency_ms.as_ref().map(|m| *m.get_ref()),
                        timeout_ms: c.timeout_ms.unwrap_or(1000),
                        interval_ms: c.interval_ms.unwrap_or(250).max(10),
                        tls: c.tls.unwrap_or(false),
                        client,
                    });
                }
            }
            k @ ("drops" | "retransmits" | "resets" | "oom-kills") => {
                let Some(host) = &c.host else {
                    need(&mut cx, "host");
                    continue;
                };
                if !check_host(&mut cx, host) {
                    continue;
                }
                let port = match &c.port {
                    Some(p) => match port_in_range(&mut cx, p) {
                        Some(p) => Some(p),
                        None => continue,
                    },
                    None => None,
                };
                let counted = match k {
                    "drops" => Counted::Drops { reason: c.reason.as_ref().map(|r| r.trim_start_matches("SKB_DROP_REASON_").to_ascii_uppercase()) },
                    "retransmits" => Counted::Retransmits,
                    "oom-kills" => Counted::OomKills,
                    _ => match c.direction.as_ref().map(|d| d.get_ref().as_str()) {
                        Some("sent") | None => Counted::ResetsSent,
                        Some("received") => Counted::ResetsReceived,
                        Some(other) => {
                            let span = c.direction.as_ref().map(|d| d.span()).unwrap_or(cspan.clone());
                            cx.err(span, format!("direction `{other}` is not `sent` or `received`"), "resets are counted as sent or received by the host");
                            continue;
                        }
                    },
                };
                if port.is_some() && matches!(counted, Counted::Drops { .. } | Counted::OomKills) {
                    cx.err(cspan.clone(), format!("a {k} check cannot be limited to a port"), "remove `port`; drops are counted per host and reason");
                    continue;
                }
                let max = c.max.unwrap_or(0);
                let max_ratio = match &c.max_ratio {
                    Some(r) if counted != Counted::Retransmits || port.is_some() => {
                        cx.err(r.span(), "max_ratio applies to a retransmits check over a whole host", "remove `port`, or use `max` (a count)");
                        continue;
                    }
                    Some(r) if !(0.0..=1.0).contains(r.get_ref()) => {
                        cx.err(r.span(), format!("max_ratio = {} is not between 0 and 1", r.get_ref()), "give a fraction, e.g. 0.01 for 1%");
                        continue;
                    }
                    r => r.as_ref().map(|r| *r.get_ref()),
                };
                let on = port.map_or_else(|| host.get_ref().clone(), |p| format!("{}:{p}", host.get_ref()));
                let bound = max_ratio.map_or_else(|| format!("at most {max}"), |r| format!("at most {}% of segments as", r * 100.0));
                let name = c.name.clone().unwrap_or_else(|| format!("{bound} {} on {on}", counted.describe()));
                checks.push(Check::Count { name, host: host.get_ref().clone(), port, counted, max, max_ratio });
            }
            other => cx.err(c.kind.span(), format!("unknown check kind `{other}`"), format!("use one of: {}", CHECK_KINDS.join(", "))),
        }
    }
    for c in &checks {
        if let Check::TcpStateDwell { name, max_secs, .. } = c {
            if *max_secs >= window_secs {
                let span = raw.verify.window_secs.as_ref().map_or(0..0, |w| w.span());
                cx.err(
                    span,
                    format!("check `{name}`: max_secs = {max_secs} is not shorter than the {window_secs} s window"),
                    "make [verify] window_secs longer than every max_secs, or a stuck socket could never be seen",
                );
            }
        }
    }
    if raw.checks.is_empty() {
        cx.err(0..0, "the scenario has no [[checks]]", "add at least one check, or `drill submit` could never fail");
    }

    // solution
    let mut steps = Vec::new();
    for s in &raw.solution.steps {
        let s = s.get_ref();
        if check_host(&mut cx, &s.host) {
            steps.push(Step { host: s.host.get_ref().clone(), run: s.run.clone() });
        }
    }

    if !cx.errors.is_empty() {
        return Err(SourceErrors(cx.errors));
    }
    Ok(Scenario {
        id,
        title: raw.title,
        summary: raw.summary,
        severity: raw.severity,
        alert: raw.alert,
        briefing: raw.briefing,
        hints: raw.hints,
        hosts,
        segments,
        services,
        faults,
        window_secs,
        checks,
        solution: Solution { summary: raw.solution.summary, steps },
    })
}

/// Whether `host` has an interface named `iface`; reports the error (with the host's
/// interfaces) when not.
fn has_interface(cx: &mut Ctx, segments: &[Segment], host: &Spanned<String>, iface: &Spanned<String>) -> bool {
    let ifs: Vec<&str> = segments.iter().flat_map(|sg| sg.members.iter()).filter(|e| &e.host == host.get_ref()).map(|e| e.ifname.as_str()).collect();
    if ifs.contains(&iface.get_ref().as_str()) {
        return true;
    }
    cx.err(iface.span(), format!("host `{}` has no interface `{}`", host.get_ref(), iface.get_ref()), format!("its interfaces are: {}", ifs.join(", ")));
    false
}

/// Whether an earlier tc-rate or delay fault already owns `host:iface`'s root qdisc
/// (both replace it); reports it.
fn root_qdisc_taken(cx: &mut Ctx, faults: &[Fault], host: &Spanned<String>, iface: &Spanned<String>, span: Range<usize>, help: &str) -> bool {
    let other = faults.iter().find(|x| matches!(x, Fault::Delay { host: h, interface: i, .. } | Fault::TcRate { host: h, interface: i, .. } if h == host.get_ref() && i == iface.get_ref()));
    if let Some(other) = other {
        cx.err(span, format!("{}/{} already has a fault on its root qdisc ({})", host.get_ref(), iface.get_ref(), other.describe()), help);
    }
    other.is_some()
}

/// `proto` (tcp, udp, icmp or none) and `dport` (only with tcp or udp); Err when reported.
fn proto_and_port(cx: &mut Ctx, proto: &Option<Spanned<String>>, dport: &Option<Spanned<i64>>) -> Result<(Option<String>, Option<u16>), ()> {
    let proto = match proto {
        Some(p) if ["tcp", "udp", "icmp"].contains(&p.get_ref().as_str()) => Some(p.get_ref().clone()),
        Some(p) => {
            cx.err(p.span(), format!("protocol `{}` is not supported", p.get_ref()), "use tcp, udp or icmp (or leave it out to match every protocol)");
            return Err(());
        }
        None => None,
    };
    let dport = match dport {
        Some(d) => match port_in_range(cx, d) {
            Some(p) if matches!(proto.as_deref(), Some("tcp" | "udp")) => Some(p),
            Some(_) => {
                cx.err(d.span(), "`dport` needs `proto = \"tcp\"` or `\"udp\"`", "say which protocol's port it is");
                return Err(());
            }
            None => return Err(()),
        },
        None => None,
    };
    Ok((proto, dport))
}

/// `from = HOST` or `from = "PREFIX"`; Err when reported.
fn source(cx: &mut Ctx, from: &Option<Spanned<String>>, host_names: &BTreeSet<String>, known_hosts: &str) -> Result<Option<NftSource>, ()> {
    match from {
        Some(src) if host_names.contains(src.get_ref()) => Ok(Some(NftSource::Host(src.get_ref().clone()))),
        Some(src) => match src.get_ref().parse::<Cidr>() {
            Ok(c) if c.addr.is_ipv4() => Ok(Some(NftSource::Prefix(c))),
            _ => {
                cx.err(src.span(), format!("`{}` is neither a host nor an IPv4 prefix", src.get_ref()), format!("use a host ({known_hosts}) or a prefix such as \"10.77.0.0/24\""));
                Err(())
            }
        },
        None => Ok(None),
    }
}

/// `percent` as a fraction (`default` when absent); Err when reported.
fn loss_fraction(cx: &mut Ctx, percent: &Option<Spanned<f64>>, default: f64) -> Result<f64, ()> {
    match percent {
        Some(p) if (0.0..=100.0).contains(p.get_ref()) => Ok(p.get_ref() / 100.0),
        Some(p) => {
            cx.err(p.span(), format!("loss of {}% is impossible", p.get_ref()), "give a percentage from 0 to 100");
            Err(())
        }
        None => Ok(default),
    }
}


fn port_in_range(cx: &mut Ctx, port: &Spanned<i64>) -> Option<u16> {
    match u16::try_from(*port.get_ref()) {
        Ok(p) if p > 0 => Some(p),
        _ => {
            cx.err(port.span(), format!("port {} is out of range", port.get_ref()), "use a port between 1 and 65535");
            None
        }
    }
}

impl Scenario {
    /// Whether anything in the drill speaks TLS (its hosts then get certificates).
    pub fn uses_tls(&self) -> bool {
        self.services.iter().any(|s| s.workload.uses_tls())
            || self.faults.iter().any(|f| matches!(f, Fault::ServiceConfig { faulty, .. } if faulty.uses_tls()))
            || self.checks.iter().any(|c| matches!(c, Check::HttpSlo { tls: true, .. }))
    }

    /// The workload a service starts with when the drill begins (fault applied).
    pub fn initial_workload(&self, host: &str, service: &str) -> Option<&Workload> {
        for f in &self.faults {
            if let Fault::ServiceConfig { host: h, service: s, faulty, .. } = f {
                if h == host && s == service {
                    return Some(faulty);
                }
            }
        }
        self.services.iter().find(|s| s.host == host && s.name == service).map(|s| &s.workload)
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) const GOOD: &str = r#"
id = "t-leak"
title = "T"
alert = "a"
briefing = "b"
hints = ["h1"]

[[hosts]]
name = "client"
[[hosts]]
name = "api"

[[links]]
a = { host = "client", address = "10.77.0.1/24" }
b = { host = "api", address = "10.77.0.2/24" }

[[services]]
name = "httpd"
host = "api"
kind = "httpd"
config = { listen = "0.0.0.0:8080" }

[[faults]]
kind = "service-config"
service = "httpd"
set = { close_on_eof = false }

[verify]
window_secs = 4.0

[[checks]]
kind = "tcp-state-dwell"
host = "api"
port = 8080
state = "close_wait"
max_secs = 2.0

[[checks]]
kind = "http-slo"
from = "client"
target = "api:8080"

[solution]
summary = "s"
steps = [{ host = "api", run = "svc restart httpd" }]
"#;
}

#[cfg(test)]
mod tests {
    use super::tests_support::GOOD;
    use super::*;

    fn errs(text: &str) -> Vec<SourceError> {
        parse("t.toml", text).unwrap_err().0
    }

    fn with_fault(f: &str) -> Result<Scenario, SourceErrors> {
        parse("t.toml", &GOOD.replace("[verify]", &format!("[[faults]]\n{f}\n[verify]")))
    }

    /// The one error of a scenario with fault `f`, as `file:line: message`.
    fn fault_err(f: &str) -> String {
        let e = with_fault(f).unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        e.to_string()
    }

    #[test]
    fn delay_faults_validate_their_parameters_with_line_numbers() {
        let s = with_fault("kind = \"delay\"\nhost = \"client\"\ninterface = \"eth0\"\ndelay_ms = 300\njitter_ms = 20\npercent = 1").unwrap();
        assert_eq!(s.faults[1], Fault::Delay { host: "client".into(), interface: "eth0".into(), delay_ms: 300.0, jitter_ms: 20.0, loss: 0.01 });
        assert_eq!(s.faults[1].describe(), "delay on client/eth0 egress: 300 ms +-20 ms jitter, 1% loss");
        let line = GOOD.lines().position(|l| l == "[verify]").unwrap() + 1;
        let e = fault_err("kind = \"delay\"\nhost = \"client\"\ninterface = \"eth0\"\ndelay_ms = -5");
        assert!(e.contains("delay of -5 ms is impossible") && e.contains(&format!("t.toml:{}:", line + 4)), "{e}");
        let e = fault_err("kind = \"delay\"\nhost = \"client\"\ninterface = \"eth0\"\ndelay_ms = 5\njitter_ms = 10");
        assert!(e.contains("jitter of 10 ms is impossible with a 5 ms delay"), "{e}");
        let e = fault_err("kind = \"delay\"\nhost = \"client\"\ninterface = \"eth0\"\ndelay_ms = 5\npercent = 150");
        assert!(e.contains("loss of 150% is impossible"), "{e}");
        let e = fault_err("kind = \"delay\"\nhost = \"client\"\ninterface = \"wan\"\ndelay_ms = 5");
        assert!(e.contains("host `client` has no interface `wan`"), "{e}");
        let e = fault_err("kind = \"delay\"\nhost = \"client\"\ninterface = \"eth0\"\ndelay_ms = 5\n[[faults]]\nkind = \"tc-rate\"\nhost = \"client\"\ninterface = \"eth0\"\nrate = \"1mbit\"");
        assert!(e.contains("already has a fault on its root qdisc"), "{e}");
    }

    #[test]
    fn nft_fault_variants_parse_and_refuse_what_cannot_work() {
        let s = with_fault("kind = \"nft-limit\"\nhost = \"api\"\nproto = \"icmp\"\nrate = \"50/second\"\nburst = 10").unwrap();
        assert!(s.faults[1].describe().ends_with("meta l4proto icmp limit rate over 50/second burst 10 packets drop"), "{}", s.faults[1].describe());
        let s = with_fault("kind = \"nft-conn-limit\"\nhost = \"api\"\nproto = \"tcp\"\ndport = 8080\nmax_connections = 20").unwrap();
        assert!(s.faults[1].describe().ends_with("tcp dport 8080 ct count over 20 drop"));
        let s = with_fault("kind = \"nft-drop\"\nhost = \"api\"\nhook = \"output\"\nicmp = \"frag-needed\"").unwrap();
        assert_eq!(s.faults[1].describe(), "nftables on api (table inet drill, output): icmp type destination-unreachable icmp code frag-needed drop");
        let s = with_fault("kind = \"nft-loss\"\nhost = \"api\"\nhook = \"forward\"\nto = \"client\"\npercent = 5").unwrap();
        assert!(matches!(&s.faults[1], Fault::Nft { rule, .. } if rule.hook == NftHook::Forward && rule.to.as_deref() == Some("client")));
        let s = with_fault("kind = \"nft-dnat\"\nhost = \"api\"\nproto = \"tcp\"\ndport = 80\nto = \"api:8081\"").unwrap();
        assert_eq!(s.faults[1].describe(), "nftables on api (table inet drill, prerouting): tcp dport 80 dnat to api:8081");
        assert!(fault_err("kind = \"nft-limit\"\nhost = \"api\"\nrate = \"fast\"").contains("rate `fast` is not a packet rate"));
        assert!(fault_err("kind = \"nft-conn-limit\"\nhost = \"api\"\nmax_connections = 3").contains("needs proto = \"tcp\" and `dport`"));
        assert!(fault_err("kind = \"nft-drop\"\nhost = \"api\"\nhook = \"prerouting\"").contains("hook `prerouting` is not supported"));
        assert!(fault_err("kind = \"nft-reject\"\nhost = \"api\"\nicmp = \"frag-needed\"").contains("only `icmp = \"frag-needed\"` on an nft-drop"));
        assert!(fault_err("kind = \"nft-dnat\"\nhost = \"api\"\nproto = \"tcp\"\ndport = 80\nto = \"nowhere\"").contains("is not HOST:PORT or IPV4:PORT"));
        assert!(fault_err("kind = \"nft-dnat\"\nhost = \"api\"\nproto = \"tcp\"\ndport = 70000\nto = \"api:1\"").contains("port 70000 is out of range"));
    }

    #[test]
    fn http_slo_client_names_a_loadgen_on_the_from_host() {
        let with_lg = GOOD.replace("[[faults]]", "[[services]]\nname = \"lg\"\nhost = \"client\"\nkind = \"loadgen\"\nconfig = { target = \"api:8080\" }\n\n[[faults]]");
        let s = parse("t.toml", &with_lg.replace("target = \"api:8080\"\n\n[solution]", "target = \"api:8080\"\nclient = \"lg\"\ntls = false\n\n[solution]")).unwrap();
        assert!(matches!(&s.checks[1], Check::HttpSlo { client: Some(c), .. } if c == "lg"));
        let e = parse("t.toml", &with_lg.replace("target = \"api:8080\"\n\n[solution]", "target = \"api:8080\"\nclient = \"httpd\"\n\n[solution]")).unwrap_err().to_string();
        assert!(e.contains("host `client` has no loadgen service `httpd`"), "{e}");
    }

    #[test]
    fn ebpf_and_htb_faults_parse_and_refuse_what_cannot_work() {
        let s = with_fault("kind = \"ebpf-drop\"\nhost = \"api\"\ninterface = \"eth0\"\nproto = \"tcp\"\ndport = 8080\nfrom = \"client\"\npercent = 25").unwrap();
        assert_eq!(s.faults[1].describe(), "eBPF tc classifier on api/eth0 ingress: drops 25% of from client tcp dport 8080");
        let s = with_fault("kind = \"ebpf-drop\"\nhost = \"api\"\ninterface = \"eth0\"\ndirection = \"egress\"").unwrap();
        assert!(matches!(&s.faults[1], Fault::EbpfDrop { egress: true, loss, .. } if *loss == 1.0));
        assert!(fault_err("kind = \"ebpf-drop\"\nhost = \"api\"\ninterface = \"eth0\"\ndirection = \"sideways\"").contains("direction `sideways` is not supported"));
        assert!(fault_err("kind = \"ebpf-drop\"\nhost = \"api\"\ninterface = \"eth0\"\npercent = 0").contains("drops nothing"));
        assert!(fault_err("kind = \"ebpf-drop\"\nhost = \"api\"\ninterface = \"eth0\"\nproto = \"icmp\"\ndport = 1").contains("`dport` needs"));
        let s = with_fault("kind = \"tc-rate\"\nhost = \"api\"\ninterface = \"eth0\"\nrate = \"5mbit\"\nport = 8080").unwrap();
        assert_eq!(s.faults[1].describe(), "tc htb on api/eth0: egress of port 8080 limited to 5000 kbit/s");
        assert!(fault_err("kind = \"tc-rate\"\nhost = \"api\"\ninterface = \"eth0\"\nrate = \"5mbit\"\nport = 0").contains("port 0 is out of range"));
    }

    #[test]
    fn good_scenario_parses_with_fault_applied() {
        let s = parse("t.toml", GOOD).unwrap();
        assert_eq!(s.id, "t-leak");
        assert_eq!(s.window_secs, 4.0);
        let Some(Workload::Httpd(c)) = s.initial_workload("api", "httpd") else { panic!() };
        assert!(!c.close_on_eof);
        let Workload::Httpd(healthy) = &s.services[0].workload else { panic!() };
        assert!(healthy.close_on_eof);
        assert!(matches!(s.checks[0], Check::TcpStateDwell { state: TcpState::CloseWait, port: 8080, .. }));
        assert!(matches!(&s.checks[1], Check::HttpSlo { target_host, port: 8080, .. } if target_host == "api"));
        assert_eq!(s.segments[0].members[1].addresses[0].to_string(), "10.77.0.2/24");
        assert_eq!(s.segments[0].members[1].ifname, "eth0");
    }

    #[test]
    fn unknown_host_in_link_names_line_and_known_hosts() {
        let text = GOOD.replace("b = { host = \"api\"", "b = { host = \"apj\"");
        let e = &errs(&text)[0];
        assert_eq!(e.line, 15, "{e}");
        assert!(e.message.contains("unknown host `apj`"), "{e}");
        assert!(e.help.contains("api, client"), "{e}");
    }

    #[test]
    fn duplicate_address_and_subnet_mismatch_are_reported_together() {
        let text = GOOD.replace("10.77.0.2/24", "10.77.0.1/24");
        let e = errs(&text);
        assert!(e.iter().any(|e| e.message.contains("already used by client") && e.line == 15), "{e:?}");
        let text = GOOD.replace("10.77.0.2/24", "10.78.0.2/24");
        assert!(errs(&text).iter().any(|e| e.message.contains("not in the same subnet")));
    }

    #[test]
    fn syntax_and_unknown_keys_point_at_the_spot() {
        let e = &errs("id = \"x\"\ntitel = \"y\"\n")[0];
        assert_eq!((e.line, e.column), (2, 1), "{e}");
        assert!(e.message.contains("titel"), "{e}");
        let e = &errs("id = \n")[0];
        assert_eq!(e.line, 1);
    }

    #[test]
    fn bad_check_values_are_rejected() {
        let text = GOOD.replace("port = 8080", "port = 70000").replace("state = \"close_wait\"", "state = \"CLOSED_WAIT\"");
        let e = errs(&text);
        assert!(e.iter().any(|e| e.message.contains("port 70000 is out of range")), "{e:?}");
        assert!(e.iter().any(|e| e.message.contains("unknown TCP state `CLOSED_WAIT`")), "{e:?}");
        let text = GOOD.replace("kind = \"http-slo\"", "kind = \"http-sla\"");
        assert!(errs(&text).iter().any(|e| e.message.contains("unknown check kind `http-sla`") && e.help.contains("http-slo")));
    }

    #[test]
    fn counting_checks() {
        let extra = "\n[[checks]]\nkind = \"drops\"\nhost = \"api\"\nreason = \"netfilter_drop\"\n\n[[checks]]\nkind = \"resets\"\nhost = \"api\"\nport = 8080\nmax = 3\n";
        let text = GOOD.replace("[solution]", &format!("{extra}\n[solution]"));
        let s = parse("t.toml", &text).unwrap();
        assert_eq!(
            s.checks[2],
            Check::Count {
                name: "at most 0 packet drops (NETFILTER_DROP) on api".into(),
                host: "api".into(),
                port: None,
                counted: Counted::Drops { reason: Some("NETFILTER_DROP".into()) },
                max: 0,
                max_ratio: None
            }
        );
        let r = text.replace("kind = \"drops\"\nhost = \"api\"\nreason = \"netfilter_drop\"", "kind = \"retransmits\"\nhost = \"client\"\nmax_ratio = 0.01");
        let s2 = parse("t.toml", &r).unwrap();
        assert!(matches!(&s2.checks[2], Check::Count { counted: Counted::Retransmits, max_ratio: Some(x), name, .. } if *x == 0.01 && name == "at most 1% of segments as retransmissions on client"));
        assert!(matches!(&s.checks[3], Check::Count { port: Some(8080), counted: Counted::ResetsSent, max: 3, .. }));
        let bad = text.replace("port = 8080\nmax = 3", "direction = \"both\"");
        assert!(parse("t.toml", &bad).unwrap_err().to_string().contains("direction `both` is not `sent` or `received`"));
    }

    #[test]
    fn faults_must_fit_the_service() {
        let text = GOOD.replace("set = { close_on_eof = false }", "set = { close_on_oef = false }");
        let e = errs(&text);
        assert!(e.iter().any(|e| e.message.contains("close_on_oef")), "{e:?}");
        let text = GOOD.replace("kind = \"service-config\"", "kind = \"netem\"");
        assert!(errs(&text).iter().any(|e| e.message.contains("unknown fault kind `netem`")));
    }

    #[test]
    fn nft_faults() {
        let nft = "[[faults]]\nkind = \"nft-drop\"\nhost = \"api\"\nproto = \"tcp\"\ndport = 8080\nfrom = \"client\"\n";
        let text = GOOD.replace("[verify]", &format!("{nft}\n[verify]"));
        let s = parse("t.toml", &text).unwrap();
        let Fault::Nft { host, rule } = &s.faults[1] else { panic!() };
        assert_eq!(host, "api");
        assert_eq!(rule.describe(), "from client tcp dport 8080 drop");
        let e = parse("t.toml", &text.replace("dport = 8080", "dport = 0")).unwrap_err().to_string();
        assert!(e.contains("port 0 is out of range"), "{e}");
        let e = parse("t.toml", &text.replace("proto = \"tcp\"", "proto = \"sctp\"")).unwrap_err().to_string();
        assert!(e.contains("protocol `sctp` is not supported"), "{e}");
        let e = parse("t.toml", &text.replace("from = \"client\"", "from = \"clinet\"")).unwrap_err().to_string();
        assert!(e.contains("`clinet` is neither a host nor an IPv4 prefix") && e.contains("t.toml:"), "{e}");
        let r = parse("t.toml", &text.replace("nft-drop", "nft-reject")).unwrap();
        assert!(matches!(&r.faults[1], Fault::Nft { rule: NftRule { action: NftAction::RejectTcpReset, .. }, .. }));
        let loss = text.replace("kind = \"nft-drop\"", "kind = \"nft-loss\"\npercent = 150");
        let e = parse("t.toml", &loss).unwrap_err().to_string();
        assert!(e.contains("loss of 150% is impossible"), "{e}");
        let r = parse("t.toml", &loss.replace("percent = 150", "percent = 2.5")).unwrap();
        let Fault::Nft { rule, .. } = &r.faults[1] else { panic!() };
        assert_eq!(rule.action, NftAction::Loss { permille: 25 });
        assert_eq!(rule.describe(), "from client tcp dport 8080 numgen random mod 1000 < 25 drop (2.5% loss)");
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("10mbit"), Some(10_000_000));
        assert_eq!(parse_rate("1.5Mbit"), Some(1_500_000));
        assert_eq!(parse_rate("64000bit"), Some(64_000));
        assert_eq!(parse_rate("10mb"), None);
        assert_eq!(parse_rate("-1kbit"), None);
    }

    #[test]
    fn host_faults() {
        let add = |f: &str| parse("t.toml", &GOOD.replace("[verify]", &format!("{f}\n[verify]")));
        let s = add("[[faults]]\nkind = \"sysctl\"\nhost = \"client\"\nkey = \"net.ipv4.ip_local_port_range\"\nvalue = \"40000 40001\"\n").unwrap();
        assert_eq!(s.faults[1].describe(), "sysctl on client: net.ipv4.ip_local_port_range = 40000 40001");
        let e = add("[[faults]]\nkind = \"sysctl\"\nhost = \"client\"\nkey = \"kernel.pid_max\"\nvalue = 5\n").unwrap_err().to_string();
        assert!(e.contains("not a per-network-namespace setting"), "{e}");
        let e = add("[[faults]]\nkind = \"mtu\"\nhost = \"api\"\ninterface = \"eth7\"\nmtu = 1280\n").unwrap_err().to_string();
        assert!(e.contains("host `api` has no interface `eth7`") && e.contains("its interfaces are: eth0"), "{e}");
        let e = add("[[faults]]\nkind = \"mtu\"\nhost = \"api\"\ninterface = \"eth0\"\nmtu = -5\n").unwrap_err().to_string();
        assert!(e.contains("mtu -5 is out of range"), "{e}");
        let e = add("[[faults]]\nkind = \"route-remove\"\nhost = \"api\"\nto = \"default\"\n").unwrap_err().to_string();
        assert!(e.contains("host `api` has no route to default to remove"), "{e}");
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!("10.0.0.1/8".parse::<Cidr>().unwrap().prefix, 8);
        assert!("10.0.0.1".parse::<Cidr>().unwrap_err().contains("no prefix length"));
        assert!("10.0.0.1/33".parse::<Cidr>().is_err());
        assert!("fd00::1/64".parse::<Cidr>().unwrap().same_subnet(&"fd00::2/64".parse().unwrap()));
    }

    #[test]
    fn tcp_states_round_trip() {
        for s in TcpState::ALL {
            assert_eq!(TcpState::from_number(s.number()), Some(s));
            assert_eq!(s.name().parse::<TcpState>().unwrap(), s);
        }
    }
}
