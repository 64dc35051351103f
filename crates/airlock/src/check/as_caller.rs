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

/// This thread's file-system ids and groups as a caller's, and no
/// effective capability (CAP_SYS_PTRACE would still follow another
/// user's `/proc/PID/cwd`), until dropped.
pub(super) struct CallerIds {
    uid: u32,
    gid: u32,
    groups: Vec<libc::gid_t>,
    caps: Option<rustix::thread::CapabilitySets>,
}

impl CallerIds {
    /// Take `uid` and `gid` as this thread's file-system ids, with no
    /// supplementary groups and no effective capability. An error where
    /// that could not be done: the probe must not run as root instead.
    pub(super) fn take(uid: u32, gid: u32) -> std::io::Result<CallerIds> {
        let mut groups = vec![0 as libc::gid_t; 65536];
        // SAFETY: getgroups writes at most `groups.len()` ids into the
        // buffer it is given, which holds that many.
        let n = unsafe { libc::syscall(libc::SYS_getgroups, groups.len(), groups.as_mut_ptr()) };
        let n = usize::try_from(n).map_err(|_| std::io::Error::last_os_error())?;
        groups.truncate(n);
        let caps = rustix::thread::capabilities(None)?;
        // From here on, dropping `ids` gives back whatever was taken.
        // SAFETY: -1 is no id: these change nothing and say the
        // thread's file-system ids.
        let (uid_now, gid_now) = unsafe {
            (
                libc::syscall(libc::SYS_setfsuid, u32::MAX) as u32,
                libc::syscall(libc::SYS_setfsgid, u32::MAX) as u32,
            )
        };
        let mut ids = CallerIds {
            uid: uid_now,
            gid: gid_now,
            groups,
            caps: None,
        };
        AS_CALLER.with(|a| a.set(true));
        // SAFETY: a raw setgroups of no groups changes this thread's
        // credentials alone and reads no memory.
        if unsafe { libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: raw setfsgid and setfsuid change this thread's
        // file-system ids alone.
        unsafe {
            libc::syscall(libc::SYS_setfsgid, gid);
            libc::syscall(libc::SYS_setfsuid, uid);
        }
        // The kernel says the old id whether or not it took the new one:
        // asked again (-1 is no id and changes nothing), it says which it
        // has now.
        // SAFETY: as above.
        let now = unsafe {
            (
                libc::syscall(libc::SYS_setfsuid, u32::MAX) as u32,
                libc::syscall(libc::SYS_setfsgid, u32::MAX) as u32,
            )
        };
        if now != (uid, gid) {
            return Err(std::io::Error::other(format!(
                "this thread's file-system ids are {}:{}, not the caller's {uid}:{gid}",
                now.0, now.1
            )));
        }
        let none = rustix::thread::CapabilitySets {
            effective: rustix::thread::CapabilitySet::empty(),
            ..caps
        };
        rustix::thread::set_capabilities(None, none)?;
        ids.caps = Some(caps);
        Ok(ids)
    }
}

impl Drop for CallerIds {
    fn drop(&mut self) {
        // The capabilities first: setting ids back takes CAP_SETUID and
        // CAP_SETGID, which are still permitted.
        if let Some(caps) = self.caps {
            let _ = rustix::thread::set_capabilities(None, caps);
        }
        // SAFETY: the same calls with the ids and groups this thread had,
        // which it may take back.
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
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let prober = std::thread::spawn(move || {
            let groups_before = rustix::process::getgroups().unwrap();
            let caps_before = rustix::thread::capabilities(None).unwrap();
            {
                let _as = super::CallerIds::take(1000, 1000).expect("took the ids");
                assert!(super::active());
                let e = std::fs::metadata(&f).unwrap_err();
                assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
                let caps = rustix::thread::capabilities(None).unwrap();
                assert!(caps.effective.is_empty(), "{caps:?}");
                held_tx.send(()).unwrap();
                go_rx.recv().unwrap();
            }
            assert!(!super::active());
            assert!(std::fs::metadata(&f).is_ok());
            assert_eq!(rustix::process::getgroups().unwrap(), groups_before);
            let caps = rustix::thread::capabilities(None).unwrap();
            assert_eq!(caps.effective, caps_before.effective);
        });
        // While that thread holds a caller's ids, the others keep theirs.
        held_rx.recv().unwrap();
        let here = std::fs::metadata(dir.path().join("private/f"));
        go_tx.send(()).unwrap();
        prober.join().unwrap();
        assert!(here.is_ok());
    }
}
