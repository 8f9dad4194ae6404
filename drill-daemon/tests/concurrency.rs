//! Twenty drills at once, without cross-talk (issue 14): five built-in scenarios four
//! times each, started together; half are fixed with their reference fix, half left
//! broken; then all twenty submit together while a client keeps asking for status.
//! Each verdict must be its own drill's: a fixed drill passes while the drills beside
//! it, on the same kernel and the same probes, keep dropping, refusing and failing;
//! a broken one fails. Prints drilld's and the host inits' memory.
//!
//! The scenarios are the ones whose checks count kernel events (drops, resets) or
//! make requests: a counter that leaked between drills would fail a fixed one.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const SCENARIOS: &[&str] = &["firewall-drop", "missing-route", "bind-localhost", "dns-misconfig", "unreachable-no-ping"];
const EACH: usize = 4;

/// VmRSS of `pid` in KiB (0 when it is gone).
fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default().lines().find_map(|l| l.strip_prefix("VmRSS:").and_then(|v| v.split_whitespace().next()?.parse().ok())).unwrap_or(0)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn twenty_drills_at_once_each_judged_on_its_own_traffic() {
    if !privileged_or_skip("twenty_drills_at_once_each_judged_on_its_own_traffic") {
        return;
    }
    let d = Arc::new(TestDaemon::start("conc20"));
    let rss_idle = rss_kib(d.pid());
    let t0 = Instant::now();
    // Start all twenty together, four clients at a time.
    let todo: Arc<Mutex<Vec<(usize, &str)>>> = Arc::new(Mutex::new(SCENARIOS.iter().flat_map(|s| std::iter::repeat_n(*s, EACH)).enumerate().collect()));
    let started: Arc<Mutex<Vec<(usize, String, String)>>> = Arc::default();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (d, todo, started) = (d.clone(), todo.clone(), started.clone());
            std::thread::spawn(move || {
                loop {
                    let Some((i, s)) = todo.lock().unwrap().pop() else { return };
                    let id = d.start_scenario(s);
                    started.lock().unwrap().push((i, s.to_string(), id));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a start failed");
    }
    let mut drills = std::mem::take(&mut *started.lock().unwrap());
    drills.sort();
    assert_eq!(drills.len(), SCENARIOS.len() * EACH);
    let start_secs = t0.elapsed().as_secs_f64();
    // Every drill's hosts are its own namespaces.
    for (_, _, id) in &drills {
        assert!(!netns_of(id).is_empty(), "drill {id} has no namespaces");
    }
    // The even ones get their reference fix; the odd ones stay broken.
    for (i, s, id) in &drills {
        if i % 2 == 0 {
            let v = d.drill_json(&["solve", id, "--apply", "--json"], 0);
            assert!(v["steps"].as_array().is_some_and(|s| !s.is_empty()), "solve {s} {id}: {v}");
        }
    }
    // From the outside: a fixed firewall-drop answers, a broken one does not, side by side.
    let fw: Vec<&(usize, String, String)> = drills.iter().filter(|(_, s, _)| s == "firewall-drop").collect();
    let curl = |id: &str| curl_ok(&format!("drill-{id}-client"), "http://10.77.0.2:8080/", 3);
    for (i, _, id) in &fw {
        let ok = curl(id);
        if i % 2 == 0 {
            assert_eq!(ok, 3, "fixed firewall-drop {id}: {ok} of 3 requests answered");
        } else {
            assert_eq!(ok, 0, "broken firewall-drop {id}: {ok} of 3 requests answered");
        }
    }
    let rss_running = rss_kib(d.pid());
    let mut inits = Vec::new();
    for (_, _, id) in &drills {
        let v = d.drill_json(&["status", id, "--json"], 0);
        for h in v[0]["hosts"].as_array().or(v["hosts"].as_array()).expect("hosts in status") {
            inits.push(rss_kib(h["pid"].as_i64().unwrap() as i32) as f64);
        }
    }
    // All twenty submit at once while a client keeps asking for the list and a status.
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let (d, done, id) = (d.clone(), done.clone(), drills[0].2.clone());
        std::thread::spawn(move || {
            let mut lat = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                let out = d.drill(&["status", &id, "--json"]);
                assert!(out.status.success(), "status during the submits: {}", String::from_utf8_lossy(&out.stderr));
                lat.push(t.elapsed().as_secs_f64() * 1e3);
                std::thread::sleep(Duration::from_millis(100));
            }
            lat
        })
    };
    let t1 = Instant::now();
    let submits: Vec<_> = drills
        .iter()
        .cloned()
        .map(|(i, s, id)| {
            let d = d.clone();
            std::thread::spawn(move || {
                let out = d.drill(&["submit", &id, "--json"]);
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("submit {s} {id}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
                (i, s, id, out.status.code(), v)
            })
        })
        .collect();
    let mut wrong = Vec::new();
    for t in submits {
        let (i, s, id, code, v) = t.join().unwrap();
        let want = i % 2 == 0;
        if v["passed"] != want || code != Some(if want { 0 } else { 1 }) {
            wrong.push(format!("{s} {id} ({}): passed={} exit={code:?}: {v}", if want { "fixed" } else { "broken" }, v["passed"]));
        }
    }
    let submit_secs = t1.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let mut lat = poller.join().expect("status calls failed during the submits");
    assert!(wrong.is_empty(), "verdicts of other drills' traffic:\n{}", wrong.join("\n"));
    assert!(!lat.is_empty(), "no status call made during the submits");
    let n = inits.len();
    eprintln!(
        "twenty drills: started in {start_secs:.1} s, submitted together in {submit_secs:.1} s; {} status calls meanwhile, p50 {:.0} ms, max {:.0} ms; \
         drilld RSS {} MiB idle, {} MiB with 20 drills; {n} host inits, RSS p50 {:.1} MiB, max {:.1} MiB",
        lat.len(),
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 1.0),
        rss_idle >> 10,
        rss_running >> 10,
        percentile(&mut inits, 0.5) / 1024.0,
        percentile(&mut inits, 1.0) / 1024.0,
    );
    for (_, _, id) in &drills {
        d.stop_checked(id);
    }
    d.assert_nothing_running();
}
