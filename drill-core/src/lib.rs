//! Pure logic of drill. Nothing here needs privileges or touches the kernel:
//! scenario files are parsed and validated into a [`scenario::Scenario`], compiled
//! into a [`plan::Plan`] (what the daemon will create, printable and diffable), and
//! probe observations are turned into [`verdict::Verdict`]s. The daemon and the CLI
//! share the wire types in [`api`].

pub mod api;
pub mod builtin;
pub mod plan;
pub mod scenario;
pub mod source;
pub mod verdict;
pub mod workload;

/// Prefix of every kernel resource and path drill creates.
pub const PREFIX: &str = "drill";
