//! The HTML postmortem: one self-contained file (inline CSS, inline SVG drawn here, no
//! script, no external URL) that works offline.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::*;
use crate::record::{DrillRecord, Event, EventKind, Exit, Window};

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

/// How a marker looks: shape and colour, by kind.
#[derive(Clone, Copy)]
struct Style {
    shape: Shape,
    fill: &'static str,
    label: &'static str,
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Bar,
    Tick,
    Circle,
    Diamond,
    Square,
    Up,
    Down,
    Cross,
    Line,
}

fn style(e: &Event) -> Style {
    let s = |shape, fill, label| Style { shape, fill, label };
    match &e.kind {
        EventKind::Command(c) if c.service => s(Shape::Tick, "#9aa4ad", "service command"),
        EventKind::Command(c) => match c.exit {
            Some(Exit::Code(0)) => s(Shape::Bar, "#2e7d32", "command, exit 0"),
            Some(Exit::Code(_)) => s(Shape::Bar, "#c62828", "command, exit ≠ 0"),
            Some(Exit::Signal(_)) => s(Shape::Bar, "#ef6c00", "command, killed by a signal"),
            None => s(Shape::Bar, "#78909c", "command, running"),
        },
        EventKind::FaultInjected { .. } => s(Shape::Diamond, "#8e24aa", "fault injected"),
        EventKind::Paged { .. } => s(Shape::Diamond, "#d32f2f", "paged"),
        EventKind::Ack => s(Shape::Circle, "#1565c0", "acknowledged"),
        EventKind::Svc { .. } => s(Shape::Circle, "#546e7a", "svc action"),
        EventKind::Hint { .. } => s(Shape::Circle, "#f9a825", "hint"),
        EventKind::Submit { passed: true, .. } => s(Shape::Square, "#2e7d32", "submit passed"),
        EventKind::Submit { passed: false, .. } => s(Shape::Square, "#c62828", "submit failed"),
        EventKind::CheckFlip { passed: true, .. } => s(Shape::Up, "#43a047", "check flipped to passing"),
        EventKind::CheckFlip { passed: false, .. } => s(Shape::Down, "#e53935", "check flipped to failing"),
        EventKind::Mitigated => s(Shape::Diamond, "#00897b", "mitigated"),
        EventKind::Collateral { .. } => s(Shape::Cross, "#ff6f00", "collateral damage"),
        EventKind::Solve { .. } => s(Shape::Circle, "#5d4037", "drill solve"),
        EventKind::TimeUp => s(Shape::Square, "#6a1b9a", "time up"),
        EventKind::Ended { .. } => s(Shape::Line, "#212121", "ended"),
    }
}

/// One SVG element for a marker at (x, y); `attrs` go on the element, `title` is its tooltip.
fn shape_svg(o: &mut String, st: Style, x: f64, y: f64, attrs: &str, title: &str, ring: bool) {
    let ring = if ring { r##" stroke="#111" stroke-width="1.6""## } else { r##" stroke="#fff" stroke-width="0.8""## };
    let t = if title.is_empty() { String::new() } else { format!("<title>{}</title>", esc(title)) };
    let f = st.fill;
    match st.shape {
        Shape::Bar => write!(o, r#"<rect {attrs} x="{:.1}" y="{:.1}" width="5" height="16" rx="1" fill="{f}"{ring}>{t}</rect>"#, x - 2.5, y - 8.0),
        Shape::Tick => write!(o, r#"<rect {attrs} x="{:.1}" y="{:.1}" width="2" height="8" fill="{f}" opacity="0.6">{t}</rect>"#, x - 1.0, y - 4.0),
        Shape::Circle => write!(o, r#"<circle {attrs} cx="{x:.1}" cy="{y:.1}" r="5.5" fill="{f}"{ring}>{t}</circle>"#),
        Shape::Square => write!(o, r#"<rect {attrs} x="{:.1}" y="{:.1}" width="10" height="10" fill="{f}"{ring}>{t}</rect>"#, x - 5.0, y - 5.0),
        Shape::Diamond => write!(o, r#"<polygon {attrs} points="{x:.1},{:.1} {:.1},{y:.1} {x:.1},{:.1} {:.1},{y:.1}" fill="{f}"{ring}>{t}</polygon>"#, y - 7.0, x + 7.0, y + 7.0, x - 7.0),
        Shape::Up => write!(o, r#"<polygon {attrs} points="{x:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="{f}"{ring}>{t}</polygon>"#, y - 6.5, x + 6.5, y + 5.0, x - 6.5, y + 5.0),
        Shape::Down => write!(o, r#"<polygon {attrs} points="{x:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="{f}"{ring}>{t}</polygon>"#, y + 6.5, x + 6.5, y - 5.0, x - 6.5, y - 5.0),
        Shape::Cross => write!(
            o,
            r#"<path {attrs} d="M{:.1},{:.1}L{:.1},{:.1}M{:.1},{:.1}L{:.1},{:.1}" stroke="{f}" stroke-width="3" stroke-linecap="round" fill="none">{t}</path>"#,
            x - 5.0,
            y - 5.0,
            x + 5.0,
            y + 5.0,
            x - 5.0,
            y + 5.0,
            x + 5.0,
            y - 5.0
        ),
        Shape::Line => write!(o, r#"<rect {attrs} x="{:.1}" y="{:.1}" width="3" height="18" fill="{f}">{t}</rect>"#, x - 1.5, y - 9.0),
    }
    .ok();
}

/// The common time axis of the charts.
struct XScale {
    t_max: f64,
    x0: f64,
    x1: f64,
}

impl XScale {
    fn x(&self, t: u64) -> f64 {
        self.x0 + (t as f64 / self.t_max).min(1.0) * (self.x1 - self.x0)
    }
    fn step(&self) -> u64 {
        const STEPS: [u64; 16] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14_400, 28_800];
        let s = STEPS.iter().copied().find(|s| self.t_max / (*s as f64 * 1000.0) <= 12.0).unwrap_or(86_400);
        s * 1000
    }
    /// Vertical grid lines and m:ss labels at the bottom `y`.
    fn axis(&self, o: &mut String, top: f64, y: f64, label: bool) {
        let step = self.step();
        let mut t = 0u64;
        while (t as f64) <= self.t_max + 1.0 {
            let x = self.x(t);
            write!(o, r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{y:.1}" stroke="#e5e9ed"/><line x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{:.1}" stroke="#8c959f"/><text x="{x:.1}" y="{:.1}" font-size="11" fill="#59636e" text-anchor="middle">{}</text>"##, y + 4.0, y + 16.0, clock(t)).ok();
            t += step;
        }
        write!(o, r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#8c959f"/>"##, self.x0, self.x1).ok();
        if label {
            write!(o, r##"<text x="{:.1}" y="{:.1}" font-size="11.5" fill="#59636e" text-anchor="middle">time since the page (m:ss)</text>"##, (self.x0 + self.x1) / 2.0, y + 32.0).ok();
        }
    }
    /// The failing windows as a light red band from `top` to `bottom`.
    fn impact(&self, o: &mut String, windows: &[Window], top: f64, bottom: f64) {
        for w in windows.iter().filter(|w| !w.passed) {
            let (a, b) = (self.x(w.start_ms), self.x(w.end_ms));
            write!(o, r##"<rect x="{a:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="#fdecea"/>"##, (b - a).max(0.5), bottom - top).ok();
        }
    }
}

const W: f64 = 1180.0;
const X0: f64 = 132.0;
const X1: f64 = W - 24.0;

fn scale(rec: &DrillRecord) -> XScale {
    let last_ev = rec.events.iter().map(|e| e.t_ms).max().unwrap_or(0);
    let last_w = rec.windows.iter().map(|w| w.end_ms).max().unwrap_or(0);
    let t_max = rec.figures.duration_ms.max(last_ev).max(last_w).max(1000) as f64;
    XScale { t_max, x0: X0, x1: X1 }
}

fn lane_name(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    if c.len() > 16 { format!("{}…", c[..15].iter().collect::<String>()) } else { s.to_string() }
}

/// The timeline chart, the legend and the note of what was not drawn.
fn timeline_chart(rec: &DrillRecord, o: &mut String) {
    let xs = scale(rec);
    let steps = resolution(rec);
    let credited: BTreeSet<usize> = steps.iter().map(|s| s.event).collect();
    // Lanes: the hosts in the scenario's order, hosts seen only in commands, then the rest.
    let mut hosts: Vec<String> = rec.hosts.clone();
    for e in &rec.events {
        if let EventKind::Command(c) = &e.kind
            && !hosts.contains(&c.host)
        {
            hosts.push(c.host.clone());
        }
    }
    // Which markers to draw (bounded).
    let mut prio: Vec<(u8, usize)> = rec
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let p = match &e.kind {
                EventKind::Command(_) if credited.contains(&i) => 1,
                EventKind::Command(c) if !c.service => 2,
                EventKind::Command(_) => 3,
                _ => 0,
            };
            (p, i)
        })
        .collect();
    prio.sort();
    // Class by class; a class that does not fit whole is sampled evenly over its events
    // (every k-th), so that the chart still spans the whole drill.
    let mut drawn: BTreeSet<usize> = BTreeSet::new();
    let (mut not_drawn_cmds, mut not_drawn_other) = (0usize, 0usize);
    for class in 0..4u8 {
        let members: Vec<usize> = prio.iter().filter(|(p, _)| *p == class).map(|(_, i)| *i).collect();
        let budget = MAX_MARKERS - drawn.len();
        let n = members.len();
        if n <= budget {
            drawn.extend(members);
        } else {
            drawn.extend((0..budget).map(|j| members[j * n / budget]));
            if class == 0 { not_drawn_other += n - budget } else { not_drawn_cmds += n - budget }
        }
    }

    const LABELS_TOP: f64 = 8.0;
    const LABEL_ROW: f64 = 15.0;
    const LANE: f64 = 34.0;
    const EV_LANE: f64 = 64.0;
    const EV_ROWS: usize = 4;
    let top = LABELS_TOP + 2.0 * LABEL_ROW + 8.0;
    let ev_top = top + LANE * hosts.len() as f64;
    let bottom = ev_top + EV_LANE;
    let height = bottom + 42.0;
    write!(o, r#"<svg id="timeline" viewBox="0 0 {W} {height:.0}" role="img" aria-label="Timeline of the drill: one lane per host for commands, one lane for the other events">"#).ok();
    // Lane backgrounds and names.
    for (i, h) in hosts.iter().enumerate() {
        let y = top + LANE * i as f64;
        let fill = if i.is_multiple_of(2) { "#f6f8fa" } else { "#ffffff" };
        write!(
            o,
            r##"<rect x="0" y="{y:.1}" width="{W}" height="{LANE}" fill="{fill}"/><text x="12" y="{:.1}" font-size="12.5" font-weight="600" fill="#1f2328">{}<title>{}</title></text>"##,
            y + LANE / 2.0 + 4.0,
            esc(&lane_name(h)),
            esc(h)
        )
        .ok();
    }
    let fill = if hosts.len().is_multiple_of(2) { "#f6f8fa" } else { "#ffffff" };
    write!(o, r##"<rect x="0" y="{ev_top:.1}" width="{W}" height="{EV_LANE}" fill="{fill}"/><text x="12" y="{:.1}" font-size="12.5" font-weight="600" fill="#1f2328">events</text><text x="12" y="{:.1}" font-size="10.5" fill="#59636e">page, ack, checks,</text><text x="12" y="{:.1}" font-size="10.5" fill="#59636e">hints, submits</text>"##, ev_top + EV_LANE / 2.0 - 8.0, ev_top + EV_LANE / 2.0 + 6.0, ev_top + EV_LANE / 2.0 + 18.0).ok();
    xs.impact(o, &rec.windows, top, bottom);
    xs.axis(o, top, bottom, true);
    write!(o, r##"<line x1="{X0}" y1="{top:.1}" x2="{X0}" y2="{bottom:.1}" stroke="#8c959f"/>"##).ok();
    // Milestones: a dashed guide and a label above the lanes (two rows, no overlap).
    let mut rows: [f64; 2] = [f64::MIN, f64::MIN];
    for e in &rec.events {
        let (label, colour) = match &e.kind {
            EventKind::Paged { .. } => ("Paged".to_string(), "#d32f2f"),
            EventKind::Ack => (format!("Ack {}", clock(e.t_ms)), "#1565c0"),
            EventKind::Mitigated => (format!("Mitigated {}", clock(e.t_ms)), "#00897b"),
            EventKind::Submit { passed: true, .. } => (format!("Resolved {}", clock(e.t_ms)), "#2e7d32"),
            EventKind::TimeUp => ("Time up".to_string(), "#6a1b9a"),
            EventKind::Solve { .. } => ("Solve".to_string(), "#5d4037"),
            _ => continue,
        };
        let x = xs.x(e.t_ms);
        write!(o, r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="{colour}" stroke-width="1" stroke-dasharray="3,3" opacity="0.7"/>"##, top - 4.0).ok();
        let w = label.chars().count() as f64 * 6.6 + 6.0;
        // Anchor at the start unless it would leave the chart.
        let (lx, anchor, a, b) = if x + w > W - 4.0 { (x, "end", x - w, x) } else { (x + 3.0, "start", x, x + w) };
        if let Some(r) = (0..2).find(|r| rows[*r] < a) {
            rows[r] = b + 6.0;
            write!(
                o,
                r##"<text x="{lx:.1}" y="{:.1}" font-size="11.5" font-weight="600" fill="{colour}" text-anchor="{anchor}">{}</text>"##,
                LABELS_TOP + LABEL_ROW * (r as f64 + 1.0) - 3.0,
                esc(&label)
            )
            .ok();
        }
    }
    // Markers.
    let mut sub: [f64; EV_ROWS] = [f64::MIN; EV_ROWS];
    for (i, e) in rec.events.iter().enumerate() {
        if !drawn.contains(&i) {
            continue;
        }
        let st = style(e);
        let x = xs.x(e.t_ms);
        let (x, y, title) = match &e.kind {
            EventKind::Command(c) => {
                let lane = hosts.iter().position(|h| *h == c.host).unwrap_or(0);
                let t = format!("{} on {} ({}uid {}, cwd {}, exit {}): {}", tclock(e.t_ms), c.host, if c.service { "service, " } else { "" }, c.uid, c.cwd, exit_text(&c.exit), one_line(&c.line()));
                (x, top + LANE * lane as f64 + LANE / 2.0, t)
            }
            _ => {
                // Sub-rows so that events at the same moment do not hide each other; when
                // every row is taken there, the marker moves right of the row's last one.
                let (r, x) = match (0..EV_ROWS).find(|r| sub[*r] < x - 13.0) {
                    Some(r) => (r, x),
                    None => {
                        let r = (0..EV_ROWS).min_by(|a, b| sub[*a].total_cmp(&sub[*b])).unwrap_or(0);
                        (r, sub[r] + 13.0)
                    }
                };
                sub[r] = x;
                let host = event_host(e).map(|h| format!(" on {h}")).unwrap_or_default();
                (x, ev_top + 10.0 + 14.5 * r as f64, format!("{} {}{host}: {}", tclock(e.t_ms), kind_word(e), one_line(&event_text(e))))
            }
        };
        shape_svg(o, st, x, y, &format!(r#"data-event="{i}" class="m""#), &title, credited.contains(&i));
    }
    o.push_str("</svg>\n");
    // Legend: one entry per style used in this record, plus the impact band.
    let mut seen: BTreeMap<&'static str, Style> = BTreeMap::new();
    let mut order: Vec<&'static str> = Vec::new();
    for e in &rec.events {
        let st = style(e);
        if seen.insert(st.label, st).is_none() {
            order.push(st.label);
        }
    }
    o.push_str(r#"<div class="legend">"#);
    for l in order {
        let st = seen[l];
        let mut sw = String::new();
        shape_svg(&mut sw, st, 7.0, 7.0, "", "", false);
        write!(o, r#"<span><svg viewBox="0 0 14 14" aria-hidden="true">{sw}</svg>{}</span>"#, esc(l)).ok();
    }
    if !credited.is_empty() {
        o.push_str(r##"<span><svg viewBox="0 0 14 14" aria-hidden="true"><rect x="4.5" y="0" width="5" height="14" fill="#9e9e9e" stroke="#111" stroke-width="1.6"/></svg>outlined: credited in the resolution</span>"##);
    }
    o.push_str(r##"<span><svg viewBox="0 0 14 14" aria-hidden="true"><rect width="14" height="14" fill="#fdecea" stroke="#f5b7b1"/></svg>service level failing (impact)</span><span>dashed line: milestone</span></div>"##);
    if not_drawn_cmds > 0 || not_drawn_other > 0 {
        let mut parts = Vec::new();
        if not_drawn_cmds > 0 {
            parts.push(format!("{not_drawn_cmds} more commands not drawn"));
        }
        if not_drawn_other > 0 {
            parts.push(format!("{not_drawn_other} more events not drawn"));
        }
        write!(o, r#"<p class="warn" id="not-drawn">{} (the chart draws at most {MAX_MARKERS} markers; the timeline table below lists every event).</p>"#, parts.join(", ")).ok();
    }
}

fn nice(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let e = 10f64.powf(x.log10().floor());
    let f = x / e;
    (if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }) * e
}

fn fmt_num(v: f64, step: f64) -> String {
    if step >= 1.0 || v == 0.0 {
        format!("{v:.0}")
    } else if step >= 0.1 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// One series of a plot: name, colour, dashed, the values per window (None: a gap).
struct Series {
    name: String,
    colour: &'static str,
    dashed: bool,
    values: Vec<Option<f64>>,
}

const PALETTE: [&str; 8] = ["#6a1b9a", "#00838f", "#ef6c00", "#2e7d32", "#ad1457", "#283593", "#5d4037", "#9e9d24"];

/// A plot over the windows: lines (or bars) per series, y axis labelled `y_label`.
fn plot(rec: &DrillRecord, o: &mut String, id: &str, title: &str, y_label: &str, series: &[Series], bars: bool) {
    let xs = scale(rec);
    let (top, bottom) = (14.0, 176.0);
    let height = bottom + 42.0;
    let vmax = series.iter().flat_map(|s| s.values.iter().flatten().copied()).fold(0.0f64, f64::max);
    let step = nice(vmax / 4.0);
    let ymax = if vmax <= 0.0 { 1.0 } else { (vmax / step).ceil() * step };
    let y = |v: f64| bottom - (v / ymax) * (bottom - top);
    write!(o, r#"<h3>{}</h3><div class="chart"><div class="legend">"#, esc(title)).ok();
    for s in series {
        let dash = if s.dashed { r#" stroke-dasharray="4,3""# } else { "" };
        if bars {
            write!(o, r#"<span><svg viewBox="0 0 14 14" aria-hidden="true"><rect x="2" y="2" width="10" height="10" fill="{}"/></svg>{}</span>"#, s.colour, esc(&s.name)).ok();
        } else {
            write!(o, r#"<span><svg viewBox="0 0 14 14" aria-hidden="true"><line x1="0" y1="7" x2="14" y2="7" stroke="{}" stroke-width="2.5"{dash}/></svg>{}</span>"#, s.colour, esc(&s.name)).ok();
        }
    }
    o.push_str(r##"<span><svg viewBox="0 0 14 14" aria-hidden="true"><rect width="14" height="14" fill="#fdecea" stroke="#f5b7b1"/></svg>service level failing</span></div>"##);
    write!(o, r#"<svg id="{id}" viewBox="0 0 {W} {height:.0}" role="img" aria-label="{}">"#, esc(title)).ok();
    xs.impact(o, &rec.windows, top, bottom);
    xs.axis(o, top, bottom, true);
    // Y axis.
    let mut v = 0.0;
    while v <= ymax + step / 2.0 {
        let yy = y(v);
        write!(
            o,
            r##"<line x1="{X0}" y1="{yy:.1}" x2="{X1}" y2="{yy:.1}" stroke="#eef1f4"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#59636e" text-anchor="end">{}</text>"##,
            X0 - 6.0,
            yy + 4.0,
            fmt_num(v, step)
        )
        .ok();
        v += step;
    }
    write!(
        o,
        r##"<line x1="{X0}" y1="{top}" x2="{X0}" y2="{bottom}" stroke="#8c959f"/><text transform="translate(58 {:.1}) rotate(-90)" font-size="11.5" fill="#59636e" text-anchor="middle">{}</text>"##,
        (top + bottom) / 2.0,
        esc(y_label)
    )
    .ok();
    if rec.windows.is_empty() {
        write!(o, r##"<text x="{:.1}" y="{:.1}" font-size="13" fill="#59636e" text-anchor="middle">no windows recorded</text>"##, (X0 + X1) / 2.0, (top + bottom) / 2.0).ok();
    }
    let n = series.len().max(1) as f64;
    for (k, s) in series.iter().enumerate() {
        if bars {
            for (w, v) in rec.windows.iter().zip(&s.values) {
                let Some(v) = v else { continue };
                let (a, b) = (xs.x(w.start_ms), xs.x(w.end_ms));
                let bw = ((b - a) * 0.8 / n).max(1.0);
                let bx = a + (b - a) * 0.1 + bw * k as f64;
                write!(
                    o,
                    r#"<rect x="{bx:.1}" y="{:.1}" width="{bw:.1}" height="{:.1}" fill="{}"><title>{}–{} {}: {}</title></rect>"#,
                    y(*v),
                    bottom - y(*v),
                    s.colour,
                    clock(w.start_ms),
                    clock(w.end_ms),
                    esc(&s.name),
                    v
                )
                .ok();
            }
            continue;
        }
        let dash = if s.dashed { r#" stroke-dasharray="5,4""# } else { "" };
        let mut seg: Vec<String> = Vec::new();
        let flush = |seg: &mut Vec<String>, o: &mut String| {
            if seg.len() > 1 {
                write!(o, r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash} stroke-linejoin="round"/>"#, seg.join(" "), s.colour).ok();
            }
            seg.clear();
        };
        for (w, v) in rec.windows.iter().zip(&s.values) {
            match v {
                Some(v) => {
                    let px = xs.x((w.start_ms + w.end_ms) / 2);
                    seg.push(format!("{px:.1},{:.1}", y(*v)));
                    if rec.windows.len() <= 400 {
                        write!(
                            o,
                            r#"<circle cx="{px:.1}" cy="{:.1}" r="2.6" fill="{}"><title>{}–{} {}: {}</title></circle>"#,
                            y(*v),
                            s.colour,
                            clock(w.start_ms),
                            clock(w.end_ms),
                            esc(&s.name),
                            (v * 10.0).round() / 10.0
                        )
                        .ok();
                    }
                }
                None => flush(&mut seg, o),
            }
        }
        flush(&mut seg, o);
    }
    o.push_str("</svg></div>\n");
}

fn plots(rec: &DrillRecord, o: &mut String) {
    let ws = &rec.windows;
    let lat = [
        Series { name: "p50 latency".into(), colour: "#1565c0", dashed: false, values: ws.iter().map(|w| w.latency_p50_ms).collect() },
        Series { name: "p95 latency".into(), colour: "#d32f2f", dashed: true, values: ws.iter().map(|w| w.latency_p95_ms).collect() },
    ];
    plot(rec, o, "plot-latency", "Latency of the successful requests (p50, p95)", "latency (ms)", &lat, false);
    let req = [
        Series { name: "requests".into(), colour: "#b0bec5", dashed: false, values: ws.iter().map(|w| Some(w.requests as f64)).collect() },
        Series { name: "failed requests".into(), colour: "#c62828", dashed: false, values: ws.iter().map(|w| Some(w.failed_requests as f64)).collect() },
        Series { name: "slow requests".into(), colour: "#ef6c00", dashed: false, values: ws.iter().map(|w| Some(w.slow_requests as f64)).collect() },
    ];
    plot(rec, o, "plot-requests", "Requests per window: total, failed, slow", "requests per window", &req, true);
    let keys: BTreeSet<&String> = ws.iter().flat_map(|w| w.counters.keys()).collect();
    let counters: Vec<Series> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Series { name: (*k).clone(), colour: PALETTE[i % PALETTE.len()], dashed: false, values: ws.iter().map(|w| Some(*w.counters.get(*k).unwrap_or(&0) as f64)).collect() })
        .collect();
    if counters.is_empty() {
        o.push_str(r#"<h3>Probe counters per window</h3><p class="note">No probe counter moved.</p>"#);
    } else {
        plot(rec, o, "plot-counters", "Probe counters per window (summed over the hosts)", "count per window", &counters, false);
    }
}

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
    let sec = |o: &mut String, id: &str| {
        write!(o, r#"<section id="{id}"><h2>{}</h2>"#, esc(heading(id))).ok();
    };
    // Summary.
    sec(&mut o, "summary");
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
    // Impact.
    sec(&mut o, "impact");
    o.push_str(r#"<p class="note">Measured by the continuous evaluation while the service level was failing.</p><div class="cards">"#);
    card(&mut o, "requests", &f.requests.to_string());
    card(&mut o, "failed requests", &f.failed_requests.to_string());
    card(&mut o, "slow requests", &f.slow_requests.to_string());
    card(&mut o, "error ratio", &if f.requests == 0 { "no requests measured".to_string() } else { format!("{:.1}%", 100.0 * f.failed_requests as f64 / f.requests as f64) });
    card(&mut o, &format!("impact ({} ms)", f.impact_ms), &human_duration(f.impact_ms));
    o.push_str("</div></section>\n");
    // Detection.
    sec(&mut o, "detection");
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
    // Timeline.
    sec(&mut o, "timeline");
    o.push_str(r#"<div class="chart">"#);
    timeline_chart(rec, &mut o);
    o.push_str("</div>");
    plots(rec, &mut o);
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
    // Root cause.
    sec(&mut o, "root-cause");
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
    // Resolution.
    sec(&mut o, "resolution");
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
    // Figures.
    sec(&mut o, "figures");
    o.push_str(r#"<div class="cards">"#);
    card(&mut o, "MTTA · acknowledged", &figure(f.mtta_ms));
    card(&mut o, "MTTM · mitigated", &figure(f.mttm_ms));
    card(&mut o, "MTTR · resolved", &figure(f.mttr_ms));
    card(&mut o, "hints", &f.hints.to_string());
    card(&mut o, &format!("submits ({} failed)", f.failed_submits), &f.submits.to_string());
    o.push_str(r#"</div><p class="note">Times since the page. MTTM: the service level recovered as the probes and synthetic clients saw it; MTTR: the passing submit.</p></section>"#);
    // Action items.
    sec(&mut o, "action-items");
    o.push_str(r#"<p class="note">To fill in. Type: prevent, detect, mitigate, or process.</p><table class="fill"><tr><th>Action item</th><th style="width:14%">Type</th><th style="width:14%">Owner</th><th style="width:18%">Tracking</th></tr>"#);
    for _ in 0..3 {
        o.push_str("<tr><td></td><td></td><td></td><td></td></tr>");
    }
    o.push_str("</table></section>\n");
    // Lessons.
    sec(&mut o, "lessons");
    o.push_str(r#"<p class="note">To fill in, blamelessly: the system and the process, not the person.</p><div class="lessons"><div><h3>What went well</h3></div><div><h3>What went wrong</h3></div><div><h3>Where we got lucky</h3></div></div></section>"#);
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
