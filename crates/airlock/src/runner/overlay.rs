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
//!
//! A persistent layer's `upper/` and `work/` are opened beneath its
//! directory without following any link, on the host side before the
//! namespaces exist and again inside them, and refused unless each is a
//! plain directory owned by the sandbox's root as the host sees it (or the
//! caller) that no one else may write: a link planted there would send
//! overlayfs's copy-up writes, made with the mounter's credentials,
//! wherever it points. An overlay mount's `upper_dir` and `work_dir`
//! (named by the caller, as bind sources are) are judged the same way.

use super::fs::new_tmpfs;
use super::report::{describe, SetupError, StepExt};
use super::upper::{open_parent, two_mounts};
use crate::plan::Plan;
use crate::spec::{host_id, inside_id, Size};
use crate::sys::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::mount::{fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen};
use std::os::fd::{AsRawFd, OwnedFd};

type Result<T> = std::result::Result<T, SetupError>;

/// The opened layers.
pub struct Layers {
    pub lower: Vec<OwnedFd>,
    /// By layer: a detached (idmapped) tree, which overlayfs takes only
    /// once attached in our mount namespace.
    pub detached: Vec<bool>,
    pub upper: Option<OwnedFd>,
}

/// An overlay mount's opened layers: its lower ones, and its persistent
/// upper and work directories when it has them.
#[derive(Default)]
pub struct MountLayers {
    pub lower: Vec<OwnedFd>,
    /// By layer, as [`Layers::detached`] (empty: none is).
    pub detached: Vec<bool>,
    pub dirs: Option<(OwnedFd, OwnedFd)>,
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
pub fn mount(layers: &Layers, size: Option<Size>, plan: &Plan) -> Result<OwnedFd> {
    let step = || "root: overlay".to_string();
    let userns = plan.user_ns();
    // Held until the overlay is created: its paths are these fds' links.
    let mut held = Vec::new();
    let (upper, work) = match &layers.upper {
        Some(dir) => {
            let shown = upper_dir(plan).unwrap_or("the upper layer");
            let expected = owner_here(plan);
            for name in ["upper", "work"] {
                mkdir_in(dir, name)?;
                held.push(open_layer_dir(dir, shown, name, expected).step(step)?);
            }
            (fd_path(&held[0]), fd_path(&held[1]))
        }
        // The merged `/` takes the upper layer's mode: the top lower
        // one's, not 0755 less the caller's umask (077 made `/` 0700, and
        // a workload of another uid could not even chdir there).
        None => tmp_upper(
            "/overlay-upper",
            size,
            layers.lower.first().map(|top| (top, false)),
            &step,
        )?,
    };
    let lower = lower_paths(&layers.lower, &layers.detached, "/overlay-lower", &step)?;
    assemble("root", &lower, Some((upper, work)), userns, &step)
}

/// The paths overlayfs is given for `lower`: each fd's magic link, or for
/// a detached (idmapped) tree, where it is attached now under the staging
/// root (`PREFIX-N`): overlayfs refuses a detached tree (EPERM).
fn lower_paths(
    lower: &[OwnedFd],
    detached: &[bool],
    prefix: &str,
    step: &dyn Fn() -> String,
) -> Result<Vec<String>> {
    let mut paths = Vec::with_capacity(lower.len());
    for (i, fd) in lower.iter().enumerate() {
        if !detached.get(i).copied().unwrap_or(false) {
            paths.push(fd_path(fd));
            continue;
        }
        let at = format!("{prefix}-{i}");
        rustix::fs::mkdir(at.as_str(), Mode::from_raw_mode(0o755)).step(step)?;
        rustix::mount::move_mount(
            fd,
            "",
            rustix::fs::CWD,
            at.as_str(),
            rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .step(step)?;
        paths.push(at);
    }
    Ok(paths)
}

/// An overlay at a mount's destination (`MountStep::Overlay`), of layers
/// opened before the staging pivot: writable on a tmpfs of its own (the
/// `index`th, under the staging root), or read-only without an upper
/// layer. `name` is the mount's name in errors.
pub fn mount_at(
    layers: &MountLayers,
    writable: bool,
    size: Option<Size>,
    plan: &Plan,
    index: usize,
    name: &str,
) -> Result<OwnedFd> {
    let step = || name.to_string();
    let prefix = format!("/overlay-lower-{index}");
    let lower = &layers.lower;
    if let Some((upper, work)) = &layers.dirs {
        let lower = lower_paths(lower, &layers.detached, &prefix, &step)?;
        let dirs = Some((fd_path(upper), fd_path(work)));
        return assemble(name, &lower, dirs, plan.user_ns(), &step);
    }
    // The merged top directory takes the upper one's mode and owner; the
    // topmost layer's mode, so its permission check is the layer's, and
    // without a user namespace (setup is host root, lookups below the top
    // are made with its credentials) its owner too. In one, setup is the
    // sandbox's root, which could not look past what the layer lets it
    // anyway, and owns the top as bubblewrap's does.
    let upper = match writable {
        true => Some(tmp_upper(
            &format!("/overlay-upper-{index}"),
            size,
            lower.first().map(|top| (top, !plan.user_ns())),
            &step,
        )?),
        false => None,
    };
    let lower = lower_paths(lower, &layers.detached, &prefix, &step)?;
    assemble(name, &lower, upper, plan.user_ns(), &step)
}

/// A tmpfs of our own at `at` under the staging root, with `upper/` and
/// `work/`; overlayfs keeps it alive after the staging tree is detached.
/// `like`: the directory whose mode `upper/` takes, and whether its owner
/// too.
fn tmp_upper(
    at: &str,
    size: Option<Size>,
    like: Option<(&OwnedFd, bool)>,
    step: &dyn Fn() -> String,
) -> Result<(String, String)> {
    let tmp = new_tmpfs(0o755, size).step(step)?;
    rustix::fs::mkdir(at, Mode::from_raw_mode(0o755)).step(step)?;
    rustix::mount::move_mount(
        &tmp,
        "",
        rustix::fs::CWD,
        at,
        rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .step(step)?;
    let dir = rustix::fs::open(
        at,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .step(step)?;
    mkdir_in(&dir, "upper")?;
    mkdir_in(&dir, "work")?;
    if let Some((top, owner)) = like {
        let st = rustix::fs::fstat(top).step(step)?;
        let upper = rustix::fs::openat(
            &dir,
            "upper",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .step(step)?;
        if owner {
            rustix::fs::fchown(
                &upper,
                Some(rustix::fs::Uid::from_raw(st.st_uid)),
                Some(rustix::fs::Gid::from_raw(st.st_gid)),
            )
            .step(step)?;
        }
        rustix::fs::fchmod(&upper, Mode::from_raw_mode(st.st_mode & 0o7777)).step(step)?;
    }
    Ok((format!("{at}/upper"), format!("{at}/work")))
}

/// The overlay itself, detached: `what` names it in errors (`root`, or a
/// mount's name). Without an upper layer it is read-only.
fn assemble(
    what: &str,
    lower: &[String],
    upper: Option<(String, String)>,
    userns: bool,
    step: &dyn Fn() -> String,
) -> Result<OwnedFd> {
    let fs = fsopen("overlay", rustix::mount::FsOpenFlags::FSOPEN_CLOEXEC).step(step)?;
    let set = |k: &str, v: &str| {
        fsconfig_set_string(&fs, k, v)
            .map_err(|e| SetupError::io(format!("{what}: overlay {k}={v}"), &e.into()))
    };
    set_lower_layers(&fs, lower, what)?;
    let mut attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    match &upper {
        Some((upper, work)) => {
            set("upperdir", upper)?;
            set("workdir", work)?;
        }
        None => attrs |= crate::sys::MOUNT_ATTR_RDONLY,
    }
    if userns {
        fsconfig_set_flag(&fs, "userxattr").step(|| format!("{what}: overlay userxattr"))?;
    }
    // What a crafted or reused upper layer could make the kernel follow
    // (a redirect to another lower path; a metadata-only copy over
    // another file's data, CVE-2021-3732's class) is never left to the
    // module's defaults, which a host may have turned on (with userxattr
    // the kernel turns them off itself; without a user namespace it
    // would not).
    set("redirect_dir", "nofollow")?;
    set("metacopy", "off")?;
    set("index", "off")?;
    fsconfig_create(&fs).step(step)?;
    fsmount(
        &fs,
        rustix::mount::FsMountFlags::FSMOUNT_CLOEXEC,
        rustix::mount::MountAttrFlags::from_bits_retain(attrs as u32),
    )
    .step(step)
}

/// The lower layers, topmost first. fsconfig takes a string value of at
/// most 256 bytes, which one `lowerdir=A:B:...` of fd paths (about 24
/// bytes each) outgrows at eleven layers: `lowerdir+` (Linux 6.8) adds
/// one layer a call. A kernel without it takes the joined list, as far
/// as it fits.
fn set_lower_layers(fs: &impl std::os::fd::AsFd, lower: &[String], what: &str) -> Result<()> {
    let mut added = 0;
    for layer in lower {
        match fsconfig_set_string(fs, "lowerdir+", layer.as_str()) {
            Ok(()) => added += 1,
            // Not a key this kernel knows: only before any was added.
            Err(rustix::io::Errno::INVAL) if added == 0 => break,
            Err(e) => {
                return Err(SetupError::io(
                    format!("{what}: overlay lowerdir+={layer}"),
                    &e.into(),
                ))
            }
        }
    }
    if added == lower.len() {
        return Ok(());
    }
    let joined = lower.join(":");
    if joined.len() > 255 {
        return Err(SetupError::new(
            what,
            format!(
                "{} layers are more than this kernel's overlay takes in one lowerdir (Linux 6.8 adds them one at a time)",
                lower.len()
            ),
        ));
    }
    fsconfig_set_string(fs, "lowerdir", joined.as_str())
        .map_err(|e| SetupError::io(format!("{what}: overlay lowerdir={joined}"), &e.into()))
}

/// In the sandbox's mount namespace, before the staging pivot: an overlay
/// mount's `upper_dir` and `work_dir`, each opened and judged again by the
/// guardrails as a writable bind (`open`, which follows links as every
/// bind source's open does), then opened again beneath its parent with no
/// link in its last part and judged as a layer directory of the sandbox's
/// root; both opens must find one directory, and both on one mount.
pub fn open_dirs(
    plan: &Plan,
    upper: &str,
    work: &str,
    open: &dyn Fn(&str) -> Result<OwnedFd>,
    step: &dyn Fn() -> String,
) -> Result<(OwnedFd, OwnedFd)> {
    let owner = owner_here(plan);
    let id = |fd: &OwnedFd| -> Result<(u64, u64, u64)> {
        let st = rustix::fs::statx(
            fd,
            "",
            rustix::fs::AtFlags::EMPTY_PATH,
            rustix::fs::StatxFlags::INO | rustix::fs::StatxFlags::MNT_ID,
        )
        .step(step)?;
        let dev = (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor);
        Ok((dev, st.stx_ino, st.stx_mnt_id))
    };
    let judged = |path: &str| -> Result<(OwnedFd, u64)> {
        let fd = open(path)?;
        let (dir, name) = crate::fs::split_parent(path);
        let dir = if dir.is_empty() { "/" } else { dir };
        let parent = open_parent(dir).map_err(|e| SetupError::io(step(), &e))?;
        let plain = open_layer_dir(&parent, dir, name, owner).step(step)?;
        let (a, b) = (id(&fd)?, id(&plain)?);
        if (a.0, a.1) != (b.0, b.1) {
            return Err(SetupError::new(
                step(),
                format!("{path} changed while it was opened; it is refused"),
            ));
        }
        Ok((plain, b.2))
    };
    let ((u, mu), (w, mw)) = (judged(upper)?, judged(work)?);
    if mu != mw {
        return Err(SetupError::io(step(), &two_mounts(upper, work)));
    }
    Ok((u, w))
}

/// Who owns a persistent layer's `upper/` and `work/`, as the host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Owner {
    pub(super) uid: u32,
    pub(super) gid: u32,
    /// The sandbox's root (a root caller's sandbox), not the caller.
    pub(super) sandbox_root: bool,
}

fn upper_dir(plan: &Plan) -> Option<&str> {
    match &plan.filesystem.root {
        crate::spec::Root::Overlay {
            upper: Some(dir), ..
        } => Some(dir),
        _ => None,
    }
}

/// The sandbox's root (or its workload user) on the host for a root caller
/// with a user namespace (what [`prepare_upper`] hands new directories to),
/// else the caller, who made them. `None` when the sandbox's ids do not
/// reach the host, which no directory can then match.
pub(super) fn expected_owner(plan: &Plan) -> Option<Owner> {
    if plan.user_ns() && plan.caller.is_root() {
        let uid = host_id(&plan.uid_map, 0).or_else(|| host_id(&plan.uid_map, plan.process.uid));
        let gid = host_id(&plan.gid_map, 0).or_else(|| host_id(&plan.gid_map, plan.process.gid));
        return Some(Owner {
            uid: uid?,
            gid: gid?,
            sandbox_root: true,
        });
    }
    Some(Owner {
        uid: plan.caller.uid,
        gid: plan.caller.gid,
        sandbox_root: false,
    })
}

/// [`expected_owner`] as seen from where we are: inside the sandbox's user
/// namespace when it has one.
fn owner_here(plan: &Plan) -> Option<Owner> {
    let o = expected_owner(plan)?;
    if !plan.user_ns() {
        return Some(o);
    }
    Some(Owner {
        uid: inside_id(&plan.uid_map, o.uid)?,
        gid: inside_id(&plan.gid_map, o.gid)?,
        ..o
    })
}

/// Open `dir`/`name` beneath the opened `parent` without following any
/// link (the last component included: a symlink is opened as itself) and
/// refuse anything that is not a plain directory owned by `owner` that no
/// other user may write. The error names the path and the reason.
pub(super) fn open_layer_dir(
    parent: &OwnedFd,
    dir: &str,
    name: &str,
    owner: Option<Owner>,
) -> std::result::Result<OwnedFd, std::io::Error> {
    let path = format!("{}/{name}", dir.trim_end_matches('/'));
    let refuse = |why: String| {
        std::io::Error::other(format!(
            "{path} {why}; overlay writes must stay inside {dir}, so it is refused"
        ))
    };
    let fd = rustix::fs::openat2(
        parent,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| refuse(format!("cannot be opened: {}", describe(&e.into()))))?;
    judge_layer_dir(&fd, &path, dir, owner)?;
    Ok(fd)
}

/// Refuse an opened `fd` (shown as `path`, inside `dir`) that is not a
/// plain directory owned by `owner` that no other user may write.
fn judge_layer_dir(
    fd: &OwnedFd,
    path: &str,
    dir: &str,
    owner: Option<Owner>,
) -> std::result::Result<(), std::io::Error> {
    let refuse = |why: String| {
        std::io::Error::other(format!(
            "{path} {why}; overlay writes must stay inside {dir}, so it is refused"
        ))
    };
    let st = rustix::fs::fstat(fd)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {}
        FileType::Symlink => {
            let to = rustix::fs::readlinkat(fd, "", Vec::new())
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "?".into());
            return Err(refuse(format!("is a symbolic link (to {to})")));
        }
        other => {
            let kind = match other {
                FileType::RegularFile => "a regular file",
                FileType::Socket => "a socket",
                FileType::Fifo => "a fifo",
                FileType::CharacterDevice => "a character device",
                FileType::BlockDevice => "a block device",
                _ => "of an unknown kind",
            };
            return Err(refuse(format!("is not a directory but {kind}")));
        }
    }
    let Some(want) = owner else {
        return Err(refuse(
            "cannot be owned by the sandbox: its root's ids are not mapped on the host".into(),
        ));
    };
    if st.st_uid != want.uid {
        let whose = if want.sandbox_root {
            "the sandbox's root on the host, to whom airlock gives the directories it makes: chown it to that uid, or name a directory airlock may make"
        } else {
            "the caller"
        };
        return Err(refuse(format!(
            "is owned by uid {}, not by uid {} ({whose})",
            st.st_uid, want.uid
        )));
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o002 != 0 || (mode & 0o020 != 0 && st.st_gid != want.gid) {
        return Err(refuse(format!(
            "is writable by other users (mode {mode:04o}, group {})",
            st.st_gid
        )));
    }
    if let Some(acl) = acl_lets_others_write(fd)
        .map_err(|e| refuse(format!("cannot have its ACLs read: {}", describe(&e))))?
    {
        return Err(refuse(format!("is writable by other users ({acl})")));
    }
    Ok(())
}

/// Which POSIX ACL of the directory `fd` (opened O_PATH) lets a user
/// other than its owner write it (its access ACL: a named user or group
/// with write, under a mask with write), or what is made in it (its
/// default ACL, which overlayfs's copy-ups there inherit: the same, or
/// others with write). The mode bits alone do not say so.
fn acl_lets_others_write(fd: &OwnedFd) -> std::io::Result<Option<&'static str>> {
    const USER: u16 = 0x02;
    const GROUP: u16 = 0x08;
    const MASK: u16 = 0x10;
    const OTHER: u16 = 0x20;
    const WRITE: u16 = 0x02;
    let dir = rustix::fs::openat(
        fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for (name, what) in [
        ("system.posix_acl_access", "an access ACL"),
        ("system.posix_acl_default", "a default ACL"),
    ] {
        // A version word, then (tag, permissions, id) entries of 8 bytes.
        let mut buf = vec![0u8; 4 + 8 * 1024];
        let n = match rustix::fs::fgetxattr(&dir, name, &mut buf) {
            Ok(n) => n,
            Err(rustix::io::Errno::NODATA | rustix::io::Errno::OPNOTSUPP) => continue,
            Err(e) => return Err(e.into()),
        };
        let entries: Vec<(u16, u16)> = buf[4.min(n)..n]
            .chunks_exact(8)
            .map(|e| {
                (
                    u16::from_le_bytes([e[0], e[1]]),
                    u16::from_le_bytes([e[2], e[3]]),
                )
            })
            .collect();
        let writes = |tag| entries.iter().any(|(t, p)| *t == tag && p & WRITE != 0);
        let masked = entries.iter().any(|(t, _)| *t == MASK) && !writes(MASK);
        let named = (writes(USER) || writes(GROUP)) && !masked;
        let others = name.ends_with("default") && writes(OTHER);
        if named || others {
            return Ok(Some(what));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A scratch directory of this test, removed at the end.
    struct Scratch(std::path::PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn layer_dirs_are_plain_directories_of_the_expected_owner() {
        let base = std::env::temp_dir().join(format!("airlock-layerdir-{}", std::process::id()));
        let _cleanup = Scratch(base.clone());
        let dir = base.join("dir");
        let outside = base.join("outside");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let md = std::fs::metadata(&dir).unwrap();
        let me = Some(Owner {
            uid: md.uid(),
            gid: md.gid(),
            sandbox_root: false,
        });
        let shown = dir.to_str().unwrap();
        let parent =
            rustix::fs::open(&dir, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let err = |name: &str, owner| {
            open_layer_dir(&parent, shown, name, owner)
                .unwrap_err()
                .to_string()
        };
        std::fs::create_dir(dir.join("upper")).unwrap();
        std::fs::set_permissions(
            dir.join("upper"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        assert!(open_layer_dir(&parent, shown, "upper", me).is_ok());
        // Someone else's directory, or none mapped.
        let other = me.map(|o| Owner {
            uid: o.uid + 1,
            ..o
        });
        assert!(
            err("upper", other).contains("is owned by uid"),
            "{}",
            err("upper", other)
        );
        assert!(err("upper", None).contains("not mapped"));
        // Writable by everyone.
        std::fs::set_permissions(
            dir.join("upper"),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        assert!(err("upper", me).contains("writable by other users (mode 0777"));
        // Writable through an ACL: a named user with write (and a mask
        // that lets it), in the access ACL or the default one.
        std::fs::set_permissions(
            dir.join("upper"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let upper = dir.join("upper");
        let acl = |name: &str, user_perm: u16, mask: u16| {
            let mut v = 2u32.to_le_bytes().to_vec();
            for (tag, perm, id) in [
                (0x01u16, 7u16, u32::MAX),
                (0x02, user_perm, 4321),
                (0x04, 5, u32::MAX),
                (0x10, mask, u32::MAX),
                (0x20, 5, u32::MAX),
            ] {
                v.extend(tag.to_le_bytes());
                v.extend(perm.to_le_bytes());
                v.extend(id.to_le_bytes());
            }
            rustix::fs::setxattr(&upper, name, &v, rustix::fs::XattrFlags::empty()).unwrap();
        };
        acl("system.posix_acl_access", 5, 7);
        assert!(open_layer_dir(&parent, shown, "upper", me).is_ok());
        acl("system.posix_acl_access", 7, 5);
        assert!(open_layer_dir(&parent, shown, "upper", me).is_ok());
        acl("system.posix_acl_access", 7, 7);
        assert!(err("upper", me).contains("writable by other users (an access ACL)"));
        rustix::fs::removexattr(&upper, "system.posix_acl_access").unwrap();
        acl("system.posix_acl_default", 7, 7);
        assert!(err("upper", me).contains("writable by other users (a default ACL)"));
        rustix::fs::removexattr(&upper, "system.posix_acl_default").unwrap();
        assert!(open_layer_dir(&parent, shown, "upper", me).is_ok());
        std::fs::set_permissions(
            dir.join("upper"),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        // A symlink out of the directory, a dangling one, a file, a fifo.
        std::os::unix::fs::symlink(&outside, dir.join("work")).unwrap();
        let e = err("work", me);
        assert!(
            e.contains(&format!(
                "{shown}/work is a symbolic link (to {})",
                outside.display()
            )),
            "{e}"
        );
        std::fs::remove_file(dir.join("work")).unwrap();
        std::os::unix::fs::symlink("/no/such/dir", dir.join("work")).unwrap();
        assert!(err("work", me).contains("symbolic link"));
        std::fs::remove_file(dir.join("work")).unwrap();
        std::fs::write(dir.join("work"), "x").unwrap();
        assert!(err("work", me).contains("is not a directory but a regular file"));
        std::fs::remove_file(dir.join("work")).unwrap();
        rustix::fs::mknodat(
            &parent,
            "work",
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(err("work", me).contains("but a fifo"));
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
}
