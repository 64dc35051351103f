//! Path resolution and mount primitives that never follow a path outside
//! the tree they belong to.
//!
//! Every target inside the new root is resolved with
//! `openat2(root, path, RESOLVE_IN_ROOT)`, so a symlink planted in a rootfs
//! (`/data -> /etc`) resolves inside the root, never on the host (runc
//! CVE-2021-30465, CVE-2024-45310, crun#111). Every mount is made with the
//! new mount API on file descriptors (`open_tree`, `fsmount`, `move_mount`),
//! so what was opened and checked is what gets mounted.

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
    open_tree, FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};
use std::io;
use std::os::fd::{AsFd, OwnedFd};

/// Open `path` inside the tree rooted at `root`: absolute paths, `..` and
/// symlinks all stay inside it. Magic links (/proc/PID/fd/N) are refused.
pub fn open_in(root: impl AsFd, path: &str, flags: OFlags) -> io::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    Ok(openat2_in_root(
        root,
        rel,
        flags | OFlags::CLOEXEC,
        ResolveFlags::NO_MAGICLINKS,
    )?)
}

/// openat2 with RESOLVE_IN_ROOT (and `more`), tried again while it says
/// EAGAIN: the kernel's answer when a rename or a mount anywhere on the
/// machine raced the resolution of a `..` (a symlink's
/// `../run/...`), which it cannot then vouch stayed inside the root. A
/// start beside other mounting processes failed "cannot make the mount
/// point: Resource temporarily unavailable".
fn openat2_in_root(
    root: impl AsFd,
    rel: &str,
    flags: OFlags,
    more: ResolveFlags,
) -> rustix::io::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            &root,
            rel,
            flags,
            Mode::empty(),
            ResolveFlags::IN_ROOT | more,
        ) {
            Err(rustix::io::Errno::AGAIN) if tries < OPENAT2_TRIES => tries += 1,
            r => return r,
        }
    }
}

/// How often [`openat2_in_root`] tries again: races are rare, and one
/// that never ends is an attack's.
const OPENAT2_TRIES: u32 = 1000;

/// An O_PATH handle on `path` inside `root`.
pub fn path_in(root: impl AsFd, path: &str) -> io::Result<OwnedFd> {
    open_in(root, path, OFlags::PATH)
}

/// Split `/a/b/c` into (`/a/b`, `c`).
pub fn split_parent(path: &str) -> (&str, &str) {
    let p = path.trim_end_matches('/');
    match p.rfind('/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => ("", p),
    }
}

/// The ids PID 1 makes files with where its own are no id at all: a root
/// caller's writable bind is idmapped so that the caller's host ids are
/// the workload's alone, and PID 1 (the sandbox's root) then gets
/// EOVERFLOW making a mount point, a directory or a file there, which the
/// workload itself (another uid than 0) could make. `u64::MAX`: none.
static UNMAPPED_FALLBACK: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(u64::MAX);

/// From now on, [`creating`] retries as `uid`/`gid` where PID 1's own ids
/// are not mapped. For PID 1 alone: a retry also sets its parent-death
/// signal (SIGKILL) and non-dumpability again.
pub fn make_as_where_unmapped(uid: u32, gid: u32) {
    let ids = (u64::from(uid) << 32) | u64::from(gid);
    UNMAPPED_FALLBACK.store(ids, std::sync::atomic::Ordering::Relaxed);
}

/// `make`, and where it fails with EOVERFLOW (our file-system ids have no
/// mapping in that mount), `make` again as the ids given to
/// [`make_as_where_unmapped`], whose files there are what the workload's
/// would be; our ids are set back after.
pub fn creating<T>(mut make: impl FnMut() -> rustix::io::Result<T>) -> rustix::io::Result<T> {
    let ids = UNMAPPED_FALLBACK.load(std::sync::atomic::Ordering::Relaxed);
    match make() {
        Err(rustix::io::Errno::OVERFLOW) if ids != u64::MAX => {
            let (uid, gid) = ((ids >> 32) as u32, ids as u32);
            // SAFETY: setfsuid and setfsgid change only the calling
            // thread's file-system ids (PID 1 is single-threaded), take no
            // pointers, and are set back below before anything else runs.
            let (old_uid, old_gid) = unsafe { (libc::setfsuid(uid), libc::setfsgid(gid)) };
            let made = make();
            // SAFETY: as above; the previous ids are our own, which our
            // CAP_SETUID and CAP_SETGID (not file-system capabilities, so
            // kept while fsuid was not 0) let us take back.
            unsafe {
                libc::setfsgid(old_gid as u32);
                libc::setfsuid(old_uid as u32);
            }
            // Any change of credentials, the file-system ids' too, makes
            // the kernel clear the parent-death signal and reset
            // dumpability to fs.suid_dumpable (commit_creds): PID 1 armed
            // both before its first mount, and would outlive a killed
            // supervisor.
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
            made
        }
        r => r,
    }
}

/// Create every missing directory of `dir` inside `root` (mode 0755) and
/// return an O_PATH handle on it. Each component is created with mkdirat in
/// a parent that was itself resolved inside the root.
pub fn mkdir_all_in(root: impl AsFd + Copy, dir: &str) -> io::Result<OwnedFd> {
    mkdir_made_in(root, dir).map(|(fd, _)| fd)
}

/// [`mkdir_all_in`], and whether this call made `dir` itself. The one it
/// made is opened beside its parent, never through a link: it is the
/// directory that mkdirat made (or the call fails), and a mode meant only
/// for a directory made here cannot land on one a link, swapped in by
/// whoever may write the parent, leads to.
pub fn mkdir_made_in(root: impl AsFd + Copy, dir: &str) -> io::Result<(OwnedFd, bool)> {
    match open_in(root, dir, OFlags::PATH | OFlags::DIRECTORY) {
        Ok(fd) => return Ok((fd, false)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let (parent, name) = split_parent(dir);
    let parent_fd = mkdir_all_in(root, parent)?;
    match creating(|| rustix::fs::mkdirat(&parent_fd, name, Mode::from_raw_mode(0o755))) {
        Ok(()) => {
            let made = rustix::fs::openat2(
                &parent_fd,
                name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            )?;
            if umask_trims_dirs() {
                let d = rustix::fs::openat(
                    &made,
                    ".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                rustix::fs::fchmod(d, Mode::from_raw_mode(0o755))?;
            }
            Ok((made, true))
        }
        Err(rustix::io::Errno::EXIST) => {
            open_in(root, dir, OFlags::PATH | OFlags::DIRECTORY).map(|fd| (fd, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether this process's umask takes bits off 0755 (a caller's 077):
/// a directory made in the sandbox then gets its 0755 back, as under
/// bubblewrap, whose setup runs under umask 0; 0700 kept a workload of
/// another uid out of `--dir /a/b`. Read once (the runner sets no umask
/// of its own before the workload's).
fn umask_trims_dirs() -> bool {
    static TRIMS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRIMS.get_or_init(|| {
        let old = rustix::process::umask(Mode::empty());
        rustix::process::umask(old);
        old.bits() & 0o755 != 0
    })
}

/// What a mount target should be when it has to be created.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Dir,
    File,
}

/// Make sure `path` exists inside `root` as a directory or a file, creating
/// it and its parents if needed, and return an O_PATH handle on it.
/// An error says that the mount point was what failed (a read-only or
/// kernel filesystem where it had to be made, a file in the way), not the
/// mount.
///
/// A target that a symbolic link (an image's) leads into the sandbox's
/// procfs or sysfs is refused unless the path itself is written there:
/// a mount there would hide what the kernel shows, and the masks and
/// read-only paths set over it would then find nothing to protect (runc's
/// CVE-2019-19921 class).
pub fn ensure_target(root: impl AsFd + Copy, path: &str, kind: TargetKind) -> io::Result<OwnedFd> {
    let fd =
        make_target(root, path, kind).map_err(|e| io::Error::new(e.kind(), MountPointError(e)))?;
    not_led_into_kernel_fs(&fd, path, "the mount point", "mounted")?;
    Ok(fd)
}

/// Refuse `fd`, found at `path` inside the root, when a symbolic link
/// led it into the sandbox's procfs or sysfs though `path` is not written
/// there (an image's `/etc -> /proc/sys/kernel`): what is `made` there
/// (a mount, a file's content) would land on what the kernel shows.
pub fn not_led_into_kernel_fs(fd: impl AsFd, path: &str, what: &str, made: &str) -> io::Result<()> {
    let under = |dir: &str| {
        path.strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    match kernel_fs(fd)? {
        Some(kernel) if !under(kernel) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{what} leads into the sandbox's {kernel} through a symbolic link; only a path written under {kernel} may be {made} there"),
        )),
        _ => Ok(()),
    }
}

/// Which of the kernel's filesystems `fd` is on, `/proc` or `/sys`, if
/// either.
pub fn kernel_fs(fd: impl AsFd) -> io::Result<Option<&'static str>> {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    const SYSFS_MAGIC: i64 = 0x6265_6572;
    Ok(match rustix::fs::fstatfs(fd)?.f_type as i64 {
        PROC_SUPER_MAGIC => Some("/proc"),
        SYSFS_MAGIC => Some("/sys"),
        _ => None,
    })
}

/// A failure to find or make a mount point; the kernel's error is its
/// source, so its errno survives (`SetupError::io`).
#[derive(Debug)]
struct MountPointError(io::Error);

impl std::fmt::Display for MountPointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reason = crate::report::describe(&self.0);
        write!(f, "cannot make the mount point: {reason}")
    }
}

impl std::error::Error for MountPointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn make_target(root: impl AsFd + Copy, path: &str, kind: TargetKind) -> io::Result<OwnedFd> {
    if let Ok(fd) = path_in(root, path) {
        return Ok(fd);
    }
    let (parent, name) = split_parent(path);
    let parent_fd = mkdir_all_in(root, parent)?;
    // A link whose target is not there yet (an image's /etc/resolv.conf
    // -> ../run/systemd/resolve/stub-resolv.conf): its target is made, as
    // runc makes it, inside the root (resolved there, `..` stopping at the
    // root), and the link then leads to the mount point.
    let mut link = (parent.to_string(), name.to_string(), parent_fd);
    for _ in 0..MAX_LINKS {
        let Ok(to) = rustix::fs::readlinkat(&link.2, link.1.as_str(), Vec::new()) else {
            break;
        };
        let to = to.to_string_lossy().into_owned();
        let next = match to.starts_with('/') {
            true => to,
            false => format!("{}/{to}", link.0),
        };
        let (p, n) = split_parent(&next);
        let fd = mkdir_all_in(root, p)?;
        link = (p.to_string(), n.to_string(), fd);
    }
    let (_, name, parent_fd) = &link;
    let name = name.as_str();
    match kind {
        TargetKind::Dir => {
            match creating(|| rustix::fs::mkdirat(parent_fd, name, Mode::from_raw_mode(0o755))) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        TargetKind::File => {
            // Non-blocking: a FIFO put there since the lookup above (a
            // rootfs another container writes) must not hold us in open.
            creating(|| {
                rustix::fs::openat(
                    parent_fd,
                    name,
                    OFlags::CREATE
                        | OFlags::WRONLY
                        | OFlags::NOFOLLOW
                        | OFlags::NONBLOCK
                        | OFlags::NOCTTY
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o644),
                )
            })?;
        }
    }
    path_in(root, path)
}

/// The most links followed to a mount point yet to be made (the kernel's
/// own bound on a path, MAXSYMLINKS).
const MAX_LINKS: usize = 40;

/// Attach a detached mount (from `open_tree` or `fsmount`) on `target`.
pub fn attach(mount: impl AsFd, target: impl AsFd) -> io::Result<()> {
    Ok(move_mount(
        mount,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )?)
}

/// A detached copy of the mount tree at `source` (recursive, as a bind of a
/// host path must take the submounts the kernel has locked to it).
pub fn clone_tree(source: impl AsFd, recursive: bool) -> io::Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_EMPTY_PATH;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    Ok(open_tree(source, "", flags)?)
}

/// A new detached filesystem mount (`tmpfs`, `proc`, `devpts`, `mqueue`).
/// `options` are `fsconfig` keys, with a value or as flags.
pub fn new_fs(fstype: &str, options: &[(&str, Option<&str>)], attrs: u64) -> io::Result<OwnedFd> {
    let fs = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?;
    for (key, value) in options {
        match value {
            Some(v) => fsconfig_set_string(&fs, *key, *v)?,
            None => fsconfig_set_flag(&fs, *key)?,
        }
    }
    fsconfig_create(&fs)?;
    Ok(fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::from_bits_retain(attrs as u32),
    )?)
}

/// A new detached tmpfs (nosuid, nodev) with the given mode and, if any,
/// size limit.
pub fn new_tmpfs(mode: u32, size: Option<crate::spec::Size>) -> io::Result<OwnedFd> {
    let mode = format!("{mode:o}");
    let size = size.map(|s| s.0.to_string());
    let mut opts = vec![("mode", Some(mode.as_str()))];
    if let Some(s) = &size {
        opts.push(("size", Some(s.as_str())));
    }
    new_fs(
        "tmpfs",
        &opts,
        crate::sys::MOUNT_ATTR_NOSUID | crate::sys::MOUNT_ATTR_NODEV,
    )
}

/// The directory inside `root` a kernel filesystem (proc, sysfs, a /dev
/// and what goes in it) is mounted on, created if missing, and reached
/// without any symlink. What protects such a filesystem afterwards (the
/// masked and read-only paths under /proc and /sys, /dev's seal) finds it
/// by path: an image's `/proc -> /` would stack proc on the rootfs's root,
/// where every mask would miss it (runc CVE-2019-19921, CVE-2023-27561;
/// runc refuses such a destination too).
pub fn plain_dir_in(root: impl AsFd + Copy, path: &str) -> io::Result<OwnedFd> {
    let open = || {
        let rel = path.trim_start_matches('/');
        openat2_in_root(
            root,
            if rel.is_empty() { "." } else { rel },
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
    };
    let opened = match open() {
        Err(rustix::io::Errno::NOENT) => {
            ensure_target(root, path, TargetKind::Dir)?;
            open()
        }
        r => r,
    };
    opened.map_err(|e| match e {
        rustix::io::Errno::LOOP => io::Error::other(format!(
            "{path} is a symlink or is reached through one in this root: \
             a kernel filesystem is mounted only on a plain directory"
        )),
        e => e.into(),
    })
}

/// Mount a new kernel filesystem on `path` inside `root`, creating the
/// directory ([`plain_dir_in`]). Returns the mount's own handle, which
/// leads to it whatever later happens to the path.
pub fn mount_fs_at(
    root: impl AsFd + Copy,
    path: &str,
    fstype: &str,
    options: &[(&str, Option<&str>)],
    attrs: u64,
) -> io::Result<OwnedFd> {
    let target = plain_dir_in(root, path)?;
    let mnt = new_fs(fstype, options, attrs)?;
    attach(&mnt, target)?;
    Ok(mnt)
}

/// Is this fd a directory?
pub fn is_dir(fd: impl AsFd) -> io::Result<bool> {
    let st = rustix::fs::fstat(fd)?;
    Ok(rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory)
}

/// Open (creating, 0600) a lock file to flock: never through a symlink
/// at its name, and not inherited by what the caller later execs.
pub fn open_lock_file(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
}

/// Read `fd` (opened non-blocking) to a string of at most `limit` bytes
/// if it is a regular file: a sandbox's or an image's /etc/passwd may be
/// a FIFO, whose open and read would otherwise hang, or a device.
pub fn read_regular(fd: OwnedFd, limit: u64) -> Option<String> {
    let st = rustix::fs::fstat(&fd).ok()?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return None;
    }
    let mut text = String::new();
    let file = std::fs::File::from(fd);
    std::io::Read::read_to_string(&mut std::io::Read::take(file, limit), &mut text).ok()?;
    Some(text)
}

/// Remove a tree airlock wrote, making read-only directories writable
/// first (image layers keep the image's modes; overlayfs makes its
/// `work/work` with mode 0). The tree's files may belong to a sandbox's
/// ids, whose owner can change it meanwhile: each directory
/// is opened beneath the last, never through a symlink, and changed by
/// its fd, so that no swap of a directory for a link sends a chmod onto
/// the host. (`remove_dir_all` itself follows no symlink.)
pub fn remove_tree(p: &std::path::Path) {
    use rustix::fs::{Mode, OFlags, CWD};
    use std::os::fd::{AsFd, AsRawFd};
    if std::fs::remove_dir_all(p).is_ok() {
        return;
    }
    // Searched and listed once made the owner's: an O_PATH handle needs
    // neither right, and its chmod goes through /proc to what it holds.
    fn open_up(parent: impl AsFd, name: &std::ffi::CStr) {
        let held = OFlags::PATH
            .union(OFlags::DIRECTORY)
            .union(OFlags::NOFOLLOW)
            .union(OFlags::CLOEXEC);
        // Not a directory, or a symlink: ENOTDIR or ELOOP, left alone.
        let Ok(handle) = rustix::fs::openat(parent, name, held, Mode::empty()) else {
            return;
        };
        let _ = rustix::fs::chmod(
            format!("/proc/self/fd/{}", handle.as_raw_fd()).as_str(),
            Mode::from_raw_mode(0o700),
        );
        let listed = OFlags::RDONLY
            .union(OFlags::DIRECTORY)
            .union(OFlags::CLOEXEC);
        let Ok(dir) = rustix::fs::openat(&handle, c".", listed, Mode::empty()) else {
            return;
        };
        // One descriptor a level while we go down, not three: a layer may
        // be 512 levels deep (unpack's MAX_DEPTH), and at the usual 1024
        // descriptors the walk gave up near 340, leaving the rest (and
        // whatever its files held) for good.
        drop(handle);
        let mut names = Vec::new();
        if let Ok(mut entries) = rustix::fs::Dir::read_from(&dir) {
            while let Some(Ok(e)) = entries.read() {
                let name = e.file_name();
                if name != c"." && name != c".." {
                    names.push(name.to_owned());
                }
            }
        }
        for name in names {
            open_up(&dir, &name);
        }
    }
    if let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) {
        open_up(CWD, &c);
    }
    let _ = std::fs::remove_dir_all(p);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deep tree its owner (not root) cannot write is removed with few
    /// descriptors: each level holds one while the walk goes down. Run in
    /// a child process of this test binary, as uid 65534 with at most 512
    /// descriptors, over 300 levels (three a level ran out near 170).
    #[test]
    fn a_deep_tree_the_user_cannot_write_is_removed_within_its_descriptors() {
        const CHILD: &str = "AIRLOCK_TEST_REMOVE_TREE";
        if let Some(tree) = std::env::var_os(CHILD) {
            // SAFETY: plain id changes of this whole (child) process.
            unsafe {
                assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
                assert_eq!(libc::setresgid(65534, 65534, 65534), 0);
                assert_eq!(libc::setresuid(65534, 65534, 65534), 0);
            }
            remove_tree(std::path::Path::new(&tree));
            return;
        }
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED a_deep_tree_the_user_cannot_write_is_removed_within_its_descriptors: needs root (chown)");
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let tree = dir.path().join("tree");
        let mut levels = vec![tree.clone()];
        for _ in 0..300 {
            levels.push(levels.last().unwrap().join("d"));
        }
        std::fs::create_dir_all(levels.last().unwrap()).unwrap();
        std::fs::write(levels.last().unwrap().join("f"), "x").unwrap();
        for (i, d) in levels.iter().enumerate().rev() {
            std::os::unix::fs::chown(d, Some(65534), Some(65534)).unwrap();
            if i + 1 == levels.len() {
                std::os::unix::fs::chown(d.join("f"), Some(65534), Some(65534)).unwrap();
            }
            // Read-only all the way: nothing of it can be unlinked as is.
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o555)).unwrap();
        }
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args([
                "--exact",
                "fs::tests::a_deep_tree_the_user_cannot_write_is_removed_within_its_descriptors",
                "--test-threads=1",
            ])
            .env(CHILD, &tree);
        // SAFETY: the child only lowers its own limit before exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut child, || {
                let lim = libc::rlimit {
                    rlim_cur: 512,
                    rlim_max: 512,
                };
                match libc::setrlimit(libc::RLIMIT_NOFILE, &lim) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            });
        }
        let out = child.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(!tree.exists(), "the tree was left behind");
    }

    /// A `..` resolved in the root while renames go on elsewhere: the
    /// kernel says EAGAIN now and then, and the open must still succeed.
    #[test]
    fn a_dot_dot_in_the_root_survives_renames_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("root/a")).unwrap();
        std::fs::write(dir.path().join("root/f"), "").unwrap();
        std::fs::write(dir.path().join("x"), "").unwrap();
        let root = rustix::fs::open(
            dir.path().join("root").as_path(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let renamer = {
            let stop = stop.clone();
            let (x, y) = (dir.path().join("x"), dir.path().join("y"));
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::fs::rename(&x, &y);
                    let _ = std::fs::rename(&y, &x);
                }
            })
        };
        let opened = (0..20_000).all(|_| open_in(&root, "a/../f", OFlags::PATH).is_ok());
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        renamer.join().unwrap();
        assert!(opened, "an open failed while renames went on");
    }
}
