//! tc-rate: tbf on the whole interface or an htb class for one port (measured by a
//! transfer to the neighbour, `drill/measure.rs`). The qdisc lives in the host's
//! namespace: nothing to undo at teardown.

use super::super::Drill;
use crate::error::Result;
use crate::kernel::Kernel;

impl<K: Kernel> Drill<K> {
    pub(super) async fn apply_rate(&self, host: &str, iface: &str, rate_bps: u64, port: Option<u16>) -> Result<String> {
        self.kernel.set_rate(&self.host(host)?.netns, host, iface, rate_bps, port).await?;
        Ok(match port {
            Some(p) => format!("tc htb on {iface}: port {p} at {} kbit/s", rate_bps / 1000),
            None => format!("tc tbf on {iface} at {} kbit/s", rate_bps / 1000),
        })
    }
}
