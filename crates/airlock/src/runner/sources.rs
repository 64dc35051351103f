//! Bind sources and a directory root, opened and cloned.
//!
//! For a root caller the supervisor does this on the host side before
//! PID 1 exists, with root's privileges: the sandbox can then bind what
//! only root may open (an OCI client's per-container files under a 0700
//! directory) while its setup runs as an unprivileged id, and the trees
//! can be idmapped. A rootless caller may not clone mounts of the host's
//! mount namespace, so there PID 1 does the same in its own copy of it. Each path is opened once,
//! the object it really leads to is judged again by the guardrails (a
//! path swapped after the caller's check cannot change what the sandbox
//! gets), and cloned with `open_tree` into a detached mount with its
//! attributes (read-only, nosuid, nodev) set. PID 1 inherits the fds over
//! clone3 and attaches them in its own tree; a detached mount is not in
//! any mount namespace, so moving it into PID 1's is allowed.

use super::fs::{clone_tree, ensure_target, is_dir, path_in, TargetKind};
use super::report::{Reporter, SetupError, StepExt};
use crate::check::Snapshot;
use crate::plan::mounts::Idmap;
use crate::plan::{MountStep, Plan};
use crate::spec::Root;
use crate::state::CgroupPaths;
use crate::sys::{self, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use rustix::fs::{Mode, OFlags};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

type Result<T> = std::result::Result<T, SetupError>;

/// Detached mounts for PID 1 to attach.
pub struct HostTrees {
    /// The tree of each bind step, by step index.
    pub binds: Vec<Option<OwnedFd>>,
    /// The root, when it is a host directory.
    pub root: Option<OwnedFd>,
    /// The sandbox's own cgroup directories, read-only, by the name they
    /// take under a cgroup mount ("" for a v2 directory alone).
    pub cgroups: Vec<(String, OwnedFd)>,
    /// A root caller's overlay root, by layer: the read-only tree of one
    /// whose owner the sandbox's user namespace does not map (a rootfs of
    /// host root's), to be idmapped through it; `None` for one PID 1
    /// opens itself (a store layer, the sandbox range's already).
    pub lowers: Vec<Option<OwnedFd>>,
    /// The same for each writable overlay mount, by step (empty when
    /// none has such a layer).
    pub step_lowers: Vec<Vec<Option<OwnedFd>>>,
}

/// What PID 1 attaches: trees the supervisor cloned on the host side (a
/// root caller's), or those PID 1 is to clone in its own mount namespace
/// (a rootless caller's), with the paths of the sandbox's cgroups.
pub enum Sources {
    Cloned(HostTrees),
    ToClone(Option<CgroupPaths>),
}

/// Open, re-judge and clone every bind source and a directory root, and
/// the sandbox's cgroup directories (`cgroup`) for a cgroup mount.
pub fn clone_trees(
    plan: &Plan,
    cgroup: Option<&CgroupPaths>,
    report: Reporter,
) -> Result<HostTrees> {
    report.progress(|| "open, re-check and clone the bind sources".into());
    let seen = crate::check::Snapshot::take(plan.host.home.as_deref());
    let caller_userns = match &plan.filesystem.caller_maps {
        Some(maps) => Some(super::idmap::userns_with(maps)?),
        None => None,
    };
    let mut binds = Vec::with_capacity(plan.filesystem.steps.len());
    // Where a root caller's device nodes are made.
    let mut nodes: Option<OwnedFd> = None;
    for (i, m) in plan.filesystem.steps.iter().enumerate() {
        binds.push(match m {
            MountStep::Device { .. } => {
                let step = || plan.filesystem.step_name(i);
                Some(if plan.caller.is_root() {
                    if nodes.is_none() {
                        // Made by host root: no SB_I_NODEV, so the nodes
                        // open; nosuid like every mount.
                        let fs = super::fs::new_fs(
                            "tmpfs",
                            &[("mode", Some("0755"))],
                            MOUNT_ATTR_NOSUID,
                        )
                        .step(|| "a tmpfs for the device nodes".into())?;
                        nodes = Some(fs);
                    }
                    make_node(plan, nodes.as_ref().expect("made above"), i, m).step(step)?
                } else {
                    host_node(plan, &seen, m, &step)?
                })
            }
            MountStep::Bind {
                source,
                readonly,
                devices,
                idmap,
                noexec,
                recursive,
                ..
            } => {
                let step = || plan.filesystem.step_name(i);
                let src = open_source(plan, &seen, &step, source)?;
                let tree = clone_tree(&src, *recursive).step(step)?;
                let mut attrs = MOUNT_ATTR_NOSUID;
                if !devices {
                    attrs |= MOUNT_ATTR_NODEV;
                }
                if *readonly {
                    attrs |= MOUNT_ATTR_RDONLY;
                }
                if *noexec {
                    attrs |= MOUNT_ATTR_NOEXEC;
                }
                sys::mount_setattr(&tree, attrs, true).step(step)?;
                // A device node, fifo or socket holds no files to create or
                // own: its mode alone decides, as in bubblewrap, and a
                // devtmpfs cannot be idmapped anyway.
                if let (Idmap::Caller, Some(ns)) = (idmap, &caller_userns) {
                    if holds_files(&src).step(step)? {
                        sys::mount_setattr_idmap(&tree, ns)
                            .map_err(|e| not_idmappable(step(), source, &e))?;
                    }
                }
                Some(tree)
            }
            _ => None,
        });
    }
    let root = match &plan.filesystem.root {
        Root::Path {
            path,
            readonly,
            make_mountpoints: make,
        } => {
            let writable_top = !readonly || *make;
            let tree = root_tree(plan, &seen, path, *readonly, writable_top)?;
            if writable_top && plan.caller.is_root() {
                make_mountpoints(plan, &tree, &binds);
            }
            // Written as the caller, as a writable bind is. After the
            // mountpoints: through the idmapped tree host root is no id
            // at all (EOVERFLOW), unless the workload is the sandbox's
            // root.
            if let (true, Some(ns)) = (plan.filesystem.root_for_caller, &caller_userns) {
                sys::mount_setattr_idmap(&tree, ns)
                    .map_err(|e| not_idmappable(format!("root {path}"), path, &e))?;
            }
            Some(tree)
        }
        _ => None,
    };
    let wanted = plan
        .filesystem
        .steps
        .iter()
        .any(|m| matches!(m, MountStep::Cgroup { .. }));
    let cgroups = match cgroup {
        Some(paths) if wanted => clone_cgroups(paths)?,
        _ => Vec::new(),
    };
    let lowers = unmapped_lowers(plan, &seen)?;
    let step_lowers = unmapped_step_lowers(plan, &seen)?;
    Ok(HostTrees {
        binds,
        root,
        cgroups,
        lowers,
        step_lowers,
    })
}

/// A root caller's overlay root (in a user namespace): each layer whose
/// top the sandbox's ids do not own, cloned read-only here, to be
/// idmapped through its user namespace once the maps are written.
/// overlayfs refuses to copy up a file whose owner the namespace does not
/// map (and the sandbox's root may not write a directory of an unmapped
/// owner): over a rootfs of host root's, the workload could change
/// nothing it had not made itself. Through the idmap, host root's files
/// are the sandbox root's, as a directory root's are (`filesystem.idmap`);
/// the layer itself is never written (the upper layer takes every write).
fn unmapped_lowers(plan: &Plan, seen: &Snapshot) -> Result<Vec<Option<OwnedFd>>> {
    let Root::Overlay { lower, .. } = &plan.filesystem.root else {
        return Ok(Vec::new());
    };
    clone_unmapped(plan, seen, lower, &|l| format!("root layer {l}"))
}

/// The same for each writable overlay mount (bubblewrap's `--overlay-src
/// /usr --tmp-overlay /usr`, which as root it mounts over host root's
/// files without a user namespace): by step, its layers' trees (empty
/// for other steps and read-only overlays, which copy nothing up).
fn unmapped_step_lowers(plan: &Plan, seen: &Snapshot) -> Result<Vec<Vec<Option<OwnedFd>>>> {
    let mut out = Vec::new();
    for (i, m) in plan.filesystem.steps.iter().enumerate() {
        let trees = match m {
            MountStep::Overlay {
                lower,
                writable: true,
                ..
            } => clone_unmapped(plan, seen, lower, &|_| plan.filesystem.step_name(i))?,
            _ => Vec::new(),
        };
        out.push(trees);
    }
    // None at all: nothing to carry.
    if out.iter().all(|t| t.iter().all(Option::is_none)) {
        out.clear();
    }
    Ok(out)
}

/// `lower`'s layers, by layer: a read-only clone of each whose top the
/// sandbox's ids do not own, `None` for the others; all `None` unless the
/// caller is root and the sandbox has a user namespace.
fn clone_unmapped(
    plan: &Plan,
    seen: &Snapshot,
    lower: &[String],
    name: &dyn Fn(&str) -> String,
) -> Result<Vec<Option<OwnedFd>>> {
    if !plan.caller.is_root() || !plan.user_ns() {
        return Ok(Vec::new());
    }
    let mut trees = Vec::with_capacity(lower.len());
    for l in lower {
        // A store layer is unpacked for the sandbox's ids already (its top
        // directory aside, which may be host root's).
        if crate::image::store::is_store_layer(std::path::Path::new(l)) {
            trees.push(None);
            continue;
        }
        let step = || name(l);
        let src = open_source(plan, seen, &step, l)?;
        let st = rustix::fs::fstat(&src).step(step)?;
        if crate::spec::inside_id(&plan.uid_map, st.st_uid).is_some() {
            trees.push(None);
            continue;
        }
        if !is_dir(&src).step(step)? {
            return Err(SetupError::new(step(), "not a directory"));
        }
        let tree = clone_tree(&src, false).step(step)?;
        let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
        sys::mount_setattr(&tree, attrs, false).step(step)?;
        trees.push(Some(tree));
    }
    Ok(trees)
}

/// The sandbox's own cgroup directories as read-only trees, each alone
/// (not what is mounted below it), named as a cgroup mount shows them:
/// v1 controllers by name and v2 as `unified` beside them, or v2 alone.
/// These are directories airlock made, not caller paths to judge.
fn clone_cgroups(paths: &CgroupPaths) -> Result<Vec<(String, OwnedFd)>> {
    let v2_name = if paths.v1.is_empty() { "" } else { "unified" };
    let all = paths
        .v1
        .iter()
        .map(|(n, p)| (n.as_str(), p))
        .chain(paths.v2.iter().map(|p| (v2_name, p)));
    let mut trees = Vec::new();
    for (name, path) in all {
        let step = || format!("clone the cgroup {}", path.display());
        let dir = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .step(step)?;
        let tree = clone_tree(&dir, false).step(step)?;
        let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        sys::mount_setattr(&tree, attrs, false).step(step)?;
        trees.push((name.to_string(), tree));
    }
    Ok(trees)
}

/// On the host side, as root, the mountpoints a directory root lacks are
/// made before the sandbox's root (an unprivileged id) would need to: as
/// runc does, so an image without /run or /sys still takes those mounts.
/// Best effort: whatever fails here is tried again, and reported, by
/// PID 1. A mountpoint inside an earlier mount is made in that mount
/// later, not in the image.
fn make_mountpoints(plan: &Plan, root: &OwnedFd, binds: &[Option<OwnedFd>]) {
    let mut mounted: Vec<&str> = Vec::new();
    for (m, tree) in plan.filesystem.steps.iter().zip(binds) {
        let Some(dest) = m.mountpoint() else {
            continue;
        };
        let inside_earlier = mounted
            .iter()
            .any(|d| crate::check::paths::within(dest, d) && dest != *d);
        mounted.push(dest);
        // Nor is one behind a link (an image's /etc/resolv.conf -> ../run/
        // ...): where it leads may be an earlier mount's, which does not
        // exist yet; PID 1 follows it there.
        if inside_earlier || is_link_in(root, dest) {
            continue;
        }
        let kind = match tree.as_ref().map(is_dir) {
            Some(Ok(false)) => TargetKind::File,
            _ => TargetKind::Dir,
        };
        let _ = ensure_target(root, dest, kind);
    }
}

/// Is `path`'s last component, inside `root`, a symbolic link?
fn is_link_in(root: &OwnedFd, path: &str) -> bool {
    let (parent, name) = crate::fs::split_parent(path);
    crate::fs::open_in(root, parent, OFlags::PATH | OFlags::DIRECTORY)
        .is_ok_and(|dir| rustix::fs::readlinkat(&dir, name, Vec::new()).is_ok())
}

/// A device node of the sandbox's own on `fs`, with the mode and owner
/// the step asks for (its ids inside, mapped to the host's), cloned as a
/// bind of that one file.
fn make_node(plan: &Plan, fs: &OwnedFd, i: usize, m: &MountStep) -> io::Result<OwnedFd> {
    use rustix::fs::{AtFlags, FileType};
    let MountStep::Device {
        kind,
        major,
        minor,
        mode,
        uid,
        gid,
        ..
    } = m
    else {
        unreachable!("a device step")
    };
    let (host_uid, host_gid) = if plan.user_ns() {
        let unmapped = |what: &str, id: u32| {
            io::Error::other(format!(
                "{what} {id} is not mapped in the sandbox's user namespace"
            ))
        };
        (
            crate::spec::host_id(&plan.uid_map, *uid).ok_or_else(|| unmapped("uid", *uid))?,
            crate::spec::host_id(&plan.gid_map, *gid).ok_or_else(|| unmapped("gid", *gid))?,
        )
    } else {
        (*uid, *gid)
    };
    let name = format!("{i}");
    let ft = match kind {
        crate::spec::DeviceKind::Char => FileType::CharacterDevice,
        crate::spec::DeviceKind::Block => FileType::BlockDevice,
    };
    let dev = rustix::fs::makedev(*major, *minor);
    rustix::fs::mknodat(fs, name.as_str(), ft, Mode::from_raw_mode(*mode), dev)?;
    rustix::fs::chownat(
        fs,
        name.as_str(),
        Some(rustix::process::Uid::from_raw(host_uid)),
        Some(rustix::process::Gid::from_raw(host_gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    // mknod applied our umask.
    rustix::fs::chmodat(
        fs,
        name.as_str(),
        Mode::from_raw_mode(*mode),
        AtFlags::empty(),
    )?;
    Ok(rustix::mount::open_tree(
        fs,
        name.as_str(),
        rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
            | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )?)
}

/// A rootless caller cannot make a node: the host's at the same path,
/// if it is the device asked for and lets no more in than the mode asked
/// for, bound as it is (its owner and mode are the host's).
fn host_node(
    plan: &Plan,
    seen: &Snapshot,
    m: &MountStep,
    step: &dyn Fn() -> String,
) -> Result<OwnedFd> {
    let MountStep::Device {
        destination,
        kind,
        major,
        minor,
        mode,
        ..
    } = m
    else {
        unreachable!("a device step")
    };
    let src = open_source(plan, seen, step, destination)?;
    let st = rustix::fs::fstat(&src).step(step)?;
    let want = match kind {
        crate::spec::DeviceKind::Char => rustix::fs::FileType::CharacterDevice,
        crate::spec::DeviceKind::Block => rustix::fs::FileType::BlockDevice,
    };
    let same = rustix::fs::FileType::from_raw_mode(st.st_mode) == want
        && (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev)) == (*major, *minor);
    if !same {
        return Err(SetupError::new(
            step(),
            format!("the host's {destination} is not device {major}:{minor} of that kind"),
        ));
    }
    // Fail closed: a mode asked for but not given would open the device
    // to users it was meant to be closed to.
    let host_mode = st.st_mode & 0o7777;
    if host_mode & !mode != 0 {
        return Err(SetupError::new(
            step(),
            format!(
                "a rootless caller cannot make a node, and the host's {destination} (mode {host_mode:04o}, bound as it is) lets in more than the {mode:04o} asked for"
            ),
        ));
    }
    let tree = clone_tree(&src, false).step(step)?;
    // Read-only, as the minimal /dev's nodes are (the host's inode: its
    // mode is not the workload's to change); I/O on it is unaffected.
    sys::mount_setattr(&tree, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, false).step(step)?;
    Ok(tree)
}

/// A directory or a regular file, where ownership decides who may write.
fn holds_files(fd: &OwnedFd) -> io::Result<bool> {
    use rustix::fs::FileType;
    let st = rustix::fs::fstat(fd)?;
    Ok(matches!(
        FileType::from_raw_mode(st.st_mode),
        FileType::Directory | FileType::RegularFile
    ))
}

/// Why a writable bind could not be shown as the caller's, and the ways out.
fn not_idmappable(step: String, source: &str, e: &io::Error) -> SetupError {
    let fs = rustix::fs::statfs(source)
        .map(|s| format!(" (filesystem type {:#x})", s.f_type))
        .unwrap_or_default();
    let why = match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => {
            format!("the filesystem of {source}{fs} cannot be idmapped")
        }
        _ => super::report::describe(e),
    };
    SetupError {
        errno: e.raw_os_error(),
        ..SetupError::new(
            step,
            format!(
                "a writable bind of {source} is shown as the caller's through an idmapped mount, and {why}; \
                 bind it read-only, or set filesystem.bind_owner = \"as-is\" (--bind-owner as-is) to keep the host's ids"
            ),
        )
    }
}

impl HostTrees {
    /// Once PID 1's id maps are written: make the trees the plan shows
    /// with host ownership idmapped through its user namespace.
    /// `owner`: the user namespace PID 1 will join, when it is not its own.
    pub fn idmap(&self, plan: &Plan, pid: i32, owner: Option<&OwnedFd>) -> Result<()> {
        let wanted = plan
            .filesystem
            .steps
            .iter()
            .zip(&self.binds)
            .filter_map(|(m, t)| match m {
                MountStep::Bind {
                    idmap: Idmap::Host,
                    destination,
                    ..
                } => Some((destination.as_str(), t.as_ref())),
                _ => None,
            });
        let root = plan
            .filesystem
            .idmap_root
            .then_some(("/", self.root.as_ref()));
        let lowers = self
            .lowers
            .iter()
            .filter(|t| t.is_some())
            .map(|t| ("a layer of /", t.as_ref()));
        let step_lowers = self
            .step_lowers
            .iter()
            .flatten()
            .filter(|t| t.is_some())
            .map(|t| ("a layer of an overlay mount", t.as_ref()));
        let mut userns = None;
        for (dest, tree) in wanted.chain(root).chain(lowers).chain(step_lowers) {
            let step = || format!("idmap {dest}");
            let tree = tree.ok_or_else(|| SetupError::new(step(), "no tree was cloned for it"))?;
            if userns.is_none() && owner.is_none() {
                let path = format!("/proc/{pid}/ns/user");
                userns = Some(
                    rustix::fs::open(
                        path.as_str(),
                        OFlags::RDONLY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .step(|| "idmap: open the sandbox's user namespace".into())?,
                );
            }
            let ns = owner.unwrap_or_else(|| userns.as_ref().expect("opened above"));
            sys::mount_setattr_idmap(tree, ns).step(step)?;
        }
        Ok(())
    }
}

/// A host directory as the sandbox's root: nosuid and nodev throughout,
/// and with `readonly` everything below it read-only now. With
/// `writable_top` (the spec's `make_mountpoints`) its top stays writable
/// for the mountpoints setup makes until the plan's last step makes it
/// read-only too; without, a read-only directory is never written.
fn root_tree(
    plan: &Plan,
    seen: &Snapshot,
    path: &str,
    readonly: bool,
    writable_top: bool,
) -> Result<OwnedFd> {
    let step = || format!("root {path}");
    let src = open_source(plan, seen, &step, path)?;
    if !is_dir(&src).step(step)? {
        return Err(SetupError::new(
            step(),
            format!("{path} is not a directory"),
        ));
    }
    // A source the host itself mounted read-only (an admin's `mount
    // --bind -o ro`) stays so: its top is not made writable for the
    // mountpoints, which host root would then make in it. Only a root
    // caller's clone could clear it; a rootless one's flag is locked.
    let host_readonly = rustix::fs::fstatvfs(&src)
        .step(step)?
        .f_flag
        .contains(rustix::fs::StatVfsMountFlags::RDONLY);
    let tree = clone_tree(&src, true).step(step)?;
    sys::mount_setattr(&tree, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, true).step(step)?;
    if readonly {
        sys::mount_setattr(&tree, MOUNT_ATTR_RDONLY, true).step(step)?;
        if host_readonly || !writable_top {
            return Ok(tree);
        }
        match sys::mount_setattr_clr(&tree, 0, MOUNT_ATTR_RDONLY, false) {
            Ok(()) => {}
            // A source the kernel keeps read-only stays so, which is what
            // was asked for anyway.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
            Err(e) => return Err(SetupError::io(step(), &e)),
        }
    }
    Ok(tree)
}

/// Open a host path once, find where the opened object really is, and
/// judge it again with the guardrails.
pub(super) fn open_source(
    plan: &Plan,
    seen: &Snapshot,
    step: &dyn Fn() -> String,
    path: &str,
) -> Result<OwnedFd> {
    let slash = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .step(|| "open the host root".into())?;
    let fd = path_in(&slash, path).map_err(|e| missing(step(), path, &e))?;
    // /proc is still the host's here, and this is our own fd.
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let opened = rustix::fs::readlink(link.as_str(), Vec::new()).step(step)?;
    let opened = opened.to_string_lossy().into_owned();
    let named = seen.marks.name(&opened);
    let judged = plan.host.canonical.get(path).cloned();
    let refused = crate::check::recheck_named(
        &plan.spec,
        &plan.host,
        seen,
        path,
        (&opened, &link),
        named.clone(),
    );
    if let Some(f) = refused.first() {
        return Err(SetupError::new(
            step(),
            format!(
                "source {path} now leads to {opened}, which the guardrails refuse ({}); it was checked as {}",
                f.code,
                plan.host.resolve(path)
            ),
        ));
    }
    // Not refused there, but judged elsewhere: the rules that weigh more
    // than the object itself (an idmap's owner, the caller's home, what
    // was acknowledged) judged the path it led to then. Someone who can
    // rename a component of it (its owner, another user's directory on
    // the way) moved it between the check and now.
    if let Some(judged) = judged.filter(|j| *j != named) {
        return Err(SetupError::new(
            step(),
            format!(
                "source {path} now leads to {opened}, not to {judged} where the guardrails judged it: it changed while the sandbox was set up"
            ),
        ));
    }
    Ok(fd)
}

/// The error for a path that could not be opened, saying plainly when it
/// does not exist.
fn missing(step: String, path: &str, e: &io::Error) -> SetupError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => SetupError {
            errno: Some(libc::ENOENT),
            ..SetupError::new(step, format!("source {path} does not exist"))
        },
        Some(libc::ELOOP) | Some(libc::EXDEV) => SetupError {
            errno: e.raw_os_error(),
            ..SetupError::new(
                step,
                format!(
                    "source {path} goes through a /proc magic link (or a loop of symbolic links)"
                ),
            )
        },
        Some(libc::EACCES) => SetupError {
            errno: Some(libc::EACCES),
            ..SetupError::new(step, format!("{path}: permission denied"))
        },
        _ => SetupError::io(step, e),
    }
}
