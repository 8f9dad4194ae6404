//! docs/packs.md documents every key the schema declares: pack.toml, the top level of a
//! scenario, hosts, routes, links, switches, endpoints, services, [verify], [solution],
//! steps, workarounds and alternatives, [[files]], and the keys every fault and every
//! check takes. A key is documented by a row starting with it ("| `key` |") in the section whose
//! heading names its table (the schema's own name for it: "[[hosts]]", "an endpoint").
//! (Per-kind fault and check keys are checked against scenarios/README.md elsewhere.)

const DOC: &str = include_str!("../../docs/packs.md");

/// The lines of the first section (a `#` heading) whose heading names `table`.
fn section(table: &str) -> Option<Vec<&'static str>> {
    let lines: Vec<&str> = DOC.lines().collect();
    let start = lines.iter().position(|l| l.starts_with('#') && l.to_lowercase().contains(&table.to_lowercase()))?;
    let end = lines[start + 1..].iter().position(|l| l.starts_with('#')).map_or(lines.len(), |i| start + 1 + i);
    Some(lines[start..end].to_vec())
}

fn documented(table: &str, key: &str) -> bool {
    section(table).is_some_and(|s| s.iter().any(|l| l.starts_with(&format!("| `{key}` |"))))
}

#[test]
fn every_schema_key_is_in_docs_packs_md() {
    let mut missing = Vec::new();
    let mut tables = drill_core::scenario::schema_tables();
    tables.push(("pack.toml", drill_core::pack::manifest_keys()));
    for (table, keys) in &tables {
        assert!(!keys.is_empty(), "{table} has keys");
        for k in keys {
            if !documented(table, k) {
                missing.push(format!("{table}: {k}"));
            }
        }
    }
    assert!(missing.is_empty(), "docs/packs.md lacks a row `| `KEY` |` for: {missing:#?}");
}

#[test]
fn the_doc_says_what_it_must() {
    for needle in ["trusted code", "exit", "files/", "scenarios/README.md", "DRILL_PACKS_DIR", "DRILL_BUILTIN_PACK", "time_limit_minutes", "needs traffic"] {
        assert!(DOC.contains(needle), "docs/packs.md says nothing of `{needle}`");
    }
}
