//! The last state of a detached sandbox that removed itself as it ended
//! (`run -d --rm`), kept in the state root's `.ended` for a while, so that
//! whoever was waiting on it or attached to it still learns how it ended
//! (podman keeps a removed container's exit code likewise). Kept as a hard
//! link to the final `state.json`, so keeping it writes nothing; a record
//! older than [`KEEP`] goes when the next one is kept.

use super::State;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

const DIR: &str = ".ended";

/// How long a record is kept (podman's is five minutes too).
const KEEP: Duration = Duration::from_secs(300);

/// Keep `state` (a sandbox's final `state.json`) as sandbox `id`'s end.
/// Best effort: without it, a waiter hears that the status went with the
/// sandbox, as before.
pub(super) fn keep(root: &Path, id: &str, state: &Path) {
    let dir = root.join(DIR);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => return,
    }
    prune(&dir);
    let _ = std::fs::hard_link(state, dir.join(id));
}

/// Sandbox `id`'s kept end, if there is one.
pub(super) fn read(root: &Path, id: &str) -> Option<State> {
    if !super::is_id(id) {
        return None;
    }
    let text = std::fs::read(root.join(DIR).join(id)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Remove the records older than [`KEEP`] (by the time the sandbox's
/// state was last written: its end).
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > KEEP));
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
