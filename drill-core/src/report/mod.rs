//! `drill report`: a blameless postmortem of one `DrillRecord`, in Markdown, a single
//! self-contained HTML file, or JSON (docs/report.md). Pure: the record in, text out.
//!
//! The sections are the ones incident reviews use: summary, impact, detection, timeline,
//! root cause and trigger, resolution, figures (MTTA, MTTM, MTTR), action items and
//! lessons. What the engine measured is given in exact numbers; what only people can say
//! (action items, lessons) is left as a form to fill in.

use crate::incident::clock;
use crate::record::{Command, DrillRecord, Event, EventKind, Exit, Mode};

mod html;
pub use html::MAX_MARKERS;
mod json;
mod md;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Md,
    Html,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "md" | "markdown" => Ok(Format::Md),
            "html" => Ok(Format::Html),
            "json" => Ok(Format::Json),
            _ => Err(format!("unknown report format `{s}`: md (Markdown), html (one self-contained file) or json")),
        }
    }
}

/// The postmortem of `rec` in `fmt`.
pub fn render(rec: &DrillRecord, fmt: Format) -> String {
    match fmt {
        Format::Md => md::render(rec),
        Format::Html => html::render(rec),
        Format::Json => json::render(rec),
    }
}

/// The sections of every format, in order: (id, heading).
pub const SECTIONS: [(&str, &str); 9] = [
    ("summary", "Summary"),
    ("impact", "Impact"),
    ("detection", "Detection"),
    ("timeline", "Timeline"),
    ("root-cause", "Root cause and trigger"),
    ("resolution", "Resolution"),
    ("figures", "MTTA, MTTM, MTTR"),
    ("action-items", "Action items"),
    ("lessons", "Lessons"),
];

/// The heading of a section by id.
pub(crate) fn heading(id: &str) -> &'static str {
    SECTIONS.iter().find(|(i, _)| *i == id).map_or("", |(_, h)| h)
}

/// At most this many state-changing commands are credited before one flip.
pub const RESOLUTION_PER_FLIP: usize = 3;

/// Programs that only look (never change the state of a host), whatever their arguments.
/// A command whose program is here is never credited with a fix unless nothing else ran.
pub const READ_ONLY_PROGRAMS: &[&str] = &[
    "ls",
    "cat",
    "less",
    "more",
    "head",
    "tail",
    "grep",
    "egrep",
    "fgrep",
    "zgrep",
    "wc",
    "stat",
    "file",
    "which",
    "whereis",
    "id",
    "whoami",
    "w",
    "who",
    "uptime",
    "uname",
    "date",
    "pwd",
    "printenv",
    "ss",
    "netstat",
    "ping",
    "ping6",
    "curl",
    "wget",
    "dig",
    "host",
    "nslookup",
    "drill",
    "tcpdump",
    "tshark",
    "traceroute",
    "tracepath",
    "mtr",
    "nc",
    "ncat",
    "openssl",
    "ps",
    "pgrep",
    "top",
    "htop",
    "free",
    "df",
    "du",
    "lsof",
    "strace",
    "ltrace",
    "journalctl",
    "dmesg",
    "vmstat",
    "iostat",
    "mpstat",
    "pidstat",
    "sar",
    "nstat",
    "lsns",
    "lsblk",
    "findmnt",
    "getent",
    "man",
    "iptables-save",
    "ip6tables-save",
    "nft-list",
    "arping",
    "iperf3",
    "bpftrace",
    "perf",
];

/// Programs that only look when used in a read-only form (see `is_read_only`):
/// `ip` and `tc` with `show`/`list`/`get` (or no verb, `ip -s link`), `nft list|monitor|describe`,
/// `iptables -L/-S` (without `-Z`), `sysctl` without `-w`/`-p`/`--system`/`=`, `svc status|logs|list`,
/// `systemctl status|show|list-*|is-*`, `ethtool` without a setting option,
/// `conntrack -L/-S/-C/-E/-G`, `arp` without `-d`/`-s`, `route` without `add`/`del`,
/// a shell without `-c` (an interactive shell, not what it runs).
pub const READ_ONLY_FORMS: &[&str] = &[
    "ip [OPTS] OBJECT [show|list|ls|lst|get]",
    "tc [OPTS] OBJECT [show|list|ls]",
    "nft [OPTS] list|monitor|describe ...",
    "iptables|ip6tables -L|-S ... (no -Z)",
    "sysctl [-a] [-n] KEY (no -w, -p, --system, no `=`)",
    "svc [status|logs|list] ...",
    "systemctl status|show|cat|list-*|is-* ...",
    "ethtool [-i|-k|-S|-g|-l|-a|-c|-m] IFACE",
    "conntrack -L|-S|-C|-E|-G ...",
    "arp (no -d, -s)",
    "route (no add, del)",
    "bash|sh|dash|zsh (no -c)",
];

fn words<'a>(args: &'a [&'a str]) -> Vec<&'a str> {
    args.iter().copied().filter(|a| !a.starts_with('-')).collect()
}

/// Whether a command line only looks (its program and form are in `READ_ONLY_PROGRAMS`
/// or `READ_ONLY_FORMS`). `sudo`, `env` and `timeout N` in front are looked through.
pub fn is_read_only(argv: &[String]) -> bool {
    let mut a: Vec<&str> = argv.iter().map(String::as_str).collect();
    loop {
        let p = a.first().map(|s| s.rsplit('/').next().unwrap_or(s)).unwrap_or("");
        match p {
            "sudo" | "env" | "nice" | "ionice" => {
                a.remove(0);
                while a.first().is_some_and(|s| s.starts_with('-') || s.contains('=')) {
                    a.remove(0);
                }
            }
            "timeout" => {
                a.remove(0);
                while a.first().is_some_and(|s| s.starts_with('-')) {
                    a.remove(0);
                }
                if !a.is_empty() {
                    a.remove(0);
                }
            }
            _ => break,
        }
    }
    let Some(first) = a.first() else { return true };
    let prog = first.rsplit('/').next().unwrap_or(first);
    let args = &a[1..];
    if READ_ONLY_PROGRAMS.contains(&prog) {
        return true;
    }
    let has = |flags: &[&str]| args.iter().any(|x| flags.contains(x));
    match prog {
        "ip" | "tc" => {
            // `ip -n NS ...` / `ip -netns NS`: the namespace name is not a word.
            let mut w = Vec::new();
            let mut skip = false;
            for x in args {
                if skip {
                    skip = false;
                } else if matches!(*x, "-n" | "-netns" | "-b" | "-batch") {
                    skip = true;
                    if matches!(*x, "-b" | "-batch") {
                        return false;
                    }
                } else if !x.starts_with('-') {
                    w.push(*x);
                }
            }
            match w.get(1) {
                None => true,
                Some(v) => ["show", "list", "ls", "lst", "get", "sh", "s", "l", "monitor"].contains(v) || (prog == "ip" && w[0] == "netns" && *v == "identify"),
            }
        }
        "nft" => words(args).first().is_some_and(|w| ["list", "monitor", "describe"].contains(w)) && !has(&["-f", "--file", "-i", "--interactive"]),
        "iptables" | "ip6tables" | "iptables-nft" | "iptables-legacy" | "ip6tables-nft" | "ip6tables-legacy" => {
            args.iter().any(|x| {
                matches!(*x, "-L" | "--list" | "-S" | "--list-rules")
                    || (x.starts_with("-L") && x.len() > 2 && !x.contains('Z'))
                    || (x.starts_with("-") && !x.starts_with("--") && x.contains('L') && !x.contains('Z'))
            }) && !has(&[
                "-A",
                "-D",
                "-I",
                "-R",
                "-F",
                "-Z",
                "-N",
                "-X",
                "-P",
                "-E",
                "--append",
                "--delete",
                "--insert",
                "--replace",
                "--flush",
                "--zero",
                "--new-chain",
                "--delete-chain",
                "--policy",
                "--rename-chain",
            ]) && !args.iter().any(|x| x.starts_with('-') && !x.starts_with("--") && x.contains('Z'))
        }
        "sysctl" => !args
            .iter()
            .any(|x| x.contains('=') || matches!(*x, "-w" | "--write" | "-p" | "--load" | "--system") || (x.starts_with('-') && !x.starts_with("--") && (x.contains('w') || x.contains('p')))),
        "svc" => args.first().is_none_or(|v| matches!(*v, "status" | "logs" | "list" | "ls" | "log")),
        "systemctl" => words(args).first().is_none_or(|v| matches!(*v, "status" | "show" | "cat") || v.starts_with("list-") || v.starts_with("is-")),
        "ethtool" => !has(&[
            "-s",
            "--change",
            "-K",
            "--offload",
            "-G",
            "--set-ring",
            "-L",
            "--set-channels",
            "-A",
            "--pause",
            "-C",
            "--coalesce",
            "-E",
            "--change-eeprom",
            "-X",
            "--set-rxfh-indir",
            "-U",
            "-N",
            "--config-nfc",
            "-f",
            "--flash",
            "-W",
            "--set-dump",
            "-r",
            "--negotiate",
            "-p",
            "--identify",
            "--reset",
        ]),
        "conntrack" => has(&["-L", "--dump", "-S", "--stats", "-C", "--count", "-E", "--event", "-G", "--get"]) && !has(&["-D", "--delete", "-F", "--flush", "-U", "--update", "-I", "--create"]),
        "arp" => !has(&["-d", "--delete", "-s", "--set", "-f", "--file"]),
        "route" => !args.iter().any(|x| matches!(*x, "add" | "del" | "delete" | "flush")),
        "bash" | "sh" | "dash" | "zsh" | "ash" => args.iter().all(|x| x.starts_with('-') && !x.contains('c')),
        _ => false,
    }
}

/// One command credited with a change of state: the command and what flipped after it.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolutionStep {
    /// Index of the command in `record.events`.
    pub event: usize,
    pub t_ms: u64,
    pub host: String,
    pub line: String,
    /// The first thing that followed it: a check's name, or `mitigated`.
    pub followed_by: String,
    /// Everything credited to it, in order (checks and `mitigated`).
    pub flips: Vec<String>,
    /// It is read-only itself (credited only because nothing else ran before the flip).
    pub read_only: bool,
}

/// The learner's commands that changed the state (docs/report.md, "Resolution"). For the
/// `Mitigated` event and each `CheckFlip` to passing (a *flip*), in timeline order: the
/// non-service commands started in its span (after the last flip at an earlier time, up
/// to the flip itself) that are not read-only, the last `RESOLUTION_PER_FLIP` of them; if
/// none qualifies, the last command of the span. Flips at the same time share one span.
pub fn resolution(rec: &DrillRecord) -> Vec<ResolutionStep> {
    let mut steps: Vec<ResolutionStep> = Vec::new();
    let mut span_start = 0usize; // first event index of the current span
    let mut span_t: Option<u64> = None; // time of the flips that opened the span
    let mut prev_span_start = 0usize;
    for (i, e) in rec.events.iter().enumerate() {
        let name = match &e.kind {
            EventKind::Mitigated => "mitigated".to_string(),
            EventKind::CheckFlip { check, passed: true, .. } => check.clone(),
            _ => continue,
        };
        // Flips at the same time as the previous flip share its span.
        let start = if span_t == Some(e.t_ms) { prev_span_start } else { span_start };
        let cmds: Vec<(usize, &Command)> = rec.events[start..i]
            .iter()
            .enumerate()
            .filter_map(|(j, ev)| match &ev.kind {
                EventKind::Command(c) if !c.service => Some((start + j, c)),
                _ => None,
            })
            .collect();
        let changing: Vec<(usize, &Command)> = cmds.iter().copied().filter(|(_, c)| !is_read_only(&c.argv)).collect();
        let chosen: Vec<(usize, &Command, bool)> = if changing.is_empty() {
            cmds.last().map(|(j, c)| (*j, *c, true)).into_iter().collect()
        } else {
            changing[changing.len().saturating_sub(RESOLUTION_PER_FLIP)..].iter().map(|(j, c)| (*j, *c, false)).collect()
        };
        for (j, c, ro) in chosen {
            if let Some(s) = steps.iter_mut().find(|s| s.event == j) {
                if !s.flips.contains(&name) {
                    s.flips.push(name.clone());
                }
            } else {
                steps.push(ResolutionStep { event: j, t_ms: rec.events[j].t_ms, host: c.host.clone(), line: c.line(), followed_by: name.clone(), flips: vec![name.clone()], read_only: ro });
            }
        }
        if span_t != Some(e.t_ms) {
            prev_span_start = span_start;
            span_t = Some(e.t_ms);
        }
        span_start = i + 1;
    }
    steps.sort_by_key(|s| s.event);
    steps
}

/// `m:ss.s` since the start.
pub fn tclock(ms: u64) -> String {
    let tenths = (ms + 50) / 100;
    let (m, s) = (tenths / 600, tenths % 600);
    format!("{m}:{:02}.{}", s / 10, s % 10)
}

/// A duration for people: `850 ms`, `42.0 s`, `4m 05s`, `1h 02m 03s`.
pub fn human_duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms} ms");
    }
    if ms < 60_000 {
        return format!("{:.1} s", ms as f64 / 1000.0);
    }
    let s = ms / 1000;
    if s < 3600 { format!("{}m {:02}s", s / 60, s % 60) } else { format!("{}h {:02}m {:02}s", s / 3600, s / 60 % 60, s % 60) }
}

/// Unix ms as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian calendar).
pub fn utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem / 60 % 60, rem % 60)
}

/// `—` for an absent figure, else `m:ss`.
pub fn figure(ms: Option<u64>) -> String {
    ms.map_or_else(|| "—".to_string(), clock)
}

pub fn exit_text(e: &Option<Exit>) -> String {
    match e {
        Some(Exit::Code(n)) => format!("code {n}"),
        Some(Exit::Signal(n)) => format!("signal {n}"),
        None => "running".to_string(),
    }
}

pub fn mode_text(m: Mode) -> &'static str {
    match m {
        Mode::Drill => "drill",
        Mode::Incident => "incident",
    }
}

/// The scenario as `pack/id`.
pub fn scenario_ref(rec: &DrillRecord) -> String {
    if rec.pack.is_empty() { rec.scenario.clone() } else { format!("{}/{}", rec.pack, rec.scenario) }
}

/// The error ratio of the impact, as text.
pub fn error_ratio(rec: &DrillRecord) -> String {
    let f = &rec.figures;
    if f.requests == 0 { "no requests measured".to_string() } else { format!("{:.1}% ({} / {})", 100.0 * f.failed_requests as f64 / f.requests as f64, f.failed_requests, f.requests) }
}

/// The kind of an event as a short word (the timeline's "what" column and the legend).
pub fn kind_word(e: &Event) -> &'static str {
    match &e.kind {
        EventKind::FaultInjected { .. } => "fault injected",
        EventKind::Paged { .. } => "paged",
        EventKind::Ack => "acknowledged",
        EventKind::Command(c) if c.service => "service command",
        EventKind::Command(_) => "command",
        EventKind::Svc { .. } => "svc",
        EventKind::Hint { .. } => "hint",
        EventKind::Submit { passed: true, .. } => "submit passed",
        EventKind::Submit { passed: false, .. } => "submit failed",
        EventKind::CheckFlip { passed: true, .. } => "check passing",
        EventKind::CheckFlip { passed: false, .. } => "check failing",
        EventKind::Mitigated => "mitigated",
        EventKind::Collateral { .. } => "collateral",
        EventKind::Solve { .. } => "solve",
        EventKind::TimeUp => "time up",
        EventKind::Ended { .. } => "ended",
    }
}

/// The host an event happened in, if any.
pub fn event_host(e: &Event) -> Option<&str> {
    match &e.kind {
        EventKind::Command(c) => Some(&c.host),
        EventKind::Svc { host, .. } | EventKind::Collateral { host, .. } => Some(host),
        _ => None,
    }
}

/// What an event says, as plain text (commands: their line, cwd, uid and exit).
pub fn event_text(e: &Event) -> String {
    match &e.kind {
        EventKind::FaultInjected { fault, note } => {
            if note.is_empty() {
                fault.clone()
            } else {
                format!("{fault}: {note}")
            }
        }
        EventKind::Paged { severity, alert } => format!("{severity}: {alert}"),
        EventKind::Ack => "the page was acknowledged".into(),
        EventKind::Command(c) => format!("{} (cwd {}, uid {}, {})", c.line(), c.cwd, c.uid, exit_text(&c.exit)),
        EventKind::Svc { action, service, .. } => format!("svc {action} {service}"),
        EventKind::Hint { index, total } => format!("hint {index} of {total}"),
        EventKind::Submit { passed: true, .. } => "submit: every check passed".into(),
        EventKind::Submit { passed: false, failed_checks } => format!("submit: failed {}", if failed_checks.is_empty() { "(no check named)".to_string() } else { failed_checks.join(", ") }),
        EventKind::CheckFlip { check, passed, saw } => format!("{check} now {} (saw {saw})", if *passed { "passing" } else { "failing" }),
        EventKind::Mitigated => "the service level recovered and stayed so".into(),
        EventKind::Collateral { what, .. } => what.clone(),
        EventKind::Solve { applied } => {
            if *applied {
                "drill solve: the reference fix was applied".into()
            } else {
                "drill solve: the answer was shown".into()
            }
        }
        EventKind::TimeUp => "the clock ran out".into(),
        EventKind::Ended { outcome } => format!("ended: {}", outcome.as_str()),
    }
}

/// Replace control characters (newlines in an argv) by spaces, for one-line display.
pub fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn read_only_forms() {
        for ro in [
            "ls -la /etc",
            "cat /etc/hosts",
            "ip a",
            "ip -s link",
            "ip route show",
            "ip addr show dev eth0",
            "ip -n ns1 route",
            "nft -a list ruleset",
            "nft list table inet filter",
            "iptables -L -n -v",
            "iptables -S",
            "iptables -nvL",
            "sysctl net.ipv4.ip_forward",
            "sysctl -a",
            "svc status",
            "svc logs httpd",
            "ss -tlnp",
            "curl -v -m 3 http://api:8080/",
            "sudo nft list ruleset",
            "tc qdisc show dev eth0",
            "tc -s qdisc",
            "bash",
            "conntrack -L",
            "ethtool -k eth0",
            "/usr/bin/journalctl -u x",
            "timeout 5 tcpdump -i any",
        ] {
            assert!(is_read_only(&v(ro)), "{ro} is read-only");
        }
        for rw in [
            "nft delete rule inet filter input handle 4",
            "nft flush ruleset",
            "nft -f /etc/nftables.conf",
            "ip route add default via 10.0.0.1",
            "ip link set eth0 up",
            "ip addr del 10.0.0.2/24 dev eth0",
            "iptables -D INPUT 1",
            "iptables -L -Z",
            "iptables -F",
            "sysctl -w net.ipv4.ip_forward=1",
            "sysctl net.ipv4.ip_forward=1",
            "sysctl -p",
            "svc restart httpd",
            "tc qdisc del dev eth0 root",
            "sh -c rm",
            "rm -f /x",
            "vi /etc/hosts",
            "conntrack -F",
            "ethtool -K eth0 tso off",
            "sudo ip link set eth0 down",
            "echo 1",
        ] {
            assert!(!is_read_only(&v(rw)), "{rw} changes state");
        }
    }

    #[test]
    fn clocks() {
        assert_eq!(tclock(0), "0:00.0");
        assert_eq!(tclock(40_000), "0:40.0");
        assert_eq!(tclock(61_240), "1:01.2");
        assert_eq!(tclock(59_960), "1:00.0");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_166_000_000), "2026-12-01 23:00:00 UTC");
        assert_eq!(human_duration(305_000), "5m 05s");
        assert_eq!(figure(None), "—");
        assert!("pdf".parse::<Format>().unwrap_err().contains("md"));
        assert_eq!("html".parse::<Format>(), Ok(Format::Html));
    }
}
