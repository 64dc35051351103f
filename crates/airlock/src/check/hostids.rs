//! Which host ids are privileged: the facts the identity rules need,
//! gathered by [`HostIds::probe`], and the pure rule that reads them.
//!
//! A host **group** is privileged when it is
//!
//! 1. gid 0, root's group;
//! 2. in the host's system range, `1 ..< GID_MIN` (from `/etc/login.defs`,
//!    1000 when unset), except the kernel's overflow gid (`nogroup`, which
//!    owns nothing by design). System groups exist to gate system
//!    facilities — `shadow`, `disk`, `adm`, `staff`, `docker`, `kvm` — and
//!    what each one gates is open-ended (files anywhere, sockets made later,
//!    sudoers and polkit rules naming it), so none is presumed harmless.
//!    Membership lists do not tell them apart: `shadow` and `disk` usually
//!    have no listed members at all; or
//! 3. whatever its number, the group of a host object in a system location
//!    (`/etc`, device nodes and sockets under `/dev`, `/run`, `/var/log`,
//!    `/var/spool`, `/var/mail`, `/usr/local`, three levels deep) whose
//!    group bits grant something the "other" bits do not: the group is a
//!    key other users lack (`/etc/shadow` 0640 root:shadow, a 0660
//!    root:docker socket, a 0660 root:disk block device).
//!
//! A host **uid** is privileged when it is 0, in `1 ..< UID_MIN` other than
//! the overflow uid (a system account: it runs a service and owns its
//! data), or owns an object in the same system locations. Per-session
//! objects that logind and getty hand to whoever logged in — `/run/user`,
//! `/dev/pts`, terminal devices —, anything inside a directory every user
//! may write (`/dev/shm`) and podman's per-container run state (what it
//! chowns there is a container's) say nothing about privilege and are
//! skipped.
//!
//! Any host id is privileged, too, when it lies in **another user's
//! subordinate range** (`/etc/subuid`, `/etc/subgid`): that user's own
//! user namespaces (podman's, through newuidmap) hold it, so a sandbox
//! mapped onto it shares its ids with a process the user controls — one
//! that can signal and trace the workload and own what it writes. Only
//! ranges of ordinary accounts (uid UID_MIN and up, in /etc/passwd or by
//! number; not the name service's, LDAP's or SSSD's: the CLI is linked
//! statically against glibc, whose getpwnam cannot load its modules
//! there and crashes) count: those of engines' system users or of no account at all
//! (`dockremap`, podman's `containers`) are pools that an engine maps its
//! containers from, with airlock as their runtime. The caller's own
//! ranges are its to map (newuidmap allows a rootless caller no other).
//!
//! An id **map** is privileged, too, where it covers another login
//! account's own id: the uid of an account of `/etc/passwd` from UID_MIN
//! up, or the gid of such an account's primary group (a user private
//! group), other than the caller's. That user's processes have it: a
//! sandbox mapped onto it would be theirs to signal and trace, its user
//! namespace (owned by the map's root) theirs to enter with every
//! capability, and their files (group-readable ones too) the
//! workload's. (A workload that runs as such an id in the host's user
//! namespace, as `runuser` would run it, is judged by the rules above
//! only: the user could run it so themselves.)
//!
//! Names come from `/etc/passwd` and `/etc/group` and are only shown.
//! Without a probe ([`HostIds::default`]) rules 1 and 2 still hold with the
//! usual minimum of 1000, so an unprobed host fails closed.

use serde::{Deserialize, Serialize};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Facts about who holds privilege on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostIds {
    /// First uid and gid of ordinary accounts (`UID_MIN`, `GID_MIN`).
    pub uid_min: u32,
    pub gid_min: u32,
    /// The kernel's overflow ids (`nobody`, `nogroup`).
    pub overflow_uid: u32,
    pub overflow_gid: u32,
    /// Names from `/etc/passwd` and `/etc/group`, for messages.
    pub user_names: IdNotes,
    pub group_names: IdNotes,
    /// Non-root owners of system objects: uid → one object it owns.
    pub owners: IdNotes,
    /// Groups that are a key to a system object: gid → one such object.
    pub group_keys: IdNotes,
    /// Other users' subordinate ranges (`/etc/subuid`, `/etc/subgid`).
    pub sub_uids: Vec<SubRange>,
    pub sub_gids: Vec<SubRange>,
    /// Other login accounts' own uids (uid → name) and their primary
    /// groups (gid → the account's name).
    pub accounts: IdNotes,
    pub account_groups: IdNotes,
    /// A caller other than root: its own uid and gid, which it may map
    /// whatever they own (a mail spool, a primary group below GID_MIN):
    /// the sandbox gets nothing its caller lacks.
    pub caller: Option<(u32, u32)>,
}

/// `owner:start:count` from `/etc/subuid` or `/etc/subgid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubRange {
    pub owner: String,
    pub start: u32,
    pub count: u32,
}

impl SubRange {
    /// The first id of `start..end` in this range.
    fn first_in(&self, start: u64, end: u64) -> Option<u64> {
        let first = start.max(u64::from(self.start));
        (first < end.min(u64::from(self.start) + u64::from(self.count))).then_some(first)
    }
}

/// Ids with one note each (a name, a path), in id order. A list rather
/// than a map: the plan carries it as JSON, whose keys are strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdNotes(Vec<(u32, String)>);

impl IdNotes {
    pub fn get(&self, id: u32) -> Option<&str> {
        self.0
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// Note `id` unless it has a note already.
    pub fn insert(&mut self, id: u32, note: impl Into<String>) {
        if let Err(i) = self.0.binary_search_by_key(&id, |(i, _)| *i) {
            self.0.insert(i, (id, note.into()));
        }
    }

    /// The first noted id in `start..end`.
    fn first_in(&self, start: u64, end: u64) -> Option<u64> {
        self.0
            .iter()
            .map(|(id, _)| u64::from(*id))
            .find(|id| (start..end).contains(id))
    }
}

impl Default for HostIds {
    fn default() -> Self {
        HostIds {
            uid_min: 1000,
            gid_min: 1000,
            overflow_uid: 65534,
            overflow_gid: 65534,
            user_names: IdNotes::default(),
            group_names: IdNotes::default(),
            owners: IdNotes::default(),
            group_keys: IdNotes::default(),
            sub_uids: Vec::new(),
            sub_gids: Vec::new(),
            accounts: IdNotes::default(),
            account_groups: IdNotes::default(),
            caller: None,
        }
    }
}

/// Login accounts of a passwd text (uid `uid_min` and up, not the
/// overflow uid), other than the caller's, with their primary groups
/// other than the caller's gid: uid → name, gid → name.
pub fn parse_accounts(
    passwd: &str,
    (uid_min, gid_min): (u32, u32),
    overflow_uid: u32,
    caller: (u32, u32),
) -> (IdNotes, IdNotes) {
    let (mut uids, mut gids) = (IdNotes::default(), IdNotes::default());
    for l in passwd.lines() {
        let f: Vec<&str> = l.split(':').collect();
        let id = |i: usize| f.get(i).and_then(|s| s.parse::<u32>().ok());
        let (Some(name), Some(uid), Some(gid)) = (f.first(), id(2), id(3)) else {
            continue;
        };
        if uid < uid_min || uid == overflow_uid || uid == caller.0 {
            continue;
        }
        uids.insert(uid, *name);
        if gid >= gid_min && gid != caller.1 {
            gids.insert(gid, *name);
        }
    }
    (uids, gids)
}

/// Where system objects live (each scanned three levels deep).
const SYSTEM_LOCATIONS: &[&str] = &[
    "/etc",
    "/dev",
    "/run",
    "/var/run",
    "/var/log",
    "/var/spool",
    "/var/mail",
    "/usr/local",
];
/// Per-session places whose owners are whoever logged in.
const SESSION_PLACES: &[&str] = &["/run/user", "/dev/pts"];
/// podman's per-container run state (its default run root's storage):
/// podman chowns its overlay directory there to the root of a container
/// with `--uidmap` while it prepares it, so an owner found there is a
/// container's range, not a holder of the host's privilege. Nothing there
/// gates anything (podman's API socket is /run/podman's).
const ENGINE_PLACES: &[&str] = &["/run/containers/storage"];

/// A place whose owners say nothing about privilege: skipped by the scan.
fn says_nothing(path: &Path) -> bool {
    SESSION_PLACES
        .iter()
        .chain(ENGINE_PLACES)
        .any(|s| path == Path::new(s))
}

const DEPTH: usize = 3;
/// A bound on the scan, so a huge /etc cannot stall every start.
const MAX_ENTRIES: usize = 50_000;

/// `KEY value` from a login.defs-style text.
fn login_def(text: &str, key: &str) -> Option<u32> {
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some(key)).then(|| w.next()?.parse().ok())?
    })
}

/// `name:x:id:...` lines (passwd or group) → id → name.
pub fn parse_id_file(text: &str) -> IdNotes {
    let mut out = IdNotes::default();
    for l in text.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if let (Some(name), Some(id)) = (f.first(), f.get(2).and_then(|s| s.parse().ok())) {
            out.insert(id, *name);
        }
    }
    out
}

/// `/etc/subuid`-style lines (`name-or-uid:start:count`, `#` comments)
/// of ordinary accounts (`uid_min` and up: named in `users`, or by
/// number) other than `caller`.
pub fn parse_subid_file(text: &str, users: &IdNotes, caller: u32, uid_min: u32) -> Vec<SubRange> {
    let uid_of = |owner: &str| -> Option<u32> {
        owner
            .parse()
            .ok()
            .or_else(|| users.0.iter().find(|(_, n)| n == owner).map(|(id, _)| *id))
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let (owner, start, count) = (f.next()?, f.next()?, f.next()?);
            let uid = uid_of(owner)?;
            (uid >= uid_min && uid != caller).then_some(())?;
            Some(SubRange {
                owner: owner.to_string(),
                start: start.trim().parse().ok()?,
                count: count.trim().parse().ok().filter(|c| *c > 0)?,
            })
        })
        .collect()
}

/// Does a mode's group triplet grant something the others triplet lacks?
pub fn group_is_key(mode: u32) -> bool {
    (mode >> 3) & 0o7 & !(mode & 0o7) != 0
}

/// Terminals (tty, console, vcs, pts majors) belong to whoever is logged
/// in on them.
fn is_terminal(ft: &std::fs::FileType, rdev: u64) -> bool {
    let major = rustix::fs::major(rdev);
    ft.is_char_device() && matches!(major, 4 | 5 | 7 | 136..=143)
}

impl HostIds {
    /// Read the facts from this host, for a sandbox `caller` starts.
    pub fn probe(caller: u32, caller_gid: u32) -> HostIds {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let defs = read("/etc/login.defs");
        let overflow = |p: &str| read(p).trim().parse().unwrap_or(65534);
        let mut ids = HostIds {
            uid_min: login_def(&defs, "UID_MIN").unwrap_or(1000),
            gid_min: login_def(&defs, "GID_MIN").unwrap_or(1000),
            overflow_uid: overflow("/proc/sys/kernel/overflowuid"),
            overflow_gid: overflow("/proc/sys/kernel/overflowgid"),
            user_names: parse_id_file(&read("/etc/passwd")),
            group_names: parse_id_file(&read("/etc/group")),
            ..Default::default()
        };
        let (users, min) = (&ids.user_names, ids.uid_min);
        ids.sub_uids = parse_subid_file(&read("/etc/subuid"), users, caller, min);
        ids.sub_gids = parse_subid_file(&read("/etc/subgid"), users, caller, min);
        (ids.accounts, ids.account_groups) = parse_accounts(
            &read("/etc/passwd"),
            (min, ids.gid_min),
            ids.overflow_uid,
            (caller, caller_gid),
        );
        ids.caller = (caller != 0).then_some((caller, caller_gid));
        let mut seen = std::collections::HashSet::new();
        let mut budget = MAX_ENTRIES;
        for loc in SYSTEM_LOCATIONS {
            // /var/run is usually /run: scan each place once.
            let Ok(real) = std::fs::canonicalize(loc) else {
                continue;
            };
            if seen.insert(real.clone()) {
                ids.scan(&real, DEPTH, &mut budget);
            }
        }
        ids
    }

    fn scan(&mut self, dir: &Path, depth: usize, budget: &mut usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let in_dev = dir.starts_with("/dev");
        for e in entries.flatten() {
            if *budget == 0 {
                return;
            }
            *budget -= 1;
            let path = e.path();
            let Ok(md) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let ft = md.file_type();
            if ft.is_symlink() || says_nothing(&path) {
                continue;
            }
            // In /dev only devices and sockets are objects of the host;
            // its directories are walked.
            let object = !in_dev || ft.is_block_device() || ft.is_char_device() || ft.is_socket();
            let shown = path.to_string_lossy();
            if object {
                if md.uid() != 0 && !is_terminal(&ft, md.rdev()) {
                    self.owners.insert(md.uid(), shown.as_ref());
                }
                if md.gid() != 0 && group_is_key(md.mode()) {
                    self.group_keys.insert(md.gid(), shown.as_ref());
                }
            }
            // A directory anyone may write holds anyone's files.
            if ft.is_dir() && depth > 1 && md.mode() & 0o002 == 0 {
                self.scan(&path, depth - 1, budget);
            }
        }
    }

    fn user(&self, uid: u32) -> String {
        match self.user_names.get(uid) {
            Some(n) => format!("uid {uid} ({n})"),
            None => format!("uid {uid}"),
        }
    }

    fn group(&self, gid: u32) -> String {
        match self.group_names.get(gid) {
            Some(n) => format!("gid {gid} ({n})"),
            None => format!("gid {gid}"),
        }
    }

    /// Why host gid `gid` is privileged, or `None` when it is not.
    pub fn privileged_gid(&self, gid: u32) -> Option<String> {
        let who = self.group(gid);
        if gid == 0 {
            return Some(format!("{who} is the host's root group"));
        }
        if let Some(why) = root_callers_id(gid) {
            return Some(format!("{who} {why}"));
        }
        if let Some(r) = self
            .sub_gids
            .iter()
            .find(|r| r.first_in(gid.into(), u64::from(gid) + 1).is_some())
        {
            return Some(subordinate(&who, r, "/etc/subgid"));
        }

        if let Some(path) = self.group_keys.get(gid) {
            return Some(format!(
                "{who} is the group of {path}, which grants it what other users lack"
            ));
        }
        (gid < self.gid_min && gid != self.overflow_gid).then(|| {
            format!(
                "{who} is a system group of the host (below GID_MIN {})",
                self.gid_min
            )
        })
    }

    /// Why host uid `uid` is privileged, or `None` when it is not.
    pub fn privileged_uid(&self, uid: u32) -> Option<String> {
        let who = self.user(uid);
        if uid == 0 {
            return Some(format!("{who} is the host's root"));
        }
        if let Some(why) = root_callers_id(uid) {
            return Some(format!("{who} {why}"));
        }
        if let Some(r) = self
            .sub_uids
            .iter()
            .find(|r| r.first_in(uid.into(), u64::from(uid) + 1).is_some())
        {
            return Some(subordinate(&who, r, "/etc/subuid"));
        }

        if let Some(path) = self.owners.get(uid) {
            return Some(format!("{who} owns {path}"));
        }
        (uid < self.uid_min && uid != self.overflow_uid).then(|| {
            format!(
                "{who} is a system account of the host (below UID_MIN {})",
                self.uid_min
            )
        })
    }

    /// The first privileged id other than 0 among `count` host ids from
    /// `start`, with why; a caller other than root's own id is not one.
    pub fn privileged_in(&self, gids: bool, start: u32, count: u32) -> Option<(u32, String)> {
        let own = self.caller.map(|(uid, gid)| if gids { gid } else { uid });
        let end = u64::from(start) + u64::from(count);
        match own.filter(|&id| (u64::from(start)..end).contains(&u64::from(id))) {
            Some(id) => self
                .privileged_among(gids, u64::from(start), u64::from(id))
                .or_else(|| self.privileged_among(gids, u64::from(id) + 1, end)),
            None => self.privileged_among(gids, u64::from(start), end),
        }
    }

    /// The first privileged id other than 0 in `start..end`, with why.
    fn privileged_among(&self, gids: bool, start: u64, end: u64) -> Option<(u32, String)> {
        if start >= end {
            return None;
        }
        let start = start as u32;
        let (min, overflow, keys, subs, accounts) = if gids {
            (
                self.gid_min,
                self.overflow_gid,
                &self.group_keys,
                &self.sub_gids,
                &self.account_groups,
            )
        } else {
            (
                self.uid_min,
                self.overflow_uid,
                &self.owners,
                &self.sub_uids,
                &self.accounts,
            )
        };
        let in_range = (u64::from(start.max(1))..end.min(u64::from(min)))
            .find(|&id| id != u64::from(overflow));
        let keyed = keys.first_in(u64::from(start.max(1)), end);
        let account = accounts.first_in(u64::from(start.max(1)), end);
        // Other sandboxes' ids (a root caller's range, and the uid that
        // owns their user namespaces just below it).
        let root_callers = {
            use crate::plan::{ROOT_CALLER_COUNT, ROOT_CALLER_OWNER};
            let first = u64::from(ROOT_CALLER_OWNER).max(u64::from(start));
            (first < end.min(u64::from(ROOT_CALLER_OWNER) + 1 + u64::from(ROOT_CALLER_COUNT)))
                .then_some(first)
        };
        let subordinate = subs
            .iter()
            .filter_map(|r| r.first_in(u64::from(start.max(1)), end))
            .min();
        let id = in_range
            .into_iter()
            .chain(keyed)
            .chain(account)
            .chain(root_callers)
            .chain(subordinate)
            .min()? as u32;
        let why = match gids {
            true => self.privileged_gid(id).or_else(|| {
                let name = self.account_groups.get(id)?;
                Some(format!(
                    "{} is the primary group of {name}, another login account of the host: its group-readable files would be the workload's",
                    self.group(id)
                ))
            }),
            false => self.privileged_uid(id).or_else(|| {
                self.accounts.get(id)?;
                Some(format!(
                    "{} is another login account of the host: its processes could signal and trace the workload, enter its user namespace and own what it writes",
                    self.user(id)
                ))
            }),
        }?;
        Some((id, why))
    }
}

fn subordinate(who: &str, r: &SubRange, file: &str) -> String {
    format!(
        "{who} is one of {}'s subordinate ids ({file}: {} from {}): their own user namespaces hold it, and can signal, trace and own what has it",
        r.owner, r.count, r.start
    )
}

/// Is `id` one of the host ids a root caller's sandboxes run as? Each of
/// their user namespaces is made by the range's first uid, which the
/// kernel gives every capability in them from outside, and the others are
/// their processes' own: a process on the host with one of them reaches
/// into every such sandbox (its files, its /proc, its signals).
fn root_callers_id(id: u32) -> Option<&'static str> {
    use crate::plan::{ROOT_CALLER_BASE, ROOT_CALLER_COUNT, ROOT_CALLER_OWNER};
    let range =
        u64::from(ROOT_CALLER_BASE)..u64::from(ROOT_CALLER_BASE) + u64::from(ROOT_CALLER_COUNT);
    match u64::from(id) {
        i if i == u64::from(ROOT_CALLER_OWNER) => Some("owns the user namespace of every sandbox a root caller starts, with every capability in them"),
        i if range.contains(&i) => Some("is an id of the sandboxes a root caller starts: their processes and files have it"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ids_root_callers_sandboxes_run_as_are_privileged() {
        use crate::plan::{ROOT_CALLER_BASE, ROOT_CALLER_COUNT};
        let ids = HostIds::default();
        for id in [
            crate::plan::ROOT_CALLER_OWNER,
            ROOT_CALLER_BASE,
            ROOT_CALLER_BASE + 1000,
            ROOT_CALLER_BASE + ROOT_CALLER_COUNT - 1,
        ] {
            assert!(ids.privileged_uid(id).is_some(), "{id}");
            assert!(ids.privileged_gid(id).is_some(), "{id}");
        }
        assert!(ids
            .privileged_uid(ROOT_CALLER_BASE + ROOT_CALLER_COUNT)
            .is_none());
        // So does an explicit map over them, wherever it starts.
        for gids in [false, true] {
            let (id, _) = ids
                .privileged_in(gids, ROOT_CALLER_BASE + 1, 1000)
                .expect("inside the range");
            assert_eq!(id, ROOT_CALLER_BASE + 1);
            let (id, _) = ids
                .privileged_in(gids, ROOT_CALLER_BASE - 10, 100)
                .expect("across its start");
            assert_eq!(id, crate::plan::ROOT_CALLER_OWNER);
            assert!(ids
                .privileged_in(gids, ROOT_CALLER_BASE + ROOT_CALLER_COUNT, 100)
                .is_none());
        }
    }

    #[test]
    fn other_users_subordinate_ids_are_privileged() {
        let users = parse_id_file(
            "me:x:1000:1000::/:/bin/sh\nbob:x:1001:1001::/:/bin/sh\ndockremap:x:120:120::/:/bin/false\n",
        );
        let text = "# ranges\nbob:100000:65536\n\nme:165536:65536\n1002:231072:10\n1000:300000:5\nbad:x:1\nzero:400000:0\ndockremap:500000:65536\ncontainers:600000:65536\n";
        let subs = parse_subid_file(text, &users, 1000, 1000);
        let owners: Vec<&str> = subs.iter().map(|r| r.owner.as_str()).collect();
        // An engine's system user's and no account's are pools its
        // containers are mapped from.
        assert_eq!(
            owners,
            ["bob", "1002"],
            "the caller's own, by name or number, are its"
        );
        let ids = HostIds {
            sub_uids: subs.clone(),
            sub_gids: subs,
            ..HostIds::default()
        };
        for gids in [false, true] {
            let (id, why) = ids.privileged_in(gids, 150_000, 100).expect("in bob's");
            assert_eq!(id, 150_000);
            assert!(why.contains("bob's subordinate ids"), "{why}");
            let (id, _) = ids
                .privileged_in(gids, 99_000, 2000)
                .expect("across its start");
            assert_eq!(id, 100_000);
            assert!(
                ids.privileged_in(gids, 165_536, 65536).is_none(),
                "the caller's own"
            );
            assert!(
                ids.privileged_in(gids, 231_082, 100).is_none(),
                "just past 1002's"
            );
        }
        assert!(ids.privileged_uid(231_081).is_some());
        assert!(ids.privileged_gid(100_000).is_some());
        assert!(ids.privileged_uid(165_536).is_none());
    }

    /// Another login account's uid, and its primary group, are its: the
    /// caller's own, system accounts and `nobody` are not counted here.
    #[test]
    fn other_login_accounts_own_ids_are_privileged() {
        let passwd = "root:x:0:0::/root:/bin/sh\nwww:x:33:33::/:/bin/false\n\
                      me:x:1000:1000::/home/me:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n\
                      carol:x:1002:100::/home/carol:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n";
        let (uids, gids) = parse_accounts(passwd, (1000, 1000), 65534, (1000, 1000));
        assert_eq!(uids.0, [(1001, "bob".into()), (1002, "carol".into())]);
        // carol's primary group is `users` (100), a system group judged
        // as one; only groups from GID_MIN up are an account's own.
        assert_eq!(gids.0, [(1001, "bob".into())]);
        let ids = HostIds {
            accounts: uids,
            account_groups: gids,
            ..HostIds::default()
        };
        let (id, why) = ids.privileged_in(false, 1001, 1).unwrap();
        assert_eq!(id, 1001);
        assert!(why.contains("another login account"), "{why}");
        assert_eq!(ids.privileged_in(false, 1000, 10).unwrap().0, 1001);
        assert!(
            ids.privileged_in(false, 1000, 1).is_none(),
            "the caller's own"
        );
        assert!(ids.privileged_in(false, 1003, 60_000).is_none());
        let (id, why) = ids.privileged_in(true, 1000, 5).unwrap();
        assert_eq!(id, 1001);
        assert!(why.contains("primary group of bob"), "{why}");
        assert!(ids.privileged_in(true, 1002, 5).is_none());
    }

    /// A caller other than root maps its own uid and gid whatever they
    /// own (RHEL's /var/spool/mail/$USER, openSUSE's primary group
    /// `users`, 100): only the ids beside them are judged.
    #[test]
    fn a_callers_own_ids_are_its_to_map() {
        let mut owners = IdNotes::default();
        owners.insert(1000, "/var/spool/mail/me");
        owners.insert(1001, "/var/spool/mail/bob");
        let ids = HostIds {
            owners,
            uid_min: 1000,
            gid_min: 1000,
            caller: Some((1000, 100)),
            ..HostIds::default()
        };
        assert!(ids.privileged_in(false, 1000, 1).is_none());
        assert_eq!(ids.privileged_in(false, 1000, 2).unwrap().0, 1001);
        assert_eq!(ids.privileged_in(false, 999, 2).unwrap().0, 999);
        assert!(ids.privileged_in(true, 100, 1).is_none());
        assert_eq!(ids.privileged_in(true, 99, 3).unwrap().0, 99);
        assert_eq!(ids.privileged_in(true, 100, 2).unwrap().0, 101);
        // Root's own ids are not exempt this way (0 is judged apart).
        let ids = HostIds {
            caller: None,
            ..ids
        };
        assert_eq!(ids.privileged_in(false, 1000, 1).unwrap().0, 1000);
    }

    #[test]
    fn engine_state_is_skipped_but_not_its_sockets() {
        assert!(says_nothing(Path::new("/run/containers/storage")));
        assert!(says_nothing(Path::new("/run/user")));
        // Sockets whose group may be a key stay objects of the host.
        for p in [
            "/run/containers",
            "/run/podman",
            "/run/containerd",
            "/run/containerd/containerd.sock",
            "/run/containers/storage-other",
        ] {
            assert!(!says_nothing(Path::new(p)), "{p}");
        }
    }

    #[test]
    fn parses_the_host_files() {
        let defs = "# comment\nUID_MIN\t\t\t 500\nGID_MIN 600\n#GID_MIN 7\n";
        assert_eq!(login_def(defs, "UID_MIN"), Some(500));
        assert_eq!(login_def(defs, "GID_MIN"), Some(600));
        assert_eq!(login_def(defs, "SYS_UID_MAX"), None);
        let group = "root:x:0:\nshadow:x:42:\nadm:x:4:syslog,me\nbroken\n";
        let g = parse_id_file(group);
        assert_eq!(g.get(42), Some("shadow"));
        assert_eq!(g.get(4), Some("adm"));
        assert_eq!(g.get(7), None);
        assert_eq!(g.0.len(), 3);
    }

    #[test]
    fn a_group_is_a_key_when_it_grants_more_than_others() {
        assert!(group_is_key(0o640)); // /etc/shadow
        assert!(group_is_key(0o660)); // a socket, a disk
        assert!(group_is_key(0o2775)); // /usr/local: group may write
        assert!(group_is_key(0o710)); // /etc/ssl/private
        assert!(!group_is_key(0o644));
        assert!(!group_is_key(0o2755)); // /var/log/journal: same as others
        assert!(!group_is_key(0o600));
    }

    #[test]
    fn travels_in_a_job_to_the_runner() {
        // The runner reads the plan through serde's internally tagged
        // `Job`, which buffers maps with string keys: the ids must survive.
        let mut spec = crate::SandboxSpec::builder().args(["true"]).build();
        spec.namespaces.user = false;
        let ctx = crate::Context::current();
        let mut plan = crate::plan::plan(&spec, &ctx).unwrap_or_else(|_| {
            spec.namespaces.user = true;
            crate::plan::plan(&spec, &ctx).unwrap()
        });
        plan.host.ids = HostIds::probe(0, 0);
        plan.host.ids.group_keys.insert(42, "/etc/shadow");
        let job = crate::plan::Job::Start(Box::new(plan));
        let back: crate::plan::Job =
            serde_json::from_slice(&serde_json::to_vec(&job).unwrap()).unwrap();
        assert_eq!(back, job);
    }

    #[test]
    fn probe_sees_this_hosts_shadow_group() {
        let ids = HostIds::probe(0, 0);
        let shadow = std::fs::metadata("/etc/shadow").ok().map(|m| m.gid());
        if let Some(gid) = shadow.filter(|g| *g != 0) {
            assert!(ids.privileged_gid(gid).is_some(), "{ids:?}");
        }
        assert!(ids.privileged_gid(0).is_some());
        assert!(ids.privileged_gid(ids.overflow_gid).is_none());
    }
}
