//! Who is on the other end of an API connection: the socket peer's credentials
//! (SO_PEERCRED, read once per connection by axum's connect info). The uid decides;
//! `SUDO_UID` in the peer's environment is only shown (a process sets its own
//! environment, so it proves nothing).

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::UnixListener;

/// The uid a peer whose credentials could not be read counts as (not root, owns nothing).
pub const UNKNOWN_UID: u32 = u32::MAX;

/// The peer of one API connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
}

impl Peer {
    pub const ROOT: Peer = Peer { uid: 0, pid: None };

    pub fn from_stream(s: &tokio::net::UnixStream) -> Peer {
        match s.peer_cred() {
            Ok(c) => Peer { uid: c.uid(), pid: c.pid() },
            Err(_) => Peer { uid: UNKNOWN_UID, pid: None },
        }
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Whether this peer may see (and act on) a drill `owner` started: root sees every
    /// drill, anyone else only their own.
    pub fn may_see(&self, owner: u32) -> bool {
        self.is_root() || self.uid == owner
    }

    /// `SUDO_UID` as the peer process's environment says it (display only; None when
    /// unset or unreadable, e.g. the process already exited).
    pub fn sudo_uid(&self) -> Option<u32> {
        let environ = std::fs::read(format!("/proc/{}/environ", self.pid?)).ok()?;
        sudo_uid_of(&environ)
    }
}

fn sudo_uid_of(environ: &[u8]) -> Option<u32> {
    environ.split(|b| *b == 0).find_map(|kv| kv.strip_prefix(b"SUDO_UID=")).and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
}

impl Connected<IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        Peer::from_stream(stream.io())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sudo_uid_is_read_from_the_environment_block() {
        assert_eq!(super::sudo_uid_of(b"HOME=/root\0SUDO_UID=1000\0SUDO_USER=ana\0"), Some(1000));
        assert_eq!(super::sudo_uid_of(b"HOME=/root\0"), None);
        assert_eq!(super::sudo_uid_of(b"SUDO_UID=x\0"), None);
    }

    #[tokio::test]
    async fn a_socket_peer_is_this_process_s_uid() {
        let (a, _b) = tokio::net::UnixStream::pair().unwrap();
        let p = super::Peer::from_stream(&a);
        assert_eq!(p.uid, nix::unistd::getuid().as_raw());
        assert_eq!(p.pid, Some(std::process::id() as i32));
    }
}
