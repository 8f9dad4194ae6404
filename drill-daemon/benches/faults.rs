//! `cargo xtask bench` (fault part). Run as root.
//! - loss fidelity: an nft-loss fault at several targets, measured from the neighbour
//!   host with 2000 pings (target: within 2 percentage points);
//! - rate fidelity: a tc-rate fault at 10, 100 and 1000 Mbit/s, measured by a 2-second
//!   TCP transfer (target: within 10%);
//! - delay fidelity: the delay backend this kernel allows (netem or the userspace
//!   wire) at 1, 20 and 100 ms, measured by ping RTT minus the RTT before (target:
//!   within max(1 ms, 5%)); throughput through an idle wire against the plain veth;
//! - eBPF classifier loss fidelity (2000 pings) and attach/retune/detach time;
//! - apply and revert time per fault kind (nft rules, tc, htb, sysctl, mtu, delay),
//!   median of 20.

mod common;

use std::time::Instant;

use common::median;
use drill_core::scenario::{NftAction, NftRule, NftSource};
use drill_daemon::kernel::linux::netns;
use drill_daemon::kernel::linux::tcfault::{self, TcFault};
use drill_daemon::kernel::linux::{faults, nft, tc, topology, wire};
use serde_json::Value;

const TWO: &str = include_str!("../tests/fixtures/two-host.toml");
const PINGS: u32 = 2000;
const REPS: usize = 20;

fn row(name: &str, value: f64, unit: &str, baseline: Option<f64>) -> Value {
    common::row(name, value, unit, baseline, false)
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("the fault benchmark needs root: run `cargo xtask bench`, which uses sudo");
        std::process::exit(2);
    }
    let json_out = std::env::args().any(|a| a == "--json");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let id = format!("{:06x}", (std::process::id() ^ 0xfa017) & 0xff_ffff);
    let s = drill_core::scenario::parse("two-host.toml", TWO).unwrap();
    let plan = drill_core::plan::compile(&s, &id, 0, drill_daemon::kernel::linux::tc::backends()).expect("plan compiles");
    let mut rows = Vec::new();
    rt.block_on(async {
        let (conn, root, _) = rtnetlink::new_connection().unwrap();
        tokio::spawn(conn);
        let ns = topology::build(&plan, &root).await.unwrap();
        let server = &ns["server"];
        let client_ns = plan.hosts[0].netns.clone();
        let dst: std::net::IpAddr = "10.77.9.2".parse().unwrap();

        eprintln!("bench: loss fidelity ({PINGS} pings per target) ...");
        for pct in [1.0, 5.0, 10.0, 30.0] {
            let rule = NftRule::input(Some("icmp"), None, None, NftAction::Loss { permille: (pct * 10.0) as u16 });
            nft::apply_nft(&server.worker, &plan, "server", &nft::HostNft::of(vec![rule])).await.unwrap();
            let n = client_ns.clone();
            let measured = tokio::task::spawn_blocking(move || faults::ping_loss(&n, dst, PINGS)).await.unwrap().unwrap() * 100.0;
            rows.push(row(&format!("nft-loss {pct}%: measured loss over {PINGS} pings (ratio: measured/asked)"), measured, "%", Some(pct)));
            rows.push(row(&format!("nft-loss {pct}%: deviation (target <= 2 points)"), (measured - pct).abs(), "points", None));
        }
        nft::revert_nft(&server.worker, "server").await.unwrap();

        eprintln!("bench: rate fidelity ...");
        let client = &ns["client"];
        for mbit in [10u64, 100, 1000] {
            let bps = mbit * 1_000_000;
            tc::set_rate(&server.worker, "server", "eth0", bps).await.unwrap();
            let bytes = bps / 8 * 2;
            let measured = faults::measure_rate(&server.worker, &client.worker, "10.77.9.1".parse().unwrap(), bytes).await.unwrap();
            rows.push(row(&format!("tc-rate {mbit} Mbit/s: 2 s TCP transfer (ratio: measured/asked; target within 10%)"), measured / 1e6, "Mbit/s", Some(mbit as f64)));
        }
        let (mut apply, mut revert) = (Vec::new(), Vec::new());
        for _ in 0..REPS {
            let t = Instant::now();
            tc::set_rate(&server.worker, "server", "eth0", 10_000_000).await.unwrap();
            apply.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            tc::clear_rate(&server.worker, "server", "eth0").await.unwrap();
            revert.push(t.elapsed().as_secs_f64() * 1e3);
        }
        rows.push(row("tc-rate apply (tc qdisc replace) p50", median(apply), "ms", None));
        rows.push(row("tc-rate revert (tc qdisc del) p50", median(revert), "ms", None));

        eprintln!("bench: apply/revert times ...");
        let drop = NftRule::input(Some("tcp"), Some(8080), Some(NftSource::Host("client".into())), NftAction::Drop);
        let (mut apply, mut revert) = (Vec::new(), Vec::new());
        for _ in 0..REPS {
            let t = Instant::now();
            nft::apply_nft(&server.worker, &plan, "server", &nft::HostNft::of(vec![drop.clone()])).await.unwrap();
            apply.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            nft::revert_nft(&server.worker, "server").await.unwrap();
            revert.push(t.elapsed().as_secs_f64() * 1e3);
        }
        rows.push(row("nft-drop apply (nft -j, one batch) p50", median(apply), "ms", None));
        rows.push(row("nft-drop revert (nft delete table) p50", median(revert), "ms", None));
        let (mut apply, mut revert) = (Vec::new(), Vec::new());
        for _ in 0..REPS {
            let t = Instant::now();
            faults::set_sysctl(&server.worker, "server", "net.core.somaxconn", "8").await.unwrap();
            apply.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            faults::set_sysctl(&server.worker, "server", "net.core.somaxconn", "4096").await.unwrap();
            revert.push(t.elapsed().as_secs_f64() * 1e3);
        }
        rows.push(row("sysctl apply (write + read back) p50", median(apply), "ms", None));
        rows.push(row("sysctl revert p50", median(revert), "ms", None));
        let (mut apply, mut revert) = (Vec::new(), Vec::new());
        for _ in 0..REPS {
            let t = Instant::now();
            faults::set_mtu(&server.nl, "server", "eth0", 1280).await.unwrap();
            apply.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            faults::set_mtu(&server.nl, "server", "eth0", 1500).await.unwrap();
            revert.push(t.elapsed().as_secs_f64() * 1e3);
        }
        rows.push(row("mtu apply (netlink + read back) p50", median(apply), "ms", None));
        rows.push(row("mtu revert p50", median(revert), "ms", None));

        eprintln!("bench: htb per-port class ...");
        let (mut apply, mut revert) = (Vec::new(), Vec::new());
        for _ in 0..REPS {
            let t = Instant::now();
            tc::set_port_rate(&server.worker, "server", "eth0", 8080, 10_000_000).await.unwrap();
            apply.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            tc::clear_rate(&server.worker, "server", "eth0").await.unwrap();
            revert.push(t.elapsed().as_secs_f64() * 1e3);
        }
        rows.push(row("tc-rate per port apply (tc -batch: htb + 2 classes + 2 u32 filters) p50", median(apply), "ms", None));
        rows.push(row("tc-rate per port revert p50", median(revert), "ms", None));

        eprintln!("bench: eBPF classifier ...");
        for pct in [10.0, 30.0] {
            let rule = tcfault::rule(&plan, Some("icmp"), None, None, pct / 100.0).unwrap();
            let tf = TcFault::attach(&server.worker, "server", "eth0", false, rule).await.unwrap();
            let n = client_ns.clone();
            let measured = tokio::task::spawn_blocking(move || faults::ping_loss(&n, dst, PINGS)).await.unwrap().unwrap() * 100.0;
            tf.remove(&server.worker).await.unwrap();
            rows.push(row(&format!("ebpf-drop {pct}%: measured loss over {PINGS} pings (ratio: measured/asked)"), measured, "%", Some(pct)));
        }
        let (mut apply, mut retune, mut revert) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..REPS {
            let rule = tcfault::rule(&plan, Some("tcp"), Some(8080), None, 0.2).unwrap();
            let t = Instant::now();
            let mut tf = TcFault::attach(&server.worker, "server", "eth0", false, rule).await.unwrap();
            apply.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            tf.set_rule(tcfault::rule(&plan, Some("tcp"), Some(8080), None, 0.5).unwrap()).unwrap();
            retune.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            tf.remove(&server.worker).await.unwrap();
            revert.push(t.elapsed().as_secs_f64() * 1e3);
        }
        rows.push(row("ebpf-drop apply (load object + clsact + attach) p50", median(apply), "ms", None));
        rows.push(row("ebpf-drop retune (map write) p50", median(retune), "ms", None));
        rows.push(row("ebpf-drop revert (detach) p50", median(revert), "ms", None));
    });
    for h in &plan.hosts {
        let _ = netns::delete(&h.netns);
    }
    rt.block_on(delay_rows(&s, &id, &mut rows));
    common::print(&rows, json_out);
}

/// Delay fidelity and the wire's cost, on a fresh two-host network with a wire spliced
/// into the client's link (the backend this kernel allows is reported; on a kernel
/// with netem, netem is measured on the same link instead of the wire).
async fn delay_rows(s: &drill_core::scenario::Scenario, id: &str, rows: &mut Vec<Value>) {
    let id = format!("{:06x}", (u32::from_str_radix(id, 16).unwrap() ^ 0x1) & 0xff_ffff);
    let plan = drill_core::plan::compile(s, &id, 0, drill_daemon::kernel::linux::tc::backends()).expect("plan compiles");
    let (conn, root, _) = rtnetlink::new_connection().unwrap();
    tokio::spawn(conn);
    // Baseline: the plain veth (same topology without the wire).
    let ns = topology::build(&plan, &root).await.unwrap();
    let dst: std::net::IpAddr = "10.77.9.2".parse().unwrap();
    let client = plan.hosts[0].netns.clone();
    let backend = tc::backends().delay;
    let plain_bps = faults::measure_rate(&ns["client"].worker, &ns["server"].worker, dst, 1_000_000_000).await.unwrap();
    let n = client.clone();
    let plain_rtt = tokio::task::spawn_blocking(move || faults::ping_rtt(&n, dst, 50, 0.01)).await.unwrap().unwrap().unwrap();
    drop(ns);
    for h in &plan.hosts {
        let _ = netns::delete(&h.netns);
    }
    // Unique names again: the kernel finishes deleting the old devices in the background.
    let id2 = format!("{:06x}", (u32::from_str_radix(&id, 16).unwrap() ^ 0x2) & 0xff_ffff);
    let plan = drill_core::plan::compile(s, &id2, 0, drill_daemon::kernel::linux::tc::backends()).expect("plan compiles");
    let wire_ns2 = drill_core::plan::wire_netns_name(&id2, "client", "eth0");
    let mut ns = std::collections::BTreeMap::new();
    for h in &plan.hosts {
        ns.insert(h.name.clone(), topology::Ns::create(&h.netns).await.unwrap().1);
    }
    let client = plan.hosts[0].netns.clone();
    let w = if backend == tc::DelayBackend::Wire {
        ns.insert(wire_ns2.clone(), topology::Ns::create(&wire_ns2).await.unwrap().1);
        topology::apply_spliced(&plan, &root, &ns, &[topology::Splice { host: "client".into(), iface: "eth0".into(), netns: wire_ns2.clone() }]).await.unwrap();
        Some(wire::Wire::open(&ns[&wire_ns2].worker, &wire_ns2).await.unwrap())
    } else {
        topology::apply(&plan, &root, &ns).await.unwrap();
        None
    };
    eprintln!("bench: delay fidelity ({}) ...", tc::describe_backend(backend));
    let n = client.clone();
    let base = tokio::task::spawn_blocking(move || faults::ping_rtt(&n, dst, 50, 0.01)).await.unwrap().unwrap().unwrap();
    rows.push(row(&format!("delay backend: {} (idle) ping RTT (ratio vs plain veth)", tc::describe_backend(backend)), base, "ms", Some(plain_rtt)));
    if w.is_some() {
        let bps = faults::measure_rate(&ns["client"].worker, &ns["server"].worker, dst, 1_000_000_000).await.unwrap();
        rows.push(row("delay wire (idle) TCP throughput (ratio vs plain veth)", bps / 1e9, "Gbit/s", Some(plain_bps / 1e9)));
    }
    for ms in [1.0, 20.0, 100.0] {
        let t = Instant::now();
        match &w {
            Some(w) => w.set(std::time::Duration::from_secs_f64(ms / 1e3), std::time::Duration::ZERO, 0.0),
            None => tc::set_netem(&ns["client"].worker, "client", "eth0", ms, 0.0, 0.0).await.unwrap(),
        }
        let apply_ms = t.elapsed().as_secs_f64() * 1e3;
        let n = client.clone();
        let count = if ms >= 100.0 { 30 } else { 100 };
        let rtt = tokio::task::spawn_blocking(move || faults::ping_rtt(&n, dst, count, 0.02)).await.unwrap().unwrap().unwrap();
        let added = rtt - base;
        rows.push(row(&format!("delay {ms} ms ({}): added ping RTT over {count} pings (ratio: measured/asked)", tc::describe_backend(backend)), added, "ms", Some(ms)));
        rows.push(row(&format!("delay {ms} ms: deviation (target <= max(1 ms, 5%) = {:.2} ms)", (ms * 0.05).max(1.0)), (added - ms).abs(), "ms", None));
        rows.push(row(&format!("delay {ms} ms apply ({})", if w.is_some() { "wire parameter write" } else { "tc qdisc replace netem" }), apply_ms, "ms", None));
    }
    if let Some(w) = &w {
        w.set(std::time::Duration::ZERO, std::time::Duration::ZERO, 0.2);
        let n = client.clone();
        let measured = tokio::task::spawn_blocking(move || faults::ping_loss(&n, dst, PINGS)).await.unwrap().unwrap() * 100.0;
        rows.push(row(&format!("delay wire 20% loss: measured over {PINGS} pings (ratio: measured/asked)"), measured, "%", Some(20.0)));
        let t = Instant::now();
        w.set(std::time::Duration::ZERO, std::time::Duration::ZERO, 0.0);
        rows.push(row("delay wire revert (parameter write)", t.elapsed().as_secs_f64() * 1e3, "ms", None));
    }
    drop(w);
    drop(ns);
    for n in plan.namespaces().into_iter().chain([wire_ns2]) {
        let _ = netns::delete(&n);
    }
}
