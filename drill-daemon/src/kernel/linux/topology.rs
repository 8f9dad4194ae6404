//! Applies the network part of a plan, through rtnetlink and direct syscalls (no
//! `ip` processes): veth pairs created from the root namespace with both ends placed
//! directly in their namespaces; switches as a bridge in a namespace of their own;
//! addresses, MTUs, routes, sysctls from inside each namespace; masquerade NAT
//! through nftables (`nft -j`, run from a thread inside the namespace).

use std::collections::BTreeMap;
use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use anyhow::{Context, Result, anyhow};
use futures::TryStreamExt;
use netlink_packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use drill_core::plan::{EARLY_SYSCTLS, Plan, PlanHost, PlanRoute};

use crate::kernel::linux::netns::{self, NetnsWorker};

/// One namespace of the plan (host or switch), entered by a worker, with a netlink handle.
#[derive(Clone)]
pub struct Ns {
    pub worker: std::sync::Arc<NetnsWorker>,
    pub nl: rtnetlink::Handle,
}

impl Ns {
    /// Creates the named namespace, starts its worker and opens its netlink handle;
    /// returns the namespace's inode too. Must run inside a tokio runtime.
    pub async fn create(name: &str) -> Result<(u32, Ns)> {
        let ino = netns::create(name)?;
        let worker = std::sync::Arc::new(NetnsWorker::start(name, tokio::runtime::Handle::current())?);
        let nl = worker.netlink().await?;
        Ok((ino, Ns { worker, nl }))
    }
}

/// Builds a plan's whole network (namespaces, links, addresses, routes, sysctls) without
/// hosts' processes: for benchmarks and tests of the network layer. The caller deletes
/// `plan.namespaces()` afterwards.
pub async fn build(plan: &Plan, root: &rtnetlink::Handle) -> Result<BTreeMap<String, Ns>> {
    let mut ns = BTreeMap::new();
    for (name, netns) in plan.hosts.iter().map(|h| (&h.name, &h.netns)).chain(plan.switches.iter().map(|s| (&s.name, &s.netns))) {
        ns.insert(name.clone(), Ns::create(netns).await?.1);
    }
    apply(plan, root, &ns).await?;
    Ok(ns)
}

/// A delay wire spliced into the link behind `host:iface`: the host's interface is
/// paired with the wire's end `a`, the wire's end `b` with what the host would have
/// been paired with. `ns` of [`apply`] must hold the wire's namespace under `netns`.
#[derive(Clone, Debug)]
pub struct Splice {
    pub host: String,
    pub iface: String,
    pub netns: String,
}

/// Creates every link, switch, address, route, sysctl and NAT rule of the plan.
/// `ns` holds every namespace of the plan by host or switch name.
pub async fn apply(plan: &Plan, root: &rtnetlink::Handle, ns: &BTreeMap<String, Ns>) -> Result<()> {
    apply_spliced(plan, root, ns, &[]).await
}

/// [`apply`] with delay wires spliced into some links.
pub async fn apply_spliced(plan: &Plan, root: &rtnetlink::Handle, ns: &BTreeMap<String, Ns>, splices: &[Splice]) -> Result<()> {
    let get = |n: &str| ns.get(n).ok_or_else(|| anyhow!("no namespace for {n}"));
    for h in &plan.hosts {
        let early: Vec<(String, String)> = EARLY_SYSCTLS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        write_sysctls(&get(&h.name)?.worker, &early).await.with_context(|| format!("host {}", h.name))?;
    }
    for s in &plan.switches {
        let nl = &get(&s.name)?.nl;
        let mut br = LinkBridge::new("br0").up();
        if let Some(m) = s.mtu {
            br = br.mtu(m);
        }
        nl.link().add(br.build()).execute().await.with_context(|| format!("switch {}: creating bridge br0", s.name))?;
        link_up(nl, "lo").await.with_context(|| format!("switch {}: bringing lo up", s.name))?;
    }
    for w in splices {
        // The wire's ends carry no addresses: no IPv6 link-local, no DAD, no ND
        // chatter in the learner's captures.
        let off = [("net.ipv6.conf.all.disable_ipv6".to_string(), "1".to_string()), ("net.ipv6.conf.default.disable_ipv6".to_string(), "1".to_string())];
        write_sysctls(&get(&w.netns)?.worker, &off).await.with_context(|| format!("delay wire {}", w.netns))?;
    }
    let netns_of = |n: &str| -> Result<File> {
        let path = plan
            .hosts
            .iter()
            .find(|h| h.name == n)
            .map(|h| &h.netns)
            .or_else(|| plan.switches.iter().find(|s| s.name == n).map(|s| &s.netns))
            .or_else(|| splices.iter().find(|w| w.netns == n).map(|w| &w.netns))
            .ok_or_else(|| anyhow!("plan has no host or switch {n}"))?;
        File::open(netns::netns_path(path)).with_context(|| format!("opening the namespace of {n}"))
    };
    let pairs = veth_pairs(plan, splices)?;
    for (a, a_if, b, b_if) in &pairs {
        let (fa, fb) = (netns_of(a)?, netns_of(b)?);
        let peer = LinkMessageBuilder::<LinkUnspec>::default().name(b_if.clone()).setns_by_fd(fb.as_raw_fd()).build();
        let msg = LinkVeth::new(a_if, b_if).set_info_data(InfoData::Veth(InfoVeth::Peer(peer))).setns_by_fd(fa.as_raw_fd()).build();
        root.link().add(msg).execute().await.with_context(|| format!("creating veth pair {a}:{a_if} <-> {b}:{b_if}"))?;
    }
    for l in &plan.links {
        if let Some(t) = &l.tunnel {
            let netns = |h: &str| plan.hosts.iter().find(|x| x.name == h).map(|x| x.netns.as_str()).ok_or_else(|| anyhow!("plan has no host {h}"));
            crate::kernel::linux::tunnel::build(l, t, root, ns, [netns(&l.a_host)?, netns(&l.b_host)?]).await?;
        }
    }
    for s in &plan.switches {
        let nl = &get(&s.name)?.nl;
        let br = link_index(nl, "br0").await?;
        for p in &s.ports {
            let idx = link_index(nl, &p.port).await.with_context(|| format!("switch {}: port {}", s.name, p.port))?;
            let mut m = LinkUnspec::new_with_index(idx).controller(br).up();
            if let Some(mtu) = s.mtu {
                m = m.mtu(mtu);
            }
            nl.link().set(m.build()).execute().await.with_context(|| format!("switch {}: attaching port {} to br0", s.name, p.port))?;
        }
    }
    for w in splices {
        // As large as anything either side may send: the wire must not be the MTU.
        let mtu = plan.hosts.iter().flat_map(|h| h.interfaces.iter().filter_map(|i| i.mtu)).chain(plan.switches.iter().filter_map(|s| s.mtu)).max().unwrap_or(1500).max(1500);
        let nl = &get(&w.netns)?.nl;
        for end in [crate::kernel::linux::wire::END_HOST, crate::kernel::linux::wire::END_PEER] {
            let idx = link_index(nl, end).await.with_context(|| format!("delay wire {}", w.netns))?;
            nl.link().set(LinkUnspec::new_with_index(idx).mtu(mtu).up().build()).execute().await.with_context(|| format!("delay wire {}: bringing {end} up", w.netns))?;
        }
    }
    for h in &plan.hosts {
        configure_host(h, get(&h.name)?).await.with_context(|| format!("host {}", h.name))?;
    }
    Ok(())
}

/// Every veth pair to create, as (a namespace, a interface, b namespace, b interface),
/// for links and switch ports alike; a link with a delay wire spliced in becomes two
/// pairs, each to one end of the wire.
fn veth_pairs(plan: &Plan, splices: &[Splice]) -> Result<Vec<(String, String, String, String)>> {
    let mut pairs: Vec<(String, String, String, String)> = plan.links.iter().filter(|l| l.tunnel.is_none()).map(|l| (l.a_host.clone(), l.a_if.clone(), l.b_host.clone(), l.b_if.clone())).collect();
    for s in &plan.switches {
        pairs.extend(s.ports.iter().map(|p| (p.host.clone(), p.host_if.clone(), s.name.clone(), p.port.clone())));
    }
    for w in splices {
        let i = pairs
            .iter()
            .position(|(a, ai, b, bi)| (a == &w.host && ai == &w.iface) || (b == &w.host && bi == &w.iface))
            .ok_or_else(|| anyhow!("host {} has no link on {} to splice a delay wire into", w.host, w.iface))?;
        let (a, ai, b, bi) = pairs.remove(i);
        let (other, other_if) = if a == w.host { (b, bi) } else { (a, ai) };
        pairs.push((w.host.clone(), w.iface.clone(), w.netns.clone(), crate::kernel::linux::wire::END_HOST.into()));
        pairs.push((w.netns.clone(), crate::kernel::linux::wire::END_PEER.into(), other, other_if));
    }
    Ok(pairs)
}

async fn configure_host(h: &PlanHost, ns: &Ns) -> Result<()> {
    let nl = &ns.nl;
    link_up(nl, "lo").await.context("bringing lo up")?;
    for i in &h.interfaces {
        let index = link_index(nl, &i.name).await?;
        for a in &i.addresses {
            nl.address().add(index, a.addr, a.prefix).replace().execute().await.with_context(|| format!("adding {a} to {}", i.name))?;
        }
        let mut m = LinkUnspec::new_with_index(index).up();
        if let Some(mtu) = i.mtu {
            m = m.mtu(mtu);
        }
        nl.link().set(m.build()).execute().await.with_context(|| format!("bringing {} up", i.name))?;
    }
    for r in &h.routes {
        add_route(nl, r).await.with_context(|| format!("adding route {} via {}", r.to.map_or_else(|| "default".into(), |c| c.to_string()), r.via))?;
    }
    write_sysctls(&ns.worker, &h.sysctls).await?;
    if let Some(out) = &h.masquerade {
        let out = out.clone();
        ns.worker.run(move || masquerade(&out)).await?.context("installing the masquerade rule (nftables)")?;
    }
    Ok(())
}

async fn add_route(nl: &rtnetlink::Handle, r: &PlanRoute) -> Result<()> {
    let msg = match r.via {
        IpAddr::V4(gw) => {
            let (dst, len) = match r.to.map(|c| (c.addr, c.prefix)) {
                Some((IpAddr::V4(d), l)) => (d, l),
                _ => (std::net::Ipv4Addr::UNSPECIFIED, 0),
            };
            RouteMessageBuilder::<std::net::Ipv4Addr>::new().destination_prefix(dst, len).gateway(gw).build()
        }
        IpAddr::V6(gw) => {
            let (dst, len) = match r.to.map(|c| (c.addr, c.prefix)) {
                Some((IpAddr::V6(d), l)) => (d, l),
                _ => (std::net::Ipv6Addr::UNSPECIFIED, 0),
            };
            RouteMessageBuilder::<std::net::Ipv6Addr>::new().destination_prefix(dst, len).gateway(gw).build()
        }
    };
    nl.route().add(msg).replace().execute().await?;
    Ok(())
}

/// Writes sysctls from the worker's thread (inside the namespace), so /proc/sys/net
/// is the namespace's own. Errors name the key and what the kernel said.
pub async fn write_sysctls(worker: &NetnsWorker, kv: &[(String, String)]) -> Result<()> {
    let kv = kv.to_vec();
    worker
        .run(move || -> Result<()> {
            for (k, v) in &kv {
                let path = format!("/proc/sys/{}", k.replace('.', "/"));
                std::fs::write(&path, v).with_context(|| format!("sysctl {k} = {v} ({path})"))?;
            }
            Ok(())
        })
        .await?
}

/// `table ip nat { chain postrouting { type nat hook postrouting priority srcnat; oifname OUT masquerade } }`
fn masquerade(out: &str) -> Result<()> {
    use nftables::{batch::Batch, expr, schema, stmt, types};
    let mut b = Batch::new();
    let table = "nat";
    b.add(schema::NfListObject::Table(schema::Table { family: types::NfFamily::IP, name: table.into(), ..Default::default() }));
    b.add(schema::NfListObject::Chain(schema::Chain {
        family: types::NfFamily::IP,
        table: table.into(),
        name: "postrouting".into(),
        _type: Some(types::NfChainType::NAT),
        hook: Some(types::NfHook::Postrouting),
        prio: Some(100),
        policy: Some(types::NfChainPolicy::Accept),
        ..Default::default()
    }));
    b.add(schema::NfListObject::Rule(schema::Rule {
        family: types::NfFamily::IP,
        table: table.into(),
        chain: "postrouting".into(),
        expr: vec![
            stmt::Statement::Match(stmt::Match {
                left: expr::Expression::Named(expr::NamedExpression::Meta(expr::Meta { key: expr::MetaKey::Oifname })),
                right: expr::Expression::String(out.to_string().into()),
                op: stmt::Operator::EQ,
            }),
            stmt::Statement::Masquerade(None),
        ]
        .into(),
        ..Default::default()
    }));
    nftables::helper::apply_ruleset(&b.to_nftables()).map_err(|e| anyhow!("{e}"))
}

pub async fn link_index(handle: &rtnetlink::Handle, name: &str) -> Result<u32> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    let msg = links.try_next().await.with_context(|| format!("looking up interface {name}"))?.ok_or_else(|| anyhow!("no interface named {name}"))?;
    Ok(msg.header.index)
}

async fn link_up(handle: &rtnetlink::Handle, name: &str) -> Result<()> {
    let index = link_index(handle, name).await?;
    handle.link().set(LinkUnspec::new_with_index(index).up().build()).execute().await?;
    Ok(())
}
