//! Which running sandbox holds which persistent overlay layer: one lock
//! file per directory (named by its device and inode) in a directory of
//! the caller's own, never a lock on the layer or its parents themselves.
//!
//! Any local user who can open a directory can `flock` it, `/` and
//! `/home` included: locks taken on the directories would let anyone hold
//! every sandbox's persistent layers hostage (`flock -x /` refused them
//! all as lying inside a running sandbox's layer). In a directory only
//! the caller (and root) may write, a lock is a sandbox's: root's
//! sandboxes, whatever started them (the CLI, airlockd, airlock-runtime),
//! share `/run/airlock/layers`, and a user's share the one in their
//! runtime directory. Sandboxes of different users cannot share a layer
//! anyway (each is owned by its sandbox's root, as its judge insists).
//!
//! Lock files are removed by the last sandbox to let one go. A guard lock
//! on the directory keeps that from racing a sandbox that has opened the
//! file and not yet locked it (which would lock a name nobody sees): a
//! sandbox holds the guard shared while it opens and locks its files, the
//! one cleaning up holds it exclusively while it unlinks. The guard is
//! held only for those moments, never for a sandbox's life.

use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags, ResolveFlags};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// Where a caller's sandboxes lock their layers: `/run/airlock/layers`
/// for the host's root, `/run/user/UID/airlock/layers` for a user with a
/// runtime directory, `/tmp/airlock-UID/layers` otherwise (uid 0 of
/// `unshare -r` as the one id it maps). Not the state root a caller may
/// choose (`--state-root`): two sandboxes of one caller must meet here
/// whichever state root each was given.
fn lock_dir(namespaced_root: bool) -> PathBuf {
    let me = rustix::process::geteuid().as_raw();
    if me == 0 && !namespaced_root {
        return "/run/airlock/layers".into();
    }
    let outside = match namespaced_root {
        true => crate::sys::one_id_outside().unwrap_or(me),
        false => me,
    };
    let runtime = PathBuf::from(format!("/run/user/{outside}"));
    let ours = std::fs::symlink_metadata(&runtime).is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.is_dir() && m.uid() == me && m.mode() & 0o077 == 0
    });
    match ours {
        true => runtime.join("airlock/layers"),
        false => format!("/tmp/airlock-{outside}/layers").into(),
    }
}

/// The caller's lock directory, made (0700) where missing, with the
/// caller's state root above it; refused unless it is the caller's own
/// and nobody else may write it.
fn open_lock_dir(namespaced_root: bool) -> std::io::Result<OwnedFd> {
    let dir = lock_dir(namespaced_root);
    let parent = dir.parent().expect("a lock directory has a parent");
    let bad = |e: crate::state::StateError| std::io::Error::other(e.to_string());
    crate::state::StateRoot::open(parent).map_err(bad)?;
    crate::state::StateRoot::open(&dir).map_err(bad)?;
    Ok(rustix::fs::open(
        &dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Locks on the lock files of some directories, let go (and the files
/// removed by whoever lets one go last) when dropped.
pub struct Held {
    dir: OwnedFd,
    files: Vec<(OwnedFd, String)>,
    /// The process that took the locks. A child forked holding copies
    /// (PID 1, before it closes them) shares their locks: its drop must
    /// leave them and their files alone.
    taker: rustix::process::Pid,
}

/// How a directory is held.
#[derive(Clone, Copy)]
pub enum Hold {
    /// A layer: nobody else's, nor any layer's above or below it.
    Layer,
    /// A directory above a layer, which other layers may share.
    Above,
}

/// What [`Held::take`] met.
pub enum Taken {
    Held,
    /// Another running sandbox holds it in a way that conflicts.
    Busy,
}

impl Held {
    /// An empty set in the caller's lock directory.
    pub fn new(namespaced_root: bool) -> std::io::Result<Held> {
        Ok(Held {
            dir: open_lock_dir(namespaced_root)?,
            files: Vec::new(),
            taker: rustix::process::getpid(),
        })
    }

    /// Hold the directory at `path` (resolved without symlinks; not even
    /// read: a home of mode 0711 above a layer is held too) as `how`.
    pub fn take(&mut self, path: &str, how: Hold) -> std::io::Result<Taken> {
        let seen = rustix::fs::openat2(
            rustix::fs::CWD,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )?;
        let st = rustix::fs::fstat(&seen)?;
        let name = format!("{:x}-{:x}", st.st_dev, st.st_ino);
        let _guard = self.guard(FlockOperation::LockShared)?;
        let file = rustix::fs::openat(
            &self.dir,
            name.as_str(),
            OFlags::RDONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        let op = match how {
            Hold::Layer => FlockOperation::NonBlockingLockExclusive,
            Hold::Above => FlockOperation::NonBlockingLockShared,
        };
        match rustix::fs::flock(&file, op) {
            Ok(()) => {
                self.files.push((file, name));
                Ok(Taken::Held)
            }
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(Taken::Busy),
            Err(e) => Err(e.into()),
        }
    }

    /// The directory's guard lock, held while the returned fd lives.
    fn guard(&self, op: FlockOperation) -> std::io::Result<OwnedFd> {
        let guard = rustix::fs::openat(
            &self.dir,
            ".guard",
            OFlags::RDONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        rustix::fs::flock(&guard, op)?;
        Ok(guard)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.files.is_empty() || rustix::process::getpid() != self.taker {
            return;
        }
        // Nobody is between opening a lock file and locking it now: one
        // we can hold alone is held by no other sandbox, and goes.
        let Ok(_guard) = self.guard(FlockOperation::LockExclusive) else {
            return;
        };
        for (file, name) in self.files.drain(..) {
            if rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
                let _ = rustix::fs::unlinkat(&self.dir, name.as_str(), AtFlags::empty());
            }
        }
    }
}
