//! `drill pack`: validate, self-test, create, list, install and remove scenario packs.
//! The format is in docs/packs.md.

mod leftovers;
mod manage;
mod report;
mod stages;
mod test;
mod validate;

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use crate::client::Client;

#[derive(Subcommand)]
pub enum PackCmd {
    /// Check a pack (or one scenario file) without root or a daemon: schema, references,
    /// addresses and routes, authoring lints. Exit 0 valid, 1 invalid, 2 usage or I/O error.
    Validate {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Self-test a pack on this machine (root): for each scenario, baseline, broken,
    /// workarounds, fixed and alternatives, clean. Exit 0 only when every stage passed.
    Test {
        dir: PathBuf,
        /// Only this scenario (its id).
        #[arg(long)]
        scenario: Option<String>,
        /// Scenarios run at once (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Write a commented skeleton pack with one scenario that passes its own self-test.
    New { dir: PathBuf },
    /// The installed packs, their versions and scenario counts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Install a valid pack under /var/lib/drill/packs (root).
    Install { dir: PathBuf },
    /// Remove an installed pack (root).
    Remove { name: String },
}

/// Runs a `drill pack` command; the exit code.
pub async fn run(cmd: PackCmd, client: &Client, socket: &std::path::Path) -> Result<u8> {
    match cmd {
        PackCmd::Validate { path, json } => validate::run(&path, json),
        PackCmd::Test { dir, scenario, jobs, json } => test::run(client, socket, &dir, scenario.as_deref(), jobs, json).await,
        PackCmd::New { dir } => manage::new(&dir),
        PackCmd::List { json } => manage::list(json),
        PackCmd::Install { dir } => manage::install(&dir),
        PackCmd::Remove { name } => manage::remove(&name),
    }
}
