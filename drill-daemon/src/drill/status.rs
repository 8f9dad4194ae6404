//! What the learner reads from and does to a running drill besides submitting:
//! its info, live counters and sample requests (`drill watch`), hints, exec inside a
//! host, and live retuning of an eBPF fault.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use anyhow::anyhow;
use drill_core::api::{DrillCounters, DrillInfo, ExecInfo, ExecResponse, HostCounters, HostInfo, InterfaceInfo, RequestSample, ServiceInfo};
use drill_core::plan::PlanProbe;
use drill_core::scenario::{Check, TcpState};
use drill_core::verdict::HttpSample;
use drill_core::workload::Workload;
use drill_ebpf::kinds;

use super::{Created, Drill, RunningHost};
use crate::error::{DrillError, Result};
use crate::host;
use crate::kernel::Kernel;
use crate::probes::{self, Probes};
use crate::workload::http;

/// How long the daemon waits for a host's init to report its services.
const INIT_STATUS_TIMEOUT: Duration = Duration::from_secs(3);
/// Recent commands shown per host in the counters.
const RECENT_EXECS: usize = 5;

impl<K: Kernel> Drill<K> {
    pub async fn info(&self) -> DrillInfo {
        let mut services = Vec::new();
        let mut hosts = Vec::new();
        for h in &self.hosts {
            let ph = self.plan.hosts.iter().find(|p| p.name == h.name);
            hosts.push(HostInfo {
                name: h.name.clone(),
                netns: h.netns.clone(),
                pid: h.pid.unwrap_or(0),
                addresses: ph.map(|p| p.interfaces.iter().flat_map(|i| i.addresses.iter().map(move |a| format!("{}: {a}", i.name))).collect()).unwrap_or_default(),
                interfaces: ph.map(|p| p.interfaces.iter().map(|i| self.interface_info(&p.name, i)).collect()).unwrap_or_default(),
            });
            let Some(ph) = ph.filter(|p| !p.services.is_empty()) else { continue };
            let status = match h.pid {
                Some(pid) => tokio::task::spawn_blocking(move || host::request(&host::init_sock_from_outside(pid), &host::Request::Status, INIT_STATUS_TIMEOUT))
                    .await
                    .map_err(anyhow::Error::from)
                    .and_then(|r| r),
                None => Err(anyhow!("no init")),
            };
            for s in &ph.services {
                match status.as_ref().ok().and_then(|r| r.services.iter().find(|x| x.name == s.name)) {
                    Some(x) => services.push(x.clone()),
                    None => services.push(ServiceInfo {
                        host: h.name.clone(),
                        name: s.name.clone(),
                        kind: s.kind.clone(),
                        state: "unknown (the host's init does not answer)".into(),
                        pid: None,
                        restarts: 0,
                        config_path: s.config_path.clone(),
                    }),
                }
            }
        }
        DrillInfo {
            id: self.id.clone(),
            scenario: self.scenario.id.clone(),
            title: self.scenario.title.clone(),
            severity: self.scenario.severity.clone(),
            alert: self.scenario.alert.clone(),
            briefing: self.scenario.briefing.clone(),
            hints: self.scenario.hints.len(),
            started_unix: self.started.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs(),
            elapsed_secs: self.started_at.elapsed().as_secs_f64(),
            hosts,
            services,
            pack: self.origin.pack.clone(),
            owner_uid: self.origin.owner_uid,
            sudo_uid: self.origin.sudo_uid,
            timeline: None,
        }
    }

    /// An interface of host `host` and what it leads to, for the map of `drill watch`.
    fn interface_info(&self, host: &str, i: &drill_core::plan::PlanInterface) -> InterfaceInfo {
        let link = if self.plan.switches.iter().any(|s| s.name == i.peer) {
            "switch"
        } else if self.plan.links.iter().any(|l| l.tunnel.is_some() && ((l.a_host == host && l.a_if == i.name) || (l.b_host == host && l.b_if == i.name))) {
            "vxlan"
        } else {
            "veth"
        };
        InterfaceInfo { name: i.name.clone(), addresses: i.addresses.iter().map(|a| a.to_string()).collect(), peer: i.peer.clone(), link: link.into() }
    }

    /// Next hint (the last one repeats once all were given).
    pub fn next_hint(&self) -> (usize, usize, String) {
        let total = self.scenario.hints.len();
        if total == 0 {
            return (0, 0, "This scenario has no hints.".into());
        }
        let i = self.hints_given.fetch_add(1, Ordering::Relaxed).min(total - 1);
        (i + 1, total, self.scenario.hints[i].clone())
    }

    /// Runs `sh -c command` inside all of a host's namespaces.
    pub async fn exec(&self, host: &str, command: &str, timeout: Duration) -> Result<ExecResponse> {
        let pid = self.host_pid(host)?;
        let mut cmd = host::command_in_host(pid, command)?;
        cmd.kill_on_drop(true).stdin(std::process::Stdio::null());
        let out = tokio::time::timeout(timeout, cmd.output())
            .await
            .map_err(|_| DrillError::Busy(format!("host {host}: `{command}` did not finish within {timeout:?}")))?
            .map_err(|e| DrillError::kernel(format!("running `{command}`"), Some(host), None, e))?;
        Ok(ExecResponse { exit_code: out.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&out.stdout).into_owned(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() })
    }

    /// Retunes or pauses an eBPF fault live (`loss` 0 pauses it). `index` counts the
    /// drill's eBPF faults in scenario order.
    pub fn retune_ebpf(&self, index: usize, loss: f64) -> Result<drill_ebpf::TcCounters> {
        let tcs: Vec<(String, String)> = self.created_so_far().into_iter().filter_map(|c| if let Created::TcFault { netns, iface, .. } = c { Some((netns, iface)) } else { None }).collect();
        let (netns, iface) = tcs.get(index).ok_or_else(|| DrillError::FaultNotFound { drill: self.id.clone(), kind: "eBPF", index, count: tcs.len() })?;
        self.kernel.retune_tc_fault(netns, iface, loss)
    }

    /// One synthetic HTTP GET from inside host `from`.
    #[allow(clippy::too_many_arguments)]
    pub async fn request_once(&self, from: &str, target_host: &str, sni: Option<&str>, port: u16, path: &str, timeout: Duration, tls: bool) -> Result<HttpSample> {
        let addr = match self.plan.host_address(target_host, false) {
            Some(a) => a,
            // A DNS name (an http-slo check with resolve = true): through the host's resolver.
            None => {
                let start = std::time::Instant::now();
                let udp = self.kernel.udp_socket(&self.host(from)?.netns).await?;
                let conf = drill_core::resolv::ResolvConf::parse(&std::fs::read_to_string(format!("/proc/{}/root/etc/resolv.conf", self.host_pid(from)?)).unwrap_or_default());
                match crate::resolver::lookup(&udp, &conf, target_host, start + timeout).await {
                    Ok(a) => a,
                    Err(e) => return Ok(HttpSample { ok: false, latency_ms: start.elapsed().as_secs_f64() * 1e3, error: Some(e) }),
                }
            }
        };
        let target = SocketAddr::new(addr, port);
        let sock = self.kernel.tcp_socket(&self.host(from)?.netns, false).await?;
        let tls = if tls { self.tls_client.as_ref() } else { None };
        let o = http::get(sock, target, sni.unwrap_or(target_host), path, timeout, tls).await;
        Ok(HttpSample { ok: o.ok, latency_ms: o.latency.as_secs_f64() * 1e3, error: o.error })
    }

    /// One request per service-level check (for `drill watch`).
    pub async fn sample_requests(&self) -> Vec<RequestSample> {
        let mut v = Vec::new();
        for c in &self.plan.checks {
            let Check::HttpSlo { from, target_host, port, path, timeout_ms, tls, sni, .. } = c else {
                continue;
            };
            let target = format!("{target_host}:{port}{path}");
            match self.request_once(from, target_host, sni.as_deref(), *port, path, Duration::from_millis(*timeout_ms), *tls).await {
                Ok(s) => v.push(RequestSample { from: from.clone(), target, ok: s.ok, latency_ms: s.latency_ms, error: s.error }),
                Err(e) => v.push(RequestSample { from: from.clone(), target, ok: false, latency_ms: 0.0, error: Some(e.to_string()) }),
            }
        }
        v
    }

    /// Totals since the drill started, per host (for `drill watch`).
    pub fn counters(&self) -> DrillCounters {
        let probes = self.kernel.probes().ok();
        let hosts = self.hosts.iter().map(|h| self.host_counters(h, probes.map(|p| p.as_ref()))).collect();
        DrillCounters { id: self.id.clone(), elapsed_secs: self.started_at.elapsed().as_secs_f64(), hosts, requests: Vec::new() }
    }

    fn host_counters(&self, h: &RunningHost, probes: Option<&Probes>) -> HostCounters {
        let mut c = HostCounters { host: h.name.clone(), ..Default::default() };
        if let Some(ev) = probes.and_then(|p| p.events().ok()) {
            // `drill watch` shows what it can: a failed read shows as no counts.
            for (k, v) in ev.snapshot(h.netns_ino).unwrap_or_default() {
                match k.kind {
                    kinds::DROP => *c.drops.entry(ev.reason_name(k.reason)).or_default() += v,
                    kinds::RETRANSMIT => c.retransmits += v,
                    kinds::RST_SENT => c.resets_sent += v,
                    kinds::RST_RECEIVED => c.resets_received += v,
                    kinds::OOM_KILL => c.oom_kills += v,
                    kinds::ENOSPC => c.enospc += v,
                    kinds::EXEC => c.execs += v,
                    _ => {}
                }
            }
            let (now_ns, since_start) = (probes::now_ns(), self.started_at.elapsed().as_secs_f64());
            c.recent_execs = ev
                .execs(h.netns_ino)
                .iter()
                .rev()
                .take(RECENT_EXECS)
                .map(|e| ExecInfo { comm: e.comm(), pid: e.pid, ppid: e.ppid, argv: e.argv(), at_secs: since_start - now_ns.saturating_sub(e.ts_ns) as f64 / 1e9 })
                .collect();
            for port in self.httpd_ports(&h.name) {
                let r = ev.rtt(h.netns_ino, port);
                if r.samples > 0 {
                    c.srtt_ms.insert(port, (r.samples, r.srtt_sum_us as f64 / r.samples as f64 / 1e3, r.srtt_max_us as f64 / 1e3));
                }
            }
        }
        let timed = self.plan.probes.iter().any(|PlanProbe::TcpStateDwell { host, states }| *host == h.name && states.contains(&TcpState::CloseWait));
        if let (Some(t), true) = (probes.and_then(|p| p.tcpstate().ok()), timed) {
            c.close_wait = t.open_count(h.netns_ino, TcpState::CloseWait);
        }
        c
    }

    /// Ports the httpd services of `host` listen on.
    fn httpd_ports(&self, host: &str) -> Vec<u16> {
        let services = self.plan.hosts.iter().filter(|p| p.name == host).flat_map(|p| p.services.iter());
        services
            .filter_map(|s| match &s.workload {
                Workload::Httpd(cfg) => cfg.listen.rsplit(':').next()?.parse::<u16>().ok(),
                _ => None,
            })
            .collect()
    }
}
