//! The parser and the validator never panic, whatever the bytes: proptest over arbitrary
//! bytes and over mutations of the built-in scenarios, the skeleton and the manifests
//! (the corpus), each text read as a scenario and as a pack.toml, and the valid ones taken
//! through the lints, the cross-references and the plan. Some cases also go through a
//! pack on disk (`pack::validate`).
//!
//! Bounded here (deterministic, a few thousand cases, seconds); `cargo xtask fuzz
//! --secs N` runs it in release with a fresh seed per round until N seconds have passed
//! (env DRILL_FUZZ_SECS; PROPTEST_CASES sets the cases of one round).

mod common;

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};

const TOKENS: &[&str] = &[
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "-0.0",
    "1e999",
    "1e308",
    "99999999999999999999",
    "0x7fffffffffffffff",
    "\"\"",
    "[]",
    "{}",
    "[[",
    "]]",
    "[",
    "]",
    "=",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "\n",
    "#",
    ",",
    ".",
    "true",
    "1979-05-27T07:32:00Z",
    "\u{0}",
    "é",
    "\u{202e}",
    "{ host = \"api\" }",
    "[[hosts]]\nname = \"x\"\n",
    "[[faults]]\nkind = \"nft-drop\"\nhost = \"api\"\n",
    "[[checks]]\nkind = \"drops\"\nhost = \"api\"\n",
    "guards = [\"x\"]",
    "guards = []",
    "name = \"nft-drop\"",
    "time_limit_minutes = 1e308",
    "../../etc/shadow",
    "/etc/shadow",
    "[[files]]\nhost = \"api\"\npath = \"/x\"\nsource = \"../x\"\n",
    "[[workarounds]]\nname = \"w\"\nsteps = []\n",
    "via = \"10.77.0.1\"",
    "address = \"10.77.0.1/8\"",
    "mtu = 68",
];

#[derive(Clone, Debug)]
enum Mutation {
    Delete(Index, usize),
    Insert(Index, usize),
    Replace(Index, usize, usize),
    DupLine(Index),
    DropLine(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<Index>(), 0..TOKENS.len()).prop_map(|(i, t)| Mutation::Insert(i, t)),
        (any::<Index>(), 1usize..16, 0..TOKENS.len()).prop_map(|(i, n, t)| Mutation::Replace(i, n, t)),
        any::<Index>().prop_map(Mutation::DupLine),
        any::<Index>().prop_map(Mutation::DropLine),
    ]
}

/// The nearest char boundary at or below `i`.
fn floor(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(mut s: String, m: &Mutation) -> String {
    let at = |s: &str, i: &Index| floor(s, i.index(s.len() + 1));
    match m {
        Mutation::Delete(i, n) => {
            let a = at(&s, i);
            let b = floor(&s, a + n);
            s.replace_range(a..b, "");
        }
        Mutation::Insert(i, t) => s.insert_str(at(&s, i), TOKENS[*t]),
        Mutation::Replace(i, n, t) => {
            let a = at(&s, i);
            let b = floor(&s, a + n);
            s.replace_range(a..b, TOKENS[*t]);
        }
        Mutation::DupLine(i) | Mutation::DropLine(i) => {
            let mut lines: Vec<&str> = s.lines().collect();
            if !lines.is_empty() {
                let k = i.index(lines.len());
                if matches!(m, Mutation::DupLine(_)) {
                    lines.insert(k, lines[k]);
                } else {
                    lines.remove(k);
                }
            }
            s = lines.join("\n");
        }
    }
    s
}

/// The built-in pack's files, the skeleton's.
fn corpus() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios");
    let mut out: Vec<String> =
        std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()).filter(|e| e.path().extension().is_some_and(|x| x == "toml")).map(|e| std::fs::read_to_string(e.path()).unwrap()).collect();
    out.sort();
    out.extend(drill_core::pack::skeleton("fuzz").into_iter().map(|(_, t)| t));
    assert!(out.len() >= 12, "the corpus holds the built-in pack");
    out
}

/// Everything pure that reads a text; it must return, never panic.
fn exercise(text: &str) {
    if let Ok(s) = drill_core::scenario::parse("f.toml", text) {
        let _ = drill_core::pack::lint("f.toml", text, &s);
        let _ = drill_core::pack::crossref("f.toml", text, &s);
        let _ = drill_core::plan::compile(&s, "abcdef", 1, Default::default());
        let _ = s.clone().without_faults();
    }
    let _ = drill_core::pack::parse_manifest("pack.toml", text);
}

fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(cases);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// Runs `f` with a deterministic runner once, or (DRILL_FUZZ_SECS set) with fresh seeds
/// round after round until the time is up.
fn rounds(cases: u32, mut f: impl FnMut(&mut TestRunner)) {
    let secs: Option<u64> = std::env::var("DRILL_FUZZ_SECS").ok().and_then(|s| s.parse().ok());
    let Some(secs) = secs else {
        f(&mut TestRunner::new_with_rng(config(cases), proptest::test_runner::TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha)));
        return;
    };
    let end = Instant::now() + Duration::from_secs(secs);
    let mut n = 0;
    while Instant::now() < end {
        f(&mut TestRunner::new(config(cases)));
        n += 1;
    }
    eprintln!("{n} rounds of {} cases", config(cases).cases);
}

#[test]
fn arbitrary_bytes_never_panic() {
    rounds(1500, |r| {
        r.run(&proptest::collection::vec(any::<u8>(), 0..2048), |bytes| {
            exercise(&String::from_utf8_lossy(&bytes));
            Ok(())
        })
        .unwrap();
    });
}

#[test]
fn mutated_scenarios_never_panic() {
    let corpus = corpus();
    rounds(2500, |r| {
        r.run(&(0..corpus.len(), proptest::collection::vec(mutation(), 1..8)), |(i, ms)| {
            let text = ms.iter().fold(corpus[i].clone(), apply);
            exercise(&text);
            Ok(())
        })
        .unwrap();
    });
}

#[test]
fn mutated_packs_on_disk_never_panic() {
    let corpus = corpus();
    let manifest = corpus.iter().find(|t| t.contains("engine =")).unwrap().clone();
    let s = common::Scratch::skeleton("fuzz");
    s.write("files/banner", "hi\n");
    rounds(200, |r| {
        r.run(&(0..corpus.len(), proptest::collection::vec(mutation(), 1..6), proptest::collection::vec(mutation(), 0..3)), |(i, ms, mm)| {
            s.write("web-timeout.toml", &ms.iter().fold(corpus[i].clone(), apply));
            s.write("pack.toml", &mm.iter().fold(manifest.clone(), apply));
            let _ = drill_core::pack::validate(s.path());
            let _ = drill_core::pack::load(s.path());
            Ok(())
        })
        .unwrap();
    });
}
