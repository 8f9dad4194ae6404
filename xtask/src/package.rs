//! `cargo xtask package`: the Debian package (target/debian/drill_*.deb), and
//! `cargo xtask package-test`: install it, check it, run a drill through the installed
//! binaries over a socket-activated drilld, purge it, check nothing remains.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cargo, root, run_cmd};

/// Builds the release binaries, the man pages and completions, then the .deb; returns its path.
/// Builds the .deb: of the release build, or of the debug build (`release` false: what
/// the package test installs, the binaries the test suite has just built).
pub fn package(release: bool) -> Result<PathBuf> {
    let t0 = Instant::now();
    let mut build = cargo();
    build.args(["build", "-p", "drill-cli", "-p", "drill-daemon"]);
    if release {
        build.arg("--release");
    }
    run_cmd(&mut build)?;
    let rel = root().join(if release { "target/release" } else { "target/debug" });
    let out = root().join("target/package");
    let man = out.join("man");
    let comp = out.join("completions");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&comp)?;
    run_cmd(Command::new(rel.join("drill")).arg("man").arg(&man))?;
    run_cmd(Command::new(rel.join("drilld")).arg("man").arg(&man))?;
    let mut pages = 0;
    for e in std::fs::read_dir(&man)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "1") {
            run_cmd(Command::new("gzip").args(["-9nf"]).arg(&p))?;
            pages += 1;
        }
    }
    for (shell, file) in [("bash", "drill.bash"), ("zsh", "_drill"), ("fish", "drill.fish")] {
        let o = Command::new(rel.join("drill")).args(["completions", shell]).output().context("drill completions")?;
        if !o.status.success() || o.stdout.is_empty() {
            bail!("drill completions {shell} failed: {}", String::from_utf8_lossy(&o.stderr));
        }
        std::fs::write(comp.join(file), &o.stdout)?;
    }
    eprintln!("xtask package: {pages} man pages, 3 completion scripts in {}", out.display());
    if !Command::new("cargo").args(["deb", "--version"]).output().is_ok_and(|o| o.status.success()) {
        eprintln!("xtask package: installing cargo-deb");
        let mut c = Command::new("cargo");
        // Pinned: the package test packages the dev profile, which later cargo-deb releases
        // announce they will refuse.
        c.args(["install", "cargo-deb", "--version", "3.8.0", "--locked"]);
        crate::progress::spin("cargo install cargo-deb (once; a few minutes)", c)?;
    }
    let _ = std::fs::remove_dir_all(root().join("target/debian"));
    // The assets name target/release/; cargo-deb maps them to the profile's directory.
    run_cmd(cargo().args(["deb", "-p", "drill-cli", "--no-build", "--no-strip", "--profile", if release { "release" } else { "dev" }]))?;
    let deb = std::fs::read_dir(root().join("target/debian"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .context("cargo deb wrote no .deb into target/debian")?;
    let size = std::fs::metadata(&deb)?.len();
    eprintln!("xtask package: {} ({:.1} MiB) in {:.0?}", deb.display(), size as f64 / 1048576.0, t0.elapsed());
    Ok(deb)
}

fn sh(c: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", c]);
    cmd
}

fn output(c: &mut Command) -> Result<String> {
    let desc = format!("{c:?}");
    let o = c.output().with_context(|| format!("running {desc}"))?;
    if !o.status.success() {
        bail!("{desc} failed ({}): {}{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn have(prog: &str) -> bool {
    sh(&format!("command -v {prog} >/dev/null 2>&1")).status().is_ok_and(|s| s.success())
}

fn apt_install(pkgs: &[&str]) -> Result<()> {
    run_cmd(Command::new("apt-get").args(["install", "-y", "--no-install-recommends"]).args(pkgs).env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Tears the test down on every path: the activator, the drill, the package.
struct Guard {
    tmp: PathBuf,
    activator: Option<Child>,
    drill_id: Option<String>,
    group_existed: bool,
}

impl Guard {
    /// The test's own socket, state and history (never the machine's /run/drill).
    fn vars(&self) -> [(&'static str, PathBuf); 4] {
        [
            ("DRILL_SOCKET", self.tmp.join("drilld.sock")),
            ("DRILL_STATE_DIR", self.tmp.join("state")),
            ("DRILL_HISTORY", self.tmp.join("history.sqlite")),
            ("DRILLD", PathBuf::from("/nonexistent")),
        ]
    }

    fn env(&self, c: &mut Command) {
        c.envs(self.vars());
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(id) = self.drill_id.take() {
            let mut c = Command::new("/usr/bin/drill");
            c.args(["stop", &id]);
            self.env(&mut c);
            let _ = c.status();
        }
        if let Some(a) = self.activator.take() {
            stop_activator(a);
        }
        // A drilld the activator exec'd is the activator's own process (same pid): gone.
        let _ = Command::new("dpkg").args(["--purge", "drill"]).status();
        if !self.group_existed {
            let _ = Command::new("sh").args(["-c", "getent group drill >/dev/null && groupdel drill"]).status();
        }
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

pub fn package_test(release: bool) -> Result<()> {
    let t0 = Instant::now();
    if !crate::is_root() {
        bail!("package-test installs a package: run it as root");
    }
    if Command::new("dpkg-query").args(["-W", "drill"]).output().is_ok_and(|o| o.status.success()) {
        bail!("a package `drill` is already installed here: package-test would purge it; remove it first");
    }
    let deb = package(release)?;
    eprintln!("package-test: the package of the {} build", if release { "release" } else { "debug" });
    let t_build = t0.elapsed();
    let mut missing: Vec<&str> = Vec::new();
    for (prog, pkg) in [("systemd-analyze", "systemd"), ("systemd-socket-activate", "systemd"), ("man", "man-db")] {
        if !have(prog) && !missing.contains(&pkg) {
            missing.push(pkg);
        }
    }
    if !missing.is_empty() {
        apt_install(&missing)?;
    }
    let run_drill_existed = Path::new("/run/drill").exists();
    let tmp = PathBuf::from("/run/drill-pkgtest");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let group_existed = sh("getent group drill >/dev/null").status().is_ok_and(|s| s.success());
    let mut g = Guard { tmp: tmp.clone(), activator: None, drill_id: None, group_existed };

    let listed = install_and_list(&deb)?;
    check_units_and_docs()?;
    let id = socket_activated_drill(&mut g, &tmp)?;
    if let Some(a) = g.activator.take() {
        stop_activator(a);
    }
    on_demand(&tmp)?;
    purge_and_check(&listed, group_existed, id.as_deref(), &tmp)?;
    if !run_drill_existed && Path::new("/run/drill").exists() {
        bail!("/run/drill is on the machine after the test: a daemon of the test used the default state directory, not the test's own");
    }
    eprintln!("package-test: passed in {:.1?} (package {:.1?})", t0.elapsed(), t_build);
    Ok(())
}

/// Installs the package (dependencies through apt-get when some are missing) and
/// checks that every path `dpkg -L` lists exists, the expected ones among them.
fn install_and_list(deb: &Path) -> Result<Vec<String>> {
    // Install (dependencies through apt-get when some are missing).
    let t = Instant::now();
    if !Command::new("dpkg").arg("-i").arg(deb).status()?.success() {
        run_cmd(Command::new("apt-get").args(["install", "-f", "-y"]).env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    eprintln!("package-test: installed in {:.1?}", t.elapsed());
    let files = output(Command::new("dpkg").args(["-L", "drill"]))?;
    let listed: Vec<String> = files.lines().filter(|l| l.starts_with('/') && *l != "/.").map(str::to_string).collect();
    let absent: Vec<&String> = listed.iter().filter(|p| !Path::new(p).exists()).collect();
    if !absent.is_empty() {
        bail!("files dpkg -L lists are missing: {absent:?}");
    }
    for want in [
        "/usr/bin/drill",
        "/usr/bin/drilld",
        "/usr/share/drill/packs/core/pack.toml",
        "/lib/systemd/system/drilld.socket",
        "/lib/systemd/system/drilld.service",
        "/usr/share/man/man1/drill.1.gz",
        "/usr/share/man/man1/drill-start.1.gz",
        "/usr/share/man/man1/drilld.1.gz",
        "/usr/share/bash-completion/completions/drill",
        "/usr/share/zsh/vendor-completions/_drill",
        "/usr/share/fish/vendor_completions.d/drill.fish",
    ] {
        if !listed.iter().any(|l| l == want) {
            bail!("the package lacks {want}");
        }
    }
    if !Path::new("/var/lib/drill").is_dir() || !sh("getent group drill >/dev/null").status()?.success() {
        bail!("postinst did not create /var/lib/drill and the group drill");
    }
    eprintln!("package-test: {} paths listed, all present", listed.len());

    Ok(listed)
}

/// The units (systemd-analyze verify), the man pages and the bash completion.
fn check_units_and_docs() -> Result<()> {
    // The units. Without systemd as PID 1, verify warns about what it cannot reach
    // (the bus, /run/systemd); those lines are filtered by name, anything else fails.
    let o = Command::new("systemd-analyze").args(["verify", "/lib/systemd/system/drilld.socket", "/lib/systemd/system/drilld.service"]).output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let artefacts = ["Failed to connect to bus", "System has not been booted with systemd", "/run/systemd"];
    let complaints: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty() && !artefacts.iter().any(|a| l.contains(a))).collect();
    if !complaints.is_empty() {
        bail!("systemd-analyze verify complains:\n{}", complaints.join("\n"));
    }
    eprintln!("package-test: systemd-analyze verify: clean ({} line(s) of no-PID-1 artefacts filtered)", text.lines().count() - complaints.len());
    output(Command::new("man").args(["-w", "drill"]))?;
    output(Command::new("man").args(["-w", "drill-start"]))?;
    let c = output(Command::new("bash").args(["-c", "source /usr/share/bash-completion/completions/drill; complete -p drill"]))?;
    if !c.contains("drill") {
        bail!("bash completion did not register: {c}");
    }
    eprintln!("package-test: man -w drill, drill-start; bash completion: {}", c.trim());

    Ok(())
}

/// A drill through the installed binaries, drilld socket-activated on a private socket:
/// started, its status read, submitted without a fix (FAIL), stopped. Returns its id.
fn socket_activated_drill(g: &mut Guard, tmp: &Path) -> Result<Option<String>> {
    let t = Instant::now();
    let sock = tmp.join("drilld.sock");
    let mut a = Command::new("systemd-socket-activate");
    a.arg("-l").arg(&sock);
    // The activator passes its children only PATH, TERM, USER, HOME and what -E names:
    // without these the daemon would keep its state in the machine's /run/drill.
    for (k, v) in g.vars() {
        a.arg("-E").arg(format!("{k}={}", v.display()));
    }
    a.arg("/usr/bin/drilld").arg("serve");
    a.stdout(std::fs::File::create(tmp.join("drilld.log"))?).stderr(std::fs::File::create(tmp.join("drilld.err"))?);
    g.activator = Some(a.spawn().context("systemd-socket-activate")?);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        if Instant::now() > deadline {
            bail!("systemd-socket-activate did not create {}", sock.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = g.activator.as_ref().map(|c| c.id()).unwrap_or(0);
    let exe_before = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    if exe_before.ends_with("drilld") {
        bail!("drilld ran before any client connected: not socket-activated");
    }
    let drill = |args: &[&str], g: &Guard| -> Result<String> {
        let mut c = Command::new("/usr/bin/drill");
        c.args(args);
        g.env(&mut c);
        output(&mut c)
    };
    let scenario = "firewall-drop";
    let started = drill(&["start", scenario, "--json"], g)?;
    let v: serde_json::Value = serde_json::from_str(&started).context("drill start --json")?;
    let id = v["drill"]["id"].as_str().map(str::to_string);
    if id.is_none() {
        bail!("drill start --json gave no drill.id: {started}");
    }
    g.drill_id = id.clone();
    let exe_after = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    if !exe_after.ends_with("drilld") {
        bail!("the activator's process is {} after start, not drilld: the drill was not served by the activated daemon", exe_after.display());
    }
    if !tmp.join("state").is_dir() {
        bail!("the socket-activated drilld did not keep its state in {}: the test's environment did not reach it", tmp.join("state").display());
    }
    drill(&["status", id.as_deref().unwrap_or_default()], g)?;
    // Without a fix the verdict is FAIL (exit 1): a pass here would be a drill passed the wrong way.
    let mut submit = Command::new("/usr/bin/drill");
    submit.args(["submit", id.as_deref().unwrap_or_default()]);
    g.env(&mut submit);
    let o = submit.output().context("drill submit")?;
    let verdict = String::from_utf8_lossy(&o.stdout).into_owned();
    if o.status.code() != Some(1) || !verdict.contains("FAIL") {
        bail!("drill submit without a fix: expected FAIL and exit 1, got {}: {verdict}{}", o.status, String::from_utf8_lossy(&o.stderr));
    }
    eprintln!("package-test: submit without a fix: {}", verdict.lines().next().unwrap_or(""));
    drill(&["stop", id.as_deref().unwrap_or_default()], g)?;
    g.drill_id = None;
    eprintln!("package-test: {scenario} start/status/submit/stop through the installed drill on a socket-activated drilld in {:.1?}", t.elapsed());
    Ok(id)
}

/// Purges the package and checks nothing of it remains: files, state, the group it
/// made, the drill's namespaces, processes.
fn purge_and_check(listed: &[String], group_existed: bool, id: Option<&str>, tmp: &Path) -> Result<()> {
    run_cmd(Command::new("dpkg").args(["--purge", "drill"]))?;
    let left: Vec<&String> = listed.iter().filter(|p| !p.ends_with('/') && Path::new(p).is_file()).collect();
    if !left.is_empty() {
        bail!("files left after purge: {left:?}");
    }
    if Path::new("/var/lib/drill").exists() {
        bail!("/var/lib/drill left after purge");
    }
    if !group_existed && sh("getent group drill >/dev/null").status()?.success() {
        bail!("the group drill the package created is left after purge");
    }
    let ns = output(Command::new("ip").args(["netns", "list"])).unwrap_or_default();
    if id.is_some_and(|i| ns.contains(i)) {
        bail!("network namespaces of drill {id:?} are left: {ns}");
    }
    let procs = processes_of(tmp);
    if !procs.is_empty() {
        bail!("processes of the test are left: {procs:?}");
    }
    Ok(())
}

/// Where systemd does not run: the installed `drill start` starts the installed drilld
/// on demand (found beside /usr/bin/drill), which exits by itself once its drill stops.
fn on_demand(tmp: &Path) -> Result<()> {
    let t = Instant::now();
    let sock = tmp.join("ondemand.sock");
    let drill = |args: &[&str]| -> Result<String> {
        let mut c = Command::new("/usr/bin/drill");
        c.args(args).env("DRILL_SOCKET", &sock).env("DRILL_STATE_DIR", tmp.join("state-ondemand")).env("DRILL_HISTORY", tmp.join("history.sqlite")).env_remove("DRILLD");
        output(&mut c)
    };
    let v: serde_json::Value = serde_json::from_str(&drill(&["start", "bind-localhost", "--json"])?).context("drill start --json")?;
    let id = v["drill"]["id"].as_str().context("drill start --json gave no drill.id")?.to_string();
    let daemons = processes_of(&sock);
    let exe = daemons.first().and_then(|p| std::fs::read_link(format!("/proc/{p}/exe")).ok()).unwrap_or_default();
    let stopped = drill(&["stop", &id]);
    if exe != Path::new("/usr/bin/drilld") {
        bail!("on-demand start: the daemon serving {} is {:?} ({daemons:?}), not /usr/bin/drilld", sock.display(), exe);
    }
    stopped?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !processes_of(&sock).is_empty() {
        if Instant::now() > deadline {
            bail!("the on-demand drilld did not exit once its drill stopped: {:?}", processes_of(&sock));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("package-test: bind-localhost through an on-demand /usr/bin/drilld (no systemd), which exited when idle, in {:.1?}", t.elapsed());
    Ok(())
}

/// SIGTERM to the activator (drilld once it exec'd), SIGKILL after 20 s.
fn stop_activator(mut a: Child) {
    let _ = Command::new("kill").args(["-TERM", &a.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if a.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = a.kill();
    let _ = a.wait();
}

/// Pids (other than this one) whose command line or environment names `dir`.
fn processes_of(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.chars().all(|c| c.is_ascii_digit()) || pid == me {
            continue;
        }
        let hit = ["cmdline", "environ"].iter().any(|f| std::fs::read(e.path().join(f)).is_ok_and(|b| String::from_utf8_lossy(&b).contains(&needle)));
        if hit {
            out.push(pid);
        }
    }
    out
}
