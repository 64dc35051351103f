//! The state root: one directory per sandbox that other processes can find,
//! inspect and act on after the process that created it is gone. Every
//! front end (the CLI's lifecycle verbs, later the OCI runtime and the
//! daemon) goes through this one implementation.
//!
//! ```text
//! <root>/                    0700, the caller's own
//!   .lock                    flock'd while a sandbox is created: names stay unique
//!   <id>/                    64 hex digits
//!     state.json             replaced whole (a temporary file, exchanged into place)
//!     state.lock             flock'd while state.json is read, changed and written
//!     plan.json              the resolved plan; exec takes the sandbox's walls from it
//!     lock                   flock'd by whoever acts on the sandbox (start, stop, rm)
//!     alive                  flock'd by the supervisor (and its guard) while they live
//!     control.sock           the supervisor's control socket (signal, kill, start,
//!                            namespaces, attach)
//!     stdout.log stderr.log  a detached workload's output (+ .1, the previous file)
//! ```
//!
//! Liveness is a lock, not a pid: the kernel drops a dead supervisor's
//! flock, so a sandbox whose supervisor was killed is seen as stopped even
//! if nothing had time to write it down.

mod attach;
mod backoff;
pub mod control;
mod dir;
mod ended;
pub(crate) mod logs;
mod names;
mod resources;
mod verbs;

pub use attach::{write_while, Attached};
pub use backoff::Backoff;
use dir::lock_file;
pub use dir::SandboxDir;
pub use logs::{LogChunk, LogReader, LogStream, LOG_SEQ_TRUSTED, LOG_SEQ_XATTR};
pub use verbs::{parse_signal, KILL_WAIT};

use crate::report::ExitReport;
use crate::spec::SandboxSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where a sandbox is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being set up; no workload yet.
    Creating,
    /// Set up, the workload held before exec until `start`.
    Created,
    Running,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        })
    }
}

/// The sandbox's cgroup directories on the host (exec joins them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPaths {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v2: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub v1: BTreeMap<String, PathBuf>,
    /// The directories above those that making them made (a nested
    /// `linux.cgroupsPath`), parents first: a sandbox reclaimed after its
    /// supervisor and guard were killed takes them too, when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub made: Vec<PathBuf>,
}

impl CgroupPaths {
    /// Every process in these cgroups and the cgroups beneath them, each
    /// once. Beneath too: a workload may make cgroups of its own (systemd
    /// inside does), and on v2 its processes then leave the top one empty.
    pub fn procs(&self) -> Vec<i32> {
        fn walk(dir: &std::path::Path, all: &mut Vec<i32>) {
            if let Ok(s) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                all.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
            // cgroupfs has directories and files only, no links to loop.
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), all);
                }
            }
        }
        let mut all = Vec::new();
        for dir in self.v2.iter().chain(self.v1.values()) {
            walk(dir, &mut all);
        }
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub name: String,
    pub status: Status,
    /// PID 1 of the sandbox, on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_pid: Option<i32>,
    /// When the supervisor started ([`crate::sys::start_time`]): with its
    /// pid, what a kill of the supervisor itself checks first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_started: Option<u64>,
    /// Seconds since the epoch.
    pub created: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<f64>,
    /// The supervisor outlives its caller and keeps the output in logs.
    pub detached: bool,
    /// Why it stopped, when it did not end by itself (killed, its
    /// supervisor died).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<CgroupPaths>,
    /// Its supervisor gave up removing `cgroup` as the sandbox ended (a
    /// process stuck in the kernel, a workload forking past the kills):
    /// they are still its own, for `rm` to take. Otherwise they went, and
    /// the same paths may be another sandbox's since (a reused
    /// `linux.cgroupsPath`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cgroups_left: bool,
    /// How it ended, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitReport>,
    pub spec: RecordedSpec,
}

/// The spec a sandbox was created with, kept as the JSON text it was
/// recorded as and built only when asked for ([`RecordedSpec::get`]).
/// Most readers of a state never look at it (its status and pids, a
/// list of many sandboxes, each update the supervisor makes), and
/// building a spec's mounts and strings was most of the cost of reading
/// `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordedSpec(Box<serde_json::value::RawValue>);

impl RecordedSpec {
    pub fn new(spec: &SandboxSpec) -> RecordedSpec {
        RecordedSpec(serde_json::value::to_raw_value(spec).expect("a spec always serializes"))
    }

    /// The spec itself. It was valid when recorded; a state file written
    /// by another version of airlock may hold one this version cannot read.
    pub fn get(&self) -> Result<SandboxSpec, StateError> {
        serde_json::from_str(self.0.get()).map_err(|e| StateError::RecordedSpec(e.to_string()))
    }

    /// Only its `process.args`, for a list of many sandboxes (the rest of
    /// the text is skipped over, not built).
    pub fn args(&self) -> Result<Vec<String>, StateError> {
        #[derive(Deserialize)]
        struct Spec {
            process: Process,
        }
        #[derive(Deserialize)]
        struct Process {
            #[serde(default)]
            args: Vec<String>,
        }
        serde_json::from_str::<Spec>(self.0.get())
            .map(|s| s.process.args)
            .map_err(|e| StateError::RecordedSpec(e.to_string()))
    }

    /// No spec at all (see [`State::without_spec`]).
    fn empty() -> RecordedSpec {
        RecordedSpec(serde_json::value::to_raw_value(&serde_json::json!({})).expect("an object"))
    }

    /// The record cut to what a list shows: the program's arguments alone,
    /// as `shown` keeps them. A spec may be a megabyte; a list of many
    /// sandboxes must not hold every one at once. Only [`RecordedSpec::args`]
    /// reads such a record back.
    pub fn listing(&self, shown: impl FnOnce(Vec<String>) -> Vec<String>) -> RecordedSpec {
        let args = shown(self.args().unwrap_or_default());
        let v = serde_json::json!({ "process": { "args": args } });
        RecordedSpec(serde_json::value::to_raw_value(&v).expect("strings serialize"))
    }
}

impl PartialEq for RecordedSpec {
    fn eq(&self, other: &RecordedSpec) -> bool {
        self.0.get() == other.0.get()
    }
}

impl State {
    /// A copy of it without the spec, which may be a megabyte (not
    /// copied: taken out and put back).
    pub fn without_spec(&mut self) -> State {
        let spec = std::mem::replace(&mut self.spec, RecordedSpec::empty());
        let copy = self.clone();
        self.spec = spec;
        copy
    }

    /// Its cgroups' counters now; zero once it has stopped (its cgroups
    /// are gone) or when it has none.
    pub fn stats(&self) -> crate::cgroup::Stats {
        match &self.cgroup {
            Some(c) if self.status != Status::Stopped => crate::cgroup::read_stats(c),
            _ => crate::cgroup::Stats::default(),
        }
    }

    /// The sandbox's processes on the host while it runs: its cgroups'
    /// members, or, without cgroups, PID 1 and its descendants (the PID
    /// namespace's orphans are PID 1's). PID 1 is the supervisor's child
    /// until reaped, so its pid is not another process's meanwhile.
    pub fn processes(&self) -> Vec<i32> {
        if !matches!(self.status, Status::Running | Status::Created) {
            return Vec::new();
        }
        match (&self.cgroup, self.pid) {
            (Some(c), _) => c.procs(),
            (None, Some(pid1)) => descendants_and(pid1),
            (None, None) => Vec::new(),
        }
    }

    /// Processes OOM-killed in it so far, while it runs.
    pub fn oom_kills(&self) -> u64 {
        match &self.cgroup {
            Some(c) if self.status == Status::Running => crate::cgroup::oom_kills(c),
            _ => 0,
        }
    }
}

/// `pid` and every process below it, from each thread's `children` in
/// /proc (readable by anyone, unlike a non-dumpable process's links): as
/// many reads as the sandbox has threads, where a scan of all of /proc
/// read every process of the host's (Inspect took 64 ms beside 1000
/// other sandboxes). A kernel without CONFIG_PROC_CHILDREN is scanned.
fn descendants_and(pid: i32) -> Vec<i32> {
    match children_listed() {
        true => descendants_by_children(pid),
        false => descendants_by_scan(pid),
    }
}

/// Does this kernel list a thread's children (`/proc/.../children`)?
fn children_listed() -> bool {
    static LISTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LISTED.get_or_init(|| {
        let me = std::process::id();
        std::path::Path::new(&format!("/proc/{me}/task/{me}/children")).exists()
    })
}

fn descendants_by_children(pid: i32) -> Vec<i32> {
    let mut found = vec![pid];
    let mut seen = std::collections::HashSet::from([pid]);
    let mut i = 0;
    // Each pid is visited once (`seen`), so a pid reused while the walk
    // goes on cannot make it loop.
    while i < found.len() {
        let cur = found[i];
        i += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{cur}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let path = t.path().join("children");
            let Ok(listed) = std::fs::read_to_string(path) else {
                continue;
            };
            for child in listed.split_whitespace().filter_map(|c| c.parse().ok()) {
                if seen.insert(child) {
                    found.push(child);
                }
            }
        }
    }
    found.sort_unstable();
    found
}

fn descendants_by_scan(pid: i32) -> Vec<i32> {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // The parent is the second field after the command's closing paren.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|f| f.parse::<i32>().ok());
        if let Some(pp) = ppid {
            parent_of.push((p, pp));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let cur = found[i];
        found.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| *pp == cur)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.sort_unstable();
    found.dedup();
    found
}

/// Errors of the state root, each saying which sandbox and why.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no sandbox named or with an id starting {0:?}")]
    NotFound(String),
    /// Its directory went while the caller acted on it (a `remove_on_exit`
    /// end, another caller's removal).
    #[error("sandbox {0} has been removed")]
    Removed(String),
    #[error("{0:?} matches more than one sandbox id; give more of it")]
    Ambiguous(String),
    #[error("the name {0:?} is already in use")]
    NameInUse(String),
    #[error("invalid name {0:?}: use letters, digits, '_', '.', '-' and '+' (at most 128, starting with a letter or digit)")]
    BadName(String),
    #[error("sandbox {name} is {status}: {what}")]
    WrongStatus {
        name: String,
        status: Status,
        what: String,
    },
    /// Its supervisor would not do what was asked (a signal its init
    /// keeps, a start of one started already).
    #[error("sandbox {name}: {why}")]
    Refused { name: String, why: String },
    #[error("sandbox {0} was started without a terminal or open stdin: nothing to attach to")]
    NotAttachable(String),
    #[error("the spec recorded in state.json cannot be read by this airlock: {0}")]
    RecordedSpec(String),
    #[error("state root {path}: {reason}")]
    Root { path: PathBuf, reason: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The directory that holds every sandbox of one user.
#[derive(Debug, Clone)]
pub struct StateRoot {
    dir: PathBuf,
}

impl StateRoot {
    /// Open (creating it 0700 if missing) the state root. An existing root
    /// must be a directory of the caller's own that nobody else may write:
    /// the supervisor trusts what it finds there.
    pub fn open(dir: impl Into<PathBuf>) -> Result<StateRoot, StateError> {
        let dir = dir.into();
        let bad = |reason: String| StateError::Root {
            path: dir.clone(),
            reason,
        };
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            // Its parent (/run/user/UID, say) must exist already.
            Err(e) => return Err(bad(format!("cannot create it: {e}"))),
        }
        let meta = std::fs::symlink_metadata(&dir).map_err(|e| bad(e.to_string()))?;
        let me = rustix::process::geteuid().as_raw();
        if !meta.is_dir() {
            return Err(bad("not a directory".into()));
        }
        if meta.uid() != me {
            // Without a runtime directory the default is in /tmp, where
            // any user can take the name first.
            let why = match dir.parent() == Some(Path::new("/tmp")) {
                true => "; another user made it first in /tmp: set XDG_RUNTIME_DIR (your own runtime directory), --state-root or AIRLOCK_STATE_ROOT",
                false => " (set --state-root or AIRLOCK_STATE_ROOT)",
            };
            return Err(bad(format!(
                "owned by uid {}, not by uid {me}{why}",
                meta.uid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(bad(format!(
                "writable by others (mode {:o})",
                meta.mode() & 0o7777
            )));
        }
        Ok(StateRoot { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Every sandbox in the root, oldest first.
    pub fn list(&self) -> Vec<(SandboxDir, State)> {
        self.list_where(|_| Some(()))
            .into_iter()
            .map(|(sb, st, ())| (sb, st))
            .collect()
    }

    /// [`StateRoot::list`], reading the state only of the sandboxes
    /// `keep` gives something for, which comes along (a daemon's caller
    /// sees its own: the states of others, their specs among them, are
    /// not read for it).
    pub fn list_where<T>(
        &self,
        keep: impl Fn(&SandboxDir) -> Option<T>,
    ) -> Vec<(SandboxDir, State, T)> {
        self.list_where_then(keep, |_| {})
    }

    /// [`StateRoot::list_where`], with `then` applied to each state as it
    /// is read (before the next is: [`RecordedSpec::listing`] keeps a
    /// list's memory to what it shows).
    pub fn list_where_then<T>(
        &self,
        keep: impl Fn(&SandboxDir) -> Option<T>,
        then: impl Fn(&mut State),
    ) -> Vec<(SandboxDir, State, T)> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        ended::prune_in(&self.dir);
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if is_removed(&id) {
                SandboxDir::at(&e.path()).sweep_removed();
                continue;
            }
            if !is_id(&id) {
                continue;
            }
            let sb = SandboxDir { id, dir: e.path() };
            let Some(kept) = keep(&sb) else {
                continue;
            };
            if let Ok(mut st) = sb.state() {
                then(&mut st);
                out.push((sb, st, kept));
            }
        }
        out.sort_by(|a, b| a.1.created.total_cmp(&b.1.created));
        out
    }

    /// The sandbox with this name, or whose id starts with `key`.
    pub fn find(&self, key: &str) -> Result<(SandboxDir, State), StateError> {
        if let Some(hit) = self.lookup(key) {
            return Ok(hit);
        }
        // A name whose sandbox cannot be read is that error: neither "not
        // found" (a `rm -f` would report it gone while it runs) nor
        // another sandbox whose id starts with the name.
        if let Some(e) = names::unreadable_holder(&self.dir, key) {
            return Err(e);
        }
        let all = self.list().into_iter().map(|(d, s)| (d, s, ())).collect();
        find_in(all, key).map(|(d, s, ())| (d, s))
    }

    /// The sandbox named `key`, or whose whole id it is, found without
    /// reading every sandbox's state (see `names.rs`); `None` leaves the
    /// question (an id prefix, say) to [`find_in`] over [`Self::list`].
    pub fn lookup(&self, key: &str) -> Option<(SandboxDir, State)> {
        // A whole id first: a name never stands for another sandbox's id.
        // (A name may look like one: the OCI runtime names each sandbox
        // after its container's id, 64 hex digits for podman's.)
        if is_id(key) {
            let sb = SandboxDir {
                dir: self.dir.join(key),
                id: key.to_string(),
            };
            if let Ok(st) = sb.state() {
                return Some((sb, st));
            }
        }
        names::holder(&self.dir, key)
    }

    /// The directory the name index gives `name`, where it exists,
    /// whether or not its state can be read: a caller that must not take
    /// an unreadable sandbox for a missing one (a `delete --force` would
    /// say it deleted a sandbox that runs on) asks this after
    /// [`Self::lookup`] found none.
    pub fn indexed(&self, name: &str) -> Option<SandboxDir> {
        let id = names::lookup(&self.dir, name)?;
        let sb = SandboxDir {
            dir: self.dir.join(&id),
            id,
        };
        sb.dir.exists().then_some(sb)
    }

    /// How many sandboxes the root holds, without reading their states.
    pub fn count(&self) -> usize {
        std::fs::read_dir(&self.dir).map_or(0, |d| {
            d.flatten()
                .filter(|e| is_id(&e.file_name().to_string_lossy()))
                .count()
        })
    }

    /// Reserve a new sandbox with the plan's `id`: a unique name (the id's first 12
    /// digits when none is given), its directory and first state. The
    /// returned lock on `alive` is what the supervisor inherits and holds.
    pub fn create(
        &self,
        id: &str,
        name: Option<&str>,
        spec: &SandboxSpec,
        detached: bool,
    ) -> Result<(SandboxDir, File), StateError> {
        if let Some(n) = name {
            check_name(n)?;
        }
        let root_lock = lock_file(&self.dir.join(".lock"), true)?;
        let id = id.to_string();
        let name = name.map_or_else(|| id[..12].to_string(), str::to_string);
        names::claim(&self.dir, &name, &id, || {
            self.list().into_iter().map(|(_, st)| st).collect()
        })?;
        let dir = self.dir.join(&id);
        if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            names::release(&self.dir, &name, &id);
            return Err(io_err("create", &dir)(e));
        }
        let sb = SandboxDir {
            id: id.clone(),
            dir,
        };
        let made = (|| {
            let alive = lock_file(&sb.dir.join("alive"), true)?;
            sb.write_state(&State {
                id,
                name,
                status: Status::Creating,
                pid: None,
                supervisor_pid: None,
                supervisor_started: None,
                created: now(),
                started: None,
                finished: None,
                detached,
                reason: None,
                cgroup: None,
                cgroups_left: false,
                exit: None,
                spec: RecordedSpec::new(spec),
            })?;
            Ok(alive)
        })();
        drop(root_lock);
        match made {
            Ok(alive) => Ok((sb, alive)),
            Err(e) => {
                let _ = sb.remove();
                Err(e)
            }
        }
    }
}

/// Among `all`: the sandbox named `key`, or the one whose id starts with
/// it (a service resolves among the sandboxes its caller may see).
pub fn find_in<T>(
    all: Vec<(SandboxDir, State, T)>,
    key: &str,
) -> Result<(SandboxDir, State, T), StateError> {
    if let Some(i) = all.iter().position(|(d, _, _)| d.id == key) {
        return Ok(all.into_iter().nth(i).expect("index from position"));
    }
    if let Some(i) = all.iter().position(|(_, s, _)| s.name == key) {
        return Ok(all.into_iter().nth(i).expect("index from position"));
    }
    let mut by_id: Vec<_> = all
        .into_iter()
        .filter(|(d, _, _)| !key.is_empty() && d.id.starts_with(key))
        .collect();
    match by_id.len() {
        0 => Err(StateError::NotFound(key.into())),
        1 => Ok(by_id.remove(0)),
        _ => Err(StateError::Ambiguous(key.into())),
    }
}

/// Is `s` a whole sandbox id (64 hex digits)?
pub fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Is `n` a name a sandbox may have (the rule [`StateError::BadName`] says)?
/// 64 hex digits are a name too (an OCI container's id); lookups try them
/// as an id first. What runc takes as an id (`+` too) and containerd's
/// longest (76) fit.
pub fn check_name(n: &str) -> Result<(), StateError> {
    let ok = !n.is_empty()
        && n.len() <= 128
        && n.as_bytes()[0].is_ascii_alphanumeric()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StateError::BadName(n.into()))
    }
}

/// A sandbox directory renamed to be removed (`.<id>.removed`, see
/// [`SandboxDir::remove`]).
fn is_removed(name: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.strip_suffix(".removed"))
        .is_some_and(is_id)
}

pub(crate) fn new_id() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        filled +=
            rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty())?;
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests;
