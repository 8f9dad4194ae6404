//! `drill pack validate DIR|FILE [--json]`: no root, no daemon. The checks are
//! drill-core's (`pack::validate`); this prints them. Exit 0 valid, 1 invalid (the
//! answer), 2 when the path cannot be read.

use std::path::Path;

use anyhow::Result;
use drill_core::pack::{self, ProblemKind};

pub fn run(path: &Path, json: bool) -> Result<u8> {
    let report = match pack::validate(path) {
        Ok(r) => r,
        Err(e) => {
            if json {
                println!("{}", serde_json::json!({ "valid": false, "error": e.to_string() }));
            }
            eprintln!("drill: error: {e}");
            return Ok(2);
        }
    };
    if json {
        print_out(&serde_json::to_string_pretty(&report)?);
    } else {
        for p in &report.problems {
            eprintln!("{p}");
        }
        let what = report.pack.as_ref().map_or_else(|| path.display().to_string(), |n| format!("pack `{n}` ({})", path.display()));
        let n = report.scenarios.len();
        if report.valid {
            print_out(&format!("{what}: valid, {n} scenario(s)"));
        } else {
            let errors = report.problems.iter().filter(|p| p.kind == ProblemKind::Error).count();
            let lints = report.problems.len() - errors;
            eprintln!("{what}: invalid: {errors} error(s), {lints} lint(s) in {n} scenario(s) that parsed");
        }
    }
    Ok(if report.valid { 0 } else { 1 })
}

/// Prints a line to stdout; a closed pipe (`| head`) is ignored instead of panicking
/// like `println!` (the exit code stays the command's answer).
pub(super) fn print_out(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
