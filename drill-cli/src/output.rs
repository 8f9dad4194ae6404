//! Human output (default) and JSON output (`--json`) of every command.

use anyhow::Result;
use drill_core::api::*;
use drill_core::verdict::Verdict;
use serde::Serialize;

pub fn print_json_or<T: Serialize>(json: bool, v: &T, human: impl FnOnce()) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        human();
    }
    Ok(())
}

fn indent(text: &str, by: &str) -> String {
    text.trim_end().lines().map(|l| if l.is_empty() { String::new() } else { format!("{by}{l}") }).collect::<Vec<_>>().join("\n")
}

pub fn print_list(list: &[ScenarioSummary], json: bool) -> Result<()> {
    print_json_or(json, &list, || {
        for s in list {
            println!("{:<20} {:<5} {}", s.name(), s.severity, s.title);
            if !s.summary.is_empty() {
                println!("{:<26} {}", "", s.summary);
            }
        }
        println!("\nstart one with: sudo drill start <id> (PACK/ID for a scenario of an installed pack)");
    })
}

pub fn print_start(r: &StartResponse, json: bool) -> Result<()> {
    print_json_or(json, r, || {
        let Some(d) = &r.drill else {
            print!("{}", r.plan);
            return;
        };
        println!("drill {} started: {} ({})\n", d.id, d.title, d.severity);
        println!("ALERT\n{}\n", indent(&d.alert, "  "));
        println!("BRIEFING\n{}\n", indent(&d.briefing, "  "));
        print_hosts(d);
        println!("\nNEXT");
        let shell = format!("sudo drill shell {}", d.hosts.last().map_or("HOST", |h| h.name.as_str()));
        let hints = format!("a hint ({} available)", d.hints);
        for (cmd, what) in [
            (shell.as_str(), "a shell inside that host"),
            ("drill status", "hosts, services, elapsed time"),
            ("drill hint", hints.as_str()),
            ("drill submit", "let the probes judge your fix"),
            ("drill stop", "remove everything the drill created"),
        ] {
            println!("  {cmd:<28} # {what}");
        }
    })
}

fn print_hosts(d: &DrillInfo) {
    println!("HOSTS");
    for h in &d.hosts {
        println!("  {:<10} netns {:<24} {}", h.name, h.netns, h.addresses.join("  "));
    }
}

pub fn print_status(all: &[DrillInfo], json: bool) -> Result<()> {
    print_json_or(json, &all, || {
        if all.is_empty() {
            println!("no drills are running");
        }
        for (i, d) in all.iter().enumerate() {
            if i > 0 {
                println!();
            }
            let e = d.elapsed_secs as u64;
            println!("drill {}  {}  ({}, running for {}m{:02}s)", d.id, d.scenario, d.severity, e / 60, e % 60);
            print_hosts(d);
            println!("SERVICES");
            for s in &d.services {
                let pid = s.pid.map_or("-".to_string(), |p| p.to_string());
                println!("  {:<10} {:<10} {:<22} pid {:<8} restarts {:<3} config {}", s.host, s.name, s.state, pid, s.restarts, s.config_path);
            }
            println!("(enter a host: sudo drill shell HOST, or: sudo ip netns exec NETNS COMMAND)");
        }
    })
}

pub fn print_verdict(v: &Verdict, json: bool) -> Result<()> {
    print_json_or(json, v, || {
        println!("{}  drill {} ({}), observed for {} s", if v.passed { "PASS" } else { "FAIL" }, v.drill_id, v.scenario, v.window_secs);
        for c in &v.checks {
            println!("  [{}] {}", if c.passed { " ok " } else { "FAIL" }, c.name);
            println!("         saw: {}", c.saw);
        }
        if !v.passed {
            println!("\nNot fixed yet. `drill hint` gives a hint; `drill submit` again once you have changed something.");
        }
    })
}

pub fn print_solution(r: &SolveResponse, json: bool) -> Result<()> {
    print_json_or(json, r, || {
        println!("WHAT WAS WRONG\n{}\n", indent(&r.summary, "  "));
        if !r.faults.is_empty() {
            println!("WHAT THE ENGINE INJECTED");
            for f in &r.faults {
                println!("  - {f}");
            }
            println!();
        }
        println!("REFERENCE FIX");
        for s in &r.steps {
            println!("  [{}] $ {}", s.host, s.run);
            if let Some(x) = &s.result {
                for l in x.stdout.lines().chain(x.stderr.lines()) {
                    println!("        {l}");
                }
                if x.exit_code != 0 {
                    println!("        (exit status {})", x.exit_code);
                }
            }
        }
        if r.steps.iter().all(|s| s.result.is_none()) {
            println!("\n(`drill solve --apply` runs these steps for you)");
        }
    })
}

pub fn print_stop(r: &StopResponse, json: bool) -> Result<()> {
    print_json_or(json, r, || {
        if r.stopped.is_empty() {
            println!("no drills were running");
        }
        for id in &r.stopped {
            println!("drill {id} stopped; everything it created was removed");
        }
        for e in &r.errors {
            eprintln!("teardown problem: {e}");
        }
    })
}

pub fn print_counters(c: &DrillCounters) {
    let e = c.elapsed_secs as u64;
    println!("drill {}  running for {}m{:02}s  (totals since start; Ctrl-C to leave)", c.id, e / 60, e % 60);
    println!("{:<10} {:>7} {:>8} {:>9} {:>9} {:>10} {:>5} {:>6}  drops by reason", "HOST", "DROPS", "RETRANS", "RST SENT", "RST RECV", "CLOSE_WAIT", "OOM", "EXECS");
    for h in &c.hosts {
        let drops: u64 = h.drops.values().sum();
        let reasons: Vec<String> = h.drops.iter().map(|(r, n)| format!("{r} {n}")).collect();
        println!("{:<10} {:>7} {:>8} {:>9} {:>9} {:>10} {:>5} {:>6}  {}", h.host, drops, h.retransmits, h.resets_sent, h.resets_received, h.close_wait, h.oom_kills, h.execs, reasons.join(", "));
    }
    for r in &c.requests {
        match &r.error {
            None => println!("  request {} -> {}: ok in {:.1} ms", r.from, r.target, r.latency_ms),
            Some(e) => println!("  request {} -> {}: FAILED after {:.0} ms: {e}", r.from, r.target, r.latency_ms),
        }
    }
    for h in &c.hosts {
        for (port, (n, mean, max)) in &h.srtt_ms {
            println!("  {}:{port} srtt mean {mean:.2} ms, max {max:.2} ms ({n} samples)", h.host);
        }
        if !h.recent_execs.is_empty() {
            println!("  {} started (newest first):", h.host);
            for e in &h.recent_execs {
                println!("    {:>7.1}s  {:<12} pid {:<8} parent {:<8} {}", e.at_secs, e.comm, e.pid, e.ppid, e.argv);
            }
        }
    }
}
