//! `dnsmasq`: the real DNS server from Debian (dnsmasq-base), run in the foreground
//! (`dnsmasq -k`) on the config file the learner edits (`/etc/NAME.conf`). The
//! workload process records the config it starts with (as every workload does, for the
//! engine's read-back) and then becomes dnsmasq (exec: same pid, so `svc` and the init
//! supervise the server itself; `ps` shows dnsmasq). dnsmasq writes its own log
//! (`log-facility` in the file) to /var/log/NAME.log.

use std::os::unix::process::CommandExt;

use drill_core::workload::DnsmasqConfig;

use super::log;

/// Execs dnsmasq on `config`; returns only if that fails (the exit status).
pub fn exec(name: &str, config: &str, c: &DnsmasqConfig) -> i32 {
    let bin = drill_core::workload::Workload::Dnsmasq(c.clone()).binary().map_or("/usr/sbin/dnsmasq", |b| b.0);
    if !std::path::Path::new(bin).exists() {
        log(name, &format!("{bin} is missing: install the Debian package dnsmasq-base (`cargo xtask setup`, or `apt-get install dnsmasq-base`)"));
        return 1;
    }
    let err = std::process::Command::new(bin).arg0("dnsmasq").args(["-k", &format!("--conf-file={config}"), "--pid-file="]).exec();
    log(name, &format!("starting {bin}: {err}"));
    1
}
