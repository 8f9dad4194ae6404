//! Echo bursts: the after-apply measurements of loss, policers and delay, sent from a
//! raw ICMP socket in the calling thread's network namespace (run it through a
//! `NetnsWorker`). One burst of N echo requests a fixed spacing apart, replies
//! matched by identifier and sequence, so a measurement takes about
//! `N x spacing + one round trip` instead of the fixed one-second pace of `ping -i`.
//! No process is spawned and nothing of it is left in the host (the socket closes).

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// What a burst saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EchoStats {
    /// Echo requests sent.
    pub sent: u32,
    /// Distinct echo replies received (duplicates ignored).
    pub received: u32,
    /// Round trip of each reply, in milliseconds, in the order they arrived.
    pub rtts_ms: Vec<f64>,
    /// ICMP destination-unreachable messages that quoted one of our requests, by code
    /// (4: fragmentation needed).
    pub unreachable: Vec<(u8, u16)>,
    /// From the first request sent to the end of the wait.
    pub elapsed: Duration,
}

impl EchoStats {
    /// The fraction of requests that got no reply.
    pub fn loss(&self) -> f64 {
        if self.sent == 0 { 1.0 } else { 1.0 - f64::from(self.received) / f64::from(self.sent) }
    }

    /// Mean round trip in milliseconds; `None` without any reply.
    pub fn mean_rtt_ms(&self) -> Option<f64> {
        (!self.rtts_ms.is_empty()).then(|| self.rtts_ms.iter().sum::<f64>() / self.rtts_ms.len() as f64)
    }

    /// Median round trip in milliseconds; `None` without any reply.
    pub fn median_rtt_ms(&self) -> Option<f64> {
        let mut v = self.rtts_ms.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    }
}

/// How a burst is sent.
#[derive(Clone, Copy, Debug)]
pub struct Burst {
    pub count: u32,
    /// Between two requests.
    pub spacing: Duration,
    /// After the last request: how long to wait for replies still on their way.
    pub linger: Duration,
    /// ICMP payload bytes (56 as ping's default; more to probe a path MTU).
    pub payload: usize,
    /// Set the don't-fragment bit (path MTU probing).
    pub dont_fragment: bool,
}

impl Burst {
    pub fn new(count: u32, spacing: Duration, linger: Duration) -> Burst {
        Burst { count, spacing, linger, payload: 56, dont_fragment: false }
    }
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request packet (ICMP header + payload) with a valid checksum.
pub fn echo_request(ident: u16, seq: u16, payload: usize) -> Vec<u8> {
    let mut p = vec![0u8; 8 + payload];
    p[0] = 8; // echo request
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p[8..].iter_mut().enumerate() {
        *b = (i & 0xff) as u8;
    }
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// What one received IPv4 datagram (raw socket: IP header included) says about our
/// burst: an echo reply (seq) from `from`, or an unreachable quoting our request.
#[derive(Debug, PartialEq)]
pub enum Seen {
    Reply(u16),
    Unreachable { code: u8, seq: u16 },
    Other,
}

pub fn parse(datagram: &[u8], ident: u16) -> Seen {
    let Some(ihl) = datagram.first().map(|b| usize::from(b & 0x0f) * 4) else { return Seen::Other };
    let icmp = match datagram.get(ihl..) {
        Some(x) if x.len() >= 8 => x,
        _ => return Seen::Other,
    };
    let id = |b: &[u8]| u16::from_be_bytes([b[4], b[5]]);
    let seq = |b: &[u8]| u16::from_be_bytes([b[6], b[7]]);
    match icmp[0] {
        0 if id(icmp) == ident => Seen::Reply(seq(icmp)),
        3 => {
            // The quoted datagram: its IP header, then at least 8 bytes of our ICMP.
            let inner = &icmp[8..];
            let Some(iihl) = inner.first().map(|b| usize::from(b & 0x0f) * 4) else { return Seen::Other };
            match inner.get(iihl..iihl + 8) {
                Some(q) if q[0] == 8 && id(q) == ident => Seen::Unreachable { code: icmp[1], seq: seq(q) },
                _ => Seen::Other,
            }
        }
        _ => Seen::Other,
    }
}

fn raw_socket(dont_fragment: bool) -> std::io::Result<OwnedFd> {
    // SAFETY: plain syscalls; the fd is owned at once.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, libc::IPPROTO_ICMP);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        // Room for a whole burst of replies even if we read late.
        let buf: libc::c_int = 4 << 20;
        libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, (&buf as *const libc::c_int).cast(), std::mem::size_of::<libc::c_int>() as u32);
        let pmtu: libc::c_int = if dont_fragment { libc::IP_PMTUDISC_PROBE } else { libc::IP_PMTUDISC_DONT };
        if libc::setsockopt(fd.as_raw_fd(), libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, (&pmtu as *const libc::c_int).cast(), std::mem::size_of::<libc::c_int>() as u32) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(fd)
    }
}

/// Sends a burst of echo requests to `to` from the calling thread's network namespace
/// and collects the replies. Needs CAP_NET_RAW. Blocks for about
/// `count x spacing + linger`.
pub fn burst(to: Ipv4Addr, b: Burst) -> std::io::Result<EchoStats> {
    let fd = raw_socket(b.dont_fragment)?;
    let ident: u16 = rand::random();
    let dest = libc::sockaddr_in { sin_family: libc::AF_INET as u16, sin_port: 0, sin_addr: libc::in_addr { s_addr: u32::from(to).to_be() }, sin_zero: [0; 8] };
    let count = b.count.min(u32::from(u16::MAX));
    let mut sent_at: Vec<Option<Instant>> = vec![None; count as usize];
    let mut answered = vec![false; count as usize];
    let mut st = EchoStats::default();
    let start = Instant::now();
    let mut buf = vec![0u8; 65536];
    let mut next = 0u32;
    loop {
        let now = Instant::now();
        if next < count && now >= start + b.spacing * next {
            let pkt = echo_request(ident, next as u16, b.payload);
            // SAFETY: valid buffer and address for the duration of the call.
            let r = unsafe { libc::sendto(fd.as_raw_fd(), pkt.as_ptr().cast(), pkt.len(), 0, (&dest as *const libc::sockaddr_in).cast(), std::mem::size_of::<libc::sockaddr_in>() as u32) };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                // EMSGSIZE: bigger than the path MTU the kernel already knows (counts as lost).
                if e.raw_os_error() != Some(libc::EMSGSIZE) && e.raw_os_error() != Some(libc::EAGAIN) {
                    return Err(e);
                }
            }
            sent_at[next as usize] = Some(Instant::now());
            st.sent += 1;
            next += 1;
            continue;
        }
        let deadline = if next < count { start + b.spacing * next } else { start + b.spacing * count.saturating_sub(1) + b.linger };
        if next >= count && (now >= deadline || st.received == count) {
            break;
        }
        let wait_ms = deadline.saturating_duration_since(now).as_micros().div_ceil(1000).min(1000) as i32;
        let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, wait_ms) };
        loop {
            // SAFETY: valid buffer.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            if n <= 0 {
                break;
            }
            let got = Instant::now();
            match parse(&buf[..n as usize], ident) {
                Seen::Reply(seq) if (seq as usize) < answered.len() && !answered[seq as usize] => {
                    answered[seq as usize] = true;
                    st.received += 1;
                    if let Some(t) = sent_at[seq as usize] {
                        st.rtts_ms.push(got.duration_since(t).as_secs_f64() * 1e3);
                    }
                }
                Seen::Unreachable { code, seq } => match st.unreachable.iter_mut().find(|(c, _)| *c == code) {
                    Some((_, n)) => *n += 1,
                    None => {
                        let _ = seq;
                        st.unreachable.push((code, 1));
                    }
                },
                _ => {}
            }
        }
    }
    st.elapsed = start.elapsed();
    Ok(st)
}

/// The spacing and linger for a burst across a path whose round trip is about
/// `rtt`: requests `spacing` apart; replies awaited for four round trips plus 20 ms
/// (a reply later than that counts as lost, as it would for a client).
pub fn linger_for(rtt: Duration) -> Duration {
    rtt * 4 + Duration::from_millis(20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_checksum_verifies() {
        let p = echo_request(0x1234, 7, 56);
        assert_eq!(p.len(), 64);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        assert_eq!((p[0], p[4], p[5], p[7]), (8, 0x12, 0x34, 7));
    }

    fn ip(payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x45u8];
        v.extend([0u8; 19]);
        v.extend(payload);
        v
    }

    #[test]
    fn replies_and_unreachables_are_matched_by_identifier() {
        let mut reply = echo_request(42, 9, 8);
        reply[0] = 0;
        assert_eq!(parse(&ip(&reply), 42), Seen::Reply(9));
        assert_eq!(parse(&ip(&reply), 43), Seen::Other, "another prober's reply");
        let mut unreach = vec![3u8, 4, 0, 0, 0, 0, 0x05, 0x00];
        unreach.extend(ip(&echo_request(42, 3, 8)));
        assert_eq!(parse(&ip(&unreach), 42), Seen::Unreachable { code: 4, seq: 3 });
        assert_eq!(parse(&[0x45], 42), Seen::Other, "a truncated datagram is not a reply");
    }

    #[test]
    fn stats_fail_closed_without_replies() {
        let s = EchoStats { sent: 0, ..Default::default() };
        assert_eq!(s.loss(), 1.0, "nothing sent is not a loss-free path");
        assert_eq!(s.mean_rtt_ms(), None);
    }
}
