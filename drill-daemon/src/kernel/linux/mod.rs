//! The real kernel: [`LinuxKernel`] implements [`Kernel`] with the modules beside it
//! (`netns` namespaces and their worker threads, `topology` links through rtnetlink,
//! `faults` nft/tc/sysctl/mtu/route and the measurement primitives, `tcfault` the
//! eBPF classifier, `wire` the userspace delay wire). One instance serves every drill
//! of the daemon; what it holds (workers, wires, eBPF faults) is keyed by namespace
//! names, which are unique per drill.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use drill_core::plan::Plan;
use drill_core::scenario::{Cidr, TcpState};
use drill_ebpf::{PathMtuCounters, TcCounters, TcRule};

use super::{ConnRun, Connect, HostNft, Kernel, Splice};
use crate::error::{DrillError, Result};
use crate::host::{self, HostSpec, Spawner};
use crate::probes::Probes;

pub mod conntrack;
pub mod disk;
pub mod faults;
pub mod netns;
pub mod nft;
pub mod pathmtu;
pub mod tc;
pub mod tcfault;
pub mod topology;
pub mod tunnel;
pub mod wire;

use netns::NetnsWorker;
use tcfault::TcFault;

/// How long a host's init may take to be reaped after SIGKILL: its PID namespace's
/// processes all exit first (a host with many open sockets on a loaded machine took
/// over 3 s once).
const HOST_KILL_TIMEOUT: Duration = Duration::from_secs(10);

pub struct LinuxKernel {
    probes: Arc<Probes>,
    spawner: Spawner,
    root_nl: rtnetlink::Handle,
    /// Every namespace a drill created, by netns name.
    ns: Mutex<BTreeMap<String, topology::Ns>>,
    /// Open delay wires, by their namespace.
    wires: Mutex<BTreeMap<String, wire::Wire>>,
    /// Attached eBPF faults: (host netns, fault).
    tc_faults: Mutex<Vec<(String, TcFault)>>,
    /// Switches' path MTU classifiers, by the switch's namespace.
    fabrics: Mutex<BTreeMap<String, pathmtu::Fabric>>,
    /// Ready pipes of spawned host inits, until they are waited for.
    ready: Mutex<HashMap<i32, OwnedFd>>,
    /// The machine's cgroup layout (read once, at the first host).
    cgroups: std::sync::OnceLock<std::result::Result<Box<dyn host::cgroup::Cgroups>, String>>,
    /// Each host init's cgroup, removed once the init is reaped.
    host_cgroups: Mutex<HashMap<i32, host::cgroup::HostCgroup>>,
    /// Where the daemon's lxcfs serves, given to every host (host/procview.rs).
    proc_view: Option<std::path::PathBuf>,
    /// The hosts' kernel logs and where they are served (host/kmsg.rs).
    kmsg: Option<(std::path::PathBuf, Arc<host::kmsg::Logs>)>,
    /// Each host init's log in `kmsg`, closed once the init is reaped.
    host_logs: Mutex<HashMap<i32, String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these maps leaves it usable (plain data).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LinuxKernel {
    pub fn new(probes: Arc<Probes>, spawner: Spawner, root_nl: rtnetlink::Handle) -> LinuxKernel {
        LinuxKernel {
            probes,
            spawner,
            root_nl,
            ns: Mutex::default(),
            wires: Mutex::default(),
            tc_faults: Mutex::default(),
            fabrics: Mutex::default(),
            ready: Mutex::default(),
            cgroups: std::sync::OnceLock::new(),
            host_cgroups: Mutex::default(),
            proc_view: None,
            kmsg: None,
            host_logs: Mutex::default(),
        }
    }

    /// Hosts bind the /proc files of the lxcfs serving at `dir` (host/procview.rs).
    pub fn with_proc_view(mut self, dir: Option<std::path::PathBuf>) -> LinuxKernel {
        self.proc_view = dir;
        self
    }

    /// Hosts bind their kernel log, served at `dir`, onto their /dev/kmsg (host/kmsg.rs).
    pub fn with_kmsg(mut self, kmsg: Option<(std::path::PathBuf, Arc<host::kmsg::Logs>)>) -> LinuxKernel {
        self.kmsg = kmsg;
        self
    }

    /// The worker inside `netns` (created by [`Kernel::create_netns`]).
    pub fn worker(&self, netns: &str) -> Result<Arc<NetnsWorker>> {
        lock(&self.ns).get(netns).map(|n| n.worker.clone()).ok_or_else(|| DrillError::Internal(anyhow!("no namespace {netns} is open in this daemon")))
    }

    fn netlink(&self, netns: &str) -> Result<rtnetlink::Handle> {
        lock(&self.ns).get(netns).map(|n| n.nl.clone()).ok_or_else(|| DrillError::Internal(anyhow!("no namespace {netns} is open in this daemon")))
    }

    fn with_tc<T>(&self, netns: &str, iface: &str, f: impl FnOnce(&mut TcFault) -> anyhow::Result<T>) -> Result<T> {
        let mut tfs = lock(&self.tc_faults);
        let (_, tf) = tfs.iter_mut().find(|(n, t)| n == netns && t.iface == iface).ok_or_else(|| DrillError::Internal(anyhow!("no eBPF fault on {iface} in {netns}")))?;
        let host = tf.host.clone();
        f(tf).map_err(|e| DrillError::kernel("the eBPF fault's maps", Some(&host), Some(iface), e))
    }
}

fn k<T>(op: &str, host: &str, iface: Option<&str>, r: anyhow::Result<T>) -> Result<T> {
    r.map_err(|e| DrillError::kernel(op, Some(host), iface, e))
}

impl LinuxKernel {
    fn close_log(&self, log: &str) {
        if let Some((_, logs)) = &self.kmsg {
            logs.remove_host(log);
        }
    }

    /// Creates host `spec`'s cgroup and records it in the host's state directory (in
    /// the drill's journal directory; recovery also finds it by the drill id).
    fn create_cgroup(&self, spec: &HostSpec) -> anyhow::Result<host::cgroup::HostCgroup> {
        let cgs = self.cgroups.get_or_init(|| host::cgroup::detect().map_err(|e| format!("{e:#}"))).as_ref().map_err(|e| anyhow!("{e}"))?;
        let name = host::cgroup::name(&spec.drill_id, &spec.name);
        let cg = match cgs.create(&name, &spec.isolation.limits) {
            Ok(cg) => cg,
            Err(e) => {
                // Leave no half-made cgroup behind.
                let half = host::cgroup::HostCgroup { name: name.clone(), dirs: cgs.find(&name).into_iter().filter(|d| d.file_name().is_some_and(|n| n.to_string_lossy() == name)).collect() };
                let errs = half.remove();
                return Err(if errs.is_empty() { e } else { e.context(errs.join("; ")) });
            }
        };
        host::cgroup::save_record(&spec.state_dir, &cg)?;
        Ok(cg)
    }
}

impl Kernel for LinuxKernel {
    fn require_probe(&self, probe: &str) -> Result<()> {
        self.probes.require(probe).map_err(|e| DrillError::ProbeMissing { probe: probe.to_string(), why: format!("{e:#}") })
    }

    fn hold_probe(&self, owner: &str, program: &str) -> Result<()> {
        self.probes.hold(owner, program).map_err(|e| DrillError::ProbeMissing { probe: drill_ebpf::describes(program).to_string(), why: format!("{e:#}") })
    }

    fn release_probe(&self, owner: &str, program: &str) -> Result<()> {
        self.probes.release(owner, program).map_err(DrillError::Internal)
    }

    fn drop_reason_known(&self, reason: &str) -> Result<bool> {
        let ev = self.probes.events().map_err(|e| DrillError::ProbeMissing { probe: "event probes".into(), why: format!("{e:#}") })?;
        Ok(ev.reason_number(reason).is_some())
    }

    fn watch(&self, ino: u32, states: &[TcpState]) -> Result<()> {
        self.probes.watch(ino, states).map_err(|e| DrillError::Internal(e.context(format!("attaching the probes to namespace {ino}"))))
    }

    fn unwatch(&self, ino: u32) -> Result<()> {
        self.probes.unwatch(ino).map_err(DrillError::Internal)
    }

    fn probes(&self) -> Result<&Arc<Probes>> {
        Ok(&self.probes)
    }

    async fn create_netns(&self, name: &str) -> Result<u32> {
        let (ino, n) = topology::Ns::create(name).await.map_err(|e| DrillError::kernel(format!("creating network namespace {name}"), None, None, e))?;
        lock(&self.ns).insert(name.to_string(), n);
        Ok(ino)
    }

    fn delete_netns(&self, name: &str) -> Result<()> {
        // The worker's thread ends with its channel.
        lock(&self.ns).remove(name);
        netns::delete(name).map_err(|e| DrillError::kernel(format!("deleting network namespace {name}"), None, None, e))
    }

    fn backends(&self) -> drill_core::plan::Backends {
        tc::backends()
    }

    async fn apply_topology(&self, plan: &Plan, splices: &[Splice]) -> Result<()> {
        // topology::apply_spliced names namespaces by host or switch (wires by netns).
        let by_name: BTreeMap<String, topology::Ns> = {
            let ns = lock(&self.ns);
            let named = plan.hosts.iter().map(|h| (&h.name, &h.netns)).chain(plan.switches.iter().map(|s| (&s.name, &s.netns))).map(|(n, netns)| (n.clone(), netns.clone()));
            let hidden = splices.iter().map(|s| s.netns.clone()).chain(plan.underlays());
            named.chain(hidden.map(|n| (n.clone(), n))).filter_map(|(n, netns)| Some((n, ns.get(&netns)?.clone()))).collect()
        };
        topology::apply_spliced(plan, &self.root_nl, &by_name, splices).await.map_err(|e| DrillError::kernel("building the topology", None, None, e))
    }

    async fn open_wire(&self, wire: &str, host: &str, iface: &str) -> Result<()> {
        let w = self.worker(wire)?;
        let opened = k("opening the delay wire", host, Some(iface), wire::Wire::open(&w, wire).await)?;
        lock(&self.wires).insert(wire.to_string(), opened);
        Ok(())
    }

    fn set_wire(&self, wire: &str, delay: Duration, jitter: Duration, loss: f64) -> Result<()> {
        let wires = lock(&self.wires);
        let w = wires.get(wire).ok_or_else(|| DrillError::Internal(anyhow!("no delay wire {wire} is open")))?;
        w.set(delay, jitter, loss);
        Ok(())
    }

    fn close_wire(&self, wire: &str) -> Result<()> {
        // Dropping the wire stops and joins its threads.
        let w = lock(&self.wires).remove(wire);
        drop(w);
        Ok(())
    }

    fn spawn_host(&self, mut spec: HostSpec, netns: &str, console: &Path) -> Result<i32> {
        let host = spec.name.clone();
        spec.proc_view = self.proc_view.clone();
        let cg = k("creating the host's cgroup", &host, None, self.create_cgroup(&spec))?;
        let log = host::kmsg::file_name(&spec.drill_id, &spec.name);
        if let Some((dir, logs)) = &self.kmsg {
            logs.add_host(&log, &cg.name);
            spec.kmsg = Some(dir.join(&log));
        }
        match self.spawner.spawn(spec, netns::netns_path(netns), console.to_path_buf(), cg.procs_files()) {
            Ok((pid, ready)) => {
                lock(&self.ready).insert(pid, ready);
                lock(&self.host_cgroups).insert(pid, cg);
                lock(&self.host_logs).insert(pid, log);
                Ok(pid)
            }
            Err(e) => {
                self.close_log(&log);
                let errs = cg.remove();
                let e = if errs.is_empty() { e } else { e.context(errs.join("; ")) };
                k("starting the host's init", &host, None, Err(e))
            }
        }
    }

    async fn wait_host_ready(&self, host: &str, pid: i32, console: &Path, timeout: Duration) -> Result<()> {
        let ready = lock(&self.ready).remove(&pid).ok_or_else(|| DrillError::Internal(anyhow!("host {host}: no init {pid} to wait for")))?;
        k("waiting for the host's init", host, None, host::wait_ready(host, ready, console, timeout).await)
    }

    async fn listening(&self, netns: &str, port: u16) -> Result<bool> {
        let w = self.worker(netns)?;
        w.run(move || faults::listening(port)).await.map_err(DrillError::Internal)
    }

    fn host_pidns(&self, host: &str, pid: i32) -> Result<u32> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/proc/{pid}/ns/pid"))
            .map(|m| m.ino() as u32)
            .map_err(|e| DrillError::kernel("reading the host's PID namespace", Some(host), None, anyhow::anyhow!("/proc/{pid}/ns/pid: {e}")))
    }

    fn watch_pids(&self, ino: u32) -> Result<()> {
        match self.probes.commands() {
            Ok(c) => c.watch(ino).map_err(|e| DrillError::kernel(format!("capturing the commands of PID namespace {ino}"), None, None, e)),
            // A kernel without the capture still runs drills; their timelines hold no
            // commands (GET /v1/info says why the probe did not load).
            Err(e) => {
                tracing::warn!("no command capture for PID namespace {ino}: {e:#}");
                Ok(())
            }
        }
    }

    fn unwatch_pids(&self, ino: u32) -> Result<()> {
        match &self.probes.commands {
            Some(c) => c.unwatch(ino).map_err(DrillError::Internal),
            None => Ok(()),
        }
    }

    fn commands(&self, ino: u32) -> Vec<crate::probes::Captured> {
        self.probes.commands.as_ref().map(|c| c.commands(ino)).unwrap_or_default()
    }

    fn kill_host(&self, host: &str, pid: i32) -> Result<()> {
        lock(&self.ready).remove(&pid);
        // First the log: its waiting readers (`dmesg -w`) get end of file, or the kernel
        // would hold them, and the host's PID namespace with them, in their FUSE read.
        if let Some(log) = lock(&self.host_logs).remove(&pid) {
            self.close_log(&log);
        }
        let killed = host::kill_and_reap(pid, HOST_KILL_TIMEOUT);
        // The cgroup goes only once its processes are gone (a reaped init took its
        // whole PID namespace with it); an init that would not die keeps it.
        let cg_errors = match (&killed, lock(&self.host_cgroups).remove(&pid)) {
            (Ok(()), Some(cg)) => cg.remove(),
            (Err(_), Some(cg)) => {
                let errs = vec![format!("cgroup {} kept: its init is still running", cg.name)];
                lock(&self.host_cgroups).insert(pid, cg);
                errs
            }
            _ => Vec::new(),
        };
        let r = killed.and_then(|()| if cg_errors.is_empty() { Ok(()) } else { Err(anyhow!(cg_errors.join("; "))) });
        k("stopping the host's init", host, None, r)
    }

    async fn set_sysctl(&self, netns: &str, host: &str, key: &str, value: &str) -> Result<()> {
        let w = self.worker(netns)?;
        k(&format!("setting sysctl {key}"), host, None, faults::set_sysctl(&w, host, key, value).await)
    }

    async fn set_mtu(&self, netns: &str, host: &str, iface: &str, mtu: u32) -> Result<()> {
        let nl = self.netlink(netns)?;
        k(&format!("setting mtu {mtu}"), host, Some(iface), faults::set_mtu(&nl, host, iface, mtu).await)
    }

    async fn remove_route(&self, netns: &str, host: &str, to: Option<Cidr>) -> Result<()> {
        let nl = self.netlink(netns)?;
        k("removing a route", host, None, faults::remove_route(&nl, host, to).await)
    }

    async fn set_rate(&self, netns: &str, host: &str, iface: &str, rate_bps: u64, port: Option<u16>) -> Result<()> {
        let w = self.worker(netns)?;
        let r = match port {
            None => tc::set_rate(&w, host, iface, rate_bps).await,
            Some(p) => tc::set_port_rate(&w, host, iface, p, rate_bps).await,
        };
        k("shaping egress (tc)", host, Some(iface), r)
    }

    async fn set_netem(&self, netns: &str, host: &str, iface: &str, delay_ms: f64, jitter_ms: f64, loss: f64) -> Result<()> {
        let w = self.worker(netns)?;
        k("setting netem", host, Some(iface), tc::set_netem(&w, host, iface, delay_ms, jitter_ms, loss).await)
    }

    async fn apply_nft(&self, netns: &str, plan: &Plan, host: &str, nft: &HostNft) -> Result<()> {
        let w = self.worker(netns)?;
        k("applying nftables", host, None, nft::apply_nft(&w, plan, host, nft).await)
    }

    async fn ct_table_apply(&self, netns: &str, host: &str, max: u32) -> Result<()> {
        let w = self.worker(netns)?;
        k("sizing the conntrack table", host, None, conntrack::apply(&w, host, max).await)
    }

    async fn ct_table_read(&self, netns: &str) -> Result<super::CtReading> {
        conntrack::read(&*self.worker(netns)?).await.map_err(DrillError::Internal)
    }

    async fn udp_fill(&self, netns: &str, to: SocketAddr, n: u32) -> Result<u32> {
        conntrack::fill(&*self.worker(netns)?, to, n).await.map_err(DrillError::Internal)
    }

    fn host_log(&self, drill_id: &str, host: &str, prio: u8, msg: &str) {
        if let Some((_, logs)) = &self.kmsg {
            logs.append(&host::kmsg::file_name(drill_id, host), prio, msg.as_bytes(), None);
        }
    }

    async fn revert_nft(&self, netns: &str, host: &str) -> Result<()> {
        let w = self.worker(netns)?;
        k("removing nftables", host, None, nft::revert_nft(&w, host).await)
    }

    async fn attach_tc_fault(&self, netns: &str, host: &str, iface: &str, egress: bool, rule: TcRule) -> Result<()> {
        let w = self.worker(netns)?;
        let tf = k("attaching the eBPF fault", host, Some(iface), TcFault::attach(&w, host, iface, egress, rule).await)?;
        lock(&self.tc_faults).push((netns.to_string(), tf));
        Ok(())
    }

    fn retune_tc_fault(&self, netns: &str, iface: &str, loss: f64) -> Result<TcCounters> {
        self.with_tc(netns, iface, |tf| {
            let mut r = tf.get_rule()?;
            r.drop_ppm = (loss.clamp(0.0, 1.0) * 1e6).round() as u32;
            r.enabled = u32::from(loss > 0.0);
            tf.set_rule(r)?;
            tf.counters()
        })
    }

    fn tc_fault_counters(&self, netns: &str, iface: &str) -> Result<TcCounters> {
        self.with_tc(netns, iface, |tf| tf.counters())
    }

    fn forget_tc_fault(&self, netns: &str, iface: &str) -> Result<()> {
        let mut tfs = lock(&self.tc_faults);
        if let Some(i) = tfs.iter().position(|(n, t)| n == netns && t.iface == iface) {
            tfs.remove(i).1.forget();
        }
        Ok(())
    }

    async fn set_path_mtu(&self, netns: &str, switch: &str, ports: &[String], mtu: u32) -> Result<()> {
        let w = self.worker(netns)?;
        let f = pathmtu::Fabric::attach(&w, switch, ports, mtu).await.map_err(|e| DrillError::kernel(format!("switch {switch}: setting the path MTU"), None, None, e))?;
        if let Some(old) = lock(&self.fabrics).insert(netns.to_string(), f) {
            old.forget();
        }
        Ok(())
    }

    fn fabric_counters(&self, netns: &str) -> Result<PathMtuCounters> {
        let fabrics = lock(&self.fabrics);
        let f = fabrics.get(netns).ok_or_else(|| DrillError::Internal(anyhow!("no path MTU classifier in {netns}")))?;
        f.counters().map_err(|e| DrillError::kernel(format!("switch {}: reading the fabric's counters", f.switch), None, None, e))
    }

    fn forget_path_mtu(&self, netns: &str) -> Result<()> {
        if let Some(f) = lock(&self.fabrics).remove(netns) {
            f.forget();
        }
        Ok(())
    }

    async fn echo_burst(&self, netns: &str, to: std::net::Ipv4Addr, burst: crate::icmp::Burst) -> Result<crate::icmp::EchoStats> {
        let w = self.worker(netns)?;
        let r = w.run(move || crate::icmp::burst(to, burst)).await.map_err(DrillError::Internal)?;
        r.map_err(|e| DrillError::kernel(format!("echo requests to {to}"), None, None, anyhow!(e).context(format!("from {netns}"))))
    }

    fn drop_count(&self, ino: u32, reasons: &[&str]) -> Option<u64> {
        let ev = self.probes.events().ok()?;
        let numbers: Vec<u32> = reasons.iter().filter_map(|r| ev.reason_number(r)).collect();
        Some(ev.snapshot(ino).ok()?.iter().filter(|(k, _)| k.kind == drill_ebpf::kinds::DROP && numbers.contains(&k.reason)).map(|(_, v)| v).sum())
    }

    fn running_config(&self, host: &str, pid: i32, service: &str) -> Result<Option<String>> {
        let path = format!("/proc/{pid}/root{}", drill_core::workload::effective_config_path(service));
        match std::fs::read_to_string(&path) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(DrillError::kernel(format!("reading the config {service} runs with ({path})"), Some(host), None, anyhow::Error::from(e))),
        }
    }

    fn host_file(&self, host: &str, pid: i32, path: &str) -> Result<Option<String>> {
        let full = format!("/proc/{pid}/root{path}");
        match std::fs::read_to_string(&full) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(DrillError::kernel(format!("reading {path} in the host ({full})"), Some(host), None, anyhow::Error::from(e))),
        }
    }

    async fn fill_deleted(&self, host: &str, pid: i32, path: &str, wait: Duration) -> Result<disk::DiskFill> {
        disk::fill_deleted(pid, path, wait).await.map_err(|e| DrillError::kernel(format!("filling the disk with {path}"), Some(host), None, e))
    }

    async fn try_connect(&self, netns: &str, to: SocketAddr, timeout: Duration) -> Result<(Connect, Duration)> {
        let w = self.worker(netns)?;
        faults::try_connect(&w, to, timeout).await.map_err(|e| DrillError::kernel(format!("connecting to {to}"), None, None, e))
    }

    async fn connect_until_timeout(&self, netns: &str, to: SocketAddr, attempts: u32, timeout: Duration) -> Result<ConnRun> {
        let w = self.worker(netns)?;
        let mut held = Vec::new();
        for attempt in 1..=attempts {
            let sock = w.tcp_socket(to.is_ipv6()).await.map_err(DrillError::Internal)?;
            match tokio::time::timeout(timeout, sock.connect(to)).await {
                Ok(Ok(s)) => held.push(s),
                Ok(Err(e)) => return Ok(ConnRun::Failed { attempt, error: e.to_string() }),
                Err(_) => return Ok(ConnRun::TimedOut { attempt }),
            }
        }
        Ok(ConnRun::AllConnected)
    }

    async fn transfer_rate(&self, from: &str, to: &str, addr: IpAddr, port: u16, bytes: u64) -> Result<f64> {
        let (fw, tw) = (self.worker(from)?, self.worker(to)?);
        faults::measure_rate_to_port(&fw, &tw, addr, port, bytes).await.map_err(|e| DrillError::kernel(format!("a transfer to {addr}"), None, None, e))
    }

    async fn tcp_socket(&self, netns: &str, v6: bool) -> Result<tokio::net::TcpSocket> {
        self.worker(netns)?.tcp_socket(v6).await.map_err(DrillError::Internal)
    }

    async fn udp_socket(&self, netns: &str) -> Result<tokio::net::UdpSocket> {
        self.worker(netns)?.udp_socket().await.map_err(DrillError::Internal)
    }

    async fn snmp(&self, netns: &str) -> Result<super::Snmp> {
        let w = self.worker(netns)?;
        let v = w
            .run(|| -> Option<super::Snmp> {
                let t = std::fs::read_to_string("/proc/thread-self/net/snmp").ok()?;
                let field = |proto: &str, name: &str| -> Option<u64> {
                    let mut rows = t.lines().filter(|l| l.starts_with(proto));
                    let (names, values) = (rows.next()?, rows.next()?);
                    let i = names.split_whitespace().position(|n| n == name)?;
                    values.split_whitespace().nth(i)?.parse().ok()
                };
                Some(super::Snmp { tcp_out_segs: field("Tcp:", "OutSegs")?, ip_packets: field("Ip:", "InReceives")? + field("Ip:", "OutRequests")? })
            })
            .await
            .map_err(DrillError::Internal)?;
        v.ok_or_else(|| DrillError::kernel("reading /proc/net/snmp", None, None, anyhow!("its Tcp/Ip counters are missing or unreadable in {netns}")))
    }

    async fn mib(&self, netns: &str) -> Result<std::collections::BTreeMap<String, u64>> {
        let w = self.worker(netns)?;
        w.run(|| -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
            let mut m = std::collections::BTreeMap::new();
            for f in ["snmp", "netstat"] {
                let t = std::fs::read_to_string(format!("/proc/thread-self/net/{f}")).with_context(|| format!("reading /proc/net/{f}"))?;
                super::parse_mib_tables(&t, &mut m);
            }
            // snmp6 is missing when IPv6 is disabled: its counters are then absent.
            if let Ok(t) = std::fs::read_to_string("/proc/thread-self/net/snmp6") {
                super::parse_snmp6(&t, &mut m);
            }
            Ok(m)
        })
        .await
        .and_then(|r| r)
        .map_err(|e| DrillError::kernel("reading the MIB counters", None, None, e.context(format!("in {netns}"))))
    }

    async fn tcp_sockets(&self, netns: &str) -> Result<Vec<(u32, u16)>> {
        let w = self.worker(netns)?;
        w.run(|| -> anyhow::Result<Vec<(u32, u16)>> {
            let mut v = super::parse_proc_net_tcp(&std::fs::read_to_string("/proc/thread-self/net/tcp").context("reading /proc/net/tcp")?);
            // tcp6 is missing when IPv6 is disabled.
            if let Ok(t) = std::fs::read_to_string("/proc/thread-self/net/tcp6") {
                v.extend(super::parse_proc_net_tcp(&t));
            }
            Ok(v)
        })
        .await
        .and_then(|r| r)
        .map_err(|e| DrillError::kernel("reading the socket table", None, None, e.context(format!("in {netns}"))))
    }
}
