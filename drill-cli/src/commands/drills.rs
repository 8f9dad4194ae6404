//! What a learner does to a running drill: `drill ack`, `status`, `exec`, `shell`,
//! `watch`, `hint`, `submit`, `solve`, `stop`.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use drill_core::api::*;

use super::{host_pid, resolve};
use crate::client::{CallError, Client};
use crate::{Outcome, api_err, dashboard, output, relay};

/// `drill ack`: acknowledge the page of an incident.
pub(crate) async fn ack(c: &Client, socket: &Path, id: Option<String>, json: bool) -> Result<Outcome> {
    let e = |err: CallError| api_err(socket, err);
    let id = resolve(c, id).await?;
    let r: AckResponse = c.post(&format!("/v1/drills/{id}/ack"), &()).await.map_err(e)?;
    output::print_json_or(json, &r, || {
        if r.already {
            println!("incident {id} was already acknowledged, {:.0} s after the page", r.acked_secs);
        } else {
            println!("acknowledged incident {id}, {:.0} s after the page. The clock runs: `drill status` shows it.", r.acked_secs);
        }
    })?;
    Ok(Outcome::Code(0))
}

/// `drill status`: one drill, or every running one (none when no daemon runs).
pub(crate) async fn status(c: &Client, socket: &Path, id: Option<String>, json: bool) -> Result<Outcome> {
    let e = |err: CallError| api_err(socket, err);
    match id {
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
    }
    Ok(Outcome::Code(0))
}

/// `drill exec HOST -- CMD`: through the daemon's relay, or entered by root itself.
pub(crate) async fn exec(c: &Client, socket: &Path, id: Option<String>, host: String, command: Vec<String>) -> Result<Outcome> {
    let e = |err: CallError| api_err(socket, err);
    if relay::wanted() {
        let id = resolve(c, id).await?;
        return Ok(Outcome::Code(relay::run(c, &id, &host, Some(&command)).await.map_err(e)?));
    }
    let pid = host_pid(c, id, &host).await?;
    Ok(Outcome::Enter { pid, argv: command, interactive: false })
}

/// `drill shell HOST`: through the daemon's relay, or entered by root itself.
pub(crate) async fn shell(c: &Client, socket: &Path, id: Option<String>, host: String) -> Result<Outcome> {
    let e = |err: CallError| api_err(socket, err);
    if relay::wanted() {
        let id = resolve(c, id).await?;
        return Ok(Outcome::Code(relay::run(c, &id, &host, None).await.map_err(e)?));
    }
    let pid = host_pid(c, id, &host).await?;
    let shell = if Path::new("/bin/bash").exists() { "/bin/bash" } else { "/bin/sh" };
    Ok(Outcome::Enter { pid, argv: vec![shell.into()], interactive: true })
}

/// `drill watch`: the dashboard on a terminal, else the counters every second.
pub(crate) async fn watch(c: &Client, socket: &Path, id: Option<String>, count: Option<u64>, json: bool, plain: bool) -> Result<Outcome> {
    let e = |err: CallError| api_err(socket, err);
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    if tty && !json && !plain {
        dashboard::run(c, id, count).await.map_err(|err| match err.downcast::<CallError>() {
            Ok(ce) => e(ce),
            Err(other) => other,
        })?;
        return Ok(Outcome::Code(0));
    }
    let id = resolve(c, id).await?;
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
    Ok(Outcome::Code(0))
}

/// `drill hint`: the next hint.
pub(crate) async fn hint(c: &Client, socket: &Path, id: Option<String>, json: bool) -> Result<Outcome> {
    let e = |err: CallError| api_err(socket, err);
    let id = resolve(c, id).await?;
    let h: HintResponse = c.post(&format!("/v1/drills/{id}/hint"), &()).await.map_err(e)?;
    output::print_json_or(json, &h, || println!("hint {}/{}: {}", h.index, h.total, h.text))?;
    Ok(Outcome::Code(0))
}

/// `drill submit`: the verdict; exit 1 when the fix did not pass.
pub(crate) async fn submit(c: &Client, socket: &Path, id: Option<String>, json: bool) -> Result<Outcome> {
    let e = |err: CallError| api_err(socket, err);
    let id = resolve(c, id).await?;
    if !json {
        eprintln!("watching drill {id} ... (the probes observe the kernel for the scenario's window)");
    }
    let r: SubmitResponse = c.post(&format!("/v1/drills/{id}/submit"), &()).await.map_err(e)?;
    output::print_verdict(&r.verdict, json)?;
    Ok(Outcome::Code(if r.verdict.passed { 0 } else { 1 }))
}

/// `drill solve`: the reference solution (applied with `--apply`); abandoning a running incident asks first.
pub(crate) async fn solve(c: &Client, socket: &Path, id: Option<String>, apply: bool, abandon: bool, json: bool) -> Result<Outcome> {
    let e = |err: CallError| api_err(socket, err);
    let id = resolve(c, id).await?;
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
    Ok(Outcome::Code(0))
}

/// `drill stop`: one drill, or `--all` of one's own.
pub(crate) async fn stop(c: &Client, socket: &Path, id: Option<String>, all: bool, json: bool) -> Result<Outcome> {
    let e = |err: CallError| api_err(socket, err);
    let ids: Vec<String> = if all {
        match c.get::<Vec<DrillInfo>>("/v1/drills").await {
            Ok(v) => v.into_iter().map(|d| d.id).collect(),
            Err(CallError::NoDaemon(io)) if io.kind() != std::io::ErrorKind::PermissionDenied => Vec::new(),
            Err(err) => return Err(e(err)),
        }
    } else {
        vec![resolve(c, id).await?]
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
    Ok(Outcome::Code(0))
}
