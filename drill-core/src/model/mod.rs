//! The validated scenario model: the values every part of a scenario is built from.
//!
//! Leaf types only (addresses, TCP states, names, services, the solution): topology
//! ([`crate::topo`]), faults ([`crate::fault`]) and checks ([`crate::check`]) build on
//! them, and [`crate::scenario`] puts the whole [`crate::scenario::Scenario`] together.
//! Nothing here imports those modules, so there is no import circle.

mod names;
mod net;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;

use crate::source::Collector;
use crate::workload::Workload;

pub use names::{MAX_HOST_NAME, MAX_ID, is_name};
pub use net::{Cidr, TcpState};

/// The hosts a scenario declares, for the parts that name them.
pub struct Hosts {
    pub names: BTreeSet<String>,
    /// The names, comma-separated, for messages.
    pub known: String,
}

impl Hosts {
    pub fn new(names: BTreeSet<String>) -> Hosts {
        let known = names.iter().cloned().collect::<Vec<_>>().join(", ");
        Hosts { names, known }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// Whether `h` names a declared host; reports it (with the known hosts) when not.
    pub fn check(&self, cx: &mut Collector, h: &Spanned<String>) -> bool {
        if self.names.contains(h.get_ref()) {
            return true;
        }
        cx.err(h.span(), format!("unknown host `{}`", h.get_ref()), format!("declare it in [[hosts]] or use one of: {}", self.known));
        false
    }
}

/// A port number (1-65535); reports it when out of range.
pub fn port(cx: &mut Collector, port: &Spanned<i64>) -> Option<u16> {
    match u16::try_from(*port.get_ref()) {
        Ok(p) if p > 0 => Some(p),
        _ => {
            cx.err(port.span(), format!("port {} is out of range", port.get_ref()), "use a port between 1 and 65535");
            None
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub host: String,
    pub workload: Workload,
    /// When the host's init starts it again after it ended.
    #[serde(default, skip_serializing_if = "Restart::is_no")]
    pub restart: Restart,
}

/// A service's restart policy, as systemd's `Restart=`: `on-failure` after it exits with
/// an error status or is killed by a signal (the OOM killer's SIGKILL), `always` after
/// any exit; never after `svc stop`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    #[default]
    No,
    OnFailure,
    Always,
}

impl Restart {
    pub fn is_no(&self) -> bool {
        *self == Restart::No
    }
}

impl std::str::FromStr for Restart {
    type Err = ();
    fn from_str(s: &str) -> Result<Restart, ()> {
        match s {
            "no" => Ok(Restart::No),
            "on-failure" => Ok(Restart::OnFailure),
            "always" => Ok(Restart::Always),
            _ => Err(()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Solution {
    pub summary: String,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub host: String,
    pub run: String,
}
