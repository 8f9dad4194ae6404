//! The Linux-failure drills of the curriculum (oom-killed, runaway-cpu, ...), each as a
//! learner meets it, checked from outside with the learner's own tools (`ip netns exec`,
//! curl, ps inside the host, the host's cgroup files), then fixed and stopped with nothing
//! left behind. Runs as root (see common/mod.rs).

mod common;

use std::time::Duration;

use common::*;

/// Runs a shell line inside a host of drill `id`; its stdout.
fn host_sh(d: &TestDaemon, id: &str, host: &str, line: &str) -> String {
    let out = d.drill(&["exec", "--drill", id, host, "--", "sh", "-c", line]);
    assert!(out.status.success(), "`{line}` on {host}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The file `file` of host `host`'s cgroup in the first hierarchy that has it (v1 or v2).
fn cgroup_file(id: &str, host: &str, files: &[&str]) -> String {
    for root in ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/pids", "/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        for f in files {
            if let Ok(t) = std::fs::read_to_string(format!("{root}/drill-{id}-{host}/{f}")) {
                return t.trim().to_string();
            }
        }
    }
    panic!("no cgroup file {files:?} of drill-{id}-{host}")
}

#[test]
fn oom_killed_from_outside() {
    if !privileged_or_skip("oom_killed_from_outside") {
        return;
    }
    let d = TestDaemon::start("oom");
    let id = d.drill_json(&["start", "oom-killed", "--json"], 0)["drill"]["id"].as_str().unwrap().to_string();
    let client = format!("drill-{id}-client");
    // The host's memory cgroup holds the scenario's 64 MiB limit.
    let limit: u64 = cgroup_file(&id, "api", &["memory.limit_in_bytes", "memory.max"]).parse().unwrap();
    assert_eq!(limit, 64 << 20);
    // The symptom: httpd is killed and restarted over and over; most requests fail.
    assert!(
        wait_until(Duration::from_secs(10), || host_sh(&d, &id, "api", "grep -c 'killed (SIGKILL); restarting' /var/log/httpd.log || true").trim().parse::<u32>().unwrap_or(0) >= 2),
        "no restarts seen"
    );
    let ok = curl_ok(&client, "http://10.77.0.2:8080/", 20);
    assert!(ok < 16, "{ok} of 20 requests succeeded while httpd flaps");
    let st = host_sh(&d, &id, "api", "svc status");
    assert!(st.contains("httpd"), "{st}");
    // The fix, as the learner makes it.
    host_sh(&d, &id, "api", "sed -i 's/^cache_mb = .*/cache_mb = 16/' /etc/httpd/httpd.toml && svc restart httpd");
    std::thread::sleep(Duration::from_secs(2));
    let rss: u64 = host_sh(&d, &id, "api", "ps -o rss= -C httpd").trim().parse().unwrap();
    assert!(rss > 16 << 10 && rss < 64 << 10, "httpd's RSS with its 16 MiB cache: {rss} KiB");
    assert_eq!(curl_ok(&client, "http://10.77.0.2:8080/", 20), 20);
    let v = d.drill_json(&["submit", &id, "--json"], 0);
    assert_eq!(v["passed"], true, "{v}");
    d.stop_clean(&id);
}

/// How many BPF links on raw tracepoint `sys_exit` process `pid` holds (its fdinfo).
fn sys_exit_links(pid: i32) -> usize {
    let dir = format!("/proc/{pid}/fdinfo");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .filter(|t| t.lines().any(|l| l == "link_type:\traw_tracepoint") && t.lines().any(|l| l == "tp_name:\tsys_exit"))
        .count()
}

/// p95 of `n` curl request times (ms) from netns `ns`.
fn curl_p95_ms(ns: &str, url: &str, n: usize) -> f64 {
    let mut t: Vec<f64> = (0..n)
        .map(|_| {
            let out = std::process::Command::new("ip").args(["netns", "exec", ns, "curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", "-m", "1", url]).output().unwrap();
            std::thread::sleep(Duration::from_millis(50));
            String::from_utf8_lossy(&out.stdout).parse::<f64>().unwrap_or(1.0) * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[(n * 95 / 100).min(n - 1)]
}

#[test]
fn runaway_cpu_from_outside() {
    if !privileged_or_skip("runaway_cpu_from_outside") {
        return;
    }
    let d = TestDaemon::start("cpu");
    let id = d.drill_json(&["start", "runaway-cpu", "--json"], 0)["drill"]["id"].as_str().unwrap().to_string();
    let client = format!("drill-{id}-client");
    // The host's CPU quota: 10 ms of every 100 ms.
    let quota = cgroup_file(&id, "api", &["cpu.cfs_quota_us", "cpu.max"]);
    assert!(quota == "10000" || quota.starts_with("10000 "), "{quota}");
    // The symptom: ps inside the host shows the runner always runnable and on top; the
    // cgroup is throttled; requests are slow.
    std::thread::sleep(Duration::from_secs(2));
    let ps = host_sh(&d, &id, "api", "ps -eo pcpu,comm --sort=-pcpu | sed -n 2p");
    let pcpu: f64 = ps.split_whitespace().next().unwrap().parse().unwrap();
    assert!(ps.contains("jobs") && pcpu > 5.0, "top process: {ps}");
    // Its polling thread is always runnable.
    let threads = host_sh(&d, &id, "api", "ps -eLo stat,comm | awk '$1 ~ /^R/'");
    assert!(threads.contains("poll"), "runnable threads: {threads}");
    let p95 = curl_p95_ms(&client, "http://10.77.0.2:8080/", 40);
    assert!(p95 > 25.0, "p95 {p95:.1} ms while the runner spins");
    let throttled = cgroup_file(&id, "api", &["cpu.stat"]);
    assert!(throttled.lines().any(|l| l.starts_with("nr_throttled ") && l[13..].trim() != "0"), "{throttled}");
    // The fix.
    host_sh(&d, &id, "api", "sed -i 's/^poll_interval_ms = .*/poll_interval_ms = 500/' /etc/jobs/jobs.toml && svc restart jobs");
    std::thread::sleep(Duration::from_secs(1));
    let p95 = curl_p95_ms(&client, "http://10.77.0.2:8080/", 40);
    assert!(p95 < 25.0, "p95 {p95:.1} ms after the fix");
    let v = d.drill_json(&["submit", &id, "--json"], 0);
    assert_eq!(v["passed"], true, "{v}");
    d.stop_clean(&id);
}

#[test]
fn zombie_storm_from_outside() {
    if !privileged_or_skip("zombie_storm_from_outside") {
        return;
    }
    let d = TestDaemon::start("zombie");
    let id = d.drill_json(&["start", "zombie-storm", "--json"], 0)["drill"]["id"].as_str().unwrap().to_string();
    assert_eq!(cgroup_file(&id, "api", &["pids.max"]), "256");
    // The symptom: <defunct> children of the runner pile up, in ps inside the host and in
    // the host's pids cgroup seen from the machine.
    let zombies = |d: &TestDaemon| host_sh(d, &id, "api", "ps -eo stat= | grep -c '^Z' || true").trim().parse::<u32>().unwrap_or(0);
    std::thread::sleep(Duration::from_secs(2));
    let z1 = zombies(&d);
    std::thread::sleep(Duration::from_secs(2));
    let z2 = zombies(&d);
    assert!(z1 >= 5 && z2 >= z1 + 5, "zombies {z1} then {z2}");
    let defunct = host_sh(&d, &id, "api", "ps -ef | grep -c defunct || true");
    assert!(defunct.trim().parse::<u32>().unwrap() >= 5, "{defunct}");
    let used: u32 = cgroup_file(&id, "api", &["pids.current"]).parse().unwrap();
    assert!(used >= z2, "pids.current {used} counts the zombies ({z2})");
    // kill -9 does nothing to a zombie.
    host_sh(&d, &id, "api", "ps -eo pid,stat | awk '$2 ~ /Z/ {print $1}' | xargs -r kill -9");
    assert!(zombies(&d) >= z2, "zombies cannot be killed");
    // The fix: reaping on, runner restarted; the old zombies go with their parent.
    host_sh(&d, &id, "api", "sed -i 's/^reap_children = .*/reap_children = true/' /etc/jobs/jobs.toml && svc restart jobs");
    std::thread::sleep(Duration::from_secs(2));
    assert!(zombies(&d) <= 3, "zombies after the fix: {}", zombies(&d));
    let v = d.drill_json(&["submit", &id, "--json"], 0);
    assert_eq!(v["passed"], true, "{v}");
    d.stop_clean(&id);
}

#[test]
fn disk_full_from_outside() {
    if !privileged_or_skip("disk_full_from_outside") {
        return;
    }
    let d = TestDaemon::start("diskfull");
    // The ENOSPC probe sits on raw_syscalls:sys_exit, which every system call of the
    // machine crosses: attached only while a drill counts ENOSPC.
    assert_eq!(sys_exit_links(d.pid()), 0, "drilld holds a sys_exit link with no drill running");
    let id = d.drill_json(&["start", "disk-full", "--json"], 0)["drill"]["id"].as_str().unwrap().to_string();
    assert_eq!(sys_exit_links(d.pid()), 1, "disk-full counts ENOSPC: its probe must be attached");
    let client = format!("drill-{id}-client");
    // The learner's view: df reads the host's own 32 MiB disk full, du finds almost
    // nothing, lsof names the deleted file and its holder; the machine's disk is not it.
    let df = host_sh(&d, &id, "api", "df -P / | tail -1");
    let f: Vec<&str> = df.split_whitespace().collect();
    assert_eq!((f[0], f[3], f[4]), ("tmpfs", "0", "100%"), "{df}");
    assert!(f[1].parse::<u64>().unwrap() <= 32 << 10, "the host's disk is its 32 MiB: {df}");
    let du_kib: u64 = host_sh(&d, &id, "api", "du -xsk / | cut -f1").trim().parse().unwrap();
    assert!(du_kib < 1024, "du finds {du_kib} KiB on a full 32 MiB disk");
    let lsof = host_sh(&d, &id, "api", "lsof -nP +L1 2>/dev/null || true");
    assert!(lsof.contains("/srv/jobs/debug.log (deleted)") && lsof.contains("jobs"), "{lsof}");
    // From the client: requests answer 500 (curl sees the status).
    let code = std::process::Command::new("ip").args(["netns", "exec", &client, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "1", "http://10.77.0.2:8080/"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&code.stdout), "500");
    let v = d.drill_json(&["submit", &id, "--json"], 1);
    assert_eq!(v["passed"], false, "{v}");
    // The fix: truncate the file through the holder's descriptor.
    host_sh(&d, &id, "api", "for fd in /proc/[0-9]*/fd/*; do [ \"$(readlink \"$fd\")\" = '/srv/jobs/debug.log (deleted)' ] && : > \"$fd\"; done; true");
    let used = host_sh(&d, &id, "api", "df -P / | tail -1 | awk '{print $5}'");
    assert!(used.trim().trim_end_matches('%').parse::<u32>().unwrap() < 10, "{used}");
    assert_eq!(curl_ok(&client, "http://10.77.0.2:8080/", 10), 10);
    let v = d.drill_json(&["submit", &id, "--json"], 0);
    assert_eq!(v["passed"], true, "{v}");
    d.stop_clean(&id);
    assert_eq!(sys_exit_links(d.pid()), 0, "the ENOSPC probe stays attached after its drill stopped");
}
