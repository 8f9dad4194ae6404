//! Building a drill: namespaces (hosts, then switches), probes on every host, delay
//! wires (`fault/delay.rs`), the topology, host inits with their services, then the
//! faults in scenario order, each measured before the next (`fault/`).
//!
//! Every step records what it created ([`Created`]) right after the kernel made it,
//! so a failure at any step undoes exactly what came before it.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use drill_core::doctor::{self, Need};
use drill_core::plan::{Plan, PlanProbe, PlanService};

use super::{Created, Drill, Env, RunningHost};
use crate::error::{DrillError, Result};
use crate::host::{self, HostSpec, ServiceSpec};
use crate::kernel::Kernel;

/// How long a host's init may take to say it is ready.
const HOST_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long services may take to listen once their hosts are up.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a service's socket table is read while waiting for it to listen.
const LISTEN_POLL: Duration = Duration::from_millis(2);

impl<K: Kernel> Drill<K> {
    pub(super) async fn build(&mut self, env: &Env<'_, K>) -> Result<()> {
        // What the drill cannot run without that this machine visibly lacks, refused
        // before anything is made, in `drill doctor`'s words.
        if let Some((need, why)) = missing_program(&self.plan, &self.scenario.id, installed) {
            return Err(DrillError::RequirementMissing { need: need.id(), why });
        }
        // Where the start's time goes, logged with "drill ready" (the start-time bench's
        // breakdown).
        let mut t = std::time::Instant::now();
        let mut lap = |phases: &mut String, name: &str| {
            phases.push_str(&format!("{name}={} ", t.elapsed().as_millis()));
            t = std::time::Instant::now();
        };
        let mut phases = String::new();
        self.journal.save(env.state)?;
        self.create_namespaces(env).await?;
        self.watch_hosts()?;
        lap(&mut phases, "namespaces");
        let splices = self.create_wires(env).await?;
        self.kernel.apply_topology(&self.plan, &splices).await?;
        self.apply_path_mtus().await?;
        for sp in &splices {
            self.kernel.open_wire(&sp.netns, &sp.host, &sp.iface).await?;
            self.created(Created::Wire(sp.netns.clone()));
        }
        lap(&mut phases, "topology");
        self.start_hosts(env).await?;
        lap(&mut phases, "hosts");
        self.wait_services_listening(LISTEN_TIMEOUT).await?;
        lap(&mut phases, "services");
        self.apply_faults().await?;
        lap(&mut phases, "faults");
        self.phases = phases.trim_end().to_string();
        Ok(())
    }

    /// Network namespaces of hosts, then of switches, then of tunnel underlays.
    async fn create_namespaces(&mut self, env: &Env<'_, K>) -> Result<()> {
        let names: Vec<(String, String, bool)> = self
            .plan
            .hosts
            .iter()
            .map(|h| (h.name.clone(), h.netns.clone(), true))
            .chain(self.plan.switches.iter().map(|s| (s.name.clone(), s.netns.clone(), false)))
            .chain(self.plan.underlays().map(|u| (u.clone(), u, false)))
            .collect();
        for (name, netns, is_host) in names {
            self.journal.netns.push(netns.clone());
            self.journal.save(env.state)?;
            let ino = self.kernel.create_netns(&netns).await?;
            self.created(Created::Netns(netns.clone()));
            if is_host {
                self.hosts.push(RunningHost { name, netns, netns_ino: ino, pid: None, pidns_ino: 0 });
            }
        }
        Ok(())
    }

    /// Probes watch every host before any traffic flows (state timing where planned).
    fn watch_hosts(&self) -> Result<()> {
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
            self.kernel.watch(h.netns_ino, &states)?;
            self.created(Created::Watch { host: h.name.clone(), ino: h.netns_ino });
        }
        // The on-demand programs the checks read, attached from now until teardown.
        let mut held: Vec<&'static str> = Vec::new();
        for p in self.plan.checks.iter().filter_map(drill_core::doctor::check_program) {
            if drill_ebpf::PROGRAMS.iter().any(|x| x.program == p && x.on_demand) && !held.contains(&p) {
                self.kernel.hold_probe(&self.id, p)?;
                self.created(Created::ProbeHold(p));
                held.push(p);
            }
        }
        Ok(())
    }

    /// Host inits with their services (configs and certificates written first).
    async fn start_hosts(&mut self, env: &Env<'_, K>) -> Result<()> {
        let ca = if self.plan.tls {
            let ca = crate::tls::Ca::new()?;
            self.tls_client = Some(crate::tls::client_config(&ca.pem())?);
            Some(ca)
        } else {
            None
        };
        let mut starting = Vec::new();
        let contents = std::mem::take(&mut self.origin.files);
        let hidden = self.origin.hidden_paths();
        for i in 0..self.plan.hosts.len() {
            let ph = self.plan.hosts[i].clone();
            let hdir = self.dir.join("hosts").join(&ph.name);
            let spec = HostSpec {
                drill_id: self.id.clone(),
                name: ph.name.clone(),
                hostname: ph.hostname.clone(),
                state_dir: hdir.clone(),
                exe: env.exe.to_path_buf(),
                services: ph
                    .services
                    .iter()
                    .map(|s| ServiceSpec { name: s.name.clone(), kind: s.kind.clone(), config_path: s.config_path.clone(), log_path: s.log_path.clone(), restart: s.restart })
                    .collect(),
                hidden: hidden.clone(),
                isolation: host::Isolation::for_host(self.origin.owner_uid == 0, &ph.limits),
                proc_view: None, // the kernel's to give (it runs lxcfs)
                kmsg: None,      // the kernel's too (it serves the hosts' logs)
                conntrack_max: None,
            };
            let mut spec = spec;
            // A modelled conntrack table: the host's nf_conntrack_max is a file of ours.
            for st in self.plan.faults.iter().filter(|f| f.host == ph.name) {
                if let drill_core::plan::Mechanism::ConntrackTable { max, .. } = &st.mechanism {
                    let f = super::fault::max_file(&self.dir, &ph.name);
                    std::fs::create_dir_all(&hdir).and_then(|()| super::fault::write_max_file(&f, *max)).with_context(|| format!("host {}: writing {}", ph.name, f.display()))?;
                    spec.conntrack_max = Some(f);
                }
            }
            prepare_host_dir(&spec, &ph.etc_hosts, &ph.resolv_conf, &ph.services)?;
            let files = self.plan.files.iter().zip(&contents).filter(|(f, _)| f.host == ph.name);
            stage_files(&spec, files)?;
            if let Some(ca) = &ca {
                let ips: Vec<std::net::IpAddr> = ph.interfaces.iter().flat_map(|i| i.addresses.iter().map(|c| c.addr)).collect();
                ca.provision(&spec.etc_upper(), &ph.name, &ips).with_context(|| format!("host {}: certificates", ph.name))?;
                let mut names: Vec<&String> = ph.services.iter().flat_map(|s| s.tls_names.iter()).collect();
                names.dedup();
                for n in names {
                    ca.provision_name(&spec.etc_upper(), n).with_context(|| format!("host {}: the certificate of {n}", ph.name))?;
                }
            }
            let console = hdir.join("init.log");
            let pid = self.kernel.spawn_host(spec, &ph.netns, &console)?;
            self.hosts[i].pid = Some(pid);
            self.created(Created::Host { name: ph.name.clone(), pid });
            // The timeline captures every command of the host from its first.
            let pidns = self.kernel.host_pidns(&ph.name, pid)?;
            self.hosts[i].pidns_ino = pidns;
            self.kernel.watch_pids(pidns)?;
            self.created(Created::PidWatch { host: ph.name.clone(), ino: pidns });
            self.journal.host_pids.push(pid);
            self.journal.save(env.state)?;
            starting.push((ph.name.clone(), pid, console));
        }
        // The inits set themselves up in parallel; each must say it is ready.
        for (name, pid, console) in &starting {
            self.kernel.wait_host_ready(name, *pid, console, HOST_READY_TIMEOUT).await?;
        }
        Ok(())
    }

    /// Waits until every listening service listens on its own host. Reads the host's
    /// socket table instead of connecting, so readiness leaves no trace (no RST, no
    /// connection) in what the probes and the learner see.
    async fn wait_services_listening(&self, timeout: Duration) -> Result<()> {
        for ph in &self.plan.hosts {
            for s in &ph.services {
                for port in s.workload.listen_ports() {
                    let h = self.host(&ph.name)?;
                    let deadline = Instant::now() + timeout;
                    while !self.kernel.listening(&h.netns, port).await? {
                        if Instant::now() > deadline {
                            let hdir = self.dir.join("hosts").join(&ph.name);
                            let listen = format!("port {port}");
                            // The host's /var/log is on its own disk, seen through its init.
                            let log = h.pid.map(|pid| host::tail_in_host(pid, &s.log_path, 5)).unwrap_or_default();
                            let init = host::tail(&hdir.join("init.log"), 5);
                            return Err(anyhow!("host {}: service {} is not listening on {listen} after {timeout:?}; its log ends with: [{log}]; the host init said: [{init}]", ph.name, s.name).into());
                        }
                        tokio::time::sleep(LISTEN_POLL).await;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Stages the pack files of a host under its state directory (`files/` mirrors the
/// host's root); its init copies them into its own root, on its tmpfs and overlay upper
/// layers, before any service starts (host/rootfs.rs). The machine's paths are never
/// written.
fn stage_files<'a>(spec: &HostSpec, files: impl Iterator<Item = (&'a drill_core::plan::PlanFile, &'a Vec<u8>)>) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for (f, bytes) in files {
        let rel = std::path::Path::new(&f.path).strip_prefix("/").map_err(|_| anyhow!("file {}: not an absolute path", f.path))?;
        if !rel.components().all(|c| matches!(c, std::path::Component::Normal(_))) {
            return Err(anyhow!("file {}: only plain path components may be used", f.path));
        }
        if ["proc", "sys", "dev"].iter().any(|k| rel.starts_with(k)) {
            return Err(anyhow!("file {} for host {}: /proc, /sys and /dev are the kernel's, not files a drill can place", f.path, f.host));
        }
        let p = spec.files_dir().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(f.mode)).with_context(|| format!("chmod {}", p.display()))?;
    }
    Ok(())
}

/// Writes a host's private files before its init starts: the upper layer of its
/// /etc overlay (hosts, hostname, resolv.conf, service configs).
fn prepare_host_dir(spec: &HostSpec, etc_hosts: &str, resolv_conf: &str, services: &[PlanService]) -> anyhow::Result<()> {
    let upper = spec.etc_upper();
    for d in [upper.clone(), spec.etc_work()] {
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    }
    let write = |rel: &str, text: &str| -> anyhow::Result<()> {
        let p = upper.join(rel.trim_start_matches("/etc/"));
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))
    };
    write("/etc/hosts", etc_hosts)?;
    write("/etc/hostname", &format!("{}\n", spec.hostname))?;
    if resolv_conf.is_empty() {
        // No DNS server in this drill: point at the host itself so lookups fail fast.
        write("/etc/resolv.conf", "# no DNS server on this network: names resolve through /etc/hosts\nnameserver 127.0.0.1\n")?;
    } else {
        write("/etc/resolv.conf", resolv_conf)?;
    }
    for s in services {
        write(&s.config_path, &s.config_text)?;
    }
    Ok(())
}

/// Whether the program a need names is there: a file for a package's program, on PATH
/// for the `nft` and `tc` commands the daemon runs; other needs are not programs (true).
fn installed(need: &Need) -> bool {
    let on_path = |cmd: &str| std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/sbin", "/sbin"]).any(|d| std::path::Path::new(d).join(cmd).is_file());
    match need {
        Need::Binary { path, .. } => std::path::Path::new(path).exists(),
        Need::Nftables => on_path("nft"),
        Need::Tc => on_path("tc"),
        _ => true,
    }
}

/// The refusal of a plan one of whose programs is missing (`installed` says), in
/// `drill doctor`'s words: the piece, the built-in drills it disables, the fix. A
/// service's own daemon (hosts see the machine's /usr) is named with its service.
fn missing_program(plan: &Plan, scenario: &str, installed: impl Fn(&Need) -> bool) -> Option<(Need, String)> {
    let drills = || doctor::drill_requirements(&drill_core::builtin::scenarios()).0;
    for h in &plan.hosts {
        for s in &h.services {
            if let Some((bin, package)) = s.workload.binary() {
                let need = Need::Binary { path: bin.to_string(), package: package.to_string() };
                if !installed(&need) {
                    let why = doctor::refusal_disabling(&need, &format!("service {} ({}) on host {}", s.name, s.kind, h.name), &drills());
                    return Some((need, why));
                }
            }
        }
    }
    let need = doctor::requirements(plan)
        .into_iter()
        .filter(|q| q.without == doctor::Without::CannotRun)
        .map(|q| q.need)
        .find(|n| matches!(n, Need::Binary { .. } | Need::Nftables | Need::Tc) && !installed(n))?;
    let why = doctor::refusal_disabling(&need, &format!("scenario {scenario}"), &drills());
    Some((need, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(id: &str) -> Plan {
        let s = drill_core::builtin::scenarios().into_iter().find(|s| s.id == id).unwrap();
        drill_core::plan::compile(&s, "000000", 0, drill_core::plan::Backends { delay: drill_core::plan::DelayBackend::Wire }).unwrap()
    }

    #[test]
    fn a_missing_program_is_refused_in_doctors_words() {
        assert_eq!(missing_program(&plan("k8s-stale-endpoint"), "k8s-stale-endpoint", |_| true), None);
        let conntrack = Need::Binary { path: "/usr/sbin/conntrack".into(), package: "conntrack".into() };
        let (need, m) = missing_program(&plan("k8s-stale-endpoint"), "k8s-stale-endpoint", |n| n != &conntrack).expect("refused");
        assert_eq!(need, conntrack);
        assert!(m.starts_with("scenario k8s-stale-endpoint needs /usr/sbin/conntrack (conntrack), which this machine lacks: apt-get install conntrack"), "{m}");
        assert!(m.contains("without it these built-in drills cannot run: k8s-stale-endpoint") && m.contains("`drill doctor`"), "{m}");
        let (_, m) = missing_program(&plan("firewall-drop"), "firewall-drop", |n| n != &Need::Nftables).expect("refused");
        assert!(m.contains("needs nftables (nft, nf_tables)") && m.contains("apt-get install nftables"), "{m}");
    }

    #[test]
    fn a_missing_service_daemon_names_its_service() {
        let nginx = |n: &Need| !matches!(n, Need::Binary { path, .. } if path == "/usr/sbin/nginx");
        let (_, m) = missing_program(&plan("wan-latency-504"), "wan-latency-504", nginx).expect("wan-latency-504 runs nginx");
        assert!(m.starts_with("service ") && m.contains("needs /usr/sbin/nginx (nginx-light)") && m.contains("wan-latency-504"), "{m}");
    }
}
