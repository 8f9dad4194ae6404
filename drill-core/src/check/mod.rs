//! Checks: what `drill submit` judges. The validated [`Check`] enum.

use serde::{Deserialize, Serialize};

use crate::model::TcpState;

pub mod tcp_state_dwell;

pub use tcp_state_dwell::dwell_subject;

/// Check kinds the engine knows.
pub const CHECK_KINDS: &[&str] = &["tcp-state-dwell", "http-slo", "drops", "retransmits", "resets", "oom-kills"];

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
        /// Behave as this loadgen service on `from` is configured (its config file as
        /// it is at submit time): keep-alive, TCP_NODELAY, request body, TLS.
        #[serde(default)]
        client: Option<String>,
    },
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
        }
    }
}

impl Check {
    pub fn name(&self) -> &str {
        match self {
            Check::TcpStateDwell { name, .. } | Check::HttpSlo { name, .. } | Check::Count { name, .. } => name,
        }
    }
}
