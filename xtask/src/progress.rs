//! Progress on a terminal (indicatif) for xtask's long steps: the package install of
//! `setup` as a bar fed by apt's own status stream (`APT::Status-Fd`), and a spinner with
//! the elapsed time over other long commands whose output is not a terminal's. Cargo draws
//! its own bar for builds, so builds run as before. Off when stderr is not a terminal or
//! CI is true: logs get the plain lines they had.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

/// Whether progress may be drawn: stderr is a terminal and `CI` is not true.
pub fn enabled() -> bool {
    allowed(std::io::IsTerminal::is_terminal(&std::io::stderr()), std::env::var("CI").ok().as_deref())
}

/// [`enabled`] of its inputs: a terminal, and CI unset, empty, `0` or `false`.
pub fn allowed(tty: bool, ci: Option<&str>) -> bool {
    tty && ci.is_none_or(|v| v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
}

/// One line of apt's status stream: (percent done, what it is doing), for the lines
/// that carry progress (`dlstatus:` downloads, `pmstatus:` unpack and configure).
pub fn apt_status(line: &str) -> Option<(f64, String)> {
    let mut parts = line.splitn(4, ':');
    let kind = parts.next()?;
    if kind != "dlstatus" && kind != "pmstatus" {
        return None;
    }
    let pkg = parts.next()?;
    let pct: f64 = parts.next()?.trim().parse().ok()?;
    let what = parts.next().unwrap_or("").trim();
    let phase = if kind == "dlstatus" { "download" } else { "install" };
    let pct = if kind == "dlstatus" { pct * 0.3 } else { 30.0 + pct * 0.7 };
    Some((pct.clamp(0.0, 100.0), format!("{phase}: {}", if what.is_empty() { pkg } else { what })))
}

/// Runs an `apt-get install` command with a bar over its status stream; apt's other
/// output is kept and printed only when it fails.
pub fn apt_install(mut c: Command) -> Result<()> {
    if !enabled() {
        return crate::run_cmd(&mut c);
    }
    let desc = format!("{c:?}");
    c.args(["-o", "APT::Status-Fd=1", "-qq"]).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().with_context(|| format!("running {desc}"))?;
    let stderr = child.stderr.take().map(|e| std::thread::spawn(move || std::io::read_to_string(e).unwrap_or_default()));
    let pb = ProgressBar::new(1000);
    pb.set_style(ProgressStyle::with_template("{bar:30} {percent:>3}% {wide_msg} ({elapsed})").unwrap_or_else(|_| ProgressStyle::default_bar()));
    pb.enable_steady_tick(Duration::from_millis(200));
    let mut other = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            match apt_status(&line) {
                Some((pct, msg)) => {
                    pb.set_position((pct * 10.0) as u64);
                    pb.set_message(msg);
                }
                None => {
                    other.push_str(&line);
                    other.push('\n');
                }
            }
        }
    }
    let st = child.wait()?;
    pb.finish_and_clear();
    let err = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    if !st.success() {
        bail!("{desc} failed ({st}):\n{other}{err}");
    }
    Ok(())
}

/// Runs `c` (its output captured) under a spinner saying `msg`; prints its output when it
/// fails. Without progress, runs it as [`crate::run_cmd`] does.
pub fn spin(msg: &str, mut c: Command) -> Result<()> {
    if !enabled() {
        return crate::run_cmd(&mut c);
    }
    let desc = format!("{c:?}");
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(100));
    let o = c.output().with_context(|| format!("running {desc}"));
    pb.finish_and_clear();
    let o = o?;
    if !o.status.success() {
        bail!("{desc} failed ({}):\n{}{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_on_a_terminal_and_not_under_ci() {
        assert!(allowed(true, None));
        assert!(allowed(true, Some("false")));
        assert!(!allowed(true, Some("true")));
        assert!(!allowed(false, None));
    }

    #[test]
    fn apt_status_lines_become_a_position_and_a_message() {
        let (p, m) = apt_status("dlstatus:1:50.0:Retrieving file 1 of 2").unwrap();
        assert!((p - 15.0).abs() < 1e-9, "{p}");
        assert_eq!(m, "download: Retrieving file 1 of 2");
        let (p, m) = apt_status("pmstatus:lxcfs:100:Installed lxcfs").unwrap();
        assert!((p - 100.0).abs() < 1e-9);
        assert_eq!(m, "install: Installed lxcfs");
        let (_, m) = apt_status("pmstatus:dpkg-exec:10:").unwrap();
        assert_eq!(m, "install: dpkg-exec");
        assert_eq!(apt_status("Reading package lists..."), None);
        assert_eq!(apt_status("pmstatus:x:notanumber:y"), None);
        assert_eq!(apt_status("media-change:x:1:y"), None);
    }
}
