//! The userspace delay wire: latency, jitter and loss on a link where the kernel has
//! no netem (see PLATFORM.md, "Latency without netem").
//!
//! A link `H:eth0 <-> P:eth1` with a delay on `H:eth0` is built as two veth pairs
//! through a hidden namespace: `H:eth0 <-> W:a` and `W:b <-> P:eth1`. In `W`, one
//! AF_PACKET socket per end (`PACKET_VNET_HDR` so GSO super-frames pass whole,
//! `PACKET_IGNORE_OUTGOING` so a socket never reads what it sent, promiscuous) and one
//! thread per direction: the reader timestamps each frame, the same thread sends it
//! when its deadline comes. Frames from `a` to `b` (the host's egress) get the delay,
//! jitter and loss; frames from `b` to `a` pass at once. Parameters are atomics, so a
//! delay is set, retuned and removed live without touching the link.
//!
//! Order is kept (a frame never leaves before the one read before it), as on a real
//! wire; jitter therefore never reorders, it only spreads the deadlines.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::poll::{PollFd, PollFlags};

/// Names of the wire's two ends in its namespace: `a` faces the delayed host.
pub const END_HOST: &str = "a";
pub const END_PEER: &str = "b";

/// Frames (with their vnet header) are at most a GSO super-frame.
const FRAME_MAX: usize = 65_536 + 128;
/// Frames read per wakeup before the due ones are sent.
const BATCH: usize = 64;
/// Bytes a direction may hold in flight before it drops (as a full queue would).
const QUEUE_BYTES: usize = 64 << 20;

/// What the wire does to the host's egress, settable live.
#[derive(Default)]
pub struct Params {
    delay_ns: AtomicU64,
    jitter_ns: AtomicU64,
    /// Loss probability in parts per million.
    loss_ppm: AtomicU32,
}

/// Counters of one direction.
#[derive(Default, Debug)]
pub struct Stats {
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    pub lost: AtomicU64,
    /// Dropped because the queue was full or the send failed.
    pub overflow: AtomicU64,
}

pub struct Wire {
    params: Arc<Params>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Host-to-peer (delayed) and peer-to-host counters.
    pub egress: Arc<Stats>,
    pub ingress: Arc<Stats>,
}

/// Opens an AF_PACKET socket bound to `ifname` of the calling thread's namespace, in
/// the mode the wire needs. Call it from a thread inside the wire's namespace.
pub fn open_end(ifname: &str) -> Result<OwnedFd> {
    let ifindex = nix::net::if_::if_nametoindex(ifname).with_context(|| format!("no interface {ifname}"))?;
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2); the descriptor is owned at once.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, i32::from(proto)) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("socket(AF_PACKET)");
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    setsockopt(&sock, libc::SOL_PACKET, libc::PACKET_VNET_HDR, &one).context("PACKET_VNET_HDR")?;
    setsockopt(&sock, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one).context("PACKET_IGNORE_OUTGOING")?;
    // SAFETY: sockaddr_ll is plain old data; zeroed is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: sll lives across the call and its size is passed.
    let r = unsafe { libc::bind(sock.as_raw_fd(), (&raw const sll).cast(), std::mem::size_of::<libc::sockaddr_ll>() as u32) };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("binding to {ifname}"));
    }
    // SAFETY: packet_mreq is plain old data.
    let mut mr: libc::packet_mreq = unsafe { std::mem::zeroed() };
    mr.mr_ifindex = ifindex as i32;
    mr.mr_type = libc::PACKET_MR_PROMISC as u16;
    setsockopt(&sock, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mr).context("PACKET_MR_PROMISC")?;
    let buf: libc::c_int = 8 << 20;
    // Best effort (capped by rmem_max without CAP_NET_ADMIN's force variant).
    let _ = setsockopt(&sock, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &buf).or_else(|_| setsockopt(&sock, libc::SOL_SOCKET, libc::SO_RCVBUF, &buf));
    let _ = setsockopt(&sock, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &buf).or_else(|_| setsockopt(&sock, libc::SOL_SOCKET, libc::SO_SNDBUF, &buf));
    Ok(sock)
}

fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, v: &T) -> Result<()> {
    // SAFETY: v points to a live T of the size passed.
    let r = unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (v as *const T).cast(), std::mem::size_of::<T>() as u32) };
    if r < 0 {
        bail!("{}", std::io::Error::last_os_error());
    }
    Ok(())
}

impl Wire {
    /// Opens both ends in the wire's namespace (through its worker) and starts
    /// forwarding: the usual way to bring up a wire spliced by the topology.
    pub async fn open(worker: &crate::kernel::linux::netns::NetnsWorker, name: &str) -> Result<Wire> {
        let (a, b) = worker.run(|| -> Result<_> { Ok((open_end(END_HOST)?, open_end(END_PEER)?)) }).await?.with_context(|| format!("opening the delay wire {name}"))?;
        Wire::start(name, a, b)
    }

    /// Starts forwarding between the two ends (`host_end` faces the delayed host).
    /// The wire starts transparent (no delay).
    pub fn start(name: &str, host_end: OwnedFd, peer_end: OwnedFd) -> Result<Wire> {
        let params = Arc::new(Params::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (egress, ingress) = (Arc::new(Stats::default()), Arc::new(Stats::default()));
        let host_end = Arc::new(host_end);
        let peer_end = Arc::new(peer_end);
        let mut threads = Vec::new();
        for (rx, tx, p, st, dir) in [(host_end.clone(), peer_end.clone(), Some(params.clone()), egress.clone(), "egress"), (peer_end, host_end, None, ingress.clone(), "ingress")] {
            let stop = stop.clone();
            threads.push(std::thread::Builder::new().name(format!("wire-{dir}")).spawn(move || pump(&rx, &tx, p.as_deref(), &stop, &st)).with_context(|| format!("starting the delay wire {name}"))?);
        }
        Ok(Wire { params, stop, threads, egress, ingress })
    }

    /// Sets the host's egress delay, jitter (uniform, +-) and loss fraction, live.
    pub fn set(&self, delay: Duration, jitter: Duration, loss: f64) {
        self.params.delay_ns.store(delay.as_nanos() as u64, Ordering::Relaxed);
        self.params.jitter_ns.store(jitter.as_nanos().min(delay.as_nanos()) as u64, Ordering::Relaxed);
        self.params.loss_ppm.store((loss.clamp(0.0, 1.0) * 1e6).round() as u32, Ordering::Relaxed);
    }

    /// Current delay, jitter and loss fraction.
    pub fn get(&self) -> (Duration, Duration, f64) {
        (
            Duration::from_nanos(self.params.delay_ns.load(Ordering::Relaxed)),
            Duration::from_nanos(self.params.jitter_ns.load(Ordering::Relaxed)),
            f64::from(self.params.loss_ppm.load(Ordering::Relaxed)) / 1e6,
        )
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One direction: read every frame `rx` has, give it a deadline, send what is due.
fn pump(rx: &OwnedFd, tx: &OwnedFd, params: Option<&Params>, stop: &AtomicBool, st: &Stats) {
    // Sleeps wake within a microsecond of the deadline, not the default 50 us.
    let _ = nix::sys::prctl::set_timerslack(1_000);
    let mut q: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut queued = 0usize;
    let mut last = Instant::now();
    let mut buf = vec![0u8; FRAME_MAX];
    let mut rng = rand::rng();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while q.front().is_some_and(|(t, _)| *t <= now) {
            let (_, f) = q.pop_front().expect("front exists");
            queued -= f.len();
            send(tx, &f, st);
        }
        let wait = q.front().map_or(Duration::from_millis(100), |(t, _)| t.saturating_duration_since(now)).min(Duration::from_millis(100));
        let mut fds = [PollFd::new(rx.as_fd(), PollFlags::POLLIN)];
        let ts = nix::sys::time::TimeSpec::from_duration(wait);
        match nix::poll::ppoll(&mut fds, Some(ts), None) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
        }
        // At most a batch per wakeup, so that a flood cannot hold back frames already due.
        for _ in 0..BATCH {
            // SAFETY: buf is a live, writable buffer of the length passed.
            let n = unsafe { libc::recv(rx.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            if n <= 0 {
                break;
            }
            let n = n as usize;
            st.frames.fetch_add(1, Ordering::Relaxed);
            st.bytes.fetch_add(n as u64, Ordering::Relaxed);
            let (delay, jitter, loss) = match params {
                Some(p) => (p.delay_ns.load(Ordering::Relaxed), p.jitter_ns.load(Ordering::Relaxed), p.loss_ppm.load(Ordering::Relaxed)),
                None => (0, 0, 0),
            };
            if loss > 0 && rand::Rng::random_range(&mut rng, 0..1_000_000u32) < loss {
                st.lost.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if delay == 0 && q.is_empty() {
                send(tx, &buf[..n], st);
                continue;
            }
            if queued + n > QUEUE_BYTES {
                st.overflow.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let d = if jitter > 0 { delay.saturating_add_signed(rand::Rng::random_range(&mut rng, -(jitter as i64)..=jitter as i64)) } else { delay };
            let at = (Instant::now() + Duration::from_nanos(d)).max(last);
            last = at;
            queued += n;
            q.push_back((at, buf[..n].to_vec()));
        }
    }
}

fn send(tx: &OwnedFd, frame: &[u8], st: &Stats) {
    // SAFETY: frame is a live buffer of the length passed.
    let r = unsafe { libc::send(tx.as_raw_fd(), frame.as_ptr().cast(), frame.len(), libc::MSG_DONTWAIT) };
    if r < 0 {
        st.overflow.fetch_add(1, Ordering::Relaxed);
    }
}
