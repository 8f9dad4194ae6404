//! Pure logic of drill. Nothing here needs privileges or touches the kernel:
//! scenario files are parsed and validated into a [`scenario::Scenario`], compiled
//! into a [`plan::Plan`] (what the daemon will create, printable and diffable), and
//! probe observations are turned into [`verdict::Verdict`]s. The daemon and the CLI
//! share the wire types in [`api`].
//!
//! Modules, from the leaves up (each imports only those above it):
//! - [`source`]: positions in files, [`source::SourceError`] and the error collector;
//! - [`schema`]: declared keys ([`schema::Shape`]) and the reader that holds one TOML table
//!   to them (unknown keys, types, suggestions);
//! - [`model`]: leaf values of the model (Cidr, TcpState, names, Service, Solution);
//!   [`workload`]: the built-in services and their configs;
//! - [`topo`]: hosts, links, switches, routes;
//! - [`fault`]: the `Fault` enum and one module per fault kind, registered in
//!   [`fault::KINDS`]; [`check`]: the `Check` enum and one module per check kind,
//!   registered in [`check::KINDS`];
//! - [`scenario`]: the whole `Scenario` and `parse` (re-exports the types above);
//! - [`plan`], [`verdict`], [`api`], [`builtin`].

pub mod api;
pub mod builtin;
pub mod check;
pub mod fault;
pub mod model;
pub mod plan;
pub mod scenario;
pub mod schema;
pub mod source;
pub mod topo;
pub mod verdict;
pub mod workload;

/// Prefix of every kernel resource and path drill creates.
pub const PREFIX: &str = "drill";

/// Facts about drill hosts shared by the daemon (which builds them) and the CLI
/// (which enters them).
pub mod host {
    /// Namespaces of a host, in the order they must be entered: `mnt` last (after it,
    /// `/proc` paths of the machine are no longer reachable), `pid` before it (it only
    /// applies to children, which must see the host's `/proc`).
    pub const NAMESPACES: [&str; 5] = ["ipc", "uts", "net", "pid", "mnt"];
    /// Directory put first on PATH inside hosts (holds `svc`).
    pub const BIN_DIR: &str = "/run/drill/bin";
    /// PATH of commands run inside hosts.
    pub const PATH: &str = "/run/drill/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}
