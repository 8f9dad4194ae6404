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
        let shell = format!("{}drill shell {}", enter_prefix(d), d.hosts.last().map_or("HOST", |h| h.name.as_str()));
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

/// `sudo ` when the drill is root's (its owner enters without: through drilld's relay).
fn enter_prefix(d: &DrillInfo) -> &'static str {
    if d.owner_uid == 0 { "sudo " } else { "" }
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
            let name = if d.scenario.is_empty() { "incident (its scenario is named once it is over)" } else { d.scenario.as_str() };
            println!("drill {}  {}  ({}, running for {}m{:02}s)", d.id, name, d.severity, e / 60, e % 60);
            if let Some(t) = &d.timeline {
                print_timeline(t);
            }
            print_hosts(d);
            println!("SERVICES");
            for s in &d.services {
                let pid = s.pid.map_or("-".to_string(), |p| p.to_string());
                println!("  {:<10} {:<10} {:<22} pid {:<8} restarts {:<3} config {}", s.host, s.name, s.state, pid, s.restarts, s.config_path);
            }
            println!("(enter a host: {}drill shell HOST, or: sudo ip netns exec NETNS COMMAND)", enter_prefix(d));
        }
    })
}

/// The page of an incident: what an alert would say, and nothing of the cause.
pub fn print_page(d: &DrillInfo, json: bool) -> Result<()> {
    print_json_or(json, d, || {
        let t = d.timeline.as_ref();
        let when = t.map_or(d.started_unix * 1000, |t| t.paged_unix_ms);
        let limit = t.and_then(|t| t.time_limit_secs).map_or("-".to_string(), |s| drill_core::incident::clock((s * 1000.0) as u64));
        println!("PAGE  {}  incident {}  paged at {}", d.severity, d.id, utc(when));
        println!("{}", indent(d.alert.trim_end(), "  "));
        if let Some(svc) = d.services.iter().find(|s| s.kind != "loadgen") {
            println!("  affected service: {} on host {}", svc.name, svc.host);
        }
        println!();
        println!("The clock runs: {limit}. Acknowledge with `drill ack`; `drill status` shows the clock.");
        print_hosts(d);
        println!("(enter a host: {}drill shell HOST; when fixed: drill submit; afterwards: drill report)", enter_prefix(d));
    })
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a unix time in ms (the report's own).
pub use drill_core::report::utc;

fn opt_clock(secs: Option<f64>) -> String {
    secs.map_or("—".to_string(), |s| drill_core::incident::clock((s * 1000.0) as u64))
}

/// The timeline part of `drill status`.
fn print_timeline(t: &TimelineInfo) {
    match t.time_limit_secs {
        Some(limit) => println!(
            "INCIDENT  {}  clock {} of {} ({} left)  acked {}  mitigated {}  resolved {}",
            t.outcome.as_str(),
            opt_clock(Some(t.elapsed_secs.min(limit))),
            opt_clock(Some(limit)),
            opt_clock(t.remaining_secs),
            opt_clock(t.acked_secs),
            opt_clock(t.mitigated_secs),
            opt_clock(t.resolved_secs)
        ),
        None => println!("TIMELINE  {}  mitigated {}  resolved {}", t.outcome.as_str(), opt_clock(t.mitigated_secs), opt_clock(t.resolved_secs)),
    }
    let level = match t.service_level_ok {
        Some(true) => "passing",
        Some(false) => "FAILING",
        None => "not measured yet",
    };
    print!("  service level {level} ({} windows)  hints {}  submits {} ({} failed)  commands {}", t.windows, t.hints, t.submits, t.failed_submits, t.commands);
    match t.score {
        Some(s) => println!("  score {s}/100{}", if t.outcome.is_over() { "" } else { " so far" }),
        None => println!(),
    }
    for r in &t.recent {
        println!("  {r}");
    }
}

/// `drill history`.
pub fn print_history(list: &[HistoryEntry], json: bool) -> Result<()> {
    print_json_or(json, &list, || {
        if list.is_empty() {
            println!("no drills kept yet");
            return;
        }
        println!("{:<7} {:<23} {:<9} {:<24} {:<11} {:>6} {:>6} {:>6} {:>6}", "ID", "STARTED", "MODE", "SCENARIO", "OUTCOME", "SCORE", "MTTA", "MTTM", "MTTR");
        let c = |ms: Option<u64>| ms.map_or("—".to_string(), drill_core::incident::clock);
        for e in list {
            let mode = if e.mode == drill_core::record::Mode::Incident { "incident" } else { "drill" };
            let score = e.score.map_or("—".to_string(), |s| s.to_string());
            println!(
                "{:<7} {:<23} {:<9} {:<24} {:<11} {:>6} {:>6} {:>6} {:>6}",
                e.id,
                utc(e.started_unix_ms),
                mode,
                e.scenario_name(),
                e.outcome.as_str(),
                score,
                c(e.mtta_ms),
                c(e.mttm_ms),
                c(e.mttr_ms)
            );
        }
        println!("(the postmortem of one: drill report ID --format md|html|json)");
    })
}

pub fn print_verdict(v: &Verdict, json: bool) -> Result<()> {
    print_json_or(json, v, || {
        let name = if v.scenario.is_empty() { String::new() } else { format!(" ({})", v.scenario) };
        println!("{}  drill {}{name}, observed for {} s", if v.passed { "PASS" } else { "FAIL" }, v.drill_id, v.window_secs);
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
