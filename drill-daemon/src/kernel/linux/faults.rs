//! Faults: apply, measure, revert.
//!
//! - `service-config` faults are applied by writing the patched config before the
//!   service starts (see `drill/apply.rs`); the learner's fix is editing it back.
//! - nftables faults (drop, reject, loss, policer, connection limit, frag-needed drop,
//!   DNAT) live in the host's own table `inet drill`, one chain per hook used. Apply is
//!   idempotent: one transaction per host adds the table, deletes it and builds it
//!   anew with every rule of that host. The learner may remove them any way an engineer
//!   would (delete the rule, flush the chain, delete the table); the engine never
//!   re-applies them.
//! - tc: tbf for a whole interface, htb for one port (`tc`/`tc -batch` in the netns);
//!   netem for delays where the kernel has it (else the delay wire, `wire.rs`); the
//!   eBPF classifier lives in `tcfault.rs`.
//! - sysctls, MTUs and routes through /proc/sys and netlink, read back.
//!
//! After apply, `drill/measure.rs` measures each fault from outside before the learner gets the
//! drill (connections, pings, transfers, ping RTT); a fault that does not take stops the
//! start with an error.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use drill_core::plan::Plan;
use drill_core::scenario::{Fault, NftAction, NftHook, NftRule, NftSource};
use nftables::{batch::Batch, expr, schema, stmt, types};

use crate::kernel::linux::netns::NetnsWorker;

/// Name of the table drill's nft faults live in, in each host.
pub const TABLE: &str = "drill";

/// A port forward a `nft-dnat` fault installs, resolved to an address.
#[derive(Clone, Debug, PartialEq)]
pub struct DnatRule {
    pub proto: String,
    pub dport: u16,
    pub to: SocketAddr,
}

/// What one host's `inet drill` table holds.
#[derive(Clone, Debug, Default)]
pub struct HostNft {
    pub rules: Vec<NftRule>,
    pub dnats: Vec<DnatRule>,
}

impl HostNft {
    /// A table of filter rules only.
    pub fn of(rules: Vec<NftRule>) -> HostNft {
        HostNft { rules, dnats: Vec::new() }
    }
}

/// The nft faults of a plan's scenario, grouped per host (DNAT targets that name a
/// host are resolved to its first address).
pub fn nft_rules(plan: &Plan, faults: &[Fault]) -> BTreeMap<String, HostNft> {
    let mut m: BTreeMap<String, HostNft> = BTreeMap::new();
    for f in faults {
        match f {
            Fault::Nft { host, rule } => m.entry(host.clone()).or_default().rules.push(rule.clone()),
            Fault::Dnat { host, proto, dport, to, to_host } => {
                let addr = to_host.as_ref().and_then(|h| plan.host_address(h, false)).unwrap_or(to.ip());
                m.entry(host.clone()).or_default().dnats.push(DnatRule { proto: proto.clone(), dport: *dport, to: SocketAddr::new(addr, to.port()) });
            }
            _ => {}
        }
    }
    m
}

fn addresses_of(plan: &Plan, host: &str) -> Vec<IpAddr> {
    plan.hosts.iter().filter(|h| h.name == host).flat_map(|h| h.interfaces.iter().flat_map(|i| i.addresses.iter().map(|c| c.addr))).filter(|a| a.is_ipv4()).collect()
}

fn payload(proto: &str, field: &str) -> expr::Expression<'static> {
    expr::Expression::Named(expr::NamedExpression::Payload(expr::Payload::PayloadField(expr::PayloadField { protocol: proto.to_string().into(), field: field.to_string().into() })))
}

fn matches(left: expr::Expression<'static>, right: expr::Expression<'static>) -> stmt::Statement<'static> {
    stmt::Statement::Match(stmt::Match { left, right, op: stmt::Operator::EQ })
}

fn addr_set(plan: &Plan, host: &str) -> expr::Expression<'static> {
    expr::Expression::Named(expr::NamedExpression::Set(addresses_of(plan, host).iter().map(|a| expr::SetItem::Element(expr::Expression::String(a.to_string().into()))).collect()))
}

fn chain(name: &str, hook: types::NfHook, kind: types::NfChainType, prio: i32) -> schema::Chain<'static> {
    schema::Chain {
        family: types::NfFamily::INet,
        table: TABLE.into(),
        name: name.to_string().into(),
        _type: Some(kind),
        hook: Some(hook),
        prio: Some(prio),
        policy: Some(types::NfChainPolicy::Accept),
        ..Default::default()
    }
}

/// The nft batch that makes the host's `inet drill` table hold exactly `nft`: the
/// table is added (a no-op when present), deleted and built anew in one transaction,
/// so applying twice gives the same table and a rule removed from the fault list
/// does not linger.
pub fn batch(plan: &Plan, nft: &HostNft) -> Batch<'static> {
    let mut b = Batch::new();
    let fam = types::NfFamily::INet;
    let table = schema::Table { family: fam, name: TABLE.into(), ..Default::default() };
    b.add(schema::NfListObject::Table(table.clone()));
    b.delete(schema::NfListObject::Table(table.clone()));
    b.add(schema::NfListObject::Table(table));
    for hook in [NftHook::Input, NftHook::Forward, NftHook::Output] {
        if nft.rules.iter().any(|r| r.hook == hook) {
            let h = match hook {
                NftHook::Input => types::NfHook::Input,
                NftHook::Forward => types::NfHook::Forward,
                NftHook::Output => types::NfHook::Output,
            };
            b.add(schema::NfListObject::Chain(chain(hook.name(), h, types::NfChainType::Filter, 0)));
        }
    }
    if !nft.dnats.is_empty() {
        b.add(schema::NfListObject::Chain(chain("prerouting", types::NfHook::Prerouting, types::NfChainType::NAT, -100)));
    }
    for r in &nft.rules {
        let mut e: Vec<stmt::Statement<'static>> = Vec::new();
        match &r.from {
            Some(NftSource::Host(h)) => e.push(matches(payload("ip", "saddr"), addr_set(plan, h))),
            Some(NftSource::Prefix(c)) => e.push(matches(
                payload("ip", "saddr"),
                expr::Expression::Named(expr::NamedExpression::Prefix(expr::Prefix { addr: Box::new(expr::Expression::String(c.addr.to_string().into())), len: u32::from(c.prefix) })),
            )),
            None => {}
        }
        if let Some(t) = &r.to {
            e.push(matches(payload("ip", "daddr"), addr_set(plan, t)));
        }
        if r.frag_needed {
            e.push(matches(payload("icmp", "type"), expr::Expression::String("destination-unreachable".into())));
            e.push(matches(payload("icmp", "code"), expr::Expression::String("frag-needed".into())));
        } else {
            match (&r.proto, r.dport) {
                (Some(p), Some(d)) => e.push(matches(payload(p, "dport"), expr::Expression::Number(u32::from(d)))),
                (Some(p), None) => e.push(matches(expr::Expression::Named(expr::NamedExpression::Meta(expr::Meta { key: expr::MetaKey::L4proto })), expr::Expression::String(p.clone().into()))),
                _ => {}
            }
        }
        match r.action {
            NftAction::Loss { permille } => {
                // `numgen random mod 1000 < N` written as `<= N-1`: nftables 0.6.3 serialises
                // Operator::LT as ">" and GT as "<" (nftables-rs issue #249). LEQ is right in
                // every version; the unit test below pins the JSON.
                e.push(stmt::Statement::Match(stmt::Match {
                    left: expr::Expression::Named(expr::NamedExpression::Numgen(expr::Numgen { mode: expr::NgMode::Random, ng_mod: 1000, offset: None })),
                    right: expr::Expression::Number(u32::from(permille.max(1)) - 1),
                    op: stmt::Operator::LEQ,
                }));
            }
            NftAction::Limit { per_second, burst } => {
                e.push(stmt::Statement::Limit(stmt::Limit { rate: per_second, rate_unit: None, per: Some("second".into()), burst: Some(burst), burst_unit: None, inv: Some(true) }))
            }
            NftAction::ConnLimit { max } => e.push(stmt::Statement::CTCount(stmt::CTCount { val: expr::Expression::Number(max), inv: Some(true) })),
            _ => {}
        }
        e.push(stmt::Statement::Counter(stmt::Counter::Anonymous(None)));
        e.push(match r.action {
            NftAction::Drop | NftAction::Loss { .. } | NftAction::Limit { .. } | NftAction::ConnLimit { .. } => stmt::Statement::Drop(None),
            NftAction::RejectTcpReset => stmt::Statement::Reject(Some(stmt::Reject::new(Some(stmt::RejectType::TCPReset), None))),
            NftAction::RejectPortUnreachable => stmt::Statement::Reject(Some(stmt::Reject::new(Some(stmt::RejectType::ICMPX), Some(types::RejectCode::PortUnreach)))),
            NftAction::RejectAdminProhibited => stmt::Statement::Reject(Some(stmt::Reject::new(Some(stmt::RejectType::ICMPX), Some(types::RejectCode::AdminProhibited)))),
        });
        b.add(schema::NfListObject::Rule(schema::Rule { family: fam, table: TABLE.into(), chain: r.hook.name().into(), expr: e.into(), ..Default::default() }));
    }
    for d in &nft.dnats {
        let e = vec![
            matches(payload(&d.proto, "dport"), expr::Expression::Number(u32::from(d.dport))),
            stmt::Statement::Counter(stmt::Counter::Anonymous(None)),
            stmt::Statement::DNAT(Some(stmt::NAT {
                addr: Some(expr::Expression::String(d.to.ip().to_string().into())),
                family: Some(stmt::NATFamily::IP),
                port: Some(expr::Expression::Number(u32::from(d.to.port()))),
                flags: None,
            })),
        ];
        b.add(schema::NfListObject::Rule(schema::Rule { family: fam, table: TABLE.into(), chain: "prerouting".into(), expr: e.into(), ..Default::default() }));
    }
    b
}

/// Applies a host's nft rules from inside its namespace (idempotent).
pub async fn apply_nft(worker: &NetnsWorker, plan: &Plan, host: &str, nft: &HostNft) -> Result<()> {
    let rules = batch(plan, nft).to_nftables();
    let json = serde_json::to_string(&rules)?;
    worker
        .run(move || -> Result<()> {
            let r: nftables::schema::Nftables = serde_json::from_str(&json)?;
            nftables::helper::apply_ruleset(&r).map_err(|e| anyhow!("{e}"))
        })
        .await?
        .with_context(|| format!("host {host}: applying nftables table inet {TABLE}"))
}

/// Removes the host's `inet drill` table (missing is fine: the learner may have).
pub async fn revert_nft(worker: &NetnsWorker, host: &str) -> Result<()> {
    worker
        .run(|| -> Result<()> {
            let out = std::process::Command::new("nft").args(["delete", "table", "inet", TABLE]).output()?;
            if out.status.success() || String::from_utf8_lossy(&out.stderr).contains("No such file") { Ok(()) } else { bail!("{}", String::from_utf8_lossy(&out.stderr).trim()) }
        })
        .await?
        .with_context(|| format!("host {host}: deleting nftables table inet {TABLE}"))
}

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

/// What a rule must do to a TCP connection attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Expect {
    TimeOut,
    Refusal,
    /// An ICMP error, which connect reports as refused or unreachable.
    IcmpError,
}

impl Expect {
    pub fn met_by(&self, got: &Connect) -> bool {
        matches!((self, got), (Expect::TimeOut, Connect::TimedOut) | (Expect::Refusal, Connect::Refused) | (Expect::IcmpError, Connect::Refused | Connect::Other(_)))
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Expect::TimeOut => "times out",
            Expect::Refusal => "is refused",
            Expect::IcmpError => "fails with an ICMP error",
        })
    }
}

/// What a rule must do to a TCP connection attempt, if it can be measured that way
/// (a TCP rule with a port, not a random loss).
pub fn expected(rule: &NftRule) -> Option<Expect> {
    if rule.proto.as_deref() != Some("tcp") || rule.dport.is_none() {
        return None;
    }
    match rule.action {
        NftAction::Loss { .. } | NftAction::Limit { .. } | NftAction::ConnLimit { .. } => None,
        NftAction::Drop => Some(Expect::TimeOut),
        NftAction::RejectTcpReset => Some(Expect::Refusal),
        NftAction::RejectPortUnreachable | NftAction::RejectAdminProhibited => Some(Expect::IcmpError),
    }
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

/// Shapes an interface's egress with tbf (`tc qdisc replace`: idempotent), from
/// inside the host's namespace. tbf's options are rate tables the tc tool computes,
/// so the tool is used here rather than raw netlink (see PLATFORM.md).
pub async fn set_rate(worker: &NetnsWorker, host: &str, iface: &str, rate_bps: u64) -> Result<()> {
    // A burst of at least 10 ms at the rate (and one jumbo frame), 50 ms of queue.
    let burst = (rate_bps / 8 / 100).max(10_000);
    let args = vec![
        "qdisc".to_string(),
        "replace".into(),
        "dev".into(),
        iface.to_string(),
        "root".into(),
        "tbf".into(),
        "rate".into(),
        format!("{rate_bps}bit"),
        "burst".into(),
        burst.to_string(),
        "latency".into(),
        "50ms".into(),
    ];
    tc(worker, args).await.with_context(|| format!("host {host}: shaping {iface} to {rate_bps} bit/s"))
}

/// Removes the interface's root qdisc (back to the default); missing is fine.
pub async fn clear_rate(worker: &NetnsWorker, host: &str, iface: &str) -> Result<()> {
    match tc(worker, vec!["qdisc".into(), "del".into(), "dev".into(), iface.to_string(), "root".into()]).await {
        Ok(()) => Ok(()),
        Err(e) if format!("{e:#}").contains("No such file") || format!("{e:#}").contains("Cannot delete qdisc with handle of zero") => Ok(()),
        Err(e) => Err(e).with_context(|| format!("host {host}: removing the qdisc of {iface}")),
    }
}

async fn tc(worker: &NetnsWorker, args: Vec<String>) -> Result<()> {
    worker
        .run(move || -> Result<()> {
            let out = std::process::Command::new("tc").args(&args).output().context("running tc")?;
            if !out.status.success() {
                bail!("tc {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
            }
            Ok(())
        })
        .await?
}

/// Limits the egress of one port's traffic (source or destination port `port`) on an
/// interface with an htb class; everything else goes through an unlimited default
/// class. Replaces whatever root qdisc the interface had (idempotent; for a moment in
/// between the interface is unshaped).
pub async fn set_port_rate(worker: &NetnsWorker, host: &str, iface: &str, port: u16, rate_bps: u64) -> Result<()> {
    let burst = (rate_bps / 8 / 100).max(10_000);
    // htb cannot `replace` itself ("Change operation not supported"): remove the root
    // qdisc (whatever it is) and build the tree anew.
    clear_rate(worker, host, iface).await?;
    let script = format!(
        "qdisc add dev {iface} root handle 1: htb default 20\n\
         class replace dev {iface} parent 1: classid 1:10 htb rate {rate_bps}bit ceil {rate_bps}bit burst {burst}\n\
         class replace dev {iface} parent 1: classid 1:20 htb rate 100gbit\n\
         filter replace dev {iface} parent 1: protocol ip prio 1 handle 800::1 u32 match ip dport {port} 0xffff flowid 1:10\n\
         filter replace dev {iface} parent 1: protocol ip prio 1 handle 800::2 u32 match ip sport {port} 0xffff flowid 1:10\n"
    );
    let iface = iface.to_string();
    worker
        .run(move || -> Result<()> {
            use std::io::Write;
            let mut child = std::process::Command::new("tc")
                .args(["-batch", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .context("running tc -batch")?;
            child.stdin.take().expect("piped").write_all(script.as_bytes())?;
            let out = child.wait_with_output()?;
            if !out.status.success() {
                bail!("tc -batch: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            Ok(())
        })
        .await?
        .with_context(|| format!("host {host}: limiting port {port} on {iface} to {rate_bps} bit/s (htb)"))
}

/// How a delay fault is made on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelayBackend {
    /// The kernel's netem qdisc on the interface.
    Netem,
    /// The userspace delay wire spliced into the link ([`crate::kernel::linux::wire`]).
    Wire,
}

impl DelayBackend {
    pub fn describe(self) -> &'static str {
        match self {
            DelayBackend::Netem => "netem qdisc",
            DelayBackend::Wire => "userspace delay wire (this kernel has no netem)",
        }
    }
}

static DELAY_BACKEND: std::sync::OnceLock<DelayBackend> = std::sync::OnceLock::new();

/// Which delay backend this kernel allows, probed once per process by adding a
/// netem qdisc to `lo` of a fresh namespace (the worker's) and removing it.
/// `DRILL_DELAY_BACKEND=wire|netem` forces one (tests of the wire on a netem kernel).
pub async fn delay_backend(worker: &NetnsWorker) -> DelayBackend {
    if let Some(b) = DELAY_BACKEND.get() {
        return *b;
    }
    let b = match std::env::var("DRILL_DELAY_BACKEND").as_deref() {
        Ok("wire") => DelayBackend::Wire,
        Ok("netem") => DelayBackend::Netem,
        _ => {
            let add = tc(worker, ["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"].map(String::from).to_vec()).await;
            let _ = tc(worker, ["qdisc", "del", "dev", "lo", "root"].map(String::from).to_vec()).await;
            if add.is_ok() { DelayBackend::Netem } else { DelayBackend::Wire }
        }
    };
    tracing::info!(backend = b.describe(), "delay backend chosen");
    *DELAY_BACKEND.get_or_init(|| b)
}

/// Sets latency, jitter and loss on an interface's egress with netem (replace: idempotent).
pub async fn set_netem(worker: &NetnsWorker, host: &str, iface: &str, delay_ms: f64, jitter_ms: f64, loss: f64) -> Result<()> {
    let mut args: Vec<String> = ["qdisc", "replace", "dev", iface, "root", "netem", "delay", &format!("{delay_ms}ms")].map(String::from).to_vec();
    if jitter_ms > 0.0 {
        args.push(format!("{jitter_ms}ms"));
    }
    if loss > 0.0 {
        args.extend(["loss".to_string(), format!("{}%", loss * 100.0)]);
    }
    tc(worker, args).await.with_context(|| format!("host {host}: netem on {iface}"))
}

/// Average ping RTT in milliseconds from `prober_netns` to `addr` over `count` pings
/// `interval` seconds apart; `None` when every ping was lost.
pub fn ping_rtt(prober_netns: &str, addr: IpAddr, count: u32, interval: f64) -> Result<Option<f64>> {
    let text = ping(prober_netns, addr, count, interval, 12)?;
    // "rtt min/avg/max/mdev = 0.031/0.045/0.080/0.012 ms"
    Ok(text.lines().find(|l| l.contains("min/avg/max")).and_then(|l| l.split('=').nth(1)?.trim().split('/').nth(1)?.parse().ok()))
}

/// Whether an added delay measured by ping is within the fidelity target: max(1 ms,
/// 5%) of the asked delay, plus half the jitter (over the 20 pings a start measures,
/// the mean of a +-jitter uniform spread wanders by ~0.13 x jitter).
pub fn delay_within(asked_ms: f64, jitter_ms: f64, added_ms: f64) -> bool {
    (added_ms - asked_ms).abs() <= (asked_ms * 0.05).max(1.0) + 0.5 * jitter_ms
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
    measure_rate_from_port(from, to, addr, 0, bytes).await
}

/// [`measure_rate`] from source port `src_port` (0: any), so a per-port class sees it.
pub async fn measure_rate_from_port(from: &NetnsWorker, to: &NetnsWorker, addr: IpAddr, src_port: u16, bytes: u64) -> Result<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sink = to.tcp_socket(addr.is_ipv6()).await?;
    sink.set_reuseaddr(true)?;
    sink.bind(SocketAddr::new(addr, 0))?;
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
    let sock = from.tcp_socket(addr.is_ipv6()).await?;
    if src_port != 0 {
        sock.set_reuseaddr(true)?;
        let any = if addr.is_ipv6() { IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED) };
        sock.bind(SocketAddr::new(any, src_port)).with_context(|| format!("binding the sender to port {src_port}"))?;
    }
    let mut stream = sock.connect(SocketAddr::new(addr, port)).await.context("connecting to the rate sink")?;
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
    use drill_core::scenario::{NftAction, NftRule, NftSource};

    fn json(rule: NftRule) -> String {
        let s = drill_core::scenario::parse("t", include_str!("../../../tests/fixtures/two-host.toml")).unwrap();
        let plan = drill_core::plan::compile(&s, "abcdef", 0);
        serde_json::to_string(&super::batch(&plan, &super::HostNft::of(vec![rule])).to_nftables()).unwrap()
    }

    #[test]
    fn delay_tolerance_is_5_percent_or_1_ms_plus_half_the_jitter() {
        assert!(super::delay_within(20.0, 0.0, 20.9) && !super::delay_within(20.0, 0.0, 21.1));
        assert!(super::delay_within(300.0, 0.0, 314.0) && !super::delay_within(300.0, 0.0, 316.0));
        assert!(super::delay_within(300.0, 10.0, 319.0) && !super::delay_within(300.0, 10.0, 321.0));
    }

    #[test]
    fn loss_is_numgen_below_the_permille() {
        let j = json(NftRule::input(Some("icmp"), None, None, NftAction::Loss { permille: 200 }));
        assert!(j.contains(r#"{"match":{"left":{"numgen":{"mode":"random","mod":1000}},"right":199,"op":"<="}}"#), "{j}");
    }

    #[test]
    fn drop_from_a_host_matches_its_addresses_and_port() {
        let j = json(NftRule::input(Some("tcp"), Some(8080), Some(NftSource::Host("client".into())), NftAction::Drop));
        assert!(j.contains(r#""right":{"set":["10.77.9.1"]}"#), "{j}");
        assert!(j.contains(r#"{"match":{"left":{"payload":{"protocol":"tcp","field":"dport"}},"right":8080,"op":"=="}}"#), "{j}");
        // Apply rebuilds the table: add (a no-op when present), delete, add, then chains.
        let (add, del) = (j.find(r#"{"add":{"table""#).unwrap(), j.find(r#"{"delete":{"table""#).unwrap());
        assert!(add < del && j[del..].contains(r#"{"add":{"table""#), "apply replaces the table: {j}");
    }
}
