use super::*;

fn builtin() -> Vec<(String, Vec<Requirement>)> {
    let (ok, bad) = drill_requirements(&crate::builtin::scenarios());
    assert!(bad.is_empty(), "{bad:?}");
    assert!(ok.len() > 20, "the built-in pack was not found");
    ok
}

/// Every need present but `missing`.
fn facts_without(drills: &[(String, Vec<Requirement>)], missing: &[Need]) -> Vec<Fact> {
    all_needs(drills).iter().map(|n| Fact::new(n, !missing.contains(n), if missing.contains(n) { "absent" } else { "" })).collect()
}

fn line<'a>(r: &'a Report, need: &Need) -> &'a CheckLine {
    r.checks.iter().find(|c| c.id == need.id()).unwrap_or_else(|| panic!("no line {}", need.id()))
}

fn uses(d: &[(String, Vec<Requirement>)], id: &str) -> bool {
    d.iter().any(|(x, _)| x == id)
}

#[test]
fn everything_present_is_all_ok_and_exit_0() {
    let d = builtin();
    let r = report(&facts_without(&d, &[]), &d);
    assert_eq!(r.exit_code, 0);
    assert!(r.cannot_run.is_empty());
    assert!(r.checks.iter().all(|c| c.level == Level::Ok && c.fix.is_empty()), "{:?}", r.checks);
    assert_eq!(r.unchecked, 0);
    assert_eq!(r.drills, d.len());
}

#[test]
fn without_netem_delay_drills_use_the_wire_and_still_run() {
    let d = builtin();
    let netem = Need::Qdisc("netem".into());
    let r = report(&facts_without(&d, std::slice::from_ref(&netem)), &d);
    assert_eq!(r.exit_code, 0, "{:?}", r.cannot_run);
    let l = line(&r, &netem);
    assert_eq!((l.status, l.level), (Status::Missing, Level::Warning));
    assert!(l.disables.is_empty());
    assert_eq!(l.changes.len(), 1);
    assert!(l.changes[0].what.contains("delay wire"), "{:?}", l.changes);
    assert!(l.changes[0].drills.contains(&"wan-latency-504".to_string()), "{:?}", l.changes);
    assert!(l.fix.contains("sch_netem"), "{}", l.fix);
}

#[test]
fn a_missing_service_binary_disables_exactly_the_drills_running_that_service() {
    let d = builtin();
    let nginx = Need::Binary { path: "/usr/sbin/nginx".into(), package: "nginx-light".into() };
    let r = report(&facts_without(&d, std::slice::from_ref(&nginx)), &d);
    assert_eq!(r.exit_code, 1);
    let l = line(&r, &nginx);
    assert_eq!(l.level, Level::Error);
    assert!(l.fix.contains("apt-get install nginx-light"), "{}", l.fix);
    let expect: Vec<String> = crate::builtin::scenarios()
        .iter()
        .filter(|s| {
            let p = crate::plan::compile(s, "000000", 0, crate::plan::Backends { delay: crate::plan::DelayBackend::Wire }).unwrap();
            p.hosts.iter().any(|h| h.services.iter().any(|s| s.kind == "nginx"))
        })
        .map(|s| s.id.clone())
        .collect();
    assert!(!expect.is_empty());
    assert_eq!(l.disables, expect);
    assert_eq!(r.cannot_run.keys().cloned().collect::<Vec<_>>(), expect);
    assert!(r.cannot_run.values().all(|v| v == &vec![nginx.id()]));
}

#[test]
fn dnsmasq_and_conntrack_are_derived_from_the_services() {
    let d = builtin();
    let dns = Need::Binary { path: "/usr/sbin/dnsmasq".into(), package: "dnsmasq-base".into() };
    let r = report(&facts_without(&d, std::slice::from_ref(&dns)), &d);
    assert!(line(&r, &dns).disables.iter().any(|x| x.starts_with("dns-")), "{:?}", line(&r, &dns).disables);
    let ct = Need::Binary { path: "/usr/sbin/conntrack".into(), package: "conntrack".into() };
    let r = report(&facts_without(&d, std::slice::from_ref(&ct)), &d);
    assert_eq!(line(&r, &ct).disables, vec!["k8s-stale-endpoint".to_string()]);
}

#[test]
fn a_missing_tracepoint_disables_the_drills_whose_checks_count_it() {
    let d = builtin();
    let tp = Need::Tracepoint("sock:inet_sock_set_state".into());
    let r = report(&facts_without(&d, std::slice::from_ref(&tp)), &d);
    let l = line(&r, &tp);
    assert!(l.disables.contains(&"close-wait-leak".to_string()), "{:?}", l.disables);
    assert!(!l.disables.contains(&"wan-latency-504".to_string()) || uses(&d, "wan-latency-504"));
    assert_eq!(r.exit_code, 1);
    // The command capture's tracepoint only changes the timeline.
    let exec = Need::Tracepoint("sched:sched_process_exec".into());
    let r = report(&facts_without(&d, std::slice::from_ref(&exec)), &d);
    let l = line(&r, &exec);
    assert_eq!((l.level, r.exit_code), (Level::Warning, 0));
    assert_eq!(l.changes[0].drills.len(), d.len());
    assert_eq!(drills_phrase(&l.changes[0].drills, d.len()), format!("every drill ({})", d.len()));
}

#[test]
fn missing_kernel_basics_disable_every_drill() {
    let d = builtin();
    for need in [Need::Btf, Need::Cgroup("memory".into()), Need::LinkType("veth".into()), Need::Daemon, Need::Kernel(5, 8)] {
        let r = report(&facts_without(&d, std::slice::from_ref(&need)), &d);
        assert_eq!(r.exit_code, 1, "{need:?}");
        assert_eq!(r.cannot_run.len(), d.len(), "{need:?}");
        assert!(!line(&r, &need).fix.is_empty());
    }
}

#[test]
fn the_ebpf_fault_needs_sched_cls_and_clsact() {
    let d = builtin();
    let cls = Need::ProgramType("sched_cls".into());
    let with_ebpf: Vec<&String> = d.iter().filter(|(_, r)| r.iter().any(|q| q.need == cls)).map(|(id, _)| id).collect();
    let r = report(&facts_without(&d, std::slice::from_ref(&cls)), &d);
    let l = line(&r, &cls);
    assert_eq!(l.disables.iter().collect::<Vec<_>>(), with_ebpf);
    assert_eq!(l.kinds, vec!["ebpf-drop"]);
    assert_eq!(l.level, if with_ebpf.is_empty() { Level::Warning } else { Level::Error });
    assert_eq!(r.exit_code, u8::from(!with_ebpf.is_empty()));
}

#[test]
fn unknown_facts_are_not_counted_as_missing() {
    let d = builtin();
    let mut f = facts_without(&d, &[]);
    f.retain(|x| !x.id.starts_with("program-type:"));
    f.push(Fact::unknown(&Need::Btf, "needs root"));
    f.retain(|x| x.id != "btf" || x.status == Status::Unknown);
    let r = report(&f, &d);
    assert_eq!(r.exit_code, 0);
    assert_eq!(r.unchecked, 4);
    let l = line(&r, &Need::ProgramType("sched_cls".into()));
    assert_eq!((l.status, l.level, l.detail.as_str()), (Status::Unknown, Level::Unknown, "not checked"));
}

#[test]
fn kernel_versions_are_compared_by_number() {
    let f = kernel_facts("6.18.44-fc-v1045");
    assert!(f.iter().all(|f| f.status == Status::Ok));
    let f = kernel_facts("5.10.0-28-amd64");
    assert_eq!(f.iter().map(|f| f.status).collect::<Vec<_>>(), vec![Status::Ok, Status::Missing]);
    assert_eq!(kernel_facts("4.19.0")[0].status, Status::Missing);
}

#[test]
fn cgroups_on_a_hybrid_machine_and_on_pure_v2() {
    let hybrid = "30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n\
                  31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                  32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                  33 25 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
    let f = cgroup_facts(hybrid, |_| Some("hugetlb\n".into()));
    assert!(f.iter().all(|f| f.status == Status::Ok), "{f:?}");
    assert_eq!(f[1].detail, "cgroup v1 at /sys/fs/cgroup/cpu,cpuacct");
    let v2 = "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    let f = cgroup_facts(v2, |p| (p == "/sys/fs/cgroup/cgroup.controllers").then(|| "cpuset cpu io memory".into()));
    assert_eq!(f.iter().map(|f| f.status).collect::<Vec<_>>(), vec![Status::Ok, Status::Ok, Status::Missing]);
    assert!(f[2].detail.contains("offers only: cpuset cpu io memory"), "{}", f[2].detail);
}

#[test]
fn the_json_is_stable() {
    let d = builtin();
    let r = report(&facts_without(&d, &[Need::Qdisc("netem".into())]), &d);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["version"], 1);
    let netem = v["checks"].as_array().unwrap().iter().find(|c| c["id"] == "qdisc:netem").unwrap();
    assert_eq!(netem["status"], "missing");
    assert_eq!(netem["level"], "warning");
    assert_eq!(netem["group"], "network");
    let back: Report = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
}

#[test]
fn a_refusal_names_the_need_its_fix_and_doctor() {
    let m = refusal(&Need::Binary { path: "/usr/sbin/nginx".into(), package: "nginx".into() }, "service web (nginx) on host lb");
    assert!(m.starts_with("service web (nginx) on host lb needs /usr/sbin/nginx (nginx)"), "{m}");
    assert!(m.contains("apt-get install nginx ") && m.contains("`drill doctor`"), "{m}");
}

#[test]
fn a_refusal_with_drills_says_what_the_need_disables() {
    let d = builtin();
    let nginx = Need::Binary { path: "/usr/sbin/nginx".into(), package: "nginx-light".into() };
    let off = disabled_by(&nginx, &d);
    assert!(!off.is_empty() && off.len() < d.len(), "{off:?}");
    let m = refusal_disabling(&nginx, "service web (nginx) on host lb", &d);
    assert!(m.starts_with("service web (nginx) on host lb needs /usr/sbin/nginx (nginx-light), which this machine lacks: apt-get install nginx-light"), "{m}");
    assert!(m.contains(&format!("without it these built-in drills cannot run: {}", off.join(", "))), "{m}");
    assert!(m.ends_with("the drills it disables"), "{m}");
    // A need no built-in drill must have: the plain refusal.
    let vx = Need::LinkType("vxlan".into());
    if disabled_by(&vx, &d).is_empty() {
        assert_eq!(refusal_disabling(&vx, "x", &d), refusal(&vx, "x"));
    }
    assert_eq!(disabled_by(&Need::Qdisc("netem".into()), &d), Vec::<String>::new(), "netem only changes drills");
}
