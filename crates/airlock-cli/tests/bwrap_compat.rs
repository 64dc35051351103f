//! A bubblewrap command line ports by renaming the program: bwrap's
//! spellings run real sandboxes and the property they name holds inside;
//! what airlock has no feature for is refused by name (125); a typo is an
//! error with a suggestion, never the program.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// `airlock ARGS` run by sh, so that a test can hand it a file descriptor
/// (`5<FILE`), as a bwrap user would.
fn airlock_sh(args: &str) -> Run {
    airlock_in("sh", args)
}

/// Through bash, whose redirections reach fds past 9 (bubblewrap's
/// examples use 11 and 12).
fn airlock_bash(args: &str) -> Run {
    airlock_in("bash", args)
}

fn airlock_in(shell: &str, args: &str) -> Run {
    let mut c = Command::new(shell);
    c.arg("-c")
        .arg(format!("exec {} {args}", airlock_bin().display()))
        .stdin(std::process::Stdio::null());
    output(c)
}

#[test]
fn a_typo_is_an_error_with_a_suggestion_not_the_program() {
    let r = output(airlock(&["run", "--ro-bnd", "/", "/", "--", "true"]));
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("'--ro-bnd'"), "{}", r.stderr);
    assert!(
        r.stderr.contains("similar argument exists: '--ro-bind'"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("PATH"), "{}", r.stderr);
    // After `--`, an option-like word is the program's, as before.
    let r = output(airlock(&[
        "run", "--", "sh", "-c", "echo $1", "x", "--ro-bnd",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "--ro-bnd");
}

#[test]
fn unshare_flags_are_accepted_and_the_network_is_the_sandboxs_own() {
    let r = sh(
        &[
            "--unshare-all",
            "--unshare-user",
            "--unshare-user-try",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup",
            "--unshare-cgroup-try",
            "--new-session",
            "--die-with-parent",
            "--as-pid-1",
        ],
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; echo pid=$$",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "lo\npid=1\n", "{}", r.stderr);
}

/// The spec `airlock run --print-spec FLAGS -- true` prints.
fn print_spec(flags: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", "--print-spec"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "true"]);
    let r = output(airlock(&args));
    assert_eq!(r.code, 0, "{flags:?}: {}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

/// Between a `--share-*` and an `--unshare-*` flag (or `--unshare-all`),
/// and between `--keep-session` and `--new-session`, the last word counts,
/// as in bubblewrap; an unshare takes back a spec file's sharing too. A
/// kind both joined and shared or unshared is refused by name.
#[test]
fn the_last_of_share_and_unshare_counts() {
    let spec = print_spec;
    let net = |flags: &[&str]| spec(flags)["namespaces"]["net"].clone();
    assert_eq!(net(&["--unshare-all", "--share-net"]), false);
    assert_eq!(net(&["--share-net", "--unshare-all"]), true);
    assert_eq!(net(&["--share-net", "--unshare-net"]), true);
    assert_eq!(net(&["--unshare-net", "--share-net"]), false);
    // Repeated, as bubblewrap command lines do.
    assert_eq!(net(&["--share-net", "--unshare-net", "--share-net"]), false);
    assert_eq!(
        net(&["--unshare-net", "--share-net", "--unshare-net"]),
        true
    );
    assert_eq!(net(&["--share-net", "--share-net"]), false);
    let s = spec(&[
        "--die-with-parent",
        "--die-with-parent",
        "--setenv",
        "A",
        "b",
        "--clearenv",
        "--setenv",
        "C",
        "d",
        "--clearenv",
    ]);
    assert_eq!(s["process"]["env"], serde_json::json!({}), "{s}");
    // --unshare-all has no time namespace to take back.
    let s = spec(&["--share-time", "--share-pid", "--unshare-all"]);
    assert_eq!(s["namespaces"]["time"], false, "{s}");
    assert_eq!(s["namespaces"]["pid"], true, "{s}");
    let session = |flags: &[&str]| spec(flags)["new_session"].clone();
    assert_eq!(session(&["--keep-session", "--new-session"]), true);
    assert_eq!(session(&["--new-session", "--keep-session"]), false);

    // A spec file's sharing, taken back.
    let dir = tempdir();
    let file = dir.path().join("shared.json");
    let shared = spec(&["--share-net", "--share-ipc", "--keep-session"]);
    std::fs::write(&file, shared.to_string()).unwrap();
    let f = file.to_str().unwrap();
    let s = spec(&["--spec", f, "--unshare-net", "--new-session"]);
    assert_eq!(s["namespaces"]["net"], true, "{s}");
    assert_eq!(s["namespaces"]["ipc"], false, "{s}");
    assert_eq!(s["new_session"], true, "{s}");

    for (flags, says) in [
        (
            vec!["--share-net", "--join", "net=/proc/self/ns/net"],
            "--share-net: the net namespace is joined by path",
        ),
        (
            vec!["--join", "ipc=/proc/self/ns/ipc", "--unshare-ipc"],
            "--unshare-ipc: the ipc namespace is joined by path",
        ),
        (
            vec![
                "--join",
                "uts=/proc/self/ns/uts",
                "--join",
                "uts=/proc/self/ns/uts",
            ],
            "the uts namespace is joined twice",
        ),
    ] {
        let mut args = vec!["run", "--print-spec"];
        args.extend_from_slice(&flags);
        args.extend_from_slice(&["--", "true"]);
        let r = output(airlock(&args));
        assert_eq!(r.code, 125, "{flags:?}: {}", r.stdout);
        assert!(r.stderr.contains(says), "{flags:?}: {}", r.stderr);
    }
}

/// --setenv, --unsetenv and --clearenv apply in the order given, as do
/// --cap-add and --cap-drop, as in bubblewrap.
#[test]
fn env_and_capability_flags_apply_in_order() {
    let process = |flags: &[&str]| -> serde_json::Value {
        let spec = print_spec(flags);
        serde_json::json!({
            "env": spec["process"]["env"],
            "unset": spec["process"]["unset_env"],
            "caps": spec["capabilities"],
        })
    };
    let p = process(&["--setenv", "TOKEN", "x", "--clearenv"]);
    assert_eq!(p["env"].get("TOKEN"), None, "{p}");
    let p = process(&["--clearenv", "--setenv", "A", "1"]);
    assert_eq!(p["env"]["A"], "1", "{p}");
    let p = process(&["--unsetenv", "A", "--setenv", "A", "2"]);
    assert_eq!(p["env"]["A"], "2", "{p}");
    assert!(!p["unset"].to_string().contains("\"A\""), "{p}");
    let p = process(&["--setenv", "A", "2", "--unsetenv", "A"]);
    assert_eq!(p["env"].get("A"), None, "{p}");
    let p = process(&["--cap-drop", "ALL", "--cap-add", "CAP_NET_BIND_SERVICE"]);
    assert_eq!(
        p["caps"],
        serde_json::json!(["CAP_NET_BIND_SERVICE"]),
        "{p}"
    );
    let p = process(&["--cap-add", "CAP_NET_BIND_SERVICE", "--cap-drop", "ALL"]);
    assert_eq!(p["caps"], serde_json::json!([]), "{p}");
}

/// The inherited environment's PWD names the directory the workload is
/// in, as bubblewrap sets it, not the caller's; a cleared one has it
/// too, as bubblewrap's has.
#[test]
fn pwd_names_the_sandboxs_working_directory() {
    let pwd = |flags: &[&str]| {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        // Not through a shell: sh would mend a PWD that names another
        // directory.
        args.extend_from_slice(&["--", "printenv", "PWD"]);
        let mut c = airlock(&args);
        c.current_dir("/usr/share").env("PWD", "/usr/share");
        let r = output(c);
        assert_eq!(r.code, 0, "{flags:?}: {}", r.stderr);
        r.stdout.trim().to_string()
    };
    assert_eq!(pwd(&[]), "/");
    assert_eq!(pwd(&["--chdir", "/etc"]), "/etc");
    // Set by name, the caller's value stands.
    assert_eq!(pwd(&["--setenv", "PWD", "/x"]), "/x");
    // bubblewrap sets it after --clearenv too: the one variable left.
    assert_eq!(pwd(&["--clearenv"]), "/");
    assert_eq!(pwd(&["--chdir", "/etc", "--clearenv"]), "/etc");
    let r = output(airlock(&["run", "--clearenv", "--", "/usr/bin/env"]));
    assert_eq!((r.code, r.stdout.as_str()), (0, "PWD=/\n"), "{}", r.stderr);
}

#[test]
fn try_binds_skip_a_missing_source_and_bind_an_existing_one() {
    let dir = shared_dir();
    std::fs::write(dir.path().join("f"), "here\n").unwrap();
    let src = dir.path().display().to_string();
    // A dangling link is missing too, as bubblewrap's stat() finds it.
    let dangling = dir.path().join("dangling");
    std::os::unix::fs::symlink("/nonexistent/airlock", &dangling).unwrap();
    let r = sh(
        &[
            "--ro-bind-try",
            dangling.to_str().unwrap(),
            "/x",
            "--bind-try",
            "/nonexistent/airlock",
            "/y",
            "--dev-bind-try",
            "/nonexistent/airlock",
            "/z",
            "--ro-bind-try",
            &src,
            "/data",
        ],
        "cat /data/f; test -e /x || echo no-x; test -e /y || echo no-y; test -e /z || echo no-z; touch /data/g 2>/dev/null || echo ro",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "here\nno-x\nno-y\nno-z\nro\n");
    assert!(!dir.path().join("g").exists());
    // Only a missing source is skipped: one stat() fails on otherwise (a
    // loop of links here) fails the start, naming the flag, as bubblewrap
    // fails ("Can't get type of source").
    let looped = dir.path().join("loop");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    let r = sh(&["--ro-bind-try", looped.to_str().unwrap(), "/l"], "true");
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("--ro-bind-try"), "{}", r.stderr);
}

#[test]
fn perms_size_and_chmod_set_what_they_name() {
    let r = sh(
        &[
            "--perms", "0700", "--dir", "/d", "--size", "1048576", "--tmpfs", "/t", "--dir", "/e",
            "--chmod", "0750", "/e", "--perms", "01777", "--tmpfs", "/u",
        ],
        "stat -c %a /d /e /u; df -k /t | tail -1 | awk '{print $2}'",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "700\n750\n1777\n1024\n");
    // Without --perms, a --dir and the parents it makes are 0755 whatever
    // the caller's umask, as bubblewrap's setup runs under umask 0 (077
    // made them 0700).
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!(
            "umask 077; exec {} run --dir /d --dir /tmp/e/f -- stat -c %a /d /tmp/e /tmp/e/f",
            airlock_bin().display()
        ))
        .stdin(std::process::Stdio::null());
    let r = output(c);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "755\n755\n755\n"),
        "{}",
        r.stderr
    );
    // --perms before something it cannot apply to is an error naming it.
    let r = sh(&["--perms", "0700", "--proc", "/p"], "true");
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("--perms 0700") && r.stderr.contains("--proc /p"),
        "{}",
        r.stderr
    );
    // --chmod of a path airlock did not create: refused, with the way out.
    let r = sh(&["--chmod", "0700", "/usr"], "true");
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("--chmod 0700 /usr"), "{}", r.stderr);
    // Nor of one a later mount covers: the mode would go on what is hidden.
    for covered in [
        &[
            "--dir",
            "/x",
            "--ro-bind",
            "/usr",
            "/x",
            "--chmod",
            "0700",
            "/x",
        ][..],
        &["--dir", "/x/y", "--tmpfs", "/x", "--chmod", "0700", "/x/y"],
    ] {
        let r = sh(covered, "true");
        assert_eq!(r.code, 125, "{covered:?}");
        assert!(r.stderr.contains("--chmod 0700 /x"), "{}", r.stderr);
    }
    // A --dir above it mounts nothing, so hides nothing.
    let r = sh(
        &["--dir", "/x/y", "--dir", "/x", "--chmod", "0700", "/x/y"],
        "stat -c %a /x/y",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "700\n");
    // As bubblewrap: --perms or --size twice for one flag, or before a
    // --chmod, is an error naming both.
    for (flags, says) in [
        (
            &["--perms", "0700", "--perms", "0755", "--dir", "/x"][..],
            "--perms 0700: given twice for the same flag (--perms 0755)",
        ),
        (
            &["--size", "1024", "--size", "2048", "--tmpfs", "/x"],
            "--size 1024: given twice for the same flag (--size 2048)",
        ),
        (
            &[
                "--dir", "/d", "--perms", "0700", "--chmod", "0755", "/d", "--dir", "/e",
            ],
            "--perms 0700: applies to the next flag that makes a file, not to --chmod 0755 /d",
        ),
    ] {
        let r = sh(flags, "true");
        assert_eq!(r.code, 125, "{flags:?}");
        assert!(r.stderr.contains(says), "{flags:?}: {}", r.stderr);
    }
}

/// As with bubblewrap, --perms and --file give their mode to what they
/// make, never to a host directory or file already there under a
/// writable bind (a 0600 key left world-readable, a 0700 directory
/// opened to all): that one is rewritten and keeps its own.
#[test]
fn perms_and_file_leave_the_mode_of_what_is_there() {
    let dir = shared_dir();
    let d = dir.path();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::set_permissions(d.join("sub"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(d.join("key"), "old\n").unwrap();
    std::fs::set_permissions(d.join("key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(d.join("content"), "new\n").unwrap();
    let r = airlock_sh(&format!(
        "run --bind {h} /data --perms 0777 --dir /data/sub --perms 0750 --dir /data/made \
         --file 3 /data/key --file 4 /data/fresh -- true 3<{h}/content 4<{h}/content",
        h = d.display()
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mode = |name: &str| {
        std::fs::metadata(d.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("sub"), 0o700);
    assert_eq!(mode("key"), 0o600);
    assert_eq!(std::fs::read_to_string(d.join("key")).unwrap(), "new\n");
    assert_eq!(mode("made"), 0o750);
    assert_eq!(mode("fresh"), 0o644);
    // --chmod is asked of what is there, as bubblewrap's chmod(2).
    let r = airlock_sh(&format!(
        "run --bind {h} /data --dir /data/sub --chmod 0750 /data/sub \
         --file 3 /data/key --chmod 0640 /data/key -- true 3<{h}/content",
        h = d.display()
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(mode("sub"), 0o750);
    assert_eq!(mode("key"), 0o640);
}

#[test]
fn file_data_and_args_come_from_file_descriptors() {
    let dir = shared_dir();
    let content = dir.path().join("content");
    std::fs::write(&content, "from fd\n").unwrap();
    let args = dir.path().join("args");
    std::fs::write(&args, b"--setenv\0GREETING\0hello there\0").unwrap();
    let c = content.display();
    let r = airlock_sh(&format!(
        "run --file 5 /f --ro-bind-data 6 /tmp/ro --bind-data 7 /tmp/rw --bind-data 8 /etc/passwd -- sh -c 'cat /f /tmp/ro /tmp/rw; stat -c %a /tmp/ro; echo x >> /tmp/rw && echo rw-ok; echo x >> /tmp/ro 2>/dev/null || echo ro-refused; echo x >> /etc/passwd && echo etc-rw-ok' 5<{c} 6<{c} 7<{c} 8<{c}"
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Writable where nothing around it is (the default view's /etc):
    // Landlock lets the workload write the file it was given.
    assert_eq!(
        r.stdout, "from fd\nfrom fd\nfrom fd\n600\nrw-ok\nro-refused\netc-rw-ok\n",
        "{}",
        r.stderr
    );
    let r = airlock_sh(&format!(
        "run --args 5 -- sh -c 'echo \"$GREETING\"' 5<{}",
        args.display()
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "hello there\n");
    // Read from where the descriptor stands, as bubblewrap reads it: the
    // first line was read before airlock got it.
    let lines = dir.path().join("lines");
    std::fs::write(&lines, "read already\nleft\n").unwrap();
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!(
            "exec 5<{}; read -r skip <&5; exec {} run --file 5 /f -- cat /f",
            lines.display(),
            airlock_bin().display()
        ))
        .stdin(std::process::Stdio::null());
    let r = output(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "left\n", "{}", r.stderr);
    // A descriptor that is not open is an error naming the flag.
    let r = airlock_sh("run --file 9 /f -- true");
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("--file 9 /f"), "{}", r.stderr);
    // Standard input is read once. Given as a file's content it is that
    // file's; given to the spec too, the second reader is refused by name
    // rather than handed an empty file.
    let r = airlock_sh(&format!("run --file 0 /f -- cat /f <{}", content.display()));
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "from fd\n"),
        "{}",
        r.stderr
    );
    let spec = dir.path().join("spec.json");
    std::fs::write(&spec, "{}").unwrap();
    let r = airlock_sh(&format!(
        "run --spec - --file 0 /f -- cat /f <{}",
        spec.display()
    ));
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("--file 0 /f: standard input was already read for --spec -"),
        "{}",
        r.stderr
    );
    let r = airlock_sh(&format!(
        "run --args 0 --spec - -- true <{}",
        args.display()
    ));
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("reading the spec from stdin: standard input was already read for --args 0"),
        "{}",
        r.stderr
    );
}

/// `sh -c LINE`, as the test user (`as_user`) or as we are: a line that
/// hands airlock fds by redirection.
fn shell_line(as_user: bool, line: &str) -> Run {
    let mut cmd = Command::new("setpriv");
    match as_user {
        true => cmd.args([
            format!("--reuid={USER}"),
            format!("--regid={USER}"),
            "--clear-groups".into(),
        ]),
        false => cmd.arg("--"),
    };
    cmd.args(["sh", "-c", line])
        .stdin(std::process::Stdio::null());
    output(cmd)
}

/// --ro-bind-data is read-only where it is in the order, as bubblewrap
/// makes it: a writable bind given after it over the same path stays
/// writable (it was made read-only with the paths at the end).
#[test]
fn a_bind_after_ro_bind_data_keeps_its_own_mode() {
    let dir = shared_dir();
    let host = dir.path().join("host-file");
    for as_user in callers() {
        std::fs::write(&host, "host\n").unwrap();
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o666)).unwrap();
        let line = format!(
            "exec {} run --ro-bind-data 6 /x --bind {h} /x -- sh -c 'echo written > /x' 6</dev/null",
            airlock_bin().display(),
            h = host.display(),
        );
        let r = shell_line(as_user, &line);
        assert_eq!(r.code, 0, "as user {as_user}: {}", r.stderr);
        assert_eq!(std::fs::read_to_string(&host).unwrap(), "written\n");
    }
}

/// --ro-bind-data and --bind-data bind a file of their own over the
/// destination, as bubblewrap's do: the default view's read-only /etc gets
/// its own passwd, and a host file under a writable bind is not written.
#[test]
fn bind_data_is_bound_over_its_destination() {
    let dir = shared_dir();
    let content = dir.path().join("content");
    std::fs::write(&content, "u:x:0:0::/:/bin/sh\n").unwrap();
    std::fs::set_permissions(&content, std::fs::Permissions::from_mode(0o644)).unwrap();
    let host = dir.path().join("host-file");
    for as_user in callers() {
        std::fs::write(&host, "host\n").unwrap();
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o666)).unwrap();
        let line = format!(
            "exec {} run --ro-bind-data 6 /etc/passwd --bind {h} /data/f --bind-data 7 /data/f -- \
             sh -c 'cat /etc/passwd /data/f; echo more >> /data/f; echo x >> /etc/passwd || echo ro' \
             6<{c} 7<{c}",
            airlock_bin().display(),
            h = host.display(),
            c = content.display()
        );
        let r = shell_line(as_user, &line);
        assert_eq!(r.code, 0, "as user {as_user}: {}", r.stderr);
        assert_eq!(
            r.stdout, "u:x:0:0::/:/bin/sh\nu:x:0:0::/:/bin/sh\nro\n",
            "as user {as_user}: {}",
            r.stderr
        );
        assert_eq!(std::fs::read_to_string(&host).unwrap(), "host\n");
    }
}

#[test]
fn a_bind_onto_root_is_judged_like_rootfs() {
    for flag in ["--ro-bind", "--bind"] {
        let r = output(airlock(&["run", flag, "/", "/", "--", "true"]));
        assert_eq!(r.code, 125, "{flag}: {}", r.stderr);
        assert!(
            r.stderr
                .contains(&format!("error[host-rootfs]: {flag} / /")),
            "{flag}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("nothing was started"), "{}", r.stderr);
    }
    let r = output(airlock(&["run", "--rootfs", "/", "--", "true"]));
    assert!(
        r.stderr.contains("error[host-rootfs]: --rootfs /"),
        "{}",
        r.stderr
    );
    // Not first: it would hide the mounts before it.
    let r = output(airlock(&[
        "run",
        "--tmpfs",
        "/t",
        "--ro-bind",
        "/",
        "/",
        "--",
        "true",
    ]));
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("before the other mount flags"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_bubblewrap_readme_example_runs_renamed() {
    // bubblewrap's README example, with `bwrap` renamed and nothing else
    // (bar the relative `var/tmp`, which airlock refuses on purpose, below).
    // It mounts its own /usr, so it starts empty as it would in bubblewrap.
    let dir = shared_dir();
    let passwd = dir.path().join("passwd");
    std::fs::write(&passwd, "me:x:1000:1000::/:/bin/sh\n").unwrap();
    let group = dir.path().join("group");
    std::fs::write(&group, "me:x:1000:\n").unwrap();
    let mut links = String::new();
    for d in ["lib", "lib64", "bin", "sbin"] {
        if std::fs::symlink_metadata(format!("/usr/{d}")).is_ok() {
            links += &format!(" --symlink usr/{d} /{d}");
        }
    }
    let r = airlock_bash(&format!(
        "run --ro-bind /usr /usr --dir /tmp --dir /var --symlink ../tmp /var/tmp --proc /proc --dev /dev \
         --ro-bind-try /etc/resolv.conf /etc/resolv.conf{links} --chdir / --unshare-all --share-net --die-with-parent \
         --dir /run/user/1000 --setenv XDG_RUNTIME_DIR /run/user/1000 --setenv PS1 'bwrap-demo$ ' \
         --file 11 /etc/passwd --file 12 /etc/group \
         /bin/sh -c 'cat /etc/passwd; echo $XDG_RUNTIME_DIR; readlink /var/tmp; test -e /etc/hostname || echo no-host-etc' 11<{} 12<{}",
        passwd.display(),
        group.display()
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout, "me:x:1000:1000::/:/bin/sh\n/run/user/1000\n../tmp\nno-host-etc\n",
        "{}",
        r.stderr
    );
    let r = output(airlock(&[
        "run",
        "--symlink",
        "../tmp",
        "var/tmp",
        "--",
        "true",
    ]));
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("--symlink ../tmp var/tmp") && r.stderr.contains("absolute"),
        "{}",
        r.stderr
    );
}

#[test]
fn flags_airlock_has_no_feature_for_are_refused_by_name() {
    for (args, says) in [
        (vec!["--userns2", "3"], "switching user namespace"),
        (vec!["--userns", "3"], "makes the sandbox's own"),
        (vec!["--pidns", "3"], "--join pid=PATH"),
        (vec!["--userns-block-fd", "3"], "--block-fd waits"),
        (vec!["--level-prefix"], "level prefix"),
        (vec!["--exec-label", "x"], "SELinux"),
        (
            vec!["--bind-fd", "3", "/x"],
            "bind its path (--bind SRC DEST)",
        ),
        (
            vec!["--ro-bind-fd", "3", "/x"],
            "bind its path (--ro-bind SRC DEST)",
        ),
    ] {
        let mut a = vec!["run"];
        a.extend_from_slice(&args);
        a.extend_from_slice(&["--", "true"]);
        let r = output(airlock(&a));
        assert_eq!(r.code, 125, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr
                .contains(&format!("{} (bubblewrap) is not supported", args[0]))
                && r.stderr.contains(says),
            "{args:?}: {}",
            r.stderr
        );
    }
}

/// --argv0: the program found and run is the command's, and it sees the
/// name given as its argv[0].
#[test]
fn argv0_is_what_the_program_sees_as_its_name() {
    let r = output(airlock(&[
        "run",
        "--argv0",
        "-mycat",
        "--",
        "cat",
        "/proc/self/cmdline",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "-mycat\0/proc/self/cmdline\0");
}

#[test]
fn cap_drop_takes_back_a_kept_capability() {
    let r = sh(
        &[
            "--cap-add",
            "CAP_NET_BIND_SERVICE",
            "--cap-drop",
            "cap_net_bind_service",
        ],
        "grep CapEff /proc/self/status",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("0000000000000000"), "{}", r.stdout);
    let r = sh(
        &["--cap-add", "CAP_NET_BIND_SERVICE"],
        "grep CapEff /proc/self/status",
    );
    assert!(!r.stdout.contains("0000000000000000"), "{}", r.stdout);
}

/// The JSON objects bubblewrap's --info-fd and --json-status-fd give, read
/// while the sandbox runs: PID 1's host pid and namespaces (those the
/// workload sees itself in), and the workload's exit status; neither fd
/// reaches PID 1 or the workload.
#[test]
fn info_and_json_status_fds_name_the_sandbox_and_its_end() {
    use std::io::BufRead;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // Close-on-exec here, where other tests' children would hold them
    // open; only airlock's own exec clears it (pre_exec below).
    let pipe = || {
        let mut fds = [0; 2];
        // SAFETY: a valid two-int array for pipe2 to fill.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both fds are new and ours.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    };
    for as_user in callers() {
        let (info_r, info_w) = pipe();
        let (status_r, status_w) = pipe();
        let (iw, sw) = (
            info_w.as_raw_fd().to_string(),
            status_w.as_raw_fd().to_string(),
        );
        let args = [
            "run",
            "--info-fd",
            &iw,
            "--json-status-fd",
            &sw,
            "--",
            "sh",
            "-c",
            "readlink /proc/self/ns/pid; ls /proc/self/fd | wc -l; sleep 1; exit 3",
        ];
        let mut c = if as_user {
            airlock_as_user(&args)
        } else {
            airlock(&args)
        };
        handed(&mut c, vec![info_w.as_raw_fd(), status_w.as_raw_fd()]);
        let mut child = c
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start airlock");
        drop((info_w, status_w));
        let info = read_info(info_r);
        let pid1 = info["child-pid"].as_i64().expect("child-pid");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(
            out.next().unwrap().unwrap(),
            format!("pid:[{}]", info["pid-namespace"]),
            "the workload's PID namespace is the one named (as user {as_user})"
        );
        // stdio and ls's own directory: nothing of the caller's.
        assert_eq!(out.next().unwrap().unwrap(), "4", "the workload's fds");
        // The workload runs (its second): PID 1 is done with its setup
        // and holds nothing but its stdio, neither fd among it.
        let held: Vec<String> = std::fs::read_dir(format!("/proc/{pid1}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(held.len() <= 3, "PID 1 holds {held:?} (as user {as_user})");
        let mut lines = std::io::BufReader::new(std::fs::File::from(status_r)).lines();
        let first: serde_json::Value =
            serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(first, info, "the status fd's first line is the info");
        let last: serde_json::Value =
            serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(last, serde_json::json!({"exit-code": 3}));
        assert!(lines.next().is_none(), "closed after the exit");
        assert_eq!(child.wait().unwrap().code(), Some(3));
    }
    // Bad descriptors are refused, naming the flag.
    for (args, says) in [
        ("run --info-fd 2 -- true", "--info-fd 2: must be 3 or above"),
        (
            "run --info-fd 9 -- true",
            "--info-fd 9: not an open file descriptor",
        ),
        (
            "run --info-fd 5 --json-status-fd 5 -- true 5>/dev/null",
            "two file descriptors, not one",
        ),
        (
            "run --json-status-fd 5 -- true 5</dev/null",
            "--json-status-fd 5: open for reading only",
        ),
    ] {
        let r = airlock_sh(args);
        assert_eq!(r.code, 125, "{args}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args}: {}", r.stderr);
    }
}

/// `airlock run FLAGS -- true` is refused (125), saying `says`.
fn refused_saying(flags: &[&str], says: &str) {
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "true"]);
    let r = output(airlock(&args));
    assert_eq!(r.code, 125, "{flags:?}: {}", r.stderr);
    assert!(r.stderr.contains(says), "{flags:?}: {}", r.stderr);
}

/// Whether `fd` would not block a read: data, or its writers gone.
fn readable(fd: &impl std::os::fd::AsRawFd) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
}

/// --block-fd holds the program back, once the sandbox is set up and
/// --info-fd written, until a byte arrives; --sync-fd closes only when
/// the sandbox has ended. PID 1 holds neither.
#[test]
fn block_and_sync_fds_hold_the_start_and_mark_the_end() {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    for as_user in callers() {
        let (info_r, info_w) = cloexec_pipe();
        let (block_r, block_w) = cloexec_pipe();
        let (sync_r, sync_w) = cloexec_pipe();
        let (i, b, s) = (
            info_w.as_raw_fd().to_string(),
            block_r.as_raw_fd().to_string(),
            sync_w.as_raw_fd().to_string(),
        );
        let args = [
            "run",
            "--info-fd",
            &i,
            "--block-fd",
            &b,
            "--sync-fd",
            &s,
            "--",
            "echo",
            "ran",
        ];
        let mut c = if as_user {
            airlock_as_user(&args)
        } else {
            airlock(&args)
        };
        handed(
            &mut c,
            vec![info_w.as_raw_fd(), block_r.as_raw_fd(), sync_w.as_raw_fd()],
        );
        let mut child = c
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start airlock");
        drop((info_w, block_r, sync_w));
        let pid1 = info_child_pid(info_r);
        // Set up and waiting: PID 1 has started nothing, and holds
        // nothing of ours.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let children =
            std::fs::read_to_string(format!("/proc/{pid1}/task/{pid1}/children")).unwrap();
        assert_eq!(
            children, "",
            "the workload started before the block fd said so"
        );
        let stdout = child.stdout.take().unwrap();
        assert!(
            !readable(&stdout),
            "the workload wrote before the block fd said so"
        );
        let pipe_of = |fd: &std::os::fd::OwnedFd| {
            use std::os::unix::fs::MetadataExt;
            let ino = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                .unwrap()
                .ino();
            format!("pipe:[{ino}]")
        };
        let ours = [pipe_of(&block_w), pipe_of(&sync_r)];
        for e in std::fs::read_dir(format!("/proc/{pid1}/fd")).unwrap() {
            let target = std::fs::read_link(e.unwrap().path()).unwrap();
            let target = target.to_string_lossy();
            assert!(
                !ours.iter().any(|p| *p == target),
                "PID 1 holds {target} (as user {as_user})"
            );
        }
        assert!(
            !readable(&sync_r),
            "the sync fd closed while the sandbox runs"
        );
        std::fs::File::from(block_w).write_all(b"x").unwrap();
        let mut out = String::new();
        std::io::BufReader::new(stdout)
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "ran\n");
        assert_eq!(child.wait().unwrap().code(), Some(0));
        assert!(readable(&sync_r), "the sync fd is still open after the end");
        assert_eq!(std::fs::File::from(sync_r).read(&mut [0u8; 1]).unwrap(), 0);
    }
}

/// A run stopped while it waits on --block-fd ends the sandbox it set up,
/// says why, and leaves nothing behind.
#[test]
fn a_signal_during_the_block_wait_ends_the_sandbox() {
    use std::os::fd::AsRawFd;
    let (info_r, info_w) = cloexec_pipe();
    let (block_r, block_w) = cloexec_pipe();
    let (i, b) = (
        info_w.as_raw_fd().to_string(),
        block_r.as_raw_fd().to_string(),
    );
    let mut c = airlock(&[
        "run",
        "--info-fd",
        &i,
        "--block-fd",
        &b,
        "--",
        "echo",
        "ran",
    ]);
    handed(&mut c, vec![info_w.as_raw_fd(), block_r.as_raw_fd()]);
    let child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start airlock");
    drop((info_w, block_r));
    let pid1 = info_child_pid(info_r);
    // SAFETY: our own child, by its pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "the workload ran");
    assert!(
        stderr.contains("--block-fd: signal 15 arrived while waiting on it"),
        "{stderr}"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid1}")).exists(),
        "PID 1 outlived its sandbox"
    );
    drop(block_w);
}

/// --remount-ro makes the mount an earlier flag made read-only, not the
/// mounts below it; a path that is no mount point, or is missing, fails
/// the start naming the flag; `/` is the root (not an image's).
#[test]
fn remount_ro_makes_one_mount_read_only() {
    let flags = [
        "--tmpfs",
        "/x",
        "--dir",
        "/x/a",
        "--tmpfs",
        "/x/in",
        "--remount-ro",
        "/x",
    ];
    let script = "touch /x/a/f 2>/dev/null || echo read-only; touch /x/in/f && echo below-writable";
    let r = sh(&flags, script);
    assert_eq!(r.stdout, "read-only\nbelow-writable\n", "{}", r.stderr);
    if is_root() {
        let r = sh_as_user(&flags, script);
        assert_eq!(
            r.stdout, "read-only\nbelow-writable\n",
            "as user: {}",
            r.stderr
        );
    }
    for (flags, says) in [
        (
            vec!["--tmpfs", "/x", "--dir", "/x/d", "--remount-ro", "/x/d"],
            "remount /x/d read-only (--remount-ro /x/d): /x/d is not a mount point",
        ),
        (
            vec!["--perms", "0700", "--remount-ro", "/"],
            "--perms 0700: applies to the next --tmpfs, --dir, --file",
        ),
        (
            vec!["--tmpfs", "/x", "--remount-ro", "/y"],
            "remount /y read-only (--remount-ro /y): No such file or directory",
        ),
        (
            vec!["--image", "busybox:latest", "--remount-ro", "/"],
            "--remount-ro /: an image's root is a writable layer",
        ),
        (
            vec!["--rootfs", "/", "--overlay", "--rootfs-readonly"],
            "--rootfs-readonly: --overlay puts a writable layer over the --rootfs",
        ),
        (
            vec![
                "--rootfs",
                "/",
                "--overlay-dir",
                "/tmp",
                "--rootfs-readonly",
            ],
            "--rootfs-readonly: --overlay-dir puts a writable layer",
        ),
    ] {
        refused_saying(&flags, says);
    }
    // A created sandbox is not this process's to die with.
    let r = output(airlock(&["create", "--die-with-parent", "--", "true"]));
    assert_eq!(r.code, 125, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("--die-with-parent: `airlock create` leaves"),
        "{}",
        r.stderr
    );
    let dir = tempdir();
    let d = dir.path().display().to_string();
    let r = output(airlock(&[
        "run",
        "--print-spec",
        "--rootfs",
        &d,
        "--remount-ro",
        "/",
        "--",
        "true",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let spec: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(spec["filesystem"]["root"]["readonly"], true, "{}", r.stdout);
}

/// Whether a write lock on `path` is refused (someone holds a lock).
fn write_lock_refused(path: &std::path::Path) -> bool {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    // SAFETY: an all-zero flock is valid; l_pid must be 0 for OFD locks.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: fcntl reads the flock for the call only; f is open.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLK, &lock) };
    r == -1
}

/// --lock-file: while the sandbox runs a process outside cannot take a
/// write lock on the file; once it has ended it can. A missing path, one
/// that is not a regular file, or no init to hold it fails by name.
#[test]
fn lock_file_is_held_while_the_sandbox_runs() {
    use std::io::BufRead;
    let dir = tempdir();
    let file = dir.path().join("lock");
    std::fs::write(&file, "").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let f = file.display().to_string();
    for as_user in callers() {
        let args = [
            "run",
            "--ro-bind",
            &f,
            "/lk",
            "--lock-file",
            "/lk",
            "--",
            "sh",
            "-c",
            "echo up; read x || true",
        ];
        let mut c = if as_user {
            airlock_as_user(&args)
        } else {
            airlock(&args)
        };
        let mut child = c
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start airlock");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(out.next().unwrap().unwrap(), "up");
        assert!(write_lock_refused(&file), "not locked (as user {as_user})");
        drop(child.stdin.take());
        assert_eq!(child.wait().unwrap().code(), Some(0));
        assert!(!write_lock_refused(&file), "still locked after the end");
    }
    for (flags, says) in [
        (
            vec!["--lock-file", "/nope"],
            "lock /nope (--lock-file /nope): No such file or directory",
        ),
        (
            vec!["--lock-file", "/dev/null"],
            "lock /dev/null (--lock-file /dev/null): not a regular file",
        ),
        // Never through a /proc magic link, which can lead out of the
        // sandbox's root (with the host's /proc).
        (
            vec!["--lock-file", "/proc/self/root/etc/passwd"],
            "lock /proc/self/root/etc/passwd (--lock-file /proc/self/root/etc/passwd): ",
        ),
        (
            vec!["--as-pid-1", "--lock-file", "/etc/passwd"],
            "--lock-file: airlock's init holds the locks",
        ),
    ] {
        refused_saying(&flags, says);
    }
}

/// A compiled filter (`sock_filter`s, native byte order) that refuses
/// uname(2) with EPERM on x86_64 and allows everything else.
#[cfg(target_arch = "x86_64")]
fn deny_uname() -> Vec<u8> {
    deny(63)
}

/// The same for syscall `nr`.
#[cfg(target_arch = "x86_64")]
fn deny(nr: u32) -> Vec<u8> {
    let insn = |code: u16, jt: u8, jf: u8, k: u32| {
        let mut b = code.to_ne_bytes().to_vec();
        b.extend([jt, jf]);
        b.extend(k.to_ne_bytes());
        b
    };
    const ALLOW: u32 = 0x7fff_0000;
    [
        insn(0x20, 0, 0, 4),           // ld arch
        insn(0x15, 1, 0, 0xc000_003e), // x86_64?
        insn(0x06, 0, 0, ALLOW),
        insn(0x20, 0, 0, 0),               // ld nr
        insn(0x15, 0, 1, nr),              // the call?
        insn(0x06, 0, 0, 0x0005_0000 | 1), // errno EPERM
        insn(0x06, 0, 0, ALLOW),
    ]
    .concat()
}

/// --add-seccomp-fd and --seccomp: the program read from the fd is
/// installed after airlock's filter, and refuses what it refuses; a
/// malformed one is refused by name, before or by the kernel.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_compiled_filter_from_an_fd_stacks_on_airlocks() {
    let dir = tempdir();
    let prog = dir.path().join("deny-uname.bpf");
    std::fs::write(&prog, deny_uname()).unwrap();
    let p = prog.display();
    let r = airlock_sh(&format!("run -- uname 3<{p}"));
    assert_eq!((r.code, r.stdout.as_str()), (0, "Linux\n"), "{}", r.stderr);
    for flag in ["--add-seccomp-fd", "--seccomp"] {
        let r = airlock_sh(&format!("run {flag} 3 -- uname 3<{p}"));
        assert_ne!(r.code, 0, "{flag}: {}", r.stdout);
        assert!(
            r.stderr.contains("Operation not permitted"),
            "{flag}: {}",
            r.stderr
        );
    }
    // Airlock's own filters are still there: one more filter than
    // without the flag, not one alone. (A refused mount said nothing: the
    // workload has no capability to mount with anyway.)
    let filters = |flags: &str| {
        let r = airlock_sh(&format!(
            "run {flags} -- grep Seccomp_filters /proc/self/status 3<{p}"
        ));
        assert_eq!(r.code, 0, "{flags}: {}", r.stderr);
        let n: u32 = r.stdout.split_whitespace().nth(1).unwrap().parse().unwrap();
        n
    };
    let own = filters("");
    assert!(own >= 2, "airlock's default is two filters: {own}");
    for flag in ["--add-seccomp-fd 3", "--seccomp 3"] {
        assert_eq!(filters(flag), own + 1, "{flag}");
    }
    let short = dir.path().join("short.bpf");
    std::fs::write(&short, [0u8; 5]).unwrap();
    let r = airlock_sh(&format!(
        "run --add-seccomp-fd 3 -- true 3<{}",
        short.display()
    ));
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("--add-seccomp-fd 3: a compiled BPF program is 1 to 4096 instructions of 8 bytes, not 5 bytes"),
        "{}",
        r.stderr
    );
    // Installed after airlock's own setup, which uses close_range (436):
    // a filter that refuses it does not stop the start.
    let no_close_range = dir.path().join("no-close-range.bpf");
    std::fs::write(&no_close_range, deny(436)).unwrap();
    let r = airlock_sh(&format!(
        "run --add-seccomp-fd 3 -- true 3<{}",
        no_close_range.display()
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // An fd read once is closed: given twice, the second is not there.
    let r = airlock_sh(&format!("run --add-seccomp-fd 3 --seccomp 3 -- true 3<{p}"));
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("--seccomp 3: not an open file descriptor (given twice?)"),
        "{}",
        r.stderr
    );
    // One the kernel refuses (no return at its end), named at launch.
    let bad = dir.path().join("bad.bpf");
    std::fs::write(&bad, &deny_uname()[..8]).unwrap();
    let r = airlock_sh(&format!("run --seccomp 3 -- true 3<{}", bad.display()));
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("--seccomp 3: install: Invalid argument"),
        "{}",
        r.stderr
    );
}

/// As root, bubblewrap's `--overlay-src DIR --tmp-overlay DEST` changes
/// host root's files in the overlay: a root caller's sandbox root is
/// another host id, so the layers of host ids its user namespace does not
/// map are idmapped through it (as a directory root is), and what it
/// changes is copied up; the host's layer is unchanged. A read-only
/// overlay is left as it is (its files stay the overflow id's).
#[test]
fn a_root_callers_tmp_overlay_changes_host_roots_files() {
    require_root!();
    let dir = tempdir();
    let layer = dir.path().join("layer");
    std::fs::create_dir_all(layer.join("d")).unwrap();
    std::fs::write(layer.join("f"), "host\n").unwrap();
    let l = layer.display().to_string();
    let script = "echo more >> /o/f && mkdir /o/d/new && cat /o/f && stat -c %u /o/f";
    let r = sh(&["--overlay-src", &l, "--tmp-overlay", "/o"], script);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "host\nmore\n0\n"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_to_string(layer.join("f")).unwrap(), "host\n");
    assert!(!layer.join("d/new").exists());
    let below = dir.path().join("below");
    std::fs::create_dir(&below).unwrap();
    let b = below.display().to_string();
    let ro = [
        "--overlay-src",
        &b,
        "--overlay-src",
        &l,
        "--ro-overlay",
        "/o",
    ];
    let r = sh(&ro, "stat -c %u /o/f");
    assert_eq!(r.stdout, "65534\n", "{}", r.stderr);
}

/// --overlay-src with --tmp-overlay or --ro-overlay: the layers are
/// stacked with the last given on top; a tmp overlay's writes stay in the
/// sandbox (the host's layers are unchanged), a read-only one takes none.
/// Each layer is judged as a read-only bind, named by its flag.
#[test]
fn overlay_flags_stack_the_layers_given() {
    let dir = tempdir();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (d, f, text) in [(&a, "f", "A"), (&a, "only-a", "a"), (&b, "f", "B")] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join(f), text).unwrap();
    }
    let (a, b) = (a.display().to_string(), b.display().to_string());
    let mut callers = vec![false];
    if is_root() {
        callers.push(true);
        // The rootless caller's own files, which it may write over.
        for d in [
            dir.path(),
            std::path::Path::new(&a),
            std::path::Path::new(&b),
        ] {
            for e in std::fs::read_dir(d).unwrap() {
                chown(&e.unwrap().path(), USER, USER);
            }
        }
    }
    let layers = ["--overlay-src", &a, "--overlay-src", &b];
    for as_user in callers {
        let run = |flags: &[&str], script: &str| {
            let all = [&layers[..], flags].concat();
            match as_user {
                true => sh_as_user(&all, script),
                false => sh(&all, script),
            }
        };
        let r = run(
            &["--tmp-overlay", "/o"],
            "cat /o/f /o/only-a; echo; echo new > /o/g && cat /o/g",
        );
        assert_eq!(r.stdout, "Ba\nnew\n", "as user {as_user}: {}", r.stderr);
        let r = run(
            &["--ro-overlay", "/o"],
            "cat /o/f; touch /o/x 2>/dev/null || echo read-only",
        );
        assert_eq!(r.stdout, "Bread-only\n", "as user {as_user}: {}", r.stderr);
    }
    assert!(!dir.path().join("b/g").exists() && !dir.path().join("a/g").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("b/f")).unwrap(),
        "B"
    );
    // Without a user namespace setup is host root: the top of a writable
    // overlay keeps the topmost layer's owner and mode, so a workload
    // that may not enter the layer may not enter the overlay either.
    if is_root() {
        let secret = dir.path().join("secret");
        std::fs::create_dir(&secret).unwrap();
        std::fs::write(secret.join("f"), "s").unwrap();
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let s = secret.display().to_string();
        let r = sh(
            &[
                "--share-user",
                "--allow-unsafe",
                "shared-user",
                "--uid",
                "1000",
                "--overlay-src",
                &s,
                "--tmp-overlay",
                "/o",
            ],
            "cat /o/f 2>/dev/null || echo refused",
        );
        assert_eq!(r.stdout, "refused\n", "{}", r.stderr);
    }
    // As the rootless caller, its own file written over: copied up, the
    // host's unchanged.
    if is_root() {
        let r = sh_as_user(
            &[&layers[..], &["--tmp-overlay", "/o"]].concat(),
            "echo changed > /o/f && cat /o/f",
        );
        assert_eq!(r.stdout, "changed\n", "{}", r.stderr);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b/f")).unwrap(),
            "B"
        );
    }
    for (flags, says) in [
        (
            vec!["--overlay-src", a.as_str(), "--ro-overlay", "/o"],
            "--ro-overlay /o: an overlay of 1 layers: 2 to 128 are taken without a writable layer",
        ),
        (
            vec!["--tmp-overlay", "/o"],
            "--tmp-overlay /o: needs --overlay-src SRC before it",
        ),
        (
            vec![
                "--overlay-src",
                a.as_str(),
                "--tmpfs",
                "/x",
                "--tmp-overlay",
                "/o",
            ],
            "applies to the --tmp-overlay, --ro-overlay or --overlay right after it, not to --tmpfs /x",
        ),
        (
            vec!["--overlay-src", a.as_str()],
            "no --tmp-overlay, --ro-overlay or --overlay follows it",
        ),
        (
            vec!["--overlay-src", "/no/such/dir", "--tmp-overlay", "/o"],
            "mount /o (--tmp-overlay /o): source /no/such/dir does not exist",
        ),
        (
            vec!["--overlay-src", "/proc", "--tmp-overlay", "/o"],
            "error[kernel-surface-bind]: --overlay-src /proc:",
        ),
    ] {
        refused_saying(&flags, says);
    }
}

/// bubblewrap's --overlay RWSRC WORKDIR DEST: the writes are kept in
/// RWSRC (made if missing, for the sandbox's root as the host sees it),
/// the layers are unchanged, and a second sandbox sees the first's
/// writes; as root and as a rootless caller. Each directory is judged as
/// a writable bind and must be the sandbox's, both on one mount; a
/// refusal leaves nothing made.
#[test]
fn overlay_with_rwsrc_keeps_the_writes() {
    let dir = tempdir();
    let low = dir.path().join("low");
    std::fs::create_dir(&low).unwrap();
    std::fs::write(low.join("f"), "base").unwrap();
    let mut callers = vec![false];
    if is_root() {
        callers.push(true);
        chown(dir.path(), USER, USER);
        chown(&low, USER, USER);
        chown(&low.join("f"), USER, USER);
    }
    let p = |name: &str| dir.path().join(name).display().to_string();
    let low = low.display().to_string();
    for as_user in callers {
        let (rw, work) = (p(&format!("rw-{as_user}")), p(&format!("work-{as_user}")));
        let flags = ["--overlay-src", &low, "--overlay", &rw, &work, "/o"];
        let run = |script: &str| match as_user {
            true => sh_as_user(&flags, script),
            false => sh(&flags, script),
        };
        let r = run("cat /o/f; echo; echo kept > /o/new && cat /o/new");
        assert_eq!(r.stdout, "base\nkept\n", "as user {as_user}: {}", r.stderr);
        assert_eq!(
            std::fs::read_to_string(format!("{rw}/new")).unwrap(),
            "kept\n"
        );
        let r = run("cat /o/new");
        assert_eq!(r.stdout, "kept\n", "as user {as_user}: {}", r.stderr);
    }
    assert_eq!(std::fs::read_to_string(format!("{low}/f")).unwrap(), "base");
    assert!(!std::path::Path::new(&format!("{low}/new")).exists());
    // Two of them on one line; the program's own arguments stay its own.
    let (rw2, work2) = (p("rw-2"), p("work-2"));
    let r = output(airlock(&[
        "run",
        "--overlay-src",
        &low,
        "--overlay",
        &rw2,
        &work2,
        "/o",
        "--overlay-src",
        &low,
        "--overlay",
        &p("rw-3"),
        &p("work-3"),
        "/p",
        "sh",
        "-c",
        "cat /o/f /p/f; echo \" $*\"",
        "sh",
        "--overlay-src",
        "x",
        "--overlay",
    ]));
    assert_eq!(
        r.stdout, "basebase --overlay-src x --overlay\n",
        "{}",
        r.stderr
    );
    // A work directory on another mount than the upper one (/dev/shm is a
    // tmpfs of its own).
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let other = shm.path().join("work").display().to_string();
    let (rw, work) = (p("rw-x"), p("work-x"));
    for (flags, says) in [
        (
            vec!["--overlay-src", &low, "--overlay", &rw, &other, "/o"],
            format!("mount /o (--overlay {rw} {other} /o): upper_dir {rw} and work_dir {other} are on two mounts"),
        ),
        (
            vec!["--overlay-src", &low, "--overlay", "/etc", &work, "/o"],
            format!("error[host-system-writable]: --overlay /etc {work} /o: writable bind of /etc"),
        ),
        (
            vec!["--overlay-src", &low, "--overlay", &rw, &format!("{rw}/w"), "/o"],
            "are one inside the other; overlayfs needs two separate directories".into(),
        ),
        (
            vec!["--overlay-src", &low, "--overlay", &rw, &work],
            "3 values required for '--overlay <RWSRC> <WORKDIR> <DEST>'".into(),
        ),
    ] {
        refused_saying(&flags, &says);
    }
    // Refused before anything was made.
    assert!(!std::path::Path::new(&rw).exists() && !std::path::Path::new(&other).exists());
    // A directory someone else owns is not the sandbox's to write in.
    if is_root() {
        let theirs = p("theirs");
        std::fs::create_dir(&theirs).unwrap();
        chown(std::path::Path::new(&theirs), USER, USER);
        refused_saying(
            &["--overlay-src", &low, "--overlay", &theirs, &work, "/o"],
            &format!("{theirs} is owned by uid {USER}, not by uid"),
        );
        assert!(!std::path::Path::new(&work).exists());
    }
}

/// `--ro-bind DIR /` never writes DIR, mount points included, as with
/// bubblewrap: one DIR lacks is an error that says so, and DIR is left
/// as it was. Host root used to make them in it (and leave them there
/// when setup then failed). `--rootfs DIR --rootfs-readonly` still makes
/// them, as runc does in a bundle's rootfs.
#[test]
fn a_read_only_bind_onto_the_root_gets_no_mount_points() {
    for as_user in callers() {
        let dir = shared_dir();
        std::fs::create_dir(dir.path().join("usr")).unwrap();
        for link in ["bin", "lib", "lib64"] {
            std::os::unix::fs::symlink(format!("usr/{link}"), dir.path().join(link)).unwrap();
        }
        if as_user {
            // Its root could write there: only the flag keeps it out.
            chown(dir.path(), USER, USER);
        }
        let root = dir.path().display().to_string();
        let listing = || {
            let mut names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let run = |flags: &[&str]| {
            let mut args = vec!["run"];
            args.extend_from_slice(flags);
            args.extend_from_slice(&["--ro-bind", "/usr", "/usr", "--tmpfs", "/nologin"]);
            args.extend_from_slice(&["--", "true"]);
            output(if as_user {
                airlock_as_user(&args)
            } else {
                airlock(&args)
            })
        };
        let r = run(&["--ro-bind", &root, "/"]);
        assert_eq!(r.code, 125, "{}", r.stderr);
        assert!(
            r.stderr
                .contains("mount /nologin (--tmpfs /nologin): cannot make the mount point")
                && r.stderr
                    .contains("airlock makes nothing in a directory root given read-only"),
            "{}",
            r.stderr
        );
        assert_eq!(
            listing(),
            ["bin", "lib", "lib64", "usr"],
            "as user: {as_user}"
        );
        let r = run(&["--rootfs", &root, "--rootfs-readonly"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            listing().contains(&"nologin".to_string()),
            "{:?}",
            listing()
        );
    }
}

/// `--bind DIR /` by root is written as root, as a writable bind is
/// (`bind_owner = "caller"`): the workload's root writes there and what
/// it makes is the caller's on the host. It could not write at all (its
/// root is an unprivileged host id), as `sudo bwrap` users would not
/// expect.
#[test]
fn a_writable_bind_onto_the_root_is_written_as_the_caller() {
    require_root!();
    let dir = tempdir();
    let on_root = |script: &str| {
        let mut flags = vec![
            "--bind".to_string(),
            dir.path().display().to_string(),
            "/".into(),
        ];
        flags.extend(host_usr());
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        sh(&flags, script)
    };
    let r = on_root("touch /written && stat -c %u:%g /written");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "0:0\n");
    let meta = std::fs::metadata(dir.path().join("written")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    // What the filter keeps out of a caller's bind stays out here too.
    let r = on_root("chmod u+s /written 2>&1; stat -c %a /written");
    assert!(r.stdout.ends_with("644\n"), "{} {}", r.stdout, r.stderr);
    // A workload that is not the sandbox's root: the mount points the
    // root lacks (/usr here, /tmp) are made by host root before the tree
    // is idmapped, where host root is no id at all; and --remount-ro /
    // keeps the root writable until they are made, as bubblewrap does.
    let bare = tempdir();
    for link in ["bin", "lib", "lib64"] {
        std::os::unix::fs::symlink(format!("usr/{link}"), bare.path().join(link)).unwrap();
    }
    let b = bare.path().display().to_string();
    for extra in [&[][..], &["--remount-ro", "/"]] {
        let mut flags = vec!["--bind", &b, "/", "--ro-bind", "/usr", "/usr"];
        flags.extend_from_slice(&["--tmpfs", "/tmp", "--uid", "1000", "--gid", "1000"]);
        flags.extend_from_slice(extra);
        let r = sh(&flags, "id -u; test -d /tmp && echo tmp-ok");
        assert_eq!(r.code, 0, "{extra:?}: {}", r.stderr);
        assert_eq!(r.stdout, "1000\ntmp-ok\n", "{extra:?}");
    }
}

/// A file bound onto a link whose target is not there yet (an image's
/// `/etc/resolv.conf -> ../run/systemd/resolve/stub-resolv.conf`) lands
/// where the link leads, made inside the root as runc makes it; it was
/// refused (ELOOP).
#[test]
fn a_bind_onto_a_dangling_link_makes_its_target() {
    require_root!();
    let dir = shared_dir();
    let root = dir.path();
    std::fs::create_dir_all(root.join("usr")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    for link in ["bin", "lib", "lib64"] {
        std::os::unix::fs::symlink(format!("usr/{link}"), root.join(link)).unwrap();
    }
    std::os::unix::fs::symlink(
        "../run/systemd/resolve/stub-resolv.conf",
        root.join("etc/resolv.conf"),
    )
    .unwrap();
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    let cat = |flags: &[&str]| {
        let mut args = vec!["run", "--rootfs"];
        let dir = root.display().to_string();
        args.push(&dir);
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--ro-bind", "/usr", "/usr"]);
        args.extend_from_slice(&["--ro-bind", "/etc/hosts", "/etc/resolv.conf"]);
        args.extend_from_slice(&["--", "cat", "/etc/resolv.conf"]);
        let r = output(airlock(&args));
        assert_eq!(r.code, 0, "{flags:?}: {}", r.stderr);
        assert_eq!(r.stdout, hosts);
    };
    cat(&[]);
    assert!(root.join("run/systemd/resolve/stub-resolv.conf").is_file());
    // Where the link leads into an earlier mount (a tmpfs on /run), the
    // target is made there, not in the host's directory: the mount points
    // host root makes first for a --rootfs do not follow links.
    std::fs::remove_dir_all(root.join("run")).unwrap();
    cat(&["--rootfs-readonly", "--tmpfs", "/run"]);
    assert!(root.join("run").is_dir());
    assert!(
        !root.join("run/systemd").exists(),
        "made in the host's directory"
    );
}

/// --die-with-parent: the sandbox ends when the process that started
/// airlock does, as root and as a user. A root caller's supervisor
/// changes its effective uid to make the user namespace, which clears
/// the parent-death signal airlock set before it exec'd the runner: it
/// is set again after.
#[test]
fn die_with_parent_ends_the_sandbox_with_its_parent() {
    for as_user in callers() {
        let marker = format!("{}", 2_000_000 + std::process::id() + u32::from(as_user));
        // Written so that only the workload's command line is `sleep
        // MARKER`: not the shell's, whose script says it otherwise.
        let script = format!(
            "'{}' run --die-with-parent -- sleep \"${{0}}\" & wait",
            airlock_bin().display()
        );
        let mut parent = match as_user {
            true => common::as_user(),
            false => Command::new("env"),
        };
        let mut parent = parent
            .args(["sh", "-c", &script, &marker])
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let wanted = format!("sleep\0{marker}\0");
        let workload = || {
            std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
                std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == wanted.as_bytes())
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !workload() {
            assert!(
                std::time::Instant::now() < deadline,
                "the sandbox never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        parent.kill().unwrap();
        parent.wait().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while workload() {
            if std::time::Instant::now() > deadline {
                for pid in processes_with(&format!("sleep {marker}")) {
                    // SAFETY: kill takes no pointers; these are the
                    // sandbox's processes this test started.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                panic!("as user {as_user}: the sandbox outlived its parent");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
