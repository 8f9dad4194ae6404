//! `drill shell` and `drill exec` through drilld's relay (docs/API.md "Shell relay"):
//! how a member of the socket's group who is not root enters the hosts of their own
//! drills (root enters by itself, `enter.rs`; `DRILL_RELAY=1` makes root use the relay
//! too). The daemon starts the command inside the host; this side carries the terminal:
//! raw mode while a pty session runs (given back on every way out: the end, an error,
//! a panic, SIGTERM/SIGHUP), each window change as a resize frame, stdin as stdin
//! frames, and the remote exit status as this process's.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};

use anyhow::anyhow;
use drill_core::relay::{Frame, PROTOCOL};
use hyper_util::rt::TokioIo;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::client::{CallError, Client};

/// Whether `drill shell`/`exec` go through the daemon: for everyone but root, and for
/// root when `DRILL_RELAY=1` (the tests).
pub fn wanted() -> bool {
    !nix::unistd::geteuid().is_root() || std::env::var_os("DRILL_RELAY").is_some_and(|v| v == "1")
}

/// Runs `argv` (None: the host's shell) in `host` of drill `id`; the exit code to exit with.
pub async fn run(c: &Client, id: &str, host: &str, argv: Option<&[String]>) -> Result<u8, CallError> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal() && std::io::stdout().is_terminal();
    let path = format!("/v1/drills/{id}/hosts/{}/shell?{}", encode(host), query(argv, tty));
    let up = c.upgrade(&path, PROTOCOL).await?;
    let raw = if tty { Some(RawMode::enter(stdin.as_fd()).map_err(|e| CallError::Other(anyhow!("putting the terminal in raw mode: {e}")))?) } else { None };
    let r = pump(TokioIo::new(up), tty).await;
    drop(raw);
    r.map_err(CallError::Other)
}

/// The relay's query: the terminal (size, `TERM`) and the command.
fn query(argv: Option<&[String]>, tty: bool) -> String {
    let mut q = format!("tty={}", u8::from(tty));
    if tty {
        if let Some((rows, cols)) = window_size() {
            q.push_str(&format!("&rows={rows}&cols={cols}"));
        }
        if let Ok(t) = std::env::var("TERM")
            && !t.is_empty()
            && t.len() <= 64
            && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
        {
            q.push_str(&format!("&term={t}"));
        }
    }
    if let Some(argv) = argv {
        q.push_str(&format!("&argv={}", encode(&serde_json::to_string(argv).unwrap_or_default())));
    }
    q
}

/// Percent-encoding of everything but the unreserved characters (RFC 3986).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The terminal's rows and columns (of stdout).
fn window_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize through the pointer.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// The terminal in raw mode; its settings come back when this drops (unwinding included).
struct RawMode {
    fd: BorrowedFd<'static>,
    saved: Termios,
}

impl RawMode {
    fn enter(fd: BorrowedFd<'_>) -> nix::Result<RawMode> {
        let saved = tcgetattr(fd)?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw)?;
        // SAFETY: fd 0 stays open for the life of the process.
        let fd = unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) };
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(self.fd, SetArg::TCSADRAIN, &self.saved);
    }
}

/// Stdin, read on a thread of its own (a blocking read that may never end must not hold
/// the runtime up): chunks, then None at its end.
fn stdin_chunks() -> mpsc::Receiver<Option<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(8);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            match std::io::stdin().lock().read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.blocking_send(None);
                    return;
                }
                Ok(n) => {
                    if tx.blocking_send(Some(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Carries frames both ways until the exit frame; its code. SIGTERM, SIGHUP (and SIGINT
/// on a terminal in raw mode, where Ctrl-C is a byte for the host) end it with 128+N.
async fn pump<IO: tokio::io::AsyncRead + tokio::io::AsyncWrite>(io: IO, tty: bool) -> anyhow::Result<u8> {
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut input = stdin_chunks();
    let mut input_open = true;
    let mut winch = signal(SignalKind::window_change())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = if tty { Some(signal(SignalKind::interrupt())?) } else { None };
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 32 << 10];
    loop {
        while let Some((f, n)) = Frame::decode(&buf).map_err(|e| anyhow!("drilld's relay sent a bad frame: {e}"))? {
            buf.drain(..n);
            match f {
                Frame::Stdout(b) => write_out(&mut std::io::stdout().lock(), &b)?,
                Frame::Stderr(b) => write_out(&mut std::io::stderr().lock(), &b)?,
                Frame::Exit(code) => return Ok(code),
                _ => {}
            }
        }
        let send = tokio::select! {
            n = rd.read(&mut chunk) => match n? {
                0 => anyhow::bail!("drilld closed the relay before the command's exit status came (did the daemon stop?)"),
                n => { buf.extend_from_slice(&chunk[..n]); None }
            },
            got = input.recv(), if input_open => match got.flatten() {
                Some(b) => Some(Frame::Stdin(b)),
                None => { input_open = false; Some(Frame::StdinEof) }
            },
            _ = winch.recv() => window_size().map(|(rows, cols)| Frame::Resize { rows, cols }),
            _ = term.recv() => return Ok(128 + libc::SIGTERM as u8),
            _ = hup.recv() => return Ok(128 + libc::SIGHUP as u8),
            _ = async { int.as_mut()?.recv().await }, if int.is_some() => return Ok(128 + libc::SIGINT as u8),
        };
        if let Some(f) = send {
            // A command that ended before our input reached it: drilld has closed its end,
            // and its last frames (the exit status among them) are still ours to read.
            let sent = async {
                wr.write_all(&f.to_bytes()).await?;
                wr.flush().await
            };
            match sent.await {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset) => input_open = false,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn write_out(w: &mut dyn Write, b: &[u8]) -> anyhow::Result<()> {
    w.write_all(b)?;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_carries_argv_as_encoded_json() {
        let argv = vec!["sh".to_string(), "-c".into(), "echo a&b=c; exit 7".into()];
        let q = query(Some(&argv), false);
        assert_eq!(q, "tty=0&argv=%5B%22sh%22%2C%22-c%22%2C%22echo%20a%26b%3Dc%3B%20exit%207%22%5D");
        assert_eq!(query(None, false), "tty=0");
        assert_eq!(encode("ünï"), "%C3%BCn%C3%AF");
    }

    #[tokio::test]
    async fn frames_from_the_daemon_end_with_its_exit_code() {
        let (mut daemon, me) = tokio::io::duplex(64);
        let mut bytes = Frame::Stdout(Vec::new()).to_bytes();
        Frame::Exit(7).encode(&mut bytes);
        daemon.write_all(&bytes).await.unwrap();
        assert_eq!(pump(me, false).await.unwrap(), 7);
    }
}
