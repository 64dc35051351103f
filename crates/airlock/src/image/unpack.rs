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
//! xattr, as overlayfs reads them with `userxattr` in a user namespace
//! (and, unpacked by root, `trusted.overlay.opaque` too, which root's
//! overlay without a user namespace reads).

use super::ImageError;
use crate::report::plain;
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use std::collections::BTreeMap;
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

pub use super::limits::{Budget, Limits, DEFAULT_LIMITS};

const CONFINED: ResolveFlags = ResolveFlags::IN_ROOT
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// An entry that would reach outside the layer or is not what an image
/// may hold: the whole layer is refused.
fn refused(entry: &str, why: impl std::fmt::Display) -> ImageError {
    ImageError::Refused(format!(
        "layer entry {entry:?}: {}",
        plain(&why.to_string())
    ))
}

/// An entry that makes no sense (a broken or truncated archive).
fn invalid(entry: &str, why: impl std::fmt::Display) -> ImageError {
    ImageError::Invalid(format!(
        "layer entry {entry:?}: {}",
        plain(&why.to_string())
    ))
}

/// Writing an entry failed on the host, at `step`. (Each message may
/// quote the layer's names: `plain` keeps their escape sequences off a
/// terminal.)
fn failed(entry: &str, step: impl std::fmt::Display, e: rustix::io::Errno) -> ImageError {
    ImageError::Entry {
        entry: entry.to_string(),
        step: plain(&step.to_string()),
        source: e.into(),
    }
}

/// What unpacking neutralised, for the caller to be told: the first
/// [`MAX_NOTES`] in full, then only how many more (a note per entry of a
/// million-entry layer would be gigabytes in memory, in the store's
/// records and on every run's stderr).
#[derive(Debug, Default)]
struct Notes {
    list: Vec<String>,
    more: usize,
    /// Extended attributes entries lost: one note for the layer, beside
    /// the capped ones (every file of a labelled layer has them).
    xattrs: std::collections::BTreeSet<String>,
    xattr_entries: usize,
    first_xattr_entry: Option<String>,
    /// Entries owned by an id past the 65536 a sandbox maps, and given the
    /// overflow id instead: one note for the layer.
    squashed_entries: usize,
    first_squashed: Option<String>,
}

const MAX_NOTES: usize = 32;
const MAX_XATTR_NAMES: usize = 64;

impl Notes {
    fn push(&mut self, note: String) {
        match self.list.len() < MAX_NOTES {
            true => self.list.push(note),
            false => self.more += 1,
        }
    }

    /// `names`, the extended attributes entry `raw` had and loses. Only
    /// the first [`MAX_XATTR_NAMES`] distinct ones are kept (a layer can
    /// name millions).
    fn lost_xattrs(&mut self, raw: &str, names: impl Iterator<Item = String>) {
        for name in names {
            if self.xattrs.len() >= MAX_XATTR_NAMES {
                break;
            }
            self.xattrs.insert(name);
        }
        self.xattr_entries += 1;
        self.first_xattr_entry
            .get_or_insert_with(|| raw.to_string());
    }

    /// `raw` was owned by an id of 65536 or more, and is not now.
    fn squashed(&mut self, raw: &str) {
        self.squashed_entries += 1;
        self.first_squashed.get_or_insert_with(|| raw.to_string());
    }

    fn into_vec(mut self) -> Vec<String> {
        if self.more > 0 {
            self.list
                .push(format!("... and {} more entries like these", self.more));
        }
        if let Some(first) = &self.first_xattr_entry {
            // Bounded: at most this many names are listed.
            let names: Vec<&String> = self.xattrs.iter().take(8).collect();
            self.list.push(format!(
                "extended attributes not kept: {names:?} on {} entries, the first {first:?}",
                self.xattr_entries
            ));
        }
        if let Some(first) = &self.first_squashed {
            self.list.push(format!(
                "owned by a user or group id of 65536 or more, which a sandbox does not map: \
                 given 65534 (nobody) instead, on {} entries, the first {first:?}",
                self.squashed_entries
            ));
        }
        self.list
    }
}

/// Names are kept as text: one that is not UTF-8 is refused rather than
/// changed (two such names could become one, a file overwriting another,
/// and the tree would no longer be the layer's).
const NOT_UTF8: &str = "is not UTF-8, which airlock keeps names as (it would have to change it)";

/// The longest entry path (PATH_MAX) and the deepest, which no real
/// image nears and which bound what one entry costs to resolve.
const MAX_PATH: usize = 4096;
const MAX_DEPTH: usize = 512;

/// Clean a tar path: relative, no `.`; `..` is refused; an absolute path
/// is made relative and reported.
fn clean(raw: &str, notes: &mut Notes) -> Result<Vec<String>, ImageError> {
    let mut parts = Vec::new();
    for c in Path::new(raw).components() {
        match c {
            Component::RootDir => {}
            Component::CurDir => {}
            Component::ParentDir => return Err(refused(raw, "contains `..`; refusing the layer")),
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::Prefix(_) => return Err(invalid(raw, "is not a Unix path")),
        }
    }
    if raw.len() > MAX_PATH || parts.len() > MAX_DEPTH {
        return Err(refused(
            raw,
            format!(
                "is {} bytes and {} directories deep (at most {MAX_PATH} and {MAX_DEPTH}); refusing the layer",
                raw.len(),
                parts.len()
            ),
        ));
    }
    if raw.starts_with('/') {
        notes.push(format!("{raw:?}: absolute path made relative to the layer"));
    }
    Ok(parts)
}

fn open_dir(root: &OwnedFd, rel: &str, raw: &str) -> Result<OwnedFd, ImageError> {
    open_dir_at(root, rel, rel, raw)
}

/// `rel` under `at` (a directory of the layer, the root or one below),
/// shown as `shown` in errors.
fn open_dir_at(at: &OwnedFd, rel: &str, shown: &str, raw: &str) -> Result<OwnedFd, ImageError> {
    let rel = if rel.is_empty() { "." } else { rel };
    rustix::fs::openat2(
        at,
        rel,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        CONFINED,
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::XDEV => refused(
            raw,
            format!("goes through a symlink ({shown}); refusing the layer"),
        ),
        rustix::io::Errno::NOTDIR => invalid(raw, format!("{shown} is not a directory")),
        other => failed(raw, shown, other),
    })
}

/// The parent directory of an entry, created (0755) as needed, owned by
/// `owner` (the layer's root as the sandbox will see it: its files' owner
/// for uid and gid 0) when ids are shifted; otherwise a directory the
/// layer never named would be the host's root's, nobody inside. Each
/// directory made counts as an entry of the `budget`: one entry 512 deep
/// would otherwise make 511 directories for free, and a small layer
/// millions.
fn parent_dir(
    root: &OwnedFd,
    parts: &[String],
    raw: &str,
    owner: Option<(u32, u32)>,
    budget: &mut Budget,
) -> Result<OwnedFd, ImageError> {
    let mut cur = String::new();
    let mut fd = open_dir(root, "", raw)?;
    for p in &parts[..parts.len() - 1] {
        if !cur.is_empty() {
            cur.push('/');
        }
        cur.push_str(p);
        match rustix::fs::mkdirat(&fd, p.as_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) => {
                budget.entry(raw)?;
                // Exactly 0755, whatever the caller's umask: the layer is
                // kept and shared, and a 0700 directory would shut the
                // sandbox's root out of it for good.
                rustix::fs::chmodat(
                    &fd,
                    p.as_str(),
                    Mode::from_raw_mode(0o755),
                    AtFlags::empty(),
                )
                .map_err(|e| failed(raw, format!("chmod {cur}"), e))?;
                if let Some((u, g)) = owner {
                    rustix::fs::chownat(
                        &fd,
                        p.as_str(),
                        Some(rustix::fs::Uid::from_raw(u)),
                        Some(rustix::fs::Gid::from_raw(g)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| failed(raw, format!("chown {cur}"), e))?;
                }
            }
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(failed(raw, format!("mkdir {cur}"), e)),
        }
        // One step down from the last directory, not the whole path from
        // the root again: a deep entry would cost its depth squared.
        fd = open_dir_at(&fd, p, &cur, raw)?;
    }
    Ok(fd)
}

fn remove_existing(dir: &OwnedFd, name: &str) {
    let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
}

/// Mark the directory `name` in `dir` (`dir` itself for none) opaque: it
/// hides what the layers below hold at its path.
fn opaque(dir: &OwnedFd, name: Option<&str>, raw: &str) -> Result<(), ImageError> {
    set_xattr(dir, name, "user.overlay.opaque", b"y", raw)?;
    // Root's overlay without a user namespace (no `userxattr`) reads the
    // trusted namespace instead; only root of every id may write it (not
    // uid 0 of another user namespace: CAP_SYS_ADMIN in the initial one),
    // and a rootless store never serves such an overlay.
    if rustix::process::geteuid().is_root() && crate::sys::holds_every_id() {
        set_xattr(dir, name, "trusted.overlay.opaque", b"y", raw)?;
    }
    Ok(())
}

/// overlayfs's xattr whiteout, where a whiteout device may not be made
/// (mknod refused, as before Linux 5.8 for a user without CAP_MKNOD):
/// an empty file marked `overlay.whiteout`, in a directory marked as
/// holding such files. Since Linux 6.8 (and 6.7.3) that mark is
/// `overlay.opaque` "x"; 6.7's `overlay.whiteouts` is set too. An opaque
/// directory ("y") stays opaque: nothing below shows through it anyway.
fn xattr_whiteout(dir: &OwnedFd, hidden: &str, raw: &str) -> Result<(), ImageError> {
    // Marked through the fd that made it: the file's mode is 0, and a
    // reopen by a caller other than root is refused.
    let file = rustix::fs::openat(
        dir,
        hidden,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| failed(raw, "whiteout", e))?;
    rustix::fs::fsetxattr(
        &file,
        "user.overlay.whiteout",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .map_err(|e| failed(raw, "set user.overlay.whiteout", e))?;
    let mut opaque = [0u8; 8];
    let marked = rustix::fs::fgetxattr(
        rustix::fs::openat(dir, ".", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| failed(raw, "open its directory", e))?,
        "user.overlay.opaque",
        &mut opaque,
    );
    if !matches!(marked, Ok(1) if opaque[0] == b'y') {
        set_xattr(dir, None, "user.overlay.opaque", b"x", raw)?;
    }
    set_xattr(dir, None, "user.overlay.whiteouts", b"y", raw)
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
    .map_err(|e| failed(raw, "open for xattr", e))?;
    rustix::fs::fsetxattr(&fd, key, value, rustix::fs::XattrFlags::empty())
        .map_err(|e| failed(raw, format!("set {key}"), e))
}

fn owner((uid, gid): (u64, u64), opts: Options) -> Option<(u32, u32)> {
    let base = opts.id_base?;
    let shift = |id: u64| base.saturating_add(if id < 65536 { id as u32 } else { 65534 });
    Some((shift(uid), shift(gid)))
}

/// A numeric field of `raw`'s header (`bytes` as written), `empty` where
/// it holds only NULs or spaces (as Go's archive/tar reads an unused
/// field), or an error naming it: one that does not parse was read as 0
/// (root's) before.
fn number(
    raw: &str,
    field: &str,
    (bytes, value): (&[u8], std::io::Result<u64>),
    empty: u64,
) -> Result<u64, ImageError> {
    match value {
        Ok(v) => Ok(v),
        Err(_) if bytes.iter().all(|b| *b == 0 || *b == b' ') => Ok(empty),
        Err(_) => Err(refused(
            raw,
            format!("its {field} field is not a number; refusing the layer"),
        )),
    }
}

/// One entry's place in the layer, resolved beneath its root.
struct Target {
    /// The path as the archive gave it (for notes and errors).
    raw: String,
    /// The cleaned path, as components.
    parts: Vec<String>,
    /// The entry's parent directory, opened beneath the root.
    dir: OwnedFd,
    /// The entry's own name in `dir`.
    name: String,
    /// Its permission bits, setuid/setgid cleared.
    mode: u32,
    /// Its owner on the host, when ids are shifted.
    ids: Option<(u32, u32)>,
}

impl Target {
    fn chown(&self) -> Result<(), ImageError> {
        if let Some((u, g)) = self.ids {
            rustix::fs::chownat(
                &self.dir,
                self.name.as_str(),
                Some(rustix::fs::Uid::from_raw(u)),
                Some(rustix::fs::Gid::from_raw(g)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| failed(&self.raw, "chown", e))?;
        }
        Ok(())
    }

    fn link_name(&self, entry: &tar::Entry<impl Read>, what: &str) -> Result<String, ImageError> {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| invalid(&self.raw, format!("{what} without a target")))?;
        String::from_utf8(target.into_owned())
            .map_err(|_| invalid(&self.raw, format!("its {what} target {NOT_UTF8}")))
    }
}

/// An unpack in progress: the layer's root, held open, and what is
/// collected on the way.
struct Unpacker {
    root: OwnedFd,
    opts: Options,
    /// Neutralised entries, for the caller to report.
    notes: Notes,
    /// Directory modes by path, set last (see [`Unpacker::finish`]): a
    /// directory named twice takes its last entry's, as tar does.
    dir_modes: BTreeMap<String, u32>,
    /// The whiteouts this layer made, by path: a directory of the layer's
    /// own that replaces one hides the layers below by being opaque.
    whiteouts: std::collections::BTreeSet<String>,
    /// Symlinks of an outer archive between two of its own entries
    /// (podman and skopeo write `<id>/layer.tar -> ../<digest>.tar`):
    /// (the link's path, its target's path), both beneath the root.
    links: Vec<(String, String)>,
    budget: Budget,
}

/// Unpack `tar` (uncompressed) into `dest`, which must exist, within
/// what is left of `budget`. Returns the notes about neutralised entries.
/// On an error, `dest` holds part of the layer: the caller removes it.
pub fn unpack(
    tar: impl Read,
    dest: &Path,
    opts: Options,
    budget: &mut Budget,
) -> Result<Vec<String>, ImageError> {
    let mut u = Unpacker::open(dest, opts, *budget)?;
    let extensions = std::rc::Rc::default();
    let bound = super::tar_meta::MetaBound::new(tar, std::rc::Rc::clone(&extensions));
    let mut archive = tar::Archive::new(bound);
    let entries = archive
        .entries()
        .map_err(|e| ImageError::Invalid(format!("reading the layer: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| match super::tar_meta::refusal(&e) {
            Some(why) => ImageError::Refused(format!("reading the layer: {why}")),
            None => ImageError::Invalid(format!("reading the layer: {e} (truncated or corrupt?)")),
        })?;
        u.entry(&mut entry, extensions.take())?;
    }
    *budget = u.budget;
    u.finish()
}

impl Unpacker {
    fn open(dest: &Path, opts: Options, budget: Budget) -> Result<Unpacker, ImageError> {
        let root = rustix::fs::open(
            dest,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ImageError::io(dest, e.into()))?;
        Ok(Unpacker {
            root,
            opts,
            notes: Notes::default(),
            dir_modes: BTreeMap::new(),
            whiteouts: Default::default(),
            links: Vec::new(),
            budget,
        })
    }

    /// Write one entry, or neutralise or refuse it. `extensions`: the
    /// bytes of the long names and pax headers that came before it.
    fn entry(
        &mut self,
        entry: &mut tar::Entry<impl Read>,
        extensions: u64,
    ) -> Result<(), ImageError> {
        let raw = match std::str::from_utf8(&entry.path_bytes()) {
            Ok(name) => name.to_string(),
            Err(_) => {
                let shown = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                return Err(invalid(&shown, format!("its name {NOT_UTF8}")));
            }
        };
        self.budget.entry(&raw)?;
        // A body nothing is written from (a whiteout's, a device node's, an
        // unknown type's) is still decompressed and hashed as the reader
        // passes over it: it counts as written, or gigabytes of zeros
        // would pass there where a file's are refused.
        let written = matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        );
        let parts = clean(&raw, &mut self.notes)?;
        // Nor is one of the layer's root or of a whiteout.
        let skipped = parts
            .last()
            .is_none_or(|n| self.opts.layer && n.starts_with(".wh."));
        if entry.size() > 0 && (!written || skipped) {
            self.budget.add_bytes(&raw, entry.size())?;
        }
        // Read and hashed as much as a body is.
        self.budget.add_bytes(&raw, extensions)?;
        let Some(name) = parts.last().cloned() else {
            return Ok(()); // the layer's root itself
        };
        // Extended attributes (file capabilities, SELinux labels, ACLs)
        // are not kept: said, so that a program that needs its
        // capabilities (ping's cap_net_raw) fails visibly.
        if let Ok(Some(pax)) = entry.pax_extensions() {
            let names: Vec<String> = pax
                .flatten()
                .filter_map(|e| Some(e.key().ok()?.strip_prefix("SCHILY.xattr.")?.to_string()))
                // A name is kept for a note: its first 64 bytes say which.
                .map(|mut name| {
                    if name.len() > 64 {
                        let mut end = 64;
                        while !name.is_char_boundary(end) {
                            end -= 1;
                        }
                        name.truncate(end);
                        name.push('…');
                    }
                    name
                })
                .collect();
            if !names.is_empty() {
                self.notes.lost_xattrs(&raw, names.into_iter());
            }
        }
        let header = entry.header().clone();
        let old = header.as_old();
        let mode = (&old.mode[..], header.mode().map(u64::from));
        let mut mode = number(&raw, "mode", mode, 0o644)? as u32;
        let ids = (
            number(&raw, "uid", (&old.uid, header.uid()), 0)?,
            number(&raw, "gid", (&old.gid, header.gid()), 0)?,
        );
        if self.opts.id_base.is_some() && (ids.0 >= 65536 || ids.1 >= 65536) {
            self.notes.squashed(&raw);
        }
        if mode & 0o6000 != 0 {
            self.notes
                .push(format!("{raw:?}: setuid/setgid bits cleared"));
            mode &= !0o6000;
        }
        let t = Target {
            dir: parent_dir(
                &self.root,
                &parts,
                &raw,
                self.opts.id_base.map(|b| (b, b)),
                &mut self.budget,
            )?,
            ids: owner(ids, self.opts),
            mode: mode & 0o1777,
            raw,
            parts,
            name,
        };
        if self.opts.layer && self.whiteout(&t)? {
            return Ok(());
        }
        let kind = header.entry_type();
        if !self.opts.layer && kind == tar::EntryType::Symlink {
            let target = t.link_name(entry, "symlink")?;
            let to = archive_link_target(&t, &target)?;
            self.links.push((t.parts.join("/"), to));
            return Ok(());
        }
        if !self.opts.layer && !archive_may_hold(kind, &t.raw)? {
            return Ok(());
        }
        match kind {
            tar::EntryType::Directory => self.directory(&t),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                regular(&t, entry, &mut self.budget)
            }
            tar::EntryType::Symlink => symlink(&t, entry),
            tar::EntryType::Link => self.hard_link(&t, entry),
            tar::EntryType::Fifo => fifo(&t),
            tar::EntryType::Char | tar::EntryType::Block => {
                self.notes.push(format!("{:?}: device node skipped", t.raw));
                Ok(())
            }
            // Read by the tar reader (a pax global header is yielded, and
            // holds nothing to write).
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => Ok(()),
            // A GNU volume label, dump directory, multivolume part or an
            // unknown type, as containerd refuses them: dropped without a
            // word, after its parent directories were made, it left a
            // layer that was not the one described.
            other => Err(refused(
                &t.raw,
                format!(
                    "tar entry type {:?} is not one a layer holds (files, directories, links, FIFOs, device nodes); refusing the layer",
                    other.as_byte() as char
                ),
            )),
        }
    }

    /// Turn a whiteout (`.wh.NAME`) or opaque marker into overlayfs's
    /// form. Returns whether the entry was one.
    fn whiteout(&mut self, t: &Target) -> Result<bool, ImageError> {
        if t.name == ".wh..wh..opq" {
            opaque(&t.dir, None, &t.raw)?;
            return Ok(true);
        }
        let Some(hidden) = t.name.strip_prefix(".wh.") else {
            return Ok(false);
        };
        // `.wh...` would make the directory above the layer's root opaque
        // (a plain openat of ".."), `.wh..` its own directory.
        if matches!(hidden, "" | "." | "..") {
            return Err(refused(
                &t.raw,
                format!("a whiteout of {hidden:?} hides nothing a layer below can hold"),
            ));
        }
        // A whiteout hides what the layers below hold, never what its own
        // layer does (the OCI image spec): an entry this layer already
        // wrote stays, and hides the layers below by itself; a directory
        // does so by being opaque (else the lower one's entries show
        // through it).
        if let Ok(st) = rustix::fs::statat(&t.dir, hidden, AtFlags::SYMLINK_NOFOLLOW) {
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
                opaque(&t.dir, Some(hidden), &t.raw)?;
            }
            return Ok(true);
        }
        let mut path = t.parts[..t.parts.len() - 1].join("/");
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(hidden);
        self.whiteouts.insert(path);
        let dev = rustix::fs::FileType::CharacterDevice;
        match rustix::fs::mknodat(&t.dir, hidden, dev, Mode::empty(), 0) {
            Ok(()) => {}
            Err(rustix::io::Errno::PERM) => xattr_whiteout(&t.dir, hidden, &t.raw)?,
            Err(e) => return Err(failed(&t.raw, "whiteout", e)),
        }
        Ok(true)
    }

    fn directory(&mut self, t: &Target) -> Result<(), ImageError> {
        let mkdir = || rustix::fs::mkdirat(&t.dir, t.name.as_str(), Mode::from_raw_mode(0o755));
        match mkdir() {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => {
                // What this layer wrote there before (a whiteout, a file)
                // gives way, as it does to a later file of the same name.
                let st = rustix::fs::statat(&t.dir, t.name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| failed(&t.raw, "mkdir", e))?;
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    != rustix::fs::FileType::Directory
                {
                    remove_existing(&t.dir, &t.name);
                    mkdir().map_err(|e| failed(&t.raw, "mkdir", e))?;
                    // In a whiteout's place: still hiding the layers below.
                    if self.whiteouts.remove(&t.parts.join("/")) {
                        opaque(&t.dir, Some(&t.name), &t.raw)?;
                    }
                }
            }
            Err(e) => return Err(failed(&t.raw, "mkdir", e)),
        }
        // Refuse a directory entry that is really a symlink here.
        let path = t.parts.join("/");
        open_dir(&self.root, &path, &t.raw)?;
        t.chown()?;
        self.dir_modes.insert(path, t.mode);
        Ok(())
    }

    /// A hard link, only to a file this layer already holds.
    fn hard_link(&self, t: &Target, entry: &tar::Entry<impl Read>) -> Result<(), ImageError> {
        let target = t.link_name(entry, "hard link")?;
        let tparts = clean(&target, &mut Notes::default())?;
        let src = rustix::fs::openat2(
            &self.root,
            tparts.join("/").as_str(),
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            CONFINED,
        )
        .map_err(|_| {
            refused(
                &t.raw,
                format!("hard link to {target:?}, which is not a file of this layer; refusing the layer"),
            )
        })?;
        let st =
            rustix::fs::fstat(&src).map_err(|e| failed(&t.raw, "stat the link's target", e))?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
            return Err(refused(&t.raw, "hard link to a directory"));
        }
        // Nor to a whiteout this layer made (a 0/0 device, or a file
        // marked by xattr): the link would be one more whiteout, hiding
        // what the layers below hold under a name the layer never
        // whited out.
        let marked = rustix::fs::getxattr(
            format!("/proc/self/fd/{}", src.as_raw_fd()).as_str(),
            "user.overlay.whiteout",
            &mut [0u8; 8],
        )
        .is_ok();
        let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
        // Files and FIFOs (which a layer may hold and link); devices are
        // skipped when unpacked, so a 0/0 device here is a whiteout.
        let linkable = matches!(
            kind,
            rustix::fs::FileType::RegularFile | rustix::fs::FileType::Fifo
        );
        if !linkable || marked {
            return Err(refused(
                &t.raw,
                format!("hard link to {target:?}, which is not a file of this layer; refusing the layer"),
            ));
        }
        remove_existing(&t.dir, &t.name);
        // Link the very inode we opened beneath the root, not a path that
        // could have changed since.
        let link = format!("/proc/self/fd/{}", src.as_raw_fd());
        rustix::fs::linkat(
            rustix::fs::CWD,
            link.as_str(),
            &t.dir,
            t.name.as_str(),
            AtFlags::SYMLINK_FOLLOW,
        )
        .map_err(|e| failed(&t.raw, "link", e))
    }

    /// Directory modes last, so a read-only directory did not stop its
    /// own entries from being written. Returns the notes.
    fn finish(mut self) -> Result<Vec<String>, ImageError> {
        // An archive's links become hard links to the file they name, so
        // a manifest that names the link reads that file (never through
        // a symlink); one to something else is left out: nothing can use
        // it, and a manifest naming it finds it missing.
        for (link, to) in std::mem::take(&mut self.links) {
            self.link_archive_file(&link, &to)?;
        }
        // A path sorts after its parent's: in reverse, children first, so
        // a parent made read-only cannot stop a child's chmod.
        for (path, mode) in self.dir_modes.iter().rev() {
            let fd = rustix::fs::openat2(
                &self.root,
                path.as_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                CONFINED,
            )
            .map_err(|e| failed(path, "open to set its mode", e))?;
            rustix::fs::fchmod(fd.as_fd(), Mode::from_raw_mode(*mode))
                .map_err(|e| failed(path, "chmod", e))?;
        }
        Ok(self.notes.into_vec())
    }
}

/// Where a symlink of an outer archive leads, as a path beneath the
/// archive's root: relative, resolved from the link's directory, and not
/// above the root; anything else is refused.
fn archive_link_target(t: &Target, target: &str) -> Result<String, ImageError> {
    let outside = || {
        refused(
            &t.raw,
            format!("an image archive may hold only files and directories (and relative links between its own entries); this link to {target:?} leads outside it; refusing it"),
        )
    };
    if target.starts_with('/') {
        return Err(outside());
    }
    // Bounded as entry paths are: a link's target (up to a pax record's
    // megabyte) is held until the archive's end.
    if target.len() > MAX_PATH || Path::new(target).components().count() > MAX_DEPTH {
        return Err(refused(
            &t.raw,
            format!(
                "its link target is longer than {MAX_PATH} bytes or {MAX_DEPTH} levels; refusing it"
            ),
        ));
    }
    let mut parts: Vec<&str> = t.parts[..t.parts.len() - 1]
        .iter()
        .map(String::as_str)
        .collect();
    for c in Path::new(target).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop().ok_or_else(outside)?;
            }
            Component::Normal(p) => parts.push(p.to_str().ok_or_else(outside)?),
            Component::RootDir | Component::Prefix(_) => return Err(outside()),
        }
    }
    if parts.is_empty() {
        return Ok(".".into()); // the archive's root: a directory
    }
    Ok(parts.join("/"))
}

impl Unpacker {
    fn link_archive_file(&mut self, link: &str, to: &str) -> Result<(), ImageError> {
        let Ok(src) = rustix::fs::openat2(
            &self.root,
            to,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            CONFINED,
        ) else {
            return Ok(());
        };
        let st = rustix::fs::fstat(&src).map_err(|e| failed(link, "stat the link's target", e))?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
            return Ok(());
        }
        let parts: Vec<String> = link.split('/').map(String::from).collect();
        let dir = parent_dir(&self.root, &parts, link, None, &mut self.budget)?;
        let name = parts.last().expect("a link has a name");
        remove_existing(&dir, name);
        let fd = format!("/proc/self/fd/{}", src.as_raw_fd());
        rustix::fs::linkat(
            rustix::fs::CWD,
            fd.as_str(),
            &dir,
            name.as_str(),
            AtFlags::SYMLINK_FOLLOW,
        )
        .map_err(|e| failed(link, "link", e))
    }
}

/// An outer image archive holds blobs and JSON: a link or a special file
/// in it could only point our reads somewhere else. Returns whether to
/// write the entry (headers the reader consumed are skipped).
fn archive_may_hold(kind: tar::EntryType, raw: &str) -> Result<bool, ImageError> {
    use tar::EntryType as T;
    match kind {
        T::Directory | T::Regular | T::Continuous => Ok(true),
        T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => Ok(false),
        _ => Err(refused(
            raw,
            "an image archive may hold only files and directories; refusing it",
        )),
    }
}

fn regular(
    t: &Target,
    entry: &mut tar::Entry<impl Read>,
    budget: &mut Budget,
) -> Result<(), ImageError> {
    // Refused on the header's word before anything is written, and held
    // to it while writing (a sparse entry expands beyond its header size).
    budget.add_bytes(&t.raw, entry.size())?;
    let room = budget.room();
    remove_existing(&t.dir, &t.name);
    let f = rustix::fs::openat(
        &t.dir,
        t.name.as_str(),
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| failed(&t.raw, "create", e))?;
    let mut file = std::fs::File::from(f);
    let declared = entry.size();
    let written = std::io::copy(&mut entry.take(declared + room + 1), &mut file)
        .map_err(|e| invalid(&t.raw, format!("{e} (truncated or corrupt?)")))?;
    budget.add_bytes(&t.raw, written.saturating_sub(declared))?;
    rustix::fs::fchmod(&file, Mode::from_raw_mode(t.mode))
        .map_err(|e| failed(&t.raw, "chmod", e))?;
    t.chown()
}

fn symlink(t: &Target, entry: &tar::Entry<impl Read>) -> Result<(), ImageError> {
    let target = t.link_name(entry, "symlink")?;
    remove_existing(&t.dir, &t.name);
    rustix::fs::symlinkat(target.as_str(), &t.dir, t.name.as_str())
        .map_err(|e| failed(&t.raw, "symlink", e))?;
    t.chown()
}

fn fifo(t: &Target) -> Result<(), ImageError> {
    remove_existing(&t.dir, &t.name);
    rustix::fs::mknodat(
        &t.dir,
        t.name.as_str(),
        rustix::fs::FileType::Fifo,
        Mode::from_raw_mode(t.mode),
        0,
    )
    .map_err(|e| failed(&t.raw, "mkfifo", e))?;
    // mknod's mode passed through the umask; the image's is the one.
    rustix::fs::chmodat(
        &t.dir,
        t.name.as_str(),
        Mode::from_raw_mode(t.mode),
        AtFlags::empty(),
    )
    .map_err(|e| failed(&t.raw, "chmod", e))?;
    t.chown()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where mknod is refused, a whiteout is overlayfs's xattr form, with
    /// its directory marked as today's kernels read it (`opaque` "x"),
    /// and an opaque directory kept opaque.
    #[test]
    fn an_xattr_whiteout_marks_its_directory_as_the_kernel_reads_it() {
        let base = std::env::temp_dir().join(format!("airlock-xwh-{}", std::process::id()));
        let get = |path: &Path, key: &str| {
            let mut v = [0u8; 8];
            let n = rustix::fs::lgetxattr(path, key, &mut v).ok()?;
            Some(v[..n].to_vec())
        };
        for (already, want) in [(None, &b"x"[..]), (Some(&b"y"[..]), &b"y"[..])] {
            let _ = std::fs::remove_dir_all(&base);
            std::fs::create_dir(&base).unwrap();
            if let Some(v) = already {
                rustix::fs::setxattr(
                    &base,
                    "user.overlay.opaque",
                    v,
                    rustix::fs::XattrFlags::empty(),
                )
                .unwrap();
            }
            let dir =
                rustix::fs::open(&base, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
            xattr_whiteout(&dir, "gone", "gone").unwrap();
            let gone = base.join("gone");
            assert_eq!(std::fs::metadata(&gone).unwrap().len(), 0);
            assert_eq!(
                get(&gone, "user.overlay.whiteout").as_deref(),
                Some(&b"y"[..])
            );
            assert_eq!(get(&base, "user.overlay.opaque").as_deref(), Some(want));
            assert_eq!(
                get(&base, "user.overlay.whiteouts").as_deref(),
                Some(&b"y"[..])
            );
        }
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// A bound of the metadata filter is a refusal, not a corrupt layer.
    #[test]
    fn a_header_over_the_metadata_bound_is_refused_not_corrupt() {
        let mut h = tar::Header::new_gnu();
        h.set_path("././@LongLink").unwrap();
        h.set_entry_type(tar::EntryType::GNULongName);
        h.set_size(super::super::tar_meta::MAX_META + 1);
        h.set_cksum();
        let mut layer = h.as_bytes().to_vec();
        layer.extend(std::iter::repeat_n(b'a', 4096));
        let dest = std::env::temp_dir().join(format!("airlock-unpack-{}", std::process::id()));
        std::fs::create_dir(&dest).unwrap();
        let r = unpack(
            &layer[..],
            &dest,
            Options::default(),
            &mut Budget::new(DEFAULT_LIMITS),
        );
        let _ = std::fs::remove_dir_all(&dest);
        let e = r.unwrap_err();
        assert!(matches!(e, ImageError::Refused(_)), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("'L' header") && !text.contains("corrupt"),
            "{text}"
        );
    }

    #[test]
    fn paths_are_cleaned() {
        let mut notes = Notes::default();
        assert_eq!(clean("./a/b", &mut notes).unwrap(), ["a", "b"]);
        assert_eq!(clean("/etc/passwd", &mut notes).unwrap(), ["etc", "passwd"]);
        assert_eq!(notes.list.len(), 1);
        assert!(clean("a/../../etc", &mut notes).is_err());
        assert!(clean("..", &mut notes).is_err());
        // A note per entry is kept only for the first few.
        for _ in 0..1000 {
            clean("/etc/passwd", &mut notes).unwrap();
        }
        let all = notes.into_vec();
        assert_eq!(all.len(), MAX_NOTES + 1);
        assert_eq!(all[MAX_NOTES], "... and 969 more entries like these");
    }
}
