//! The rest of the spec, seen from inside: a given rootfs, every mount
//! kind, clock offsets, groups, rlimits, custom seccomp profiles, kept
//! capabilities for a non-root workload, and the workload as PID 1.

mod common;
use common::*;

fn run_spec(json: &str) -> Run {
    let dir = tempdir();
    let path = dir.path().join("spec.json");
    std::fs::write(&path, json).unwrap();
    output(airlock(&["run", "--spec", &path.display().to_string()]))
}

/// The default view's mounts as JSON, for hand-written specs.
fn system_view() -> String {
    let mounts: Vec<airlock::spec::Mount> = airlock::spec::default_view();
    serde_json::to_string(&mounts).unwrap()
}

#[test]
fn given_rootfs_read_only_and_writable() {
    require_root!();
    let root = shared_dir();
    std::fs::write(root.path().join("marker"), "in-the-rootfs").unwrap();
    let r = root.path().display().to_string();
    let mut owned = rootfs_with_host_usr(&r);
    owned.extend(["--proc".to_string(), "/proc".to_string()]);
    let base: Vec<&str> = owned.iter().map(String::as_str).collect();
    let mut ro = base.to_vec();
    ro.push("--rootfs-readonly");
    let r1 = sh(&ro, "cat /marker; touch /new 2>&1 || true");
    assert!(
        r1.stdout.starts_with("in-the-rootfs"),
        "{} {}",
        r1.stdout,
        r1.stderr
    );
    assert!(r1.stdout.contains("Read-only file system"), "{}", r1.stdout);
    let r2 = sh(&base, "touch /new && echo written");
    assert_eq!(r2.stdout.trim(), "written", "{}", r2.stderr);
    assert!(root.path().join("new").exists());
    // The rootfs replaced the default view: no /etc from the host.
    let r3 = sh(
        &base,
        "test -e /etc/hostname && echo host-etc || echo no-etc",
    );
    assert_eq!(r3.stdout.trim(), "no-etc");
}

#[test]
fn a_rootfs_gets_a_fresh_proc_dev_and_tmp_like_an_image() {
    require_root!();
    let probe = "cat /proc/1/comm; test -c /dev/null && echo dev; \
                 touch /tmp/x && stat -f -c %T /tmp";
    let run = |as_user: bool, extra: &[&str]| {
        // The sandbox makes /bin and the other links in it: a directory
        // its root may write.
        let root = shared_dir();
        if as_user {
            chown(root.path(), USER, USER);
        }
        let r = root.path().display().to_string();
        let mut flags = rootfs_with_host_usr(&r);
        flags.push("--rootfs-readonly".into());
        flags.extend(extra.iter().map(|s| s.to_string()));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        if as_user {
            sh_as_user(&flags, probe)
        } else {
            sh(&flags, probe)
        }
    };
    for as_user in [false, true] {
        let r = run(as_user, &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.ends_with("dev\ntmpfs\n"), "{}", r.stdout);
        assert!(!r.stdout.starts_with("sh\n"), "PID 1 is ours: {}", r.stdout);
    }
    // Told otherwise: none of the three.
    let r = run(false, &["--no-default-view"]);
    assert_ne!(r.code, 0);
    assert!(!r.stdout.contains("dev"), "{}", r.stdout);
    // A flag that mounts its own /tmp keeps it (one tmpfs, sized as asked).
    let r = run(false, &["--tmpfs", "/tmp"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Flags that mount nothing there keep the fresh ones: a directory
    // made, or the fresh /tmp made read-only (there was none to remount).
    let r = run(false, &["--dir", "/dev", "--remount-ro", "/tmp/"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("dev\n"), "{}", r.stdout);
    assert!(r.stderr.contains("Read-only file system"), "{}", r.stderr);
}

#[test]
fn every_mount_kind() {
    require_root!();
    let spec = format!(
        r#"{{"process": {{"args": ["sh", "-c", "cat /config/app.conf; stat -c %a /data /config/app.conf; df -k /scratch | tail -1 | tr -s ' ' | cut -d' ' -f2; stat -c %a /scratch; readlink /latest; ls -d /dev/mqueue; test -c /dev/null && echo dev-ok"]}},
            "filesystem": {{"mounts": {mounts}}}}}"#,
        mounts = {
            let mut m: Vec<serde_json::Value> = serde_json::from_str(&system_view()).unwrap();
            m.push(serde_json::json!({"type": "file", "destination": "/config/app.conf", "content": "key = value\n", "mode": "0640"}));
            m.push(serde_json::json!({"type": "dir", "destination": "/data", "mode": "0700"}));
            m.push(serde_json::json!({"type": "tmpfs", "destination": "/scratch", "size": "8M", "mode": "0750"}));
            m.push(
                serde_json::json!({"type": "symlink", "target": "/data", "destination": "/latest"}),
            );
            m.push(serde_json::json!({"type": "mqueue", "destination": "/dev/mqueue"}));
            serde_json::to_string(&m).unwrap()
        }
    );
    let r = run_spec(&spec);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "key = value\n700\n640\n8192\n750\n/data\n/dev/mqueue\ndev-ok\n"
    );
}

/// `process.umask` is the workload's, whatever the caller's; the mode
/// of what it makes shows it. Any caller: it needs no privilege.
#[test]
fn the_umask_is_the_specs() {
    let spec = format!(
        r#"{{"process": {{"args": ["sh", "-c", "umask; touch /tmp/f; stat -c %a /tmp/f"], "umask": "0077"}},
            "filesystem": {{"mounts": {}}}}}"#,
        system_view()
    );
    let r = run_spec(&spec);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "0077\n600\n");
}

/// A cgroup mount shows the sandbox's own cgroups read-only (its memory
/// limit, where v2 or v1 puts it); without cgroups, an empty directory.
#[test]
fn the_cgroup_mount_shows_the_sandboxs_own_limit() {
    require_root!();
    let mut mounts: Vec<serde_json::Value> = serde_json::from_str(&system_view()).unwrap();
    mounts.push(serde_json::json!({"type": "cgroup", "destination": "/sys/fs/cgroup"}));
    let probe = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
                 touch /sys/fs/cgroup/x 2>&1; ls -A /sys/fs/cgroup | wc -l";
    let spec = |resources: &str| {
        format!(
            r#"{{"process": {{"args": ["sh", "-c", "{probe}"]}}, "resources": {resources},
                "filesystem": {{"mounts": {}}}}}"#,
            serde_json::to_string(&mounts).unwrap()
        )
    };
    let r = run_spec(&spec(r#"{"memory": "32M", "pids": 64}"#));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "33554432", "{}", r.stdout);
    assert!(lines[1].contains("Read-only file system"), "{}", r.stdout);
    assert_ne!(lines[2], "0", "{}", r.stdout);
    // No limit, no cgroup (the pids default is an rlimit here).
    let r = run_spec(&spec("{}"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    assert!(lines[0].contains("Read-only file system"), "{}", r.stdout);
    assert_eq!(lines[1], "0", "{}", r.stdout);
}

#[test]
fn clock_offsets() {
    require_root!();
    let spec = format!(
        r#"{{"process": {{"args": ["cut", "-d.", "-f1", "/proc/uptime"]}}, "time": {{"boottime": 86400, "monotonic": 3600}},
            "filesystem": {{"mounts": {}}}}}"#,
        system_view()
    );
    let r = run_spec(&spec);
    let up: i64 = r
        .stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{} {}", r.stdout, r.stderr));
    assert!((86400..86405).contains(&up), "uptime {up}");
}

#[test]
fn groups_rlimits_and_pid1() {
    require_root!();
    let spec = format!(
        r#"{{"process": {{"args": ["sh", "-c", "id -G; ulimit -n; echo $$"], "uid": 1000, "gid": 1000, "groups": [10, 20],
                          "rlimits": [{{"resource": "nofile", "soft": 64, "hard": 128}}]}},
            "init": "workload", "filesystem": {{"mounts": {}}}}}"#,
        system_view()
    );
    let r = run_spec(&spec);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "1000 10 20\n64\n1\n");
}

#[test]
fn custom_seccomp_profile() {
    require_root!();
    let dir = tempdir();
    let profile = dir.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let p = profile.display().to_string();
    // A permissive default action is judged by what it lets through.
    let r = sh(&["--seccomp-profile", &p], "echo ran");
    assert_eq!(r.code, 125, "{}", r.stdout);
    assert!(
        r.stderr.contains("error[seccomp-permissive]") && !r.stdout.contains("ran"),
        "{}",
        r.stderr
    );
    let r = sh(
        &[
            "--seccomp-profile",
            &p,
            "--allow-unsafe",
            "seccomp-permissive",
        ],
        "mkdir /tmp/x 2>&1; echo done",
    );
    assert!(r.stdout.contains("Permission denied"), "{}", r.stdout);
    // One that refuses execve would fail the workload's own start: refused
    // by name, by its default action or by the rule that names it.
    for (text, field) in [
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}"#,
            "seccomp.oci.defaultAction",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_KILL"}]}"#,
            "seccomp.oci.syscalls[0]",
        ),
    ] {
        std::fs::write(&profile, text).unwrap();
        let r = sh(&["--seccomp-profile", &p], "echo ran");
        assert_eq!(r.code, 125, "{}", r.stdout);
        assert!(
            r.stderr.contains(field) && r.stderr.contains("allow execve"),
            "{}",
            r.stderr
        );
    }
    // A profile that cannot be compiled is refused before anything runs.
    std::fs::write(&profile, r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["nope_call"], "action": "SCMP_ACT_KILL"}]}"#).unwrap();
    let r = sh(&["--seccomp-profile", &p], "echo ran");
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("seccomp.oci.syscalls[0].names") && r.stderr.contains("nope_call"),
        "{}",
        r.stderr
    );
    // The guardrail for turning it off.
    let r = sh(&["--seccomp-profile", "none"], "echo ran");
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("error[seccomp-disabled]"), "{}", r.stderr);
    // A profile that denies everything, exit included, fails the start and
    // ends: a process that cannot exit retried it for good, at 100 % CPU,
    // and not even SIGTERM ended the sandbox. (It denies execve too, which
    // is now refused before the start.)
    std::fs::write(&profile, r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}"#).unwrap();
    let mut c = airlock(&["run", "--seccomp-profile", &p, "--", "true"]);
    c.stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut ended = None;
    for _ in 0..400 {
        if let Some(st) = child.try_wait().unwrap() {
            ended = Some(st);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    if ended.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(ended.and_then(|s| s.code()), Some(125), "{err}");
    assert!(err.contains("allow execve"), "{err}");
    // Denying exit outright is refused by its rule's name.
    std::fs::write(&profile, r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_ALLOW"}, {"names": ["exit_group"], "action": "SCMP_ACT_KILL"}]}"#).unwrap();
    let r = sh(&["--seccomp-profile", &p], "echo ran");
    assert_eq!(r.code, 125);
    assert!(
        r.stderr
            .contains("seccomp.oci.syscalls[1].names: exit_group must be allowed"),
        "{}",
        r.stderr
    );
}

/// Probes terminal injection on a non-terminal stdin: refused by seccomp
/// gives EPERM (1), let through to the driver ENOTTY (25); 0x541C is
/// TIOCLINUX, which Python does not name. The request
/// with high bits set is the CVE-2019-10063 spelling of TIOCSTI.
const INJECTION_PROBE: &str = "import fcntl, termios\n\
for req in (termios.TIOCSTI, 0x541C, 0x1_0000_0000 | termios.TIOCSTI):\n    \
try:\n        fcntl.ioctl(0, req, b'Z')\n        print('allowed')\n    \
except OSError as e:\n        print(e.errno)\n";

/// A strict custom profile: the default's own allow-list and an
/// unrestricted ioctl, then the `extra` rules. airlock's refusals by
/// argument come after it.
fn strict_profile(dir: &std::path::Path, extra: &[serde_json::Value]) -> String {
    let mut names: Vec<&str> = airlock::seccomp::ALLOWED.to_vec();
    names.extend(["ioctl", "clone3"]);
    let mut rules = vec![
        serde_json::json!({"names": names, "action": "SCMP_ACT_ALLOW"}),
        // clone with the namespace flags masked off, as the default.
        serde_json::json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": airlock::seccomp::NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}),
    ];
    rules.extend_from_slice(extra);
    let profile = serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules});
    let path = dir.join("strict.json");
    std::fs::write(&path, profile.to_string()).unwrap();
    path.display().to_string()
}

#[test]
fn custom_seccomp_profile_keeps_the_argument_filters() {
    let dir = tempdir();
    let p = strict_profile(dir.path(), &[]);
    let flags = ["--seccomp-profile", p.as_str()];
    let probe = |flags: &[&str]| {
        let script = format!("python3 -c \"{INJECTION_PROBE}\"; echo end");
        let r = if is_root() {
            let r = sh(flags, &script);
            let u = sh_as_user(flags, &script);
            assert_eq!(r.stdout, u.stdout, "root and rootless differ: {}", u.stderr);
            r
        } else {
            sh(flags, &script)
        };
        assert!(r.stdout.ends_with("end\n"), "{} {}", r.stdout, r.stderr);
        r.stdout
    };
    // TIOCSTI, TIOCLINUX, and TIOCSTI with high bits: all refused.
    assert_eq!(probe(&flags), "1\n1\n1\nend\n");
    // The same profile without them (a finding of its own): the ioctls
    // reach the driver, so the probe can tell the two apart.
    let spec = serde_json::json!({
        "process": {"args": ["python3", "-c", INJECTION_PROBE]},
        "filesystem": {"mounts": serde_json::from_str::<serde_json::Value>(&system_view()).unwrap()},
        "seccomp": {"profile": "custom", "argument_filters": false,
                    "oci": serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&p).unwrap()).unwrap()},
    });
    let r = run_spec(&spec.to_string());
    assert_eq!(r.code, 125, "{}", r.stdout);
    // Both findings: the filters are off, and so an unrestricted ioctl
    // (and clone3) is escape surface again.
    for code in ["seccomp-argument-filters-off", "seccomp-permissive"] {
        assert!(r.stderr.contains(&format!("error[{code}]")), "{}", r.stderr);
    }
    let mut acked = spec.clone();
    acked["allow_unsafe"] =
        serde_json::json!(["seccomp-argument-filters-off", "seccomp-permissive"]);
    let r = run_spec(&acked.to_string());
    assert_eq!(r.stdout, "25\n25\n25\n", "{}", r.stderr);
}

/// A custom profile's rule on an int argument (Docker's "socket family
/// != AF_VSOCK") holds for a value with the upper 32 bits set, which a
/// filter compares and the kernel drops: refused (EINVAL), not let through
/// to make an AF_VSOCK socket (or reach the family's code: EAFNOSUPPORT).
#[test]
fn an_int_argument_with_its_upper_bits_set_is_refused() {
    let dir = tempdir();
    // Docker's rule.
    let vsock_refused = serde_json::json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]});
    let path = strict_profile(dir.path(), &[vsock_refused]);
    let probe = "import ctypes\n\
libc = ctypes.CDLL(None, use_errno=True)\n\
for family in (40, 0x1_0000_0028):\n    \
fd = libc.syscall(ctypes.c_long(41), ctypes.c_long(family), ctypes.c_long(1), ctypes.c_long(0))\n    \
print('socket' if fd >= 0 else ctypes.get_errno())\n";
    let flags = [
        "--seccomp-profile",
        path.as_str(),
        "--allow-unsafe",
        "seccomp-permissive",
    ];
    let script = format!("python3 -c \"{probe}\"");
    let mut runs = vec![sh(&flags, &script)];
    if is_root() {
        runs.push(sh_as_user(&flags, &script));
    }
    for r in runs {
        assert_eq!(r.stdout, "1\n22\n", "{}", r.stderr);
    }
}

#[test]
fn kept_capability_survives_exec_for_a_non_root_workload() {
    require_root!();
    let probe = "grep -E '^Cap(Eff|Amb|Bnd)' /proc/self/status; python3 -c \"import socket; s=socket.socket(); s.bind(('127.0.0.1', 80)); print('bound 80')\"";
    let r = sh(
        &["--uid", "1000", "--cap-add", "CAP_NET_BIND_SERVICE"],
        probe,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    for set in ["CapEff", "CapAmb", "CapBnd"] {
        assert!(
            r.stdout.contains(&format!("{set}:\t0000000000000400")),
            "{}",
            r.stdout
        );
    }
    assert!(r.stdout.contains("bound 80"));
    // Control: without it, port 80 is refused.
    let r = sh(&["--uid", "1000"], probe);
    assert!(
        !r.stdout.contains("bound 80") && r.stderr.contains("Permission denied"),
        "{} {}",
        r.stdout,
        r.stderr
    );
    // Kept in the bounding set but not ambient (what an OCI bundle's user
    // 1000 gets from the usual capability sets): gone at the exec.
    let spec = serde_json::json!({
        "process": {"args": ["sh", "-c", probe], "uid": 1000, "gid": 1000},
        "filesystem": {"mounts": serde_json::from_str::<serde_json::Value>(&system_view()).unwrap()},
        "capabilities": ["CAP_NET_BIND_SERVICE"],
        "ambient_capabilities": [],
    });
    let r = run_spec(&spec.to_string());
    assert!(
        r.stdout.contains("CapBnd:\t0000000000000400"),
        "{}",
        r.stdout
    );
    for set in ["CapEff", "CapAmb"] {
        assert!(
            r.stdout.contains(&format!("{set}:\t0000000000000000")),
            "{}",
            r.stdout
        );
    }
    assert!(
        !r.stdout.contains("bound 80") && r.stderr.contains("Permission denied"),
        "{} {}",
        r.stdout,
        r.stderr
    );
}

/// `copy_up` (podman's tmpcopyup): the tmpfs starts with a copy of what it
/// covers (here a bind), writable in memory, its links copied as links;
/// as root and as an unprivileged caller. A file of an owner the sandbox
/// does not map (the host's root, for a root caller) is the sandbox
/// root's in the copy, not its `nobody`'s (the overflow id it is shown
/// as, which a root caller's sandbox maps).
#[test]
fn a_tmpfs_can_start_with_a_copy_of_what_it_covers() {
    require_root!();
    for as_user in [false, true] {
        let dir = tempdir();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("sub/file"), "from-the-host").unwrap();
        std::os::unix::fs::symlink("/nowhere", data.join("link")).unwrap();
        if as_user {
            for p in [data.clone(), data.join("sub"), data.join("sub/file")] {
                chown(&p, USER, USER);
            }
        }
        let mut mounts: Vec<serde_json::Value> = serde_json::from_str(&system_view()).unwrap();
        mounts.push(serde_json::json!({"type": "bind", "source": data, "destination": "/data"}));
        mounts.push(serde_json::json!({"type": "tmpfs", "destination": "/data", "copy_up": true}));
        let script = "cat /data/sub/file; echo; readlink /data/link; \
                      touch /data/new && echo written; grep -c ' /data tmpfs ' /proc/mounts; \
                      stat -c %u:%g /data/sub/file";
        let spec = serde_json::json!({
            "process": {"args": ["sh", "-c", script]},
            "filesystem": {"mounts": mounts},
        });
        let path = dir.path().join("spec.json");
        std::fs::write(&path, spec.to_string()).unwrap();
        let args = ["run", "--spec", path.to_str().unwrap()];
        let r = output(if as_user {
            airlock_as_user(&args)
        } else {
            airlock(&args)
        });
        assert_eq!(r.code, 0, "as_user={as_user}: {}", r.stderr);
        // The caller's own file keeps its owner; the host root's is the
        // sandbox root's.
        let owner = if as_user { "1000:1000" } else { "0:0" };
        assert_eq!(
            r.stdout,
            format!("from-the-host\n/nowhere\nwritten\n1\n{owner}\n"),
            "as_user={as_user}: {}",
            r.stderr
        );
        assert!(!data.join("new").exists(), "written through to the host");
    }
}

/// A TOML spec says "unlimited" for RLIM_INFINITY, which its integers
/// cannot hold, and `--print-spec` writes it back that way.
#[test]
fn an_unlimited_rlimit_in_a_toml_spec() {
    require_root!();
    let dir = tempdir();
    let path = dir.path().join("spec.toml");
    std::fs::write(
        &path,
        "[process]\nargs = [\"sh\", \"-c\", \"ulimit -c; ulimit -Hc\"]\n\
         [[process.rlimits]]\nresource = \"core\"\nsoft = 4096\nhard = \"unlimited\"\n\
         [[filesystem.mounts]]\ntype = \"bind\"\nsource = \"/usr\"\ndestination = \"/usr\"\n\
         [[filesystem.mounts]]\ntype = \"symlink\"\ntarget = \"usr/bin\"\ndestination = \"/bin\"\n\
         [[filesystem.mounts]]\ntype = \"symlink\"\ntarget = \"usr/lib\"\ndestination = \"/lib\"\n\
         [[filesystem.mounts]]\ntype = \"symlink\"\ntarget = \"usr/lib64\"\ndestination = \"/lib64\"\n",
    )
    .unwrap();
    let r = output(airlock(&["run", "--spec", &path.display().to_string()]));
    assert_eq!(r.stdout, "8\nunlimited\n", "{}", r.stderr);
    let r = output(airlock(&[
        "run",
        "--print-spec",
        "--rlimit",
        "core=unlimited",
        "--",
        "true",
    ]));
    assert!(r.stdout.contains(r#""soft": "unlimited""#), "{}", r.stdout);
}

/// `--join net=PATH` puts the workload in a network namespace made ahead
/// (here one that `unshare --net=FILE` keeps alive on a file).
#[test]
fn join_enters_a_namespace_made_ahead() {
    require_root!();
    let dir = tempdir();
    let file = dir.path().join("net");
    std::fs::write(&file, "").unwrap();
    let made = std::process::Command::new("unshare")
        .arg(format!("--net={}", file.display()))
        .arg("true")
        .status()
        .unwrap();
    assert!(made.success());
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _held = Unmount(file.clone());
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&file).unwrap());
    let flag = format!("net={}", file.display());
    let r = output(airlock(&[
        "run",
        "--join",
        &flag,
        "--",
        "readlink",
        "/proc/self/ns/net",
    ]));
    assert_eq!(r.stdout.trim(), format!("net:[{ino}]"), "{}", r.stderr);
    // A sysctl of the joined namespace, which others share, is written
    // only once the limits are in place: a start refused for a limit the
    // host cannot apply leaves the namespace as it was.
    let port_start = || {
        let o = std::process::Command::new("nsenter")
            .arg(format!("--net={}", file.display()))
            .args(["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let before = port_start();
    let spec = serde_json::json!({
        "process": {"args": ["true"]},
        "namespaces": {"net": false, "join": {"net": file.display().to_string()}},
        "sysctls": {"net.ipv4.ip_unprivileged_port_start": "77"},
        "resources": {"cpuset_cpus": "1000"},
    });
    let r = run_spec(&spec.to_string());
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("resources.cpuset_cpus"), "{}", r.stderr);
    assert_eq!(
        port_start(),
        before,
        "the refused start changed the shared namespace"
    );
    // Nor does one refused after the write: a workload that cannot be
    // run (it left 77 there); one that runs leaves it set, as asked.
    for (program, code, left) in [
        ("/no/such/program", 127, before.as_str()),
        ("true", 0, "77"),
    ] {
        let mut spec = spec.clone();
        spec["resources"] = serde_json::json!({});
        spec["process"]["args"] = serde_json::json!([program]);
        // A trigger no one may read (mode 0200) is written all the same.
        spec["sysctls"]["net.ipv4.route.flush"] = serde_json::json!("1");
        let view: serde_json::Value = serde_json::from_str(&system_view()).unwrap();
        spec["filesystem"] = serde_json::json!({"mounts": view});
        let r = run_spec(&spec.to_string());
        assert_eq!(r.code, code, "{}", r.stderr);
        assert_eq!(port_start(), left, "after {program}");
    }
    // Errors name the flag.
    let r = output(airlock(&["run", "--join", "net=relative", "--", "true"]));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("--join net"), "{}", r.stderr);
    let r = output(airlock(&[
        "run",
        "--join",
        "user=/proc/1/ns/user",
        "--",
        "true",
    ]));
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("only the net, ipc, uts and pid"),
        "{}",
        r.stderr
    );
}

/// The kernel log's records since `fd` was last read to its end.
fn kmsg_since(fd: &std::fs::File) -> String {
    use std::io::Read;
    let mut out = String::new();
    let mut buf = vec![0u8; 8192];
    // /dev/kmsg gives one record per read; WouldBlock once at the end.
    while let Ok(n) = (&mut &*fd).read(&mut buf) {
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    out
}

/// `--seccomp-log`: the kernel logs the call the filter refused (an audit
/// record naming the process and the syscall), which it does not without.
#[test]
fn seccomp_log_names_the_refused_call() {
    require_root!();
    let logged_actions =
        std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_logged").unwrap_or_default();
    if !logged_actions.split_whitespace().any(|a| a == "errno")
        || std::path::Path::new("/run/auditd.pid").exists()
    {
        eprintln!("SKIPPED: the kernel does not log seccomp's errno refusals to /dev/kmsg here (actions_logged lacks errno, or auditd takes the records)");
        return;
    }
    use std::io::Seek;
    use std::os::unix::fs::OpenOptionsExt;
    let mut kmsg = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .unwrap();
    let unshare_nr = if cfg!(target_arch = "aarch64") {
        97
    } else {
        272
    };
    // unshare under a name of this run's own: the kernel log is the
    // host's, and another run of the suite may refuse unshare meanwhile.
    let comm = format!("unsh{}", std::process::id());
    let script = format!("ln -s /usr/bin/unshare /tmp/{comm} && /tmp/{comm} -U true");
    let logged = |log: &str| {
        log.lines().any(|l| {
            l.contains("type=1326")
                && l.contains(&format!("comm=\"{comm}\""))
                && l.contains(&format!(" syscall={unshare_nr} "))
        })
    };
    kmsg.seek(std::io::SeekFrom::End(0)).unwrap();
    let r = sh(&[], &script);
    assert!(r.stderr.contains("Operation not permitted"), "{}", r.stderr);
    // The kernel's audit thread prints after the call returns.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!logged(&kmsg_since(&kmsg)), "logged without --seccomp-log");
    // The kernel rate-limits what audit prints (10 in 5 s): another
    // test's records may take the burst, so up to three windows.
    let mut seen = false;
    for _ in 0..3 {
        let r = sh(&["--seccomp-log"], &script);
        assert!(r.stderr.contains("Operation not permitted"), "{}", r.stderr);
        std::thread::sleep(std::time::Duration::from_millis(200));
        if logged(&kmsg_since(&kmsg)) {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5500));
    }
    assert!(seen, "no audit record of the refused unshare");
    // Nothing to log without a filter.
    let r = sh(
        &[
            "--seccomp-log",
            "--seccomp-profile",
            "none",
            "--allow-unsafe",
            "seccomp-disabled",
        ],
        "true",
    );
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("--seccomp-log"), "{}", r.stderr);
}

/// Read-only paths under the sandbox's /proc are found from the proc
/// mount itself, the mount's own destination included: /proc made
/// read-only refuses a write to a process's own files; /proc/sys made
/// read-only refuses one there and leaves the rest.
#[test]
fn read_only_and_masked_paths_land_on_the_sandboxs_proc() {
    require_root!();
    let run = |readonly: &str| {
        run_spec(&format!(
            r#"{{"process": {{"args": ["sh", "-c", "echo x 2>/dev/null > /proc/self/comm && echo comm-written; echo 1 2>/dev/null > /proc/sys/kernel/hostname || echo sys-refused"]}},
                "filesystem": {{"mounts": {}, "readonly_paths": [{readonly}]}}}}"#,
            system_view()
        ))
    };
    let r = run(r#""/proc""#);
    assert_eq!(r.stdout, "sys-refused\n", "{}", r.stderr);
    let r = run(r#""/proc/sys""#);
    assert_eq!(r.stdout, "comm-written\nsys-refused\n", "{}", r.stderr);
}

/// Without no_new_privs the spec's own filter is installed before the
/// workload's identity is set; one that answers EINVAL for
/// PR_CAPBSET_DROP (24) made every drop look like a capability the kernel
/// lacks, and a uid 0 workload kept the whole bounding set (every
/// capability back at its next exec). The bounding set is emptied before
/// any filter now.
#[test]
fn a_spec_filter_cannot_keep_the_bounding_set() {
    let spec = serde_json::json!({
        "process": {"args": ["sh", "-c", "grep CapBnd /proc/self/status"], "no_new_privs": false},
        "filesystem": {"mounts": serde_json::from_str::<serde_json::Value>(&system_view()).unwrap()},
        "seccomp": {"profile": "custom", "oci": {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["prctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                          "args": [{"index": 0, "value": 24, "op": "SCMP_CMP_EQ"}]}],
        }},
        "allow_unsafe": ["no-new-privs-disabled", "seccomp-permissive"],
    });
    let r = run_spec(&spec.to_string());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "CapBnd:\t0000000000000000\n", "{}", r.stderr);
}
