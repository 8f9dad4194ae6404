//! The history writer: records written on a thread of its own, in the order handed over.

use std::sync::Mutex;

use drill_core::record::DrillRecord;

use super::History;

/// Writes records in the order they are handed over, on a thread of its own, so no
/// drill operation waits for the disk (the start of a drill above all).
pub struct Writer {
    tx: Mutex<std::sync::mpsc::Sender<Job>>,
    pub history: std::sync::Arc<History>,
}

enum Job {
    Sync(Box<DrillRecord>),
    Flush(std::sync::mpsc::Sender<()>),
}

impl Writer {
    pub fn start(history: std::sync::Arc<History>) -> Writer {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let h = history.clone();
        std::thread::Builder::new()
            .name("history".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    match job {
                        Job::Sync(rec) => {
                            if let Err(e) = h.sync(&rec) {
                                tracing::warn!(drill = %rec.id, "writing the history {}: {e:#}", h.path().display());
                            }
                        }
                        Job::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .expect("spawning the history writer");
        Writer { tx: Mutex::new(tx), history }
    }

    pub fn sync(&self, rec: DrillRecord) {
        let _ = self.tx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).send(Job::Sync(Box::new(rec)));
    }

    /// Waits until everything handed over so far is written (blocking).
    pub fn flush(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.tx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).send(Job::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(std::time::Duration::from_secs(10));
        }
    }
}
