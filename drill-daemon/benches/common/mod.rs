//! Shared by the benchmarks: the row format of `cargo xtask bench --json`.
#![allow(dead_code)]

use serde_json::{Value, json};

/// One figure: {name, value, unit, baseline, ratio}; `ratio` is value / baseline unless
/// `inverse` (then baseline / value, for "how many times faster").
pub fn row(name: &str, value: f64, unit: &str, baseline: Option<f64>, inverse: bool) -> Value {
    let ratio = baseline.filter(|b| *b > 0.0 && value > 0.0).map(|b| if inverse { b / value } else { value / b });
    json!({"name": name, "value": value, "unit": unit, "baseline": baseline, "ratio": ratio})
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((p / 100.0) * (v.len() - 1) as f64).round() as usize]
}

/// Prints the rows as JSON (`--json`) or as a table.
pub fn print(rows: &[Value], json_out: bool) {
    if json_out {
        println!("{}", serde_json::to_string_pretty(rows).unwrap());
        return;
    }
    for r in rows {
        let ratio = r["ratio"].as_f64().map(|x| format!("{x:.3}")).unwrap_or_default();
        println!("{:<86} {:>10.3} {:<7} {:>8}", r["name"].as_str().unwrap_or(""), r["value"].as_f64().unwrap_or(0.0), r["unit"].as_str().unwrap_or(""), ratio);
    }
}
