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

/// Carry out one protecting step.
pub fn apply(m: &MountStep, trees: &Trees, report: Reporter) -> Result<()> {
    let step = || m.describe();
    let root = trees.root.as_fd();
    match m {
        MountStep::Mask { path } => {
            let Some(target) = existing(root, path, step)? else {
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
            let Some(target) = existing(root, path, step)? else {
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

/// The path inside the root, or None when it does not exist.
fn existing(
    root: std::os::fd::BorrowedFd,
    path: &str,
    step: impl Fn() -> String,
) -> Result<Option<OwnedFd>> {
    match path_in(root, path) {
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
