//! The plots of the HTML postmortem over the evaluation windows: latency, requests and
//! the probe counters.

use super::axis::{W, X0, X1, scale};
use super::*;

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
    // Long: one SVG drawn top to bottom (legend, grid, axes, bars or lines, labels), every part placed by the same scale and figures.
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

pub(super) fn plots(rec: &DrillRecord, o: &mut String) {
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
