//! Built-in workloads, run inside drill hosts as `drilld workload KIND --name N --config PATH`.
//! Each reads its config (see `drill_core::workload`) at start and logs to stderr,
//! which the host init sends to `/var/log/NAME.log`.

pub mod dns;
pub mod external;
pub mod http;
pub mod httpd;
pub mod kube_proxy;
pub mod loadgen;
pub mod overlay;
pub mod proxy;
pub mod worker;

use anyhow::{Context, Result};
use drill_core::workload::Workload;

/// Entry point of `drilld workload`.
pub fn main(kind: &str, name: &str, config: &str) -> i32 {
    // Show up as the service (`ps`, `ss -p`, `top`), not as drilld.
    let _ = nix::sys::prctl::set_name(&std::ffi::CString::new(name.chars().take(15).collect::<String>()).unwrap_or_default());
    if let Some(ext) = external::of_kind(kind) {
        return external::main(ext, name, config);
    }
    match run(kind, name, config) {
        Ok(code) => code,
        Err(e) => {
            log(name, &format!("{e:#}"));
            1
        }
    }
}

/// Reads and parses the config, then runs the built-in workload until it fails, or
/// becomes the packaged daemon (dnsmasq) it configures.
fn run(kind: &str, name: &str, config: &str) -> Result<i32> {
    let text = std::fs::read_to_string(config).with_context(|| format!("{name}: reading {config}"))?;
    let w = Workload::parse_config(kind, &text).map_err(|e| anyhow::anyhow!("{config}: {e}; fix the file and run `svc restart {name}`"))?;
    // A Debian daemon: this process records the config it starts with (the engine's
    // read-back) and becomes it.
    if let Workload::Dnsmasq(c) = &w {
        record_effective(name, &w.render_config(name)).map_err(anyhow::Error::msg)?;
        return Ok(dns::exec(name, config, c));
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting runtime")?;
    // `svc reload` (SIGHUP): start over with the config file as it is now, in this same
    // process (the init has checked that it parses). Caught before the effective config
    // is recorded, so a reload that follows the start cannot kill the service.
    let mut hup = rt.block_on(async { tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) }).context("SIGHUP handler")?;
    // What this process runs with (the host's /run): the engine reads it back to prove a
    // service-config fault took, and checks that behave as a client use it.
    record_effective(name, &w.render_config(name)).map_err(anyhow::Error::msg)?;
    rt.block_on(async {
        let serve = async {
            match w {
                Workload::Httpd(c) => httpd::run(name, c).await,
                Workload::Loadgen(c) => loadgen::run(name, c).await,
                Workload::Proxy(c) => proxy::run(name, c).await,
                Workload::Worker(c) => worker::run(name, c).await,
                Workload::KubeProxy(c) => kube_proxy::run(name, c).await,
                Workload::Overlay(c) => overlay::run(name, c).await,
                Workload::Nginx(_) => Err(anyhow::anyhow!("nginx runs as the real nginx")),
                Workload::Dnsmasq(_) => Err(anyhow::anyhow!("dnsmasq runs as the real dnsmasq")),
            }
        };
        tokio::select! {
            r = serve => r,
            _ = hup.recv() => {
                log(name, "SIGHUP: reloading the configuration");
                use std::os::unix::process::CommandExt;
                let e = std::process::Command::new("/proc/self/exe").arg0(name).args(std::env::args_os().skip(1)).exec();
                Err(anyhow::anyhow!("re-exec on SIGHUP: {e}"))
            }
        }
    })?;
    Ok(0)
}

/// One log line with a wall-clock timestamp, as services usually write them.
/// Records the config service `name` runs with (the engine's read-back), whole or not at
/// all: written beside and renamed into place, so a read never sees it half written (a
/// service throttled by its host's CPU quota can stop between truncate and write).
pub fn record_effective(name: &str, text: &str) -> Result<(), String> {
    let effective = drill_core::workload::effective_config_path(name);
    let tmp = format!("{effective}.tmp");
    std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &effective)).map_err(|e| format!("writing {effective}: {e}"))
}

pub fn log(name: &str, msg: &str) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs();
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    eprintln!("{h:02}:{m:02}:{s:02}.{:03} {name}[{}]: {msg}", now.subsec_millis(), std::process::id());
}
