//! The JSON report: the record itself plus what the report derives from it
//! (docs/report.md, "JSON").

use serde_json::{Value, json};

use super::*;
use crate::record::{DrillRecord, SCHEMA_VERSION};

pub fn value(rec: &DrillRecord) -> Value {
    let resolution: Vec<Value> = resolution(rec)
        .into_iter()
        .map(|s| json!({"event": s.event, "t_ms": s.t_ms, "host": s.host, "line": s.line, "followed_by": s.followed_by, "flips": s.flips, "read_only": s.read_only}))
        .collect();
    let sections: Vec<Value> = md::sections(rec).into_iter().map(|(id, title, markdown)| json!({"id": id, "title": title, "markdown": markdown})).collect();
    json!({
        "schema_version": SCHEMA_VERSION,
        "record": rec,
        "report": {"resolution": resolution, "sections": sections},
    })
}

pub fn render(rec: &DrillRecord) -> String {
    let mut s = serde_json::to_string_pretty(&value(rec)).unwrap_or_default();
    s.push('\n');
    s
}
