//! Each host's own kernel log, its `/dev/kmsg`: `dmesg` inside a host shows the host's
//! records (the kernel banner at its start, the OOM kills in its memory cgroup in the
//! kernel's own words), never the machine's ring buffer.
//!
//! util-linux `dmesg` reads `/dev/kmsg` one record per `read(2)` until a read returns
//! `<= 0` (EAGAIN at the end when opened O_NONBLOCK), so a plain file cannot stand in
//! for it. The daemon serves a small FUSE file system (kmsgfs.rs, the `fuser` crate,
//! mounted without libfuse or fusermount: the daemon is root) on `<state>/kmsg`, one
//! file per host (`<drill-id>-<host>`), opened with direct I/O so that each read returns
//! exactly the record the handle is at. Each host's init binds its file onto the host's
//! `/dev/kmsg` (rootfs.rs).
//!
//! The records come from the daemon: the banner when the host starts, and the
//! machine's kernel log, read here from the machine's `/dev/kmsg` and routed by
//! [`drill_core::kmsg::OomRouter`] (an `oom-kill:` record names the victim's memory
//! cgroup: the host's own). Timestamps are microseconds since the host started.
//!
//! Lifetime as lxcfs's (procview.rs): mounted when the daemon starts, unmounted when it
//! stops (Drop); a mount a killed daemon left is detached by the next daemon or by
//! `drilld reset` ([`recover`]). Without FUSE hosts get an empty `/dev/kmsg`.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};
use drill_core::kmsg::{self, OomRouter, Record};
use nix::mount::{MntFlags, umount2};
use tracing::{info, warn};

/// Where the kmsg file system is mounted under a daemon's state directory.
pub fn mount_point(state: &Path) -> PathBuf {
    state.join("kmsg")
}

/// The name of a host's file in it.
pub fn file_name(drill_id: &str, host: &str) -> String {
    format!("{drill_id}-{host}")
}

/// Records a host's log keeps at most (the oldest go first, as in a ring buffer).
const MAX_RECORDS: usize = 4096;

/// One host's log.
pub(super) struct HostLog {
    pub(super) ino: u64,
    /// The host's cgroup name (its memory cgroup is this or below it).
    cgroup: String,
    /// CLOCK_MONOTONIC at the host's start, in microseconds.
    start_us: u64,
    /// Sequence number of `records[0]`.
    pub(super) first_seq: u64,
    pub(super) records: std::collections::VecDeque<Record>,
}

/// A reader's open file: which log and the sequence number of its next record.
pub(super) struct Handle {
    pub(super) key: String,
    pub(super) next: u64,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) hosts: BTreeMap<String, HostLog>,
    pub(super) handles: HashMap<u64, Handle>,
    /// Blocking reads at the end of their log, answered when a record comes: (file
    /// handle, pid of the reader, reply).
    pub(super) waiting: Vec<(u64, u32, fuser::ReplyData)>,
    pub(super) next_fh: u64,
    pub(super) next_ino: u64,
}

impl State {
    pub(super) fn key_of(&self, ino: u64) -> Option<&str> {
        self.hosts.iter().find(|(_, h)| h.ino == ino).map(|(k, _)| k.as_str())
    }

    /// Answers the waiting reads of `key`'s log that now have a record (or, if the log
    /// is gone, end of file).
    fn wake(&mut self, key: &str) {
        let waiting = std::mem::take(&mut self.waiting);
        for (fh, pid, reply) in waiting {
            let Some(h) = self.handles.get_mut(&fh) else { continue };
            if h.key != key {
                self.waiting.push((fh, pid, reply));
                continue;
            }
            let Some(log) = self.hosts.get(key) else {
                reply.data(&[]);
                continue;
            };
            match record_at(log, &mut h.next) {
                Some(bytes) => reply.data(&bytes),
                None => self.waiting.push((fh, pid, reply)),
            }
        }
    }

    /// Answers EINTR to the waiting reads whose reader has a signal to take (Ctrl-C on
    /// `dmesg -w`, a kill): the kernel holds a reader whose FUSE request was sent until
    /// the request is answered, and `fuser` does not pass FUSE_INTERRUPT on.
    fn interrupt_signalled(&mut self) {
        let waiting = std::mem::take(&mut self.waiting);
        for (fh, pid, reply) in waiting {
            if signalled(pid) {
                reply.error(fuser::Errno::EINTR);
            } else {
                self.waiting.push((fh, pid, reply));
            }
        }
    }
}

/// The record at `*next` as `/dev/kmsg` gives it, moving `*next` past it (a reader left
/// behind by the ring jumps to its oldest record).
pub(super) fn record_at(log: &HostLog, next: &mut u64) -> Option<Vec<u8>> {
    *next = (*next).max(log.first_seq);
    let rec = log.records.get((*next - log.first_seq) as usize)?;
    let bytes = kmsg::format(rec, *next);
    *next += 1;
    Some(bytes)
}

/// Every host's log, shared by the file system, the machine log reader and the kernel.
#[derive(Default)]
pub struct Logs {
    state: Mutex<State>,
}

impl Logs {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens the log of a starting host, whose cgroup is `cgroup`: its first record is
    /// the kernel's banner.
    pub fn add_host(&self, key: &str, cgroup: &str) {
        let version = std::fs::read_to_string("/proc/version").unwrap_or_else(|_| "Linux version (unknown)".into());
        let mut st = self.lock();
        st.next_ino += 1;
        let ino = st.next_ino + 1;
        let mut records = std::collections::VecDeque::new();
        records.push_back(kmsg::banner(&version));
        st.hosts.insert(key.to_string(), HostLog { ino, cgroup: cgroup.to_string(), start_us: monotonic_us(), first_seq: 0, records });
    }

    /// Closes a host's log (its readers see end of file).
    pub fn remove_host(&self, key: &str) {
        let mut st = self.lock();
        if st.hosts.remove(key).is_some() {
            st.wake(key);
        }
    }

    /// Appends a record to `key`'s log; `at_us` is its CLOCK_MONOTONIC time (the
    /// machine's log's clock), or now.
    pub fn append(&self, key: &str, prio: u8, msg: &[u8], at_us: Option<u64>) {
        let mut st = self.lock();
        let Some(log) = st.hosts.get_mut(key) else { return };
        let usec = at_us.unwrap_or_else(monotonic_us).saturating_sub(log.start_us);
        log.records.push_back(Record { prio, usec, msg: msg.to_vec() });
        if log.records.len() > MAX_RECORDS {
            log.records.pop_front();
            log.first_seq += 1;
        }
        st.wake(key);
    }

    /// The records of `key`'s log as `/dev/kmsg` lines (for tests and the daemon's own checks).
    pub fn lines(&self, key: &str) -> Vec<String> {
        let st = self.lock();
        let Some(log) = st.hosts.get(key) else { return Vec::new() };
        log.records.iter().enumerate().map(|(i, r)| String::from_utf8_lossy(&kmsg::format(r, log.first_seq + i as u64)).trim_end().to_string()).collect()
    }

    /// The key of the host whose cgroup holds memory cgroup `memcg`.
    fn host_of_cgroup(&self, memcg: &str) -> Option<String> {
        self.lock().hosts.iter().find(|(_, h)| kmsg::in_cgroup(memcg, &h.cgroup)).map(|(k, _)| k.clone())
    }
}

/// Whether process `pid` has a signal pending that it does not block (or is gone).
fn signalled(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return true };
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| u64::from_str_radix(v.trim(), 16).ok()).unwrap_or(0);
    let blocked = field("SigBlk:");
    (field("SigPnd:") | field("ShdPnd:")) & !blocked != 0 || (field("ShdPnd:") | field("SigPnd:")) & (1 << (libc::SIGKILL - 1)) != 0
}

fn monotonic_us() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap_or(nix::sys::time::TimeSpec::new(0, 0));
    t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000
}

/// Whether the machine can serve a FUSE file system: `/dev/fuse` and the `fuse`
/// file system type (for `drill doctor` too).
pub fn fuse_available() -> (bool, bool) {
    let dev = Path::new("/dev/fuse").exists();
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default().lines().any(|l| l.split_whitespace().last() == Some("fuse"));
    (dev, fs)
}

/// The daemon's kmsg file system and its reader of the machine's log.
pub struct KmsgView {
    logs: Arc<Logs>,
    dir: PathBuf,
    session: Option<fuser::BackgroundSession>,
    stop: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl KmsgView {
    /// Mounts the hosts' kernel logs on `<state>/kmsg` and starts reading the machine's
    /// log. `Ok(None)` when the machine has no FUSE (hosts then get an empty /dev/kmsg).
    pub fn start(state: &Path) -> Result<Option<KmsgView>> {
        let (dev, fs) = fuse_available();
        if !(dev && fs) {
            warn!(dev_fuse = dev, fuse_fs = fs, "no FUSE on this machine (modprobe fuse): hosts' /dev/kmsg stays empty; dmesg in a host shows nothing");
            return Ok(None);
        }
        recover(state);
        let dir = mount_point(state);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let logs = Arc::new(Logs::default());
        let session = match super::kmsgfs::mount(logs.clone(), &dir) {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(e);
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (logs.clone(), stop.clone());
        let reader = std::thread::Builder::new().name("kmsg-reader".into()).spawn(move || read_machine_log(&l, &s)).context("starting the kernel log reader")?;
        info!(dir = %dir.display(), "serving the hosts' /dev/kmsg");
        Ok(Some(KmsgView { logs, dir, session: Some(session), stop, reader: Some(reader) }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn logs(&self) -> Arc<Logs> {
        self.logs.clone()
    }
}

impl Drop for KmsgView {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        // The session unmounts; if that failed (busy), detach the mount instead.
        drop(self.session.take());
        if super::procview::is_fuse_mount(&self.dir) {
            let _ = umount2(&self.dir, MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Detaches the kmsg mount a killed daemon left in `state`.
pub fn recover(state: &Path) -> Vec<String> {
    let dir = mount_point(state);
    let mut done = Vec::new();
    if super::procview::is_fuse_mount(&dir) {
        match umount2(&dir, MntFlags::MNT_DETACH) {
            Ok(()) => done.push(format!("unmounted {}", dir.display())),
            Err(e) => warn!("unmounting {}: {e}", dir.display()),
        }
    }
    let _ = std::fs::remove_dir(&dir);
    done
}

/// Reads the machine's kernel log from now on and copies the records about hosts into
/// their logs, until `stop`; every tick, lets signalled readers go.
fn read_machine_log(logs: &Logs, stop: &AtomicBool) {
    let f = match std::fs::File::options().read(true).custom_flags(libc::O_NONBLOCK).open("/dev/kmsg") {
        Ok(f) => Some(f),
        Err(e) => {
            warn!("opening the machine's /dev/kmsg: {e}; hosts' logs get no OOM kills");
            None
        }
    };
    let mut router = OomRouter::default();
    let mut buf = vec![0u8; 16 * 1024];
    if let Some(f) = &f {
        // SAFETY: lseek on an open fd.
        unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_END) };
    }
    while !stop.load(Ordering::Relaxed) {
        logs.lock().interrupt_signalled();
        let Some(f) = &f else {
            std::thread::sleep(std::time::Duration::from_millis(TICK_MS as u64));
            continue;
        };
        let mut pfd = libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: poll on one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, TICK_MS) } <= 0 {
            continue;
        }
        drain(f, &mut buf, &mut router, logs);
    }
}

/// How often the reader looks at waiting readers (ms).
const TICK_MS: i32 = 200;

/// Reads every record the machine's log has now.
fn drain(f: &std::fs::File, buf: &mut [u8], router: &mut OomRouter, logs: &Logs) {
    loop {
        // SAFETY: read into a buffer we own.
        let n = unsafe { libc::read(f.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EPIPE) => continue, // records overwritten before we read them
                Some(libc::EAGAIN) => break,
                _ => return,
            }
        }
        let Some((prio, _, usec, msg)) = kmsg::parse(&buf[..n as usize]) else { break };
        let text = String::from_utf8_lossy(&msg);
        if let Some(key) = router.route(&text, |cg| logs.host_of_cgroup(cg)) {
            logs.append(&key, prio, &msg, Some(usec));
        }
    }
}
