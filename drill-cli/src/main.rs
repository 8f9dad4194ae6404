//! drill: the command-line client of drilld. See README.md.
//!
//! Exit codes: 0 success (submit: the fix passed), 1 submit failed, 2 usage or error.

mod client;
mod dashboard;
mod doctor;
mod enter;
mod output;
mod pack;
mod progress;
mod relay;
mod shell;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::engine::ArgValueCandidates;
use client::{CallError, Client};
use drill_core::api::*;

#[derive(Parser)]
#[command(name = "drill", version, about = "Incident drills on your own machine: break, investigate, fix, and let the kernel judge.")]
struct Cli {
    /// drilld's API socket.
    #[arg(long, global = true, env = "DRILL_SOCKET", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
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
    let sock = cli.socket.clone();
    let e = |err: CallError| api_err(&sock, err);
    match cli.cmd {
        Cmd::List { json } => {
            let list: Vec<ScenarioSummary> = match c.get("/v1/scenarios").await {
                Ok(l) => l,
                Err(CallError::NoDaemon(_)) => builtin_list_offline(),
                Err(err) => return Err(e(err)),
            };
            output::print_list(&list, json)?;
        }
        Cmd::Start { scenario, dry_run, json } => {
            let source = if scenario.ends_with(".toml") || Path::new(&scenario).is_file() {
                let text = std::fs::read_to_string(&scenario).with_context(|| format!("reading {scenario}"))?;
                // Its [[files]] are read by the daemon from the file's own directory (its pack).
                let pack_dir = std::fs::canonicalize(&scenario).ok().and_then(|p| p.parent().map(|d| d.display().to_string()));
                Some(ScenarioSource { file: scenario.clone(), text, pack_dir })
            } else {
                None
            };
            // Validate and plan locally (pure logic): a bad file or a dry run needs
            // neither root nor a daemon.
            let (parsed, pack_dir) = match &source {
                Some(src) => (drill_core::scenario::parse(&src.file, &src.text).map_err(|e| anyhow!("{e}"))?, src.pack_dir.as_ref().map(PathBuf::from)),
                None => {
                    let e = drill_core::catalog::load().find(&scenario).map_err(|e| anyhow!("{e} (or give a path to a .toml file)"))?.clone();
                    (e.scenario, Some(e.dir))
                }
            };
            if dry_run {
                let mut plan = drill_core::plan::compile(&parsed, "000000", 0, local_backends()).map_err(|e| anyhow!("{}: {e}", source.as_ref().map_or(scenario.as_str(), |s| s.file.as_str())))?;
                if let Some(dir) = &pack_dir {
                    drill_core::plan::files::read(&mut plan.files, dir).map_err(|e| anyhow!("{e}"))?;
                }
                output::print_start(&StartResponse { plan, drill: None }, json)?;
                return Ok(Outcome::Code(0));
            }
            let req = StartRequest { scenario: scenario.clone(), source, dry_run, ..Default::default() };
            let resp: StartResponse = match progress::spin(STARTING, c.post("/v1/drills", &req)).await {
                Err(CallError::NoDaemon(io)) if is_root() && io.kind() != std::io::ErrorKind::PermissionDenied => {
                    start_daemon(&cli.socket, json)?;
                    progress::spin(STARTING, c.post("/v1/drills", &req)).await.map_err(e)?
                }
                r => r.map_err(e)?,
            };
            output::print_start(&resp, json)?;
        }
        Cmd::Incident { pack, scenario, random: _, time_limit, json } => {
            let name = match scenario {
                Some(s) => s,
                None => pick_scenario(pack.as_deref())?,
            };
            let req = StartRequest { scenario: name, incident: Some(IncidentRequest { time_limit_secs: time_limit.map(|d| d.as_secs()) }), ..Default::default() };
            let resp: StartResponse = match progress::spin(STARTING, c.post("/v1/drills", &req)).await {
                Err(CallError::NoDaemon(io)) if is_root() && io.kind() != std::io::ErrorKind::PermissionDenied => {
                    start_daemon(&cli.socket, json)?;
                    progress::spin(STARTING, c.post("/v1/drills", &req)).await.map_err(e)?
                }
                r => r.map_err(e)?,
            };
            let d = resp.drill.ok_or_else(|| anyhow!("the daemon started no drill"))?;
            output::print_page(&d, json)?;
        }
        Cmd::Ack { id, json } => {
            let id = resolve(&c, id).await?;
            let r: AckResponse = c.post(&format!("/v1/drills/{id}/ack"), &()).await.map_err(e)?;
            output::print_json_or(json, &r, || {
                if r.already {
                    println!("incident {id} was already acknowledged, {:.0} s after the page", r.acked_secs);
                } else {
                    println!("acknowledged incident {id}, {:.0} s after the page. The clock runs: `drill status` shows it.", r.acked_secs);
                }
            })?;
        }
        Cmd::History { limit, json } => {
            let list: Vec<HistoryEntry> = match c.get(&format!("/v1/history?limit={limit}")).await {
                Err(CallError::NoDaemon(io)) if is_root() && io.kind() != std::io::ErrorKind::PermissionDenied => offline_history(limit)?,
                r => r.map_err(e)?,
            };
            output::print_history(&list, json)?;
        }
        Cmd::Report { id, format, output: out } => {
            let fmt: drill_core::report::Format = format.parse().map_err(|m: String| anyhow!(m))?;
            let id = match id {
                Some(id) => id,
                None => latest_drill(&c).await?,
            };
            let rec: drill_core::record::DrillRecord = match c.get(&format!("/v1/history/{id}")).await {
                Err(CallError::NoDaemon(io)) if is_root() && io.kind() != std::io::ErrorKind::PermissionDenied => offline_record(&id)?,
                r => r.map_err(e)?,
            };
            let text = drill_core::report::render(&rec, fmt);
            match out {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("wrote the report of drill {id} to {}", path.display());
                }
                None => print!("{text}"),
            }
        }
        Cmd::Status { id, json } => match id {
            Some(id) => output::print_status(&[c.get(&format!("/v1/drills/{id}")).await.map_err(e)?], json)?,
            None => {
                let all: Vec<DrillInfo> = match c.get("/v1/drills").await {
                    Err(CallError::NoDaemon(io)) if io.kind() != std::io::ErrorKind::PermissionDenied => {
                        if json {
                            println!("[]");
                        } else {
                            println!("no drill daemon is running, so no drills are either");
                        }
                        return Ok(Outcome::Code(0));
                    }
                    r => r.map_err(e)?,
                };
                output::print_status(&all, json)?;
            }
        },
        Cmd::Exec { id, host, command } if relay::wanted() => {
            let id = resolve(&c, id).await?;
            return Ok(Outcome::Code(relay::run(&c, &id, &host, Some(&command)).await.map_err(e)?));
        }
        Cmd::Shell { id, host } if relay::wanted() => {
            let id = resolve(&c, id).await?;
            return Ok(Outcome::Code(relay::run(&c, &id, &host, None).await.map_err(e)?));
        }
        Cmd::Exec { id, host, command } => {
            let pid = host_pid(&c, id, &host).await?;
            return Ok(Outcome::Enter { pid, argv: command, interactive: false });
        }
        Cmd::Shell { id, host } => {
            let pid = host_pid(&c, id, &host).await?;
            let shell = if Path::new("/bin/bash").exists() { "/bin/bash" } else { "/bin/sh" };
            return Ok(Outcome::Enter { pid, argv: vec![shell.into()], interactive: true });
        }
        Cmd::Watch { id, count, json, plain } => {
            let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
            if tty && !json && !plain {
                dashboard::run(&c, id, count).await.map_err(|err| match err.downcast::<CallError>() {
                    Ok(ce) => e(ce),
                    Err(other) => other,
                })?;
                return Ok(Outcome::Code(0));
            }
            let id = resolve(&c, id).await?;
            let mut n = 0u64;
            loop {
                let counters: DrillCounters = c.get(&format!("/v1/drills/{id}/counters")).await.map_err(e)?;
                if json {
                    println!("{}", serde_json::to_string(&counters)?);
                } else {
                    if tty {
                        print!("\x1b[2J\x1b[H");
                    }
                    output::print_counters(&counters);
                }
                n += 1;
                if count.is_some_and(|c| n >= c) {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Cmd::Hint { id, json } => {
            let id = resolve(&c, id).await?;
            let h: HintResponse = c.post(&format!("/v1/drills/{id}/hint"), &()).await.map_err(e)?;
            output::print_json_or(json, &h, || println!("hint {}/{}: {}", h.index, h.total, h.text))?;
        }
        Cmd::Submit { id, json } => {
            let id = resolve(&c, id).await?;
            if !json {
                eprintln!("watching drill {id} ... (the probes observe the kernel for the scenario's window)");
            }
            let r: SubmitResponse = c.post(&format!("/v1/drills/{id}/submit"), &()).await.map_err(e)?;
            output::print_verdict(&r.verdict, json)?;
            return Ok(Outcome::Code(if r.verdict.passed { 0 } else { 1 }));
        }
        Cmd::Solve { id, apply, abandon, json } => {
            let id = resolve(&c, id).await?;
            let mut req = SolveRequest { apply, abandon };
            let r: SolveResponse = match c.post(&format!("/v1/drills/{id}/solve"), &req).await {
                Err(CallError::Api(b)) if b.code == "incident_running" => {
                    eprintln!("drill: {}.", b.error);
                    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                        eprint!("Abandon the incident and show the solution? [y/N] ");
                        let mut line = String::new();
                        std::io::stdin().read_line(&mut line)?;
                        if !matches!(line.trim(), "y" | "Y" | "yes") {
                            eprintln!("kept running; `drill hint` costs fewer points");
                            return Ok(Outcome::Code(1));
                        }
                    } else {
                        eprintln!("drill: stdin is not a terminal: abandoning it");
                    }
                    req.abandon = true;
                    c.post(&format!("/v1/drills/{id}/solve"), &req).await.map_err(e)?
                }
                r => r.map_err(e)?,
            };
            output::print_solution(&r, json)?;
            if r.steps.iter().any(|s| s.result.as_ref().is_some_and(|x| x.exit_code != 0)) {
                return Ok(Outcome::Code(2));
            }
        }
        Cmd::Stop { id, all, json } => {
            let ids: Vec<String> = if all {
                match c.get::<Vec<DrillInfo>>("/v1/drills").await {
                    Ok(v) => v.into_iter().map(|d| d.id).collect(),
                    Err(CallError::NoDaemon(io)) if io.kind() != std::io::ErrorKind::PermissionDenied => Vec::new(),
                    Err(err) => return Err(e(err)),
                }
            } else {
                vec![resolve(&c, id).await?]
            };
            let mut out = StopResponse { stopped: Vec::new(), errors: Vec::new() };
            for id in ids {
                let r: StopResponse = c.delete(&format!("/v1/drills/{id}")).await.map_err(e)?;
                out.stopped.extend(r.stopped);
                out.errors.extend(r.errors);
            }
            output::print_stop(&out, json)?;
            if !out.errors.is_empty() {
                return Ok(Outcome::Code(2));
            }
        }
        Cmd::Completions { .. } | Cmd::Man { .. } => unreachable!("answered before the runtime starts"),
        Cmd::Pack(cmd) => return Ok(Outcome::Code(pack::run(cmd, &c, &cli.socket).await?)),
        Cmd::Doctor { json } => return Ok(Outcome::Code(doctor::run(&c, &cli.socket, json).await?)),
        Cmd::Reset => match c.post::<(), StopResponse>("/v1/reset", &()).await {
            Ok(r) => output::print_stop(&r, false)?,
            Err(CallError::NoDaemon(io)) if io.kind() != std::io::ErrorKind::PermissionDenied => {
                if !is_root() {
                    bail!("`drill reset` with no daemon running needs root: `sudo drill reset`");
                }
                let st = std::process::Command::new(find_drilld()?).arg("reset").status().context("running drilld reset")?;
                return Ok(Outcome::Code(if st.success() { 0 } else { 2 }));
            }
            Err(err) => return Err(e(err)),
        },
    }
    Ok(Outcome::Code(0))
}

/// The spinner's words while a drill's hosts, links, services and faults come up.
const STARTING: &str = "starting the drill: hosts, links, services, faults";

fn parse_limit(s: &str) -> Result<Duration, String> {
    drill_core::incident::parse_duration(s)
}

/// A scenario for `drill incident`: one at random among those that load (of `pack`).
fn pick_scenario(pack: Option<&str>) -> Result<String> {
    let cat = drill_core::catalog::load();
    let names: Vec<String> = cat.entries.iter().filter(|e| pack.is_none_or(|p| e.pack == p)).map(|e| ScenarioSummary::from(e).name()).collect();
    if names.is_empty() {
        match pack {
            Some(p) => bail!("no scenario in a pack named `{p}` (`drill pack list` shows the packs)"),
            None => bail!("no scenarios found (`drill list`)"),
        }
    }
    let mut b = [0u8; 8];
    std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b)).context("reading /dev/urandom")?;
    Ok(names[(u64::from_le_bytes(b) % names.len() as u64) as usize].clone())
}

/// The drill a report is about when none is named: the only running one, else the
/// newest in the history.
async fn latest_drill(c: &Client) -> Result<String> {
    if let Ok(all) = c.get::<Vec<DrillInfo>>("/v1/drills").await {
        if let [one] = all.as_slice() {
            return Ok(one.id.clone());
        }
        if all.len() > 1 {
            let ids: Vec<&str> = all.iter().map(|d| d.id.as_str()).collect();
            bail!("{} drills are running ({}): name one, e.g. `drill report {}`", all.len(), ids.join(", "), ids[0]);
        }
    }
    let list: Vec<HistoryEntry> = match c.get("/v1/history?limit=1").await {
        Err(CallError::NoDaemon(_)) if is_root() => offline_history(1)?,
        r => r.map_err(|e| api_err(&c.socket, e))?,
    };
    list.first().map(|e| e.id.clone()).ok_or_else(|| anyhow!("the history is empty: run a drill first (`drill list`)"))
}

/// `drilld history` / `drilld record` when no daemon runs (root reads the file).
fn offline_history(limit: usize) -> Result<Vec<HistoryEntry>> {
    let out = std::process::Command::new(find_drilld()?).args(["history", "--limit", &limit.to_string()]).output().context("running drilld history")?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    serde_json::from_slice(&out.stdout).context("reading drilld history's output")
}

fn offline_record(id: &str) -> Result<drill_core::record::DrillRecord> {
    let out = std::process::Command::new(find_drilld()?).args(["record", id]).output().context("running drilld record")?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim().trim_start_matches("drilld: error: "));
    }
    serde_json::from_slice(&out.stdout).context("reading drilld record's output")
}

/// The scenario list when no daemon runs (the same packs the daemon reads).
fn builtin_list_offline() -> Vec<ScenarioSummary> {
    let c = drill_core::catalog::load();
    for p in &c.problems {
        eprintln!("drill: warning: {p}");
    }
    c.entries.iter().map(ScenarioSummary::from).collect()
}

/// The drill id to act on: the given one, or the only running one.
async fn resolve(c: &Client, id: Option<String>) -> Result<String> {
    if let Some(id) = id {
        return Ok(id);
    }
    let all: Vec<DrillInfo> = c.get("/v1/drills").await.map_err(|e| api_err(&c.socket, e))?;
    match all.as_slice() {
        [] => bail!("no drill is running; start one with `sudo drill start SCENARIO` (`drill list` shows them)"),
        [one] => Ok(one.id.clone()),
        many => {
            let ids: Vec<&str> = many.iter().map(|d| d.id.as_str()).collect();
            bail!("{} drills are running ({}): name one, e.g. `drill status {}`", many.len(), ids.join(", "), ids[0])
        }
    }
}

/// PID of the init of `host`, for root to enter it itself (anyone else goes through
/// the daemon's relay, `relay.rs`).
async fn host_pid(c: &Client, id: Option<String>, host: &str) -> Result<i32> {
    let id = resolve(c, id).await?;
    let d: DrillInfo = c.get(&format!("/v1/drills/{id}")).await.map_err(|e| api_err(&c.socket, e))?;
    let h = d.hosts.iter().find(|h| h.name == host).ok_or_else(|| {
        let names: Vec<&str> = d.hosts.iter().map(|h| h.name.as_str()).collect();
        anyhow!("drill {id} has no host `{host}`; its hosts are: {}", names.join(", "))
    })?;
    Ok(h.pid)
}

/// The backends a dry run plans with, found without privileges: netem when the
/// kernel has the module (loaded, built in, or on disk), else the delay wire;
/// `DRILL_DELAY_BACKEND=wire|netem` forces one, as it does for drilld.
fn local_backends() -> drill_core::plan::Backends {
    use drill_core::plan::DelayBackend;
    let delay = match std::env::var(DelayBackend::FORCE_ENV).ok().as_deref().and_then(DelayBackend::from_name) {
        Some(forced) => forced,
        None => {
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
            let modules = Path::new("/lib/modules").join(release.trim());
            let on_disk = ["modules.builtin", "modules.dep"].iter().any(|f| std::fs::read_to_string(modules.join(f)).is_ok_and(|t| t.contains("/sch_netem.ko")));
            if Path::new("/sys/module/sch_netem").exists() || on_disk { DelayBackend::Netem } else { DelayBackend::Wire }
        }
    };
    drill_core::plan::Backends { delay }
}

/// drilld next to this binary, else $DRILLD, else on PATH.
fn find_drilld() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("DRILLD") {
        return Ok(PathBuf::from(p));
    }
    if let Ok(me) = std::env::current_exe() {
        let sib = me.with_file_name("drilld");
        if sib.is_file() {
            return Ok(sib);
        }
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("drilld");
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("cannot find drilld (not next to drill, not on PATH, DRILLD unset); build it with `cargo xtask build`")
}

/// Starts drilld in the background (it exits by itself when its last drill stops).
fn start_daemon(socket: &Path, quiet: bool) -> Result<()> {
    spawn_daemon(socket, &["--exit-when-idle"], if quiet { None } else { Some("") }).map(drop)
}

/// `drilld serve --socket SOCKET EXTRA..` in a session of its own (detached from our
/// terminal: Ctrl-C reaches only us), logging to drilld.log beside the socket; returns
/// once it serves, or with the end of its log when it exits first. `announce`: print
/// "starting drilld" (with these words after it) on stderr.
fn spawn_daemon(socket: &Path, extra: &[&str], announce: Option<&str>) -> Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let exe = find_drilld()?;
    let dir = socket.parent().unwrap_or(Path::new("/run/drill"));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let log_path = dir.join("drilld.log");
    let log = std::fs::File::options().create(true).append(true).open(&log_path).with_context(|| format!("opening {}", log_path.display()))?;
    if let Some(words) = announce {
        eprintln!("starting drilld{words} ({}; log in {}) ...", exe.display(), log_path.display());
    }
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(["serve", "--socket"]).arg(socket).args(extra).stdin(std::process::Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // SAFETY: setsid in the child only: detach from our terminal and session.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    let mut child = cmd.spawn().with_context(|| format!("starting {}", exe.display()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Ok(child);
        }
        if let Some(st) = child.try_wait()? {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            bail!("drilld exited ({st}) before serving {}; the end of {}:\n{}", socket.display(), log_path.display(), tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
    bail!("drilld did not open {} within 30 s; see {}", socket.display(), log_path.display())
}
