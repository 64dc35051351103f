//! The state root's index of names: `.names/NAME` is a symlink to the id
//! of the sandbox that holds the name. Creating it (under the root's
//! lock) is what claims a name, and looking a name up reads one link
//! instead of every sandbox's state: with a thousand sandboxes, finding
//! one by name went from reading a thousand files to reading one.
//!
//! The index is a cache of what the states say: a link is trusted only
//! when the state it leads to carries the same name, and a link left by
//! a sandbox that is gone is replaced. A root made before the index
//! existed gets it filled from the states once, on the first claim.

use super::{io_err, is_id, State, StateError};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

fn dir(root: &Path) -> PathBuf {
    root.join(".names")
}

/// The id that holds `name`, if the index says one does.
pub(super) fn lookup(root: &Path, name: &str) -> Option<String> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return None;
    }
    let id = std::fs::read_link(dir(root).join(name)).ok()?;
    let id = id.to_str()?.to_string();
    is_id(&id).then_some(id)
}

/// Claim `name` for `id`. Call with the root's lock held. `states` lists
/// the root's sandboxes, read only when the index must be made.
pub(super) fn claim(
    root: &Path,
    name: &str,
    id: &str,
    states: impl FnOnce() -> Vec<State>,
) -> Result<(), StateError> {
    let names = dir(root);
    match std::fs::DirBuilder::new().mode(0o700).create(&names) {
        Ok(()) => {
            for st in states() {
                let _ = std::os::unix::fs::symlink(&st.id, names.join(&st.name));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err("create", &names)(e)),
    }
    let link = names.join(name);
    for _ in 0..2 {
        match std::os::unix::fs::symlink(id, &link) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if holder(root, name).is_some() {
                    return Err(StateError::NameInUse(name.into()));
                }
                // Only a holder that is gone, or that has another name,
                // left it free.
                if let Some(e) = unreadable_holder(root, name) {
                    return Err(e);
                }
                let _ = std::fs::remove_file(&link);
            }
            Err(e) => return Err(io_err("create", &link)(e)),
        }
    }
    Err(StateError::NameInUse(name.into()))
}

/// The sandbox the index says holds `name`, if its state agrees.
pub(super) fn holder(root: &Path, name: &str) -> Option<(super::SandboxDir, State)> {
    let id = lookup(root, name)?;
    let sb = super::SandboxDir {
        dir: root.join(&id),
        id,
    };
    let st = sb.state().ok().filter(|st| st.name == name)?;
    Some((sb, st))
}

/// Why the state of the sandbox the index says holds `name` cannot be
/// read, where it is there to read (EACCES, EMFILE, EIO): such a holder
/// still holds the name, and is not missing.
pub(super) fn unreadable_holder(root: &Path, name: &str) -> Option<StateError> {
    let id = lookup(root, name)?;
    let sb = super::SandboxDir {
        dir: root.join(&id),
        id,
    };
    match sb.state() {
        Err(e)
            if matches!(&e, StateError::Io { source, .. }
                if source.kind() != io::ErrorKind::NotFound)
                && sb.dir.exists() =>
        {
            Some(e)
        }
        _ => None,
    }
}

/// Let go of `name` if `id` holds it.
pub(super) fn release(root: &Path, name: &str, id: &str) {
    if lookup(root, name).as_deref() == Some(id) {
        let _ = std::fs::remove_file(dir(root).join(name));
    }
}
