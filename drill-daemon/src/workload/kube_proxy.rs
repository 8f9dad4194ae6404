//! `kube-proxy`: programs a node's service map as Kubernetes' kube-proxy does in
//! nftables mode, then idles. Traffic this host sends (chain `nat-output`) or routes
//! (`nat-prerouting`) to the service's cluster IP and port jumps through
//! `KUBE-SERVICES` to the service's chain `KUBE-SVC-<hash>`, which picks one endpoint
//! chain `KUBE-SEP-<hash>` at random (`numgen random mod N vmap`); each endpoint chain
//! DNATs to its pod's address. The chain names carry a hash of the service (and
//! endpoint), as kube-proxy's do. A restart (`svc restart kube-proxy`) rebuilds the
//! table from the config in one `nft -f` transaction, then deletes the conntrack
//! entries that still translate the cluster IP to an endpoint no longer in the map (as
//! kube-proxy's conntrack cleanup does): without that, a connection translated to a gone
//! pod keeps its translation for as long as conntrack remembers it (120 s in SYN_SENT),
//! and a new connection that happens to reuse its source port inherits it.

use std::io::Write as _;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use drill_core::workload::KubeProxyConfig;

use super::log;

/// kube-proxy's chain suffix: 16 characters of base32 over a hash of the name.
fn hash16(s: &str) -> String {
    // FNV-1a 64, twice with different seeds, for 80+ bits to encode.
    let fnv = |seed: u64| s.bytes().fold(seed, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let (a, b) = (fnv(0xcbf2_9ce4_8422_2325), fnv(0x8422_2325_cbf2_9ce4));
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bits = (u128::from(a) << 64) | u128::from(b);
    (0..16).map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char).collect()
}

/// The table as `nft -f` reads it (created, then replaced whole).
pub fn ruleset(c: &KubeProxyConfig) -> Result<String> {
    let (vip, eps) = c.parsed().map_err(|e| anyhow!(e))?;
    let proto = &c.protocol;
    let port_name = format!("{}:{}/{}", c.service, c.port, proto.to_uppercase());
    let svc = format!("KUBE-SVC-{}", hash16(&port_name));
    let mut t = String::new();
    t.push_str("table ip kube-proxy {}\ndelete table ip kube-proxy\ntable ip kube-proxy {\n");
    t.push_str("\tcomment \"rules for kube-proxy\"\n");
    t.push_str("\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tjump KUBE-SERVICES\n\t}\n");
    t.push_str("\tchain nat-output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tjump KUBE-SERVICES\n\t}\n");
    t.push_str(&format!("\tchain KUBE-SERVICES {{\n\t\tip daddr {vip} {proto} dport {} goto {svc} comment \"{port_name} cluster IP\"\n\t}}\n", c.port));
    let seps: Vec<(String, std::net::SocketAddrV4)> = eps.iter().map(|e| (format!("KUBE-SEP-{}", hash16(&format!("{port_name}{e}"))), *e)).collect();
    if seps.is_empty() {
        // No ready endpoint: kube-proxy rejects connections to the service.
        t.push_str(&format!("\tchain {svc} {{\n\t\treject comment \"{port_name} has no endpoints\"\n\t}}\n"));
    } else {
        let arms: Vec<String> = seps.iter().enumerate().map(|(i, (n, _))| format!("{i} : goto {n}")).collect();
        t.push_str(&format!("\tchain {svc} {{\n\t\tnumgen random mod {} vmap {{ {} }}\n\t}}\n", seps.len(), arms.join(", ")));
    }
    for (n, e) in &seps {
        t.push_str(&format!("\tchain {n} {{\n\t\tmeta l4proto {proto} dnat to {e} comment \"{port_name} endpoint\"\n\t}}\n"));
    }
    t.push_str("}\n");
    Ok(t)
}

pub async fn run(name: &str, c: KubeProxyConfig) -> Result<()> {
    let rules = ruleset(&c)?;
    let mut child = Command::new("nft").args(["-f", "-"]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().context("running nft (Debian package nftables)")?;
    child.stdin.take().context("nft's stdin")?.write_all(rules.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("nft -f: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    log(name, &format!("synced service {} ({}:{}/{}): {} endpoint(s): {}", c.service, c.cluster_ip, c.port, c.protocol, c.endpoints.len(), c.endpoints.join(", ")));
    if let Err(e) = clean_stale(name, &c) {
        log(name, &format!("cannot clean stale conntrack entries: {e}"));
    }
    std::future::pending::<()>().await;
    Ok(())
}

/// Deletes the conntrack entries that translate the cluster IP to an address no longer
/// among the endpoints, one `conntrack -D` per stale endpoint; each count is logged.
fn clean_stale(name: &str, c: &KubeProxyConfig) -> Result<()> {
    let (vip, eps) = c.parsed().map_err(|e| anyhow!(e))?;
    let (vip, port) = (vip.to_string(), c.port.to_string());
    let listed =
        Command::new("conntrack").args(["-L", "-p", &c.protocol, "--orig-dst", &vip, "--dport", &port]).stderr(Stdio::null()).output().context("running conntrack (Debian package conntrack)")?;
    for ep in stale_translations(&String::from_utf8_lossy(&listed.stdout), &eps) {
        let out = Command::new("conntrack")
            .args(["-D", "-p", &c.protocol, "--orig-dst", &vip, "--dport", &port, "--reply-src", &ep.ip().to_string(), "--reply-port-src", &ep.port().to_string()])
            .output()
            .context("running conntrack -D")?;
        // conntrack prints "N flow entries have been deleted" on stderr.
        let n = String::from_utf8_lossy(&out.stderr).split_whitespace().find_map(|w| w.parse::<u64>().ok()).unwrap_or(0);
        log(name, &format!("removed {n} conntrack entr{} translated to {ep}, no longer an endpoint", if n == 1 { "y" } else { "ies" }));
    }
    Ok(())
}

/// The endpoints that `conntrack -L` output (default format) shows connections
/// translated to, and that are not in `eps`: each line's reply direction (its second
/// `src=` and `sport=`) is where the connection was sent.
pub fn stale_translations(listing: &str, eps: &[std::net::SocketAddrV4]) -> Vec<std::net::SocketAddrV4> {
    let mut out = Vec::new();
    for line in listing.lines() {
        let field = |key: &str| line.split_whitespace().filter_map(|w| w.strip_prefix(key)).nth(1).map(str::to_string);
        let (Some(ip), Some(port)) = (field("src="), field("sport=")) else { continue };
        let Ok(ep) = format!("{ip}:{port}").parse::<std::net::SocketAddrV4>() else { continue };
        if !eps.contains(&ep) && !out.contains(&ep) {
            out.push(ep);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_has_one_arm_per_endpoint() {
        let c =
            KubeProxyConfig { service: "default/web".into(), cluster_ip: "10.96.0.10".into(), port: 8080, protocol: "tcp".into(), endpoints: vec!["10.77.0.11:8080".into(), "10.77.0.12:8080".into()] };
        let r = ruleset(&c).unwrap();
        assert!(r.contains("numgen random mod 2 vmap { 0 : goto KUBE-SEP-"), "{r}");
        assert!(r.contains("dnat to 10.77.0.12:8080"), "{r}");
        assert_eq!(hash16("a").len(), 16);
        assert_ne!(hash16("a"), hash16("b"));
    }

    #[test]
    fn stale_translations_are_the_reply_sources_not_in_the_map() {
        let l = "tcp      6 112 SYN_SENT src=10.77.0.2 dst=10.96.0.10 sport=32776 dport=8080 [UNREPLIED] src=10.77.0.13 dst=10.77.0.2 sport=8080 dport=32776 mark=0 use=1\n\
                 tcp      6 431999 ESTABLISHED src=10.77.0.2 dst=10.96.0.10 sport=32780 dport=8080 src=10.77.0.11 dst=10.77.0.2 sport=8080 dport=32780 [ASSURED] mark=0 use=1\n\
                 tcp      6 110 SYN_SENT src=10.77.0.2 dst=10.96.0.10 sport=32790 dport=8080 [UNREPLIED] src=10.77.0.13 dst=10.77.0.2 sport=8080 dport=32790 mark=0 use=1\n";
        let eps = vec!["10.77.0.11:8080".parse().unwrap(), "10.77.0.12:8080".parse().unwrap()];
        assert_eq!(stale_translations(l, &eps), vec!["10.77.0.13:8080".parse::<std::net::SocketAddrV4>().unwrap()]);
        assert!(stale_translations("", &eps).is_empty());
    }
}
