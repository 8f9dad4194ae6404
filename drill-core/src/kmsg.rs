//! A host's kernel log, in the format of `/dev/kmsg` (the kernel's
//! Documentation/ABI/testing/dev-kmsg): one record per `read(2)`,
//! `PRIO,SEQ,USEC,FLAGS;MESSAGE\n`, where PRIO is `facility << 3 | level`, SEQ the
//! record's sequence number, USEC the microseconds since boot (here: since the host
//! started) and MESSAGE has every byte below 0x20, above 0x7e and `\` written as `\xNN`.
//!
//! The daemon keeps one log per host (drill-daemon/src/host/kmsg.rs serves it as the
//! host's `/dev/kmsg`). It writes a banner when the host starts and copies, from the
//! machine's own kernel log, the records of OOM kills in the host's memory cgroup:
//! [`OomRouter`] tells which, from the kernel's `oom-kill:` line naming the cgroup.

use std::collections::BTreeMap;

/// syslog levels the kernel uses (`KERN_*`), facility 0 (kernel).
pub const LEVEL_ERR: u8 = 3;
pub const LEVEL_NOTICE: u8 = 5;
pub const LEVEL_INFO: u8 = 6;

/// One record of a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// `facility << 3 | level`.
    pub prio: u8,
    /// Microseconds since the log's start (boot, or the host's start).
    pub usec: u64,
    /// The text, unescaped.
    pub msg: Vec<u8>,
}

/// A record as `/dev/kmsg` gives it: `prio,seq,usec,-;message\n`.
pub fn format(rec: &Record, seq: u64) -> Vec<u8> {
    let mut out = format!("{},{seq},{},-;", rec.prio, rec.usec).into_bytes();
    out.extend_from_slice(escape(&rec.msg).as_bytes());
    out.push(b'\n');
    out
}

/// The message escaped as `/dev/kmsg` does: bytes below 0x20, above 0x7e and the
/// backslash as `\xNN`.
pub fn escape(msg: &[u8]) -> String {
    let mut s = String::with_capacity(msg.len());
    for &b in msg {
        if (b' '..0x7f).contains(&b) && b != b'\\' {
            s.push(b as char);
        } else {
            s.push_str(&std::format!("\\x{b:02x}"));
        }
    }
    s
}

/// Reverses [`escape`] (`\xNN` to the byte; anything else as it is).
pub fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && s.get(i + 1) == Some(&b'x') {
            let hex = s.get(i + 2..i + 4).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// One record read from a real `/dev/kmsg`: (prio, seq, usec, message unescaped).
/// The dictionary lines (` KEY=value`) after the first line are dropped.
pub fn parse(raw: &[u8]) -> Option<(u8, u64, u64, Vec<u8>)> {
    let semi = raw.iter().position(|b| *b == b';')?;
    let head = std::str::from_utf8(&raw[..semi]).ok()?;
    let mut f = head.split(',');
    let prio: u32 = f.next()?.parse().ok()?;
    let seq: u64 = f.next()?.parse().ok()?;
    let usec: u64 = f.next()?.parse().ok()?;
    let body = &raw[semi + 1..];
    let end = body.iter().position(|b| *b == b'\n').unwrap_or(body.len());
    Some(((prio & 0xff) as u8, seq, usec, unescape(&body[..end])))
}

/// The first record of a host's log: the kernel's banner (the host runs the
/// machine's kernel). `version` is `/proc/version`'s text.
pub fn banner(version: &str) -> Record {
    Record { prio: LEVEL_NOTICE, usec: 0, msg: version.trim_end().as_bytes().to_vec() }
}

/// `oom-kill:...,task_memcg=/path,task=NAME,pid=N,...`: the victim's memory cgroup and pid.
pub fn oom_kill_line(msg: &str) -> Option<(&str, u32)> {
    let rest = msg.strip_prefix("oom-kill:")?;
    let (mut memcg, mut pid) = (None, None);
    for kv in rest.split(',') {
        if let Some(v) = kv.strip_prefix("task_memcg=") {
            memcg = Some(v);
        } else if let Some(v) = kv.strip_prefix("pid=") {
            pid = v.parse().ok();
        }
    }
    Some((memcg?, pid?))
}

/// The pid of `...Killed process N (name) ...` (the OOM killer) or
/// `oom_reaper: reaped process N (name), ...`.
pub fn victim_line(msg: &str) -> Option<u32> {
    let at = ["Killed process ", "oom_reaper: reaped process "].iter().find_map(|p| msg.find(p).map(|i| i + p.len()))?;
    msg[at..].split(' ').next()?.parse().ok()
}

/// Whether the memory cgroup path `memcg` is cgroup `name` or below it.
pub fn in_cgroup(memcg: &str, name: &str) -> bool {
    memcg.split('/').any(|c| c == name)
}

/// Picks, from the machine's kernel log, the records of OOM kills in hosts' cgroups:
/// the `oom-kill:` line (which names the victim's cgroup), then the `Killed process`
/// and `oom_reaper` lines of the same pid.
#[derive(Default, Debug)]
pub struct OomRouter {
    /// Victims announced by an `oom-kill:` line, by pid: the host's key.
    victims: BTreeMap<u32, String>,
}

impl OomRouter {
    /// Victims remembered at most (the oldest are forgotten first).
    const KEEP: usize = 256;

    /// The key of the host whose log `msg` belongs in, if any. `host_of` maps a memory
    /// cgroup path to the key of the host owning it.
    pub fn route(&mut self, msg: &str, host_of: impl Fn(&str) -> Option<String>) -> Option<String> {
        if let Some((memcg, pid)) = oom_kill_line(msg) {
            let host = host_of(memcg)?;
            if self.victims.len() >= Self::KEEP {
                self.victims.pop_first();
            }
            self.victims.insert(pid, host.clone());
            return Some(host);
        }
        let pid = victim_line(msg)?;
        if msg.starts_with("oom_reaper:") { self.victims.remove(&pid) } else { self.victims.get(&pid).cloned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OOM: &str = "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/drill-a1-server,task_memcg=/drill-a1-server,task=tail,pid=4242,uid=0";
    const KILLED: &str = "Memory cgroup out of memory: Killed process 4242 (tail) total-vm:270440kB, anon-rss:30000kB, file-rss:4kB, shmem-rss:0kB, UID:0 pgtables:600kB oom_score_adj:0";

    #[test]
    fn a_record_is_one_line_in_the_dev_kmsg_format() {
        let r = Record { prio: LEVEL_ERR, usec: 1_234_567, msg: b"hello".to_vec() };
        assert_eq!(format(&r, 7), b"3,7,1234567,-;hello\n");
    }

    #[test]
    fn non_printable_bytes_and_backslashes_are_escaped() {
        assert_eq!(escape(b"a\nb\\c\x7f\xe9 d"), "a\\x0ab\\x5cc\\x7f\\xe9 d");
        let r = Record { prio: 6, usec: 0, msg: b"two\nlines".to_vec() };
        assert_eq!(format(&r, 0), b"6,0,0,-;two\\x0alines\n");
    }

    #[test]
    fn unescape_reverses_escape() {
        let raw: Vec<u8> = (0u8..=255).collect();
        assert_eq!(unescape(escape(&raw).as_bytes()), raw);
        assert_eq!(unescape(b"bad \\xZZ and \\x"), b"bad \\xZZ and \\x");
    }

    #[test]
    fn a_machine_record_parses_without_its_dictionary() {
        let raw = b"6,1200,20763469308,-;usb 1-1: new device\\x0a2\n SUBSYSTEM=usb\n DEVICE=c189:1\n";
        assert_eq!(parse(raw), Some((6, 1200, 20763469308, b"usb 1-1: new device\n2".to_vec())));
        assert_eq!(parse(b"garbage"), None);
        assert_eq!(parse(b"x,1,2,-;m"), None);
    }

    #[test]
    fn the_banner_is_the_kernel_version_at_zero() {
        let b = banner("Linux version 6.18.0 (gcc 12) #1 SMP\n");
        assert_eq!(format(&b, 0), b"5,0,0,-;Linux version 6.18.0 (gcc 12) #1 SMP\n");
    }

    #[test]
    fn the_oom_kill_line_names_the_cgroup_and_pid() {
        assert_eq!(oom_kill_line(OOM), Some(("/drill-a1-server", 4242)));
        assert_eq!(oom_kill_line("oom-kill:constraint=CONSTRAINT_NONE"), None);
        assert_eq!(victim_line(KILLED), Some(4242));
        assert_eq!(victim_line("oom_reaper: reaped process 4242 (tail), now anon-rss:0kB"), Some(4242));
        assert_eq!(victim_line("Out of memory: Killed process 9 (x) total-vm:1kB"), Some(9));
        assert!(in_cgroup("/drill-a1-server", "drill-a1-server"));
        assert!(in_cgroup("/machine/drill-a1-server/sub", "drill-a1-server"));
        assert!(!in_cgroup("/drill-a1-server2", "drill-a1-server"));
    }

    #[test]
    fn only_the_hosts_oom_kills_are_routed_to_it() {
        let mut r = OomRouter::default();
        let host_of = |cg: &str| in_cgroup(cg, "drill-a1-server").then(|| "a1-server".to_string());
        assert_eq!(r.route("tail invoked oom-killer: gfp_mask=0xcc0", host_of), None);
        assert_eq!(r.route(OOM, host_of).as_deref(), Some("a1-server"));
        assert_eq!(r.route(KILLED, host_of).as_deref(), Some("a1-server"));
        assert_eq!(r.route("oom_reaper: reaped process 4242 (tail), now anon-rss:0kB", host_of).as_deref(), Some("a1-server"));
        // After the reaper line the pid is forgotten; another cgroup's kill is not routed.
        assert_eq!(r.route(KILLED, host_of), None);
        let other = OOM.replace("drill-a1-server", "user.slice");
        assert_eq!(r.route(&other, host_of), None);
        assert_eq!(r.route(KILLED, host_of), None);
    }
}

/// The kernel's `net_ratelimit()` as the host's log sees it: at most `burst` messages per
/// `interval_us` (net.core.message_burst = 10, message_cost = 5 s), the rest counted and
/// reported as `net_ratelimit: N callbacks suppressed` before the next message that passes.
#[derive(Clone, Debug)]
pub struct NetRatelimit {
    pub interval_us: u64,
    pub burst: u32,
    begin_us: Option<u64>,
    printed: u32,
    missed: u64,
}

impl Default for NetRatelimit {
    fn default() -> Self {
        NetRatelimit { interval_us: 5_000_000, burst: 10, begin_us: None, printed: 0, missed: 0 }
    }
}

impl NetRatelimit {
    /// The lines `events` messages `msg` at time `now_us` put in the log.
    pub fn lines(&mut self, now_us: u64, events: u64, msg: &str) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..events {
            let begin = *self.begin_us.get_or_insert(now_us);
            if now_us.saturating_sub(begin) >= self.interval_us {
                if self.missed > 0 {
                    out.push(format!("net_ratelimit: {} callbacks suppressed", self.missed));
                }
                self.begin_us = Some(now_us);
                self.printed = 0;
                self.missed = 0;
            }
            if self.printed < self.burst {
                self.printed += 1;
                out.push(msg.to_string());
            } else {
                self.missed += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod ratelimit_tests {
    use super::NetRatelimit;

    #[test]
    fn ten_per_five_seconds_then_the_count_of_the_suppressed() {
        let mut r = NetRatelimit::default();
        assert_eq!(r.lines(0, 25, "x").len(), 10);
        assert!(r.lines(1_000_000, 5, "x").is_empty());
        let next = r.lines(5_000_000, 1, "x");
        assert_eq!(next, ["net_ratelimit: 20 callbacks suppressed", "x"]);
        assert!(r.lines(6_000_000, 0, "x").is_empty());
    }
}
