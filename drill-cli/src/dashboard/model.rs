//! What the dashboard shows, kept apart from drawing and from the daemon: the running
//! drills, and for each the history of its counters and service-level samples since the
//! dashboard started watching it. Times are seconds on the dashboard's own clock.

use std::collections::{BTreeMap, VecDeque};

use drill_core::api::{DrillCounters, DrillInfo, RequestSample};

/// How long a history is kept (the widest span a sparkline shows).
pub const KEEP_SECS: f64 = 30.0 * 60.0;
/// The spans a bar of a sparkline may cover, narrowest first.
pub const BUCKETS: [f64; 8] = [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0];

/// A probe counter (the change between two updates) or a gauge (a value now).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub host: String,
    pub label: String,
    pub kind: Kind,
    /// Display unit of the values (`ms` for RTTs; empty for counts).
    pub unit: &'static str,
    /// (time, value): for a counter its increase since the previous update.
    pub points: VecDeque<(f64, f64)>,
    /// A counter's total since the drill started (what `drill watch --json` reports).
    pub total: f64,
    /// The latest value seen (a gauge's "now").
    pub last: f64,
}

impl Series {
    pub fn new(host: &str, label: &str, kind: Kind, unit: &'static str) -> Series {
        Series { host: host.into(), label: label.into(), kind, unit, points: VecDeque::new(), total: 0.0, last: 0.0 }
    }

    /// Whether it ever showed anything (flat zeros are left off the screen).
    pub fn moved(&self) -> bool {
        self.total > 0.0 || self.last > 0.0 || self.points.iter().any(|p| p.1 > 0.0)
    }

    /// `width` bars ending at `now`, each `bucket` seconds: a counter's increases summed,
    /// a gauge's largest value; `None` where no update fell.
    pub fn bars(&self, now: f64, width: usize, bucket: f64) -> Vec<Option<f64>> {
        bars(self.points.iter().copied(), self.kind, now, width, bucket)
    }
}

/// The bars of (time, value) points: see [`Series::bars`].
pub fn bars(points: impl Iterator<Item = (f64, f64)>, kind: Kind, now: f64, width: usize, bucket: f64) -> Vec<Option<f64>> {
    let mut out = vec![None; width];
    let start = now - width as f64 * bucket;
    for (t, v) in points {
        if t <= start || t > now {
            continue;
        }
        let i = (((t - start) / bucket).ceil() as usize).saturating_sub(1).min(width.saturating_sub(1));
        out[i] = Some(match (out[i], kind) {
            (None, _) => v,
            (Some(a), Kind::Counter) => a + v,
            (Some(a), Kind::Gauge) => f64::max(a, v),
        });
    }
    out
}

/// The narrowest bar span that shows everything watched so far in `width` bars.
pub fn bucket_for(watched_secs: f64, width: usize) -> f64 {
    let w = width.max(1) as f64;
    BUCKETS.iter().copied().find(|b| b * w >= watched_secs).unwrap_or(*BUCKETS.last().unwrap())
}

/// Service-level samples of one check's target, as `drill watch` made them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Requests {
    pub from: String,
    pub target: String,
    pub samples: VecDeque<(f64, RequestSample)>,
}

impl Requests {
    /// (successful, all) samples after `since`.
    pub fn ratio(&self, since: f64) -> (usize, usize) {
        let recent = self.samples.iter().filter(|(t, _)| *t > since);
        let (mut ok, mut all) = (0, 0);
        for (_, s) in recent {
            all += 1;
            ok += usize::from(s.ok);
        }
        (ok, all)
    }

    /// Latency percentile (0..=100) of the successful samples after `since`.
    pub fn percentile(&self, since: f64, p: f64) -> Option<f64> {
        let mut v: Vec<f64> = self.samples.iter().filter(|(t, s)| *t > since && s.ok).map(|(_, s)| s.latency_ms).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
        Some(v[i.min(v.len() - 1)])
    }
}

/// One running drill as the dashboard knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct DrillView {
    pub info: DrillInfo,
    /// When `info` was fetched (the clock of an incident runs on from there).
    pub info_at: f64,
    /// When the dashboard first saw it.
    pub since: f64,
    pub counters: Option<DrillCounters>,
    pub counters_at: Option<f64>,
    pub series: Vec<Series>,
    pub requests: Vec<Requests>,
    /// Why the last update of its counters failed.
    pub error: Option<String>,
}

impl DrillView {
    pub fn new(info: DrillInfo, at: f64) -> DrillView {
        DrillView { info, info_at: at, since: at, counters: None, counters_at: None, series: Vec::new(), requests: Vec::new(), error: None }
    }

    fn series_mut(&mut self, host: &str, label: &str, kind: Kind, unit: &'static str) -> &mut Series {
        let i = match self.series.iter().position(|s| s.host == host && s.label == label) {
            Some(i) => i,
            None => {
                self.series.push(Series::new(host, label, kind, unit));
                self.series.len() - 1
            }
        };
        &mut self.series[i]
    }

    /// Takes a new reading of the counters made at `at`.
    pub fn add_counters(&mut self, c: DrillCounters, at: f64) {
        let prev = self.counters.take();
        for h in &c.hosts {
            let before = prev.as_ref().and_then(|p| p.hosts.iter().find(|x| x.host == h.host));
            let mut counter = |label: &str, now: u64, was: Option<u64>| {
                let s = self.series_mut(&h.host, label, Kind::Counter, "");
                s.total = now as f64;
                s.last = now as f64;
                if let Some(was) = was {
                    s.points.push_back((at, now.saturating_sub(was) as f64));
                }
            };
            for (reason, n) in &h.drops {
                counter(&format!("drops {reason}"), *n, before.map(|b| b.drops.get(reason).copied().unwrap_or(0)));
            }
            counter("retransmits", h.retransmits, before.map(|b| b.retransmits));
            counter("RST sent", h.resets_sent, before.map(|b| b.resets_sent));
            counter("RST received", h.resets_received, before.map(|b| b.resets_received));
            counter("OOM kills", h.oom_kills, before.map(|b| b.oom_kills));
            counter("ENOSPC", h.enospc, before.map(|b| b.enospc));
            counter("processes", h.execs, before.map(|b| b.execs));
            let s = self.series_mut(&h.host, "CLOSE_WAIT", Kind::Gauge, "");
            s.last = h.close_wait as f64;
            s.points.push_back((at, h.close_wait as f64));
            for (port, (n, mean, _max)) in &h.srtt_ms {
                // The mean RTT of the samples taken since the previous update.
                let (n0, mean0) = before.and_then(|b| b.srtt_ms.get(port)).map_or((0, 0.0), |x| (x.0, x.1));
                let s = self.series_mut(&h.host, &format!("srtt :{port}"), Kind::Gauge, "ms");
                if *n > n0 {
                    let v = (*n as f64 * mean - n0 as f64 * mean0) / (n - n0) as f64;
                    s.last = v;
                    s.points.push_back((at, v));
                }
            }
        }
        for r in &c.requests {
            let i = match self.requests.iter().position(|x| x.from == r.from && x.target == r.target) {
                Some(i) => i,
                None => {
                    self.requests.push(Requests { from: r.from.clone(), target: r.target.clone(), samples: VecDeque::new() });
                    self.requests.len() - 1
                }
            };
            self.requests[i].samples.push_back((at, r.clone()));
        }
        self.forget_before(at - KEEP_SECS);
        self.counters = Some(c);
        self.counters_at = Some(at);
        self.error = None;
    }

    fn forget_before(&mut self, t: f64) {
        for s in &mut self.series {
            while s.points.front().is_some_and(|p| p.0 < t) {
                s.points.pop_front();
            }
        }
        for r in &mut self.requests {
            while r.samples.front().is_some_and(|p| p.0 < t) {
                r.samples.pop_front();
            }
        }
    }

    /// The series worth a row, host by host in the drill's order.
    pub fn shown_series(&self) -> Vec<&Series> {
        let mut v: Vec<&Series> = self.series.iter().filter(|s| s.moved()).collect();
        let rank = |h: &str| self.info.hosts.iter().position(|x| x.name == h).unwrap_or(usize::MAX);
        v.sort_by_key(|s| rank(&s.host));
        v
    }
}

/// The whole dashboard.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Model {
    pub drills: Vec<DrillView>,
    /// Index in `drills` of the one shown.
    pub current: usize,
    pub paused: bool,
    /// The dashboard's clock (it stands still while paused).
    pub now: f64,
    /// Updates taken so far (`--count`).
    pub updates: u64,
    /// Why the last update failed (the daemon is gone, ...).
    pub error: Option<String>,
    /// The drill asked for on the command line, shown first.
    pub wanted: Option<String>,
}

impl Model {
    pub fn shown(&self) -> Option<&DrillView> {
        self.drills.get(self.current)
    }

    pub fn shown_id(&self) -> Option<String> {
        self.shown().map(|d| d.info.id.clone())
    }

    /// The running drills now: keeps the history of those it knew, drops the gone ones,
    /// and keeps showing the same drill where it still runs.
    pub fn set_drills(&mut self, list: Vec<DrillInfo>, at: f64) {
        let shown = self.shown_id().or_else(|| self.wanted.clone());
        let mut old: BTreeMap<String, DrillView> = self.drills.drain(..).map(|d| (d.info.id.clone(), d)).collect();
        for info in list {
            let v = match old.remove(&info.id) {
                Some(mut v) => {
                    v.info = info;
                    v.info_at = at;
                    v
                }
                None => DrillView::new(info, at),
            };
            self.drills.push(v);
        }
        self.current = shown.and_then(|id| self.drills.iter().position(|d| d.info.id == id)).unwrap_or(0).min(self.drills.len().saturating_sub(1));
    }

    pub fn add_counters(&mut self, c: DrillCounters, at: f64) {
        if let Some(d) = self.drills.iter_mut().find(|d| d.info.id == c.id) {
            d.add_counters(c, at);
        }
    }

    pub fn counters_failed(&mut self, id: &str, why: String) {
        if let Some(d) = self.drills.iter_mut().find(|d| d.info.id == id) {
            d.error = Some(why);
        }
    }

    pub fn next(&mut self) {
        if !self.drills.is_empty() {
            self.current = (self.current + 1) % self.drills.len();
        }
    }

    pub fn previous(&mut self) {
        if !self.drills.is_empty() {
            self.current = (self.current + self.drills.len() - 1) % self.drills.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drill_core::api::HostCounters;

    fn counters(drops: u64, execs: u64, srtt: Option<(u64, f64)>) -> DrillCounters {
        let mut h = HostCounters { host: "api".into(), execs, ..Default::default() };
        h.drops.insert("NETFILTER_DROP".into(), drops);
        if let Some((n, m)) = srtt {
            h.srtt_ms.insert(8080, (n, m, m));
        }
        DrillCounters {
            id: "abc123".into(),
            elapsed_secs: 1.0,
            hosts: vec![h],
            requests: vec![RequestSample { from: "client".into(), target: "api:8080/".into(), ok: drops == 0, latency_ms: 2.0, error: None }],
        }
    }

    #[test]
    fn counters_become_increases_and_rtt_the_mean_of_the_new_samples() {
        let mut d = DrillView::new(DrillInfo { id: "abc123".into(), ..crate::dashboard::tests::info() }, 0.0);
        d.add_counters(counters(5, 2, Some((10, 1.0))), 1.0);
        d.add_counters(counters(9, 2, Some((20, 2.0))), 2.0);
        d.add_counters(counters(9, 3, Some((20, 2.0))), 3.0);
        let drops = d.series.iter().find(|s| s.label == "drops NETFILTER_DROP").unwrap();
        // The first reading has nothing to compare with: a total, no increase.
        assert_eq!(drops.points.iter().map(|p| p.1).collect::<Vec<_>>(), vec![4.0, 0.0]);
        assert_eq!(drops.total, 9.0);
        let rtt = d.series.iter().find(|s| s.label == "srtt :8080").unwrap();
        // (20 × 2.0 − 10 × 1.0) / 10 new samples = 3.0 ms.
        assert_eq!(rtt.points.iter().map(|p| p.1).collect::<Vec<_>>(), vec![1.0, 3.0]);
        // Flat zeros (RSTs, OOM kills) are not shown; what moved is.
        let shown: Vec<&str> = d.shown_series().iter().map(|s| s.label.as_str()).collect();
        assert_eq!(shown, vec!["drops NETFILTER_DROP", "processes", "srtt :8080"]);
        assert_eq!(d.requests[0].ratio(0.0), (0, 3));
    }

    #[test]
    fn bars_sum_counters_and_take_the_largest_gauge() {
        let pts = [(1.0, 1.0), (1.5, 2.0), (3.0, 5.0)];
        assert_eq!(bars(pts.iter().copied(), Kind::Counter, 4.0, 4, 1.0), vec![Some(1.0), Some(2.0), Some(5.0), None]);
        assert_eq!(bars(pts.iter().copied(), Kind::Gauge, 4.0, 2, 2.0), vec![Some(2.0), Some(5.0)]);
        assert_eq!(bucket_for(30.0, 60), 1.0);
        assert_eq!(bucket_for(200.0, 60), 5.0);
    }

    #[test]
    fn switching_wraps_and_a_gone_drill_is_dropped() {
        let mut m = Model::default();
        let i = |id: &str| DrillInfo { id: id.into(), ..crate::dashboard::tests::info() };
        m.set_drills(vec![i("aaaaaa"), i("bbbbbb")], 0.0);
        m.next();
        assert_eq!(m.shown_id().as_deref(), Some("bbbbbb"));
        m.next();
        assert_eq!(m.shown_id().as_deref(), Some("aaaaaa"));
        m.previous();
        assert_eq!(m.shown_id().as_deref(), Some("bbbbbb"));
        m.set_drills(vec![i("cccccc"), i("bbbbbb")], 1.0);
        assert_eq!(m.shown_id().as_deref(), Some("bbbbbb"), "keeps showing the same drill");
        m.set_drills(vec![i("cccccc")], 2.0);
        assert_eq!(m.shown_id().as_deref(), Some("cccccc"));
    }
}
