//! The sandbox's root at its host path while the OCI hooks before
//! pivot_root run.
//!
//! runc runs prestart, createRuntime and createContainer with the
//! container's rootfs mounted where the bundle names it, in the
//! container's mount namespace, whose root is then still the host's: a
//! hook that enters that namespace (`nsenter -m -t PID`, NVIDIA's legacy
//! prestart hook) or runs in it (createContainer) finds the host's
//! programs and mounts at `<rootfs>/x`, and the container gets the mount.
//! Here PID 1 has pivoted onto a staging tmpfs by then (the host's tree
//! at /oldroot, the root at /newroot), so for the hooks:
//! - the root is bound at its path in the host's tree, where a
//!   createContainer hook is chrooted, as a peer of the root's mounts, so
//!   that what a hook mounts there propagates into the root;
//! - each name at the top of the host's tree gets a symbolic link of that
//!   name in the staging tmpfs, which a process joining the namespace
//!   finds at its root: `/usr/bin/mount`, its libraries and the rootfs
//!   path lead where they do on the host.
//!
//! Both go, and the root is made private again, before the protections
//! and pivot_root (which refuses a shared root).

use super::report::{Reporter, SetupError, StepExt};
use crate::plan::Plan;
use crate::spec::Root;
use rustix::fs::CWD;
use rustix::mount::{
    mount_change, move_mount, open_tree, unmount, MountPropagationFlags, MoveMountFlags,
    OpenTreeFlags, UnmountFlags,
};

type Result<T> = std::result::Result<T, SetupError>;

/// What [`bind`] made, for [`unbind`] to take away.
pub struct Aliases {
    bound: Option<String>,
    links: Vec<String>,
}

/// Bind the root (a directory root: the others have no host path) at
/// its host path in the host's tree, as a peer, and lead the staging
/// tmpfs's top names to the host's.
pub fn bind(plan: &Plan, report: Reporter) -> Result<Aliases> {
    let mut made = Aliases {
        bound: None,
        links: Vec::new(),
    };
    let Root::Path { path, .. } = &plan.filesystem.root else {
        return Ok(made);
    };
    // First: an absolute symbolic link on the way to the root in the
    // host's tree (/var/run) resolves from our root, the staging tmpfs.
    let host = std::fs::read_dir("/oldroot").step(|| "read the host's root directory".into())?;
    for entry in host {
        let entry = entry.step(|| "read the host's root directory".into())?;
        let Some(name) = entry.file_name().to_str().map(String::from) else {
            continue;
        };
        // Staging's own names stay its own.
        if matches!(name.as_str(), "oldroot" | "newroot") {
            continue;
        }
        let link = format!("/{name}");
        match rustix::fs::symlink(format!("/oldroot/{name}").as_str(), link.as_str()) {
            Ok(()) => made.links.push(link),
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e).step(|| format!("staging {link} for the hooks")),
        }
    }
    report.progress(|| format!("bind the root at {path} for the hooks"));
    let step = || format!("root {path}: bind it at its path for the OCI hooks");
    mount_change(
        "/newroot",
        MountPropagationFlags::SHARED | MountPropagationFlags::REC,
    )
    .step(step)?;
    // A recursive clone of shared mounts: each one a peer of the mount it
    // copies.
    let tree = open_tree(
        CWD,
        "/newroot",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .step(step)?;
    let at = format!("/oldroot/{}", path.trim_start_matches('/'));
    move_mount(
        &tree,
        "",
        CWD,
        at.as_str(),
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .step(|| format!("{}: at {at}", step()))?;
    made.bound = Some(at);
    Ok(made)
}

/// Take away what [`bind`] made, and make the root's mounts private
/// again (what the hooks mounted stays in the root).
pub fn unbind(made: Aliases, report: Reporter) -> Result<()> {
    if let Some(at) = &made.bound {
        report.progress(|| "detach the root's bind for the hooks".into());
        // Private before the detach: an unmount propagates to the peers
        // of each parent, and the bind's mounts are the root's mounts'
        // peers, so detaching them shared would take the root's own
        // mounts (its /proc) along. Before the links go: the bind's path
        // may lead through one (/var/run).
        for tree in ["/newroot", at.as_str()] {
            mount_change(
                tree,
                MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
            )
            .step(|| format!("make {tree}'s mounts private again"))?;
        }
        unmount(at.as_str(), UnmountFlags::DETACH)
            .step(|| format!("detach the root's bind at {at}"))?;
    }
    for link in &made.links {
        rustix::fs::unlink(link.as_str()).step(|| format!("remove staging {link}"))?;
    }
    Ok(())
}
