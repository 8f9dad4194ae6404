//! Built-in workloads: the services drill runs inside hosts, and their configs.
//!
//! A workload's config is a TOML file inside the host (`/etc/<service>/<service>.toml`)
//! that the learner can read and edit; the service reads it when it starts, so a
//! changed config takes effect on `svc restart <service>`. Faults of kind
//! `service-config` are patches over these configs.

use serde::{Deserialize, Serialize};

pub mod nginx;
pub use nginx::NginxConfig;
mod dnsmasq;
pub use dnsmasq::{DnsRecord, DnsmasqConfig};

/// The kinds of built-in workload a scenario can start.
pub const KINDS: &[&str] = &["httpd", "loadgen", "proxy", "nginx", "dnsmasq", "worker", "kube-proxy", "overlay"];

/// A built-in workload with its typed config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "config", rename_all = "kebab-case")]
pub enum Workload {
    Httpd(HttpdConfig),
    Loadgen(LoadgenConfig),
    Proxy(ProxyConfig),
    /// The real nginx (Debian's), its nginx.conf rendered from this typed config.
    Nginx(NginxConfig),
    /// The real dnsmasq (Debian's), its dnsmasq.conf rendered from this typed config.
    Dnsmasq(DnsmasqConfig),
    Worker(WorkerConfig),
    KubeProxy(KubeProxyConfig),
    Overlay(OverlayConfig),
}

impl Workload {
    /// Whether the workload speaks TLS (so its drill needs certificates).
    pub fn uses_tls(&self) -> bool {
        match self {
            Workload::Httpd(c) => !c.tls_cert.is_empty(),
            Workload::Loadgen(c) => c.tls,
            Workload::Proxy(_) | Workload::Dnsmasq(_) | Workload::Worker(_) | Workload::KubeProxy(_) | Workload::Overlay(_) => false,
            Workload::Nginx(c) => c.uses_tls(),
        }
    }

    /// Builds a typed workload from its kind and config table; the error says which
    /// key is wrong.
    pub fn from_table(kind: &str, table: toml::Table) -> Result<Workload, String> {
        let value = toml::Value::Table(table);
        match kind {
            "httpd" => value.try_into().map(Workload::Httpd).map_err(|e| e.message().to_string()),
            "loadgen" => value.try_into().map(Workload::Loadgen).map_err(|e| e.message().to_string()),
            "proxy" => value.try_into().map(Workload::Proxy).map_err(|e| e.message().to_string()),
            "nginx" => {
                let c: NginxConfig = value.try_into().map_err(|e: toml::de::Error| e.message().to_string())?;
                c.validate()?;
                Ok(Workload::Nginx(c))
            }
            "dnsmasq" => value.try_into().map(Workload::Dnsmasq).map_err(|e| e.message().to_string()),
            "worker" => value.try_into().map(Workload::Worker).map_err(|e| e.message().to_string()),
            "kube-proxy" => value.try_into().map(Workload::KubeProxy).map_err(|e| e.message().to_string()),
            "overlay" => value.try_into().map(Workload::Overlay).map_err(|e| e.message().to_string()),
            other => Err(format!("unknown workload kind `{other}` (known: {})", KINDS.join(", "))),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Workload::Httpd(_) => "httpd",
            Workload::Loadgen(_) => "loadgen",
            Workload::Proxy(_) => "proxy",
            Workload::Nginx(_) => "nginx",
            Workload::Dnsmasq(_) => "dnsmasq",
            Workload::Worker(_) => "worker",
            Workload::KubeProxy(_) => "kube-proxy",
            Workload::Overlay(_) => "overlay",
        }
    }

    /// The config file as the learner sees it inside the host, with comments.
    pub fn render_config(&self, service: &str) -> String {
        match self {
            Workload::Httpd(c) => c.render(service),
            Workload::Loadgen(c) => c.render(service),
            Workload::Proxy(c) => c.render(service),
            Workload::Nginx(c) => c.render(),
            Workload::Dnsmasq(c) => c.render(service),
            Workload::Worker(c) => c.render(service),
            Workload::KubeProxy(c) => c.render(service),
            Workload::Overlay(c) => c.render(service),
        }
    }

    /// The program a workload runs that is not drill's own, and its Debian package: a
    /// drill whose program is missing is refused at start, naming the package.
    pub fn binary(&self) -> Option<(&'static str, &'static str)> {
        match self {
            Workload::Dnsmasq(_) => Some((dnsmasq::BINARY, dnsmasq::PACKAGE)),
            Workload::Nginx(_) => Some((nginx::BINARY, nginx::PACKAGE)),
            _ => None,
        }
    }

    /// Parses a config file written by [`Workload::render_config`] (and perhaps edited).
    /// nginx's file is nginx.conf, which nginx itself reads (`nginx -t`).
    pub fn parse_config(kind: &str, text: &str) -> Result<Workload, String> {
        if kind == "nginx" {
            return Err("nginx reads its own nginx.conf; test it with `nginx -t`".into());
        }
        if kind == "dnsmasq" {
            return DnsmasqConfig::parse(text).map(Workload::Dnsmasq);
        }
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        Workload::from_table(kind, table)
    }

    /// Path of the service's config file inside its host: `/etc/NAME/NAME.toml` for the
    /// built-in workloads, the real daemon's own file for a Debian one (nginx.conf,
    /// `/etc/NAME.conf` for dnsmasq).
    /// Files the service holds open for its whole life (a deleted one keeps its blocks).
    pub fn held_files(&self) -> Vec<String> {
        match self {
            Workload::Worker(c) if !c.log_file.is_empty() => vec![c.log_file.clone()],
            _ => Vec::new(),
        }
    }

    pub fn config_path(&self, service: &str) -> String {
        match self {
            Workload::Nginx(_) => nginx::CONFIG_PATH.to_string(),
            Workload::Dnsmasq(_) => format!("/etc/{service}.conf"),
            _ => config_path(service),
        }
    }

    /// Path of the service's log (its stdout and stderr) inside its host.
    pub fn log_path(&self, service: &str) -> String {
        match self {
            Workload::Nginx(_) => nginx::ERROR_LOG.to_string(),
            _ => log_path(service),
        }
    }

    /// The ports the service listens on (none for a client).
    pub fn listen_ports(&self) -> Vec<u16> {
        let listen = match self {
            Workload::Httpd(c) => &c.listen,
            Workload::Proxy(c) => &c.listen,
            Workload::Nginx(c) => return c.listen_ports(),
            Workload::Dnsmasq(c) => return c.port().into_iter().collect(),
            Workload::Loadgen(_) | Workload::Worker(_) | Workload::KubeProxy(_) | Workload::Overlay(_) => return Vec::new(),
        };
        listen.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).into_iter().collect()
    }

    /// Names the service answers for, beyond its host's (nginx's `server_name`s).
    pub fn served_names(&self) -> Vec<String> {
        match self {
            Workload::Nginx(c) => c.names(),
            _ => Vec::new(),
        }
    }

    /// Names the service needs a certificate of its own for (nginx's TLS servers).
    pub fn tls_names(&self) -> Vec<String> {
        match self {
            Workload::Nginx(c) => c.tls_names(),
            _ => Vec::new(),
        }
    }

    /// Whether `recorded` (what the running service recorded it started with, in its
    /// host's /run) shows it runs this config, rendered for `service`.
    pub fn runs_with(&self, service: &str, recorded: &str) -> Result<bool, String> {
        match self {
            Workload::Nginx(_) => Ok(nginx::dump_has(recorded, &self.render_config(service))),
            _ => Ok(Workload::parse_config(self.kind(), recorded)? == *self),
        }
    }
}

/// Path of a service's config file inside its host.
pub fn config_path(service: &str) -> String {
    format!("/etc/{service}/{service}.toml")
}

/// Where a running service records the config it started with, inside its host (the
/// `/run` tmpfs): the engine reads it back to prove a service-config fault took, and
/// checks that behave as a client read it, not the file the learner may have edited
/// without a restart.
pub fn effective_config_path(service: &str) -> String {
    format!("/run/{service}.effective.toml")
}

/// Path of a service's log file inside its host.
pub fn log_path(service: &str) -> String {
    format!("/var/log/{service}.log")
}

fn default_true() -> bool {
    true
}
fn default_max_open_files() -> u64 {
    1024
}
fn default_body() -> String {
    "ok\n".to_string()
}
fn default_backlog() -> u32 {
    1024
}

/// The first lines of every rendered config: what it is and how it takes effect.
fn header(service: &str, what: &str) -> String {
    format!("# {service}: configuration of {what} on this host.\n# Read when the service starts: after editing, run `svc restart {service}`.\n\n")
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
    fn render(&self, service: &str) -> String {
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
    fn render(&self, service: &str) -> String {
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
    fn render(&self, service: &str) -> String {
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

fn default_queue_dir() -> String {
    "/var/spool/jobs".to_string()
}
fn default_poll_ms() -> u64 {
    500
}
fn default_task() -> String {
    "true".to_string()
}

/// `worker`: a background job runner. It looks for job files in `queue_dir` every
/// `poll_interval_ms` (0: it never sleeps between looks, a busy loop) and runs `task`
/// (`/bin/sh -c`) in a child process `tasks_per_sec` times a second, waiting for each
/// child to finish when `reap_children` is on (off: finished children stay zombies).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Directory polled for job files (each is processed and removed).
    #[serde(default = "default_queue_dir")]
    pub queue_dir: String,
    /// Pause between two looks at the queue, ms; 0 polls without pause.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// Scheduled tasks started per second (0: none).
    #[serde(default)]
    pub tasks_per_sec: u32,
    /// The task, a shell command run in a child process.
    #[serde(default = "default_task")]
    pub task: String,
    /// Collect each finished task's exit status (waitpid).
    #[serde(default = "default_true")]
    pub reap_children: bool,
    /// The runner's debug log: opened once at start (append) and written on every look
    /// at the queue and every task. Empty: none.
    #[serde(default)]
    pub log_file: String,
}

impl WorkerConfig {
    fn render(&self, service: &str) -> String {
        header(service, "the background job runner")
            + &format!(
                "# Directory polled for job files; each file found is processed and removed.\n\
             queue_dir = {queue:?}\n\
             \n\
             # Pause between two looks at the queue, in milliseconds.\n\
             poll_interval_ms = {poll}\n\
             \n\
             # Scheduled task: a shell command run in a child process, this many times a second.\n\
             tasks_per_sec = {rate}\n\
             task = {task:?}\n\
             \n\
             # Wait for each finished task process to collect its exit status.\n\
             reap_children = {reap}\n\
             \n\
             # Debug log, opened once at start and appended to (empty: none).\n\
             log_file = {log:?}\n",
                log = self.log_file,
                queue = self.queue_dir,
                poll = self.poll_interval_ms,
                rate = self.tasks_per_sec,
                task = self.task,
                reap = self.reap_children,
            )
    }
}

fn default_protocol() -> String {
    "tcp".to_string()
}

/// `kube-proxy`: a node's service proxy, as Kubernetes' kube-proxy in nftables mode
/// programs it: the traffic of this host (and what it routes) to a service's cluster IP
/// and port is DNATed to one of the service's endpoints (pod address and port), chosen
/// at random (`numgen random mod N` and a verdict map), in table `ip kube-proxy`. It
/// programs the table when it starts (`svc restart` resyncs it from the config, where an
/// endpoints controller would write the service's endpoints) and then idles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeProxyConfig {
    /// The service, "NAMESPACE/NAME" (names the chains, as kube-proxy's hashes do).
    pub service: String,
    /// The service's virtual IP (an IPv4 address no host has).
    pub cluster_ip: String,
    /// The service's port on the cluster IP.
    pub port: u16,
    /// `tcp` or `udp`.
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// The ready endpoints, "IPV4:PORT" each.
    pub endpoints: Vec<String>,
}

impl KubeProxyConfig {
    /// The config's endpoints and cluster IP as addresses; the error names the bad one.
    pub fn parsed(&self) -> Result<(std::net::Ipv4Addr, Vec<std::net::SocketAddrV4>), String> {
        let vip = self.cluster_ip.parse().map_err(|_| format!("cluster_ip `{}` is not an IPv4 address", self.cluster_ip))?;
        let eps = self.endpoints.iter().map(|e| e.parse().map_err(|_| format!("endpoint `{e}` is not IPV4:PORT"))).collect::<Result<Vec<_>, String>>()?;
        if !matches!(self.protocol.as_str(), "tcp" | "udp") {
            return Err(format!("protocol `{}` is not tcp or udp", self.protocol));
        }
        Ok((vip, eps))
    }

    fn render(&self, service: &str) -> String {
        let eps: Vec<String> = self.endpoints.iter().map(|e| format!("{e:?}")).collect();
        header(service, "the node's service proxy (Kubernetes kube-proxy, nftables mode)")
            + &format!(
                "# The service and its cluster IP (virtual: no interface has it; nftables DNATs it).\n\
             service = {svc:?}\n\
             cluster_ip = {vip:?}\n\
             port = {port}\n\
             protocol = {proto:?}\n\
             \n\
             # The service's ready endpoints (pod IP:port), as the EndpointSlice lists them.\n\
             # Each new connection goes to one of them at random.\n\
             endpoints = [{eps}]\n",
                svc = self.service,
                vip = self.cluster_ip,
                port = self.port,
                proto = self.protocol,
                eps = eps.join(", "),
            )
    }
}

fn default_vni() -> u32 {
    1
}

/// `overlay`: a node's pod network, as a CNI plugin with a VXLAN backend sets it up: a
/// VXLAN device (`vxlan0`, VNI `vni`, UDP 4789) over the node's `underlay` interface
/// toward the other nodes' underlay addresses (`peers`), and a bridge (`cni0`) joining
/// it with the node's pod-facing interfaces (`pods`), so the pods of every node share one
/// L2 segment. The kernel gives `vxlan0` the underlay's MTU less the 50 bytes of
/// encapsulation. Built when the service starts (rebuilt on restart), then it idles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayConfig {
    /// The VXLAN network identifier.
    #[serde(default = "default_vni")]
    pub vni: u32,
    /// The node's interface toward the other nodes.
    pub underlay: String,
    /// The other nodes' underlay addresses (IPv4).
    pub peers: Vec<String>,
    /// The node's interfaces toward its pods, bridged with the VXLAN device.
    pub pods: Vec<String>,
}

impl OverlayConfig {
    fn render(&self, service: &str) -> String {
        let q = |v: &[String]| v.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>().join(", ");
        header(service, "the node's pod network (VXLAN overlay, bridge cni0)")
            + &format!(
                "# VXLAN network identifier of the overlay (device vxlan0, UDP port 4789).\n\
             vni = {vni}\n\
             \n\
             # The interface toward the other nodes, and their addresses on it.\n\
             underlay = {underlay:?}\n\
             peers = [{peers}]\n\
             \n\
             # Interfaces toward this node's pods, bridged with vxlan0 on cni0.\n\
             pods = [{pods}]\n",
                vni = self.vni,
                underlay = self.underlay,
                peers = q(&self.peers),
                pods = q(&self.pods),
            )
    }
}

/// Merges `patch` into `base` (tables recursively, other values replaced).
pub fn merge_tables(base: &mut toml::Table, patch: &toml::Table) {
    for (k, v) in patch {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(p)) => merge_tables(b, p),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn httpd() -> HttpdConfig {
        HttpdConfig {
            listen: "0.0.0.0:8080".into(),
            close_on_eof: false,
            idle_timeout_secs: 0,
            max_open_files: 256,
            response_delay_ms: 0,
            body: "ok\n".into(),
            backlog: 16,
            workers: 4,
            tls_cert: String::new(),
            tls_key: String::new(),
            cache_mb: 0,
            spool_dir: String::new(),
            spool_max: 0,
        }
    }

    #[test]
    fn rendered_config_round_trips() {
        let w = Workload::Httpd(httpd());
        let text = w.render_config("httpd");
        assert!(text.contains("close_on_eof = false"));
        assert_eq!(Workload::parse_config("httpd", &text).unwrap(), w);
        let l =
            Workload::Loadgen(LoadgenConfig { target: "api:8080".into(), path: "/".into(), rate_per_sec: 5, timeout_ms: 100, keepalive: true, nodelay: false, body_bytes: 100, tls: true, burst: 10 });
        assert_eq!(Workload::parse_config("loadgen", &l.render_config("lg")).unwrap(), l);
        let p = Workload::Proxy(ProxyConfig { listen: "0.0.0.0:80".into(), upstream: "api:8080".into(), upstream_timeout_ms: 250, upstream_keepalive_secs: 75 });
        assert_eq!(Workload::parse_config("proxy", &p.render_config("lb")).unwrap(), p);
        let w = Workload::Worker(WorkerConfig {
            queue_dir: "/var/spool/q".into(),
            poll_interval_ms: 0,
            tasks_per_sec: 4,
            task: "date".into(),
            reap_children: false,
            log_file: "/var/lib/jobs/debug.log".into(),
        });
        assert_eq!(Workload::parse_config("worker", &w.render_config("jobs")).unwrap(), w);
        let k = Workload::KubeProxy(KubeProxyConfig {
            service: "default/web".into(),
            cluster_ip: "10.96.0.10".into(),
            port: 80,
            protocol: "tcp".into(),
            endpoints: vec!["10.77.0.11:8080".into(), "10.77.0.12:8080".into()],
        });
        assert_eq!(Workload::parse_config("kube-proxy", &k.render_config("kube-proxy")).unwrap(), k);
        let o = Workload::Overlay(OverlayConfig { vni: 7, underlay: "eth0".into(), peers: vec!["10.77.0.3".into()], pods: vec!["veth1".into(), "veth2".into()] });
        assert_eq!(Workload::parse_config("overlay", &o.render_config("overlay")).unwrap(), o);
    }

    #[test]
    fn unknown_keys_and_kinds_are_rejected_by_name() {
        let t: toml::Table = "listen = \"0.0.0.0:1\"\nclose_on_oef = true".parse().unwrap();
        let e = Workload::from_table("httpd", t).unwrap_err();
        assert!(e.contains("close_on_oef"), "{e}");
        let e = Workload::from_table("ngnix", toml::Table::new()).unwrap_err();
        assert!(e.contains("unknown workload kind `ngnix`"), "{e}");
    }

    #[test]
    fn merge_replaces_leaves_and_recurses() {
        let mut a: toml::Table = "x = 1\n[t]\ny = 2\nz = 3".parse().unwrap();
        let b: toml::Table = "x = 5\n[t]\ny = 9".parse().unwrap();
        merge_tables(&mut a, &b);
        assert_eq!(a.to_string(), "x = 5\n\n[t]\ny = 9\nz = 3\n");
    }
}
