//! `drill report`: a blameless postmortem of one `DrillRecord`, in Markdown, a single
//! self-contained HTML file, or JSON (docs/report.md). Pure: the record in, text out.
//!
//! The sections are the ones incident reviews use: summary, impact, detection, timeline,
//! root cause and trigger, resolution, figures (MTTA, MTTM, MTTR), action items and
//! lessons. What the engine measured is given in exact numbers; what only people can say
//! (action items, lessons) is left as a form to fill in.

use crate::incident::clock;
use crate::record::{Command, DrillRecord, EventKind};

mod html;
pub use html::MAX_MARKERS;
mod json;
mod md;
mod read_only;
mod text;

pub use read_only::{READ_ONLY_FORMS, READ_ONLY_PROGRAMS, is_read_only};
pub use text::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Md,
    Html,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "md" | "markdown" => Ok(Format::Md),
            "html" => Ok(Format::Html),
            "json" => Ok(Format::Json),
            _ => Err(format!("unknown report format `{s}`: md (Markdown), html (one self-contained file) or json")),
        }
    }
}

/// The postmortem of `rec` in `fmt`.
pub fn render(rec: &DrillRecord, fmt: Format) -> String {
    match fmt {
        Format::Md => md::render(rec),
        Format::Html => html::render(rec),
        Format::Json => json::render(rec),
    }
}

/// The sections of every format, in order: (id, heading).
pub const SECTIONS: [(&str, &str); 9] = [
    ("summary", "Summary"),
    ("impact", "Impact"),
    ("detection", "Detection"),
    ("timeline", "Timeline"),
    ("root-cause", "Root cause and trigger"),
    ("resolution", "Resolution"),
    ("figures", "MTTA, MTTM, MTTR"),
    ("action-items", "Action items"),
    ("lessons", "Lessons"),
];

/// The heading of a section by id.
pub(crate) fn heading(id: &str) -> &'static str {
    SECTIONS.iter().find(|(i, _)| *i == id).map_or("", |(_, h)| h)
}

/// At most this many state-changing commands are credited before one flip.
pub const RESOLUTION_PER_FLIP: usize = 3;

/// One command credited with a change of state: the command and what flipped after it.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolutionStep {
    /// Index of the command in `record.events`.
    pub event: usize,
    pub t_ms: u64,
    pub host: String,
    pub line: String,
    /// The first thing that followed it: a check's name, or `mitigated`.
    pub followed_by: String,
    /// Everything credited to it, in order (checks and `mitigated`).
    pub flips: Vec<String>,
    /// It is read-only itself (credited only because nothing else ran before the flip).
    pub read_only: bool,
}

/// The learner's commands that changed the state (docs/report.md, "Resolution"). For the
/// `Mitigated` event and each `CheckFlip` to passing (a *flip*), in timeline order: the
/// non-service commands started in its span (after the last flip at an earlier time, up
/// to the flip itself) that are not read-only, the last `RESOLUTION_PER_FLIP` of them; if
/// none qualifies, the last command of the span. Flips at the same time share one span.
pub fn resolution(rec: &DrillRecord) -> Vec<ResolutionStep> {
    let mut steps: Vec<ResolutionStep> = Vec::new();
    let mut span_start = 0usize; // first event index of the current span
    let mut span_t: Option<u64> = None; // time of the flips that opened the span
    let mut prev_span_start = 0usize;
    for (i, e) in rec.events.iter().enumerate() {
        let name = match &e.kind {
            EventKind::Mitigated => "mitigated".to_string(),
            EventKind::CheckFlip { check, passed: true, .. } => check.clone(),
            _ => continue,
        };
        // Flips at the same time as the previous flip share its span.
        let start = if span_t == Some(e.t_ms) { prev_span_start } else { span_start };
        let cmds: Vec<(usize, &Command)> = rec.events[start..i]
            .iter()
            .enumerate()
            .filter_map(|(j, ev)| match &ev.kind {
                EventKind::Command(c) if !c.service => Some((start + j, c)),
                _ => None,
            })
            .collect();
        let changing: Vec<(usize, &Command)> = cmds.iter().copied().filter(|(_, c)| !is_read_only(&c.argv)).collect();
        let chosen: Vec<(usize, &Command, bool)> = if changing.is_empty() {
            cmds.last().map(|(j, c)| (*j, *c, true)).into_iter().collect()
        } else {
            changing[changing.len().saturating_sub(RESOLUTION_PER_FLIP)..].iter().map(|(j, c)| (*j, *c, false)).collect()
        };
        for (j, c, ro) in chosen {
            if let Some(s) = steps.iter_mut().find(|s| s.event == j) {
                if !s.flips.contains(&name) {
                    s.flips.push(name.clone());
                }
            } else {
                steps.push(ResolutionStep { event: j, t_ms: rec.events[j].t_ms, host: c.host.clone(), line: c.line(), followed_by: name.clone(), flips: vec![name.clone()], read_only: ro });
            }
        }
        if span_t != Some(e.t_ms) {
            prev_span_start = span_start;
            span_t = Some(e.t_ms);
        }
        span_start = i + 1;
    }
    steps.sort_by_key(|s| s.event);
    steps
}
