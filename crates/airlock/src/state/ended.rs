//! The end of a detached sandbox that removed itself as it ended (`run -d
//! --rm`), kept in the state root's `.ended` for a while, so that whoever
//! was waiting on it or attached to it when it went still learns how it
//! ended. The record is the sandbox's last state cut to what an end says
//! (no spec: a spec may be a megabyte, and the environment it holds has
//! no business outliving the sandbox). At most [`MOST`] are kept, none
//! longer than [`KEEP`] (podman keeps a removed container's exit code for
//! five minutes too).

use super::{State, Status};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

const DIR: &str = ".ended";

/// How long a record is kept.
const KEEP: Duration = Duration::from_secs(300);

/// How many records are kept at most: a caller ending sandboxes fast
/// must not fill the state root's filesystem (a tmpfs: memory).
const MOST: usize = 256;

/// Keep `last`, sandbox `id`'s final state, as its end. Best effort:
/// without it, a waiter hears that the status went with the sandbox.
pub(super) fn keep(root: &Path, last: &State) {
    let dir = root.join(DIR);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => return,
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
    let path = root.join(DIR).join(id);
    let young = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| age(t) <= KEEP);
    let st: State = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    (young && st.id == id && st.status == Status::Stopped).then_some(st)
}

/// Remove the records older than [`KEEP`], then the oldest beyond `most`.
pub(super) fn prune_in(root: &Path) {
    prune(&root.join(DIR), MOST);
}

fn prune(dir: &Path, most: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut kept: Vec<(SystemTime, std::path::PathBuf)> = Vec::new();
    for e in entries.flatten() {
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
