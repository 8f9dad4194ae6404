//! A host's resolver configuration: the `[[hosts]] dns` key of a scenario ([`HostDns`])
//! and the real `/etc/resolv.conf` it becomes ([`ResolvConf`]), with glibc's reading of
//! that file (nameserver, search/domain, options ndots/timeout/attempts; its defaults
//! and limits), which the daemon's resolver-based checks follow.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// glibc's limits and defaults (resolv.h: MAXNS, RES_MAXNDOTS, RES_TIMEOUT, RES_DFLRETRY).
pub const MAX_NAMESERVERS: usize = 3;
pub const MAX_NDOTS: u32 = 15;
pub const DEFAULT_TIMEOUT_SECS: u32 = 5;
pub const DEFAULT_ATTEMPTS: u32 = 2;
pub const MAX_TIMEOUT_SECS: u32 = 30;
pub const MAX_ATTEMPTS: u32 = 5;

/// `[[hosts]] dns = { nameservers, search, ndots, timeout, attempts }`; also what a
/// `resolv-conf` fault replaces. Nameservers are addresses or host names (a host's
/// address on a link or switch the two share, else its first).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostDns {
    #[serde(default)]
    pub nameservers: Vec<String>,
    #[serde(default)]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ndots: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

impl HostDns {
    /// What is wrong with it, in words (None: fine).
    pub fn problem(&self, is_host: &dyn Fn(&str) -> bool) -> Option<(String, String)> {
        if self.nameservers.is_empty() {
            return Some(("dns needs at least one nameserver".into(), "e.g. nameservers = [\"dns\"] (a host's name or an address)".into()));
        }
        if self.nameservers.len() > MAX_NAMESERVERS {
            return Some((format!("{} nameservers: the resolver uses at most {MAX_NAMESERVERS}", self.nameservers.len()), "list at most three".into()));
        }
        if let Some(n) = self.nameservers.iter().find(|n| n.parse::<IpAddr>().is_err() && !is_host(n)) {
            return Some((format!("nameserver `{n}` is neither an address nor a host of the scenario"), "name a host or write an address".into()));
        }
        if let Some(d) = self.search.iter().find(|d| !is_domain(d)) {
            return Some((format!("search domain `{d}` is not a domain name"), "write e.g. \"corp.example\" (letters, digits, '-' and '.', no trailing dot)".into()));
        }
        if self.search.len() > 6 {
            return Some(("more than 6 search domains".into(), "list at most six, as glibc reads".into()));
        }
        if self.ndots.is_some_and(|n| n > MAX_NDOTS) {
            return Some((format!("ndots {} is out of range", self.ndots.unwrap_or(0)), format!("give ndots 0-{MAX_NDOTS}")));
        }
        if self.timeout.is_some_and(|t| t == 0 || t > MAX_TIMEOUT_SECS) {
            return Some(("timeout is out of range".into(), format!("give timeout 1-{MAX_TIMEOUT_SECS} (seconds)")));
        }
        if self.attempts.is_some_and(|a| a == 0 || a > MAX_ATTEMPTS) {
            return Some(("attempts is out of range".into(), format!("give attempts 1-{MAX_ATTEMPTS}")));
        }
        None
    }

    /// The resolv.conf it becomes, host names resolved by `addr_of`.
    pub fn resolve(&self, addr_of: &dyn Fn(&str) -> Option<IpAddr>) -> ResolvConf {
        ResolvConf {
            nameservers: self.nameservers.iter().filter_map(|n| n.parse().ok().or_else(|| addr_of(n))).collect(),
            search: self.search.clone(),
            ndots: self.ndots.unwrap_or(1),
            timeout_secs: self.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS),
            attempts: self.attempts.unwrap_or(DEFAULT_ATTEMPTS),
        }
    }
}

/// A domain name as a search list holds it.
pub fn is_domain(d: &str) -> bool {
    !d.is_empty() && d.len() <= 253 && d.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// The resolver configuration as glibc reads it from /etc/resolv.conf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvConf {
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub ndots: u32,
    pub timeout_secs: u32,
    pub attempts: u32,
}

impl Default for ResolvConf {
    fn default() -> ResolvConf {
        ResolvConf { nameservers: Vec::new(), search: Vec::new(), ndots: 1, timeout_secs: DEFAULT_TIMEOUT_SECS, attempts: DEFAULT_ATTEMPTS }
    }
}

impl ResolvConf {
    /// The file, as a site's configuration management would write it.
    pub fn render(&self) -> String {
        let mut s = String::from("# Resolver configuration (resolv.conf(5)); read by every lookup.\n");
        for n in &self.nameservers {
            s += &format!("nameserver {n}\n");
        }
        if !self.search.is_empty() {
            s += &format!("search {}\n", self.search.join(" "));
        }
        let mut opts = Vec::new();
        if self.ndots != 1 {
            opts.push(format!("ndots:{}", self.ndots));
        }
        if self.timeout_secs != DEFAULT_TIMEOUT_SECS {
            opts.push(format!("timeout:{}", self.timeout_secs));
        }
        if self.attempts != DEFAULT_ATTEMPTS {
            opts.push(format!("attempts:{}", self.attempts));
        }
        if !opts.is_empty() {
            s += &format!("options {}\n", opts.join(" "));
        }
        s
    }

    /// Reads a resolv.conf as glibc does (res_init): up to three `nameserver` lines, the
    /// last `search` or `domain` line wins, `options` ndots (capped at 15), timeout
    /// (capped at 30), attempts (capped at 5); unknown lines and options are ignored.
    pub fn parse(text: &str) -> ResolvConf {
        let mut c = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(a) = words.next().and_then(|w| w.parse::<IpAddr>().ok())
                        && c.nameservers.len() < MAX_NAMESERVERS
                    {
                        c.nameservers.push(a);
                    }
                }
                Some("search") => c.search = words.map(|w| w.trim_end_matches('.').to_string()).filter(|w| !w.is_empty()).take(6).collect(),
                Some("domain") => c.search = words.next().map(|w| vec![w.trim_end_matches('.').to_string()]).unwrap_or_default(),
                Some("options") => {
                    for o in words {
                        let (k, v) = o.split_once(':').unwrap_or((o, ""));
                        let v: Option<u32> = v.parse().ok();
                        match (k, v) {
                            ("ndots", Some(n)) => c.ndots = n.min(MAX_NDOTS),
                            ("timeout", Some(t)) => c.timeout_secs = t.clamp(1, MAX_TIMEOUT_SECS),
                            ("attempts", Some(a)) => c.attempts = a.clamp(1, MAX_ATTEMPTS),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        c
    }

    /// The names a lookup of `name` tries, in order (glibc's res_nsearch): a name with a
    /// trailing dot is tried as is only; one with at least `ndots` dots is tried as is
    /// first, then with each search domain; one with fewer, with each search domain
    /// first and as is last.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if let Some(abs) = name.strip_suffix('.') {
            return vec![abs.to_string()];
        }
        let dots = name.matches('.').count() as u32;
        let searched = self.search.iter().map(|d| format!("{name}.{d}"));
        if dots >= self.ndots { std::iter::once(name.to_string()).chain(searched).collect() } else { searched.chain(std::iter::once(name.to_string())).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_reads_back_as_glibc_does() {
        let d = HostDns { nameservers: vec!["dns".into(), "10.0.0.9".into()], search: vec!["corp.example".into()], ndots: Some(5), timeout: Some(1), attempts: None };
        let r = d.resolve(&|h| (h == "dns").then(|| "10.0.0.53".parse().unwrap()));
        let t = r.render();
        assert!(t.contains("nameserver 10.0.0.53\nnameserver 10.0.0.9\nsearch corp.example\noptions ndots:5 timeout:1\n"), "{t}");
        assert_eq!(ResolvConf::parse(&t), r);
        let p = ResolvConf::parse("domain a.example\nsearch b.example c.example\noptions ndots:30 attempts:9 rotate\nnameserver x\n");
        assert_eq!((p.search.clone(), p.ndots, p.attempts, p.nameservers.len()), (vec!["b.example".to_string(), "c.example".to_string()], 15, 5, 0));
    }

    #[test]
    fn search_order_follows_ndots() {
        let r = ResolvConf { search: vec!["a.example".into(), "b.example".into()], ndots: 5, ..ResolvConf::default() };
        assert_eq!(r.candidates("api.corp.example"), ["api.corp.example.a.example", "api.corp.example.b.example", "api.corp.example"]);
        assert_eq!(r.candidates("api.corp.example."), ["api.corp.example"]);
        let r = ResolvConf { ndots: 1, ..r };
        assert_eq!(r.candidates("api.corp.example")[0], "api.corp.example");
        assert_eq!(r.candidates("api"), ["api.a.example", "api.b.example", "api"]);
    }

    #[test]
    fn problems_are_named() {
        let ok = |h: &str| h == "dns";
        assert!(HostDns::default().problem(&ok).unwrap().0.contains("at least one nameserver"));
        let d = HostDns { nameservers: vec!["nope".into()], ..HostDns::default() };
        assert!(d.problem(&ok).unwrap().0.contains("`nope`"));
        let d = HostDns { nameservers: vec!["dns".into()], ndots: Some(16), ..HostDns::default() };
        assert!(d.problem(&ok).unwrap().1.contains("0-15"));
    }
}
