//! The capability set of processes in a host. Everything root has, but
//! [`drill_core::host::DROPPED_CAPS`] (module loading, raw I/O, reboot, clock, mknod)
//! and, for hosts of a drill whose owner is not root, [`drill_core::host::ROOT_OWNER_CAPS`]
//! (BPF, perfmon, syslog). Dropped from the bounding set, so no exec (setuid or file
//! capabilities included) regains them; the init also drops them from its own sets, so
//! ptracing PID 1 gives nothing more.
//!
//! Every way into a host applies the same drop before it execs: the init (and with it
//! the services), the daemon's exec endpoint ([`super::command_in_host`]) and the CLI's
//! `drill exec`/`shell` (drill-cli/src/enter.rs).

use anyhow::{Context, Result};

/// The capability numbers a host's processes do not get.
pub fn dropped(owner_is_root: bool) -> Vec<u32> {
    let mut v: Vec<u32> = drill_core::host::DROPPED_CAPS.iter().map(|(n, _)| *n).collect();
    if !owner_is_root {
        v.extend(drill_core::host::ROOT_OWNER_CAPS.iter().map(|(n, _)| *n));
    }
    v
}

/// Drops `caps` from the bounding set with raw prctl calls only: safe in a `pre_exec`.
/// A capability the kernel does not know (EINVAL) is not there to drop.
pub fn drop_bounding_raw(caps: &[u32]) -> std::io::Result<()> {
    for &c in caps {
        // SAFETY: a prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Drops `caps` from the bounding set and from this process's own sets (the init).
pub fn drop_all(caps: &[u32]) -> Result<()> {
    use ::caps::{CapSet, Capability};
    drop_bounding_raw(caps).context("dropping capabilities from the bounding set")?;
    for &n in caps {
        let Some(cap) = ::caps::all().into_iter().find(|c: &Capability| u32::from(c.index()) == n) else { continue };
        for set in [CapSet::Ambient, CapSet::Inheritable, CapSet::Effective, CapSet::Permitted] {
            ::caps::drop(None, set, cap).with_context(|| format!("dropping {cap} from the {set:?} set"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_owners_keep_tracing_others_do_not() {
        let root = super::dropped(true);
        assert_eq!(root, vec![16, 17, 21, 22, 25, 27]);
        let user = super::dropped(false);
        for c in [34, 38, 39] {
            assert!(!root.contains(&c) && user.contains(&c), "cap {c}: root {root:?} user {user:?}");
        }
        // Never among the dropped: what learners' tools need.
        for keep in [1, 5, 12, 13, 19] {
            assert!(!user.contains(&keep), "cap {keep} dropped: {user:?}");
        }
    }
}
