//! An overlay root: read-only lower layers (an image's layers, or a
//! rootfs) under a writable upper layer that is either a size-limited
//! tmpfs, gone with the sandbox, or a persistent directory. The workload
//! can dirty its root without touching the layers.
//!
//! Each layer directory is opened once (and judged again, as every bind
//! source is) before the staging pivot; overlayfs is then given those
//! opened directories through /proc/self/fd magic links, so a path swapped
//! in between is never what is mounted. In a user namespace overlayfs
//! keeps its metadata in `user.overlay.*` xattrs (`userxattr`).

use super::fs::new_tmpfs;
use super::report::{SetupError, StepExt};
use crate::spec::Size;
use crate::sys::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID};
use rustix::fs::{Mode, OFlags};
use rustix::mount::{fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen};
use std::os::fd::{AsRawFd, OwnedFd};

type Result<T> = std::result::Result<T, SetupError>;

/// The opened layers.
pub struct Layers {
    pub lower: Vec<OwnedFd>,
    pub upper: Option<OwnedFd>,
}

/// The magic link to our own open fd, as seen from the staging root
/// (where the host's procfs is at /oldroot/proc).
fn fd_path(fd: &OwnedFd) -> String {
    format!("/oldroot/proc/self/fd/{}", fd.as_raw_fd())
}

fn mkdir_in(dir: &OwnedFd, name: &str) -> Result<()> {
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(e) => Err(SetupError::io(format!("overlay: mkdir {name}"), &e.into())),
    }
}

/// Mount the overlay (after the staging pivot) and return the detached
/// mount, ready to be attached as the new root.
pub fn mount(layers: &Layers, size: Option<Size>, userns: bool) -> Result<OwnedFd> {
    let step = || "root: overlay".to_string();
    let (upper, work) = match &layers.upper {
        Some(dir) => {
            mkdir_in(dir, "upper")?;
            mkdir_in(dir, "work")?;
            (
                format!("{}/upper", fd_path(dir)),
                format!("{}/work", fd_path(dir)),
            )
        }
        None => {
            // A tmpfs of our own under the staging root; overlayfs keeps it
            // alive after the staging tree is detached.
            let tmp = new_tmpfs(0o755, size).step(step)?;
            rustix::fs::mkdir("/overlay-upper", Mode::from_raw_mode(0o755)).step(step)?;
            rustix::mount::move_mount(
                &tmp,
                "",
                rustix::fs::CWD,
                "/overlay-upper",
                rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
            )
            .step(step)?;
            let dir = rustix::fs::open(
                "/overlay-upper",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .step(step)?;
            mkdir_in(&dir, "upper")?;
            mkdir_in(&dir, "work")?;
            ("/overlay-upper/upper".into(), "/overlay-upper/work".into())
        }
    };
    let lower: Vec<String> = layers.lower.iter().map(fd_path).collect();
    let fs = fsopen("overlay", rustix::mount::FsOpenFlags::FSOPEN_CLOEXEC).step(step)?;
    let set = |k: &str, v: &str| {
        fsconfig_set_string(&fs, k, v)
            .map_err(|e| SetupError::io(format!("root: overlay {k}={v}"), &e.into()))
    };
    set("lowerdir", &lower.join(":"))?;
    set("upperdir", &upper)?;
    set("workdir", &work)?;
    if userns {
        fsconfig_set_flag(&fs, "userxattr").step(|| "root: overlay userxattr".into())?;
    }
    fsconfig_create(&fs).step(step)?;
    fsmount(
        &fs,
        rustix::mount::FsMountFlags::FSMOUNT_CLOEXEC,
        rustix::mount::MountAttrFlags::from_bits_retain(
            (MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV) as u32,
        ),
    )
    .step(step)
}

/// On the host side, before the namespaces exist: make sure a persistent
/// upper layer has its `upper/` and `work/` directories, owned by the
/// sandbox's root (or its workload user) as the host sees that id, since
/// overlayfs in the sandbox's user namespace writes them as that user.
pub fn prepare_upper(plan: &crate::plan::Plan) -> Result<()> {
    let crate::spec::Root::Overlay {
        upper: Some(dir), ..
    } = &plan.spec.filesystem.root
    else {
        return Ok(());
    };
    let step = || format!("root upper layer {dir}");
    let to_host = |maps: &[crate::spec::IdMap], id: u32| {
        maps.iter()
            .find(|m| id >= m.inside && id - m.inside < m.count)
            .map(|m| m.outside + (id - m.inside))
    };
    let owner = if plan.spec.namespaces.user {
        let uid = to_host(&plan.uid_map, 0).or_else(|| to_host(&plan.uid_map, plan.process.uid));
        let gid = to_host(&plan.gid_map, 0).or_else(|| to_host(&plan.gid_map, plan.process.gid));
        uid.zip(gid)
    } else {
        None
    };
    // No symlink anywhere on the way: this runs with the caller's (maybe
    // root's) privileges, before the runner re-judges the path.
    let parent = rustix::fs::openat2(
        rustix::fs::CWD,
        dir.as_str(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        rustix::fs::ResolveFlags::NO_SYMLINKS | rustix::fs::ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| SetupError::io(step(), &e.into()))?;
    for name in ["upper", "work"] {
        let created = match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755)) {
            Ok(()) => true,
            Err(rustix::io::Errno::EXIST) => false,
            Err(e) => return Err(SetupError::io(format!("overlay: mkdir {name}"), &e.into())),
        };
        // Only what we just made is handed to the sandbox's root.
        if let (true, Some((uid, gid)), true) = (created, owner, plan.caller.is_root()) {
            let d = rustix::fs::openat(
                &parent,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .step(step)?;
            rustix::fs::fchown(
                &d,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            )
            .step(step)?;
        }
    }
    Ok(())
}
