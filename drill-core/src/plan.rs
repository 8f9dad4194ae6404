//! Plans: what the daemon will create for one drill, computed before anything
//! touches the kernel. `drill start --dry-run` prints one.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::scenario::{Check, Cidr, Scenario, Segment, TcpState, Via};
use crate::topo;
use crate::workload::Workload;

mod compile;
mod display;
mod faults;
pub mod files;
pub use compile::{EARLY_SYSCTLS, compile};
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drill_ids() {
        assert!(is_drill_id("0a9f3c"));
        assert!(!is_drill_id("0a9f3"));
        assert!(!is_drill_id("0A9F3C"));
    }
}
