//! A host's cgroup: memory, CPU and pids limits behind one interface ([`Cgroups`]),
//! with a cgroup v1 and a cgroup v2 implementation. The layout is read from
//! `/proc/self/mountinfo`, never assumed: on a hybrid machine (v1 controllers beside a
//! v2 mount holding only hugetlb) each controller goes where it is actually mounted.
//!
//! A host's cgroup is named `drill-<drill id>-<host>` at the root of each hierarchy. It
//! is created before the host's init starts (the init joins it before it execs, so
//! everything in the host is inside), and removed after the init was reaped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The controllers a host is limited by.
pub const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

/// Used where the hierarchy exists: v1's devices controller denies every block device
/// (the machine's disks) to the host, beside the missing device nodes and CAP_MKNOD;
/// cpuset (every CPU and memory node of the machine, as its parent) and cpuacct are
/// there for lxcfs (host/procview.rs), which finds a host's CPU quota and usage under
/// the host's cpuset path and cpuacct counters.
pub const OPTIONAL: [&str; 3] = ["devices", "cpuset", "cpuacct"];

/// Prefix of every cgroup the engine creates.
pub const PREFIX: &str = "drill-";

/// Limits of one host. Defaults suit a learner's machine; scenarios may override them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// memory (including the host's tmpfs disk, which is charged to it).
    pub memory_bytes: u64,
    /// processes and threads.
    pub pids: u64,
    /// CPUs' worth of time per period (None: unlimited).
    pub cpus: Option<f64>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { memory_bytes: 256 << 20, pids: 512, cpus: Some(1.0) }
    }
}

/// CFS period used for a CPU limit.
const CPU_PERIOD_US: u64 = 100_000;

/// The cgroup name of host `host` of drill `drill_id`.
pub fn name(drill_id: &str, host: &str) -> String {
    format!("{PREFIX}{drill_id}-{host}")
}

/// Where a host's cgroup lives: one directory per hierarchy it spans.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostCgroup {
    pub name: String,
    pub dirs: Vec<PathBuf>,
}

impl HostCgroup {
    /// The `cgroup.procs` files a process writes `0` into to join (one per hierarchy).
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// Removes every directory (their processes must be gone). Retries briefly on
    /// EBUSY (a process that just exited may still be counted); keeps going on errors
    /// and returns all of them.
    pub fn remove(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for d in &self.dirs {
            if let Err(e) = remove_dir(d) {
                errors.push(e);
            }
        }
        errors
    }
}

fn remove_dir(d: &Path) -> std::result::Result<(), String> {
    // Only ever remove our own: the last component carries the prefix.
    if !d.file_name().is_some_and(|n| n.to_string_lossy().starts_with(PREFIX)) {
        return Err(format!("refusing to remove cgroup {} (not the engine's)", d.display()));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        match std::fs::remove_dir(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => {
                let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
                return Err(format!("removing cgroup {}: {e} (processes still in it: [{procs}])", d.display()));
            }
        }
    }
}

/// Creating, limiting and finding hosts' cgroups on one cgroup layout.
pub trait Cgroups: Send + Sync {
    /// Which version (for logs and docs).
    fn version(&self) -> &'static str;
    /// Creates the host's cgroup with `limits` (replacing limits if it exists).
    fn create(&self, name: &str, limits: &Limits) -> Result<HostCgroup>;
    /// Every engine cgroup whose name starts with `prefix` (recovery after a crash).
    fn find(&self, prefix: &str) -> Vec<PathBuf>;
}

/// cgroup v1: one hierarchy per controller (`/sys/fs/cgroup/{memory,cpu,pids}`).
pub struct V1 {
    /// controller -> mount point of the hierarchy holding it.
    pub mounts: BTreeMap<String, PathBuf>,
}

/// cgroup v2: one unified hierarchy.
pub struct V2 {
    pub root: PathBuf,
}

fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let p = dir.join(file);
    std::fs::write(&p, value).with_context(|| format!("writing {value:?} to {}", p.display()))
}

fn mkdir(d: &Path) -> Result<()> {
    match std::fs::create_dir(d) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating cgroup {}", d.display())),
    }
}

fn find_in(roots: impl Iterator<Item = PathBuf>, prefix: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for r in roots {
        for e in std::fs::read_dir(&r).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(prefix) && e.path().is_dir() {
                v.push(e.path());
            }
        }
    }
    v
}

impl Cgroups for V1 {
    fn version(&self) -> &'static str {
        "v1"
    }

    fn create(&self, name: &str, limits: &Limits) -> Result<HostCgroup> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for c in CONTROLLERS {
            let Some(m) = self.mounts.get(c) else { bail!("cgroup v1: no hierarchy holds the {c} controller") };
            let d = m.join(name);
            // Controllers co-mounted (cpu,cpuacct) share one directory.
            if !dirs.contains(&d) {
                mkdir(&d)?;
                dirs.push(d.clone());
            }
            match c {
                "memory" => write(&d, "memory.limit_in_bytes", &limits.memory_bytes.to_string())?,
                "pids" => write(&d, "pids.max", &limits.pids.to_string())?,
                "cpu" => {
                    write(&d, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
                    let quota = limits.cpus.map_or(-1, |n| (n * CPU_PERIOD_US as f64).round() as i64);
                    write(&d, "cpu.cfs_quota_us", &quota.to_string())?;
                }
                _ => {}
            }
        }
        for c in OPTIONAL {
            let Some(m) = self.mounts.get(c) else { continue };
            let d = m.join(name);
            if !dirs.contains(&d) {
                mkdir(&d)?;
                dirs.push(d.clone());
            }
            match c {
                "devices" => write(&d, "devices.deny", "b *:* rwm")?,
                "cpuset" => {
                    // A v1 cpuset takes no task before it has CPUs and memory nodes.
                    for f in ["cpuset.cpus", "cpuset.mems"] {
                        let parent = std::fs::read_to_string(m.join(f)).with_context(|| format!("reading {}", m.join(f).display()))?;
                        write(&d, f, parent.trim())?;
                    }
                }
                _ => {}
            }
        }
        Ok(HostCgroup { name: name.to_string(), dirs })
    }

    fn find(&self, prefix: &str) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = self.mounts.values().cloned().collect();
        roots.sort();
        roots.dedup();
        find_in(roots.into_iter(), prefix)
    }
}

impl Cgroups for V2 {
    fn version(&self) -> &'static str {
        "v2"
    }

    fn create(&self, name: &str, limits: &Limits) -> Result<HostCgroup> {
        let available = std::fs::read_to_string(self.root.join("cgroup.controllers")).with_context(|| format!("reading {}/cgroup.controllers", self.root.display()))?;
        let enabled = std::fs::read_to_string(self.root.join("cgroup.subtree_control")).unwrap_or_default();
        for c in CONTROLLERS {
            if !available.split_whitespace().any(|a| a == c) {
                bail!("cgroup v2 at {}: the {c} controller is not available (cgroup.controllers: {})", self.root.display(), available.trim());
            }
            if !enabled.split_whitespace().any(|a| a == c) {
                write(&self.root, "cgroup.subtree_control", &format!("+{c}"))?;
            }
        }
        let d = self.root.join(name);
        mkdir(&d)?;
        write(&d, "memory.max", &limits.memory_bytes.to_string())?;
        write(&d, "pids.max", &limits.pids.to_string())?;
        let cpu = limits.cpus.map_or_else(|| format!("max {CPU_PERIOD_US}"), |n| format!("{} {CPU_PERIOD_US}", (n * CPU_PERIOD_US as f64).round() as u64));
        write(&d, "cpu.max", &cpu)?;
        Ok(HostCgroup { name: name.to_string(), dirs: vec![d] })
    }

    fn find(&self, prefix: &str) -> Vec<PathBuf> {
        find_in(std::iter::once(self.root.clone()), prefix)
    }
}

pub use drill_core::cgroupfs::Layout;

/// The cgroup layout of mountinfo text, v1 reduced to the controllers drill uses.
pub fn parse_mountinfo(text: &str) -> Layout {
    let mut l = drill_core::cgroupfs::parse_mountinfo(text);
    l.v1.retain(|c, _| CONTROLLERS.contains(&c.as_str()) || OPTIONAL.contains(&c.as_str()));
    l
}

/// Chooses the implementation for a layout: v1 where it holds every controller we
/// limit (a hybrid machine's v2 mount then holds only what v1 does not), else v2.
pub fn choose(l: Layout) -> Result<Box<dyn Cgroups>> {
    if CONTROLLERS.iter().all(|c| l.v1.contains_key(*c)) {
        return Ok(Box::new(V1 { mounts: l.v1 }));
    }
    if let Some(root) = l.v2 {
        return Ok(Box::new(V2 { root }));
    }
    bail!("no cgroup hierarchy holds the memory, cpu and pids controllers (v1 has {:?}, no cgroup2 mount); mount cgroup2 or the v1 controllers", l.v1.keys().collect::<Vec<_>>())
}

/// The machine's cgroups, from `/proc/self/mountinfo`.
pub fn detect() -> Result<Box<dyn Cgroups>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    choose(parse_mountinfo(&text))
}

/// Name of the file, in a host's state directory, recording its cgroup (written before
/// the cgroup exists, so recovery after a crash finds it).
pub const RECORD: &str = "cgroup.json";

pub fn save_record(state_dir: &Path, cg: &HostCgroup) -> Result<()> {
    std::fs::create_dir_all(state_dir)?;
    let p = state_dir.join(RECORD);
    std::fs::write(&p, serde_json::to_vec(cg)?).with_context(|| format!("writing {}", p.display()))
}

/// Removes the cgroups recorded under a drill directory (`hosts/*/cgroup.json`) and any
/// engine cgroup named for `drill_id` (one created just before a crash). Returns errors.
pub fn remove_for_drill(drill_dir: &Path, drill_id: Option<&str>) -> Vec<String> {
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    for e in std::fs::read_dir(drill_dir.join("hosts")).into_iter().flatten().flatten() {
        let Ok(b) = std::fs::read(e.path().join(RECORD)) else { continue };
        match serde_json::from_slice::<HostCgroup>(&b) {
            Ok(cg) => {
                seen.extend(cg.dirs.clone());
                errors.extend(cg.remove());
            }
            Err(err) => errors.push(format!("{}: {err}", e.path().join(RECORD).display())),
        }
    }
    if let (Some(id), Ok(cgs)) = (drill_id, detect()) {
        for d in cgs.find(&format!("{PREFIX}{id}-")) {
            if !seen.contains(&d)
                && let Err(e) = remove_dir(&d)
            {
                errors.push(e);
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_layout_is_v1_for_our_controllers() {
        let l = parse_mountinfo(HYBRID);
        assert_eq!(l.v1.get("memory"), Some(&PathBuf::from("/sys/fs/cgroup/memory")));
        assert_eq!(l.v1.get("cpu"), Some(&PathBuf::from("/sys/fs/cgroup/cpu")));
        assert_eq!(l.v1.get("pids"), Some(&PathBuf::from("/sys/fs/cgroup/pids")));
        // cpuacct is kept (for lxcfs's CPU view); the named systemd hierarchy is not ours.
        assert_eq!(l.v1.get("cpuacct"), Some(&PathBuf::from("/sys/fs/cgroup/cpuacct")));
        assert!(!l.v1.contains_key("name=systemd") && !l.v1.contains_key("systemd"));
        assert_eq!(l.v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(choose(l).unwrap().version(), "v1");
    }

    #[test]
    fn pure_v2_layout_is_v2() {
        let l = parse_mountinfo("30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
        assert!(l.v1.is_empty());
        assert_eq!(choose(l).unwrap().version(), "v2");
        assert!(choose(Layout::default()).is_err());
    }

    #[test]
    fn co_mounted_v1_controllers_share_a_directory() {
        let l = parse_mountinfo("32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n");
        assert_eq!(l.v1.get("cpu"), Some(&PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")));
    }

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("drill-cgtest-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// The v2 path on a fake cgroupfs: a temp dir laid out like a cgroup2 root.
    #[test]
    fn v2_on_a_fake_cgroupfs() {
        let root = tmp("v2");
        std::fs::write(root.join("cgroup.controllers"), "cpuset cpu io memory hugetlb pids\n").unwrap();
        std::fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        let v2 = V2 { root: root.clone() };
        let cg = v2.create(&name("ab12cd", "lb"), &Limits::default()).unwrap();
        let d = root.join("drill-ab12cd-lb");
        assert_eq!(cg.dirs, vec![d.clone()]);
        assert_eq!(std::fs::read_to_string(d.join("memory.max")).unwrap(), (256u64 << 20).to_string());
        assert_eq!(std::fs::read_to_string(d.join("pids.max")).unwrap(), "512");
        assert_eq!(std::fs::read_to_string(d.join("cpu.max")).unwrap(), "100000 100000");
        // A real cgroupfs keeps "+c" per write; the fake keeps the last one written.
        assert!(std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap().starts_with('+'));
        assert_eq!(cg.procs_files(), vec![d.join("cgroup.procs")]);
        let unlimited = v2.create(&name("ab12cd", "db"), &Limits { cpus: None, ..Limits::default() }).unwrap();
        assert_eq!(std::fs::read_to_string(unlimited.dirs[0].join("cpu.max")).unwrap(), "max 100000");
        let mut found = v2.find("drill-ab12cd-");
        found.sort();
        assert_eq!(found, vec![root.join("drill-ab12cd-db"), d.clone()]);
        // On the fake, the limit files make the directory non-empty: clear them as the
        // kernel would on rmdir, then remove.
        for c in [&cg, &unlimited] {
            for e in std::fs::read_dir(&c.dirs[0]).unwrap().flatten() {
                std::fs::remove_file(e.path()).unwrap();
            }
            assert!(c.remove().is_empty());
        }
        assert!(!d.exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn v2_without_a_controller_says_which() {
        let root = tmp("v2missing");
        std::fs::write(root.join("cgroup.controllers"), "hugetlb\n").unwrap();
        let e = V2 { root: root.clone() }.create("drill-x-y", &Limits::default()).unwrap_err();
        assert!(format!("{e:#}").contains("memory controller is not available"), "{e:#}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn never_removes_what_is_not_ours() {
        let cg = HostCgroup { name: "x".into(), dirs: vec![PathBuf::from("/sys/fs/cgroup/memory/user.slice")] };
        assert!(cg.remove()[0].contains("refusing"));
    }
}
