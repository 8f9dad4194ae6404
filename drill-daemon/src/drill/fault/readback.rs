//! Faults measured by reading their effect back: a sysctl (the value in the host),
//! an MTU (the link's), a removed route (gone from the table). Each lives in the
//! host's network namespace and goes with it: nothing to undo at teardown.

use drill_core::scenario::Cidr;

use super::super::Drill;
use crate::error::Result;
use crate::kernel::Kernel;

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
}
