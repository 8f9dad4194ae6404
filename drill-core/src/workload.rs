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
mod http;
pub use http::*;
mod jobs;
pub use jobs::*;

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
/// The first lines of every rendered config: what it is and how it takes effect.
fn header(service: &str, what: &str) -> String {
    format!("# {service}: configuration of {what} on this host.\n# Read when the service starts: after editing, run `svc restart {service}`.\n\n")
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
