//! Packs from the daemon's side (issue 11): the built-in pack is files no binary holds
//! and no host can read, scenarios are found as `ID` or `PACK/ID` in the built-in and
//! the installed packs, a drill belongs to its socket peer (SO_PEERCRED) and only root
//! may start an uninstalled file, and `[[files]]` land in the host's own root.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The first `n` characters of `s` (on a char boundary).
fn head(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// Texts a learner must never find in a binary: each built-in scenario's solution
/// summary, first hint and first solution command (their first 40 characters).
fn secrets() -> Vec<String> {
    let mut v = Vec::new();
    for s in drill_core::builtin::scenarios() {
        v.push(head(s.solution.summary.trim(), 40).to_string());
        if let Some(h) = s.hints.first() {
            v.push(head(h, 40).to_string());
        }
        if let Some(st) = s.solution.steps.iter().find(|st| st.run.len() >= 20) {
            v.push(head(&st.run, 40).to_string());
        }
    }
    assert!(v.len() >= 22, "the built-in pack loaded: {v:?}");
    v
}

#[test]
fn no_binary_holds_a_scenario_s_text() {
    let secrets = secrets();
    let patterns = std::env::temp_dir().join(format!("drill-secrets-{}", std::process::id()));
    std::fs::write(&patterns, secrets.join("\n")).unwrap();
    for bin in [drilld_bin(), drill_bin()] {
        // grep: the binaries are hundreds of MB in a debug build.
        let out = Command::new("grep").args(["-a", "-o", "-F", "-f"]).arg(&patterns).arg(&bin).output().unwrap();
        let found = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.code() == Some(1) && found.is_empty(), "{} holds scenario text: {found}", bin.display());
    }
    // The search itself works: a string the daemon does hold is found.
    std::fs::write(&patterns, "host-init").unwrap();
    assert!(Command::new("grep").args(["-a", "-q", "-F", "-f"]).arg(&patterns).arg(drilld_bin()).status().unwrap().success());
    std::fs::remove_file(&patterns).unwrap();
}

/// A copy of the built-in pack under `dir`, renamed `name` (only firewall-drop when
/// `name` is not core).
fn copy_pack(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let src = drill_core::builtin::dir().unwrap();
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        let f = e.file_name().to_string_lossy().to_string();
        if !f.ends_with(".toml") || (name != "core" && f != "pack.toml" && f != "firewall-drop.toml") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        let text = if f == "pack.toml" { text.replace("name = \"core\"", &format!("name = \"{name}\"")) } else { text };
        std::fs::write(dir.join(&f), text).unwrap();
    }
}

struct RemoveOnDrop(Vec<PathBuf>);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

fn run_in(d: &TestDaemon, id: &str, host: &str, cmd: &str) -> (i32, String) {
    let out = d.drill(&["exec", "--drill", id, host, "--", "sh", "-c", cmd]);
    (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn scenarios_are_found_by_pack_and_no_host_can_read_a_pack() {
    if !privileged_or_skip("scenarios_are_found_by_pack_and_no_host_can_read_a_pack") {
        return;
    }
    // The built-in pack where a package would put it (under /usr, which hosts see
    // through an overlay) and an installed pack under /opt: both must stay unreadable.
    let pid = std::process::id();
    let builtin = PathBuf::from(format!("/usr/local/share/drill-test-{pid}/packs/core"));
    let installed = PathBuf::from(format!("/opt/drill-test-packs-{pid}"));
    let _cleanup = RemoveOnDrop(vec![builtin.parent().unwrap().parent().unwrap().to_path_buf(), installed.clone()]);
    copy_pack(&builtin, "core");
    copy_pack(&installed.join("net101"), "net101");
    let d = TestDaemon::start_with_env("packs", &[("DRILL_BUILTIN_PACK", builtin.to_str().unwrap()), ("DRILL_PACKS_DIR", installed.to_str().unwrap())]);

    let list = d.drill_json(&["list", "--json"], 0);
    let names: Vec<(String, String)> = list.as_array().unwrap().iter().map(|s| (s["pack"].as_str().unwrap().to_string(), s["id"].as_str().unwrap().to_string())).collect();
    assert!(names.contains(&("net101".into(), "firewall-drop".into())) && names.contains(&("core".into(), "missing-route".into())), "{names:?}");
    let text = String::from_utf8_lossy(&d.drill(&["list"]).stdout).to_string();
    assert!(text.contains("net101/firewall-drop") && text.contains("missing-route"), "{text}");

    // In two packs: the bare id is ambiguous and says which to pick.
    let out = d.drill(&["start", "firewall-drop"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(2) && err.contains("core/firewall-drop") && err.contains("net101/firewall-drop"), "{err}");
    let out = d.drill(&["start", "nope-no-such"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing-route"), "lists the known ids");

    let v = d.drill_json(&["start", "net101/firewall-drop", "--json"], 0);
    assert_eq!(v["drill"]["pack"], "net101");
    let id = v["drill"]["id"].as_str().unwrap().to_string();
    let v2 = d.drill_json(&["start", "core/firewall-drop", "--json"], 0);
    assert_eq!(v2["drill"]["pack"], "core");
    let id2 = v2["drill"]["id"].as_str().unwrap().to_string();

    let needle = head(drill_core::builtin::scenarios().iter().find(|s| s.id == "firewall-drop").unwrap().solution.summary.trim(), 40).to_string();
    let machine = std::fs::read_to_string(builtin.join("firewall-drop.toml")).unwrap();
    assert!(machine.contains(&needle), "the machine has the pack");
    for cmd in [
        format!("cat {}/firewall-drop.toml", builtin.display()),
        format!("ls {}", builtin.display()),
        format!("ls {}", installed.display()),
        format!("cat {}/net101/firewall-drop.toml", installed.display()),
        "ls /var/lib/drill".to_string(),
        format!(
            "grep -rlF '{needle}' /usr/local /usr/share/drill /opt /etc /var /run /root /tmp /srv 2>/dev/null | head -3; test -z \"$(grep -rlF '{needle}' /usr/local /usr/share/drill /opt /etc /var /run /root /tmp /srv 2>/dev/null)\""
        ),
    ] {
        let (code, out) = run_in(&d, &id, "api", &cmd);
        let ok = if cmd.starts_with("grep") { code == 0 } else { code != 0 };
        assert!(ok, "inside a host `{cmd}` must not reach the pack: exit {code}: {out}");
    }
    // PID 1 of a host is drilld: it holds no solution text (control: it does hold its own strings).
    let (code, out) = run_in(&d, &id, "api", &format!("strings /proc/1/exe | grep -cF '{needle}'; strings /proc/1/exe | grep -c host-init"));
    let counts: Vec<&str> = out.split_whitespace().collect();
    assert!(counts.len() == 2 && counts[0] == "0" && counts[1] != "0", "strings /proc/1/exe (exit {code}): {out}");
    d.drill(&["stop", &id]);
    d.drill(&["stop", &id2]);
}

/// Whether the host init `pid` may still gain capability `cap` (its bounding set).
fn init_has_cap(pid: i64, cap: u32) -> bool {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let bnd = st.lines().find_map(|l| l.strip_prefix("CapBnd:")).map(|v| u64::from_str_radix(v.trim(), 16).unwrap()).unwrap();
    bnd & (1 << cap) != 0
}

#[test]
fn a_drill_belongs_to_its_socket_peer() {
    if !privileged_or_skip("a_drill_belongs_to_its_socket_peer") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let d = TestDaemon::start("owner");
    // Let another uid connect (the `drill` group's job on a real machine).
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let nobody = 65534;

    let (_, text) = drill_core::builtin::files().into_iter().find(|(f, _)| f == "missing-route.toml").unwrap();
    let source = serde_json::json!({ "source": { "file": "missing-route.toml", "text": text } }).to_string();
    let (status, body) = curl_as(nobody, &d.socket, "POST", "/v1/drills", &source);
    assert_eq!((status, body["code"].as_str()), (403, Some("source_forbidden")), "{body}");

    // Root (this process, even if it claims a SUDO_UID) owns its drill; its hosts keep CAP_BPF.
    let out = Command::new(drill_bin()).arg("--socket").arg(&d.socket).args(["start", "missing-route", "--json"]).env("SUDO_UID", "4242").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["drill"]["owner_uid"].as_u64(), v["drill"]["sudo_uid"].as_u64()), (Some(0), Some(4242)), "{}", v["drill"]);
    let root_id = v["drill"]["id"].as_str().unwrap().to_string();
    assert!(init_has_cap(v["drill"]["hosts"][0]["pid"].as_i64().unwrap(), 39), "a root owner's host keeps CAP_BPF");

    // A non-root peer may start an installed scenario by name: it owns that drill and
    // its hosts hold no capability that reads the whole machine's kernel.
    let (status, body) = curl_as(nobody, &d.socket, "POST", "/v1/drills", r#"{"scenario":"missing-route"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["drill"]["owner_uid"].as_u64(), Some(u64::from(nobody)), "{}", body["drill"]);
    let id = body["drill"]["id"].as_str().unwrap().to_string();
    for h in body["drill"]["hosts"].as_array().unwrap() {
        let pid = h["pid"].as_i64().unwrap();
        for cap in [34, 38, 39] {
            assert!(!init_has_cap(pid, cap), "host {} of a uid-{nobody} drill holds capability {cap}", h["name"]);
        }
    }
    d.drill(&["stop", &id]);
    d.drill(&["stop", &root_id]);
}

#[test]
fn pack_files_land_in_the_host_only() {
    if !privileged_or_skip("pack_files_land_in_the_host_only") {
        return;
    }
    let d = TestDaemon::start("files");
    let pid = std::process::id();
    let pack = d.dir.join("pack");
    std::fs::create_dir_all(pack.join("files")).unwrap();
    std::fs::write(pack.join("files/issue"), "Welcome to the drill host\n").unwrap();
    std::fs::write(pack.join("files/app.conf"), "secret_key = 42\n").unwrap();
    let fresh = format!("/opt/drill-files-test-{pid}/app.conf");
    let files =
        format!("\n[[files]]\nhost = \"server\"\npath = \"/etc/issue\"\nsource = \"files/issue\"\n\n[[files]]\nhost = \"server\"\npath = \"{fresh}\"\nsource = \"files/app.conf\"\nmode = 0o600\n");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/two-host.toml")).unwrap().replace("[verify]", &format!("{files}\n[verify]"));
    let file = pack.join("with-files.toml");
    std::fs::write(&file, text).unwrap();
    let machine_issue = std::fs::read("/etc/issue").ok();

    // The dry run shows them, with their sizes.
    let out = d.drill(&["start", file.to_str().unwrap(), "--dry-run"]);
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("file /etc/issue (mode 0644, 26 bytes) from the pack's files/issue") && plan.contains(&format!("file {fresh} (mode 0600, 16 bytes)")), "{plan}");

    let v = d.drill_json(&["start", file.to_str().unwrap(), "--json"], 0);
    assert_eq!(v["plan"]["files"][1]["size"].as_u64(), Some(16), "{}", v["plan"]["files"]);
    let id = v["drill"]["id"].as_str().unwrap().to_string();
    let (code, out) = run_in(&d, &id, "server", &format!("cat /etc/issue {fresh} && stat -c %a {fresh} /etc/issue"));
    assert_eq!((code, out.as_str()), (0, "Welcome to the drill host\nsecret_key = 42\n600\n644\n"));
    // Only that host has them; the machine's paths are untouched.
    let (_, other) = run_in(&d, &id, "client", &format!("cat /etc/issue; test -e {fresh} && echo present"));
    assert!(!other.contains("Welcome to the drill host") && !other.contains("present"), "{other}");
    assert_eq!(std::fs::read("/etc/issue").ok(), machine_issue, "the machine's /etc/issue is unchanged");
    assert!(!Path::new(&fresh).exists() && !Path::new(&fresh).parent().unwrap().exists(), "{fresh} must not exist on the machine");
    d.drill(&["stop", &id]);

    // A file outside the pack is refused before anything starts.
    std::fs::write(&file, std::fs::read_to_string(&file).unwrap().replace("files/app.conf", "files/missing.conf")).unwrap();
    let out = d.drill(&["start", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(netns_of(&id).is_empty());
}
