//! After-apply measurement, shared by the fault kinds (`drill/fault/`): every network
//! fault is measured from outside before the learner gets the drill (pings for loss,
//! policers and delay, TCP connections for drops and rejects, a transfer for a rate);
//! a figure outside its tolerance stops the start with [`DrillError::FaultDidNotTake`],
//! naming the fault and the figure. Here: the figures' constants, which host measures
//! from where ([`Drill::neighbour`]), and the loss judgement. Only the kernel's
//! primitives are used (`Kernel::ping_loss` and friends), so the judging is plain Rust.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::anyhow;

use super::{Drill, RunningHost};
use crate::error::{DrillError, Result};
use crate::kernel::Kernel;
use crate::kernel::linux::faults;

/// Pings sent to measure a random loss (or a policer): 2 ms apart, about a second.
pub const LOSS_PINGS: u32 = 500;
/// How long a TCP connection attempt of a measurement may take before it counts as
/// timed out (a drop), far above any RTT of a drill without a delay fault.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(700);
/// Pings, and their interval in seconds, of each ping RTT measurement of a delay.
pub(super) const RTT_PINGS: u32 = 20;
pub(super) const RTT_INTERVAL_SECS: f64 = 0.01;
/// Seconds of traffic at the asked rate a rate measurement sends.
pub(super) const RATE_SECS: f64 = 1.5;
/// Measured rate over asked rate that counts as the fault taking.
pub(super) const RATE_RATIO_OK: std::ops::RangeInclusive<f64> = 0.8..=1.15;
/// Above this many connections, a connection limit is not probed at start.
pub(super) const CONN_LIMIT_MAX_PROBED: u32 = 200;
/// A policer above this many packets a second is more than LOSS_PINGS a second shows.
pub(super) const POLICER_MAX_PROBED: u32 = 400;

pub(super) fn no_ipv4(host: &str) -> DrillError {
    DrillError::Internal(anyhow!("host {host} has no IPv4 address to measure a fault against"))
}

impl<K: Kernel> Drill<K> {
    /// The host at the other end of `host:iface` and its IPv4 address there (for a
    /// switch: the first other host on it).
    pub(super) fn neighbour(&self, host: &str, iface: &str) -> Result<(&RunningHost, IpAddr)> {
        let pi = self
            .plan
            .hosts
            .iter()
            .find(|h| h.name == host)
            .and_then(|h| h.interfaces.iter().find(|i| i.name == iface))
            .ok_or_else(|| DrillError::Internal(anyhow!("host {host} has no interface {iface}")))?;
        let mine = pi.addresses.iter().find(|c| c.addr.is_ipv4()).copied();
        for h in self.plan.hosts.iter().filter(|h| h.name != host) {
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
        Err(DrillError::Internal(anyhow!("host {host}: nobody with an IPv4 address is at the other end of {iface}")))
    }

    /// A loss measurement: `LOSS_PINGS` pings from `netns` to `to`, judged against `target`.
    pub(super) async fn ping_loss_within(&self, fault: &str, host: &str, netns: &str, to: IpAddr, target: f64) -> Result<f64> {
        let measured = self.kernel.ping_loss(netns, to, LOSS_PINGS).await?;
        if !faults::loss_within(target, measured, LOSS_PINGS) {
            return Err(DrillError::did_not_take(fault, host, format!("{:.1}% of {LOSS_PINGS} pings to {to} were lost, not about {:.1}%", measured * 100.0, target * 100.0)));
        }
        Ok(measured)
    }
}
