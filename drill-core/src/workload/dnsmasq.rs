//! `dnsmasq`: a real DNS server (Debian's dnsmasq, package dnsmasq-base) run in the
//! foreground (`dnsmasq -k`) by the host's init. Its config is a real dnsmasq.conf in the
//! host's /etc (`/etc/NAME.conf`), rendered from the typed config below and parsed back
//! (leniently: lines it does not model are kept in `options`) to prove a service-config
//! fault took. dnsmasq was chosen over unbound and BIND: it is small, runs in the
//! foreground, serves a local zone from `host-record` lines (the "record missing" fault
//! is one line), forwards every other name to upstream servers, and logs each query
//! (`log-queries`), which is what a learner reads.

use serde::{Deserialize, Serialize};

/// The binary and the Debian package it comes from.
pub const BINARY: &str = "/usr/sbin/dnsmasq";
pub const PACKAGE: &str = "dnsmasq-base";

fn default_listen() -> String {
    "0.0.0.0:53".to_string()
}
fn default_cache_size() -> u32 {
    150
}
fn default_true() -> bool {
    true
}

/// One address record of the local zone: `name` (a fully qualified name, no trailing dot)
/// and `address` (an IP address; in a scenario also a host's name, resolved to its
/// first address when the plan is made).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsRecord {
    pub name: String,
    pub address: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsmasqConfig {
    /// Address and port to answer on ("0.0.0.0:53": every address of the host).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The local zone (e.g. "corp.example"): its names are answered from `records`
    /// (NXDOMAIN when missing), never forwarded. Empty: no local zone.
    #[serde(default)]
    pub domain: String,
    /// Address records served by this server.
    #[serde(default)]
    pub records: Vec<DnsRecord>,
    /// Upstream servers for every other name: "ADDRESS" or "ADDRESS#PORT" (in a scenario
    /// also a host's name). Without any, such queries are refused.
    #[serde(default)]
    pub upstreams: Vec<String>,
    /// Entries of the answer cache (0: no cache).
    #[serde(default = "default_cache_size")]
    pub cache_size: u32,
    /// Log every query and its answer to the service's log.
    #[serde(default = "default_true")]
    pub log_queries: bool,
    /// Further dnsmasq.conf lines, as written (e.g. "address=/#/" or "neg-ttl=60").
    #[serde(default)]
    pub options: Vec<String>,
}

/// Lines the rendering always writes and the parser therefore skips.
const FIXED: &[&str] = &["no-resolv", "no-hosts", "bind-interfaces", "log-facility"];

impl DnsmasqConfig {
    pub fn render(&self, service: &str) -> String {
        let mut s = format!(
            "# {service}: configuration of the DNS server (dnsmasq) on this host; see dnsmasq(8).\n\
             # Read when the service starts: after editing, run `svc restart {service}`.\n\
             # Test it from any host with `dig @ADDRESS NAME`; queries are logged to /var/log/{service}.log.\n\n"
        );
        let (addr, port) = self.listen.rsplit_once(':').unwrap_or(("0.0.0.0", "53"));
        s += "# Where to answer.\n";
        s += &format!("port={port}\n");
        if addr != "0.0.0.0" && addr != "[::]" && !addr.is_empty() {
            s += &format!("listen-address={addr}\nbind-interfaces\n");
        }
        s += "\n# Answer only from this file: not from this host's /etc/hosts or /etc/resolv.conf.\nno-resolv\nno-hosts\n";
        if !self.domain.is_empty() {
            s += &format!("\n# The local zone: its names are answered here (NXDOMAIN when missing), never forwarded.\ndomain={d}\nlocal=/{d}/\n", d = self.domain);
        }
        s += "\n# Address records (host-record=NAME,ADDRESS).\n";
        for r in &self.records {
            s += &format!("host-record={},{}\n", r.name, r.address);
        }
        s += "\n# Upstream servers for every other name (server=ADDRESS[#PORT]).\n";
        for u in &self.upstreams {
            s += &format!("server={u}\n");
        }
        s += &format!("\ncache-size={}\n", self.cache_size);
        if self.log_queries {
            s += "log-queries\n";
        }
        s += &format!("log-facility=/var/log/{service}.log\n");
        if !self.options.is_empty() {
            s += "\n";
            for o in &self.options {
                s += o;
                s += "\n";
            }
        }
        s
    }

    /// Parses a dnsmasq.conf (as rendered, perhaps edited): the lines this config models
    /// fill its fields, every other line is kept in `options`.
    pub fn parse(text: &str) -> Result<DnsmasqConfig, String> {
        let mut c =
            DnsmasqConfig { listen: String::new(), domain: String::new(), records: Vec::new(), upstreams: Vec::new(), cache_size: default_cache_size(), log_queries: false, options: Vec::new() };
        let (mut addr, mut port) = ("0.0.0.0".to_string(), "53".to_string());
        let mut locals = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = match line.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (line, ""),
            };
            match k {
                _ if FIXED.contains(&k) => {}
                "port" => {
                    v.parse::<u16>().map_err(|_| format!("line {}: port={v} is not a port number", n + 1))?;
                    port = v.to_string();
                }
                "listen-address" => addr = v.to_string(),
                "domain" => c.domain = v.to_string(),
                "local" => locals.push(v.to_string()),
                "host-record" => match v.split(',').collect::<Vec<_>>().as_slice() {
                    [name, address] => c.records.push(DnsRecord { name: name.trim().to_string(), address: address.trim().to_string() }),
                    _ => c.options.push(line.to_string()),
                },
                "server" => c.upstreams.push(v.to_string()),
                "cache-size" => c.cache_size = v.parse().map_err(|_| format!("line {}: cache-size={v} is not a number", n + 1))?,
                "log-queries" if v.is_empty() => c.log_queries = true,
                _ => c.options.push(line.to_string()),
            }
        }
        // `local=/DOMAIN/` for the domain is part of the domain; any other is an option.
        for l in locals {
            if c.domain.is_empty() || l != format!("/{}/", c.domain) {
                c.options.push(format!("local={l}"));
            }
        }
        c.listen = format!("{addr}:{port}");
        Ok(c)
    }

    /// Replaces host names in record addresses and upstreams with what `addr_of` gives.
    pub fn resolve_hosts(&mut self, addr_of: &dyn Fn(&str) -> Option<std::net::IpAddr>) {
        for r in &mut self.records {
            if let Some(a) = addr_of(&r.address) {
                r.address = a.to_string();
            }
        }
        for u in &mut self.upstreams {
            let (h, port) = match u.split_once('#') {
                Some((h, p)) => (h.to_string(), format!("#{p}")),
                None => (u.clone(), String::new()),
            };
            if let Some(a) = addr_of(&h) {
                *u = format!("{a}{port}");
            }
        }
    }

    /// Host names this config refers to (record addresses and upstreams that are not IP
    /// addresses), for validation.
    pub fn named_hosts(&self) -> Vec<String> {
        let hosts = self.records.iter().map(|r| r.address.clone()).chain(self.upstreams.iter().map(|u| u.split('#').next().unwrap_or_default().to_string()));
        hosts.filter(|h| h.parse::<std::net::IpAddr>().is_err()).collect()
    }

    /// The UDP/TCP port it answers on.
    pub fn port(&self) -> Option<u16> {
        self.listen.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_real_dnsmasq_lines_and_parses_them_back() {
        let c = DnsmasqConfig {
            listen: "0.0.0.0:53".into(),
            domain: "corp.example".into(),
            records: vec![DnsRecord { name: "api.corp.example".into(), address: "10.77.0.3".into() }],
            upstreams: vec!["10.77.9.2".into(), "10.77.9.3#5353".into()],
            cache_size: 0,
            log_queries: true,
            options: vec!["neg-ttl=60".into()],
        };
        let t = c.render("dnsmasq");
        assert!(t.contains("host-record=api.corp.example,10.77.0.3\n"), "{t}");
        assert!(t.contains("local=/corp.example/\n") && t.contains("server=10.77.9.3#5353\n") && t.contains("no-resolv\n"), "{t}");
        assert_eq!(DnsmasqConfig::parse(&t).unwrap(), c);
        let edited = t.replace("host-record=api.corp.example,10.77.0.3\n", "") + "address=/www.corp.example/10.1.1.1\n";
        let p = DnsmasqConfig::parse(&edited).unwrap();
        assert!(p.records.is_empty());
        assert_eq!(p.options, vec!["neg-ttl=60".to_string(), "address=/www.corp.example/10.1.1.1".to_string()]);
        assert!(DnsmasqConfig::parse("port=x").unwrap_err().contains("port=x"));
    }

    #[test]
    fn host_names_resolve_and_are_listed() {
        let mut c: DnsmasqConfig = toml::from_str("records = [{ name = \"api.corp.example\", address = \"api\" }]\nupstreams = [\"up#5353\", \"10.0.0.1\"]").unwrap();
        assert_eq!(c.named_hosts(), vec!["api".to_string(), "up".to_string()]);
        c.resolve_hosts(&|h| (h == "api" || h == "up").then(|| "10.9.9.9".parse().unwrap()));
        assert_eq!(c.records[0].address, "10.9.9.9");
        assert_eq!(c.upstreams, vec!["10.9.9.9#5353".to_string(), "10.0.0.1".to_string()]);
    }
}
