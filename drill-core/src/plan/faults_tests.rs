//! Unit tests of the plan's fault steps (every built-in fault measured, mechanisms
//! resolved, unmeasurable parameters refused).
use super::*;
use crate::plan;

fn plan_of(id: &str, backends: Backends) -> Plan {
    let s = crate::builtin::scenarios().into_iter().find(|s| s.id == id).expect("built-in scenario");
    plan::compile(&s, "a1b2c3", 0, backends).expect("built-in scenario compiles")
}

#[test]
fn every_builtin_fault_has_a_measured_step() {
    for s in crate::builtin::scenarios() {
        let p = plan::compile(&s, "a1b2c3", 0, Backends::default()).unwrap_or_else(|e| panic!("{}: {e}", s.id));
        assert_eq!(p.faults.len(), s.faults.len(), "{}", s.id);
        for (i, st) in p.faults.iter().enumerate() {
            assert_eq!(st.index, i);
        }
    }
}

#[test]
fn a_delay_step_names_its_wire_or_netem() {
    let p = plan_of("wan-latency-504", Backends { delay: DelayBackend::Wire });
    let st = p.faults.iter().find(|f| matches!(f.mechanism, Mechanism::DelayWire { .. })).expect("a wire step");
    let Mechanism::DelayWire { interface, netns, delay_ms, .. } = &st.mechanism else { unreachable!() };
    assert_eq!((st.host.as_str(), interface.as_str(), *delay_ms), ("lb", "wan0", 300.0));
    assert_eq!(netns, "drill-a1b2c3-wire.lb.wan0");
    let Measure::EchoDelay { from, added_ms, count, .. } = &st.measure else { panic!("{:?}", st.measure) };
    assert_eq!((from.as_str(), *added_ms, *count), ("lb", 300.0, DELAY_ECHOES));
    let json = serde_json::to_value(&p.faults).unwrap();
    assert_eq!(json[0]["mechanism"]["mechanism"], "delay-wire", "{json}");
    assert_eq!(json[0]["measure"]["by"], "echo-delay", "{json}");
    let p = plan_of("wan-latency-504", Backends { delay: DelayBackend::Netem });
    assert!(matches!(p.faults[0].mechanism, Mechanism::Netem { .. }));
}

#[test]
fn a_tcp_drop_is_measured_by_a_connection_from_the_filtered_host() {
    let p = plan_of("firewall-drop", Backends::default());
    let Measure::Connect { from, to, expect } = &p.faults[0].measure else { panic!("{:?}", p.faults[0].measure) };
    assert_eq!((from.as_str(), to.port(), *expect), ("client", 8080, ConnectOutcome::TimesOut));
    let Mechanism::Nft { resolved, chain, .. } = &p.faults[0].mechanism else { panic!() };
    assert_eq!(chain, "input");
    assert!(resolved.contains("ip saddr {"), "host sources resolve to addresses: {resolved}");
}

#[test]
fn a_frag_needed_drop_is_probed_across_the_narrow_link() {
    let p = plan_of("mtu-blackhole", Backends::default());
    let st = p.faults.iter().find(|f| matches!(f.mechanism, Mechanism::Nft { .. })).unwrap();
    let Measure::PmtuBlackhole { from, to, payload } = &st.measure else { panic!("{:?}", st.measure) };
    assert_eq!(from, "api", "the large packets come from behind core's wide interface");
    assert_eq!(to.to_string(), "10.77.9.1", "edge, behind the 1280-byte tunnel");
    assert_eq!(*payload, PMTU_PROBE_PAYLOAD);
}

#[test]
fn loss_is_one_burst_of_echoes() {
    let p = plan_of("packet-loss", Backends::default());
    let Measure::EchoLoss { count, loss, .. } = &p.faults[0].measure else { panic!("{:?}", p.faults[0].measure) };
    assert_eq!((*count, *loss), (LOSS_ECHOES, 0.15));
}

fn with_fault(extra: &str) -> Result<Plan, PlanError> {
    let text = format!("{}\n{extra}", crate::scenario::tests_support::GOOD);
    let s = crate::scenario::parse("t.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    plan::compile(&s, "a1b2c3", 0, Backends::default())
}

#[test]
fn unmeasurable_parameters_are_refused_with_the_reason() {
    let e = with_fault("[[faults]]\nkind = \"nft-loss\"\nhost = \"api\"\nproto = \"tcp\"\ndport = 8080\npercent = 10\n").unwrap_err();
    assert!(e.why.contains("other than ICMP"), "{e}");
    assert!(e.help.contains("proto"), "{e}");
    let e = with_fault("[[faults]]\nkind = \"nft-drop\"\nhost = \"api\"\nhook = \"forward\"\n").unwrap_err();
    assert!(e.why.contains("without `to`"), "{e}");
    let e = with_fault("[[faults]]\nkind = \"nft-conn-limit\"\nhost = \"api\"\nproto = \"tcp\"\ndport = 8080\nmax_connections = 5000\n").unwrap_err();
    assert!(e.to_string().contains("at most 200"), "{e}");
}

#[test]
fn a_plan_prints_mechanism_and_measurement() {
    let p = plan_of("firewall-drop", Backends::default());
    let text = p.to_string();
    assert!(text.contains("how: nft table inet filter, chain input"), "{text}");
    assert!(text.contains("measured by: a TCP connection from client to"), "{text}");
}
