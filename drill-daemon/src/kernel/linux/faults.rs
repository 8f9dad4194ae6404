//! Faults that are one call each (sysctl, MTU, route removal: through /proc/sys and
//! netlink, read back), and the measurement primitives every fault's after-apply
//! measurement is made of (TCP connections, pings, transfers, the listening check).
//! nftables faults are in `nft.rs`, tc shaping and netem in `tc.rs`, the eBPF
//! classifier in `tcfault.rs`, the delay wire in `wire.rs`; `drill/measure.rs`
//! judges the figures.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::kernel::linux::netns::NetnsWorker;

/// How a TCP connection attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connect {
    Connected,
    Refused,
    TimedOut,
    Other(String),
}

impl std::fmt::Display for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Connect::Connected => f.write_str("connected"),
            Connect::Refused => f.write_str("was refused"),
            Connect::TimedOut => f.write_str("timed out"),
            Connect::Other(e) => write!(f, "failed: {e}"),
        }
    }
}

/// One TCP connection attempt from inside `from` (its worker) to `to`.
pub async fn try_connect(from: &NetnsWorker, to: SocketAddr, timeout: Duration) -> Result<(Connect, Duration)> {
    let sock = from.tcp_socket(to.is_ipv6()).await?;
    let t = Instant::now();
    let r = match tokio::time::timeout(timeout, sock.connect(to)).await {
        Ok(Ok(_)) => Connect::Connected,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Connect::Refused,
        Ok(Err(e)) => Connect::Other(e.to_string()),
        Err(_) => Connect::TimedOut,
    };
    Ok((r, t.elapsed()))
}

/// Measures random loss from `prober_netns` to `addr` with `count` pings (2 ms apart).
/// Returns the lost fraction.
pub fn ping_loss(prober_netns: &str, addr: IpAddr, count: u32) -> Result<f64> {
    let text = ping(prober_netns, addr, count, 0.002, 1)?;
    let pct =
        text.split(',').find(|p| p.contains("packet loss")).and_then(|p| p.trim().split('%').next()?.trim().parse::<f64>().ok()).ok_or_else(|| anyhow!("could not read ping's loss figure: {text}"))?;
    Ok(pct / 100.0)
}

/// `ping -q` from inside `prober_netns`: its summary lines.
fn ping(prober_netns: &str, addr: IpAddr, count: u32, interval: f64, wait_secs: u32) -> Result<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", prober_netns, "ping", "-q", "-n", "-i", &interval.to_string(), "-W", &wait_secs.to_string(), "-c", &count.to_string(), &addr.to_string()])
        .output()
        .with_context(|| format!("running ping in {prober_netns}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether a measured loss fraction is within tolerance of the target: the larger of
/// 3 percentage points and 4 standard deviations of a binomial over `n` probes.
pub fn loss_within(target: f64, measured: f64, n: u32) -> bool {
    let sigma = (target * (1.0 - target) / f64::from(n)).sqrt();
    (measured - target).abs() <= (4.0 * sigma).max(0.03)
}

/// Average ping RTT in milliseconds from `prober_netns` to `addr` over `count` pings
/// `interval` seconds apart; `None` when every ping was lost.
pub fn ping_rtt(prober_netns: &str, addr: IpAddr, count: u32, interval: f64) -> Result<Option<f64>> {
    let text = ping(prober_netns, addr, count, interval, 12)?;
    // "rtt min/avg/max/mdev = 0.031/0.045/0.080/0.012 ms"
    Ok(text.lines().find(|l| l.contains("min/avg/max")).and_then(|l| l.split('=').nth(1)?.trim().split('/').nth(1)?.parse().ok()))
}

/// Whether an added delay measured by ping is what was asked: no less than max(1 ms,
/// 5%) under it, no more than max(2 ms, 10%) over it (a userspace wire on a loaded
/// machine adds scheduling latency, never removes it; measured +1.5 ms on a 30 ms wire
/// while the machine compiled), plus half the jitter either way (over the 20 pings a
/// start measures, the mean of a +-jitter uniform spread wanders by ~0.13 x jitter).
/// The fidelity itself is a benchmark figure (`cargo xtask bench`), not this gate.
pub fn delay_within(asked_ms: f64, jitter_ms: f64, added_ms: f64) -> bool {
    let d = added_ms - asked_ms;
    let slack = if d < 0.0 { (asked_ms * 0.05).max(1.0) } else { (asked_ms * 0.10).max(2.0) };
    d.abs() <= slack + 0.5 * jitter_ms
}

/// Whether a TCP socket listens on `port` in the calling thread's network namespace
/// (`/proc/thread-self/net/tcp{,6}`: state 0A is LISTEN).
pub fn listening(port: u16) -> bool {
    let needle = format!(":{port:04X} ");
    ["/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() > 3 && format!("{} ", cols[1]).ends_with(&needle) && cols[3] == "0A"
            })
        })
    })
}

/// Measures TCP throughput from `from` to a sink opened in `to` (at `addr`): sends
/// `bytes` and times until the sink has read them all. Returns bits per second.
pub async fn measure_rate(from: &NetnsWorker, to: &NetnsWorker, addr: IpAddr, bytes: u64) -> Result<f64> {
    measure_rate_to_port(from, to, addr, 0, bytes).await
}

/// [`measure_rate`] to a sink listening on `port` (0: any), so a per-port class on the
/// sender's egress sees the transfer by its destination port.
pub async fn measure_rate_to_port(from: &NetnsWorker, to: &NetnsWorker, addr: IpAddr, port: u16, bytes: u64) -> Result<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sink = to.tcp_socket(addr.is_ipv6()).await?;
    sink.set_reuseaddr(true)?;
    sink.bind(SocketAddr::new(addr, port)).with_context(|| format!("opening the rate sink on {addr}:{port}"))?;
    let listener = sink.listen(1)?;
    let port = listener.local_addr()?.port();
    let reader = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        while got < bytes {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        Ok::<u64, std::io::Error>(got)
    });
    let mut stream = from.tcp_socket(addr.is_ipv6()).await?.connect(SocketAddr::new(addr, port)).await.context("connecting to the rate sink")?;
    let t = Instant::now();
    let chunk = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    while sent < bytes {
        let n = chunk.len().min((bytes - sent) as usize);
        stream.write_all(&chunk[..n]).await?;
        sent += n as u64;
    }
    stream.shutdown().await?;
    let got = tokio::time::timeout(Duration::from_secs(60), reader).await.context("rate sink timed out")???;
    Ok(got as f64 * 8.0 / t.elapsed().as_secs_f64())
}

/// Writes a sysctl from inside the host's namespace and reads it back.
pub async fn set_sysctl(worker: &NetnsWorker, host: &str, key: &str, value: &str) -> Result<()> {
    crate::kernel::linux::topology::write_sysctls(worker, &[(key.to_string(), value.to_string())]).await.with_context(|| format!("host {host}"))?;
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let back = worker.run(move || std::fs::read_to_string(&path)).await??;
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    if norm(&back) != norm(value) {
        bail!("host {host}: sysctl {key} reads back {:?} after writing {value:?}", back.trim());
    }
    Ok(())
}

/// Sets an interface's MTU through netlink and reads it back.
pub async fn set_mtu(nl: &rtnetlink::Handle, host: &str, iface: &str, mtu: u32) -> Result<()> {
    use futures::TryStreamExt;
    use netlink_packet_route::link::LinkAttribute;
    let idx = crate::kernel::linux::topology::link_index(nl, iface).await.with_context(|| format!("host {host}"))?;
    nl.link().set(rtnetlink::LinkUnspec::new_with_index(idx).mtu(mtu).build()).execute().await.with_context(|| format!("host {host}: setting mtu {mtu} on {iface}"))?;
    let msg = nl.link().get().match_index(idx).execute().try_next().await?.ok_or_else(|| anyhow!("host {host}: {iface} vanished"))?;
    let now = msg.attributes.iter().find_map(|a| if let LinkAttribute::Mtu(m) = a { Some(*m) } else { None });
    if now != Some(mtu) {
        bail!("host {host}: {iface} has mtu {now:?} after setting {mtu}");
    }
    Ok(())
}

/// Removes an IPv4 route (`None`: the default route) through netlink; checks it is gone.
pub async fn remove_route(nl: &rtnetlink::Handle, host: &str, to: Option<drill_core::scenario::Cidr>) -> Result<()> {
    use futures::TryStreamExt;
    use netlink_packet_route::route::RouteAttribute;
    let (dst, len) = match to.map(|c| (c.addr, c.prefix)) {
        Some((IpAddr::V4(a), l)) => (Some(a), l),
        _ => (None, 0),
    };
    let find = || async {
        let mut routes = nl.route().get(rtnetlink::RouteMessageBuilder::<std::net::Ipv4Addr>::new().build()).execute();
        let mut hit = None;
        while let Some(r) = routes.try_next().await? {
            let rdst = r.attributes.iter().find_map(|a| if let RouteAttribute::Destination(netlink_packet_route::route::RouteAddress::Inet(d)) = a { Some(*d) } else { None });
            if r.header.destination_prefix_length == len && rdst == dst && r.header.table == 254 {
                hit = Some(r);
            }
        }
        Ok::<_, rtnetlink::Error>(hit)
    };
    let route = find().await?.ok_or_else(|| anyhow!("host {host}: no route to {} to remove", to.map_or_else(|| "default".into(), |c| c.to_string())))?;
    nl.route().del(route).execute().await.with_context(|| format!("host {host}: removing the route"))?;
    if find().await?.is_some() {
        bail!("host {host}: the route is still there after removing it");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn delay_tolerance_is_5_percent_or_1_ms_plus_half_the_jitter() {
        assert!(super::delay_within(20.0, 0.0, 19.1) && !super::delay_within(20.0, 0.0, 18.9));
        assert!(super::delay_within(20.0, 0.0, 21.9) && !super::delay_within(20.0, 0.0, 22.1));
        assert!(super::delay_within(300.0, 0.0, 286.0) && !super::delay_within(300.0, 0.0, 284.0));
        assert!(super::delay_within(300.0, 0.0, 329.0) && !super::delay_within(300.0, 0.0, 331.0));
        assert!(super::delay_within(300.0, 10.0, 281.0) && !super::delay_within(300.0, 10.0, 279.0));
    }
}
