//! The FUSE file system behind the hosts' `/dev/kmsg` (kmsg.rs): a read-only directory
//! of one file per host. Each open file is a reader at a record: a read returns that
//! one record (direct I/O: the reader gets exactly what we send) and moves on; at the
//! end a read returns EAGAIN for an O_NONBLOCK reader and waits for the next record for
//! a blocking one (`dmesg -w`), as the kernel's `/dev/kmsg` does. `lseek(SEEK_DATA)`
//! goes back to the first record (`dmesg` does that after opening).

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyLseek, ReplyOpen,
    Request, SessionACL,
};

use super::kmsg::{Logs, record_at};

/// How long the kernel may cache names and attributes (files come and go with hosts).
const TTL: Duration = Duration::from_secs(1);

pub(super) struct KmsgFs {
    logs: Arc<Logs>,
}

/// Mounts the file system on `dir`, served by a background thread; unmounted when the
/// returned session is dropped.
pub(super) fn mount(logs: Arc<Logs>, dir: &Path) -> Result<fuser::BackgroundSession> {
    let mut cfg = Config::default();
    cfg.mount_options = vec![
        MountOption::FSName("drill-kmsg".into()),
        MountOption::Subtype("drill-kmsg".into()),
        MountOption::RO,
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::NoExec,
        MountOption::DefaultPermissions,
    ];
    // Hosts' root reads it through a bind (allow_other: any uid; permissions by mode).
    cfg.acl = SessionACL::All;
    fuser::spawn_mount(KmsgFs { logs }, dir, &cfg).with_context(|| format!("mounting the hosts' kernel logs (FUSE) on {}", dir.display()))
}

fn attr(ino: u64, dir: bool) -> FileAttr {
    let now = SystemTime::now();
    FileAttr {
        ino: INodeNo(ino),
        size: 0,
        blocks: 0,
        atime: now,
        mtime: now,
        ctime: now,
        crtime: now,
        kind: if dir { FileType::Directory } else { FileType::RegularFile },
        // As the kernel's /dev/kmsg: root reads (and would write).
        perm: if dir { 0o755 } else { 0o600 },
        nlink: if dir { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

impl Filesystem for KmsgFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let st = self.logs.lock();
        match (parent == INodeNo::ROOT).then(|| name.to_str().and_then(|n| st.hosts.get(n))).flatten() {
            Some(log) => reply.entry(&TTL, &attr(log.ino, false), Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino == INodeNo::ROOT {
            return reply.attr(&TTL, &attr(1, true));
        }
        match self.logs.lock().key_of(ino.0) {
            Some(_) => reply.attr(&TTL, &attr(ino.0, false)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        if ino != INodeNo::ROOT {
            return reply.error(Errno::ENOTDIR);
        }
        let st = self.logs.lock();
        let entries: Vec<(u64, FileType, String)> = [(1, FileType::Directory, ".".to_string()), (1, FileType::Directory, "..".to_string())]
            .into_iter()
            .chain(st.hosts.iter().map(|(k, h)| (h.ino, FileType::RegularFile, k.clone())))
            .collect();
        for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(Errno::EACCES);
        }
        let mut st = self.logs.lock();
        let Some(key) = st.key_of(ino.0).map(str::to_string) else { return reply.error(Errno::ENOENT) };
        st.next_fh += 1;
        let fh = st.next_fh;
        st.handles.insert(fh, super::kmsg::Handle { key, next: 0 });
        reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn read(&self, req: &Request, _ino: INodeNo, fh: FileHandle, _offset: u64, size: u32, flags: OpenFlags, _lock: Option<fuser::LockOwner>, reply: ReplyData) {
        let mut st = self.logs.lock();
        let st = &mut *st;
        let Some(h) = st.handles.get_mut(&fh.0) else { return reply.error(Errno::EBADF) };
        let Some(log) = st.hosts.get(&h.key) else { return reply.data(&[]) };
        let mut next = h.next;
        match record_at(log, &mut next) {
            // The kernel's answer to a buffer too small for the record.
            Some(bytes) if bytes.len() > size as usize => reply.error(Errno::EINVAL),
            Some(bytes) => {
                h.next = next;
                reply.data(&bytes)
            }
            None if flags.0 & libc::O_NONBLOCK != 0 => reply.error(Errno::EAGAIN),
            None => st.waiting.push((fh.0, req.pid(), reply)),
        }
    }

    fn lseek(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: i64, whence: i32, reply: ReplyLseek) {
        let mut st = self.logs.lock();
        let st = &mut *st;
        let Some(h) = st.handles.get_mut(&fh.0) else { return reply.error(Errno::EBADF) };
        let first = st.hosts.get(&h.key).map(|l| l.first_seq).unwrap_or(0);
        match whence {
            // No SYSLOG_ACTION_CLEAR in a host: its data starts at the first record.
            libc::SEEK_DATA | libc::SEEK_SET if offset == 0 => {
                h.next = first;
                reply.offset(0)
            }
            _ => reply.error(Errno::EINVAL),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock: fuser::LockOwner, reply: fuser::ReplyEmpty) {
        reply.ok();
    }

    fn release(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, _lock: Option<fuser::LockOwner>, _flush: bool, reply: fuser::ReplyEmpty) {
        let mut st = self.logs.lock();
        st.handles.remove(&fh.0);
        let waiting = std::mem::take(&mut st.waiting);
        for (f, pid, r) in waiting {
            if f == fh.0 {
                r.error(Errno::EBADF);
            } else {
                st.waiting.push((f, pid, r));
            }
        }
        reply.ok();
    }
}
