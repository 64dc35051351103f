//! A persistent overlay layer on the host side, before the namespaces
//! exist: its `upper/` and `work/` (an overlay mount's `upper_dir` and
//! `work_dir`) made where missing and handed to the sandbox's root,
//! judged as [`super::overlay`] judges them inside, held by one running
//! sandbox at a time, and removed again when the start fails.

use super::layer_lock::{Held, Hold, Taken};
use super::overlay::{expected_owner, open_layer_dir, Owner};
use super::report::{describe, SetupError, StepExt};
use crate::plan::{MountStep, Plan};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::os::fd::OwnedFd;

type Result<T> = std::result::Result<T, SetupError>;

/// On the host side, before the namespaces exist: make sure each
/// persistent upper layer (the root's `upper/` and `work/`, an overlay
/// mount's `upper_dir` and `work_dir`) is there, owned by the sandbox's
/// root (or its workload user) as the host sees that id, since overlayfs
/// in the sandbox's user namespace writes them as that user.
/// What was made is in the returned [`MadeDirs`], removed again unless
/// the sandbox gets going.
pub fn prepare_upper(plan: &Plan) -> Result<MadeDirs> {
    let mut made = MadeDirs {
        made: Vec::new(),
        locks: None,
    };
    if let crate::spec::Root::Overlay {
        upper: Some(dir), ..
    } = &plan.filesystem.root
    {
        let step = || format!("root upper layer {dir}");
        let parent = open_without_links(dir).map_err(|e| SetupError::io(step(), &e.into()))?;
        let layer = made.made.len();
        for name in ["upper", "work"] {
            // Cloned first: once made, the directory is in `made` or gone.
            let held = parent.try_clone().step(step)?;
            if prepare_dir(plan, &parent, dir, name).step(step)? {
                made.made.push((held, name.to_string()));
            }
        }
        for name in ["upper", "work"] {
            made.lock(
                plan,
                &format!("{}/{name}", dir.trim_end_matches('/')),
                layer,
            )
            .step(step)?;
        }
    }
    for (i, m) in plan.filesystem.steps.iter().enumerate() {
        let MountStep::Overlay {
            upper_dir: Some(upper),
            work_dir: Some(work),
            ..
        } = m
        else {
            continue;
        };
        let step = || plan.filesystem.step_name(i);
        let layer = made.made.len();
        made.made
            .extend(prepare_mount_dirs(plan, upper, work).step(step)?);
        made.lock(plan, upper, layer).step(step)?;
        made.lock(plan, work, layer).step(step)?;
    }
    Ok(made)
}

/// An upper layer, or a work directory, held for this sandbox alone while
/// it lives (see [`super::layer_lock`]): two overlays writing one upper
/// layer at once are undefined in overlayfs ("upperdir is in-use", logged
/// only, with `index=off`), and their files would mix; a mount empties
/// its work directory (`work/work`) under the overlay that has it
/// already, whose next copy-up then fails. One sandbox's work directory
/// given as another's upper layer is refused alike.
///
/// Nor may one lie inside another, or hold one (overlayfs only warns of
/// an upper inside a busy one, and sees nothing of one above): each
/// directory above a layer is held shared, so that a layer inside a
/// running sandbox's (whose exclusive hold its shared one meets), or
/// above one (whose shared hold its exclusive one meets), is refused;
/// layers side by side share their parents.
fn lock_layer(held: &mut Held, upper: &str) -> std::io::Result<()> {
    let busy = |kind, what: String| {
        std::io::Error::new(
            kind,
            format!("{what}; two sandboxes cannot write one at once"),
        )
    };
    let taken = held
        .take(upper, Hold::Layer)
        .map_err(|e| std::io::Error::other(format!("{upper}: lock: {}", describe(&e))))?;
    if let Taken::Busy = taken {
        return Err(busy(
            std::io::ErrorKind::WouldBlock,
            format!("{upper} is, or holds, the upper layer or work directory of a sandbox that is running"),
        ));
    }
    for above in std::path::Path::new(upper).ancestors().skip(1) {
        let above = above.to_string_lossy();
        // Not WouldBlock: what this sandbox made for it (in the other's
        // layer) is removed again, as after any failure.
        match held.take(&above, Hold::Above) {
            Ok(Taken::Held) => {}
            Ok(Taken::Busy) => {
                return Err(busy(
                    std::io::ErrorKind::Other,
                    format!("{upper} lies inside {above}, the upper layer or work directory of a sandbox that is running"),
                ))
            }
            // One we may not even look up (under a directory of mode
            // 0700 of someone else's) holds no layer of ours.
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {}
            Err(e) => {
                return Err(std::io::Error::other(format!(
                    "{above}: lock: {}",
                    describe(&e)
                )))
            }
        }
    }
    Ok(())
}

/// The persistent layer directories [`prepare_upper`] made, each with its
/// parent, and the locks that keep each upper layer this sandbox's.
/// Dropped, the locks go, and what was made is removed again while still
/// empty: a sandbox that failed to start (a missing bind source, a
/// refused mount) leaves none of it behind, owned by its ids, on the host.
#[must_use = "dropped, the directories are removed and the layers let go"]
pub struct MadeDirs {
    made: Vec<(OwnedFd, String)>,
    locks: Option<Held>,
}

impl MadeDirs {
    /// The sandbox got going: what it made stays, as it is its layer.
    pub fn keep(&mut self) {
        self.made.clear();
    }

    /// Hold `upper` (or a work directory) for this sandbox. Made here (`made[layer..]`) but held
    /// by another that started at the same moment, the layer's directories
    /// are that sandbox's now: they stay when this one fails.
    fn lock(&mut self, plan: &Plan, upper: &str, layer: usize) -> std::io::Result<()> {
        let held = match &mut self.locks {
            Some(held) => held,
            None => self
                .locks
                .insert(Held::new(plan.caller.namespaced_root).map_err(|e| {
                    std::io::Error::other(format!("the directory of layer locks: {e}"))
                })?),
        };
        match lock_layer(held, upper) {
            Ok(()) => Ok(()),
            Err(e) => {
                if e.kind() == std::io::ErrorKind::WouldBlock {
                    self.made.truncate(layer);
                }
                Err(e)
            }
        }
    }
}

impl Drop for MadeDirs {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        for (parent, name) in self.made.drain(..) {
            // With what setup put there once the overlay was mounted (its
            // work/work, the mount points it made in upper/), and nothing
            // else: no workload ran. Beneath the parent we opened, whatever
            // its path leads to now; remove_tree follows no symlink.
            let made = format!("/proc/self/fd/{}/{name}", parent.as_raw_fd());
            crate::fs::remove_tree(std::path::Path::new(&made));
        }
    }
}

/// An overlay mount's `upper_dir` and `work_dir`, each made if missing
/// (and handed to the sandbox's root): both parents opened, and both
/// checked to be on one mount, before anything is made; and what was made
/// removed again if the other fails.
fn prepare_mount_dirs(
    plan: &Plan,
    upper: &str,
    work: &str,
) -> std::io::Result<Vec<(OwnedFd, String)>> {
    let mut opened = Vec::with_capacity(2);
    for path in [upper, work] {
        let (dir, name) = crate::fs::split_parent(path);
        if matches!(name, "" | "." | "..") {
            return Err(std::io::Error::other(format!(
                "{path}: give the directory itself, not / nor one ending in . or .."
            )));
        }
        let dir = if dir.is_empty() { "/" } else { dir };
        opened.push((open_parent(dir)?, dir, name));
    }
    let mount = |(parent, _, name): &(OwnedFd, &str, &str)| -> std::io::Result<u64> {
        // The directory's own mount when it is there, else its parent's.
        let there = rustix::fs::statx(
            parent,
            *name,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            rustix::fs::StatxFlags::MNT_ID,
        );
        let st = match there {
            Err(rustix::io::Errno::NOENT) => rustix::fs::statx(
                parent,
                "",
                rustix::fs::AtFlags::EMPTY_PATH,
                rustix::fs::StatxFlags::MNT_ID,
            )?,
            other => other?,
        };
        Ok(st.stx_mnt_id)
    };
    if mount(&opened[0])? != mount(&opened[1])? {
        return Err(two_mounts(upper, work));
    }
    // Removed again, when dropped, if the other fails.
    let mut made = MadeDirs {
        made: Vec::new(),
        locks: None,
    };
    for (parent, dir, name) in opened {
        if prepare_dir(plan, &parent, dir, name)? {
            made.made.push((parent, name.to_string()));
        }
    }
    Ok(std::mem::take(&mut made.made))
}

pub(super) fn two_mounts(upper: &str, work: &str) -> std::io::Error {
    std::io::Error::other(format!(
        "upper_dir {upper} and work_dir {work} are on two mounts; overlayfs needs them on one"
    ))
}

/// [`open_without_links`], saying what to do about a link on the way.
pub(super) fn open_parent(dir: &str) -> std::io::Result<OwnedFd> {
    open_without_links(dir).map_err(|e| match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::XDEV => {
            let real = std::fs::canonicalize(dir)
                .map(|p| format!(" ({})", p.display()))
                .unwrap_or_default();
            std::io::Error::other(format!(
                "{dir} is reached through a symbolic link, which is not followed where airlock makes directories: give its real path{real}"
            ))
        }
        e => std::io::Error::other(format!("{dir}: {}", describe(&e.into()))),
    })
}

/// A directory opened with no symlink anywhere on the way: what is made
/// in it is made with the caller's (maybe root's) privileges, before the
/// runner re-judges the path.
fn open_without_links(dir: &str) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat2(
        rustix::fs::CWD,
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
}

/// `dir`/`name` made if missing (and then handed to the sandbox's root),
/// and judged as [`open_layer_dir`] judges it.
fn prepare_dir(
    plan: &Plan,
    parent: &OwnedFd,
    dir: &str,
    name: &str,
) -> std::result::Result<bool, std::io::Error> {
    let owner = expected_owner(plan);
    let created = match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o755)) {
        Ok(()) => {
            // 0755 whatever the caller's umask: the merged directory takes
            // the upper layer's mode (077 made the sandbox's `/` 0700).
            if let Err(e) = give_0755(parent, name) {
                let _ = rustix::fs::unlinkat(parent, name, rustix::fs::AtFlags::REMOVEDIR);
                return Err(e);
            }
            true
        }
        Err(rustix::io::Errno::EXIST) => false,
        Err(e) => {
            return Err(std::io::Error::other(format!(
                "overlay: mkdir {}/{name}: {}",
                dir.trim_end_matches('/'),
                describe(&e.into())
            )))
        }
    };
    // Only what we just made is handed to the sandbox's root; made and
    // not handed over (a file system whose owners cannot change, as vfat
    // or an NFS export that squashes root), it is removed again (rmdir:
    // only an empty one, which ours is).
    let hand_over = plan.user_ns() && plan.caller.is_root();
    if let (true, Some(Owner { uid, gid, .. }), true) = (created, owner, hand_over) {
        if let Err(e) = hand_to(parent, dir, name, uid, gid) {
            let _ = rustix::fs::unlinkat(parent, name, rustix::fs::AtFlags::REMOVEDIR);
            return Err(e);
        }
    }
    // What was there already is judged before anything else uses it.
    let judged = open_layer_dir(parent, dir, name, owner).map(drop);
    if judged.is_err() && created {
        let _ = rustix::fs::unlinkat(parent, name, rustix::fs::AtFlags::REMOVEDIR);
    }
    judged.map(|()| created)
}

/// Open the directory `name` right in `parent`, never through a symlink
/// someone put in its place.
fn open_dir_here(parent: &OwnedFd, name: &str) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Mode 0755 for the directory `name` we just made in `parent`, only if it
/// is still ours (one renamed into its place by whoever may write the
/// parent is left alone, and refused later).
fn give_0755(parent: &OwnedFd, name: &str) -> std::io::Result<()> {
    let d = open_dir_here(parent, name)?;
    if rustix::fs::fstat(&d)?.st_uid == rustix::process::geteuid().as_raw() {
        rustix::fs::fchmod(&d, Mode::from_raw_mode(0o755))?;
    }
    Ok(())
}

/// Give the directory `name` we just made in `parent` to `uid`:`gid`.
fn hand_to(parent: &OwnedFd, dir: &str, name: &str, uid: u32, gid: u32) -> std::io::Result<()> {
    let d = open_dir_here(parent, name)?;
    // The one we made, still empty: in a parent others may write, one
    // of theirs renamed into its place (with what it holds) must not
    // become the sandbox's.
    // (Emptiness read, not counted by links: btrfs counts none.)
    let st = rustix::fs::fstat(&d)?;
    let empty = rustix::fs::Dir::read_from(&d)?
        .all(|e| e.is_ok_and(|e| matches!(e.file_name().to_bytes(), b"." | b"..")));
    if st.st_uid != rustix::process::geteuid().as_raw() || !empty {
        return Err(std::io::Error::other(format!(
            "overlay: {}/{name} was replaced while it was being made",
            dir.trim_end_matches('/')
        )));
    }
    rustix::fs::fchown(
        &d,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .map_err(|e| {
        std::io::Error::other(format!(
            "overlay: give {}/{name} to the sandbox's root ({uid}:{gid}): {}",
            dir.trim_end_matches('/'),
            describe(&e.into())
        ))
    })?;
    Ok(())
}
