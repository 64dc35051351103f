//! The content-addressed layer store: each layer is verified against its
//! digests, unpacked once into `layers/<key>/rootfs`, and shared
//! read-only (as an overlayfs lower layer) by every sandbox that uses it.
//! A layer is unpacked into `tmp/` and renamed into place, so two sandboxes
//! starting the same image at once never see half a layer.
//!
//! The store is airlock's trusted state. The key is everything that shaped
//! the tree on disk (the diff_id, the owner ids it was unpacked for, the
//! unpacker's form), so a layer unpacked for one id mapping is never used
//! for another. The tree keeps the image's modes (a world-writable `/tmp`
//! included), so `layers/<key>` is closed to everyone but the caller and
//! the sandbox's root: mode 0700, owned by the sandbox root's host id for
//! a root caller (overlayfs opens the layers with the sandbox root's
//! credentials; it owns every file inside already), by the caller
//! otherwise. Nobody else can reach what is inside.

use super::oci::{digest_hex, hex, Image, Layer};
use super::unpack::{self, Options};
use super::ImageError;
use crate::fs::remove_tree;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
    /// What one pull may unpack (see [`unpack::DEFAULT_LIMITS`]).
    pub limits: unpack::Limits,
}

/// What `image ls` shows: one image the store has run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: String,
    pub name: String,
    pub source: String,
    /// diff_ids, bottom layer first.
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LayerMeta {
    diff_id: String,
    digest: Option<String>,
    notes: Vec<String>,
}

/// What a layer may carry after its tar end-of-archive marker (padding
/// to the writer's record size, 10 KiB for most).
const MAX_TRAILING: u64 = 1 << 20;

/// Hashes what passes through, to check the uncompressed layer's diff_id.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// The layer's tar stream, from the blob opened (and hashed) when the
/// image was resolved.
fn decompressed(layer: &Layer) -> Result<Box<dyn Read>, ImageError> {
    let path = &layer.blob;
    let mut magic = [0u8; 4];
    let n = layer
        .reader()
        .take(4)
        .read(&mut magic)
        .map_err(|e| ImageError::io(path, e))?;
    let f = layer.reader();
    Ok(match compression_of(&magic[..n]) {
        Some(Compression::Gzip) => Box::new(flate2::read::MultiGzDecoder::new(f)),
        Some(Compression::Zstd) => {
            Box::new(zstd::stream::read::Decoder::new(f).map_err(|e| ImageError::io(path, e))?)
        }
        None => Box::new(f),
    })
}

/// A compression airlock reads, known by its first bytes.
pub(super) enum Compression {
    Gzip,
    Zstd,
}

/// The compression whose magic number `start` (a stream's first four
/// bytes, or fewer) begins with.
pub(super) fn compression_of(start: &[u8]) -> Option<Compression> {
    match start {
        [0x1f, 0x8b, ..] => Some(Compression::Gzip),
        [0x28, 0xb5, 0x2f, 0xfd] => Some(Compression::Zstd),
        _ => None,
    }
}

/// Unpack `layer` into `tmp/rootfs` and record it in `tmp/meta.json`,
/// refusing it unless what was unpacked hashes to its diff_id.
fn unpack_verified(
    layer: &Layer,
    tmp: &Path,
    id_base: Option<u32>,
    budget: &mut unpack::Budget,
) -> Result<(), ImageError> {
    let rootfs = tmp.join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(|e| ImageError::io(&rootfs, e))?;
    // The layer's `/` unless it names one: 0755 whatever the umask, or
    // the kept layer would shut the sandbox's root out for good.
    std::fs::set_permissions(&rootfs, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| ImageError::io(&rootfs, e))?;
    let compressed = layer
        .file
        .metadata()
        .map_err(|e| ImageError::io(&layer.blob, e))?
        .len();
    budget.layer(compressed);
    let mut reader = Hashing {
        inner: decompressed(layer)?,
        hash: Sha256::new(),
    };
    let notes = unpack::unpack(
        &mut reader,
        &rootfs,
        Options {
            layer: true,
            id_base,
        },
        budget,
    )?;
    // Whatever the tar reader left (end-of-archive padding) is part of the
    // diff_id too; it is a few KiB, and more is refused rather than read
    // (it would be gigabytes of zeros to decompress for nothing).
    let trailing = std::io::copy(
        &mut (&mut reader).take(MAX_TRAILING + 1),
        &mut std::io::sink(),
    )
    .map_err(|e| {
        ImageError::Invalid(format!(
            "reading layer {}: {e} (truncated or corrupt?)",
            layer.diff_id
        ))
    })?;
    if trailing > MAX_TRAILING {
        return Err(ImageError::Refused(format!(
            "layer {}: more than {} KiB after the end of its tar archive; refusing the image",
            layer.diff_id,
            MAX_TRAILING >> 10
        )));
    }
    let actual = format!("sha256:{}", hex(&reader.hash.finalize()));
    if actual != layer.diff_id {
        return Err(ImageError::Mismatch {
            what: "layer",
            digest: layer.diff_id.clone(),
            field: "diff_id",
            actual,
        });
    }
    let meta = LayerMeta {
        diff_id: layer.diff_id.clone(),
        digest: layer.digest.clone(),
        notes,
    };
    let p = tmp.join("meta.json");
    std::fs::write(
        &p,
        serde_json::to_vec_pretty(&meta).expect("meta serializes"),
    )
    .map_err(|e| ImageError::io(&p, e))
}

/// Move an unpacked layer from `tmp` to its place `dir` in one rename, so
/// no sandbox sees half of it. Returns false when another process put the
/// same layer there first (theirs is used, ours removed).
fn install(tmp: &Path, dir: &Path) -> Result<bool, ImageError> {
    // On disk before its name is: the rename is journaled at once, the
    // files' data (delayed allocation) later, and a crash in between
    // would leave a layer that looks complete (its meta.json there) with
    // empty or short files, which every later run would use.
    let synced = std::fs::File::open(tmp)
        .and_then(|d| rustix::fs::syncfs(&d).map_err(Into::into))
        .map_err(|e| ImageError::io(tmp, e));
    if let Err(e) = synced {
        remove_tree(tmp);
        return Err(e);
    }
    match std::fs::rename(tmp, dir) {
        Ok(()) => {
            // And the new name too, before the image's record names it.
            if let Some(parent) = dir.parent() {
                let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
            }
            Ok(true)
        }
        Err(_) if dir.join("meta.json").exists() => {
            remove_tree(tmp);
            Ok(false)
        }
        Err(e) => {
            remove_tree(tmp);
            Err(ImageError::io(dir, e))
        }
    }
}

/// Where the store is unless the caller says otherwise (see
/// [`crate::Context::current`], which also honours `$AIRLOCK_STORE`):
/// `/var/lib/airlock` for root, `$XDG_DATA_HOME/airlock`, else
/// `~/.local/share/airlock`, for anyone else.
pub fn default_root(uid: u32, xdg_data_home: Option<String>, home: Option<String>) -> PathBuf {
    if uid == 0 {
        return "/var/lib/airlock".into();
    }
    user_root(xdg_data_home, home)
}

/// A user's own store: under `$XDG_DATA_HOME`, or `~/.local/share`.
pub fn user_root(xdg_data_home: Option<String>, home: Option<String>) -> PathBuf {
    if let Some(x) = xdg_data_home {
        return PathBuf::from(x).join("airlock");
    }
    PathBuf::from(home.as_deref().unwrap_or("/")).join(".local/share/airlock")
}

/// Bumped whenever the unpacker writes a layer differently, so a tree of
/// an older form is unpacked again rather than used.
const UNPACK_FORM: &str = "airlock-unpack-3";

/// The store's name for a layer as unpacked for `id_base`:
/// `<diff_id hex>-<16 hex of what else shaped it>`.
fn layer_key(diff_id: &str, id_base: Option<u32>) -> Result<String, ImageError> {
    let hex = digest_hex(diff_id)?;
    let ids = id_base.map_or("as-in-the-image".to_string(), |b| format!("from-{b}"));
    let shape = Sha256::digest(format!("{UNPACK_FORM};owners={ids};whiteouts=overlay"));
    Ok(format!("{hex}-{}", &super::oci::hex(&shape)[..16]))
}

/// Close an unpacked layer's directory (see the module doc) before it is
/// put in place.
fn close_up(tmp: &Path, id_base: Option<u32>) -> Result<(), ImageError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(id) = id_base {
        std::os::unix::fs::chown(tmp, Some(id), Some(id)).map_err(|e| ImageError::io(tmp, e))?;
    }
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| ImageError::io(tmp, e))
}

/// A store directory must be the caller's and writable by nobody else:
/// this process (root, maybe) writes, chowns and renames in it by path,
/// and another user's store could hold links planted to turn those onto
/// files outside it.
fn owned_by_caller(p: &Path) -> Result<(), ImageError> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).map_err(|e| ImageError::io(p, e))?;
    let me = rustix::process::geteuid().as_raw();
    let why = if !m.file_type().is_dir() {
        "is not a directory".to_string()
    } else if m.uid() != me {
        format!("belongs to uid {}, not to this caller (uid {me})", m.uid())
    } else if m.mode() & 0o022 != 0 {
        format!("is writable by others (mode {:o})", m.mode() & 0o7777)
    } else {
        return Ok(());
    };
    Err(ImageError::Refused(format!(
        "the layer store {} {why}: a store must be the caller's alone",
        p.display()
    )))
}

/// A directory above the store must not let another user swap the store
/// out: root's or the caller's, and sticky where others may write.
/// Judged before anything is made, on the path as written (a link there
/// must be root's or the caller's, or its owner could point it elsewhere)
/// and on where its existing part leads.
fn unswappable_above(root: &Path) -> Result<(), ImageError> {
    let Some(parent) = root.parent() else {
        return Ok(());
    };
    for dir in parent.ancestors() {
        unswappable(dir)?;
    }
    if let Some(real) = parent
        .ancestors()
        .find_map(|a| std::fs::canonicalize(a).ok())
    {
        for dir in real.ancestors() {
            unswappable(dir)?;
        }
    }
    Ok(())
}

/// [`Store::check_reachable_by`] for a store at `root`, which need not
/// exist yet: the walk ends at the first directory still to be made.
fn check_reachable(root: &Path, uid: u32) -> Result<(), ImageError> {
    use std::os::unix::fs::MetadataExt;
    if !root.is_absolute() {
        return Ok(());
    }
    let layers = root.join("layers");
    let mut walked = PathBuf::from("/");
    for part in layers.components().skip(1) {
        let meta = match std::fs::metadata(&walked) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ImageError::io(&walked, e)),
        };
        let mode = meta.mode();
        let bit = if meta.uid() == uid {
            0o100
        } else if meta.gid() == uid {
            0o010
        } else {
            0o001
        };
        if mode & bit == 0 {
            return Err(ImageError::Refused(format!(
                "the store's layers are opened by the sandbox's root (host uid {uid}), which may not enter {} (mode {:o}, owner {}): put the store where others may pass (--store DIR), or give that directory o+x",
                walked.display(),
                mode & 0o7777,
                meta.uid()
            )));
        }
        walked.push(part);
    }
    Ok(())
}

fn unswappable(dir: &Path) -> Result<(), ImageError> {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::symlink_metadata(dir) else {
        return Ok(()); // not there yet: made by us below
    };
    let me = rustix::process::geteuid().as_raw();
    let owner_ok = m.uid() == 0 || m.uid() == me;
    let sticky_or_closed =
        m.file_type().is_symlink() || m.mode() & 0o022 == 0 || m.mode() & 0o1000 != 0;
    if owner_ok && sticky_or_closed {
        return Ok(());
    }
    Err(ImageError::Refused(format!(
        "the layer store is below {} (uid {}, mode {:o}), where another user could replace it",
        dir.display(),
        m.uid(),
        m.mode() & 0o7777
    )))
}

impl Store {
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, ImageError> {
        Store::open_for(root, None)
    }

    /// Open the store at `root`, making what is missing; with `reach`,
    /// one whose layers that host uid can walk to (see
    /// [`Store::check_reachable_by`]). Refused, it leaves nothing behind:
    /// the directories made for it are removed again.
    pub fn open_for(root: impl Into<PathBuf>, reach: Option<u32>) -> Result<Store, ImageError> {
        Store::open_racing(root.into(), reach, || {})
    }

    /// [`Store::open_for`], with `meanwhile` run between the look at what
    /// exists and the making of what does not (for the test of another
    /// user's directory made in between).
    fn open_racing(
        root: PathBuf,
        reach: Option<u32>,
        meanwhile: impl FnOnce(),
    ) -> Result<Store, ImageError> {
        let root = std::path::absolute(&root).map_err(|e| ImageError::io(&root, e))?;
        unswappable_above(&root)?;
        // What exists is judged before anything is made.
        if let Some(uid) = reach {
            check_reachable(&root, uid)?;
        }
        meanwhile();
        let mut made = Vec::new();
        let opened = Store::make(&root, &mut made).and_then(|store| {
            // Again, now that the parents made (with the umask) exist.
            match reach {
                Some(uid) => check_reachable(&root, uid).map(|()| store),
                None => Ok(store),
            }
        });
        if opened.is_err() {
            for dir in made.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
        }
        opened
    }

    /// Make the store's missing directories, recording each in `made`.
    fn make(root: &Path, made: &mut Vec<PathBuf>) -> Result<Store, ImageError> {
        let sub = |d: &str| {
            if d.is_empty() {
                root.to_path_buf()
            } else {
                root.join(d)
            }
        };
        // What is missing is made with its mode; what exists keeps the
        // mode its owner gave it (a store opened to look up an image that
        // is not there must not have opened anything up). The sandbox's
        // root, an unprivileged host id, walks to the layers (overlayfs
        // opens them with its credentials): the root and layers/ are 0711.
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if let Some(parent) = root.parent() {
            let missing: Vec<PathBuf> = parent
                .ancestors()
                .take_while(|a| std::fs::symlink_metadata(a).is_err())
                .map(Path::to_path_buf)
                .collect();
            // What exists now is judged again: a parent missing at the
            // caller's look may have been made since by another user (under
            // a sticky /tmp), who could then swap what we build in it.
            unswappable_above(root)?;
            // Then the rest one at a time, outermost first: one made since
            // this listing is judged as one that was there, not built
            // into; ours, in a sticky directory, nobody else can rename.
            for a in missing.iter().rev() {
                match std::fs::create_dir(a) {
                    Ok(()) => made.push(a.clone()),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => unswappable(a)?,
                    Err(e) => return Err(ImageError::io(a, e)),
                }
            }
        }
        for (d, mode) in [
            ("", 0o711),
            ("layers", 0o711),
            ("images", 0o700),
            ("tmp", 0o700),
        ] {
            let p = sub(d);
            match std::fs::DirBuilder::new().mode(mode).create(&p) {
                // Exactly `mode`, whatever the umask: we just made it.
                Ok(()) => {
                    made.push(p.clone());
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
                        .map_err(|e| ImageError::io(&p, e))?
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(ImageError::io(&p, e)),
            }
        }
        for d in ["", "layers", "images", "tmp"] {
            owned_by_caller(&sub(d))?;
        }
        Ok(Store {
            root: root.to_path_buf(),
            limits: unpack::Limits::default(),
        })
    }

    /// Can the host id `uid` (with group `uid`) walk from `/` to the
    /// store's layers? overlayfs opens them with the credentials of the
    /// sandbox's root, so a store below a directory only root may enter
    /// (a `--store` in /root) would fail at mount time, after the
    /// unpacking; this says so first, naming the directory.
    pub fn check_reachable_by(&self, uid: u32) -> Result<(), ImageError> {
        check_reachable(&self.root, uid)
    }

    fn layer_dir(&self, diff_id: &str, id_base: Option<u32>) -> Result<PathBuf, ImageError> {
        Ok(self.root.join("layers").join(layer_key(diff_id, id_base)?))
    }

    /// The store's directories of a layer, whatever ids they were unpacked
    /// for.
    fn layer_dirs(&self, diff_id: &str) -> Vec<PathBuf> {
        let Ok(hex) = digest_hex(diff_id) else {
            return Vec::new();
        };
        std::fs::read_dir(self.root.join("layers"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().split('-').next() == Some(hex))
            .map(|e| e.path())
            .collect()
    }

    /// A fresh directory under the store's `tmp/`, for work that is
    /// renamed into place or removed: made here and now, never one that
    /// was there (two pulls of one process, a daemon's, in the same clock
    /// tick would otherwise unpack into one directory).
    pub fn scratch(&self, prefix: &str) -> Result<Scratch, ImageError> {
        let tmp = self.root.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| ImageError::io(&tmp, e))?;
        loop {
            let dir = self.scratch_name(prefix);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                // Left by a process of the same pid before (a reboot ago).
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(ImageError::io(&dir, e)),
            }
            // A sweep that came between the mkdir and the lock (one in
            // another pid namespace, which cannot see our pid) holds it
            // or has removed it: a new name then.
            match claim(&dir) {
                Claim::Taken(held) if still_at(&held, &dir) => {
                    return Ok(Scratch {
                        path: dir,
                        _held: held,
                    })
                }
                Claim::Taken(_) | Claim::Busy => continue,
                Claim::Unopenable(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Claim::Unopenable(e) => return Err(ImageError::io(&dir, e)),
            }
        }
    }

    /// A name under `tmp/` that holds this process's pid after `prefix`
    /// (see `scratch_owner`), not taken before by this process.
    fn scratch_name(&self, prefix: &str) -> PathBuf {
        static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{prefix}-{}-{nonce}-{n}", std::process::id()))
    }

    /// The unpacked root of a layer, unpacking it first (within `budget`,
    /// what is left of the image's limits) if this store has not seen it.
    /// `unpacking` is called just before, to announce it. Returns the
    /// directory and whether it was unpacked now; a layer that fails
    /// leaves nothing behind.
    pub fn layer(
        &self,
        layer: &Layer,
        id_base: Option<u32>,
        budget: &mut unpack::Budget,
        unpacking: impl FnOnce(),
    ) -> Result<(PathBuf, bool), ImageError> {
        let dir = self.layer_dir(&layer.diff_id, id_base)?;
        if dir.join("meta.json").exists() {
            return Ok((dir.join("rootfs"), false));
        }
        // One unpack of a layer at a time: pulls of one new image at once
        // (a daemon starting eight sandboxes of it) each unpacked it in
        // full, taking eight times its room in tmp/ until all but one
        // lost the rename. The second waits, then finds it made. Taken
        // under the store's shared lock (held by `pull`), one layer at a
        // time, so no two pulls wait on each other in turn.
        let _unpacking = self.layer_lock(&dir)?;
        if dir.join("meta.json").exists() {
            return Ok((dir.join("rootfs"), false));
        }
        unpacking();
        let scratch = self.scratch(digest_hex(&layer.diff_id)?)?;
        let tmp = scratch.path();
        if let Err(e) =
            unpack_verified(layer, tmp, id_base, budget).and_then(|()| close_up(tmp, id_base))
        {
            remove_tree(tmp);
            // Which of the image's layers: an entry's name alone does
            // not say.
            return Err(e.context(format!("layer {} ({:?})", layer.diff_id, layer.blob)));
        }
        let fresh = install(tmp, &dir)?;
        Ok((dir.join("rootfs"), fresh))
    }

    /// The lock of the layer to be unpacked at `dir`, held (a blocking
    /// exclusive flock on `locks/NAME`).
    fn layer_lock(&self, dir: &Path) -> Result<std::fs::File, ImageError> {
        let locks = self.root.join("locks");
        std::fs::create_dir_all(&locks).map_err(|e| ImageError::io(&locks, e))?;
        let p = locks.join(dir.file_name().expect("a layer's directory has a name"));
        let f = crate::fs::open_lock_file(&p).map_err(|e| ImageError::io(&p, e))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| ImageError::io(&p, e.into()))?;
        Ok(f)
    }

    /// The notes (neutralised entries) recorded when the layer whose root
    /// [`Store::layer`] gave was unpacked. Control characters come escaped:
    /// they go to a terminal, and a layer's directory may belong to the
    /// ids of a sandbox's root.
    pub fn layer_notes(&self, layer_root: &Path) -> Vec<String> {
        layer_root
            .parent()
            .and_then(|d| std::fs::read(d.join("meta.json")).ok())
            .and_then(|b| serde_json::from_slice::<LayerMeta>(&b).ok())
            .map(|m| m.notes.iter().map(|n| crate::report::plain(n)).collect())
            .unwrap_or_default()
    }

    pub fn record(&self, image: &Image, source: &str) -> Result<(), ImageError> {
        let rec = ImageRecord {
            id: image.id.clone(),
            name: image.name.clone(),
            source: source.to_string(),
            layers: image.layers.iter().map(|l| l.diff_id.clone()).collect(),
        };
        let hex = digest_hex(&image.id)?;
        let p = self.root.join("images").join(format!("{hex}.json"));
        // Written aside (in a scratch directory of its own, which a prune
        // clears once its writer is gone) and renamed in: a record cut
        // short by a crash would be skipped by `images`, and `prune` would
        // take its layers.
        // The record and the directory entry are synced before and after
        // the rename: ext4 and XFS promise nothing for a new name, and a
        // record left empty by a power cut would be skipped too.
        let scratch = self.scratch("record")?;
        let tmp = scratch.path().join("record.json");
        let written = std::fs::File::create(&tmp)
            .and_then(|mut f| {
                use std::io::Write;
                f.write_all(&serde_json::to_vec_pretty(&rec).expect("records serialize"))?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&tmp, &p))
            .and_then(|()| std::fs::File::open(self.root.join("images"))?.sync_all());
        remove_tree(scratch.path());
        written.map_err(|e| ImageError::io(&p, e))
    }

    /// The records that can be read (what `image ls` shows).
    pub fn images(&self) -> Vec<ImageRecord> {
        let mut out: Vec<ImageRecord> = self
            .record_files()
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|p| serde_json::from_slice(&std::fs::read(p).ok()?).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        out
    }

    /// Every record, or an error naming one that cannot be read or
    /// parsed: what a prune keeps is decided by them, and a record taken
    /// for absent (EIO, EMFILE, one written by another version) would
    /// have its image's layers removed from under it.
    fn every_image(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let dir = self.root.join("images");
        let files = match self.record_files() {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ImageError::io(&dir, e)),
        };
        files
            .map(|p| {
                let p = p.map_err(|e| ImageError::io(&dir, e))?;
                let bytes = std::fs::read(&p).map_err(|e| ImageError::io(&p, e))?;
                serde_json::from_slice(&bytes).map_err(|e| {
                    ImageError::Invalid(format!(
                        "{}: not an image record ({e}); nothing is pruned while it is there, as the layers it names cannot be told",
                        p.display()
                    ))
                })
            })
            .collect()
    }

    /// The paths of the record files; a writer's temporary copy (earlier
    /// builds wrote `.HEX.json.PID` here) is no record.
    fn record_files(&self) -> std::io::Result<impl Iterator<Item = std::io::Result<PathBuf>>> {
        let entries = std::fs::read_dir(self.root.join("images"))?;
        Ok(entries.filter_map(|e| match e {
            Ok(e) if e.file_name().as_encoded_bytes().starts_with(b".") => None,
            Ok(e) => Some(Ok(e.path())),
            Err(e) => Some(Err(e)),
        }))
    }

    /// Forget the image whose name is `what`, or else the one whose id
    /// starts with it (at least 4 hex digits, `sha256:` aside). A name or
    /// a prefix of more than one image is refused: `image rm sha256:` must
    /// not forget every image, nor `image rm latest` every layout's.
    pub fn remove(&self, what: &str) -> Result<usize, ImageError> {
        // An image pulled without a name (an OCI descriptor with no
        // `ref.name`, a docker archive with no tag) is recorded as "": an
        // empty argument (`image rm "$IMG"` with IMG unset) would forget
        // every one of them.
        if what.is_empty() {
            return Err(ImageError::Refused(
                "an empty name names no image; give a name or at least 4 hex digits of an id"
                    .into(),
            ));
        }
        let records = self.images();
        let hex_of = |r: &ImageRecord| r.id.trim_start_matches("sha256:").to_string();
        let mut chosen: Vec<String> = records
            .iter()
            .filter(|r| r.name == what)
            .map(hex_of)
            .collect();
        // A name is a layout's tag (`latest`), which images pulled from
        // other layouts share: forgetting them all, the next prune took
        // every one's layers.
        if chosen.len() > 1 {
            let ids: Vec<&str> = chosen.iter().map(|h| &h[..12]).collect();
            return Err(ImageError::Refused(format!(
                "{what:?} names {} images (ids {}): give the id of the one to remove",
                chosen.len(),
                ids.join(", ")
            )));
        }
        let prefix = what.strip_prefix("sha256:").unwrap_or(what);
        if chosen.is_empty() && prefix.len() >= 4 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            chosen = records
                .iter()
                .map(hex_of)
                .filter(|hex| hex.starts_with(prefix))
                .collect();
            if chosen.len() > 1 {
                return Err(ImageError::Refused(format!(
                    "{what:?} starts {} image ids; give more of the one to remove",
                    chosen.len()
                )));
            }
        }
        for hex in &chosen {
            let p = self.root.join("images").join(format!("{hex}.json"));
            std::fs::remove_file(&p).map_err(|e| ImageError::io(&p, e))?;
        }
        Ok(chosen.len())
    }

    /// Remove layers no recorded image uses, and leftovers of interrupted
    /// unpacks. Returns how many directories went.
    pub fn prune(&self) -> Result<usize, ImageError> {
        self.prune_then(|| {})
    }

    /// [`Store::prune`], with `meanwhile` run between choosing what goes
    /// (under the store's exclusive lock) and removing it (after the lock
    /// is let go): for the test that pulls and starts go on meanwhile.
    fn prune_then(&self, meanwhile: impl FnOnce()) -> Result<usize, ImageError> {
        // Under the lock, each doomed tree only changes its name (a rename
        // into tmp/, under a name of this process's). Removed after it: a
        // prune of many gigabytes held every pull and every start behind
        // the exclusive lock for as long as the removal took.
        let doomed = {
            let _pruning = self.lock(true)?;
            self.doomed()?
        };
        meanwhile();
        let n = doomed.len();
        for (p, held, pin) in doomed {
            remove_tree(&p);
            drop(held);
            // Held till now: a start that opened the layer by its old name
            // before the rename is refused by `pin_layers` ("being
            // pruned"), not let through onto a tree that goes.
            drop(pin);
            REMOVING
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&p);
        }
        Ok(n)
    }

    /// Under the exclusive lock: what a prune removes, moved out of the
    /// way into `tmp/` under names of this process's, which no other
    /// pull or prune sweeps while it lives.
    fn doomed(&self) -> Result<Vec<Doomed>, ImageError> {
        // No pull is under way while we look (its layers are not recorded
        // yet), nor starts until we let go.
        let used: std::collections::HashSet<String> = self
            .every_image()?
            .into_iter()
            .flat_map(|r| r.layers)
            .filter_map(|d| digest_hex(&d).ok().map(String::from))
            .collect();
        // A layer's directories are `<diff_id hex>-<shape>`.
        let diff_of = |name: &str| name.split('-').next().unwrap_or_default().to_string();
        let removing = || REMOVING.lock().unwrap_or_else(|e| e.into_inner());
        let busy = removing().clone();
        let mut doomed = Vec::new();
        // Each tree goes with the lock of its top directory held (see
        // `claim`) until it is removed, so that no other process takes it
        // for abandoned meanwhile, and with its rootfs's lock (`pin`).
        let mut move_aside = |from: &Path, held: Option<std::os::fd::OwnedFd>, pin| {
            let to = self.scratch_name(PRUNED);
            if std::fs::rename(from, &to).is_ok() {
                removing().insert(to.clone());
                doomed.push((to, held, pin));
            }
        };
        for e in std::fs::read_dir(self.root.join("tmp"))
            .into_iter()
            .flatten()
            .flatten()
        {
            // Another process's work in progress stays (`scratch` names
            // hold the pid after the prefix), and what another prune of
            // this process (a daemon's) is still removing; not what one of
            // an earlier process of our pid left.
            let name = e.file_name().to_string_lossy().into_owned();
            if busy.contains(&e.path()) {
                continue;
            }
            if let Some(held) = abandoned(&e.path(), &name) {
                move_aside(&e.path(), held, None);
            }
        }
        for e in std::fs::read_dir(self.root.join("layers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            // A layer of the old form (`<diff_id hex>` alone: keyed by its
            // diff_id only, and open to every user) is never used again.
            if !name.contains('-') || !used.contains(&diff_of(&name)) {
                // One a running sandbox's root is made of stays, recorded
                // or not (`image rm` while it runs): its supervisor holds
                // a shared lock on it (see `pin_layers`). Ours is held
                // until the layer is out of layers/.
                let Some(ours) = lock_unused(&e.path().join("rootfs")) else {
                    continue;
                };
                let held = match claim(&e.path()) {
                    Claim::Taken(fd) => Some(fd),
                    Claim::Busy => continue,
                    Claim::Unopenable(_) => None,
                };
                // Out of layers/ in one rename: a prune cut short must not
                // leave part of a layer where a later run would take it
                // (meta.json) for a whole one.
                move_aside(&e.path(), held, ours);
            }
        }
        // The unpack locks of layers no longer here: no pull holds one
        // while we hold the store's lock.
        for e in std::fs::read_dir(self.root.join("locks"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if !self.root.join("layers").join(e.file_name()).exists() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(doomed)
    }

    /// Remove what pulls that were killed left in `tmp/` (a partial layer,
    /// an archive's copy): a pull does it first, under the shared lock,
    /// so that they do not wait for a prune. Only entries whose process
    /// is gone: another pull's, this process's own included (a daemon
    /// pulls for several clients at once), are its work in progress.
    pub(super) fn sweep_scratch(&self) {
        for e in std::fs::read_dir(self.root.join("tmp"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(_held) = abandoned(&e.path(), &name) {
                remove_tree(&e.path());
            }
        }
    }

    /// The store's lock: shared while a pull unpacks and records, so that
    /// a prune (exclusive) never takes a layer a pull has installed but
    /// not yet recorded.
    pub fn lock(&self, exclusive: bool) -> Result<std::fs::File, ImageError> {
        let op = if exclusive {
            rustix::fs::FlockOperation::LockExclusive
        } else {
            rustix::fs::FlockOperation::LockShared
        };
        let locked = |name: &str| {
            let path = self.root.join(name);
            let f = crate::fs::open_lock_file(&path).map_err(|e| ImageError::io(&path, e))?;
            rustix::fs::flock(&f, op).map_err(|e| ImageError::io(&path, e.into()))?;
            Ok::<_, ImageError>(f)
        };
        // flock grants a shared lock while an exclusive one waits, so a
        // prune behind pulls that overlap (a daemon's) waited for good.
        // Every taker passes the gate first, and a prune holds it while it
        // waits for the store's lock: new pulls queue behind it.
        let _gate = locked("gate")?;
        locked("lock")
    }

    /// Bytes used by a layer's unpacked tree (for `image ls`).
    pub fn layer_size(&self, diff_id: &str) -> u64 {
        self.layer_dirs(diff_id).iter().map(|d| tree_size(d)).sum()
    }
}

/// A directory under the store's `tmp/` (see [`Store::scratch`]) and
/// the lock on it that says its maker is still at work: liveness by lock,
/// not by the pid in its name alone, which a process in another pid
/// namespace sharing the store (a daemon in a container, a CLI on the
/// host) cannot see, and would sweep the work of.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
    _held: std::os::fd::OwnedFd,
}

impl Scratch {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What taking the lock of a `tmp/` entry (or a layer's directory) gave.
enum Claim {
    /// Ours now: nobody else was at work there.
    Taken(std::os::fd::OwnedFd),
    /// Another open of it holds the lock: its maker, or a prune or sweep
    /// removing it.
    Busy,
    /// Not a directory we may open (a file, a directory a layer made
    /// unreadable, gone).
    Unopenable(std::io::Error),
}

/// Take `dir`'s lock (an exclusive flock on the directory itself) if
/// nobody holds it.
fn claim(dir: &Path) -> Claim {
    let fd = match open_dir(dir) {
        Ok(fd) => fd,
        Err(e) => return Claim::Unopenable(e.into()),
    };
    match rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Claim::Taken(fd),
        Err(rustix::io::Errno::WOULDBLOCK) => Claim::Busy,
        Err(e) => Claim::Unopenable(e.into()),
    }
}

/// Whether `held` is still the directory at `path` (a sweep may have
/// removed it between its mkdir and our lock).
fn still_at(held: &std::os::fd::OwnedFd, path: &Path) -> bool {
    match (rustix::fs::fstat(held), rustix::fs::lstat(path)) {
        (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
        _ => false,
    }
}

/// The `tmp/` entry `path` (named `name`) is nobody's work in progress:
/// returns its lock to hold while it is removed (`None` for one that
/// cannot be opened, judged by its name's pid alone). A locked entry is a
/// living process's, wherever its pid is seen. An unlocked one is
/// nobody's, whatever its pid: every writer holds its lock from the mkdir
/// on (see [`Store::scratch`]), and a pid alive here may be another
/// process's now (after a reboot, or in another pid namespace), which
/// kept a killed pull's gigabytes for as long as that process ran.
fn abandoned(path: &Path, name: &str) -> Option<Option<std::os::fd::OwnedFd>> {
    match claim(path) {
        Claim::Busy => None,
        Claim::Taken(fd) => Some(Some(fd)),
        Claim::Unopenable(_) if scratch_owner(name) == Owner::Alive => None,
        Claim::Unopenable(_) => Some(None),
    }
}

/// A tree a prune moved aside: where it is now, the lock of its top
/// directory (see [`claim`]), and its rootfs's (see [`lock_unused`]),
/// each held until it is removed.
type Doomed = (
    PathBuf,
    Option<std::os::fd::OwnedFd>,
    Option<std::os::fd::OwnedFd>,
);

/// The prefix of what a prune moved into `tmp/` to remove.
const PRUNED: &str = "pruned";

/// What this process's prunes moved aside and are removing now.
static REMOVING: std::sync::Mutex<std::collections::BTreeSet<PathBuf>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Who made a `tmp/` entry.
#[derive(PartialEq, Eq)]
enum Owner {
    /// This process.
    Ours,
    /// Another process that is still there.
    Alive,
    /// A process that is gone.
    Gone,
    /// A name of another form.
    Unknown,
}

/// The process that made the `tmp/` entry `name`
/// (`PREFIX-PID-NONCE-N`, as [`Store::scratch`] names them).
fn scratch_owner(name: &str) -> Owner {
    let mut parts = name.rsplitn(4, '-');
    let (Some(_n), Some(_nonce), Some(pid), Some(_prefix)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Owner::Unknown;
    };
    let Some(pid) = pid.parse().ok().and_then(rustix::process::Pid::from_raw) else {
        return Owner::Unknown;
    };
    if pid == rustix::process::getpid() {
        return Owner::Ours;
    }
    match rustix::process::test_kill_process(pid) {
        Err(rustix::io::Errno::SRCH) => Owner::Gone,
        _ => Owner::Alive,
    }
}

fn tree_size(p: &Path) -> u64 {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| tree_size(&e.path()))
            .sum(),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// Shared locks on the store's layers among the lower directories of an
/// overlay root (`.../layers/NAME/rootfs` beside its `meta.json`; other
/// directories are left alone), for a sandbox's supervisor to hold for
/// the sandbox's life: `Store::prune` takes only a layer it can lock
/// exclusively, so one a running sandbox is made of stays. A layer a
/// prune holds is being removed: the start fails at once, naming it,
/// rather than wait for the prune or mount what it is removing. What
/// cannot be opened is left out: PID 1 opens the layers again, and fails
/// there.
pub fn pin_layers(root: &crate::spec::Root) -> Result<Vec<std::os::fd::OwnedFd>, String> {
    let crate::spec::Root::Overlay { lower, .. } = root else {
        return Ok(Vec::new());
    };
    let mut pinned = Vec::new();
    for dir in lower.iter().map(Path::new) {
        let layer = dir.parent().filter(|l| {
            dir.file_name() == Some("rootfs".as_ref())
                && l.parent().and_then(Path::file_name) == Some("layers".as_ref())
                && l.join("meta.json").is_file()
        });
        let Some(fd) = layer.and_then(|_| open_dir(dir).ok()) else {
            continue;
        };
        let shared = rustix::fs::FlockOperation::NonBlockingLockShared;
        match rustix::fs::flock(&fd, shared) {
            Ok(()) => pinned.push(fd),
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(format!(
                    "the image layer {} is being pruned (`airlock image prune`); run again",
                    dir.display()
                ))
            }
            Err(_) => {}
        }
    }
    Ok(pinned)
}

/// `rootfs`, locked exclusively unless a sandbox holds it (`None`); a
/// directory that cannot be opened (a layer of the old form has none) is
/// nobody's: `Some` of nothing.
fn lock_unused(rootfs: &Path) -> Option<Option<std::os::fd::OwnedFd>> {
    let Ok(fd) = open_dir(rootfs) else {
        return Some(None);
    };
    let exclusive = rustix::fs::FlockOperation::NonBlockingLockExclusive;
    rustix::fs::flock(&fd, exclusive).ok().map(|()| Some(fd))
}

fn open_dir(dir: &Path) -> rustix::io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::open(dir, flags, Mode::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parent of the store that was missing when it was looked at, and
    /// that another user made before it was made (under a sticky /tmp),
    /// is refused as one that was there would be, not built into: that
    /// user could swap the store's directories under root.
    #[test]
    fn a_parent_another_user_made_meanwhile_is_refused() {
        if !rustix::process::geteuid().is_root() {
            eprintln!(
                "SKIPPED a_parent_another_user_made_meanwhile_is_refused: needs root (chown)"
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("shared");
        let r = Store::open_racing(theirs.join("store"), None, || {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir(&theirs).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
            std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o777)).unwrap();
        });
        let Err(e) = r else {
            panic!("the store was made in another user's directory");
        };
        assert!(
            e.to_string().contains("another user could replace it"),
            "{e}"
        );
        assert!(!theirs.join("store").exists());
    }

    /// A record that cannot be parsed stops a prune, naming it: taken for
    /// absent, the layers of its image were removed from under it.
    #[test]
    fn a_prune_keeps_everything_while_a_record_cannot_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let (used, unused) = ("ab".repeat(32), "cd".repeat(32));
        let layer = |hex: &str| store.root.join("layers").join(format!("{hex}-plain"));
        for hex in [&used, &unused] {
            std::fs::create_dir_all(layer(hex).join("rootfs")).unwrap();
        }
        let images = store.root.join("images");
        std::fs::create_dir_all(&images).unwrap();
        let record = ImageRecord {
            id: format!("sha256:{}", "ef".repeat(32)),
            name: "kept".into(),
            source: "/nowhere".into(),
            layers: vec![format!("sha256:{used}")],
        };
        std::fs::write(
            images.join(format!("{}.json", "ef".repeat(32))),
            serde_json::to_vec(&record).unwrap(),
        )
        .unwrap();
        let broken = images.join(format!("{}.json", "12".repeat(32)));
        std::fs::write(&broken, "{\"id\": ").unwrap();
        let e = store.prune().unwrap_err().to_string();
        assert!(e.contains(&broken.display().to_string()), "{e}");
        assert!(layer(&used).exists() && layer(&unused).exists());
        // `ls` still shows what it can read.
        assert_eq!(store.images().len(), 1);
        std::fs::remove_file(&broken).unwrap();
        assert_eq!(store.prune().unwrap(), 1);
        assert!(layer(&used).exists() && !layer(&unused).exists());
    }

    /// A prune waiting for the store's lock holds back pulls that come
    /// after it: with flock alone they took the shared lock past it, and
    /// pulls that overlapped kept it waiting for good.
    #[test]
    fn a_waiting_prune_goes_before_later_pulls() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let order = AtomicUsize::new(0);
        let (mut prune_at, mut pull_at) = (0, 0);
        std::thread::scope(|s| {
            let first = store.lock(false).unwrap();
            let prune = s.spawn(|| {
                let _l = store.lock(true).unwrap();
                order.fetch_add(1, SeqCst) + 1
            });
            // Time enough for the prune to wait on the store's lock.
            std::thread::sleep(std::time::Duration::from_millis(300));
            let pull = s.spawn(|| {
                let _l = store.lock(false).unwrap();
                order.fetch_add(1, SeqCst) + 1
            });
            std::thread::sleep(std::time::Duration::from_millis(300));
            assert_eq!(order.load(SeqCst), 0, "a later pull went past the prune");
            drop(first);
            prune_at = prune.join().unwrap();
            pull_at = pull.join().unwrap();
        });
        assert_eq!((prune_at, pull_at), (1, 2));
    }

    /// A name several images have (each layout's `latest`) is refused by
    /// `remove`, naming their ids; an id removes one.
    #[test]
    fn a_name_of_several_images_removes_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let images = store.root.join("images");
        std::fs::create_dir_all(&images).unwrap();
        for hex in ["ab".repeat(32), "cd".repeat(32)] {
            let record = ImageRecord {
                id: format!("sha256:{hex}"),
                name: "latest".into(),
                source: format!("/layouts/{hex}"),
                layers: Vec::new(),
            };
            std::fs::write(
                images.join(format!("{hex}.json")),
                serde_json::to_vec(&record).unwrap(),
            )
            .unwrap();
        }
        let e = store.remove("latest").unwrap_err().to_string();
        assert!(
            e.contains("names 2 images") && e.contains("abababababab"),
            "{e}"
        );
        assert_eq!(store.images().len(), 2);
        assert_eq!(store.remove("cdcdcd").unwrap(), 1);
        assert_eq!(store.remove("latest").unwrap(), 1);
        assert!(store.images().is_empty());
    }

    /// A prune removes what it chose after letting go of the store's
    /// lock: pulls and starts wait only for the renames, not for the
    /// removal of every tree. A dead pull's leftover in tmp/ goes too; a
    /// living process's stays.
    #[test]
    fn a_prune_removes_its_trees_outside_the_store_lock() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let layer = store
            .root
            .join("layers")
            .join(format!("{}-plain", "ab".repeat(32)));
        std::fs::create_dir_all(layer.join("rootfs/usr/lib")).unwrap();
        std::fs::write(layer.join("rootfs/usr/lib/big"), "x").unwrap();
        let tmp = store.root.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        // pid 4194304 is past PID_MAX_LIMIT: no process has it.
        let dead = tmp.join("unpack-4194304-1-0");
        let alive = tmp.join(format!(
            "unpack-{}-1-0",
            std::os::unix::process::parent_id()
        ));
        // What a prune of an earlier process of our pid left goes too.
        let earlier = tmp.join(format!("pruned-{}-1-0", std::process::id()));
        for d in [&dead, &alive, &earlier] {
            std::fs::create_dir(d).unwrap();
        }
        // A living writer holds its directory's lock.
        let at_work = claim(&alive);
        assert!(matches!(at_work, Claim::Taken(_)));
        let mut seen = None;
        let n = store
            .prune_then(|| {
                let lock = crate::fs::open_lock_file(&store.root.join("lock")).unwrap();
                let shared = rustix::fs::FlockOperation::NonBlockingLockShared;
                let names: Vec<String> = std::fs::read_dir(&tmp)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                // A while: a child another test forks holds a copy of
                // every descriptor of ours until its exec.
                let free = (0..200).any(|_| {
                    let taken = rustix::fs::flock(&lock, shared).is_ok();
                    if !taken {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    taken
                });
                // The layer moved aside is still locked as it goes: a
                // start that opened it by its old name is refused.
                let moved = names
                    .iter()
                    .map(|n| tmp.join(n).join("rootfs"))
                    .find(|r| r.exists())
                    .expect("the layer in tmp/");
                let pinned = open_dir(&moved).is_ok_and(|fd| {
                    rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockShared)
                        .is_err()
                });
                assert!(pinned, "the layer's lock was let go before its removal");
                seen = Some((free, layer.exists(), names));
            })
            .unwrap();
        let (free, layer_there, names) = seen.unwrap();
        assert!(
            free,
            "the store's lock was still held while trees were removed"
        );
        assert!(!layer_there, "the layer was still in layers/");
        assert_eq!(
            names.iter().filter(|n| n.starts_with("pruned-")).count(),
            3,
            "{names:?}"
        );
        assert_eq!(n, 3);
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(left, [alive]);
    }

    /// A pull at work in another pid namespace (its pid, in the name,
    /// names no process here) keeps its scratch directory: it holds the
    /// directory's lock, which neither a sweep nor a prune takes. Once it
    /// lets go, both do.
    #[test]
    fn a_scratch_whose_maker_holds_it_stays_wherever_its_pid_is() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let tmp = store.root.join("tmp");
        // pid 4194304 is past PID_MAX_LIMIT: no process here has it.
        let theirs = tmp.join("unpack-4194304-1-0");
        let at_work = store.scratch("unpack").unwrap();
        std::fs::rename(at_work.path(), &theirs).unwrap();
        std::fs::write(theirs.join("half-unpacked"), "x").unwrap();
        store.sweep_scratch();
        assert!(theirs.join("half-unpacked").exists(), "swept while held");
        assert_eq!(store.prune().unwrap(), 0);
        assert!(theirs.join("half-unpacked").exists(), "pruned while held");
        drop(at_work);
        // A child another test forks holds a copy of every descriptor of
        // ours until its exec: a while.
        let gone = (0..200).any(|_| {
            store.sweep_scratch();
            let gone = !theirs.exists();
            if !gone {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            gone
        });
        assert!(gone, "an abandoned scratch was not swept");
    }

    /// A note goes to a terminal: what its file holds cannot drive it.
    #[test]
    fn layer_notes_come_with_control_characters_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let layer = dir.path().join("layer");
        std::fs::create_dir_all(layer.join("rootfs")).unwrap();
        let meta = serde_json::json!({
            "diff_id": "sha256:00",
            "digest": null,
            "notes": ["\u{1b}]0;owned\u{7}\u{1b}[2Jcleared"],
        });
        std::fs::write(layer.join("meta.json"), meta.to_string()).unwrap();
        let notes = store.layer_notes(&layer.join("rootfs"));
        assert_eq!(notes, ["\\u{1b}]0;owned\\u{7}\\u{1b}[2Jcleared"]);
    }

    /// Images pulled without a name are recorded as "": an empty argument
    /// names none of them, and is refused rather than forgetting them all.
    #[test]
    fn an_empty_name_removes_no_image() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        for hex in ["aa", "bb"] {
            let image = Image {
                id: format!("sha256:{}", hex.repeat(32)),
                name: String::new(),
                config: Default::default(),
                layers: Vec::new(),
            };
            store.record(&image, "/src").unwrap();
        }
        let err = store.remove("").unwrap_err().to_string();
        assert!(err.contains("empty name"), "{err}");
        assert_eq!(store.images().len(), 2);
        assert_eq!(store.remove(&"aa".repeat(4)).unwrap(), 1);
        assert_eq!(store.images().len(), 1);
    }

    /// The sweep reads the owner back from the name `scratch` gives (a
    /// prefix with dashes of its own too): a pull that was killed is
    /// known as gone, not as a name of another form.
    #[test]
    fn a_scratch_names_its_process() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        for prefix in ["abcd", "sha256-ab-cd"] {
            let made = store.scratch(prefix).unwrap();
            let name = made.path().file_name().unwrap().to_str().unwrap();
            assert!(scratch_owner(name) == Owner::Ours, "{name}");
            let mut gone = std::process::Command::new("true").spawn().unwrap();
            let dead = gone.id().to_string();
            gone.wait().unwrap();
            let theirs = name.replacen(
                &format!("-{}-", std::process::id()),
                &format!("-{dead}-"),
                1,
            );
            assert!(scratch_owner(&theirs) == Owner::Gone, "{theirs}");
        }
        assert!(scratch_owner("abcd-1-2") == Owner::Unknown);
    }
}
