//! drill: the command-line client of drilld. See README.md.
//!
//! Exit codes: 0 success (submit: the fix passed), 1 submit failed, 2 usage or error.

mod cli;
mod client;
mod commands;
mod dashboard;
mod doctor;
mod enter;
mod output;
mod pack;
mod progress;
mod relay;
mod shell;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::{CommandFactory, Parser};
use cli::{Cli, Cmd};
use client::{CallError, Client};
use commands::daemon::{find_drilld, spawn_daemon};
use commands::{daemon, drills, records, scenarios};

fn main() -> ExitCode {
    // Like every Unix filter: output into a closed pipe (`drill submit | head -1`) ends
    // the process quietly instead of a panic on the failed write.
    // SAFETY: setting a signal's disposition to its default, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    shell::complete_if_asked(Cli::command);
    let cli = Cli::parse();
    match &cli.cmd {
        Cmd::Completions { shell } => return exit_with(shell::write_script(*shell, &mut std::io::stdout().lock())),
        Cmd::Man { dir } => return exit_with(shell::write_man_pages(Cli::command(), dir)),
        _ => {}
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("drill: error: {e}");
            return ExitCode::from(2);
        }
    };
    // Entering a host needs this process single-threaded: run the API part on a
    // current-thread runtime, drop it, then enter.
    let r = rt.block_on(run(cli));
    drop(rt);
    match r {
        Ok(Outcome::Code(c)) => ExitCode::from(c),
        Ok(Outcome::Enter { pid, argv, interactive }) => ExitCode::from(enter::run_in_host(pid, &argv, interactive)),
        Err(e) => {
            eprintln!("drill: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Exit code 0, or 2 with the error (the commands that need no runtime).
fn exit_with(r: Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drill: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

enum Outcome {
    Code(u8),
    /// After the runtime is gone: enter host `pid` and run `argv`.
    Enter {
        pid: i32,
        argv: Vec<String>,
        interactive: bool,
    },
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The message for "no daemon", depending on who asks.
fn no_daemon(socket: &Path, e: &std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        return anyhow!(
            "permission denied on {}: run drill with sudo, or join the `drill` group (sudo groupadd -f drill && sudo usermod -aG drill $USER, log in again, restart drilld)",
            socket.display()
        );
    }
    if is_root() {
        anyhow!("no drill daemon is running at {} ({e}); `drill start SCENARIO` starts one", socket.display())
    } else {
        anyhow!("no drill daemon is running at {} ({e}). Start a drill as root, which starts the daemon too: `sudo drill start SCENARIO` (or run `sudo drilld` in another terminal)", socket.display())
    }
}

fn api_err(socket: &Path, e: CallError) -> anyhow::Error {
    match e {
        CallError::NoDaemon(io) => no_daemon(socket, &io),
        other => anyhow!(other),
    }
}

async fn run(cli: Cli) -> Result<Outcome> {
    let c = Client::new(&cli.socket);
    let s = cli.socket.as_path();
    match cli.cmd {
        Cmd::List { json } => scenarios::list(&c, s, json).await,
        Cmd::Start { scenario, dry_run, json } => scenarios::start(&c, s, scenario, dry_run, json).await,
        Cmd::Incident { pack, scenario, random: _, time_limit, json } => scenarios::incident(&c, s, pack, scenario, time_limit, json).await,
        Cmd::Ack { id, json } => drills::ack(&c, s, id, json).await,
        Cmd::History { limit, json } => records::history(&c, s, limit, json).await,
        Cmd::Report { id, format, output: out } => records::report(&c, s, id, format, out).await,
        Cmd::Status { id, json } => drills::status(&c, s, id, json).await,
        Cmd::Exec { id, host, command } => drills::exec(&c, s, id, host, command).await,
        Cmd::Shell { id, host } => drills::shell(&c, s, id, host).await,
        Cmd::Watch { id, count, json, plain } => drills::watch(&c, s, id, count, json, plain).await,
        Cmd::Hint { id, json } => drills::hint(&c, s, id, json).await,
        Cmd::Submit { id, json } => drills::submit(&c, s, id, json).await,
        Cmd::Solve { id, apply, abandon, json } => drills::solve(&c, s, id, apply, abandon, json).await,
        Cmd::Stop { id, all, json } => drills::stop(&c, s, id, all, json).await,
        Cmd::Completions { .. } | Cmd::Man { .. } => unreachable!("answered before the runtime starts"),
        Cmd::Pack(cmd) => Ok(Outcome::Code(pack::run(cmd, &c, s).await?)),
        Cmd::Doctor { json } => Ok(Outcome::Code(doctor::run(&c, s, json).await?)),
        Cmd::Reset => daemon::reset(&c, s).await,
    }
}
