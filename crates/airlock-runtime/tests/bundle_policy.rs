//! What airlock adds to a bundle and what it does not: no pids limit the
//! bundle did not ask for (runc imposes none), the bundle's own limit
//! when it asks; the orchestrator's seccomp profile applied with
//! airlock's refusals by argument after it.

#[macro_use]
mod common;
use common::*;
use serde_json::{json, Value};

/// The container's pids cgroup line and its `Max processes` rlimit.
const PROBE: &str = "grep ':pids:' /proc/self/cgroup; grep 'Max processes' /proc/self/limits";

#[test]
fn no_pids_limit_unless_the_bundle_asks() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("plain", &["sh", "-c", PROBE], |_| {});
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "p1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    // The rlimit is the host's.
    let default = airlock::spec::DEFAULT_PIDS.to_string();
    assert!(!out.contains(&format!(" {default} ")), "{out}");
    // A pids cgroup of the container's own (which `update` may limit),
    // with no limit in it.
    assert!(out.contains("airlock-"), "{out}");
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "p0"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let pid = state(&env, "p0")["pid"].as_i64().unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = cg
        .lines()
        .find_map(|l| l.split_once(":pids:").map(|(_, p)| p.to_string()))
        .unwrap();
    let max = std::fs::read_to_string(format!("/sys/fs/cgroup/pids{rel}/pids.max")).unwrap();
    assert_eq!(max.trim(), "max");
    assert!(env.rt(&["delete", "--force", "p0"]).status.success());
    let b = env.bundle("limited", &["sh", "-c", PROBE], |c| {
        c["linux"]["resources"] = json!({"pids": {"limit": 50}});
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "p2"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert!(
        out.contains("airlock-"),
        "the bundle's limit has a cgroup: {out}"
    );
}

#[test]
fn the_orchestrators_seccomp_profile_keeps_the_argument_filters() {
    require_root!();
    let env = Env::new();
    // podman's default allows unshare, mount, keyctl; airlock judges it
    // permissive and acknowledges it for a container whose root is not
    // the host's, then adds its refusals by argument: TIOCSTI on a
    // non-terminal gives EPERM (refused), not ENOTTY (reached the tty
    // layer). busybox has no ioctl tool, so `unshare` is the allowed
    // call that shows the profile itself is in force.
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": airlock::seccomp::ALLOWED.iter().chain(["ioctl", "unshare", "mount", "keyctl"].iter()).collect::<Vec<_>>(), "action": "SCMP_ACT_ALLOW"}]
    });
    let b = env.bundle("sc", &["sh", "-c", "grep Seccomp /proc/self/status"], |c| {
        c["linux"]["seccomp"] = profile.clone();
    });
    let log = env.dir.path().join("log.json");
    let o = env.rt(&[
        "--log",
        log.to_str().unwrap(),
        "run",
        "--bundle",
        b.to_str().unwrap(),
        "s1",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("Seccomp_filters:\t2"), "{out}");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logged.contains("seccomp-permissive"), "{logged}");
    // A profile that allows these calls is refused, naming `named`, and
    // leaves no container behind.
    let unacknowledged = |id: &str, extra: &[&str], named: &str| {
        let b = env.bundle(id, &["true"], |c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": airlock::seccomp::ALLOWED.iter().chain(extra.iter()).collect::<Vec<_>>(), "action": "SCMP_ACT_ALLOW"}]
            });
        });
        let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), id]);
        let (out, err) = text(&o);
        assert!(!o.status.success(), "{id}: {out} {err}");
        assert!(
            err.contains("seccomp-permissive") && err.contains(named),
            "{id}: {err}"
        );
        assert!(!env.rt(&["state", id]).status.success(), "{id}");
    };
    // One that opens what the kernel holds for every namespace (bpf,
    // io_uring, userfaultfd) is not what an orchestrator's default does:
    // not acknowledged on the bundle's behalf either.
    unacknowledged(
        "kernel",
        &["unshare", "io_uring_setup", "io_uring_enter", "userfaultfd"],
        "io_uring_setup",
    );
    // Nor one that lets personality(2) take any value (the orchestrators'
    // let through the values airlock's default does): READ_IMPLIES_EXEC
    // or ADDR_NO_RANDOMIZE weaken the workload whatever its namespaces.
    unacknowledged("persona", &["personality"], "personality");
    // podman's own profile, as this host's containers-common ships it
    // (its capability-gated rules for the default capabilities only, as
    // podman resolves them), runs.
    if let Ok(shipped) = std::fs::read_to_string("/usr/share/containers/seccomp.json") {
        let profile = podman_resolved(&shipped);
        let b = env.bundle("podman", &["sh", "-c", "exit 0"], |c| {
            c["linux"]["seccomp"] = profile.clone();
        });
        let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "podman"]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{out} {err}");
    } else {
        eprintln!("SKIPPED (podman's profile): /usr/share/containers/seccomp.json is missing");
    }
    // One whose default lets through what it does not name is no filter:
    // not acknowledged on the bundle's behalf.
    let b = env.bundle("allow", &["true"], |c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []});
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "allow"]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out} {err}");
    assert!(err.contains("seccomp-permissive"), "{err}");
    assert!(!env.rt(&["state", "allow"]).status.success());
    // runc's SECCOMP_FILTER_FLAG_LOG is applied (the kernel logs what the
    // filter refuses; spec_features.rs checks the record); another flag
    // is refused by name, not ignored.
    for (flag, runs) in [
        ("SECCOMP_FILTER_FLAG_LOG", true),
        ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", false),
    ] {
        let b = env.bundle(flag, &["sh", "-c", "exit 0"], |c| {
            c["linux"]["seccomp"] = profile.clone();
            c["linux"]["seccomp"]["flags"] = json!([flag]);
        });
        let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), &flag.to_lowercase()]);
        let (out, err) = text(&o);
        assert_eq!(o.status.success(), runs, "{flag}: {out} {err}");
        if !runs {
            assert!(
                err.contains("linux.seccomp.flags") || err.contains("seccomp.oci.flags"),
                "{err}"
            );
        }
    }
}

/// Under the container's own id maps (podman's and ctr's `--uidmap`), the
/// client has made the container's files its mapped root's: CAP_DAC_OVERRIDE
/// over its root and the files the bundle directory holds for it (podman's
/// /etc/hosts) is acknowledged, as runc grants it, while a bind of anything
/// else with it still needs `cap-dac-override` by name.
#[test]
fn dac_override_over_the_containers_own_files_under_its_own_maps() {
    require_root!();
    let env = Env::new();
    let with_maps_and_cap = |c: &mut Value, source: &str| {
        let map = json!([{"containerID": 0, "hostID": 1879244800u32, "size": 65536}]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_DAC_OVERRIDE"));
        }
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/etc/hosts", "type": "bind", "source": source,
            "options": ["rbind", "ro"]
        }));
    };
    let own = env.bundle("own", &["cat", "/etc/hosts"], |c| {
        with_maps_and_cap(c, "hosts")
    });
    std::fs::write(own.join("hosts"), "127.0.0.1 own\n").unwrap();
    let o = env.rt(&["run", "--bundle", own.to_str().unwrap(), "own"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out, "127.0.0.1 own\n");
    // The same file from outside the bundle directory is a host bind.
    let outside = env.dir.path().join("hosts-outside");
    std::fs::write(&outside, "127.0.0.1 host\n").unwrap();
    let host = env.bundle("host", &["cat", "/etc/hosts"], |c| {
        with_maps_and_cap(c, outside.to_str().unwrap())
    });
    let o = env.rt(&["run", "--bundle", host.to_str().unwrap(), "host"]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "ran: {out}");
    assert!(err.contains("cap-dac-override"), "{err}");
    assert!(!text(&env.rt(&["list", "-q"])).0.contains("host"));
}

/// podman's default caps, by which it resolves its profile's `includes`.
const PODMAN_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// containers-common's seccomp.json as podman writes it into a bundle:
/// the rules whose `includes`/`excludes` hold for its default caps on
/// amd64, with those keys dropped.
fn podman_resolved(text: &str) -> serde_json::Value {
    let mut p: serde_json::Value = serde_json::from_str(text).unwrap();
    let holds = |r: &serde_json::Value| {
        let caps_in = |key: &str| {
            r[key]["caps"]
                .as_array()
                .map(|c| c.iter().filter_map(|c| c.as_str()).collect::<Vec<_>>())
        };
        let arch_ok = r["includes"]["arches"]
            .as_array()
            .is_none_or(|a| a.iter().any(|x| x == "amd64"));
        let excluded_arch = r["excludes"]["arches"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "amd64"));
        let inc = caps_in("includes").is_none_or(|c| c.iter().all(|c| PODMAN_CAPS.contains(c)));
        let exc = caps_in("excludes").is_some_and(|c| c.iter().any(|c| PODMAN_CAPS.contains(c)));
        arch_ok && !excluded_arch && inc && !exc && r["includes"]["minKernel"].is_null()
    };
    let rules: Vec<serde_json::Value> = p["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| holds(r))
        .map(|r| {
            let mut r = r.clone();
            let o = r.as_object_mut().unwrap();
            o.remove("includes");
            o.remove("excludes");
            o.remove("comment");
            o.remove("errno");
            r
        })
        .collect();
    p["syscalls"] = serde_json::Value::Array(rules);
    let o = p.as_object_mut().unwrap();
    o.remove("archMap");
    o.remove("defaultErrno");
    o.insert(
        "architectures".into(),
        serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
    );
    p
}
