//! Every built-in scenario parses to the same validated `Scenario` as recorded in
//! `tests/snapshots/` (first recorded with the parser before the per-kind schema, so the
//! rewrite provably changed nothing for valid files). After an intended change to a
//! built-in scenario or to the model, re-record with
//! `UPDATE_SNAPSHOTS=1 cargo test -p drill-core --test builtin_snapshots` and review the diff.

use std::path::Path;

#[test]
fn builtin_scenarios_match_their_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut differ = Vec::new();
    for (file, text) in drill_core::builtin::files() {
        let s = drill_core::scenario::parse(&file, &text).unwrap_or_else(|e| panic!("{e}"));
        let json = serde_json::to_string_pretty(&s).unwrap();
        let name = Path::new(&file).with_extension("json");
        let path = dir.join(name.file_name().unwrap());
        if update {
            std::fs::write(&path, &json).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(json.as_str()) {
            differ.push(path.display().to_string());
        }
    }
    assert!(differ.is_empty(), "these built-in scenarios no longer parse to their snapshot: {differ:?} (UPDATE_SNAPSHOTS=1 re-records them)");
}
