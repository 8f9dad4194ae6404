//! The timeline's command capture: every exec and exit in the PID namespaces of drill
//! hosts (argv, cwd, uid, exit status), kept per PID namespace.

use super::*;

/// Commands kept per PID namespace (older ones are dropped first).
const COMMANDS_PER_PIDNS: usize = 100_000;

/// One program started in a watched PID namespace, with its exit once seen.
#[derive(Clone, Debug)]
pub struct Captured {
    pub exec: Box<drill_ebpf::CmdExec>,
    /// (CLOCK_MONOTONIC ns, wait status).
    pub exit: Option<(u64, u32)>,
}

/// The timeline's command capture (`drill_cmd`, `drill_cmd_exit`): every exec and exit
/// in the PID namespaces of drill hosts.
pub struct CommandProbe {
    pub(super) watched: Mutex<HashMap<MapData, u32, u32>>,
    pub(super) counters: Mutex<Array<MapData, u64>>,
    pub(super) store: Arc<Mutex<StdHashMap<u32, VecDeque<Captured>>>>,
}

impl CommandProbe {
    pub fn watch(&self, pidns: u32) -> Result<()> {
        self.store.lock().map_err(|_| anyhow!("poisoned"))?.entry(pidns).or_default();
        self.watched.lock().map_err(|_| anyhow!("poisoned"))?.insert(pidns, 1, 0).context("updating watched_pidns (is it full?)")
    }

    pub fn unwatch(&self, pidns: u32) -> Result<()> {
        let mut w = self.watched.lock().map_err(|_| anyhow!("poisoned"))?;
        if w.get(&pidns, 0).is_ok() {
            w.remove(&pidns).map_err(|e| anyhow!("removing pidns {pidns} from watched_pidns: {e}"))?;
        }
        drop(w);
        if let Ok(mut s) = self.store.lock() {
            s.remove(&pidns);
        }
        Ok(())
    }

    /// What was captured in `pidns`, oldest first.
    pub fn commands(&self, pidns: u32) -> Vec<Captured> {
        self.store.lock().map(|s| s.get(&pidns).map(|q| q.iter().cloned().collect()).unwrap_or_default()).unwrap_or_default()
    }

    /// Records the ring buffer had no room for.
    pub fn lost(&self) -> u64 {
        self.counters.lock().ok().and_then(|c| c.get(&0, 0).ok()).unwrap_or(0)
    }

    pub(super) fn drain(ring: RingBuf<MapData>, store: Arc<Mutex<StdHashMap<u32, VecDeque<Captured>>>>) -> Result<()> {
        drain_with(ring, drill_ebpf::CmdRecord::from_bytes, move |batch| {
            let Ok(mut s) = store.lock() else { return };
            for r in batch {
                match r {
                    drill_ebpf::CmdRecord::Exec(e) => {
                        // Only namespaces being watched (a record may outlive its drill).
                        let Some(q) = s.get_mut(&e.pidns) else { continue };
                        if q.len() >= COMMANDS_PER_PIDNS {
                            q.pop_front();
                        }
                        q.push_back(Captured { exec: e, exit: None });
                    }
                    drill_ebpf::CmdRecord::Exit(x) => {
                        // Every exec of that pid still open ended with it (`env` or
                        // `setpriv` exec their program in the same process).
                        if let Some(q) = s.get_mut(&x.pidns) {
                            for c in q.iter_mut().rev().filter(|c| c.exec.pid == x.pid && c.exit.is_none()) {
                                c.exit = Some((x.ts_ns, x.exit_code));
                            }
                        }
                    }
                }
            }
        })
    }
}
