//! Drawing the dashboard: header, map, probe counters as sparklines, the service level,
//! the incident's clock and events, and the keys.

use drill_core::api::{DrillInfo, TimelineInfo};
use drill_core::incident::clock;
use drill_core::record::Mode;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Sparkline, SparklineBar, Wrap};

use super::map;
use super::model::{self, DrillView, Kind, Model};

/// Columns of a counter row's label (after the host's name) and of its figures.
const LABEL: usize = 20;
const FIGURES: usize = 18;

/// Zero is a dot (quiet), no update is blank.
const BARS: symbols::bar::Set = symbols::bar::Set { empty: "·", ..symbols::bar::NINE_LEVELS };

fn dim() -> Style {
    Style::default().fg(Color::DarkGray)
}

fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

pub fn draw(f: &mut Frame, m: &Model) {
    let area = f.area();
    let [header, body, footer] = Layout::vertical([Constraint::Length(1), Constraint::Min(0), Constraint::Length(1)]).areas(area);
    f.render_widget(Paragraph::new(header_line(m)), header);
    f.render_widget(Paragraph::new(footer_line(m)), footer);
    let Some(d) = m.shown() else {
        let why = m.error.clone().unwrap_or_else(|| "no drills are running; start one with `sudo drill start SCENARIO` (this view picks it up)".into());
        f.render_widget(Paragraph::new(why).wrap(Wrap { trim: false }).block(Block::bordered().title(" drill watch ")), body);
        return;
    };
    let map_lines = map::render(&d.info.hosts, &d.info.services, body.width.saturating_sub(2) as usize);
    let map_h = (map_lines.len() as u16 + 2).min(body.height / 2);
    let level_h = service_level_height(d) as u16 + 2;
    let clock = clock_lines(m, d);
    let counter_rows = d.shown_series().len().max(1) as u16 + 2;
    let middle_h = counter_rows.max(level_h + clock.len() as u16 + 2).max(8);
    let [map_a, middle, events_a] = Layout::vertical([Constraint::Length(map_h), Constraint::Max(middle_h), Constraint::Min(3)]).areas(body);
    f.render_widget(Paragraph::new(map_lines).block(Block::bordered().title(" map ")), map_a);
    let [counters_a, right] = Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(middle);
    let level_h = level_h.min(right.height.saturating_sub(4).max(3));
    let [level_a, clock_a] = Layout::vertical([Constraint::Length(level_h), Constraint::Min(3)]).areas(right);
    draw_counters(f, m, d, counters_a);
    draw_service_level(f, m, d, level_a);
    f.render_widget(Paragraph::new(clock).wrap(Wrap { trim: false }).block(Block::bordered().title(clock_title(&d.info))), clock_a);
    let [events_a, procs_a] = Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(events_a);
    let tail = |mut v: Vec<Line<'static>>, rows: u16| {
        let rows = rows.saturating_sub(2) as usize;
        if v.len() > rows {
            v.drain(..v.len() - rows);
        }
        v
    };
    f.render_widget(Paragraph::new(tail(events(d), events_a.height)).block(Block::bordered().title(" events (newest last) ")), events_a);
    f.render_widget(Paragraph::new(processes(d)).block(Block::bordered().title(" processes started (newest first) ")), procs_a);
}

fn header_line(m: &Model) -> Line<'static> {
    let mut spans = vec![Span::styled(" drill watch ", Style::default().fg(Color::Black).bg(Color::Cyan))];
    if let Some(d) = m.shown() {
        let i = &d.info;
        let name = if i.scenario.is_empty() { "incident (its scenario is named once it is over)".to_string() } else { format!("{}: {}", i.scenario, i.title) };
        spans.push(Span::styled(format!(" drill {} ", i.id), bold()));
        spans.push(Span::raw(format!(" {name} ({}) ", i.severity)));
        let e = running_secs(m, d) as u64;
        spans.push(Span::styled(format!(" running {}m{:02}s ", e / 60, e % 60), dim()));
        spans.push(Span::raw(format!(" [{}/{}]", m.current + 1, m.drills.len())));
    }
    if m.paused {
        spans.push(Span::styled(" PAUSED ", Style::default().fg(Color::Black).bg(Color::Yellow).add_modifier(Modifier::BOLD)));
    }
    Line::from(spans)
}

fn footer_line(m: &Model) -> Line<'static> {
    let mut spans = vec![
        Span::styled(" Tab/→", bold()),
        Span::raw(" next drill  "),
        Span::styled("←", bold()),
        Span::raw(" previous  "),
        Span::styled("p/space", bold()),
        Span::raw(if m.paused { " resume  " } else { " pause  " }),
        Span::styled("q", bold()),
        Span::raw(" quit  "),
    ];
    let err = m.error.clone().or_else(|| m.shown().and_then(|d| d.error.clone()));
    match err {
        Some(e) => spans.push(Span::styled(format!(" {e}"), Style::default().fg(Color::Red))),
        None => {
            if let Some(at) = m.shown().and_then(|d| d.counters_at) {
                spans.push(Span::styled(format!(" updated {:.0} s ago", (m.now - at).max(0.0)), dim()));
            }
        }
    }
    Line::from(spans)
}

/// Seconds the drill has run, on the dashboard's clock since its last status.
fn running_secs(m: &Model, d: &DrillView) -> f64 {
    d.info.elapsed_secs + (m.now - d.info_at).max(0.0)
}

/// Levels 0..=8 of `v` against the largest: any non-zero value shows at least one eighth.
fn levels(v: &[Option<f64>]) -> Vec<SparklineBar> {
    let max = v.iter().flatten().copied().fold(0.0, f64::max);
    v.iter().map(|x| SparklineBar::from(x.map(|x| if x <= 0.0 || max <= 0.0 { 0 } else { ((x / max * 8.0).round() as u64).clamp(1, 8) }))).collect()
}

fn figure(v: f64, unit: &str) -> String {
    let s = if v >= 100.0 || v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.1}") };
    if unit.is_empty() { s } else { format!("{s} {unit}") }
}

fn draw_counters(f: &mut Frame, m: &Model, d: &DrillView, area: Rect) {
    let inner_w = area.width.saturating_sub(2) as usize;
    let host_w = d.info.hosts.iter().map(|h| h.name.chars().count()).max().unwrap_or(4).min(12);
    let label_w = (host_w + 1 + LABEL).min(inner_w / 2);
    let spark_w = inner_w.saturating_sub(label_w + FIGURES + 2).max(1);
    let bucket = model::bucket_for(m.now - d.since, spark_w);
    let title = format!(" probe counters, last {} (a bar: {} s) ", span_words(bucket * spark_w as f64), bucket);
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let shown = d.shown_series();
    if shown.is_empty() {
        let msg = if d.counters.is_none() { "waiting for the first counters ..." } else { "no probe counter has moved since the drill started" };
        f.render_widget(Paragraph::new(Span::styled(msg, dim())), inner);
        return;
    }
    let rows = inner.height as usize;
    let fit = if shown.len() > rows { rows.saturating_sub(1) } else { shown.len() };
    for (i, s) in shown.iter().take(fit).enumerate() {
        let y = inner.y + i as u16;
        let label = format!("{:<host_w$} {}", cut(&s.host, host_w), s.label);
        f.render_widget(Paragraph::new(Span::raw(cut(&label, label_w))), Rect::new(inner.x, y, label_w as u16, 1));
        let bars = s.bars(m.now, spark_w, bucket);
        let color = if s.label.starts_with("drops") || s.label.starts_with("RST") || s.label == "OOM kills" || s.label == "ENOSPC" { Color::Red } else { Color::Green };
        let spark = Sparkline::default().data(levels(&bars)).max(8).bar_set(BARS).style(Style::default().fg(color));
        f.render_widget(spark, Rect::new(inner.x + label_w as u16 + 1, y, spark_w as u16, 1));
        let figures = match s.kind {
            Kind::Counter => format!("+{} total {}", figure(bars.last().copied().flatten().unwrap_or(0.0), ""), figure(s.total, "")),
            Kind::Gauge => format!("now {}", figure(s.last, s.unit)),
        };
        let fx = inner.x + (label_w + 2 + spark_w) as u16;
        f.render_widget(Paragraph::new(Span::styled(cut(&figures, FIGURES), dim())), Rect::new(fx, y, inner.right().saturating_sub(fx), 1));
    }
    if fit < shown.len() {
        let y = inner.y + fit as u16;
        f.render_widget(Paragraph::new(Span::styled(format!("+{} more (a taller terminal shows them)", shown.len() - fit), dim())), Rect::new(inner.x, y, inner.width, 1));
    }
}

fn span_words(secs: f64) -> String {
    if secs < 120.0 { format!("{secs:.0} s") } else { format!("{:.0} min", secs / 60.0) }
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n.saturating_sub(1)).collect::<String>()) }
}

fn service_level_height(d: &DrillView) -> usize {
    let evaluation = d.info.timeline.as_ref().map_or(0, |t| if t.last_window.is_some() { 2 } else { 1 });
    (d.requests.len() * 3).max(1) + evaluation
}

fn draw_service_level(f: &mut Frame, m: &Model, d: &DrillView, area: Rect) {
    let block = Block::bordered().title(" service level ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let mut y = inner.y;
    let bottom = inner.bottom();
    let line = |f: &mut Frame, l: Line<'static>, y: &mut u16| {
        if *y < bottom {
            f.render_widget(Paragraph::new(l), Rect::new(inner.x, *y, inner.width, 1));
            *y += 1;
        }
    };
    if d.requests.is_empty() {
        let msg = if d.counters.is_none() { "waiting for the first sample ..." } else { "this drill has no service-level check" };
        line(f, Line::styled(msg, dim()), &mut y);
    }
    let spark_w = (inner.width as usize).saturating_sub(2).max(1);
    let bucket = model::bucket_for(m.now - d.since, spark_w);
    let since = m.now - bucket * spark_w as f64;
    for r in &d.requests {
        let (ok, all) = r.ratio(since);
        let pct = if all == 0 { 0.0 } else { ok as f64 * 100.0 / all as f64 };
        let st = Style::default().fg(if ok == all { Color::Green } else { Color::Red }).add_modifier(Modifier::BOLD);
        line(
            f,
            Line::from(vec![
                Span::raw(format!("{} → {}  ", r.from, r.target)),
                Span::styled(format!("{pct:.0}% ok"), st),
                Span::styled(format!(" ({ok}/{all}, last {})", span_words(bucket * spark_w as f64)), dim()),
            ]),
            &mut y,
        );
        let last = r.samples.back().map(|(_, s)| s);
        let now = match last {
            Some(s) if s.ok => format!("latency now {:.1} ms", s.latency_ms),
            Some(s) => format!("FAILED after {:.0} ms: {}", s.latency_ms, s.error.as_deref().unwrap_or("?")),
            None => String::new(),
        };
        let pcts = match (r.percentile(since, 50.0), r.percentile(since, 95.0)) {
            (Some(a), Some(b)) => format!("  p50 {a:.1} p95 {b:.1} ms"),
            _ => String::new(),
        };
        line(f, Line::from(vec![Span::raw(now), Span::styled(pcts, dim())]), &mut y);
        if y < bottom {
            // Latency per bar (the slowest), a failed request's bar in red.
            let pts: Vec<(f64, f64)> = r.samples.iter().map(|(t, s)| (*t, s.latency_ms.max(0.001))).collect();
            let bars = model::bars(pts.into_iter(), Kind::Gauge, m.now, spark_w, bucket);
            let failed = model::bars(r.samples.iter().map(|(t, s)| (*t, f64::from(u8::from(!s.ok)))), Kind::Gauge, m.now, spark_w, bucket);
            let data: Vec<SparklineBar> = levels(&bars).into_iter().zip(&failed).map(|(b, x)| if x.is_some_and(|x| x > 0.0) { b.style(Style::default().fg(Color::Red)) } else { b }).collect();
            let spark = Sparkline::default().data(data).max(8).bar_set(BARS).style(Style::default().fg(Color::Green));
            f.render_widget(spark, Rect::new(inner.x, y, spark_w as u16, 1));
            y += 1;
        }
    }
    if let Some(t) = &d.info.timeline {
        for l in evaluation_lines(t) {
            line(f, l, &mut y);
        }
    }
}

/// The daemon's continuous evaluation: its last window's verdict and figures.
fn evaluation_lines(t: &drill_core::api::TimelineInfo) -> Vec<Line<'static>> {
    let Some(w) = &t.last_window else {
        return vec![Line::styled("drilld: no window of its evaluation finished yet", dim())];
    };
    let (word, st) = if w.passed { ("passing", Color::Green) } else { ("FAILING", Color::Red) };
    let verdict =
        Line::from(vec![Span::raw("drilld: last window "), Span::styled(word, Style::default().fg(st).add_modifier(Modifier::BOLD)), Span::styled(format!(" ({} so far)", t.windows), dim())]);
    let ratio = if w.requests == 0 { "no requests".to_string() } else { format!("{:.0}% ok of {}", (w.requests - w.failed_requests.min(w.requests)) as f64 * 100.0 / w.requests as f64, w.requests) };
    let slow = if w.slow_requests > 0 { format!(", {} slow", w.slow_requests) } else { String::new() };
    let p = match (w.latency_p50_ms, w.latency_p95_ms) {
        (Some(a), Some(b)) => format!(" · p50 {a:.1} p95 {b:.1} ms"),
        _ => String::new(),
    };
    vec![verdict, Line::styled(format!("  {ratio} in {:.0} s{slow}{p}", w.secs), dim())]
}

fn clock_title(i: &DrillInfo) -> &'static str {
    match i.timeline.as_ref().map(|t| t.mode) {
        Some(Mode::Incident) => " incident ",
        _ => " timeline ",
    }
}

fn opt(secs: Option<f64>) -> String {
    secs.map_or("—".into(), |s| clock((s * 1000.0) as u64))
}

fn clock_lines(m: &Model, d: &DrillView) -> Vec<Line<'static>> {
    let Some(t) = &d.info.timeline else {
        return vec![Line::styled("no timeline (an ephemeral drill)", dim())];
    };
    let running = !t.outcome.is_over();
    let since = if running && !m.paused { (m.now - d.info_at).max(0.0) } else { 0.0 };
    let elapsed = t.elapsed_secs + since;
    let outcome_st = Style::default()
        .fg(if t.outcome.as_str() == "resolved" {
            Color::Green
        } else if running {
            Color::Yellow
        } else {
            Color::Red
        })
        .add_modifier(Modifier::BOLD);
    let mut v = Vec::new();
    match t.time_limit_secs {
        Some(limit) => {
            let left = (limit - elapsed).max(0.0);
            let left_st = Style::default().fg(if left < limit * 0.2 { Color::Red } else { Color::White }).add_modifier(Modifier::BOLD);
            v.push(Line::from(vec![
                Span::styled(t.outcome.as_str().to_uppercase(), outcome_st),
                Span::raw(format!("  clock {} of {}  ", opt(Some(elapsed.min(limit))), opt(Some(limit)))),
                Span::styled(format!("{} left", opt(Some(left))), left_st),
            ]));
        }
        None => v.push(Line::from(vec![Span::styled(t.outcome.as_str().to_uppercase(), outcome_st), Span::raw(format!("  {} since ready (no clock)", opt(Some(elapsed))))])),
    }
    v.push(Line::raw(format!("acked {}  mitigated {}  resolved {}", if t.mode == Mode::Incident { opt(t.acked_secs) } else { "—".into() }, opt(t.mitigated_secs), opt(t.resolved_secs))));
    v.push(Line::raw(format!("hints {}  submits {} ({} failed)  commands {}", t.hints, t.submits, t.failed_submits, t.commands)));
    if let Some(s) = t.score {
        v.push(Line::styled(format!("score {s}/100{}", if running { " so far" } else { "" }), bold()));
    }
    if t.mode == Mode::Incident && t.acked_secs.is_none() && running {
        v.push(Line::styled("not acknowledged: `drill ack`", Style::default().fg(Color::Yellow)));
    }
    v
}

fn events(d: &DrillView) -> Vec<Line<'static>> {
    match d.info.timeline.as_ref() {
        Some(TimelineInfo { recent, .. }) if !recent.is_empty() => recent.iter().map(|r| Line::raw(r.clone())).collect(),
        Some(_) => vec![Line::styled("nothing recorded yet", dim())],
        None => vec![Line::styled("no timeline (an ephemeral drill)", dim())],
    }
}

/// The processes the probes saw start, newest first, over the hosts.
fn processes(d: &DrillView) -> Vec<Line<'static>> {
    let mut v: Vec<(f64, String)> = Vec::new();
    for h in d.counters.iter().flat_map(|c| &c.hosts) {
        for e in &h.recent_execs {
            v.push((e.at_secs, format!("{:>6.0}s {}: {}", e.at_secs, h.host, if e.argv.is_empty() { &e.comm } else { &e.argv })));
        }
    }
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    if v.is_empty() {
        return vec![Line::styled("none seen yet", dim())];
    }
    v.into_iter().map(|(_, l)| Line::raw(l)).collect()
}
