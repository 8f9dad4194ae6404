//! The conntrack-table step (drill-core fault/conntrack.rs): the stand-in table built
//! in the host (kernel/linux/conntrack.rs), filled and measured; then a feeder task for
//! the drill's life that keeps the stand-in behind the host's `nf_conntrack_max` (a
//! file bound over /proc/sys/net/netfilter/nf_conntrack_max in the host: a write
//! resizes the rule, a value the kernel would refuse is put back) and writes the
//! kernel's `table full, dropping packet` to the host's log as the rule drops,
//! rate-limited as net_ratelimit does. Teardown aborts the feeder; the table goes with
//! the host's namespace.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use drill_core::kmsg::NetRatelimit;
use drill_core::scenario::Check;

use super::super::Drill;
use crate::error::{DrillError, Result};
use crate::kernel::{CtReading, Kernel};

/// The file in a host's directory that the host sees as its nf_conntrack_max.
pub const MAX_FILE: &str = "nf_conntrack_max";
/// What the kernel logs for each packet a full table drops (pr_fmt + the message).
pub const TABLE_FULL: &str = "nf_conntrack: nf_conntrack: table full, dropping packet";
/// How often the feeder looks at the file and the rule's counter.
const TICK: Duration = Duration::from_millis(250);
/// Syslog priority of the kernel's message (KERN_WARNING).
const WARNING: u8 = 4;

/// The size a value of nf_conntrack_max stands for: 0 is no limit to the kernel.
pub fn effective_max(v: u64) -> u64 {
    if v == 0 { i32::MAX as u64 } else { v }
}

/// nf_conntrack_max as the file says, if it is a value the kernel takes (an int, >= 0).
pub fn parse_max(text: &str) -> Option<u64> {
    text.trim().parse::<u64>().ok().filter(|v| *v <= i32::MAX as u64)
}

/// The host's nf_conntrack_max file in the drill's directory.
pub fn max_file(drill_dir: &Path, host: &str) -> PathBuf {
    drill_dir.join("hosts").join(host).join(MAX_FILE)
}

/// Writes the file before the host starts (the host binds it over its sysctl).
pub fn write_max_file(path: &Path, max: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("{max}\n"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
}

/// The feeder's state between ticks.
struct Feeder {
    file: PathBuf,
    /// The size the rule has now (as the file last said it validly).
    applied: u64,
    packets: Option<u64>,
    limit: NetRatelimit,
}

impl Feeder {
    /// One look: resize the rule if the file changed (put the file back if the value
    /// is one the kernel refuses), log the drops since the last look.
    async fn tick<K: Kernel>(&mut self, k: &K, netns: &str, drill: &str, host: &str) -> Result<()> {
        sync_max(k, netns, host, &self.file, &mut self.applied).await?;
        let r = k.ct_table_read(netns).await?;
        if let Ok((_, p)) = r.rule {
            // A counter below the last reading: the rule was rebuilt (a new size).
            let grew = self.packets.map_or(0, |last| if p >= last { p - last } else { p });
            self.packets = Some(p);
            // Drops while the kernel's table has room: connlimit still counts entries
            // that are gone (a flush; it forgets them only a few per new connection).
            // A real table frees them at once: start the count anew.
            if grew > 0 && r.count.is_some_and(|c| c < self.applied) {
                k.ct_table_apply(netns, host, self.applied as u32).await?;
                self.packets = Some(0);
            }
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
            for line in self.limit.lines(now, grew, TABLE_FULL) {
                k.host_log(drill, host, WARNING, &line);
            }
        }
        Ok(())
    }
}

/// Makes the rule's size follow the file: a new valid value resizes it, an invalid
/// one is replaced by the size in force (the kernel answers EINVAL and keeps it).
pub async fn sync_max<K: Kernel>(k: &K, netns: &str, host: &str, file: &Path, applied: &mut u64) -> Result<()> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    match parse_max(&text) {
        Some(v) if effective_max(v) != *applied => {
            k.ct_table_apply(netns, host, effective_max(v) as u32).await?;
            *applied = effective_max(v);
        }
        Some(_) => {}
        None => {
            let shown = if *applied == i32::MAX as u64 { 0 } else { *applied };
            let _ = std::fs::write(file, format!("{shown}\n"));
        }
    }
    Ok(())
}

impl<K: Kernel> Drill<K> {
    /// Builds the stand-in at `max`, then starts the feeder (after the measurement has
    /// filled the table, its first look takes the counter as it is).
    pub(super) async fn apply_conntrack(&self, host: &str, max: u32) -> Result<String> {
        let netns = self.host(host)?.netns.clone();
        self.kernel.ct_table_apply(&netns, host, max).await?;
        let mut f = Feeder { file: max_file(&self.dir, host), applied: u64::from(max), packets: None, limit: NetRatelimit::default() };
        let (k, drill, h): (Arc<K>, String, String) = (self.kernel.clone(), self.id.clone(), host.to_string());
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(TICK).await;
                if let Err(e) = f.tick(&*k, &netns, &drill, &h).await {
                    tracing::debug!(drill = %drill, host = %h, "conntrack feeder: {e}");
                }
            }
        });
        self.feeder(task.abort_handle());
        Ok(format!("nft table inet conntrack, chain table_size: ct state new ct count over {max} counter drop; nf_conntrack_max of {host} shows and sets it"))
    }

    /// Before the fill: the host must have room (the control).
    pub(in crate::drill) async fn control_conntrack(&self, summary: &str, host: &str, max: u32) -> Result<()> {
        let r = self.kernel.ct_table_read(&self.host(host)?.netns).await?;
        match r.count {
            Some(c) if c < u64::from(max) => Ok(()),
            Some(c) => Err(DrillError::not_measured(summary, host, format!("{host} already tracks {c} connections before the fault, not below {max}: nothing to measure against"))),
            None => Err(DrillError::not_measured(summary, host, format!("{host}'s nf_conntrack_count cannot be read (is nf_conntrack loaded?)"))),
        }
    }

    /// Fills the table from `from` and checks it full: the count at `max` and a new
    /// flow dropped by the stand-in.
    pub(in crate::drill) async fn measure_conntrack(&self, summary: &str, host: &str, from: &str, to: SocketAddr, max: u32) -> Result<String> {
        let netns = self.host(host)?.netns.clone();
        let took = |figure: String| Err(DrillError::did_not_take(summary, host, figure));
        let p0 = match self.kernel.ct_table_read(&netns).await?.rule {
            Ok((m, p)) if m == u64::from(max) => p,
            Ok((m, _)) => return took(format!("the stand-in's size reads {m}, not {max}")),
            Err(why) => return took(why),
        };
        let sent = self.kernel.udp_fill(&self.host(from)?.netns, to, max).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let probe = self.kernel.udp_fill(&self.host(from)?.netns, to, 1).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = self.kernel.ct_table_read(&netns).await?;
        let (Ok((_, p1)), Some(count)) = (r.rule, r.count) else {
            return Err(DrillError::not_measured(summary, host, "after the fill the stand-in or nf_conntrack_count could not be read"));
        };
        if count < u64::from(max) || p1 <= p0 || probe != 1 {
            return took(format!("after {sent} flows from {from} to {to}, {host} tracks {count} connections (size {max}) and dropped {} new flows", p1.saturating_sub(p0)));
        }
        Ok(format!("{sent} UDP flows from {from} to {to}: {host} tracks {count} connections (nf_conntrack_max {max}); {} new flows dropped", p1 - p0))
    }

    /// The conntrack tables the checks judge, by host (a table that cannot be read is
    /// missing: its check fails).
    pub(in crate::drill) async fn ct_tables(&self) -> Result<BTreeMap<String, CtReading>> {
        let mut out = BTreeMap::new();
        for c in &self.plan.checks {
            if let Check::ConntrackHeadroom { host, .. } = c
                && let Ok(r) = self.kernel.ct_table_read(&self.host(host)?.netns).await
            {
                out.insert(host.clone(), r);
            }
        }
        Ok(out)
    }

    /// What a conntrack-headroom check saw of `host` from the readings around the
    /// window: a modelled table by its stand-in and the host's nf_conntrack_max file; a
    /// host without one (the baseline) by the kernel's own table and drop counter.
    pub(in crate::drill) fn ct_observation(&self, host: &str, before: Option<&CtReading>, after: Option<&CtReading>) -> drill_core::check::conntrack::Observation {
        use drill_core::check::conntrack::Observation;
        let modelled = self.plan.faults.iter().any(|f| f.host == host && matches!(f.mechanism, drill_core::plan::Mechanism::ConntrackTable { .. }));
        let (udp_timeout_secs, count) = (after.and_then(|r| r.udp_timeout), after.and_then(|r| r.count));
        if !modelled {
            let max = after.and_then(|r| r.kernel_max);
            let dropped = match (before.and_then(|r| r.kernel_drops), after.and_then(|r| r.kernel_drops)) {
                (Some(b), Some(a)) => Some(a.saturating_sub(b)),
                _ => None,
            };
            return Observation { udp_timeout_secs, max, rule_max: max, rule_problem: None, count, dropped };
        }
        let rule = |r: Option<&CtReading>| r.and_then(|r| r.rule.clone().ok());
        let dropped = match (rule(before), rule(after)) {
            // A rule rebuilt in the window (a new size) starts its counter anew.
            (Some((mb, b)), Some((ma, a))) => Some(if ma == mb && a >= b { a - b } else { a }),
            _ => None,
        };
        let problem = after.and_then(|r| r.rule.clone().err()).or_else(|| after.is_none().then(|| format!("{host}'s table could not be read")));
        Observation { udp_timeout_secs, max: self.conntrack_max_now(host), rule_max: rule(after).map(|(m, _)| m), rule_problem: problem, count, dropped }
    }

    /// The host's nf_conntrack_max as it shows it (the size it stands for).
    pub(in crate::drill) fn conntrack_max_now(&self, host: &str) -> Option<u64> {
        std::fs::read_to_string(max_file(&self.dir, host)).ok().and_then(|t| parse_max(&t)).map(effective_max)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn max_values_as_the_kernel_takes_them() {
        use super::{effective_max, parse_max};
        assert_eq!(parse_max("262144\n"), Some(262_144));
        assert_eq!(parse_max("lots"), None);
        assert_eq!(parse_max("-1"), None);
        assert_eq!(parse_max("4294967296"), None);
        assert_eq!(effective_max(0), i32::MAX as u64);
    }
}
