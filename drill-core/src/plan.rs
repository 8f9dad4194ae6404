//! Plans: what the daemon will create for one drill, computed before anything
//! touches the kernel. `drill start --dry-run` prints one.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::scenario::{Check, Cidr, Scenario, Segment, TcpState, Via};
use crate::topo;
use crate::workload::Workload;

mod faults;
pub mod files;
pub use faults::{
    Backends, CONNECT_TIMEOUT_MS, CT_CHAIN, CT_TABLE, ConnectOutcome, DELAY_ECHOES, DelayBackend, FaultStep, LOSS_ECHOES, MAX_CONN_LIMIT_MEASURED, Measure, Mechanism, NFT_TABLE, PMTU_PROBE_PAYLOAD,
    PlanError, TC_PROGRAM, WIRE_HOST_END, WIRE_PEER_END, neighbour,
};
pub use files::PlanFile;

/// Names of kernel resources for one drill. Every name carries the prefix and the id.
pub fn netns_name(drill_id: &str, host: &str) -> String {
    format!("{}-{drill_id}-{host}", crate::PREFIX)
}

/// The hidden namespace of the delay wire behind `host:iface` (a `.` keeps it apart
/// from every host name).
pub fn wire_netns_name(drill_id: &str, host: &str, iface: &str) -> String {
    format!("{}-{drill_id}-wire.{host}.{iface}", crate::PREFIX)
}

/// The hidden underlay namespace of the tunnel end `host:iface`.
pub fn underlay_netns_name(drill_id: &str, host: &str, iface: &str) -> String {
    format!("{}-{drill_id}-underlay.{host}.{iface}", crate::PREFIX)
}

/// Drill ids are 6 lowercase hex digits: short enough for interface names
/// (`dr<id>..` fits in IFNAMSIZ) and unique among concurrent drills.
pub fn is_drill_id(s: &str) -> bool {
    s.len() == 6 && s.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub drill_id: String,
    pub scenario: String,
    /// Which 10.(200+slot).0.0/16 block allocated addresses come from.
    pub slot: u8,
    pub hosts: Vec<PlanHost>,
    pub links: Vec<PlanLink>,
    pub switches: Vec<PlanSwitch>,
    /// How the daemon makes delays on this machine (probed once per daemon).
    pub backends: Backends,
    /// Whether anything in the drill speaks TLS (its hosts then get a CA and certificates).
    pub tls: bool,
    /// Every fault as it will be applied and measured, in the scenario's order.
    pub faults: Vec<FaultStep>,
    pub probes: Vec<PlanProbe>,
    pub checks: Vec<Check>,
    pub window_secs: f64,
    /// Pack files placed in hosts at start, before their services.
    #[serde(default)]
    pub files: Vec<PlanFile>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanHost {
    pub name: String,
    pub netns: String,
    pub hostname: String,
    pub interfaces: Vec<PlanInterface>,
    pub routes: Vec<PlanRoute>,
    /// Applied after the links exist, in order (forwarding included).
    pub sysctls: Vec<(String, String)>,
    /// Masquerade traffic leaving through this interface (nftables, table `ip nat`).
    pub masquerade: Option<String>,
    /// Content of the host's /etc/hosts.
    pub etc_hosts: String,
    /// Content of the host's /etc/resolv.conf (its `dns` key, or a `resolv-conf`
    /// fault's; empty: no DNS server in the drill).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resolv_conf: String,
    pub services: Vec<PlanService>,
    /// The scenario's limits of the host (cgroup, disk); the engine's defaults elsewhere.
    #[serde(default, skip_serializing_if = "crate::topo::HostLimits::is_default")]
    pub limits: crate::topo::HostLimits,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanInterface {
    pub name: String,
    pub addresses: Vec<Cidr>,
    pub mtu: Option<u32>,
    /// The other host of a link, or the switch's name.
    pub peer: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanRoute {
    /// `None`: default route.
    pub to: Option<Cidr>,
    pub via: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanLink {
    pub a_host: String,
    pub a_if: String,
    pub b_host: String,
    pub b_if: String,
    /// A tunnel instead of a veth pair (see [`PlanTunnel`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<PlanTunnel>,
}

/// A VXLAN link: each end's device is made in its own hidden underlay namespace (where
/// its UDP socket stays) and moved into its host; the underlays are joined by a veth
/// pair of `underlay_mtu`. Hosts see a real tunnel device; none can reach the underlay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanTunnel {
    pub vni: u32,
    /// The MTU the tunnel carries, and its ends' MTU unless an endpoint says otherwise.
    pub mtu: u32,
    pub underlay_mtu: u32,
    /// The underlay namespaces behind end a and end b.
    pub underlay: [String; 2],
    /// The underlay's addresses (a, b): documentation addresses no host routes.
    pub underlay_addrs: [Cidr; 2],
}

/// A switch: a bridge `br0` in its own namespace, one veth per member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanSwitch {
    pub name: String,
    pub netns: String,
    pub mtu: Option<u32>,
    /// The fabric's real path MTU: the `fabric_mtu` classifier (drill-ebpf pathmtu.bpf.c)
    /// on every port's ingress, in the switch's namespace, drops any frame whose packet
    /// (a GSO packet's segments) is larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_mtu: Option<u32>,
    pub ports: Vec<PlanPort>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanPort {
    pub host: String,
    pub host_if: String,
    /// Name of the switch-side end, enslaved to br0.
    pub port: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanService {
    pub name: String,
    pub kind: String,
    pub config_path: String,
    pub log_path: String,
    /// Config file text the service starts with (fault applied).
    pub config_text: String,
    pub workload: Workload,
    /// Names the host needs a certificate of its own for (healthy and faulty configs;
    /// issued by the drill's intermediate CA, see the daemon's tls.rs).
    #[serde(default)]
    pub tls_names: Vec<String>,
    /// When the host's init restarts it.
    #[serde(default, skip_serializing_if = "crate::model::Restart::is_no")]
    pub restart: crate::model::Restart,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PlanProbe {
    /// TCP state dwell times on `host` (sock:inet_sock_set_state).
    TcpStateDwell { host: String, states: Vec<TcpState> },
}

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
    let mut links = Vec::new();
    let mut switches = Vec::new();
    for (seg, seg_addrs) in s.segments.iter().zip(&addrs) {
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
    // Routes: resolve `via = HOST` to that host's address on a shared segment.
    for (h, ph) in s.hosts.iter().zip(hosts.iter_mut()) {
        for r in &h.routes {
            let via = match &r.via {
                Via::Address(a) => Some(*a),
                Via::Host(gw) => s.segments.iter().zip(&addrs).find_map(|(seg, sa)| {
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
    // /etc/hosts: every host by name, at its first address.
    let mut etc_hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for h in &hosts {
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
    // A host's address as `from` reaches it: on a segment both are on, else its first.
    let first: std::collections::BTreeMap<String, IpAddr> =
        hosts.iter().filter_map(|h| Some((h.name.clone(), h.interfaces.iter().flat_map(|i| i.addresses.iter()).find(|a| a.addr.is_ipv4())?.addr))).collect();
    let seen_from = |from: &str, target: &str| -> Option<IpAddr> {
        let shared = s.segments.iter().zip(&addrs).find_map(|(seg, sa)| {
            seg.members.iter().any(|m| m.host == from).then_some(())?;
            let gi = seg.members.iter().position(|m| m.host == target)?;
            sa[gi].iter().find(|c| c.addr.is_ipv4()).map(|c| c.addr)
        });
        shared.or_else(|| first.get(target).copied())
    };
    for h in &mut hosts {
        h.etc_hosts = etc_hosts.clone();
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

impl Plan {
    /// First address of `host` of the given family (for checks and /etc/hosts).
    pub fn host_address(&self, host: &str, v6: bool) -> Option<IpAddr> {
        self.host_addresses(host, v6).into_iter().next()
    }

    /// Every address of `host` of the given family, interfaces in plan order (what an
    /// nft rule that names the host matches).
    pub fn host_addresses(&self, host: &str, v6: bool) -> Vec<IpAddr> {
        self.hosts.iter().filter(|h| h.name == host).flat_map(|h| h.interfaces.iter().flat_map(|i| i.addresses.iter())).map(|c| c.addr).filter(|a| a.is_ipv6() == v6).collect()
    }

    /// Every namespace the plan creates: hosts, then switches, then tunnel underlays.
    pub fn namespaces(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.netns.clone()).chain(self.switches.iter().map(|s| s.netns.clone())).chain(self.underlays()).collect()
    }

    /// The hidden underlay namespaces of the plan's tunnels.
    pub fn underlays(&self) -> impl Iterator<Item = String> + '_ {
        self.links.iter().filter_map(|l| l.tunnel.as_ref()).flat_map(|t| t.underlay.iter().cloned())
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "plan for drill {} (scenario {})", self.drill_id, self.scenario)?;
        writeln!(f, "hosts:")?;
        for h in &self.hosts {
            writeln!(f, "  {:<10} netns {}  hostname {}", h.name, h.netns, h.hostname)?;
            for i in &h.interfaces {
                let addrs: Vec<String> = i.addresses.iter().map(|a| a.to_string()).collect();
                let mtu = i.mtu.map(|m| format!("  mtu {m}")).unwrap_or_default();
                writeln!(f, "    {:<6} {}  (to {}){mtu}", i.name, addrs.join(" "), i.peer)?;
            }
            for r in &h.routes {
                let to = r.to.map_or_else(|| "default".to_string(), |c| c.to_string());
                writeln!(f, "    route {to} via {}", r.via)?;
            }
            for (k, v) in &h.sysctls {
                writeln!(f, "    sysctl {k} = {v}")?;
            }
            if let Some(m) = &h.masquerade {
                writeln!(f, "    nat: masquerade out of {m}")?;
            }
            let l = &h.limits;
            if !l.is_default() {
                let mut parts = Vec::new();
                if let Some(m) = l.memory_bytes {
                    parts.push(format!("memory {} MiB", m >> 20));
                }
                if let Some(p) = l.pids {
                    parts.push(format!("pids {p}"));
                }
                if let Some(c) = l.cpus {
                    parts.push(format!("cpus {c}"));
                }
                if let Some(d) = l.disk_bytes {
                    parts.push(format!("disk {} MiB", d >> 20));
                }
                writeln!(f, "    limits: {}", parts.join(", "))?;
            }
            for x in self.files.iter().filter(|x| x.host == h.name) {
                writeln!(f, "    {x}")?;
            }
            for s in &h.services {
                writeln!(f, "    service {} ({}), config {}", s.name, s.kind, s.config_path)?;
            }
        }
        writeln!(f, "links:")?;
        for l in &self.links {
            match &l.tunnel {
                None => writeln!(f, "  {}:{} <-> {}:{}  (veth pair)", l.a_host, l.a_if, l.b_host, l.b_if)?,
                Some(t) => writeln!(
                    f,
                    "  {}:{} <-> {}:{}  (VXLAN {} carrying {} bytes, over an underlay of MTU {} between hidden netns {} and {})",
                    l.a_host, l.a_if, l.b_host, l.b_if, t.vni, t.mtu, t.underlay_mtu, t.underlay[0], t.underlay[1]
                )?,
            }
        }
        for s in &self.switches {
            let ports: Vec<String> = s.ports.iter().map(|p| format!("{}:{}", p.host, p.host_if)).collect();
            writeln!(f, "  switch {} (bridge br0 in netns {}): {}", s.name, s.netns, ports.join(", "))?;
            if let Some(m) = s.path_mtu {
                writeln!(f, "    path MTU {m}: the fabric_mtu classifier on every port's ingress (in netns {}) drops larger packets (a GSO packet by its segments)", s.netns)?;
            }
        }
        writeln!(f, "faults:")?;
        for x in &self.faults {
            writeln!(f, "  #{} on {}: {x}", x.index + 1, x.host)?;
        }
        writeln!(f, "probes:")?;
        for p in &self.probes {
            let PlanProbe::TcpStateDwell { host, states } = p;
            let st: Vec<&str> = states.iter().map(|s| s.name()).collect();
            writeln!(f, "  tcp-state-dwell on {host}: {} (sock:inet_sock_set_state)", st.join(", "))?;
        }
        writeln!(f, "checks (window {} s):", self.window_secs)?;
        for c in &self.checks {
            writeln!(f, "  {}", c.name())?;
        }
        Ok(())
    }
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

    #[test]
    fn drill_ids() {
        assert!(is_drill_id("0a9f3c"));
        assert!(!is_drill_id("0a9f3"));
        assert!(!is_drill_id("0A9F3C"));
    }
}
