//! Mutated scenario files never panic the parser, and every error has a position.
//! `FUZZ_N=20000 cargo test -p drill-core --test mutations` runs a longer round.

#[test]
fn mutated_files_never_panic() {
    let n: usize = std::env::var("FUZZ_N").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let snippets =
        ["nan", "inf", "-1", "1e308", "0", "\"\"", "[]", "{}", "true", "percent = 5", "kind = \"delay\"", "[[faults]]", "\n", "=", "\"", "x", "99999999999999999999", "0x7f", "1_000", "[", "]"];
    let mut errors = 0;
    let files = drill_core::builtin::files();
    for i in 0..n {
        let (file, text) = &files[i % files.len()];
        let mut t: Vec<String> = text.lines().map(str::to_string).collect();
        for _ in 0..1 + next() % 3 {
            let l = (next() as usize) % t.len();
            match next() % 4 {
                0 => {
                    t.remove(l);
                }
                1 => {
                    let s = snippets[(next() as usize) % snippets.len()];
                    t.insert(l, s.to_string());
                }
                2 => {
                    if let Some(p) = t[l].find('=') {
                        let s = snippets[(next() as usize) % snippets.len()];
                        t[l] = format!("{} {s}", &t[l][..=p]);
                    }
                }
                _ => {
                    let a = (next() as usize) % t.len();
                    t.swap(l, a);
                }
            }
        }
        let text = t.join("\n");
        let r = std::panic::catch_unwind(|| drill_core::scenario::parse(file, &text));
        match r {
            Ok(Err(e)) => {
                errors += 1;
                for x in &e.0 {
                    assert!(x.line >= 1 && x.column >= 1);
                }
            }
            Ok(Ok(_)) => {}
            Err(_) => panic!("panic on:\n{text}"),
        }
    }
    println!("{n} mutations, {errors} with errors");
}
