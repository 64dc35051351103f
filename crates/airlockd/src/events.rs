//! Lifecycle events: a bus that keeps the last few (for `Events { since }`)
//! and broadcasts new ones, and the watch that notices what the daemon did
//! not do itself — a workload that started or ended, an OOM kill, a
//! sandbox removed by another front end — by polling the state of the
//! sandboxes it knows.
//!
//! Re-adoption is the first pass of that watch: every sandbox in the state
//! root becomes known, and one that ended while no daemon was running (its
//! exit not yet reported, as its `daemon.json` says) gets its `exited`
//! event then.

use crate::daemon::{exit_of, Daemon, Seen};
use crate::meta;
use airlock::state::{now, SandboxDir, State, Status};
use airlock_client::proto::{self, EventKind};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// How often the watch looks.
const TICK: Duration = Duration::from_millis(200);

pub struct Bus {
    inner: Mutex<Kept>,
    tx: broadcast::Sender<Arc<Published>>,
}

/// An event and the uid that owns its sandbox (who may see it).
#[derive(Debug)]
pub struct Published {
    pub owner: u32,
    pub event: proto::Event,
}

/// The last events of each owner's sandboxes: one user's churn does not
/// push another's out of what `since` can give back.
struct Kept {
    events: std::collections::HashMap<u32, VecDeque<Arc<Published>>>,
    limit: usize,
}

/// What a subscriber is given: the kept events since its `since`, and a
/// receiver of every later event.
pub struct Subscription {
    pub kept: Vec<Arc<Published>>,
    pub rx: broadcast::Receiver<Arc<Published>>,
}

impl Bus {
    pub fn new(limit: usize) -> Bus {
        Bus {
            inner: Mutex::new(Kept {
                events: std::collections::HashMap::new(),
                limit,
            }),
            tx: broadcast::channel(1024).0,
        }
    }

    pub fn publish(
        &self,
        owner: u32,
        kind: EventKind,
        id: &str,
        name: &str,
        exit: Option<proto::ExitStatus>,
    ) {
        let event = Arc::new(Published {
            owner,
            event: proto::Event {
                kind: kind as i32,
                id: id.into(),
                // As kept: each subscriber sees it as meta::name_for says.
                name: name.into(),
                time: now(),
                exit,
            },
        });
        tracing::info!(event = kind.as_str_name(), id, name, "sandbox event");
        // Kept and sent under one lock, which `subscribe` takes too: a
        // subscriber gets each event exactly once, from the kept ones or
        // from the channel.
        let mut k = self.inner.lock().expect("events lock");
        let limit = k.limit.max(1);
        let mine = k.events.entry(owner).or_default();
        if mine.len() >= limit {
            mine.pop_front();
        }
        mine.push_back(event.clone());
        let _ = self.tx.send(event);
    }

    /// The kept events since `since` of the sandboxes of `owner` (every
    /// owner's for `None`, root), oldest first, and a receiver of every
    /// later event.
    pub fn subscribe(&self, since: f64, owner: Option<u32>) -> Subscription {
        let k = self.inner.lock().expect("events lock");
        let rx = self.tx.subscribe();
        let mut kept: Vec<Arc<Published>> = Vec::new();
        if since > 0.0 {
            let theirs = k
                .events
                .iter()
                .filter(|(u, _)| owner.is_none_or(|w| w == **u));
            for (_, o) in theirs {
                kept.extend(o.iter().filter(|e| e.event.time >= since).cloned());
            }
            kept.sort_by(|a, b| a.event.time.total_cmp(&b.event.time));
        }
        Subscription { kept, rx }
    }
}

/// Start knowing a sandbox (just created, or found at start-up).
pub fn know(d: &Daemon, m: &meta::Meta, st: &State, status: Status) {
    // OOM kills from before (a re-adopted sandbox's) are not news.
    let oom_kills = st.oom_kills();
    d.known.lock().expect("known lock").insert(
        st.id.clone(),
        Seen {
            owner: m.owner,
            name: st.name.clone(),
            status,
            oom_kills,
            exit_reported: m.exit_reported,
            stamp: None,
            cgroup: None,
            deleting: false,
        },
    );
}

/// Mark `id` as being deleted (or no longer, where its Delete failed):
/// the watch leaves it to the Delete, which announces its end with the
/// final state ([`gone`]).
pub fn deleting(d: &Daemon, id: &str, yes: bool) {
    if let Some(s) = d.known.lock().expect("known lock").get_mut(id) {
        s.deleting = yes;
    }
}

/// Re-adopt every sandbox in the state root, reporting the exits that
/// happened while no daemon was watching.
pub fn adopt(d: &Daemon) -> usize {
    let all = d.root.list();
    for (sb, st) in &all {
        know(d, &meta::read(sb), st, st.status);
        observe(d, sb, st);
    }
    all.len()
}

/// Bring the daemon's view of a sandbox up to `st`, publishing what
/// changed: `started` when a created sandbox ran, `exited` once when it
/// ended. Whoever sees a change first (the watch, Start, Stop, Delete)
/// publishes it, exactly once; `daemon.json` remembers a reported exit
/// across restarts.
pub fn observe(d: &Daemon, sb: &SandboxDir, st: &State) {
    let exited = {
        // Decided and published under one lock: whoever sees a change
        // second finds it published already, and events keep their order.
        let mut known = d.known.lock().expect("known lock");
        let Some(seen) = known.get_mut(&sb.id) else {
            return;
        };
        let ran = st.status == Status::Running || st.started.is_some();
        if seen.status == Status::Created && ran {
            d.bus
                .publish(seen.owner, EventKind::Started, &sb.id, &st.name, None);
        }
        let exited = st.status == Status::Stopped && !seen.exit_reported;
        if seen.status != Status::Stopped {
            seen.status = st.status;
        }
        if exited {
            seen.exit_reported = true;
            d.bus
                .publish(seen.owner, EventKind::Exited, &sb.id, &st.name, exit_of(st));
        }
        exited
    };
    if !exited || !sb.dir.exists() {
        return; // deleted: nothing left to remember it in
    }
    let Some(mut m) = meta::try_read(sb) else {
        tracing::warn!(
            id = sb.id,
            "cannot read daemon.json to record the reported exit"
        );
        return;
    };
    m.exit_reported = true;
    if let Err(e) = meta::write(sb, &m) {
        if sb.dir.exists() {
            tracing::warn!(id = sb.id, "cannot record the reported exit: {e}");
        }
    }
}

/// A known sandbox is gone (deleted, or removed by its supervisor when
/// it ended): `exited` if nobody reported the end yet (its status went
/// with it), then `deleted`, once.
pub fn gone(d: &Daemon, id: &str, last: Option<&State>) {
    gone_unless(d, id, last, |_| false);
}

/// [`gone`] unless `theirs` says another caller is to announce it; asked
/// under the lock that announcing takes.
fn gone_unless(d: &Daemon, id: &str, last: Option<&State>, theirs: impl Fn(&Seen) -> bool) {
    let mut known = d.known.lock().expect("known lock");
    if known.get(id).is_some_and(theirs) {
        return;
    }
    let Some(seen) = known.remove(id) else {
        return;
    };
    if !seen.exit_reported {
        let exit = last.and_then(exit_of);
        d.bus
            .publish(seen.owner, EventKind::Exited, id, &seen.name, exit);
    }
    d.bus
        .publish(seen.owner, EventKind::Deleted, id, &seen.name, None);
}

/// One look at every known sandbox that has not ended.
fn look(d: &Daemon) {
    let ids: Vec<(String, Seen)> = d
        .known
        .lock()
        .expect("known lock")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (id, seen) in ids {
        look_at(d, &id, &seen);
    }
}

/// A look at one sandbox, as the daemon knew it a moment ago (`seen`).
fn look_at(d: &Daemon, id: &str, seen: &Seen) {
    if seen.deleting {
        return;
    }
    let sb = SandboxDir::at(&d.root.path().join(id));
    if !sb.dir.exists() {
        // A Delete that began since `seen` was read announces it with
        // the exit it read. Removed at its end, it left its last state.
        gone_unless(d, id, sb.kept_end().as_ref(), |now| now.deleting);
        return;
    }
    if seen.status == Status::Stopped {
        return;
    }
    // With a thousand sandboxes, reading every state five times a
    // second was a quarter of a core: a file that has not changed, of
    // a sandbox whose supervisor is there, says nothing new.
    let stamp = stamp(&sb);
    if stamp.is_some() && stamp == seen.stamp && sb.alive() {
        if seen.status == Status::Running {
            if let Some(cg) = &seen.cgroup {
                oom(d, id, seen, airlock::cgroup::oom_kills(cg));
            }
        }
        return;
    }
    let Ok(st) = sb.state() else { return };
    if st.status == Status::Running {
        oom(d, id, seen, st.oom_kills());
    }
    observe(d, &sb, &st);
    if let Some(s) = d.known.lock().expect("known lock").get_mut(id) {
        s.stamp = stamp;
        s.cgroup = st.cgroup.clone();
    }
}

/// Publish an OOM kill the watch had not seen.
fn oom(d: &Daemon, id: &str, seen: &Seen, kills: u64) {
    if kills > seen.oom_kills {
        d.bus
            .publish(seen.owner, EventKind::Oom, id, &seen.name, None);
        if let Some(s) = d.known.lock().expect("known lock").get_mut(id) {
            s.oom_kills = kills;
        }
    }
}

/// What identifies one version of a sandbox's `state.json` (it is
/// replaced by rename, so a new version is a new inode).
fn stamp(sb: &SandboxDir) -> Option<(u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(sb.dir.join("state.json")).ok()?;
    Some((m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// Watch until the daemon ends.
pub async fn watch(d: Arc<Daemon>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let d = d.clone();
        let _ = tokio::task::spawn_blocking(move || look(&d)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each owner keeps its own last events: one user's churn does not
    /// push another's out of what `since` gives back, and root sees all
    /// of them in order.
    #[test]
    fn kept_events_are_kept_per_owner() {
        let bus = Bus::new(2);
        bus.publish(1001, EventKind::Created, "b", "b", None);
        for n in 0..5 {
            bus.publish(1000, EventKind::Created, &format!("a{n}"), "a", None);
        }
        let ids = |owner| -> Vec<String> {
            bus.subscribe(f64::MIN_POSITIVE, owner)
                .kept
                .iter()
                .map(|e| e.event.id.clone())
                .collect()
        };
        assert_eq!(ids(Some(1001)), ["b"]);
        assert_eq!(ids(Some(1000)), ["a3", "a4"]);
        assert_eq!(ids(None), ["b", "a3", "a4"]);
        assert!(ids(Some(7)).is_empty());
        // Nothing replayed for 0: only what comes next.
        assert!(bus.subscribe(0.0, None).kept.is_empty());
    }

    /// A sandbox whose Delete is under way is the Delete's to announce:
    /// the watch, finding its directory gone first, announced `exited`
    /// without the exit status the Delete had.
    #[test]
    fn the_watch_leaves_a_sandbox_being_deleted_to_its_delete() {
        let dir = std::env::temp_dir().join(format!("airlockd-watch-{}", std::process::id()));
        let root = airlock::state::StateRoot::open(&dir).unwrap();
        let d = Daemon::new(
            crate::config::Config::default(),
            root,
            Default::default(),
            None,
            None,
        );
        let id = "ab".repeat(32);
        // Stopped without a report: its exit is the 137 of a killed one.
        let st: State = serde_json::from_value(serde_json::json!({
            "id": id, "name": "web", "status": "stopped", "created": 0.0,
            "detached": true, "spec": {},
        }))
        .unwrap();
        let m = meta::Meta {
            owner: 1000,
            ..Default::default()
        };
        know(&d, &m, &st, Status::Running);
        deleting(&d, &id, true);
        // Its directory is gone (never made here), as mid-Delete.
        look(&d);
        let events = |d: &Daemon| -> Vec<(EventKind, Option<i32>)> {
            d.bus
                .subscribe(f64::MIN_POSITIVE, None)
                .kept
                .iter()
                .map(|e| (e.event.kind(), e.event.exit.as_ref().map(|x| x.code)))
                .collect()
        };
        assert!(events(&d).is_empty(), "{:?}", events(&d));
        // Nor when the Delete began after the watch read what it knew.
        let before = Seen {
            deleting: false,
            ..d.known.lock().unwrap()[&id].clone()
        };
        look_at(&d, &id, &before);
        assert!(events(&d).is_empty(), "{:?}", events(&d));
        gone(&d, &id, Some(&st));
        assert_eq!(
            events(&d),
            [(EventKind::Exited, Some(137)), (EventKind::Deleted, None)]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
