//! podman's `tmpcopyup` (which it adds to every `--tmpfs`): a tmpfs that
//! starts with a copy of what its destination held, as runc and crun give
//! it. PID 1 copies into the detached tmpfs before it covers the
//! destination and before it is made read-only, from the destination as
//! the sandbox's earlier mounts left it (an image's files, usually).
//!
//! Every name is reached from a directory fd with O_NOFOLLOW: a symlink
//! in the tree (an image's, whose target means something only inside the
//! sandbox) is copied as a link and never followed, so the copy reads
//! nothing outside the tree whatever its links say; a source opened as a
//! regular file is checked to be one (O_NONBLOCK, so a FIFO swapped in
//! cannot hang us). Copied: directories, regular files, symlinks and
//! FIFOs, with their modes, owners and times, and the POSIX ACLs of files
//! and directories (with one, the mode's group bits are the ACL's mask,
//! not the owning group's rights: the mode alone would widen them). An
//! owner the sandbox's user namespace does not map (shown as the overflow
//! id) is not given to the copy, which stays the sandbox root's. Not
//! copied: other extended attributes, and hard links (each name becomes a
//! file of its own). A
//! device node or a socket is an error naming it: a user namespace cannot
//! make the first, and the second would be a name with nothing behind it.
//!
//! By hand: it works on the directory fds the mount code holds, with the
//! `*at` calls; the copying crates take paths, which is what a copy out
//! of an untrusted tree must not resolve.

use rustix::fs::{self, AtFlags, Dir, FileType, Gid, Mode, OFlags, Stat, Timestamps, Uid};
use rustix::io::Errno;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

/// Deeper trees are refused rather than recursed into without end.
const MAX_DEPTH: usize = 128;

/// Copy the contents of the directory `from` into the directory `to`.
pub fn copy_tree(from: impl AsFd, to: impl AsFd) -> io::Result<()> {
    let from = open_dir(from, c".")?;
    let to = open_dir(to, c".")?;
    copy_dir(&from, &to, "", 0)
}

fn open_dir(at: impl AsFd, name: &CStr) -> io::Result<OwnedFd> {
    Ok(fs::openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn copy_dir(from: &OwnedFd, to: &OwnedFd, at: &str, depth: usize) -> io::Result<()> {
    let mut entries = Dir::read_from(from)?;
    while let Some(entry) = entries.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let path = format!("{at}/{}", name.to_string_lossy());
        // Named where it failed; what fails deeper names itself.
        let named =
            |e: io::Error| io::Error::new(e.kind(), format!("copying {path} into the tmpfs: {e}"));
        let st = fs::statat(from, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| named(e.into()))?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let (src, dst) = enter_dir(from, to, name, depth).map_err(named)?;
            copy_dir(&src, &dst, &path, depth + 1)?;
            // Last: adding the entries changed the directory's times.
            keep_metadata(&src, &dst, &st).map_err(named)?;
        } else {
            copy_leaf(from, to, name, &st).map_err(named)?;
        }
    }
    Ok(())
}

/// The directory `name` on both sides, the copy made.
fn enter_dir(
    from: &OwnedFd,
    to: &OwnedFd,
    name: &CStr,
    depth: usize,
) -> io::Result<(OwnedFd, OwnedFd)> {
    if depth == MAX_DEPTH {
        return Err(io::Error::other(format!(
            "more than {MAX_DEPTH} directories deep"
        )));
    }
    fs::mkdirat(to, name, Mode::from_raw_mode(0o700))?;
    Ok((open_dir(from, name)?, open_dir(to, name)?))
}

/// Anything but a directory.
fn copy_leaf(from: &OwnedFd, to: &OwnedFd, name: &CStr, st: &Stat) -> io::Result<()> {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {
            let src = fs::openat(
                from,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            if FileType::from_raw_mode(fs::fstat(&src)?.st_mode) != FileType::RegularFile {
                return Err(io::Error::other("changed while it was copied"));
            }
            let dst = fs::openat(
                to,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let (mut src, mut dst) = (std::fs::File::from(src), std::fs::File::from(dst));
            // std copies between files with copy_file_range.
            io::copy(&mut src, &mut dst)?;
            keep_metadata(&src, &dst, st)
        }
        FileType::Symlink => {
            let target = fs::readlinkat(from, name, Vec::new())?;
            fs::symlinkat(&target, to, name)?;
            keep_metadata_at(to, name, st, false)
        }
        FileType::Fifo => {
            fs::mknodat(to, name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)?;
            keep_metadata_at(to, name, st, true)
        }
        FileType::Socket => Err(io::Error::other("a socket is not copied into a tmpfs")),
        _ => Err(io::Error::other("a device node is not copied into a tmpfs")),
    }
}

/// The kernel's default overflow uid and gid (`kernel.overflowuid`): what
/// an owner the user namespace does not map is shown as.
const OVERFLOW_ID: u32 = 65534;

/// The copy's owner: the source's, but for one shown as the overflow id.
/// That one is most likely unmapped (the host's root, whose files a bind
/// shows): where the namespace maps 65534 too (a root caller's 65536
/// ids do), a chown to it would succeed and hand the copy, with its mode,
/// to the sandbox's `nobody`. It stays the sandbox root's, as one the
/// chown refuses does; a file truly of the mapped 65534 gets root too.
fn owner(st: &Stat) -> (Option<Uid>, Option<Gid>) {
    (
        (st.st_uid != OVERFLOW_ID).then(|| Uid::from_raw(st.st_uid)),
        (st.st_gid != OVERFLOW_ID).then(|| Gid::from_raw(st.st_gid)),
    )
}

fn times(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: fs::Timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: fs::Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

/// An owner the user namespace does not map is EINVAL: the copy stays ours.
fn unmapped_is_fine(r: rustix::io::Result<()>) -> io::Result<()> {
    match r {
        Err(Errno::INVAL) => Ok(()),
        r => Ok(r?),
    }
}

/// Owner, then mode (a chown clears the set-id bits), then the ACLs of
/// `src` (which set the group bits to their mask), then times.
fn keep_metadata(src: impl AsFd, fd: impl AsFd, st: &Stat) -> io::Result<()> {
    let (uid, gid) = owner(st);
    unmapped_is_fine(fs::fchown(&fd, uid, gid))?;
    fs::fchmod(&fd, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    copy_acl(&src, &fd, "system.posix_acl_access", st.st_mode & 0o7777)?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        copy_acl(&src, &fd, "system.posix_acl_default", st.st_mode & 0o7777)?;
    }
    Ok(fs::futimens(&fd, &times(st))?)
}

/// The POSIX ACL `name` of `src` given to `dst`, where `src` has one.
/// An ACL naming an id the sandbox's user namespace does not map (read
/// back as -1) cannot be written (EINVAL): an access ACL then leaves the
/// copy with the owning group's own rights as its group bits (the ACL's
/// group entry within its mask), never the mask's, which would widen
/// them; a default ACL, which only shapes files made later in the
/// sandbox's own tmpfs, is left out. Any other failure is an error: the
/// copy would be open to more than the original.
fn copy_acl(src: impl AsFd, dst: impl AsFd, name: &str, mode: u32) -> io::Result<()> {
    let failed = |e: Errno| io::Error::new(io::Error::from(e).kind(), format!("{name}: {e}"));
    // An ACL of the most entries ext4 holds fits many times over.
    let mut value = vec![0u8; 64 * 1024];
    let len = match fs::fgetxattr(&src, name, &mut value[..]) {
        Ok(len) => len,
        Err(Errno::NODATA) | Err(Errno::OPNOTSUPP) => return Ok(()),
        Err(e) => return Err(failed(e)),
    };
    let value = &value[..len];
    match fs::fsetxattr(&dst, name, value, fs::XattrFlags::empty()) {
        Err(Errno::INVAL) if name == "system.posix_acl_default" => Ok(()),
        Err(Errno::INVAL) => {
            let group = owning_group_rights(value).ok_or_else(|| failed(Errno::INVAL))?;
            let narrowed = (mode & !0o070) | (group << 3);
            Ok(fs::fchmod(&dst, Mode::from_raw_mode(narrowed))?)
        }
        r => r.map_err(failed),
    }
}

/// The rights an ACL (its xattr form: a version, then tag, perm and id
/// per entry) gives the owning group: its group entry within its mask.
fn owning_group_rights(acl: &[u8]) -> Option<u32> {
    const GROUP_OBJ: u16 = 0x04;
    const MASK: u16 = 0x10;
    let (mut group, mut mask) = (None, 0o7);
    for entry in acl.get(4..)?.chunks_exact(8) {
        let tag = u16::from_le_bytes([entry[0], entry[1]]);
        let perm = u32::from(u16::from_le_bytes([entry[2], entry[3]]) & 0o7);
        match tag {
            GROUP_OBJ => group = Some(perm),
            MASK => mask = perm,
            _ => {}
        }
    }
    Some(group? & mask)
}

/// The same by name, for what cannot be opened (a symlink, a FIFO). A
/// symlink's mode is always 0777 and not set.
fn keep_metadata_at(dir: &OwnedFd, name: &CStr, st: &Stat, mode: bool) -> io::Result<()> {
    let (uid, gid) = owner(st);
    unmapped_is_fine(fs::chownat(dir, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW))?;
    if mode {
        fs::chmodat(
            dir,
            name,
            Mode::from_raw_mode(st.st_mode & 0o7777),
            AtFlags::empty(),
        )?;
    }
    Ok(fs::utimensat(
        dir,
        name,
        &times(st),
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    use std::path::Path;

    fn copy(from: &Path, to: &Path) -> io::Result<()> {
        copy_tree(std::fs::File::open(from)?, std::fs::File::open(to)?)
    }

    /// With an ACL the group bits are its mask: the copy keeps the ACL,
    /// so the owning group gets no more than it had (here nothing).
    #[test]
    fn a_files_acl_comes_along() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let file = from.path().join("file");
        std::fs::write(&file, "x").unwrap();
        // user::rw- user:1000:rw- group::--- mask::rw- other::---
        let mut acl = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (1u16, 6u16, u32::MAX),
            (2, 6, 1000),
            (4, 0, u32::MAX),
            (0x10, 6, u32::MAX),
            (0x20, 0, u32::MAX),
        ] {
            acl.extend(tag.to_le_bytes());
            acl.extend(perm.to_le_bytes());
            acl.extend(id.to_le_bytes());
        }
        let name = "system.posix_acl_access";
        match fs::setxattr(file.as_path(), name, &acl, fs::XattrFlags::empty()) {
            Err(Errno::OPNOTSUPP) => {
                eprintln!("SKIPPED: the temporary directory's filesystem has no ACLs");
                return;
            }
            r => r.unwrap(),
        }
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o660);
        copy(from.path(), to.path()).unwrap();
        let copied = to.path().join("file");
        assert_eq!(std::fs::metadata(&copied).unwrap().mode() & 0o777, 0o660);
        let mut back = vec![0u8; 256];
        let n = fs::getxattr(copied.as_path(), name, &mut back[..]).unwrap();
        assert_eq!(&back[..n], &acl[..]);
        // Where it cannot be written (an id the sandbox does not map), the
        // group bits become the owning group's own rights: none here.
        assert_eq!(owning_group_rights(&acl), Some(0));
        let mut wider = acl.clone();
        wider[4 + 2 * 8 + 2] = 4; // group::r--
        assert_eq!(owning_group_rights(&wider), Some(4));
        wider[4 + 3 * 8 + 2] = 2; // mask::-w-
        assert_eq!(owning_group_rights(&wider), Some(0));
    }

    #[test]
    fn files_directories_links_and_fifos_are_copied_and_no_link_is_followed() {
        let (from, to, elsewhere) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let (f, t) = (from.path(), to.path());
        let secret = elsewhere.path().join("secret");
        std::fs::write(&secret, "not to be copied").unwrap();
        std::fs::create_dir_all(f.join("sub/deeper")).unwrap();
        std::fs::write(f.join("file"), "content").unwrap();
        std::fs::set_permissions(f.join("file"), PermissionsExt::from_mode(0o640)).unwrap();
        std::fs::set_permissions(f.join("sub"), PermissionsExt::from_mode(0o750)).unwrap();
        std::fs::write(f.join("sub/deeper/nested"), "nested").unwrap();
        std::os::unix::fs::symlink(&secret, f.join("out")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), f.join("out-dir")).unwrap();
        std::os::unix::fs::symlink("file", f.join("in")).unwrap();
        fs::mknodat(
            fs::CWD,
            f.join("fifo").as_path(),
            FileType::Fifo,
            Mode::from_raw_mode(0o620),
            0,
        )
        .unwrap();
        // Past the umask.
        std::fs::set_permissions(f.join("fifo"), PermissionsExt::from_mode(0o620)).unwrap();
        let old = fs::Timespec {
            tv_sec: 978_307_200,
            tv_nsec: 0,
        };
        let stamp = Timestamps {
            last_access: old,
            last_modification: old,
        };
        for name in ["file", "sub"] {
            fs::utimensat(fs::CWD, f.join(name).as_path(), &stamp, AtFlags::empty()).unwrap();
        }

        copy(f, t).unwrap();

        assert_eq!(std::fs::read_to_string(t.join("file")).unwrap(), "content");
        let meta = |p: &str| std::fs::symlink_metadata(t.join(p)).unwrap();
        assert_eq!(meta("file").mode() & 0o7777, 0o640);
        assert_eq!(meta("file").mtime(), 978_307_200);
        assert_eq!(meta("sub").mode() & 0o7777, 0o750);
        assert_eq!(meta("sub").mtime(), 978_307_200, "set after its entries");
        assert_eq!(
            std::fs::read_to_string(t.join("sub/deeper/nested")).unwrap(),
            "nested"
        );
        // Links are links, pointing where they pointed; what is outside
        // the tree was not read.
        assert_eq!(std::fs::read_link(t.join("out")).unwrap(), secret);
        assert!(meta("out").file_type().is_symlink());
        assert!(meta("out-dir").file_type().is_symlink());
        assert_eq!(std::fs::read_link(t.join("in")).unwrap(), Path::new("file"));
        assert!(meta("fifo").file_type().is_fifo());
        assert_eq!(meta("fifo").mode() & 0o7777, 0o620);
        assert_eq!(std::fs::read_dir(t).unwrap().count(), 6);
    }

    #[test]
    fn a_socket_is_refused_by_its_path() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::create_dir(from.path().join("run")).unwrap();
        let _l = std::os::unix::net::UnixListener::bind(from.path().join("run/sock")).unwrap();
        let e = copy(from.path(), to.path()).unwrap_err().to_string();
        assert_eq!(
            e,
            "copying /run/sock into the tmpfs: a socket is not copied into a tmpfs"
        );
    }

    #[test]
    fn a_tree_too_deep_is_refused() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let deep: std::path::PathBuf = std::iter::repeat_n("d", MAX_DEPTH + 2).collect();
        std::fs::create_dir_all(from.path().join(&deep)).unwrap();
        let e = copy(from.path(), to.path()).unwrap_err().to_string();
        assert!(e.contains("more than 128 directories deep"), "{e}");
    }
}
