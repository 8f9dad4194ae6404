//! `tcp-state-dwell`: no socket stays in a TCP state longer than a bound.

/// How a dwell check names its sockets: "on api:8080", or "on client to port 8080".
pub fn dwell_subject(host: &str, port: u16, peer: bool) -> String {
    if peer { format!("on {host} to port {port}") } else { format!("on {host}:{port}") }
}
