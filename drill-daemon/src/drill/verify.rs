//! The observation window of `drill submit`: snapshot the probes, run one synthetic
//! client per http-slo check for the window, snapshot again, judge every check.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use drill_core::plan::Plan;
use drill_core::scenario::{Check, Counted};
use drill_core::verdict::{self, HttpSample, Verdict};
use drill_core::workload::{LoadgenConfig, Workload};
use drill_ebpf::{EventKey, kinds};

use super::Drill;
use crate::error::{DrillError, Result};
use crate::kernel::{Kernel, Snmp};
use crate::probes::{self, EventProbe};
use crate::workload::http;

type Snapshot = BTreeMap<String, BTreeMap<EventKey, u64>>;

/// The readings at one edge of a verify window.
struct Edge {
    /// Per host, the probe counters the checks judge.
    probes: Snapshot,
    /// The counters plotted in the timeline (the same as `probes` when those are read).
    plot: Snapshot,
    snmp: BTreeMap<String, Snmp>,
    mibs: BTreeMap<String, BTreeMap<String, u64>>,
    fabrics: BTreeMap<String, drill_ebpf::PathMtuCounters>,
    ct: BTreeMap<String, crate::kernel::CtReading>,
}

/// A verify window: both edges and the probes it ran with.
struct Window {
    before: Edge,
    after: Edge,
    tcp: Option<Arc<crate::probes::TcpStateProbe>>,
    events: Option<Arc<EventProbe>>,
    t0: u64,
    t1: u64,
    lost0: u64,
    /// Per host a dwell check watches, its TCP socket table (inode, state) at the
    /// window's end; `None` when it could not be read.
    sockets: BTreeMap<String, Option<Vec<(u32, u16)>>>,
}

/// Refuses early when a probe the checks need is missing, naming it and why.
pub(super) fn require_probes(k: &impl Kernel, plan: &Plan) -> Result<()> {
    for c in &plan.checks {
        if let Some(p) = required_probe(c) {
            k.require_probe(p).map_err(|e| match e {
                DrillError::ProbeMissing { probe, why } => DrillError::ProbeMissing { probe, why: probe_refusal(c, &why) },
                e => e,
            })?;
        }
        if let Check::Count { counted: Counted::Drops { reason: Some(r) }, .. } = c
            && !k.drop_reason_known(r)?
        {
            let why = format!("check `{}`: this kernel has no drop reason `{r}` (see `enum skb_drop_reason`; e.g. NETFILTER_DROP, NO_SOCKET, TCP_CSUM)", c.name());
            return Err(DrillError::ProbeMissing { probe: drill_ebpf::describes("drill_drop").to_string(), why });
        }
    }
    Ok(())
}

/// Why a check's probe is missing, in `drill doctor`'s words: the tracepoint it reads,
/// the built-in drills that cannot run without it, the fix; then what the kernel said.
fn probe_refusal(c: &Check, why: &str) -> String {
    use drill_core::doctor;
    let Some(tp) = doctor::check_program(c).and_then(|p| doctor::TRACEPOINTS.iter().find(|(x, ..)| *x == p)).map(|(_, tp, _)| *tp) else {
        return format!("{why} (check `{}` needs it)", c.name());
    };
    let (drills, _) = doctor::drill_requirements(&drill_core::builtin::scenarios());
    format!("{} (the probe did not load: {why})", doctor::refusal_disabling(&doctor::Need::Tracepoint(tp.into()), &format!("check `{}`", c.name()), &drills))
}

/// One synthetic client of an http-slo check, ready to run.
struct Client {
    netns: String,
    target: SocketAddr,
    host_header: String,
    path: String,
    interval: Duration,
    timeout: Duration,
    opts: LoadgenConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// `resolve = true`: the DNS name of the target and the `from` host's init (whose
    /// /etc/resolv.conf every request reads); `target`'s address is then found anew for
    /// every request.
    resolve: Option<(String, i32)>,
}

/// The resolver configuration of the host whose init is `pid`, as a lookup inside it
/// reads it now (an unreadable file resolves nothing, as it would inside).
fn host_resolv_conf(pid: i32) -> drill_core::resolv::ResolvConf {
    drill_core::resolv::ResolvConf::parse(&std::fs::read_to_string(format!("/proc/{pid}/root/etc/resolv.conf")).unwrap_or_default())
}

/// Resolves the client's target through its host's resolver when it must, before
/// `deadline`: the address to connect to.
async fn resolve_target(sock: Option<tokio::net::UdpSocket>, c: &Client, deadline: Instant) -> std::result::Result<SocketAddr, String> {
    let Some((name, pid)) = &c.resolve else { return Ok(c.target) };
    let sock = sock.ok_or_else(|| format!("could not resolve host {name}: no socket"))?;
    let conf = host_resolv_conf(*pid);
    crate::resolver::lookup(&sock, &conf, name, deadline).await.map(|a| SocketAddr::new(a, c.target.port()))
}

/// What an observation window saw besides the verdict, for the timeline's windows: each
/// service-level check's requests (with its latency bound) and the probe counters that
/// moved, summed over the hosts (`drops:REASON`, `retransmits`, ...).
#[derive(Debug, Default)]
pub struct Observed {
    pub requests: Vec<(Option<f64>, Vec<HttpSample>)>,
    pub counters: BTreeMap<String, u64>,
}

impl<K: Kernel> Drill<K> {
    /// Runs the observation window and evaluates every check.
    pub async fn verify(&self) -> Result<Verdict> {
        Ok(self.observe().await?.0)
    }

    /// [`Drill::verify`], with what the window saw.
    pub async fn observe(&self) -> Result<(Verdict, Observed)> {
        let window = Duration::from_secs_f64(self.plan.window_secs);
        let probes = self.kernel.probes()?;
        let missing = |e: anyhow::Error| DrillError::ProbeMissing { probe: "probes".into(), why: format!("{e:#}") };
        let tcp = if self.plan.probes.is_empty() { None } else { Some(probes.tcpstate().map_err(missing)?.clone()) };
        let lost0 = tcp.as_ref().map_or(0, |t| t.events_lost());
        let counting = self.plan.checks.iter().any(|c| matches!(c, Check::Count { .. } | Check::Counter { .. }));
        let events = if counting { Some(probes.events().map_err(missing)?.clone()) } else { None };
        // The counters plotted in the timeline: read when the probe is there, never judged.
        let plotted = events.clone().or_else(|| probes.events().ok().cloned());
        let before = self.read_window_edge(events.as_deref(), plotted.as_deref(), counting).await?;
        let t0 = probes::now_ns();
        let deadline = Instant::now() + window;
        let mut clients = Vec::new();
        for c in &self.plan.checks {
            if let Some(cl) = self.client_of(c)? {
                clients.push(self.run_client(cl, deadline));
            }
        }
        // The process-table checks read their host's processes through the window.
        let mut samplers = Vec::new();
        for c in &self.plan.checks {
            if let Check::Processes { host, .. } = c {
                samplers.push(super::procs::sample(self.host(host)?.pidns_ino, deadline));
            }
        }
        let (slo_results, proc_results, _) = tokio::join!(futures::future::join_all(clients), futures::future::join_all(samplers), tokio::time::sleep_until(deadline.into()));
        let t1 = probes::now_ns();
        let after = self.read_window_edge(events.as_deref(), plotted.as_deref(), counting).await?;
        let counters = plotted.as_deref().map(|ev| moved(ev, &before.plot, &after.plot)).unwrap_or_default();
        let requests: Vec<(Option<f64>, Vec<HttpSample>)> =
            self.plan.checks.iter().filter_map(|c| if let Check::HttpSlo { max_latency_ms, .. } = c { Some(*max_latency_ms) } else { None }).zip(slo_results.iter().cloned()).collect();
        let sockets = self.socket_tables().await;
        let w = Window { before, after, tcp, events, t0, t1, lost0, sockets };
        let (mut slo_iter, mut proc_iter) = (slo_results.into_iter(), proc_results.into_iter());
        let mut results = Vec::new();
        for c in &self.plan.checks {
            results.push(self.judge(c, &w, &mut slo_iter, &mut proc_iter)?);
        }
        Ok((Verdict::new(&self.id, &self.scenario.id, self.plan.window_secs, results), Observed { requests, counters }))
    }

    /// What the checks compare at one edge of the window: probe counters (judged and
    /// plotted), SNMP counters, MIBs, fabrics and conntrack tables.
    async fn read_window_edge(&self, events: Option<&EventProbe>, plotted: Option<&EventProbe>, counting: bool) -> Result<Edge> {
        let probes = self.snapshot(events)?;
        let plot = if events.is_some() { probes.clone() } else { self.snapshot(plotted).unwrap_or_default() };
        // Segments and packets: the denominators and positive controls of counting checks.
        let snmp = if counting { self.snmp().await? } else { BTreeMap::new() };
        Ok(Edge { probes, plot, snmp, mibs: self.mibs().await?, fabrics: self.fabrics()?, ct: self.ct_tables().await? })
    }

    /// The socket table of every host a dwell check watches: the probe's record of a
    /// socket still in a state is taken only when the kernel's table agrees (a record
    /// the probe failed to clear is not a stuck socket). Unreadable: `None`, and every
    /// record counts.
    async fn socket_tables(&self) -> BTreeMap<String, Option<Vec<(u32, u16)>>> {
        let mut m = BTreeMap::new();
        for c in &self.plan.checks {
            if let Check::TcpStateDwell { host, .. } = c
                && !m.contains_key(host)
                && let Ok(h) = self.host(host)
            {
                m.insert(host.clone(), self.kernel.tcp_sockets(&h.netns).await.ok());
            }
        }
        m
    }

    /// One check's verdict from the window's readings; the service-level and process
    /// checks take their results, in check order, from `slo` and `procs`.
    fn judge(&self, c: &Check, w: &Window, slo: &mut impl Iterator<Item = Vec<HttpSample>>, procs: &mut impl Iterator<Item = Vec<drill_core::check::processes::ProcTable>>) -> Result<verdict::CheckResult> {
        let (before, after) = (&w.before, &w.after);
        let delta = |h: &str, f: fn(&Snmp) -> u64| after.snmp.get(h).map_or(0, f).saturating_sub(before.snmp.get(h).map_or(0, f));
        Ok(match c {
            Check::TcpStateDwell { name, host, port, peer, state, max_secs, min_connections } => {
                let ino = self.host(host)?.netns_ino;
                let tcp = w.tcp.as_ref().ok_or_else(|| DrillError::ProbeMissing { probe: "tcpstate".into(), why: "not loaded".into() })?;
                let live: Option<std::collections::HashSet<u32>> =
                    w.sockets.get(host).and_then(Option::as_ref).map(|t| t.iter().filter(|(_, st)| *st == state.number()).map(|(i, _)| *i).collect());
                let obs = tcp.observe(ino, *port, *peer, *state, w.t0, w.t1, w.lost0, live.as_ref());
                verdict::evaluate_dwell(name, host, *port, *peer, *state, *max_secs, *min_connections, &obs)
            }
            Check::Count { name, host, port, counted, max, max_ratio } => {
                let ev = w.events.as_ref().ok_or_else(|| DrillError::ProbeMissing { probe: "event probes".into(), why: "not loaded".into() })?;
                let (seen, breakdown) = counted_delta(ev, counted, *port, before.probes.get(host), after.probes.get(host));
                let on = port.map_or_else(|| host.clone(), |p| format!("{host}:{p}"));
                // The positive control: the host handled traffic in the window (OOM
                // kills are not about traffic).
                let activity = (*counted != Counted::OomKills).then(|| verdict::Activity { packets: delta(host, |s| s.ip_packets) });
                match max_ratio {
                    Some(r) => verdict::evaluate_ratio(name, &counted.describe(), &on, seen, delta(host, |s| s.tcp_out_segs), *r),
                    None => verdict::evaluate_count(name, &counted.describe(), &on, seen, *max, &breakdown, activity),
                }
            }
            Check::Counter { name, host, counter, max, min } => {
                // A counter missing before or after is not measured (None): it fails.
                let seen = match (before.mibs.get(host).and_then(|m| m.get(counter)), after.mibs.get(host).and_then(|m| m.get(counter))) {
                    (Some(b), Some(a)) => Some(a.saturating_sub(*b)),
                    _ => None,
                };
                let activity = verdict::Activity { packets: delta(host, |s| s.ip_packets) };
                verdict::evaluate_counter(name, counter, host, seen, *max, *min, activity)
            }
            Check::FabricDrops { name, switch, max } => {
                let (b, a) = (before.fabrics.get(switch).copied().unwrap_or_default(), after.fabrics.get(switch).copied().unwrap_or_default());
                let seen = a.dropped.saturating_sub(b.dropped);
                let mtu = self.plan.switches.iter().find(|s| &s.name == switch).and_then(|s| s.path_mtu).unwrap_or(0);
                let what = match seen {
                    0 => format!("frames over the fabric's {mtu} bytes dropped"),
                    _ => format!("frames over the fabric's {mtu} bytes (up to {}, {} wire segments) dropped", a.largest_dropped, a.dropped_segs.saturating_sub(b.dropped_segs)),
                };
                // The positive control: frames crossed the fabric in the window.
                let activity = verdict::Activity { packets: a.seen.saturating_sub(b.seen) };
                verdict::evaluate_count(name, &what, &format!("switch {switch}"), seen, *max, &[], Some(activity))
            }
            Check::ConntrackHeadroom { name, host, churn, flows_per_sec, margin } => {
                let obs = self.ct_observation(host, before.ct.get(host), after.ct.get(host));
                drill_core::check::conntrack::evaluate(name, host, churn, *flows_per_sec, *margin, &obs)
            }
            Check::Processes { name, host, watch } => {
                let tables = procs.next().unwrap_or_default();
                drill_core::check::processes::evaluate(name, host, watch, &tables, super::procs::ticks_per_sec())
            }
            Check::HttpSlo { name, from, target_host, port, min_success_ratio, max_latency_ms, .. } => {
                let samples = slo.next().unwrap_or_default();
                verdict::evaluate_http(name, from, &format!("{target_host}:{port}"), *min_success_ratio, *max_latency_ms, &samples)
            }
        })
    }

    /// Every host's probe counters; a map that cannot be read fails the verify (no
    /// reading is never a pass).
    fn snapshot(&self, ev: Option<&EventProbe>) -> Result<Snapshot> {
        let Some(e) = ev else { return Ok(Snapshot::new()) };
        self.hosts.iter().map(|h| Ok((h.name.clone(), e.snapshot(h.netns_ino).map_err(|e| DrillError::Internal(e.context(format!("host {}: reading the probe counters", h.name))))?))).collect()
    }

    /// The synthetic client of an http-slo check: as the named client service is
    /// configured now, or a plain client.
    fn client_of(&self, c: &Check) -> Result<Option<Client>> {
        let Check::HttpSlo { from, target_host, port, path, timeout_ms, interval_ms, tls, sni, client, .. } = c else {
            return Ok(None);
        };
        let opts = match client {
            Some(svc) => self.client_config(from, svc)?,
            None => LoadgenConfig { target: String::new(), path: String::new(), rate_per_sec: 1, timeout_ms: *timeout_ms, keepalive: false, nodelay: true, body_bytes: 0, tls: *tls, burst: 1 },
        };
        let tls = if opts.tls { Some(self.tls_client.clone().ok_or_else(|| anyhow!("check `{}` speaks TLS but the drill has no CA", c.name()))?) } else { None };
        let resolve = match c {
            // With a client service, the name it is configured with (e.g. an FQDN with a
            // trailing dot), as that client would look it up.
            Check::HttpSlo { resolve: true, .. } => {
                let name = client.as_ref().and_then(|_| opts.target.rsplit_once(':')).map_or(target_host.as_str(), |(h, _)| h);
                Some((name.to_string(), self.host_pid(from)?))
            }
            _ => None,
        };
        let addr = match resolve {
            Some(_) => std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            None => match target_host.parse::<std::net::IpAddr>() {
                Ok(ip) => ip,
                Err(_) => self.plan.host_address(target_host, false).ok_or_else(|| anyhow!("host {target_host} has no IPv4 address for the check"))?,
            },
        };
        Ok(Some(Client {
            netns: self.host(from)?.netns.clone(),
            target: SocketAddr::new(addr, *port),
            host_header: sni.clone().unwrap_or_else(|| target_host.clone()),
            path: path.clone(),
            interval: Duration::from_millis(*interval_ms),
            timeout: Duration::from_millis(*timeout_ms),
            opts,
            tls,
            resolve,
        }))
    }

    /// Runs one client until `deadline`; its samples.
    async fn run_client(&self, c: Client, deadline: Instant) -> Vec<HttpSample> {
        if c.opts.keepalive { self.run_keepalive_client(&c, deadline).await } else { self.run_per_request_client(&c, deadline).await }
    }

    /// One connection, reused request after request (re-opened after a failure), as
    /// the load generator does with keep-alive ([`http::keepalive_request`]).
    async fn run_keepalive_client(&self, c: &Client, deadline: Instant) -> Vec<HttpSample> {
        let mut samples = Vec::new();
        let mut conn: Option<Box<dyn http::Io>> = None;
        while Instant::now() + c.timeout <= deadline {
            let start = Instant::now();
            let open = async {
                let udp = if c.resolve.is_some() { Some(self.kernel.udp_socket(&c.netns).await.map_err(|e| e.to_string())?) } else { None };
                let target = resolve_target(udp, c, start + c.timeout).await?;
                let sock = self.kernel.tcp_socket(&c.netns, target.is_ipv6()).await.map_err(|e| e.to_string())?;
                http::connect(sock, target, &c.host_header, c.tls.as_ref(), c.opts.nodelay).await
            };
            let r = tokio::time::timeout(c.timeout, http::keepalive_request(conn.take(), open, &c.host_header, &c.path, c.opts.body_bytes as usize)).await;
            let latency_ms = start.elapsed().as_secs_f64() * 1e3;
            samples.push(match r {
                Ok(Ok((s, status))) => match http::status_ok(status) {
                    Ok(()) => {
                        conn = Some(s);
                        HttpSample { ok: true, latency_ms, error: None }
                    }
                    Err(e) => HttpSample { ok: false, latency_ms, error: Some(e) },
                },
                Ok(Err(e)) => HttpSample { ok: false, latency_ms, error: Some(e) },
                Err(_) => HttpSample { ok: false, latency_ms, error: Some(format!("timed out after {} ms", c.timeout.as_millis())) },
            });
            tokio::time::sleep_until((start + c.interval).into()).await;
        }
        samples
    }

    /// A connection per request, sockets made inside the client's host.
    async fn run_per_request_client(&self, c: &Client, deadline: Instant) -> Vec<HttpSample> {
        let mut samples = Vec::new();
        let mut inflight = tokio::task::JoinSet::new();
        while Instant::now() + c.timeout <= deadline || inflight.is_empty() && Instant::now() < deadline {
            let udp = match &c.resolve {
                Some(_) => self.kernel.udp_socket(&c.netns).await.map(Some),
                None => Ok(None),
            };
            match (self.kernel.tcp_socket(&c.netns, c.target.is_ipv6()).await, udp) {
                (Ok(sock), Ok(udp)) => {
                    let (h, p, tls, timeout) = (c.host_header.clone(), c.path.clone(), c.tls.clone(), c.timeout);
                    let start = Instant::now();
                    if c.resolve.is_some() {
                        // The lookup is part of the request: its time counts, its failure fails it.
                        let r = Client {
                            netns: String::new(),
                            target: c.target,
                            host_header: h.clone(),
                            path: String::new(),
                            interval: c.interval,
                            timeout,
                            opts: c.opts.clone(),
                            tls: None,
                            resolve: c.resolve.clone(),
                        };
                        inflight.spawn(async move {
                            match resolve_target(udp, &r, start + timeout).await {
                                Ok(target) => {
                                    let mut o = http::get(sock, target, &h, &p, timeout.saturating_sub(start.elapsed()), tls.as_ref()).await;
                                    o.latency = start.elapsed();
                                    o
                                }
                                Err(e) => http::Outcome { ok: false, latency: start.elapsed(), error: Some(e) },
                            }
                        });
                    } else {
                        let target = c.target;
                        inflight.spawn(async move { http::get(sock, target, &h, &p, timeout, tls.as_ref()).await });
                    }
                }
                (Err(e), _) | (_, Err(e)) => samples.push(HttpSample { ok: false, latency_ms: 0.0, error: Some(e.to_string()) }),
            }
            tokio::time::sleep(c.interval).await;
        }
        while let Some(r) = inflight.join_next().await {
            if let Ok(o) = r {
                samples.push(HttpSample { ok: o.ok, latency_ms: o.latency.as_secs_f64() * 1e3, error: o.error });
            }
        }
        samples
    }

    /// The MIB counters of every host a `counter` check reads; a host whose counters
    /// cannot be read fails the verify.
    async fn mibs(&self) -> Result<BTreeMap<String, BTreeMap<String, u64>>> {
        let mut m = BTreeMap::new();
        for c in &self.plan.checks {
            if let Check::Counter { host, .. } = c
                && !m.contains_key(host)
            {
                m.insert(host.clone(), self.kernel.mib(&self.host(host)?.netns).await?);
            }
        }
        Ok(m)
    }

    /// The fabric counters of every switch a fabric-drops check watches.
    fn fabrics(&self) -> Result<BTreeMap<String, drill_ebpf::PathMtuCounters>> {
        let mut m = BTreeMap::new();
        for c in &self.plan.checks {
            if let Check::FabricDrops { switch, .. } = c
                && !m.contains_key(switch)
            {
                let sw = self.plan.switches.iter().find(|s| &s.name == switch).ok_or_else(|| DrillError::Internal(anyhow!("plan has no switch {switch}")))?;
                m.insert(switch.clone(), self.kernel.fabric_counters(&sw.netns)?);
            }
        }
        Ok(m)
    }

    /// Every host's own traffic counters (/proc/net/snmp); a host whose counters cannot
    /// be read fails the verify.
    async fn snmp(&self) -> Result<BTreeMap<String, Snmp>> {
        let mut m = BTreeMap::new();
        for h in &self.hosts {
            m.insert(h.name.clone(), self.kernel.snmp(&h.netns).await?);
        }
        Ok(m)
    }

    /// The config loadgen service `svc` on `host` runs with (what it recorded at start in
    /// the host's /run); when it is not running, its config file. An http-slo check with
    /// `client` behaves like it, so a config edited but not applied (`svc restart`) does
    /// not count yet.
    fn client_config(&self, host: &str, svc: &str) -> Result<LoadgenConfig> {
        let running = self.host_pid(host).ok().and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/root{}", drill_core::workload::effective_config_path(svc))).ok());
        let text = match running {
            Some(t) => t,
            None => {
                let path = self.dir.join("hosts").join(host).join("etc-upper").join(svc).join(format!("{svc}.toml"));
                std::fs::read_to_string(&path).with_context(|| format!("host {host}: reading the config of {svc} ({})", drill_core::workload::config_path(svc)))?
            }
        };
        match Workload::parse_config("loadgen", &text) {
            Ok(Workload::Loadgen(c)) => Ok(c),
            Ok(_) => Err(DrillError::BadRequest(format!("host {host}: {svc} is not a loadgen"))),
            Err(e) => Err(DrillError::BadRequest(format!("host {host}: {}: {e}; fix the file (the check behaves as the client is configured)", drill_core::workload::config_path(svc)))),
        }
    }
}

/// What a counting check counts between two snapshots of one host: the total and a
/// breakdown (by drop reason or port), largest first.
fn counted_delta(ev: &EventProbe, counted: &Counted, port: Option<u16>, before: Option<&BTreeMap<EventKey, u64>>, after: Option<&BTreeMap<EventKey, u64>>) -> (u64, Vec<(String, u64)>) {
    // Drops break down by reason, retransmissions and resets by port; OOM kills and
    // ENOSPC returns have neither.
    let mut by_what: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen = 0;
    for (k, v) in after.into_iter().flatten() {
        let delta = v.saturating_sub(before.and_then(|b| b.get(k)).copied().unwrap_or(0));
        if delta == 0 || !counted_matches(counted, port, k, ev) {
            continue;
        }
        seen += delta;
        let what = match k.kind {
            kinds::DROP => Some(ev.reason_name(k.reason)),
            kinds::RETRANSMIT | kinds::RST_SENT | kinds::RST_RECEIVED => Some(format!("port {}", k.port)),
            _ => None,
        };
        if let Some(w) = what {
            *by_what.entry(w).or_default() += delta;
        }
    }
    let mut breakdown: Vec<(String, u64)> = by_what.into_iter().collect();
    breakdown.sort_by_key(|x| std::cmp::Reverse(x.1));
    (seen, breakdown)
}

/// The counters that moved between two snapshots, summed over the hosts, by name.
fn moved(ev: &EventProbe, before: &Snapshot, after: &Snapshot) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for (host, counts) in after {
        for (k, v) in counts {
            let d = v.saturating_sub(before.get(host).and_then(|b| b.get(k)).copied().unwrap_or(0));
            if d == 0 {
                continue;
            }
            let name = match k.kind {
                kinds::DROP => format!("drops:{}", ev.reason_name(k.reason)),
                kinds::RETRANSMIT => "retransmits".into(),
                kinds::RST_SENT => "resets_sent".into(),
                kinds::RST_RECEIVED => "resets_received".into(),
                kinds::OOM_KILL => "oom_kills".into(),
                kinds::ENOSPC => "enospc".into(),
                kinds::EXEC => "execs".into(),
                _ => continue,
            };
            *m.entry(name).or_default() += d;
        }
    }
    m
}

/// The probe (by description) a check's figures come from: the program
/// `drill_core::doctor::check_program` names (one table, shared with `drill doctor`).
fn required_probe(c: &Check) -> Option<&'static str> {
    drill_core::doctor::check_program(c).map(drill_ebpf::describes)
}

/// Whether a counter entry is one a counting check counts.
fn counted_matches(c: &Counted, port: Option<u16>, k: &EventKey, ev: &EventProbe) -> bool {
    let port_ok = port.is_none_or(|p| p == k.port);
    match c {
        Counted::Drops { reason } => k.kind == kinds::DROP && reason.as_ref().is_none_or(|r| ev.reason_number(r) == Some(k.reason)),
        Counted::Retransmits => k.kind == kinds::RETRANSMIT && port_ok,
        Counted::ResetsSent => k.kind == kinds::RST_SENT && port_ok,
        Counted::ResetsReceived => k.kind == kinds::RST_RECEIVED && port_ok,
        Counted::OomKills => k.kind == kinds::OOM_KILL,
        Counted::Enospc => k.kind == kinds::ENOSPC,
    }
}

#[cfg(test)]
mod doctor_words {
    use super::*;

    #[test]
    fn a_missing_probe_is_refused_in_doctors_words() {
        let s = drill_core::builtin::scenarios().into_iter().find(|s| s.id == "close-wait-leak").unwrap();
        let plan = drill_core::plan::compile(&s, "000000", 0, drill_core::plan::Backends { delay: drill_core::plan::DelayBackend::Wire }).unwrap();
        let c = plan.checks.iter().find(|c| matches!(c, Check::TcpStateDwell { .. })).expect("close-wait-leak times a TCP state");
        let m = probe_refusal(c, "EPERM");
        assert!(m.starts_with(&format!("check `{}` needs tracepoint sock:inet_sock_set_state, which this machine lacks: ", c.name())), "{m}");
        assert!(m.contains("cannot run: ") && m.contains("close-wait-leak") && m.contains("`drill doctor`") && m.ends_with("(the probe did not load: EPERM)"), "{m}");
    }
}
