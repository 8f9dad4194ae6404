//! `compile`: a scenario to the plan of one drill (names, addresses, routes, services,
//! probes, checks, fault steps), every name and address decided before the kernel is touched.

use super::*;

/// The addresses of every tunnel's underlay (198.51.100.0/30, TEST-NET-2): each underlay
/// is a namespace of its own, so tunnels never share them.
const UNDERLAY: [Cidr; 2] = [Cidr { addr: IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 1)), prefix: 30 }, Cidr { addr: IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 2)), prefix: 30 }];

/// Sysctls every host gets before its links exist: no duplicate address detection,
/// so IPv6 addresses are usable at once.
pub const EARLY_SYSCTLS: &[(&str, &str)] = &[("net.ipv6.conf.all.accept_dad", "0"), ("net.ipv6.conf.default.accept_dad", "0")];

/// Fills in the IPv4 addresses a scenario left out: each segment without a given
/// subnet gets 10.(200+slot).k.0/24 (k counts such segments); members get .1, .2, ...
/// skipping given addresses.
fn allocate(segments: &[Segment], slot: u8) -> Vec<Vec<Vec<Cidr>>> {
    let mut k = 0u8;
    segments
        .iter()
        .map(|seg| {
            let need = seg.members.iter().any(|m| !m.addresses.iter().any(|a| a.addr.is_ipv4()));
            if !need {
                return seg.members.iter().map(|m| m.addresses.clone()).collect();
            }
            let subnet = seg.subnet.unwrap_or_else(|| {
                let c = Cidr { addr: IpAddr::V4(Ipv4Addr::new(10, topo::POOL.0.saturating_add(slot), k, 0)), prefix: 24 };
                k = k.wrapping_add(1);
                c
            });
            let IpAddr::V4(base) = subnet.addr else { unreachable!("validated IPv4 subnet") };
            let base = u32::from(base) & (u32::MAX << (32 - subnet.prefix));
            let taken: Vec<IpAddr> = seg.members.iter().flat_map(|m| m.addresses.iter().map(|a| a.addr)).collect();
            let mut host_part = 1u32;
            seg.members
                .iter()
                .map(|m| {
                    let mut addrs = m.addresses.clone();
                    if !addrs.iter().any(|a| a.addr.is_ipv4()) {
                        let addr = loop {
                            let a = IpAddr::V4(Ipv4Addr::from(base + host_part));
                            host_part += 1;
                            if !taken.contains(&a) {
                                break a;
                            }
                        };
                        addrs.insert(0, Cidr { addr, prefix: subnet.prefix });
                    }
                    addrs
                })
                .collect()
        })
        .collect()
}

/// Compiles a validated scenario into the plan of drill `drill_id`, allocating from
/// block `slot`, with the delay backend of `backends`. Refuses a fault the engine
/// could not measure after apply.
pub fn compile(s: &Scenario, drill_id: &str, slot: u8, backends: Backends) -> Result<Plan, PlanError> {
    let addrs = allocate(&s.segments, slot);
    let mut hosts: Vec<PlanHost> = s
        .hosts
        .iter()
        .map(|h| PlanHost {
            name: h.name.clone(),
            netns: netns_name(drill_id, &h.name),
            hostname: h.name.clone(),
            interfaces: Vec::new(),
            routes: Vec::new(),
            sysctls: Vec::new(),
            masquerade: h.masquerade.clone(),
            etc_hosts: String::new(),
            resolv_conf: String::new(),
            services: Vec::new(),
            limits: h.limits.clone(),
        })
        .collect();
    let (links, switches) = links_and_switches(s, drill_id, &addrs, &mut hosts);
    routes(s, &addrs, &mut hosts);
    let etc_hosts = etc_hosts(s, &hosts);
    services(s, &addrs, &mut hosts, &etc_hosts);
    let probes = probes(s);
    let mut plan = Plan {
        drill_id: drill_id.to_string(),
        scenario: s.id.clone(),
        slot,
        hosts,
        links,
        switches,
        backends,
        tls: s.uses_tls(),
        faults: Vec::new(),
        probes,
        checks: s.checks.clone(),
        window_secs: s.window_secs,
        files: files::compile(s),
    };
    plan.faults = faults::compile(&plan, &s.faults, backends)?;
    for &i in &s.red_herrings {
        if let Some(f) = plan.faults.get_mut(i) {
            f.summary.push_str(" (red herring: harmless, guarded by no check)");
        }
    }
    Ok(plan)
}

/// Each segment's interfaces on its hosts, and the segment as a link (veth pair or
/// tunnel) or a switch.
fn links_and_switches(s: &Scenario, drill_id: &str, addrs: &[Vec<Vec<Cidr>>], hosts: &mut [PlanHost]) -> (Vec<PlanLink>, Vec<PlanSwitch>) {
    let mut links = Vec::new();
    let mut switches = Vec::new();
    for (seg, seg_addrs) in s.segments.iter().zip(addrs) {
        for (i, (m, a)) in seg.members.iter().zip(seg_addrs).enumerate() {
            let peer = match &seg.switch {
                Some(sw) => sw.clone(),
                None => seg.members[1 - i.min(1)].host.clone(),
            };
            if let Some(h) = hosts.iter_mut().find(|h| h.name == m.host) {
                h.interfaces.push(PlanInterface { name: m.ifname.clone(), addresses: a.clone(), mtu: m.mtu, peer });
            }
        }
        match &seg.switch {
            None => {
                let (a, b) = (&seg.members[0], &seg.members[1]);
                let tunnel = seg.tunnel.map(|t| PlanTunnel {
                    vni: 100 + links.len() as u32,
                    mtu: t.mtu,
                    underlay_mtu: t.underlay_mtu(),
                    underlay: [underlay_netns_name(drill_id, &a.host, &a.ifname), underlay_netns_name(drill_id, &b.host, &b.ifname)],
                    underlay_addrs: [UNDERLAY[0], UNDERLAY[1]],
                });
                links.push(PlanLink { a_host: a.host.clone(), a_if: a.ifname.clone(), b_host: b.host.clone(), b_if: b.ifname.clone(), tunnel });
            }
            Some(name) => {
                let ports = seg
                    .members
                    .iter()
                    .enumerate()
                    .map(|(i, m)| PlanPort { host: m.host.clone(), host_if: m.ifname.clone(), port: if m.host.len() <= topo::MAX_IFNAME { m.host.clone() } else { format!("port{i}") } })
                    .collect();
                switches.push(PlanSwitch { name: name.clone(), netns: netns_name(drill_id, name), mtu: seg.members.iter().filter_map(|m| m.mtu).max(), path_mtu: seg.path_mtu, ports });
            }
        }
    }
    (links, switches)
}

/// Routes: resolve `via = HOST` to that host's address on a shared segment; forwarding and
/// the host's sysctls.
fn routes(s: &Scenario, addrs: &[Vec<Vec<Cidr>>], hosts: &mut [PlanHost]) {
    for (h, ph) in s.hosts.iter().zip(hosts.iter_mut()) {
        for r in &h.routes {
            let via = match &r.via {
                Via::Address(a) => Some(*a),
                Via::Host(gw) => s.segments.iter().zip(addrs).find_map(|(seg, sa)| {
                    seg.members.iter().any(|m| m.host == h.name).then_some(())?;
                    let gi = seg.members.iter().position(|m| &m.host == gw)?;
                    sa[gi].iter().find(|c| c.addr.is_ipv6() == r.v6).map(|c| c.addr)
                }),
            };
            if let Some(via) = via {
                ph.routes.push(PlanRoute { to: r.to, via });
            }
        }
        if h.forwarding {
            ph.sysctls.push(("net.ipv4.ip_forward".into(), "1".into()));
            ph.sysctls.push(("net.ipv6.conf.all.forwarding".into(), "1".into()));
        }
        ph.sysctls.extend(h.sysctls.iter().cloned());
    }
}

/// /etc/hosts: every host by name, at its first address.
fn etc_hosts(s: &Scenario, hosts: &[PlanHost]) -> String {
    let mut etc_hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for h in hosts {
        if let Some(a) = h.interfaces.iter().flat_map(|i| i.addresses.iter()).next() {
            // Names an ingress serves (nginx's server_name) point at its host, as DNS would.
            let mut names = vec![h.name.clone()];
            for n in s.services.iter().filter(|svc| svc.host == h.name).flat_map(|svc| svc.workload.served_names()) {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
            let _ = writeln!(etc_hosts, "{}\t{}", a.addr, names.join(" "));
        }
    }
    etc_hosts
}

/// Each host's /etc/hosts, resolv.conf and services (configs rendered, names resolved as
/// the host reaches them).
fn services(s: &Scenario, addrs: &[Vec<Vec<Cidr>>], hosts: &mut [PlanHost], etc_hosts: &str) {
    // A host's address as `from` reaches it: on a segment both are on, else its first.
    let first: std::collections::BTreeMap<String, IpAddr> =
        hosts.iter().filter_map(|h| Some((h.name.clone(), h.interfaces.iter().flat_map(|i| i.addresses.iter()).find(|a| a.addr.is_ipv4())?.addr))).collect();
    let seen_from = |from: &str, target: &str| -> Option<IpAddr> {
        let shared = s.segments.iter().zip(addrs).find_map(|(seg, sa)| {
            seg.members.iter().any(|m| m.host == from).then_some(())?;
            let gi = seg.members.iter().position(|m| m.host == target)?;
            sa[gi].iter().find(|c| c.addr.is_ipv4()).map(|c| c.addr)
        });
        shared.or_else(|| first.get(target).copied())
    };
    for h in hosts.iter_mut() {
        h.etc_hosts = etc_hosts.to_string();
        let faulty_dns = s.faults.iter().find_map(|f| match f {
            crate::scenario::Fault::ResolvConf { host, dns } if *host == h.name => Some(dns),
            _ => None,
        });
        let dns = faulty_dns.or_else(|| s.hosts.iter().find(|x| x.name == h.name).and_then(|x| x.dns.as_ref()));
        if let Some(d) = dns {
            h.resolv_conf = d.resolve(&|n| seen_from(&h.name, n)).render();
        }
        for svc in s.services.iter().filter(|svc| svc.host == h.name) {
            let mut w = s.initial_workload(&h.name, &svc.name).unwrap_or(&svc.workload).clone();
            if let Workload::Dnsmasq(c) = &mut w {
                c.resolve_hosts(&|n| seen_from(&h.name, n));
            }
            h.services.push(PlanService {
                name: svc.name.clone(),
                kind: w.kind().to_string(),
                config_path: w.config_path(&svc.name),
                log_path: w.log_path(&svc.name),
                config_text: w.render_config(&svc.name),
                tls_names: {
                    let mut n = svc.workload.tls_names();
                    n.extend(w.tls_names().into_iter().filter(|x| !svc.workload.tls_names().contains(x)));
                    n
                },
                workload: w,
                restart: svc.restart,
            });
        }
    }
}

/// The TCP state probes the checks need, one per host with every state it watches.
fn probes(s: &Scenario) -> Vec<PlanProbe> {
    let mut probes: Vec<PlanProbe> = Vec::new();
    for c in &s.checks {
        if let Check::TcpStateDwell { host, state, .. } = c {
            match probes.iter_mut().find(|PlanProbe::TcpStateDwell { host: h, .. }| h == host) {
                Some(PlanProbe::TcpStateDwell { states, .. }) if !states.contains(state) => states.push(*state),
                Some(_) => {}
                None => probes.push(PlanProbe::TcpStateDwell { host: host.clone(), states: vec![*state] }),
            }
        }
    }
    probes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario;

    #[test]
    fn compile_names_everything_with_prefix_and_id() {
        let s = scenario::parse("t.toml", scenario::tests_support::GOOD).unwrap();
        let p = compile(&s, "a1b2c3", 0, Backends::default()).unwrap();
        assert_eq!(p.hosts[0].netns, "drill-a1b2c3-client");
        assert_eq!(p.hosts[1].interfaces[0].name, "eth0");
        assert_eq!(p.links[0].b_if, "eth0");
        assert!(p.hosts[0].etc_hosts.contains("10.77.0.2\tapi\n"));
        let svc = &p.hosts[1].services[0];
        assert_eq!(svc.config_path, "/etc/httpd/httpd.toml");
        assert!(svc.config_text.contains("close_on_eof = false"), "fault must be applied");
        assert_eq!(p.probes, vec![PlanProbe::TcpStateDwell { host: "api".into(), states: vec![TcpState::CloseWait] }]);
        let text = p.to_string();
        assert!(text.contains("client:eth0 <-> api:eth0"), "{text}");
        assert!(text.contains("service-config on api/httpd: close_on_eof = false"), "{text}");
    }
}
