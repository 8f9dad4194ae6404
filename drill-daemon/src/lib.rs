//! drilld as a library: the daemon binary (`main.rs`), the benchmarks and the
//! privileged tests all drive these modules.

pub mod daemon;
pub mod drill;
pub mod faults;
pub mod host;
pub mod icmp;
pub mod journal;
pub mod measure;
pub mod netns;
pub mod probes;
pub mod tcfault;
pub mod tls;
pub mod topology;
pub mod wire;
pub mod workload;
