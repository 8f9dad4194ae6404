//! The command line of `drill`: its global options and subcommands (clap).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use clap_complete::engine::ArgValueCandidates;
use drill_core::api::DEFAULT_SOCKET;

use crate::{pack, shell};

#[derive(Parser)]
#[command(name = "drill", version, about = "Incident drills on your own machine: break, investigate, fix, and let the kernel judge.")]
pub(crate) struct Cli {
    /// drilld's API socket.
    #[arg(long, global = true, env = "DRILL_SOCKET", default_value = DEFAULT_SOCKET)]
    pub(crate) socket: PathBuf,
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// List the scenarios you can start.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Start a drill: a built-in scenario id, or a path to a scenario .toml file.
    Start {
        #[arg(value_name = "SCENARIO", add = ArgValueCandidates::new(shell::scenario_ids))]
        scenario: String,
        /// Print the plan (hosts, links, addresses, faults, probes, checks) and stop; needs no daemon.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Start a timed incident: a scenario you are not told, paged like an alert; the clock
    /// starts. Then `drill ack`, investigate, fix, `drill submit`; `drill report` after.
    Incident {
        /// Pick from this pack only (`core` is the built-in one).
        #[arg(long)]
        pack: Option<String>,
        /// This scenario (ID or PACK/ID) instead of a random one.
        #[arg(long, conflicts_with = "random", value_name = "SCENARIO", add = ArgValueCandidates::new(shell::scenario_ids))]
        scenario: Option<String>,
        /// A random scenario (the default when none is named).
        #[arg(long)]
        random: bool,
        /// The clock, e.g. 15m, 90s, 1h30m (default: the scenario's time limit).
        #[arg(long, value_parser = parse_limit)]
        time_limit: Option<Duration>,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge the page of a running incident.
    Ack {
        #[arg(value_name = "DRILL", add = ArgValueCandidates::new(shell::drill_ids))]
        id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Every drill and incident kept: scenario, outcome, score, MTTA/MTTM/MTTR.
    History {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// The postmortem of a drill or incident (running or past): md, html or json.
    Report {
        /// A drill id (`drill history` lists them); default the only running one, else the latest.
        #[arg(value_name = "DRILL", add = ArgValueCandidates::new(shell::drill_ids))]
        id: Option<String>,
        #[arg(long, default_value = "md")]
        format: String,
        /// Write to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Hosts (with their netns names), services and elapsed time of a drill.
    Status {
        #[arg(value_name = "DRILL", add = ArgValueCandidates::new(shell::drill_ids))]
        id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run a command inside a host (all of its namespaces).
    Exec {
        #[arg(long = "drill", value_name = "DRILL", add = ArgValueCandidates::new(shell::drill_ids))]
        id: Option<String>,
        host: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// An interactive shell inside a host.
    Shell {
        #[arg(long = "drill", value_name = "DRILL", add = ArgValueCandidates::new(shell::drill_ids))]
        id: Option<String>,
        host: String,
    },
    /// Live counters of a drill, every second: drops by reason, retransmits, resets,
    /// CLOSE_WAIT sockets, RTT, processes started. On a terminal, a dashboard (map,
    /// sparklines, service level, clock; Tab switches drill, p pauses, q quits); lines
    /// through a pipe, with --json or --plain.
    Watch {
        #[arg(value_name = "DRILL", add = ArgValueCandidates::new(shell::drill_ids))]
        id: Option<String>,
        /// Stop after this many updates (default: until Ctrl-C).
        #[arg(long)]
        count: Option<u64>,
        /// One JSON object per update instead of the screen.
        #[arg(long)]
        json: bool,
        /// The line output even on a terminal.
        #[arg(long)]
        plain: bool,
    },
    /// Show the next hint.
    Hint {
        #[arg(value_name = "DRILL", add = ArgValueCandidates::new(shell::drill_ids))]
        id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Check your fix: the probes watch the kernel for a window, then judge (exit 0 pass, 1 fail).
    Submit {
        #[arg(value_name = "DRILL", add = ArgValueCandidates::new(shell::drill_ids))]
        id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print the reference solution; with --apply, run it. During a running incident
    /// this ends it as abandoned (asked first on a terminal).
    Solve {
        #[arg(value_name = "DRILL", add = ArgValueCandidates::new(shell::drill_ids))]
        id: Option<String>,
        #[arg(long)]
        apply: bool,
        /// Agree to abandon a running incident without being asked.
        #[arg(long)]
        abandon: bool,
        #[arg(long)]
        json: bool,
    },
    /// Stop a drill (or all) and remove everything it created.
    Stop {
        #[arg(value_name = "DRILL", add = ArgValueCandidates::new(shell::drill_ids))]
        id: Option<String>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Remove every leftover of earlier runs (works with no daemon running).
    Reset,
    /// What this machine offers drills: kernel, eBPF, network, cgroups, packages, the
    /// daemon and its socket; for each missing piece the drills it disables and how to get
    /// it. Exit 0 when every built-in drill can run (perhaps changed), 1 when one cannot.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Scenario packs: validate, self-test, new, list, install, remove.
    #[command(subcommand)]
    Pack(pack::PackCmd),
    /// Print the shell completion script (bash, zsh, fish): it completes subcommands,
    /// options, scenario ids and running drill ids. E.g. `source <(drill completions bash)`.
    Completions { shell: shell::Shell },
    /// Write the man pages (drill.1, drill-SUBCOMMAND.1) into DIR.
    #[command(hide = true)]
    Man { dir: PathBuf },
}

fn parse_limit(s: &str) -> Result<Duration, String> {
    drill_core::incident::parse_duration(s)
}
