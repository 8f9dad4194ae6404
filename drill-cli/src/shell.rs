//! Shell completions and man pages, both generated from the clap definitions.
//!
//! Completions use clap_complete's dynamic engine: the script a shell loads (`drill
//! completions SHELL`, installed by the package) registers a function that calls `drill`
//! back with [`COMPLETE_VAR`] set on every TAB, so options, subcommands, scenario ids
//! (`drill start`, `drill incident --scenario`) and running drill ids (`drill stop`,
//! `--drill`, ...) all come from the running binary. Scenario ids are read from the local
//! catalog (the same packs the daemon reads, no daemon needed); drill ids from the daemon
//! on `$DRILL_SOCKET`, and quietly none when no daemon answers within a moment.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::ValueEnum;
use clap_complete::engine::CompletionCandidate;
use clap_complete::env::EnvCompleter;

/// The variable that turns a run of `drill` into a completion request.
pub const COMPLETE_VAR: &str = "DRILL_COMPLETE";

/// The shells `drill completions` writes a script for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Answers a completion request (the shell's function calling back) and exits; returns
/// when this run is not one.
pub fn complete_if_asked(cmd: impl Fn() -> clap::Command) {
    clap_complete::CompleteEnv::with_factory(cmd).var(COMPLETE_VAR).complete();
}

/// The script that registers drill's completion in `shell` (the command it calls back is
/// `drill` on PATH, so the same file serves an installed package and a PATH entry).
pub fn write_script(shell: Shell, out: &mut dyn std::io::Write) -> Result<()> {
    let completer: &dyn EnvCompleter = match shell {
        Shell::Bash => &clap_complete::env::Bash,
        Shell::Zsh => &clap_complete::env::Zsh,
        Shell::Fish => &clap_complete::env::Fish,
    };
    completer.write_registration(COMPLETE_VAR, "drill", "drill", "drill", out).context("writing the completion script")?;
    Ok(())
}

/// Scenario ids (`ID` of the built-in pack, `PACK/ID` of installed ones), with their titles.
pub fn scenario_ids() -> Vec<CompletionCandidate> {
    drill_core::catalog::load()
        .entries
        .iter()
        .map(|e| {
            let s = drill_core::api::ScenarioSummary::from(e);
            CompletionCandidate::new(s.name()).help(Some(s.title.into()))
        })
        .collect()
}

/// Ids of the running drills with their scenarios; none when no daemon answers.
pub fn drill_ids() -> Vec<CompletionCandidate> {
    let socket = std::env::var_os("DRILL_SOCKET").map(std::path::PathBuf::from).unwrap_or_else(|| drill_core::api::DEFAULT_SOCKET.into());
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return Vec::new();
    };
    let c = crate::client::Client::new(&socket);
    let all: Vec<drill_core::api::DrillInfo> = match rt.block_on(async { tokio::time::timeout(Duration::from_millis(800), c.get("/v1/drills")).await }) {
        Ok(Ok(all)) => all,
        _ => return Vec::new(),
    };
    all.into_iter().map(|d| CompletionCandidate::new(d.id).help(Some(d.scenario.into()))).collect()
}

/// drill.1 and one page per subcommand (drill-start.1, drill-pack-validate.1, ...) in `dir`.
pub fn write_man_pages(cmd: clap::Command, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(cmd, dir).with_context(|| format!("writing the man pages into {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(shell: Shell) -> String {
        let mut out = Vec::new();
        write_script(shell, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_script_calls_drill_back_with_the_variable() {
        let bash = script(Shell::Bash);
        assert!(bash.contains("complete -o nospace -o bashdefault -o nosort -F _clap_complete_drill drill"), "{bash}");
        assert!(bash.contains("DRILL_COMPLETE=\"bash\""), "{bash}");
        let zsh = script(Shell::Zsh);
        assert!(zsh.starts_with("#compdef drill"), "{zsh}");
        assert!(zsh.contains("DRILL_COMPLETE=\"zsh\""), "{zsh}");
        let fish = script(Shell::Fish);
        assert!(fish.contains("complete --keep-order --exclusive --command drill"), "{fish}");
        assert!(fish.contains("DRILL_COMPLETE=fish"), "{fish}");
        for s in [&bash, &zsh, &fish] {
            assert!(!s.contains("target/"), "the script names `drill` on PATH, not a build path:\n{s}");
        }
    }

    #[test]
    fn scenario_ids_come_from_the_catalog() {
        let ids: Vec<String> = scenario_ids().iter().map(|c| c.get_value().to_string_lossy().into_owned()).collect();
        assert!(ids.iter().any(|i| i == "close-wait-leak"), "{ids:?}");
    }
}
