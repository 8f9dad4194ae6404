//! The commands run in a drill's hosts, as the kernel's exec capture saw them
//! (`probes::CommandProbe`), turned into the timeline's [`Command`]s.

use drill_core::record::{ARGV_ENTRIES, Command, Exit};

use super::Drill;
use crate::kernel::Kernel;
use crate::probes;

impl<K: Kernel> Drill<K> {
    /// Every program started in the drill's hosts, oldest first: (ms since `started_at`,
    /// command). A program the host's init started (one of its supervised services) is
    /// marked `service`; everything the learner ran, through `drill exec`, `drill shell`
    /// or the API's exec, descends from the process that entered the host.
    pub fn commands(&self) -> Vec<(u64, Command)> {
        // `started_at` on CLOCK_MONOTONIC, the probes' clock (Rust's Instant is it on Linux).
        let start_ns = probes::now_ns().saturating_sub(self.started_at.elapsed().as_nanos() as u64);
        let ms = |ts: u64| ts.saturating_sub(start_ns) / 1_000_000;
        let mut out = Vec::new();
        for h in &self.hosts {
            if h.pidns_ino == 0 {
                continue;
            }
            let init = h.pid.unwrap_or(0) as u32;
            for c in self.kernel.commands(h.pidns_ino) {
                let e = &c.exec;
                let (argv, argv_truncated) = e.argv(ARGV_ENTRIES);
                let (cwd, _) = e.cwd();
                // The init itself (PID 1 in the host) and the services it starts, as
                // `host/init.rs` starts them: `NAME workload KIND --name NAME ...`. An
                // orphan the init inherited before its exec is not one of them.
                let service = e.pid == init || (e.ppid == init && argv.get(1).is_some_and(|a| a == "workload"));
                out.push((
                    ms(e.ts_ns),
                    Command {
                        host: h.name.clone(),
                        pid: e.pid,
                        ppid: e.ppid,
                        host_pid: e.host_pid,
                        uid: e.uid,
                        cwd,
                        filename: e.filename(),
                        argv,
                        argv_truncated,
                        exit: c.exit.map(|(_, st)| Exit::from_wait_status(st)),
                        ended_ms: c.exit.map(|(ts, _)| ms(ts)),
                        service,
                    },
                ));
            }
        }
        out.sort_by_key(|(t, _)| *t);
        out
    }
}
