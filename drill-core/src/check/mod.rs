//! Checks: what `drill submit` judges.
//!
//! The validated [`Check`] enum and the registry of check kinds ([`KINDS`]): each kind is
//! one module that declares its keys (a [`Shape`]) with their ranges ([`schema::Bounds`],
//! enforced by the reader) and turns one `[[checks]]` table into its variant, registered
//! in one line. Adding a kind: its module with `KIND` and tests, its line in [`KINDS`],
//! its keys in scenarios/README.md (a test checks they are there).

pub mod conntrack;
mod count;
mod counter;
mod fabric;
mod http_slo;
pub mod processes;
pub mod tcp_state_dwell;

use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::de::DeTable;

use crate::model::{Hosts, Service, TcpState};
use crate::schema::{self, Entry, Key, Shape, Ty, key};
use crate::source::Collector;

pub use processes::ProcWatch;
pub use tcp_state_dwell::dwell_subject;

/// A check kind: its keys and how one table of it becomes a [`Check`].
pub struct Kind {
    pub shape: Shape,
    pub build: fn(&mut Entry<'_, '_, '_, '_>, &Env<'_>) -> Option<Check>,
}

/// Every check kind, one line each.
pub const KINDS: &[Kind] = &[
    tcp_state_dwell::KIND,
    http_slo::KIND,
    count::DROPS,
    count::RETRANSMITS,
    count::RESETS,
    count::OOM_KILLS,
    count::ENOSPC,
    counter::KIND,
    processes::ZOMBIES,
    processes::PROCESS_CPU,
    fabric::KIND,
    conntrack::KIND,
];

const NAMES: [&str; KINDS.len()] = {
    let mut out = [""; KINDS.len()];
    let mut i = 0;
    while i < KINDS.len() {
        out[i] = KINDS[i].shape.name;
        i += 1;
    }
    out
};

/// Check kinds the engine knows (the names of [`KINDS`]).
pub const CHECK_KINDS: &[&str] = &NAMES;

/// Keys every check kind takes.
const COMMON: &[Key] = &[
    key("kind", Ty::Str, "\"http-slo\"", "the check kind"),
    key("name", Ty::Str, "\"requests succeed\"", "what the verdict calls the check; derived when left out"),
    key("guards", Ty::List, "[\"nft-drop\"]", "the faults this check must catch (default: all; [] for a check the fix must keep passing)"),
];

const fn shape(name: &'static str, keys: &'static [Key]) -> Shape {
    Shape { name, is_kind: true, keys, common: COMMON }
}

/// What a check may refer to.
pub struct Env<'a> {
    pub hosts: &'a Hosts,
    pub services: &'a [Service],
    /// Links and switches (a fabric-drops check names a switch).
    pub segments: &'a [crate::topo::Segment],
}

/// Reads one `[[checks]]` table; every problem goes to `cx`.
pub fn read(cx: &mut Collector, span: Range<usize>, table: &DeTable<'_>, env: &Env) -> Option<Check> {
    let i = schema::kind_of(cx, span.clone(), table, "check", CHECK_KINDS)?;
    let family: Vec<&'static Shape> = KINDS.iter().map(|k| &k.shape).collect();
    let mut e = Entry::new(cx, span, table, &KINDS[i].shape, &family);
    (KINDS[i].build)(&mut e, env)
}

/// A validated check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Check {
    /// No socket on host:port stays in `state` longer than `max_secs` during the window,
    /// and at least `min_connections` connections passed through it (proof of load).
    /// With `peer`, `port` is the remote port: e.g. the client's sockets to api:8080 stuck
    /// in SYN_SENT are SYNs nobody answers.
    TcpStateDwell {
        name: String,
        host: String,
        port: u16,
        #[serde(default)]
        peer: bool,
        state: TcpState,
        max_secs: f64,
        min_connections: u64,
    },
    /// At most `max` events of a kind on `host` (and `port`, when given) during the window.
    /// With `max_ratio` (retransmits only), the bound is retransmissions per segment the
    /// host sent (`Tcp: OutSegs`) instead of a count.
    Count {
        name: String,
        host: String,
        port: Option<u16>,
        counted: Counted,
        max: u64,
        #[serde(default)]
        max_ratio: Option<f64>,
    },
    /// A kernel MIB counter of `host`'s network namespace (`GROUP:FIELD` of
    /// /proc/net/snmp, netstat or snmp6) moved at most `max` (and at least `min`).
    Counter {
        name: String,
        host: String,
        counter: String,
        max: u64,
        #[serde(default)]
        min: Option<u64>,
    },
    /// Synthetic HTTP requests from `from` to `target_host:port` succeed often enough.
    HttpSlo {
        name: String,
        from: String,
        target_host: String,
        port: u16,
        path: String,
        min_success_ratio: f64,
        /// Bound on the p95 latency of successful requests.
        #[serde(default)]
        max_latency_ms: Option<f64>,
        timeout_ms: u64,
        interval_ms: u64,
        /// HTTPS, trusting the drill's CA.
        #[serde(default)]
        tls: bool,
        /// The name asked for: TLS server name and Host header (default: `target_host`).
        #[serde(default)]
        sni: Option<String>,
        /// Behave as this loadgen service on `from` is configured (its config file as
        /// it is at submit time): keep-alive, TCP_NODELAY, request body, TLS.
        #[serde(default)]
        client: Option<String>,
        /// `target_host` is a DNS name, resolved for every request through `from`'s own
        /// /etc/resolv.conf (the resolution counts in the latency; a failed one fails
        /// the request).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resolve: bool,
    },
    /// The host's processes (its PID namespace), sampled through the window: zombies at
    /// any moment, or the CPU one process used.
    Processes { name: String, host: String, watch: ProcWatch },
    /// At most `max` frames dropped by `switch`'s fabric for exceeding its path MTU.
    FabricDrops { name: String, switch: String, max: u64 },
    /// `host`'s conntrack table holds `margin` times the flows `churn` keeps tracked
    /// (`flows_per_sec` x the host's UDP timeout), its size rule is intact, its count is
    /// below its size and it dropped nothing (check/conntrack.rs).
    ConntrackHeadroom { name: String, host: String, churn: String, flows_per_sec: u32, margin: f64 },
}

/// What a counting check counts on its host during the window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Counted {
    /// Packets dropped by the kernel, optionally only with this drop reason
    /// (kernel name without SKB_DROP_REASON_, e.g. NETFILTER_DROP).
    Drops {
        reason: Option<String>,
    },
    Retransmits,
    ResetsSent,
    ResetsReceived,
    OomKills,
    /// System calls that returned ENOSPC.
    Enospc,
}

impl Counted {
    pub fn describe(&self) -> String {
        match self {
            Counted::Drops { reason: Some(r) } => format!("packet drops ({r})"),
            Counted::Drops { reason: None } => "packet drops".into(),
            Counted::Retransmits => "retransmissions".into(),
            Counted::ResetsSent => "resets sent".into(),
            Counted::ResetsReceived => "resets received".into(),
            Counted::OomKills => "OOM kills".into(),
            Counted::Enospc => "system calls failed with ENOSPC (disk full)".into(),
        }
    }
}

impl Check {
    pub fn name(&self) -> &str {
        match self {
            Check::TcpStateDwell { name, .. }
            | Check::HttpSlo { name, .. }
            | Check::Count { name, .. }
            | Check::Counter { name, .. }
            | Check::Processes { name, .. }
            | Check::FabricDrops { name, .. }
            | Check::ConntrackHeadroom { name, .. } => name,
        }
    }
}
