//! A host's conntrack table size, modelled (fault `conntrack-table`, drill-core
//! fault/conntrack.rs): `nf_conntrack_max` is machine-wide, so the size is the rule
//! `ct state new ct count over N counter drop` in a table of its own, `inet conntrack`,
//! chain `table_size` on prerouting after conntrack (priority -150), commented as the
//! table's size. The count, the entries and the UDP timeout stay the kernel's own (per
//! network namespace). Everything here runs `nft` or reads /proc from the host's
//! namespace worker.

use std::net::SocketAddr;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use crate::kernel::linux::netns::NetnsWorker;

pub const TABLE: &str = drill_core::plan::CT_TABLE;
pub const CHAIN: &str = drill_core::plan::CT_CHAIN;
const PRIORITY: i64 = -150;
pub const COMMENT: &str = "connection tracking table size: net.netfilter.nf_conntrack_max";

/// What the host's table reads, for the checks and the kernel-log feeder.
#[derive(Clone, Debug, PartialEq)]
pub struct CtReading {
    /// The size rule's N and its counter's packets; Err: why the rule does not read back.
    pub rule: std::result::Result<(u64, u64), String>,
    /// `net.netfilter.nf_conntrack_count` (the kernel's entries in the namespace).
    pub count: Option<u64>,
    /// `net.netfilter.nf_conntrack_udp_timeout`.
    pub udp_timeout: Option<u64>,
    /// The kernel's own `nf_conntrack_max` (the machine's: read-only here) and the
    /// packets it dropped for a full table (`drop` of /proc/net/stat/nf_conntrack, all
    /// CPUs): what a host without a modelled table is judged by.
    pub kernel_max: Option<u64>,
    pub kernel_drops: Option<u64>,
}

/// The sum of the `drop` column of /proc/net/stat/nf_conntrack (hex, one line per CPU).
pub fn stat_drops(text: &str) -> Option<u64> {
    let mut lines = text.lines();
    let col = lines.next()?.split_whitespace().position(|h| h == "drop")?;
    lines.map(|l| l.split_whitespace().nth(col).and_then(|v| u64::from_str_radix(v, 16).ok())).sum()
}

/// The nft script that (re)builds the table with size `max` (idempotent).
pub fn script(max: u32) -> String {
    format!(
        "table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n  comment \"{COMMENT}\"\n  chain {CHAIN} {{\n    type filter hook prerouting priority {PRIORITY}; policy accept;\n    ct state new ct count over {max} counter drop\n  }}\n}}\n"
    )
}

fn nft(args: &[&str], stdin: Option<&str>) -> Result<String> {
    use std::io::Write;
    let mut cmd = std::process::Command::new("nft");
    cmd.args(args).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().context("running nft")?;
    if let Some(s) = stdin {
        child.stdin.take().ok_or_else(|| anyhow!("nft has no stdin"))?.write_all(s.as_bytes())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("nft {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Builds (or rebuilds at a new size) the host's table.
pub async fn apply(worker: &NetnsWorker, host: &str, max: u32) -> Result<()> {
    let text = script(max);
    worker.run(move || nft(&["-f", "-"], Some(&text)).map(|_| ())).await?.with_context(|| format!("host {host}: building nftables table inet {TABLE}"))
}

/// Reads the table, the count and the UDP timeout from inside the host's namespace.
pub async fn read(worker: &NetnsWorker) -> Result<CtReading> {
    worker
        .run(|| {
            let sysctl = |k: &str| std::fs::read_to_string(format!("/proc/sys/net/netfilter/{k}")).ok().and_then(|s| s.trim().parse::<u64>().ok());
            let rule = match nft(&["-j", "list", "table", "inet", TABLE], None) {
                Ok(json) => parse_rule(&json),
                Err(e) if e.to_string().contains("No such file") => Err(format!("table inet {TABLE} is gone")),
                Err(e) => Err(format!("table inet {TABLE} could not be listed: {e}")),
            };
            let kernel_drops = std::fs::read_to_string("/proc/thread-self/net/stat/nf_conntrack").ok().and_then(|t| stat_drops(&t));
            CtReading { rule, count: sysctl("nf_conntrack_count"), udp_timeout: sysctl("nf_conntrack_udp_timeout"), kernel_max: sysctl("nf_conntrack_max"), kernel_drops }
        })
        .await
}

/// The size and the drop counter of the one rule of `nft -j list table inet conntrack`,
/// or what is not as the engine built it (another hook or policy, more rules, another
/// match or verdict).
pub fn parse_rule(json: &str) -> std::result::Result<(u64, u64), String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("nft's listing does not parse: {e}"))?;
    let items = v.get("nftables").and_then(Value::as_array).ok_or("nft's listing has no `nftables`")?;
    let chains: Vec<&Value> = items.iter().filter_map(|i| i.get("chain")).collect();
    let rules: Vec<&Value> = items.iter().filter_map(|i| i.get("rule")).collect();
    let chain = match chains.as_slice() {
        [c] if c.get("name").and_then(Value::as_str) == Some(CHAIN) => c,
        _ => return Err(format!("table inet {TABLE} no longer has just its chain {CHAIN}")),
    };
    let hooked =
        chain.get("hook").and_then(Value::as_str) == Some("prerouting") && chain.get("prio").and_then(Value::as_i64) == Some(PRIORITY) && chain.get("policy").and_then(Value::as_str) == Some("accept");
    if !hooked {
        return Err(format!("chain {CHAIN} of table inet {TABLE} was changed (hook, priority or policy)"));
    }
    let [rule] = rules.as_slice() else { return Err(format!("chain {CHAIN} of table inet {TABLE} no longer holds its one rule")) };
    let e = rule.get("expr").and_then(Value::as_array).ok_or("the rule has no expressions")?;
    let changed = || format!("the rule of chain {CHAIN} was changed (it must read `ct state new ct count over N counter drop`)");
    let [m, ct, counter, verdict] = e.as_slice() else { return Err(changed()) };
    let right = m.pointer("/match/right");
    let state_new = m.pointer("/match/left/ct/key").and_then(Value::as_str) == Some("state") && (right == Some(&Value::String("new".into())) || right == Some(&serde_json::json!(["new"])));
    let max = ct.pointer("/ct count/val").and_then(Value::as_u64);
    let inv = ct.pointer("/ct count/inv").and_then(Value::as_bool) == Some(true);
    let packets = counter.pointer("/counter/packets").and_then(Value::as_u64);
    let drop = verdict.get("drop").is_some();
    match (state_new, max, inv, packets, drop) {
        (true, Some(max), true, Some(p), true) => Ok((max, p)),
        _ => Err(changed()),
    }
}

/// Sends one datagram from each of `n` UDP sockets in the namespace to `to`, each bound
/// to its own port of the ephemeral range (32768-60999, as a client's would be; a port
/// in use is skipped): `n` distinct flows, so `n` conntrack entries on the way. (Sockets
/// bound to port 0 and closed at once would draw ports again: dozens of repeats in 2048.)
pub async fn fill(worker: &NetnsWorker, to: SocketAddr, n: u32) -> Result<u32> {
    worker
        .run(move || -> Result<u32> {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            const FIRST: u32 = 32768;
            const PORTS: u32 = 60999 - FIRST + 1;
            let mut sent = 0;
            let mut tried = 0;
            while sent < n && tried < PORTS {
                tried += 1;
                let port = FIRST + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % PORTS;
                let Ok(s) = std::net::UdpSocket::bind(("0.0.0.0", port as u16)) else { continue };
                if s.send_to(b"app.requests:1|c", to).is_ok() {
                    sent += 1;
                    // Paced, so the veth's receive backlog never overflows.
                    if sent % 256 == 0 {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                }
            }
            Ok(sent)
        })
        .await?
}

#[cfg(test)]
mod tests {
    use super::parse_rule;

    const LISTED: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": "conntrack", "handle": 1, "comment": "x"}}, {"chain": {"family": "inet", "table": "conntrack", "name": "table_size", "handle": 1, "type": "filter", "hook": "prerouting", "prio": -150, "policy": "accept"}}, {"rule": {"family": "inet", "table": "conntrack", "chain": "table_size", "handle": 2, "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}, {"ct count": {"val": 2048, "inv": true}}, {"counter": {"packets": 7, "bytes": 420}}, {"drop": null}]}}]}"#;

    #[test]
    fn reads_the_size_and_the_drops_and_refuses_changes() {
        assert_eq!(parse_rule(LISTED), Ok((2048, 7)));
        assert!(parse_rule(&LISTED.replace("\"drop\": null", "\"accept\": null")).unwrap_err().contains("was changed"));
        assert!(parse_rule(&LISTED.replace("\"inv\": true", "\"inv\": false")).is_err());
        assert!(parse_rule(&LISTED.replace("\"prio\": -150", "\"prio\": 0")).unwrap_err().contains("hook, priority or policy"));
        assert!(parse_rule(&LISTED.replace("\"policy\": \"accept\"", "\"policy\": \"drop\"")).is_err());
        let no_rule = LISTED.split(r#", {"rule""#).next().unwrap().to_string() + "]}";
        assert!(parse_rule(&no_rule).unwrap_err().contains("one rule"), "{no_rule}");
    }

    #[test]
    fn sums_the_drops_of_every_cpu() {
        let t = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error expect_new expect_create expect_delete search_restart\n\
                 00000010  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 0000000a 00000000 00000000 00000000 00000000 00000000 00000000\n\
                 00000010  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000 00000000 00000000 00000000 00000000\n";
        assert_eq!(super::stat_drops(t), Some(11));
        assert_eq!(super::stat_drops("entries\n1\n"), None);
    }

    #[test]
    fn the_script_looks_like_a_table_size() {
        let s = super::script(2048);
        assert!(s.contains("ct state new ct count over 2048 counter drop") && s.contains("nf_conntrack_max") && !s.contains("drill"), "{s}");
    }
}
