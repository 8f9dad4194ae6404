//! The words and figures of a report, shared by its formats: clocks, durations, UTC
//! times, what an event says.

use crate::incident::clock;
use crate::record::{DrillRecord, Event, EventKind, Exit, Mode};

/// `m:ss.s` since the start.
pub fn tclock(ms: u64) -> String {
    let tenths = (ms + 50) / 100;
    let (m, s) = (tenths / 600, tenths % 600);
    format!("{m}:{:02}.{}", s / 10, s % 10)
}

/// A duration for people: `850 ms`, `42.0 s`, `4m 05s`, `1h 02m 03s`.
pub fn human_duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms} ms");
    }
    if ms < 60_000 {
        return format!("{:.1} s", ms as f64 / 1000.0);
    }
    let s = ms / 1000;
    if s < 3600 { format!("{}m {:02}s", s / 60, s % 60) } else { format!("{}h {:02}m {:02}s", s / 3600, s / 60 % 60, s % 60) }
}

/// Unix ms as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian calendar).
pub fn utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem / 60 % 60, rem % 60)
}

/// `—` for an absent figure, else `m:ss`.
pub fn figure(ms: Option<u64>) -> String {
    ms.map_or_else(|| "—".to_string(), clock)
}

pub fn exit_text(e: &Option<Exit>) -> String {
    match e {
        Some(Exit::Code(n)) => format!("code {n}"),
        Some(Exit::Signal(n)) => format!("signal {n}"),
        None => "running".to_string(),
    }
}

pub fn mode_text(m: Mode) -> &'static str {
    match m {
        Mode::Drill => "drill",
        Mode::Incident => "incident",
    }
}

/// The scenario as `pack/id`.
pub fn scenario_ref(rec: &DrillRecord) -> String {
    if rec.pack.is_empty() { rec.scenario.clone() } else { format!("{}/{}", rec.pack, rec.scenario) }
}

/// The error ratio of the impact, as text.
pub fn error_ratio(rec: &DrillRecord) -> String {
    let f = &rec.figures;
    if f.requests == 0 { "no requests measured".to_string() } else { format!("{:.1}% ({} / {})", 100.0 * f.failed_requests as f64 / f.requests as f64, f.failed_requests, f.requests) }
}

/// The kind of an event as a short word (the timeline's "what" column and the legend).
pub fn kind_word(e: &Event) -> &'static str {
    match &e.kind {
        EventKind::FaultInjected { .. } => "fault injected",
        EventKind::Paged { .. } => "paged",
        EventKind::Ack => "acknowledged",
        EventKind::Command(c) if c.service => "service command",
        EventKind::Command(_) => "command",
        EventKind::Svc { .. } => "svc",
        EventKind::Hint { .. } => "hint",
        EventKind::Submit { passed: true, .. } => "submit passed",
        EventKind::Submit { passed: false, .. } => "submit failed",
        EventKind::CheckFlip { passed: true, .. } => "check passing",
        EventKind::CheckFlip { passed: false, .. } => "check failing",
        EventKind::Mitigated => "mitigated",
        EventKind::Collateral { .. } => "collateral",
        EventKind::Solve { .. } => "solve",
        EventKind::TimeUp => "time up",
        EventKind::Ended { .. } => "ended",
    }
}

/// The host an event happened in, if any.
pub fn event_host(e: &Event) -> Option<&str> {
    match &e.kind {
        EventKind::Command(c) => Some(&c.host),
        EventKind::Svc { host, .. } | EventKind::Collateral { host, .. } => Some(host),
        _ => None,
    }
}

/// What an event says, as plain text (commands: their line, cwd, uid and exit).
pub fn event_text(e: &Event) -> String {
    match &e.kind {
        EventKind::FaultInjected { fault, note } => {
            if note.is_empty() {
                fault.clone()
            } else {
                format!("{fault}: {note}")
            }
        }
        EventKind::Paged { severity, alert } => format!("{severity}: {alert}"),
        EventKind::Ack => "the page was acknowledged".into(),
        EventKind::Command(c) => format!("{} (cwd {}, uid {}, {})", c.line(), c.cwd, c.uid, exit_text(&c.exit)),
        EventKind::Svc { action, service, .. } => format!("svc {action} {service}"),
        EventKind::Hint { index, total } => format!("hint {index} of {total}"),
        EventKind::Submit { passed: true, .. } => "submit: every check passed".into(),
        EventKind::Submit { passed: false, failed_checks } => format!("submit: failed {}", if failed_checks.is_empty() { "(no check named)".to_string() } else { failed_checks.join(", ") }),
        EventKind::CheckFlip { check, passed, saw } => format!("{check} now {} (saw {saw})", if *passed { "passing" } else { "failing" }),
        EventKind::Mitigated => "the service level recovered and stayed so".into(),
        EventKind::Collateral { what, .. } => what.clone(),
        EventKind::Solve { applied } => {
            if *applied {
                "drill solve: the reference fix was applied".into()
            } else {
                "drill solve: the answer was shown".into()
            }
        }
        EventKind::TimeUp => "the clock ran out".into(),
        EventKind::Ended { outcome } => format!("ended: {}", outcome.as_str()),
    }
}

/// Replace control characters (newlines in an argv) by spaces, for one-line display.
pub fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Format;

    #[test]
    fn clocks() {
        assert_eq!(tclock(0), "0:00.0");
        assert_eq!(tclock(40_000), "0:40.0");
        assert_eq!(tclock(61_240), "1:01.2");
        assert_eq!(tclock(59_960), "1:00.0");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_166_000_000), "2026-12-01 23:00:00 UTC");
        assert_eq!(human_duration(305_000), "5m 05s");
        assert_eq!(figure(None), "—");
        assert!("pdf".parse::<Format>().unwrap_err().contains("md"));
        assert_eq!("html".parse::<Format>(), Ok(Format::Html));
    }
}
