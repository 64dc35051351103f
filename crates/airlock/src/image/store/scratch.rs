//! The store's `tmp/`: each entry's maker holds a lock on it for as long
//! as it works there, and sweeps and prunes take only what they can lock.

use super::super::ImageError;
use super::{open_dir, Store};
use crate::fs::remove_tree;
use std::path::{Path, PathBuf};

impl Store {
    /// A fresh directory under the store's `tmp/`, for work that is
    /// renamed into place or removed: made here and now, never one that
    /// was there (two pulls of one process, a daemon's, in the same clock
    /// tick would otherwise unpack into one directory).
    pub fn scratch(&self, prefix: &str) -> Result<Scratch, ImageError> {
        let tmp = self.root.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| ImageError::io(&tmp, e))?;
        loop {
            let dir = self.scratch_name(prefix);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                // Left by a process of the same pid before (a reboot ago).
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(ImageError::io(&dir, e)),
            }
            // A sweep that came between the mkdir and the lock (one in
            // another pid namespace, which cannot see our pid) holds it
            // or has removed it: a new name then.
            match claim(&dir) {
                Claim::Taken(held) if still_at(&held, &dir) => {
                    return Ok(Scratch {
                        path: dir,
                        _held: held,
                    })
                }
                Claim::Taken(_) | Claim::Busy => continue,
                Claim::Unopenable(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Claim::Unopenable(e) => return Err(ImageError::io(&dir, e)),
            }
        }
    }

    /// A name under `tmp/` that holds this process's pid after `prefix`
    /// (see `scratch_owner`), not taken before by this process.
    pub(super) fn scratch_name(&self, prefix: &str) -> PathBuf {
        static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{prefix}-{}-{nonce}-{n}", std::process::id()))
    }

    /// Remove what pulls that were killed left in `tmp/` (a partial layer,
    /// an archive's copy): a pull does it first, under the shared lock,
    /// so that they do not wait for a prune. Only entries whose process
    /// is gone: another pull's, this process's own included (a daemon
    /// pulls for several clients at once), are its work in progress.
    pub(crate) fn sweep_scratch(&self) {
        for e in std::fs::read_dir(self.root.join("tmp"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(_held) = abandoned(&e.path(), &name) {
                remove_tree(&e.path());
            }
        }
    }
}

/// A directory under the store's `tmp/` (see [`Store::scratch`]) and
/// the lock on it that says its maker is still at work: liveness by lock,
/// not by the pid in its name alone, which a process in another pid
/// namespace sharing the store (a daemon in a container, a CLI on the
/// host) cannot see, and would sweep the work of.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
    _held: std::os::fd::OwnedFd,
}

impl Scratch {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What taking the lock of a `tmp/` entry (or a layer's directory) gave.
pub(super) enum Claim {
    /// Ours now: nobody else was at work there.
    Taken(std::os::fd::OwnedFd),
    /// Another open of it holds the lock: its maker, or a prune or sweep
    /// removing it.
    Busy,
    /// Not a directory we may open (a file, a directory a layer made
    /// unreadable, gone).
    Unopenable(std::io::Error),
}

/// Take `dir`'s lock (an exclusive flock on the directory itself) if
/// nobody holds it.
pub(super) fn claim(dir: &Path) -> Claim {
    let fd = match open_dir(dir) {
        Ok(fd) => fd,
        Err(e) => return Claim::Unopenable(e.into()),
    };
    match rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Claim::Taken(fd),
        Err(rustix::io::Errno::WOULDBLOCK) => Claim::Busy,
        Err(e) => Claim::Unopenable(e.into()),
    }
}

/// Whether `held` is still the directory at `path` (a sweep may have
/// removed it between its mkdir and our lock).
pub(super) fn still_at(held: &std::os::fd::OwnedFd, path: &Path) -> bool {
    match (rustix::fs::fstat(held), rustix::fs::lstat(path)) {
        (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
        _ => false,
    }
}

/// The `tmp/` entry `path` (named `name`) is nobody's work in progress:
/// returns its lock to hold while it is removed (`None` for one that
/// cannot be opened, judged by its name's pid alone). A locked entry is a
/// living process's, wherever its pid is seen. An unlocked one is
/// nobody's, whatever its pid: every writer holds its lock from the mkdir
/// on (see [`Store::scratch`]), and a pid alive here may be another
/// process's now (after a reboot, or in another pid namespace), which
/// kept a killed pull's gigabytes for as long as that process ran.
pub(super) fn abandoned(path: &Path, name: &str) -> Option<Option<std::os::fd::OwnedFd>> {
    match claim(path) {
        Claim::Busy => None,
        Claim::Taken(fd) => Some(Some(fd)),
        Claim::Unopenable(_) if scratch_owner(name) == Owner::Alive => None,
        Claim::Unopenable(_) => Some(None),
    }
}

/// Who made a `tmp/` entry.
#[derive(PartialEq, Eq)]
pub(super) enum Owner {
    /// This process.
    Ours,
    /// Another process that is still there.
    Alive,
    /// A process that is gone.
    Gone,
    /// A name of another form.
    Unknown,
}

/// The process that made the `tmp/` entry `name`
/// (`PREFIX-PID-NONCE-N`, as [`Store::scratch`] names them).
pub(super) fn scratch_owner(name: &str) -> Owner {
    let mut parts = name.rsplitn(4, '-');
    let (Some(_n), Some(_nonce), Some(pid), Some(_prefix)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Owner::Unknown;
    };
    let Some(pid) = pid.parse().ok().and_then(rustix::process::Pid::from_raw) else {
        return Owner::Unknown;
    };
    if pid == rustix::process::getpid() {
        return Owner::Ours;
    }
    match rustix::process::test_kill_process(pid) {
        Err(rustix::io::Errno::SRCH) => Owner::Gone,
        _ => Owner::Alive,
    }
}
