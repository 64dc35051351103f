use super::*;

const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
const HYBRID_CGROUP: &str = "8:pids:/\n4:memory:/process_api/x\n1:cpu,cpuacct:/\n0::/\n";

/// Without cgroup.kill (before Linux 5.14), the kill rounds freeze a
/// v2 cgroup through cgroup.freeze: they went unfrozen there, and a
/// fork between a round's read and its signals escaped it.
#[test]
fn a_v2_kill_without_cgroup_kill_freezes() {
    let dir = tempfile::tempdir().unwrap();
    let v2 = dir.path().join("sandbox");
    // A directory: writing "1" to it fails, as to a missing file.
    std::fs::create_dir_all(v2.join("cgroup.kill")).unwrap();
    std::fs::write(v2.join("cgroup.freeze"), "untouched").unwrap();
    std::fs::write(v2.join("cgroup.events"), "populated 0\nfrozen 1\n").unwrap();
    std::fs::write(v2.join("cgroup.procs"), "").unwrap();
    let mut cg = Cgroup::default();
    cg.v2 = Some(v2.clone());
    cg.kill();
    // Frozen ("1", waited for by cgroup.events), then thawed.
    assert_eq!(
        std::fs::read_to_string(v2.join("cgroup.freeze")).unwrap(),
        "0"
    );
    std::mem::forget(cg);
}

#[test]
fn a_layout_under_another_parent() {
    // A v1-only layout: nothing to read for v2's controllers.
    let mut l = parse_layout(HYBRID_MOUNTINFO, HYBRID_CGROUP);
    l.v2 = None;
    let under = l.under("/airlock.slice/web").unwrap();
    assert_eq!(
        under.v1["memory"].own_dir(),
        PathBuf::from("/sys/fs/cgroup/memory/airlock.slice/web")
    );
    assert_eq!(under.v1["pids"].own, "/airlock.slice/web");
    assert_eq!(
        l.under("/").unwrap().v1["memory"].own_dir(),
        PathBuf::from("/sys/fs/cgroup/memory/")
    );
    // From the root whether it says so or not (airlockd's
    // cgroup_parent was documented as relative to it).
    for same in [
        "airlock.slice/web",
        "/airlock.slice/web/",
        "airlock.slice/web/",
    ] {
        assert_eq!(l.under(same).unwrap(), under, "{same:?}");
    }
    assert_eq!(l.under("/").unwrap().v1["pids"].own, "/");
    // Empty is no path (not the root of every hierarchy).
    for bad in ["", "/a/../b", "/a/./b", "/a//b", "//a", "/..", "a\0b"] {
        let e = l.under(bad).unwrap_err();
        assert!(e.contains("is not a cgroup path"), "{bad:?}: {e}");
    }
    // The v2 parent must exist: it gives the controllers.
    let mut v2 = parse_layout(HYBRID_MOUNTINFO, HYBRID_CGROUP);
    v2.v2.as_mut().unwrap().mount = PathBuf::from("/nonexistent-cgroup2");
    let e = v2.under("/x").unwrap_err();
    assert!(e.contains("/nonexistent-cgroup2/x does not exist"), "{e}");
}

#[test]
fn hybrid_layout() {
    let l = parse_layout(HYBRID_MOUNTINFO, HYBRID_CGROUP);
    assert_eq!(
        l.v2.as_ref().unwrap().mount,
        PathBuf::from("/sys/fs/cgroup/unified")
    );
    assert_eq!(
        l.v1["memory"].own_dir(),
        PathBuf::from("/sys/fs/cgroup/memory/process_api/x")
    );
    assert_eq!(
        l.v1["cpu"].mount,
        PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
    );
    assert_eq!(l.v1["pids"].own, "/");
}

/// Inside a container whose cgroupfs is a bound subtree: the mount
/// shows /docker/X at its top, where /proc/self/cgroup says the
/// caller is; a mount of another subtree does not show it at all.
#[test]
fn a_bound_subtree_of_the_hierarchy() {
    let l = parse_layout(
        "30 25 0:26 /docker/x /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n\
         31 25 0:26 /other /mnt/other rw - cgroup2 cgroup2 rw\n",
        "0::/docker/x/app\n",
    );
    let v2 = l.v2.unwrap();
    assert_eq!(v2.mount, PathBuf::from("/sys/fs/cgroup"));
    assert_eq!(v2.own_dir(), PathBuf::from("/sys/fs/cgroup/app"));
    let l = parse_layout(
        "31 25 0:26 /other /mnt/other rw - cgroup2 cgroup2 rw\n",
        "0::/docker/x\n",
    );
    assert_eq!(l.v2, None, "a mount that does not show the caller's cgroup");
}

/// In a cgroup namespace whose root is not the caller's cgroup's
/// ancestor (the caller moved out of it), /proc/self/cgroup reads
/// `/../x`: no hierarchy is taken from it, where its path joined onto the
/// mount led out of the cgroup file system.
#[test]
fn a_cgroup_outside_the_namespace_gives_no_hierarchy() {
    let l = parse_layout(
        "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n\
         35 25 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        "4:memory:/../../x\n0::/../x\n",
    );
    assert_eq!(l.v2, None);
    assert!(l.v1.is_empty(), "{:?}", l.v1);
}

#[test]
fn pure_v2_layout() {
    let l = parse_layout(
        "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
        "0::/user.slice/user-1000.slice/session-1.scope\n",
    );
    assert!(l.v1.is_empty());
    assert_eq!(
        l.v2.unwrap().own_dir(),
        PathBuf::from("/sys/fs/cgroup/user.slice/user-1000.slice/session-1.scope")
    );
}

/// The host's v2 hierarchy, for a test run as root; else None, the
/// reason said.
fn root_and_v2() -> Option<super::layout::Hierarchy> {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: this test needs root (CI runs it as root)");
        return None;
    }
    let v2 = Layout::detect().ok().and_then(|l| l.v2);
    if v2.is_none() {
        eprintln!("SKIPPED: no cgroup v2 hierarchy is mounted");
    }
    v2
}

/// Two sandboxes under one parent cgroup that neither finds (a pod's,
/// say), made and removed over and over at the same time on the real
/// v2 hierarchy: neither fails because the other made the parent just
/// before it (EEXIST) or removed it, empty, just before its own
/// directory went in (ENOENT); the parent is gone at the end.
#[test]
fn sandboxes_sharing_a_made_parent_race_safely() {
    let Some(v2) = root_and_v2() else {
        return;
    };
    let top = v2
        .own_dir()
        .join(format!("airlock-race-{}", std::process::id()));
    let parent = top.join("pod");
    let both = std::sync::Arc::new(std::sync::Barrier::new(2));
    let run = |who: &'static str| {
        let parent = parent.clone();
        let both = both.clone();
        std::thread::spawn(move || {
            both.wait();
            for i in 0..3000 {
                let plan = CgroupPlan {
                    nested: vec![parent.parent().unwrap().to_path_buf(), parent.clone()],
                    v2: Some(parent.join(format!("{who}-{i}"))),
                    ..CgroupPlan::default()
                };
                match Cgroup::create(&plan) {
                    Ok(cg) => drop(cg),
                    Err(e) => return Err(format!("{who}, round {i}: {e}")),
                }
            }
            Ok(())
        })
    };
    let (a, b) = (run("a"), run("b"));
    let results = [a.join().unwrap(), b.join().unwrap()];
    // A parent the other made and could not remove (we were in it)
    // stays, empty: neither removes what it did not make.
    let children = |d: &Path| {
        std::fs::read_dir(d).map_or(0, |r| {
            r.filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .count()
        })
    };
    let left = children(&parent);
    let _ = std::fs::remove_dir(&parent);
    let _ = std::fs::remove_dir(&top);
    for r in results {
        r.unwrap();
    }
    assert_eq!(left, 0, "a sandbox's own cgroup was left behind");
}

/// A sandbox reclaimed after its supervisor and guard were both killed
/// (`delete` of its state) takes the parents making it made, on the real
/// v2 hierarchy, as its supervisor would have; and nothing state.json
/// lists that is not above its own cgroup.
#[test]
fn a_reclaimed_sandbox_takes_the_parents_it_made() {
    let Some(v2) = root_and_v2() else {
        return;
    };
    let top = v2
        .own_dir()
        .join(format!("airlock-reclaim-{}", std::process::id()));
    let elsewhere = v2
        .own_dir()
        .join(format!("airlock-reclaim-other-{}", std::process::id()));
    std::fs::create_dir(&elsewhere).unwrap();
    let plan = CgroupPlan {
        nested: vec![top.clone(), top.join("a"), top.join("a/b")],
        v2: Some(top.join("a/b/c")),
        ..CgroupPlan::default()
    };
    let cg = Cgroup::create(&plan).unwrap();
    // As a killed supervisor and guard leave it: nothing removed, the
    // paths in state.json.
    let mut recorded = cg.paths();
    std::mem::forget(cg);
    recorded.made.push(elsewhere.clone());
    let json = serde_json::to_string(&recorded).unwrap();
    let read: crate::state::CgroupPaths = serde_json::from_str(&json).unwrap();
    Cgroup::adopt(&read).remove();
    let (left, kept) = (top.exists(), elsewhere.exists());
    for d in ["a/b/c", "a/b", "a", ""] {
        let _ = std::fs::remove_dir(top.join(d));
    }
    let _ = std::fs::remove_dir(&elsewhere);
    assert!(!left, "the parents made for the sandbox were left");
    assert!(kept, "a cgroup not above the sandbox's was removed");
}
