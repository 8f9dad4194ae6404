//! A tmux server of a test's own (`tmux -L NAME`), run as a given user and killed on drop
//! (even on panic), to drive a terminal program as a user would: type (`send-keys`) and
//! read the pane (`capture-pane`).

use std::os::unix::process::CommandExt as _;
use std::process::{Command, Output};
use std::time::Duration;

use super::wait_until;

pub struct Tmux {
    pub name: String,
    pub uid: u32,
}

impl Tmux {
    /// A server named after the test and its pid, for `uid` (0: root).
    pub fn new(tag: &str, uid: u32) -> Tmux {
        Tmux { name: format!("drill{tag}-{}", std::process::id()), uid }
    }

    /// One tmux command against this server. SHELL is set: without it (as under CI) tmux
    /// would take the user's passwd shell, which for nobody is /usr/sbin/nologin.
    pub fn tmux(&self, args: &[&str]) -> Output {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.name]).args(args).env("SHELL", "/bin/sh");
        if self.uid != 0 {
            c.uid(self.uid).gid(self.uid).env("HOME", "/tmp");
        }
        c.output().expect("tmux (apt-get install tmux; `cargo xtask setup` does)")
    }

    /// A detached session of `cols` x `rows` running `cmd` (TERM=xterm-256color).
    pub fn session(&self, cols: u16, rows: u16, cmd: &str) -> Output {
        self.tmux(&["new-session", "-d", "-s", &self.name, "-x", &cols.to_string(), "-y", &rows.to_string(), "-e", "TERM=xterm-256color", cmd])
    }

    /// Types `keys` (tmux key names or text) without Enter.
    pub fn send(&self, keys: &str) {
        self.tmux(&["send-keys", "-t", &self.name, keys]);
    }

    /// Types a line and Enter.
    pub fn keys(&self, keys: &str) {
        self.tmux(&["send-keys", "-t", &self.name, keys, "Enter"]);
    }

    pub fn pane(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", &self.name]).stdout).into_owned()
    }

    pub fn alive(&self) -> bool {
        self.tmux(&["has-session", "-t", &self.name]).status.success()
    }

    /// Waits (up to `secs`) until the pane satisfies `f`; the last pane either way.
    pub fn wait(&self, secs: u64, f: impl Fn(&str) -> bool) -> (bool, String) {
        let mut last = String::new();
        let ok = wait_until(Duration::from_secs(secs), || {
            last = self.pane();
            f(&last)
        });
        (ok, last)
    }

    pub fn pane_pid(&self) -> i32 {
        String::from_utf8_lossy(&self.tmux(&["display-message", "-p", "-t", &self.name, "#{pane_pid}"]).stdout).trim().parse().expect("the pane's pid")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // -L: the test's own server, so this touches no one else's sessions.
        let _ = self.tmux(&["kill-server"]);
        // The server's socket, which tmux leaves; its directory only when empty (another
        // server of the uid, e.g. root's own `default`, keeps it).
        let dir = format!("/tmp/tmux-{}", self.uid);
        let _ = std::fs::remove_file(format!("{dir}/{}", self.name));
        let _ = std::fs::remove_dir(dir);
    }
}
