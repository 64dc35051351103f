//! Unpacking an untrusted tar layer into a directory of the store.
//!
//! Every path is resolved beneath the layer's root with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)`, so nothing is ever
//! written outside it. What the spec asks for each hostile entry:
//! - `..` anywhere in a path: refused (the whole layer);
//! - an absolute path: neutralised (made relative to the layer) and reported;
//! - a path through a symlink (`a -> /etc`, then `a/passwd`): refused;
//! - a hard link whose target is not a file of this layer: refused;
//! - device nodes: neutralised (skipped) and reported;
//! - setuid/setgid bits: neutralised (cleared) and reported.
//!
//! Whiteouts (`.wh.NAME`) become overlayfs whiteouts (a 0/0 character
//! device, or the `user.overlay.whiteout` xattr where mknod is not
//! allowed), opaque markers (`.wh..wh..opq`) the `user.overlay.opaque`
//! xattr, as overlayfs reads them with `userxattr` in a user namespace.

use super::ImageError;
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path};

/// What to do beyond writing files.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Honour whiteouts and opaque markers (image layers), rather than
    /// writing them as plain files (an outer archive).
    pub layer: bool,
    /// Shift owners into the sandbox's host range: a file owned by uid N
    /// in the image is owned by `base + N` on the host (root callers).
    pub id_base: Option<u32>,
}

const CONFINED: ResolveFlags = ResolveFlags::IN_ROOT
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

fn err(path: &str, what: impl std::fmt::Display) -> ImageError {
    ImageError::new(format!("layer entry {path:?}: {what}"))
}

/// Clean a tar path: relative, no `.`; `..` is refused; an absolute path
/// is made relative and reported.
fn clean(raw: &str, notes: &mut Vec<String>) -> Result<Vec<String>, ImageError> {
    let mut parts = Vec::new();
    for c in Path::new(raw).components() {
        match c {
            Component::RootDir => {}
            Component::CurDir => {}
            Component::ParentDir => return Err(err(raw, "contains `..`; refusing the layer")),
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::Prefix(_) => return Err(err(raw, "is not a Unix path")),
        }
    }
    if raw.starts_with('/') {
        notes.push(format!("{raw}: absolute path made relative to the layer"));
    }
    Ok(parts)
}

fn open_dir(root: &OwnedFd, rel: &str, raw: &str) -> Result<OwnedFd, ImageError> {
    let rel = if rel.is_empty() { "." } else { rel };
    rustix::fs::openat2(
        root,
        rel,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        CONFINED,
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::XDEV => err(
            raw,
            format!("goes through a symlink ({rel}); refusing the layer"),
        ),
        rustix::io::Errno::NOTDIR => err(raw, format!("{rel} is not a directory")),
        other => err(raw, format!("{rel}: {other}")),
    })
}

/// The parent directory of an entry, created (0755) as needed.
fn parent_dir(root: &OwnedFd, parts: &[String], raw: &str) -> Result<OwnedFd, ImageError> {
    let mut cur = String::new();
    let mut fd = open_dir(root, "", raw)?;
    for p in &parts[..parts.len() - 1] {
        if !cur.is_empty() {
            cur.push('/');
        }
        cur.push_str(p);
        match rustix::fs::mkdirat(&fd, p.as_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(err(raw, format!("mkdir {cur}: {e}"))),
        }
        fd = open_dir(root, &cur, raw)?;
    }
    Ok(fd)
}

fn remove_existing(dir: &OwnedFd, name: &str) {
    let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
}

fn set_xattr(
    dir: &OwnedFd,
    name: Option<&str>,
    key: &str,
    value: &[u8],
    raw: &str,
) -> Result<(), ImageError> {
    // fsetxattr needs a real fd; reopen what we hold as O_PATH.
    let target = name.unwrap_or(".");
    let fd = rustix::fs::openat(
        dir,
        target,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err(raw, format!("open for xattr: {e}")))?;
    rustix::fs::fsetxattr(&fd, key, value, rustix::fs::XattrFlags::empty())
        .map_err(|e| err(raw, format!("set {key}: {e}")))
}

fn owner(h: &tar::Header, opts: Options) -> Option<(u32, u32)> {
    let base = opts.id_base?;
    let shift = |id: u64| base.saturating_add(if id < 65536 { id as u32 } else { 65534 });
    Some((shift(h.uid().unwrap_or(0)), shift(h.gid().unwrap_or(0))))
}

fn chown(dir: &OwnedFd, name: &str, ids: Option<(u32, u32)>, raw: &str) -> Result<(), ImageError> {
    if let Some((u, g)) = ids {
        rustix::fs::chownat(
            dir,
            name,
            Some(rustix::fs::Uid::from_raw(u)),
            Some(rustix::fs::Gid::from_raw(g)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| err(raw, format!("chown: {e}")))?;
    }
    Ok(())
}

/// Unpack `tar` (uncompressed) into `dest`, which must exist. Returns the
/// notes about neutralised entries.
pub fn unpack(tar: impl Read, dest: &Path, opts: Options) -> Result<Vec<String>, ImageError> {
    let root = rustix::fs::open(
        dest,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ImageError::new(format!("{}: {e}", dest.display())))?;
    let mut notes = Vec::new();
    let mut dir_modes: Vec<(String, u32)> = Vec::new();
    let mut archive = tar::Archive::new(tar);
    let entries = archive
        .entries()
        .map_err(|e| ImageError::new(format!("reading the layer: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            ImageError::new(format!("reading the layer: {e} (truncated or corrupt?)"))
        })?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let parts = clean(&raw, &mut notes)?;
        let Some(name) = parts.last().cloned() else {
            continue; // the layer's root itself
        };
        let header = entry.header().clone();
        let kind = header.entry_type();
        let dir = parent_dir(&root, &parts, &raw)?;
        let ids = owner(&header, opts);
        let mut mode = header.mode().unwrap_or(0o644);
        if mode & 0o6000 != 0 {
            notes.push(format!("{raw}: setuid/setgid bits cleared"));
            mode &= !0o6000;
        }
        mode &= 0o1777;

        if opts.layer && name == ".wh..wh..opq" {
            set_xattr(&dir, None, "user.overlay.opaque", b"y", &raw)?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.").filter(|_| opts.layer) {
            remove_existing(&dir, hidden);
            let dev = rustix::fs::FileType::CharacterDevice;
            match rustix::fs::mknodat(&dir, hidden, dev, Mode::empty(), 0) {
                Ok(()) => {}
                Err(rustix::io::Errno::PERM) => {
                    // Not allowed to mknod (rootless): overlayfs's xattr
                    // whiteout, an empty file marked so, in a marked directory.
                    rustix::fs::openat(
                        &dir,
                        hidden,
                        OFlags::CREATE | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| err(&raw, format!("whiteout: {e}")))?;
                    set_xattr(&dir, Some(hidden), "user.overlay.whiteout", b"y", &raw)?;
                    set_xattr(&dir, None, "user.overlay.whiteouts", b"y", &raw)?;
                }
                Err(e) => return Err(err(&raw, format!("whiteout: {e}"))),
            }
            continue;
        }
        if !opts.layer
            && !matches!(
                kind,
                tar::EntryType::Directory | tar::EntryType::Regular | tar::EntryType::Continuous
            )
        {
            if matches!(
                kind,
                tar::EntryType::XGlobalHeader
                    | tar::EntryType::XHeader
                    | tar::EntryType::GNULongName
                    | tar::EntryType::GNULongLink
            ) {
                continue;
            }
            // An image archive holds blobs and JSON: a link or a special
            // file in it could only point our reads somewhere else.
            return Err(err(
                &raw,
                "an image archive may hold only files and directories; refusing it",
            ));
        }
        match kind {
            tar::EntryType::Directory => {
                match rustix::fs::mkdirat(&dir, name.as_str(), Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(err(&raw, e)),
                }
                // Refuse a directory entry that is really a symlink here.
                open_dir(&root, &parts.join("/"), &raw)?;
                chown(&dir, &name, ids, &raw)?;
                dir_modes.push((parts.join("/"), mode));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                remove_existing(&dir, &name);
                let f = rustix::fs::openat(
                    &dir,
                    name.as_str(),
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::WRONLY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| err(&raw, e))?;
                let mut file = std::fs::File::from(f);
                std::io::copy(&mut entry, &mut file)
                    .map_err(|e| err(&raw, format!("{e} (truncated or corrupt?)")))?;
                rustix::fs::fchmod(&file, Mode::from_raw_mode(mode)).map_err(|e| err(&raw, e))?;
                chown(&dir, &name, ids, &raw)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .ok_or_else(|| err(&raw, "symlink without a target"))?;
                remove_existing(&dir, &name);
                rustix::fs::symlinkat(target.as_str(), &dir, name.as_str())
                    .map_err(|e| err(&raw, e))?;
                chown(&dir, &name, ids, &raw)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .ok_or_else(|| err(&raw, "hard link without a target"))?;
                let tparts = clean(&target, &mut Vec::new())?;
                let src = rustix::fs::openat2(&root, tparts.join("/").as_str(), OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), CONFINED)
                    .map_err(|_| err(&raw, format!("hard link to {target:?}, which is not a file of this layer; refusing the layer")))?;
                let st = rustix::fs::fstat(&src).map_err(|e| err(&raw, e))?;
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::Directory
                {
                    return Err(err(&raw, "hard link to a directory"));
                }
                remove_existing(&dir, &name);
                let link = format!("/proc/self/fd/{}", src.as_raw_fd());
                rustix::fs::linkat(
                    rustix::fs::CWD,
                    link.as_str(),
                    &dir,
                    name.as_str(),
                    AtFlags::SYMLINK_FOLLOW,
                )
                .map_err(|e| err(&raw, format!("link: {e}")))?;
            }
            tar::EntryType::Fifo => {
                remove_existing(&dir, &name);
                rustix::fs::mknodat(
                    &dir,
                    name.as_str(),
                    rustix::fs::FileType::Fifo,
                    Mode::from_raw_mode(mode),
                    0,
                )
                .map_err(|e| err(&raw, e))?;
                chown(&dir, &name, ids, &raw)?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                notes.push(format!("{raw}: device node skipped"));
            }
            _ => {} // pax and GNU headers are handled by the reader
        }
        drop(dir);
    }
    // Directory modes last, so a read-only directory did not stop its own
    // entries from being written.
    for (path, mode) in dir_modes.iter().rev() {
        let fd = rustix::fs::openat2(
            &root,
            path.as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            CONFINED,
        )
        .map_err(|e| err(path, e))?;
        rustix::fs::fchmod(fd.as_fd(), Mode::from_raw_mode(*mode)).map_err(|e| err(path, e))?;
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned() {
        let mut notes = Vec::new();
        assert_eq!(clean("./a/b", &mut notes).unwrap(), ["a", "b"]);
        assert_eq!(clean("/etc/passwd", &mut notes).unwrap(), ["etc", "passwd"]);
        assert_eq!(notes.len(), 1);
        assert!(clean("a/../../etc", &mut notes).is_err());
        assert!(clean("..", &mut notes).is_err());
    }
}
