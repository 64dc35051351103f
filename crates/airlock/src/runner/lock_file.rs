//! bubblewrap's `--lock-file` (`filesystem.lock_files`): our init opens
//! each path inside the finished sandbox and holds a read lock on it for
//! the sandbox's life, so a process outside can tell the sandbox still
//! runs by failing to take a write lock on the same file (flatpak tracks
//! its instances this way).
//!
//! An open-file-description lock (`F_OFD_SETLK`), where bubblewrap takes
//! a process-associated one: the same conflicts for whoever tests it, but
//! tied to the one open file our init keeps, so it is not dropped when
//! some other descriptor of the file is closed, and the workload, forked
//! holding a copy, does not take it away when that copy closes at its
//! exec.

use super::report::{SetupError, StepExt};
use rustix::fs::{Mode, OFlags};
use std::os::fd::{AsRawFd, OwnedFd};

/// Lock each path, as our init, after the pivot (the paths are the
/// sandbox's). The locks are kept by leaking their descriptors: init lives
/// as long as the sandbox, and the kernel drops them when it exits.
pub fn hold(paths: &[String]) -> Result<(), SetupError> {
    if paths.is_empty() {
        return Ok(());
    }
    // Resolved in the sandbox's root, as the kernel would for the
    // workload, but never through a /proc magic link: with the host's
    // /proc (a shared PID namespace) a planted `/proc/N/root/...` link
    // would lead out.
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .step(|| "lock files: open the sandbox's root".into())?;
    for (i, path) in paths.iter().enumerate() {
        let step = || format!("lock {path} (filesystem.lock_files[{i}])");
        // Judged before it is opened for reading: opening a device can
        // act (a watchdog arms), a FIFO would hang the start.
        let seen = crate::fs::open_in(&root, path, OFlags::PATH).step(step)?;
        let st = rustix::fs::fstat(&seen).step(step)?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(SetupError::new(step(), "not a regular file"));
        }
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
        let fd = crate::fs::open_in(&root, path, flags).step(step)?;
        let now = rustix::fs::fstat(&fd).step(step)?;
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
            return Err(SetupError::new(
                step(),
                "it was replaced while it was opened",
            ));
        }
        read_lock(&fd).step(step)?;
        std::mem::forget(fd);
    }
    Ok(())
}

fn read_lock(fd: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: an all-zero flock is valid (l_pid must be 0 for an OFD lock).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_RDLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // l_start 0, l_len 0: the whole file, however it grows.
    // SAFETY: fcntl with F_OFD_SETLK reads the flock we pass for the call
    // only; the fd is open.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &lock) } == -1 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EACCES) => std::io::Error::other(
                "another process holds a write lock on it (is a sandbox already running with it?)",
            ),
            _ => e,
        });
    }
    Ok(())
}
