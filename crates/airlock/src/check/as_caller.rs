//! The host probe of a caller other than root, made by a root process
//! (airlockd serving a user): run on this thread with the caller's
//! file-system ids, so that it resolves and lists only what the caller
//! could. Made with root's, a path through another user's 0700
//! directory was resolved, and the findings named where its links lead
//! and which of its names exist (a refusal against a permission error).
//!
//! Why by hand: the kernel keeps credentials per thread, and the C
//! library's wrappers of setgroups broadcast to every thread of the
//! process (the daemon's other callers'); the raw system calls change
//! this thread's alone, and no crate wraps them so.

use std::cell::Cell;

thread_local! {
    /// This thread probes with a caller's ids: what root listed before
    /// (a directory's sockets) is not given out (see `snapshot::listed`).
    static AS_CALLER: Cell<bool> = const { Cell::new(false) };
}

/// Does this thread probe with a caller's ids?
pub(super) fn active() -> bool {
    AS_CALLER.with(Cell::get)
}

/// This thread's file-system ids and groups as a caller's, until dropped.
pub(super) struct CallerIds {
    uid: u32,
    gid: u32,
    groups: Vec<libc::gid_t>,
}

impl CallerIds {
    /// Take `uid` and `gid` as this thread's file-system ids, with no
    /// supplementary groups; `None` where that could not be done (the
    /// probe then runs as it would have, with the process's own).
    pub(super) fn take(uid: u32, gid: u32) -> Option<CallerIds> {
        let mut groups = vec![0 as libc::gid_t; 65536];
        // SAFETY: getgroups writes at most `groups.len()` ids into the
        // buffer it is given, which holds that many.
        let n = unsafe { libc::syscall(libc::SYS_getgroups, groups.len(), groups.as_mut_ptr()) };
        groups.truncate(usize::try_from(n).ok()?);
        // SAFETY: a raw setgroups of no groups changes this thread's
        // credentials alone and reads no memory.
        let r = unsafe { libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) };
        if r != 0 {
            return None;
        }
        // SAFETY: raw setfsgid and setfsuid change this thread's
        // file-system ids alone; each returns the one it replaced.
        let (old_gid, old_uid) = unsafe {
            (
                libc::syscall(libc::SYS_setfsgid, gid) as u32,
                libc::syscall(libc::SYS_setfsuid, uid) as u32,
            )
        };
        AS_CALLER.with(|a| a.set(true));
        let ids = CallerIds {
            uid: old_uid,
            gid: old_gid,
            groups,
        };
        // The kernel says the old id whether or not it took the new one:
        // asked again (-1 changes nothing), it says which it has now.
        // SAFETY: as above; -1 is no id and changes nothing.
        let now = unsafe {
            (
                libc::syscall(libc::SYS_setfsuid, u32::MAX) as u32,
                libc::syscall(libc::SYS_setfsgid, u32::MAX) as u32,
            )
        };
        (now == (uid, gid)).then_some(ids)
    }
}

impl Drop for CallerIds {
    fn drop(&mut self) {
        // SAFETY: the same calls with the ids and groups this thread had,
        // which it may take back (the capabilities to set ids stay
        // effective while the file-system ids are another's).
        unsafe {
            libc::syscall(libc::SYS_setfsuid, self.uid);
            libc::syscall(libc::SYS_setfsgid, self.gid);
            libc::syscall(libc::SYS_setgroups, self.groups.len(), self.groups.as_ptr());
        }
        AS_CALLER.with(|a| a.set(false));
    }
}

#[cfg(test)]
mod tests {
    /// With a caller's ids, this thread is refused what the caller is
    /// (a 0700 directory of root's), and has root's access back after.
    #[test]
    fn a_thread_takes_a_callers_ids_and_gives_them_back() {
        use std::os::unix::fs::PermissionsExt;
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED a_thread_takes_a_callers_ids_and_gives_them_back: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::write(private.join("f"), "x").unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        let f = private.join("f");
        std::thread::spawn(move || {
            let groups_before = rustix::process::getgroups().unwrap();
            {
                let _as = super::CallerIds::take(1000, 1000).expect("took the ids");
                assert!(super::active());
                let e = std::fs::metadata(&f).unwrap_err();
                assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
            }
            assert!(!super::active());
            assert!(std::fs::metadata(&f).is_ok());
            assert_eq!(rustix::process::getgroups().unwrap(), groups_before);
        })
        .join()
        .unwrap();
        // Other threads kept theirs throughout.
        assert!(std::fs::metadata(dir.path().join("private/f")).is_ok());
    }
}
