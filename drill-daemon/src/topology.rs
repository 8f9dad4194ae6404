//! Applies the network part of a plan through rtnetlink: veth pairs created from the
//! root namespace with both ends placed directly in their hosts, then addresses and
//! links brought up from inside each host.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;

use anyhow::{Context, Result, anyhow};
use futures::TryStreamExt;
use netlink_packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth};

use drill_core::plan::Plan;

use crate::netns;

/// Creates every link of the plan and configures every host's interfaces.
/// `handles` holds one netlink handle per host name, opened inside that host.
pub async fn apply_links(
    plan: &Plan,
    root: &rtnetlink::Handle,
    handles: &BTreeMap<String, rtnetlink::Handle>,
) -> Result<()> {
    let host = |n: &str| plan.hosts.iter().find(|h| h.name == n).ok_or_else(|| anyhow!("plan has no host {n}"));
    for l in &plan.links {
        let (a, b) = (host(&l.a_host)?, host(&l.b_host)?);
        let fa = File::open(netns::netns_path(&a.netns)).with_context(|| format!("opening netns of host {}", a.name))?;
        let fb = File::open(netns::netns_path(&b.netns)).with_context(|| format!("opening netns of host {}", b.name))?;
        let peer = LinkMessageBuilder::<LinkUnspec>::default().name(l.b_if.clone()).setns_by_fd(fb.as_raw_fd()).build();
        let msg = LinkVeth::new(&l.a_if, &l.b_if)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .setns_by_fd(fa.as_raw_fd())
            .build();
        root.link()
            .add(msg)
            .execute()
            .await
            .with_context(|| format!("creating veth pair {}:{} <-> {}:{}", a.name, l.a_if, b.name, l.b_if))?;
    }
    for h in &plan.hosts {
        let handle = handles.get(&h.name).ok_or_else(|| anyhow!("no netlink handle for host {}", h.name))?;
        link_up(handle, "lo").await.with_context(|| format!("host {}: bringing lo up", h.name))?;
        for i in &h.interfaces {
            let index = link_index(handle, &i.name).await.with_context(|| format!("host {}: finding {}", h.name, i.name))?;
            for a in &i.addresses {
                handle
                    .address()
                    .add(index, a.addr, a.prefix)
                    .replace()
                    .execute()
                    .await
                    .with_context(|| format!("host {}: adding {a} to {}", h.name, i.name))?;
            }
            link_up(handle, &i.name).await.with_context(|| format!("host {}: bringing {} up", h.name, i.name))?;
        }
    }
    Ok(())
}

pub async fn link_index(handle: &rtnetlink::Handle, name: &str) -> Result<u32> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    let msg = links.try_next().await?.ok_or_else(|| anyhow!("no interface named {name}"))?;
    Ok(msg.header.index)
}

async fn link_up(handle: &rtnetlink::Handle, name: &str) -> Result<()> {
    let index = link_index(handle, name).await?;
    handle.link().set(LinkUnspec::new_with_index(index).up().build()).execute().await?;
    Ok(())
}
