//! The common time axis of the HTML charts (the timeline chart and the plots): the
//! scale from milliseconds to x, grid lines and labels, the impact band.

use super::*;

/// The common time axis of the charts.
pub(super) struct XScale {
    t_max: f64,
    x0: f64,
    x1: f64,
}

impl XScale {
    pub(super) fn x(&self, t: u64) -> f64 {
        self.x0 + (t as f64 / self.t_max).min(1.0) * (self.x1 - self.x0)
    }
    fn step(&self) -> u64 {
        const STEPS: [u64; 16] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14_400, 28_800];
        let s = STEPS.iter().copied().find(|s| self.t_max / (*s as f64 * 1000.0) <= 12.0).unwrap_or(86_400);
        s * 1000
    }
    /// Vertical grid lines and m:ss labels at the bottom `y`.
    pub(super) fn axis(&self, o: &mut String, top: f64, y: f64, label: bool) {
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
    pub(super) fn impact(&self, o: &mut String, windows: &[Window], top: f64, bottom: f64) {
        for w in windows.iter().filter(|w| !w.passed) {
            let (a, b) = (self.x(w.start_ms), self.x(w.end_ms));
            write!(o, r##"<rect x="{a:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="#fdecea"/>"##, (b - a).max(0.5), bottom - top).ok();
        }
    }
}

pub(super) const W: f64 = 1180.0;
pub(super) const X0: f64 = 132.0;
pub(super) const X1: f64 = W - 24.0;

pub(super) fn scale(rec: &DrillRecord) -> XScale {
    let last_ev = rec.events.iter().map(|e| e.t_ms).max().unwrap_or(0);
    let last_w = rec.windows.iter().map(|w| w.end_ms).max().unwrap_or(0);
    let t_max = rec.figures.duration_ms.max(last_ev).max(last_w).max(1000) as f64;
    XScale { t_max, x0: X0, x1: X1 }
}
