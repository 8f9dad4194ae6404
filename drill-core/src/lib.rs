//! Pure logic of drill. Nothing here needs privileges or touches the kernel:
//! scenario files are parsed and validated into a [`scenario::Scenario`], compiled
//! into a [`plan::Plan`] (what the daemon will create, printable and diffable), and
//! probe observations are turned into [`verdict::Verdict`]s. The daemon and the CLI
//! share the wire types in [`api`].
//!
//! Modules, from the leaves up (each imports only those above it):
//! - [`source`]: positions in files, [`source::SourceError`] and the error collector;
//! - [`schema`]: declared keys ([`schema::Shape`]) and the reader that holds one TOML table
//!   to them (unknown keys, types, suggestions);
//! - [`model`]: leaf values of the model (Cidr, TcpState, names, Service, Solution);
//!   [`workload`]: the built-in services and their configs;
//! - [`topo`]: hosts, links, switches, routes;
//! - [`fault`]: the `Fault` enum and one module per fault kind, registered in
//!   [`fault::KINDS`]; [`check`]: the `Check` enum and one module per check kind,
//!   registered in [`check::KINDS`];
//! - [`scenario`]: the whole `Scenario` and `parse` (re-exports the types above);
//! - [`plan`], [`verdict`], [`api`], [`builtin`] (the built-in pack's files), [`catalog`] (scenarios by `ID` or `PACK/ID`).

pub mod api;
pub mod builtin;
pub mod catalog;
pub mod cgroupfs;
pub mod check;
pub mod doctor;
pub mod fault;
pub mod incident;
pub mod kmsg;
pub mod model;
pub mod pack;
pub mod plan;
pub mod record;
pub mod relay;
pub mod report;
pub mod resolv;
pub mod scenario;
pub mod schema;
pub mod source;
pub mod topo;
pub mod verdict;
pub mod workload;

/// Prefix of every kernel resource and path drill creates.
pub const PREFIX: &str = "drill";

/// Facts about drill hosts shared by the daemon (which builds them) and the CLI
/// (which enters them).
pub mod host {
    /// Namespaces of a host, in the order they must be entered: `mnt` last (after it,
    /// `/proc` paths of the machine are no longer reachable), `pid` before it (it only
    /// applies to children, which must see the host's `/proc`).
    pub const NAMESPACES: [&str; 5] = ["ipc", "uts", "net", "pid", "mnt"];
    /// Directory put first on PATH inside hosts (holds `svc`).
    pub const BIN_DIR: &str = "/run/drill/bin";
    /// PATH of commands run inside hosts.
    pub const PATH: &str = "/run/drill/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// Capabilities no process in a host holds: dropped from the bounding set (so no
    /// exec regains them) and from the init's own sets. (number, name) as in
    /// `linux/capability.h`. docs/hosts.md lists what hosts keep.
    ///
    /// CAP_SYS_ADMIN is among them: without a user namespace, the kernel does not lock a
    /// host's mounts, so with it `mount -o remount,rw /proc/sys` (or a fresh proc, sysfs
    /// or cgroup mount) undoes the read-only /proc/sys, /sys and the cgroup limits;
    /// measured: `sysctl -w vm.swappiness=77` then changed the machine's value.
    pub const DROPPED_CAPS: [(u32, &str); 6] = [(16, "CAP_SYS_MODULE"), (17, "CAP_SYS_RAWIO"), (21, "CAP_SYS_ADMIN"), (22, "CAP_SYS_BOOT"), (25, "CAP_SYS_TIME"), (27, "CAP_MKNOD")];
    /// Capabilities that read the whole machine's kernel (tracing, the kernel log): only
    /// hosts of drills whose owner is root keep them.
    pub const ROOT_OWNER_CAPS: [(u32, &str); 3] = [(34, "CAP_SYSLOG"), (38, "CAP_PERFMON"), (39, "CAP_BPF")];

    /// Prefix of a host's cgroup name (`drill-<id>-<host>`).
    pub const CGROUP_PREFIX: &str = "/drill-";

    /// The `cgroup.procs` files (machine paths) a process writes `0` into to join the
    /// engine cgroups a host's init is in. `init_cgroup` is `/proc/PID/cgroup` of the
    /// init, `mountinfo` the machine's `/proc/self/mountinfo` (read before entering the
    /// host's mount namespace).
    pub fn cgroup_procs_files(init_cgroup: &str, mountinfo: &str) -> Vec<String> {
        let mut out = Vec::new();
        for line in init_cgroup.lines() {
            let mut f = line.splitn(3, ':');
            let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else { continue };
            if !path.starts_with(CGROUP_PREFIX) {
                continue;
            }
            let ctrls: Vec<&str> = ctrls.split(',').filter(|c| !c.is_empty()).collect();
            for m in mountinfo.lines() {
                let Some((pre, post)) = m.split_once(" - ") else { continue };
                let pre: Vec<&str> = pre.split(' ').collect();
                let post: Vec<&str> = post.split(' ').collect();
                let (Some(root), Some(mnt), Some(fstype)) = (pre.get(3), pre.get(4), post.first()) else { continue };
                if *root != "/" {
                    continue;
                }
                let matches = match *fstype {
                    "cgroup2" => ctrls.is_empty(),
                    "cgroup" => !ctrls.is_empty() && post.get(2).is_some_and(|o| ctrls.iter().all(|c| o.split(',').any(|x| x == *c))),
                    _ => false,
                };
                if matches {
                    out.push(format!("{mnt}{path}/cgroup.procs"));
                    break;
                }
            }
        }
        out
    }

    /// The capabilities to drop from a process entering a host so it holds no more than
    /// the host's init: every one missing from the init's `CapBnd` (its
    /// `/proc/PID/status`); [`DROPPED_CAPS`] when that cannot be read.
    pub fn caps_to_drop(init_status: Option<&str>) -> Vec<u32> {
        let bnd = init_status.and_then(|s| s.lines().find_map(|l| l.strip_prefix("CapBnd:")).and_then(|v| u64::from_str_radix(v.trim(), 16).ok()));
        match bnd {
            Some(b) => (0..64).filter(|i| b & (1u64 << i) == 0).collect(),
            None => DROPPED_CAPS.iter().map(|(n, _)| *n).collect(),
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn caps_to_drop_follows_the_init() {
            let all_but = |drop: &[u32]| (0u32..41).filter(|i| !drop.contains(i)).fold(0u64, |a, i| a | 1 << i);
            let st = format!("Name:\tdrilld\nCapBnd:\t{:016x}\n", all_but(&[16, 17, 21, 22, 25, 27]));
            let d = super::caps_to_drop(Some(&st));
            assert!([16, 17, 21, 22, 25, 27].iter().all(|c| d.contains(c)), "{d:?}");
            assert!(!d.contains(&12) && !d.contains(&13) && !d.contains(&39), "{d:?}");
            assert_eq!(super::caps_to_drop(None), vec![16, 17, 21, 22, 25, 27]);
        }

        #[test]
        fn cgroup_files_of_a_host_init() {
            let cg = "9:name=systemd:/\n8:pids:/drill-ab-lb\n4:memory:/drill-ab-lb\n1:cpu:/drill-ab-lb\n0::/\n".to_string();
            let mi = "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n".to_string();
            assert_eq!(
                super::cgroup_procs_files(&cg, &mi),
                vec!["/sys/fs/cgroup/pids/drill-ab-lb/cgroup.procs", "/sys/fs/cgroup/memory/drill-ab-lb/cgroup.procs", "/sys/fs/cgroup/cpu/drill-ab-lb/cgroup.procs"]
            );
            let v2 = super::cgroup_procs_files("0::/drill-ab-lb\n", "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
            assert_eq!(v2, vec!["/sys/fs/cgroup/drill-ab-lb/cgroup.procs"]);
            assert!(super::cgroup_procs_files("0::/user.slice\n", "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n").is_empty());
        }
    }
}
