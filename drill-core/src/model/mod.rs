//! The validated scenario model: the values every part of a scenario is built from.
//!
//! Leaf types only (addresses, TCP states, names, services, the solution): topology
//! ([`crate::topo`]), faults ([`crate::fault`]) and checks ([`crate::check`]) build on
//! them, and [`crate::scenario`] puts the whole [`crate::scenario::Scenario`] together.
//! Nothing here imports those modules, so there is no import circle.

mod names;
mod net;

use serde::{Deserialize, Serialize};

use crate::workload::Workload;

pub use names::{MAX_HOST_NAME, MAX_ID, is_name};
pub use net::{Cidr, TcpState};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub host: String,
    pub workload: Workload,
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

