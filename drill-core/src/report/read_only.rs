//! Which command lines only look (never change the state of a host): the resolution
//! credits a fix only to commands that are not read-only.

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
    // Long: one match arm per program, the read-only forms of READ_ONLY_FORMS in code; a table is read best in one place.
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
}
