//! The shell relay (issue 14; docs/API.md "Shell relay"): how a member of the socket's
//! group who is not root enters the hosts of their own drills. `GET
//! /v1/drills/{id}/hosts/{host}/shell` with `Upgrade: drill-pty/1` is checked like every
//! request on a drill (the peer's uid must own it, or be root), then the daemon starts
//! the command inside the host (its cgroups, its capability set, its namespaces: the
//! same entry as `exec`), on a pty of the host's own devpts or on pipes, answers `101
//! Switching Protocols`, and relays frames (`drill_core::relay`) until the command ends
//! (an `Exit` frame, then close) or the client goes (every process of the session is
//! hung up, then killed, and reaped).

mod spawn;

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path as UrlPath, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use drill_core::relay::{Frame, PROTOCOL};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{Instrument, info, info_span, warn};

use crate::daemon::{ApiError, Daemon};
use crate::error::DrillError;
use crate::peer::Peer;
pub use spawn::Spec;
use spawn::{Master, Session, Wiring};

/// The request's query (docs/API.md): `argv` a JSON array of strings (default: the
/// host's shell), `tty` 1 or 0 (default 1 for the shell, 0 for a command), the terminal's
/// `rows`, `cols` and `term`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct RelayQuery {
    pub argv: Option<String>,
    pub tty: Option<u8>,
    pub rows: Option<u16>,
    pub cols: Option<u16>,
    pub term: Option<String>,
}

impl Spec {
    /// What to run for `q`; `shell` is the host's interactive shell. The error says what
    /// of the query is wrong.
    pub fn from_query(q: &RelayQuery, shell: &str) -> Result<Spec, String> {
        let (argv, is_shell) = match &q.argv {
            None => (vec![shell.to_string()], true),
            Some(text) => {
                let argv: Vec<String> = serde_json::from_str(text).map_err(|e| format!("argv is not a JSON array of strings: {e}"))?;
                if argv.is_empty() {
                    return Err("argv is empty: give the command to run, or no argv for the host's shell".into());
                }
                if argv.iter().any(|a| a.contains('\0')) {
                    return Err("argv holds a NUL byte".into());
                }
                (argv, false)
            }
        };
        let term = match &q.term {
            Some(t) if t.is_empty() || t.len() > 64 || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b)) => {
                return Err(format!("term {t:?} is not a terminal type (letters, digits, - _ . +; at most 64)"));
            }
            t => t.clone(),
        };
        let tty = match q.tty {
            None => is_shell,
            Some(0) => false,
            Some(1) => true,
            Some(n) => return Err(format!("tty={n}: give 1 (a pty) or 0 (pipes)")),
        };
        Ok(Spec { argv, tty, rows: q.rows.unwrap_or(24), cols: q.cols.unwrap_or(80), term, shell: is_shell })
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(DrillError::BadRequest(msg.into()))
}

/// `GET /v1/drills/{id}/hosts/{host}/shell`: the checks, the start, the 101; the relay
/// itself runs in a task of its own once the connection is upgraded.
pub async fn handler(
    State(d): State<Arc<Daemon>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    UrlPath((id, host)): UrlPath<(String, String)>,
    q: Result<Query<RelayQuery>, QueryRejection>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let asks_relay = req.headers().get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(PROTOCOL)));
    if !asks_relay {
        return Err(bad(format!("this endpoint is the shell relay: send `Connection: Upgrade` and `Upgrade: {PROTOCOL}` (docs/API.md, \"Shell relay\")")));
    }
    let Query(q) = q.map_err(|e| bad(format!("the relay's query: {}", e.body_text())))?;
    let pid = d.get(&id, &peer).await?.host_pid(&host)?;
    let shell = if std::path::Path::new(&format!("/proc/{pid}/root/bin/bash")).exists() { "/bin/bash" } else { "/bin/sh" };
    let spec = Spec::from_query(&q, shell).map_err(bad)?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let session = spawn::start(pid, &spec).map_err(|e| ApiError(DrillError::kernel(format!("starting `{}`", spec.argv.join(" ")), Some(&host), None, e)))?;
    let span = info_span!("relay", drill = %id, %host, uid = peer.uid, leader = session.leader);
    tokio::spawn(
        async move {
            info!(argv = ?spec.argv, tty = spec.tty, "relay session started");
            match on_upgrade.await {
                Ok(up) => relay(TokioIo::new(up), session).await,
                Err(e) => {
                    warn!("the client did not take the upgrade: {e}");
                    hang_up(session.child, session.leader).await;
                }
            }
        }
        .instrument(span),
    );
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, PROTOCOL)
        .body(Body::empty())
        .map_err(|e| ApiError(DrillError::Internal(e.into())))?
        .into_response())
}

/// Relays one session over `io` until the command ends or the client goes.
async fn relay<IO: AsyncRead + AsyncWrite + Send + 'static>(io: IO, s: Session) {
    let Session { mut child, leader, wiring } = s;
    let (rd, wr) = tokio::io::split(io);
    let (tx, rx) = mpsc::channel::<Frame>(32);
    let writer = tokio::spawn(write_frames(wr, rx));
    let mut outputs = JoinSet::new();
    let sink = match wiring {
        Wiring::Pty(m) => {
            outputs.spawn(pty_out(m.clone(), tx.clone()));
            Sink::Pty(m)
        }
        Wiring::Pipes { stdin, stdout, stderr } => {
            outputs.spawn(pipe_out(stdout, tx.clone(), false));
            outputs.spawn(pipe_out(stderr, tx.clone(), true));
            Sink::Pipe(stdin)
        }
    };
    let input = read_frames(rd, sink);
    tokio::pin!(input);
    let ended = tokio::select! {
        st = child.wait() => Some(exit_code(st)),
        () = &mut input => None,
    };
    let Some(code) = ended else {
        info!("the client went: hanging the session up");
        outputs.abort_all();
        writer.abort();
        hang_up(child, leader).await;
        return;
    };
    // What is left of the session (background jobs) goes with its leader; what they all
    // wrote before is relayed, then the exit status.
    spawn::end_session(leader, Duration::from_millis(300)).await;
    if tokio::time::timeout(Duration::from_secs(2), async { while outputs.join_next().await.is_some() {} }).await.is_err() {
        warn!("the session's output did not end within 2 s of its exit");
        outputs.abort_all();
    }
    let _ = tx.send(Frame::Exit(code)).await;
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    info!(code, "relay session ended");
}

/// The client is gone (or never took the upgrade): every process of the session is
/// hung up, killed after a moment if it lingers, and the leader reaped.
async fn hang_up(mut child: tokio::process::Child, leader: i32) {
    spawn::end_session(leader, Duration::from_secs(1)).await;
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    info!("relay session hung up");
}

/// The exit status as a shell gives it: the code, or 128+N for signal N.
fn exit_code(st: std::io::Result<std::process::ExitStatus>) -> u8 {
    match st {
        Ok(st) => match (st.code(), st.signal()) {
            (Some(c), _) => u8::try_from(c).unwrap_or(255),
            (None, Some(sig)) => 128u8.saturating_add(u8::try_from(sig).unwrap_or(127)),
            _ => 255,
        },
        Err(_) => 255,
    }
}

/// Where the client's input goes.
enum Sink {
    Pty(Arc<Master>),
    /// The command's stdin; None once closed (stdin EOF, or the command closed it).
    Pipe(Option<tokio::process::ChildStdin>),
}

/// Reads the client's frames and applies them, until the client closes the connection
/// (or breaks the protocol).
async fn read_frames<R: AsyncRead + Unpin>(mut rd: R, mut sink: Sink) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 32 << 10];
    loop {
        loop {
            match Frame::decode(&buf) {
                Ok(Some((f, n))) => {
                    buf.drain(..n);
                    apply(&mut sink, f).await;
                }
                Ok(None) => break,
                Err(e) => {
                    warn!("the client broke the relay's framing: {e}");
                    return;
                }
            }
        }
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn apply(sink: &mut Sink, f: Frame) {
    match (sink, f) {
        (Sink::Pty(m), Frame::Stdin(b)) => {
            let _ = m.write_all(&b).await;
        }
        // The terminal's end-of-file character: what a reader of the pty sees as EOF.
        (Sink::Pty(m), Frame::StdinEof) => {
            let _ = m.write_all(&[4]).await;
        }
        (Sink::Pty(m), Frame::Resize { rows, cols }) => {
            let _ = m.resize(rows, cols);
        }
        (Sink::Pipe(stdin), Frame::Stdin(b)) => {
            if let Some(w) = stdin.as_mut()
                && w.write_all(&b).await.is_err()
            {
                *stdin = None;
            }
        }
        (Sink::Pipe(stdin), Frame::StdinEof) => *stdin = None,
        (_, Frame::Resize { .. }) => {}
        (_, other) => warn!(frame = ?std::mem::discriminant(&other), "ignoring a frame only the daemon sends"),
    }
}

/// Sends the frames of `rx` to the client; ends after the `Exit` frame (then closes).
async fn write_frames<W: AsyncWrite + Unpin>(mut wr: W, mut rx: mpsc::Receiver<Frame>) {
    let mut buf = Vec::new();
    while let Some(f) = rx.recv().await {
        buf.clear();
        f.encode(&mut buf);
        if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
            return;
        }
        if matches!(f, Frame::Exit(_)) {
            let _ = wr.shutdown().await;
            return;
        }
    }
}

async fn pty_out(m: Arc<Master>, tx: mpsc::Sender<Frame>) {
    let mut buf = vec![0u8; 32 << 10];
    while let Ok(n @ 1..) = m.read(&mut buf).await {
        if tx.send(Frame::Stdout(buf[..n].to_vec())).await.is_err() {
            return;
        }
    }
}

async fn pipe_out<R: AsyncRead + Unpin>(mut r: R, tx: mpsc::Sender<Frame>, stderr: bool) {
    let mut buf = vec![0u8; 32 << 10];
    while let Ok(n @ 1..) = r.read(&mut buf).await {
        let b = buf[..n].to_vec();
        if tx.send(if stderr { Frame::Stderr(b) } else { Frame::Stdout(b) }).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(argv: Option<&str>, tty: Option<u8>, term: Option<&str>) -> RelayQuery {
        RelayQuery { argv: argv.map(String::from), tty, rows: Some(40), cols: None, term: term.map(String::from) }
    }

    #[test]
    fn the_query_decides_what_runs() {
        let shell = Spec::from_query(&q(None, None, Some("xterm-256color")), "/bin/bash").unwrap();
        assert_eq!(shell, Spec { argv: vec!["/bin/bash".into()], tty: true, rows: 40, cols: 80, term: Some("xterm-256color".into()), shell: true });
        let cmd = Spec::from_query(&q(Some(r#"["sh","-c","echo a b"]"#), None, None), "/bin/sh").unwrap();
        assert_eq!((cmd.argv.len(), cmd.tty, cmd.shell), (3, false, false));
        assert!(Spec::from_query(&q(Some(r#"["top"]"#), Some(1), None), "/bin/sh").unwrap().tty);
        for (argv, tty, term) in [(Some("[]"), None, None), (Some("ls"), None, None), (Some("[\"a\0b\"]"), None, None), (None, Some(2), None), (None, None, Some("x;rm")), (None, None, Some(""))] {
            assert!(Spec::from_query(&q(argv, tty, term), "/bin/sh").is_err(), "{argv:?} {tty:?} {term:?}");
        }
    }

    #[test]
    fn exit_codes_read_as_a_shell_s() {
        use std::process::ExitStatus;
        assert_eq!(exit_code(Ok(ExitStatus::from_raw(7 << 8))), 7);
        assert_eq!(exit_code(Ok(ExitStatus::from_raw(9))), 137);
        assert_eq!(exit_code(Err(std::io::Error::other("x"))), 255);
    }

    #[tokio::test]
    async fn frames_split_anywhere_are_applied_and_eof_closes_stdin() {
        let mut child = tokio::process::Command::new("cat").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
        let sink = Sink::Pipe(child.stdin.take());
        let mut bytes = Frame::Stdin(b"hello ".to_vec()).to_bytes();
        Frame::Resize { rows: 1, cols: 2 }.encode(&mut bytes);
        Frame::Stdin(b"world".to_vec()).encode(&mut bytes);
        Frame::StdinEof.encode(&mut bytes);
        let (mut a, b) = tokio::io::duplex(3);
        let feed = tokio::spawn(async move {
            a.write_all(&bytes).await.unwrap();
        });
        read_frames(b, sink).await;
        feed.await.unwrap();
        let out = child.wait_with_output().await.unwrap();
        assert_eq!(out.stdout, b"hello world");
    }
}
