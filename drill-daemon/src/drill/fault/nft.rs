//! nftables steps (nft-drop, nft-reject, nft-loss, nft-limit, nft-conn-limit,
//! nft-dnat): a host's rules are one table (`kernel::linux::nft`), rebuilt in one
//! transaction with every rule of the host's steps so far, so each step's measurement
//! sees its own rule and the ones before it, and its control saw only the ones before.
//! The table lives in the host's namespace: nothing to undo at teardown.

use anyhow::anyhow;
use drill_core::plan::{FaultStep, Mechanism};

use super::super::Drill;
use crate::error::{DrillError, Result};
use crate::kernel::Kernel;
use crate::kernel::linux::nft::{DnatRule, HostNft};

impl<K: Kernel> Drill<K> {
    /// Adds the step's rule or forward to the host's table and applies the table.
    pub(super) async fn apply_nft(&self, step: &FaultStep, table: &mut HostNft) -> Result<String> {
        let how = match &step.mechanism {
            Mechanism::Nft { rule, table: t, chain, resolved } => {
                table.rules.push(rule.clone());
                format!("nft table {t}, chain {chain}: {resolved}")
            }
            Mechanism::Dnat { proto, dport, to, table: t, chain } => {
                table.dnats.push(DnatRule { proto: proto.clone(), dport: *dport, to: *to });
                format!("nft table {t}, chain {chain}: {proto} dport {dport} dnat to {to}")
            }
            _ => return Err(DrillError::Internal(anyhow!("apply_nft takes nftables steps, not `{}`", step.summary))),
        };
        self.kernel.apply_nft(&self.host(&step.host)?.netns, &self.plan, &step.host, table).await?;
        Ok(how)
    }
}
