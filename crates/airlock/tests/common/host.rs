//! Host-side helpers every test crate of the workspace shares (the CLI's
//! tests include this file): temporary directories, the host's mount
//! table, processes and cgroups, so that "nothing was left behind" means
//! the same everywhere.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Skip a test that needs root, saying so where the test output shows it.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::common::is_root() {
            eprintln!("SKIPPED: this test needs root (CI runs it as root)");
            return;
        }
    };
}

/// A temporary directory the test user can use too.
pub fn tempdir() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("airlock-test-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// A temporary directory anyone may write, so a sandbox's root (an
/// unprivileged host id) can write through a bind of it.
pub fn shared_dir() -> tempfile::TempDir {
    let d = tempdir();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}

/// Held by a test while it compares the host's mount table, or while it
/// has mounted something on the host itself, so the two never overlap.
pub fn mount_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The host's mount table, to show a failed start left no mount behind.
pub fn host_mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Wait until `f` holds, for up to `secs` seconds.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    f()
}

/// The names of the airlock cgroups (`airlock-<id>`) that any of `pids`
/// is in, from their /proc/PID/cgroup.
pub fn cgroup_names_of(pids: &[i32]) -> Vec<String> {
    let mut names: Vec<String> = pids
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/cgroup")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.rsplit('/').next())
                .filter(|n| n.starts_with("airlock-"))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Directories named airlock-* under the caller's cgroups, on every hierarchy.
pub fn leftover_cgroups() -> Vec<String> {
    let layout = airlock::cgroup::Layout::detect().unwrap();
    let mut dirs: Vec<std::path::PathBuf> = layout
        .v1
        .values()
        .map(|h| h.mount.join(h.own.trim_start_matches('/')))
        .collect();
    if let Some(h) = &layout.v2 {
        dirs.push(h.mount.join(h.own.trim_start_matches('/')));
    }
    let mut found = Vec::new();
    for d in dirs {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("airlock-") {
                found.push(format!("{}/{name}", d.display()));
            }
        }
    }
    found
}

/// No airlock cgroup beyond those in `before` stays: other tests'
/// sandboxes come and go meanwhile (each may have a cgroup for its
/// limits), but one a refused start left would stay.
pub fn assert_no_cgroup_left(before: &[String]) {
    let new = || -> Vec<String> {
        leftover_cgroups()
            .into_iter()
            .filter(|c| !before.contains(c))
            .collect()
    };
    assert!(
        wait_until(10, || new().is_empty()),
        "left behind: {:?}",
        new()
    );
}

/// The sandbox directories in a state root.
pub fn sandbox_dirs(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                // `.ended` keeps the last states of sandboxes already gone.
                .filter(|p| p.is_dir() && !p.ends_with(".names") && !p.ends_with(".ended"))
                .chain(indexed_names(root))
                .collect()
        })
        .unwrap_or_default()
}

/// The state root's name index entries (`.names/NAME`): a sandbox that
/// is gone must have taken its name with it.
fn indexed_names(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root.join(".names"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}
