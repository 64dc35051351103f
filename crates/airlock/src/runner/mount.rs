//! The sandbox's mount tree, built in the order the kernel needs it:
//!
//! 1. make every mount private, so nothing we do propagates to the host;
//!    open every bind source once and judge the opened object again with
//!    the guardrails (what is mounted later is that fd, so a path swapped
//!    after the caller's check cannot change what the sandbox gets);
//! 2. put a staging tmpfs on /tmp and pivot into it: the host's tree is now
//!    at /oldroot and can be reached only through an fd we hold;
//! 3. mount the sandbox's root at /newroot (a fresh tmpfs or a host dir);
//! 4. carry out the plan's mount steps in order, resolving every target
//!    inside the new root: the mounts, then (in `protect`) the OCI masked
//!    and read-only paths, the sealed /dev and the read-only root;
//! 6. pivot into the new root and detach the staging tree, and the host's
//!    tree with it.
//!
//! Steps 2 and 6 are bubblewrap's; the `pivot_root(".", ".")` trick in 6 is
//! runc's, and leaves no /oldroot directory behind.

use super::fs::{
    attach, clone_tree, ensure_target, is_dir, mount_fs_at, new_fs, new_tmpfs, path_in, TargetKind,
};
use super::report::{Reporter, SetupError, StepExt};
use super::sources::{self, Sources};
use super::{dev, overlay, protect};
use crate::plan::{MountStep, Plan};
use crate::spec::{Root, Size};
use crate::sys::{self, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use rustix::fs::{Mode, OFlags};
use rustix::mount::{mount_change, MountPropagationFlags};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

type Result<T> = std::result::Result<T, SetupError>;

/// The two trees setup works between.
pub struct Trees {
    /// The host's root, as it was before the sandbox (at /oldroot).
    pub host: OwnedFd,
    /// The sandbox's root being assembled (at /newroot).
    pub root: OwnedFd,
    /// The opened and re-judged source of each bind, by mount index.
    sources: Vec<Option<OwnedFd>>,
    /// The sandbox's cgroup directories, read-only, for a cgroup mount.
    cgroups: Vec<(String, OwnedFd)>,
    /// The opened and re-judged layers of each overlay mount, by index.
    overlays: Vec<overlay::MountLayers>,
}

/// Steps 1 to 3: private propagation and sources, staging root, the
/// sandbox's root.
pub fn prepare(plan: &Plan, sources: Sources, report: Reporter) -> Result<Trees> {
    report.progress(|| "make every mount private".into());
    mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .step(|| "make mounts private".into())?;
    // Opened while the host's tree is still where the paths say.
    report.progress(|| "open and re-check the bind sources".into());
    // Cloned by the supervisor for a root caller; here otherwise.
    let cloned = match sources {
        Sources::Cloned(c) => c,
        Sources::ToClone(cgroup) => sources::clone_trees(plan, cgroup.as_ref(), report)?,
    };
    let cgroups = cloned.cgroups;
    let sources = cloned.binds;
    let root_source = open_root_source(plan, cloned.root, cloned.lowers)?;
    let overlays = open_overlay_layers(plan, cloned.step_lowers)?;
    let host = pivot_to_staging(report)?;
    mount_root(plan, root_source, report)?;
    let root = rustix::fs::open(
        "/newroot",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .step(|| "open new root".into())?;
    Ok(Trees {
        host,
        root,
        sources,
        cgroups,
        overlays,
    })
}

/// The layers of each overlay mount, opened while the host's tree is
/// still where their paths say and judged again as read-only binds (the
/// root's layers are, in `open_root_source`), and its upper and work
/// directories as writable ones; empty for other steps.
fn open_overlay_layers(
    plan: &Plan,
    mut cloned: Vec<Vec<Option<OwnedFd>>>,
) -> Result<Vec<overlay::MountLayers>> {
    let steps = &plan.filesystem.steps;
    if !steps.iter().any(|s| matches!(s, MountStep::Overlay { .. })) {
        return Ok(Vec::new());
    }
    let seen = &crate::check::Snapshot::take(plan.host.home.as_deref());
    let mut out = Vec::with_capacity(steps.len());
    for (i, m) in steps.iter().enumerate() {
        let mut layers = overlay::MountLayers::default();
        if let MountStep::Overlay {
            lower,
            upper_dir,
            work_dir,
            ..
        } = m
        {
            let step = || plan.filesystem.step_name(i);
            let mut trees = cloned.get_mut(i).map(std::mem::take).unwrap_or_default();
            trees.resize_with(lower.len(), || None);
            for (l, idmapped) in lower.iter().zip(trees) {
                layers.detached.push(idmapped.is_some());
                // Cloned and idmapped by the supervisor (judged there).
                if let Some(tree) = idmapped {
                    layers.lower.push(tree);
                    continue;
                }
                let fd = sources::open_source(plan, seen, &step, l)?;
                if !is_dir(&fd).step(step)? {
                    return Err(SetupError::new(
                        step(),
                        format!("layer {l} is not a directory"),
                    ));
                }
                layers.lower.push(fd);
            }
            if let (Some(upper), Some(work)) = (upper_dir, work_dir) {
                let open = |path: &str| sources::open_source(plan, seen, &step, path);
                layers.dirs = Some(overlay::open_dirs(plan, upper, work, &open, &step)?);
            }
        }
        out.push(layers);
    }
    Ok(out)
}

/// What the root is made of on the host: a directory (cloned there), or
/// overlay layers.
enum RootSource {
    Tmpfs,
    Path(OwnedFd),
    Overlay(overlay::Layers),
}

fn open_root_source(
    plan: &Plan,
    host_root: Option<OwnedFd>,
    mut lowers: Vec<Option<OwnedFd>>,
) -> Result<RootSource> {
    Ok(match &plan.filesystem.root {
        Root::Path { .. } => RootSource::Path(host_root.expect("cloned on the host side")),
        Root::Overlay { lower, upper, .. } => {
            // Our mount namespace is private now: its table cannot change
            // under us, so one read serves every layer. (Only layers need
            // it here: the binds were judged in clone_trees.)
            let seen = &crate::check::Snapshot::take(plan.host.home.as_deref());
            let mut fds = Vec::with_capacity(lower.len());
            let mut detached = Vec::with_capacity(lower.len());
            lowers.resize_with(lower.len(), || None);
            for (l, idmapped) in lower.iter().zip(lowers) {
                detached.push(idmapped.is_some());
                // Cloned and idmapped by the supervisor (judged there).
                if let Some(tree) = idmapped {
                    fds.push(tree);
                    continue;
                }
                let step = || format!("root layer {l}");
                let fd = sources::open_source(plan, seen, &step, l)?;
                // Said here, by its path: overlayfs would name the fd's.
                if !is_dir(&fd).step(step)? {
                    return Err(SetupError::new(step(), "not a directory"));
                }
                fds.push(fd);
            }
            let upper = match upper {
                Some(u) => Some(sources::open_source(
                    plan,
                    seen,
                    &|| format!("root upper layer {u}"),
                    u,
                )?),
                None => None,
            };
            RootSource::Overlay(overlay::Layers {
                lower: fds,
                detached,
                upper,
            })
        }
        Root::Tmpfs { .. } => RootSource::Tmpfs,
    })
}

/// Step 2: a staging tmpfs on /tmp, pivoted into; the host's tree is at
/// /oldroot, and the returned fd is how it is reached from now on.
fn pivot_to_staging(report: Reporter) -> Result<OwnedFd> {
    report.progress(|| "staging tmpfs and pivot away from the host root".into());
    let staging = new_fs(
        "tmpfs",
        &[("mode", Some("0755"))],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
    )
    .step(|| "mount staging tmpfs".into())?;
    rustix::mount::move_mount(
        &staging,
        "",
        rustix::fs::CWD,
        "/tmp",
        rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .step(|| "mount staging tmpfs on /tmp".into())?;
    drop(staging);
    rustix::process::chdir("/tmp").step(|| "chdir staging".into())?;
    for d in ["oldroot", "newroot"] {
        rustix::fs::mkdir(d, Mode::from_raw_mode(0o755)).step(|| format!("mkdir staging {d}"))?;
    }
    rustix::process::pivot_root(".", "oldroot").step(|| "pivot_root into staging".into())?;
    rustix::process::chdir("/").step(|| "chdir /".into())?;
    rustix::fs::open(
        "/oldroot",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .step(|| "open host root".into())
}

/// Step 3: the sandbox's root at /newroot.
fn mount_root(plan: &Plan, source: RootSource, report: Reporter) -> Result<()> {
    match (&plan.filesystem.root, source) {
        (Root::Tmpfs { size, .. }, _) => {
            report.progress(|| "root: fresh tmpfs".into());
            let mnt = new_tmpfs(0o755, *size).step(|| "root: mount tmpfs".into())?;
            attach_at_newroot(mnt).step(|| "root: attach tmpfs".into())
        }
        (Root::Overlay { size, .. }, RootSource::Overlay(layers)) => {
            report.progress(|| "root: overlay of the layers under a writable upper layer".into());
            let mnt = overlay::mount(&layers, *size, plan)?;
            attach_at_newroot(mnt).step(|| "root: attach overlay".into())
        }
        (Root::Path { path, .. }, RootSource::Path(tree)) => {
            report.progress(|| format!("root {path}"));
            attach_at_newroot(tree).step(|| format!("root {path}"))
        }
        _ => unreachable!("open_root_source opened what the root needs"),
    }
}

fn attach_at_newroot(mnt: OwnedFd) -> io::Result<()> {
    Ok(rustix::mount::move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        "/newroot",
        rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?)
}

/// Step 4: the plan's mount steps, in order, up to its protections
/// (masks, read-only paths, sealed /dev, the read-only root), which the
/// plan puts last and [`protect`] applies.
pub fn apply(plan: &Plan, trees: &Trees, report: Reporter) -> Result<Protections> {
    // The proc and sysfs mounts made, by destination, each by its own
    // handle: the masked and read-only paths beneath them are found from
    // these, not by their paths again (see `protect::Kernel`).
    let mut kernel = protect::Kernel::default();
    let steps = &plan.filesystem.steps;
    let from = steps
        .iter()
        .position(MountStep::protects)
        .unwrap_or(steps.len());
    apply_steps(plan, trees, &mut kernel, 0..from, report)?;
    Ok(Protections { kernel, from })
}

/// The plan's steps in `range`, each failure with its hint.
fn apply_steps(
    plan: &Plan,
    trees: &Trees,
    kernel: &mut protect::Kernel,
    range: std::ops::Range<usize>,
    report: Reporter,
) -> Result<()> {
    for i in range {
        apply_step(plan, trees, kernel, i, &plan.filesystem.steps[i], report)
            .map_err(|e| read_only_root_hint(plan, i, e))?;
    }
    Ok(())
}

/// What [`apply`] left for [`protect`].
pub struct Protections {
    kernel: protect::Kernel,
    from: usize,
}

/// Step 5, after the OCI hooks that run before pivot_root: as runc does,
/// they still find the root and /dev writable and nothing masked (a GPU
/// hook makes its device nodes in /dev).
pub fn protect(plan: &Plan, trees: &Trees, p: Protections, report: Reporter) -> Result<()> {
    let Protections { mut kernel, from } = p;
    let end = plan.filesystem.steps.len();
    apply_steps(plan, trees, &mut kernel, from..end, report)
}

/// A path a read-only directory root lacks, where setup had to make one
/// (EROFS), is said to be that: such a root is never written (see
/// `filesystem.root.make_mountpoints`). Not for a path in an earlier
/// mount, whose own read-only is the cause.
fn read_only_root_hint(plan: &Plan, i: usize, mut e: SetupError) -> SetupError {
    let Root::Path {
        readonly: true,
        make_mountpoints: false,
        path,
    } = &plan.filesystem.root
    else {
        return e;
    };
    let steps = &plan.filesystem.steps;
    let dest = match &steps[i] {
        MountStep::Dir { destination, .. }
        | MountStep::File { destination, .. }
        | MountStep::Symlink { destination, .. } => Some(destination.as_str()),
        m => m.mountpoint(),
    };
    let in_a_mount = |d: &str| {
        steps[..i]
            .iter()
            .filter_map(MountStep::mountpoint)
            .any(|m| crate::check::paths::within(d, m))
    };
    if e.errno == Some(libc::EROFS) && dest.is_some_and(|d| !in_a_mount(d)) {
        e.reason = format!(
            "{}; the read-only root {path} lacks it, and airlock makes nothing in a directory root given read-only: make it there first, or use --rootfs {path} --rootfs-readonly (the spec's filesystem.root.make_mountpoints)",
            e.reason
        );
    }
    e
}

/// One step of [`apply`].
fn apply_step(
    plan: &Plan,
    trees: &Trees,
    kernel: &mut protect::Kernel,
    i: usize,
    m: &MountStep,
    report: Reporter,
) -> Result<()> {
    let step = || plan.filesystem.step_name(i);
    let root = trees.root.as_fd();
    match m {
        MountStep::Bind {
            source,
            destination,
            readonly,
            ..
        } => {
            report.progress(|| {
                let how = if *readonly { "read-only" } else { "writable" };
                format!("mount {destination}: {how} bind of {source}")
            });
            let tree = trees.sources[i]
                .as_ref()
                .expect("every bind source was cloned");
            bind(root, tree, destination).step(step)?;
        }
        MountStep::Tmpfs {
            destination,
            size,
            mode,
            readonly,
            noexec,
            copy_up,
        } => {
            report.progress(|| match copy_up {
                true => format!("mount {destination}: tmpfs, with a copy of what it covers"),
                false => format!("mount {destination}: tmpfs"),
            });
            let mut attrs = 0;
            if *readonly {
                attrs |= MOUNT_ATTR_RDONLY;
            }
            if *noexec {
                attrs |= MOUNT_ATTR_NOEXEC;
            }
            tmpfs(root, destination, *size, *mode, attrs, *copy_up).step(step)?;
        }
        MountStep::HostProc { destination } => {
            report.progress(|| {
                format!("mount {destination}: the host's /proc (PID namespace shared)")
            });
            let mnt = host_proc(root, &trees.host, destination).step(step)?;
            kernel.add(destination, mnt);
        }
        MountStep::Proc { destination } => {
            report.progress(|| format!("mount {destination}: proc"));
            let mnt = mount_fs_at(root, destination, "proc", &[], NO_SUID_DEV_EXEC).step(step)?;
            kernel.add(destination, mnt);
        }
        MountStep::Device {
            destination,
            major,
            minor,
            ..
        } => {
            report.progress(|| format!("mount {destination}: device {major}:{minor}"));
            let tree = trees.sources[i]
                .as_ref()
                .expect("every device node was made or cloned");
            bind(root, tree, destination).step(step)?;
        }
        MountStep::Dev { destination } => {
            report.progress(|| format!("mount {destination}: minimal /dev"));
            let console = dev::has_console(plan) && destination == "/dev";
            dev::mount_dev(root, &trees.host, destination, console).map_err(|mut e| {
                // Its own steps name the nodes in it; the field is the mount's.
                if let Some(field) = plan.filesystem.field(i) {
                    e.step = format!("{} ({field})", e.step);
                }
                e
            })?;
        }
        MountStep::Mqueue { destination } => {
            report.progress(|| format!("mount {destination}: mqueue"));
            mount_fs_at(root, destination, "mqueue", &[], NO_SUID_DEV_EXEC).step(step)?;
        }
        MountStep::Sysfs { destination } => {
            report.progress(|| format!("mount {destination}: sysfs (read-only)"));
            let attrs = NO_SUID_DEV_EXEC | MOUNT_ATTR_RDONLY;
            let mnt = mount_fs_at(root, destination, "sysfs", &[], attrs).step(step)?;
            kernel.add(destination, mnt);
        }
        MountStep::Cgroup { destination } => {
            report.progress(|| format!("mount {destination}: the sandbox's cgroups (read-only)"));
            cgroup_view(root, &trees.cgroups, destination).step(step)?;
        }
        MountStep::Dir {
            destination,
            mode,
            chmod,
        } => {
            report.progress(step);
            // As bubblewrap's --perms: the mode of a directory made
            // here, never of one already there (a bound host one's),
            // unless asked by --chmod.
            // Whether it was made is told by the call that made it: a
            // lookup of its own before would race one who may write the
            // parent (a shared bound directory), and let them lead the
            // mode onto another directory through a link.
            let (d, made) = crate::fs::mkdir_made_in(root, destination).step(step)?;
            crate::fs::not_led_into_kernel_fs(&d, destination, "the directory", "made")
                .step(step)?;
            // Made without --perms: 0755 whatever the caller's umask
            // (`mkdir_made_in`), as bubblewrap's.
            if let (Some(m), true) = (mode, made || *chmod) {
                chmod_path(&d, *m).step(step)?;
            }
        }
        MountStep::File {
            destination,
            content,
            mode,
            bind: false,
            chmod,
        } => {
            report.progress(step);
            write_file(root, destination, content.as_bytes(), *mode, *chmod).step(step)?;
        }
        MountStep::File {
            destination,
            content,
            mode,
            bind: true,
            ..
        } => {
            report.progress(|| format!("mount {destination}: a file of its own"));
            bind_file(root, destination, content.as_bytes(), *mode, i).step(step)?;
        }
        MountStep::Symlink {
            destination,
            target,
        } => {
            report.progress(|| format!("symlink {destination} -> {target}"));
            symlink(root, destination, target).step(step)?;
        }
        MountStep::Overlay {
            destination,
            writable,
            size,
            upper_dir,
            ..
        } => {
            report.progress(|| {
                let how = match (upper_dir, writable) {
                    (Some(dir), _) => format!("writes kept in {dir}"),
                    (None, true) => "writes on a tmpfs".into(),
                    (None, false) => "read-only".into(),
                };
                format!("mount {destination}: overlay, {how}")
            });
            let mnt = overlay::mount_at(&trees.overlays[i], *writable, *size, plan, i, &step())?;
            let target = ensure_target(root, destination, TargetKind::Dir).step(step)?;
            attach(mnt, target).step(step)?;
        }
        MountStep::RemountReadOnly { destination } => {
            report.progress(step);
            remount_read_only(root, destination).step(step)?;
        }
        MountStep::Mask { .. }
        | MountStep::ReadOnly { .. }
        | MountStep::SealDev { .. }
        | MountStep::ReadOnlyRoot => protect::apply(m, trees, kernel, report)?,
    }
    Ok(())
}

const NO_SUID_DEV_EXEC: u64 = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;

/// Attach a bind tree cloned on the host side (its attributes set there).
fn bind(root: BorrowedFd, tree: &OwnedFd, dest: &str) -> io::Result<()> {
    let kind = if is_dir(tree)? {
        TargetKind::Dir
    } else {
        TargetKind::File
    };
    let target = ensure_target(root, dest, kind)?;
    attach(tree, target)
}

/// `attrs` beyond nosuid and nodev (read-only, noexec).
fn tmpfs(
    root: BorrowedFd,
    dest: &str,
    size: Option<Size>,
    mode: u32,
    attrs: u64,
    copy_up: bool,
) -> io::Result<()> {
    let target = ensure_target(root, dest, TargetKind::Dir)?;
    let mnt = new_tmpfs(mode, size)?;
    if copy_up {
        // While the tmpfs is detached (nothing else can reach it) and
        // before it is made read-only.
        super::copy_up::copy_tree(&target, &mnt)?;
    }
    if attrs != 0 {
        sys::mount_setattr(&mnt, attrs, false)?;
    }
    attach(mnt, target)
}

/// The sandbox's cgroup directories at `dest`: a v2 one alone there, or
/// each under its name on a tmpfs made read-only once they are attached.
/// None (a sandbox without cgroups): the tmpfs stays empty.
fn cgroup_view(root: BorrowedFd, cgroups: &[(String, OwnedFd)], dest: &str) -> io::Result<()> {
    if let [(name, tree)] = cgroups {
        if name.is_empty() {
            return attach(tree, ensure_target(root, dest, TargetKind::Dir)?);
        }
    }
    let target = ensure_target(root, dest, TargetKind::Dir)?;
    // The tmpfs by its own fd, where each directory is made and attached:
    // not found again by its path, which a writable root shared with
    // another sandbox could have had renamed meanwhile.
    let view = new_tmpfs(0o755, Some(Size(4096)))?;
    attach(&view, target)?;
    for (name, tree) in cgroups {
        attach(tree, ensure_target(&view, name, TargetKind::Dir)?)?;
    }
    sys::mount_setattr(&view, MOUNT_ATTR_RDONLY | NO_SUID_DEV_EXEC, false)
}

/// `mount_setattr` on the mount at `dest` alone. The kernel refuses
/// (EINVAL) a path that is not the root of a mount, as bubblewrap's
/// remount does: say so rather than make the mount it lies on read-only.
fn remount_read_only(root: BorrowedFd, dest: &str) -> io::Result<()> {
    let target = path_in(root, dest)?;
    sys::mount_setattr(&target, MOUNT_ATTR_RDONLY, false).map_err(|e| {
        if e.raw_os_error() == Some(libc::EINVAL) {
            io::Error::other(format!(
                "{dest} is not a mount point: only a mount is made read-only so (a read-only bind makes a path inside one read-only)"
            ))
        } else {
            e
        }
    })
}

fn host_proc(root: BorrowedFd, host: &OwnedFd, dest: &str) -> io::Result<OwnedFd> {
    let src = path_in(host, "/proc")?;
    let target = super::fs::plain_dir_in(root, dest)?;
    let tree = clone_tree(&src, true)?;
    sys::mount_setattr(&tree, NO_SUID_DEV_EXEC, true)?;
    attach(&tree, target)?;
    Ok(tree)
}

/// A symlink; one that already points where asked is fine (an image may
/// ship it).
fn symlink(root: BorrowedFd, dest: &str, target: &str) -> io::Result<()> {
    let (parent, name) = crate::fs::split_parent(dest);
    let pfd = super::fs::mkdir_all_in(root, parent)?;
    match crate::fs::creating(|| rustix::fs::symlinkat(target, &pfd, name)) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST)
            if rustix::fs::readlinkat(&pfd, name, Vec::new())
                .is_ok_and(|t| t.as_bytes() == target.as_bytes()) =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// chmod a directory we hold as an O_PATH handle: fchmod refuses O_PATH,
/// so reopen the same inode through it with `openat(fd, ".")`.
fn chmod_path(fd: &OwnedFd, mode: u32) -> io::Result<()> {
    let d = rustix::fs::openat(
        fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(rustix::fs::fchmod(d, Mode::from_raw_mode(mode))?)
}

/// `chmod`: give `mode` to a file already there too.
fn write_file(
    root: BorrowedFd,
    dest: &str,
    content: &[u8],
    mode: u32,
    chmod: bool,
) -> io::Result<()> {
    let (parent, name) = crate::fs::split_parent(dest);
    let pfd = super::fs::mkdir_all_in(root, parent)?;
    crate::fs::not_led_into_kernel_fs(&pfd, dest, "the file", "written")?;
    // Nor by a path written there: a file's content written to
    // /proc/sys/kernel/core_pattern or /proc/sysrq-trigger goes to the
    // kernel, written by PID 1, which without a user namespace of its own
    // is the host's root, before the protections make /proc/sys
    // read-only. (Validation refuses such a destination first; this is
    // the wall behind it.)
    if let Some(kernel) = crate::fs::kernel_fs(&pfd)? {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("a file is not written into the sandbox's {kernel}: what the kernel shows there would take its content (bind one over it instead)"),
        ));
    }
    // Non-blocking: an image's fifo there would hang the start.
    let open = |how: OFlags| {
        rustix::fs::openat(
            &pfd,
            name,
            how | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
    };
    // As bubblewrap's creat(): a file already there (a bound host
    // file's) is rewritten but keeps its mode; `mode` is a new file's.
    let (f, created) = match crate::fs::creating(|| open(OFlags::CREATE | OFlags::EXCL)) {
        Ok(f) => (Ok(f), true),
        Err(rustix::io::Errno::EXIST) => (open(OFlags::TRUNC), false),
        Err(e) => (Err(e), true),
    };
    let f = f.map_err(|e| match e {
        // A fifo no one reads.
        rustix::io::Errno::NXIO => {
            io::Error::other(format!("{dest} is there and not a regular file"))
        }
        e => e.into(),
    })?;
    if rustix::fs::FileType::from_raw_mode(rustix::fs::fstat(&f)?.st_mode)
        != rustix::fs::FileType::RegularFile
    {
        return Err(io::Error::other(format!(
            "{dest} is there and not a regular file"
        )));
    }
    fill(&f, content, (created || chmod).then_some(mode))
}

/// Write all of `content` into the file `f` and, for a file just made,
/// give it `mode` (the umask took bits off the one it was made with).
fn fill(f: &OwnedFd, content: &[u8], mode: Option<u32>) -> io::Result<()> {
    let mut off = 0;
    while off < content.len() {
        off += rustix::io::write(f, &content[off..])?;
    }
    if let Some(mode) = mode {
        rustix::fs::fchmod(f, Mode::from_raw_mode(mode))?;
    }
    Ok(())
}

/// `content` in a file of its own on the staging tmpfs (the runner's `/`
/// until it enters the sandbox's root), bound over `dest` (made if
/// missing), as bubblewrap's `--bind-data` does: nothing at `dest` is
/// written. `n` names it apart from the others.
fn bind_file(root: BorrowedFd, dest: &str, content: &[u8], mode: u32, n: usize) -> io::Result<()> {
    let name = format!("/data-{n}");
    let f = rustix::fs::open(
        name.as_str(),
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )?;
    fill(&f, content, Some(mode))?;
    drop(f);
    let tree = rustix::mount::open_tree(
        rustix::fs::CWD,
        name.as_str(),
        rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
            | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )?;
    // The file stays on the staging tmpfs, which goes with the host's
    // tree at the pivot: a mount of an unlinked file neither attaches nor
    // can be found again by its path (the read-only paths are).
    attach(&tree, ensure_target(root, dest, TargetKind::File)?)
}

/// Step 6: pivot into the new root and let go of the host's tree.
pub fn enter(trees: Trees, report: Reporter) -> Result<()> {
    report.progress(|| "pivot_root into the sandbox root".into());
    let staging = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .step(|| "open staging root".into())?;
    let Trees {
        host,
        root,
        sources,
        cgroups,
        overlays,
    } = trees;
    drop((host, sources, cgroups, overlays));
    rustix::process::fchdir(&root).step(|| "chdir new root".into())?;
    rustix::process::pivot_root(".", ".").step(|| "pivot_root".into())?;
    // The staging root now sits on top of the new root; detach it (and the
    // host tree under it) from where it is.
    rustix::process::fchdir(&staging).step(|| "chdir staging".into())?;
    rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH)
        .step(|| "detach the host's mount tree".into())?;
    rustix::process::chdir("/").step(|| "chdir /".into())?;
    Ok(())
}
