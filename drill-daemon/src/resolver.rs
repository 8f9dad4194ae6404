//! A stub resolver that behaves as glibc's DNS backend does with a host's own
//! /etc/resolv.conf (read anew for every lookup, as the file is inside the host): the
//! search list and ndots decide the names tried and their order
//! ([`drill_core::resolv::ResolvConf::candidates`]); for each name, A and AAAA queries
//! go out back to back on one UDP socket connected to a nameserver (so an ICMP port
//! unreachable fails it at once, as it does glibc), `timeout` seconds each, `attempts`
//! rounds over the nameservers in order. NXDOMAIN, an answer without an IPv4 address and
//! SERVFAIL move on to the next name; nameservers that all time out or refuse end the
//! lookup. The socket is made inside the client host's network namespace, so the
//! queries are the host's own traffic (its counters, its conntrack, its probes).
//! /etc/hosts is not read: a check that resolves through the resolver judges the
//! resolver path, which a hosts-file entry would hide.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use drill_core::resolv::ResolvConf;
use tokio::net::UdpSocket;

/// What one name's queries to one nameserver got.
enum Answer {
    Address(Ipv4Addr),
    /// NXDOMAIN, or an answer with no IPv4 address (NODATA): try the next name.
    NoSuchName,
    /// SERVFAIL: the next nameserver, then the next name.
    ServFail,
    /// REFUSED or another error code: the next nameserver.
    Refused(u8),
    /// No answer in time, or ICMP port unreachable.
    Unreachable(String),
}

/// Resolves `name` to an IPv4 address through `conf`, before `deadline`. The error reads
/// as a client's would ("could not resolve host NAME: ...").
pub async fn lookup(sock: &UdpSocket, conf: &ResolvConf, name: &str, deadline: Instant) -> Result<IpAddr, String> {
    if conf.nameservers.is_empty() {
        return Err(format!("could not resolve host {name}: no nameserver in /etc/resolv.conf"));
    }
    let mut id: u16 = rand_id();
    let mut last = String::new();
    for candidate in conf.candidates(name) {
        // Whether this name's answers let the search go on to the next name.
        let mut go_on = false;
        let mut servfail = false;
        'rounds: for _ in 0..conf.attempts {
            for ns in &conf.nameservers {
                if Instant::now() >= deadline {
                    return Err(format!("could not resolve host {name}: timed out"));
                }
                id = id.wrapping_add(2);
                let wait = Duration::from_secs(u64::from(conf.timeout_secs)).min(deadline.saturating_duration_since(Instant::now()));
                match query(sock, SocketAddr::new(*ns, 53), &candidate, id, wait).await {
                    Answer::Address(a) => return Ok(IpAddr::V4(a)),
                    Answer::NoSuchName => {
                        last = format!("{candidate}: no such name");
                        go_on = true;
                        break 'rounds;
                    }
                    Answer::ServFail => {
                        servfail = true;
                        go_on = true;
                        last = format!("{candidate}: SERVFAIL from {ns}");
                    }
                    Answer::Refused(rcode) => last = format!("{candidate}: {} from {ns}", rcode_name(rcode)),
                    Answer::Unreachable(why) => last = format!("{ns}: {why}"),
                }
            }
            if servfail {
                break;
            }
        }
        if !go_on {
            // Every nameserver timed out or refused: glibc gives up on the lookup.
            return Err(format!("could not resolve host {name}: {last}"));
        }
    }
    Err(format!("could not resolve host {name}: {last}"))
}

fn rcode_name(r: u8) -> &'static str {
    match r {
        1 => "FORMERR",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "an error",
    }
}

fn rand_id() -> u16 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (t.subsec_nanos() ^ std::process::id()) as u16
}

/// A and AAAA for `name` to `ns`, back to back, and their answers within `wait`.
async fn query(sock: &UdpSocket, ns: SocketAddr, name: &str, id: u16, wait: Duration) -> Answer {
    if let Err(e) = sock.connect(ns).await {
        return Answer::Unreachable(format!("connect: {e}"));
    }
    for (i, qtype) in [(0u16, 1u16), (1, 28)] {
        if let Err(e) = sock.send(&encode(id.wrapping_add(i), name, qtype)).await {
            return Answer::Unreachable(format!("send: {e}"));
        }
    }
    let deadline = tokio::time::Instant::now() + wait;
    let (mut a, mut aaaa): (Option<Reply>, Option<Reply>) = (None, None);
    let mut buf = [0u8; 1500];
    while a.is_none() || aaaa.is_none() {
        match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Err(_) => return Answer::Unreachable("connection timed out; no servers could be reached".into()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Answer::Unreachable("connection refused (ICMP port unreachable)".into()),
            Ok(Err(e)) => return Answer::Unreachable(e.to_string()),
            Ok(Ok(n)) => match parse(&buf[..n]) {
                Some(r) if r.id == id => a = Some(r),
                Some(r) if r.id == id.wrapping_add(1) => aaaa = Some(r),
                _ => {}
            },
        }
        // An A answer with an address is enough once the AAAA is in (as glibc waits
        // for both); a failed A decides alone.
        if let Some(r) = &a
            && r.rcode != 0
        {
            break;
        }
    }
    let Some(a) = a else { return Answer::Unreachable("no answer".into()) };
    match a.rcode {
        0 => a.v4.map_or(Answer::NoSuchName, Answer::Address),
        3 => Answer::NoSuchName,
        2 => Answer::ServFail,
        r => Answer::Refused(r),
    }
}

/// One query: header (RD set), the question.
fn encode(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        let l = &label.as_bytes()[..label.len().min(63)];
        m.push(l.len() as u8);
        m.extend_from_slice(l);
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m
}

struct Reply {
    id: u16,
    rcode: u8,
    v4: Option<Ipv4Addr>,
}

/// The id, the rcode and the first A record of an answer.
fn parse(m: &[u8]) -> Option<Reply> {
    if m.len() < 12 || m[2] & 0x80 == 0 {
        return None;
    }
    let id = u16::from_be_bytes([m[0], m[1]]);
    let rcode = m[3] & 0x0f;
    let (qd, an) = (u16::from_be_bytes([m[4], m[5]]), u16::from_be_bytes([m[6], m[7]]));
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(m, i)? + 4;
    }
    let mut v4 = None;
    for _ in 0..an {
        i = skip_name(m, i)?;
        let h = m.get(i..i + 10)?;
        let (ty, len) = (u16::from_be_bytes([h[0], h[1]]), u16::from_be_bytes([h[8], h[9]]) as usize);
        let data = m.get(i + 10..i + 10 + len)?;
        if ty == 1 && len == 4 && v4.is_none() {
            v4 = Some(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        i += 10 + len;
    }
    Some(Reply { id, rcode, v4 })
}

fn skip_name(m: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let l = *m.get(i)? as usize;
        match l {
            0 => return Some(i + 1),
            l if l & 0xc0 == 0xc0 => return Some(i + 2),
            l => i += l + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_encode_and_answers_parse() {
        let q = encode(0x1234, "api.corp.example", 1);
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[12..17], &[3, b'a', b'p', b'i', 4]);
        // The query turned into an answer with one compressed A record.
        let mut a = q.clone();
        a[2] |= 0x80;
        a[7] = 1;
        a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3]);
        let r = parse(&a).unwrap();
        assert_eq!((r.id, r.rcode, r.v4), (0x1234, 0, Some(Ipv4Addr::new(10, 1, 2, 3))));
        let mut nx = q;
        nx[2] |= 0x80;
        nx[3] = 3;
        assert_eq!(parse(&nx).unwrap().rcode, 3);
        assert!(parse(&[0; 5]).is_none());
    }
}
