//! The configs of the other built-in workloads: worker (a job runner), kube-proxy (a
//! service map) and overlay (a VXLAN node).

use serde::{Deserialize, Serialize};

use super::{default_true, header};

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
    pub(super) fn render(&self, service: &str) -> String {
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

    pub(super) fn render(&self, service: &str) -> String {
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
    pub(super) fn render(&self, service: &str) -> String {
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
