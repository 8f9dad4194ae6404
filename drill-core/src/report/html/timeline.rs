//! The timeline chart of the HTML postmortem: one lane per host and kind, a marker per
//! event (at most MAX_MARKERS), the impact band, the legend and the common time axis.

use super::axis::{W, X0, scale};
use super::*;

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

fn lane_name(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    if c.len() > 16 { format!("{}…", c[..15].iter().collect::<String>()) } else { s.to_string() }
}

/// The timeline chart, the legend and the note of what was not drawn.
pub(super) fn timeline_chart(rec: &DrillRecord, o: &mut String) {
    // Long: one SVG drawn top to bottom (lanes, impact band, axis, markers, legend, the note of what was not drawn), every part placed by the same lane layout.
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
