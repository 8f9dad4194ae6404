//! Where the machine's cgroup hierarchies are, from `/proc/self/mountinfo` text (pure:
//! the daemon's cgroup layer and `drill doctor` both read it through here).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The controllers a v1 hierarchy can hold (Linux 6.x); other superblock options
/// (`rw`, `name=systemd`, `clone_children`, ...) are not controllers.
pub const V1_CONTROLLERS: &[&str] = &["cpuset", "cpu", "cpuacct", "io", "blkio", "memory", "devices", "freezer", "net_cls", "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc"];

/// What `/proc/self/mountinfo` says about cgroups.
#[derive(Debug, Default, PartialEq, Eq, Clone)]
pub struct Layout {
    /// v1 controller -> mount point (the first hierarchy mounted at its root).
    pub v1: BTreeMap<String, PathBuf>,
    /// The first cgroup2 mount point, if any.
    pub v2: Option<PathBuf>,
}

/// Parses mountinfo text (fields: id parent major:minor root mountpoint opts ... - fstype
/// source superopts). Only hierarchies mounted at their own root count: a bind mount of
/// a sub-cgroup is not a place to create cgroups in.
pub fn parse_mountinfo(text: &str) -> Layout {
    let mut l = Layout::default();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else { continue };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let (Some(mnt), Some(fstype)) = (pre.get(4), post.first()) else { continue };
        if pre.get(3) != Some(&"/") {
            continue;
        }
        let mnt = PathBuf::from(unescape(mnt));
        match *fstype {
            "cgroup2" => {
                l.v2.get_or_insert(mnt);
            }
            "cgroup" => {
                for opt in post.get(2).map_or("", |s| s).split(',') {
                    if V1_CONTROLLERS.contains(&opt) {
                        l.v1.entry(opt.to_string()).or_insert_with(|| mnt.clone());
                    }
                }
            }
            _ => {}
        }
    }
    l
}

/// mountinfo's octal escapes of space, tab, newline and backslash.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_machine() {
        let t = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 31 0:32 /drill /mnt/sub rw - cgroup cgroup rw,pids
";
        let l = parse_mountinfo(t);
        assert_eq!(l.v1.keys().collect::<Vec<_>>(), ["cpu", "cpuacct", "memory"]);
        assert_eq!(l.v1["cpu"], PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(l.v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
    }

    #[test]
    fn escaped_mount_points() {
        let l = parse_mountinfo("30 23 0:26 / /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw\n");
        assert_eq!(l.v2, Some(PathBuf::from("/mnt/my cgroups")));
    }
}
