//! The guardrails as a user meets them: `airlock run` refuses before
//! anything starts, `airlock check` reports like a linter, and the runner
//! mounts only what was judged.

mod common;
// Who the workload is on the host: a shared user namespace, id maps.
#[path = "guardrails/identity.rs"]
mod identity;
// The object a bind reaches, shared directories, state.
#[path = "guardrails/objects.rs"]
mod objects;
// Unix sockets below a bind, however they are named.
#[path = "guardrails/sockets.rs"]
mod sockets;
use common::*;
use std::io::Write;
use std::process::Stdio;

fn run(args: &[&str]) -> Run {
    let mut a = vec!["run"];
    a.extend_from_slice(args);
    output(airlock(&a))
}

/// `airlock run ARGS` is refused (125) with a finding of `code`.
fn refused_with(args: &[&str], code: &str) {
    refused(&run(args), code, &format!("{args:?}"));
}

/// `r` was refused (125) with a finding of `code`; `what` says which run.
fn refused(r: &Run, code: &str, what: &str) {
    assert_eq!(r.code, 125, "{what}: {}", r.stderr);
    assert!(
        r.stderr.contains(&format!("error[{code}]")),
        "{what}: {}",
        r.stderr
    );
}

#[test]
fn sharing_a_folder_runs_but_binding_etc_does_not() {
    require_root!();
    let dir = shared_dir();
    let share = dir.path().display().to_string();
    let r = run(&[
        "--bind",
        &share,
        "/share",
        "--",
        "sh",
        "-c",
        "echo ok > /share/f",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.is_empty(),
        "no findings for a plain share: {}",
        r.stderr
    );
    let _lock = mount_lock();
    let before = host_mounts();
    let r = run(&[
        "--bind",
        "/etc",
        "/etc",
        "--",
        "sh",
        "-c",
        "touch /etc/airlock-was-here",
    ]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("error[host-system-writable]"),
        "{}",
        r.stderr
    );
    assert!(r
        .stderr
        .contains("= help: if this is intended, pass `--allow-unsafe host-system-writable`"));
    assert!(!std::path::Path::new("/etc/airlock-was-here").exists());
    assert_nothing_left(&before);
}

#[test]
fn tricks_that_climb_to_root_or_etc() {
    let dir = tempdir();
    let base = dir.path().display().to_string();
    std::os::unix::fs::symlink("/", dir.path().join("to-root")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("to-etc")).unwrap();
    let cases: Vec<(String, &str)> = vec![
        (format!("{base}/../.."), "host-root-writable"),
        ("/usr/..".to_string(), "host-root-writable"),
        (format!("{base}/to-root"), "host-root-writable"),
        (format!("{base}/to-etc"), "host-system-writable"),
        (format!("{base}/to-root/etc/.."), "host-root-writable"),
    ];
    for (src, code) in cases {
        let r = run(&["--bind", &src, "/x", "--", "true"]);
        assert_eq!(r.code, 125, "{src}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("error[{code}]")),
            "{src}: {}",
            r.stderr
        );
    }
    // A read-only bind through a symlink to / still exposes /proc and /sys.
    let r = run(&[
        "--ro-bind",
        &format!("{base}/to-root"),
        "/host",
        "--",
        "true",
    ]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("error[kernel-surface-bind]"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("warning[host-root-readonly]"),
        "{}",
        r.stderr
    );
}

#[test]
fn relative_sources_are_judged_from_the_current_directory() {
    let r = output({
        let mut c = airlock(&["run", "--bind", "etc", "/x", "--", "true"]);
        c.current_dir("/");
        c
    });
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("error[host-system-writable]"),
        "{}",
        r.stderr
    );
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("share")).unwrap();
    let r = output({
        let mut c = airlock(&[
            "run",
            "--print-spec",
            "--bind",
            "share",
            "/share",
            "--",
            "true",
        ]);
        c.current_dir(dir.path());
        c
    });
    assert!(
        r.stdout
            .contains(&format!("\"source\": \"{}/share\"", dir.path().display())),
        "{}",
        r.stdout
    );
}

#[test]
fn acknowledged_findings_run_and_unknown_codes_are_errors() {
    require_root!();
    let r = run(&[
        "--ro-bind",
        "/sys",
        "/hostsys",
        "--allow-unsafe",
        "kernel-surface-bind",
        "--",
        "sh",
        "-c",
        "test -d /hostsys/kernel && echo visible",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "visible");
    assert!(
        r.stderr.contains("warning[kernel-surface-bind]") && r.stderr.contains("(acknowledged)"),
        "{}",
        r.stderr
    );
    let r = run(&["--allow-unsafe", "everything", "--", "true"]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr
            .contains("--allow-unsafe everything: unknown guardrail code \"everything\""),
        "{}",
        r.stderr
    );
    let r = run(&["--allow-unsafe", "cap-bpf", "--", "true"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("warning[unused-allow-unsafe]"),
        "{}",
        r.stderr
    );
}

#[test]
fn capabilities_and_shared_namespaces() {
    let r = run(&["--cap-add", "sys_admin", "--", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("error[cap-sys-admin]"), "{}", r.stderr);
    // With a user namespace of its own (always, for a caller who is not
    // root), the sandbox's capabilities count for nothing in the host's
    // network namespace: the kernel refuses a low port as without one,
    // so it is a warning that says so, not a refusal.
    let bind = "import socket\n\
                try:\n\
                \x20   socket.socket().bind(('127.0.0.1', 1023))\n\
                \x20   print('bound')\n\
                except PermissionError:\n\
                \x20   print('refused')";
    let r = run(&[
        "--share-net",
        "--cap-add",
        "CAP_NET_BIND_SERVICE",
        "--",
        "/usr/bin/python3",
        "-c",
        bind,
    ]);
    // (Where low ports are everyone's, as in a Docker container, the
    // bind succeeds whatever the capabilities: only the warning counts.)
    let start: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024);
    let expected = if start > 1023 { "refused\n" } else { "bound\n" };
    assert_eq!((r.code, r.stdout.as_str()), (0, expected), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "warning[cap-net-inert]: capabilities: CAP_NET_BIND_SERVICE in a network namespace"
        ),
        "{}",
        r.stderr
    );
    // Without one, they would be the host's.
    if rustix::process::geteuid().is_root() {
        let r = run(&[
            "--share-net",
            "--share-user",
            "--cap-add",
            "CAP_NET_RAW",
            "--",
            "true",
        ]);
        assert!(
            r.stderr.contains("error[cap-net-admin-host]"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("cap-net-inert"), "{}", r.stderr);
    }
    let r = run(&["--share-user", "--", "true"]);
    assert!(
        r.stderr.contains("error[host-root-user]") || r.stderr.contains("namespaces.user"),
        "{}",
        r.stderr
    );
    assert_eq!(r.code, 125);
    // The host uid that owns every root caller's sandbox is the key to
    // all of them.
    let owner = airlock::plan::ROOT_CALLER_OWNER.to_string();
    let r = run(&[
        "--share-user",
        "--uid",
        &owner,
        "--gid",
        "65534",
        "--allow-unsafe",
        "shared-user",
        "--",
        "true",
    ]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("error[host-privileged-id]: process.uid")
            || r.stderr.contains("error[host-privileged-id]: --uid"),
        "{}",
        r.stderr
    );
}

#[test]
fn check_command_exit_codes_and_formats() {
    let ok = r#"{"process": {"args": ["true"]}, "filesystem": {"mounts": [{"type": "bind", "source": "/usr", "destination": "/usr"}]}}"#;
    let r = check_cmd(&["-"], Some(ok));
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    let bad = r#"{"process": {"args": ["true"]}, "filesystem": {"mounts": [{"type": "bind", "source": "/", "destination": "/host", "readonly": false}]}}"#;
    let r = check_cmd(&["-"], Some(bad));
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains("error[host-root-writable]: filesystem.mounts[0]"),
        "{}",
        r.stdout
    );
    let r = check_cmd(&["--format", "json", "-"], Some(bad));
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["refused"], true);
    assert_eq!(v["findings"][0]["code"], "host-root-writable");
    let r = check_cmd(&["-"], Some("{\n \"hostname\": 5\n}"));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("line 2") && r.stderr.contains("hostname"),
        "{}",
        r.stderr
    );
    let r = check_cmd(&["/no/such/file.json"], None);
    assert_eq!(r.code, 2);
    // A usage error, with JSON asked for, is JSON too (clap's text still
    // on stderr).
    for format in [&["--format", "json"][..], &["--format=json"]] {
        let mut args = format.to_vec();
        args.extend(["--no-such-flag", "-"]);
        let r = check_cmd(&args, None);
        assert_eq!(r.code, 2);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert!(
            v["error"].as_str().unwrap().contains("--no-such-flag"),
            "{v}"
        );
        assert!(r.stderr.contains("--no-such-flag"), "{}", r.stderr);
    }
    // What is missing is named, from clap's next line.
    let r = check_cmd(&["--format", "json"], None);
    assert_eq!(r.code, 2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("<SPEC>"), "{v}");
    // What the plan refuses, run refuses before it creates anything:
    // check says so too, naming the field, rather than "ok".
    let unplanned = r#"{"process": {"args": ["true"]}, "filesystem": {"idmap": ["/data"]}}"#;
    let r = check_cmd(&["-"], Some(unplanned));
    assert_eq!(r.code, 2, "{} {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("filesystem.idmap[0]"), "{}", r.stderr);
    let dir = tempdir();
    let spec = dir.path().join("unplanned.json");
    std::fs::write(&spec, unplanned).unwrap();
    let r = run(&["--spec", spec.to_str().unwrap()]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("filesystem.idmap[0]"), "{}", r.stderr);
    // A local linter, whatever daemon AIRLOCK_HOST names.
    let mut c = airlock(&["--state-root", "/tmp/airlock-check-state", "check", "-"]);
    c.env("AIRLOCK_HOST", "unix:///nonexistent/airlockd.sock");
    let r = with_stdin(c, Some(ok));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A command line it cannot use is "could not judge" too, not 1.
    let r = check_cmd(&[], None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("<SPEC>"), "{}", r.stderr);
    let r = output(airlock(&["--state-root", "/tmp", "check", "--bogus"]));
    assert_eq!(r.code, 2, "after a global option too: {}", r.stderr);
    let r = check_cmd(&["--list"], None);
    assert_eq!(r.code, 0);
    for rule in airlock::check::RULES {
        assert!(r.stdout.contains(rule.code), "--list misses {}", rule.code);
    }
}

#[test]
fn print_spec_is_accepted_by_check_even_when_refused() {
    let r = run(&["--print-spec", "--bind", "/etc", "/etc", "--", "true"]);
    assert_eq!(r.code, 0, "--print-spec prints even a refused spec");
    let c = check_cmd(&["-"], Some(&r.stdout));
    assert_eq!(c.code, 1, "{}", c.stdout);
    let r = run(&["--print-spec", "--", "true"]);
    let c = check_cmd(&["-"], Some(&r.stdout));
    assert_eq!(c.code, 0, "{} {}", c.stdout, c.stderr);
}

#[test]
fn readme_lists_every_rule() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    for rule in airlock::check::RULES {
        assert!(
            readme.contains(&format!("`{}`", rule.code)),
            "README misses {}",
            rule.code
        );
    }
}

/// Mounts a filesystem on the host for a test, and unmounts it after.
struct HostMount(
    std::path::PathBuf,
    #[allow(dead_code)] std::sync::MutexGuard<'static, ()>,
);

impl HostMount {
    fn new(fstype: &str, at: &std::path::Path) -> HostMount {
        Self::mount(&["-t", fstype, fstype], at)
    }

    /// `mount --bind SRC AT`: the same directory under another name.
    fn bind(src: &str, at: &std::path::Path) -> HostMount {
        Self::mount(&["--bind", src], at)
    }

    fn mount(args: &[&str], at: &std::path::Path) -> HostMount {
        let lock = mount_lock();
        std::fs::create_dir_all(at).unwrap();
        let st = std::process::Command::new("mount")
            .args(args)
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount {args:?} on {}", at.display());
        HostMount(at.to_path_buf(), lock)
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn mounts_below_a_bind_come_along_and_are_judged() {
    require_root!();
    let dir = tempdir();
    let root = dir.path().join("chroot");
    let _proc = HostMount::new("proc", &root.join("proc"));
    let src = root.display().to_string();
    let r = run(&["--ro-bind", &src, "/chroot", "--", "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("error[kernel-surface-bind]")
            && r.stderr.contains("carries the proc mount"),
        "{}",
        r.stderr
    );
    let r = run(&["--rootfs", &src, "--", "true"]);
    assert!(
        r.stderr.contains("error[kernel-surface-bind]"),
        "{}",
        r.stderr
    );
}

#[test]
fn read_only_rootfs_is_read_only_below_too() {
    require_root!();
    let dir = tempdir();
    let root = dir.path().join("root");
    let _tmp = HostMount::new("tmpfs", &root.join("data"));
    for d in [root.clone(), root.join("data")] {
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    }
    let src = root.display().to_string();
    let owned = rootfs_with_host_usr(&src);
    let base: Vec<&str> = owned.iter().map(String::as_str).collect();
    let mut ro = base.to_vec();
    ro.push("--rootfs-readonly");
    let r = sh(&ro, "touch /data/x 2>&1 || true");
    assert!(
        r.stdout.contains("Read-only file system"),
        "{} {}",
        r.stdout,
        r.stderr
    );
    // Control: without --rootfs-readonly the mount below is writable.
    let r = sh(&base, "touch /data/x && echo wrote");
    assert_eq!(r.stdout.trim(), "wrote", "{}", r.stderr);
}

#[test]
fn shared_pid_and_host_root_maps_are_refused() {
    let r = run(&["--share-pid", "--", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("error[shared-pid]"), "{}", r.stderr);
    // Joined by a path that is the caller's own namespace: the host's too.
    let own = format!("pid=/proc/{}/ns/pid", std::process::id());
    let r = run(&["--join", &own, "--cap-add", "CAP_KILL", "--", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("error[shared-pid]"), "{}", r.stderr);
    assert!(r.stderr.contains("error[cap-host-pid]"), "{}", r.stderr);
    let dir = tempdir();
    let p = dir.path().join("spec.json");
    std::fs::write(
        &p,
        r#"{"process": {"args": ["true"], "uid": 0, "gid": 0}, "identity": {"uid_map": [{"inside": 0, "outside": 0, "count": 1}], "gid_map": [{"inside": 0, "outside": 0, "count": 1}]}}"#,
    )
    .unwrap();
    let r = run(&["--spec", &p.display().to_string()]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("error[host-root-mapped]"), "{}", r.stderr);
}

fn check_cmd(args: &[&str], stdin: Option<&str>) -> Run {
    let mut a = vec!["check"];
    a.extend_from_slice(args);
    with_stdin(airlock(&a), stdin)
}

/// Run `c`, `stdin` written to its stdin.
fn with_stdin(mut c: std::process::Command, stdin: Option<&str>) -> Run {
    if stdin.is_some() {
        c.stdin(Stdio::piped());
    }
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Dotfiles are what a user's shell and programs run: root's, written,
/// are refused like /etc (the workload would run as the host's root at
/// its next login); the caller's own, written, are warned of, as its
/// whole home is. Read-only, neither.
#[test]
fn dotfiles_written_are_judged_as_what_they_run() {
    require_root!();
    let before = std::fs::read("/root/.profile").expect("Debian's /root/.profile");
    let r = run(&[
        "--bind",
        "/root/.profile",
        "/p",
        "--",
        "sh",
        "-c",
        "echo 'echo owned' >> /p",
    ]);
    refused(&r, "host-system-writable", "root's .profile");
    assert!(r.stderr.contains("root's /root/.profile"), "{}", r.stderr);
    assert_eq!(std::fs::read("/root/.profile").unwrap(), before);
    let r = run(&["--ro-bind", "/root/.profile", "/p", "--", "true"]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    let home = tempdir();
    std::os::unix::fs::chown(home.path(), Some(USER), Some(USER)).unwrap();
    let rc = home.path().join(".bashrc");
    std::fs::write(&rc, "").unwrap();
    std::os::unix::fs::chown(&rc, Some(USER), Some(USER)).unwrap();
    let rc = rc.display().to_string();
    let o = as_user()
        .arg(airlock_bin())
        .args(["run", "--bind", &rc, "/b", "--", "true"])
        .env("HOME", home.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("warning[home-writable]"), "{stderr}");
    assert!(stderr.contains(&format!("your {rc}")), "{stderr}");
}
