//! The plan as `drill start --dry-run` prints it.

use super::*;

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
