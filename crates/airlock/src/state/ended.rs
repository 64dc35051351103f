//! The end of a detached sandbox that removed itself as it ended (`run -d
//! --rm`), kept in the state root's `.ended` for a while, so that whoever
//! was waiting on it or attached to it when it went still learns how it
//! ended. The record is the sandbox's last state cut to what an end says
//! (no spec: a spec may be a megabyte, and the environment it holds has
//! no business outliving the sandbox). At most [`MOST`] are kept for each
//! uid the sandboxes were started for (`.ended/UID/ID`), none longer than
//! [`KEEP`] (podman keeps a removed container's exit code for five
//! minutes too): in a daemon's state root, one caller ending sandboxes
//! fast must not push another's end out before its waiter reads it.

use super::{State, Status};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

const DIR: &str = ".ended";

/// How long a record is kept.
const KEEP: Duration = Duration::from_secs(300);

/// How many records are kept at most for one uid: a caller ending
/// sandboxes fast must not fill the state root's filesystem (a tmpfs:
/// memory).
const MOST: usize = 256;

/// Keep `last`, sandbox `id`'s final state, as its end, among those of
/// sandboxes started for `owner`. Best effort: without it, a waiter hears
/// that the status went with the sandbox.
pub(super) fn keep(root: &Path, last: &State, owner: u32) {
    let made = |dir: &Path| match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == std::io::ErrorKind::AlreadyExists,
    };
    let dir = root.join(DIR).join(owner.to_string());
    if !made(&root.join(DIR)) || !made(&dir) {
        return;
    }
    prune(&dir, MOST - 1);
    let bytes = serde_json::to_vec(&last.clone().without_spec()).expect("states serialize");
    let tmp = dir.join(format!(".{}.tmp", last.id));
    let written = super::dir::write_private(&tmp, &bytes);
    if written
        .and_then(|()| std::fs::rename(&tmp, dir.join(&last.id)))
        .is_err()
    {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Sandbox `id`'s kept end, if there is one still young enough.
pub(super) fn read(root: &Path, id: &str) -> Option<State> {
    if !super::is_id(id) {
        return None;
    }
    // Whose it was is not known here: a directory per uid that ended
    // one, a few.
    let path = std::fs::read_dir(root.join(DIR))
        .ok()?
        .flatten()
        .map(|e| e.path().join(id))
        .find(|p| p.is_file())?;
    let young = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| age(t) <= KEEP);
    let st: State = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    (young && st.id == id && st.status == Status::Stopped).then_some(st)
}

/// Remove the records older than [`KEEP`], then the oldest beyond
/// [`MOST`], of every uid; and the records airlock kept before it kept
/// them by uid (files beside the uids' directories).
pub(super) fn prune_in(root: &Path) {
    let dir = root.join(DIR);
    prune(&dir, MOST);
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            prune(&e.path(), MOST);
        }
    }
}

fn prune(dir: &Path, most: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut kept: Vec<(SystemTime, std::path::PathBuf)> = Vec::new();
    for e in entries.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Ok(t) = e.metadata().and_then(|m| m.modified()) else {
            continue;
        };
        if age(t) > KEEP {
            let _ = std::fs::remove_file(e.path());
        } else {
            kept.push((t, e.path()));
        }
    }
    if kept.len() > most {
        kept.sort();
        for (_, p) in &kept[..kept.len() - most] {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn age(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}
