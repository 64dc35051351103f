//! What airlock adds to a bundle and what it does not: no pids limit the
//! bundle did not ask for (runc imposes none), the bundle's own limit
//! when it asks; the orchestrator's seccomp profile applied with
//! airlock's refusals by argument after it.

#[macro_use]
mod common;
use common::*;
use serde_json::json;

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
        c["linux"]["seccomp"] = profile;
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
}
