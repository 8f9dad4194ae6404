//! The commands run in a drill's hosts (placeholder until the exec capture lands).

use drill_core::record::Command;

use super::Drill;
use crate::kernel::Kernel;

impl<K: Kernel> Drill<K> {
    /// Every program started in the drill's hosts: (ms since `started_at`, command).
    pub fn commands(&self) -> Vec<(u64, Command)> {
        Vec::new()
    }
}
