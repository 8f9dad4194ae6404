//! drilld as a library: the daemon binary (`main.rs`), the benchmarks and the
//! privileged tests all drive these modules. ARCHITECTURE.md has the module map.

pub mod api_guard;
pub mod btf;
pub mod daemon;
pub mod doctor;
pub mod drill;
pub mod error;
pub mod history;
pub mod host;
pub mod icmp;
pub mod journal;
pub mod kernel;
pub mod peer;
pub mod probes;
pub mod relay;
pub mod resolver;
pub mod session;
pub mod tls;
pub mod workload;

pub use error::DrillError;
