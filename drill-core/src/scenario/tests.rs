//! Tests of whole-file parsing and of the validation of every part.

use super::tests_support::{GOOD, fault_err, with_fault};
use super::*;
use crate::source::SourceError;
use crate::workload::Workload;

fn errs(text: &str) -> Vec<SourceError> {
    parse("t.toml", text).unwrap_err().0
}

#[test]
fn delay_faults_validate_their_parameters_with_line_numbers() {
    let s = with_fault("kind = \"delay\"\nhost = \"client\"\ninterface = \"eth0\"\ndelay_ms = 300\njitter_ms = 20\npercent = 1").unwrap();
    assert_eq!(s.faults[1], Fault::Delay { host: "client".into(), interface: "eth0".into(), delay_ms: 300.0, jitter_ms: 20.0, loss: 0.01 });
    assert_eq!(s.faults[1].describe(), "delay on client/eth0 egress: 300 ms +-20 ms jitter, 1% loss");
    let line = GOOD.lines().position(|l| l == "[verify]").unwrap() + 1;
    let e = fault_err("kind = \"delay\"\nhost = \"client\"\ninterface = \"eth0\"\ndelay_ms = -5");
    assert!(e.contains("delay of -5 ms is impossible") && e.contains(&format!("t.toml:{}:", line + 4)), "{e}");
    let e = fault_err("kind = \"delay\"\nhost = \"client\"\ninterface = \"eth0\"\ndelay_ms = 5\njitter_ms = 10");
    assert!(e.contains("jitter of 10 ms is impossible with a 5 ms delay"), "{e}");
    let e = fault_err("kind = \"delay\"\nhost = \"client\"\ninterface = \"eth0\"\ndelay_ms = 5\npercent = 150");
    assert!(e.contains("loss of 150% is impossible"), "{e}");
    let e = fault_err("kind = \"delay\"\nhost = \"client\"\ninterface = \"wan\"\ndelay_ms = 5");
    assert!(e.contains("host `client` has no interface `wan`"), "{e}");
    let e = fault_err("kind = \"delay\"\nhost = \"client\"\ninterface = \"eth0\"\ndelay_ms = 5\n[[faults]]\nkind = \"tc-rate\"\nhost = \"client\"\ninterface = \"eth0\"\nrate = \"1mbit\"");
    assert!(e.contains("already has a fault on its root qdisc"), "{e}");
}

#[test]
fn nft_fault_variants_parse_and_refuse_what_cannot_work() {
    let s = with_fault("kind = \"nft-limit\"\nhost = \"api\"\nproto = \"icmp\"\nrate = \"50/second\"\nburst = 10").unwrap();
    assert!(s.faults[1].describe().ends_with("meta l4proto icmp limit rate over 50/second burst 10 packets drop"), "{}", s.faults[1].describe());
    let s = with_fault("kind = \"nft-conn-limit\"\nhost = \"api\"\nproto = \"tcp\"\ndport = 8080\nmax_connections = 20").unwrap();
    assert!(s.faults[1].describe().ends_with("tcp dport 8080 ct count over 20 drop"));
    let s = with_fault("kind = \"nft-drop\"\nhost = \"api\"\nhook = \"output\"\nicmp = \"frag-needed\"").unwrap();
    assert_eq!(s.faults[1].describe(), "nftables on api (table inet filter, output): icmp type destination-unreachable icmp code frag-needed drop");
    let s = with_fault("kind = \"nft-loss\"\nhost = \"api\"\nhook = \"forward\"\nto = \"client\"\npercent = 5").unwrap();
    assert!(matches!(&s.faults[1], Fault::Nft { rule, .. } if rule.hook == NftHook::Forward && rule.to.as_deref() == Some("client")));
    let s = with_fault("kind = \"nft-dnat\"\nhost = \"api\"\nproto = \"tcp\"\ndport = 80\nto = \"api:8081\"").unwrap();
    assert_eq!(s.faults[1].describe(), "nftables on api (table inet filter, prerouting): tcp dport 80 dnat to api:8081");
    assert!(fault_err("kind = \"nft-limit\"\nhost = \"api\"\nrate = \"fast\"").contains("rate `fast` is not a packet rate"));
    assert!(fault_err("kind = \"nft-conn-limit\"\nhost = \"api\"\nmax_connections = 3").contains("needs proto = \"tcp\" and `dport`"));
    assert!(fault_err("kind = \"nft-drop\"\nhost = \"api\"\nhook = \"prerouting\"").contains("hook `prerouting` is not supported"));
    let e = fault_err("kind = \"nft-reject\"\nhost = \"api\"\nicmp = \"frag-needed\"");
    assert!(e.contains("`icmp` is not a key of `nft-reject`") && e.contains("`nft-drop` takes `icmp`"), "{e}");
    assert!(fault_err("kind = \"nft-drop\"\nhost = \"api\"\nproto = \"tcp\"\nicmp = \"frag-needed\"").contains("only `icmp = \"frag-needed\"` on an nft-drop"));
    assert!(fault_err("kind = \"nft-dnat\"\nhost = \"api\"\nproto = \"tcp\"\ndport = 80\nto = \"nowhere\"").contains("is not HOST:PORT or IPV4:PORT"));
    assert!(fault_err("kind = \"nft-dnat\"\nhost = \"api\"\nproto = \"tcp\"\ndport = 70000\nto = \"api:1\"").contains("port 70000 is out of range"));
}

#[test]
fn http_slo_client_names_a_loadgen_on_the_from_host() {
    let with_lg = GOOD.replace("[[faults]]", "[[services]]\nname = \"lg\"\nhost = \"client\"\nkind = \"loadgen\"\nconfig = { target = \"api:8080\" }\n\n[[faults]]");
    let s = parse("t.toml", &with_lg.replace("target = \"api:8080\"\n\n[solution]", "target = \"api:8080\"\nclient = \"lg\"\ntls = false\n\n[solution]")).unwrap();
    assert!(matches!(&s.checks[1], Check::HttpSlo { client: Some(c), .. } if c == "lg"));
    let e = parse("t.toml", &with_lg.replace("target = \"api:8080\"\n\n[solution]", "target = \"api:8080\"\nclient = \"httpd\"\n\n[solution]")).unwrap_err().to_string();
    assert!(e.contains("host `client` has no loadgen service `httpd`"), "{e}");
}

#[test]
fn ebpf_and_htb_faults_parse_and_refuse_what_cannot_work() {
    let s = with_fault("kind = \"ebpf-drop\"\nhost = \"api\"\ninterface = \"eth0\"\nproto = \"tcp\"\ndport = 8080\nfrom = \"client\"\npercent = 25").unwrap();
    assert_eq!(s.faults[1].describe(), "eBPF tc classifier on api/eth0 ingress: drops 25% of from client tcp dport 8080");
    let s = with_fault("kind = \"ebpf-drop\"\nhost = \"api\"\ninterface = \"eth0\"\ndirection = \"egress\"").unwrap();
    assert!(matches!(&s.faults[1], Fault::EbpfDrop { egress: true, loss, .. } if *loss == 1.0));
    assert!(fault_err("kind = \"ebpf-drop\"\nhost = \"api\"\ninterface = \"eth0\"\ndirection = \"sideways\"").contains("direction `sideways` is not supported"));
    assert!(fault_err("kind = \"ebpf-drop\"\nhost = \"api\"\ninterface = \"eth0\"\npercent = 0").contains("drops nothing"));
    assert!(fault_err("kind = \"ebpf-drop\"\nhost = \"api\"\ninterface = \"eth0\"\nproto = \"icmp\"\ndport = 1").contains("`dport` needs"));
    let s = with_fault("kind = \"tc-rate\"\nhost = \"api\"\ninterface = \"eth0\"\nrate = \"5mbit\"\nport = 8080").unwrap();
    assert_eq!(s.faults[1].describe(), "tc htb on api/eth0: egress of port 8080 limited to 5000 kbit/s");
    assert!(fault_err("kind = \"tc-rate\"\nhost = \"api\"\ninterface = \"eth0\"\nrate = \"5mbit\"\nport = 0").contains("port 0 is out of range"));
}

#[test]
fn good_scenario_parses_with_fault_applied() {
    let s = parse("t.toml", GOOD).unwrap();
    assert_eq!(s.id, "t-leak");
    assert_eq!(s.window_secs, 4.0);
    let Some(Workload::Httpd(c)) = s.initial_workload("api", "httpd") else { panic!() };
    assert!(!c.close_on_eof);
    let Workload::Httpd(healthy) = &s.services[0].workload else { panic!() };
    assert!(healthy.close_on_eof);
    assert!(matches!(s.checks[0], Check::TcpStateDwell { state: TcpState::CloseWait, port: 8080, .. }));
    assert!(matches!(&s.checks[1], Check::HttpSlo { target_host, port: 8080, .. } if target_host == "api"));
    assert_eq!(s.segments[0].members[1].addresses[0].to_string(), "10.77.0.2/24");
    assert_eq!(s.segments[0].members[1].ifname, "eth0");
}

#[test]
fn unknown_host_in_link_names_line_and_known_hosts() {
    let text = GOOD.replace("b = { host = \"api\"", "b = { host = \"apj\"");
    let e = &errs(&text)[0];
    assert_eq!(e.line, 15, "{e}");
    assert!(e.message.contains("unknown host `apj`"), "{e}");
    assert!(e.help.contains("api, client"), "{e}");
}

#[test]
fn duplicate_address_and_subnet_mismatch_are_reported_together() {
    let text = GOOD.replace("10.77.0.2/24", "10.77.0.1/24");
    let e = errs(&text);
    assert!(e.iter().any(|e| e.message.contains("already used by client") && e.line == 15), "{e:?}");
    let text = GOOD.replace("10.77.0.2/24", "10.78.0.2/24");
    assert!(errs(&text).iter().any(|e| e.message.contains("not in the same subnet")));
}

#[test]
fn syntax_and_unknown_keys_point_at_the_spot() {
    let e = &errs("id = \"x\"\ntitel = \"y\"\n")[0];
    assert_eq!((e.line, e.column), (2, 1), "{e}");
    assert!(e.message.contains("titel"), "{e}");
    let e = &errs("id = \n")[0];
    assert_eq!(e.line, 1);
}

#[test]
fn bad_check_values_are_rejected() {
    let text = GOOD.replace("port = 8080", "port = 70000").replace("state = \"close_wait\"", "state = \"CLOSED_WAIT\"");
    let e = errs(&text);
    assert!(e.iter().any(|e| e.message.contains("port 70000 is out of range")), "{e:?}");
    assert!(e.iter().any(|e| e.message.contains("unknown TCP state `CLOSED_WAIT`")), "{e:?}");
    let text = GOOD.replace("kind = \"http-slo\"", "kind = \"http-sla\"");
    assert!(errs(&text).iter().any(|e| e.message.contains("unknown check kind `http-sla`") && e.help.contains("http-slo")));
}

#[test]
fn counting_checks() {
    let extra = "\n[[checks]]\nkind = \"drops\"\nhost = \"api\"\nreason = \"netfilter_drop\"\n\n[[checks]]\nkind = \"resets\"\nhost = \"api\"\nport = 8080\nmax = 3\n";
    let text = GOOD.replace("[solution]", &format!("{extra}\n[solution]"));
    let s = parse("t.toml", &text).unwrap();
    assert_eq!(
        s.checks[2],
        Check::Count {
            name: "at most 0 packet drops (NETFILTER_DROP) on api".into(),
            host: "api".into(),
            port: None,
            counted: Counted::Drops { reason: Some("NETFILTER_DROP".into()) },
            max: 0,
            max_ratio: None
        }
    );
    let r = text.replace("kind = \"drops\"\nhost = \"api\"\nreason = \"netfilter_drop\"", "kind = \"retransmits\"\nhost = \"client\"\nmax_ratio = 0.01");
    let s2 = parse("t.toml", &r).unwrap();
    assert!(matches!(&s2.checks[2], Check::Count { counted: Counted::Retransmits, max_ratio: Some(x), name, .. } if *x == 0.01 && name == "at most 1% of segments as retransmissions on client"));
    assert!(matches!(&s.checks[3], Check::Count { port: Some(8080), counted: Counted::ResetsSent, max: 3, .. }));
    let bad = text.replace("port = 8080\nmax = 3", "direction = \"both\"");
    assert!(parse("t.toml", &bad).unwrap_err().to_string().contains("direction `both` is not `sent` or `received`"));
}

#[test]
fn faults_must_fit_the_service() {
    let text = GOOD.replace("set = { close_on_eof = false }", "set = { close_on_oef = false }");
    let e = errs(&text);
    assert!(e.iter().any(|e| e.message.contains("close_on_oef")), "{e:?}");
    let text = GOOD.replace("kind = \"service-config\"", "kind = \"netem\"");
    assert!(errs(&text).iter().any(|e| e.message.contains("unknown fault kind `netem`")));
}

#[test]
fn nft_faults() {
    let nft = "[[faults]]\nkind = \"nft-drop\"\nhost = \"api\"\nproto = \"tcp\"\ndport = 8080\nfrom = \"client\"\n";
    let text = GOOD.replace("[verify]", &format!("{nft}\n[verify]"));
    let s = parse("t.toml", &text).unwrap();
    let Fault::Nft { host, rule } = &s.faults[1] else { panic!() };
    assert_eq!(host, "api");
    assert_eq!(rule.describe(), "from client tcp dport 8080 drop");
    let e = parse("t.toml", &text.replace("dport = 8080", "dport = 0")).unwrap_err().to_string();
    assert!(e.contains("port 0 is out of range"), "{e}");
    let e = parse("t.toml", &text.replace("proto = \"tcp\"", "proto = \"sctp\"")).unwrap_err().to_string();
    assert!(e.contains("protocol `sctp` is not supported"), "{e}");
    let e = parse("t.toml", &text.replace("from = \"client\"", "from = \"clinet\"")).unwrap_err().to_string();
    assert!(e.contains("`clinet` is neither a host nor an IPv4 prefix") && e.contains("t.toml:"), "{e}");
    let r = parse("t.toml", &text.replace("nft-drop", "nft-reject")).unwrap();
    assert!(matches!(&r.faults[1], Fault::Nft { rule: NftRule { action: NftAction::RejectTcpReset, .. }, .. }));
    let loss = text.replace("kind = \"nft-drop\"", "kind = \"nft-loss\"\npercent = 150");
    let e = parse("t.toml", &loss).unwrap_err().to_string();
    assert!(e.contains("loss of 150% is impossible"), "{e}");
    let r = parse("t.toml", &loss.replace("percent = 150", "percent = 2.5")).unwrap();
    let Fault::Nft { rule, .. } = &r.faults[1] else { panic!() };
    assert_eq!(rule.action, NftAction::Loss { permille: 25 });
    assert_eq!(rule.describe(), "from client tcp dport 8080 numgen random mod 1000 < 25 drop (2.5% loss)");
}

#[test]
fn rates() {
    assert_eq!(parse_rate("10mbit"), Some(10_000_000));
    assert_eq!(parse_rate("1.5Mbit"), Some(1_500_000));
    assert_eq!(parse_rate("64000bit"), Some(64_000));
    assert_eq!(parse_rate("10mb"), None);
    assert_eq!(parse_rate("-1kbit"), None);
}

#[test]
fn host_faults() {
    let add = |f: &str| parse("t.toml", &GOOD.replace("[verify]", &format!("{f}\n[verify]")));
    let s = add("[[faults]]\nkind = \"sysctl\"\nhost = \"client\"\nkey = \"net.ipv4.ip_local_port_range\"\nvalue = \"40000 40001\"\n").unwrap();
    assert_eq!(s.faults[1].describe(), "sysctl on client: net.ipv4.ip_local_port_range = 40000 40001");
    let e = add("[[faults]]\nkind = \"sysctl\"\nhost = \"client\"\nkey = \"kernel.pid_max\"\nvalue = 5\n").unwrap_err().to_string();
    assert!(e.contains("not a per-network-namespace setting"), "{e}");
    let e = add("[[faults]]\nkind = \"mtu\"\nhost = \"api\"\ninterface = \"eth7\"\nmtu = 1280\n").unwrap_err().to_string();
    assert!(e.contains("host `api` has no interface `eth7`") && e.contains("its interfaces are: eth0"), "{e}");
    let e = add("[[faults]]\nkind = \"mtu\"\nhost = \"api\"\ninterface = \"eth0\"\nmtu = -5\n").unwrap_err().to_string();
    assert!(e.contains("mtu -5 is out of range"), "{e}");
    let e = add("[[faults]]\nkind = \"route-remove\"\nhost = \"api\"\nto = \"default\"\n").unwrap_err().to_string();
    assert!(e.contains("host `api` has no route to default to remove"), "{e}");
}

#[test]
fn cidr_parsing() {
    assert_eq!("10.0.0.1/8".parse::<Cidr>().unwrap().prefix, 8);
    assert!("10.0.0.1".parse::<Cidr>().unwrap_err().contains("no prefix length"));
    assert!("10.0.0.1/33".parse::<Cidr>().is_err());
    assert!("fd00::1/64".parse::<Cidr>().unwrap().same_subnet(&"fd00::2/64".parse().unwrap()));
}

#[test]
fn tcp_states_round_trip() {
    for s in TcpState::ALL {
        assert_eq!(TcpState::from_number(s.number()), Some(s));
        assert_eq!(s.name().parse::<TcpState>().unwrap(), s);
    }
}
