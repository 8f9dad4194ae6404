//! `drill pack` as a user runs it: new -> validate exits 0; a mistake exits 1 with
//! file:line:column; a missing path exits 2; list, install and remove in a scratch
//! install directory (DRILL_PACKS_DIR; install and remove only as root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn drill(args: &[&str], packs: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drill")).args(args).env("DRILL_PACKS_DIR", packs).env("DRILL_SOCKET", "/nonexistent/drill.sock").output().expect("drill runs")
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("drill-pack-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn new_then_validate_then_install_list_remove() {
    let root = scratch("flow");
    let (dir, packs) = (root.join("my-drills"), root.join("packs"));
    std::fs::create_dir_all(&root).unwrap();
    let d = dir.to_str().unwrap();
    let o = drill(&["pack", "new", d], &packs);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = drill(&["pack", "new", d], &packs);
    assert_eq!(o.status.code(), Some(2), "a non-empty DIR is refused: {}", text(&o));
    let o = drill(&["pack", "validate", d], &packs);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = drill(&["pack", "validate", "--json", d], &packs);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["valid"].as_bool(), v["pack"].as_str()), (Some(true), Some("my-drills")));

    let o = drill(&["pack", "list", "--json"], &packs);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.as_array().unwrap().iter().any(|p| p["name"] == "core" && p["builtin"] == true && p["scenarios"].as_u64() > Some(0)), "{v}");

    std::fs::create_dir_all(dir.join("files/etc")).unwrap();
    std::fs::write(dir.join("files/etc/banner"), "hello\n").unwrap();
    let o = drill(&["pack", "install", d], &packs);
    if !is_root() {
        assert_eq!(o.status.code(), Some(2));
        assert!(text(&o).contains("needs root"), "{}", text(&o));
        return;
    }
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(packs.join("my-drills/pack.toml").is_file() && packs.join("my-drills/web-timeout.toml").is_file());
    assert_eq!(std::fs::read_to_string(packs.join("my-drills/files/etc/banner")).unwrap(), "hello\n", "files/ is copied");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(packs.join("my-drills/files/etc/banner")).unwrap().permissions().mode() & 0o777, 0o644);
    assert_eq!(std::fs::metadata(packs.join("my-drills/files/etc")).unwrap().permissions().mode() & 0o777, 0o755);
    assert!(std::fs::read_dir(&packs).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.')), "no temp dir is left");
    let o = drill(&["pack", "list"], &packs);
    assert!(text(&o).contains("my-drills") && text(&o).contains("0.1.0"), "{}", text(&o));
    std::fs::create_dir_all(packs.join("broken")).unwrap();
    std::fs::write(packs.join("broken/pack.toml"), "name = 1\n").unwrap();
    let o = drill(&["pack", "list"], &packs);
    assert!(text(&o).contains("broken") && text(&o).contains("`name` takes a string"), "a pack that fails to load is listed with its error: {}", text(&o));
    let o = drill(&["pack", "remove", "broken"], &packs);
    assert_eq!(o.status.code(), Some(2), "a dir whose pack.toml does not name it stays: {}", text(&o));
    assert!(packs.join("broken").exists());
    let o = drill(&["pack", "remove", "my-drills"], &packs);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!packs.join("my-drills").exists());
    let o = drill(&["pack", "remove", "my-drills"], &packs);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    let manifest = dir.join("pack.toml");
    let m = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, m.replace("name = \"my-drills\"", "name = \"core\"")).unwrap();
    let o = drill(&["pack", "install", d], &packs);
    assert!(o.status.code() != Some(0) && text(&o).contains("built-in"), "{}", text(&o));
    let later: String = m.lines().map(|l| if l.starts_with("engine =") { "engine = \">=99.0.0\"\n".to_string() } else { format!("{l}\n") }).collect();
    std::fs::write(&manifest, later.replace("name = \"my-drills\"", "name = \"later\"")).unwrap();
    let o = drill(&["pack", "install", d], &packs);
    assert!(o.status.code() != Some(0) && text(&o).contains("needs drill"), "{}", text(&o));
    std::fs::write(&manifest, m.replace("name = \"my-drills\"", "name = \"invalid\"")).unwrap();
    let f = dir.join("web-timeout.toml");
    std::fs::write(&f, std::fs::read_to_string(&f).unwrap().replace("time_limit_minutes = 30\n", "")).unwrap();
    let o = drill(&["pack", "install", d], &packs);
    assert!(o.status.code() != Some(0) && text(&o).contains("lint: the scenario has no time limit") && !packs.join("invalid").exists(), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn validate_exit_codes() {
    let root = scratch("codes");
    let packs = root.join("packs");
    let o = drill(&["pack", "validate", "/nonexistent/pack"], &packs);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let dir = root.join("p");
    std::fs::create_dir_all(&root).unwrap();
    assert_eq!(drill(&["pack", "new", dir.to_str().unwrap()], &packs).status.code(), Some(0));
    let f = dir.join("web-timeout.toml");
    std::fs::write(&f, std::fs::read_to_string(&f).unwrap().replace("kind = \"nft-drop\"", "kind = \"nft-dorp\"")).unwrap();
    let o = drill(&["pack", "validate", dir.to_str().unwrap()], &packs);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("web-timeout.toml:65:8: unknown fault kind `nft-dorp`; did you mean `nft-drop`?"), "{}", text(&o));
    let o = drill(&["pack", "validate", f.to_str().unwrap()], &packs);
    assert_eq!(o.status.code(), Some(1), "a lone file: {}", text(&o));
    let _ = std::fs::remove_dir_all(&root);
}
