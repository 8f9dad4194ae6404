//! The drill lifecycle on the recording fake kernel: no root, no namespace, no
//! netlink, no process. Built-in scenarios compiled with `plan::compile`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use drill_core::scenario::{Fault, NftAction, Scenario};

use super::{Created, Drill, Env};
use crate::error::DrillError;
use crate::kernel::fake::FakeKernel;
use crate::kernel::{Connect, DelayBackend};

fn builtin(id: &str) -> Scenario {
    drill_core::builtin::scenarios().into_iter().find(|s| s.id == id).unwrap_or_else(|| panic!("no built-in scenario {id}"))
}

/// A state directory of its own per start (removed by teardown; by the guard otherwise).
struct StateDir(PathBuf);

impl StateDir {
    fn new() -> StateDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!("drill-fake-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        StateDir(p)
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts `s` on `k` (the answers a scenario's measurements need set first).
fn start(k: &Arc<FakeKernel>, s: &Scenario, state: &StateDir) -> Result<Drill<FakeKernel>, DrillError> {
    for f in &s.faults {
        if let Fault::Nft { rule, .. } = f
            && let NftAction::Loss { permille } = rule.action
        {
            k.answer_loss(f64::from(permille) / 1000.0);
        }
    }
    let plan = drill_core::plan::compile(s, "f0f0f0", 0, crate::kernel::Kernel::backends(k.as_ref())).map_err(DrillError::Unmeasurable)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let env = Env { state: &state.0, exe: std::path::Path::new("/nonexistent/drilld"), kernel: k };
    rt.block_on(Drill::start(&env, s.clone(), plan, crate::drill::Origin::default()))
}

fn kind(call: &str) -> &str {
    call.split_whitespace().next().unwrap_or("")
}

fn first(calls: &[String], k: &str) -> usize {
    calls.iter().position(|c| kind(c) == k).unwrap_or_else(|| panic!("no {k} call in {calls:#?}"))
}

fn last(calls: &[String], k: &str) -> usize {
    calls.iter().rposition(|c| kind(c) == k).unwrap_or_else(|| panic!("no {k} call in {calls:#?}"))
}

/// The call that undoes a call that created something (`None`: it created nothing
/// that outlives its namespaces). Host kills are matched on the host's name.
fn undo_of(call: &str) -> Option<String> {
    let mut w = call.split_whitespace();
    let (k, a) = (w.next()?, w.next().unwrap_or(""));
    Some(match k {
        "create_netns" => format!("delete_netns {a}"),
        "watch" => format!("unwatch {a}"),
        "watch_pids" => format!("unwatch_pids {a}"),
        "open_wire" => format!("close_wire {a}"),
        "spawn_host" => format!("kill_host {a} "),
        "attach_tc_fault" => format!("forget_tc_fault {a}"),
        "set_path_mtu" => format!("forget_path_mtu {a}"),
        "hold_probe" => format!("release_probe {a}"),
        _ => return None,
    })
}

#[test]
fn namespaces_come_before_links_before_hosts_before_faults() {
    let k = FakeKernel::new();
    let state = StateDir::new();
    let d = start(&k, &builtin("wan-latency-504"), &state).expect("starts on the fake");
    let calls = k.calls();
    let hosts = ["client", "lb", "api"].map(|h| calls.iter().position(|c| c.starts_with(&format!("create_netns drill-f0f0f0-{h}"))).expect("a host namespace"));
    assert!(hosts.windows(2).all(|w| w[0] < w[1]), "hosts' namespaces in plan order: {calls:#?}");
    assert!(last(&calls, "create_netns") < first(&calls, "apply_topology"), "every namespace (the wire's too) before the links: {calls:#?}");
    assert!(last(&calls, "watch") < first(&calls, "apply_topology"), "probes watch before any traffic: {calls:#?}");
    assert!(first(&calls, "apply_topology") < first(&calls, "open_wire") && last(&calls, "open_wire") < first(&calls, "spawn_host"), "{calls:#?}");
    assert!(last(&calls, "wait_host_ready") < first(&calls, "set_wire"), "faults after every host is up: {calls:#?}");
    // The delay is measured around the fault: a control, the fault, the measurement.
    let (rtt0, set, rtt1) = (first(&calls, "echo_burst"), first(&calls, "set_wire"), last(&calls, "echo_burst"));
    assert!(rtt0 < set && set < rtt1, "{calls:#?}");
    assert_eq!(d.fault_notes().len(), 2, "the delay and nginx's config, each recorded with its measurement: {:?}", d.fault_notes());
    assert!(d.fault_notes()[0].contains("measured +300.00 ms"), "{:?}", d.fault_notes());
    assert!(d.fault_notes()[1].contains("nginx runs with the faulty /etc/nginx/nginx.conf"), "read back from the running service: {:?}", d.fault_notes());
    // Teardown undoes everything created, newest first.
    let expected: Vec<String> = calls.iter().rev().filter_map(|c| undo_of(c)).collect();
    k.clear_calls();
    assert!(d.teardown().is_empty());
    let undone = k.calls();
    assert_eq!(undone.len(), expected.len(), "{undone:#?} vs {expected:#?}");
    assert!(undone.iter().zip(&expected).all(|(got, want)| got.starts_with(want.as_str())), "{undone:#?} vs {expected:#?}");
}

#[test]
fn a_delay_outside_its_tolerance_stops_the_start_with_the_figure() {
    let k = FakeKernel::new();
    // 300 ms asked: 10% over is 30 ms; 40 ms more is outside, 20 ms inside.
    k.overshoot_delay(40.0);
    let state = StateDir::new();
    let e = start(&k, &builtin("wan-latency-504"), &state).err().expect("an overshooting delay must not start");
    assert_eq!(e.code(), "fault_did_not_take", "{e}");
    assert!(e.to_string().contains("(+340.00 ms), asked +300 ms"), "{e}");
    assert!(k.calls().iter().any(|c| c.starts_with("close_wire")), "the wire is closed again: {:#?}", k.calls());
    let k = FakeKernel::new();
    k.overshoot_delay(20.0);
    let d = start(&k, &builtin("wan-latency-504"), &StateDir::new()).expect("within tolerance");
    assert!(d.teardown().is_empty());
}

#[test]
fn faults_apply_in_scenario_order() {
    let mut s = builtin("packet-loss");
    let plan = drill_core::plan::compile(&s, "f0f0f0", 0, Default::default()).expect("compiles");
    let (h, i) = (plan.hosts[0].name.clone(), plan.hosts[0].interfaces[0].name.clone());
    s.faults.push(Fault::Sysctl { host: h.clone(), key: "net.ipv4.tcp_syn_retries".into(), value: "2".into() });
    s.faults.push(Fault::Mtu { host: h.clone(), interface: i.clone(), mtu: 1400 });
    s.faults.push(Fault::TcRate { host: h.clone(), interface: i.clone(), rate_bps: 10_000_000, port: None });
    s.faults.push(Fault::RouteRemove { host: h, to: None });
    let k = FakeKernel::new();
    let state = StateDir::new();
    let d = start(&k, &s, &state).expect("starts on the fake");
    let calls = k.calls();
    let order: Vec<&str> = calls.iter().map(|c| kind(c)).filter(|c| ["apply_nft", "set_sysctl", "set_mtu", "set_rate", "remove_route"].contains(c)).collect();
    assert_eq!(order, ["apply_nft", "set_sysctl", "set_mtu", "set_rate", "remove_route"], "{calls:#?}");
    // Each measured before the next fault is applied: a control before the apply, the
    // measurement after it.
    let (nft, sysctl) = (first(&calls, "apply_nft"), first(&calls, "set_sysctl"));
    assert!(first(&calls, "echo_burst") < nft && calls[nft..sysctl].iter().any(|c| kind(c) == "echo_burst"), "{calls:#?}");
    assert!(first(&calls, "set_rate") < first(&calls, "transfer_rate") && first(&calls, "transfer_rate") < first(&calls, "remove_route"), "{calls:#?}");
    assert_eq!(d.fault_notes().len(), 5, "{:?}", d.fault_notes());
    assert!(d.teardown().is_empty());
}

/// For every built-in scenario and every step of its start: fail that step, and
/// everything created before it (and nothing else) is undone, newest first.
#[test]
fn a_switch_path_mtu_is_set_after_the_links_measured_from_outside_and_released_at_teardown() {
    let k = FakeKernel::new();
    let state = StateDir::new();
    let d = start(&k, &builtin("overlay-mtu"), &state).expect("starts on the fake");
    let calls = k.calls();
    let set = first(&calls, "set_path_mtu");
    assert_eq!(calls[set], "set_path_mtu drill-f0f0f0-underlay underlay ports node-a,node-b mtu 1400", "{calls:#?}");
    assert!(first(&calls, "apply_topology") < set && set < first(&calls, "spawn_host"), "after the links, before the hosts: {calls:#?}");
    // The measurement: 1400 bytes cross (payload 1372), 1401 are dropped and counted.
    let after: Vec<&String> = calls[set..].iter().filter(|c| kind(c) == "echo_burst" || kind(c) == "fabric_counters").take(4).collect();
    assert!(after[0].starts_with("echo_burst drill-f0f0f0-node-a 10.77.0.3 x3 payload 1372"), "{after:#?}");
    assert_eq!(after[1], "fabric_counters drill-f0f0f0-underlay");
    assert!(after[2].starts_with("echo_burst drill-f0f0f0-node-a 10.77.0.3 x3 payload 1373"), "{after:#?}");
    assert_eq!(after[3], "fabric_counters drill-f0f0f0-underlay");
    k.clear_calls();
    assert!(d.teardown().is_empty());
    let undone = k.calls();
    let forget = first(&undone, "forget_path_mtu");
    assert_eq!(undone[forget], "forget_path_mtu drill-f0f0f0-underlay");
    assert!(forget < undone.iter().position(|c| c == "delete_netns drill-f0f0f0-underlay").unwrap(), "released before its namespace goes: {undone:#?}");
}

#[test]
fn a_failed_path_mtu_stops_the_start_before_any_host() {
    let k = FakeKernel::new();
    k.fail_first("set_path_mtu");
    let state = StateDir::new();
    let err = start(&k, &builtin("overlay-mtu"), &state).err().expect("a failed set_path_mtu stops the start");
    assert!(matches!(err.root(), DrillError::Kernel { .. }), "{err}");
    assert!(!k.calls().iter().any(|c| kind(c) == "spawn_host"), "no host started: {:#?}", k.calls());
}

#[test]
fn a_failure_at_any_step_undoes_exactly_what_came_before_in_reverse() {
    for s in drill_core::builtin::scenarios() {
        let clean = FakeKernel::new();
        let state = StateDir::new();
        let d = start(&clean, &s, &state).unwrap_or_else(|e| panic!("{}: starts on the fake: {e}", s.id));
        let steps = clean.calls().len();
        assert!(d.teardown().is_empty());
        assert!(steps >= 8, "{}: {steps} steps", s.id);
        for i in 0..steps {
            let k = FakeKernel::new();
            k.fail_call(i);
            let state = StateDir::new();
            let err = match start(&k, &s, &state) {
                Ok(_) => panic!("{}: a failure of step {i} ({}) was swallowed", s.id, clean.calls()[i]),
                Err(e) => e,
            };
            assert!(matches!(err.root(), DrillError::Kernel { .. }), "{}: step {i}: {err}", s.id);
            let calls = k.calls();
            // The probe checks come before anything is built: nothing to undo, no drill.
            let before_build = matches!(kind(&calls[i]), "require_probe" | "drop_reason_known");
            assert_eq!(matches!(err, DrillError::StartFailed { .. }), !before_build, "{}: step {i}: {err}", s.id);
            let expected: Vec<String> = calls[..i].iter().rev().filter_map(|c| undo_of(c)).collect();
            let undone = &calls[i + 1..];
            assert_eq!(undone.len(), expected.len(), "{}: fail step {i} ({}): undone {undone:#?}, expected {expected:#?}", s.id, calls[i]);
            for (got, want) in undone.iter().zip(&expected) {
                assert!(got.starts_with(want.as_str()), "{}: fail step {i} ({}): undone {undone:#?}, expected {expected:#?}", s.id, calls[i]);
            }
            assert!(!state.0.join("drills").join("f0f0f0").exists(), "{}: step {i}: the drill's directory is removed", s.id);
        }
    }
}

#[test]
fn teardown_goes_on_after_errors_and_reports_every_one() {
    let k = FakeKernel::new();
    let state = StateDir::new();
    let d = start(&k, &builtin("wan-latency-504"), &state).expect("starts on the fake");
    let created = d.created_so_far();
    let netns: Vec<&Created> = created.iter().filter(|c| matches!(c, Created::Netns(_))).collect();
    let hosts: Vec<&Created> = created.iter().filter(|c| matches!(c, Created::Host { .. })).collect();
    assert_eq!((netns.len(), hosts.len()), (4, 3), "3 hosts and the delay wire's namespace: {created:?}");
    k.fail_always("delete_netns");
    k.fail_always("kill_host");
    k.clear_calls();
    let errors = d.teardown();
    assert_eq!(k.calls().len(), created.len(), "every step was tried: {:#?}", k.calls());
    assert_eq!(errors.len(), netns.len() + hosts.len(), "{errors:#?}");
    for c in netns.iter().chain(&hosts) {
        let name = match c {
            Created::Netns(n) => n.clone(),
            Created::Host { name, .. } => format!("host {name}"),
            _ => unreachable!(),
        };
        assert!(errors.iter().any(|e| e.to_string().contains(&name)), "no error names {name}: {errors:#?}");
    }
    k.clear_calls();
    assert!(d.teardown().is_empty() && k.calls().is_empty(), "a second teardown has nothing left to do");
}

#[test]
fn a_fault_that_does_not_take_stops_the_start_and_names_the_figure() {
    let k = FakeKernel::new();
    k.answer_connect(Connect::Refused);
    let state = StateDir::new();
    let Err(e) = start(&k, &builtin("firewall-drop"), &state) else { panic!("a drop that answers must not start") };
    assert_eq!(e.code(), "fault_did_not_take", "{e}");
    assert!(e.to_string().contains("was refused") && e.to_string().contains("expected: it times out"), "{e}");
    assert!(e.about().is_some_and(|a| a.starts_with("drill f0f0f0, host api")), "{:?}", e.about());
    let calls = k.calls();
    let made = calls.iter().filter(|c| kind(c) == "create_netns").count();
    assert!(made == 2 && calls.iter().filter(|c| kind(c) == "delete_netns").count() == made, "rolled back: {calls:#?}");
}

#[test]
fn with_netem_no_wire_is_made_and_a_kernel_error_names_host_and_interface() {
    let k = FakeKernel::new();
    k.set_backend(DelayBackend::Netem);
    k.fail_first("set_netem");
    let state = StateDir::new();
    let e = start(&k, &builtin("wan-latency-504"), &state).err().expect("a failed netem stops the start");
    assert_eq!(e.code(), "kernel");
    assert_eq!(e.about().as_deref(), Some("drill f0f0f0, host lb, interface wan0"), "{e}");
    assert!(!k.calls().iter().any(|c| kind(c) == "open_wire"), "netem needs no wire: {:#?}", k.calls());
}

#[test]
fn retuning_a_missing_ebpf_fault_is_not_found() {
    let k = FakeKernel::new();
    let state = StateDir::new();
    let d = start(&k, &builtin("firewall-drop"), &state).expect("starts");
    let e = d.retune_ebpf(0, 0.5).expect_err("firewall-drop has no eBPF fault");
    assert_eq!((e.code(), e.http_status()), ("fault_not_found", 404));
    assert!(d.teardown().is_empty());
}

/// Starts `s` on `k` with `origin` (owner, pack files).
fn start_from(k: &Arc<FakeKernel>, s: &Scenario, state: &StateDir, origin: crate::drill::Origin) -> Result<Drill<FakeKernel>, DrillError> {
    let plan = drill_core::plan::compile(s, "f0f0f0", 0, crate::kernel::Kernel::backends(k.as_ref())).map_err(DrillError::Unmeasurable)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let env = Env { state: &state.0, exe: std::path::Path::new("/nonexistent/drilld"), kernel: k };
    rt.block_on(Drill::start(&env, s.clone(), plan, origin))
}

#[test]
fn pack_files_are_staged_for_their_host_with_their_mode_and_the_owner_is_kept() {
    use std::os::unix::fs::PermissionsExt;
    let k = FakeKernel::new();
    let state = StateDir::new();
    let mut s = builtin("missing-route");
    let host = s.hosts[0].name.clone();
    s.files = vec![drill_core::scenario::FileRef { host: host.clone(), path: "/opt/app/app.conf".into(), source: "files/app.conf".into(), mode: 0o600 }];
    let origin = crate::drill::Origin { pack: "net101".into(), owner_uid: 1000, sudo_uid: None, files: vec![b"k = 1\n".to_vec()], pack_dir: None };
    let d = start_from(&k, &s, &state, origin).expect("starts");
    let staged = d.dir.join("hosts").join(&host).join("files/opt/app/app.conf");
    assert_eq!(std::fs::read(&staged).unwrap(), b"k = 1\n");
    assert_eq!(std::fs::metadata(&staged).unwrap().permissions().mode() & 0o7777, 0o600);
    let info = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(d.info());
    assert_eq!((info.owner_uid, info.pack.as_str()), (1000, "net101"));
    assert!(d.teardown().is_empty());

    // The kernel's file systems are not a drill's to write.
    s.files[0].path = "/proc/sys/kernel/hostname".into();
    let origin = crate::drill::Origin { files: vec![b"x".to_vec()], ..Default::default() };
    let e = start_from(&k, &s, &StateDir::new(), origin).err().expect("a file under /proc is refused");
    assert!(e.to_string().contains("/proc"), "{e}");
}

#[test]
fn a_conntrack_table_is_built_after_its_timeout_then_filled_and_its_size_file_given_to_the_host() {
    let k = FakeKernel::new();
    let state = StateDir::new();
    let s = builtin("conntrack-full");
    let plan = drill_core::plan::compile(&s, "f0f0f0", 0, crate::kernel::Kernel::backends(k.as_ref())).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let env = Env { state: &state.0, exe: std::path::Path::new("/nonexistent/drilld"), kernel: &k };
    // One runtime for the start and what follows: the feeder is a task of it.
    rt.block_on(async {
        let d = Drill::start(&env, s.clone(), plan, crate::drill::Origin::default()).await.expect("conntrack-full starts on the fake");
        let calls = k.calls();
        let (sysctl, table, fill) = (first(&calls, "set_sysctl"), first(&calls, "ct_table_apply"), first(&calls, "udp_fill"));
        assert!(sysctl < table && table < fill, "the timeout, then the table, then the fill: {calls:#?}");
        assert!(calls[table].ends_with("router 2048") && calls[fill].ends_with(" 2048"), "{calls:#?}");
        let file = super::fault::max_file(&d.dir, "router");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "2048\n");
        // The feeder follows the file: a new size resizes the table, a bad one is put back.
        std::fs::write(&file, "262144\n").unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        std::fs::write(&file, "lots\n").unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        assert!(k.calls().iter().any(|c| c == "ct_table_apply router 262144"), "{:#?}", k.calls());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "262144\n");
        assert!(d.teardown().is_empty());
        // The feeder is gone with the drill.
        let n = k.calls().iter().filter(|c| kind(c) == "ct_table_read").count();
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        assert_eq!(k.calls().iter().filter(|c| kind(c) == "ct_table_read").count(), n);
    });
}

#[test]
fn a_fill_that_fails_stops_the_start_and_rolls_back() {
    let k = FakeKernel::new();
    k.fail_first("udp_fill");
    let state = StateDir::new();
    assert!(start(&k, &builtin("conntrack-full"), &state).is_err());
    let calls = k.calls();
    let made = calls.iter().filter(|c| kind(c) == "create_netns").count();
    assert!(made == 3 && calls.iter().filter(|c| kind(c) == "delete_netns").count() == made, "rolled back: {calls:#?}");
}
