//! A recording fake of the [`Kernel`]: no namespace, no netlink, no process, no
//! socket. It records every call in order (`"kind detail"`), can fail the Nth call,
//! the first call of a kind, or every call of a kind (teardown steps), and answers
//! measurements from a small model of what it was asked to set: ping RTT grows with
//! every delay set, a transfer runs at the last rate set, a ping loses the fraction
//! and a connection ends the way the test said.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::anyhow;
use drill_core::plan::Plan;
use drill_core::scenario::{Cidr, TcpState};
use drill_ebpf::{PathMtuCounters, TcCounters, TcRule};

use super::{ConnRun, Connect, DelayBackend, HostNft, Kernel, Splice};
use crate::error::{DrillError, Result};
use crate::host::HostSpec;
use crate::probes::Probes;

/// The ping RTT, in ms, of a link without a delay.
pub const BASE_RTT_MS: f64 = 0.1;

#[derive(Default)]
struct State {
    calls: Vec<String>,
    fail_at: Option<usize>,
    fail_first: Option<String>,
    fail_always: Vec<String>,
    next_ino: u32,
    next_pid: i32,
    delay_ms: f64,
    extra_rtt_ms: f64,
    rate_bps: Option<u64>,
    loss: f64,
    connect: Option<Connect>,
    backend: Option<DelayBackend>,
    /// Whether a filtering fault (nft table, eBPF classifier) was set: connections and
    /// large echoes answer differently from then on.
    filtered: bool,
    /// Packets "dropped" so far (a filtered large don't-fragment echo's frag-needed).
    drops: u64,
    /// A switch's path MTU once set, and what its fabric "dropped" (large
    /// don't-fragment echoes across it).
    path_mtu: Option<u32>,
    fabric: PathMtuCounters,
    /// The config text each service starts with, by (host, service), from the plan.
    configs: Vec<(String, String, String)>,
    /// (host, path, text): files the hosts were given (their resolv.conf).
    host_files: Vec<(String, String, String)>,
    /// The conntrack stand-in's size once built, and the UDP flows sent to fill it.
    ct_max: Option<u32>,
    ct_filled: u32,
}

#[derive(Default)]
pub struct FakeKernel {
    state: Mutex<State>,
}

impl FakeKernel {
    pub fn new() -> Arc<FakeKernel> {
        Arc::new(FakeKernel::default())
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fails the call with this index (0-based, over every call recorded).
    pub fn fail_call(&self, index: usize) {
        self.st().fail_at = Some(index);
    }

    /// Fails the first call of `kind` (e.g. "spawn_host").
    pub fn fail_first(&self, kind: &str) {
        self.st().fail_first = Some(kind.to_string());
    }

    /// Fails every call of `kind` (e.g. "delete_netns" to fail teardown steps).
    pub fn fail_always(&self, kind: &str) {
        self.st().fail_always.push(kind.to_string());
    }

    /// What the delay backend probe answers (default: the wire, as on this machine).
    pub fn set_backend(&self, b: DelayBackend) {
        self.st().backend = Some(b);
    }

    /// The fraction of pings lost (on top of loss set on a wire or netem).
    pub fn answer_loss(&self, loss: f64) {
        self.st().loss = loss;
    }

    /// Adds `ms` to every ping RTT measured after a delay was set (a delay that
    /// overshoots).
    pub fn overshoot_delay(&self, ms: f64) {
        self.st().extra_rtt_ms = ms;
    }

    /// How every TCP connection attempt ends once a filter is set (default: it times
    /// out); before any, connections connect.
    pub fn answer_connect(&self, c: Connect) {
        self.st().connect = Some(c);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<String> {
        self.st().calls.clone()
    }

    /// Forgets the calls recorded so far (the failures set stay).
    pub fn clear_calls(&self) {
        self.st().calls.clear();
    }

    /// Records a call; fails it when told to.
    fn call(&self, kind: &str, detail: String, host: Option<&str>, iface: Option<&str>) -> Result<()> {
        let mut st = self.st();
        let index = st.calls.len();
        st.calls.push(if detail.is_empty() { kind.to_string() } else { format!("{kind} {detail}") });
        let first = st.fail_first.as_deref() == Some(kind);
        if first {
            st.fail_first = None;
        }
        if st.fail_at == Some(index) || first || st.fail_always.iter().any(|k| k == kind) {
            return Err(DrillError::kernel(kind.to_string(), host, iface, anyhow!("injected failure of call #{index} ({kind} {detail})")));
        }
        Ok(())
    }
}

impl Kernel for FakeKernel {
    fn require_probe(&self, probe: &str) -> Result<()> {
        self.call("require_probe", probe.to_string(), None, None)
    }

    fn hold_probe(&self, owner: &str, program: &str) -> Result<()> {
        self.call("hold_probe", format!("{owner} {program}"), None, None)
    }

    fn release_probe(&self, owner: &str, program: &str) -> Result<()> {
        self.call("release_probe", format!("{owner} {program}"), None, None)
    }

    fn drop_reason_known(&self, reason: &str) -> Result<bool> {
        self.call("drop_reason_known", reason.to_string(), None, None).map(|()| true)
    }

    fn watch(&self, ino: u32, states: &[TcpState]) -> Result<()> {
        self.call("watch", format!("{ino} {states:?}"), None, None)
    }

    fn unwatch(&self, ino: u32) -> Result<()> {
        self.call("unwatch", ino.to_string(), None, None)
    }

    fn probes(&self) -> Result<&Arc<Probes>> {
        Err(DrillError::ProbeMissing { probe: "probes".into(), why: "the fake kernel has none".into() })
    }

    async fn create_netns(&self, name: &str) -> Result<u32> {
        self.call("create_netns", name.to_string(), None, None)?;
        let mut st = self.st();
        st.next_ino += 1;
        Ok(4_000_000 + st.next_ino)
    }

    fn delete_netns(&self, name: &str) -> Result<()> {
        self.call("delete_netns", name.to_string(), None, None)
    }

    fn backends(&self) -> super::Backends {
        super::Backends { delay: self.st().backend.unwrap_or(DelayBackend::Wire) }
    }

    async fn apply_topology(&self, plan: &Plan, splices: &[Splice]) -> Result<()> {
        let wires: Vec<&str> = splices.iter().map(|s| s.netns.as_str()).collect();
        self.call("apply_topology", format!("{} links, {} switches, wires {wires:?}", plan.links.len(), plan.switches.len()), None, None)?;
        // The fake's services run with exactly what the plan writes.
        // What each service records it runs with: its config, or for nginx the `nginx -T`
        // dump that holds it.
        let recorded = |s: &drill_core::plan::PlanService| match s.workload {
            drill_core::workload::Workload::Nginx(_) => format!("# configuration file {}:\n{}\n", s.config_path, s.config_text),
            _ => s.config_text.clone(),
        };
        self.st().configs = plan.hosts.iter().flat_map(|h| h.services.iter().map(move |s| (h.name.clone(), s.name.clone(), recorded(s)))).collect();
        self.st().host_files = plan.hosts.iter().map(|h| (h.name.clone(), "/etc/resolv.conf".to_string(), h.resolv_conf.clone())).collect();
        Ok(())
    }

    async fn open_wire(&self, wire: &str, host: &str, iface: &str) -> Result<()> {
        self.call("open_wire", wire.to_string(), Some(host), Some(iface))
    }

    fn set_wire(&self, wire: &str, delay: Duration, _jitter: Duration, loss: f64) -> Result<()> {
        self.call("set_wire", format!("{wire} {delay:?} loss {loss}"), None, None)?;
        let mut st = self.st();
        st.delay_ms += delay.as_secs_f64() * 1e3;
        st.loss += loss;
        Ok(())
    }

    fn close_wire(&self, wire: &str) -> Result<()> {
        self.call("close_wire", wire.to_string(), None, None)
    }

    fn spawn_host(&self, spec: HostSpec, netns: &str, _console: &Path) -> Result<i32> {
        self.call("spawn_host", format!("{} {netns}", spec.name), Some(&spec.name), None)?;
        let mut st = self.st();
        st.next_pid += 1;
        // Far above any real pid_max, so nothing could ever signal a real process.
        Ok(1 << 30 | st.next_pid)
    }

    async fn wait_host_ready(&self, host: &str, pid: i32, _console: &Path, _timeout: Duration) -> Result<()> {
        self.call("wait_host_ready", format!("{host} {pid}"), Some(host), None)
    }

    async fn listening(&self, netns: &str, port: u16) -> Result<bool> {
        self.call("listening", format!("{netns} {port}"), None, None).map(|()| true)
    }

    fn host_pidns(&self, host: &str, pid: i32) -> Result<u32> {
        self.call("host_pidns", format!("{host} {pid}"), Some(host), None)?;
        Ok(5_000_000 + pid as u32)
    }

    fn watch_pids(&self, ino: u32) -> Result<()> {
        self.call("watch_pids", ino.to_string(), None, None)
    }

    fn unwatch_pids(&self, ino: u32) -> Result<()> {
        self.call("unwatch_pids", ino.to_string(), None, None)
    }

    fn commands(&self, _ino: u32) -> Vec<crate::probes::Captured> {
        Vec::new()
    }

    fn kill_host(&self, host: &str, pid: i32) -> Result<()> {
        self.call("kill_host", format!("{host} {pid}"), Some(host), None)
    }

    async fn set_sysctl(&self, _netns: &str, host: &str, key: &str, value: &str) -> Result<()> {
        self.call("set_sysctl", format!("{host} {key}={value}"), Some(host), None)
    }

    async fn set_mtu(&self, _netns: &str, host: &str, iface: &str, mtu: u32) -> Result<()> {
        self.call("set_mtu", format!("{host} {iface} {mtu}"), Some(host), Some(iface))
    }

    async fn remove_route(&self, _netns: &str, host: &str, to: Option<Cidr>) -> Result<()> {
        self.call("remove_route", format!("{host} {}", to.map_or_else(|| "default".into(), |c| c.to_string())), Some(host), None)
    }

    async fn set_rate(&self, _netns: &str, host: &str, iface: &str, rate_bps: u64, port: Option<u16>) -> Result<()> {
        self.call("set_rate", format!("{host} {iface} {rate_bps} {port:?}"), Some(host), Some(iface))?;
        self.st().rate_bps = Some(rate_bps);
        Ok(())
    }

    async fn set_netem(&self, _netns: &str, host: &str, iface: &str, delay_ms: f64, _jitter_ms: f64, loss: f64) -> Result<()> {
        self.call("set_netem", format!("{host} {iface} {delay_ms}ms loss {loss}"), Some(host), Some(iface))?;
        let mut st = self.st();
        st.delay_ms += delay_ms;
        st.loss += loss;
        Ok(())
    }

    async fn apply_nft(&self, _netns: &str, _plan: &Plan, host: &str, nft: &HostNft) -> Result<()> {
        self.call("apply_nft", format!("{host} {} rules {} dnats", nft.rules.len(), nft.dnats.len()), Some(host), None)?;
        let mut st = self.st();
        st.filtered = true;
        // A reject ends a connection as the kernel would: refused (a RST or an ICMP
        // port-unreachable), or EHOSTUNREACH (admin-prohibited).
        if st.connect.is_none() {
            st.connect = nft.rules.iter().find_map(|r| match r.action {
                drill_core::scenario::NftAction::RejectTcpReset | drill_core::scenario::NftAction::RejectPortUnreachable => Some(Connect::Refused),
                drill_core::scenario::NftAction::RejectAdminProhibited => Some(Connect::Other("No route to host (os error 113)".into())),
                _ => None,
            });
        }
        // A drop of ICMP (or of every protocol) loses every echo.
        if nft.rules.iter().any(|r| r.action == drill_core::scenario::NftAction::Drop && !r.frag_needed && r.proto.as_deref().is_none_or(|p| p == "icmp")) {
            st.loss = 1.0;
        }
        Ok(())
    }

    async fn revert_nft(&self, _netns: &str, host: &str) -> Result<()> {
        self.call("revert_nft", host.to_string(), Some(host), None)
    }

    async fn attach_tc_fault(&self, _netns: &str, host: &str, iface: &str, egress: bool, rule: TcRule) -> Result<()> {
        self.call("attach_tc_fault", format!("{host} {iface} egress={egress} ppm={}", rule.drop_ppm), Some(host), Some(iface))?;
        let mut st = self.st();
        st.loss += f64::from(rule.drop_ppm) / 1e6;
        st.filtered = true;
        Ok(())
    }

    fn retune_tc_fault(&self, netns: &str, iface: &str, loss: f64) -> Result<TcCounters> {
        self.call("retune_tc_fault", format!("{netns} {iface} {loss}"), None, Some(iface)).map(|()| TcCounters::default())
    }

    fn tc_fault_counters(&self, netns: &str, iface: &str) -> Result<TcCounters> {
        self.call("tc_fault_counters", format!("{netns} {iface}"), None, Some(iface)).map(|()| TcCounters::default())
    }

    fn forget_tc_fault(&self, netns: &str, iface: &str) -> Result<()> {
        self.call("forget_tc_fault", format!("{netns} {iface}"), None, Some(iface))
    }

    async fn set_path_mtu(&self, netns: &str, switch: &str, ports: &[String], mtu: u32) -> Result<()> {
        self.call("set_path_mtu", format!("{netns} {switch} ports {} mtu {mtu}", ports.join(",")), None, None)?;
        self.st().path_mtu = Some(mtu);
        Ok(())
    }

    fn fabric_counters(&self, netns: &str) -> Result<PathMtuCounters> {
        self.call("fabric_counters", netns.to_string(), None, None)?;
        Ok(self.st().fabric)
    }

    fn forget_path_mtu(&self, netns: &str) -> Result<()> {
        self.call("forget_path_mtu", netns.to_string(), None, None)
    }

    async fn echo_burst(&self, netns: &str, to: std::net::Ipv4Addr, b: crate::icmp::Burst) -> Result<crate::icmp::EchoStats> {
        self.call("echo_burst", format!("{netns} {to} x{} payload {}", b.count, b.payload), None, None)?;
        let mut st = self.st();
        // Across a fabric with a path MTU: a larger packet is dropped without a word.
        if let Some(m) = st.path_mtu {
            let size = b.payload as u64 + 28;
            st.fabric.seen += u64::from(b.count);
            st.fabric.largest = st.fabric.largest.max(size);
            if size > u64::from(m) {
                st.fabric.dropped += u64::from(b.count);
                st.fabric.dropped_segs += u64::from(b.count);
                st.fabric.largest_dropped = st.fabric.largest_dropped.max(size);
                return Ok(crate::icmp::EchoStats { sent: b.count, elapsed: b.spacing * b.count + b.linger, ..Default::default() });
            }
        }
        let extra = if st.delay_ms > 0.0 { st.extra_rtt_ms } else { 0.0 };
        let rtt = BASE_RTT_MS + st.delay_ms + extra;
        // A large don't-fragment echo meets a narrow link: "fragmentation needed" comes
        // back until a filter drops it.
        if b.dont_fragment && b.payload > 1400 {
            let unreachable = if st.filtered { Vec::new() } else { vec![(4, b.count as u16)] };
            if st.filtered {
                st.drops += u64::from(b.count);
            }
            return Ok(crate::icmp::EchoStats { sent: b.count, unreachable, ..Default::default() });
        }
        let received = (f64::from(b.count) * (1.0 - st.loss.min(1.0))).round() as u32;
        Ok(crate::icmp::EchoStats { sent: b.count, received, rtts_ms: vec![rtt; received as usize], unreachable: Vec::new(), elapsed: b.spacing * b.count + b.linger })
    }

    fn drop_count(&self, _ino: u32, _reasons: &[&str]) -> Option<u64> {
        Some(self.st().drops)
    }

    fn running_config(&self, host: &str, _pid: i32, service: &str) -> Result<Option<String>> {
        self.call("running_config", format!("{host} {service}"), Some(host), None)?;
        let st = self.st();
        Ok(st.configs.iter().find(|(h, s, _)| h == host && s == service).map(|(_, _, t)| t.clone()))
    }

    fn host_file(&self, host: &str, _pid: i32, path: &str) -> Result<Option<String>> {
        self.call("host_file", format!("{host} {path}"), Some(host), None)?;
        Ok(self.st().host_files.iter().find(|(h, p, _)| h == host && p == path).map(|(_, _, t)| t.clone()))
    }

    async fn fill_deleted(&self, host: &str, _pid: i32, path: &str, _wait: Duration) -> Result<crate::kernel::linux::disk::DiskFill> {
        self.call("fill_deleted", format!("{host} {path}"), Some(host), None)?;
        Ok(crate::kernel::linux::disk::DiskFill { holder_pid: 2, holder: "worker".into(), written_bytes: 60 << 20, disk_bytes: 64 << 20, free_bytes: 0 })
    }

    async fn try_connect(&self, netns: &str, to: SocketAddr, timeout: Duration) -> Result<(Connect, Duration)> {
        self.call("try_connect", format!("{netns} {to}"), None, None)?;
        let st = self.st();
        let c = if st.filtered { st.connect.clone().unwrap_or(Connect::TimedOut) } else { Connect::Connected };
        let took = if c == Connect::TimedOut { timeout } else { Duration::from_micros(100) };
        Ok((c, took))
    }

    async fn connect_until_timeout(&self, netns: &str, to: SocketAddr, attempts: u32, _timeout: Duration) -> Result<ConnRun> {
        self.call("connect_until_timeout", format!("{netns} {to} x{attempts}"), None, None)?;
        Ok(ConnRun::TimedOut { attempt: attempts })
    }

    async fn transfer_rate(&self, from: &str, to: &str, addr: IpAddr, port: u16, bytes: u64) -> Result<f64> {
        self.call("transfer_rate", format!("{from} -> {to} {addr} port {port} {bytes} bytes"), None, None)?;
        Ok(self.st().rate_bps.map_or(1e9, |r| r as f64))
    }

    async fn tcp_socket(&self, netns: &str, _v6: bool) -> Result<tokio::net::TcpSocket> {
        self.call("tcp_socket", netns.to_string(), None, None)?;
        Err(DrillError::Internal(anyhow!("the fake kernel makes no sockets")))
    }

    async fn ct_table_apply(&self, _netns: &str, host: &str, max: u32) -> Result<()> {
        self.call("ct_table_apply", format!("{host} {max}"), Some(host), None)?;
        let mut st = self.st();
        st.ct_max = Some(max);
        Ok(())
    }

    async fn ct_table_read(&self, netns: &str) -> Result<super::CtReading> {
        self.call("ct_table_read", netns.to_string(), None, None)?;
        let st = self.st();
        // A full table: as many entries as the fill sent, the next flow dropped.
        let rule = st.ct_max.map(|m| (u64::from(m), u64::from(st.ct_filled > m))).ok_or_else(|| "table inet conntrack is gone".to_string());
        Ok(super::CtReading { rule, count: Some(u64::from(st.ct_filled.min(st.ct_max.unwrap_or(u32::MAX)))), udp_timeout: Some(3600), kernel_max: Some(262_144), kernel_drops: Some(0) })
    }

    async fn udp_fill(&self, netns: &str, _to: SocketAddr, n: u32) -> Result<u32> {
        self.call("udp_fill", format!("{netns} {n}"), None, None)?;
        self.st().ct_filled += n;
        Ok(n)
    }

    fn host_log(&self, _drill_id: &str, host: &str, _prio: u8, msg: &str) {
        self.st().calls.push(format!("host_log {host} {msg}"));
    }

    async fn udp_socket(&self, netns: &str) -> Result<tokio::net::UdpSocket> {
        self.call("udp_socket", netns.to_string(), None, None)?;
        Err(DrillError::Internal(anyhow!("the fake kernel makes no sockets")))
    }

    async fn snmp(&self, netns: &str) -> Result<super::Snmp> {
        self.call("snmp", netns.to_string(), None, None).map(|()| super::Snmp::default())
    }

    async fn mib(&self, netns: &str) -> Result<std::collections::BTreeMap<String, u64>> {
        self.call("mib", netns.to_string(), None, None).map(|()| std::collections::BTreeMap::new())
    }

    async fn tcp_sockets(&self, netns: &str) -> Result<Vec<(u32, u16)>> {
        self.call("tcp_sockets", netns.to_string(), None, None).map(|()| Vec::new())
    }
}
