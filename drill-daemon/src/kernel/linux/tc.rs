//! tc faults: tbf for a whole interface, htb for one port (`tc`/`tc -batch` in the
//! host's namespace), netem for delays where the kernel has it (else the delay wire,
//! `wire.rs`). The eBPF classifier lives in `tcfault.rs`.

use anyhow::{Context, Result, bail};

use crate::kernel::linux::netns::NetnsWorker;

/// Shapes an interface's egress with tbf (`tc qdisc replace`: idempotent), from
/// inside the host's namespace. tbf's options are rate tables the tc tool computes,
/// so the tool is used here rather than raw netlink (see PLATFORM.md).
pub async fn set_rate(worker: &NetnsWorker, host: &str, iface: &str, rate_bps: u64) -> Result<()> {
    // A burst of at least 10 ms at the rate (and one jumbo frame), 50 ms of queue.
    let burst = (rate_bps / 8 / 100).max(10_000);
    let args = vec![
        "qdisc".to_string(),
        "replace".into(),
        "dev".into(),
        iface.to_string(),
        "root".into(),
        "tbf".into(),
        "rate".into(),
        format!("{rate_bps}bit"),
        "burst".into(),
        burst.to_string(),
        "latency".into(),
        "50ms".into(),
    ];
    tc(worker, args).await.with_context(|| format!("host {host}: shaping {iface} to {rate_bps} bit/s"))
}

/// Removes the interface's root qdisc (back to the default); missing is fine.
pub async fn clear_rate(worker: &NetnsWorker, host: &str, iface: &str) -> Result<()> {
    match tc(worker, vec!["qdisc".into(), "del".into(), "dev".into(), iface.to_string(), "root".into()]).await {
        Ok(()) => Ok(()),
        Err(e) if format!("{e:#}").contains("No such file") || format!("{e:#}").contains("Cannot delete qdisc with handle of zero") => Ok(()),
        Err(e) => Err(e).with_context(|| format!("host {host}: removing the qdisc of {iface}")),
    }
}

async fn tc(worker: &NetnsWorker, args: Vec<String>) -> Result<()> {
    worker
        .run(move || -> Result<()> {
            let out = std::process::Command::new("tc").args(&args).output().context("running tc")?;
            if !out.status.success() {
                bail!("tc {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
            }
            Ok(())
        })
        .await?
}

/// Limits the egress of one port's traffic (source or destination port `port`) on an
/// interface with an htb class; everything else goes through an unlimited default
/// class. Replaces whatever root qdisc the interface had (idempotent; for a moment in
/// between the interface is unshaped).
pub async fn set_port_rate(worker: &NetnsWorker, host: &str, iface: &str, port: u16, rate_bps: u64) -> Result<()> {
    let burst = (rate_bps / 8 / 100).max(10_000);
    // htb cannot `replace` itself ("Change operation not supported"): remove the root
    // qdisc (whatever it is) and build the tree anew.
    clear_rate(worker, host, iface).await?;
    let script = format!(
        "qdisc add dev {iface} root handle 1: htb default 20\n\
         class replace dev {iface} parent 1: classid 1:10 htb rate {rate_bps}bit ceil {rate_bps}bit burst {burst}\n\
         class replace dev {iface} parent 1: classid 1:20 htb rate 100gbit\n\
         filter replace dev {iface} parent 1: protocol ip prio 1 handle 800::1 u32 match ip dport {port} 0xffff flowid 1:10\n\
         filter replace dev {iface} parent 1: protocol ip prio 1 handle 800::2 u32 match ip sport {port} 0xffff flowid 1:10\n"
    );
    let iface = iface.to_string();
    worker
        .run(move || -> Result<()> {
            use std::io::Write;
            let mut child = std::process::Command::new("tc")
                .args(["-batch", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .context("running tc -batch")?;
            child.stdin.take().expect("piped").write_all(script.as_bytes())?;
            let out = child.wait_with_output()?;
            if !out.status.success() {
                bail!("tc -batch: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            Ok(())
        })
        .await?
        .with_context(|| format!("host {host}: limiting port {port} on {iface} to {rate_bps} bit/s (htb)"))
}

pub use drill_core::plan::DelayBackend;

/// How a delay backend reads in logs and reveals.
pub fn describe_backend(b: DelayBackend) -> &'static str {
    match b {
        DelayBackend::Netem => "netem qdisc",
        DelayBackend::Wire => "userspace delay wire (this kernel has no netem)",
    }
}

static BACKENDS: std::sync::OnceLock<drill_core::plan::Backends> = std::sync::OnceLock::new();

/// What this kernel offers a plan, probed once per process: netem is tried on `lo` of
/// a throwaway network namespace (a thread that unshares its own: nothing is named,
/// nothing is left). `DRILL_DELAY_BACKEND=wire|netem` forces the delay backend (tests
/// of the wire on a netem kernel).
pub fn backends() -> drill_core::plan::Backends {
    *BACKENDS.get_or_init(|| {
        let delay = match std::env::var(DelayBackend::FORCE_ENV).ok().as_deref().and_then(DelayBackend::from_name) {
            Some(forced) => forced,
            None => {
                let probe = std::thread::spawn(|| -> bool {
                    if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
                        return false;
                    }
                    // A child inherits the calling thread's network namespace.
                    std::process::Command::new("tc").args(["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]).output().is_ok_and(|o| o.status.success())
                });
                if probe.join().unwrap_or(false) { DelayBackend::Netem } else { DelayBackend::Wire }
            }
        };
        tracing::info!(backend = describe_backend(delay), "delay backend chosen");
        drill_core::plan::Backends { delay }
    })
}

/// Sets latency, jitter and loss on an interface's egress with netem (replace: idempotent).
pub async fn set_netem(worker: &NetnsWorker, host: &str, iface: &str, delay_ms: f64, jitter_ms: f64, loss: f64) -> Result<()> {
    let mut args: Vec<String> = ["qdisc", "replace", "dev", iface, "root", "netem", "delay", &format!("{delay_ms}ms")].map(String::from).to_vec();
    if jitter_ms > 0.0 {
        args.push(format!("{jitter_ms}ms"));
    }
    if loss > 0.0 {
        args.extend(["loss".to_string(), format!("{}%", loss * 100.0)]);
    }
    tc(worker, args).await.with_context(|| format!("host {host}: netem on {iface}"))
}
