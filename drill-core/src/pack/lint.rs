//! Authoring lints: what a scenario that parsed still needs before it is a good drill.
//! `drill pack validate` reports them as problems of kind `lint` (a pack with lints is
//! not valid); `drill start` does not run them.
//!
//! - `alert` and `briefing` say something (not blank);
//! - at least two hints;
//! - a solution with a summary and steps, and no blank command in any step;
//! - a time limit (`time_limit_minutes`), not shorter than `estimated_minutes`;
//! - every fault guarded by at least one check (`guards`, default: every fault);
//! - not every check trivially true without traffic (see [`needs_traffic`]).

use std::ops::Range;

use super::spans::Spans;
use crate::model::Step;
use crate::scenario::{Check, Scenario};
use crate::source::SourceError;

/// Fewer hints than this is a lint.
pub const MIN_HINTS: usize = 2;

/// Whether a check can only pass when the drill's traffic flows: it has a positive
/// control of its own.
///
/// - `http-slo`: passes only with at least one request sent and a share of them
///   answered (the ratio is above 0);
/// - `tcp-state-dwell`: passes only when at least `min_connections` (at least 1) sockets
///   went through the state;
/// - `retransmits` with `max_ratio`: passes only when the host sent segments.
///
/// The other counting checks (`drops`, `resets`, `retransmits` with `max`, `oom-kills`)
/// bound events that should not happen: zero events pass. The engine fails them over a
/// window in which their host handled no packet at all (verdict::Activity; `oom-kills`
/// has no such control), but any packet counts, so a "fix" that stops the very traffic the
/// drill is about (stopping the load generator or the service, blocking the port earlier
/// on the path) still passes them. A scenario whose checks are all of that sort could be
/// "solved" by silencing it, so it is a lint.
pub fn needs_traffic(c: &Check) -> bool {
    match c {
        Check::HttpSlo { .. } | Check::TcpStateDwell { .. } => true,
        Check::Count { max_ratio, .. } => max_ratio.is_some(),
        Check::Counter { min, .. } => min.is_some(),
        Check::Processes { .. } | Check::FabricDrops { .. } => false,
        Check::ConntrackHeadroom { .. } => true,
    }
}

/// Every lint of scenario `s`, read from `file` (whose text is `text`).
pub fn lint(file: &str, text: &str, s: &Scenario) -> Vec<SourceError> {
    let sp = Spans::new(text);
    let mut out = Vec::new();
    let mut at = |span: Option<Range<usize>>, msg: String, help: &str| out.push(SourceError::at(file, text, Some(span.unwrap_or_else(|| sp.missing())), msg, help));
    for (key, val, what) in [("alert", &s.alert, "the page the learner receives"), ("briefing", &s.briefing, "what the learner is asked to do")] {
        if val.trim().is_empty() {
            at(sp.value(key), format!("`{key}` is empty"), &format!("write {what}"));
        }
    }
    if s.hints.len() < MIN_HINTS {
        at(sp.value("hints"), format!("the scenario has {} hint(s)", s.hints.len()), "give at least two hints, from a first observation to the cause (drill hint gives them one at a time)");
    }
    if s.solution.summary.trim().is_empty() {
        at(sp.sub_key("solution", "summary"), "the solution has no summary".into(), "say what was wrong and why the fix works: the learner reads it after submitting");
    }
    if s.solution.steps.is_empty() {
        at(sp.sub_key("solution", "steps"), "the solution has no steps".into(), "give the commands that fix the drill: steps = [{ host = \"api\", run = \"...\" }] (drill pack test runs them)");
    }
    blank_steps(&sp, &s.solution.steps, "solution", None, &mut at);
    for (list, attempts) in [("workarounds", &s.workarounds), ("alternatives", &s.alternatives)] {
        for (i, a) in attempts.iter().enumerate() {
            blank_steps(&sp, &a.steps, list, Some(i), &mut at);
        }
    }
    match (s.meta.time_limit_minutes, s.meta.estimated_minutes) {
        (None, _) => at(None, "the scenario has no time limit".into(), "add e.g. time_limit_minutes = 30 at the top level (the clock of a timed incident)"),
        (Some(limit), Some(est)) if est > limit => at(
            sp.value("time_limit_minutes"),
            format!("the time limit ({limit} min) is shorter than the estimated time ({est} min)"),
            "give a timed incident at least the time a learner usually needs",
        ),
        _ => {}
    }
    for (i, name) in s.fault_names.iter().enumerate() {
        if !s.red_herrings.contains(&i) && !s.guards.iter().any(|g| g.contains(&i)) {
            at(
                sp.item("faults", i),
                format!("fault `{name}` is guarded by no check"),
                &format!("add a check that fails while this fault is in place, and name it in its guards: guards = [\"{name}\"] (or leave guards out: a check guards every fault)"),
            );
        }
    }
    if !s.checks.is_empty() && !s.checks.iter().any(needs_traffic) {
        at(
            sp.item("checks", 0),
            "every check of the scenario passes without traffic: they only bound events (drops, resets, retransmissions, OOM kills), so silencing the drill would pass them".into(),
            "add a check with a positive control: an http-slo check, a tcp-state-dwell check (min_connections), or retransmits with max_ratio",
        );
    }
    out
}

/// A step whose command is blank.
fn blank_steps(sp: &Spans, steps: &[Step], list: &str, item: Option<usize>, at: &mut impl FnMut(Option<Range<usize>>, String, &str)) {
    for (j, st) in steps.iter().enumerate() {
        if st.run.trim().is_empty() {
            let span = match item {
                Some(i) => sp.item_key(list, i, "steps"),
                None => sp.sub_key(list, "steps"),
            };
            at(span, format!("step {} of {list} on host `{}` runs nothing", j + 1, st.host), "give the step a command, or remove it");
        }
    }
}
