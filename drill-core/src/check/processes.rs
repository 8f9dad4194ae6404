//! The process-table checks: `zombies` (no more than `max` processes of the host are
//! zombies at any moment of the window) and `process-cpu` (no process of the host used
//! more than `max_percent` of one CPU over the window). Both read the host's own
//! processes (its PID namespace) from /proc, sampled through the window.

use super::{Check, Env, Kind, shape};
use crate::schema::{Entry, Key, Ty, key};

const HOST: Key = key("host", Ty::Str, "\"worker\"", "the host whose processes are read");

pub const ZOMBIES: Kind = Kind {
    shape: shape("zombies", &[HOST, key("max", Ty::Int, "3", "most zombie (<defunct>) processes tolerated at any moment (at least 0; default 0)").from(0.0, f64::INFINITY, "processes")]),
    build: |e, env| build(e, env, "zombies"),
};
pub const PROCESS_CPU: Kind = Kind {
    shape: shape("process-cpu", &[HOST, key("max_percent", Ty::Num, "20", "most CPU one process may use over the window, percent of one CPU (above 0, at most 6400)").above(0.0, 6400.0, "%")]),
    build: |e, env| build(e, env, "process-cpu"),
};

/// What a process-table check bounds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "watch", rename_all = "kebab-case")]
pub enum ProcWatch {
    /// Zombies at any sample, at most `max`.
    Zombies { max: u64 },
    /// CPU time of any one process over the window, at most `max_percent` of one CPU.
    Cpu { max_percent: f64 },
}

fn build(e: &mut Entry, env: &Env, k: &str) -> Option<Check> {
    let name = e.str("name").map(|n| n.into_inner());
    let max = if k == "zombies" { e.int_opt("max") } else { Ok(None) };
    let pct = if k == "process-cpu" { e.num_opt("max_percent") } else { Ok(None) };
    let Some(host) = e.str("host") else {
        e.need(format!("a {k} check needs `host`"), "see scenarios/README.md for the keys of each check kind");
        return None;
    };
    if !env.hosts.check(e.cx, &host) {
        return None;
    }
    let (Ok(max), Ok(pct)) = (max, pct) else { return None };
    let watch = match k {
        "zombies" => ProcWatch::Zombies { max: max.map_or(0, i64::unsigned_abs) },
        _ => match pct {
            Some(p) => ProcWatch::Cpu { max_percent: p },
            None => {
                e.need("a process-cpu check needs `max_percent`", "give the most CPU one process may use, in percent of one CPU, e.g. max_percent = 20");
                return None;
            }
        },
    };
    let h = host.get_ref();
    let name = name.unwrap_or_else(|| match &watch {
        ProcWatch::Zombies { max } => format!("at most {max} zombie processes on {h}"),
        ProcWatch::Cpu { max_percent } => format!("no process on {h} uses more than {max_percent}% of a CPU"),
    });
    Some(Check::Processes { name, host: host.into_inner(), watch })
}

/// One process of a host as one read of its /proc/PID/stat saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcSample {
    /// Its PID inside the host (what `ps` there shows).
    pub pid: u32,
    /// Its parent's PID inside the host.
    pub ppid: u32,
    pub comm: String,
    /// The state letter (`R`, `S`, `Z`, ...).
    pub state: char,
    /// utime + stime, in clock ticks.
    pub ticks: u64,
    /// Start time after boot, in clock ticks (a PID reused is another process).
    pub start: u64,
}

/// One read of the whole process table of a host: when (seconds into the window) and
/// every process.
pub type ProcTable = (f64, Vec<ProcSample>);

/// Judges a process-table check over the tables read through the window (the first at
/// its start, the last at its end). Fails closed: fewer than two reads, or a read that
/// found no process at all (the host's init is always there), is nothing measured.
pub fn evaluate(name: &str, host: &str, watch: &ProcWatch, tables: &[ProcTable], ticks_per_sec: u64) -> crate::verdict::CheckResult {
    let result = |passed: bool, saw: String, details: serde_json::Value| crate::verdict::CheckResult { name: name.to_string(), kind: "processes".into(), passed, saw, details };
    if tables.len() < 2 || tables.iter().any(|(_, t)| t.is_empty()) {
        return result(false, format!("could not read the processes of {host} through the window ({} reads): nothing was measured", tables.len()), serde_json::json!({ "reads": tables.len() }));
    }
    match watch {
        ProcWatch::Zombies { max } => {
            let counts: Vec<usize> = tables.iter().map(|(_, t)| t.iter().filter(|p| p.state == 'Z').count()).collect();
            let (worst_i, worst) = counts.iter().copied().enumerate().max_by_key(|(_, c)| *c).unwrap_or((0, 0));
            let last = counts.last().copied().unwrap_or(0);
            // The positive control: processes were started in the host during the window
            // (its workload ran); a host where nothing runs has no zombies to judge.
            let first: std::collections::BTreeSet<(u32, u64)> = tables[0].1.iter().map(|p| (p.pid, p.start)).collect();
            let started: std::collections::BTreeSet<(u32, u64)> = tables[1..].iter().flat_map(|(_, t)| t.iter().map(|p| (p.pid, p.start))).filter(|k| !first.contains(k)).collect();
            let mut saw = format!("at most {worst} zombie processes on {host} during the window (allowed {max}; {} at its start, {last} at its end)", counts[0]);
            // Whose children they are: the parent with most zombies at the worst read.
            let t = &tables[worst_i].1;
            let mut parents: std::collections::BTreeMap<u32, usize> = std::collections::BTreeMap::new();
            for p in t.iter().filter(|p| p.state == 'Z') {
                *parents.entry(p.ppid).or_default() += 1;
            }
            if let Some((ppid, n)) = parents.iter().max_by_key(|(_, n)| **n) {
                let comm = t.iter().find(|p| p.pid == *ppid).map_or("?", |p| p.comm.as_str());
                saw.push_str(&format!(": {n} of them children of {comm} (pid {ppid})"));
            }
            if started.is_empty() {
                saw.push_str(&format!("; but no process was started on {host} during the window, so there was nothing to judge: is its workload running?"));
            }
            result(
                worst as u64 <= *max && !started.is_empty(),
                saw,
                serde_json::json!({ "max": max, "most": worst, "first": counts[0], "last": last, "started": started.len(), "reads": tables.len() }),
            )
        }
        ProcWatch::Cpu { max_percent } => {
            let (t0, first) = (&tables[0].0, &tables[0].1);
            let (t1, last) = (&tables[tables.len() - 1].0, &tables[tables.len() - 1].1);
            let secs = (t1 - t0).max(1e-3);
            let tps = ticks_per_sec.max(1) as f64;
            // Each process alive at the end: its CPU time since the first read (or since it
            // started, when it started later).
            let mut usage: Vec<(f64, &ProcSample)> = last
                .iter()
                .map(|p| {
                    let before = first.iter().find(|q| q.pid == p.pid && q.start == p.start).map_or(0, |q| q.ticks);
                    (p.ticks.saturating_sub(before) as f64 / tps / secs * 100.0, p)
                })
                .collect();
            usage.sort_by(|a, b| b.0.total_cmp(&a.0));
            let (top, p) = usage[0];
            let passed = top <= *max_percent;
            let saw = format!("the busiest process on {host}, {} (pid {}), used {top:.0}% of a CPU over {secs:.1} s (allowed {max_percent}%)", p.comm, p.pid);
            let busiest: Vec<serde_json::Value> = usage.iter().take(3).map(|(u, p)| serde_json::json!({ "pid": p.pid, "comm": p.comm, "percent": (u * 10.0).round() / 10.0 })).collect();
            result(passed, saw, serde_json::json!({ "max_percent": max_percent, "busiest": busiest, "secs": secs, "processes": last.len() }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, ppid: u32, comm: &str, state: char, ticks: u64) -> ProcSample {
        ProcSample { pid, ppid, comm: comm.into(), state, ticks, start: pid as u64 }
    }

    #[test]
    fn zombies_are_counted_at_the_worst_moment_and_blamed_on_their_parent() {
        let t = |n: u32| -> Vec<ProcSample> { std::iter::once(p(1, 0, "init", 'S', 0)).chain(std::iter::once(p(7, 1, "jobs", 'S', 0))).chain((0..n).map(|i| p(100 + i, 7, "sh", 'Z', 0))).collect() };
        let tables = vec![(0.0, t(0)), (1.0, t(4)), (2.0, t(2))];
        let r = evaluate("z", "w", &ProcWatch::Zombies { max: 3 }, &tables, 100);
        assert!(!r.passed, "{}", r.saw);
        assert!(r.saw.contains("at most 4 zombie processes") && r.saw.contains("children of jobs (pid 7)"), "{}", r.saw);
        assert!(evaluate("z", "w", &ProcWatch::Zombies { max: 4 }, &tables, 100).passed);
        // A host where nothing was started has nothing to judge.
        let idle = evaluate("z", "w", &ProcWatch::Zombies { max: 4 }, &[(0.0, t(0)), (1.0, t(0))], 100);
        assert!(!idle.passed && idle.saw.contains("no process was started"), "{}", idle.saw);
        // Nothing read is never a pass.
        assert!(!evaluate("z", "w", &ProcWatch::Zombies { max: 4 }, &[(0.0, t(0))], 100).passed);
        assert!(!evaluate("z", "w", &ProcWatch::Zombies { max: 4 }, &[(0.0, t(0)), (1.0, vec![])], 100).passed);
    }

    #[test]
    fn cpu_is_the_busiest_process_share_over_the_window() {
        let tables = vec![(0.0, vec![p(1, 0, "init", 'S', 5), p(9, 1, "worker", 'R', 1000)]), (5.0, vec![p(1, 0, "init", 'S', 6), p(9, 1, "worker", 'R', 1250)])];
        let r = evaluate("c", "w", &ProcWatch::Cpu { max_percent: 20.0 }, &tables, 100);
        assert!(!r.passed);
        assert!(r.saw.contains("worker (pid 9), used 50% of a CPU over 5.0 s"), "{}", r.saw);
        assert!(evaluate("c", "w", &ProcWatch::Cpu { max_percent: 60.0 }, &tables, 100).passed);
    }
}
