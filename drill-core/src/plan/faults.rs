//! The fault steps of a plan: for every fault of the scenario, the mechanism the
//! daemon will use (with every name and parameter resolved: interfaces, tables and
//! chains, the delay backend and its wire namespace, the eBPF program and its rule)
//! and the measurement that proves it took, with the prober host, the address, the
//! count and the tolerance. The daemon applies and measures exactly these steps and
//! never reads the scenario's faults; `drill start --dry-run` prints them.
//!
//! A fault whose parameters the engine cannot measure is refused here with the
//! reason ([`PlanError`]): a drill never starts on a fault nobody checked.

use std::net::{IpAddr, SocketAddr};

use super::{Plan, wire_netns_name};
use crate::scenario::{Cidr, Fault, NftAction, NftHook, NftRule, NftSource};

#[path = "fault_steps.rs"]
mod steps;
pub use steps::*;

/// The host at the other end of `host:iface` and its IPv4 address there (behind a
/// switch: the first other host on it with an address in the same subnet).
pub fn neighbour(plan: &Plan, host: &str, iface: &str) -> Option<(String, IpAddr)> {
    let pi = plan.hosts.iter().find(|h| h.name == host)?.interfaces.iter().find(|i| i.name == iface)?;
    let mine = pi.addresses.iter().find(|c| c.addr.is_ipv4()).copied();
    for h in plan.hosts.iter().filter(|h| h.name != host) {
        for i in &h.interfaces {
            let linked = (pi.peer == h.name && i.peer == host) || (pi.peer == i.peer && plan.switches.iter().any(|s| s.name == pi.peer));
            if !linked {
                continue;
            }
            if let Some(c) = i.addresses.iter().find(|c| c.addr.is_ipv4() && mine.is_none_or(|m| m.same_subnet(c))) {
                return Some((h.name.clone(), c.addr));
            }
        }
    }
    None
}

struct Cx<'a> {
    plan: &'a Plan,
    index: usize,
    fault: &'a Fault,
}

impl Cx<'_> {
    fn refuse<T>(&self, why: impl Into<String>, help: impl Into<String>) -> Result<T, PlanError> {
        Err(PlanError { index: self.index, fault: self.fault.describe(), why: why.into(), help: help.into() })
    }

    fn v4(&self, host: &str) -> Result<IpAddr, PlanError> {
        match self.plan.host_address(host, false) {
            Some(a) => Ok(a),
            None => self.refuse(format!("host {host} has no IPv4 address to measure against"), "give the host an IPv4 address on a link"),
        }
    }

    fn neighbour(&self, host: &str, iface: &str) -> Result<(String, IpAddr), PlanError> {
        match neighbour(self.plan, host, iface) {
            Some(n) => Ok(n),
            None => self.refuse(format!("nobody with an IPv4 address is at the other end of {host}/{iface}"), "put the fault on an interface whose link has a host with an IPv4 address"),
        }
    }

    /// The host an nft rule on `host` is measured from: the rule's `from` host; for an
    /// output rule the host itself; else the first host that is neither `host` nor the
    /// rule's destination.
    fn prober(&self, host: &str, rule: &NftRule) -> Result<String, PlanError> {
        match &rule.from {
            Some(NftSource::Host(f)) => Ok(f.clone()),
            _ if rule.hook == NftHook::Output => Ok(host.to_string()),
            _ => match self.plan.hosts.iter().find(|x| x.name != host && rule.to.as_deref() != Some(x.name.as_str())) {
                Some(h) => Ok(h.name.clone()),
                None => self.refuse(format!("no other host to measure the rule on {host} from"), "add a host that sends the traffic the rule filters"),
            },
        }
    }
}

/// The resolved nft rule text of `rule` on `host` (sources that name a host become its
/// addresses), as `nft list` would show it.
fn resolved_rule(plan: &Plan, rule: &NftRule) -> String {
    let mut text = rule.describe();
    for (h, kw) in [(rule.from.as_ref().and_then(|f| if let NftSource::Host(h) = f { Some(h) } else { None }), "ip saddr"), (rule.to.as_ref(), "ip daddr")] {
        if let Some(h) = h {
            let addrs: Vec<String> = plan.host_addresses(h, false).iter().map(IpAddr::to_string).collect();
            let from_or_to = if kw == "ip saddr" { format!("from {h}") } else { format!("to {h}") };
            text = text.replace(&from_or_to, &format!("{kw} {{ {} }}", addrs.join(", ")));
        }
    }
    text
}

/// Compiles the faults of `faults` (the scenario's, in order) into steps.
pub fn compile(plan: &Plan, faults: &[Fault], backends: Backends) -> Result<Vec<FaultStep>, PlanError> {
    faults.iter().enumerate().map(|(index, fault)| step(&Cx { plan, index, fault }, backends)).collect()
}

fn step(cx: &Cx, backends: Backends) -> Result<FaultStep, PlanError> {
    let host = match cx.fault {
        Fault::ServiceConfig { host, .. }
        | Fault::Nft { host, .. }
        | Fault::Sysctl { host, .. }
        | Fault::Mtu { host, .. }
        | Fault::RouteRemove { host, .. }
        | Fault::TcRate { host, .. }
        | Fault::Delay { host, .. }
        | Fault::Dnat { host, .. }
        | Fault::EbpfDrop { host, .. }
        | Fault::ResolvConf { host, .. }
        | Fault::DeletedOpenFile { host, .. }
        | Fault::ConntrackTable { host, .. } => host.clone(),
    };
    let (mechanism, measure) = match cx.fault {
        Fault::ServiceConfig { service, set, faulty, .. } => (
            Mechanism::ServiceConfig { service: service.clone(), config_path: faulty.config_path(service), set: set.clone() },
            Measure::ReadBack { what: format!("the config {service} runs with (recorded by the running service in {})", crate::workload::effective_config_path(service)) },
        ),
        Fault::ResolvConf { .. } => {
            let text = cx.plan.hosts.iter().find(|h| h.name == host).map(|h| h.resolv_conf.clone()).unwrap_or_default();
            (Mechanism::ResolvConf { text }, Measure::ReadBack { what: "the host's /etc/resolv.conf, as every lookup in it reads it".into() })
        }
        Fault::DeletedOpenFile { service, path, .. } => (
            Mechanism::DeletedOpenFile { service: service.clone(), path: path.clone() },
            Measure::ReadBack { what: format!("statfs of the host's disk shows no free block, and {service}'s /proc/PID/fd shows {path} (deleted)") },
        ),
        Fault::Sysctl { key, value, .. } => (Mechanism::Sysctl { key: key.clone(), value: value.clone() }, Measure::ReadBack { what: format!("{key} in the host's network namespace") }),
        Fault::Mtu { interface, mtu, .. } => (Mechanism::Mtu { interface: interface.clone(), mtu: *mtu }, Measure::ReadBack { what: format!("the MTU of {interface} (netlink)") }),
        Fault::RouteRemove { to, .. } => (Mechanism::RouteRemove { to: *to }, Measure::ReadBack { what: "the host's routing table no longer has the route (netlink)".into() }),
        Fault::TcRate { interface, rate_bps, port, .. } => {
            let (to_host, to) = cx.neighbour(&host, interface)?;
            let mechanism = match port {
                Some(p) => Mechanism::Htb { interface: interface.clone(), port: *p, rate_bps: *rate_bps },
                None => Mechanism::Tbf { interface: interface.clone(), rate_bps: *rate_bps },
            };
            (mechanism, Measure::Transfer { from: host.clone(), to_host, to, from_port: *port, rate_bps: *rate_bps })
        }
        Fault::Delay { interface, delay_ms, jitter_ms, loss, .. } => {
            let (_, to) = cx.neighbour(&host, interface)?;
            let mechanism = match backends.delay {
                DelayBackend::Netem => Mechanism::Netem { interface: interface.clone(), delay_ms: *delay_ms, jitter_ms: *jitter_ms, loss: *loss },
                DelayBackend::Wire => Mechanism::DelayWire {
                    interface: interface.clone(),
                    netns: wire_netns_name(&cx.plan.drill_id, &host, interface),
                    host_end: WIRE_HOST_END.into(),
                    peer_end: WIRE_PEER_END.into(),
                    delay_ms: *delay_ms,
                    jitter_ms: *jitter_ms,
                    loss: *loss,
                },
            };
            (mechanism, Measure::EchoDelay { from: host.clone(), to, count: DELAY_ECHOES, added_ms: *delay_ms, jitter_ms: *jitter_ms, loss: *loss })
        }
        Fault::Dnat { proto, dport, to, to_host, .. } => {
            let direct = match to_host {
                Some(h) => SocketAddr::new(cx.v4(h)?, to.port()),
                None => *to,
            };
            if proto != "tcp" {
                return cx.refuse(format!("a {proto} port forward cannot be measured by a connection"), "forward a TCP port");
            }
            let Some(from) = cx.plan.hosts.iter().find(|x| x.name != host).map(|x| x.name.clone()) else {
                return cx.refuse(format!("no other host to measure the forward on {host} from"), "add a client host");
            };
            let via = SocketAddr::new(cx.v4(&host)?, *dport);
            (Mechanism::Dnat { table: NFT_TABLE.into(), chain: "prerouting".into(), proto: proto.clone(), dport: *dport, to: direct }, Measure::Dnat { from, via, direct })
        }
        Fault::Nft { rule, .. } => nft_step(cx, &host, rule)?,
        Fault::ConntrackTable { max_entries, fill_from, fill_to, fill_port, .. } => {
            let to = SocketAddr::new(cx.v4(fill_to)?, *fill_port);
            let mechanism = Mechanism::ConntrackTable { table: CT_TABLE.into(), chain: CT_CHAIN.into(), max: *max_entries, fill_from: fill_from.clone(), fill_to: to };
            (mechanism, Measure::ConntrackFull { from: fill_from.clone(), to, max: *max_entries })
        }
        Fault::EbpfDrop { interface, egress, proto, dport, from, loss, .. } => ebpf_step(cx, &host, interface, *egress, proto.as_deref(), *dport, from.as_ref(), *loss)?,
    };
    Ok(FaultStep { index: cx.index, host, summary: cx.fault.describe(), mechanism, measure })
}

fn nft_step(cx: &Cx, host: &str, rule: &NftRule) -> Result<(Mechanism, Measure), PlanError> {
    let from = cx.prober(host, rule)?;
    let mechanism = Mechanism::Nft { table: NFT_TABLE.into(), chain: rule.hook.name().into(), rule: rule.clone(), resolved: resolved_rule(cx.plan, rule) };
    if rule.frag_needed {
        return pmtu_step(cx, host, mechanism);
    }
    let target = match (rule.hook, &rule.to) {
        (NftHook::Input, _) => host.to_string(),
        (_, Some(t)) => t.clone(),
        (hook, None) => return cx.refuse(format!("a rule on the {} hook without `to` has no destination to probe", hook.name()), "add `to = \"HOST\"`, the host whose traffic the rule filters"),
    };
    let to = cx.v4(&target)?;
    let icmp_like = rule.proto.as_deref().is_none_or(|p| p == "icmp");
    let measure = match rule.action {
        NftAction::Loss { permille } if icmp_like => Measure::EchoLoss { from, to, count: LOSS_ECHOES, spacing_us: 50, loss: f64::from(permille) / 1000.0 },
        NftAction::Loss { .. } => {
            return cx.refuse("loss on one protocol other than ICMP cannot be measured by echoes", "leave `proto` out (loss on every protocol, TCP included) or use proto = \"icmp\"");
        }
        NftAction::Limit { per_second, burst } if icmp_like => {
            // Spread the burst over at most 100 ms, shorter for a fast policer, so that
            // at most about half of it should pass.
            let count = LOSS_ECHOES;
            let want_secs = ((f64::from(count) / 2.0 - f64::from(burst)).max(1.0) / f64::from(per_second)).clamp(0.005, 0.1);
            let spacing_us = ((want_secs * 1e6 / f64::from(count)) as u64).max(10);
            Measure::EchoPolicer { from, to, count, spacing_us, per_second, burst }
        }
        NftAction::Limit { .. } => return cx.refuse("a policer on one protocol other than ICMP cannot be measured by echoes", "leave `proto` out or use proto = \"icmp\""),
        NftAction::ConnLimit { max } if max <= MAX_CONN_LIMIT_MEASURED => Measure::ConnLimit { from, to: SocketAddr::new(to, rule.dport.unwrap_or(0)), max },
        NftAction::ConnLimit { .. } => {
            return cx.refuse(format!("more than {MAX_CONN_LIMIT_MEASURED} connections would be needed to show the limit"), format!("use max_connections of at most {MAX_CONN_LIMIT_MEASURED}"));
        }
        action => {
            let expect = match (rule.proto.as_deref(), rule.dport, action) {
                (Some("tcp"), Some(_), NftAction::Drop) => ConnectOutcome::TimesOut,
                (Some("tcp"), Some(_), NftAction::RejectTcpReset) => ConnectOutcome::Refused,
                (Some("tcp"), Some(_), _) => ConnectOutcome::IcmpError,
                (None | Some("icmp"), None, NftAction::Drop) => {
                    return Ok((mechanism, Measure::EchoLoss { from, to, count: 50, spacing_us: 100, loss: 1.0 }));
                }
                _ => return cx.refuse("this match cannot be measured by a TCP connection or echoes", "match TCP with a `dport`, or ICMP / every protocol"),
            };
            Measure::Connect { from, to: SocketAddr::new(to, rule.dport.unwrap_or(0)), expect }
        }
    };
    Ok((mechanism, measure))
}

/// A frag-needed drop on `host` (a router) is probed by a don't-fragment echo across
/// it: from the neighbour on one of its other interfaces to the neighbour behind its
/// smallest-MTU interface, one full 1500-byte datagram, which that link cannot carry.
fn pmtu_step(cx: &Cx, host: &str, mechanism: Mechanism) -> Result<(Mechanism, Measure), PlanError> {
    let Some(h) = cx.plan.hosts.iter().find(|h| h.name == host) else { return cx.refuse(format!("no host {host}"), "name a declared host") };
    let small = h.interfaces.iter().filter(|i| i.mtu.is_some_and(|m| (m as usize) < PMTU_PROBE_PAYLOAD + 28)).min_by_key(|i| i.mtu);
    let Some(small) = small else {
        return cx.refuse(format!("{host} has no interface with an MTU below 1500 for a frag-needed drop to matter"), "give the narrow link of the path a smaller `mtu`");
    };
    let (far, to) = cx.neighbour(host, &small.name)?;
    let near = h.interfaces.iter().filter(|i| i.name != small.name).find_map(|i| neighbour(cx.plan, host, &i.name)).filter(|(n, _)| *n != far);
    let Some((from, _)) = near else {
        return cx.refuse(format!("no host on another side of {host} to send a large packet through {}", small.name), "put the router between two links with hosts on them");
    };
    Ok((mechanism, Measure::PmtuBlackhole { from, to, payload: PMTU_PROBE_PAYLOAD }))
}

#[allow(clippy::too_many_arguments)]
fn ebpf_step(cx: &Cx, host: &str, interface: &str, egress: bool, proto: Option<&str>, dport: Option<u16>, from: Option<&NftSource>, loss: f64) -> Result<(Mechanism, Measure), PlanError> {
    let source = match from {
        None => None,
        Some(NftSource::Prefix(c)) => Some(*c),
        Some(NftSource::Host(h)) => Some(Cidr { addr: cx.v4(h)?, prefix: 32 }),
    };
    let mechanism = Mechanism::EbpfTc {
        interface: interface.into(),
        direction: if egress { "egress" } else { "ingress" }.into(),
        program: TC_PROGRAM.into(),
        proto: proto.map(str::to_string),
        dport,
        source,
        drop_ppm: (loss.clamp(0.0, 1.0) * 1e6).round() as u32,
    };
    let (nb, nb_addr) = cx.neighbour(host, interface)?;
    let prober = match from {
        Some(NftSource::Host(x)) => x.clone(),
        _ => nb,
    };
    let target = cx.v4(host)?;
    let measure = match (proto, dport) {
        (None | Some("icmp"), None) if egress => Measure::EchoLoss { from: host.to_string(), to: nb_addr, count: LOSS_ECHOES, spacing_us: 50, loss },
        (None | Some("icmp"), None) => Measure::EchoLoss { from: prober, to: target, count: LOSS_ECHOES, spacing_us: 50, loss },
        (Some("tcp"), Some(p)) if loss >= 1.0 && !egress => Measure::Connect { from: prober, to: SocketAddr::new(target, p), expect: ConnectOutcome::TimesOut },
        _ => {
            return cx.refuse(
                "only ICMP/every-protocol drops, and a full TCP drop on ingress, can be measured from outside",
                "drop every protocol or ICMP (any percent), or TCP to a port at 100% on ingress",
            );
        }
    };
    Ok((mechanism, measure))
}

#[cfg(test)]
#[path = "faults_tests.rs"]
mod tests;
