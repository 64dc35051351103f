//! Each caller's process budget (`max_pids_per_caller`): every sandbox of
//! a caller other than root has its cgroups below `airlockd-u<UID>`, whose
//! `pids.max` holds the processes of all of them together. Without it one
//! user's fork loops, spread over many sandboxes each within `max_pids`,
//! could take every process the daemon's service may have, and with them
//! root's creates and execs and the daemon's own threads.
//!
//! The daemon makes that cgroup (so the library, which removes the
//! parents it made itself, never removes it) and writes its limit before
//! every create: one removed or changed meanwhile is made and limited
//! again, never left to a sandbox unlimited. Empty ones go when the
//! daemon stops.

use airlock::cgroup::Layout;
use std::io;
use std::path::{Path, PathBuf};

/// The cgroup a caller's sandboxes nest in, relative to the daemon's.
pub fn name(uid: u32) -> String {
    format!("airlockd-u{uid}")
}

/// Make `uid`'s budget cgroup with `max` processes and return the
/// cgroup a sandbox of theirs nests in (`Context::cgroup_nest`). Made in
/// every hierarchy (the sandbox's cgroups nest there in each), so that
/// the library, which removes the parents it made, never makes or
/// removes it. The error says why, for the caller.
pub fn prepare(layout: &Layout, uid: u32, max: u64) -> Result<String, String> {
    let budget = name(uid);
    let dir = budget_dir(layout, &budget)?;
    let others = layout
        .v2
        .iter()
        .chain(layout.v1.values())
        .map(|h| h.own_dir().join(&budget));
    for d in std::iter::once(dir.clone()).chain(others) {
        match std::fs::create_dir(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot make {}: {e}", d.display())),
        }
    }
    std::fs::write(dir.join("pids.max"), max.to_string())
        .map_err(|e| format!("cannot limit {}: {e}", dir.join("pids.max").display()))?;
    Ok(budget)
}

/// Whether this daemon can keep a process budget at all, for its start:
/// a pids controller it can give its callers' cgroups.
pub fn usable(layout: &Layout) -> Result<(), String> {
    budget_dir(layout, "probe").map(drop)
}

/// Where the budget cgroup goes: the pids hierarchy's (v1), or the v2
/// one's, with the pids controller given to the daemon's children there.
fn budget_dir(layout: &Layout, budget: &str) -> Result<PathBuf, String> {
    if let Some(h) = layout.v1.get("pids") {
        return Ok(h.own_dir().join(budget));
    }
    let v2 = layout
        .v2
        .as_ref()
        .filter(|_| layout.v2_controllers.iter().any(|c| c == "pids"))
        .ok_or("this host has no pids controller the daemon can use")?;
    let own = v2.own_dir();
    give_pids(&own).map_err(|e| {
        format!(
            "cannot give the pids controller to the cgroups below {} ({e}): on cgroup v2 a cgroup that holds processes cannot; set cgroup_parent to one that holds none",
            own.display()
        )
    })?;
    Ok(own.join(budget))
}

/// `+pids` in `dir`'s subtree control, unless it is there.
fn give_pids(dir: &Path) -> io::Result<()> {
    let control = dir.join("cgroup.subtree_control");
    if std::fs::read_to_string(&control)?
        .split_whitespace()
        .any(|c| c == "pids")
    {
        return Ok(());
    }
    std::fs::write(control, "+pids")
}

/// Remove the budget cgroups of `uids` that no sandbox is in any more, in
/// every hierarchy (the library made their namesakes in the others).
pub fn remove_empty(layout: &Layout, uids: impl Iterator<Item = u32>) {
    for uid in uids {
        for h in layout.v2.iter().chain(layout.v1.values()) {
            // Busy: sandboxes still live there (they outlive us).
            let _ = std::fs::remove_dir(h.own_dir().join(name(uid)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock::cgroup::Hierarchy;

    fn v2_layout(dir: &Path, controllers: &[&str]) -> Layout {
        Layout {
            v2: Some(Hierarchy {
                mount: dir.to_path_buf(),
                own: "/daemon".into(),
                root: "/".into(),
            }),
            v2_controllers: controllers.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        }
    }

    /// On cgroup v2 the daemon gives its children the pids controller,
    /// then limits the caller's cgroup; without a pids controller a
    /// budget cannot be kept, and that is an error, not a budget skipped.
    #[test]
    fn a_v2_budget_gets_the_pids_controller_first() {
        let t = tempfile::tempdir().unwrap();
        let own = t.path().join("daemon");
        std::fs::create_dir(&own).unwrap();
        std::fs::write(own.join("cgroup.subtree_control"), "memory").unwrap();
        let l = v2_layout(t.path(), &["memory", "pids"]);
        assert!(usable(&l).is_ok());
        let nest = prepare(&l, 1000, 50).unwrap();
        assert_eq!(nest, "airlockd-u1000");
        assert_eq!(
            std::fs::read_to_string(own.join("cgroup.subtree_control")).unwrap(),
            "+pids"
        );
        assert_eq!(
            std::fs::read_to_string(own.join("airlockd-u1000/pids.max")).unwrap(),
            "50"
        );
        let e = prepare(&v2_layout(t.path(), &["memory"]), 1000, 50).unwrap_err();
        assert!(e.contains("no pids controller"), "{e}");
        assert!(usable(&v2_layout(t.path(), &["memory"])).is_err());
        remove_empty(&l, [1000].into_iter());
        // Not empty of files here (a real cgroup's files do not count).
        assert!(own.join("airlockd-u1000").exists());
    }
}
