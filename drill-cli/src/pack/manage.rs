//! `drill pack new|list|install|remove`. What a pack is, where packs live and which
//! files an install copies are drill-core's (`pack::skeleton`, `pack::installed`,
//! `pack::pack_files`); this writes and copies.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use drill_core::pack::{self, BUILTIN_NAME, MANIFEST};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `drill pack new DIR`: a skeleton pack that validates and self-tests as generated.
pub fn new(dir: &Path) -> Result<u8> {
    match std::fs::read_dir(dir).map(|mut e| e.next().is_some()) {
        Ok(true) => bail!("{} exists and is not empty; give a new directory (or an empty one)", dir.display()),
        Ok(false) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?,
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    }
    let name = std::fs::canonicalize(dir).ok().and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned())).unwrap_or_default();
    for (rel, text) in pack::skeleton(&name) {
        std::fs::write(dir.join(rel), text).with_context(|| format!("writing {}", dir.join(rel).display()))?;
    }
    let d = dir.display();
    println!("wrote a pack in {d}: {MANIFEST} and {}", pack::SCENARIO_FILE);
    println!("next: edit {d}/{}, then `drill pack validate {d}` and `sudo drill pack test {d}`", pack::SCENARIO_FILE);
    Ok(0)
}

/// `drill pack list [--json]`: the built-in pack and the installed ones.
pub fn list(json: bool) -> Result<u8> {
    let packs = pack::installed().with_context(|| format!("reading {}", pack::install_dir().display()))?;
    if json {
        super::validate::print_out(&serde_json::to_string_pretty(&packs)?);
        return Ok(0);
    }
    if packs.is_empty() {
        println!("no packs (the built-in pack was not found; set DRILL_BUILTIN_PACK)");
    }
    let width = packs.iter().map(|p| p.name.len()).max().unwrap_or(4).max(4);
    println!("{:width$}  {:10}  {:>9}  PATH", "NAME", "VERSION", "SCENARIOS");
    for p in &packs {
        let version = p.version.clone().unwrap_or_else(|| "-".into());
        let mark = if p.builtin { " (built-in)" } else { "" };
        println!("{:width$}  {version:10}  {:>9}  {}{mark}", p.name, p.scenarios, p.path.display());
        if let Some(e) = &p.error {
            for line in e.lines() {
                println!("    {line}");
            }
        }
    }
    Ok(0)
}

/// `drill pack install DIR` (root): validates, checks the engine requirement, copies to
/// `<install dir>/<name>` through a temporary directory beside it and a rename.
pub fn install(dir: &Path) -> Result<u8> {
    if !is_root() {
        bail!("drill pack install needs root (packs are trusted code: their commands run as root in drill hosts); run it with sudo");
    }
    let report = match pack::validate(dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("drill: error: {e}");
            return Ok(2);
        }
    };
    if !report.valid {
        for p in &report.problems {
            eprintln!("{p}");
        }
        bail!("{} does not validate ({} problem(s)); fix them first (`drill pack validate {}`)", dir.display(), report.problems.len(), dir.display());
    }
    let loaded = pack::load(dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let m = &loaded.manifest;
    if m.name == BUILTIN_NAME {
        bail!("the name `{BUILTIN_NAME}` belongs to the built-in pack; rename the pack in its pack.toml");
    }
    if !m.engine_fits() {
        bail!("pack `{}` needs drill {}, and this is drill {}", m.name, m.engine, pack::ENGINE_VERSION);
    }
    let root = pack::install_dir();
    if !root.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o755).create(&root).with_context(|| format!("creating {}", root.display()))?;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))?;
    }
    let target = root.join(&m.name);
    if let Ok(old) = pack::load(&target)
        && old.manifest.version == m.version
    {
        println!("pack `{}` {} is installed already; replacing it with the same version", m.name, m.version);
    }
    let files = pack::pack_files(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let tmp = root.join(format!(".{}.tmp-{}", m.name, std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    copy_files(dir, &tmp, &files).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&tmp);
    })?;
    // What is installed is what was copied: validate the copy too (the source could have
    // changed since it was validated).
    match pack::validate(&tmp) {
        Ok(r) if r.valid && r.pack.as_deref() == Some(m.name.as_str()) => {}
        _ => {
            let _ = std::fs::remove_dir_all(&tmp);
            bail!("{} changed while it was copied; install again", dir.display());
        }
    }
    swap_in(&tmp, &target)?;
    println!("installed pack `{}` {} ({} scenario(s)) in {}; play one with `sudo drill start {}/ID`", m.name, m.version, loaded.scenarios.len(), target.display(), m.name);
    Ok(0)
}

/// Copies `files` (relative paths) from `src` to the new directory `dst`: directories
/// 0755, files 0644, owned by root (the caller).
fn copy_files(src: &Path, dst: &Path, files: &[String]) -> Result<()> {
    let mkdir = |d: &Path| std::fs::DirBuilder::new().recursive(true).mode(0o755).create(d).with_context(|| format!("creating {}", d.display()));
    mkdir(dst)?;
    for rel in files {
        let to = dst.join(rel);
        if let Some(parent) = to.parent() {
            mkdir(parent)?;
            // 0755 whatever the umask: every user may read an installed pack.
            for d in parent.ancestors().take_while(|d| d.starts_with(dst)) {
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
            }
        }
        let bytes = pack::read_inside_pack(src, rel).map_err(|e| anyhow::anyhow!("{}: {e}", src.display()))?;
        std::fs::write(&to, bytes).with_context(|| format!("writing {}", to.display()))?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644))?;
    }
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Puts `tmp` in place of `target`: a rename, with the old copy moved aside first and
/// removed after (restored when the rename fails).
fn swap_in(tmp: &Path, target: &Path) -> Result<()> {
    let old: Option<PathBuf> =
        target.exists().then(|| target.with_file_name(format!(".{}.old-{}", target.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()), std::process::id())));
    if let Some(old) = &old {
        std::fs::rename(target, old).with_context(|| format!("moving {} aside", target.display()))?;
    }
    if let Err(e) = std::fs::rename(tmp, target) {
        if let Some(old) = &old {
            let _ = std::fs::rename(old, target);
        }
        let _ = std::fs::remove_dir_all(tmp);
        return Err(e).with_context(|| format!("renaming into {}", target.display()));
    }
    if let Some(old) = &old {
        std::fs::remove_dir_all(old).with_context(|| format!("removing the previous copy {}", old.display()))?;
    }
    Ok(())
}

/// `drill pack remove NAME` (root): removes `<install dir>/NAME` when its pack.toml
/// names NAME.
pub fn remove(name: &str) -> Result<u8> {
    if !is_root() {
        bail!("drill pack remove needs root; run it with sudo");
    }
    if name == BUILTIN_NAME {
        bail!("`{BUILTIN_NAME}` is the built-in pack; it cannot be removed");
    }
    if !drill_core::model::is_name(name) {
        bail!("`{name}` is not a pack name (lowercase letters, digits and '-'); `drill pack list` shows the installed packs");
    }
    let dir = pack::install_dir().join(name);
    let meta = std::fs::symlink_metadata(&dir).map_err(|_| anyhow::anyhow!("no pack `{name}` is installed (no {}); `drill pack list` shows the installed packs", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory; not removing it", dir.display());
    }
    let text = pack::read_inside_pack(&dir, MANIFEST).map_err(|e| anyhow::anyhow!("{} holds no readable pack.toml ({e}); not removing it", dir.display()))?;
    let text = String::from_utf8(text).unwrap_or_default();
    match pack::parse_manifest(MANIFEST, &text) {
        Ok(m) if m.name == name => {}
        Ok(m) => bail!("{} holds pack `{}`, not `{name}`; not removing it", dir.display(), m.name),
        Err(_) => bail!("{}/pack.toml does not parse; not removing it (remove it by hand if you mean to)", dir.display()),
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    println!("removed pack `{name}` ({})", dir.display());
    Ok(0)
}
