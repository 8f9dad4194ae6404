//! `overlay`: builds a node's pod network as a CNI plugin with a VXLAN backend does: a
//! VXLAN device `vxlan0` over the underlay interface, one FDB entry per peer node (head-
//! end replication of broadcast and unknown traffic), and a bridge `cni0` joining it
//! with the pod-facing interfaces. The kernel derives vxlan0's MTU from the underlay's
//! (less 50 bytes); the pods' own MTU is theirs. Then it idles; a restart rebuilds it.

use std::process::Command;

use anyhow::{Context, Result, bail};
use drill_core::workload::OverlayConfig;

use super::log;

fn run_tool(tool: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(tool).args(args).output().with_context(|| format!("running {tool} (Debian package iproute2)"))?;
    if !out.status.success() {
        bail!("{tool} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<()> {
    run_tool("ip", args)
}

pub async fn run(name: &str, c: OverlayConfig) -> Result<()> {
    // A restart rebuilds from scratch (the pod interfaces leave the old bridge with it).
    let _ = ip(&["link", "del", "cni0"]);
    let _ = ip(&["link", "del", "vxlan0"]);
    let vni = c.vni.to_string();
    ip(&["link", "add", "vxlan0", "type", "vxlan", "id", &vni, "dstport", "4789", "dev", &c.underlay, "nolearning"])?;
    for p in &c.peers {
        p.parse::<std::net::Ipv4Addr>().with_context(|| format!("peer `{p}` is not an IPv4 address"))?;
        run_tool("bridge", &["fdb", "append", "00:00:00:00:00:00", "dev", "vxlan0", "dst", p])?;
    }
    ip(&["link", "add", "cni0", "type", "bridge"])?;
    ip(&["link", "set", "vxlan0", "master", "cni0", "up"])?;
    for p in &c.pods {
        ip(&["link", "set", p, "master", "cni0", "up"])?;
    }
    ip(&["link", "set", "cni0", "up"])?;
    log(name, &format!("overlay up: vxlan0 (VNI {}) over {} to {}; cni0 bridges vxlan0 and {}", c.vni, c.underlay, c.peers.join(", "), c.pods.join(", ")));
    std::future::pending::<()>().await;
    Ok(())
}
