//! The scenario a start names (catalog; a `source` only from a root peer) and the pack
//! files it reads.

use std::path::PathBuf;

use drill_core::api::StartRequest;
use drill_core::plan;
use drill_core::scenario::{self, Scenario};
use tracing::warn;

use super::{ApiError, bad};
use crate::error::DrillError;
use crate::peer::Peer;

/// A scenario to start, with the pack it came from.
pub struct Resolved {
    pub scenario: Scenario,
    /// The pack's name (empty for a file sent by the client).
    pub pack: String,
    /// Where its `[[files]]` are read from.
    pub pack_dir: Option<PathBuf>,
}

/// The scenario `req` names: a file sent by a root client, or `ID` / `PACK/ID` in the
/// built-in pack and the installed ones (read afresh: an edit shows at the next start).
pub fn resolve_scenario(req: &StartRequest, peer: &Peer) -> Result<Resolved, ApiError> {
    if let Some(src) = &req.source {
        if !peer.is_root() {
            return Err(ApiError(DrillError::SourceForbidden { uid: peer.uid }));
        }
        let scenario = scenario::parse(&src.file, &src.text).map_err(|e| ApiError(DrillError::InvalidScenario(e)))?;
        return Ok(Resolved { scenario, pack: String::new(), pack_dir: src.pack_dir.as_ref().map(PathBuf::from) });
    }
    let catalog = drill_core::catalog::load();
    for p in &catalog.problems {
        warn!("scenario catalog: {p}");
    }
    match catalog.find(&req.scenario) {
        Ok(e) => Ok(Resolved { scenario: e.scenario.clone(), pack: e.pack.clone(), pack_dir: Some(e.dir.clone()) }),
        Err(drill_core::catalog::FindError::NotFound { id, known }) => {
            // A pack that did not load may be the one meant: say so.
            let skipped = if catalog.problems.is_empty() { String::new() } else { format!("; not loaded: {}", catalog.problems.join("; ")) };
            Err(ApiError(DrillError::ScenarioNotFound { id, known: format!("{}{skipped}", known.join(", ")) }))
        }
        Err(drill_core::catalog::FindError::Ambiguous { id, choices }) => Err(ApiError(DrillError::AmbiguousScenario { id, choices: choices.join(", ") })),
    }
}

/// The contents of the plan's files, read by the daemon from the pack directory (inside
/// it only); the plan records each file's size.
pub(super) fn read_files(plan: &mut plan::Plan, pack_dir: Option<&std::path::Path>) -> Result<Vec<Vec<u8>>, ApiError> {
    if plan.files.is_empty() {
        return Ok(Vec::new());
    }
    let dir = pack_dir.ok_or_else(|| bad("the scenario places [[files]] but names no pack directory to read them from; start it from its pack (ScenarioSource.pack_dir)"))?;
    plan::files::read(&mut plan.files, dir).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use drill_core::api::ScenarioSource;

    fn source_start() -> StartRequest {
        let (file, text) = drill_core::builtin::files().into_iter().find(|(f, _)| f == "firewall-drop.toml").unwrap();
        StartRequest { scenario: String::new(), source: Some(ScenarioSource { file, text, pack_dir: None }), dry_run: true, ..Default::default() }
    }

    #[test]
    fn only_root_may_start_an_uninstalled_file() {
        let nobody = Peer { uid: 65534, pid: None };
        let Err(e) = resolve_scenario(&source_start(), &nobody) else { panic!("a non-root source start must be refused") };
        assert_eq!(e.body().code, "source_forbidden");
        assert_eq!(e.into_response().status(), StatusCode::FORBIDDEN);
        assert!(resolve_scenario(&source_start(), &Peer::ROOT).is_ok());
        // By name, anyone may start a scenario of the built-in pack.
        let by_name = StartRequest { scenario: "firewall-drop".into(), source: None, dry_run: true, ..Default::default() };
        let r = resolve_scenario(&by_name, &nobody).expect("a built-in scenario by name");
        assert_eq!((r.pack.as_str(), r.scenario.id.as_str()), ("core", "firewall-drop"));
        let unknown = StartRequest { scenario: "nope".into(), ..by_name };
        let Err(e) = resolve_scenario(&unknown, &nobody) else { panic!("unknown") };
        assert_eq!(e.body().code, "scenario_not_found");
        assert!(e.body().error.contains("missing-route"), "lists the known ids: {}", e.body().error);
    }
}
