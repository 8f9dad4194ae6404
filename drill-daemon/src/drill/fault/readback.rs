//! Faults measured by reading their effect back: a sysctl (the value in the host),
//! an MTU (the link's), a removed route (gone from the table), a service's config
//! (what the running service recorded it started with). Each lives in the host and
//! goes with it: nothing to undo at teardown.

use std::time::{Duration, Instant};

use drill_core::scenario::Cidr;

use super::super::Drill;
use crate::error::{DrillError, Result};
use crate::kernel::Kernel;

/// How long a service may take to record the config it runs with after its host is up.
const RUNNING_CONFIG_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a service may take to open the file a deleted-open-file fault fills.
const HOLDER_TIMEOUT: Duration = Duration::from_secs(5);

impl<K: Kernel> Drill<K> {
    pub(super) async fn apply_sysctl(&self, host: &str, key: &str, value: &str) -> Result<String> {
        self.kernel.set_sysctl(&self.host(host)?.netns, host, key, value).await?;
        Ok("written and read back".to_string())
    }

    pub(super) async fn apply_mtu(&self, host: &str, iface: &str, mtu: u32) -> Result<String> {
        self.kernel.set_mtu(&self.host(host)?.netns, host, iface, mtu).await?;
        Ok("set through netlink and read back".to_string())
    }

    pub(super) async fn apply_route_remove(&self, host: &str, to: Option<Cidr>) -> Result<String> {
        self.kernel.remove_route(&self.host(host)?.netns, host, to).await?;
        Ok("removed through netlink; checked gone".to_string())
    }

    /// A deleted-open-file fault: fill the host's disk through the file its holder has
    /// open, unlink it, and check that the disk is full and the holder keeps it.
    pub(super) async fn apply_deleted_open_file(&self, host: &str, service: &str, path: &str) -> Result<String> {
        let what = format!("deleted-open-file on {host}");
        let pid = self.host(host)?.pid.ok_or_else(|| DrillError::not_measured(what.clone(), host, "the host has no running init"))?;
        let f = self.kernel.fill_deleted(host, pid, path, HOLDER_TIMEOUT).await?;
        if f.free_bytes > 0 {
            return Err(DrillError::did_not_take(what, host, format!("{} bytes of the host's disk are still free after filling {path}", f.free_bytes)));
        }
        Ok(format!(
            "{path} filled with {} MiB and unlinked; the disk ({} MiB) has 0 bytes free; {service} ({}, pid {}) holds {path} (deleted)",
            f.written_bytes >> 20,
            f.disk_bytes >> 20,
            f.holder,
            f.holder_pid
        ))
    }

    /// A resolv-conf fault was written before the host started: the host's own
    /// /etc/resolv.conf (what every lookup inside reads) must say what the plan wrote.
    pub(super) fn read_back_resolv_conf(&self, host: &str, planned: &str) -> Result<String> {
        let what = format!("resolv-conf on {host}");
        let pid = self.host(host)?.pid.ok_or_else(|| DrillError::not_measured(what.clone(), host, "the host has no running init"))?;
        let text = self.kernel.host_file(host, pid, "/etc/resolv.conf")?.ok_or_else(|| DrillError::not_measured(what.clone(), host, "the host has no /etc/resolv.conf"))?;
        let (seen, want) = (drill_core::resolv::ResolvConf::parse(&text), drill_core::resolv::ResolvConf::parse(planned));
        if seen != want || want.nameservers.is_empty() {
            return Err(DrillError::did_not_take(what, host, format!("the host's /etc/resolv.conf reads {seen:?}, not the faulty {want:?}")));
        }
        Ok(format!(
            "the host's /etc/resolv.conf reads nameserver {}, search [{}], ndots:{}",
            want.nameservers.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" "),
            want.search.join(" "),
            want.ndots
        ))
    }

    /// A service-config fault was written before the host started; here the config the
    /// running service recorded must be the faulty one the plan wrote.
    pub(super) async fn read_back_service(&self, host: &str, service: &str) -> Result<String> {
        let planned = self.plan.hosts.iter().find(|h| h.name == host).and_then(|h| h.services.iter().find(|s| s.name == service));
        let planned = planned.ok_or_else(|| DrillError::Internal(anyhow::anyhow!("the plan has no service {service} on {host}")))?;
        let pid = self.host(host)?.pid.ok_or_else(|| DrillError::not_measured(format!("service-config on {host}/{service}"), host, "the host has no running init"))?;
        let deadline = Instant::now() + RUNNING_CONFIG_TIMEOUT;
        let text = loop {
            match self.kernel.running_config(host, pid, service)? {
                Some(t) => break t,
                None if Instant::now() >= deadline => {
                    let why = format!("{service} did not record the config it runs with ({}) within {RUNNING_CONFIG_TIMEOUT:?}", drill_core::workload::effective_config_path(service));
                    return Err(DrillError::not_measured(format!("service-config on {host}/{service}"), host, why));
                }
                None => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        };
        match planned.workload.runs_with(service, &text) {
            Ok(true) => Ok(format!("{service} runs with the faulty {}", planned.config_path)),
            Ok(false) => Err(DrillError::did_not_take(
                format!("service-config on {host}/{service}"),
                host,
                format!("{service} runs with another config than the faulty one the plan wrote to {}", planned.config_path),
            )),
            Err(e) => Err(DrillError::not_measured(format!("service-config on {host}/{service}"), host, format!("the config {service} recorded does not parse: {e}"))),
        }
    }
}
