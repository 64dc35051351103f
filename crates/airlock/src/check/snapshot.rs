//! What judging host paths reads of the host at one moment, once for
//! all of a spec's sources: the mount table, the identities of the
//! directories the rules name, and the unix sockets bound in the
//! caller's network namespace (a bind that exposes one hands over
//! whoever listens there). [`super::Host::probe`] takes one; the runner
//! takes another to judge each opened source again.

use super::host::{mount_table, nested_mounts, NestedMount};
use super::paths::{normalize, within, Landmarks};
use super::unix_diag::Listed;

/// What judging host paths reads of the host once: its mount table and
/// the identities of the directories the rules name (the caller's home
/// among them).
pub struct Snapshot {
    pub table: String,
    pub marks: Landmarks,
    /// The unix sockets bound in this network namespace, read on first
    /// use (see [`bound_unix_sockets`]).
    bound: std::sync::OnceLock<Vec<Listed>>,
    /// Directories above listed sockets, by path: whether each is a
    /// symbolic link (see [`Snapshot::through_a_link`]).
    links: std::sync::Mutex<std::collections::HashMap<String, bool>>,
    /// The sources the runner's recheck let through, as (path named,
    /// path opened, its landmark name): a source bound at N places is
    /// judged once, not once a mount (each recheck judges every mount of
    /// the source, N × N: 10 s for 1000 binds of one directory).
    passed: std::sync::Mutex<std::collections::HashSet<(String, String, String)>>,
}

impl Snapshot {
    pub fn take(home: Option<&str>) -> Snapshot {
        Snapshot {
            table: mount_table(),
            marks: Landmarks::probe(home),
            bound: Default::default(),
            links: Default::default(),
            passed: Default::default(),
        }
    }

    /// Did a recheck already let `key` through (see `passed`)?
    pub(super) fn passed(&self, key: &(String, String, String)) -> bool {
        self.passed.lock().is_ok_and(|p| p.contains(key))
    }

    /// Remember that a recheck let `key` through.
    pub(super) fn pass(&self, key: (String, String, String)) {
        if let Ok(mut p) = self.passed.lock() {
            p.insert(key);
        }
    }

    /// The unix sockets `canonical` is or holds: its direct entries, and
    /// any socket bound in this network namespace below it, however deep
    /// (`--ro-bind /tmp` holds /tmp/ssh-XXXX/agent.N), by the path it was
    /// bound at or through a symbolic link.
    pub fn sockets(&self, canonical: &str) -> Vec<String> {
        let mut found = sockets_at(canonical);
        let bound = self.bound.get_or_init(bound_unix_sockets);
        // Bound through a link elsewhere (`/var/run` → `/run`: dockerd's
        // containerd listens at /var/run/docker/containerd/containerd.sock,
        // which no bind of /run is lexically above): looked for only
        // among the sockets on a filesystem the directory shows, whose
        // paths hold a link. A daemon's host lists a socket per sandbox,
        // and resolving each would cost every start as many lookups.
        let mut elsewhere = bound
            .iter()
            .filter(|s| !within(&s.path, canonical))
            .peekable();
        if elsewhere.peek().is_some() && std::fs::metadata(canonical).is_ok_and(|m| m.is_dir()) {
            let shown = devices_shown(&self.table, canonical);
            let elsewhere = elsewhere.filter(|s| {
                s.dev.as_ref().is_none_or(|d| shown.contains(&d.as_str()))
                    && self.through_a_link(&s.path)
            });
            for s in elsewhere {
                if let Ok(real) = std::fs::canonicalize(&s.path) {
                    add_if_socket_within(&mut found, real, canonical);
                }
            }
        }
        // By the path it was bound at, then checked where it leads.
        for s in bound
            .iter()
            .map(|s| &s.path)
            .filter(|s| within(s, canonical))
        {
            let Ok(real) = std::fs::canonicalize(s) else {
                // Not at the name it was bound at any more: renamed or
                // linked elsewhere since (OpenSSH's ControlMaster binds
                // NAME.RANDOM, links it to NAME and unlinks the first).
                // The sockets of its directory stand for it.
                let dir = std::path::Path::new(s).parent().map(std::fs::canonicalize);
                if let Some(Ok(dir)) = dir {
                    let dir = dir.to_string_lossy().into_owned();
                    if within(&dir, canonical) {
                        for real in sockets_at(&dir) {
                            if !found.contains(&real) {
                                found.push(real);
                            }
                        }
                    }
                }
                continue;
            };
            add_if_socket_within(&mut found, real, canonical);
        }
        found
    }

    /// What a host path (canonical) is: its name by the object it reaches
    /// (see [`Landmarks::name`]), the mounts a recursive bind of it carries
    /// (found by the path itself: a bind mount of `/` elsewhere carries
    /// none of /'s submounts), and the sockets it is or holds.
    pub fn look_at(&self, canonical: &str) -> (String, Vec<NestedMount>, Vec<String>) {
        let named = self.marks.name(canonical);
        let mut sockets = self.sockets(canonical);
        // Named otherwise (a bind mount of /data/home at /home): a socket
        // is listed by the path it was bound at, which may be either.
        if named != canonical {
            for s in self.sockets(&named) {
                if !sockets.contains(&s) {
                    sockets.push(s);
                }
            }
        }
        (named, nested_mounts(&self.table, canonical), sockets)
    }
}

/// The unix sockets bound in this network namespace that a process could
/// connect or send to ([`super::unix_diag`]; what `/proc/net/unix` lists
/// with an absolute path where the kernel has no `unix_diag`, with no
/// device). One bound in another mount namespace, or gone since, is no
/// socket here and is dropped when looked at.
fn bound_unix_sockets() -> Vec<Listed> {
    let mut found = super::unix_diag::reachable_sockets().unwrap_or_else(|_| {
        let listed = listed_in_proc().into_iter();
        listed.map(|path| Listed { path, dev: None }).collect()
    });
    for s in &mut found {
        s.path = normalize(&s.path);
    }
    found.sort();
    found.dedup();
    found
}

/// Add `real` (where a listed socket's path leads) to `found` if it is a
/// socket inside `canonical` and not there yet.
fn add_if_socket_within(found: &mut Vec<String>, real: std::path::PathBuf, canonical: &str) {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::symlink_metadata(&real).is_ok_and(|m| m.file_type().is_socket());
    let real = real.to_string_lossy().into_owned();
    if is_socket && within(&real, canonical) && !found.contains(&real) {
        found.push(real);
    }
}

/// The devices (`MAJ:MIN`) of the filesystems a bind of `path` shows:
/// the mount it lies on and every mount below it.
fn devices_shown<'t>(table: &'t str, path: &str) -> Vec<&'t str> {
    let all: Vec<_> = crate::mountinfo::entries(table).collect();
    let below = all
        .iter()
        .filter(|e| within(&crate::mountinfo::unescape(e.mount_point), path));
    let mut shown: Vec<&'t str> = below.map(|e| e.dev).collect();
    shown.extend(super::host::mount_on(&all, path).map(|e| e.dev));
    shown
}

impl Snapshot {
    /// Is a directory above the socket at `path` a symbolic link? Each
    /// directory is looked at once a snapshot: sockets share most of
    /// theirs.
    fn through_a_link(&self, path: &str) -> bool {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let mut dir = String::new();
        for c in parts.iter().take(parts.len().saturating_sub(1)) {
            dir.push('/');
            dir.push_str(c);
            let link = *links.entry(dir.clone()).or_insert_with(|| {
                std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink())
            });
            if link {
                return true;
            }
        }
        false
    }
}

/// Every socket `/proc/net/unix` lists with an absolute path (abstract
/// ones begin with `@`).
fn listed_in_proc() -> Vec<String> {
    // Lossy: one path that is not UTF-8 must not empty the whole list.
    let Ok(bytes) = std::fs::read("/proc/net/unix") else {
        return Vec::new();
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .skip(1)
        .filter_map(|line| {
            // Seven fields, then the path, which may hold spaces.
            let inode = line.split_ascii_whitespace().nth(6)?;
            let end = inode.as_ptr() as usize - line.as_ptr() as usize + inode.len();
            let path = line[end..].trim_start();
            path.starts_with('/').then(|| path.to_string())
        })
        .collect()
}

/// The unix sockets `path` is, or holds as direct entries (a bounded look:
/// a bind of /tmp/.X11-unix or /run/user/N, not a walk of a tree).
pub(super) fn sockets_at(path: &str) -> Vec<String> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Vec::new();
    };
    if meta.file_type().is_socket() {
        return vec![path.to_string()];
    }
    if !meta.is_dir() {
        return Vec::new();
    }
    // What root listed is not a caller's to read (see `as_caller`).
    let may_keep = !super::as_caller::active();
    if let Some(kept) = listed::get(&meta).filter(|_| may_keep) {
        return kept;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    // The entry's type comes with it (d_type): no stat per entry.
    let found: Vec<String> = entries
        .take(4096)
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
        .map(|e| e.path().to_string_lossy().into_owned())
        .collect();
    if may_keep {
        listed::keep(&meta, &found);
    }
    found
}

/// The sockets found in each directory, kept while the directory is
/// unchanged: airlockd judges the same bind sources (the default view's
/// /etc and /usr) for every sandbox, and listing an ext4 /etc of 150
/// entries took 70 µs. Adding, removing or renaming an entry changes the
/// directory's ctime, which nobody can set; a listing is kept only when
/// that ctime was over a second old, so that a change in the same tick of
/// a coarse clock cannot leave it unchanged.
mod listed {
    use std::collections::HashMap;
    use std::fs::Metadata;
    use std::os::unix::fs::MetadataExt;
    use std::sync::Mutex;

    type Stamp = (i64, i64, i64, i64, u64);
    /// By (device, inode): the stamp and the sockets found.
    type Listings = HashMap<(u64, u64), (Stamp, Vec<String>)>;
    static KEPT: Mutex<Option<Listings>> = Mutex::new(None);
    const MOST: usize = 64;

    fn stamp(m: &Metadata) -> Stamp {
        (
            m.ctime(),
            m.ctime_nsec(),
            m.mtime(),
            m.mtime_nsec(),
            m.size(),
        )
    }

    pub fn get(m: &Metadata) -> Option<Vec<String>> {
        let kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
        let (s, found) = kept.as_ref()?.get(&(m.dev(), m.ino()))?;
        (*s == stamp(m)).then(|| found.clone())
    }

    pub fn keep(m: &Metadata, found: &[String]) {
        let changed = m.ctime() as f64 + m.ctime_nsec() as f64 / 1e9;
        if changed > crate::state::now() - 1.0 {
            return;
        }
        let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
        let map = kept.get_or_insert_with(HashMap::new);
        if map.len() >= MOST {
            map.clear();
        }
        map.insert((m.dev(), m.ino()), (stamp(m), found.to_vec()));
    }
}
