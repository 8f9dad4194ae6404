//! tc-rate: tbf on the whole interface or an htb class for one port, measured by a
//! transfer to the host on the interface's other end. The qdisc lives in the host's
//! namespace: nothing to undo at teardown.

use super::super::Drill;
use super::super::measure::{RATE_RATIO_OK, RATE_SECS};
use crate::error::{DrillError, Result};
use crate::kernel::Kernel;

impl<K: Kernel> Drill<K> {
    pub(super) async fn apply_rate(&self, host: &str, iface: &str, rate_bps: u64, port: Option<u16>) -> Result<String> {
        self.kernel.set_rate(&self.host(host)?.netns, host, iface, rate_bps, port).await?;
        self.measure_rate(host, iface, rate_bps, port).await
    }

    /// Measures a shaped interface by a transfer of `RATE_SECS` at the asked rate to
    /// the host on its other end (behind a switch: the first other host on it).
    async fn measure_rate(&self, host: &str, iface: &str, rate_bps: u64, port: Option<u16>) -> Result<String> {
        // To the neighbour's address on this link, so the transfer crosses the shaped interface.
        let (peer, addr) = self.neighbour(host, iface)?;
        let bytes = (rate_bps as f64 / 8.0 * RATE_SECS) as u64;
        let measured = match self.kernel.transfer_rate(&self.host(host)?.netns, &peer.netns, addr, port.unwrap_or(0), bytes).await {
            Ok(m) => m,
            Err(e) if port.is_some() => return Ok(format!("not measured: port {} is busy on {host} ({e})", port.unwrap_or(0))),
            Err(e) => return Err(e),
        };
        if !RATE_RATIO_OK.contains(&(measured / rate_bps as f64)) {
            let figure = format!("a transfer to {} ran at {:.0} kbit/s, asked {} kbit/s", peer.name, measured / 1000.0, rate_bps / 1000);
            return Err(DrillError::did_not_take(format!("tc-rate on {iface}"), host, figure));
        }
        Ok(format!("a transfer to {}{} ran at {:.0} kbit/s", peer.name, port.map(|p| format!(" from port {p}")).unwrap_or_default(), measured / 1000.0))
    }
}
