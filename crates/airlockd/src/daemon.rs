//! The daemon's shared state and what every call needs from it: who the
//! caller is and may be, the [`Context`] a sandbox is launched for, the
//! sandboxes a caller may see, and their description in the API's terms.

use crate::config::Config;
use crate::events::Bus;
use crate::meta::{self, Meta};
use crate::peer::{Peer, PeerInfo};
use crate::quota::{Place, Quota};
use crate::reap::Reaper;
use crate::status;
use airlock::cgroup::Layout;
use airlock::plan::Caller;
use airlock::state::{SandboxDir, State, StateRoot, Status};
use airlock::Context;
use airlock_client::proto;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Creates a caller besides root may have under way at once (see
/// [`Daemon::reserve`]): well below the blocking pool's 256 threads. An
/// exec's setup holds a thread the same way: as many again.
pub const MAX_CREATING_PER_CALLER: usize = 16;
/// Creates and exec setups by all callers besides root together (the
/// blocking pool's half).
pub const MAX_CREATING_UNPRIVILEGED: usize = 128;

pub struct Daemon {
    pub config: Config,
    pub root: StateRoot,
    /// The cgroups sandboxes are made under (the configured parent, or the
    /// daemon's own).
    pub layout: Layout,
    /// The group besides root that may connect.
    pub group: Option<(String, u32)>,
    pub bus: Bus,
    /// The sandboxes the daemon watches, by id: their last status and OOM
    /// count, for the events.
    pub known: Mutex<HashMap<String, Seen>>,
    /// Creates under way, which count against `max_sandboxes`.
    /// The uid of each create in flight, holding a place.
    pending: Mutex<Vec<u32>>,
    /// The uid of each exec being set up (until its process runs or
    /// fails), each holding one of the blocking pool's threads.
    exec_setups: Mutex<Vec<u32>>,
    /// Exec, Attach, Logs, Events and Wait calls under way, by caller uid
    /// (root's are not counted), against `max_streams_per_caller`.
    streams: Quota,
    /// The other calls under way, by caller uid (root's are not
    /// counted), against `max_calls_per_caller`.
    calls: Quota,
    /// Requests whose message is being received, by caller uid (root's
    /// are not counted), against the calls and streams a caller may have.
    reading: Quota,
    /// The runner binary (default: found as the library finds it).
    pub runner: Option<PathBuf>,
    /// The supervisors the daemon reaps itself.
    pub reaper: Reaper,
    /// The callers whose process budget cgroup (`budget`) this daemon
    /// made or limited: removed, where empty, when it stops.
    pub budgets: Mutex<std::collections::BTreeSet<u32>>,
    /// The limit on open files the daemon had before it raised its own:
    /// what a sandbox whose spec sets none gets, as it would have
    /// inherited it.
    pub nofile: Option<airlock::spec::Rlimit>,
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub owner: u32,
    pub name: String,
    pub status: Status,
    pub oom_kills: u64,
    pub exit_reported: bool,
    /// `state.json` as the watch last read it (inode, size, mtime), and
    /// the cgroups it named: an unchanged file of a living sandbox needs
    /// no reading, only its OOM count does.
    pub stamp: Option<(u64, u64, i64, i64)>,
    pub cgroup: Option<airlock::state::CgroupPaths>,
    /// A Delete is under way: its directory goes before the Delete has
    /// the final state to announce, and the watch, finding it gone then,
    /// announced `exited` without the exit status.
    pub deleting: bool,
}

/// One of a caller's places under `max_streams_per_caller`, held by its
/// stream (or a Wait) and freed when that is dropped (the call's end, or
/// the client's going away).
pub type StreamSlot = Place;

/// Reserve a stream for `peer` (root: no limit), or say the limit is
/// reached: a caller opening streams without end would otherwise have
/// the daemon start threads, or hold pidfds, without end.
pub fn stream_slot(d: &Shared, peer: &Peer) -> Result<Option<StreamSlot>, tonic::Status> {
    let what = "Exec, Attach, Logs, Events and Wait calls under way";
    slot(
        &d.streams,
        peer,
        d.config.max_streams_per_caller,
        "max_streams_per_caller",
        what,
    )
}

/// Reserve a call other than a stream for `peer` (root: no limit), or
/// say the limit is reached: a caller asking thousands of Lists at once
/// would queue them on the blocking pool ahead of every other caller's
/// calls, root's and the event watch's included. A stream's (or Wait's)
/// lookup of its sandbox takes one too while it parses the state (a spec
/// of up to a megabyte): the stream's own place alone let a caller keep
/// `max_streams_per_caller` such parses going, four times as many.
pub fn call_slot(d: &Shared, peer: &Peer) -> Result<Call, tonic::Status> {
    let what = "calls under way";
    let place = slot(
        &d.calls,
        peer,
        d.config.max_calls_per_caller,
        "max_calls_per_caller",
        what,
    )?;
    Ok(Call {
        _place: place.map(std::sync::Arc::new),
    })
}

/// A call's place under `max_calls_per_caller` (none for root), held by
/// the call and by each piece of work it hands the blocking pool. A call
/// whose client went away is dropped at its next await, but the work it
/// handed the pool runs on: without its share of the place, a caller that
/// sent Lists and cancelled each at once had the pool read every state
/// file of its sandboxes again and again, outside the limit.
#[derive(Clone)]
pub struct Call {
    _place: Option<std::sync::Arc<Place>>,
}

impl Call {
    /// [`blocking`], holding the call's place until `f` returns.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, tonic::Status> + Send + 'static,
    ) -> Result<T, tonic::Status> {
        let held = self.clone();
        blocking(move || {
            let _held = held;
            f()
        })
        .await
    }
}

/// A request of `peer`'s whose message is being received, from its head
/// on (root: no limit). tonic receives a call's whole message (up to
/// `MAX_MESSAGE`) before its handler takes a place under
/// `max_calls_per_caller`, so without this a caller could have the daemon
/// hold hundreds of messages it never finishes sending. A caller has at
/// most as many as it may have calls and streams under way.
#[derive(Clone)]
pub struct Reading {
    _place: std::sync::Arc<Place>,
}

/// Reserve a [`Reading`] place for `peer`, or say the limit is reached.
pub fn reading_slot(d: &Shared, peer: &Peer) -> Result<Option<Reading>, tonic::Status> {
    let max = d.config.max_calls_per_caller + d.config.max_streams_per_caller;
    let place = slot(
        &d.reading,
        peer,
        max,
        "max_calls_per_caller",
        "requests being received (max_calls_per_caller and max_streams_per_caller together)",
    )?;
    Ok(place.map(|p| Reading {
        _place: std::sync::Arc::new(p),
    }))
}

/// One of `peer`'s at most `max` places of `quota` (root takes none), or
/// the `limit` error naming the setting and what `peer` holds.
fn slot(
    quota: &Quota,
    peer: &Peer,
    max: usize,
    setting: &str,
    what: &str,
) -> Result<Option<Place>, tonic::Status> {
    if peer.is_root() {
        return Ok(None);
    }
    quota.take(peer.uid, max).map(Some).map_err(|n| {
        status::limit(
            setting,
            format!(
                "uid {} has {n} {what}, the most this daemon allows a caller; try again",
                peer.uid
            ),
        )
    })
}

/// Within the bounds on what holds a blocking-pool thread for a caller
/// besides root (see [`Daemon::reserve`]): `mine` of `what` (creates or
/// execs) for this caller, `all` creates and exec setups for all of them.
fn setups_within(what: &str, peer: &Peer, mine: usize, all: usize) -> Result<(), tonic::Status> {
    if all >= MAX_CREATING_UNPRIVILEGED {
        return Err(status::limit(
            what,
            "as many creates and execs are being set up as this daemon takes at once from callers other than root; try again",
        ));
    }
    if mine >= MAX_CREATING_PER_CALLER {
        return Err(status::limit(
            what,
            format!(
                "uid {} has {mine} {what} being set up, as many as a caller may at once",
                peer.uid
            ),
        ));
    }
    Ok(())
}

/// An exec's setup under way, counted until dropped (see
/// [`Daemon::reserve_exec_setup`]).
pub struct ExecSetup(Shared, u32);

impl Drop for ExecSetup {
    fn drop(&mut self) {
        let mut setups = self.0.exec_setups.lock().expect("exec setups lock");
        if let Some(i) = setups.iter().position(|uid| *uid == self.1) {
            setups.swap_remove(i);
        }
    }
}

/// A reserved place under `max_sandboxes`, freed when dropped.
pub struct Slot<'a>(&'a Daemon, u32);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut pending = self.0.pending.lock().expect("pending lock");
        if let Some(i) = pending.iter().position(|uid| *uid == self.1) {
            pending.swap_remove(i);
        }
    }
}

impl Daemon {
    pub fn new(
        config: Config,
        root: StateRoot,
        layout: Layout,
        group: Option<(String, u32)>,
        nofile: Option<airlock::spec::Rlimit>,
    ) -> Daemon {
        let bus = Bus::new(config.events_kept);
        Daemon {
            config,
            root,
            layout,
            group,
            bus,
            known: Mutex::new(HashMap::new()),
            pending: Mutex::new(Vec::new()),
            exec_setups: Mutex::new(Vec::new()),
            streams: Quota::default(),
            calls: Quota::default(),
            reading: Quota::default(),
            runner: std::env::var_os("AIRLOCK_RUNNER").map(PathBuf::from),
            reaper: Reaper::new(),
            budgets: Mutex::new(Default::default()),
            nofile,
        }
    }

    /// The caller of `req`, if it may use the daemon at all: root, or a
    /// member of the configured group.
    pub fn peer<T>(&self, req: &tonic::Request<T>) -> Result<Peer, tonic::Status> {
        let Some(PeerInfo(Some(peer))) = req.extensions().get::<PeerInfo>().cloned() else {
            return Err(status::denied(
                "",
                "the caller's credentials could not be read from the socket",
                Vec::new(),
            ));
        };
        if peer.is_root() {
            return Ok(peer);
        }
        match &self.group {
            Some((_, gid)) if peer.in_group(*gid) => Ok(peer),
            Some((name, gid)) => Err(status::denied(
                "",
                format!(
                    "uid {} is neither root nor a member of group {name} (gid {gid})",
                    peer.uid
                ),
                Vec::new(),
            )),
            None => Err(status::denied(
                "",
                format!(
                    "uid {} is not root, and no group may use this daemon",
                    peer.uid
                ),
                Vec::new(),
            )),
        }
    }

    /// May `peer` acknowledge a deny finding?
    pub fn may_acknowledge(&self, peer: &Peer) -> bool {
        peer.is_root() || self.config.acknowledge_uids.contains(&peer.uid)
    }

    /// Who a sandbox is launched for: the caller's ids, and the daemon's
    /// configuration for everything else, never the daemon's own process
    /// (its home, environment or ids).
    pub fn context(&self, peer: &Peer) -> Context {
        Context {
            caller: Caller::here(peer.uid, peer.gid),
            home: home_of(peer.uid),
            env: Vec::new(),
            state_root: self.root.path().to_path_buf(),
            cgroup: self.layout.clone(),
            store: self.config.store.clone(),
            // A spec without a pids limit gets the daemon's max_pids (the
            // library's default when the daemon sets none).
            default_pids: self.config.max_pids.or(Some(airlock::spec::DEFAULT_PIDS)),
            cgroup_path: None,
            cgroup_nest: None,
            cgroup_prepare: Vec::new(),
            image_limits: Default::default(),
            // The usual one, not whatever the daemon was started with.
            umask: Some(0o022),
            filter_set_id_on_host_writes: true,
        }
    }

    /// Reserve a place for one more sandbox, or say which limit is reached.
    pub fn reserve(&self, peer: &Peer) -> Result<Slot<'_>, tonic::Status> {
        let mut pending = self.pending.lock().expect("pending lock");
        let have = self.root.count() + pending.len();
        // A tenth of the places stays root's (of ten or more: a daemon
        // configured for fewer is its members' too): the group's members
        // together must not lock the administrator out.
        let all = self.config.max_sandboxes;
        let max = match peer.is_root() {
            true => all,
            false => all - all / 10,
        };
        if have >= max {
            // How many there are is root's to know (Health hides it too).
            let held = match peer.is_root() {
                true => format!("this daemon holds {have} sandboxes, its limit"),
                false => "this daemon holds as many sandboxes as it may".to_string(),
            };
            return Err(status::limit(
                "max_sandboxes",
                format!("{held} (delete stopped ones to make room)"),
            ));
        }
        if !peer.is_root() {
            // Each create holds one of the blocking pool's threads until
            // its sandbox has started, which a bind of a file system that
            // never answers can hold up for good: one caller must not take
            // them all (root's calls and the event watch need them).
            // (And all callers besides root together: a group's members.)
            let all =
                pending.iter().filter(|uid| **uid != 0).count() + self.unprivileged_exec_setups();
            let creating = pending.iter().filter(|uid| **uid == peer.uid).count();
            setups_within("creates", peer, creating, all)?;
            // The daemon's index of what it knows (with each owner), not
            // every state read again.
            let known = self
                .known
                .lock()
                .expect("known lock")
                .values()
                .filter(|s| s.owner == peer.uid)
                .count();
            let mine = known + pending.iter().filter(|uid| **uid == peer.uid).count();
            let max = self.config.max_sandboxes_per_caller;
            if mine >= max {
                return Err(status::limit(
                    "max_sandboxes_per_caller",
                    format!(
                        "uid {} holds {mine} sandboxes, the limit for a caller ({max}; delete stopped ones to make room)",
                        peer.uid
                    ),
                ));
            }
        }
        pending.push(peer.uid);
        Ok(Slot(self, peer.uid))
    }

    fn unprivileged_exec_setups(&self) -> usize {
        let setups = self.exec_setups.lock().expect("exec setups lock");
        setups.iter().filter(|uid| **uid != 0).count()
    }

    /// Count one more exec being set up for `peer`, or say which limit is
    /// reached. An exec's setup holds a thread of the blocking pool until
    /// its process runs, which a program or directory on a file system
    /// that never answers can hold up for good, also after the client
    /// went away: as for creates, one caller must not take the threads
    /// root's calls and the event watch need, nor all callers but root
    /// together.
    pub fn reserve_exec_setup(d: &Shared, peer: &Peer) -> Result<ExecSetup, tonic::Status> {
        // In `reserve`'s order: creates, then exec setups; the first held
        // until this one is counted, or a create and an exec arriving
        // together could each see one place left and both take it.
        let pending = d.pending.lock().expect("pending lock");
        let creating = pending.iter().filter(|uid| **uid != 0).count();
        let mut setups = d.exec_setups.lock().expect("exec setups lock");
        if !peer.is_root() {
            let all = setups.iter().filter(|uid| **uid != 0).count() + creating;
            let mine = setups.iter().filter(|uid| **uid == peer.uid).count();
            setups_within("execs", peer, mine, all)?;
        }
        setups.push(peer.uid);
        Ok(ExecSetup(d.clone(), peer.uid))
    }

    /// The sandbox `key` names among those `peer` may see (its own, or
    /// any for root): another user's sandbox never shadows or reveals
    /// itself through a name or an id prefix.
    pub fn find(&self, peer: &Peer, key: &str) -> Result<(SandboxDir, State, Meta), tonic::Status> {
        if key.is_empty() {
            return Err(status::invalid(
                "sandbox",
                "name a sandbox (its name or id)",
            ));
        }
        // An id prefix, or a name this peer may not see, is resolved among
        // what it may.
        if let Some(found) = self.lookup(peer, key) {
            return Ok(found);
        }
        let (sb, _, m) = airlock::state::find_in(self.visible(peer), key)
            .map_err(|e| status::from_state_for(peer, e))?;
        // The listing's spec is cut: the found one's state is read whole.
        let st = sb.state().map_err(|e| status::from_state_for(peer, e))?;
        Ok((sb, st, m))
    }

    /// [`Daemon::find`] by a name or a whole id alone: a few small reads,
    /// not every sandbox's state, so a call may make it without the
    /// blocking pool. `None` leaves the rest to `find`.
    pub fn lookup(&self, peer: &Peer, key: &str) -> Option<(SandboxDir, State, Meta)> {
        if key.is_empty() {
            return None;
        }
        let name = match peer.is_root() {
            true => key.to_string(),
            false => meta::stored_name(peer.uid, key),
        };
        let (sb, st) = self.root.lookup(&name)?;
        let m = meta::read(&sb);
        (peer.is_root() || m.owner == peer.uid).then_some((sb, st, m))
    }

    /// Every sandbox `peer` may see, with its meta.
    /// Each spec is cut to what a list shows of it ([`listed_args`]): a
    /// caller's 250 sandboxes of a megabyte each would otherwise be held
    /// at once by every List, Health and lookup by id prefix.
    pub fn visible(&self, peer: &Peer) -> Vec<(SandboxDir, State, Meta)> {
        // Whose it is first, from its small meta file: another user's
        // state (and the spec in it) is not read for this caller at all.
        self.root.list_where_then(
            |sb| {
                let m = meta::read(sb);
                (peer.is_root() || m.owner == peer.uid).then_some(m)
            },
            |st| st.spec = st.spec.listing(listed_args),
        )
    }
}

/// The caller's home directory, which the guardrails protect as they
/// protect the home of a CLI user: through the C library's user database
/// (NSS), so that a user from LDAP or sssd, absent from /etc/passwd, has
/// one too.
fn home_of(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: a zeroed passwd is a valid value of this plain C struct
        // (null pointers, zero ids); getpwuid_r fills it.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is to live storage of ours (`buf` of
        // `buf.len()` bytes for the strings); getpwuid_r is the reentrant
        // form, safe from any thread.
        let r = unsafe {
            libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut found)
        };
        if r == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if r != 0 || found.is_null() || pw.pw_dir.is_null() {
            return None;
        }
        // SAFETY: pw_dir points into `buf`, NUL-terminated, and `buf`
        // outlives this borrow.
        let dir = unsafe { std::ffi::CStr::from_ptr(pw.pw_dir) };
        return Some(dir.to_string_lossy().into_owned()).filter(|d| !d.is_empty());
    }
}

pub fn state_of(s: Status) -> proto::State {
    match s {
        Status::Creating => proto::State::Creating,
        Status::Created => proto::State::Created,
        Status::Running => proto::State::Running,
        Status::Stopped => proto::State::Stopped,
    }
}

pub fn exit_of(st: &State) -> Option<proto::ExitStatus> {
    if st.status != Status::Stopped {
        return None;
    }
    let reason = st.reason.clone().unwrap_or_default();
    Some(match &st.exit {
        Some(e) => proto::ExitStatus {
            reason,
            ..exit_status(e)
        },
        // Ended without a report (its supervisor was killed).
        None => proto::ExitStatus {
            code: 137,
            signal: libc::SIGKILL,
            reason,
            ..Default::default()
        },
    })
}

/// How a workload or an exec'd process ended, in the API's terms.
pub fn exit_status(e: &airlock::ExitReport) -> proto::ExitStatus {
    proto::ExitStatus {
        code: e.code,
        signal: e.signal.unwrap_or(0),
        oom_killed: e.ended == airlock::Ended::OomKilled || e.oom_kills > 0,
        timed_out: e.ended == airlock::Ended::TimedOut,
        reason: String::new(),
        report_json: serde_json::to_string(e).unwrap_or_default(),
    }
}

/// A sandbox in the API's terms; `detailed` adds the spec and the pids.
pub fn info(
    viewer: &Peer,
    sb: &SandboxDir,
    st: &State,
    m: &Meta,
    detailed: bool,
) -> proto::SandboxInfo {
    let running = matches!(st.status, Status::Running | Status::Created);
    let pids = match detailed {
        true => st.processes(),
        false => Vec::new(),
    };
    proto::SandboxInfo {
        id: sb.id.clone(),
        name: meta::name_for(viewer, m.owner, &st.name).to_string(),
        state: state_of(st.status) as i32,
        labels: m.labels.clone().into_iter().collect(),
        pid: st.pid.filter(|_| running).unwrap_or(0),
        supervisor_pid: st.supervisor_pid.filter(|_| running).unwrap_or(0),
        created: st.created,
        started: st.started.unwrap_or(0.0),
        finished: st.finished.unwrap_or(0.0),
        exit: exit_of(st),
        owner: m.owner,
        spec_json: if detailed {
            serde_json::to_value(&st.spec)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_default()
        } else {
            String::new()
        },
        pids,
        tty: m.tty,
        stdin: m.stdin,
        args: st.spec.args().unwrap_or_default(),
    }
}

/// What of a command a list shows (Inspect gives it whole): its first
/// kilobyte or so. A spec may be a megabyte of arguments, and a list of
/// such sandboxes, every user's for root, went past what a client takes
/// in one message (root's `ps` failed on another user's sandboxes).
/// (Each argument counts one byte more, its separator: a million empty
/// ones are cut too.)
pub fn listed_args(args: Vec<String>) -> Vec<String> {
    const SHOWN: usize = 1024;
    let mut left = SHOWN;
    let mut out = Vec::new();
    for mut a in args {
        if left == 0 {
            out.push('…'.to_string());
            break;
        }
        left -= 1;
        if a.len() > left {
            let mut end = left;
            while !a.is_char_boundary(end) {
                end -= 1;
            }
            a.truncate(end);
            a.push('…');
            out.push(a);
            break;
        }
        left -= a.len();
        out.push(a);
    }
    out
}

pub type Shared = Arc<Daemon>;

/// Run `f` on the blocking pool (every library call waits on a runner,
/// a supervisor or the filesystem).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, tonic::Status> + Send + 'static,
) -> Result<T, tonic::Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| tonic::Status::internal(format!("the call's task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    /// As the C library's user database has it (`getent passwd`).
    #[test]
    fn a_callers_home_comes_from_the_user_database() {
        let getent = std::process::Command::new("getent")
            .args(["passwd", "0"])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&getent.stdout).into_owned();
        let home = line.trim().split(':').nth(5).map(str::to_string);
        assert!(home.is_some(), "{line:?}");
        assert_eq!(super::home_of(0), home);
        assert_eq!(super::home_of(4_000_000_000), None);
    }
}
