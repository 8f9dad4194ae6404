//! The configs of the built-in HTTP workloads: httpd (the application), loadgen (the
//! client) and proxy (the reverse proxy).

use serde::{Deserialize, Serialize};

use super::{default_true, header};

fn default_max_open_files() -> u64 {
    1024
}
fn default_body() -> String {
    "ok\n".to_string()
}
fn default_backlog() -> u32 {
    1024
}

/// `httpd`: a small HTTP/1.1 server. Its connection handling is configurable so that
/// scenarios can make it misbehave the way real servers do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpdConfig {
    /// Address and port to listen on, e.g. "0.0.0.0:8080".
    pub listen: String,
    /// Close a connection when the client has closed its side (read returns EOF).
    #[serde(default = "default_true")]
    pub close_on_eof: bool,
    /// Close connections idle for this many seconds; 0 disables the idle timer.
    #[serde(default)]
    pub idle_timeout_secs: u64,
    /// Open-file limit of the server process (RLIMIT_NOFILE).
    #[serde(default = "default_max_open_files")]
    pub max_open_files: u64,
    /// Delay before each response, in milliseconds.
    #[serde(default)]
    pub response_delay_ms: u64,
    /// Response body.
    #[serde(default = "default_body")]
    pub body: String,
    /// Length of the accept queue asked of listen(2) (the kernel caps it at
    /// net.core.somaxconn).
    #[serde(default = "default_backlog")]
    pub backlog: u32,
    /// Connections served at once (a worker pool, as a threaded server's); while every
    /// worker is busy the server accepts nothing and new connections wait in the
    /// kernel's accept queue. 0: no limit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub workers: u32,
    /// Serve HTTPS with this certificate (PEM path in the host); empty: plain HTTP.
    #[serde(default)]
    pub tls_cert: String,
    /// The certificate's private key (PEM path in the host).
    #[serde(default)]
    pub tls_key: String,
    /// Size of the in-memory response cache, MiB: filled once the server listens and
    /// kept for the process's life (its resident memory grows by this much).
    #[serde(default)]
    pub cache_mb: u64,
    /// Queue every request as a job file in this directory (a job runner's queue_dir);
    /// a request whose job cannot be written (a full disk) is answered 500. Empty: none.
    #[serde(default)]
    pub spool_dir: String,
    /// With `spool_dir`: answer 503 while the spool already holds this many jobs (its
    /// runner has fallen behind or stopped). 0: no limit.
    #[serde(default)]
    pub spool_max: u32,
}

impl HttpdConfig {
    pub(super) fn render(&self, service: &str) -> String {
        header(service, "the httpd service")
            + &format!(
                "# Address and port to listen on.\n\
             listen = {listen:?}\n\
             \n\
             # Close a connection as soon as the client has closed its side (FIN received,\n\
             # read returns EOF). With false, the socket stays open until the idle timer fires.\n\
             close_on_eof = {close_on_eof}\n\
             \n\
             # Close connections idle for this many seconds. 0 disables the idle timer.\n\
             idle_timeout_secs = {idle}\n\
             \n\
             # Maximum number of open files (sockets included) of the server process.\n\
             max_open_files = {nofile}\n\
             \n\
             # Artificial delay before each response, in milliseconds.\n\
             response_delay_ms = {delay}\n\
             \n\
             # Response body.\n\
             body = {body:?}\n\
             \n\
             # Accept queue length asked of listen(2); the kernel caps it at net.core.somaxconn.\n\
             backlog = {backlog}\n\
             \n\
             # Connections served at once (worker pool); 0: no limit. While every worker is\n\
             # busy, new connections wait in the accept queue.\n\
             workers = {workers}\n\
             \n\
             # HTTPS: certificate and key (PEM files); empty serves plain HTTP.\n\
             # Certificates live in /etc/ssl/internal (`openssl x509 -noout -dates -in FILE`).\n\
             tls_cert = {tls_cert:?}\n\
             tls_key = {tls_key:?}\n\
             \n\
             # In-memory response cache, in MiB, warmed at start and kept resident.\n\
             cache_mb = {cache_mb}\n\
             \n\
             # Every request is queued as a job file in this directory for the job runner\n\
             # (empty: none); a request whose job cannot be written is answered 500.\n\
             spool_dir = {spool_dir:?}\n\
             \n\
             # Answer 503 while the spool holds this many jobs (the runner is behind); 0: no limit.\n\
             spool_max = {spool_max}\n",
                cache_mb = self.cache_mb,
                spool_dir = self.spool_dir,
                spool_max = self.spool_max,
                backlog = self.backlog,
                workers = self.workers,
                tls_cert = self.tls_cert,
                tls_key = self.tls_key,
                listen = self.listen,
                close_on_eof = self.close_on_eof,
                idle = self.idle_timeout_secs,
                nofile = self.max_open_files,
                delay = self.response_delay_ms,
                body = self.body,
            )
    }
}

fn default_rate() -> u32 {
    20
}
fn default_timeout_ms() -> u64 {
    2000
}
fn default_path() -> String {
    "/".to_string()
}

/// `loadgen`: keeps sending HTTP requests to a target, one connection per request
/// (the client closes first, as short-lived clients do), and logs failures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadgenConfig {
    /// host:port to send requests to; host names resolve through the host's /etc/hosts.
    pub target: String,
    /// Request path.
    #[serde(default = "default_path")]
    pub path: String,
    /// Requests per second.
    #[serde(default = "default_rate")]
    pub rate_per_sec: u32,
    /// Per-request timeout, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Reuse connections (HTTP keep-alive) instead of one connection per request.
    #[serde(default)]
    pub keepalive: bool,
    /// Set TCP_NODELAY on its sockets. With false, Nagle's algorithm holds a small
    /// write while an earlier one is unacknowledged: with a request written in two
    /// parts on a kept-alive connection, each request waits for the server's
    /// delayed ACK (~40 ms on Linux).
    #[serde(default = "default_true")]
    pub nodelay: bool,
    /// Send a POST with a body of this many bytes, written after the head in a
    /// second write (as many clients do); 0 sends a GET.
    #[serde(default)]
    pub body_bytes: u32,
    /// Speak HTTPS, trusting the drill's CA (/etc/ssl/internal/ca.pem).
    #[serde(default)]
    pub tls: bool,
    /// Requests sent together (each on its own connection) every `burst /
    /// rate_per_sec` seconds, as a client that fans out; 1: evenly spaced.
    #[serde(default = "default_burst", skip_serializing_if = "is_one")]
    pub burst: u32,
}

fn default_burst() -> u32 {
    1
}
fn is_one(n: &u32) -> bool {
    *n == 1
}
fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl LoadgenConfig {
    pub(super) fn render(&self, service: &str) -> String {
        header(service, "the load generator")
            + &format!(
                "# host:port to send requests to (names resolve through /etc/hosts).\n\
             target = {target:?}\n\
             path = {path:?}\n\
             rate_per_sec = {rate}\n\
             timeout_ms = {timeout}\n\
             \n\
             # Requests sent together, every burst / rate_per_sec seconds (1: evenly spaced).\n\
             burst = {burst}\n\
             \n\
             # Reuse connections (HTTP keep-alive) instead of one per request.\n\
             keepalive = {keepalive}\n\
             \n\
             # TCP_NODELAY on the client's sockets (false: Nagle's algorithm is on).\n\
             nodelay = {nodelay}\n\
             \n\
             # POST a body of this many bytes, written after the head (0: GET).\n\
             body_bytes = {body_bytes}\n\
             \n\
             # HTTPS, trusting the internal CA (/etc/ssl/internal/ca.pem).\n\
             tls = {tls}\n",
                tls = self.tls,
                burst = self.burst,
                keepalive = self.keepalive,
                nodelay = self.nodelay,
                body_bytes = self.body_bytes,
                target = self.target,
                path = self.path,
                rate = self.rate_per_sec,
                timeout = self.timeout_ms,
            )
    }
}

fn default_upstream_timeout_ms() -> u64 {
    5000
}
fn default_keepalive_secs() -> u64 {
    60
}

/// `proxy`: an HTTP/1.1 reverse proxy (a load balancer's front) in front of one
/// upstream. It keeps idle upstream connections for reuse, and answers 502 when an
/// upstream connection fails (refused, reset, closed) and 504 when the upstream does
/// not answer within `upstream_timeout_ms`. Like many simple proxies it does not watch
/// its idle upstream connections: one the upstream closed is found out on reuse.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Address and port to listen on, e.g. "0.0.0.0:80".
    pub listen: String,
    /// host:port of the upstream server.
    pub upstream: String,
    /// How long to wait for the upstream's response before answering 504.
    #[serde(default = "default_upstream_timeout_ms")]
    pub upstream_timeout_ms: u64,
    /// How long an idle upstream connection is kept for reuse; 0: no reuse.
    #[serde(default = "default_keepalive_secs")]
    pub upstream_keepalive_secs: u64,
}

impl ProxyConfig {
    pub(super) fn render(&self, service: &str) -> String {
        header(service, "the reverse proxy")
            + &format!(
                "# Address and port to listen on.\n\
             listen = {listen:?}\n\
             \n\
             # host:port of the upstream server (names resolve through /etc/hosts).\n\
             upstream = {upstream:?}\n\
             \n\
             # How long to wait for the upstream's response before answering 504, in ms.\n\
             upstream_timeout_ms = {timeout}\n\
             \n\
             # How long an idle upstream connection is kept for reuse, in seconds (0: no reuse).\n\
             # Keep it below the upstream's own idle timeout, or reused connections the\n\
             # upstream has closed answer 502.\n\
             upstream_keepalive_secs = {keepalive}\n",
                listen = self.listen,
                upstream = self.upstream,
                timeout = self.upstream_timeout_ms,
                keepalive = self.upstream_keepalive_secs,
            )
    }
}
