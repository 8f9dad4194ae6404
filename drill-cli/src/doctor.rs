//! `drill doctor [--json]`: what this machine offers drills and what each missing piece
//! disables. The facts that need root come from the daemon (`GET /v1/doctor`) when one
//! answers, else from `drilld doctor` when we are root; an unprivileged user with no
//! daemon gets what any process can see (the kernel release, the cgroup mounts, the
//! programs on disk and on PATH) and the rest as "not checked". The socket (path, mode,
//! group, whether this user can connect) is always ours to check. drill-core's
//! `doctor::report` joins the facts with the built-in drills' requirements.
//!
//! Exit 0 when every built-in drill can run (perhaps changed), 1 when one cannot, 2 on
//! an error.

use std::fmt::Write as _;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use drill_core::api::DaemonInfo;
use drill_core::doctor::{self, CheckLine, Fact, Facts, Group, Level, Need, Report, Status};

use crate::client::{CallError, Client};

/// Where the root facts came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The daemon answered `GET /v1/doctor` (its pid when `/v1/info` said).
    Daemon { pid: Option<u32> },
    /// No daemon; we are root and ran `drilld doctor`.
    Drilld(PathBuf),
    /// Neither: only what this unprivileged process can see.
    Unprivileged,
}

/// What we know of the daemon's socket, as this user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketState {
    pub path: PathBuf,
    /// Permission bits when the path exists (and whether it is a socket).
    pub mode: Option<u32>,
    pub is_socket: bool,
    pub owner: String,
    pub group: String,
    /// The socket's gid is among ours (or is our primary group).
    pub in_group: bool,
    pub uid: u32,
    pub root: bool,
    /// Ok, or why connecting failed ("permission denied", "connection refused", ...).
    pub connect: Result<(), String>,
}

impl SocketState {
    pub fn probe(path: &Path) -> SocketState {
        let uid = nix::unistd::geteuid();
        let meta = std::fs::metadata(path).ok();
        let mode = meta.as_ref().map(|m| m.mode() & 0o7777);
        let is_socket = meta.as_ref().is_some_and(|m| m.file_type().is_socket());
        let owner = meta.as_ref().map_or_else(String::new, |m| nix::unistd::User::from_uid(m.uid().into()).ok().flatten().map_or_else(|| m.uid().to_string(), |u| u.name));
        let group = meta.as_ref().map_or_else(String::new, |m| nix::unistd::Group::from_gid(m.gid().into()).ok().flatten().map_or_else(|| m.gid().to_string(), |g| g.name));
        let in_group = meta.as_ref().is_some_and(|m| {
            let gid = nix::unistd::Gid::from_raw(m.gid());
            nix::unistd::getegid() == gid || nix::unistd::getgroups().is_ok_and(|g| g.contains(&gid))
        });
        let connect = std::os::unix::net::UnixStream::connect(path).map(drop).map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::ConnectionRefused => "connection refused (no daemon listens)".to_string(),
            _ => e.to_string(),
        });
        SocketState { path: path.to_path_buf(), mode, is_socket, owner, group, in_group, uid: uid.as_raw(), root: uid.is_root(), connect }
    }

    /// The socket line: path, mode, owner and group, and whether this user can connect.
    pub fn line(&self) -> String {
        let who = if self.root { format!("uid {} (root)", self.uid) } else { format!("uid {}", self.uid) };
        let Some(mode) = self.mode else {
            let after = if self.root { "as root, `drill start` starts drilld on demand" } else { "no daemon runs; root starts one (`sudo drill start SCENARIO`, or the drilld.socket unit)" };
            return format!("socket {}: does not exist; {after}", self.path.display());
        };
        let kind = if self.is_socket { 's' } else { '?' };
        let mut s = format!("socket {}: {kind}{} {}:{}", self.path.display(), rwx(mode), self.owner, self.group);
        match &self.connect {
            Ok(()) => {
                let _ = write!(s, "; {who} can connect");
            }
            Err(why) => {
                let _ = write!(s, "; {who} cannot connect ({why})");
                if why.starts_with("permission") && !self.in_group {
                    let _ = write!(s, ": join the `{}` group (sudo usermod -aG {} $USER, then log in again) or use sudo", self.group, self.group);
                }
            }
        }
        if !self.root && self.connect.is_ok() {
            let why = if self.in_group {
                format!("you are in its group {}", self.group)
            } else if mode & 0o002 != 0 {
                "it is open to every user".into()
            } else {
                "you own it".into()
            };
            let _ = write!(s, " ({why})");
        }
        s
    }

    /// The daemon fact: reachable by this user, or startable by them (root).
    pub fn fact(&self) -> Fact {
        let ok = self.connect.is_ok() || (self.root && !self.connect.as_ref().is_err_and(|e| e.starts_with("permission")));
        let detail = match (&self.connect, self.root) {
            (Ok(()), _) => "drilld answers on its socket".to_string(),
            (Err(_), true) if ok => "no daemon runs now (as root, `drill start` starts one)".to_string(),
            (Err(e), _) if e.starts_with("permission") => "this user may not connect to drilld's socket".to_string(),
            (Err(_), _) => "no daemon runs, and only root can start one".to_string(),
        };
        Fact::new(&Need::Daemon, ok, detail)
    }
}

/// Between the daemon fact's own words and the socket line, in its detail.
const SOCKET_SEP: &str = "; ";

/// `rw-rw----` of permission bits.
pub fn rwx(mode: u32) -> String {
    (0..9).map(|i| if mode & (0o400 >> i) != 0 { ['r', 'w', 'x'][i % 3] } else { '-' }).collect()
}

/// A program on PATH, or in the sbin directories a non-root PATH lacks on Debian.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':').filter(|d| !d.is_empty()).chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]).map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

/// Why the checks an unprivileged process cannot make are unknown.
pub const NEEDS_ROOT: &str = "needs root (drilld tries it)";

/// What any process can see: the kernel release, the cgroup mounts, BTF's file, the
/// programs the drills need (on disk) and tc and nft (on PATH). The rest is unknown.
pub fn unprivileged_facts(drills: &[(String, Vec<doctor::Requirement>)]) -> Vec<Fact> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut f = doctor::kernel_facts(release.trim());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    f.extend(doctor::cgroup_facts(&mountinfo, |p| std::fs::read_to_string(p).ok()));
    let btf = Path::new("/sys/kernel/btf/vmlinux");
    f.push(if btf.exists() {
        Fact::new(&Need::Btf, true, "/sys/kernel/btf/vmlinux exists (drilld checks that it parses)")
    } else {
        Fact::new(&Need::Btf, false, "/sys/kernel/btf/vmlinux does not exist")
    });
    f.push(match which("tc") {
        Some(p) => Fact::new(&Need::Tc, true, format!("{} installed", p.display())),
        None => Fact::new(&Need::Tc, false, "no tc on PATH, /usr/sbin or /sbin"),
    });
    f.push(match which("nft") {
        Some(p) => Fact::unknown(&Need::Nftables, format!("{} installed; whether the kernel has nf_tables {NEEDS_ROOT}", p.display())),
        None => Fact::new(&Need::Nftables, false, "no nft on PATH, /usr/sbin or /sbin"),
    });
    for n in doctor::all_needs(drills) {
        if let Need::Binary { path, .. } = &n {
            let ok = Path::new(path).is_file();
            f.push(Fact::new(&n, ok, if ok { "installed".to_string() } else { format!("{path} does not exist") }));
        }
    }
    let known: Vec<String> = f.iter().map(|x| x.id.clone()).collect();
    for n in doctor::all_needs(drills) {
        if !known.contains(&n.id()) && n != Need::Daemon {
            f.push(Fact::unknown(&n, NEEDS_ROOT));
        }
    }
    f
}

/// The facts and where they came from.
async fn gather(c: &Client, drills: &[(String, Vec<doctor::Requirement>)]) -> Result<(Vec<Fact>, Source)> {
    match c.get::<Facts>("/v1/doctor").await {
        Ok(f) => {
            let pid = c.get::<DaemonInfo>("/v1/info").await.ok().map(|i| i.pid);
            return Ok((f.facts, Source::Daemon { pid }));
        }
        Err(CallError::NoDaemon(_)) => {}
        // An older daemon without the route, or one that failed: the local path.
        Err(e) => eprintln!("drill: warning: drilld's answer to GET /v1/doctor: {e}; checking without it"),
    }
    if crate::is_root() {
        let exe = crate::find_drilld()?;
        let out = std::process::Command::new(&exe).arg("doctor").output().with_context(|| format!("running {} doctor", exe.display()))?;
        if !out.status.success() {
            bail!("{} doctor failed ({}): {}", exe.display(), out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        let f: Facts = serde_json::from_slice(&out.stdout).with_context(|| format!("reading the output of {} doctor", exe.display()))?;
        return Ok((f.facts, Source::Drilld(exe)));
    }
    Ok((unprivileged_facts(drills), Source::Unprivileged))
}

/// `drill doctor`: the exit code.
pub async fn run(c: &Client, socket: &Path, json: bool) -> Result<u8> {
    let scenarios = drill_core::builtin::scenarios();
    if scenarios.is_empty() {
        bail!("the built-in pack was not found or does not load (looked in {}): the doctor has no drills to check for", drill_core::builtin::searched());
    }
    let (drills, bad) = doctor::drill_requirements(&scenarios);
    let (mut facts, source) = gather(c, &drills).await?;
    let sock = SocketState::probe(socket);
    facts.retain(|f| f.id != Need::Daemon.id());
    let mut daemon = sock.fact();
    daemon.detail = format!("{}{SOCKET_SEP}{}", daemon.detail, sock.line());
    facts.push(daemon);
    let report = doctor::report(&facts, &drills);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, &source, &sock, &bad));
    }
    Ok(report.exit_code)
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Missing => "missing",
        Status::Unknown => "unknown",
    }
}

/// The human report: one line per fact by group, under each missing one what it
/// disables or changes and how to get it; the socket line; a summary.
pub fn render(r: &Report, source: &Source, sock: &SocketState, bad: &[String]) -> String {
    let mut s = String::new();
    let from = match source {
        Source::Daemon { pid: Some(p) } => format!("facts from drilld (pid {p}) at {}", sock.path.display()),
        Source::Daemon { pid: None } => format!("facts from drilld at {}", sock.path.display()),
        Source::Drilld(exe) => format!("no daemon at {}: facts from `{} doctor`", sock.path.display(), exe.display()),
        Source::Unprivileged => format!("no daemon reachable at {} and not root: only what an unprivileged process can see", sock.path.display()),
    };
    let _ = writeln!(s, "drill doctor: what this machine offers the {} built-in drills ({from})", r.drills);
    let w = r.checks.iter().map(|c| c.title.len()).max().unwrap_or(0).min(44);
    let mut group: Option<Group> = None;
    for c in &r.checks {
        if group != Some(c.group) {
            group = Some(c.group);
            let _ = writeln!(s, "\n{}", c.group);
        }
        line(&mut s, c, w, r.drills);
    }
    let _ = writeln!(s);
    s.push_str(&summary(r, source));
    for b in bad {
        let _ = writeln!(s, "warning: a built-in scenario does not compile (it cannot run anywhere): {b}");
    }
    s
}

fn line(s: &mut String, c: &CheckLine, w: usize, all: usize) {
    let mark = match c.level {
        Level::Error => "!",
        Level::Warning => "~",
        _ => " ",
    };
    let title = if c.title.len() > w { c.title.clone() } else { format!("{:<w$}", c.title) };
    // The daemon's detail carries the socket line (for --json): on a line of its own here.
    let (detail, below) = match c.detail.split_once(SOCKET_SEP) {
        Some((d, sock)) if c.id == Need::Daemon.id() => (d, Some(sock)),
        _ => (c.detail.as_str(), None),
    };
    let detail = if detail.is_empty() { String::new() } else { format!("  {detail}") };
    let _ = writeln!(s, " {mark}{:<8} {title}{detail}", status_word(c.status));
    let pad = " ".repeat(11);
    if let Some(sock) = below {
        let _ = writeln!(s, "{pad}{sock}");
    }
    if !c.disables.is_empty() {
        let _ = writeln!(s, "{pad}disables: {}", doctor::drills_phrase(&c.disables, all));
    }
    for ch in &c.changes {
        let _ = writeln!(s, "{pad}changes {}: {}", doctor::drills_phrase(&ch.drills, all), ch.what);
    }
    if c.status == Status::Missing {
        if !c.kinds.is_empty() {
            let _ = writeln!(s, "{pad}needed by the kinds: {}", c.kinds.join(", "));
        }
        if c.disables.is_empty() && c.changes.is_empty() {
            let _ = writeln!(s, "{pad}no built-in drill needs it");
        }
        if !c.fix.is_empty() {
            let _ = writeln!(s, "{pad}fix: {}", c.fix);
        }
    }
}

fn summary(r: &Report, source: &Source) -> String {
    let mut s = String::new();
    let count = |st: Status| r.checks.iter().filter(|c| c.status == st).count();
    let _ = writeln!(s, "{} checks: {} ok, {} missing, {} not checked", r.checks.len(), count(Status::Ok), count(Status::Missing), r.unchecked);
    if r.cannot_run.is_empty() {
        let changed: Vec<String> = {
            let mut v: Vec<String> = r.checks.iter().flat_map(|c| c.changes.iter().flat_map(|ch| ch.drills.clone())).collect();
            v.sort();
            v.dedup();
            v
        };
        let _ = write!(s, "every built-in drill ({}) can run here", r.drills);
        if !changed.is_empty() {
            let _ = write!(s, "; {} changed as shown (~): {}", changed.len(), doctor::drills_phrase(&changed, r.drills));
        }
        if r.unchecked > 0 {
            let _ = write!(s, ", as far as the checks made can tell");
        }
        let _ = writeln!(s);
    } else {
        let _ = writeln!(s, "{} of the {} built-in drills cannot run here (!):", r.cannot_run.len(), r.drills);
        let title = |id: &str| r.checks.iter().find(|c| c.id == id).map_or(id.to_string(), |c| c.title.clone());
        // Drills stopped by the same pieces share a line.
        let mut by_missing: Vec<(&Vec<String>, Vec<String>)> = Vec::new();
        for (d, ids) in &r.cannot_run {
            match by_missing.iter_mut().find(|(m, _)| *m == ids) {
                Some((_, ds)) => ds.push(d.clone()),
                None => by_missing.push((ids, vec![d.clone()])),
            }
        }
        for (ids, ds) in by_missing {
            let _ = writeln!(s, "  {}: missing {}", doctor::drills_phrase(&ds, r.drills), ids.iter().map(|i| title(i)).collect::<Vec<_>>().join(", "));
        }
    }
    if r.unchecked > 0 {
        let groups: Vec<String> = {
            let mut g: Vec<Group> = r.checks.iter().filter(|c| c.status == Status::Unknown).map(|c| c.group).collect();
            g.dedup();
            g.iter().map(|g| g.to_string()).collect()
        };
        let how = match source {
            Source::Unprivileged => "they need root: run `sudo drill doctor`, or have drilld running (its socket then answers for it)",
            _ => "drilld could not try them (see each line)",
        };
        let _ = writeln!(s, "{} checks not made ({}): {how}", r.unchecked, groups.join("; "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drills() -> Vec<(String, Vec<doctor::Requirement>)> {
        doctor::drill_requirements(&drill_core::builtin::scenarios()).0
    }

    /// Every need present but `missing`; `unknown` not checked.
    fn facts(d: &[(String, Vec<doctor::Requirement>)], missing: &[Need], unknown: &[Need]) -> Vec<Fact> {
        doctor::all_needs(d)
            .iter()
            .filter(|n| !unknown.contains(n))
            .map(|n| Fact::new(n, !missing.contains(n), if missing.contains(n) { "Error: Specified qdisc kind is unknown." } else { "seen" }))
            .collect()
    }

    fn sock(connect: Result<(), String>, root: bool, in_group: bool) -> SocketState {
        SocketState { path: "/run/drill/drill.sock".into(), mode: Some(0o660), is_socket: true, owner: "root".into(), group: "drill".into(), in_group, uid: if root { 0 } else { 1000 }, root, connect }
    }

    #[test]
    fn modes_read_like_ls() {
        assert_eq!(rwx(0o660), "rw-rw----");
        assert_eq!(rwx(0o755), "rwxr-xr-x");
        assert_eq!(rwx(0o000), "---------");
    }

    #[test]
    fn without_netem_the_report_says_which_drills_use_the_delay_wire_and_exits_0() {
        let d = drills();
        let netem = Need::Qdisc("netem".into());
        let r = doctor::report(&facts(&d, std::slice::from_ref(&netem), &[]), &d);
        let text = render(&r, &Source::Daemon { pid: Some(42) }, &sock(Ok(()), true, false), &[]);
        assert_eq!(r.exit_code, 0);
        let l = text.lines().position(|l| l.contains("missing") && l.contains("qdisc netem")).unwrap_or_else(|| panic!("{text}"));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[l].starts_with(" ~missing"), "{}", lines[l]);
        assert!(lines[l + 1].contains("changes ") && lines[l + 1].contains("wan-latency-504") && lines[l + 1].contains("delay wire"), "{}", lines[l + 1]);
        assert!(lines[l + 2].trim_start().starts_with("fix: modprobe sch_netem"), "{}", lines[l + 2]);
        assert!(text.contains("drilld (pid 42)"), "{text}");
        assert!(text.contains("every built-in drill"), "{text}");
        assert!(text.contains("can run here; "), "changed drills are named: {text}");
    }

    #[test]
    fn a_missing_service_program_names_the_drills_it_disables_and_exits_1() {
        let d = drills();
        let nginx = Need::Binary { path: "/usr/sbin/nginx".into(), package: "nginx-light".into() };
        let r = doctor::report(&facts(&d, std::slice::from_ref(&nginx), &[]), &d);
        assert_eq!(r.exit_code, 1);
        let text = render(&r, &Source::Drilld("/usr/sbin/drilld".into()), &sock(Err("no such file".into()), true, false), &[]);
        let off = doctor::disabled_by(&nginx, &d);
        assert!(text.contains(&format!("disables: {}", off.join(", "))), "{text}");
        assert!(text.contains("fix: apt-get install nginx-light"), "{text}");
        assert!(text.contains(&format!("{} of the {} built-in drills cannot run here", off.len(), d.len())), "{text}");
        assert!(text.contains("`/usr/sbin/drilld doctor`"), "{text}");
    }

    #[test]
    fn one_line_per_fact() {
        let d = drills();
        let r = doctor::report(&facts(&d, &[], &[]), &d);
        let text = render(&r, &Source::Daemon { pid: None }, &sock(Ok(()), true, false), &[]);
        let fact_lines = text.lines().filter(|l| l.starts_with("  ok ") || l.starts_with(" !") || l.starts_with(" ~") || l.starts_with("  unknown")).count();
        assert_eq!(fact_lines, r.checks.len(), "{text}");
    }

    #[test]
    fn unchecked_facts_say_they_need_root() {
        let d = drills();
        let unknown = [Need::Qdisc("netem".into()), Need::Nftables];
        let r = doctor::report(&facts(&d, &[], &unknown), &d);
        assert_eq!(r.unchecked, 2);
        let text = render(&r, &Source::Unprivileged, &sock(Err("permission denied".into()), false, false), &[]);
        assert!(text.contains("  unknown  qdisc netem"), "{text}");
        assert!(text.contains("2 checks not made (network (nftables, tc, links)): they need root: run `sudo drill doctor`"), "{text}");
        assert!(text.contains("not root"), "{text}");
    }

    #[test]
    fn the_socket_line_says_mode_group_and_whether_this_user_connects() {
        assert_eq!(sock(Ok(()), false, true).line(), "socket /run/drill/drill.sock: srw-rw---- root:drill; uid 1000 can connect (you are in its group drill)");
        let denied = sock(Err("permission denied".into()), false, false).line();
        assert!(denied.contains("uid 1000 cannot connect (permission denied): join the `drill` group (sudo usermod -aG drill $USER"), "{denied}");
        let mut gone = sock(Err("no such file".into()), true, false);
        gone.mode = None;
        assert!(gone.line().contains("does not exist; as root, `drill start` starts drilld"), "{}", gone.line());
    }

    #[test]
    fn the_socket_line_sits_under_the_daemon_line() {
        let d = drills();
        let mut f = facts(&d, &[], &[Need::Daemon]);
        let st = sock(Ok(()), false, true);
        let mut daemon = st.fact();
        daemon.detail = format!("{}{SOCKET_SEP}{}", daemon.detail, st.line());
        f.push(daemon);
        let r = doctor::report(&f, &d);
        let text = render(&r, &Source::Daemon { pid: Some(1) }, &st, &[]);
        let lines: Vec<&str> = text.lines().collect();
        let i = lines.iter().position(|l| l.contains("drilld and its socket")).unwrap();
        assert!(lines[i].ends_with("drilld answers on its socket"), "{}", lines[i]);
        assert_eq!(lines[i + 1].trim_start(), st.line());
    }

    #[test]
    fn the_daemon_fact_is_ok_when_reachable_or_startable_by_root() {
        assert_eq!(sock(Ok(()), false, true).fact().status, Status::Ok);
        assert_eq!(sock(Err("no such file".into()), true, false).fact().status, Status::Ok);
        assert_eq!(sock(Err("permission denied".into()), false, false).fact().status, Status::Missing);
        assert_eq!(sock(Err("no such file".into()), false, false).fact().status, Status::Missing);
    }

    #[test]
    fn unprivileged_facts_cover_every_need_but_the_daemon() {
        let d = drills();
        let f = unprivileged_facts(&d);
        for n in doctor::all_needs(&d) {
            let has = f.iter().any(|x| x.id == n.id());
            assert_eq!(has, n != Need::Daemon, "{}", n.id());
        }
        assert!(f.iter().any(|x| x.id == "kernel:5.8" && x.status != Status::Unknown));
        assert!(f.iter().any(|x| x.id == "qdisc:netem" && x.status == Status::Unknown && x.detail.contains("needs root")));
    }
}
