//! `deleted-open-file`: a file a service holds open fills the host's disk and is then
//! deleted by name, so `df` shows the disk full while `du` finds nothing (the blocks stay
//! allocated until the holder closes the file). After the host's services start, the
//! engine waits until the holder has `path` open, appends to it until the disk is full
//! (ENOSPC), and unlinks it; measured by the host's own view: statfs of the file's
//! directory shows no free block and the holder's /proc/PID/fd shows `path (deleted)`.

use super::{Env, Fault, Kind, shape};
use crate::schema::{Entry, Key, Ty, key};

const KEYS: &[Key] = &[
    key("service", Ty::Str, "\"jobs\"", "the service that holds the file open (its workload keeps it open, e.g. a worker's log_file)"),
    key("host", Ty::Str, "\"api\"", "the service's host, when several hosts have a service of that name"),
    key("path", Ty::Str, "\"/var/lib/jobs/debug.log\"", "the file, an absolute path on the host's disk (under /var/lib, /srv, /opt or /home)"),
];

pub const KIND: Kind = Kind { shape: shape("deleted-open-file", KEYS), build };

/// Directories of a host that live on its own disk (the tmpfs of `limits.disk`).
pub const ON_HOST_DISK: &[&str] = &["/var/lib/", "/srv/", "/opt/", "/home/"];

fn build(e: &mut Entry, env: &Env) -> Option<Fault> {
    let host = e.str("host");
    let path = e.str("path");
    let Some(svc) = e.str("service") else {
        e.need("a deleted-open-file fault needs `service = \"NAME\"`", "name the service that holds the file open");
        return None;
    };
    let Some(path) = path else {
        e.need("a deleted-open-file fault needs `path`", "e.g. path = \"/var/lib/jobs/debug.log\", the holder's log_file");
        return None;
    };
    if !ON_HOST_DISK.iter().any(|d| path.get_ref().starts_with(d)) || path.get_ref().contains("/../") {
        e.err(path.span(), format!("`{}` is not on the host's own disk", path.get_ref()), format!("use a path under {}", ON_HOST_DISK.join(", ")));
        return None;
    }
    let target = super::common::service(e, env, &svc, host.as_ref(), "to hold the file")?;
    let (table, kind) = env.service_tables.get(&(target.host.clone(), target.name.clone()))?;
    let held = crate::workload::Workload::from_table(kind, table.clone()).map(|w| w.held_files()).unwrap_or_default();
    if !held.contains(path.get_ref()) {
        let has = if held.is_empty() { "holds no file open".to_string() } else { format!("holds {} open", held.join(", ")) };
        e.err(path.span(), format!("service `{}` does not hold `{}` open: it {has}", target.name, path.get_ref()), "give the holder the file, e.g. a worker's `log_file`");
        return None;
    }
    Some(Fault::DeletedOpenFile { host: target.host, service: target.name, path: path.into_inner() })
}

#[cfg(test)]
mod tests {
    use crate::scenario::tests_support::fault_err;

    #[test]
    fn the_file_must_be_the_holders_and_on_the_host_disk() {
        let e = fault_err("kind = \"deleted-open-file\"\nservice = \"httpd\"\npath = \"/var/lib/x.log\"");
        assert!(e.contains("does not hold `/var/lib/x.log` open"), "{e}");
        let e = fault_err("kind = \"deleted-open-file\"\nservice = \"httpd\"\npath = \"/usr/x.log\"");
        assert!(e.contains("not on the host's own disk"), "{e}");
        assert!(fault_err("kind = \"deleted-open-file\"\npath = \"/var/lib/x\"").contains("needs `service"));
    }
}
