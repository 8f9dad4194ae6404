//! The HTML postmortem: one self-contained file (inline CSS, inline SVG drawn here, no
//! script, no external URL) that works offline.
//!
//! `timeline.rs` draws the timeline chart (event markers per lane), `plot.rs` the plots
//! over the evaluation windows; this module holds the page and its sections.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::*;
use crate::record::{DrillRecord, Event, EventKind, Exit, Window};

mod axis;
mod plot;
mod timeline;

use plot::plots;
use timeline::timeline_chart;

/// At most this many event markers in the timeline chart; the rest are counted in a note
/// ("N more commands not drawn"). Non-command events are drawn first, then the commands
/// credited in the resolution, then the learner's other commands, then service commands;
/// a class that does not fit whole is sampled evenly (every k-th of its events).
pub const MAX_MARKERS: usize = 2000;

/// Text for HTML (element content and attribute values).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

const CSS: &str = r#"
:root{--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--red:#c62828;--green:#2e7d32;--blue:#1565c0}
*{box-sizing:border-box}
body{margin:0;background:#eef1f4;color:var(--ink);font:14px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1260px;margin:0 auto;padding:28px 32px 48px;background:#fff;min-height:100vh}
header{border-bottom:3px solid var(--ink);padding-bottom:14px;margin-bottom:8px}
header .kicker{text-transform:uppercase;letter-spacing:.08em;font-size:12px;color:var(--muted);font-weight:600}
h1{font-size:26px;margin:4px 0 8px;line-height:1.25}
h2{font-size:19px;margin:34px 0 10px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:20px 0 6px}
.badges span{display:inline-block;font-size:12px;font-weight:600;padding:2px 10px;border-radius:12px;margin-right:6px;background:var(--bg);border:1px solid var(--line)}
.badges .resolved{background:#e6f4ea;border-color:#a5d6a7;color:#1b5e20}
.badges .bad{background:#fdecea;border-color:#f5b7b1;color:#8e1b1b}
.badges .running{background:#fff8e1;border-color:#ffe082;color:#7a5b00}
table{border-collapse:collapse;width:100%;margin:8px 0 4px;font-size:13px}
th,td{border:1px solid var(--line);padding:5px 9px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.kv th{width:120px}table.kv td{width:38%}
code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f3f4f6;padding:1px 5px;border-radius:4px;white-space:pre-wrap;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0}
.card{flex:1 1 150px;border:1px solid var(--line);border-radius:8px;padding:10px 14px;background:#fff}
.card .v{font-size:24px;font-weight:700;font-variant-numeric:tabular-nums}
.card .k{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.score{font-size:18px;font-weight:700;margin:14px 0 4px}
.note{color:var(--muted);font-size:13px}
.warn{background:#fff8e1;border:1px solid #ffe082;padding:6px 10px;border-radius:6px;font-size:13px}
.chart{border:1px solid var(--line);border-radius:8px;padding:8px 8px 2px;margin:10px 0;background:#fff}
.chart svg{display:block;width:100%;height:auto}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;color:var(--muted);margin:4px 6px 8px}
.legend span{display:inline-flex;align-items:center;gap:5px}
.legend svg{width:14px;height:14px}
tr.svc td{color:var(--muted)}
tr.k-paged td,tr.k-mitigated td,tr.k-ended td{font-weight:600}
details{margin:8px 0}
summary{cursor:pointer;color:var(--blue)}
.fill td{height:30px}
.lessons{display:grid;grid-template-columns:repeat(3,1fr);gap:12px}
.lessons div{border:1px dashed #afb8c1;border-radius:8px;padding:8px 12px;min-height:110px}
.lessons h3{margin:0 0 4px;font-size:14px}
footer{margin-top:40px;color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding-top:8px}
svg text{font-family:-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
@media print{body{background:#fff}main{padding:0}}
"#;

fn card(o: &mut String, k: &str, v: &str) {
    write!(o, r#"<div class="card"><div class="v">{}</div><div class="k">{}</div></div>"#, esc(v), esc(k)).ok();
}

fn code(s: &str) -> String {
    format!("<code>{}</code>", esc(s))
}

/// Prose from a scenario (root cause, fault notes): escaped, with its `backtick spans` as code.
pub fn prose(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return esc(s);
    }
    parts.iter().enumerate().map(|(i, p)| if i % 2 == 1 && !p.is_empty() { code(p) } else { esc(p) }).collect()
}

pub fn render(rec: &DrillRecord) -> String {
    let f = &rec.figures;
    let mut o = String::with_capacity(64 * 1024 + rec.events.len() * 600);
    write!(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Postmortem: {}</title><style>{CSS}</style></head><body><main>\n", esc(&rec.title)).ok();
    let oc = rec.outcome.as_str();
    let oc_class = match rec.outcome {
        crate::record::Outcome::Resolved => "resolved",
        crate::record::Outcome::Running => "running",
        _ => "bad",
    };
    write!(
        o,
        r#"<header><div class="kicker">Blameless postmortem · {}</div><h1>{}</h1><div class="badges"><span class="{oc_class}">{}</span><span>{}</span><span>{}</span><span>{}</span></div></header>"#,
        esc(mode_text(rec.mode)),
        esc(&rec.title),
        esc(oc),
        esc(&rec.severity),
        esc(&scenario_ref(rec)),
        esc(&human_duration(f.duration_ms))
    )
    .ok();
    section_summary(rec, &mut o);
    section_impact(rec, &mut o);
    section_detection(rec, &mut o);
    section_timeline(rec, &mut o);
    section_root_cause(rec, &mut o);
    section_resolution(rec, &mut o);
    section_figures(rec, &mut o);
    section_action_items(&mut o);
    section_lessons(&mut o);
    write!(
        o,
        r#"<footer>Generated by <code>drill report</code> from record <code>{}</code> (schema {}). Self-contained: no script, no external resource.</footer></main></body></html>"#,
        esc(&rec.id),
        crate::record::SCHEMA_VERSION
    )
    .ok();
    o.push('\n');
    o
}

fn sec(o: &mut String, id: &str) {
    write!(o, r#"<section id="{id}"><h2>{}</h2>"#, esc(heading(id))).ok();
}

/// The summary: the record's key facts two pairs a row, and the score.
fn section_summary(rec: &DrillRecord, o: &mut String) {
    let f = &rec.figures;
    let oc = rec.outcome.as_str();
    sec(o, "summary");
    let mut rows: Vec<(&str, String)> = vec![
        ("Title", esc(&rec.title)),
        ("Scenario", code(&scenario_ref(rec))),
        ("Mode", mode_text(rec.mode).to_string()),
        ("Severity", esc(&rec.severity)),
        ("Outcome", format!("<strong>{}</strong>", esc(oc))),
        ("Duration", esc(&human_duration(f.duration_ms))),
        ("Start", esc(&utc(rec.started_unix_ms))),
        ("End", esc(&rec.ended_unix_ms.map_or_else(|| "still running".to_string(), utc))),
    ];
    if let Some(l) = rec.time_limit_ms {
        rows.push(("Time limit", esc(&human_duration(l))));
    }
    rows.push(("Hosts", rec.hosts.iter().map(|h| code(h)).collect::<Vec<_>>().join(" ")));
    rows.push(("Record", code(&rec.id)));
    // Two pairs a row.
    o.push_str(r#"<table class="kv">"#);
    for pair in rows.chunks(2) {
        o.push_str("<tr>");
        for (k, v) in pair {
            write!(o, "<th>{}</th><td>{v}</td>", esc(k)).ok();
        }
        if pair.len() == 1 {
            o.push_str("<th></th><td></td>");
        }
        o.push_str("</tr>");
    }
    o.push_str("</table>");
    if let Some(s) = &rec.score {
        write!(o, r#"<p class="score">Score: {} / {}</p><table><tr><th>Part</th><th class="num">Points</th><th class="num">Max</th><th>Why</th></tr>"#, s.total, s.max).ok();
        for p in &s.parts {
            write!(o, r#"<tr><td>{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td></tr>"#, esc(&p.name), p.points, p.max, esc(&p.why)).ok();
        }
        write!(o, r#"<tr><th>total</th><th class="num">{}</th><th class="num">{}</th><th></th></tr></table>"#, s.total, s.max).ok();
    }
    o.push_str("</section>\n");
}

/// The impact as the continuous evaluation measured it.
fn section_impact(rec: &DrillRecord, o: &mut String) {
    let f = &rec.figures;
    sec(o, "impact");
    o.push_str(r#"<p class="note">Measured by the continuous evaluation while the service level was failing.</p><div class="cards">"#);
    card(o, "requests", &f.requests.to_string());
    card(o, "failed requests", &f.failed_requests.to_string());
    card(o, "slow requests", &f.slow_requests.to_string());
    card(o, "error ratio", &if f.requests == 0 { "no requests measured".to_string() } else { format!("{:.1}%", 100.0 * f.failed_requests as f64 / f.requests as f64) });
    card(o, &format!("impact ({} ms)", f.impact_ms), &human_duration(f.impact_ms));
    o.push_str("</div></section>\n");
}

/// How the incident was detected: the page and its acknowledgement.
fn section_detection(rec: &DrillRecord, o: &mut String) {
    let f = &rec.figures;
    sec(o, "detection");
    o.push_str("<ul>");
    match rec.events.iter().find_map(|e| if let EventKind::Paged { severity, alert } = &e.kind { Some((e.t_ms, severity, alert)) } else { None }) {
        Some((t, sev, alert)) => write!(o, "<li>Paged at {} ({}): <strong>{}</strong></li>", tclock(t), esc(sev), esc(alert)).ok(),
        None => write!(o, "<li>No page (a {}); the alert: {}</li>", mode_text(rec.mode), esc(if rec.alert.is_empty() { "none" } else { &rec.alert })).ok(),
    };
    match f.mtta_ms {
        Some(t) => write!(o, "<li>Acknowledged at {} (MTTA {})</li>", tclock(t), clock(t)).ok(),
        None => write!(o, "<li>Never acknowledged</li>").ok(),
    };
    o.push_str("</ul></section>\n");
}

/// The timeline: the chart, the plots and every event (service commands folded away).
fn section_timeline(rec: &DrillRecord, o: &mut String) {
    sec(o, "timeline");
    o.push_str(r#"<div class="chart">"#);
    timeline_chart(rec, o);
    o.push_str("</div>");
    plots(rec, o);
    o.push_str(r#"<h3>Every event</h3><p class="note">Times are m:ss.s since the start (the page).</p><table><tr><th class="num">Time</th><th>Host</th><th>Event</th><th>Detail</th></tr>"#);
    let mut services = String::new();
    let mut n_services = 0usize;
    for e in &rec.events {
        let kind = kind_word(e);
        let class = format!("k-{}", kind.replace(' ', "-"));
        let (host, detail) = match &e.kind {
            EventKind::Command(c) => (esc(&c.host), format!("{} <span class=\"note\">cwd {} · uid {} · exit {}</span>", code(&c.line()), esc(&c.cwd), c.uid, esc(&exit_text(&c.exit)))),
            _ => (event_host(e).map(esc).unwrap_or_default(), prose(&event_text(e))),
        };
        let tr = format!(r#"<tr class="{class}"><td class="num">{}</td><td>{host}</td><td>{}</td><td>{detail}</td></tr>"#, tclock(e.t_ms), esc(kind));
        if matches!(&e.kind, EventKind::Command(c) if c.service) {
            n_services += 1;
            services.push_str(&tr.replace(&format!(r#"class="{class}""#), r#"class="svc""#));
        } else {
            o.push_str(&tr);
        }
    }
    o.push_str("</table>");
    if n_services > 0 {
        write!(o, r#"<details><summary>{n_services} service command(s), started by the hosts' init, not by a person</summary><table><tr><th class="num">Time</th><th>Host</th><th>Event</th><th>Detail</th></tr>{services}</table></details>"#).ok();
    }
    o.push_str("</section>\n");
}

/// The root cause and the faults injected, revealed once the drill is over.
fn section_root_cause(rec: &DrillRecord, o: &mut String) {
    sec(o, "root-cause");
    match (&rec.root_cause, rec.outcome.is_over()) {
        (Some(rc), true) => {
            write!(o, "<p>{}</p><h3>Trigger: the faults injected</h3><ul>", prose(&rc.summary)).ok();
            for x in &rc.faults {
                write!(o, "<li>{}</li>", prose(x)).ok();
            }
            o.push_str("</ul><h3>Reference fix</h3><ol>");
            for x in &rc.solution_steps {
                write!(o, "<li>{}</li>", prose(x)).ok();
            }
            o.push_str("</ol>");
        }
        (None, true) => o.push_str(r#"<p class="note">No root cause was recorded.</p>"#),
        (_, false) => o.push_str(r#"<p class="note">Revealed when the drill is over.</p>"#),
    }
    o.push_str("</section>\n");
}

/// The commands credited with a change of state.
fn section_resolution(rec: &DrillRecord, o: &mut String) {
    sec(o, "resolution");
    o.push_str(r#"<p class="note">The learner's commands credited with a change: for each check that flipped to passing and for the recovery (mitigated), the last commands before it that are not read-only.</p>"#);
    let steps = resolution(rec);
    if steps.is_empty() {
        o.push_str(r#"<p class="note">No command was followed by a check flipping to passing.</p>"#);
    } else {
        o.push_str(r#"<table><tr><th class="num">Time</th><th>Host</th><th>Command</th><th>Followed by</th></tr>"#);
        for s in &steps {
            let ro = if s.read_only { r#" <span class="note">(read-only; nothing else ran)</span>"# } else { "" };
            write!(o, r#"<tr><td class="num">{}</td><td>{}</td><td>{}{ro}</td><td>{}</td></tr>"#, tclock(s.t_ms), esc(&s.host), code(&s.line), esc(&s.flips.join(", "))).ok();
        }
        o.push_str("</table>");
    }
    o.push_str("</section>\n");
}

/// The figures: MTTA, MTTM, MTTR, hints, submits.
fn section_figures(rec: &DrillRecord, o: &mut String) {
    let f = &rec.figures;
    sec(o, "figures");
    o.push_str(r#"<div class="cards">"#);
    card(o, "MTTA · acknowledged", &figure(f.mtta_ms));
    card(o, "MTTM · mitigated", &figure(f.mttm_ms));
    card(o, "MTTR · resolved", &figure(f.mttr_ms));
    card(o, "hints", &f.hints.to_string());
    card(o, &format!("submits ({} failed)", f.failed_submits), &f.submits.to_string());
    o.push_str(r#"</div><p class="note">Times since the page. MTTM: the service level recovered as the probes and synthetic clients saw it; MTTR: the passing submit.</p></section>"#);
}

/// The action items, a form to fill in.
fn section_action_items(o: &mut String) {
    sec(o, "action-items");
    o.push_str(r#"<p class="note">To fill in. Type: prevent, detect, mitigate, or process.</p><table class="fill"><tr><th>Action item</th><th style="width:14%">Type</th><th style="width:14%">Owner</th><th style="width:18%">Tracking</th></tr>"#);
    for _ in 0..3 {
        o.push_str("<tr><td></td><td></td><td></td><td></td></tr>");
    }
    o.push_str("</table></section>\n");
}

/// The lessons, a form to fill in.
fn section_lessons(o: &mut String) {
    sec(o, "lessons");
    o.push_str(r#"<p class="note">To fill in, blamelessly: the system and the process, not the person.</p><div class="lessons"><div><h3>What went well</h3></div><div><h3>What went wrong</h3></div><div><h3>Where we got lucky</h3></div></div></section>"#);
}
