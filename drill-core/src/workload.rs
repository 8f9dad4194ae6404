//! Built-in workloads: the services drill runs inside hosts, and their configs.
//!
//! A workload's config is a TOML file inside the host (`/etc/<service>/<service>.toml`)
//! that the learner can read and edit; the service reads it when it starts, so a
//! changed config takes effect on `svc restart <service>`. Faults of kind
//! `service-config` are patches over these configs.

use serde::{Deserialize, Serialize};

/// The kinds of built-in workload a scenario can start.
pub const KINDS: &[&str] = &["httpd", "loadgen"];

/// A built-in workload with its typed config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "config", rename_all = "kebab-case")]
pub enum Workload {
    Httpd(HttpdConfig),
    Loadgen(LoadgenConfig),
}

impl Workload {
    /// Builds a typed workload from its kind and config table; the error says which
    /// key is wrong.
    pub fn from_table(kind: &str, table: toml::Table) -> Result<Workload, String> {
        let value = toml::Value::Table(table);
        match kind {
            "httpd" => value.try_into().map(Workload::Httpd).map_err(|e| e.message().to_string()),
            "loadgen" => value.try_into().map(Workload::Loadgen).map_err(|e| e.message().to_string()),
            other => Err(format!("unknown workload kind `{other}` (known: {})", KINDS.join(", "))),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Workload::Httpd(_) => "httpd",
            Workload::Loadgen(_) => "loadgen",
        }
    }

    /// The config file as the learner sees it inside the host, with comments.
    pub fn render_config(&self, service: &str) -> String {
        match self {
            Workload::Httpd(c) => c.render(service),
            Workload::Loadgen(c) => c.render(service),
        }
    }

    /// Parses a config file written by [`Workload::render_config`] (and perhaps edited).
    pub fn parse_config(kind: &str, text: &str) -> Result<Workload, String> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        Workload::from_table(kind, table)
    }
}

/// Path of a service's config file inside its host.
pub fn config_path(service: &str) -> String {
    format!("/etc/{service}/{service}.toml")
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
}

impl HttpdConfig {
    fn render(&self, service: &str) -> String {
        format!(
            "# {service}: configuration of the httpd service on this host.\n\
             # Read when the service starts: after editing, run `svc restart {service}`.\n\
             \n\
             # Address and port to listen on.\n\
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
             body = {body:?}\n",
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
}

impl LoadgenConfig {
    fn render(&self, service: &str) -> String {
        format!(
            "# {service}: configuration of the load generator on this host.\n\
             # Read when the service starts: after editing, run `svc restart {service}`.\n\
             \n\
             # host:port to send requests to (names resolve through /etc/hosts).\n\
             target = {target:?}\n\
             path = {path:?}\n\
             rate_per_sec = {rate}\n\
             timeout_ms = {timeout}\n",
            target = self.target,
            path = self.path,
            rate = self.rate_per_sec,
            timeout = self.timeout_ms,
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
        HttpdConfig { listen: "0.0.0.0:8080".into(), close_on_eof: false, idle_timeout_secs: 0, max_open_files: 256, response_delay_ms: 0, body: "ok\n".into() }
    }

    #[test]
    fn rendered_config_round_trips() {
        let w = Workload::Httpd(httpd());
        let text = w.render_config("httpd");
        assert!(text.contains("close_on_eof = false"));
        assert_eq!(Workload::parse_config("httpd", &text).unwrap(), w);
        let l = Workload::Loadgen(LoadgenConfig { target: "api:8080".into(), path: "/".into(), rate_per_sec: 5, timeout_ms: 100 });
        assert_eq!(Workload::parse_config("loadgen", &l.render_config("lg")).unwrap(), l);
    }

    #[test]
    fn unknown_keys_and_kinds_are_rejected_by_name() {
        let t: toml::Table = "listen = \"0.0.0.0:1\"\nclose_on_oef = true".parse().unwrap();
        let e = Workload::from_table("httpd", t).unwrap_err();
        assert!(e.contains("close_on_oef"), "{e}");
        let e = Workload::from_table("nginx", toml::Table::new()).unwrap_err();
        assert!(e.contains("unknown workload kind `nginx`"), "{e}");
    }

    #[test]
    fn merge_replaces_leaves_and_recurses() {
        let mut a: toml::Table = "x = 1\n[t]\ny = 2\nz = 3".parse().unwrap();
        let b: toml::Table = "x = 5\n[t]\ny = 9".parse().unwrap();
        merge_tables(&mut a, &b);
        assert_eq!(a.to_string(), "x = 5\n\n[t]\ny = 9\nz = 3\n");
    }
}
