//! airlock-runtime driven the way an OCI client drives runc: bundles on
//! disk, one call per verb, the state root given with --root. Every
//! container is a real sandbox; the properties are checked from inside.

#[macro_use]
mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `kill ID` without a signal sends SIGTERM, as runc's does.
#[test]
fn kill_without_a_signal_sends_term() {
    require_root!();
    let env = Env::new();
    let shared = env.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let script =
        "trap 'touch /out/term; exit 7' TERM; touch /out/ready; while :; do sleep 0.05; done";
    let b = env.bundle("t", &["sh", "-c", script], |c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/out", "type": "bind", "source": shared, "options": ["rbind", "rw"]}));
    });
    let o = env.rt(&["run", "--detach", "--bundle", b.to_str().unwrap(), "t"]);
    assert!(o.status.success(), "{:?}", text(&o));
    for _ in 0..400 {
        if shared.join("ready").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let o = env.rt(&["kill", "t"]);
    assert!(o.status.success(), "{:?}", text(&o));
    wait_status(&env, "t", "stopped");
    assert!(
        shared.join("term").exists(),
        "the trap for TERM did not run"
    );
    assert!(env.rt(&["delete", "t"]).status.success());
}

/// SIGTERM to a created container stops it, as it does runc's held
/// init: a held PID 1 ignores signals it has no handler for, which left
/// a CRI StopContainer waiting out its grace period.
#[test]
fn a_created_container_is_stopped_by_term() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("b", &["sleep", "1000"], |_| {});
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "ct"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let pid = state(&env, "ct")["pid"].as_i64().unwrap();
    // One runc's held init ignores (Go catches USR1) leaves it as it is.
    let o = env.rt(&["kill", "ct", "USR1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(state(&env, "ct")["status"], "created");
    let o = env.rt(&["kill", "ct", "TERM"]);
    assert!(o.status.success(), "{:?}", text(&o));
    wait_status(&env, "ct", "stopped");
    assert!(!alive(pid));
    assert!(!env.rt(&["start", "ct"]).status.success());
    assert!(env.rt(&["delete", "ct"]).status.success());
}

#[test]
fn create_start_state_kill_delete() {
    require_root!();
    let env = Env::new();
    // A volume keeps the host's view of ownership: container root is an
    // unprivileged host id there, so the directory is open to everyone.
    let shared = env.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let marker = shared.join("started");
    let m = marker.display().to_string();
    let b = env.bundle("b", &["sh", "-c", "touch /out/started; exec sleep 1000"], |c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/out", "type": "bind", "source": shared, "options": ["rbind", "rw"]}));
    });
    let pid_file = env.dir.path().join("pid");
    let o = env.rt(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        "c1",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    // Created: set up, the workload held before exec.
    let s = state(&env, "c1");
    assert_eq!(s["status"], "created", "{s}");
    assert_eq!(s["id"], "c1");
    assert_eq!(s["bundle"], b.canonicalize().unwrap().display().to_string());
    // What runc gives beyond the spec's state: the rootfs, and when the
    // container was created (RFC 3339, as `date` reads it back).
    let rootfs = b.canonicalize().unwrap().join("rootfs");
    assert_eq!(s["rootfs"], rootfs.display().to_string());
    let created = s["created"].as_str().unwrap();
    let o = Command::new("date")
        .args(["-u", "+%s", "-d", created])
        .output()
        .unwrap();
    let created: u64 = text(&o).0.trim().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(created <= now && now - created < 120, "{s}");
    assert_eq!(s["owner"], "");
    let pid = s["pid"].as_i64().unwrap();
    assert!(pid > 0 && alive(pid));
    // The pid file names the container process, as `state` does (a
    // client reaps it and reads its namespaces and cgroups).
    assert_eq!(
        std::fs::read_to_string(&pid_file)
            .unwrap()
            .parse::<i64>()
            .unwrap(),
        pid
    );
    assert!(!marker.exists(), "{m}: the workload ran before start");
    // As runc: a created container can be exec'd into (its namespaces are
    // there), and its workload still waits for start.
    let o = env.rt(&["exec", "c1", "sh", "-c", "hostname; exit 5"]);
    assert_eq!(o.status.code(), Some(5), "{:?}", text(&o));
    assert_eq!(text(&o).0, "oci-test\n");
    assert_eq!(state(&env, "c1")["status"], "created");
    assert!(!marker.exists(), "{m}: the workload ran before start");
    // A second create with the same id is refused, nothing changes.
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "c1"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("c1"), "{:?}", text(&o));
    // Start releases it.
    let o = env.rt(&["start", "c1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    wait_status(&env, "c1", "running");
    for _ in 0..200 {
        if marker.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(marker.exists(), "the workload did not run after start");
    // A second start is an error.
    assert!(!env.rt(&["start", "c1"]).status.success());
    // Delete without --force refuses a running container.
    let o = env.rt(&["delete", "c1"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("running"), "{:?}", text(&o));
    // kill, then it is stopped and its processes are gone.
    let o = env.rt(&["kill", "c1", "KILL"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let s = wait_status(&env, "c1", "stopped");
    assert_eq!(s["pid"], 0);
    assert!(!alive(pid));
    // Killing it again fails in runc's words, which the shims match;
    // with --all there is nothing left to signal, which runc takes as
    // done.
    let o = env.rt(&["kill", "c1", "KILL"]);
    assert!(
        text(&o).1.contains("container not running"),
        "{:?}",
        text(&o)
    );
    let o = env.rt(&["kill", "--all", "c1", "KILL"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = env.rt(&["delete", "c1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = env.rt(&["state", "c1"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("does not exist"), "{:?}", text(&o));
    // delete --force of what is not there is fine, as with runc.
    assert!(env.rt(&["delete", "--force", "c1"]).status.success());
}

#[test]
fn run_gives_the_exit_status_and_stdio() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("b", &["sh", "-c", "echo out; echo err >&2; exit 7"], |_| {});
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "r1"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(7), "{out} {err}");
    assert_eq!(out, "out\n");
    assert!(err.contains("err"), "{err}");
    // run without --keep removes the container.
    assert!(!env.rt(&["state", "r1"]).status.success());
}

/// A foreground run passes the signals it gets on to the container, as
/// runc's does: a SIGTERM reaches the workload, whose exit is the run's,
/// and the container goes with it.
#[test]
fn a_foreground_run_passes_signals_on() {
    require_root!();
    let env = Env::new();
    let script = "trap 'exit 7' TERM; touch /tmp/ready; while :; do sleep 0.05; done";
    let b = env.bundle("b", &["sh", "-c", script], |_| {});
    let mut run = Command::new(runtime())
        .arg("--root")
        .arg(env.root())
        .args(["run", "--bundle", b.to_str().unwrap(), "f1"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = b.join("rootfs/tmp/ready");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ready.exists() && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(ready.exists(), "the workload did not start");
    // SAFETY: kill takes plain integers; the pid is our unreaped child.
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(7), "{status:?}");
    assert!(!env.rt(&["state", "f1"]).status.success());
}

/// A create that fails after the container exists (here its pid file
/// cannot be written) leaves neither the container nor its processes.
#[test]
fn a_pid_file_that_cannot_be_written_fails_create_and_leaves_nothing() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("b", &["sleep", "1000"], |_| {});
    let bad = env.dir.path().join("no/such/dir/pid");
    let o = env.rt(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--pid-file",
        bad.to_str().unwrap(),
        "pf1",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(err.contains("no/such/dir/pid"), "{err}");
    assert!(!env.rt(&["state", "pf1"]).status.success(), "left pf1");
    let listed = env.rt(&["list", "-q"]);
    assert_eq!(text(&listed).0, "", "left a container");
    // The name is free again.
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "pf1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(env.rt(&["delete", "--force", "pf1"]).status.success());
}

#[test]
fn inside_a_container() {
    require_root!();
    let env = Env::new();
    let script = "cat /proc/self/uid_map; stat -c %u /bin/busybox; \
                  touch /made-inside && stat -c %u /made-inside; hostname; \
                  cat /proc/sys/net/ipv4/ping_group_range; grep -c . /proc/1/cmdline; \
                  grep NoNewPrivs /proc/self/status; umask";
    let b = env.bundle("b", &["sh", "-c", script], |c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ping_group_range": "0 0"});
        c["process"]["user"]["umask"] = json!(0o077);
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "in1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    let lines: Vec<&str> = out.lines().collect();
    // No user namespace in the bundle, yet root inside is an unprivileged
    // host range.
    let map: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(map[0], "0");
    assert_ne!(map[1], "0", "container root is not the host's root: {out}");
    // The rootfs is idmapped: host root's files are container root's, and
    // what container root makes is host root's on disk.
    assert_eq!(lines[1], "0", "{out}");
    assert_eq!(lines[2], "0", "{out}");
    let made = b.join("rootfs/made-inside");
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&made.metadata().unwrap()),
        0
    );
    // The bundle's umask: what the workload makes is its own alone.
    assert_eq!(lines[7], "0077", "{out}");
    assert_eq!(
        std::os::unix::fs::MetadataExt::mode(&made.metadata().unwrap()) & 0o777,
        0o600
    );
    assert_eq!(lines[3], "oci-test");
    assert_eq!(lines[4].split_whitespace().collect::<Vec<_>>(), ["0", "0"]);
    assert!(lines[6].ends_with('1'), "no_new_privs: {out}");
}

/// As a subreaper, runs `RUNTIME --root ROOT exec -d --pid-file FILE e1
/// sleep 9999`; prints the named process's cmdline and PID namespace, ends it, and
/// prints how it ended as the subreaper reaped it.
const SUBREAPER: &str = r#"
import ctypes, os, signal, subprocess, sys
ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
rt, root, pid_file = sys.argv[1:4]
r = subprocess.run([rt, "--root", root, "exec", "-d", "--pid-file", pid_file, "e1", "sleep", "9999"])
assert r.returncode == 0, r
pid = int(open(pid_file).read())
print(open(f"/proc/{pid}/cmdline").read().replace("\0", " ").strip())
print(os.readlink(f"/proc/{pid}/ns/pid"), flush=True)
os.kill(pid, signal.SIGTERM)
signal.alarm(20)
while True:
    got, status = os.waitpid(-1, 0)
    if got == pid:
        break
print("signal", os.WTERMSIG(status) if os.WIFSIGNALED(status) else None)
"#;

#[test]
fn exec_joins_a_running_container() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("b", &["sleep", "1000"], |_| {});
    let o = env.rt(&["run", "-d", "--bundle", b.to_str().unwrap(), "e1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = env.rt(&[
        "exec",
        "e1",
        "sh",
        "-c",
        "hostname; cat /proc/1/comm; exit 3",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out} {err}");
    assert_eq!(out, "oci-test\nsleep\n");
    // An exec that cannot run exits 255, as runc's, apart from a
    // process's own status.
    for args in [
        &["exec", "e1", "/nonexistent"][..],
        &["exec", "nosuch", "true"],
    ] {
        let o = env.rt(args);
        assert_eq!(o.status.code(), Some(255), "{args:?}: {:?}", text(&o));
    }
    // `exec -d --pid-file` under a subreaper, as conmon and containerd's
    // shim run it: the pid is the exec'd process's own (in the
    // container's PID namespace), and its exit reaches the subreaper.
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    let container = state(&env, "e1")["pid"].to_string();
    let pid_file = env.dir.path().join("exec.pid");
    let o = Command::new("python3")
        .args(["-c", SUBREAPER, env!("CARGO_BIN_EXE_airlock-runtime")])
        .arg(env.root())
        .arg(&pid_file)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out} {err}");
    assert_eq!(lines[0], "sleep 9999", "{err}");
    assert_eq!(lines[1], ns(&container).to_str().unwrap());
    assert_eq!(lines[2], "signal 15", "{err}");
    assert!(env.rt(&["delete", "--force", "e1"]).status.success());
    assert!(!env.rt(&["state", "e1"]).status.success());
}

/// Container ids as runc takes them (`+` too) and as long as containerd
/// makes them (76); `/` or `..` never.
#[test]
fn ids_runc_and_containerd_give_are_taken() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("b", &["echo", "ran"], |_| {});
    let long = format!("k8s.io-{}", "a".repeat(69));
    for id in ["c++1", long.as_str()] {
        let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), id]);
        assert!(o.status.success(), "{id}: {:?}", text(&o));
    }
    for id in ["a/b", "..", "a b"] {
        let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), id]);
        assert!(!o.status.success(), "{id}");
        assert!(text(&o).1.contains("invalid name"), "{id}: {:?}", text(&o));
    }
}

/// What a bad-bundle case does to a good bundle.
type Spoil = Box<dyn Fn(&Path)>;

#[test]
fn bad_bundles_are_refused_and_leave_nothing() {
    require_root!();
    let env = Env::new();
    let cases: Vec<(&str, Spoil, &str)> = vec![
        (
            "missing config",
            Box::new(|b: &Path| std::fs::remove_file(b.join("config.json")).unwrap()),
            "config.json",
        ),
        (
            "invalid json",
            Box::new(|b: &Path| std::fs::write(b.join("config.json"), "{").unwrap()),
            "config.json",
        ),
        (
            "old version",
            Box::new(|b: &Path| edit_config(b, |c| c["ociVersion"] = json!("0.9.0"))),
            "ociVersion",
        ),
        (
            "a field of the wrong type",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["linux"]["resources"] = json!({"memory": {"limit": "lots"}})
                })
            }),
            "field `linux.resources.memory.limit`: invalid type",
        ),
        (
            "swap without a memory limit (runc refuses it too)",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["linux"]["resources"] = json!({"memory": {"swap": 268435456}})
                })
            }),
            "linux.resources.memory.swap: needs linux.resources.memory.limit",
        ),
        (
            "a proc option airlock does not apply (fewer processes seen)",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["mounts"][0]["options"] = json!(["nosuid", "hidepid=2"])
                })
            }),
            "mounts[0].options: \"hidepid=2\" is not supported on a proc mount",
        ),
        (
            "a read-only proc",
            Box::new(|b: &Path| edit_config(b, |c| c["mounts"][0]["options"] = json!(["ro"]))),
            "mounts[0].options: \"ro\" is not supported on a proc mount",
        ),
        (
            "device nodes on a tmpfs",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["mounts"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["dev"]}))
                })
            }),
            "mounts[6].options: dev is not supported on a tmpfs",
        ),
        (
            "a device allowed for reading only",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["linux"]["devices"] =
                        json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]);
                    c["linux"]["resources"] = json!({"devices": [
                        {"allow": false, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "r"}
                    ]});
                })
            }),
            "linux.resources.devices: /dev/fuse (c 10:229) is allowed for reading only",
        ),
        (
            "an rlimit given twice (the spec says a runtime must refuse it)",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["process"]["rlimits"] = json!([
                        {"type": "RLIMIT_NOFILE", "hard": 512, "soft": 512},
                        {"type": "RLIMIT_NOFILE", "hard": 256, "soft": 256}
                    ])
                })
            }),
            "process.rlimits[1]: RLIMIT_NOFILE is given twice",
        ),
        (
            "a namespace type given twice (the spec says a runtime must refuse it)",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["linux"]["namespaces"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"type": "network", "path": "/proc/self/ns/net"}))
                })
            }),
            "linux.namespaces[5].type: a second network namespace (linux.namespaces[1] is one)",
        ),
        (
            "a time offset that is not an object",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["linux"]["namespaces"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"type": "time"}));
                    c["linux"]["timeOffsets"] = json!({"monotonic": 3600});
                })
            }),
            "linux.timeOffsets.monotonic: must be an object",
        ),
        (
            "a time offset with a misspelt key",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["linux"]["namespaces"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"type": "time"}));
                    c["linux"]["timeOffsets"] = json!({"boottime": {"sec": 3600}});
                })
            }),
            "linux.timeOffsets.boottime.sec: unknown key",
        ),
        (
            "an effective capability that is not permitted (runc's capset fails)",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["process"]["capabilities"]["effective"] = json!(["CAP_KILL", "CAP_CHOWN"]);
                    c["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_CHOWN"]);
                })
            }),
            "process.capabilities.effective: CAP_CHOWN is not in process.capabilities.permitted",
        ),
        (
            "a memory limit below -1 (runc refuses it; it was taken as none)",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["linux"]["resources"] = json!({"memory": {"limit": -5}})
                })
            }),
            "linux.resources.memory.limit: -5 is no value",
        ),
        (
            "a variable without a name",
            Box::new(|b: &Path| {
                edit_config(b, |c| c["process"]["env"] = json!(["PATH=/bin", "=x"]))
            }),
            "process.env[1]: not KEY=VALUE",
        ),
        (
            "Windows's user name",
            Box::new(|b: &Path| {
                edit_config(b, |c| c["process"]["user"]["username"] = json!("admin"))
            }),
            "process.user.username: Windows only",
        ),
        (
            "id maps without a user namespace (runc refuses them too)",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["linux"]["uidMappings"] =
                        json!([{"containerID": 0, "hostID": 200000, "size": 65536}])
                })
            }),
            "linux.uidMappings: needs a user namespace in linux.namespaces",
        ),
        (
            "a seccomp listener",
            Box::new(|b: &Path| {
                edit_config(
                    b,
                    |c| c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/agent.sock", "syscalls": []}),
                )
            }),
            "linux.seccomp.listenerPath: seccomp user notification is not supported",
        ),
        (
            "unlimited swap (runc's -1), which would not be taken as none",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["linux"]["resources"] = json!({"memory": {"limit": 67108864, "swap": -1}})
                })
            }),
            "linux.resources.memory.swap: -1 (unlimited swap) is not supported",
        ),
        (
            "memory and swap together below the memory limit (runc refuses it too)",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["linux"]["resources"] =
                        json!({"memory": {"limit": 67108864, "swap": 33554432}})
                })
            }),
            "linux.resources.memory.swap: 33554432 is below linux.resources.memory.limit",
        ),
        (
            "a raw cgroup v2 file",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["linux"]["resources"] = json!({"unified": {"pids.max": "5"}})
                })
            }),
            "linux.resources.unified.pids.max",
        ),
        (
            "a per-device I/O limit",
            Box::new(|b: &Path| {
                edit_config(
                    b,
                    |c| c["linux"]["resources"] = json!({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]}}),
                )
            }),
            "linux.resources.blockIO.throttleReadBpsDevice",
        ),
        (
            "the OOM killer off",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["linux"]["resources"] =
                        json!({"memory": {"limit": 67108864, "disableOOMKiller": true}})
                })
            }),
            "linux.resources.memory.disableOOMKiller",
        ),
        (
            "CPU shares the kernel would clamp",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["linux"]["resources"] = json!({"cpu": {"shares": 300000}})
                })
            }),
            "linux.resources.cpu.shares: 300000 is not between 2 and 262144",
        ),
        (
            "a field oci-spec does not know",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"})
                })
            }),
            "field `linux.memoryPolicy`: not supported",
        ),
        (
            "id maps outside linux, which oci-spec reads and nothing uses",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}])
                })
            }),
            "field `uidMappings`: not supported by airlock-runtime (give the container's id maps as linux.uidMappings)",
        ),
        (
            "a virtual machine",
            Box::new(|b: &Path| {
                edit_config(b, |c| c["vm"] = json!({"kernel": {"path": "/boot/vmlinuz"}}))
            }),
            "field `vm`: not supported",
        ),
        (
            "a hostname with the host's UTS namespace",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["hostname"] = json!("not-the-host");
                    c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "network"}, {"type": "mount"}]);
                })
            }),
            "hostname: needs a UTS namespace",
        ),
        (
            "no rootfs",
            Box::new(|b: &Path| std::fs::remove_dir_all(b.join("rootfs")).unwrap()),
            "root.path",
        ),
        (
            "unknown annotation",
            Box::new(|b: &Path| {
                edit_config(b, |c| c["annotations"] = json!({"run.airlock.nope": "1"}))
            }),
            "run.airlock.nope",
        ),
        (
            "host sysctl",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["linux"]["sysctl"] = json!({"vm.overcommit_memory": "1"})
                })
            }),
            "vm.overcommit_memory",
        ),
        (
            "extra device",
            Box::new(|b: &Path| {
                edit_config(b, |c| {
                    c["linux"]["devices"] =
                        json!([{"path": "/dev/sda", "type": "b", "major": 8, "minor": 0}])
                })
            }),
            "linux.devices",
        ),
        (
            "host pid namespace",
            Box::new(|b: &Path| {
                edit_config(
                    b,
                    |c| c["linux"]["namespaces"] = json!([{"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]),
                )
            }),
            "shared-pid",
        ),
    ];
    let own_mnt = format!("/proc/{}/ns/mnt", std::process::id());
    let mut cases = cases;
    cases.push((
        "a mount namespace given as the network one",
        Box::new(move |b: &Path| {
            let p = own_mnt.clone();
            edit_config(b, |c| {
                c["linux"]["namespaces"] = json!([
                    {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                    {"type": "network", "path": p}
                ])
            })
        }),
        "is not a net namespace",
    ));
    for (i, (what, spoil, needle)) in cases.iter().enumerate() {
        let b = env.bundle(&format!("b{i}"), &["true"], |_| {});
        spoil(&b);
        let id = format!("bad{i}");
        let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), &id]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{what}: {out} {err}");
        assert!(err.contains(needle), "{what}: {needle:?} not in {err}");
        assert!(
            !env.rt(&["state", &id]).status.success(),
            "{what}: left a container"
        );
    }
    let o = env.rt(&["list", "--format", "json"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
}

#[test]
fn spec_writes_a_config_that_runs() {
    require_root!();
    let env = Env::new();
    // A bundle whose config.json is the runtime's own template.
    let b = env.bundle("b", &["true"], |_| {});
    std::fs::remove_file(b.join("config.json")).unwrap();
    let o = env.rt(&["spec", "--bundle", b.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(
        !env.rt(&["spec", "--bundle", b.to_str().unwrap()])
            .status
            .success(),
        "never over an existing one"
    );
    edit_config(&b, |c| {
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(["sh", "-c", "echo from-template"]);
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "s1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out, "from-template\n");

    // The rootless template runs rootless as it is written (runc's bound
    // the host's /sys and shared its network, which the guardrails
    // refuse), under airlock's hostname.
    let r = env.bundle("r", &["true"], |_| {});
    std::fs::remove_file(r.join("config.json")).unwrap();
    run(std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(env.dir.path()));
    let as_nobody = |args: &[&str]| env.rt_as_nobody(args);
    let o = as_nobody(&["spec", "--rootless", "--bundle", r.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    edit_config(&r, |c| {
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "hostname; ls /sys/kernel >/dev/null && echo sysfs"
        ]);
    });
    let o = as_nobody(&["run", "--bundle", r.to_str().unwrap(), "r1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out, "airlock\nsysfs\n");
}

fn edit_config(b: &Path, f: impl FnOnce(&mut Value)) {
    let mut c: Value =
        serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    f(&mut c);
    std::fs::write(b.join("config.json"), c.to_string()).unwrap();
}

#[test]
fn a_network_namespace_is_joined_by_path() {
    require_root!();
    let env = Env::new();
    // A network namespace prepared the way a platform does, bound to a file.
    let nsfile = env.dir.path().join("netns");
    std::fs::write(&nsfile, "").unwrap();
    let ok = Command::new("unshare")
        .arg(format!("--net={}", nsfile.display()))
        .arg("true")
        .status()
        .unwrap();
    assert!(ok.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(nsfile.clone());
    let inode = std::os::unix::fs::MetadataExt::ino(&nsfile.metadata().unwrap());
    let b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "stat -L -c %i /proc/self/ns/net; cat /proc/sys/net/ipv4/ip_default_ttl; ls /sys; touch /sys/x 2>/dev/null && echo wrote /sys; true",
        ],
        |c| {
            c["linux"]["namespaces"] = json!([
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                {"type": "network", "path": nsfile}
            ]);
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_default_ttl": "33"});
            // containerd's default, in every CNI pod: the pod's network
            // is not the host's, and this is no finding.
            // (And CAP_DAC_OVERRIDE, which a mode does not stop.)
            let caps = json!([
                "CAP_KILL",
                "CAP_NET_BIND_SERVICE",
                "CAP_NET_RAW",
                "CAP_DAC_OVERRIDE"
            ]);
            for set in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][set] = caps.clone();
            }
        },
    );
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "n1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert!(!err.contains("cap-net-admin-host"), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], inode.to_string(), "the joined namespace: {out}");
    assert_eq!(lines[1], "33", "its sysctl was written: {out}");
    // The host's namespace was not touched.
    let ttl = std::fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl").unwrap();
    assert_ne!(ttl.trim(), "33");
    // Its sysfs is not the container's to mount: /sys holds only the
    // mountpoint of the cgroup stand-in, and is read-only.
    assert_eq!(lines[2..], ["fs"], "{out}");
    // An exec joins the same namespace.
    let b = env.bundle("b2", &["sleep", "1000"], |c| {
        c["linux"]["namespaces"] = json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
            {"type": "network", "path": nsfile}
        ]);
    });
    let o = env.rt(&["run", "-d", "--bundle", b.to_str().unwrap(), "n2"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = env.rt(&["exec", "n2", "stat", "-L", "-c", "%i", "/proc/self/ns/net"]);
    assert_eq!(text(&o).0.trim(), inode.to_string(), "{:?}", text(&o));
    assert!(env.rt(&["delete", "--force", "n2"]).status.success());
}

/// A call on the control socket while a runtime hook runs (a liveness
/// probe, an attach) is told the container is being created; only a
/// kill ends the hook. It used to fail the create.
#[test]
fn a_call_during_the_runtime_hooks_does_not_fail_the_create() {
    require_root!();
    let env = Env::new();
    let d = env.dir.path().display().to_string();
    let b = env.bundle("b", &["sleep", "1000"], |c| {
        c["hooks"] = json!({
            "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", format!("touch {d}/in-hook; while [ ! -e {d}/asked ]; do sleep 0.05; done")], "timeout": 20}],
        });
    });
    // Its stderr a file: the created container keeps it, as runc's does.
    let err = env.dir.path().join("create.err");
    let mut create = Command::new(runtime())
        .arg("--root")
        .arg(env.root())
        .args(["create", "--bundle", b.to_str().unwrap(), "c1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !env.dir.path().join("in-hook").exists() && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let root = airlock::state::StateRoot::open(env.root()).unwrap();
    let (sb, _) = root.find("c1").unwrap();
    let asked = sb.request(&airlock::state::control::Request::Signal { signal: 0 });
    // The hook ends only now, whatever the machine's speed.
    std::fs::write(env.dir.path().join("asked"), "").unwrap();
    assert!(
        asked
            .as_ref()
            .is_err_and(|e| e.to_string().contains("being created")),
        "{asked:?}"
    );
    let status = create.wait().unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    assert_eq!(state(&env, "c1")["status"], "created");
    assert!(env.rt(&["delete", "--force", "c1"]).status.success());
}

#[test]
fn hooks_run_at_their_points_with_the_state() {
    require_root!();
    let env = Env::new();
    let d = env.dir.path().display().to_string();
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {d}/{name}.json")], "timeout": 5});
    // OCI's order: prestart, createRuntime, then createContainer (which
    // finds both already done), all before the create returns.
    let after = |name: &str, before: &[&str]| {
        let checks: String = before
            .iter()
            .map(|b| format!("test -e {d}/{b}.json && "))
            .collect();
        json!({"path": "/bin/sh", "args": ["sh", "-c", format!("{checks}cat > {d}/{name}.json")], "timeout": 5})
    };
    let root = env.root().display().to_string();
    let b = env.bundle("b", &["sleep", "1000"], |c| {
        c["hooks"] = json!({
            "prestart": [hook("prestart")],
            "createRuntime": [after("createRuntime", &["prestart"])],
            // Inside, as the container's root: it only looks.
            "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", format!("test -e {d}/prestart.json && test -e {d}/createRuntime.json")], "timeout": 5}],
            // A failing poststart or poststop hook is a warning, and the
            // ones after it still run (the spec's words; they stopped).
            // One that writes without a pause is still timed out.
            "poststart": [{"path": "/bin/false"}, {"path": "/usr/bin/yes", "timeout": 1}, hook("poststart")],
            // After the container is deleted (the spec's words): its
            // state directory is gone when they run.
            // The failure's warning ends with what the hook said, on
            // stdout or stderr, as runc's error carries it.
            "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", "echo undo failed >&2; echo at step 2; exit 3"]}, hook("poststop"),
                {"path": "/bin/sh", "args": ["sh", "-c", format!("ls -A {root} > {d}/root-at-poststop")], "timeout": 5}],
        });
    });
    let read = |name: &str| -> Option<Value> {
        let text = std::fs::read(env.dir.path().join(format!("{name}.json"))).ok()?;
        serde_json::from_slice(&text).ok()
    };
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "h1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let created = read("createRuntime").expect("createRuntime ran during create");
    assert_eq!(created["id"], "h1");
    assert_eq!(created["status"], "creating", "as runc passes it");
    assert!(created["pid"].as_i64().unwrap() > 0);
    std::fs::remove_file(env.dir.path().join("prestart.json")).unwrap();
    assert!(read("poststart").is_none(), "poststart before start");
    let o = env.rt(&["start", "h1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(
        text(&o).1.contains(
            "poststart[1] /usr/bin/yes: did not finish within its timeout of 1s: \ny\ny\n"
        ),
        "{:?}",
        text(&o).1.get(..400)
    );
    assert_eq!(
        read("poststart").expect("poststart ran")["status"],
        "running"
    );
    assert!(read("poststop").is_none());
    let o = env.rt(&["delete", "--force", "h1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(
        read("poststop").expect("poststop ran on delete")["status"],
        "stopped"
    );
    // Without a --log file, the failed hook's warning is on stderr (the
    // spec: it must be logged), as runc's are.
    let (_, err) = text(&o);
    assert!(
        err.contains("warning")
            && err.contains(
                "poststop[0] /bin/sh: exited with exit status: 3: undo failed\nat step 2"
            ),
        "{err}"
    );
    let left = std::fs::read_to_string(env.dir.path().join("root-at-poststop")).unwrap();
    assert!(
        !left
            .lines()
            .any(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit())),
        "the container's state was still there for poststop: {left}"
    );

    // A failing createRuntime hook fails the create and leaves nothing,
    // after the poststop hooks (runc runs them; they undo what the first
    // hooks did). prestart runs before createRuntime, as in runc.
    std::fs::remove_file(env.dir.path().join("poststop.json")).unwrap();
    let b = env.bundle("b2", &["sleep", "1000"], |c| {
        c["hooks"] = json!({
            "createRuntime": [{"path": "/bin/false"}],
            "prestart": [hook("prestart")],
            "poststop": [hook("poststop")],
        });
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "h2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("hooks.createRuntime[0] /bin/false"),
        "{:?}",
        text(&o)
    );
    assert!(!env.rt(&["state", "h2"]).status.success());
    assert_eq!(read("prestart").expect("prestart ran first")["id"], "h2");
    assert_eq!(
        read("poststop").expect("poststop ran after the failed create")["status"],
        "stopped"
    );
    // Hooks inside the container: tests/hooks_inside.rs.
}

/// prestart and createRuntime run in the runtime's namespaces, as OCI
/// says, even when the bundle joins namespaces by path (a pod's network
/// and UTS namespaces), which the supervisor that runs them has joined
/// for the container; createContainer runs in the container's.
#[test]
fn runtime_hooks_run_in_the_runtimes_namespaces() {
    require_root!();
    let env = Env::new();
    let d = env.dir.path().display().to_string();
    // Namespaces a platform made, bound to files.
    struct Unmount(Vec<PathBuf>);
    impl Drop for Unmount {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = Command::new("umount").arg(p).status();
            }
        }
    }
    let (net, uts) = (env.dir.path().join("net"), env.dir.path().join("uts"));
    let _guard = Unmount(vec![net.clone(), uts.clone()]);
    for f in [&net, &uts] {
        std::fs::write(f, "").unwrap();
    }
    let made = Command::new("unshare")
        .arg(format!("--net={}", net.display()))
        .arg(format!("--uts={}", uts.display()))
        .args(["hostname", "pod"])
        .status()
        .unwrap();
    assert!(made.success());
    let record = |name: &str| {
        json!({"path": "/bin/sh", "args": ["sh", "-c",
            format!("stat -L -c %i /proc/self/ns/net > {d}/{name}; hostname >> {d}/{name}")],
            "timeout": 5})
    };
    let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&p.metadata().unwrap());
    // As the container's root it cannot write here: it fails instead.
    let inside = format!(
        "test \"$(stat -L -c %i /proc/self/ns/net)\" = {} && test \"$(hostname)\" = pod",
        ino(&net)
    );
    let b = env.bundle("b", &["sleep", "1000"], |c| {
        // The joined namespace's own name (a different one is refused).
        c["hostname"] = json!("pod");
        c["linux"]["namespaces"] = json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "mount"},
            {"type": "network", "path": net}, {"type": "uts", "path": uts}
        ]);
        c["hooks"] = json!({
            "prestart": [record("prestart")],
            "createRuntime": [record("createRuntime")],
            "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", inside], "timeout": 5}],
        });
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "ns1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let host = format!(
        "{}\n{}\n",
        ino(Path::new("/proc/self/ns/net")),
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim()
    );
    let read = |name: &str| std::fs::read_to_string(env.dir.path().join(name)).unwrap();
    assert_eq!(read("prestart"), host, "prestart");
    assert_eq!(read("createRuntime"), host, "createRuntime");
    assert!(env.rt(&["delete", "--force", "ns1"]).status.success());
}

/// A hook's timeout holds whatever the hook does: one that never reads a
/// state larger than a pipe holds (annotations of 200 KiB), one whose
/// child outlives it (the whole group is killed); a relative path or an
/// env entry that is not KEY=VALUE is refused by name.
#[test]
fn hook_timeouts_hold_and_bad_hooks_are_named() {
    require_root!();
    let env = Env::new();
    let d = env.dir.path().display().to_string();
    let big = "x".repeat(200 << 10);
    let b = env.bundle("b", &["sleep", "1000"], |c| {
        c["annotations"] = json!({"big": big});
        c["hooks"] = json!({
            "createRuntime": [
                {"path": "/bin/sh", "args": ["sh", "-c", "sleep 100"], "timeout": 1},
            ],
        });
    });
    let started = std::time::Instant::now();
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "t1"]);
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert!(
        text(&o)
            .1
            .contains("hooks.createRuntime[0] /bin/sh: did not finish within its timeout of 1s"),
        "{:?}",
        text(&o)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // A child left behind by the hook goes with it.
    let pidfile = format!("{d}/grandchild.pid");
    let b = env.bundle("b2", &["sleep", "1000"], |c| {
        c["hooks"] = json!({
            "createRuntime": [
                {"path": "/bin/sh", "args": ["sh", "-c", format!("sleep 100 & echo $! > {pidfile}; wait")], "timeout": 1},
            ],
        });
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "t2"]);
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut gone = false;
    for _ in 0..200 {
        // SAFETY: signal 0 only asks whether the pid exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "));
        if !alive {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(gone, "the hook's child {pid} outlived its timeout");
    for (i, (hook, says)) in [
        (
            json!({"path": "true"}),
            "hooks.prestart[0].path: true is not an absolute path",
        ),
        (
            json!({"path": "/bin/true", "env": ["A=1", "B"]}),
            "hooks.prestart[0].env[1]: \"B\" is not KEY=VALUE",
        ),
        // OCI: "greater than zero"; it was taken as no timeout at all.
        (
            json!({"path": "/bin/true", "timeout": 0}),
            "hooks.prestart[0].timeout: 0 is not a number of seconds from 1 to 4294967295",
        ),
        (
            json!({"path": "/bin/true", "timeout": 4294967296u64}),
            "hooks.prestart[0].timeout: 4294967296 is not a number of seconds",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let b = env.bundle(&format!("b3-{i}"), &["sleep", "1000"], |c| {
            c["hooks"] = json!({"prestart": [hook.clone()]});
        });
        let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "t3"]);
        assert_ne!(o.status.code(), Some(0), "{:?}", text(&o));
        assert!(text(&o).1.contains(says), "{:?}", text(&o));
        assert!(!env.rt(&["state", "t3"]).status.success());
    }
}

/// A create of an id in use fails without running any of its bundle's
/// hooks against the container that has the id; a createRuntime hook that
/// hangs (no timeout) leaves the container removable: `delete --force`
/// stops the hook, and the create fails naming it.
#[test]
fn a_taken_id_runs_no_hooks_and_a_hanging_hook_is_stopped() {
    require_root!();
    let env = Env::new();
    let d = env.dir.path().display().to_string();
    let b = env.bundle("b", &["sleep", "1000"], |_| {});
    assert!(env
        .rt(&["create", "--bundle", b.to_str().unwrap(), "t"])
        .status
        .success());
    let b2 = env.bundle("b2", &["sleep", "1000"], |c| {
        c["hooks"] = json!({
            "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("touch {d}/wrong")]}],
        });
    });
    let o = env.rt(&["create", "--bundle", b2.to_str().unwrap(), "t"]);
    assert_ne!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(
        !env.dir.path().join("wrong").exists(),
        "a poststop hook ran for another's id"
    );
    assert_eq!(state(&env, "t")["status"], "created");
    assert!(env.rt(&["delete", "--force", "t"]).status.success());

    let b3 = env.bundle("b3", &["sleep", "1000"], |c| {
        c["hooks"] = json!({
            "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", format!("touch {d}/hanging; sleep 1000")]}],
        });
    });
    let mut create = env.rt_spawn(&["create", "--bundle", b3.to_str().unwrap(), "h"]);
    let marker = env.dir.path().join("hanging");
    for _ in 0..400 {
        if marker.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(marker.exists(), "the hook never ran");
    // Calls that bring no request (a probe that only connects, bytes no
    // supervisor reads) are answered, and the socket is still watched for
    // the kill below: they used to stop its watch, and the kill waited
    // in the backlog until `delete` gave up.
    let root = airlock::state::StateRoot::open(env.root()).unwrap();
    let (sb, _) = root.find("h").unwrap();
    // Through the directory's fd: its path is longer than a socket's may be.
    let dir = std::fs::File::open(&sb.dir).unwrap();
    let socket = format!(
        "/proc/self/fd/{}/{}",
        std::os::fd::AsRawFd::as_raw_fd(&dir),
        airlock::state::control::SOCKET
    );
    let connect = || {
        use rustix::net::{AddressFamily, SocketAddrUnix, SocketType};
        let conn = rustix::net::socket(AddressFamily::UNIX, SocketType::SEQPACKET, None).unwrap();
        rustix::net::connect(&conn, &SocketAddrUnix::new(socket.as_str()).unwrap()).unwrap();
        conn
    };
    drop(connect());
    let garbage = connect();
    rustix::net::send(&garbage, b"not json", rustix::net::SendFlags::empty()).unwrap();
    let mut answer = [0u8; 4096];
    let n = rustix::net::recv(&garbage, &mut answer, rustix::net::RecvFlags::empty())
        .unwrap()
        .0;
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.contains("not a request"), "{answer}");
    // A signal is for a created or running container (OCI), and does not
    // stop the create.
    let o = env.rt(&["kill", "h", "TERM"]);
    assert!(text(&o).1.contains("it is being created"), "{:?}", text(&o));
    assert!(create.try_wait().unwrap().is_none());
    let o = env.rt(&["delete", "--force", "h"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let mut ended = None;
    for _ in 0..800 {
        ended = create.try_wait().unwrap();
        if ended.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let Some(status) = ended else {
        create.kill().unwrap();
        create.wait().unwrap();
        panic!("the create still waits for its hook");
    };
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut create.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("hooks.createRuntime[0] /bin/sh"), "{err}");
    assert!(!env.rt(&["state", "h"]).status.success());
}

/// Two deletes at once (a shim's and a `delete --force`) run the
/// poststop hooks once, and both succeed.
#[test]
fn two_deletes_at_once_run_poststop_once() {
    require_root!();
    let env = Env::new();
    let d = env.dir.path().display().to_string();
    let b = env.bundle("b", &["sleep", "1000"], |c| {
        c["hooks"] = json!({
            "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("echo x >> {d}/count; sleep 0.3")], "timeout": 5}],
        });
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "dd"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let both: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_airlock-runtime"))
                .arg("--root")
                .arg(env.root())
                .args(["delete", "--force", "dd"])
                .stdin(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in both {
        assert!(c.wait().unwrap().success());
    }
    let count = std::fs::read_to_string(env.dir.path().join("count")).unwrap();
    assert_eq!(count, "x\n", "poststop ran {} times", count.lines().count());
    assert!(!env.rt(&["state", "dd"]).status.success());
}

/// The pid file replaces a link planted at its path, and writes nothing
/// through it or through one planted where its temporary file would be
/// (runc's opens it with O_EXCL beside the path and renames it).
#[test]
fn a_pid_file_replaces_a_link_and_writes_nothing_through_it() {
    require_root!();
    let env = Env::new();
    let victim = env.dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let pid_file = env.dir.path().join("c.pid");
    std::os::unix::fs::symlink(&victim, &pid_file).unwrap();
    // And where a temporary file beside it was once written.
    std::os::unix::fs::symlink(&victim, env.dir.path().join("c.airlock-tmp")).unwrap();
    let b = env.bundle("b", &["sleep", "1000"], |_| {});
    let o = env.rt(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        "p1",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(!std::fs::symlink_metadata(&pid_file).unwrap().is_symlink());
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(pid > 0);
    let left: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".c.pid."))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(env.rt(&["delete", "--force", "p1"]).status.success());
}

#[test]
fn findings_go_to_the_log_file_not_to_stderr() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("b", &["sh", "-c", "exit 0"], |c| {
        c["process"]["noNewPrivileges"] = json!(false)
    });
    let log = env.dir.path().join("log.json");
    let o = env.rt(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "run",
        "--bundle",
        b.to_str().unwrap(),
        "l1",
    ]);
    let (out, err) = text(&o);
    assert!(
        o.status.success(),
        "{:?} {out} {err} {:?}",
        o.status,
        std::fs::read_to_string(&log)
    );
    assert!(
        err.is_empty(),
        "a successful call says nothing on stderr: {err}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let finding = lines
        .iter()
        .find(|l| {
            l["msg"]
                .as_str()
                .unwrap_or("")
                .contains("[no-new-privs-disabled]")
        })
        .unwrap_or_else(|| panic!("no finding in {text}"));
    assert_eq!(finding["level"], "warning");
    // RFC 3339, which containerd parses.
    let time = finding["time"].as_str().unwrap();
    assert!(
        time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{time}"
    );
}

/// A refusal names config.json's field (`mounts[N]`, `linux.sysctl.X`),
/// not airlock's spec index (which counted mounts the bundle never
/// wrote), and carries no note about an acknowledgement the runtime
/// gave itself.
#[test]
fn refusals_name_the_config_fields() {
    require_root!();
    let env = Env::new();
    let mut index = 0;
    let b = env.bundle("b", &["true"], |c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        index = mounts.len();
        mounts.push(json!({"destination": "/kmsg", "type": "bind", "source": "/dev/kmsg", "options": ["bind", "dev"]}));
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "f1"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(err.contains(&format!("mounts[{index}]")), "{err}");
    assert!(!err.contains("filesystem.mounts"), "{err}");
    assert!(!err.contains("unused-allow-unsafe"), "{err}");
    let b = env.bundle("b2", &["true"], |c| {
        c["linux"]["sysctl"] = json!({"kernel.panic": "1"});
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "f2"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(err.contains("linux.sysctl.kernel.panic"), "{err}");
    assert!(!err.contains("sysctls."), "{err}");
    // A seccomp rule's and a masked path's fields by config.json's names.
    for (i, (edit, want, not)) in [
        (
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOPE"}]}}}),
            "linux.seccomp.syscalls[0]",
            "seccomp.oci",
        ),
        (
            json!({"linux": {"maskedPaths": ["proc/kcore"]}}),
            "linux.maskedPaths[0]",
            "masked_paths",
        ),
        // 2^32 + 1 is not major 1.
        (
            json!({"linux": {"devices": [{"path": "/dev/null", "type": "c", "major": 4294967297i64, "minor": 3}]}}),
            "linux.devices[0].major",
            "filesystem.devices",
        ),
        (
            json!({"linux": {"resources": {"blockIO": {"weight": 5}}}}),
            "linux.resources.blockIO.weight",
            "io_weight",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("n{i}");
        let b = env.bundle(&id, &["true"], |c| {
            for (k, v) in edit["linux"].as_object().unwrap() {
                c["linux"][k] = v.clone();
            }
        });
        let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), &id]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{out} {err}");
        assert!(err.contains(want) && !err.contains(not), "{err}");
    }
    // A limit the host cannot apply, found by the runner's setup.
    let b = env.bundle("b3", &["true"], |c| {
        c["linux"]["resources"] = json!({"cpu": {"cpus": "1000"}});
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "f3"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(err.contains("linux.resources.cpu.cpus"), "{err}");
    assert!(!err.contains("resources.cpuset_cpus"), "{err}");
    // A mount that fails in the sandbox: procfs lets no mount point be made.
    let mut index = 0;
    let b = env.bundle("b4", &["true"], |c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        index = mounts.len();
        mounts.push(json!({"destination": "/proc/x", "type": "tmpfs", "source": "tmpfs"}));
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "f4"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(
        err.contains(&format!(
            "mount /proc/x (mounts[{index}]): cannot make the mount point"
        )),
        "{err}"
    );
    assert!(!env.rt(&["state", "f4"]).status.success());
}

/// What runc takes as unset is unset here too (an empty hostname, a blkio
/// weight of 0), and a tmpfs over a setgid directory takes its mode
/// without the setgid bit, which a tmpfs may not have.
#[test]
fn values_runc_takes_as_unset_are_taken() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("b", &["stat", "-c", "%a", "/var/local"], |c| {
        c["hostname"] = json!("");
        c["linux"]["resources"] = json!({"blockIO": {"weight": 0}});
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/var/local", "type": "tmpfs", "source": "tmpfs"}));
    });
    let local = b.join("rootfs/var/local");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::set_permissions(&local, std::os::unix::fs::PermissionsExt::from_mode(0o2775)).unwrap();
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "u1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out.trim(), "775", "{err}");
}

/// As runc: `--console-socket` without `process.terminal` is refused (the
/// socket waited for a terminal that never came) and leaves nothing, and
/// an unknown `--log-format` is refused rather than taken as text.
#[test]
fn a_console_socket_without_a_terminal_and_an_unknown_log_format_are_refused() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("cs", &["true"], |_| {});
    let socket = env.dir.path().join("console.sock");
    let o = env.rt(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--console-socket",
        socket.to_str().unwrap(),
        "cs",
    ]);
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert!(
        text(&o).1.contains("process.terminal is false"),
        "{:?}",
        text(&o)
    );
    assert!(!env.rt(&["state", "cs"]).status.success());
    let o = env.rt(&["--log-format", "xml", "list"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("xml"), "{:?}", text(&o));
}

/// Flag values runc refuses are refused, not taken for another: `list
/// --format yaml` printed the table, `--rootless bogus` was accepted, and
/// a `--preserve-fds` past i32::MAX wrapped to a count of none checked.
/// A verb that only looks leaves no state root where there was none.
#[test]
fn flag_values_are_judged_and_looking_makes_no_state_root() {
    require_root!();
    let env = Env::new();
    let o = env.rt(&["list", "--format", "yaml"]);
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert!(
        text(&o).1.contains("--format \"yaml\": table or json"),
        "{:?}",
        text(&o)
    );
    let o = env.rt(&["--rootless", "bogus", "list"]);
    assert!(!o.status.success(), "{:?}", text(&o));
    assert!(text(&o).1.contains("bogus"), "{:?}", text(&o));
    // runc's spellings are taken; as root, true in any of them is refused.
    for (value, taken) in [
        ("0", true),
        ("False", true),
        ("AUTO", true),
        ("TRUE", false),
        ("1", false),
    ] {
        let o = env.rt(&["--rootless", value, "list"]);
        assert_eq!(o.status.success(), taken, "{value}: {:?}", text(&o));
    }
    let b = env.bundle("fv", &["sleep", "100"], |_| {});
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "fv"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = env.rt(&["exec", "--preserve-fds", "2147483647", "fv", "true"]);
    assert_eq!(o.status.code(), Some(255), "{:?}", text(&o));
    let err = text(&o).1;
    // (Which fd is the first not open depends on what the test inherits:
    // a `flock` around the test run holds fd 3.)
    assert!(
        err.contains("--preserve-fds 2147483647: fd ") && err.contains(" is not open"),
        "{err}"
    );
    assert!(env.rt(&["delete", "--force", "fv"]).status.success());
    // A root that is not there: each verb says what it would of an empty
    // one, and makes none (nor its parent).
    let typo = env.dir.path().join("typo/root");
    let at_typo = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_airlock-runtime"))
            .arg("--root")
            .arg(&typo)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let o = at_typo(&["list", "--format", "json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(text(&o).0.trim(), "[]");
    for verb in [
        &["state", "c1"][..],
        &["ps", "c1"],
        &["exec", "c1", "true"],
        &["kill", "c1"],
    ] {
        let o = at_typo(verb);
        assert!(!o.status.success(), "{verb:?}");
        assert!(
            text(&o).1.contains("\"c1\" does not exist"),
            "{verb:?}: {:?}",
            text(&o)
        );
    }
    assert!(at_typo(&["delete", "--force", "c1"]).status.success());
    assert!(
        !env.dir.path().join("typo").exists(),
        "a state root was made"
    );
}

/// What a console socket at `path` receives: accepts one client, takes the
/// terminal's master it sends (SCM_RIGHTS, as runc's clients take it) and
/// reads it until `want` shows (or the terminal ends, or 10 s pass).
/// The text the terminal shows until `want`, and its master: kept open
/// by the caller until the process has ended (closed at once, it hung up
/// a process that had not yet exited, which then ended of SIGHUP).
fn console_receiver(
    path: &Path,
    want: &'static str,
) -> std::thread::JoinHandle<(String, std::os::fd::OwnedFd)> {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        use std::os::fd::AsFd;
        let (conn, _) = listener.accept().unwrap();
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut cmsg = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let mut byte = [0u8; 64];
        rustix::net::recvmsg(
            &conn,
            &mut [std::io::IoSliceMut::new(&mut byte)],
            &mut cmsg,
            rustix::net::RecvFlags::empty(),
        )
        .unwrap();
        let master = cmsg
            .drain()
            .find_map(|m| match m {
                rustix::net::RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
                _ => None,
            })
            .expect("a terminal's master");
        let mut text = String::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !text.contains(want) && std::time::Instant::now() < deadline {
            let mut fds = [rustix::event::PollFd::new(
                &master,
                rustix::event::PollFlags::IN,
            )];
            let wait = rustix::event::Timespec {
                tv_sec: 1,
                tv_nsec: 0,
            };
            if rustix::event::poll(&mut fds, Some(&wait)).unwrap_or(0) == 0 {
                continue;
            }
            let mut buf = [0u8; 256];
            match rustix::io::read(master.as_fd(), &mut buf) {
                Ok(n) if n > 0 => text.push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => break,
            }
        }
        (text, master)
    })
}

/// `process.consoleSize` is the size of the terminal sent to the console
/// socket, the container's and an exec's (`ctr run -t` sends it); an exec's
/// `--process` file decides whether it has a terminal (`--tty` adds none),
/// and a console socket without a terminal is refused, as runc's
/// checkTerminal does.
#[test]
fn console_size_is_set_and_a_console_socket_needs_a_terminal() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("t", &["sh", "-c", "stty size; exec sleep 1000"], |c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 40, "width": 100});
    });
    let sock = env.dir.path().join("c1.sock");
    let got = console_receiver(&sock, "40 100");
    let o = env.rt(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        "t",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(env.rt(&["start", "t"]).status.success());
    let (out, _master) = got.join().unwrap();
    assert!(out.contains("40 100"), "{out:?}");

    let process = env.dir.path().join("p.json");
    let write = |p: Value| std::fs::write(&process, p.to_string()).unwrap();
    write(json!({
        "terminal": true, "consoleSize": {"height": 33, "width": 77},
        "args": ["sh", "-c", "stty size"], "cwd": "/", "user": {"uid": 0, "gid": 0},
    }));
    let sock = env.dir.path().join("c2.sock");
    let got = console_receiver(&sock, "33 77");
    let o = env.rt(&[
        "exec",
        "--process",
        process.to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        "-t",
        "t",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, _master) = got.join().unwrap();
    assert!(out.contains("33 77"), "{out:?}");

    // No terminal asked for: the socket would wait for nothing.
    write(json!({"terminal": false, "args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}}));
    let sock = env.dir.path().join("c3.sock").display().to_string();
    for args in [
        vec!["exec", "--console-socket", &sock, "t", "true"],
        vec![
            "exec",
            "-t",
            "--console-socket",
            &sock,
            "--process",
            process.to_str().unwrap(),
            "t",
        ],
    ] {
        let o = env.rt(&args);
        assert!(!o.status.success(), "{args:?}");
        // With -t, the process file that says no terminal is what is
        // wrong (it was said as if no terminal had been asked for).
        let why = match args.contains(&"-t") {
            true => "--tty asks for a terminal, and the process's `terminal` is false",
            false => "--console-socket was given without a terminal",
        };
        assert!(text(&o).1.contains(why), "{args:?}: {:?}", text(&o));
    }
    // Two rlimits of one type in an exec's process, as in config.json.
    write(json!({
        "args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100},
                    {"type": "RLIMIT_NOFILE", "soft": 200, "hard": 200}],
    }));
    let o = env.rt(&["exec", "--process", process.to_str().unwrap(), "t"]);
    assert!(
        text(&o)
            .1
            .contains("process.rlimits[1]: RLIMIT_NOFILE is given twice"),
        "{:?}",
        text(&o)
    );
    // run --no-pivot is refused as create's is.
    let o = env.rt(&["run", "--no-pivot", "--bundle", b.to_str().unwrap(), "np"]);
    assert!(text(&o).1.contains("--no-pivot"), "{:?}", text(&o));
    assert!(!env.rt(&["state", "np"]).status.success());
    assert!(env.rt(&["delete", "--force", "t"]).status.success());
}

/// A hook's output goes to a memory file that a helper it leaves running
/// keeps: once the hook has ended the file may grow no more, so the
/// helper's writes fail instead of filling memory for as long as it runs.
/// Here the helper stops at its first failed write; it used to write on
/// for good.
#[test]
fn a_helper_a_hook_leaves_cannot_fill_memory_with_its_output() {
    require_root!();
    let env = Env::new();
    let pid_file = env.dir.path().join("helper");
    let script = format!(
        "(while echo spam; do :; done) & echo $! > {}; exit 0",
        pid_file.display()
    );
    let b = env.bundle("b", &["sh", "-c", "exit 0"], |c| {
        c["hooks"] = json!({
            "poststart": [{"path": "/bin/sh", "args": ["sh", "-c", script], "timeout": 5}],
        });
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "h"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while alive(pid) && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let still = alive(pid);
    let size = std::fs::metadata(format!("/proc/{pid}/fd/1")).map(|m| m.len());
    if still {
        // SAFETY: kill on the helper this test's hook started.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    assert!(
        !still,
        "the helper still writes (its output file: {size:?} bytes)"
    );
}
