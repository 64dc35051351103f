//! The cgroup plan on each host layout, and the writes of `update`.

use super::*;
use crate::spec::Size;

fn res() -> Resources {
    Resources {
        memory: Some(Size(256 << 20)),
        swap: None,
        memory_reservation: Some(Size(128 << 20)),
        memory_oom_group: None,
        pids: Some(64),
        cpus: Some(0.5),
        cpu_period: None,
        cpu_weight: Some(100),
        io_weight: None,
        cpuset_cpus: None,
        cpuset_mems: None,
        hugetlb: Default::default(),
    }
}

#[test]
fn v2_files() {
    let w = v2(&res());
    let get = |f: &str| w.iter().find(|x| x.file == f).map(|x| x.value.clone());
    assert_eq!(get("memory.max").unwrap(), (256u64 << 20).to_string());
    assert_eq!(get("memory.swap.max").unwrap(), "0");
    assert_eq!(get("memory.low").unwrap(), (128u64 << 20).to_string());
    assert_eq!(get("pids.max").unwrap(), "64");
    assert_eq!(get("cpu.max").unwrap(), "50000 100000");
    assert_eq!(get("cpu.weight").unwrap(), "100");
    assert_eq!(controllers(&w), ["cpu", "memory", "pids"]);
    // A period of its own (an OCI bundle's) is kept, the share over it.
    let r = Resources {
        cpu_period: Some(1_000_000),
        cpus: Some(0.15),
        ..res()
    };
    let w = v2(&r);
    let get = |f: &str| w.iter().find(|x| x.file == f).map(|x| x.value.clone());
    assert_eq!(get("cpu.max").unwrap(), "150000 1000000");
    let w = v1(&r);
    let get = |f: &str| w.iter().find(|x| x.file == f).map(|x| x.value.clone());
    assert_eq!(get("cpu.cfs_period_us").unwrap(), "1000000");
    assert_eq!(get("cpu.cfs_quota_us").unwrap(), "150000");
}

#[test]
fn v1_files() {
    let mut r = res();
    r.swap = Some(Size(1 << 20));
    r.io_weight = Some(500);
    let w = v1(&r);
    let get = |f: &str| w.iter().find(|x| x.file == f).map(|x| x.value.clone());
    assert_eq!(
        get("memory.limit_in_bytes").unwrap(),
        (256u64 << 20).to_string()
    );
    assert_eq!(
        get("memory.memsw.limit_in_bytes").unwrap(),
        ((256u64 << 20) + (1 << 20)).to_string()
    );
    assert_eq!(
        get("memory.soft_limit_in_bytes").unwrap(),
        (128u64 << 20).to_string()
    );
    assert_eq!(get("cpu.cfs_quota_us").unwrap(), "50000");
    // The default weight is the default share on both.
    assert_eq!(get("cpu.shares").unwrap(), "1024");
    assert_eq!(get("blkio.weight").unwrap(), "1000");
    assert_eq!(controllers(&w), ["blkio", "cpu", "memory", "pids"]);
}

#[test]
fn weights_map_to_the_ends_of_v1_ranges() {
    let mut r = Resources {
        cpu_weight: Some(1),
        ..Default::default()
    };
    assert_eq!(v1(&r)[0].value, "2");
    r.cpu_weight = Some(10000);
    assert_eq!(v1(&r)[0].value, "102400");
    r.cpu_weight = None;
    r.io_weight = Some(1);
    assert_eq!(v1(&r)[0].value, "10");
    r.io_weight = Some(100);
    assert_eq!(v1(&r)[0].value, "500");
    r.io_weight = Some(10000);
    assert_eq!(v1(&r)[0].value, "1000");
}

/// An OCI bundle's v1 shares and blkio weight come back as they were
/// written (through airlock's v2 weights) at the defaults and the ends.
#[test]
fn v1_weights_go_there_and_back() {
    // (v2's range is the narrower: 2, then 20 to 102400 shares.)
    for shares in [2, 512, 1024, 2048, 102_400] {
        assert_eq!(weight_to_shares(shares_to_weight(shares)), shares);
    }
    assert_eq!(weight_to_shares(shares_to_weight(262_144)), 102_400);
    for blkio in [10, 100, 500, 1000] {
        assert_eq!(io_weight_to_blkio(blkio_to_io_weight(blkio)), blkio);
    }
    assert_eq!(shares_to_weight(1024), 100);
    assert_eq!(blkio_to_io_weight(500), 100);
}

#[test]
fn nothing_asked_nothing_written() {
    assert!(v2(&Resources::default()).is_empty());
    assert!(v1(&Resources::default()).is_empty());
}

fn layout(mountinfo: &str, cgroup: &str, v2_controllers: &[&str]) -> Layout {
    let mut l = super::super::parse_layout(mountinfo, cgroup);
    l.v2_controllers = v2_controllers.iter().map(|c| c.to_string()).collect();
    l
}

/// A pure v2 host, memory delegated to the caller's cgroup.
fn memory_on_v2() -> Layout {
    layout(
        "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        "0::/a\n",
        &["memory"],
    )
}

/// A hybrid host like this one: memory a v1 hierarchy, v2 with hugetlb.
fn memory_on_v1() -> Layout {
    layout(
        "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
         41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        "4:memory:/m\n0::/u\n",
        &["hugetlb"],
    )
}

#[test]
fn pure_v2_host_gets_one_cgroup_with_every_limit() {
    let l = layout(
        "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
        "0::/user.slice/session-1.scope\n",
        &["cpu", "io", "memory", "pids"],
    );
    let p = resolve(&res(), &l, "airlock-x", &[]).unwrap();
    let dir = PathBuf::from("/sys/fs/cgroup/user.slice/session-1.scope/airlock-x");
    assert_eq!(p.v2.as_ref(), Some(&dir));
    assert!(p.v1.is_empty());
    let (parent, enable) = p.enable[0].clone();
    assert_eq!(p.enable.len(), 1);
    assert_eq!(parent, dir.parent().unwrap());
    assert_eq!(enable, ["cpu", "memory", "pids"]);
    assert!(p.writes.iter().all(|w| w.dir == dir));
    let files: Vec<&str> = p.writes.iter().map(|w| w.file.as_str()).collect();
    assert_eq!(
        files,
        [
            "memory.max",
            "memory.swap.max",
            "memory.low",
            "pids.max",
            "cpu.max",
            "cpu.weight"
        ]
    );
    assert_eq!(p.memory, Some((dir.clone(), true)));
    assert_eq!(p.pids, Some((dir, true)));
}

#[test]
fn a_v2_host_without_limits_still_gets_a_cgroup_to_kill_through() {
    let l = layout(
        "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        "0::/a\n",
        &[],
    );
    let p = resolve(&Resources::default(), &l, "airlock-x", &[]).unwrap();
    assert_eq!(p.v2, Some(PathBuf::from("/sys/fs/cgroup/a/airlock-x")));
    assert!(p.enable.is_empty() && p.writes.is_empty());
}

#[test]
fn hybrid_host_puts_limits_on_v1_and_membership_on_v2() {
    let l = layout(
        "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
         39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
         41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        "8:pids:/\n4:memory:/m\n0::/u\n",
        &["hugetlb"],
    );
    let r = Resources {
        memory: Some(Size(1 << 20)),
        pids: Some(8),
        ..Default::default()
    };
    let p = resolve(&r, &l, "airlock-x", &[]).unwrap();
    assert!(p.enable.is_empty(), "nothing to enable on v2");
    assert_eq!(
        p.v2,
        Some(PathBuf::from("/sys/fs/cgroup/unified/u/airlock-x"))
    );
    assert_eq!(
        p.v1["memory"],
        PathBuf::from("/sys/fs/cgroup/memory/m/airlock-x")
    );
    assert!(!p.v1.contains_key("freezer"), "v2 kills; no freezer needed");
    assert_eq!(p.memory.as_ref().map(|m| m.1), Some(false));
    assert!(p
        .writes
        .iter()
        .any(|w| w.file == "memory.memsw.limit_in_bytes" && w.dir == p.v1["memory"]));
}

/// A cpuset is the same two files on either layout, each named by its
/// field; on v2 the parent enables the controller, on a hybrid host the
/// v1 cpuset hierarchy gets a cgroup (which `Cgroup::create` starts with
/// its parent's CPUs and nodes).
#[test]
fn cpusets_on_pure_v2_and_on_v1() {
    let r = Resources {
        cpuset_cpus: Some("0-1,3".into()),
        cpuset_mems: Some("0".into()),
        ..Default::default()
    };
    for w in [v2(&r), v1(&r)] {
        let got: Vec<(&str, &str, &str)> = w
            .iter()
            .map(|x| (x.file.as_ref(), x.value.as_str(), x.field.as_ref()))
            .collect();
        assert_eq!(
            got,
            [
                ("cpuset.cpus", "0-1,3", "resources.cpuset_cpus"),
                ("cpuset.mems", "0", "resources.cpuset_mems")
            ]
        );
    }
    let v2_host = layout(
        "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        "0::/a\n",
        &["cpuset", "memory"],
    );
    let p = resolve(&r, &v2_host, "airlock-x", &[]).unwrap();
    assert_eq!(p.enable[0].1, ["cpuset"]);
    assert!(p.writes.iter().all(|w| w.dir == p.v2.clone().unwrap()));
    let hybrid = layout(
        "36 31 0:33 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n\
         41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        "3:cpuset:/\n0::/u\n",
        &[],
    );
    let p = resolve(&r, &hybrid, "airlock-x", &[]).unwrap();
    let dir = PathBuf::from("/sys/fs/cgroup/cpuset/airlock-x");
    assert_eq!(p.v1["cpuset"], dir);
    let files: Vec<&str> = p.writes.iter().map(|w| w.file.as_str()).collect();
    assert_eq!(files, ["cpuset.cpus", "cpuset.mems"]);
    assert!(p.writes.iter().all(|w| w.dir == dir));
}

#[test]
fn a_v1_only_host_gets_a_freezer() {
    let l = layout(
        "35 31 0:32 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n",
        "7:freezer:/f\n",
        &[],
    );
    let p = resolve(&Resources::default(), &l, "airlock-x", &[]).unwrap();
    assert_eq!(
        p.v1["freezer"],
        PathBuf::from("/sys/fs/cgroup/freezer/f/airlock-x")
    );
}

#[test]
fn a_controller_the_host_lacks_is_named() {
    let l = layout(
        "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        "0::/a\n",
        &["memory"],
    );
    let r = Resources {
        io_weight: Some(100),
        ..Default::default()
    };
    let e = resolve(&r, &l, "airlock-x", &[]).unwrap_err();
    assert_eq!(e.step, "resources.io_weight");
    assert!(e.reason.contains("lists only [memory]"), "{}", e.reason);
}

#[test]
fn a_nested_path_makes_and_enables_each_level_on_pure_v2() {
    let l = layout(
        "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        "0::/a\n",
        &["memory", "pids"],
    );
    let r = Resources {
        pids: Some(8),
        ..Default::default()
    };
    let p = resolve(&r, &l, "machine.slice/m-x.slice/c.scope", &["memory"]).unwrap();
    let base = PathBuf::from("/sys/fs/cgroup/a");
    assert_eq!(
        p.nested,
        [
            base.join("machine.slice"),
            base.join("machine.slice/m-x.slice")
        ]
    );
    let enabled: Vec<&PathBuf> = p.enable.iter().map(|(d, _)| d).collect();
    assert_eq!(enabled, [&base, &p.nested[0], &p.nested[1]]);
    assert_eq!(p.optional, ["memory"], "pids has a limit: required");
    // A prepared controller is enabled without a limit written.
    assert!(p.enable.iter().all(|(_, c)| c == &["pids", "memory"]));
    assert_eq!(p.v2, Some(base.join("machine.slice/m-x.slice/c.scope")));
    assert_eq!(p.writes.len(), 1);
}

#[test]
fn prepared_controllers_get_v1_cgroups_and_missing_ones_are_skipped() {
    let l = layout(
        "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
         41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        "4:memory:/m\n0::/u\n",
        &["hugetlb"],
    );
    let p = resolve(&Resources::default(), &l, "x/y", &["memory", "pids"]).unwrap();
    assert_eq!(p.v1["memory"], PathBuf::from("/sys/fs/cgroup/memory/m/x/y"));
    assert!(!p.v1.contains_key("pids"));
    // Nothing asked a limit of them: a host that will not make them
    // leaves them out.
    assert_eq!(p.optional, ["memory", "pids"]);
    assert_eq!(
        p.nested,
        [
            PathBuf::from("/sys/fs/cgroup/unified/u/x"),
            PathBuf::from("/sys/fs/cgroup/memory/m/x")
        ]
    );
}

#[test]
fn paths_that_leave_the_callers_cgroup_are_refused() {
    let l = Layout::default();
    for bad in ["", "/abs", "a/../b", "..", "a//b", "./a"] {
        let e = resolve(&Resources::default(), &l, bad, &[]).unwrap_err();
        assert_eq!(e.step, "cgroup path", "{bad}");
    }
}

#[test]
fn update_on_pure_v2_writes_the_v2_files() {
    let paths = crate::state::CgroupPaths {
        v2: Some("/sys/fs/cgroup/a/c".into()),
        v1: BTreeMap::new(),
        made: Vec::new(),
    };
    let r = Resources {
        memory: Some(Size(64 << 20)),
        pids: Some(5),
        ..Default::default()
    };
    let enabled = ["memory".to_string(), "pids".to_string()];
    let w = update_writes(&r, &paths, &enabled).unwrap();
    let files: Vec<(&str, &str)> = w
        .iter()
        .map(|(d, w)| {
            assert_eq!(d, paths.v2.as_ref().unwrap());
            (w.file.as_ref(), w.value.as_str())
        })
        .collect();
    assert_eq!(
        files,
        [
            ("memory.max", "67108864"),
            ("memory.swap.max", "0"),
            ("pids.max", "5")
        ]
    );
    // A controller not enabled in the sandbox's cgroup is named.
    let e = update_writes(&r, &paths, &enabled[1..]).unwrap_err();
    assert_eq!(e.step, "resources.memory");
}

#[test]
fn update_on_hybrid_writes_v1_files_once() {
    let mut v1 = BTreeMap::new();
    v1.insert("memory".to_string(), PathBuf::from("/m/c"));
    v1.insert("blkio".to_string(), PathBuf::from("/b/c"));
    let paths = crate::state::CgroupPaths {
        v2: Some("/u/c".into()),
        v1,
        made: Vec::new(),
    };
    let r = Resources {
        memory: Some(Size(1 << 20)),
        io_weight: Some(5000),
        ..Default::default()
    };
    let w = update_writes(&r, &paths, &[]).unwrap();
    let files: Vec<(&str, &str)> = w
        .iter()
        .map(|(d, w)| (d.to_str().unwrap(), w.file.as_ref()))
        .collect();
    assert_eq!(
        files,
        [
            ("/m/c", "memory.limit_in_bytes"),
            ("/m/c", "memory.memsw.limit_in_bytes"),
            ("/b/c", "blkio.weight")
        ]
    );
    let pids = Resources {
        pids: Some(1),
        ..Default::default()
    };
    assert_eq!(
        update_writes(&pids, &paths, &[]).unwrap_err().step,
        "resources.pids"
    );
}

/// The group OOM kill is v2's `memory.oom.group`, 1 or 0; where memory
/// is a v1 controller, on, it is refused by its field (at creation and
/// by update), and off needs nothing written.
#[test]
fn group_oom_kill_is_a_v2_file_refused_on_v1_memory() {
    let on = Resources {
        memory_oom_group: Some(true),
        ..Default::default()
    };
    let off = Resources {
        memory_oom_group: Some(false),
        ..Default::default()
    };
    let file = |r: &Resources| {
        v2(r)
            .into_iter()
            .map(|w| (w.file.into_owned(), w.value, w.field.into_owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        file(&on),
        [(
            "memory.oom.group".into(),
            "1".into(),
            "resources.memory_oom_group".into()
        )]
    );
    assert_eq!(file(&off)[0].1, "0");
    assert!(v1(&on).is_empty() && v1(&off).is_empty());
    let pure_v2 = memory_on_v2();
    let p = resolve(&on, &pure_v2, "airlock-x", &[]).unwrap();
    assert_eq!(p.writes[0].file, "memory.oom.group");
    assert_eq!(p.writes[0].value, "1");
    let hybrid = memory_on_v1();
    let e = resolve(&on, &hybrid, "airlock-x", &[]).unwrap_err();
    assert_eq!(e.step, "resources.memory_oom_group");
    assert!(e.to_string().contains("cgroup v2 file"), "{e}");
    let p = resolve(&off, &hybrid, "airlock-x", &[]).unwrap();
    assert!(p.writes.is_empty());
    let mut v1 = BTreeMap::new();
    v1.insert("memory".to_string(), PathBuf::from("/m/c"));
    let paths = crate::state::CgroupPaths {
        v2: Some("/u/c".into()),
        v1,
        made: Vec::new(),
    };
    let e = update_writes(&on, &paths, &[]).unwrap_err();
    assert_eq!(e.step, "resources.memory_oom_group");
    assert!(update_writes(&off, &paths, &[]).unwrap().is_empty());
    let v2_paths = crate::state::CgroupPaths {
        v2: Some("/a/c".into()),
        v1: BTreeMap::new(),
        made: Vec::new(),
    };
    let w = update_writes(&on, &v2_paths, &["memory".to_string()]).unwrap();
    assert_eq!(w[0].1.file, "memory.oom.group");
}

/// No swap without a memory limit (kubelet's NoSwap, on every container
/// of a v2 node) is memory.swap.max alone on v2, and refused by name
/// where memory is v1, which limits memory and swap only together.
#[test]
fn no_swap_without_a_memory_limit_is_a_v2_file() {
    let r = Resources {
        swap: Some(Size(0)),
        ..Default::default()
    };
    crate::spec::validate::resources(&r).unwrap();
    let files: Vec<_> = v2(&r)
        .into_iter()
        .map(|w| (w.file.into_owned(), w.value, w.field.into_owned()))
        .collect();
    assert_eq!(
        files,
        [(
            "memory.swap.max".into(),
            "0".into(),
            "resources.swap".into()
        )]
    );
    let pure_v2 = memory_on_v2();
    let p = resolve(&r, &pure_v2, "airlock-x", &[]).unwrap();
    assert_eq!(p.writes[0].file, "memory.swap.max");
    let hybrid = memory_on_v1();
    let e = resolve(&r, &hybrid, "airlock-x", &[]).unwrap_err();
    assert_eq!(e.step, "resources.swap");
    assert!(e.to_string().contains("memory.swap.max"), "{e}");
    // Some swap still needs a limit to be on top of.
    let some = Resources {
        swap: Some(Size(1 << 20)),
        ..Default::default()
    };
    let e = crate::spec::validate::resources(&some).unwrap_err();
    assert_eq!(e.field, "resources.swap");
}

/// The "no swap" beside a memory limit alone is left out only where the
/// kernel has no swap accounting and the host no swap: never when the
/// spec asked for a swap limit, never with swap in use.
#[test]
fn unaccounted_swap_is_skipped_only_without_swap() {
    let missing = std::path::Path::new("/nonexistent/memory.memsw.limit_in_bytes");
    let there = std::path::Path::new("/proc/self/status");
    let write = |field: &str| FileWrite {
        dir: "/x".into(),
        file: "memory.memsw.limit_in_bytes".into(),
        value: "1".into(),
        controller: "memory".into(),
        field: field.into(),
        bfq: None,
    };
    fn none() -> bool {
        false
    }
    fn some() -> bool {
        true
    }
    assert!(super::super::unaccounted_swap_of_no_use(
        &write("resources.memory").field,
        "memory.memsw.limit_in_bytes",
        missing,
        none
    ));
    assert!(!super::super::unaccounted_swap_of_no_use(
        &write("resources.memory").field,
        "memory.memsw.limit_in_bytes",
        missing,
        some
    ));
    assert!(!super::super::unaccounted_swap_of_no_use(
        &write("resources.swap").field,
        "memory.memsw.limit_in_bytes",
        missing,
        none
    ));
    assert!(!super::super::unaccounted_swap_of_no_use(
        &write("resources.memory").field,
        "memory.memsw.limit_in_bytes",
        there,
        none
    ));
}

/// A swap of 0 asked for by name is the "no swap" a memory limit alone
/// gets: on a kernel without swap accounting and a host without swap it
/// is left out the same way, not refused (an OCI bundle's swap equal to
/// its limit, `update --memory-swap` equal to `--memory`).
#[test]
fn an_explicit_zero_swap_is_the_implicit_one() {
    for (swap, field) in [
        (None, "resources.memory"),
        (Some(Size(0)), "resources.memory"),
        (Some(Size(1 << 20)), "resources.swap"),
    ] {
        let r = Resources {
            memory: Some(Size(64 << 20)),
            swap,
            ..Default::default()
        };
        for (writes, file) in [
            (v1(&r), "memory.memsw.limit_in_bytes"),
            (v2(&r), "memory.swap.max"),
        ] {
            let w = writes.iter().find(|w| w.file == file).unwrap();
            assert_eq!(w.field, field, "{swap:?} {file}");
        }
    }
}

#[test]
fn huge_page_limits_name_their_page_size() {
    let r = Resources {
        hugetlb: [("2MB".into(), Size(4 << 20)), ("1GB".into(), Size(0))].into(),
        ..Default::default()
    };
    let files = |w: Vec<Write>| -> Vec<(String, String, String)> {
        w.into_iter()
            .map(|w| (w.file.into_owned(), w.value, w.field.into_owned()))
            .collect()
    };
    let row = |f: &str, v: &str, size: &str| {
        (
            f.to_string(),
            v.to_string(),
            format!("resources.hugetlb.{size}"),
        )
    };
    assert_eq!(
        files(v2(&r)),
        [
            row("hugetlb.1GB.max", "0", "1GB"),
            row("hugetlb.1GB.rsvd.max", "0", "1GB"),
            row("hugetlb.2MB.max", "4194304", "2MB"),
            row("hugetlb.2MB.rsvd.max", "4194304", "2MB"),
        ]
    );
    assert_eq!(
        files(v1(&r))[..2],
        [
            row("hugetlb.1GB.limit_in_bytes", "0", "1GB"),
            row("hugetlb.1GB.rsvd.limit_in_bytes", "0", "1GB"),
        ]
    );
    // On this host's layout hugetlb is a v2 controller: enabled there and
    // written in the sandbox's v2 cgroup.
    let p = resolve(&r, &memory_on_v1(), "airlock-x", &[]).unwrap();
    assert_eq!(
        p.enable,
        [(
            PathBuf::from("/sys/fs/cgroup/unified/u"),
            vec!["hugetlb".to_string()]
        )]
    );
    assert!(p.v1.is_empty());
    assert_eq!(p.writes.len(), 4);
    assert!(p.writes.iter().all(|w| Some(&w.dir) == p.v2.as_ref()));
    // Where no hierarchy has it, the error names the page sizes asked.
    let e = resolve(&r, &memory_on_v2(), "airlock-x", &[]).unwrap_err();
    assert_eq!(e.step, "resources.hugetlb.1GB, resources.hugetlb.2MB");
    assert!(
        e.reason.contains("the hugetlb controller is not available"),
        "{e}"
    );
}

#[test]
fn a_missing_reservation_file_is_left_out_and_a_missing_limit_is_not() {
    let dir = std::env::temp_dir().join(format!("airlock-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hugetlb.2MB.max"), "").unwrap();
    let left_out = |f: &str| super::super::left_out("resources.hugetlb.2MB", f, &dir.join(f));
    assert!(left_out("hugetlb.2MB.rsvd.max"));
    assert!(!left_out("hugetlb.2MB.max"));
    assert!(!left_out("hugetlb.64KB.max"));
    std::fs::write(dir.join("hugetlb.2MB.rsvd.max"), "").unwrap();
    assert!(!left_out("hugetlb.2MB.rsvd.max"));
    std::fs::remove_dir_all(&dir).unwrap();
}
