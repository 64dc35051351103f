//! Bad input gets a precise error, exit status 125, and leaves nothing
//! behind: no mount on the host, no process.

mod common;
use common::*;

/// Run airlock, expect 125, and check nothing is left.
fn refused(args: &[&str], expect_in_error: &[&str]) -> String {
    let _lock = mount_lock();
    let before = host_mounts();
    let child = airlock(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(125), "{args:?}: {stderr}");
    for e in expect_in_error {
        assert!(stderr.contains(e), "{args:?}: expected {e:?} in: {stderr}");
    }
    assert_eq!(stderr.lines().count(), 1, "one-paragraph error: {stderr}");
    assert_nothing_left(&before);
    let runner = format!("airlock-runner {pid} ");
    assert!(
        processes_with(&runner).is_empty(),
        "runner of {pid} still alive"
    );
    stderr
}

#[test]
fn missing_bind_source() {
    require_root!();
    refused(
        &["run", "--ro-bind", "/no/such/dir", "/data", "--", "true"],
        &[
            "mount /data (--ro-bind /no/such/dir /data): ",
            "source /no/such/dir does not exist",
        ],
    );
}

/// An overlay root's layer that is a file is refused by its path, not
/// by overlayfs naming the fd it was handed.
#[test]
fn a_root_layer_that_is_a_file_is_named() {
    require_root!();
    let err = refused(
        &[
            "run",
            "--rootfs",
            "/usr/bin/true",
            "--overlay",
            "--",
            "true",
        ],
        &["root layer /usr/bin/true: not a directory"],
    );
    assert!(!err.contains("/proc/self/fd"), "{err}");
}

/// A mount that fails in the sandbox names the flag that asked for it
/// (not the one before it, nor a spec index counting the default view),
/// or, from a spec, its field; and says the mount point was the trouble:
/// procfs lets nothing be made in it.
#[test]
fn a_failed_mount_names_its_flag_or_field() {
    refused(
        &[
            "run",
            "--tmpfs",
            "/scratch",
            "--ro-bind",
            "/etc/passwd",
            "/proc/x",
            "--",
            "true",
        ],
        &[
            "mount /proc/x (--ro-bind /etc/passwd /proc/x): ",
            "cannot make the mount point: No such file or directory",
        ],
    );
    let dir = tempdir();
    let p = dir.path().join("spec.toml");
    std::fs::write(
        &p,
        "[process]\nargs = [\"true\"]\n\
         [[filesystem.mounts]]\ntype = \"proc\"\ndestination = \"/proc\"\n\
         [[filesystem.mounts]]\ntype = \"tmpfs\"\ndestination = \"/proc/zz\"\n",
    )
    .unwrap();
    refused(
        &["run", "--spec", &p.display().to_string()],
        &["mount /proc/zz (filesystem.mounts[1]): cannot make the mount point"],
    );
}

/// A mount whose destination a link leads into the sandbox's /proc (an
/// image's `/sys -> /proc`, here a --symlink) is refused: it would hide
/// what procfs shows, and the masks over /proc would find nothing. A path
/// written under /proc may still be mounted over (lxcfs's binds).
#[test]
fn a_mount_led_into_proc_by_a_link_or_onto_a_fifo_is_refused() {
    refused(
        &["run", "--symlink", "/proc", "/sys", "--tmpfs", "/sys", "--", "true"],
        &["mount /sys (--tmpfs /sys): the mount point leads into the sandbox's /proc through a symbolic link"],
    );
    // Nor is a file written, or a directory made, through such a link
    // (an image's /etc -> /proc/sys/kernel): onto what the kernel shows.
    refused(
        &[
            "run",
            "--symlink",
            "/proc/sys/kernel",
            "/k",
            "--file",
            "0",
            "/k/hostname",
            "--",
            "true",
        ],
        &["the file leads into the sandbox's /proc through a symbolic link"],
    );
    refused(
        &[
            "run",
            "--symlink",
            "/proc/sys",
            "/k",
            "--dir",
            "/k/kernel",
            "--",
            "true",
        ],
        &["the directory leads into the sandbox's /proc through a symbolic link"],
    );
    // A file mount onto a fifo that is there (an image's) fails; it
    // used to wait for a reader for good.
    let dir = tempdir();
    mkfifo(&dir.path().join("ff"));
    let d = dir.path().display().to_string();
    refused(
        &[
            "run", "--bind", &d, "/d", "--file", "0", "/d/ff", "--", "true",
        ],
        &["file /d/ff (--file 0 /d/ff): /d/ff is there and not a regular file"],
    );
    let r = sh(
        &["--ro-bind", "/etc/hostname", "/proc/sys/kernel/hostname"],
        "cat /proc/sys/kernel/hostname",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, std::fs::read_to_string("/etc/hostname").unwrap());
}

#[test]
fn relative_destination() {
    refused(
        &["run", "--tmpfs", "scratch", "--", "true"],
        &[
            // The flag as typed, not a spec index counting the default view.
            "--tmpfs scratch: ",
            "\"scratch\" is relative",
        ],
    );
}

/// An empty destination (an unset shell variable) is not `/`: binding
/// there does not replace the root, and `--remount-ro ""` does not make
/// it read-only. A device bind onto `/` is refused: the root is nodev.
#[test]
fn an_empty_destination_is_not_the_root() {
    refused(
        &["run", "--tmpfs", "/x", "--bind", "/tmp", "", "--", "true"],
        &["--bind /tmp ''", "must not be empty"],
    );
    refused(
        &["run", "--remount-ro", "", "--", "true"],
        &["--remount-ro ''", "must not be empty"],
    );
    refused(
        &["run", "--dev-bind", "/usr", "/", "--", "true"],
        &["--dev-bind /usr /", "always nodev"],
    );
}

#[test]
fn unknown_capability() {
    refused(
        &["run", "--cap-add", "CAP_TELEPORT", "--", "true"],
        &[
            "--cap-add CAP_TELEPORT",
            "unknown capability \"CAP_TELEPORT\"",
        ],
    );
}

/// A flag that would go unapplied, an image tag that is not there, a
/// truncated spec: each error names what it is about, in words.
#[test]
fn errors_say_what_they_are_about() {
    refused(
        &["run", "--overlay-size", "10M", "--", "true"],
        &["--overlay-size", "neither is given"],
    );
    // A limit's error names its flag, and the one it needs.
    refused(
        &["run", "--swap", "10M", "--", "true"],
        &["--swap: needs --memory"],
    );
    // Its writes go to the directory: the size would go unapplied.
    refused(
        &[
            "run",
            "--rootfs",
            "/",
            "--overlay-dir",
            "/var/tmp/airlock-never-made",
            "--overlay-size",
            "10M",
            "--",
            "true",
        ],
        &["--overlay-size: sizes the tmpfs", "--overlay-dir"],
    );
    assert!(!std::path::Path::new("/var/tmp/airlock-never-made").exists());
    refused(
        &["run", "--cap-add", "ALL", "--", "true"],
        &["--cap-add ALL: name each capability"],
    );
    let dir = tempdir();
    let layout = dir.path().join("lay");
    std::fs::create_dir(&layout).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        r#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .unwrap();
    let tagged = format!("{}:v2", layout.display());
    refused(
        &["run", "--image", &tagged, "--", "true"],
        &["is tagged \"v2\""],
    );
    let spec = dir.path().join("cut.json");
    std::fs::write(&spec, r#"{"process": {"args": ["true"]"#).unwrap();
    let r = output(airlock(&["run", "--spec", spec.to_str().unwrap()]));
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("line 1, column") && !r.stderr.contains('?'),
        "{}",
        r.stderr
    );
}

#[test]
fn malformed_spec_names_line_column_and_field() {
    let dir = tempdir();
    let p = dir.path().join("bad.json");
    std::fs::write(
        &p,
        "{\n  \"process\": {\n    \"args\": [\"true\"],\n    \"uid\": \"root\"\n  }\n}\n",
    )
    .unwrap();
    let e = refused(
        &["run", "--spec", &p.display().to_string()],
        &["line 4", "process.uid"],
    );
    assert!(e.contains("column"), "{e}");
    let t = dir.path().join("bad.toml");
    std::fs::write(&t, "[process]\nargs = [\"true\"]\nfrobnicate = 1\n").unwrap();
    refused(
        &["run", "--spec", &t.display().to_string()],
        &["line 3", "frobnicate"],
    );
}

#[test]
fn missing_spec_file() {
    refused(
        &["run", "--spec", "/no/such/spec.json"],
        &["/no/such/spec.json"],
    );
}

#[test]
fn no_program() {
    refused(&["run"], &["the command (after --)", "no program"]);
}

#[test]
fn missing_rootfs() {
    require_root!();
    refused(
        &["run", "--rootfs", "/no/such/root", "--", "true"],
        &["root /no/such/root", "does not exist"],
    );
}

#[test]
fn unmapped_uid() {
    // A rootless caller's --uid is whatever uid its own is mapped to
    // inside (bubblewrap's --uid), so every uid is mapped there; a root
    // caller's sandbox maps a fixed range.
    require_root!();
    refused(
        &["run", "--uid", "70000", "--", "true"],
        &["--uid", "not in identity.uid_map"],
    );
}

#[test]
fn cwd_missing_in_sandbox() {
    require_root!();
    refused(
        &["run", "--chdir", "/nowhere", "--", "true"],
        &["--chdir", "/nowhere"],
    );
}

#[test]
fn a_umask_beyond_the_permission_bits() {
    let dir = tempdir();
    let p = dir.path().join("spec.json");
    std::fs::write(&p, r#"{"process": {"args": ["true"], "umask": "7777"}}"#).unwrap();
    refused(
        &["run", "--spec", &p.display().to_string()],
        &["process.umask", "0o777"],
    );
}

/// A umask is an octal string, as every mode of a spec: a JSON `77` meant
/// as 077 would be 0o115, and leave the workload's new files writable by
/// others. In both formats (TOML's `0o077` reads as the same number).
#[test]
fn a_umask_given_as_a_number_is_refused() {
    let dir = tempdir();
    for (name, text) in [
        (
            "spec.json",
            r#"{"process": {"args": ["true"], "umask": 77}}"#,
        ),
        ("spec.toml", "[process]\nargs = [\"true\"]\numask = 0o077\n"),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        refused(
            &["run", "--spec", &p.display().to_string()],
            &["process.umask", "is a number", "octal string"],
        );
    }
}

/// Given as a string, the umask is the one the workload gets, and a
/// printed spec writes it so.
#[test]
fn a_umask_string_is_octal() {
    require_root!();
    let dir = tempdir();
    let p = dir.path().join("spec.json");
    let made = output(airlock(&["run", "--print-spec", "--", "sh", "-c", "umask"]));
    let mut spec: serde_json::Value = serde_json::from_str(&made.stdout).unwrap();
    spec["process"]["umask"] = "0027".into();
    std::fs::write(&p, spec.to_string()).unwrap();
    let spec = p.display().to_string();
    let r = output(airlock(&["run", "--spec", &spec]));
    assert_eq!((r.code, r.stdout.trim()), (0, "0027"), "{}", r.stderr);
    let printed = output(airlock(&["run", "--spec", &spec, "--print-spec"]));
    assert!(
        printed.stdout.contains(r#""umask": "0027""#),
        "{}",
        printed.stdout
    );
}

#[test]
fn a_second_cgroup_mount() {
    let dir = tempdir();
    let p = dir.path().join("spec.json");
    let m = r#"{"type": "cgroup", "destination": "/a"}, {"type": "cgroup", "destination": "/b"}"#;
    let spec = format!(r#"{{"process": {{"args": ["true"]}}, "filesystem": {{"mounts": [{m}]}}}}"#);
    std::fs::write(&p, spec).unwrap();
    refused(
        &["run", "--spec", &p.display().to_string()],
        &["filesystem.mounts[1]", "only one cgroup mount"],
    );
}

#[test]
fn rlimit_above_hard_limit() {
    require_root!();
    let dir = tempdir();
    let p = dir.path().join("spec.json");
    std::fs::write(
        &p,
        r#"{"process": {"args": ["true"], "rlimits": [{"resource": "nofile", "soft": 99999999, "hard": 99999999}]},
            "filesystem": {"mounts": [{"type": "bind", "source": "/usr", "destination": "/usr"}]}}"#,
    )
    .unwrap();
    refused(
        &["run", "--spec", &p.display().to_string()],
        &["process.rlimits[0]", "nofile"],
    );
}

/// A flag's `--rlimit` replaces the spec file's limit of the same
/// resource (set in turn, the second could not raise the first's hard
/// limit); a spec that lists one twice is refused by the second entry.
#[test]
fn an_rlimit_flag_replaces_the_spec_files() {
    let dir = tempdir();
    let p = dir.path().join("spec.json");
    std::fs::write(
        &p,
        r#"{"process": {"args": ["sh", "-c", "ulimit -n"], "rlimits": [{"resource": "nofile", "soft": 1024, "hard": 1024}]},
            "filesystem": {"mounts": [{"type": "bind", "source": "/usr", "destination": "/usr"},
                                      {"type": "symlink", "target": "usr/bin", "destination": "/bin"},
                                      {"type": "symlink", "target": "usr/lib", "destination": "/lib"},
                                      {"type": "symlink", "target": "usr/lib64", "destination": "/lib64"}]}}"#,
    )
    .unwrap();
    let spec = p.display().to_string();
    let r = output(airlock(&[
        "run",
        "--spec",
        &spec,
        "--rlimit",
        "nofile=4096",
    ]));
    assert_eq!((r.code, r.stdout.as_str()), (0, "4096\n"), "{}", r.stderr);
    let r = output(airlock(&[
        "run",
        "--rlimit",
        "nofile=10",
        "--rlimit",
        "nofile=20",
        "--",
        "sh",
        "-c",
        "ulimit -n",
    ]));
    assert_eq!((r.code, r.stdout.as_str()), (0, "20\n"), "{}", r.stderr);
    let text = std::fs::read_to_string(&p).unwrap().replace(
        r#"[{"resource": "nofile", "soft": 1024, "hard": 1024}]"#,
        r#"[{"resource": "nofile", "soft": 1024, "hard": 1024}, {"resource": "nofile", "soft": 9, "hard": 9}]"#,
    );
    std::fs::write(&p, text).unwrap();
    refused(
        &["run", "--spec", &spec],
        &["process.rlimits[1].resource: nofile is already limited by process.rlimits[0]"],
    );
}

/// An empty value (an unset shell variable) is refused naming the flag
/// that gave it: an empty source was the current directory, bound
/// writable. A flag that sets a field of the next mount (`--size`,
/// `--perms`), and the flags that set a top-level field, are named too.
#[test]
fn empty_and_bad_values_are_named_by_their_flag() {
    for (args, named) in [
        (&["--bind", "", "/x"][..], "--bind '' /x: must not be empty"),
        (
            &["--ro-bind-try", "", "/x", "--bind", "", "/y"][..],
            "--bind '' /y: must not be empty",
        ),
        (&["--rootfs", ""][..], "--rootfs: must not be empty"),
        (
            &["--hostname", ""][..],
            "--hostname: \"\" is not a host name",
        ),
        (
            &["--timeout", "99999999999"][..],
            "--timeout: 99999999999 is not",
        ),
        (&["--setenv", "", "v"][..], "--setenv '': a variable name"),
        (
            &["--tmpfs", "/x", "--size", "0", "--tmpfs", "/y"][..],
            "--size 0: 0 bytes",
        ),
        (
            &["--perms", "4755", "--dir", "/x"][..],
            "--perms 4755: setuid and setgid",
        ),
        // The mode --chmod set is named by it, not by the flag before.
        (
            &["--perms", "0700", "--dir", "/x", "--chmod", "4755", "/x"][..],
            "--chmod 4755 /x: setuid and setgid",
        ),
        (
            &["--dir", "/x", "--chmod", "4755", "/x"][..],
            "--chmod 4755 /x: setuid and setgid",
        ),
    ] {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.extend(["--", "true"]);
        refused(&all, &[named]);
    }
}

#[test]
fn a_directory_as_stdin_is_refused() {
    require_root!();
    // A directory fd would lead the workload back into the host's tree
    // through openat("..."), past every mount.
    let dir = std::fs::File::open("/etc").unwrap();
    let mut c = airlock(&["run", "--", "sh", "-c", "echo ran"]);
    c.stdin(std::process::Stdio::from(dir));
    let r = output(c);
    assert_eq!(r.code, 125, "{} {}", r.stdout, r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains("stdin (fd 0) is a directory"),
        "{}",
        r.stderr
    );
}

/// A program that exists but whose loader or `#!` interpreter the
/// sandbox lacks is named with what is missing, exit 126, not "not found".
#[test]
fn a_missing_loader_or_interpreter_is_named() {
    // /usr but no /lib64 (nor /lib): the dynamic loader is missing.
    let usr_only = ["run", "--no-default-view", "--ro-bind", "/usr", "/usr"];
    let mut args = usr_only.to_vec();
    args.extend(["--", "/usr/bin/env", "true"]);
    let r = output(airlock(&args));
    assert_eq!(r.code, 126, "{}", r.stderr);
    assert!(
        r.stderr.contains("/usr/bin/env exists")
            && r.stderr.contains("the interpreter it needs, \"/")
            && r.stderr.contains("ld-linux"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("not found"), "{}", r.stderr);
    // A script whose #! names a program the sandbox does not have.
    let dir = tempdir();
    let script = dir.path().join("job");
    std::fs::write(&script, "#!/opt/no-such-shell -e\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let s = script.display().to_string();
    let r = output(airlock(&["run", "--ro-bind", &s, "/job", "--", "/job"]));
    assert_eq!(r.code, 126, "{}", r.stderr);
    assert!(
        r.stderr.contains("/job exists") && r.stderr.contains("/opt/no-such-shell"),
        "{}",
        r.stderr
    );
    // Saved with CRLF, a script names "/bin/sh\r", which is not /bin/sh.
    std::fs::write(&script, "#!/bin/sh\r\necho hi\r\n").unwrap();
    let r = output(airlock(&["run", "--ro-bind", &s, "/job", "--", "/job"]));
    assert_eq!(r.code, 126, "{}", r.stderr);
    assert!(r.stderr.contains(r#""/bin/sh\r""#), "{}", r.stderr);
    // A program that is really not there is still "not found", 127.
    let r = output(airlock(&["run", "--", "/usr/bin/no-such-program"]));
    assert_eq!(r.code, 127, "{}", r.stderr);
}

#[test]
fn an_error_longer_than_a_report_packet_arrives_cut_and_marked() {
    // A 100 KB program name: the error names it, and is longer than the
    // 64 KiB a report packet may be. It used to arrive as "garbled
    // report", or not at all.
    let name = "a".repeat(100_000);
    let r = output(airlock(&["run", "--", &name]));
    assert!(r.code == 126 || r.code == 127, "{}", r.code);
    assert!(
        r.stderr.contains("aaaaaaaaaa"),
        "no error at all: {:?}",
        r.stderr
    );
    assert!(
        r.stderr.contains("more bytes cut"),
        "{}",
        &r.stderr[r.stderr.len().saturating_sub(300)..]
    );
    assert!(r.stderr.len() < 64 << 10, "{}", r.stderr.len());
    // Its neighbour just under the limit arrives whole.
    let name = "b".repeat(50_000);
    let r = output(airlock(&["run", "--", &name]));
    assert!(
        r.stderr.contains(&name) && !r.stderr.contains("more bytes cut"),
        "{}",
        r.stderr.len()
    );
}

#[test]
fn a_report_that_cannot_be_written_is_refused_before_the_workload_runs() {
    require_root!();
    let dir = tempdir();
    let marker = dir.path().join("ran");
    let touch = format!("touch {}", marker.display());
    refused(
        &[
            "run",
            "--bind",
            dir.path().to_str().unwrap(),
            dir.path().to_str().unwrap(),
            "--report",
            "/no/such/dir/report.json",
            "--",
            "sh",
            "-c",
            &touch,
        ],
        &["--report /no/such/dir/report.json", "No such file"],
    );
    assert!(!marker.exists(), "the workload ran before the refusal");
    // A report path that can be written, in a run refused later: the file
    // made to find that out does not stay.
    let report = dir.path().join("report.json");
    refused(
        &[
            "run",
            "--report",
            report.to_str().unwrap(),
            "--ro-bind",
            "/no/such/dir",
            "/data",
            "--",
            "true",
        ],
        &["source /no/such/dir does not exist"],
    );
    assert!(!report.exists(), "the refused run left its report file");
    // With -d nothing would ever write it: refused, nothing started.
    refused(
        &[
            "run",
            "-d",
            "--report",
            report.to_str().unwrap(),
            "--",
            "true",
        ],
        &["--report", "with -d use `airlock wait`"],
    );
}

#[test]
fn scheduling_out_of_range_or_unavailable() {
    refused(
        &["run", "--nice", "30", "--", "true"],
        &["--nice", "30 is not a nice value (-20 to 19)"],
    );
    refused(
        &["run", "--sched", "fifo", "--", "true"],
        &["--sched", "needs a priority from 1 to 99"],
    );
    refused(
        &["run", "--io-priority", "idle:3", "--", "true"],
        &["--io-priority", "the idle class has no levels"],
    );
    refused(
        &["run", "--cpu-affinity", "3-1", "--", "true"],
        &["--cpu-affinity", "runs backwards"],
    );
    // Well formed, but no CPU of this host: found only when it is set, on
    // PID 1 before the workload exists, which then leaves nothing.
    refused(
        &["run", "--cpu-affinity", "1000", "--", "true"],
        &["--cpu-affinity", "none of the CPUs 1000"],
    );
}

#[test]
fn an_affinity_outside_the_cpuset_leaves_no_cgroup() {
    require_root!();
    // CPU 1 must be one the host has, or the cpuset is not what refuses it.
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let cpus = ours
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string();
    if !airlock::spec::scheduling::affinity_cpus(&cpus).contains(&1) {
        eprintln!("SKIPPED: this test needs CPUs 0 and 1 (it may use {cpus})");
        return;
    }
    let before = leftover_cgroups();
    refused(
        &[
            "run",
            "--cpuset-cpus",
            "0",
            "--cpu-affinity",
            "1",
            "--",
            "true",
        ],
        &["--cpu-affinity", "none of the CPUs 1", "within its cpuset"],
    );
    assert_no_cgroup_left(&before);
}

/// What would go unapplied is refused, naming the field: a tmpfs of size
/// 0 (the kernel's "no limit"), port rules with Landlock off, a hostname
/// or clocks the host's own namespaces would keep, a personality that
/// only queries, a clock beyond the kernel's range.
#[test]
fn settings_that_would_go_unapplied_are_refused() {
    refused(
        &["run", "--size", "0", "--tmpfs", "/scratch", "--", "true"],
        &["--size 0: ", "size 0 for one without a limit"],
    );
    refused(
        &[
            "run",
            "--landlock",
            "off",
            "--tcp-bind",
            "8080",
            "--",
            "true",
        ],
        &["--tcp-bind", "landlock.mode is off"],
    );
    refused(
        &["run", "--share-uts", "--hostname", "web", "--", "true"],
        &["hostname", "needs a UTS namespace"],
    );
    // The default name typed is asked for too: not left unset.
    refused(
        &["run", "--share-uts", "--hostname", "airlock", "--", "true"],
        &["--hostname: \"airlock\" needs a UTS namespace"],
    );
    // A joined one (a pod's) keeps the name its owner gave it.
    refused(
        &[
            "run",
            "--join",
            "uts=/proc/self/ns/uts",
            "--hostname",
            "web",
            "--",
            "true",
        ],
        &["hostname: \"web\" cannot be set in a joined UTS namespace (--join uts)"],
    );
    let dir = tempdir();
    for (spec, says) in [
        (
            r#"{"process": {"args": ["true"]}, "namespaces": {"time": false}, "time": {"boottime": 100}}"#,
            "time.boottime: needs a time namespace",
        ),
        (
            r#"{"process": {"args": ["true"], "personality": 4294967295}}"#,
            "process.personality: 0xffffffff",
        ),
        (
            r#"{"process": {"args": ["true"]}, "time": {"boottime": 100000000000}}"#,
            "time.boottime: 100000000000 is beyond",
        ),
        (
            r#"{"process": {"args": ["true"]}, "filesystem": {"root": {"type": "tmpfs", "size": 0}}}"#,
            "filesystem.root.size: 0 bytes",
        ),
        (
            r#"{"process": {"args": ["true"]}, "resources": {"cpus": 1, "cpu_period": 999}}"#,
            "resources.cpu_period: 999 is not a period",
        ),
        (
            r#"{"process": {"args": ["true"]}, "resources": {"cpu_period": 100000}}"#,
            "resources.cpu_period: a period without a quota",
        ),
        (
            r#"{"process": {"args": ["true"]}, "resources": {"cpus": 0.005}}"#,
            "resources.cpus: 0.005 is not a CPU count (0.01 to",
        ),
    ] {
        let path = dir.path().join("spec.json");
        std::fs::write(&path, spec).unwrap();
        refused(&["run", "--spec", path.to_str().unwrap()], &[says]);
    }
}

/// A working directory whose path reaches /proc, or goes through one of
/// its magic links, is refused once resolved (runc's CVE-2024-21626
/// class), and a low `nofile` is the
/// workload's limit, not a failure of airlock's own setup.
#[test]
fn a_cwd_resolving_into_proc_and_a_low_nofile() {
    refused(
        &["run", "--chdir", "/dev/fd", "--", "true"],
        &["--chdir", "/dev/fd resolves into /proc"],
    );
    // A link to a magic one leads into a process's tree (here our own
    // root's /usr, which a plain path may reach; another's would not be).
    refused(
        &[
            "run",
            "--symlink",
            "/proc/self/root/usr",
            "/here",
            "--chdir",
            "/here",
            "--",
            "true",
        ],
        &["--chdir: /here goes through a /proc magic link"],
    );
    let r = sh(&["--rlimit", "nofile=3"], "true");
    assert_ne!(r.code, 125, "{}", r.stderr);
    assert!(!r.stderr.contains("airlock"), "{}", r.stderr);
    let r = sh(&["--rlimit", "nofile=16"], "ulimit -n");
    assert_eq!((r.code, r.stdout.as_str()), (0, "16\n"), "{}", r.stderr);
}

/// Errors name the flag the caller wrote, not the library's field:
/// `--allow-unsafe`, a `--seccomp-profile` file's field, and exec's
/// `--env`, `--user` and `--workdir`.
#[test]
fn errors_name_the_flags_that_were_written() {
    refused(
        &["run", "--allow-unsafe", "bogus", "--", "true"],
        &["--allow-unsafe bogus: unknown guardrail code"],
    );
    let dir = tempdir();
    let profile = dir.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": "0", "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
    )
    .unwrap();
    refused(
        &[
            "run",
            "--seccomp-profile",
            &profile.display().to_string(),
            "--",
            "true",
        ],
        &["--seccomp-profile", "field `syscalls[0].args[0].index`"],
    );
}

#[test]
fn exec_flags_are_named_in_their_errors() {
    require_root!();
    let name = format!("exec-flags-{}", std::process::id());
    // Links the workload made to magic ones (runc's CVE-2024-21626
    // through exec): the exec's cwd would be the runner's, or PID 1's.
    let started = output(airlock(&[
        "run",
        "-d",
        "--name",
        &name,
        "--",
        "sh",
        "-c",
        "ln -s /proc/self/cwd /tmp/self; ln -s /proc/1/cwd /tmp/init; sleep 100",
    ]));
    assert_eq!(started.code, 0, "{}", started.stderr);
    let made = wait_until(10, || {
        output(airlock(&["exec", &name, "--", "test", "-L", "/tmp/init"])).code == 0
    });
    assert!(made, "the links were not made");
    let cases: [(&[&str], &str); 6] = [
        (
            &["--env", "=x"],
            "--env \"=x\": a variable name must be non-empty",
        ),
        (
            &["--user", "4294967295"],
            "--user \"4294967295\": 4294967295 is (uid_t)-1",
        ),
        (&["--workdir", "rel"], "--workdir \"rel\":"),
        (
            &["--workdir", "/proc/self"],
            "--workdir \"/proc/self\": must not be under /proc",
        ),
        (
            &["--workdir", "/tmp/self"],
            "/tmp/self goes through a /proc magic link",
        ),
        // Refused either way: as a magic link, or as not ours to follow
        // (PID 1 is not dumpable).
        (&["--workdir", "/tmp/init"], "/tmp/init"),
    ];
    let mut failures = Vec::new();
    for (flags, needle) in cases {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[&name, "--", "true"]);
        let r = output(airlock(&args));
        if r.code != 125 || !r.stderr.contains(needle) {
            failures.push(format!("{flags:?}: {} {}", r.code, r.stderr));
        }
    }
    let _ = output(airlock(&["rm", "-f", &name]));
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A pid join path to another kind of namespace is refused by its kind,
/// as every other join is (it failed later, at its owner's maps, with
/// "Permission denied").
#[test]
fn a_pid_join_of_another_kind_of_namespace_is_named() {
    require_root!();
    refused(
        &["run", "--join", "pid=/proc/self/ns/net", "--", "true"],
        &["/proc/self/ns/net is not a pid namespace"],
    );
}
