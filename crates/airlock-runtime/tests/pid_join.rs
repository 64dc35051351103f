//! Joining a PID namespace by path (Kubernetes' shareProcessNamespace):
//! the app container joins the pause container's PID namespace and,
//! through it, the pause container's user namespace; from inside it sees
//! the pause container's process. Namespaces it cannot join safely are
//! refused with the reason.

#[macro_use]
mod common;
use common::*;
use serde_json::json;

fn joining(path: &str) -> serde_json::Value {
    json!([
        {"type": "pid", "path": path}, {"type": "network"}, {"type": "ipc"},
        {"type": "uts"}, {"type": "mount"}
    ])
}

#[test]
fn a_container_joins_another_ones_pid_namespace() {
    require_root!();
    let env = Env::new();
    let pause = env.bundle("pause", &["sleep", "1000"], |_| {});
    let pid_file = env.dir.path().join("pause1.pid");
    let o = env.rt(&[
        "run",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--bundle",
        pause.to_str().unwrap(),
        "pause1",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let pause_pid = state(&env, "pause1")["pid"].as_i64().unwrap();
    let ns = format!("/proc/{pause_pid}/ns/pid");
    let pause_ns = std::fs::read_link(&ns).unwrap().display().to_string();
    let app = env.bundle(
        "app",
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/pid; cat /proc/1/cmdline; echo; ps -o pid,args",
        ],
        |c| c["linux"]["namespaces"] = joining(&ns),
    );
    let o = env.rt(&["run", "--bundle", app.to_str().unwrap(), "app1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], pause_ns, "the pause container's namespace: {out}");
    // PID 1 there is the pause container's process, and ps (from the
    // app's own /proc) shows it.
    assert_eq!(lines[1].replace('\0', " ").trim(), "sleep 1000", "{out}");
    assert!(
        lines[2..].iter().any(|l| l.trim() == "1 sleep 1000"),
        "{out}"
    );
    // The pid a client was given (--pid-file) is the container process,
    // as `state` says, and names its namespaces.
    let given: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(given, pause_pid);
    let by_given = format!("/proc/{given}/ns/pid");
    let app3 = env.bundle("app3", &["sh", "-c", "readlink /proc/self/ns/pid"], |c| {
        c["linux"]["namespaces"] = joining(&by_given)
    });
    let o = env.rt(&["run", "--bundle", app3.to_str().unwrap(), "app3"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out.trim(), pause_ns, "{err}");
    // An exec into a joined container is in the same namespace.
    let app2 = env.bundle("app2", &["sleep", "1000"], |c| {
        c["linux"]["namespaces"] = joining(&ns)
    });
    let o = env.rt(&["run", "-d", "--bundle", app2.to_str().unwrap(), "app2"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = env.rt(&[
        "exec",
        "app2",
        "sh",
        "-c",
        "readlink /proc/self/ns/pid; ps -o args",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert!(out.starts_with(&pause_ns), "{out}");
    assert_eq!(out.matches("sleep 1000").count(), 2, "both sleeps: {out}");
    // Killing the app leaves the pause container running.
    assert!(env.rt(&["delete", "--force", "app2"]).status.success());
    assert_eq!(state(&env, "pause1")["status"], "running");
    assert!(env.rt(&["delete", "--force", "pause1"]).status.success());
}

#[test]
fn pid_namespaces_that_cannot_be_joined_safely_are_refused() {
    require_root!();
    let env = Env::new();
    // The caller's own is the host's: the guardrails refuse it (and the
    // runner would too: its /proc is not the container's to mount).
    let own = format!("/proc/{}/ns/pid", std::process::id());
    let b = env.bundle("b1", &["true"], |c| {
        c["linux"]["namespaces"] = joining(&own)
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "p1"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(err.contains("error[shared-pid]"), "{err}");
    // Acknowledged, the runner still refuses it.
    let o = env.rt(&[
        "--allow-unsafe",
        "shared-pid",
        "--allow-unsafe",
        "cap-host-pid",
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "p1",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(
        err.contains(&own) && err.contains("caller's own user namespace"),
        "{err}"
    );
    assert!(!env.rt(&["state", "p1"]).status.success());
    // One whose user namespace maps other host ids.
    let other = env.bundle("other", &["sleep", "1000"], |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] =
            json!([{"containerID": 0, "hostID": 1_610_612_736u32, "size": 65536}]);
        c["linux"]["gidMappings"] =
            json!([{"containerID": 0, "hostID": 1_610_612_736u32, "size": 65536}]);
    });
    let o = env.rt(&["run", "-d", "--bundle", other.to_str().unwrap(), "other"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let pid = state(&env, "other")["pid"].as_i64().unwrap();
    let b = env.bundle("b2", &["true"], |c| {
        c["linux"]["namespaces"] = joining(&format!("/proc/{pid}/ns/pid"))
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "p2"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(err.contains("other id maps"), "{err}");
    assert!(!env.rt(&["state", "p2"]).status.success());
    assert!(env.rt(&["delete", "--force", "other"]).status.success());
}

/// `kill --all` of a created container that joined another's PID
/// namespace leaves its held process to its supervisor: signalled with
/// the rest of the cgroup, that process (not its namespace's init, its
/// handlers back to the defaults) died of a USR1, and the container
/// stopped before it ever started.
#[test]
fn kill_all_leaves_a_created_joined_container_created() {
    require_root!();
    let env = Env::new();
    let pause = env.bundle("pause", &["sleep", "1000"], |_| {});
    let o = env.rt(&["run", "-d", "--bundle", pause.to_str().unwrap(), "pause1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let pause_pid = state(&env, "pause1")["pid"].as_i64().unwrap();
    let ns = format!("/proc/{pause_pid}/ns/pid");
    let app = env.bundle("app", &["sleep", "1000"], |c| {
        c["linux"]["namespaces"] = joining(&ns)
    });
    let o = env.rt(&["create", "--bundle", app.to_str().unwrap(), "app1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = env.rt(&["kill", "--all", "app1", "USR1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(state(&env, "app1")["status"], "created");
    // And it still starts.
    assert!(env.rt(&["start", "app1"]).status.success());
    assert_eq!(state(&env, "app1")["status"], "running");
    for id in ["app1", "pause1"] {
        assert!(env.rt(&["delete", "--force", id]).status.success());
    }
}

/// A container in the host's PID namespace (hostPID, acknowledged)
/// signals the host's processes, as under runc: Landlock's signal scope,
/// which the CLI's `--share-pid` gets, is not set for the runtime's
/// containers (`landlock.host_signals`).
#[test]
fn a_host_pid_container_signals_the_hosts_processes() {
    require_root!();
    let env = Env::new();
    // A process of the container root's host uid (a root runtime's
    // containers all run as the range airlock gives a root caller).
    let mut target = std::process::Command::new("setpriv")
        .arg(format!("--reuid={}", airlock::plan::ROOT_CALLER_BASE))
        .arg(format!("--regid={}", airlock::plan::ROOT_CALLER_BASE))
        .args(["--clear-groups", "sleep", "60"])
        .spawn()
        .unwrap();
    let probe = format!("kill -0 {} && echo signalled || echo refused", target.id());
    let b = env.bundle("hp", &["sh", "-c", &probe], |c| {
        c["linux"]["namespaces"] =
            json!([{"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]);
    });
    let o = env.rt(&[
        "--allow-unsafe",
        "shared-pid",
        "--allow-unsafe",
        "cap-host-pid",
        "run",
        "--bundle",
        b.to_str().unwrap(),
        "hp",
    ]);
    target.kill().unwrap();
    target.wait().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out.trim(), "signalled", "{err}");
}
