//! A host's root file system, built by its init (in its own mount namespace) the way
//! bubblewrap and runc build a container's: from an allowlist, never the machine's
//! whole `/`. docs/hosts.md describes the result.
//!
//! - a size-capped tmpfs holds the new root (every top-level directory of the machine
//!   re-created empty, the `/bin`, `/sbin`, `/lib*` links as on the machine) and, beside
//!   it (outside what the host can reach), the upper layers of its overlays;
//! - `/usr`, `/etc`, `/opt`, `/var/lib/dpkg` (and `/bin` etc. where they are real
//!   directories) are overlays: the machine's directory the read-only lower layer, the
//!   upper layer on that tmpfs. `/etc`'s upper starts as a copy of the one the daemon
//!   prepared in the host's state directory (hosts, resolv.conf, service configs, certs);
//! - the machine's secrets in `/etc` (anything not world-readable: shadow, gshadow, ssh
//!   host keys, sudoers, ...) are whiteouts in that upper layer: absent, not merely covered;
//! - `/var/log` is the host's own, on its disk (the daemon reads service logs through
//!   `/proc/INIT/root/var/log`);
//! - `/proc` with `/proc/sys` read-only but `/proc/sys/net`, kcore & co masked, and
//!   meminfo, cpuinfo, stat, loadavg... from the daemon's lxcfs (procview.rs);
//!   `/sys` read-only; a minimal `/dev`;
//! - then `pivot_root` into it and detach the machine's root.

use std::ffi::CString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::HostSpec;

/// Default size of a host's disk (the tmpfs holding its root and upper layers).
pub const DEFAULT_DISK_BYTES: u64 = 64 << 20;

/// Machine directories a host sees through an overlay (lower layer read-only).
const OVERLAID: [&str; 9] = ["usr", "etc", "opt", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];
/// Package manager state, overlaid too (so `dpkg -i` works and vanishes with the drill).
const OVERLAID_VAR: [&str; 1] = ["var/lib/dpkg"];
/// Devices bound from the machine into a host's /dev.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];
/// /proc files masked with /dev/null and directories masked with an empty read-only tmpfs (as runc).
const PROC_MASKED_FILES: [&str; 6] = ["kcore", "keys", "timer_list", "sched_debug", "latency_stats", "sysrq-trigger"];
const PROC_MASKED_DIRS: [&str; 3] = ["acpi", "scsi", "asound"];
/// /proc paths made read-only.
const PROC_READONLY: [&str; 4] = ["bus", "fs", "irq", "sysrq-trigger"];

/// Where the staging tmpfs is mounted (in the host's own mount namespace only).
pub const STAGE: &str = "/tmp";

fn none() -> Option<&'static str> {
    None
}

fn bind(src: &Path, dst: &Path, flags: MsFlags) -> Result<()> {
    mount(Some(src), dst, none(), MsFlags::MS_BIND | flags, none()).with_context(|| format!("bind-mounting {} on {}", src.display(), dst.display()))
}

fn remount_ro(dst: &Path, extra: MsFlags) -> Result<()> {
    mount(none(), dst, none(), MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | extra, none()).with_context(|| format!("remounting {} read-only", dst.display()))
}

fn mkdir_mode(p: &Path, mode: u32) -> Result<()> {
    std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {}", p.display()))
}

/// The root's top level: links as on the machine, every directory the host's own and empty.
fn top_level(root: &Path) -> Result<()> {
    for e in std::fs::read_dir("/").context("reading /")?.flatten() {
        let name = e.file_name();
        let dst = root.join(&name);
        let Ok(md) = std::fs::symlink_metadata(e.path()) else { continue };
        if md.file_type().is_symlink() {
            let target = std::fs::read_link(e.path())?;
            std::os::unix::fs::symlink(&target, &dst).with_context(|| format!("linking {}", dst.display()))?;
        } else if md.is_dir() {
            mkdir_mode(&dst, md.mode() & 0o7777)?;
        }
    }
    for d in ["proc", "sys", "dev", "run", "tmp", "var", "root", "etc", "usr"] {
        if !root.join(d).exists() {
            mkdir_mode(&root.join(d), if d == "tmp" { 0o1777 } else { 0o755 })?;
        }
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;

    Ok(())
}

/// `/etc` (its upper layer the daemon's prepared one, secrets whited out) and the other
/// overlays over the machine's directories, their upper layers on the host's disk.
fn overlays(spec: &HostSpec, root: &Path, layers: &Path) -> Result<()> {
    // /etc's upper layer starts as the daemon's prepared one, with the machine's secrets whited out.
    let etc_upper = layers.join("etc/upper");
    mkdir_mode(&etc_upper, 0o755)?;
    copy_tree(&spec.etc_upper(), &etc_upper).with_context(|| format!("copying {} into the host", spec.etc_upper().display()))?;
    mask_secrets(Path::new("/etc"), &etc_upper)?;

    for d in OVERLAID.iter().copied().chain(OVERLAID_VAR) {
        let lower = Path::new("/").join(d);
        let Ok(md) = std::fs::symlink_metadata(&lower) else { continue };
        if !md.is_dir() {
            continue; // a link (merged /usr): re-created above
        }
        let key = d.replace('/', "-");
        let (upper, work) = (layers.join(&key).join("upper"), layers.join(&key).join("work"));
        mkdir_mode(&upper, md.mode() & 0o7777)?;
        mkdir_mode(&work, 0o700)?;
        hide(&lower, &upper, &spec.hidden)?;
        let dst = root.join(d);
        mkdir_mode(&dst, md.mode() & 0o7777)?;
        let opts = format!("lowerdir={},upperdir={},workdir={}", lower.display(), upper.display(), work.display());
        mount(Some("overlay"), &dst, Some("overlay"), MsFlags::empty(), Some(opts.as_str())).with_context(|| format!("mounting the overlay on /{d} (is the overlay filesystem available?)"))?;
    }
    Ok(())
}

/// `/proc` (the host's view from lxcfs where it runs, its own nf_conntrack_max where the
/// drill models one), a read-only `/sys`, a minimal `/dev`, the runc masks.
fn kernel_views(spec: &HostSpec, root: &Path) -> Result<()> {
    mount_proc(&root.join("proc"))?;
    if let Some(view) = &spec.proc_view {
        bind_proc_view(view, root)?;
    }
    // The network namespace's own sysfs, read-only.
    mount(Some("sysfs"), &root.join("sys"), Some("sysfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY, none()).context("mounting /sys read-only")?;
    if root.join("sys/firmware").is_dir() {
        mount(Some("tmpfs"), &root.join("sys/firmware"), Some("tmpfs"), MsFlags::MS_RDONLY, Some("size=0")).context("masking /sys/firmware")?;
    }
    if let Some(view) = &spec.proc_view {
        bind_sys_view(view, root)?;
    }
    if let Some(f) = &spec.conntrack_max {
        let dst = root.join("proc/sys/net/netfilter/nf_conntrack_max");
        if dst.exists() {
            bind(f, &dst, MsFlags::empty()).context("showing the host's own nf_conntrack_max")?;
        }
    }
    mount_dev(&root.join("dev"), spec.kmsg.as_deref())?;
    mask_proc(&root.join("proc"), &root.join("dev/null"))?;
    Ok(())
}

/// Builds the host's root and pivots into it. Runs in the init, as root with every
/// capability, before the capability drop.
pub fn build(spec: &HostSpec) -> Result<()> {
    mount(none(), "/", none(), MsFlags::MS_REC | MsFlags::MS_PRIVATE, none()).context("making / private")?;
    let stage = Path::new(STAGE);
    let opts = format!("size={},mode=0755", spec.isolation.disk_bytes);
    mount(Some("tmpfs"), stage, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(opts.as_str())).context("mounting the host's disk (tmpfs)")?;
    let root = stage.join("root");
    let layers = stage.join("layers");
    mkdir_mode(&root, 0o755)?;
    mkdir_mode(&layers, 0o700)?;
    bind(&root, &root, MsFlags::empty())?;

    top_level(&root)?;
    overlays(spec, &root, &layers)?;

    // /var: the host's own, with the usual links. Its /var/log lives on the host's
    // disk (the size-capped tmpfs) like every other write of the host: a learner
    // filling it fills only the host.
    mkdir_mode(&root.join("var/log"), 0o755)?;
    mkdir_mode(&root.join("var/tmp"), 0o1777)?;
    for (l, t) in [("var/run", "/run"), ("var/lock", "/run/lock")] {
        let _ = std::os::unix::fs::symlink(t, root.join(l));
    }

    // The pack's files for this host: read now, written once inside the new root (so
    // a symlink on their way resolves in the host, never on the machine).
    let mut files = Vec::new();
    read_staged(&spec.files_dir(), Path::new("/"), &mut files).context("reading the scenario's files")?;

    kernel_views(spec, &root)?;

    // Into the new root; the machine's root is detached.
    std::env::set_current_dir(&root)?;
    nix::unistd::pivot_root(".", ".").context("pivot_root into the host's root")?;
    umount2(".", MntFlags::MNT_DETACH).context("detaching the machine's root")?;
    std::env::set_current_dir("/")?;
    place_files(files)
}

fn mount_proc(proc_: &Path) -> Result<()> {
    mount(Some("proc"), proc_, Some("proc"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, none()).context("mounting /proc")?;
    // /proc/sys read-only but /proc/sys/net (the host's network namespace's own): bind
    // net on itself first, then rbind /proc/sys over itself (carrying the net bind) and
    // make only that top mount read-only.
    let sys = proc_.join("sys");
    let net = sys.join("net");
    bind(&net, &net, MsFlags::empty())?;
    bind(&sys, &sys, MsFlags::MS_REC)?;
    remount_ro(&sys, MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC)?;
    Ok(())
}

/// Binds lxcfs's files over the host's /proc ones (host/procview.rs). A file lxcfs
/// does not serve is left as it is.
fn bind_proc_view(view: &Path, root: &Path) -> Result<()> {
    for f in super::procview::PROC_FILES {
        let (src, dst) = (view.join("proc").join(f), root.join("proc").join(f));
        if src.is_file() && dst.exists() {
            bind(&src, &dst, MsFlags::empty()).with_context(|| format!("showing the host's own /proc/{f} (lxcfs at {})", view.display()))?;
        }
    }
    Ok(())
}

fn bind_sys_view(view: &Path, root: &Path) -> Result<()> {
    for f in super::procview::SYS_FILES {
        let (src, dst) = (view.join("sys").join(f), root.join("sys").join(f));
        if src.is_file() && dst.exists() {
            bind(&src, &dst, MsFlags::empty()).with_context(|| format!("showing the host's own /sys/{f} (lxcfs at {})", view.display()))?;
        }
    }
    Ok(())
}

fn mask_proc(proc_: &Path, null: &Path) -> Result<()> {
    for f in PROC_READONLY {
        let p = proc_.join(f);
        if p.exists() {
            bind(&p, &p, MsFlags::MS_REC)?;
            remount_ro(&p, MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC)?;
        }
    }
    for f in PROC_MASKED_FILES {
        let p = proc_.join(f);
        if p.exists() {
            bind(null, &p, MsFlags::empty())?;
        }
    }
    for d in PROC_MASKED_DIRS {
        let p = proc_.join(d);
        if p.is_dir() {
            mount(Some("tmpfs"), &p, Some("tmpfs"), MsFlags::MS_RDONLY, Some("size=0")).with_context(|| format!("masking {}", p.display()))?;
        }
    }
    Ok(())
}

/// A minimal /dev: a few character devices bound from the machine, its own ptys, shm,
/// and the host's own kernel log as `/dev/kmsg` (`kmsg`; host/kmsg.rs), or an empty
/// one: with no `/dev/kmsg`, `dmesg` would fall back to syslog(2), the machine's log.
fn mount_dev(dev: &Path, kmsg: Option<&Path>) -> Result<()> {
    mount(Some("tmpfs"), dev, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, Some("size=64k,mode=0755")).context("mounting /dev")?;
    for d in DEVICES {
        let src = Path::new("/dev").join(d);
        let dst = dev.join(d);
        std::fs::File::create(&dst).with_context(|| format!("creating {}", dst.display()))?;
        bind(&src, &dst, MsFlags::empty())?;
    }
    let log = dev.join("kmsg");
    std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    match kmsg {
        Some(src) => bind(src, &log, MsFlags::empty()).context("showing the host's own kernel log on /dev/kmsg")?,
        None => bind(Path::new("/dev/null"), &log, MsFlags::empty())?,
    }
    let pts = dev.join("pts");
    mkdir_mode(&pts, 0o755)?;
    mount(Some("devpts"), &pts, Some("devpts"), MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, Some("newinstance,ptmxmode=0666,mode=0620")).context("mounting /dev/pts")?;
    std::os::unix::fs::symlink("pts/ptmx", dev.join("ptmx"))?;
    let shm = dev.join("shm");
    mkdir_mode(&shm, 0o1777)?;
    mount(Some("shm"), &shm, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("size=16m,mode=1777")).context("mounting /dev/shm")?;
    for (l, t) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
        std::os::unix::fs::symlink(t, dev.join(l))?;
    }
    Ok(())
}

/// Copies a directory tree (files, directories, links; modes kept).
fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(src) else { return Ok(()) };
    for e in rd.flatten() {
        let (s, d) = (e.path(), dst.join(e.file_name()));
        let md = std::fs::symlink_metadata(&s)?;
        if md.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&s)?, &d)?;
        } else if md.is_dir() {
            mkdir_mode(&d, md.mode() & 0o7777)?;
            copy_tree(&s, &d)?;
        } else if md.is_file() {
            std::fs::copy(&s, &d).with_context(|| format!("copying {}", s.display()))?;
        }
    }
    Ok(())
}

/// A file to place in the host: its path there, mode and contents.
type Staged = (PathBuf, u32, Vec<u8>);

/// Reads the staged tree `src` (mirroring the host's root at `at`).
fn read_staged(src: &Path, at: &Path, out: &mut Vec<Staged>) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(src) else { return Ok(()) };
    for e in rd.flatten() {
        let (s, d) = (e.path(), at.join(e.file_name()));
        let md = std::fs::symlink_metadata(&s)?;
        if md.is_dir() {
            read_staged(&s, &d, out)?;
        } else if md.is_file() {
            out.push((d, md.mode() & 0o7777, std::fs::read(&s).with_context(|| format!("reading {}", s.display()))?));
        }
    }
    Ok(())
}

/// Writes the staged files inside the host's root (after `pivot_root`): missing
/// directories are created 0755, existing ones keep their mode, a file keeps its mode.
/// They land on the host's tmpfs or its overlays' upper layers.
fn place_files(files: Vec<Staged>) -> Result<()> {
    for (path, mode, bytes) in files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {}", path.display()))?;
    }
    Ok(())
}

/// Whites out, in `upper`, every entry of `lower` that is not world-readable (the
/// machine's secrets: shadow, gshadow, ssh host keys, sudoers, private keys), unless
/// the upper layer already provides its own. Directories that are readable are walked.
fn mask_secrets(lower: &Path, upper: &Path) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(lower) else { return Ok(()) };
    for e in rd.flatten() {
        let (l, u) = (e.path(), upper.join(e.file_name()));
        let Ok(md) = std::fs::symlink_metadata(&l) else { continue };
        if md.file_type().is_symlink() {
            continue;
        }
        let secret = md.mode() & 0o004 == 0 || is_named_secret(&l);
        if secret {
            match std::fs::symlink_metadata(&u) {
                Err(_) => whiteout(&u)?,
                // The host has its own directory there: none of the machine's shows through.
                Ok(m) if m.is_dir() && md.is_dir() => opaque(&u)?,
                Ok(_) => {}
            }
        } else if md.is_dir() {
            // Only descend where the upper layer does not replace the directory.
            if std::fs::symlink_metadata(&u).map(|m| m.is_dir()).unwrap_or(true) {
                let had = u.exists();
                mkdir_mode(&u, md.mode() & 0o7777)?;
                mask_secrets(&l, &u)?;
                // Leave no empty directory copies behind (they would hide nothing but
                // show up as changed in the upper layer).
                if !had && std::fs::read_dir(&u).map(|mut r| r.next().is_none()).unwrap_or(false) {
                    let _ = std::fs::remove_dir(&u);
                }
            }
        }
    }
    Ok(())
}

/// Whites out, in the `upper` layer over `lower`, every path of `hidden` that lies
/// below `lower` (the packs, when installed under /usr or /opt), with its parent
/// directories re-created in the upper layer with the machine's modes.
fn hide(lower: &Path, upper: &Path, hidden: &[PathBuf]) -> Result<()> {
    'each: for h in hidden {
        let Ok(rel) = h.strip_prefix(lower) else { continue };
        if rel.as_os_str().is_empty() || std::fs::symlink_metadata(h).is_err() {
            continue;
        }
        let (mut l, mut u) = (lower.to_path_buf(), upper.to_path_buf());
        let parts: Vec<_> = rel.components().collect();
        for c in &parts[..parts.len() - 1] {
            l.push(c);
            u.push(c);
            match std::fs::symlink_metadata(&u) {
                Err(_) => mkdir_mode(&u, std::fs::metadata(&l).map(|m| m.mode() & 0o7777).unwrap_or(0o755))?,
                Ok(m) if !m.is_dir() => continue 'each, // already whited out above it
                Ok(_) => {}
            }
        }
        let target = u.join(parts[parts.len() - 1]);
        if std::fs::symlink_metadata(&target).is_err() {
            whiteout(&target)?;
        }
    }
    Ok(())
}

/// Secrets masked even when their mode would let anyone read them.
fn is_named_secret(p: &Path) -> bool {
    let s = p.to_string_lossy();
    let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    matches!(s.as_ref(), "/etc/shadow" | "/etc/gshadow" | "/etc/shadow-" | "/etc/gshadow-" | "/etc/sudoers" | "/etc/sudoers.d")
        || (s.starts_with("/etc/ssh/") && name.starts_with("ssh_host_") && name.ends_with("key"))
}

/// An overlayfs whiteout: a 0/0 character device.
fn whiteout(p: &Path) -> Result<()> {
    let c = CString::new(p.as_os_str().as_encoded_bytes())?;
    // SAFETY: mknod on a valid C string.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, 0) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("whiting out {}", p.display()));
    }
    Ok(())
}

/// Marks an upper-layer directory opaque: the lower layer's entries are hidden.
fn opaque(p: &Path) -> Result<()> {
    let c = CString::new(p.as_os_str().as_encoded_bytes())?;
    // SAFETY: setxattr on valid C strings and a 1-byte value.
    let r = unsafe { libc::setxattr(c.as_ptr(), c"trusted.overlay.opaque".as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("making {} opaque", p.display()));
    }
    Ok(())
}

/// The machine paths a host must never see (for tests and docs).
pub fn never_visible() -> Vec<PathBuf> {
    ["/var/lib/drill", "/run/drill", "/root", "/home"].iter().map(PathBuf::from).collect()
}
