//! A minimal /dev: a tmpfs holding binds of the host's harmless character
//! devices, a private devpts instance, shm, and the usual links. No disk,
//! no /dev/mem: the workload meets only what it needs. With a terminal,
//! /dev/console is that terminal (bound by `tty::bind_console`), never
//! the host's console.

use super::fs::{
    attach, clone_tree, ensure_target, mkdir_all_in, mount_fs_at, path_in, TargetKind,
};
use super::report::{SetupError, StepExt};
use crate::sys::{self, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// The nodes bound from the host's /dev, in the order of their numbers
/// in `crate::spec::STANDARD_DEVICES`: a node by one of these names that
/// opens another device (a disk renamed null on a broken host) is refused.
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];
const _: () = assert!(DEVICES.len() == crate::spec::STANDARD_DEVICES.len());

/// The workload has a terminal and airlock makes the sandbox's /dev: its
/// /dev/console is to be that terminal.
pub fn has_console(plan: &crate::plan::Plan) -> bool {
    plan.process.terminal
        && plan.filesystem.steps.iter().any(
            |s| matches!(s, crate::plan::MountStep::Dev { destination } if destination == "/dev"),
        )
}

/// `console`: leave an empty /dev/console for the terminal to be bound on.
pub fn mount_dev(
    root: BorrowedFd,
    host: &OwnedFd,
    dest: &str,
    console: bool,
) -> Result<(), SetupError> {
    let step = || format!("mount {dest}");
    // nodev: the nodes below are bind mounts of the host's, each a mount
    // of its own; a node made in the tmpfs itself (mknod without a user
    // namespace) opens nothing, wherever a racing rename moved it.
    mount_fs_at(
        root,
        dest,
        "tmpfs",
        &[("mode", Some("0755"))],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODEV,
    )
    .step(step)?;
    let dev = dest.trim_end_matches('/');
    for (name, (major, minor)) in DEVICES.iter().zip(crate::spec::STANDARD_DEVICES) {
        let step = || format!("mount {dev}/{name}");
        let src = path_in(host.as_fd(), &format!("/dev/{name}")).step(step)?;
        let st = rustix::fs::fstat(&src).step(step)?;
        let number = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::CharacterDevice
            || number != (*major, *minor)
        {
            return Err(SetupError::new(
                step(),
                format!("the host's /dev/{name} is not the character device {major}:{minor}"),
            ));
        }
        let target = ensure_target(root, &format!("{dev}/{name}"), TargetKind::File).step(step)?;
        let tree = clone_tree(&src, false).step(step)?;
        // Read-only: the node is the host's own inode, whose mode and times
        // a workload that owns it (uid 0 without a user namespace) could
        // change on the host (chmod 000 /dev/null). Reading and writing a
        // device ignore the mount's read-only flag.
        let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC;
        sys::mount_setattr(&tree, attrs, false).step(step)?;
        attach(tree, target).step(step)?;
    }
    mount_fs_at(
        root,
        &format!("{dev}/pts"),
        "devpts",
        &[
            ("newinstance", None),
            ("ptmxmode", Some("0666")),
            ("mode", Some("0620")),
        ],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
    )
    .step(|| format!("mount {dev}/pts"))?;
    // Sized as Docker, runc's default bundle and podman size theirs: an
    // unsized tmpfs takes up to half the host's memory, pages no process
    // is charged for, which the OOM killer cannot free by killing the
    // writer (it picks host processes instead). A workload that needs
    // more mounts a tmpfs of its size over it.
    mount_fs_at(
        root,
        &format!("{dev}/shm"),
        "tmpfs",
        &[("mode", Some("1777")), ("size", Some("64m"))],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
    )
    .step(|| format!("mount {dev}/shm"))?;
    let dir = mkdir_all_in(root, dev).step(step)?;
    for (name, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        rustix::fs::symlinkat(target, &dir, name).step(|| format!("symlink {dev}/{name}"))?;
    }
    if console {
        ensure_target(root, &format!("{dev}/console"), TargetKind::File)
            .step(|| format!("make {dev}/console"))?;
    }
    Ok(())
}
