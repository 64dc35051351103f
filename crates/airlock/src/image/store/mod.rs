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

use super::oci::{digest_hex, Layer};
use super::unpack;
use super::ImageError;
use crate::fs::remove_tree;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod prune;
mod records;
mod scratch;
#[cfg(test)]
mod tests;
mod verify;

pub use prune::{is_store_layer, pin_layers};
pub use scratch::Scratch;
pub(crate) use verify::compression_of;
use verify::{close_up, install, unpack_verified};

/// How long a prune waits for the pulls under way, holding later ones
/// back meanwhile (see [`Store::lock`]).
const PRUNE_WAITS: Duration = Duration::from_secs(10);

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

    /// The store's lock: shared while a pull unpacks and records, so that
    /// a prune (exclusive) never takes a layer a pull has installed but
    /// not yet recorded.
    pub fn lock(&self, exclusive: bool) -> Result<std::fs::File, ImageError> {
        self.lock_within(exclusive, PRUNE_WAITS)
    }

    /// [`Store::lock`], an exclusive one waiting at most `bound`.
    fn lock_within(&self, exclusive: bool, bound: Duration) -> Result<std::fs::File, ImageError> {
        use rustix::fs::FlockOperation::*;
        let open = |name: &str| {
            let path = self.root.join(name);
            crate::fs::open_lock_file(&path).map_err(|e| ImageError::io(&path, e))
        };
        let locked = |f: &std::fs::File, op, name: &str| {
            rustix::fs::flock(f, op).map_err(|e| ImageError::io(&self.root.join(name), e.into()))
        };
        // flock grants a shared lock while an exclusive one waits, so a
        // prune behind pulls that overlap (a daemon's) waited for good.
        // Every taker passes the gate first, and a prune holds it while it
        // waits for the store's lock: new pulls, and the starts that pass
        // through them, queue behind it. For a bounded time: a pull that
        // holds the lock for long (stopped, or unpacking a large layer)
        // would hold every start behind the prune.
        let gate = open("gate")?;
        let store = open("lock")?;
        if !exclusive {
            locked(&gate, LockShared, "gate")?;
            locked(&store, LockShared, "lock")?;
            return Ok(store);
        }
        locked(&gate, LockExclusive, "gate")?;
        let until = std::time::Instant::now() + bound;
        loop {
            match rustix::fs::flock(&store, NonBlockingLockExclusive) {
                Ok(()) => return Ok(store),
                Err(rustix::io::Errno::WOULDBLOCK) if std::time::Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Err(ImageError::Refused(format!(
                        "the image store {} is busy: pulls held it for {} s; prune again later",
                        self.root.display(),
                        bound.as_secs()
                    )))
                }
                Err(e) => return Err(ImageError::io(&self.root.join("lock"), e.into())),
            }
        }
    }

    /// Bytes used by a layer's unpacked tree (for `image ls`).
    pub fn layer_size(&self, diff_id: &str) -> u64 {
        self.layer_dirs(diff_id).iter().map(|d| tree_size(d)).sum()
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

fn open_dir(dir: &Path) -> rustix::io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::open(dir, flags, Mode::empty())
}
