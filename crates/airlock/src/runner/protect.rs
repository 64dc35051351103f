//! The mount steps that take away rather than add, run once every mount
//! exists (the plan orders them last): OCI masked paths, read-only paths,
//! each /dev sealed read-only, and the read-only root.

use super::fs::{attach, clone_tree, is_dir, new_fs, path_in};
use super::mount::Trees;
use super::report::{Reporter, SetupError, StepExt};
use crate::plan::MountStep;
use crate::sys::{self, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use std::os::fd::{AsFd, OwnedFd};

type Result<T> = std::result::Result<T, SetupError>;

/// The proc and sysfs mounts of the sandbox, each by the handle its
/// mount step kept, under the destination it was mounted on.
///
/// A masked or read-only path beneath one (`/proc/kcore`, `/sys/firmware`)
/// is found from that handle. Found by its path again, from the root, a
/// rootfs another container shares and writes could have renamed the
/// directory the mount sits on away (the mount goes with it) and put an
/// empty one in its place: the path would be absent, the mask skipped,
/// and the workload's procfs, unmasked, at the new name (runc's
/// CVE-2019-19921 class).
#[derive(Default)]
pub struct Kernel(Vec<(String, OwnedFd)>);

impl Kernel {
    pub fn add(&mut self, destination: &str, mount: OwnedFd) {
        self.0
            .push((destination.trim_end_matches('/').to_string(), mount));
    }

    /// The mount `path` lies in or beneath, and the rest of the path
    /// below it: the deepest such mount.
    fn beneath<'a>(&self, path: &'a str) -> Option<(&OwnedFd, &'a str)> {
        self.0
            .iter()
            .filter_map(|(dest, fd)| {
                let rest = path.strip_prefix(dest.as_str())?;
                (rest.is_empty() || rest.starts_with('/')).then_some((dest.len(), fd, rest))
            })
            .max_by_key(|(len, _, _)| *len)
            .map(|(_, fd, rest)| (fd, rest))
    }
}

/// Carry out one protecting step.
pub fn apply(m: &MountStep, trees: &Trees, kernel: &Kernel, report: Reporter) -> Result<()> {
    let step = || m.describe();
    let root = trees.root.as_fd();
    match m {
        MountStep::Mask { path } => {
            let Some(target) = existing(root, kernel, path, step)? else {
                return Ok(()); // absent: nothing to hide
            };
            report.progress(step);
            if is_dir(&target).step(step)? {
                let empty = new_fs(
                    "tmpfs",
                    &[("mode", Some("0")), ("size", Some("4096"))],
                    MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                )
                .step(step)?;
                attach(empty, target).step(step)
            } else {
                mask_file(trees, target, &step)
            }
        }
        MountStep::ReadOnly { path } => {
            let Some(target) = existing(root, kernel, path, step)? else {
                return Ok(());
            };
            report.progress(step);
            let tree = clone_tree(&target, true).step(step)?;
            let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
            sys::mount_setattr(&tree, attrs, true).step(step)?;
            attach(tree, &target).step(step)
        }
        MountStep::SealDev { destination } => {
            let dev = super::fs::plain_dir_in(root, destination).step(step)?;
            let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC;
            sys::mount_setattr(&dev, attrs, false).step(step)
        }
        MountStep::ReadOnlyRoot => {
            report.progress(step);
            sys::mount_setattr(&trees.root, MOUNT_ATTR_RDONLY, false).step(step)
        }
        _ => unreachable!("mount::apply runs the steps that add"),
    }
}

/// The path inside the root (beneath the proc or sysfs mount it lies in,
/// found by the mount's own handle), or None when it does not exist.
fn existing(
    root: std::os::fd::BorrowedFd,
    kernel: &Kernel,
    path: &str,
    step: impl Fn() -> String,
) -> Result<Option<OwnedFd>> {
    let found = match kernel.beneath(path) {
        // The mount's own root when the path is its destination.
        Some((mount, rest)) if rest.trim_matches('/').is_empty() => path_in(mount, "."),
        Some((mount, rest)) => path_in(mount, rest),
        None => path_in(root, path),
    };
    match found {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(SetupError::io(step(), &e)),
    }
}

/// The host's /dev/null over a file, checked to be the null device: a
/// rootfs's own /dev/null could be a symlink to something writable (runc
/// CVE-2025-31133).
fn mask_file(trees: &Trees, target: OwnedFd, step: &dyn Fn() -> String) -> Result<()> {
    let null = path_in(&trees.host, "/dev/null").step(step)?;
    let st = rustix::fs::fstat(&null).step(step)?;
    let is_null = rustix::fs::FileType::from_raw_mode(st.st_mode)
        == rustix::fs::FileType::CharacterDevice
        && rustix::fs::major(st.st_rdev) == 1
        && rustix::fs::minor(st.st_rdev) == 3;
    if !is_null {
        return Err(SetupError::new(
            step(),
            "the host's /dev/null is not the null device",
        ));
    }
    let tree = clone_tree(&null, false).step(step)?;
    sys::mount_setattr(
        &tree,
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
        false,
    )
    .step(step)?;
    attach(tree, target).step(step)
}
