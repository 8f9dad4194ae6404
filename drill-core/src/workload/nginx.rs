//! `nginx`: the real nginx from Debian (`/usr/sbin/nginx`, package `nginx-light`) as a
//! load balancer / ingress. The scenario gives a typed config; the host gets it rendered
//! as a plain, hand-written-looking `/etc/nginx/nginx.conf` (real directives: upstream
//! blocks with keep-alive, server blocks with `server_name`, certificates, a default
//! server, proxy timeouts). The learner edits that file, tests it with `nginx -t` and
//! applies it with `svc reload nginx` (SIGHUP) or `nginx -s reload`, as on a real box.
//!
//! The running config is recorded by the service's start wrapper (and by `svc reload`):
//! the output of `nginx -T` in the host's `/run`, so a `service-config` fault is
//! measured by finding the rendered faulty file in what nginx loaded.

use serde::{Deserialize, Serialize};

/// The binary the service runs; the package that has it.
pub const BINARY: &str = "/usr/sbin/nginx";
pub const PACKAGE: &str = "nginx-light";
/// Config, logs and pid file inside the host (Debian's paths).
pub const CONFIG_PATH: &str = "/etc/nginx/nginx.conf";
pub const ERROR_LOG: &str = "/var/log/nginx/error.log";
pub const ACCESS_LOG: &str = "/var/log/nginx/access.log";
pub const PID_PATH: &str = "/run/nginx.pid";
/// Temporary files (request bodies, buffered responses) inside the host.
pub const TEMP_DIR: &str = "/var/lib/nginx";

fn one() -> u32 {
    1
}
fn s60() -> String {
    "60s".into()
}
fn s65() -> String {
    "65s".into()
}
fn s5() -> String {
    "5s".into()
}

/// `nginx`: a reverse proxy in front of upstream groups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NginxConfig {
    /// `worker_processes` (default 1: one worker makes connection reuse deterministic).
    #[serde(default = "one")]
    pub worker_processes: u32,
    /// `keepalive_timeout` towards clients (nginx time, default "65s").
    #[serde(default = "s65")]
    pub keepalive_timeout: String,
    /// `proxy_connect_timeout` (default "5s").
    #[serde(default = "s5")]
    pub proxy_connect_timeout: String,
    /// `proxy_read_timeout`: how long nginx waits between two reads of the upstream's
    /// answer before giving up with 504 (default "60s").
    #[serde(default = "s60")]
    pub proxy_read_timeout: String,
    /// `proxy_send_timeout` (default "60s").
    #[serde(default = "s60")]
    pub proxy_send_timeout: String,
    /// `upstream` blocks.
    #[serde(default)]
    pub upstreams: Vec<NginxUpstream>,
    /// `server` blocks (each proxies `location /`).
    pub servers: Vec<NginxServer>,
}

/// An `upstream NAME { server ...; keepalive N; keepalive_timeout T; }` block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NginxUpstream {
    pub name: String,
    /// `server HOST:PORT;` lines (names resolve through the host's /etc/hosts).
    pub servers: Vec<String>,
    /// `keepalive N`: idle upstream connections each worker keeps for reuse (0: none,
    /// a connection per request).
    #[serde(default)]
    pub keepalive: u32,
    /// `keepalive_timeout`: how long an idle upstream connection is kept (default "60s").
    #[serde(default = "s60")]
    pub keepalive_timeout: String,
}

/// A `server { listen ...; server_name ...; location / { proxy_pass ...; } }` block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NginxServer {
    /// Port to listen on (all addresses).
    pub listen: u16,
    /// `default_server` on its listen line: the block that answers names no other
    /// block of the port has (and whose certificate such TLS clients get).
    #[serde(default)]
    pub default_server: bool,
    /// `server_name` (none: `_`).
    #[serde(default)]
    pub server_name: Vec<String>,
    /// `ssl_certificate` (PEM path; the file may hold the leaf followed by its chain).
    /// Given: the server speaks TLS (`listen PORT ssl`).
    #[serde(default)]
    pub ssl_certificate: String,
    /// `ssl_certificate_key`.
    #[serde(default)]
    pub ssl_certificate_key: String,
    /// `proxy_pass`: an upstream's name or HOST:PORT.
    pub proxy_pass: String,
}

/// Whether `t` is an nginx time ("250ms", "2s", "1m30s", "60").
pub fn is_time(t: &str) -> bool {
    let mut rest = t;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ms", "s", "m", "h", "d", "w", "M", "y"].iter().find(|u| rest.starts_with(**u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None if rest.is_empty() => {}
            None => return false,
        }
    }
    true
}

/// A word that can stand in a directive unquoted (no `;`, braces, quotes, spaces).
fn is_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-:/[]*~".contains(c))
}

impl NginxConfig {
    /// Checks what serde cannot: times, names, references, certificate pairs.
    pub fn validate(&self) -> Result<(), String> {
        for (k, v) in [
            ("keepalive_timeout", &self.keepalive_timeout),
            ("proxy_connect_timeout", &self.proxy_connect_timeout),
            ("proxy_read_timeout", &self.proxy_read_timeout),
            ("proxy_send_timeout", &self.proxy_send_timeout),
        ] {
            if !is_time(v) {
                return Err(format!("{k} = {v:?} is not an nginx time; write e.g. \"250ms\", \"2s\" or \"1m\""));
            }
        }
        if !(1..=8).contains(&self.worker_processes) {
            return Err(format!("worker_processes = {} is out of range (1-8)", self.worker_processes));
        }
        for u in &self.upstreams {
            if !is_word(&u.name) || u.name.contains(':') {
                return Err(format!("upstream name {:?} is not a plain name", u.name));
            }
            if u.servers.is_empty() {
                return Err(format!("upstream `{}` has no servers", u.name));
            }
            if let Some(s) = u.servers.iter().find(|s| !is_word(s) || !s.contains(':')) {
                return Err(format!("upstream `{}`: server {s:?} is not HOST:PORT", u.name));
            }
            if !is_time(&u.keepalive_timeout) {
                return Err(format!("upstream `{}`: keepalive_timeout = {:?} is not an nginx time", u.name, u.keepalive_timeout));
            }
        }
        if self.servers.is_empty() {
            return Err("an nginx config needs at least one entry in `servers`".into());
        }
        for s in &self.servers {
            if s.listen == 0 {
                return Err("servers: listen = 0 is not a port".into());
            }
            if let Some(n) = s.server_name.iter().find(|n| !is_word(n)) {
                return Err(format!("server_name {n:?} is not a plain name"));
            }
            let known = self.upstreams.iter().any(|u| u.name == s.proxy_pass);
            if !(known || is_word(&s.proxy_pass) && s.proxy_pass.contains(':')) {
                return Err(format!(
                    "proxy_pass = {:?} names no upstream (declared: {}) and is not HOST:PORT",
                    s.proxy_pass,
                    self.upstreams.iter().map(|u| u.name.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
            if s.ssl_certificate.is_empty() != s.ssl_certificate_key.is_empty() {
                return Err("servers: give both ssl_certificate and ssl_certificate_key, or neither".into());
            }
            for p in [&s.ssl_certificate, &s.ssl_certificate_key] {
                if !p.is_empty() && (!p.starts_with('/') || !is_word(p)) {
                    return Err(format!("{p:?} is not an absolute path"));
                }
            }
        }
        let mut ports: Vec<u16> = self.servers.iter().filter(|s| s.default_server).map(|s| s.listen).collect();
        ports.sort_unstable();
        if let Some(w) = ports.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("two servers are the default_server of port {}", w[0]));
        }
        let mut by_port: Vec<(u16, bool)> = self.servers.iter().map(|s| (s.listen, !s.ssl_certificate.is_empty())).collect();
        by_port.sort_unstable();
        by_port.dedup();
        if let Some(w) = by_port.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(format!("port {}: servers with and without TLS cannot share a port", w[0].0));
        }
        Ok(())
    }

    /// Ports nginx listens on.
    pub fn listen_ports(&self) -> Vec<u16> {
        let mut p: Vec<u16> = self.servers.iter().map(|s| s.listen).collect();
        p.sort_unstable();
        p.dedup();
        p
    }

    /// Whether any server speaks TLS.
    pub fn uses_tls(&self) -> bool {
        self.servers.iter().any(|s| !s.ssl_certificate.is_empty())
    }

    /// The names its servers answer for (not `_`, `localhost` or wildcards).
    pub fn names(&self) -> Vec<String> {
        self.servers.iter().flat_map(|s| s.server_name.iter()).filter(|n| *n != "_" && *n != "localhost" && !n.contains('*') && !n.starts_with('~')).cloned().collect()
    }

    /// Names of the TLS servers (each gets a certificate of its own).
    pub fn tls_names(&self) -> Vec<String> {
        self.servers.iter().filter(|s| !s.ssl_certificate.is_empty()).flat_map(|s| s.server_name.iter()).filter(|n| *n != "_" && !n.contains('*') && !n.starts_with('~')).cloned().collect()
    }

    /// `/etc/nginx/nginx.conf` as an admin would have written it.
    pub fn render(&self) -> String {
        let mut o = String::new();
        o.push_str("# /etc/nginx/nginx.conf\n#\n# Test a change with `nginx -t`; apply it with `svc reload nginx` (or `nginx -s reload`).\n# Logs: /var/log/nginx/access.log and /var/log/nginx/error.log.\n\n");
        o.push_str(&format!("user www-data;\nworker_processes {};\npid {PID_PATH};\nerror_log {ERROR_LOG};\n\n", self.worker_processes));
        o.push_str("events {\n    worker_connections 768;\n}\n\n");
        o.push_str("http {\n    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n\n");
        o.push_str(&format!("    access_log {ACCESS_LOG};\n    sendfile on;\n    tcp_nodelay on;\n    keepalive_timeout {};\n\n", self.keepalive_timeout));
        o.push_str(&format!("    client_body_temp_path {TEMP_DIR}/body;\n    proxy_temp_path {TEMP_DIR}/proxy;\n\n"));
        if self.uses_tls() {
            o.push_str("    ssl_protocols TLSv1.2 TLSv1.3;\n    ssl_prefer_server_ciphers on;\n\n");
        }
        for u in &self.upstreams {
            o.push_str(&format!("    upstream {} {{\n", u.name));
            for s in &u.servers {
                o.push_str(&format!("        server {s};\n"));
            }
            if u.keepalive > 0 {
                o.push_str(&format!("        keepalive {};\n        keepalive_timeout {};\n", u.keepalive, u.keepalive_timeout));
            }
            o.push_str("    }\n\n");
        }
        for s in &self.servers {
            let tls = !s.ssl_certificate.is_empty();
            o.push_str("    server {\n");
            o.push_str(&format!("        listen {}{}{};\n", s.listen, if tls { " ssl" } else { "" }, if s.default_server { " default_server" } else { "" }));
            let names = if s.server_name.is_empty() { "_".to_string() } else { s.server_name.join(" ") };
            o.push_str(&format!("        server_name {names};\n"));
            if tls {
                o.push_str(&format!("\n        ssl_certificate {};\n        ssl_certificate_key {};\n", s.ssl_certificate, s.ssl_certificate_key));
            }
            let keepalive = self.upstreams.iter().any(|u| u.name == s.proxy_pass && u.keepalive > 0);
            o.push_str("\n        location / {\n");
            o.push_str(&format!("            proxy_pass http://{};\n", s.proxy_pass));
            if keepalive {
                o.push_str("            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n");
            }
            o.push_str("            proxy_set_header Host $host;\n            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n");
            o.push_str(&format!(
                "            proxy_connect_timeout {};\n            proxy_send_timeout {};\n            proxy_read_timeout {};\n",
                self.proxy_connect_timeout, self.proxy_send_timeout, self.proxy_read_timeout
            ));
            o.push_str("        }\n    }\n\n");
        }
        o.push_str("}\n");
        o
    }
}

/// The ports of the `listen` directives of an nginx.conf text (for readiness waits).
pub fn listen_ports_of(text: &str) -> Vec<u16> {
    let mut v: Vec<u16> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter_map(|l| l.strip_prefix("listen"))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|a| a.trim_end_matches(';').rsplit(':').next()?.parse::<u16>().ok())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Whether a recorded `nginx -T` dump shows nginx loaded exactly `rendered` as its
/// main config file.
pub fn dump_has(dump: &str, rendered: &str) -> bool {
    let marker = format!("# configuration file {CONFIG_PATH}:\n");
    dump.find(&marker).is_some_and(|i| dump[i + marker.len()..].starts_with(rendered))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> NginxConfig {
        NginxConfig {
            worker_processes: 1,
            keepalive_timeout: "65s".into(),
            proxy_connect_timeout: "5s".into(),
            proxy_read_timeout: "250ms".into(),
            proxy_send_timeout: "60s".into(),
            upstreams: vec![NginxUpstream { name: "api".into(), servers: vec!["api:8080".into()], keepalive: 8, keepalive_timeout: "60s".into() }],
            servers: vec![NginxServer {
                listen: 443,
                default_server: true,
                server_name: vec!["shop.example".into()],
                ssl_certificate: "/etc/ssl/internal/shop.example/fullchain.pem".into(),
                ssl_certificate_key: "/etc/ssl/internal/shop.example/privkey.pem".into(),
                proxy_pass: "api".into(),
            }],
        }
    }

    #[test]
    fn times() {
        for t in ["250ms", "2s", "1m30s", "60", "1h"] {
            assert!(is_time(t), "{t}");
        }
        for t in ["", "2 s", "s", "1.5s", "2sec"] {
            assert!(!is_time(t), "{t}");
        }
    }

    #[test]
    fn renders_real_directives() {
        let c = cfg();
        c.validate().unwrap();
        let t = c.render();
        for want in ["listen 443 ssl default_server;", "server_name shop.example;", "proxy_read_timeout 250ms;", "keepalive 8;", "proxy_pass http://api;", "proxy_http_version 1.1;"] {
            assert!(t.contains(want), "{want} missing:\n{t}");
        }
        assert!(!t.to_lowercase().contains("drill"));
        assert_eq!(listen_ports_of(&t), vec![443]);
        assert!(dump_has(&format!("# configuration file {CONFIG_PATH}:\n{t}\n# configuration file /etc/nginx/mime.types:\n"), &t));
        assert_eq!(c.tls_names(), vec!["shop.example".to_string()]);
    }

    #[test]
    fn refuses_what_nginx_would() {
        let mut c = cfg();
        c.proxy_read_timeout = "2 s".into();
        assert!(c.validate().unwrap_err().contains("proxy_read_timeout"));
        let mut c = cfg();
        c.servers[0].proxy_pass = "nope".into();
        assert!(c.validate().unwrap_err().contains("names no upstream"));
        let mut c = cfg();
        c.servers[0].ssl_certificate_key.clear();
        assert!(c.validate().is_err());
        let mut c = cfg();
        c.servers[0].server_name = vec!["a;b".into()];
        assert!(c.validate().is_err());
    }
}

#[cfg(test)]
mod plan_tests {
    use crate::plan::{self, Backends};

    #[test]
    fn served_names_resolve_to_the_ingress_and_get_certificates_from_both_configs() {
        let s = crate::builtin::scenarios().into_iter().find(|s| s.id == "sni-mismatch").expect("built-in");
        let p = plan::compile(&s, "a1b2c3", 0, Backends::default()).expect("compiles");
        let client = p.hosts.iter().find(|h| h.name == "client").unwrap();
        assert!(client.etc_hosts.lines().any(|l| l.ends_with("\tlb www.example shop.example")), "{}", client.etc_hosts);
        let lb = p.hosts.iter().find(|h| h.name == "lb").unwrap();
        let ngx = &lb.services[0];
        assert_eq!(ngx.config_path, super::CONFIG_PATH);
        assert_eq!(ngx.log_path, super::ERROR_LOG);
        // The faulty config lost shop.example's block; its certificate is still issued.
        assert!(!ngx.config_text.contains("server_name shop.example;"), "{}", ngx.config_text);
        assert_eq!(ngx.tls_names, vec!["www.example".to_string(), "shop.example".to_string()]);
        assert!(p.tls);
    }
}
