//! The state root: names, creation, lookup and removal of sandbox directories.
use super::*;

/// A state root of the test's own under the temporary directory, removed
/// when the guard is dropped (when the test fails too).
struct TempRoot(std::path::PathBuf);

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_root(tag: &str) -> (TempRoot, StateRoot) {
    let dir = std::env::temp_dir().join(format!("airlock-{tag}-{}", std::process::id()));
    let root = StateRoot::open(&dir).unwrap();
    (TempRoot(dir), root)
}

#[test]
fn names() {
    assert!(check_name("web-1.a_b").is_ok());
    // runc's ids may hold '+'; containerd's run to 76 characters.
    assert!(check_name("c++.1").is_ok());
    assert!(check_name(&"x".repeat(128)).is_ok());
    for bad in ["", "-x", ".x", "+x", "a/b", "a b", "a:b", &"x".repeat(129)] {
        assert!(check_name(bad).is_err(), "{bad:?}");
    }
}

/// Only a missing `alive` file or an unheld lock says the supervisor is
/// gone: a failure to look (here ELOOP; EMFILE in a busy daemon) is no
/// proof, and a running sandbox must not be taken for a stopped one.
#[test]
fn a_failure_to_look_is_not_a_stopped_sandbox() {
    let (_tmp, root) = temp_root("state-alive");
    let (sb, alive) = root
        .create(&new_id().unwrap(), None, &SandboxSpec::default(), true)
        .unwrap();
    drop(alive);
    assert!(!sb.alive());
    let file = sb.dir.join("alive");
    std::fs::remove_file(&file).unwrap();
    assert!(!sb.alive(), "no file: gone");
    assert!(sb.wait_ended(Some(std::time::Duration::ZERO)));
    std::os::unix::fs::symlink("alive", &file).unwrap();
    assert!(sb.alive(), "cannot tell: not gone");
    assert!(!sb.wait_ended(Some(std::time::Duration::ZERO)));
    assert_ne!(sb.state().unwrap().status, Status::Stopped);
}

#[test]
fn ids_are_64_hex_and_differ() {
    let (a, b) = (new_id().unwrap(), new_id().unwrap());
    assert!(is_id(&a) && is_id(&b));
    assert_ne!(a, b);
}

#[test]
fn create_find_and_remove() {
    let (_tmp, root) = temp_root("state-test");
    let spec = SandboxSpec::default();
    let (sb, alive) = root
        .create(&new_id().unwrap(), Some("one"), &spec, true)
        .unwrap();
    assert!(sb.alive(), "the creator holds the alive lock");
    assert!(matches!(
        root.create(&new_id().unwrap(), Some("one"), &spec, true),
        Err(StateError::NameInUse(_))
    ));
    let (found, st) = root.find("one").unwrap();
    assert_eq!(found.id, sb.id);
    assert_eq!(st.status, Status::Creating);
    assert_eq!(root.find(&sb.id[..8]).unwrap().0.id, sb.id);
    assert!(matches!(root.find("nope"), Err(StateError::NotFound(_))));
    drop(alive);
    let st = sb.state().unwrap();
    assert_eq!(st.status, Status::Stopped, "no supervisor: stopped");
    assert!(st.reason.is_some());
    sb.remove().unwrap();
    // A second remover (an `rm` that met a supervisor's remove-on-exit)
    // finds it removed, not an I/O error.
    assert!(matches!(sb.remove(), Err(StateError::Removed(_))));
    assert!(root.list().is_empty());
}

/// A new sandbox of `spec` recorded stopped ("done") by its supervisor,
/// which is gone, and its last state without the spec.
fn stopped(root: &StateRoot, spec: &SandboxSpec) -> (SandboxDir, State) {
    let (sb, alive) = root.create(&new_id().unwrap(), None, spec, true).unwrap();
    let mut last = None;
    sb.update(|st| {
        st.status = Status::Stopped;
        st.reason = Some("done".into());
        last = Some(st.without_spec());
    })
    .unwrap();
    drop(alive);
    (sb, last.unwrap())
}

/// A sandbox removed keeping its end leaves its last state, without its
/// spec, in `.ended` (`state_or_end` gives it), not among the sandboxes;
/// a plain removal keeps nothing. A record is given for five minutes and
/// goes when the next is kept after that; one not stopped is no end.
#[test]
fn an_end_is_kept_for_a_while() {
    let (_tmp, root) = temp_root("state-ended");
    let spec = SandboxSpec {
        process: crate::spec::Process {
            args: vec!["big".repeat(1000)],
            ..Default::default()
        },
        ..Default::default()
    };
    let made = || stopped(&root, &spec);
    let record = |sb: &SandboxDir| root.path().join(".ended/1000").join(&sb.id);
    let (first, last) = made();
    first.remove_keeping_end(&last, 1000).unwrap();
    assert!(matches!(first.state(), Err(StateError::Removed(_))));
    let st = first.state_or_end().unwrap();
    assert_eq!(
        (st.id.as_str(), st.reason.as_deref()),
        (first.id.as_str(), Some("done"))
    );
    assert!(
        std::fs::metadata(record(&first)).unwrap().len() < 1000,
        "no spec"
    );
    assert!(root.list().is_empty());
    let (plain, _) = made();
    plain.remove().unwrap();
    assert!(plain.kept_end().is_none());
    assert!(matches!(plain.state_or_end(), Err(StateError::Removed(_))));
    let (second, last) = made();
    second.remove_keeping_end(&last, 1000).unwrap();
    assert!(first.kept_end().is_some() && second.kept_end().is_some());
    // Five minutes and a second ago, the first was.
    let then = std::time::SystemTime::now() - std::time::Duration::from_secs(301);
    let age = |sb: &SandboxDir| {
        std::fs::File::options()
            .write(true)
            .open(record(sb))
            .unwrap()
            .set_modified(then)
            .unwrap()
    };
    age(&first);
    assert!(first.kept_end().is_none());
    let (third, last) = made();
    third.remove_keeping_end(&last, 1000).unwrap();
    assert!(!record(&first).exists());
    assert!(second.kept_end().is_some() && third.kept_end().is_some());
    // Or at the next listing.
    age(&second);
    assert!(root.list().is_empty());
    assert!(!record(&second).exists());
    let mut running = last.clone();
    running.status = Status::Running;
    std::fs::write(record(&third), serde_json::to_vec(&running).unwrap()).unwrap();
    assert!(third.kept_end().is_none());
}

/// Ends are kept by the uid the sandboxes were started for: another
/// caller of the same state root (a daemon's) ending hundreds of
/// sandboxes in a burst pushes its own oldest out, not this one's.
#[test]
fn an_end_is_kept_among_its_owners() {
    let (_tmp, root) = temp_root("state-ended-owners");
    let (sb, last) = stopped(&root, &SandboxSpec::default());
    sb.remove_keeping_end(&last, 1000).unwrap();
    for _ in 0..300 {
        let mut other = last.clone();
        other.id = new_id().unwrap();
        super::ended::keep(root.path(), &other, 1001);
    }
    assert!(sb.kept_end().is_some(), "pushed out by another uid's ends");
    // Each uid's own are bounded.
    let kept = |uid: &str| {
        std::fs::read_dir(root.path().join(".ended").join(uid))
            .unwrap()
            .count()
    };
    assert_eq!(kept("1001"), 256);
    assert_eq!(kept("1000"), 1);
}

#[test]
fn names_are_found_without_the_states_and_freed_with_the_sandbox() {
    let (tmp, root) = temp_root("names-test");
    let spec = SandboxSpec::default();
    let (a, _alive) = root
        .create(&new_id().unwrap(), Some("web"), &spec, true)
        .unwrap();
    assert_eq!(root.lookup("web").unwrap().0.id, a.id, "by name");
    assert_eq!(root.lookup(&a.id).unwrap().0.id, a.id, "by whole id");
    assert!(root.lookup(&a.id[..8]).is_none(), "a prefix is find's");
    assert_eq!(root.count(), 1);
    // A link whose sandbox is gone (a crash between the two) frees
    // the name; one that leads to another name's state is not trusted.
    std::os::unix::fs::symlink("f".repeat(64), tmp.0.join(".names/old")).unwrap();
    std::os::unix::fs::symlink(&a.id, tmp.0.join(".names/liar")).unwrap();
    assert!(root.lookup("liar").is_none());
    // A name that is another sandbox's whole id: the id still finds its
    // own (a daemon client named its sandbox after root's to catch root's
    // exec and rm).
    let (c, _c_alive) = root
        .create(&new_id().unwrap(), Some("c"), &spec, true)
        .unwrap();
    let file = c.dir.join("state.json");
    let mut st: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    st["name"] = a.id.clone().into();
    std::fs::write(&file, st.to_string()).unwrap();
    std::os::unix::fs::symlink(&c.id, tmp.0.join(".names").join(&a.id)).unwrap();
    assert_eq!(root.lookup(&a.id).unwrap().0.id, a.id);
    let mut all: Vec<_> = root.list().into_iter().map(|(d, s)| (d, s, ())).collect();
    all.sort_by_key(|(d, _, _)| d.id != c.id); // the impostor first
    assert_eq!(all[0].1.name, a.id);
    assert_eq!(find_in(all, &a.id).unwrap().0.id, a.id);
    let (b, _b_alive) = root
        .create(&new_id().unwrap(), Some("old"), &spec, true)
        .unwrap();
    assert_eq!(root.find("old").unwrap().0.id, b.id);
    a.remove().unwrap();
    assert!(root.lookup("web").is_none(), "freed with its sandbox");
    let (c, _c_alive) = root
        .create(&new_id().unwrap(), Some("web"), &spec, true)
        .unwrap();
    assert_eq!(root.find("web").unwrap().0.id, c.id);
}

/// A holder whose state cannot be read just now (here a directory where
/// state.json should be: EISDIR, as EMFILE or EIO would be) keeps its
/// name: the claim is an error, not a second sandbox with the name.
#[test]
fn a_holder_that_cannot_be_read_keeps_its_name() {
    let (_tmp, root) = temp_root("names-unread");
    let spec = SandboxSpec::default();
    let (a, _alive) = root
        .create(&new_id().unwrap(), Some("web"), &spec, true)
        .unwrap();
    let file = a.dir.join("state.json");
    let kept = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    assert!(root
        .create(&new_id().unwrap(), Some("web"), &spec, true)
        .is_err());
    std::fs::remove_dir(&file).unwrap();
    std::fs::write(&file, kept).unwrap();
    assert_eq!(root.lookup("web").unwrap().0.id, a.id);
}

#[test]
fn a_root_made_before_the_index_gets_it_from_the_states() {
    let (tmp, root) = temp_root("names-old");
    let spec = SandboxSpec::default();
    let (a, _alive) = root
        .create(&new_id().unwrap(), Some("web"), &spec, true)
        .unwrap();
    std::fs::remove_dir_all(tmp.0.join(".names")).unwrap();
    assert!(matches!(
        root.create(&new_id().unwrap(), Some("web"), &spec, true),
        Err(StateError::NameInUse(_))
    ));
    assert_eq!(root.lookup("web").unwrap().0.id, a.id);
}

#[test]
fn the_recorded_spec_is_read_only_when_asked_for() {
    let (_tmp, root) = temp_root("spec-test");
    let spec = SandboxSpec::builder()
        .default_view()
        .args(["/bin/echo", "hi"])
        .build();
    let (sb, _alive) = root
        .create(&new_id().unwrap(), Some("kept"), &spec, true)
        .unwrap();
    assert_eq!(sb.state().unwrap().spec.get().unwrap(), spec);
    // A spec this version cannot build (another version's field) leaves
    // the rest of the state readable, and says so when it is asked for.
    let text = std::fs::read_to_string(sb.dir.join("state.json")).unwrap();
    let text = text.replacen("\"process\":{", "\"process\":{\"from_the_future\":1,", 1);
    sb.write_atomic("state.json", text.as_bytes()).unwrap();
    let st = sb.state().unwrap();
    assert_eq!((st.name.as_str(), st.status), ("kept", Status::Creating));
    let err = st.spec.get().unwrap_err().to_string();
    assert!(err.contains("from_the_future"), "{err}");
    // Written back as it was recorded.
    sb.update(|s| s.reason = Some("kept as text".into()))
        .unwrap();
    assert!(std::fs::read_to_string(sb.dir.join("state.json"))
        .unwrap()
        .contains("\"process\":{\"from_the_future\":1,"));
}

#[test]
fn a_state_file_is_replaced_whole_and_leaves_no_temporary() {
    let (_tmp, root) = temp_root("state-replace");
    let (sb, _alive) = root
        .create(&new_id().unwrap(), None, &SandboxSpec::default(), true)
        .unwrap();
    sb.write_atomic("x.json", b"first").unwrap();
    // A reader that opened the old file keeps reading all of it; the
    // next one reads all of the new.
    let mut before = File::open(sb.dir.join("x.json")).unwrap();
    sb.write_atomic("x.json", b"second, longer").unwrap();
    let mut old = String::new();
    io::Read::read_to_string(&mut before, &mut old).unwrap();
    assert_eq!(old, "first");
    assert_eq!(
        std::fs::read_to_string(sb.dir.join("x.json")).unwrap(),
        "second, longer"
    );
    let left: Vec<String> = std::fs::read_dir(&sb.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    sb.remove().unwrap();
}

#[test]
fn a_state_file_that_does_not_parse_is_listed_stopped_once_its_supervisor_is_gone() {
    let (_tmp, root) = temp_root("state-unreadable");
    let (sb, alive) = root
        .create(
            &new_id().unwrap(),
            Some("torn"),
            &SandboxSpec::default(),
            true,
        )
        .unwrap();
    std::fs::write(sb.dir.join("state.json"), b"").unwrap();
    // Its supervisor still there: an error, not a guess.
    assert!(sb.state().is_err());
    assert!(root.list().is_empty());
    drop(alive);
    let listed = root.list();
    assert_eq!(listed.len(), 1);
    let st = &listed[0].1;
    assert_eq!(
        (st.status, st.id.as_str()),
        (Status::Stopped, sb.id.as_str())
    );
    assert!(
        st.reason
            .as_deref()
            .unwrap()
            .contains("state.json cannot be read"),
        "{st:?}"
    );
    let (found, _) = root.find(&sb.id[..10]).unwrap();
    found.remove().unwrap();
    assert!(!sb.dir.exists());
    assert!(root.list().is_empty());
}

/// A name whose sandbox cannot be read (its supervisor still there) is
/// that error: not "no such sandbox", for which `rm -f` would report it
/// gone, and not another sandbox whose id starts with the name.
#[test]
fn a_name_whose_state_cannot_be_read_is_not_missing() {
    let (_tmp, root) = temp_root("state-unreadable-name");
    let id = new_id().unwrap();
    let prefix = &id[..8];
    let (_other, _other_alive) = root
        .create(&id, None, &SandboxSpec::default(), true)
        .unwrap();
    let (sb, _alive) = root
        .create(
            &new_id().unwrap(),
            Some(prefix),
            &SandboxSpec::default(),
            true,
        )
        .unwrap();
    assert_eq!(root.find(prefix).unwrap().0.id, sb.id);
    std::fs::write(sb.dir.join("state.json"), b"").unwrap();
    match root.find(prefix) {
        Err(StateError::Io { .. }) => {}
        Err(e) => panic!("{e}"),
        Ok((d, _)) => panic!("found {} for {prefix}", d.id),
    }
}

/// One with no state file at all (a crash between making its directory
/// and recording its first state) is listed stopped and can be removed;
/// while a create holds the root's lock, as it does over both steps, it
/// is not.
#[test]
fn a_sandbox_without_a_state_file_is_listed_stopped_once_no_create_is_on() {
    let (_tmp, root) = temp_root("state-missing");
    let (sb, alive) = root
        .create(
            &new_id().unwrap(),
            Some("bare"),
            &SandboxSpec::default(),
            true,
        )
        .unwrap();
    std::fs::remove_file(sb.dir.join("state.json")).unwrap();
    assert!(sb.state().is_err(), "its supervisor still there");
    drop(alive);
    let creating = lock_file(&root.path().join(".lock"), true).unwrap();
    assert!(sb.state().is_err(), "a create is on");
    drop(creating);
    let listed = root.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1.status, Status::Stopped);
    let (found, _) = root.find(&sb.id[..10]).unwrap();
    found.remove().unwrap();
    assert!(!sb.dir.exists());
}

#[test]
fn updates_from_two_writers_at_once_lose_nothing() {
    // The supervisor records what happens while a caller changes the
    // limits: each reads, changes and writes state.json, and neither may
    // undo the other's change or find its temporary file gone.
    let (_tmp, root) = temp_root("state-writers");
    let (sb, alive) = root
        .create(&new_id().unwrap(), None, &SandboxSpec::default(), true)
        .unwrap();
    const N: i32 = 300;
    std::thread::scope(|s| {
        let one = s.spawn(|| {
            for _ in 0..N {
                sb.update(|st| st.pid = Some(st.pid.unwrap_or(0) + 1))
                    .unwrap();
            }
        });
        for _ in 0..N {
            sb.update(|st| st.supervisor_pid = Some(st.supervisor_pid.unwrap_or(0) + 1))
                .unwrap();
        }
        one.join().unwrap();
    });
    let st = sb.recorded().unwrap();
    assert_eq!((st.pid, st.supervisor_pid), (Some(N), Some(N)));
    drop(alive);
    sb.remove().unwrap();
}

/// A supervisor that records the end and goes between the read of a
/// sandbox's state and the look at its `alive` lock (a workload that ran
/// and ended at once): the state is its record, not "ended without
/// recording an exit" (which `airlock-runtime start` then reported under
/// podman, for a container that had run).
#[test]
fn a_supervisor_that_recorded_and_went_meanwhile_is_read_as_recorded() {
    let (_tmp, root) = temp_root("state-race");
    let spec = SandboxSpec::default();
    let (sb, alive) = root
        .create(&new_id().unwrap(), Some("quick"), &spec, true)
        .unwrap();
    sb.update(|st| st.status = Status::Created).unwrap();
    let st = sb
        .state_seeing(|| {
            sb.update(|st| {
                st.status = Status::Stopped;
                st.started = Some(1.0);
            })
            .unwrap();
            false
        })
        .unwrap();
    assert_eq!(st.status, Status::Stopped);
    assert_eq!(st.started, Some(1.0));
    assert_eq!(st.reason, None, "{:?}", st.reason);
    // One that did die without a record is still told as such.
    sb.update(|st| st.status = Status::Running).unwrap();
    let st = sb.state_seeing(|| false).unwrap();
    assert_eq!(st.status, Status::Stopped);
    assert!(st.reason.is_some_and(|r| r.contains("without recording")));
    drop(alive);
}

/// A signal that meets a supervisor between letting its socket go and
/// recording the end is told "nothing to signal", naming the sandbox,
/// not that the supervisor is not running; one that does not end keeps
/// the socket's error.
#[test]
fn a_signal_to_a_sandbox_ending_meanwhile_has_nothing_to_signal() {
    let (_tmp, root) = temp_root("state-signal-ending");
    let (sb, alive) = root
        .create(
            &new_id().unwrap(),
            Some("ending"),
            &SandboxSpec::default(),
            true,
        )
        .unwrap();
    sb.update(|st| st.status = Status::Running).unwrap();
    let ending = {
        let sb = sb.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            sb.update(|st| st.status = Status::Stopped).unwrap();
            drop(alive);
        })
    };
    let e = sb.signal(libc::SIGTERM).unwrap_err().to_string();
    ending.join().unwrap();
    assert!(
        e.contains("ending") && e.contains("nothing to signal"),
        "{e}"
    );
    let (sb, _alive) = root
        .create(
            &new_id().unwrap(),
            Some("stuck"),
            &SandboxSpec::default(),
            true,
        )
        .unwrap();
    sb.update(|st| st.status = Status::Running).unwrap();
    let e = sb.signal(libc::SIGTERM).unwrap_err().to_string();
    assert!(!e.contains("nothing to signal"), "{e}");
}

/// A state root in /tmp that another user made first (what the default is
/// without XDG_RUNTIME_DIR) is refused, and the error says how to get one
/// of one's own.
#[test]
fn a_state_root_another_user_made_in_tmp_says_what_to_do() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: this test needs root (CI runs it as root): it gives a directory away");
        return;
    }
    let dir = std::path::PathBuf::from(format!("/tmp/airlock-taken-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    let _gone = TempRoot(dir.clone());
    rustix::fs::chown(&dir, Some(rustix::fs::Uid::from_raw(65533)), None).unwrap();
    let Err(e) = StateRoot::open(&dir) else {
        panic!("a root another user owns was accepted");
    };
    let e = e.to_string();
    assert!(
        e.contains("owned by uid 65533") && e.contains("XDG_RUNTIME_DIR"),
        "{e}"
    );
}

/// An update whose later write the kernel refuses puts back what it
/// wrote before, so the sandbox keeps the limits its state records. (The
/// cgroups are plain files here, pids.max a directory no write can go
/// to: on a real host the refusal would be EBUSY for a memory limit
/// below what the workload uses.)
#[test]
fn an_update_refused_halfway_puts_back_what_it_wrote() {
    let (tmp, root) = temp_root("update-rollback");
    let spec = SandboxSpec {
        resources: crate::spec::Resources {
            memory: Some(crate::spec::Size(64 << 20)),
            pids: Some(32),
            ..Default::default()
        },
        ..SandboxSpec::default()
    };
    let (sb, _alive) = root
        .create(&new_id().unwrap(), Some("limits"), &spec, true)
        .unwrap();
    let (memory, pids) = (tmp.0.join("cg-memory"), tmp.0.join("cg-pids"));
    std::fs::create_dir_all(pids.join("pids.max")).unwrap();
    std::fs::create_dir_all(&memory).unwrap();
    let limit = memory.join("memory.limit_in_bytes");
    let memsw = memory.join("memory.memsw.limit_in_bytes");
    std::fs::write(&limit, "67108864\n").unwrap();
    std::fs::write(&memsw, "67108864\n").unwrap();
    sb.update(|st| {
        st.status = Status::Running;
        st.cgroup = Some(CgroupPaths {
            v2: None,
            v1: [("memory".into(), memory.clone()), ("pids".into(), pids)].into(),
            made: Vec::new(),
        });
    })
    .unwrap();
    let new = crate::spec::Resources {
        memory: Some(crate::spec::Size(128 << 20)),
        pids: Some(64),
        ..Default::default()
    };
    let e = sb.update_resources(&new).unwrap_err().to_string();
    assert!(e.contains("resources.pids"), "{e}");
    assert_eq!(std::fs::read_to_string(&limit).unwrap(), "67108864");
    assert_eq!(std::fs::read_to_string(&memsw).unwrap(), "67108864");
    let st = sb.state().unwrap();
    assert_eq!(
        st.spec.get().unwrap().resources.memory,
        Some(crate::spec::Size(64 << 20))
    );
}

/// A v1 I/O weight goes to BFQ's `blkio.bfq.weight` where the host has
/// no `blkio.weight` (CFQ's, gone since Linux 5.0), as runc writes it,
/// on BFQ's scale (default 100, at most 1000): the default share was
/// written as CFQ's 500, five times a default sibling's; on v2 BFQ's
/// `io.bfq.weight` is written where it is (`io.weight` is iocost's).
#[test]
fn an_io_weight_goes_to_bfq_where_cfq_is_gone() {
    let (tmp, root) = temp_root("update-bfq");
    let (sb, _alive) = root
        .create(
            &new_id().unwrap(),
            Some("io"),
            &SandboxSpec::default(),
            true,
        )
        .unwrap();
    let blkio = tmp.0.join("cg-blkio");
    std::fs::create_dir_all(&blkio).unwrap();
    std::fs::write(blkio.join("blkio.bfq.weight"), "100\n").unwrap();
    sb.update(|st| {
        st.status = Status::Running;
        st.cgroup = Some(CgroupPaths {
            v2: None,
            v1: [("blkio".into(), blkio.clone())].into(),
            made: Vec::new(),
        });
    })
    .unwrap();
    let new = crate::spec::Resources {
        io_weight: Some(100),
        ..Default::default()
    };
    sb.update_resources(&new).unwrap();
    let written = || std::fs::read_to_string(blkio.join("blkio.bfq.weight")).unwrap();
    assert_eq!(written(), "100");
    assert!(!blkio.join("blkio.weight").exists());
    for (weight, bfq) in [(10_000, "1000"), (1, "1"), (1_000, "181")] {
        let new = crate::spec::Resources {
            io_weight: Some(weight),
            ..Default::default()
        };
        sb.update_resources(&new).unwrap();
        assert_eq!(written(), bfq, "{weight}");
    }
    // v2: io.bfq.weight beside iocost's io.weight.
    let v2 = tmp.0.join("cg-v2");
    std::fs::create_dir_all(&v2).unwrap();
    std::fs::write(v2.join("cgroup.controllers"), "io\n").unwrap();
    for f in ["io.weight", "io.bfq.weight"] {
        std::fs::write(v2.join(f), "default 100\n").unwrap();
    }
    sb.update(|st| {
        st.cgroup = Some(CgroupPaths {
            v2: Some(v2.clone()),
            v1: Default::default(),
            made: Vec::new(),
        });
    })
    .unwrap();
    let new = crate::spec::Resources {
        io_weight: Some(50),
        ..Default::default()
    };
    sb.update_resources(&new).unwrap();
    assert_eq!(
        std::fs::read_to_string(v2.join("io.bfq.weight")).unwrap(),
        "50"
    );
    assert_eq!(
        std::fs::read_to_string(v2.join("io.weight")).unwrap(),
        "default 100\n"
    );
}

/// A wait that starts while the sandbox is being made (its maker holding
/// `alive`, the supervisor not yet running) does not keep the supervisor
/// from taking the directory's lock, and returns once both are let go.
#[test]
fn a_wait_during_the_making_holds_nothing_up() {
    let (_tmp, root) = temp_root("wait-making");
    let (sb, alive) = root
        .create(&new_id().unwrap(), Some("w"), &SandboxSpec::default(), true)
        .unwrap();
    let waiter = {
        let sb = sb.clone();
        std::thread::spawn(move || sb.wait_ended(None))
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    // The supervisor's lock, taken in a thread of its own: it must not
    // wait on the waiter.
    let (tx, rx) = std::sync::mpsc::channel();
    let held = {
        let sb = sb.clone();
        std::thread::spawn(move || {
            let lock = sb.hold_alive().unwrap();
            tx.send(()).unwrap();
            lock
        })
    };
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("the supervisor's lock was held off by a waiter");
    let dir_lock = held.join().unwrap();
    drop(alive);
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(!waiter.is_finished(), "the directory is still held");
    assert!(sb.alive());
    drop(dir_lock);
    assert!(waiter.join().unwrap());
    assert!(!sb.alive());
}

/// A directory renamed to be removed whose remover died is swept by the
/// next listing; one whose remover still holds the sandbox's lock or its
/// alive lock is left to it.
#[test]
fn a_removal_cut_short_is_finished_by_a_listing() {
    let (_tmp, root) = temp_root("state-sweep");
    let spec = SandboxSpec::default();
    let mut made = Vec::new();
    for _ in 0..3 {
        let (sb, alive) = root.create(&new_id().unwrap(), None, &spec, true).unwrap();
        std::fs::write(sb.dir.join("stdout.log"), "left").unwrap();
        let gone = sb.dir.with_file_name(format!(".{}.removed", sb.id));
        std::fs::rename(&sb.dir, &gone).unwrap();
        made.push((SandboxDir::at(&gone), alive));
    }
    let [(dead, dead_alive), (removing, removing_alive), (supervised, supervised_alive)]: [_; 3] =
        made.try_into().unwrap();
    drop((dead_alive, removing_alive));
    let rm_lock = removing.lock().unwrap();
    assert!(root.list().is_empty());
    assert!(!dead.dir.exists(), "no remover left: swept");
    assert!(removing.dir.exists(), "an rm holds its lock: left to it");
    assert!(
        supervised.dir.exists(),
        "a supervisor holds alive: left to it"
    );
    drop((rm_lock, supervised_alive));
    root.list();
    assert!(!removing.dir.exists() && !supervised.dir.exists());
    // A name that only looks like one is not touched.
    let other = root.path().join(".notanid.removed");
    std::fs::create_dir(&other).unwrap();
    root.list();
    assert!(other.exists());
}

/// A state file that names another sandbox, or a name no sandbox can
/// have (a hand's edit), is not taken as this sandbox's record: it is
/// listed as an unreadable, stopped one.
#[test]
fn a_state_file_of_another_sandbox_is_unreadable() {
    let (_tmp, root) = temp_root("state-foreign");
    let (sb, alive) = root
        .create(
            &new_id().unwrap(),
            Some("mine"),
            &SandboxSpec::default(),
            true,
        )
        .unwrap();
    drop(alive);
    let good = std::fs::read_to_string(sb.dir.join("state.json")).unwrap();
    for (from, to) in [
        (
            format!("\"id\": \"{}\"", sb.id),
            "\"id\": \"x\"".to_string(),
        ),
        (
            "\"name\": \"mine\"".to_string(),
            "\"name\": \"../../x\"".to_string(),
        ),
    ] {
        assert!(good.contains(&from), "{good}");
        std::fs::write(sb.dir.join("state.json"), good.replace(&from, &to)).unwrap();
        let listed = root.list();
        assert_eq!(listed.len(), 1);
        let st = &listed[0].1;
        assert_eq!(
            (st.id.as_str(), st.status),
            (sb.id.as_str(), Status::Stopped)
        );
        assert_eq!(st.name, sb.id[..12]);
        assert!(
            st.reason.as_ref().unwrap().contains("cannot be read"),
            "{st:?}"
        );
    }
}

/// A sandbox that removes itself on exit may start, run and be gone
/// before `start` first looks again: started all the same, not an error.
#[test]
fn a_start_that_ends_and_takes_its_directory_along_is_started() {
    let (_tmp, root) = temp_root("state-start-rm");
    let (sb, alive) = root
        .create(&new_id().unwrap(), None, &SandboxSpec::default(), true)
        .unwrap();
    sb.update(|st| st.status = Status::Created).unwrap();
    let listener = control::listen(&sb.dir).unwrap();
    let supervisor = {
        let sb = SandboxDir::at(&sb.dir);
        std::thread::spawn(move || {
            let incoming = control::accept(&listener).unwrap().unwrap();
            assert!(matches!(incoming.request, control::Request::Start));
            // Ran, recorded its end and removed its directory, as a
            // supervisor of `--rm` does, before it answers.
            sb.update(|st| st.status = Status::Stopped).unwrap();
            sb.remove().unwrap();
            drop(alive);
            incoming.reply(Ok(()));
        })
    };
    sb.start().unwrap();
    supervisor.join().unwrap();
    assert!(!sb.dir.exists());
}

/// A pid is taken for the sandbox's supervisor only while that process
/// holds the sandbox's directory open.
#[test]
fn a_supervisor_pid_is_known_by_the_directory_it_holds() {
    let (_tmp, root) = temp_root("state-held");
    let (sb, _alive) = root
        .create(&new_id().unwrap(), None, &SandboxSpec::default(), true)
        .unwrap();
    let me = std::process::id() as i32;
    assert!(
        !sb.held_by(me),
        "only the alive file is open, not the directory"
    );
    let held = sb.hold_alive().unwrap();
    assert!(sb.held_by(me));
    let mut other = std::process::Command::new("sleep")
        .arg("5")
        .spawn()
        .unwrap();
    assert!(!sb.held_by(other.id() as i32), "another process");
    other.kill().unwrap();
    other.wait().unwrap();
    drop(held);
    assert!(!sb.held_by(me));
}

/// A process tree read from each thread's `children` is the tree a scan
/// of every process's parent gives: the shell, its two children and the
/// grandchild, whatever else runs on the host.
#[test]
fn a_tree_read_by_children_is_the_scanned_tree() {
    if !super::children_listed() {
        eprintln!("SKIPPED a_tree_read_by_children_is_the_scanned_tree: this kernel lists no children in /proc (CONFIG_PROC_CHILDREN)");
        return;
    }
    let mut sh = std::process::Command::new("sh")
        .args(["-c", "sleep 30 & (sleep 30 & wait) & echo go; wait"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(sh.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let pid = sh.id() as i32;
    // The subshell's own child may take a moment to be forked.
    let mut by_children = Vec::new();
    for _ in 0..200 {
        by_children = super::descendants_by_children(pid);
        if by_children.len() == 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let by_scan = super::descendants_by_scan(pid);
    // The test's own processes, by pid, sleeps included.
    for p in by_scan.iter().chain(&by_children) {
        // SAFETY: kill takes no pointers; these pids are this test's own
        // processes, listed a moment ago (the sleeps have 30 s to run).
        unsafe { libc::kill(*p, libc::SIGKILL) };
    }
    let _ = sh.wait();
    assert_eq!(by_children.len(), 4, "{by_children:?}");
    assert_eq!(by_children, by_scan);
    assert!(by_children.contains(&pid));
}
