//! `cargo xtask bench` (fault part). Run as root.
//! - loss fidelity: an nft-loss fault at several targets, measured from the neighbour
//!   host with 2000 pings (target: within 2 percentage points);
//! - rate fidelity: a tc-rate fault at 10, 100 and 1000 Mbit/s, measured by a 2-second
//!   TCP transfer (target: within 10%);
//! - apply and revert time per fault kind (nft rules, tc, sysctl, mtu), median of 20.

mod common;

use std::time::Instant;

use common::median;
use drill_core::scenario::{NftAction, NftRule, NftSource};
use drill_daemon::netns;
use drill_daemon::{faults, topology};
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
    let plan = drill_core::plan::compile(&s, &id, 0);
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
            faults::apply_nft(&server.worker, &plan, "server", &faults::HostNft::of(vec![rule])).await.unwrap();
            let n = client_ns.clone();
            let measured = tokio::task::spawn_blocking(move || faults::ping_loss(&n, dst, PINGS)).await.unwrap().unwrap() * 100.0;
            rows.push(row(&format!("nft-loss {pct}%: measured loss over {PINGS} pings (ratio: measured/asked)"), measured, "%", Some(pct)));
            rows.push(row(&format!("nft-loss {pct}%: deviation (target <= 2 points)"), (measured - pct).abs(), "points", None));
        }
        faults::revert_nft(&server.worker, "server").await.unwrap();

        eprintln!("bench: rate fidelity ...");
        let client = &ns["client"];
        for mbit in [10u64, 100, 1000] {
            let bps = mbit * 1_000_000;
            faults::set_rate(&server.worker, "server", "eth0", bps).await.unwrap();
            let bytes = bps / 8 * 2;
            let measured = faults::measure_rate(&server.worker, &client.worker, "10.77.9.1".parse().unwrap(), bytes).await.unwrap();
            rows.push(row(&format!("tc-rate {mbit} Mbit/s: 2 s TCP transfer (ratio: measured/asked; target within 10%)"), measured / 1e6, "Mbit/s", Some(mbit as f64)));
        }
        let (mut apply, mut revert) = (Vec::new(), Vec::new());
        for _ in 0..REPS {
            let t = Instant::now();
            faults::set_rate(&server.worker, "server", "eth0", 10_000_000).await.unwrap();
            apply.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            faults::clear_rate(&server.worker, "server", "eth0").await.unwrap();
            revert.push(t.elapsed().as_secs_f64() * 1e3);
        }
        rows.push(row("tc-rate apply (tc qdisc replace) p50", median(apply), "ms", None));
        rows.push(row("tc-rate revert (tc qdisc del) p50", median(revert), "ms", None));

        eprintln!("bench: apply/revert times ...");
        let drop = NftRule::input(Some("tcp"), Some(8080), Some(NftSource::Host("client".into())), NftAction::Drop);
        let (mut apply, mut revert) = (Vec::new(), Vec::new());
        for _ in 0..REPS {
            let t = Instant::now();
            faults::apply_nft(&server.worker, &plan, "server", &faults::HostNft::of(vec![drop.clone()])).await.unwrap();
            apply.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            faults::revert_nft(&server.worker, "server").await.unwrap();
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
    });
    for h in &plan.hosts {
        let _ = netns::delete(&h.netns);
    }
    common::print(&rows, json_out);
}
