//! The core cases again, as an unprivileged user (rootless): the caller's
//! own uid is mapped, nothing else.

mod common;
use common::*;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;

#[test]
fn rootless_core_isolation() {
    require_root!(); // needs root only to become the test user via setpriv
    let dir = tempdir();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "rootless-secret-99").unwrap();
    chown(&secret, USER, USER);
    let script = format!(
        "cat {} 2>&1; id -u; hostname; cut -d' ' -f1 /proc/uptime; echo ppid=$PPID; \
         tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status",
        secret.display()
    );
    let r = sh_as_user(&[], &script);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.stdout;
    assert!(!out.contains("rootless-secret-99"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("No such file"), "{out}");
    assert_eq!(lines[1], USER.to_string());
    assert_eq!(lines[2], "airlock");
    assert!(lines[3].parse::<f64>().unwrap() < 5.0);
    assert_eq!(lines[4], "ppid=1");
    assert_eq!(lines[5], "lo");
    assert_eq!(lines[6], "CapEff:\t0000000000000000");
    assert_eq!(lines[7], "NoNewPrivs:\t1");
}

#[test]
fn rootless_binds() {
    require_root!();
    let dir = tempdir();
    chown(dir.path(), USER, USER);
    let flag = dir.path().display().to_string();
    let r = sh_as_user(
        &["--bind", &flag, "/share"],
        "echo from-rootless > /share/out",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let written = dir.path().join("out");
    assert_eq!(
        std::fs::read_to_string(&written).unwrap(),
        "from-rootless\n"
    );
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&written).unwrap()),
        USER
    );
    let r = sh_as_user(
        &["--ro-bind", &flag, "/share"],
        "echo x > /share/out2 || echo refused",
    );
    assert!(r.stderr.contains("Read-only file system"), "{}", r.stderr);
    assert!(!dir.path().join("out2").exists());
}

#[test]
fn rootless_root_inside_has_no_host_power() {
    require_root!();
    let r = sh_as_user(
        &["--uid", "0", "--gid", "0"],
        "id -u; cat /etc/shadow >/dev/null 2>&1 || echo denied; grep CapEff /proc/self/status",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("0\n"), "{}", r.stdout);
    assert!(r.stdout.contains("denied"));
    assert!(r.stdout.contains("CapEff:\t0000000000000000"));
}

#[test]
fn rootless_exit_statuses() {
    require_root!();
    assert_eq!(sh_as_user(&[], "exit 5").code, 5);
    assert_eq!(sh_as_user(&[], "kill -KILL $$").code, 137);
    assert_eq!(
        output(airlock_as_user(&["run", "--", "missing-prog-abc"])).code,
        127
    );
    let r = output(airlock_as_user(&[
        "run",
        "--cap-add",
        "CAP_FLY",
        "--",
        "true",
    ]));
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("--cap-add CAP_FLY"), "{}", r.stderr);
}

#[test]
fn rootless_cannot_map_foreign_ids_without_newuidmap_rights() {
    require_root!();
    // The test user has no /etc/subuid range, so asking for one is refused
    // with a reason, not silently narrowed.
    let spec = r#"{"process": {"args": ["true"], "uid": 0, "gid": 0},
                   "identity": {"uid_map": [{"inside": 0, "outside": 1000, "count": 1},
                                            {"inside": 1, "outside": 200000, "count": 10}],
                                "gid_map": [{"inside": 0, "outside": 1000, "count": 1}]}}"#;
    let dir = tempdir();
    let path = dir.path().join("spec.json");
    std::fs::write(&path, spec).unwrap();
    let r = output(airlock_as_user(&[
        "run",
        "--spec",
        &path.display().to_string(),
    ]));
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("identity.uid_map"), "{}", r.stderr);
    assert!(!r.stderr.contains("no_new_privs"), "{}", r.stderr);
    // Started under no_new_privs, the setuid helper gains nothing: said.
    let mut c = setpriv_as(USER, "--clear-groups", &["--no-new-privs"]);
    c.arg(airlock_bin())
        .args(["run", "--spec", &path.display().to_string()]);
    let r = output(c);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("newuidmap failed") && r.stderr.contains("no_new_privs set"),
        "{}",
        r.stderr
    );
}

/// A caller other than root maps its own uid and gid explicitly (an OCI
/// bundle's rootless uidMappings do) whatever they are to the host: here a
/// system account's, 999, whose gid is a system group. The guardrails
/// judged them as another's privileged ids, and refused the very map the
/// default gives without a word.
#[test]
fn a_rootless_caller_maps_its_own_ids_explicitly() {
    require_root!();
    let dir = tempdir();
    let made = output(airlock(&[
        "run",
        "--print-spec",
        "--uid",
        "0",
        "--gid",
        "0",
        "--",
        "sh",
        "-c",
        "id -u; id -g",
    ]));
    let mut spec: serde_json::Value = serde_json::from_str(&made.stdout).unwrap();
    spec["identity"] = serde_json::json!({
        "uid_map": [{"inside": 0, "outside": 999, "count": 1}],
        "gid_map": [{"inside": 0, "outside": 999, "count": 1}],
    });
    let path = dir.path().join("spec.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut c = setpriv_as(999, "--clear-groups", &[]);
    c.arg(airlock_bin())
        .args(["run", "--spec", &path.display().to_string()]);
    let r = output(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "0\n0\n");
}

/// uid 0 of a user namespace that does not hold the host's ids (`unshare
/// -r`, a rootless container's root) launches as a rootless caller: it
/// maps its own id and clones its mounts in the sandbox's namespaces. It
/// took the root path, and failed: mounting the host's /usr from a mount
/// namespace its user namespace does not own (EPERM), or becoming an id
/// its namespace does not map (EINVAL). From host root and from the test
/// user alike; host root's `unshare -r` maps the host's uid 0 into the
/// sandbox, which is acknowledged by name.
#[test]
fn root_of_a_user_namespace_launches_as_a_rootless_caller() {
    require_root!();
    let r = output({
        let mut c = std::process::Command::new("unshare");
        c.arg("-r")
            .arg(airlock_bin())
            .args(["run", "--", "true"])
            .stdin(std::process::Stdio::null());
        c
    });
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("error[host-root-mapped]: identity")
            && r.stderr.contains("its parent's root"),
        "{}",
        r.stderr
    );
    let script = "id -u; cat /proc/self/uid_map; echo ppid=$PPID; ls /root 2>&1";
    for (who, by_root) in [("root", true), ("the test user", false)] {
        for unshare in [&["-r"][..], &["-r", "-m"][..]] {
            let mut c = match by_root {
                true => std::process::Command::new("unshare"),
                false => {
                    let mut c = as_user();
                    c.arg("unshare");
                    c
                }
            };
            let ack: &[&str] = match by_root {
                true => &["--allow-unsafe", "host-root-mapped"],
                false => &[],
            };
            c.args(unshare)
                .arg(airlock_bin())
                .arg("run")
                .args(ack)
                .args(["--", "sh", "-c", script])
                .env_remove("XDG_RUNTIME_DIR")
                .stdin(std::process::Stdio::null());
            let r = output(c);
            assert_eq!(r.code, 2, "{who} {unshare:?}: {}{}", r.stdout, r.stderr);
            let lines: Vec<&str> = r.stdout.lines().collect();
            assert_eq!(lines[0], "0", "{who}: {}", r.stdout);
            // Its own id, once: no range of the host's.
            assert_eq!(
                lines[1].split_whitespace().collect::<Vec<_>>(),
                ["0", "0", "1"],
                "{who}: {}",
                r.stdout
            );
            assert_eq!(lines[2], "ppid=1", "{who}: {}", r.stdout);
            assert!(lines[3].contains("No such file"), "{who}: {}", r.stdout);
        }
    }
}

/// A rootless sandbox keeps its caller's supplementary groups (unmapped,
/// they show as the overflow gid), and may not drop them: a file whose
/// group is denied what others get (mode 0604) stays unreadable even to
/// a sandbox root with CAP_SETGID, because the user namespace denies
/// setgroups (written before its gid_map, as shadow's CVE-2018-7169
/// taught newgidmap).
#[test]
fn a_rootless_sandbox_cannot_drop_its_callers_groups() {
    require_root!();
    let dir = tempdir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "group-denied").unwrap();
    chown(&file, 0, 4242);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o604)).unwrap();
    let probe = r#"
import os
print(open("/proc/self/setgroups").read().strip())
def read():
    try:
        return open("/d/f").read()
    except OSError as e:
        return f"errno {e.errno}"
print(read())
try:
    os.setgroups([])
    print("dropped")
except OSError as e:
    print(f"setgroups errno {e.errno}")
print(read())
"#;
    let mut c = setpriv_as(USER, "--groups=4242", &[]);
    c.arg(airlock_bin())
        .args(["run", "--uid", "0", "--gid", "0", "--cap-add", "CAP_SETGID"])
        .args(["--bind", &dir.path().display().to_string(), "/d"])
        .args(["--", "python3", "-c", probe]);
    let r = output(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout, "deny\nerrno 13\nsetgroups errno 1\nerrno 13\n",
        "{}",
        r.stderr
    );
}

/// runc's CVE-2019-5736: a process running the runner execs a path of the
/// sandbox, where a script whose interpreter is `/proc/self/exe` runs the
/// runner's file again as the workload, which could reopen it for writing
/// through `/proc/PID/exe`, or, owning it, chmod it (Landlock does not
/// cover chmod). A runner the sandbox's ids may change is exec'd from a
/// sealed memfd copy instead: a rootless caller's own, one a group of the
/// caller's may write (a supplementary group the rootless sandbox keeps),
/// one an ACL lets the caller write, and one only root may write for a
/// sandbox that keeps the host's ids. A runner only root may write, for a
/// sandbox of its own ids, is exec'd as it is. A runner named without a
/// slash is judged as the file found on PATH, the one that runs.
#[test]
fn a_runner_the_workload_could_write_runs_from_a_sealed_copy() {
    require_root!();
    let dir = tempdir();
    let ours = airlock_bin().with_file_name("airlock-runner");
    let copy = |name: &str, uid: u32, gid: u32, mode: u32| {
        let path = dir.path().join(name);
        let copied = std::process::Command::new("cp")
            .arg(&ours)
            .arg(&path)
            .status()
            .unwrap();
        assert!(copied.success());
        chown(&path, uid, gid);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    };
    let theirs = copy("theirs", USER, USER, 0o755);
    let users = copy("users", 0, 100, 0o775);
    let acl = copy("acl", 0, 0, 0o755);
    // user:1000:rwx (the binary form of a POSIX ACL: version 2, then
    // tag, permissions and id of each entry, in tag order).
    let mut entries = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (0x01u16, 7u16, u32::MAX),
        (0x02, 7, USER),
        (0x04, 5, u32::MAX),
        (0x10, 7, u32::MAX),
        (0x20, 5, u32::MAX),
    ] {
        entries.extend(tag.to_le_bytes());
        entries.extend(perm.to_le_bytes());
        entries.extend(id.to_le_bytes());
    }
    let name = std::ffi::CString::new("system.posix_acl_access").unwrap();
    let at = std::ffi::CString::new(acl.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: NUL-terminated strings and a buffer of the length given.
    let set = unsafe {
        libc::setxattr(
            at.as_ptr(),
            name.as_ptr(),
            entries.as_ptr().cast(),
            entries.len(),
            0,
        )
    };
    assert_eq!(set, 0, "{}", std::io::Error::last_os_error());
    // And a runner only root may write, for a sandbox that keeps the
    // host's ids (a root caller's, acknowledged).
    let host_ids = [
        "--share-user",
        "--allow-unsafe",
        "shared-user",
        "--uid",
        "1000",
    ];
    // (runner, Landlock, as whom, sealed, AIRLOCK_RUNNER its bare name)
    let user = Some("--clear-groups");
    let in_users = Some("--groups=100");
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap()
    );
    for (runner, mode, groups, sealed, bare) in [
        (&theirs, "off", user, true, false),
        (&theirs, "auto", user, true, false),
        (&theirs, "auto", user, true, true),
        (&users, "auto", in_users, true, false),
        (&users, "auto", user, false, false),
        (&acl, "auto", user, true, false),
        (&ours, "off", user, false, false),
        (&ours, "auto", user, false, false),
        (&ours, "off", None, true, false),
        (&ours, "auto", None, true, false),
    ] {
        let mut args = vec!["run", "--landlock", mode];
        if groups.is_none() {
            args.extend(host_ids);
        }
        args.extend(["--", "sleep", "30"]);
        let mut cmd = match groups {
            Some(groups) => {
                let mut c = std::process::Command::new("setpriv");
                c.args([
                    format!("--reuid={USER}"),
                    format!("--regid={USER}"),
                    groups.into(),
                    "--".into(),
                ])
                .arg(airlock_bin())
                .args(&args);
                c
            }
            None => airlock(&args),
        };
        if bare {
            cmd.env("AIRLOCK_RUNNER", runner.file_name().unwrap())
                .env("PATH", &path);
        } else {
            cmd.env("AIRLOCK_RUNNER", runner);
        }
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // (setpriv execs) airlock, which execs the runner, in this process.
        let proc_exe = format!("/proc/{}/exe", child.id());
        let mut exe = String::new();
        for _ in 0..500 {
            exe = std::fs::read_link(&proc_exe)
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            if exe.contains("airlock-runner") || exe.contains(&runner.display().to_string()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let seals = std::fs::File::open(&proc_exe).map(|f| {
            // SAFETY: F_GET_SEALS on an open fd only returns a number.
            unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) }
        });
        // SIGTERM, forwarded to the workload: the sandbox ends and its
        // supervisor removes its cgroups (a SIGKILLed one cannot).
        // SAFETY: kill takes plain numbers; the pid is our unreaped child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap();
        let what = format!("{} ({groups:?} {args:?} {bare}): {exe}", runner.display());
        if sealed {
            assert!(exe.starts_with("/memfd:airlock-runner"), "{what}");
            let seals = seals.unwrap();
            assert!(
                seals >= 0 && seals & libc::F_SEAL_WRITE != 0,
                "{what}: {seals}"
            );
        } else {
            assert_eq!(exe, runner.display().to_string(), "{what}");
        }
    }
}

/// The runner acts with its caller's privileges: a runner file made
/// set-user-ID root (by mistake, or by a workload that owned it) refuses
/// to run for anyone.
#[test]
fn a_set_user_id_runner_refuses_to_run() {
    require_root!();
    let dir = tempdir();
    let runner = dir.path().join("airlock-runner");
    std::fs::copy(airlock_bin().with_file_name("airlock-runner"), &runner).unwrap();
    std::fs::set_permissions(&runner, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let mut c = std::process::Command::new("setpriv");
    c.args([
        format!("--reuid={USER}"),
        format!("--regid={USER}"),
        "--clear-groups".into(),
        "--".into(),
    ])
    .arg(&runner)
    .args(["1", "3", "4"]);
    let r = output(c);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("refuses to run set-user-ID"),
        "{}",
        r.stderr
    );
}

/// A rootless caller cannot make a device node: the host's is bound as it
/// is. Asked for a mode closer than the host node's, the start is refused
/// naming the device, never run with the host's wider one; asked for
/// none (0666), it runs with the node.
#[test]
fn a_device_mode_a_rootless_caller_cannot_give_is_refused() {
    require_root!();
    let dir = tempdir();
    chown(dir.path(), USER, USER);
    let made = output(airlock(&[
        "run",
        "--print-spec",
        "--",
        "sh",
        "-c",
        "echo hi > /dev/null && echo wrote",
    ]));
    let mut spec: serde_json::Value = serde_json::from_str(&made.stdout).unwrap();
    let write = |spec: &serde_json::Value| {
        let p = dir.path().join("spec.json");
        std::fs::write(&p, spec.to_string()).unwrap();
        chown(&p, USER, USER);
        p.display().to_string()
    };
    spec["filesystem"]["devices"] =
        serde_json::json!([{"path": "/dev/null", "kind": "char", "major": 1, "minor": 3}]);
    let r = output(airlock_as_user(&["run", "--spec", &write(&spec)]));
    assert_eq!((r.code, r.stdout.as_str()), (0, "wrote\n"), "{}", r.stderr);
    spec["filesystem"]["devices"][0]["mode"] = "0600".into();
    let r = output(airlock_as_user(&["run", "--spec", &write(&spec)]));
    assert_eq!(r.code, 125, "{} {}", r.stdout, r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains("/dev/null") && r.stderr.contains("0600"),
        "{}",
        r.stderr
    );
}
