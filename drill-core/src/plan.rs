//! Plans: what the daemon will create for one drill, computed before anything
//! touches the kernel. `drill start --dry-run` prints one.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use crate::scenario::{Check, Cidr, Scenario, TcpState};
use crate::workload::{self, Workload};

/// Names of kernel resources for one drill. Every name carries the prefix and the id.
pub fn netns_name(drill_id: &str, host: &str) -> String {
    format!("{}-{drill_id}-{host}", crate::PREFIX)
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
    pub hosts: Vec<PlanHost>,
    pub links: Vec<PlanLink>,
    pub faults: Vec<String>,
    pub probes: Vec<PlanProbe>,
    pub checks: Vec<Check>,
    pub window_secs: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanHost {
    pub name: String,
    pub netns: String,
    pub hostname: String,
    pub interfaces: Vec<PlanInterface>,
    /// Content of the host's /etc/hosts.
    pub etc_hosts: String,
    pub services: Vec<PlanService>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanInterface {
    pub name: String,
    pub addresses: Vec<Cidr>,
    pub peer_host: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanLink {
    pub a_host: String,
    pub a_if: String,
    pub b_host: String,
    pub b_if: String,
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
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PlanProbe {
    /// TCP state dwell times on `host` (sock:inet_sock_set_state).
    TcpStateDwell { host: String, states: Vec<TcpState> },
}

/// Compiles a validated scenario into the plan of drill `drill_id`.
pub fn compile(s: &Scenario, drill_id: &str) -> Plan {
    let mut hosts: Vec<PlanHost> = s
        .hosts
        .iter()
        .map(|h| PlanHost {
            name: h.name.clone(),
            netns: netns_name(drill_id, &h.name),
            hostname: h.name.clone(),
            interfaces: Vec::new(),
            etc_hosts: String::new(),
            services: Vec::new(),
        })
        .collect();
    let mut links = Vec::new();
    for l in &s.links {
        let mut names = Vec::new();
        for (ep, peer) in [(&l.a, &l.b.host), (&l.b, &l.a.host)] {
            let Some(h) = hosts.iter_mut().find(|h| h.name == ep.host) else { continue };
            let name = format!("eth{}", h.interfaces.len());
            h.interfaces.push(PlanInterface { name: name.clone(), addresses: vec![ep.address], peer_host: peer.clone() });
            names.push(name);
        }
        if let [a_if, b_if] = names.as_slice() {
            links.push(PlanLink { a_host: l.a.host.clone(), a_if: a_if.clone(), b_host: l.b.host.clone(), b_if: b_if.clone() });
        }
    }
    // /etc/hosts: every host by name, at its first address.
    let mut etc_hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for h in &s.hosts {
        if let Some(a) = s.host_address(&h.name) {
            let _ = writeln!(etc_hosts, "{}\t{}", a.addr, h.name);
        }
    }
    for h in &mut hosts {
        h.etc_hosts = etc_hosts.clone();
        for svc in s.services.iter().filter(|svc| svc.host == h.name) {
            let w = s.initial_workload(&h.name, &svc.name).unwrap_or(&svc.workload).clone();
            h.services.push(PlanService {
                name: svc.name.clone(),
                kind: w.kind().to_string(),
                config_path: workload::config_path(&svc.name),
                log_path: workload::log_path(&svc.name),
                config_text: w.render_config(&svc.name),
                workload: w,
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
    Plan {
        drill_id: drill_id.to_string(),
        scenario: s.id.clone(),
        hosts,
        links,
        faults: s.faults.iter().map(|f| f.describe()).collect(),
        probes,
        checks: s.checks.clone(),
        window_secs: s.window_secs,
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
                writeln!(f, "    {:<6} {}  (to {})", i.name, addrs.join(" "), i.peer_host)?;
            }
            for s in &h.services {
                writeln!(f, "    service {} ({}), config {}", s.name, s.kind, s.config_path)?;
            }
        }
        writeln!(f, "links:")?;
        for l in &self.links {
            writeln!(f, "  {}:{} <-> {}:{}  (veth pair)", l.a_host, l.a_if, l.b_host, l.b_if)?;
        }
        writeln!(f, "faults:")?;
        for x in &self.faults {
            writeln!(f, "  {x}")?;
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
        let p = compile(&s, "a1b2c3");
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
