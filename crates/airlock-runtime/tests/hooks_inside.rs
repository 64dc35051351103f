//! createContainer and startContainer hooks: they run inside the
//! container's namespaces at their points of the lifecycle, each with the
//! state on stdin; a failure or a timeout fails the verb, naming the hook.

#[macro_use]
mod common;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn mnt_ns(pid: i64) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn hooks_run_inside_at_their_points() {
    require_root!();
    let env = Env::new();
    // createContainer: /usr/bin/env is the host's (the rootfs has none);
    // its working directory is the container's root, its mounts made.
    let create = json!({
        "path": "/usr/bin/env",
        "args": ["env", "sh", "-c", "readlink /proc/self/ns/mnt > create-mnt; cat > create-state.json; test -d proc/self && echo mounted > create-proc"],
        "env": ["PATH=/usr/bin:/bin"],
        "timeout": 10
    });
    // startContainer: a script only the container has.
    let start = json!({"path": "/hook-start.sh", "timeout": 10});
    let b = env.bundle("b", &["sleep", "1000"], |c| {
        // One that reads no state: not an error, whenever it exits.
        let quick = json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 0"]});
        c["hooks"] = json!({"createContainer": [create], "startContainer": [quick, start]});
        c["process"]["env"] = json!(["PATH=/usr/bin:/bin", "FROM_SPEC=yes"]);
    });
    let rootfs = b.join("rootfs");
    std::fs::write(
        rootfs.join("hook-start.sh"),
        "#!/bin/sh\nreadlink /proc/self/ns/mnt > /tmp/start-mnt\ncat > /tmp/start-state.json\nid -u > /tmp/start-uid\nenv > /tmp/start-env\n",
    )
    .unwrap();
    std::fs::set_permissions(
        rootfs.join("hook-start.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "h1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let pid = state(&env, "h1")["pid"].as_i64().unwrap();
    let container_mnt = mnt_ns(pid);
    assert_ne!(container_mnt, mnt_ns(std::process::id().into()));
    let read = |p: &str| std::fs::read_to_string(rootfs.join(p)).unwrap_or_default();
    assert_eq!(
        read("create-mnt").trim(),
        container_mnt,
        "createContainer ran in the container's mount namespace"
    );
    assert_eq!(read("create-proc").trim(), "mounted", "after the mounts");
    let st: Value = serde_json::from_str(&read("create-state.json")).unwrap();
    assert_eq!(
        (st["id"].as_str(), st["status"].as_str()),
        (Some("h1"), Some("creating")),
        "{st}"
    );
    // The pid as the container sees it (OCI's words, runc's getpid):
    // the process that runs it is the container's PID 1, `pid` on the host.
    assert_eq!(st["pid"].as_i64(), Some(1), "{st}");
    assert!(
        read("tmp/start-mnt").is_empty(),
        "startContainer ran before start"
    );
    let o = env.rt(&["start", "h1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(
        read("tmp/start-mnt").trim(),
        container_mnt,
        "startContainer ran inside"
    );
    let st: Value = serde_json::from_str(&read("tmp/start-state.json")).unwrap();
    assert_eq!(st["id"], "h1");
    assert_eq!(st["pid"].as_i64(), Some(1), "{st}");
    // No `env` of its own: the container process's, not the runtime's
    // (whose environment is this test's, with cargo's variables).
    let hook_env = read("tmp/start-env");
    assert!(hook_env.lines().any(|l| l == "FROM_SPEC=yes"), "{hook_env}");
    assert!(!hook_env.contains("CARGO_"), "{hook_env}");
    // As the container's process: its user, root of its user namespace.
    assert_eq!(read("tmp/start-uid").trim(), "0");
    wait_status(&env, "h1", "running");
    assert!(env.rt(&["delete", "--force", "h1"]).status.success());
}

#[test]
fn a_failing_hook_inside_fails_its_verb() {
    require_root!();
    let env = Env::new();
    // createContainer: create fails, nothing is left.
    let b = env.bundle("b1", &["sleep", "1000"], |c| {
        c["hooks"] = json!({"createContainer": [{"path": "/bin/true"}, {"path": "/bin/sh", "args": ["sh", "-c", "echo broken >&2; exit 3"]}]});
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "f1"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(err.contains("hooks.createContainer[1] /bin/sh"), "{err}");
    assert!(
        err.contains("exited with status 3") && err.contains("broken"),
        "{err}"
    );
    assert!(
        !env.rt(&["state", "f1"]).status.success(),
        "left a container"
    );
    // Killed at its timeout.
    let b = env.bundle("b2", &["sleep", "1000"], |c| {
        c["hooks"] = json!({"createContainer": [{"path": "/bin/sleep", "args": ["sleep", "60"], "timeout": 1}]});
    });
    let t = Instant::now();
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "f2"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(err.contains("hooks.createContainer[0] /bin/sleep"), "{err}");
    assert!(err.contains("timeout of 1s"), "{err}");
    assert!(
        !env.rt(&["state", "f2"]).status.success(),
        "left a container"
    );
    // startContainer: start fails naming it, the container is stopped
    // and never ran its program.
    let b = env.bundle("b3", &["sh", "-c", "touch /ran; sleep 1000"], |c| {
        c["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]});
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "f3"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let pid = state(&env, "f3")["pid"].as_i64().unwrap();
    let o = env.rt(&["start", "f3"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(err.contains("hooks.startContainer[0] /bin/false"), "{err}");
    wait_status(&env, "f3", "stopped");
    assert!(!alive(pid));
    assert!(!b.join("rootfs/ran").exists());
    assert!(env.rt(&["delete", "f3"]).status.success());
    // `run` whose start fails takes its container away, poststop hooks
    // and all, as runc's does; it left a stopped container behind.
    let done = env.dir.path().join("poststop-ran");
    let b = env.bundle("b4", &["sh", "-c", "touch /ran; sleep 1000"], |c| {
        c["hooks"] = json!({
            "startContainer": [{"path": "/bin/false"}],
            "poststop": [{"path": "/bin/touch", "args": ["touch", done.to_str().unwrap()]}],
        });
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "f4"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(err.contains("hooks.startContainer[0] /bin/false"), "{err}");
    assert!(
        !env.rt(&["state", "f4"]).status.success(),
        "left a container"
    );
    assert!(done.exists(), "its poststop did not run");
}

/// While a container is being created (here, while its createContainer
/// hook runs) its supervisor gives out no namespaces: PID 1 has sent
/// them before building the root, and a process joining the mount
/// namespace then would stand in the host's tree.
#[test]
fn a_container_being_created_gives_out_no_namespaces() {
    require_root!();
    let env = Env::new();
    let hook = json!({"path": "/bin/sh", "args": ["sh", "-c", "sleep 2"], "timeout": 10});
    let b = env.bundle("b", &["sleep", "1000"], |c| {
        c["hooks"] = json!({"createContainer": [hook]});
    });
    // Asks the first supervisor to listen in the state root, as exec
    // would, and prints its answer: the error, and how many fds came.
    let probe = r#"
import glob, json, os, socket, sys, time
end = time.time() + 10
socks = []
while not socks and time.time() < end:
    socks = glob.glob(os.path.join(sys.argv[1], "*", "control.sock"))
    time.sleep(0.005)
d = os.open(os.path.dirname(socks[0]), os.O_RDONLY)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect("/proc/self/fd/%d/control.sock" % d)
s.send(json.dumps({"op": "namespaces"}).encode())
msg, fds, _, _ = socket.recv_fds(s, 4096, 16)
print(json.loads(msg).get("error"), len(fds))
"#;
    let root = env.root();
    let asker = std::thread::spawn(move || {
        std::process::Command::new("python3")
            .args(["-c", probe])
            .arg(root)
            .output()
            .unwrap()
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "c"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let asked = asker.join().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&asked.stdout).trim(),
        "the sandbox is still being set up 0",
        "{}",
        String::from_utf8_lossy(&asked.stderr)
    );
    assert!(env.rt(&["delete", "--force", "c"]).status.success());
}

/// As runc: while prestart, createRuntime and createContainer run, the
/// container's root is at the bundle's rootfs path in its mount namespace:
/// a createRuntime hook that enters the namespace (`nsenter -m`, as
/// NVIDIA's legacy hook does) and a createContainer hook (which runs in
/// it) mount there, and the workload finds both mounts; the host's mount
/// table gets neither.
#[test]
fn hooks_mount_at_the_rootfs_path() {
    require_root!();
    let env = Env::new();
    let rootfs = env.dir.path().join("b/rootfs");
    let at = |d: &str| rootfs.join(d).display().to_string();
    let runtime = json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!(
            "pid=$(sed -n 's/.*\"pid\":\\([0-9]*\\).*/\\1/p'); \
             nsenter -t \"$pid\" -m mount -t tmpfs from-runtime {}", at("mnt1"))],
        "timeout": 10
    });
    let create = json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("mount -t tmpfs from-create {}", at("mnt2"))],
        "timeout": 10
    });
    let b = env.bundle("b", &["cat", "/proc/self/mounts"], |c| {
        c["hooks"] = json!({"createRuntime": [runtime], "createContainer": [create]});
    });
    for d in ["mnt1", "mnt2"] {
        std::fs::create_dir(rootfs.join(d)).unwrap();
    }
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "hr"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    for line in ["from-runtime /mnt1 tmpfs", "from-create /mnt2 tmpfs"] {
        assert!(out.contains(line), "{line:?} not among:\n{out}");
    }
    let host = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !host.contains("from-runtime") && !host.contains("from-create"),
        "{host}"
    );

    // A root.path through an absolute symbolic link: the bind's path
    // leads through it, before and after the hooks.
    let link = env.dir.path().join("link");
    std::os::unix::fs::symlink(env.dir.path().join("b"), &link).unwrap();
    let config = b.join("config.json");
    let mut c: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    c["root"]["path"] = json!(link.join("rootfs"));
    std::fs::write(&config, c.to_string()).unwrap();
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "hs"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert!(out.contains("from-create /mnt2 tmpfs"), "{out}");

    // A rootless runtime's too (its user namespace owns the mounts).
    let r = env.bundle("r", &["true"], |_| {});
    std::fs::create_dir(r.join("rootfs/mnt2")).unwrap();
    std::fs::remove_file(r.join("config.json")).unwrap();
    let chown = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(env.dir.path())
        .status()
        .unwrap();
    assert!(chown.success());
    let o = env.rt_as_nobody(&["spec", "--rootless", "--bundle", r.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    let config = r.join("config.json");
    let mut c: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    c["process"]["terminal"] = json!(false);
    c["process"]["args"] = json!(["cat", "/proc/self/mounts"]);
    let mount = format!("mount -t tmpfs from-create {}/rootfs/mnt2", r.display());
    c["hooks"] = json!({"createContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", mount], "timeout": 10}
    ]});
    std::fs::write(&config, c.to_string()).unwrap();
    let o = env.rt_as_nobody(&["run", "--bundle", r.to_str().unwrap(), "rr"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert!(out.contains("from-create /mnt2 tmpfs"), "{out}");
}

/// As runc: createContainer hooks find the container's root and /dev
/// still writable and nothing masked (a GPU hook makes its device nodes
/// and links there), and the workload then runs with every protection.
#[test]
fn create_hooks_run_before_the_protections() {
    require_root!();
    let env = Env::new();
    let hook = json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", "touch dev/from-hook hooked && stat -c %F proc/version > version-seen"],
        "timeout": 10
    });
    let probe =
        "ls /dev/from-hook /hooked; touch /dev/x || echo dev-ro; touch /y || echo root-ro; \
                 stat -c %F /proc/version";
    let b = env.bundle("b", &["sh", "-c", probe], |c| {
        c["root"]["readonly"] = json!(true);
        c["linux"]["maskedPaths"] = json!(["/proc/version"]);
        c["hooks"] = json!({"createContainer": [hook]});
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "hp"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    let seen = std::fs::read_to_string(b.join("rootfs/version-seen")).unwrap_or_default();
    assert_eq!(seen.trim(), "regular empty file", "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "/dev/from-hook",
            "/hooked",
            "dev-ro",
            "root-ro",
            "character special file"
        ],
        "{err}"
    );
}

/// A hook that gives no `env` runs with the runtime's environment on the
/// host (createRuntime, poststart, poststop), as under runc and crun (a
/// hook that finds a tool by PATH works), and with the container
/// process's inside (createContainer, as runc's init runs it with its
/// environment already the container's); one that gives an empty `env`
/// has none.
#[test]
fn a_hook_without_env_has_the_runtimes() {
    require_root!();
    let env = Env::new();
    let out = env.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let o = out.to_str().unwrap();
    // Inside, the container's root is the working directory.
    let hook = |name: &str, env: Option<Value>| {
        let dir = if name == "container" { "." } else { o };
        let mut h = json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo \"$HOOK_MARK\" > {dir}/{name}")],
            "timeout": 10
        });
        if let Some(e) = env {
            h["env"] = e;
        }
        h
    };
    let b = env.bundle("e", &["sh", "-c", "exit 0"], |c| {
        c["hooks"] = json!({
            "createRuntime": [hook("runtime", None), hook("runtime-empty", Some(json!([])))],
            "createContainer": [hook("container", None)],
            "poststart": [hook("poststart", None)],
            "poststop": [hook("poststop", None)],
        });
        c["process"]["env"] = json!(["PATH=/usr/bin:/bin", "HOOK_MARK=from-the-spec"]);
    });
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_airlock-runtime"))
        .arg("--root")
        .arg(env.root())
        .args(["run", "--bundle", b.to_str().unwrap(), "e1"])
        .env("HOOK_MARK", "from-the-runtime")
        .stdin(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    for name in ["runtime", "poststart", "poststop"] {
        assert_eq!(read(name), "from-the-runtime\n", "{name}");
    }
    let inside = std::fs::read_to_string(b.join("rootfs/container")).unwrap_or_default();
    assert_eq!(inside, "from-the-spec\n", "createContainer");
    assert_eq!(read("runtime-empty"), "\n", "an empty env is empty");
}
