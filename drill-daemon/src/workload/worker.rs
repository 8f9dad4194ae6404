//! `worker`: a background job runner. One thread looks at its queue directory every
//! `poll_interval_ms` (with 0 it never sleeps: a busy loop that burns a whole CPU, or its
//! host's whole CPU quota); another starts `task` in a child process `tasks_per_sec`
//! times a second and, with `reap_children`, waits for each. Without it, every finished
//! task stays a zombie (<defunct>) until the runner exits, and the host's process table
//! (its pids limit) fills up. With `log_file`, the runner opens its debug log once at
//! start (append) and writes a line on every look at the queue: a file it keeps open
//! for its whole life, as long-running daemons do (delete it by name and its blocks stay
//! allocated until the runner closes it).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Result;
use drill_core::workload::WorkerConfig;

use super::log;

pub async fn run(name: &str, c: WorkerConfig) -> Result<()> {
    log(name, &format!("polling {} every {} ms; task `{}` {} times/s (reap_children={})", c.queue_dir, c.poll_interval_ms, c.task, c.tasks_per_sec, c.reap_children));
    let _ = std::fs::create_dir_all(&c.queue_dir);
    let debug = if c.log_file.is_empty() {
        None
    } else {
        if let Some(d) = std::path::Path::new(&c.log_file).parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let f = std::fs::OpenOptions::new().create(true).append(true).open(&c.log_file);
        if let Err(e) = &f {
            log(name, &format!("cannot open the debug log {}: {e}", c.log_file));
        }
        f.ok()
    };
    let (n, q, poll) = (name.to_string(), c.queue_dir.clone(), c.poll_interval_ms);
    std::thread::Builder::new().name("poll".into()).spawn(move || poll_queue(&n, &q, poll, debug))?;
    if c.tasks_per_sec > 0 {
        let n = name.to_string();
        std::thread::Builder::new().name("tasks".into()).spawn(move || run_tasks(&n, &c))?;
    }
    std::future::pending::<()>().await;
    Ok(())
}

/// Looks for job files; each one found is "processed" (read) and removed.
fn poll_queue(name: &str, dir: &str, every_ms: u64, mut debug: Option<std::fs::File>) {
    use std::io::Write as _;
    let mut done = 0u64;
    let mut failing = false;
    loop {
        if let Some(f) = debug.as_mut() {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let secs = now.as_secs();
            let line = format!(
                "{:02}:{:02}:{:02}.{:03} DEBUG {name}: poll {dir}: {done} jobs done so far; next look in {every_ms} ms\n",
                (secs / 3600) % 24,
                (secs / 60) % 60,
                secs % 60,
                now.subsec_millis()
            );
            match f.write_all(line.as_bytes()) {
                Err(e) if !failing => {
                    log(name, &format!("writing the debug log: {e}"));
                    failing = true;
                }
                Err(_) => {}
                Ok(()) => failing = false,
            }
        }
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if std::fs::read(&p).is_ok() && std::fs::remove_file(&p).is_ok() {
                    done += 1;
                    if done % 100 == 1 {
                        log(name, &format!("processed {done} jobs"));
                    }
                }
            }
        }
        if every_ms > 0 {
            std::thread::sleep(Duration::from_millis(every_ms));
        }
    }
}

/// Starts the task at its rate; reaps finished children when configured to.
fn run_tasks(name: &str, c: &WorkerConfig) {
    let period = Duration::from_secs_f64(1.0 / f64::from(c.tasks_per_sec.max(1)));
    let mut next = Instant::now();
    let mut running: Vec<Child> = Vec::new();
    let (mut started, mut failed) = (0u64, 0u64);
    let mut last_report = Instant::now();
    loop {
        match Command::new("/bin/sh").arg("-c").arg(&c.task).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn() {
            Ok(child) => {
                started += 1;
                if c.reap_children {
                    running.push(child);
                } else {
                    // Never waited for: when it exits it stays in the process table.
                    drop(child);
                }
            }
            Err(e) => {
                failed += 1;
                if failed < 4 || failed % 50 == 0 {
                    log(name, &format!("starting task: {e} ({failed} failed so far)"));
                }
            }
        }
        running.retain_mut(|ch| !matches!(ch.try_wait(), Ok(Some(_))));
        if last_report.elapsed() >= Duration::from_secs(10) {
            log(name, &format!("{started} tasks started, {failed} failed to start"));
            last_report = Instant::now();
        }
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
}
