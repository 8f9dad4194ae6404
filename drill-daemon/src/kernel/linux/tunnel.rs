//! Tunnel links (`tunnel = "vxlan"`): what a tunnel carries is a given of the story, so
//! it must hold against anything a learner types in a host. Each end's VXLAN device is
//! created in a hidden underlay namespace of its own (its UDP socket and outer routing
//! stay there) and then moved into its host; the two underlays are joined by a veth pair
//! whose MTU is what the tunnel carries plus the VXLAN overhead. A host sees a real
//! tunnel device (`ip -d link` shows vxlan and its link-netns); raising its MTU does not
//! widen the underlay, as on a real network. The outer packets carry DF (`df set`), so
//! the underlay never fragments them: a packet larger than the tunnel carries does not
//! cross it, whatever the ends' MTU (measured: with the kernel's default, DF unset, the
//! underlay fragmented them and a raised MTU lifted the limit).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;

use anyhow::{Context, Result, anyhow};
use netlink_packet_route::link::{InfoData, InfoVeth, VxlanDf};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth, LinkVxlan};

use drill_core::plan::{PlanLink, PlanTunnel};

use super::netns;
use super::topology::{Ns, link_index, write_sysctls};

/// The underlay's interface in each underlay namespace.
const UNDERLAY_IF: &str = "u0";
/// IANA's VXLAN port.
const VXLAN_PORT: u16 = 4789;

/// Builds the tunnel of link `l`: underlays, their veth pair, and a VXLAN device in each
/// host named as the link's end (addresses, MTU and up come with the host's interfaces).
pub async fn build(l: &PlanLink, t: &PlanTunnel, root: &rtnetlink::Handle, ns: &BTreeMap<String, Ns>, host_netns: [&str; 2]) -> Result<()> {
    let get = |n: &str| ns.get(n).ok_or_else(|| anyhow!("no namespace for tunnel underlay {n}"));
    let open = |n: &str| File::open(netns::netns_path(n)).with_context(|| format!("opening namespace {n}"));
    let off = [("net.ipv6.conf.all.disable_ipv6".to_string(), "1".to_string()), ("net.ipv6.conf.default.disable_ipv6".to_string(), "1".to_string())];
    for u in &t.underlay {
        write_sysctls(&get(u)?.worker, &off).await.with_context(|| format!("tunnel underlay {u}"))?;
    }
    let (fa, fb) = (open(&t.underlay[0])?, open(&t.underlay[1])?);
    let peer = LinkMessageBuilder::<LinkUnspec>::default().name(UNDERLAY_IF).mtu(t.underlay_mtu).setns_by_fd(fb.as_raw_fd()).build();
    let msg = LinkVeth::new(UNDERLAY_IF, UNDERLAY_IF).mtu(t.underlay_mtu).set_info_data(InfoData::Veth(InfoVeth::Peer(peer))).setns_by_fd(fa.as_raw_fd()).build();
    root.link().add(msg).execute().await.with_context(|| format!("creating the underlay of tunnel {}:{} <-> {}:{}", l.a_host, l.a_if, l.b_host, l.b_if))?;
    let ends = [(&l.a_if, host_netns[0]), (&l.b_if, host_netns[1])];
    for (i, (ifname, host_ns)) in ends.iter().enumerate() {
        let nl = &get(&t.underlay[i])?.nl;
        let (local, remote) = (t.underlay_addrs[i], t.underlay_addrs[1 - i]);
        let (std::net::IpAddr::V4(local4), std::net::IpAddr::V4(remote4)) = (local.addr, remote.addr) else {
            return Err(anyhow!("tunnel underlay addresses must be IPv4"));
        };
        let u0 = link_index(nl, UNDERLAY_IF).await?;
        nl.address().add(u0, local.addr, local.prefix).replace().execute().await.with_context(|| format!("underlay {}: adding {local}", t.underlay[i]))?;
        nl.link().set(LinkUnspec::new_with_index(u0).up().build()).execute().await.with_context(|| format!("underlay {}: bringing {UNDERLAY_IF} up", t.underlay[i]))?;
        let lo = link_index(nl, "lo").await?;
        nl.link().set(LinkUnspec::new_with_index(lo).up().build()).execute().await?;
        let host = File::open(netns::netns_path(host_ns)).with_context(|| format!("opening namespace {host_ns}"))?;
        let vx = LinkVxlan::new(ifname, t.vni).local(local4).remote(remote4).port(VXLAN_PORT).learning(false).df(VxlanDf::Set).mtu(t.mtu).setns_by_fd(host.as_raw_fd()).build();
        nl.link().add(vx).execute().await.with_context(|| format!("creating VXLAN {ifname} (vni {}) in {} for its host", t.vni, t.underlay[i]))?;
    }
    Ok(())
}
