//! nftables faults: drop, reject, loss, policer, connection limit, frag-needed drop and
//! DNAT live in the host's own table `inet filter`, shaped like Debian's stock
//! /etc/nftables.conf (chains input, forward, output; `prerouting` for a DNAT): nothing
//! in it names the engine or the fault. Apply is
//! idempotent: one transaction per host adds the table, deletes it and builds it anew
//! with every rule of that host. The learner may remove them any way an engineer
//! would (delete the rule, flush the chain, delete the table); the engine never
//! re-applies them. Runs `nft -j` from the host's namespace worker.

use std::net::SocketAddr;

use anyhow::{Context, Result, anyhow, bail};
use drill_core::plan::Plan;
use drill_core::scenario::{NftAction, NftHook, NftRule, NftSource};
use nftables::{batch::Batch, expr, schema, stmt, types};

use crate::kernel::linux::netns::NetnsWorker;

/// Name of the table drill's nft faults live in, in each host.
pub const TABLE: &str = "filter";

/// A port forward a `nft-dnat` fault installs, resolved to an address.
#[derive(Clone, Debug, PartialEq)]
pub struct DnatRule {
    pub proto: String,
    pub dport: u16,
    pub to: SocketAddr,
}

/// What one host's `inet filter` table holds.
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

fn payload(proto: &str, field: &str) -> expr::Expression<'static> {
    expr::Expression::Named(expr::NamedExpression::Payload(expr::Payload::PayloadField(expr::PayloadField { protocol: proto.to_string().into(), field: field.to_string().into() })))
}

fn matches(left: expr::Expression<'static>, right: expr::Expression<'static>) -> stmt::Statement<'static> {
    stmt::Statement::Match(stmt::Match { left, right, op: stmt::Operator::EQ })
}

fn addr_set(plan: &Plan, host: &str) -> expr::Expression<'static> {
    expr::Expression::Named(expr::NamedExpression::Set(plan.host_addresses(host, false).iter().map(|a| expr::SetItem::Element(expr::Expression::String(a.to_string().into()))).collect()))
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

/// The nft batch that makes the host's `inet filter` table hold exactly `nft`: the
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
    // The three filter chains of Debian's stock /etc/nftables.conf, always (empty ones too).
    for (hook, h) in [(NftHook::Input, types::NfHook::Input), (NftHook::Forward, types::NfHook::Forward), (NftHook::Output, types::NfHook::Output)] {
        b.add(schema::NfListObject::Chain(chain(hook.name(), h, types::NfChainType::Filter, 0)));
    }
    if !nft.dnats.is_empty() {
        b.add(schema::NfListObject::Chain(chain("prerouting", types::NfHook::Prerouting, types::NfChainType::NAT, -100)));
    }
    for r in &nft.rules {
        let e = rule_statements(plan, r);
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

/// The statements of one filter rule: its matches, the action's own statement
/// (numgen, limit, ct count), a counter, then the verdict.
fn rule_statements(plan: &Plan, r: &NftRule) -> Vec<stmt::Statement<'static>> {
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
    e
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

/// Removes the host's `inet filter` table (missing is fine: the learner may have).
pub async fn revert_nft(worker: &NetnsWorker, host: &str) -> Result<()> {
    worker
        .run(|| -> Result<()> {
            let out = std::process::Command::new("nft").args(["delete", "table", "inet", TABLE]).output()?;
            if out.status.success() || String::from_utf8_lossy(&out.stderr).contains("No such file") { Ok(()) } else { bail!("{}", String::from_utf8_lossy(&out.stderr).trim()) }
        })
        .await?
        .with_context(|| format!("host {host}: deleting nftables table inet {TABLE}"))
}

#[cfg(test)]
mod tests {
    use drill_core::scenario::{NftAction, NftRule, NftSource};

    fn json(rule: NftRule) -> String {
        let s = drill_core::scenario::parse("t", include_str!("../../../tests/fixtures/two-host.toml")).unwrap();
        let plan = drill_core::plan::compile(&s, "abcdef", 0, Default::default()).unwrap();
        serde_json::to_string(&super::batch(&plan, &super::HostNft::of(vec![rule])).to_nftables()).unwrap()
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
        // Looks like a stock Debian table: `inet filter` with its three chains.
        assert!(j.contains(r#""family":"inet","name":"filter""#), "{j}");
        for c in ["input", "forward", "output"] {
            assert!(j.contains(&format!(r#""name":"{c}","type":"filter","hook":"{c}""#)), "chain {c}: {j}");
        }
        assert!(!j.contains("drill"), "{j}");
    }
}
