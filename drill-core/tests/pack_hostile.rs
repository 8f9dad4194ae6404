//! Hostile packs get a clear error, quickly, and nothing outside the pack is read: a
//! 10 MB file, 100 000 hosts, deep nesting, NaN and huge numbers, `..`, absolute paths
//! and symlinks in [[files]], a symlinked scenario, a FIFO named x.toml.

mod common;

use std::time::{Duration, Instant};

use common::{Scratch, problems, scenario};
use drill_core::pack;

/// Validates `p` in a thread and fails when it takes longer than `secs`.
fn quickly(p: &std::path::Path, secs: u64) -> Vec<String> {
    let p = p.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(problems(&p));
    });
    rx.recv_timeout(Duration::from_secs(secs)).expect("validation finished in time")
}

#[test]
fn a_10_mb_file_is_refused_by_its_size() {
    let s = Scratch::skeleton("big");
    let big = format!("{}\n# {}\n", scenario().replace("id = \"web-timeout\"", "id = \"big\""), "x".repeat(10 << 20));
    s.write("big.toml", &big);
    let t = Instant::now();
    let ps = quickly(s.path(), 10);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(ps.iter().any(|p| p.contains("big.toml:1:1: big.toml is 104") && p.contains("at most 1048576")), "{ps:?}");
    match pack::validate(&s.path().join("big.toml")) {
        Err(pack::LoadError::Io { message, .. }) => assert!(message.contains("at most 1048576"), "{message}"),
        other => panic!("a lone 10 MB file is refused: {other:?}"),
    }
}

#[test]
fn a_hundred_thousand_hosts_are_refused_at_once() {
    let hosts = "[[hosts]]\nname = \"h\"\n".repeat(100_000);
    let t = Instant::now();
    let e = drill_core::scenario::parse("h.toml", &format!("id = \"h\"\n{hosts}")).unwrap_err().to_string();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(e.contains("`hosts` holds 100000 items; a scenario may hold at most 64"), "{e}");
    let inline = format!("hosts = [{}]", "{ name = \"h\" },".repeat(100_000));
    let e = drill_core::scenario::parse("h.toml", &inline).unwrap_err().to_string();
    assert!(e.contains("at most 64"), "{e}");
    let routes = format!("[[hosts]]\nname = \"a\"\nroutes = [{}]", "{ to = \"default\", via = \"b\" },".repeat(1000));
    let e = drill_core::scenario::parse("h.toml", &routes).unwrap_err().to_string();
    assert!(e.contains("`routes` holds 1000 items"), "{e}");
}

#[test]
fn a_file_of_mistakes_stops_at_the_error_cap() {
    let t = Instant::now();
    let e = drill_core::scenario::parse("m.toml", &"x = 1\n".repeat(150_000)).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(e.0.len() <= drill_core::source::MAX_ERRORS + 1, "{}", e.0.len());
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for text in [
        format!("id = {}{}", "[".repeat(100_000), "]".repeat(100_000)),
        format!("id = {}1{}", "{ a = ".repeat(50_000), " }".repeat(50_000)),
        format!("[{}]\nx = 1", vec!["a"; 50_000].join(".")),
        format!("{} = 1", vec!["a"; 50_000].join(".")),
    ] {
        let e = drill_core::scenario::parse("d.toml", &text).unwrap_err().to_string();
        assert!(e.contains("recursion") || e.contains("recurse"), "{}", &e[..e.len().min(300)]);
        let e = pack::parse_manifest("pack.toml", &text).unwrap_err();
        assert!(!e.is_empty());
    }
}

#[test]
fn nan_and_huge_numbers() {
    let base = scenario();
    for (from, to, says) in [
        ("time_limit_minutes = 30", "time_limit_minutes = nan", "is not a finite number"),
        ("time_limit_minutes = 30", "time_limit_minutes = inf", "is not a finite number"),
        ("time_limit_minutes = 30", "time_limit_minutes = 1e308", "out of range"),
        ("estimated_minutes = 15", "estimated_minutes = -0.0", "out of range"),
        ("dport = 8080", "dport = 99999999999999999999999", "does not fit a 64-bit integer"),
        ("window_secs = 4.0", "window_secs = nan", "is not a finite number"),
        ("max_secs = 1.5", "max_secs = 1e400", "not a finite number"),
        ("min_connections = 5", "min_connections = 9223372036854775807", ""),
        ("rate_per_sec = 5", "rate_per_sec = -5", "integer `-5`"),
    ] {
        assert!(base.contains(from), "{from}");
        match drill_core::scenario::parse("n.toml", &base.replacen(from, to, 1)) {
            Err(e) => assert!(e.to_string().contains(says), "{to}: {e}"),
            Ok(_) => assert!(says.is_empty(), "{to} was accepted"),
        }
    }
    for v in ["version = \"nan\"", "version = 1e999", "version = 99999999999999999999999999.0.0"] {
        let m = format!("name = \"p\"\n{v}\ndescription = \"d\"\nengine = \">=0.1\"\n");
        assert!(pack::parse_manifest("pack.toml", &m).is_err(), "{v}");
    }
}

fn with_file(source: &str) -> String {
    format!("{}\n[[files]]\nhost = \"web\"\npath = \"/etc/banner\"\nsource = \"{source}\"\n", scenario())
}

#[test]
fn file_sources_stay_inside_the_pack() {
    let s = Scratch::skeleton("files");
    for (source, says) in [("../../etc/shadow", "leaves the pack directory"), ("/etc/shadow", "is absolute"), ("files/../../x", "leaves the pack directory"), ("", "is empty")] {
        s.write("web-timeout.toml", &with_file(source));
        let ps = problems(s.path());
        assert!(ps.iter().any(|p| p.contains(says)), "{source}: {ps:?}");
    }
    let outside = Scratch::new("outside");
    outside.write("secret", "root:x:0:0\n");
    std::fs::create_dir_all(s.path().join("files")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), s.path().join("files/out")).unwrap();
    s.write("files/real", "inside\n");
    std::os::unix::fs::symlink("real", s.path().join("files/in")).unwrap();
    std::os::unix::fs::symlink(outside.path(), s.path().join("files/dir")).unwrap();
    for source in ["files/out", "files/in", "files/dir/secret"] {
        s.write("web-timeout.toml", &with_file(source));
        let ps = problems(s.path());
        assert!(ps.iter().any(|p| p.contains("symlink")), "{source}: {ps:?}");
    }
    s.write("web-timeout.toml", &with_file("files/real"));
    assert!(problems(s.path()).is_empty());
    assert!(pack::pack_files(s.path()).unwrap_err().contains("symlink"), "an install refuses the symlinks too");
}

#[test]
fn symlinked_scenarios_and_fifos_are_refused_without_blocking() {
    let s = Scratch::skeleton("fifo");
    let outside = Scratch::new("outside-scn");
    outside.write("o.toml", &scenario().replace("id = \"web-timeout\"", "id = \"o\""));
    std::os::unix::fs::symlink(outside.path().join("o.toml"), s.path().join("linked.toml")).unwrap();
    let fifo = s.path().join("x.toml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc_mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    let ps = quickly(s.path(), 10);
    assert!(ps.iter().any(|p| p.contains("linked.toml") && p.contains("symlink")), "{ps:?}");
    assert!(ps.iter().any(|p| p.contains("x.toml") && p.contains("not a regular file")), "{ps:?}");
    let p = fifo.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(pack::validate(&p).is_err());
    });
    assert!(rx.recv_timeout(Duration::from_secs(10)).expect("a FIFO given as FILE does not block"), "and is an I/O error");
    std::fs::write(s.path().join("pack.toml"), "").unwrap();
    std::fs::remove_file(s.path().join("pack.toml")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("o.toml"), s.path().join("pack.toml")).unwrap();
    assert!(quickly(s.path(), 10).iter().any(|p| p.contains("pack.toml") && p.contains("symlink")));
}

unsafe extern "C" {
    #[link_name = "mkfifo"]
    fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
}
