//! One running drill: its hosts, services and probes, and what the learner can do
//! with it (status, exec, submit, solve, stop).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use drill_core::api::{DrillCounters, DrillInfo, ExecInfo, ExecResponse, HostCounters, HostInfo, RequestSample, ServiceInfo};
use drill_core::plan::{Plan, PlanProbe};
use drill_core::scenario::{Check, Counted, Fault, NftAction, NftHook, NftRule, NftSource, Scenario, TcpState};
use drill_core::verdict::{self, HttpSample, Verdict};
use drill_core::workload::Workload;
use drill_ebpf::{EventKey, kinds};
use tracing::{info, warn};

use crate::faults::{self, DelayBackend};
use crate::host::{self, HostSpec, ServiceSpec, Spawner};
use crate::journal::{self, Journal};
use crate::netns::{self, NetnsWorker};
use crate::probes::{self, Probes};
use crate::tcfault::{self, TcFault};
use crate::topology;
use crate::wire;
use crate::workload::http;

pub struct RunningHost {
    pub name: String,
    pub netns: String,
    pub netns_ino: u32,
    pub pid: Option<i32>,
    pub worker: Arc<NetnsWorker>,
}

pub struct Drill {
    pub id: String,
    pub scenario: Scenario,
    pub plan: Plan,
    pub started: SystemTime,
    pub started_at: Instant,
    pub dir: PathBuf,
    pub hosts: Vec<RunningHost>,
    hints_given: AtomicUsize,
    journal: Journal,
    probes: Arc<Probes>,
    /// Delay wires spliced into links: (host, interface, wire).
    wires: Mutex<Vec<(String, String, wire::Wire)>>,
    /// eBPF faults attached to host interfaces.
    tc_faults: Mutex<Vec<TcFault>>,
    /// What each fault is and how it was made and measured (revealed with the solution).
    fault_notes: Mutex<Vec<String>>,
    /// When the scenario speaks TLS: a client config trusting the drill's CA (the CA
    /// itself only lives while the hosts' certificates are made).
    tls_client: Option<Arc<rustls::ClientConfig>>,
}

/// What starting a drill needs from the daemon.
pub struct Env<'a> {
    pub state: &'a Path,
    pub exe: &'a Path,
    pub spawner: &'a Spawner,
    pub root_nl: &'a rtnetlink::Handle,
    pub probes: &'a Arc<Probes>,
}

impl Drill {
    /// Builds the drill of `plan`. On any failure everything created so far is removed
    /// and the error says which step and which host failed.
    pub async fn start(env: &Env<'_>, scenario: Scenario, plan: Plan) -> Result<Drill> {
        // Refuse early when a probe the checks need is missing, naming it and why.
        for c in &scenario.checks {
            required_probe(c).map_or(Ok(()), |p| env.probes.require(p)).with_context(|| format!("check `{}` needs it", c.name()))?;
            if let Check::Count { counted: Counted::Drops { reason: Some(r) }, .. } = c {
                let ev = env.probes.events()?;
                if ev.reason_number(r).is_none() {
                    bail!("check `{}`: this kernel has no drop reason `{r}` (see `enum skb_drop_reason`; e.g. NETFILTER_DROP, NO_SOCKET, TCP_CSUM)", c.name());
                }
            }
        }
        let dir = journal::drill_dir(env.state, &plan.drill_id);
        let mut d = Drill {
            id: plan.drill_id.clone(),
            scenario,
            plan,
            started: SystemTime::now(),
            started_at: Instant::now(),
            dir,
            hosts: Vec::new(),
            hints_given: AtomicUsize::new(0),
            journal: Journal::default(),
            probes: env.probes.clone(),
            wires: Mutex::new(Vec::new()),
            tc_faults: Mutex::new(Vec::new()),
            fault_notes: Mutex::new(Vec::new()),
            tls_client: None,
        };
        d.journal = Journal { drill_id: d.id.clone(), scenario: d.scenario.id.clone(), ..Default::default() };
        match d.build(env).await {
            Ok(()) => {
                info!(drill = %d.id, scenario = %d.scenario.id, ms = d.started_at.elapsed().as_millis() as u64, "drill ready");
                Ok(d)
            }
            Err(e) => {
                let errs = d.teardown();
                for x in &errs {
                    warn!(drill = %d.id, "cleanup after failed start: {x}");
                }
                Err(e)
            }
        }
    }

    async fn build(&mut self, env: &Env<'_>) -> Result<()> {
        self.journal.save(env.state)?;
        // Network namespaces (hosts, then switches), each with a worker thread inside it
        // and a netlink handle opened there.
        let mut ns: BTreeMap<String, topology::Ns> = BTreeMap::new();
        let names: Vec<(String, String, bool)> =
            self.plan.hosts.iter().map(|h| (h.name.clone(), h.netns.clone(), true)).chain(self.plan.switches.iter().map(|s| (s.name.clone(), s.netns.clone(), false))).collect();
        for (name, netns_name, is_host) in names {
            self.journal.netns.push(netns_name.clone());
            self.journal.save(env.state)?;
            let what = if is_host { "host" } else { "switch" };
            let (ino, n) = topology::Ns::create(&netns_name).await.with_context(|| format!("{what} {name}: creating network namespace {netns_name}"))?;
            if is_host {
                self.hosts.push(RunningHost { name: name.clone(), netns: netns_name, netns_ino: ino, pid: None, worker: n.worker.clone() });
            }
            ns.insert(name, n);
        }
        // Probes watch every host before any traffic flows (state timing where planned).
        for h in &self.hosts {
            let states: Vec<_> = self
                .plan
                .probes
                .iter()
                .filter_map(|p| match p {
                    PlanProbe::TcpStateDwell { host, states } if *host == h.name => Some(states.clone()),
                    _ => None,
                })
                .flatten()
                .collect();
            env.probes.watch(h.netns_ino, &states).with_context(|| format!("host {}: attaching the probes", h.name))?;
        }
        // Delay faults: netem when the kernel has it, else a delay wire spliced into
        // the link (a hidden namespace per delayed interface).
        let mut splices = Vec::new();
        let delays: Vec<(String, String)> =
            self.scenario.faults.iter().filter_map(|f| if let Fault::Delay { host, interface, .. } = f { Some((host.clone(), interface.clone())) } else { None }).collect();
        if let (Some(first), false) = (self.hosts.first(), delays.is_empty()) {
            let _ = first;
            if self.plan.backends.delay == DelayBackend::Wire {
                for (host, iface) in delays {
                    let name = drill_core::plan::wire_netns_name(&self.id, &host, &iface);
                    self.journal.netns.push(name.clone());
                    self.journal.save(env.state)?;
                    let (_, n) = topology::Ns::create(&name).await.with_context(|| format!("host {host}: creating the delay wire's namespace {name}"))?;
                    ns.insert(name.clone(), n);
                    splices.push(topology::Splice { host, iface, netns: name });
                }
            }
        }
        topology::apply_spliced(&self.plan, env.root_nl, &ns, &splices).await?;
        for sp in &splices {
            let wire = wire::Wire::open(&ns[&sp.netns].worker, &sp.netns).await.with_context(|| format!("host {}: the delay wire on {}", sp.host, sp.iface))?;
            self.wires.lock().expect("wires").push((sp.host.clone(), sp.iface.clone(), wire));
        }
        drop(ns);
        let ca = if self.scenario.uses_tls() {
            let ca = crate::tls::Ca::new(&self.id)?;
            self.tls_client = Some(crate::tls::client_config(&ca.pem())?);
            Some(ca)
        } else {
            None
        };
        // Host inits with their services.
        for i in 0..self.plan.hosts.len() {
            let ph = self.plan.hosts[i].clone();
            let hdir = self.dir.join("hosts").join(&ph.name);
            let spec = HostSpec {
                drill_id: self.id.clone(),
                name: ph.name.clone(),
                hostname: ph.hostname.clone(),
                state_dir: hdir.clone(),
                exe: env.exe.to_path_buf(),
                services: ph.services.iter().map(|s| ServiceSpec { name: s.name.clone(), kind: s.kind.clone(), config_path: s.config_path.clone(), log_path: s.log_path.clone() }).collect(),
            };
            prepare_host_dir(&spec, &ph.etc_hosts, &ph.services)?;
            if let Some(ca) = &ca {
                let ips: Vec<std::net::IpAddr> = ph.interfaces.iter().flat_map(|i| i.addresses.iter().map(|c| c.addr)).collect();
                ca.provision(&spec.etc_upper(), &ph.name, &ips).with_context(|| format!("host {}: certificates", ph.name))?;
            }
            let console = hdir.join("init.log");
            let (pid, ready) = env.spawner.spawn(spec, netns::netns_path(&ph.netns), console.clone())?;
            self.hosts[i].pid = Some(pid);
            self.journal.host_pids.push(pid);
            self.journal.save(env.state)?;
            host::wait_ready(&ph.name, ready, &console, Duration::from_secs(10)).await?;
        }
        self.wait_services_listening(Duration::from_secs(5)).await?;
        self.apply_faults().await
    }

    /// Applies the network faults, then measures each from a neighbour host: a fault
    /// that does not take stops the start (the learner would chase a ghost).
    async fn apply_faults(&self) -> Result<()> {
        for f in &self.scenario.faults {
            let note = match f {
                Fault::Sysctl { host, key, value } => {
                    faults::set_sysctl(&self.host(host)?.worker, host, key, value).await?;
                    "written and read back".to_string()
                }
                Fault::Mtu { host, interface, mtu } => {
                    faults::set_mtu(&self.host(host)?.worker.netlink().await?, host, interface, *mtu).await?;
                    "set through netlink and read back".to_string()
                }
                Fault::RouteRemove { host, to } => {
                    faults::remove_route(&self.host(host)?.worker.netlink().await?, host, *to).await?;
                    "removed through netlink; checked gone".to_string()
                }
                Fault::TcRate { host, interface, rate_bps, port: None } => {
                    faults::set_rate(&self.host(host)?.worker, host, interface, *rate_bps).await?;
                    self.measure_rate(host, interface, *rate_bps, None).await?
                }
                Fault::TcRate { host, interface, rate_bps, port: Some(p) } => {
                    faults::set_port_rate(&self.host(host)?.worker, host, interface, *p, *rate_bps).await?;
                    self.measure_rate(host, interface, *rate_bps, Some(*p)).await?
                }
                Fault::Delay { host, interface, delay_ms, jitter_ms, loss } => self.apply_delay(host, interface, *delay_ms, *jitter_ms, *loss).await?,
                Fault::EbpfDrop { host, interface, egress, proto, dport, from, loss } => {
                    let rule = tcfault::rule(&self.plan, proto.as_deref(), *dport, from.as_ref(), *loss).with_context(|| format!("host {host}: eBPF fault"))?;
                    let tf = TcFault::attach(&self.host(host)?.worker, host, interface, *egress, rule).await?;
                    self.tc_faults.lock().expect("tc faults").push(tf);
                    self.measure_ebpf(f).await?
                }
                Fault::ServiceConfig { .. } | Fault::Nft { .. } | Fault::Dnat { .. } => continue,
            };
            self.record(f.describe(), note);
        }
        for (host, nft) in faults::nft_rules(&self.plan, &self.scenario.faults) {
            faults::apply_nft(&self.host(&host)?.worker, &self.plan, &host, &nft).await?;
            // Port forwards first: a connection limit's probe connections would count
            // against theirs while they close.
            for d in &nft.dnats {
                let note = self.measure_dnat(&host, d).await?;
                self.record(format!("nftables on {host}: {} dport {} dnat to {}", d.proto, d.dport, d.to), note);
            }
            for r in &nft.rules {
                let note = self.measure_nft(&host, r).await?;
                self.record(Fault::Nft { host: host.clone(), rule: r.clone() }.describe(), note);
            }
        }
        Ok(())
    }

    /// The host at the other end of `host:iface` and its IPv4 address there (for a
    /// switch: the first other host on it).
    fn neighbour(&self, host: &str, iface: &str) -> Result<(&RunningHost, std::net::IpAddr)> {
        let pi = self.plan.hosts.iter().find(|h| h.name == host).and_then(|h| h.interfaces.iter().find(|i| i.name == iface)).ok_or_else(|| anyhow!("host {host} has no interface {iface}"))?;
        let mine = pi.addresses.iter().find(|c| c.addr.is_ipv4()).copied();
        for h in &self.plan.hosts {
            if h.name == host {
                continue;
            }
            for i in &h.interfaces {
                let linked = (pi.peer == h.name && i.peer == host) || (pi.peer == i.peer && self.plan.switches.iter().any(|s| s.name == pi.peer));
                if !linked {
                    continue;
                }
                if let Some(c) = i.addresses.iter().find(|c| c.addr.is_ipv4() && mine.is_none_or(|m| m.same_subnet(c))) {
                    return Ok((self.host(&h.name)?, c.addr));
                }
            }
        }
        bail!("host {host}: nobody with an IPv4 address is at the other end of {iface}")
    }

    /// Sets a delay (netem or the wire) and measures it by ping RTT from the host to its
    /// neighbour on that interface: the added RTT must be about the delay.
    async fn apply_delay(&self, host: &str, iface: &str, delay_ms: f64, jitter_ms: f64, loss: f64) -> Result<String> {
        let h = self.host(host)?;
        let (_, addr) = self.neighbour(host, iface)?;
        let count = 20;
        let netns = h.netns.clone();
        let base =
            tokio::task::spawn_blocking(move || faults::ping_rtt(&netns, addr, count, 0.01)).await??.ok_or_else(|| anyhow!("host {host}: no ping reply from {addr} before the delay was set"))?;
        let backend = {
            let wires = self.wires.lock().expect("wires");
            match wires.iter().find(|(wh, wi, _)| wh == host && wi == iface) {
                Some((_, _, w)) => {
                    w.set(Duration::from_secs_f64(delay_ms / 1e3), Duration::from_secs_f64(jitter_ms / 1e3), loss);
                    DelayBackend::Wire
                }
                None => DelayBackend::Netem,
            }
        };
        if backend == DelayBackend::Netem {
            faults::set_netem(&h.worker, host, iface, delay_ms, jitter_ms, loss).await?;
        }
        let mut note = format!("{} ", faults::describe_backend(backend));
        if delay_ms > 0.0 {
            let netns = h.netns.clone();
            let after = tokio::task::spawn_blocking(move || faults::ping_rtt(&netns, addr, count, 0.01)).await??;
            let Some(after) = after else { bail!("fault delay on host {host}/{iface} did not take as asked: every ping to {addr} was lost") };
            let added = after - base;
            // 20 pings: the mean of a +-jitter uniform spread wanders by ~0.13 x jitter.
            if (added - delay_ms).abs() > (delay_ms * 0.05).max(1.0) + 0.5 * jitter_ms {
                bail!(
                    "fault delay on host {host}/{iface} did not take as asked: ping RTT to {addr} went from {base:.2} to {after:.2} ms (+{added:.2} ms), asked +{delay_ms} ms ({})",
                    faults::describe_backend(backend)
                );
            }
            let _ = std::fmt::Write::write_fmt(&mut note, format_args!("measured +{added:.2} ms ping RTT to {addr} (from {base:.2} ms)"));
        }
        if loss > 0.0 {
            const PINGS: u32 = 500;
            let netns = h.netns.clone();
            let measured = tokio::task::spawn_blocking(move || faults::ping_loss(&netns, addr, PINGS)).await??;
            if !faults::loss_within(loss, measured, PINGS) {
                bail!("fault delay on host {host}/{iface} did not take as asked: {:.1}% of {PINGS} pings to {addr} were lost, not about {:.1}%", measured * 100.0, loss * 100.0);
            }
            let _ = std::fmt::Write::write_fmt(&mut note, format_args!("; {:.1}% of {PINGS} pings lost", measured * 100.0));
        }
        Ok(note)
    }

    /// Measures an eBPF drop from outside: random loss by pings, a full TCP drop by a
    /// connection that times out; the fault's own counters are logged too.
    async fn measure_ebpf(&self, f: &Fault) -> Result<String> {
        let Fault::EbpfDrop { host, interface, egress, proto, dport, from, loss } = f else { unreachable!("measure_ebpf takes eBPF faults") };
        let (nb, nb_addr) = self.neighbour(host, interface)?;
        let prober = match from {
            Some(NftSource::Host(x)) => self.host(x)?,
            _ => nb,
        };
        let target = self.plan.host_address(host, false).ok_or_else(|| anyhow!("host {host} has no IPv4 address"))?;
        let note = match (proto.as_deref(), dport) {
            (None | Some("icmp"), None) => {
                const PINGS: u32 = 500;
                // Ingress: the neighbour pings the host; egress: the host pings out.
                let (netns, to) = if *egress { (self.host(host)?.netns.clone(), nb_addr) } else { (prober.netns.clone(), target) };
                let measured = tokio::task::spawn_blocking(move || faults::ping_loss(&netns, to, PINGS)).await??;
                if !faults::loss_within(*loss, measured, PINGS) {
                    bail!("fault `{}` did not take as asked: {:.1}% of {PINGS} pings were lost, not about {:.1}%", f.describe(), measured * 100.0, loss * 100.0);
                }
                format!("{:.1}% of {PINGS} pings lost", measured * 100.0)
            }
            (Some("tcp"), Some(p)) if *loss >= 1.0 && !*egress => {
                let to = SocketAddr::new(target, *p);
                let (got, took) = faults::try_connect(&prober.worker, to, Duration::from_millis(700)).await?;
                if got != faults::Connect::TimedOut {
                    bail!("fault `{}` did not take: a TCP connection from {} to {to} {got} after {took:?} (expected: it times out)", f.describe(), prober.name);
                }
                format!("a TCP connection from {} to {to} timed out", prober.name)
            }
            _ => "attached (this match is not measured at start)".to_string(),
        };
        let c = self.tc_faults.lock().expect("tc faults").iter().find(|t| t.host == *host && t.iface == *interface).map(|t| t.counters()).transpose()?;
        let c = c.map(|c| format!("; its counters: {} packets seen, {} matched, {} dropped", c.seen, c.matched, c.dropped)).unwrap_or_default();
        Ok(format!("tc clsact {} bpf drill_tc_fault; {note}{c}", if *egress { "egress" } else { "ingress" }))
    }

    /// Retunes or pauses an eBPF fault live (`loss` 0 pauses it). `index` counts the
    /// drill's eBPF faults in scenario order.
    pub fn retune_ebpf(&self, index: usize, loss: f64) -> Result<drill_ebpf::TcCounters> {
        let mut tfs = self.tc_faults.lock().expect("tc faults");
        let n = tfs.len();
        let tf = tfs.get_mut(index).ok_or_else(|| anyhow!("drill {} has {n} eBPF fault(s), not #{index}", self.id))?;
        let mut r = tf.get_rule()?;
        r.drop_ppm = (loss.clamp(0.0, 1.0) * 1e6).round() as u32;
        r.enabled = u32::from(loss > 0.0);
        tf.set_rule(r)?;
        tf.counters()
    }

    /// Logs an applied fault with how it was made and measured, and keeps that for the reveal.
    fn record(&self, fault: String, note: String) {
        info!(drill = %self.id, %fault, %note, "fault applied");
        self.fault_notes.lock().expect("notes").push(format!("{fault}: {note}"));
    }

    /// What the engine broke and how each fault was made and measured.
    pub fn fault_notes(&self) -> Vec<String> {
        self.fault_notes.lock().expect("notes").clone()
    }

    /// Measures a shaped interface by a 1.5-second transfer to the host on its other end
    /// (behind a switch: the first other host on it).
    async fn measure_rate(&self, host: &str, iface: &str, rate_bps: u64, port: Option<u16>) -> Result<String> {
        // To the neighbour's address on this link, so the transfer crosses the shaped interface.
        let (peer, addr) = self.neighbour(host, iface)?;
        let bytes = (rate_bps as f64 / 8.0 * 1.5) as u64;
        let measured = match faults::measure_rate_from_port(&self.host(host)?.worker, &peer.worker, addr, port.unwrap_or(0), bytes).await {
            Ok(m) => m,
            Err(e) if port.is_some() => {
                return Ok(format!("not measured: port {} is busy on {host} ({e:#})", port.unwrap_or(0)));
            }
            Err(e) => return Err(e),
        };
        let ratio = measured / rate_bps as f64;
        if !(0.8..=1.15).contains(&ratio) {
            bail!("fault tc-rate on host {host}/{iface} did not take as asked: a transfer to {} ran at {:.0} kbit/s, asked {} kbit/s", peer.name, measured / 1000.0, rate_bps / 1000);
        }
        Ok(format!("a transfer to {}{} ran at {:.0} kbit/s", peer.name, port.map(|p| format!(" from port {p}")).unwrap_or_default(), measured / 1000.0))
    }

    /// The host a rule on `host` is measured from: the rule's `from` host when it names
    /// one; for an output rule the host itself; else the first host that is neither
    /// `host` nor the rule's destination.
    fn prober(&self, host: &str, rule: &NftRule) -> Result<&RunningHost> {
        match &rule.from {
            Some(NftSource::Host(f)) => self.host(f),
            _ if rule.hook == NftHook::Output => self.host(host),
            _ => self.hosts.iter().find(|x| x.name != host && rule.to.as_deref() != Some(x.name.as_str())).ok_or_else(|| anyhow!("no other host to measure the fault on {host} from")),
        }
    }

    /// Measures one nft rule from outside: random loss and policers by pings (ICMP
    /// rules), a drop or reject by one TCP connection to the filtered port, a
    /// connection limit by connections until one times out. The address probed is the
    /// host's own (input) or the rule's `to` host (forward, output). Returns how it was
    /// measured; what cannot be measured that way is said so.
    async fn measure_nft(&self, host: &str, r: &NftRule) -> Result<String> {
        let prober = self.prober(host, r)?;
        if r.frag_needed {
            return Ok("applied; it matches only when a packet exceeds a path MTU, so it is read back, not probed".into());
        }
        let target_host = match (r.hook, &r.to) {
            (NftHook::Input, _) => host,
            (_, Some(t)) => t.as_str(),
            (_, None) => {
                return Ok(format!("applied; not measured (a {} rule without `to` has no destination to probe)", r.hook.name()));
            }
        };
        let addr = self.plan.host_address(target_host, false).ok_or_else(|| anyhow!("host {target_host} has no IPv4 address to measure the fault against"))?;
        let icmp_like = r.proto.as_deref().is_none_or(|p| p == "icmp");
        const PINGS: u32 = 500;
        match r.action {
            NftAction::Loss { permille } => {
                if !icmp_like {
                    return Ok("applied; loss on a non-ICMP protocol is not measured at start".into());
                }
                let netns = prober.netns.clone();
                let measured = tokio::task::spawn_blocking(move || faults::ping_loss(&netns, addr, PINGS)).await??;
                let target = f64::from(permille) / 1000.0;
                if !faults::loss_within(target, measured, PINGS) {
                    bail!("fault `{}` on host {host} did not take as asked: {:.1}% of {PINGS} pings from {} were lost, not about {:.1}%", r.describe(), measured * 100.0, prober.name, target * 100.0);
                }
                Ok(format!("{:.1}% of {PINGS} pings from {} to {addr} lost", measured * 100.0, prober.name))
            }
            NftAction::Limit { per_second, burst } => {
                // 500 pings 2 ms apart take about a second: about rate + burst pass.
                if !icmp_like || per_second >= 400 {
                    return Ok("applied; not measured (a policer on another protocol, or above what 500 pings a second would show)".into());
                }
                let netns = prober.netns.clone();
                let t = Instant::now();
                let lost = tokio::task::spawn_blocking(move || faults::ping_loss(&netns, addr, PINGS)).await??;
                let secs = t.elapsed().as_secs_f64().max(1.0);
                let passed = (1.0 - lost) * f64::from(PINGS);
                let expected = f64::from(per_second) * secs + f64::from(burst);
                if passed > expected * 1.5 + 5.0 || passed < expected * 0.5 {
                    bail!("fault `{}` on host {host} did not take as asked: {passed:.0} of {PINGS} pings in {secs:.1} s passed, expected about {expected:.0}", r.describe());
                }
                Ok(format!("{passed:.0} of {PINGS} pings from {} passed in {secs:.1} s (expected about {expected:.0})", prober.name))
            }
            NftAction::ConnLimit { max } => {
                let port = r.dport.unwrap_or(0);
                let to = SocketAddr::new(addr, port);
                if max > 200 {
                    return Ok(format!("applied; not measured (more than 200 connections to {to})"));
                }
                // Connections beyond the limit time out; ours may share it with the
                // drill's own traffic, so one must time out within max + 1 attempts.
                let mut held = Vec::new();
                for i in 0..=max {
                    let sock = prober.worker.tcp_socket(false).await?;
                    match tokio::time::timeout(Duration::from_millis(700), sock.connect(to)).await {
                        Ok(Ok(s)) => held.push(s),
                        Ok(Err(e)) => bail!("fault `{}` on host {host}: connection {} from {} to {to} failed: {e} (nothing listens there?)", r.describe(), i + 1, prober.name),
                        Err(_) => {
                            return Ok(format!("connection {} of {} from {} to {to} timed out after {} were open", i + 1, max + 1, prober.name, held.len()));
                        }
                    }
                }
                bail!("fault `{}` on host {host} did not take: {} connections from {} to {to} all connected", r.describe(), max + 1, prober.name)
            }
            _ => {
                let Some(want) = faults::expected(r) else {
                    return Ok("applied; not measurable by a TCP connection".into());
                };
                let to = SocketAddr::new(addr, r.dport.unwrap_or(0));
                let (got, took) = faults::try_connect(&prober.worker, to, Duration::from_millis(700)).await?;
                if !want.met_by(&got) {
                    bail!("fault `{}` on host {host} did not take: a TCP connection from {} to {to} {got} after {took:?} (expected: it {want})", r.describe(), prober.name);
                }
                Ok(format!("a TCP connection from {} to {to} {got} after {} ms", prober.name, took.as_millis()))
            }
        }
    }

    /// Measures a port forward: a connection to the forwarded port must end as a
    /// connection straight to the target does (both connect, or both fail alike).
    async fn measure_dnat(&self, host: &str, d: &faults::DnatRule) -> Result<String> {
        let prober = self.hosts.iter().find(|x| x.name != host).ok_or_else(|| anyhow!("no other host to measure the fault on {host} from"))?;
        let addr = self.plan.host_address(host, false).ok_or_else(|| anyhow!("host {host} has no IPv4 address"))?;
        let via = SocketAddr::new(addr, d.dport);
        let (got_via, _) = faults::try_connect(&prober.worker, via, Duration::from_millis(700)).await?;
        let (got_direct, _) = faults::try_connect(&prober.worker, d.to, Duration::from_millis(700)).await?;
        if got_via != got_direct {
            bail!("fault nft-dnat on host {host} did not take: a connection from {} to {via} {got_via}, but one straight to {} {got_direct}", prober.name, d.to);
        }
        Ok(format!("a connection from {} to {via} {got_via}, as one straight to {} does", prober.name, d.to))
    }

    /// Waits until every httpd service listens on its own host. Reads the host's
    /// socket table instead of connecting, so readiness leaves no trace (no RST, no
    /// connection) in what the probes and the learner see.
    async fn wait_services_listening(&self, timeout: Duration) -> Result<()> {
        for ph in &self.plan.hosts {
            for s in &ph.services {
                let listen = match &s.workload {
                    Workload::Httpd(c) => &c.listen,
                    Workload::Proxy(c) => &c.listen,
                    Workload::Loadgen(_) => continue,
                };
                let listen: SocketAddr = listen.parse().with_context(|| format!("service {} on {}: listen = {listen:?}", s.name, ph.name))?;
                let h = self.host(&ph.name)?;
                let deadline = Instant::now() + timeout;
                let port = listen.port();
                while !h.worker.run(move || listening(port)).await? {
                    if Instant::now() > deadline {
                        let hdir = self.dir.join("hosts").join(&ph.name);
                        let log = host::tail(&hdir.join("log").join(format!("{}.log", s.name)), 5);
                        let init = host::tail(&hdir.join("init.log"), 5);
                        bail!("host {}: service {} is not listening on {listen} after {timeout:?}; its log ends with: [{log}]; the host init said: [{init}]", ph.name, s.name);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        Ok(())
    }

    pub fn host(&self, name: &str) -> Result<&RunningHost> {
        self.hosts.iter().find(|h| h.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
            anyhow!("drill {} has no host `{name}` (hosts: {})", self.id, names.join(", "))
        })
    }

    fn host_pid(&self, name: &str) -> Result<i32> {
        self.host(name)?.pid.ok_or_else(|| anyhow!("host {name} of drill {} has no running init", self.id))
    }

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
            });
            let Some(ph) = ph else { continue };
            if ph.services.is_empty() {
                continue;
            }
            let status = match h.pid {
                Some(pid) => tokio::task::spawn_blocking(move || host::request(&host::init_sock_from_outside(pid), &host::Request::Status, Duration::from_secs(3)))
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
        }
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
            .map_err(|_| anyhow!("host {host}: `{command}` did not finish within {timeout:?}"))?
            .with_context(|| format!("host {host}: running `{command}`"))?;
        Ok(ExecResponse { exit_code: out.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&out.stdout).into_owned(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() })
    }

    /// Runs the observation window and evaluates every check.
    pub async fn verify(&self) -> Result<Verdict> {
        let window = Duration::from_secs_f64(self.scenario.window_secs);
        let tcp = if self.plan.probes.is_empty() { None } else { Some(self.probes.tcpstate()?.clone()) };
        let lost0 = tcp.as_ref().map_or(0, |t| t.events_lost());
        let counting = self.scenario.checks.iter().any(|c| matches!(c, Check::Count { .. }));
        let events = if counting { Some(self.probes.events()?.clone()) } else { None };
        let snap = |ev: &Option<Arc<probes::EventProbe>>| -> Result<BTreeMap<String, BTreeMap<EventKey, u64>>> {
            let Some(e) = ev else { return Ok(BTreeMap::new()) };
            self.hosts.iter().map(|h| Ok((h.name.clone(), e.snapshot(h.netns_ino).with_context(|| format!("host {}: the probe counters", h.name))?))).collect()
        };
        let before = snap(&events)?;
        // Segments and packets: the denominators and positive controls of counting checks.
        let segs_before = if counting { self.snmp().await? } else { BTreeMap::new() };
        let t0 = probes::now_ns();
        let deadline = Instant::now() + window;
        // Synthetic clients, one task per http-slo check.
        let mut slo_tasks = Vec::new();
        for c in &self.scenario.checks {
            let Check::HttpSlo { from, target_host, port, path, timeout_ms, interval_ms, tls, client, .. } = c else {
                continue;
            };
            // As the named client service is configured now, or a plain client.
            let opts = match client {
                Some(svc) => self.client_config(from, svc)?,
                None => drill_core::workload::LoadgenConfig {
                    target: String::new(),
                    path: String::new(),
                    rate_per_sec: 1,
                    timeout_ms: *timeout_ms,
                    keepalive: false,
                    nodelay: true,
                    body_bytes: 0,
                    tls: *tls,
                },
            };
            let tls = if opts.tls { Some(self.tls_client.clone().ok_or_else(|| anyhow!("check `{}` speaks TLS but the drill has no CA", c.name()))?) } else { None };
            let addr = self.plan.host_address(target_host, false).ok_or_else(|| anyhow!("host {target_host} has no IPv4 address for the check"))?;
            let target = SocketAddr::new(addr, *port);
            let socket_source = self.host(from)?;
            let (interval, timeout) = (Duration::from_millis(*interval_ms), Duration::from_millis(*timeout_ms));
            let host_header = target_host.clone();
            let path = path.clone();
            slo_tasks.push(async move {
                let mut samples = Vec::new();
                if opts.keepalive {
                    // One connection, reused request after request (re-opened after a failure).
                    let mut conn: Option<Box<dyn http::Io>> = None;
                    while Instant::now() + timeout <= deadline {
                        let start = Instant::now();
                        let r = tokio::time::timeout(timeout, async {
                            let mut c = match conn.take() {
                                Some(c) => c,
                                None => {
                                    let sock = socket_source.worker.tcp_socket(target.is_ipv6()).await.map_err(|e| format!("{e:#}"))?;
                                    http::connect(sock, target, &host_header, tls.as_ref(), opts.nodelay).await?
                                }
                            };
                            let status = http::send(&mut *c, &host_header, &path, opts.body_bytes as usize).await?;
                            Ok::<_, String>((c, status))
                        })
                        .await;
                        let latency_ms = start.elapsed().as_secs_f64() * 1e3;
                        samples.push(match r {
                            Ok(Ok((c, status))) if (200..400).contains(&status) => {
                                conn = Some(c);
                                HttpSample { ok: true, latency_ms, error: None }
                            }
                            Ok(Ok((_, status))) => HttpSample { ok: false, latency_ms, error: Some(format!("HTTP status {status}")) },
                            Ok(Err(e)) => HttpSample { ok: false, latency_ms, error: Some(e) },
                            Err(_) => HttpSample { ok: false, latency_ms, error: Some(format!("timed out after {} ms", timeout.as_millis())) },
                        });
                        tokio::time::sleep_until((start + interval).into()).await;
                    }
                    return samples;
                }
                // A connection per request, sockets made inside `from` through its worker.
                let mut inflight = tokio::task::JoinSet::new();
                while Instant::now() + timeout <= deadline || inflight.is_empty() && Instant::now() < deadline {
                    match socket_source.worker.tcp_socket(target.is_ipv6()).await {
                        Ok(sock) => {
                            let (h, p, tls) = (host_header.clone(), path.clone(), tls.clone());
                            inflight.spawn(async move { http::get(sock, target, &h, &p, timeout, tls.as_ref()).await });
                        }
                        Err(e) => samples.push(HttpSample { ok: false, latency_ms: 0.0, error: Some(format!("{e:#}")) }),
                    }
                    tokio::time::sleep(interval).await;
                }
                while let Some(r) = inflight.join_next().await {
                    if let Ok(o) = r {
                        samples.push(HttpSample { ok: o.ok, latency_ms: o.latency.as_secs_f64() * 1e3, error: o.error });
                    }
                }
                samples
            });
        }
        let slo_results = futures::future::join_all(slo_tasks);
        let (slo_results, _) = tokio::join!(slo_results, tokio::time::sleep_until(deadline.into()));
        let t1 = probes::now_ns();
        let after = snap(&events)?;
        let segs_after = if counting { self.snmp().await? } else { BTreeMap::new() };
        let delta = |h: &str, i: usize| segs_after.get(h).map_or(0, |a: &[u64; 2]| a[i]).saturating_sub(segs_before.get(h).map_or(0, |b| b[i]));
        let mut slo_iter = slo_results.into_iter();
        let mut results = Vec::new();
        for c in &self.scenario.checks {
            match c {
                Check::TcpStateDwell { name, host, port, peer, state, max_secs, min_connections } => {
                    let ino = self.host(host)?.netns_ino;
                    let tcp = tcp.as_ref().ok_or_else(|| anyhow!("tcpstate probe missing"))?;
                    let obs = tcp.observe(ino, *port, *peer, *state, t0, t1, lost0);
                    results.push(verdict::evaluate_dwell(name, host, *port, *peer, *state, *max_secs, *min_connections, &obs));
                }
                Check::Count { name, host, port, counted, max, max_ratio } => {
                    let ev = events.as_ref().ok_or_else(|| anyhow!("event probes missing"))?;
                    let (b, a) = (before.get(host).cloned().unwrap_or_default(), after.get(host).cloned().unwrap_or_default());
                    let mut by_what: BTreeMap<String, u64> = BTreeMap::new();
                    for (k, v) in &a {
                        let delta = v.saturating_sub(b.get(k).copied().unwrap_or(0));
                        if delta == 0 || !counted_matches(counted, *port, k, ev) {
                            continue;
                        }
                        let what = if k.kind == kinds::DROP { ev.reason_name(k.reason) } else { format!("port {}", k.port) };
                        *by_what.entry(what).or_default() += delta;
                    }
                    let seen = by_what.values().sum();
                    let on = port.map_or_else(|| host.clone(), |p| format!("{host}:{p}"));
                    let mut breakdown: Vec<(String, u64)> = by_what.into_iter().collect();
                    breakdown.sort_by(|x, y| y.1.cmp(&x.1));
                    let activity = (*counted != Counted::OomKills).then(|| verdict::Activity { packets: delta(host, 1) });
                    match max_ratio {
                        Some(r) => results.push(verdict::evaluate_ratio(name, &counted.describe(), &on, seen, delta(host, 0), *r)),
                        None => results.push(verdict::evaluate_count(name, &counted.describe(), &on, seen, *max, &breakdown, activity)),
                    }
                }
                Check::HttpSlo { name, from, target_host, port, min_success_ratio, max_latency_ms, .. } => {
                    let samples = slo_iter.next().unwrap_or_default();
                    results.push(verdict::evaluate_http(name, from, &format!("{target_host}:{port}"), *min_success_ratio, *max_latency_ms, &samples));
                }
            }
        }
        Ok(Verdict::new(&self.id, &self.scenario.id, self.scenario.window_secs, results))
    }

    /// Per host, from its own /proc/net/snmp: TCP segments sent (`Tcp: OutSegs`, the
    /// denominator of retransmission ratios) and IP packets received plus sent
    /// (`Ip: InReceives + OutRequests`, the positive control of counting checks). A host
    /// whose counters cannot be read fails the verify: no reading is never a pass.
    async fn snmp(&self) -> Result<BTreeMap<String, [u64; 2]>> {
        let mut m = BTreeMap::new();
        for h in &self.hosts {
            let v = h.worker.run(|| -> Option<[u64; 2]> {
                let t = std::fs::read_to_string("/proc/thread-self/net/snmp").ok()?;
                let field = |proto: &str, name: &str| -> Option<u64> {
                    let mut rows = t.lines().filter(|l| l.starts_with(proto));
                    let (names, values) = (rows.next()?, rows.next()?);
                    let i = names.split_whitespace().position(|n| n == name)?;
                    values.split_whitespace().nth(i)?.parse().ok()
                };
                Some([field("Tcp:", "OutSegs")?, field("Ip:", "InReceives")? + field("Ip:", "OutRequests")?])
            });
            let v = v.await?.ok_or_else(|| anyhow!("host {}: its /proc/net/snmp counters could not be read, so the counting checks cannot be judged", h.name))?;
            m.insert(h.name.clone(), v);
        }
        Ok(m)
    }

    /// The config loadgen service `svc` on `host` runs with (what it recorded at start in
    /// the host's /run); when it is not running, its config file. An http-slo check with
    /// `client` behaves like it, so a config edited but not applied (`svc restart`) does
    /// not count yet.
    fn client_config(&self, host: &str, svc: &str) -> Result<drill_core::workload::LoadgenConfig> {
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
            Ok(_) => bail!("host {host}: {svc} is not a loadgen"),
            Err(e) => bail!("host {host}: {}: {e}; fix the file (the check behaves as the client is configured)", drill_core::workload::config_path(svc)),
        }
    }

    /// One synthetic HTTP GET from inside host `from`.
    pub async fn request_once(&self, from: &str, target_host: &str, port: u16, path: &str, timeout: Duration, tls: bool) -> Result<HttpSample> {
        let addr = self.plan.host_address(target_host, false).ok_or_else(|| anyhow!("host {target_host} has no IPv4 address"))?;
        let target = SocketAddr::new(addr, port);
        let sock = self.host(from)?.worker.tcp_socket(false).await?;
        let tls = if tls { self.tls_client.as_ref() } else { None };
        let o = http::get(sock, target, target_host, path, timeout, tls).await;
        Ok(HttpSample { ok: o.ok, latency_ms: o.latency.as_secs_f64() * 1e3, error: o.error })
    }

    /// One request per service-level check (for `drill watch`).
    pub async fn sample_requests(&self) -> Vec<RequestSample> {
        let mut v = Vec::new();
        for c in &self.scenario.checks {
            let Check::HttpSlo { from, target_host, port, path, timeout_ms, tls, .. } = c else {
                continue;
            };
            let target = format!("{target_host}:{port}{path}");
            match self.request_once(from, target_host, *port, path, Duration::from_millis(*timeout_ms), *tls).await {
                Ok(s) => v.push(RequestSample { from: from.clone(), target, ok: s.ok, latency_ms: s.latency_ms, error: s.error }),
                Err(e) => v.push(RequestSample { from: from.clone(), target, ok: false, latency_ms: 0.0, error: Some(format!("{e:#}")) }),
            }
        }
        v
    }

    /// Totals since the drill started, per host (for `drill watch`).
    pub fn counters(&self) -> DrillCounters {
        let ev = self.probes.events().ok();
        let tcp = self.probes.tcpstate().ok();
        let hosts = self
            .hosts
            .iter()
            .map(|h| {
                let mut c = HostCounters { host: h.name.clone(), ..Default::default() };
                if let Some(ev) = ev {
                    // `drill watch` shows what it can; a failed read shows as no counts.
                    for (k, v) in ev.snapshot(h.netns_ino).unwrap_or_default() {
                        match k.kind {
                            kinds::DROP => *c.drops.entry(ev.reason_name(k.reason)).or_default() += v,
                            kinds::RETRANSMIT => c.retransmits += v,
                            kinds::RST_SENT => c.resets_sent += v,
                            kinds::RST_RECEIVED => c.resets_received += v,
                            kinds::OOM_KILL => c.oom_kills += v,
                            kinds::EXEC => c.execs += v,
                            _ => {}
                        }
                    }
                    let execs = ev.execs(h.netns_ino);
                    let (now_ns, since_start) = (probes::now_ns(), self.started_at.elapsed().as_secs_f64());
                    c.recent_execs = execs
                        .iter()
                        .rev()
                        .take(5)
                        .map(|e| ExecInfo { comm: e.comm(), pid: e.pid, ppid: e.ppid, argv: e.argv(), at_secs: since_start - now_ns.saturating_sub(e.ts_ns) as f64 / 1e9 })
                        .collect();
                    let ph = self.plan.hosts.iter().find(|p| p.name == h.name);
                    for port in ph
                        .map(|p| {
                            p.services
                                .iter()
                                .filter_map(|s| match &s.workload {
                                    drill_core::workload::Workload::Httpd(cfg) => cfg.listen.rsplit(':').next()?.parse::<u16>().ok(),
                                    _ => None,
                                })
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default()
                    {
                        let r = ev.rtt(h.netns_ino, port);
                        if r.samples > 0 {
                            c.srtt_ms.insert(port, (r.samples, r.srtt_sum_us as f64 / r.samples as f64 / 1e3, r.srtt_max_us as f64 / 1e3));
                        }
                    }
                }
                let timed = self.plan.probes.iter().any(|PlanProbe::TcpStateDwell { host, states }| *host == h.name && states.contains(&TcpState::CloseWait));
                if let (Some(t), true) = (tcp, timed) {
                    c.close_wait = t.open_count(h.netns_ino, TcpState::CloseWait);
                }
                c
            })
            .collect();
        DrillCounters { id: self.id.clone(), elapsed_secs: self.started_at.elapsed().as_secs_f64(), hosts, requests: Vec::new() }
    }

    /// Removes everything the drill created. Keeps going after errors, returns them.
    pub fn teardown(&self) -> Vec<String> {
        let mut errors = Vec::new();
        // eBPF faults go with their interfaces when the namespaces are deleted; the
        // wires' threads stop before their namespaces go.
        for tf in self.tc_faults.lock().expect("tc faults").drain(..) {
            tf.forget();
        }
        self.wires.lock().expect("wires").clear();
        for h in &self.hosts {
            if let Err(e) = self.probes.unwatch(h.netns_ino) {
                errors.push(format!("host {}: {e:#}", h.name));
            }
        }
        for h in &self.hosts {
            if let Some(pid) = h.pid {
                if let Err(e) = host::kill_and_reap(pid, Duration::from_secs(3)) {
                    errors.push(format!("host {}: {e:#}", h.name));
                }
            }
        }
        // The journal lists every namespace (also those of hosts that never got a worker).
        errors.extend(journal::undo(&self.dir, Some(&self.journal)));
        info!(drill = %self.id, errors = errors.len(), "drill torn down");
        errors
    }
}

/// Whether a TCP socket listens on `port` in the calling thread's network namespace
/// (`/proc/thread-self/net/tcp{,6}`: state 0A is LISTEN).
fn listening(port: u16) -> bool {
    let needle = format!(":{port:04X} ");
    ["/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() > 3 && format!("{} ", cols[1]).ends_with(&needle) && cols[3] == "0A"
            })
        })
    })
}

/// The probe (by description) a check's figures come from.
fn required_probe(c: &Check) -> Option<&'static str> {
    let program = match c {
        Check::TcpStateDwell { .. } => "drill_tcpstate",
        Check::Count { counted: Counted::Drops { .. }, .. } => "drill_drop",
        Check::Count { counted: Counted::Retransmits, .. } => "drill_retransmit",
        Check::Count { counted: Counted::ResetsSent, .. } => "drill_rst_sent",
        Check::Count { counted: Counted::ResetsReceived, .. } => "drill_rst_received",
        Check::Count { counted: Counted::OomKills, .. } => "drill_oom",
        Check::HttpSlo { .. } => return None,
    };
    Some(drill_ebpf::describes(program))
}

/// Whether a counter entry is one a counting check counts.
fn counted_matches(c: &Counted, port: Option<u16>, k: &EventKey, ev: &probes::EventProbe) -> bool {
    let port_ok = port.is_none_or(|p| p == k.port);
    match c {
        Counted::Drops { reason } => k.kind == kinds::DROP && reason.as_ref().is_none_or(|r| ev.reason_number(r) == Some(k.reason)),
        Counted::Retransmits => k.kind == kinds::RETRANSMIT && port_ok,
        Counted::ResetsSent => k.kind == kinds::RST_SENT && port_ok,
        Counted::ResetsReceived => k.kind == kinds::RST_RECEIVED && port_ok,
        Counted::OomKills => k.kind == kinds::OOM_KILL,
    }
}

/// Writes a host's private files before its init starts: the upper layer of its
/// /etc overlay (hosts, hostname, resolv.conf, service configs) and its log dir.
fn prepare_host_dir(spec: &HostSpec, etc_hosts: &str, services: &[drill_core::plan::PlanService]) -> Result<()> {
    let upper = spec.etc_upper();
    for d in [upper.clone(), spec.etc_work(), spec.log_dir()] {
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    }
    let write = |rel: &str, text: &str| -> Result<()> {
        let p = upper.join(rel.trim_start_matches("/etc/"));
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))
    };
    write("/etc/hosts", etc_hosts)?;
    write("/etc/hostname", &format!("{}\n", spec.hostname))?;
    // No DNS server in this drill: point at the host itself so lookups fail fast.
    write("/etc/resolv.conf", "# drill host: no DNS server in this drill; names resolve through /etc/hosts\nnameserver 127.0.0.1\n")?;
    for s in services {
        write(&s.config_path, &s.config_text)?;
    }
    Ok(())
}
