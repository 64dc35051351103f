//! Planning a spec: the ids, capabilities, mounts and limits a plan resolves to.
use super::*;

fn spec() -> SandboxSpec {
    SandboxSpec::builder().args(["true"]).build()
}

#[test]
fn root_caller_maps_to_unprivileged_range() {
    let p = plan(&spec(), &crate::Context::for_ids(0, 0)).unwrap();
    assert_eq!(p.process.uid, 0);
    assert_eq!(p.uid_map[0].outside, ROOT_CALLER_BASE);
    assert!(p.process.setgroups);
    assert!(!p.use_newidmap);
}

#[test]
fn a_root_callers_writable_binds_are_idmapped_to_the_workload() {
    use mounts::Idmap;
    let bind = |dst: &str, readonly| spec::Mount::Bind {
        source: "/srv".into(),
        destination: dst.into(),
        readonly,
        devices: false,
        noexec: false,
        recursive: true,
    };
    let mut s = spec();
    s.process.uid = Some(5);
    s.filesystem.mounts = vec![bind("/rw", false), bind("/ro", true)];
    let idmaps = |p: &Plan| -> Vec<Idmap> {
        p.filesystem
            .steps
            .iter()
            .filter_map(|m| match m {
                MountStep::Bind { idmap, .. } => Some(*idmap),
                _ => None,
            })
            .collect()
    };
    let p = plan(&s, &crate::Context::for_ids(0, 0)).unwrap();
    assert_eq!(idmaps(&p), [Idmap::Caller, Idmap::None]);
    let maps = p.filesystem.caller_maps.unwrap();
    // On disk the caller's id; in use the workload's host id.
    assert_eq!(
        (maps.uid.inside, maps.uid.outside),
        (0, ROOT_CALLER_BASE + 5)
    );
    assert_eq!(
        (maps.gid.inside, maps.gid.outside),
        (0, ROOT_CALLER_BASE + 5)
    );
    assert_eq!((maps.uid.count, maps.gid.count), (1, 1));
    // Not for a rootless caller, nor with the ids as they are, nor
    // without a user namespace: no maps, no idmapped binds.
    let p = plan(&s, &crate::Context::for_ids(1000, 1000)).unwrap();
    assert_eq!(idmaps(&p), [Idmap::None, Idmap::None]);
    assert!(p.filesystem.caller_maps.is_none());
    let mut as_is = s.clone();
    as_is.filesystem.bind_owner = spec::BindOwner::AsIs;
    let p = plan(&as_is, &crate::Context::for_ids(0, 0)).unwrap();
    assert_eq!(idmaps(&p), [Idmap::None, Idmap::None]);
    let mut shared = s.clone();
    shared.namespaces.user = false;
    let p = plan(&shared, &crate::Context::for_ids(0, 0)).unwrap();
    assert!(p.filesystem.caller_maps.is_none());
    // The host's own view (filesystem.idmap) wins over the caller's.
    let mut host = s.clone();
    host.filesystem.idmap = vec!["/rw".into()];
    let p = plan(&host, &crate::Context::for_ids(0, 0)).unwrap();
    assert_eq!(idmaps(&p), [Idmap::Host, Idmap::None]);
    assert!(p.filesystem.caller_maps.is_none());
}

#[test]
fn rootless_maps_own_id() {
    let p = plan(&spec(), &crate::Context::for_ids(1000, 1000)).unwrap();
    assert_eq!(p.process.uid, 1000);
    assert_eq!(
        p.uid_map,
        vec![IdMap {
            inside: 1000,
            outside: 1000,
            count: 1
        }]
    );
    assert!(!p.process.setgroups);
    assert!(!p.use_newidmap);
}

/// newgidmap denies setgroups unless the gid map holds ids beyond the
/// caller's own: a uid map of several ranges with the caller's own gid
/// alone leaves setgroups denied, and the plan says so.
#[test]
fn rootless_setgroups_follows_the_gid_map() {
    let mut s = spec();
    s.process.uid = Some(0);
    s.process.gid = Some(0);
    let map = |inside, outside, count| IdMap {
        inside,
        outside,
        count,
    };
    s.identity.uid_map = vec![map(0, 1000, 1), map(1, 200_000, 1000)];
    s.identity.gid_map = vec![map(0, 1000, 1)];
    let ctx = crate::Context::for_ids(1000, 1000);
    let p = plan(&s, &ctx).unwrap();
    assert!(p.use_newidmap);
    assert!(!p.process.setgroups);
    s.identity.gid_map.push(map(1, 200_000, 1000));
    assert!(plan(&s, &ctx).unwrap().process.setgroups);
}

#[test]
fn rootless_as_root_inside() {
    let mut s = spec();
    s.process.uid = Some(0);
    s.process.gid = Some(0);
    let p = plan(&s, &crate::Context::for_ids(1000, 1000)).unwrap();
    assert_eq!(
        p.uid_map,
        vec![IdMap {
            inside: 0,
            outside: 1000,
            count: 1
        }]
    );
}

#[test]
fn rootless_ranges_need_newuidmap() {
    let mut s = spec();
    s.identity.uid_map = vec![
        IdMap {
            inside: 0,
            outside: 1000,
            count: 1,
        },
        IdMap {
            inside: 1,
            outside: 100000,
            count: 65536,
        },
    ];
    s.process.uid = Some(0);
    s.process.gid = Some(1000);
    let p = plan(&s, &crate::Context::for_ids(1000, 1000)).unwrap();
    assert!(p.use_newidmap);
}

#[test]
fn a_uid_alone_gets_its_own_gid() {
    let mut s = spec();
    s.process.uid = Some(1000);
    let p = plan(&s, &crate::Context::for_ids(0, 0)).unwrap();
    assert_eq!((p.process.uid, p.process.gid), (1000, 1000));
    s.namespaces.user = false;
    let p = plan(&s, &crate::Context::for_ids(0, 0)).unwrap();
    assert_eq!((p.process.uid, p.process.gid), (1000, 1000));
}

#[test]
fn unmapped_uid_is_refused() {
    let mut s = spec();
    s.process.uid = Some(5);
    s.identity.uid_map = vec![IdMap {
        inside: 0,
        outside: 100000,
        count: 1,
    }];
    match plan(&s, &crate::Context::for_ids(0, 0)).unwrap_err() {
        Error::Spec(e) => assert_eq!(e.field, "process.uid"),
        e => panic!("{e}"),
    }
}

/// A device's owner is judged with the process's ids, before anything is
/// made: the supervisor would find it only once the namespaces exist.
#[test]
fn an_unmapped_device_owner_is_refused() {
    let device = |uid, gid| crate::spec::Device {
        path: "/dev/x".into(),
        kind: crate::spec::DeviceKind::Char,
        major: 1,
        minor: 3,
        mode: None,
        uid,
        gid,
    };
    let mut s = spec();
    // The root caller's default maps hold ids 0 to 65535.
    s.filesystem.devices = vec![device(Some(65535), Some(65535))];
    plan(&s, &crate::Context::for_ids(0, 0)).unwrap();
    for (d, field) in [
        (device(Some(70000), None), "filesystem.devices[0].uid"),
        (device(None, Some(65536)), "filesystem.devices[0].gid"),
    ] {
        s.filesystem.devices = vec![d];
        match plan(&s, &crate::Context::for_ids(0, 0)).unwrap_err() {
            Error::Spec(e) => assert_eq!(e.field, field),
            e => panic!("{e}"),
        }
    }
}

#[test]
fn the_plan_carries_the_walls() {
    let p = plan(&spec(), &crate::Context::for_ids(0, 0)).unwrap();
    assert_eq!(p.walls.seccomp.len(), 2, "the default profile compiled");
    assert_eq!(p.namespaces.len(), 8);
    let l = p.walls.landlock.unwrap();
    assert!(!l.required);
    let mut s = spec();
    s.landlock.tcp_connect = Some(vec![443]);
    s.seccomp = crate::seccomp::Seccomp::None;
    let p = plan(&s, &crate::Context::for_ids(0, 0)).unwrap();
    // With no profile, still the one filter that keeps multipath TCP
    // from getting past the port rule.
    assert_eq!(p.walls.seccomp.len(), 1);
    assert!(
        p.walls.landlock.unwrap().required,
        "a port rule the user asked for is never skipped"
    );
    // Off, a port rule would go unapplied: refused, not skipped.
    s.landlock.mode = LandlockMode::Off;
    let e = plan(&s, &crate::Context::for_ids(0, 0)).unwrap_err();
    assert!(e.to_string().contains("landlock.tcp_connect"), "{e}");
    s.landlock.tcp_connect = None;
    assert!(plan(&s, &crate::Context::for_ids(0, 0))
        .unwrap()
        .walls
        .landlock
        .is_none());
}

#[test]
fn a_joined_pid_namespace_is_entered_through_its_owner() {
    let mut s = spec();
    s.namespaces.pid = false;
    s.namespaces
        .join
        .insert("pid".into(), "/proc/42/ns/pid".into());
    s.filesystem.mounts = vec![spec::Mount::Proc {
        destination: "/proc".into(),
    }];
    let mut ctx = crate::Context::for_ids(0, 0);
    let e = plan(&s, &ctx).unwrap_err().to_string();
    assert!(e.contains("namespaces.pid") && e.contains("freezer"), "{e}");
    ctx.cgroup.v2 = Some(crate::cgroup::Hierarchy {
        mount: "/sys/fs/cgroup".into(),
        own: "/".into(),
        root: "/".into(),
    });
    let p = plan(&s, &ctx).unwrap();
    // PID 1 is cloned with nothing new and makes the rest in the
    // owner's user namespace; its /proc is its own.
    assert!(p.userns_of_pid);
    assert_eq!(p.clone_flags, 0);
    assert!(p.join.contains(&(Namespace::Pid, "/proc/42/ns/pid".into())));
    assert!(matches!(p.filesystem.steps[0], MountStep::Proc { .. }));
    // Without a user namespace there is no owner to join.
    s.namespaces.user = false;
    let p = plan(&s, &ctx).unwrap();
    assert!(!p.userns_of_pid);
    assert_ne!(p.clone_flags, 0);
}

#[test]
fn capabilities_resolve_to_numbers() {
    let mut s = spec();
    s.capabilities = vec!["net_bind_service".into(), "CAP_NET_BIND_SERVICE".into()];
    let p = plan(&s, &crate::Context::for_ids(0, 0)).unwrap();
    assert_eq!(p.process.capabilities, vec![10]);
}

/// The priority rlimits are the kernel's defaults unless the spec sets
/// them: a caller's (pam_limits' `rtprio 95`) would let the workload take
/// a real-time policy without a `raised-priority` finding.
#[test]
fn priority_rlimits_default_to_none() {
    let p = plan(&spec(), &crate::Context::for_ids(1000, 1000)).unwrap();
    let defaults = priority_defaults(&p.process.rlimits);
    for r in [libc::RLIMIT_RTPRIO, libc::RLIMIT_NICE] {
        assert!(defaults.contains(&(r as i32, 0, 0)), "{defaults:?}");
    }
    let mut s = spec();
    s.process.rlimits.push(spec::Rlimit {
        resource: "nice".into(),
        soft: 10,
        hard: 10,
    });
    let p = plan(&s, &crate::Context::for_ids(1000, 1000)).unwrap();
    assert_eq!(
        priority_defaults(&p.process.rlimits),
        [(libc::RLIMIT_RTPRIO as i32, 0, 0)]
    );
}

/// A root caller's explicit map must hold the sandbox's root: PID 1 would
/// otherwise stay the host's root, unmapped, with root's groups.
#[test]
fn a_root_callers_map_without_id_0_is_refused() {
    let mut s = spec();
    let one = |inside, outside| {
        vec![spec::IdMap {
            inside,
            outside,
            count: 1,
        }]
    };
    s.process.uid = Some(1000);
    s.process.gid = Some(1000);
    s.identity.uid_map = one(1000, 300_000);
    s.identity.gid_map = one(0, 300_000);
    let e = plan(&s, &crate::Context::for_ids(0, 0)).unwrap_err();
    assert!(e.to_string().contains("identity.uid_map"), "{e}");
    s.identity.uid_map = one(0, 300_000);
    s.identity.gid_map = one(1000, 300_000);
    let e = plan(&s, &crate::Context::for_ids(0, 0)).unwrap_err();
    assert!(e.to_string().contains("identity.gid_map"), "{e}");
}

/// The default masks cover every procfs and sysfs of the sandbox, not
/// only those at /proc and /sys.
#[test]
fn masks_reach_every_procfs_and_sysfs() {
    let mut s = spec();
    s.filesystem.mounts.push(spec::Mount::Proc {
        destination: "/p".into(),
    });
    s.filesystem.mounts.push(spec::Mount::Sysfs {
        destination: "/s/".into(),
    });
    // Spelt with a slash too many, as the kernel takes it too.
    s.filesystem.masked_paths.push("//proc//cmdline".into());
    let p = plan(&s, &crate::Context::for_ids(0, 0)).unwrap();
    let masked: Vec<&str> = p
        .filesystem
        .steps
        .iter()
        .filter_map(|m| match m {
            MountStep::Mask { path } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    for want in [
        "/proc/kcore",
        "/p/kcore",
        "/sys/firmware",
        "/s/firmware",
        "/p/cmdline",
        "/proc/cmdline",
    ] {
        assert!(masked.contains(&want), "{want}: {masked:?}");
    }
    // Every path as the runner looks it up beneath its mount's handle:
    // one spelt `//proc//cmdline` was looked up by path again.
    assert!(
        masked
            .iter()
            .all(|m| !m.contains("//") && !m.ends_with('/')),
        "{masked:?}"
    );
}
