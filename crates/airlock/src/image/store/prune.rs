//! Prune: the layers no record names, and what killed pulls left, moved
//! aside under the store's lock and removed after it; the layers a running
//! sandbox is made of stay (its supervisor holds a lock on each).

use super::super::oci::digest_hex;
use super::super::ImageError;
use super::scratch::{abandoned, claim, Claim};
use super::{open_dir, Store};
use crate::fs::remove_tree;
use std::path::{Path, PathBuf};

impl Store {
    /// Remove layers no recorded image uses, and leftovers of interrupted
    /// unpacks. Returns how many directories went.
    pub fn prune(&self) -> Result<usize, ImageError> {
        self.prune_then(|| {})
    }

    /// [`Store::prune`], with `meanwhile` run between choosing what goes
    /// (under the store's exclusive lock) and removing it (after the lock
    /// is let go): for the test that pulls and starts go on meanwhile.
    pub(super) fn prune_then(&self, meanwhile: impl FnOnce()) -> Result<usize, ImageError> {
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
    pub(super) fn doomed(&self) -> Result<Vec<Doomed>, ImageError> {
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
}

/// A tree a prune moved aside: where it is now, the lock of its top
/// directory (see [`claim`]), and its rootfs's (see [`lock_unused`]),
/// each held until it is removed.
pub(super) type Doomed = (
    PathBuf,
    Option<std::os::fd::OwnedFd>,
    Option<std::os::fd::OwnedFd>,
);

/// The prefix of what a prune moved into `tmp/` to remove.
pub(super) const PRUNED: &str = "pruned";

/// What this process's prunes moved aside and are removing now.
pub(super) static REMOVING: std::sync::Mutex<std::collections::BTreeSet<PathBuf>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

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
        if !is_store_layer(dir) {
            continue;
        }
        let Ok(fd) = open_dir(dir) else {
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

/// Whether `dir` is a store layer's root: `.../layers/NAME/rootfs`
/// beside its `meta.json`.
pub fn is_store_layer(dir: &Path) -> bool {
    dir.parent().is_some_and(|l| {
        dir.file_name() == Some("rootfs".as_ref())
            && l.parent().and_then(Path::file_name) == Some("layers".as_ref())
            && l.join("meta.json").is_file()
    })
}

/// `rootfs`, locked exclusively unless a sandbox holds it (`None`); a
/// directory that cannot be opened (a layer of the old form has none) is
/// nobody's: `Some` of nothing.
pub(super) fn lock_unused(rootfs: &Path) -> Option<Option<std::os::fd::OwnedFd>> {
    let Ok(fd) = open_dir(rootfs) else {
        return Some(None);
    };
    let exclusive = rustix::fs::FlockOperation::NonBlockingLockExclusive;
    rustix::fs::flock(&fd, exclusive).ok().map(|()| Some(fd))
}
