//! Load: 200 sandboxes created, started, exec'd into and deleted by 16
//! concurrent clients, then a check that nothing leaked — no sandbox
//! process, cgroup, mount, state file or daemon fd beyond the baseline —
//! and that the daemon's memory stayed bounded. The rate and the RSS are
//! printed (the README's figures come from here), never asserted on time.

mod common;

use airlock_client::proto;
use common::*;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const SANDBOXES: usize = 200;
const CLIENTS: usize = 16;

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn mounts() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

/// The cgroup directories named after any of `ids` under our own cgroup,
/// in every hierarchy.
fn cgroups_of(ids: &BTreeSet<String>) -> Vec<String> {
    let mut left = Vec::new();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    for line in own.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrl, path) = (f.next(), f.next().unwrap(), f.next().unwrap());
        let mount = match ctrl {
            "" => {
                if std::path::Path::new("/sys/fs/cgroup/unified").exists() {
                    "/sys/fs/cgroup/unified".to_string()
                } else {
                    "/sys/fs/cgroup".to_string()
                }
            }
            c => format!("/sys/fs/cgroup/{}", c.trim_start_matches("name=")),
        };
        let dir = format!("{mount}{path}");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.strip_prefix("airlock-")
                .is_some_and(|id| ids.contains(id))
            {
                left.push(format!("{dir}/{n}"));
            }
        }
    }
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_sandboxes_from_sixteen_clients_leak_nothing() {
    if !root_or_skip("two_hundred_sandboxes_from_sixteen_clients_leak_nothing") {
        return;
    }
    let d = Daemon::start("max_sandboxes = 64");
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(d.client().await);
    }
    // Warm up (the runtime's threads, the first cgroups), then the baseline.
    for i in 0..4 {
        let c = &mut clients[0];
        let sb = run(c, &format!("warm{i}"), &["sleep", "30"]).await;
        c.exec_output(&sb.id, &["true"]).await.unwrap();
        c.delete(&sb.id, true).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (fds0, rss0, mounts0) = (fds(d.pid()), rss_kib(d.pid()), mounts());

    let next = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new((BTreeSet::new(), Vec::new())));
    let peak_rss = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for mut c in clients.drain(..) {
        let (next, seen, peak, pid) = (next.clone(), seen.clone(), peak_rss.clone(), d.pid());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::SeqCst) < SANDBOXES {
                let sb = c
                    .create(proto::CreateRequest {
                        args: args(&["sleep", "30"]),
                        start: true,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .sandbox
                    .unwrap();
                // The supervisor stays the daemon's child (no fork to
                // leave it), and the daemon reaps it (below).
                assert_eq!(
                    state_and_parent(sb.supervisor_pid).map(|(_, ppid)| ppid),
                    Some(pid as i32),
                    "the supervisor's parent"
                );
                let ran = c.exec_output(&sb.id, &["echo", "hi"]).await.unwrap();
                assert_eq!(ran.stdout, b"hi\n");
                {
                    let mut s = seen.lock().unwrap();
                    s.0.insert(sb.id.clone());
                    s.1.extend([sb.pid, sb.supervisor_pid]);
                }
                c.delete(&sb.id, true).await.unwrap();
                peak.fetch_max(rss_kib(pid) as usize, Ordering::SeqCst);
            }
            c
        }));
    }
    for t in tasks {
        clients.push(t.await.unwrap());
    }
    let secs = t.elapsed().as_secs_f64();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (ids, pids) = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(ids.len(), SANDBOXES);
    let rss1 = rss_kib(d.pid());
    eprintln!(
        "load: {SANDBOXES} sandboxes (create, start, exec, delete) from {CLIENTS} clients in {secs:.1} s: \
         {:.1} sandboxes/s; daemon RSS {rss0} KiB before, {} KiB peak, {rss1} KiB after",
        SANDBOXES as f64 / secs,
        peak_rss.load(Ordering::SeqCst)
    );

    assert!(
        d.sandbox_dirs().is_empty(),
        "state left: {:?}",
        d.sandbox_dirs()
    );
    assert!(
        d.indexed_names().is_empty(),
        "names left: {:?}",
        d.indexed_names()
    );
    // A supervisor may still be on its way out after the delete answered.
    let mut living: Vec<i32> = pids;
    for _ in 0..50 {
        living.retain(|p| alive(*p));
        if living.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(living.is_empty(), "sandbox processes left: {living:?}");
    // Reaped as each one's pidfd woke the daemon: give a slow machine time.
    let mut zombies = zombie_children(d.pid());
    for _ in 0..50 {
        if zombies.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        zombies = zombie_children(d.pid());
    }
    assert!(zombies.is_empty(), "supervisors not reaped: {zombies:?}");
    assert_eq!(cgroups_of(&ids), Vec::<String>::new(), "cgroups left");
    assert_eq!(mounts(), mounts0, "host mounts changed");
    let fds1 = fds(d.pid());
    assert!(fds1 <= fds0 + 2, "daemon fds: {fds0} before, {fds1} after");
    assert!(
        rss1 < 64 << 10,
        "daemon RSS {rss1} KiB after {SANDBOXES} sandboxes"
    );
    let leftovers: Vec<_> = std::fs::read_dir(d.state_root())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with(".console"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
