//! Completions and man pages as a user meets them: bash with `drill completions bash`
//! loaded completes a scenario id after `drill start` and a running drill's id after
//! `drill stop` (from a stand-in daemon on a private socket); the generated man pages
//! render with no warning from man or groff.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

fn drill_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_drill")).parent().unwrap().to_path_buf()
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("drill-completions-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// bash with drill's completion loaded, `complete -p drill`, then the completion function
/// called as readline calls it for `line` (the cursor at its end); prints one candidate a line.
fn bash_complete(line: &str, socket: &Path) -> (String, Vec<String>) {
    let script = format!(
        r#"set -e
source <(drill completions bash)
complete -p drill
COMP_LINE={line:?}
COMP_POINT=${{#COMP_LINE}}
read -ra COMP_WORDS <<< "$COMP_LINE"
[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_TYPE=9
_clap_complete_drill drill "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf 'candidate:%s\n' "${{COMPREPLY[@]}}"
"#
    );
    let path = format!("{}:{}", drill_dir().display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash").arg("-c").arg(&script).env("PATH", path).env("DRILL_SOCKET", socket).output().expect("bash runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "bash failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    let cands = text.lines().filter_map(|l| l.strip_prefix("candidate:")).filter(|c| !c.is_empty()).map(String::from).collect();
    (text, cands)
}

#[test]
fn bash_completes_scenario_ids_after_start() {
    let (text, cands) = bash_complete("drill start close", Path::new("/nonexistent/drilld.sock"));
    assert!(text.lines().any(|l| l.starts_with("complete ") && l.ends_with("-F _clap_complete_drill drill")), "complete -p drill: {text}");
    assert_eq!(cands, ["close-wait-leak"], "{text}");
    let (_, all) = bash_complete("drill start ", Path::new("/nonexistent/drilld.sock"));
    assert!(all.len() >= 10 && all.iter().any(|c| c == "firewall-drop"), "every built-in scenario: {all:?}");
    let (_, inc) = bash_complete("drill incident --scenario fire", Path::new("/nonexistent/drilld.sock"));
    assert_eq!(inc, ["firewall-drop"]);
    let (_, subs) = bash_complete("drill sto", Path::new("/nonexistent/drilld.sock"));
    assert_eq!(subs, ["stop"]);
}

/// A stand-in drilld answering every request with one running drill.
fn fake_daemon(socket: &Path) -> std::thread::JoinHandle<()> {
    let l = std::os::unix::net::UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let body =
            r#"[{"id":"ab12cd","scenario":"close-wait-leak","title":"t","severity":"warning","alert":"a","briefing":"b","hints":0,"started_unix":0,"elapsed_secs":1.0,"hosts":[],"services":[]}]"#;
        // One connection per completion request; the test makes three.
        for s in l.incoming().take(3) {
            let mut s = s.unwrap();
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            let _ = write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        }
    })
}

#[test]
fn bash_completes_running_drill_ids_and_nothing_without_a_daemon() {
    let dir = scratch("ids");
    let socket = dir.join("drilld.sock");
    let (_, none) = bash_complete("drill stop a", &socket);
    assert!(none.is_empty(), "no daemon, no ids: {none:?}");
    let t = fake_daemon(&socket);
    for line in ["drill stop ", "drill submit a", "drill exec --drill "] {
        let (text, cands) = bash_complete(line, &socket);
        assert!(cands.iter().any(|c| c == "ab12cd"), "{line}: {text}");
    }
    t.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn zsh_and_fish_scripts_are_printed() {
    for (shell, marker) in [("zsh", "#compdef drill"), ("fish", "complete --keep-order --exclusive --command drill")] {
        let out = Command::new(env!("CARGO_BIN_EXE_drill")).args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains(marker), "{shell}");
    }
}

#[test]
fn man_pages_render_without_warnings() {
    let dir = scratch("man");
    let out = Command::new(env!("CARGO_BIN_EXE_drill")).arg("man").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut pages: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    pages.sort();
    for want in ["drill.1", "drill-start.1", "drill-stop.1", "drill-completions.1", "drill-pack.1", "drill-pack-validate.1"] {
        assert!(pages.iter().any(|p| p == want), "{want} in {pages:?}");
    }
    assert!(!pages.iter().any(|p| p == "drill-man.1"), "the hidden `man` has no page: {pages:?}");
    let has = |p: &str| Command::new("sh").arg("-c").arg(format!("command -v {p}")).output().is_ok_and(|o| o.status.success());
    for page in &pages {
        let path = dir.join(page);
        if has("groff") {
            let o = Command::new("groff").args(["-ww", "-man", "-z"]).arg(&path).output().unwrap();
            assert!(o.status.success() && o.stderr.is_empty(), "groff on {page}: {}", String::from_utf8_lossy(&o.stderr));
        }
        if has("man") {
            let o = Command::new("man").arg("-l").arg(&path).env("MANWIDTH", "80").env("MAN_KEEP_FORMATTING", "").env("PAGER", "cat").output().unwrap();
            assert!(o.status.success() && o.stderr.is_empty(), "man -l {page}: {}", String::from_utf8_lossy(&o.stderr));
            assert!(String::from_utf8_lossy(&o.stdout).contains("drill"), "{page} renders");
        }
    }
    let start = std::fs::read_to_string(dir.join("drill-start.1")).unwrap();
    assert!(start.contains("SCENARIO"), "{start}");
    let _ = std::fs::remove_dir_all(&dir);
}
