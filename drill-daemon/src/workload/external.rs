//! Real Debian daemons run in the foreground by a host's init, with the config the
//! daemon rendered into the host's /etc: today nginx.
//!
//! `drilld workload KIND --name N --config PATH` for such a kind does not serve itself:
//! it checks the binary is installed (naming the package otherwise), makes the
//! directories the daemon expects, runs the daemon's own config test with a dump of
//! what it loads (`nginx -T`), records that dump in the host's /run (what the engine
//! reads back to prove a `service-config` fault took), then execs the daemon in the
//! foreground in its place: same PID, so the init supervises, stops and reloads it.
//! `svc reload` runs the same test-and-record before it sends SIGHUP ([`test_and_record`]).

use std::os::unix::process::CommandExt;
use std::process::Command;

use drill_core::workload::nginx;

/// A daemon from a Debian package, as a host's init runs it.
pub struct External {
    pub binary: &'static str,
    pub package: &'static str,
    /// Directories it needs (created before the test).
    pub dirs: &'static [&'static str],
}

pub const NGINX: External = External { binary: nginx::BINARY, package: nginx::PACKAGE, dirs: &["/var/log/nginx", nginx::TEMP_DIR] };

/// The external daemon of a workload kind, if it is one.
pub fn of_kind(kind: &str) -> Option<&'static External> {
    match kind {
        "nginx" => Some(&NGINX),
        _ => None,
    }
}

impl External {
    /// The message when the binary is missing.
    pub fn missing(&self) -> Option<String> {
        (!std::path::Path::new(self.binary).exists()).then(|| format!("{} is not installed on this machine: install it with `apt-get install {}` (or `cargo xtask setup`)", self.binary, self.package))
    }

    /// Tests `config` and dumps what it loads; returns the dump, or the daemon's own
    /// error text.
    pub fn test(&self, config: &str) -> Result<String, String> {
        if let Some(m) = self.missing() {
            return Err(m);
        }
        for d in self.dirs {
            std::fs::create_dir_all(d).map_err(|e| format!("creating {d}: {e}"))?;
        }
        let out = Command::new(self.binary).args(["-T", "-c", config]).output().map_err(|e| format!("running {} -T: {e}", self.binary))?;
        if out.status.success() { Ok(String::from_utf8_lossy(&out.stdout).into_owned()) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_string()) }
    }

    /// Execs the daemon in the foreground (returns only on failure).
    fn exec(&self, name: &str, config: &str) -> std::io::Error {
        Command::new(self.binary).arg0(name).args(["-c", config, "-g", "daemon off;"]).exec()
    }
}

/// Tests `config`, records the dump at the service's effective-config path; the error
/// is the daemon's own message.
pub fn test_and_record(ext: &External, name: &str, config: &str) -> Result<(), String> {
    let dump = ext.test(config)?;
    super::record_effective(name, &dump)
}

/// Entry point of `drilld workload KIND` for an external daemon.
pub fn main(ext: &External, name: &str, config: &str) -> i32 {
    if let Err(e) = test_and_record(ext, name, config) {
        super::log(name, &format!("{e}\n{name}: not started; fix {config} (`{} -t`) and run `svc start {name}`", ext.binary));
        return 1;
    }
    let e = ext.exec(name, config);
    super::log(name, &format!("exec {}: {e}", ext.binary));
    1
}
