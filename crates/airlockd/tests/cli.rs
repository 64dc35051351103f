//! The CLI against a daemon (`--host`, `AIRLOCK_HOST`): the lifecycle
//! verbs, and who may do what — an unprivileged caller in the daemon's
//! group gets sandboxes mapped to its own uid, sees only its own, and may
//! not acknowledge a deny finding; a caller outside the group is refused.

mod common;

use common::cli::*;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The unprivileged user of the tests, and a second one outside the group.
const USER: u32 = 1000;
const OUTSIDER: u32 = 65534;

#[test]
fn the_lifecycle_verbs_through_a_daemon() {
    if !root_or_skip("the_lifecycle_verbs_through_a_daemon") {
        return;
    }
    let d = Daemon::start("");
    let id = ok(airlock(
        &d,
        None,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "--",
            "sh",
            "-c",
            "echo hi; echo oops >&2; sleep 100",
        ],
    ));
    assert_eq!(id.trim().len(), 64, "{id}");
    let ps = ok(airlock(&d, None, &["ps"]));
    assert!(
        ps.lines()
            .any(|l| l.contains("web") && l.contains("running")),
        "{ps}"
    );
    // The command column, as a local ps has it.
    let header = ps.lines().next().unwrap();
    let row = ps.lines().find(|l| l.contains("web")).unwrap();
    let at = header.find("COMMAND").unwrap();
    assert_eq!(
        row.get(at..),
        Some("sh -c echo hi; echo oops >&2; sleep 100"),
        "{ps}"
    );
    assert_eq!(
        ok(airlock(&d, None, &["exec", "web", "--", "hostname"])),
        "airlock\n"
    );
    let code = airlock(&d, None, &["exec", "web", "--", "sh", "-c", "exit 5"]).code;
    assert_eq!(code, 5);
    // Output arrives in the logs once the workload has written it.
    let mut logs = Out {
        code: 1,
        stdout: String::new(),
        stderr: String::new(),
    };
    for _ in 0..100 {
        logs = airlock(&d, None, &["logs", "web"]);
        if logs.stdout.contains("hi") && logs.stderr.contains("oops") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        (logs.stdout.as_str(), logs.stderr.as_str()),
        ("hi\n", "oops\n")
    );
    let stats = ok(airlock(&d, None, &["stats", "--format", "json", "web"]));
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert!(v["pids"].as_u64().unwrap() >= 2, "{stats}");
    assert_eq!(v["cgroup"], true, "{stats}");
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(airlock(&d, None, &["inspect", "web"]))).unwrap();
    assert_eq!(inspect["status"], "running");
    assert_eq!(inspect["owner"], 0);
    // A signal reaches the workload (sh dies of SIGTERM: 128+15).
    ok(airlock(&d, None, &["kill", "web", "TERM"]));
    assert_eq!(airlock(&d, None, &["wait", "web"]).stdout.trim(), "143");
    ok(airlock(&d, None, &["stop", "-t", "1", "web"]));
    ok(airlock(&d, None, &["rm", "web"]));
    let events = ok(airlock(
        &d,
        None,
        &["events", "--since", "1m", "--no-follow"],
    ));
    let kinds: Vec<&str> = events
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(
        kinds,
        ["created", "started", "exited", "deleted"],
        "{events}"
    );
    // Without --since, every event kept (it used to list none).
    let all = ok(airlock(&d, None, &["events", "--no-follow"]));
    assert_eq!(all, events);

    // Errors: one line, exit 125; a missing program 127.
    let e = airlock(&d, None, &["stop", "nope"]);
    assert_eq!(e.code, 125);
    assert!(
        e.stderr
            .contains("no sandbox named or with an id starting \"nope\""),
        "{}",
        e.stderr
    );
    let e = airlock(&d, None, &["run", "-d", "--", "/no/such/program"]);
    assert_eq!(e.code, 127, "{}", e.stderr);
    let e = airlock(&d, None, &["run", "--", "true"]);
    assert_eq!(e.code, 125);
    assert!(e.stderr.contains("needs -d"), "{}", e.stderr);
    // What only a local run can do is refused, and creates nothing
    // (--print-spec used to create a sandbox; --report was ignored).
    let before = ok(airlock(&d, None, &["ps", "-a"]));
    for flags in [
        &["--print-spec"][..],
        &["--report", "/tmp/airlock-remote-report.json"],
        &["--store", "/tmp"],
        &["--cgroup-parent", "/"],
        &["-v"],
    ] {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.extend(["--", "true"]);
        let e = airlock(&d, None, &args);
        assert_eq!(e.code, 125, "{flags:?}: {}", e.stdout);
        let flag = flags[0].replace("-v", "--verbose");
        assert!(
            e.stderr
                .contains(&format!("{flag} is not available with --host")),
            "{flags:?}: {}",
            e.stderr
        );
    }
    // bubblewrap's fds are this process's: `create` (which -d's conflict
    // does not cover) refuses them too.
    for flag in ["--info-fd", "--json-status-fd", "--sync-fd", "--block-fd"] {
        let e = airlock(&d, None, &["create", flag, "5", "--", "true"]);
        assert_eq!(e.code, 125, "{flag}: {}", e.stdout);
        assert!(
            e.stderr
                .contains(&format!("{flag} is not available with --host")),
            "{flag}: {}",
            e.stderr
        );
    }
    assert_eq!(ok(airlock(&d, None, &["ps", "-a"])), before);
    // The guardrails' findings name the flag typed, as a local run's do,
    // not the spec's index (which counts mounts the user never wrote).
    let e = airlock(
        &d,
        None,
        &["run", "-d", "--bind", "/", "/host", "--", "true"],
    );
    assert_eq!(e.code, 125, "{}", e.stderr);
    assert!(
        e.stderr
            .contains("error[host-root-writable]: --bind / /host:"),
        "{}",
        e.stderr
    );
    assert!(!e.stderr.contains("filesystem.mounts["), "{}", e.stderr);
    assert_eq!(ok(airlock(&d, None, &["ps", "-a"])), before);
    // -q silences the warnings a local run's -q silences.
    let share = ["run", "-d", "--rm", "--share-ipc", "--", "true"];
    let loud = airlock(&d, None, &share);
    assert!(loud.stderr.contains("warning["), "{}", loud.stderr);
    let quiet = airlock(&d, None, &[&share[..2], &["-q"], &share[2..]].concat());
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert_eq!(quiet.stderr, "");
}

#[test]
fn an_unprivileged_caller_gets_its_own_ids_and_sandboxes_only() {
    if !root_or_skip("an_unprivileged_caller_gets_its_own_ids_and_sandboxes_only") {
        return;
    }
    let d = Daemon::start(&format!("group = \"{USER}\""));
    // Root's sandbox, which the user must not see or touch.
    ok(airlock(
        &d,
        None,
        &["run", "-d", "--name", "roots", "--", "sleep", "100"],
    ));

    ok(airlock(
        &d,
        Some(USER),
        &["run", "-d", "--name", "mine", "--", "sleep", "100"],
    ));
    // Names are each caller's own: root may call one `mine` too, and the
    // user's second `mine` is refused by the name the user gave.
    ok(airlock(
        &d,
        None,
        &["run", "-d", "--name", "mine", "--", "sleep", "100"],
    ));
    let e = airlock(
        &d,
        Some(USER),
        &["run", "-d", "--name", "mine", "--", "true"],
    );
    assert_eq!(e.code, 125, "{}", e.stdout);
    assert!(
        e.stderr.contains("the name \"mine\" is already in use"),
        "{}",
        e.stderr
    );
    // Nor a name that is an id (which would stand for another's id).
    let e = airlock(
        &d,
        None,
        &["run", "-d", "--name", &"a".repeat(64), "--", "true"],
    );
    assert_eq!(e.code, 125, "{}", e.stdout);
    assert!(
        e.stderr.contains("64 hex digits are a sandbox id"),
        "{}",
        e.stderr
    );
    // As with the caller's own `airlock run`: itself inside, its own uid on
    // the host, not root's range nor the daemon's.
    assert_eq!(
        ok(airlock(&d, Some(USER), &["exec", "mine", "--", "id", "-u"])),
        format!("{USER}\n")
    );
    let info: serde_json::Value =
        serde_json::from_str(&ok(airlock(&d, Some(USER), &["inspect", "mine"]))).unwrap();
    assert_eq!(info["owner"], USER);
    let pid = info["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == USER.to_string()),
        "{uid_line}"
    );

    let ps = ok(airlock(&d, Some(USER), &["ps", "-a"]));
    assert!(ps.contains("mine") && !ps.contains("roots"), "{ps}");
    for verb in [
        &["stop", "roots"][..],
        &["rm", "-f", "roots"],
        &["exec", "roots", "--", "true"],
        &["logs", "roots"],
    ] {
        let e = airlock(&d, Some(USER), verb);
        assert_eq!(e.code, 125, "{verb:?}: {}", e.stdout);
        assert!(
            e.stderr.contains("no sandbox named"),
            "{verb:?}: {}",
            e.stderr
        );
    }
    let root_ps = ok(airlock(&d, None, &["ps"]));
    assert!(
        root_ps.contains("roots") && root_ps.lines().filter(|l| l.contains("mine")).count() == 2,
        "{root_ps}"
    );
    // A name root uses is free for the user (it used to be "in use",
    // which also told the user that root had one), and each finds its own.
    ok(airlock(
        &d,
        Some(USER),
        &["run", "-d", "--name", "roots", "--", "sleep", "100"],
    ));
    for (uid, owner) in [(None, 0), (Some(USER), USER)] {
        for name in ["mine", "roots"] {
            let info: serde_json::Value =
                serde_json::from_str(&ok(airlock(&d, uid, &["inspect", name]))).unwrap();
            assert_eq!(info["owner"], owner, "{name} for {uid:?}");
            assert_eq!(info["name"], name);
        }
    }
    // Root sees and names a user's sandbox as the daemon keeps it: shown
    // bare, the user's `mine` looked like root's own, and a bare name root
    // typed was taken for an id prefix, which a user could make one of
    // root's (a reviewer had root's stop reach root's own sandbox).
    let root_ps = ok(airlock(&d, None, &["ps"]));
    assert!(root_ps.contains(&format!("u{USER}-mine")), "{root_ps}");
    let info: serde_json::Value = serde_json::from_str(&ok(airlock(
        &d,
        None,
        &["inspect", &format!("u{USER}-mine")],
    )))
    .unwrap();
    assert_eq!(info["owner"], USER);
    // Nor may root take a name the daemon keeps a user's as.
    let e = airlock(
        &d,
        None,
        &["run", "-d", "--name", &format!("u{USER}-web"), "--", "true"],
    );
    assert_eq!(e.code, 125, "{}", e.stdout);
    assert!(e.stderr.contains("u<uid>-"), "{}", e.stderr);

    // Only root (and acknowledge_uids) may acknowledge a deny finding.
    let unsafe_run = [
        "run",
        "-d",
        "--seccomp-profile",
        "none",
        "--allow-unsafe",
        "seccomp-disabled",
        "--",
        "true",
    ];
    let e = airlock(&d, Some(USER), &unsafe_run);
    assert_eq!(e.code, 125);
    assert!(
        e.stderr.contains("may not acknowledge seccomp-disabled"),
        "{}",
        e.stderr
    );
    ok(airlock(&d, None, &unsafe_run));
    // A warning's code unlocks nothing: anyone may acknowledge it.
    ok(airlock(
        &d,
        Some(USER),
        &[
            "run",
            "-d",
            "--allow-unsafe",
            "shared-session",
            "--",
            "true",
        ],
    ));

    // What the kernel would not let the caller do itself, the daemon
    // does not do for it (raise its priority, join a namespace by path),
    // nor run an image, whose layers it would read and unpack as root.
    let e = airlock(&d, Some(USER), &["run", "-d", "--nice", "-5", "--", "true"]);
    assert_eq!(e.code, 125, "{}", e.stdout);
    assert!(
        e.stderr
            .contains("--nice: uid 1000 may not raise a priority"),
        "{}",
        e.stderr
    );
    let spec = d.dir.path().join("join.json");
    std::fs::write(
        &spec,
        r#"{"process": {"args": ["true"]}, "namespaces": {"net": false, "join": {"net": "/proc/1/ns/net"}}}"#,
    )
    .unwrap();
    std::fs::set_permissions(&spec, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = airlock(
        &d,
        Some(USER),
        &["run", "-d", "--spec", spec.to_str().unwrap()],
    );
    assert_eq!(e.code, 125, "{}", e.stdout);
    assert!(
        e.stderr
            .contains("namespaces.join: uid 1000 may not join namespaces by path"),
        "{}",
        e.stderr
    );
    let private = d.dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let img = private.join("img");
    std::fs::create_dir(&img).unwrap();
    let e = airlock(
        &d,
        Some(USER),
        &["run", "-d", "--image", img.to_str().unwrap(), "--", "true"],
    );
    assert_eq!(e.code, 125);
    assert!(
        e.stderr.contains("image: uid 1000 may not run an image"),
        "{}",
        e.stderr
    );
    // Nor an overlay's upper layer on the host, whose directories the
    // daemon would make as root: in another user's private directory
    // too, before. airlock's --overlay-dir, and bubblewrap's --overlay
    // RWSRC WORKDIR DEST (the error names the flag, not the spec's
    // filesystem.mounts[N].upper_dir).
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let (dir, up, work) = (
        path(&private),
        path(&private.join("up")),
        path(&private.join("work")),
    );
    for (flags, says) in [
        (
            &["--rootfs", "/", "--overlay-dir", &dir][..],
            "--overlay-dir: uid 1000 may not keep an overlay's upper layer",
        ),
        (
            &["--overlay-src", "/usr", "--overlay", &up, &work, "/mnt"],
            "/mnt: uid 1000 may not keep an overlay's upper layer",
        ),
    ] {
        let mut args = vec!["run", "-d"];
        args.extend(flags);
        args.extend(["--", "true"]);
        let e = airlock(&d, Some(USER), &args);
        assert_eq!(e.code, 125, "{}", e.stdout);
        assert!(e.stderr.contains(says), "{}", e.stderr);
    }
    for made in ["upper", "up", "work"] {
        assert!(!private.join(made).exists(), "{made}");
    }
    // A bind of a file the caller cannot read is opened as the caller,
    // whatever id it asks for inside: 65534 too, which is the id a
    // process unmapped in the sandbox (the daemon's root) sees itself as.
    let secret = private.join("secret");
    std::fs::write(&secret, "host secret").unwrap();
    for uid in [None, Some("65534")] {
        let mut args = vec!["run", "-d"];
        if let Some(u) = uid {
            args.extend(["--uid", u, "--gid", u]);
        }
        args.extend([
            "--ro-bind",
            secret.to_str().unwrap(),
            "/s",
            "--",
            "cat",
            "/s",
        ]);
        let e = airlock(&d, Some(USER), &args);
        assert_ne!(e.code, 0, "{uid:?}: {}", e.stdout);
        assert!(!e.stdout.contains("host secret"), "{uid:?}");
        assert!(
            e.stderr.contains(secret.to_str().unwrap()) && e.stderr.contains("ermission denied"),
            "{uid:?}: {}",
            e.stderr
        );
    }

    // Nor is a path the caller cannot reach resolved for it: the
    // guardrails' finding named where a link in another user's private
    // directory leads (here /etc), and which names there exist.
    std::os::unix::fs::symlink("/etc", private.join("lnk")).unwrap();
    let lnk = private.join("lnk");
    let bind_lnk = [
        "run",
        "-d",
        "--bind",
        lnk.to_str().unwrap(),
        "/x",
        "--",
        "true",
    ];
    let e = airlock(&d, Some(USER), &bind_lnk);
    assert_ne!(e.code, 0, "{}", e.stdout);
    assert!(
        !e.stderr.contains("host-system-writable") && e.stderr.contains("ermission denied"),
        "{}",
        e.stderr
    );
    // Root's own call is judged where the link leads.
    let e = airlock(&d, None, &bind_lnk);
    assert!(
        e.stderr.contains("error[host-system-writable]"),
        "{}",
        e.stderr
    );

    // Outside the group: the socket itself refuses the connection, and
    // the error says why (it said only "transport error").
    let e = airlock(&d, Some(OUTSIDER), &["ps"]);
    assert_eq!(e.code, 125);
    assert!(
        e.stderr.contains("cannot connect to airlockd")
            && e.stderr.contains("Permission denied")
            && e.stderr.contains("the daemon's group"),
        "{}",
        e.stderr
    );
}

/// A caller other than root has at most `max_streams_per_caller` Exec,
/// Attach, Logs, Events and Wait calls under way at once (each holds
/// daemon threads or a pidfd); a call's end gives its place back.
#[test]
fn a_callers_open_streams_are_bounded() {
    if !root_or_skip("a_callers_open_streams_are_bounded") {
        return;
    }
    let d = Daemon::start(&format!("group = \"{USER}\"\nmax_streams_per_caller = 2"));
    let id = ok(airlock(
        &d,
        Some(USER),
        &[
            "run",
            "-d",
            "--name",
            "talker",
            "--",
            "sh",
            "-c",
            "echo up; sleep 100",
        ],
    ));
    // A follower's stream is open once the workload's line reaches it.
    let follow = || {
        use std::io::BufRead;
        let mut f = command(&d, Some(USER), &["logs", "-f", "talker"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kept open with the child: a follower that wrote into a closed
        // pipe would die and give its place back.
        let mut out = std::io::BufReader::new(f.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, "up\n", "the follower did not open its stream");
        (f, out)
    };
    let mut followers = vec![follow()];
    // A Wait holds a place too (a pidfd of the daemon's while it waits).
    let wait = || {
        command(&d, Some(USER), &["wait", "talker"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // Once the follow and the wait are under way, a third is refused.
    let (mut waiter, third) = refused_while(wait, || airlock(&d, Some(USER), &["logs", "talker"]));
    assert_eq!(third.code, 125, "{}", third.stderr);
    assert!(
        third.stderr.contains("max_streams_per_caller") && third.stderr.contains("uid 1000 has 2"),
        "{}",
        third.stderr
    );
    let _ = waiter.kill();
    waiter.wait().unwrap();
    // Its place is given back once the daemon sees it gone.
    let freed = until(
        || airlock(&d, Some(USER), &["logs", "talker"]),
        |o| o.code == 0,
    );
    assert_eq!(freed.code, 0, "{}", freed.stderr);
    followers.push(follow());
    // Root is not counted (and names another's sandbox by its id).
    ok(airlock(&d, None, &["logs", id.trim()]));
    let (mut one, _) = followers.pop().unwrap();
    one.kill().unwrap();
    one.wait().unwrap();
    let again = until(
        || airlock(&d, Some(USER), &["logs", "talker"]),
        |o| o.code == 0,
    );
    assert_eq!(again.code, 0, "{}", again.stderr);
    for (mut f, _) in followers {
        let _ = f.kill();
        let _ = f.wait();
    }
    ok(airlock(&d, Some(USER), &["rm", "-f", "talker"]));
}

#[test]
fn a_caller_outside_the_group_gets_a_status_saying_so() {
    if !root_or_skip("a_caller_outside_the_group_gets_a_status_saying_so") {
        return;
    }
    // A socket anyone may open: the peer's credentials still decide.
    let d = Daemon::start(&format!("group = \"{USER}\"\nsocket_mode = 0o666"));
    let e = airlock(&d, Some(OUTSIDER), &["ps"]);
    assert_eq!(e.code, 125);
    assert!(
        e.stderr.contains(&format!(
            "uid {OUTSIDER} is neither root nor a member of group {USER}"
        )),
        "{}",
        e.stderr
    );
    let e = airlock(&d, Some(OUTSIDER), &["run", "-d", "--", "true"]);
    assert!(
        e.stderr.contains("neither root nor a member"),
        "{}",
        e.stderr
    );
    assert!(d.sandbox_dirs().is_empty());
}

/// Through the daemon too, Ctrl-P Ctrl-Q on a terminal ends the attach
/// (status 0) and leaves the workload running (it reached the workload
/// before, and the attach went on).
#[test]
fn detach_keys_detach_through_the_daemon() {
    if !root_or_skip("detach_keys_detach_through_the_daemon") {
        return;
    }
    let d = Daemon::start("");
    ok(airlock(
        &d,
        None,
        &[
            "run",
            "-d",
            "-t",
            "--name",
            "k",
            "--",
            "sh",
            "-c",
            "while read l; do echo ${l%ing}ong; done",
        ],
    ));
    let r = Command::new("python3")
        .args([
            "-c",
            include_str!("../../airlock-cli/tests/detach_driver.py"),
        ])
        .arg(airlock_bin(&d))
        .args(["attach", "k"])
        .env("AIRLOCK_HOST", d.host())
        .current_dir("/")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.contains("ping\\r\\npong\\r\\n"), "{out}");
    assert!(out.ends_with("status 0\n"), "{out}");
    let st = airlock(&d, None, &["inspect", "k"]);
    assert!(st.stdout.contains("\"running\""), "{}", st.stdout);
    ok(airlock(&d, None, &["rm", "-f", "k"]));
}

/// Through the daemon too, `exec -t` and `attach` ended by a signal (TERM,
/// HUP) give the terminal back as they found it before they go.
#[test]
fn a_signalled_remote_exec_gives_the_terminal_back() {
    if !root_or_skip("a_signalled_remote_exec_gives_the_terminal_back") {
        return;
    }
    let d = Daemon::start("");
    ok(airlock(
        &d,
        None,
        &["run", "-d", "-t", "--name", "sig", "--", "sleep", "100"],
    ));
    for verb in [
        &["exec", "-t", "sig", "sleep", "100"][..],
        &["attach", "sig"],
    ] {
        for sig in [libc::SIGTERM, libc::SIGHUP] {
            let out = Command::new("/usr/bin/python3")
                .args([
                    "-c",
                    include_str!("../../airlock-cli/tests/signal_driver.py"),
                    &sig.to_string(),
                ])
                .arg(airlock_bin(&d))
                .args(verb)
                .env("AIRLOCK_HOST", d.host())
                .current_dir("/")
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "raw True ended True restored True",
                "{verb:?}, signal {sig}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    ok(airlock(&d, None, &["rm", "-f", "sig"]));
}

/// Without a terminal of ours to give back, a remote attach to a
/// sandbox's terminal ends by a signal's default action, as a local one
/// does: a shell sees the signal (a loop of attaches stops at Ctrl-C).
#[test]
fn a_remote_attach_without_our_terminal_ends_by_the_signal() {
    if !root_or_skip("a_remote_attach_without_our_terminal_ends_by_the_signal") {
        return;
    }
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let d = Daemon::start("");
    let script = "while :; do echo tick; sleep 0.1; done";
    ok(airlock(
        &d,
        None,
        &["run", "-d", "-t", "--name", "tk", "--", "sh", "-c", script],
    ));
    let mut attach = attach_typing(&d, "tk", b"");
    let mut line = String::new();
    std::io::BufReader::new(attach.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("tick"), "{line:?}");
    // SAFETY: kill(2) of the child this test spawned and has not reaped.
    assert_eq!(unsafe { libc::kill(attach.id() as i32, libc::SIGINT) }, 0);
    let status = attach.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    ok(airlock(&d, None, &["rm", "-f", "tk"]));
}

/// A sandbox the daemon starts never keeps the session keyring, which
/// would be the daemon's own: refused for root too, naming the field.
#[test]
fn the_daemons_keyring_is_kept_for_no_one() {
    if !root_or_skip("the_daemons_keyring_is_kept_for_no_one") {
        return;
    }
    let d = Daemon::start("");
    let spec = d.dir.path().join("keep.toml");
    std::fs::write(
        &spec,
        "[process]\nargs = [\"true\"]\nkeep_session_keyring = true\n",
    )
    .unwrap();
    let r = airlock(&d, None, &["run", "-d", "--spec", spec.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr.contains("process.keep_session_keyring"),
        "{}",
        r.stderr
    );
}

/// A caller other than root holds at most `max_sandboxes_per_caller`
/// sandboxes (stopped ones until deleted), so that one user cannot take
/// every place of `max_sandboxes`; root is not counted.
#[test]
fn a_callers_sandboxes_are_bounded() {
    if !root_or_skip("a_callers_sandboxes_are_bounded") {
        return;
    }
    let d = Daemon::start(&format!("group = \"{USER}\"\nmax_sandboxes_per_caller = 2"));
    let run = |uid: Option<u32>, name: &str| {
        airlock(
            &d,
            uid,
            &["run", "-d", "--name", name, "--", "sleep", "100"],
        )
    };
    ok(run(Some(USER), "one"));
    ok(run(Some(USER), "two"));
    let e = run(Some(USER), "three");
    assert_eq!(e.code, 125, "{}", e.stdout);
    assert!(
        e.stderr.contains("max_sandboxes_per_caller") && e.stderr.contains("uid 1000 holds 2"),
        "{}",
        e.stderr
    );
    // Root is not counted, nor held back by the user's: three, past the
    // limit of two.
    for name in ["root1", "root2", "root3"] {
        ok(run(None, name));
    }
    // A place is given back by deleting, not by stopping.
    ok(airlock(&d, Some(USER), &["stop", "-t", "0", "one"]));
    assert_eq!(run(Some(USER), "three").code, 125);
    ok(airlock(&d, Some(USER), &["rm", "one"]));
    ok(run(Some(USER), "three"));
}

/// The other callers together leave root a tenth of `max_sandboxes`:
/// members of the group cannot lock the administrator out.
#[test]
fn root_keeps_places_of_its_own() {
    if !root_or_skip("root_keeps_places_of_its_own") {
        return;
    }
    let d = Daemon::start(&format!(
        "group = \"{USER}\"\nmax_sandboxes = 10\nmax_sandboxes_per_caller = 20"
    ));
    let run = |uid: Option<u32>, name: &str| {
        airlock(&d, uid, &["run", "-d", "--name", name, "--", "true"])
    };
    for i in 0..9 {
        ok(run(Some(USER), &format!("u{i}")));
    }
    let e = run(Some(USER), "u9");
    assert_eq!(e.code, 125, "{}", e.stdout);
    assert!(e.stderr.contains("max_sandboxes"), "{}", e.stderr);
    ok(run(None, "root"));
    assert_eq!(run(None, "root2").code, 125, "the daemon's limit holds");
}

/// Through a daemon as locally: the workload inherits the caller's
/// environment, `rm` and `stop` go on past a name that fails, and flags
/// that mean nothing there are refused, not dropped.
#[test]
fn remote_verbs_do_what_local_ones_do() {
    if !root_or_skip("remote_verbs_do_what_local_ones_do") {
        return;
    }
    let d = Daemon::start("");
    let mut c = command(
        &d,
        None,
        &[
            "run", "-d", "--name", "env", "--chdir", "/usr", "--", "printenv", "GREETING", "PWD",
        ],
    );
    // Its PWD is the sandbox's working directory, not the caller's (read
    // by printenv: a shell puts its own right).
    let o = c
        .env("GREETING", "from the caller")
        .env("PWD", "/the/caller's")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok(airlock(&d, None, &["wait", "env"]));
    assert_eq!(
        ok(airlock(&d, None, &["logs", "env"])),
        "from the caller\n/usr\n"
    );
    ok(airlock(
        &d,
        None,
        &["run", "-d", "--name", "a", "--", "sleep", "100"],
    ));
    let r = airlock(&d, None, &["rm", "-f", "missing", "a"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "a\n", "{}", r.stderr);
    assert!(r.stderr.contains("missing"), "{}", r.stderr);
    for (args, says) in [
        (
            vec!["exec", "-v", "env", "true"],
            "--verbose is not available with --host",
        ),
        (
            vec!["--state-root", "/tmp", "ps"],
            "--state-root is not available with --host",
        ),
    ] {
        let r = airlock(&d, None, &args);
        assert_eq!(r.code, 125, "{args:?}: {}", r.stdout);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
}

/// All the sandboxes of one caller besides root hold at most
/// `max_pids_per_caller` processes together: a pids cgroup above theirs,
/// which forks past it meet, while root's sandboxes still start. (A uid
/// of this test's own, in the daemon's group: the budget's cgroup is
/// the uid's.)
#[test]
fn a_callers_sandboxes_share_one_process_budget() {
    if !root_or_skip("a_callers_sandboxes_share_one_process_budget") {
        return;
    }
    const BUDGET_USER: u32 = 4243;
    let pids_own = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{}:pids:", l.split(':').next().unwrap()))
                .map(String::from)
        });
    let Some(own) = pids_own else {
        eprintln!("skipped a_callers_sandboxes_share_one_process_budget: no v1 pids hierarchy here (the v2 path is unit-tested)");
        return;
    };
    let budget = PathBuf::from("/sys/fs/cgroup/pids")
        .join(own.trim_start_matches('/'))
        .join(format!("airlockd-u{BUDGET_USER}"));
    let d = Daemon::start(&format!("group = \"{USER}\"\nmax_pids_per_caller = 30"));
    let as_budget_user = |args: &[&str]| {
        let mut c = Command::new("setpriv");
        c.args([
            format!("--reuid={BUDGET_USER}"),
            format!("--regid={USER}"),
            "--clear-groups".into(),
            "--".into(),
        ]);
        c.arg(airlock_bin(&d))
            .env("AIRLOCK_HOST", d.host())
            .args(args)
            .stdin(Stdio::null())
            .current_dir("/");
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // What `logs` shows of the workload's stderr is on ours.
        String::from_utf8_lossy(&[o.stdout, o.stderr].concat()).into_owned()
    };
    let forks = "for i in $(seq 20); do sleep 1000 & done; wait";
    let read = |f: &str| std::fs::read_to_string(budget.join(f)).unwrap_or_default();
    as_budget_user(&["run", "-d", "--name", "a", "--", "sh", "-c", forks]);
    assert_eq!(read("pids.max").trim(), "30");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while read("pids.current").trim() != "22" && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // 22 processes (init, sh, 20 sleeps): the second's forks meet the
    // budget, and its shell gives up.
    as_budget_user(&["run", "-d", "--name", "b", "--", "sh", "-c", forks]);
    let mut logs = String::new();
    while !logs.contains("Cannot fork") && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(50));
        logs = as_budget_user(&["logs", "b"]);
    }
    assert!(
        logs.contains("Cannot fork"),
        "{logs:?}: {}",
        read("pids.current")
    );
    let current: u64 = read("pids.current").trim().parse().unwrap();
    assert!(current <= 30, "{current} processes");
    // Root is not held to it.
    ok(airlock(&d, None, &["run", "-d", "--", "sh", "-c", forks]));
}

/// The client talks only to a server run by root or by its own user: a
/// socket someone else put where AIRLOCK_HOST leads (a /tmp path) gets
/// nothing of its specs, environments or input.
#[test]
fn the_client_refuses_a_server_of_another_user() {
    if !root_or_skip("the_client_refuses_a_server_of_another_user") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let sock = dir.path().join("planted.sock");
    let mut server = spawn_ready_server(
        python_as(
            OUTSIDER,
            "import socket, sys, time\n\
             s = socket.socket(socket.AF_UNIX)\n\
             s.bind(sys.argv[1]); s.listen(8)\n\
             print('ready', flush=True)\n\
             end = time.time() + 60\n\
             while time.time() < end: s.accept()[0].close()",
        )
        .arg(&sock)
        .current_dir("/"),
    );
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_airlockd")).with_file_name("airlock");
    let o = Command::new(bin)
        .env("AIRLOCK_HOST", format!("unix://{}", sock.display()))
        .args(["ps"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("runs as uid {OUTSIDER}, neither root nor us")),
        "{err}"
    );
}

/// Opens connections to the socket (argv[1]) as it is run, argv[2] of
/// them, and says of each whether the daemon kept it (its HTTP/2
/// preface arrived) or closed it; then holds them until stdin closes.
const CONNECTIONS: &str = r#"
import socket, sys
held = []
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    held.append(s)
said = []
for s in held:
    s.settimeout(20)
    try:
        said.append("kept" if s.recv(1) else "closed")
    except ConnectionResetError:
        said.append("closed")
    except socket.timeout:
        said.append("silent")
print(" ".join(said), flush=True)
sys.stdin.read()
"#;

/// A caller other than root holds at most `max_connections_per_caller`
/// connections (each a file descriptor of the daemon's): one more is
/// closed as it is accepted and the daemon's log says why; a
/// connection's end gives its place back; root is not counted. The
/// daemon runs with its soft limit on open files raised to the hard one.
#[test]
fn a_callers_connections_are_bounded() {
    if !root_or_skip("a_callers_connections_are_bounded") {
        return;
    }
    let d = Daemon::start(&format!(
        "group = \"{USER}\"\nmax_connections_per_caller = 2"
    ));
    // Started with a soft limit below the hard one (common::spawn), the
    // daemon raised its own; its sandboxes get the one it had.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", d.pid())).unwrap();
    let files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(files[3], files[4], "{limits}");
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
    ok(airlock(
        &d,
        Some(USER),
        &[
            "run",
            "-d",
            "--name",
            "files",
            "--",
            "sh",
            "-c",
            "ulimit -Sn; ulimit -Hn",
        ],
    ));
    ok(airlock(&d, Some(USER), &["wait", "files"]));
    let inside = ok(airlock(&d, Some(USER), &["logs", "files"]));
    ok(airlock(&d, Some(USER), &["rm", "files"]));
    let want = format!(
        "{DAEMON_NOFILE}\n{}\n",
        hard.map_or("unlimited".into(), |h| h.to_string())
    );
    assert_eq!(inside, want);

    let hold = |uid: u32, n: u32| {
        use std::io::BufRead;
        let mut h = python_as(uid, CONNECTIONS)
            .arg(d.socket())
            .arg(n.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut said = String::new();
        std::io::BufReader::new(h.stdout.take().unwrap())
            .read_line(&mut said)
            .unwrap();
        (h, said.trim().to_string())
    };
    let (mut holder, said) = hold(USER, 3);
    assert_eq!(said, "kept kept closed");
    assert!(
        d.log()
            .contains("uid 1000 has 2 connections open, max_connections_per_caller"),
        "{}",
        d.log()
    );
    // The caller's client is refused while both are held; root's is not.
    let refused = airlock(&d, Some(USER), &["ps"]);
    assert_eq!(refused.code, 125, "{}", refused.stderr);
    // Closed before the client's handshake was written, or after.
    assert!(
        refused.stderr.contains("airlockd closed the connection")
            && refused.stderr.contains("max_connections_per_caller"),
        "{}",
        refused.stderr
    );
    let (mut root, said) = hold(0, 3);
    assert_eq!(said, "kept kept kept");
    ok(airlock(&d, None, &["ps"]));
    drop(holder.stdin.take());
    holder.wait().unwrap();
    let again = until(|| airlock(&d, Some(USER), &["ps"]), |o| o.code == 0);
    assert_eq!(again.code, 0, "{}", again.stderr);
    drop(root.stdin.take());
    root.wait().unwrap();
}

/// A `cgroup_parent` that is not a cgroup path stops the daemon before it
/// listens (every sandbox with limits would fail on it), naming the key.
#[test]
fn a_bad_cgroup_parent_stops_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("airlockd.toml");
    let socket = dir.path().join("airlockd.sock");
    let toml = format!(
        "group = \"\"\nlisten = {:?}\nstate_root = {:?}\ncgroup_parent = \"/airlock/../up\"\n",
        socket,
        dir.path().join("state")
    );
    std::fs::write(&config, toml).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_airlockd"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cgroup_parent: \"/airlock/../up\" is not a cgroup path"),
        "{stderr}"
    );
    assert!(!socket.exists());
}

/// A `cgroup_parent` the daemon makes gets the v2 controllers from the
/// level it is made under, level by level (as systemd gives none below a
/// delegated unit's cgroup): without them a sandbox under it could have
/// no limit. Under this test's own memory cgroup, in every hierarchy;
/// what it made is removed.
#[test]
fn a_cgroup_parent_the_daemon_makes_gets_the_controllers() {
    if !root_or_skip("a_cgroup_parent_the_daemon_makes_gets_the_controllers") {
        return;
    }
    let layout = airlock::cgroup::Layout::detect().unwrap();
    let Some(v2) = layout.v2.clone() else {
        eprintln!("SKIPPED: this host has no cgroup v2 hierarchy");
        return;
    };
    let own = layout.v1.get("memory").unwrap_or(&v2).own.clone();
    let base = format!(
        "{}/airlockd-parent-{}",
        own.trim_end_matches('/'),
        std::process::id()
    );
    let parent = format!("{base}/sandboxes");
    // Every level from the hierarchy's root down, in every hierarchy,
    // that is not there yet: the daemon's to make, the test's to remove.
    let levels = |l: &airlock::cgroup::Layout| -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        for h in l.v2.iter().chain(l.v1.values()) {
            let mut at = h.own_dir();
            while !at.exists() {
                dirs.push(at.clone());
                at = at.parent().unwrap().to_path_buf();
            }
        }
        dirs
    };
    /// Removes what the daemon made, deepest first, however the test ends.
    struct Made(Vec<PathBuf>);
    impl Drop for Made {
        fn drop(&mut self) {
            for dir in &self.0 {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
    let made = Made(levels(&layout.at(&parent)));
    assert!(!made.0.is_empty());
    let read = |dir: &std::path::Path, file: &str| {
        std::fs::read_to_string(dir.join(file)).unwrap_or_default()
    };
    let has = |dir: &std::path::Path| read(dir, "cgroup.controllers");
    // The level the daemon makes the first one under gives its children
    // what it has; the test changes nothing there, so it must give them
    // all already (this host's v2 root does; a pure v2 host's test
    // cgroup, holding processes, cannot).
    let v2_parent = layout.at(&parent).v2.unwrap().own_dir();
    let above = v2_parent
        .ancestors()
        .find(|a| a.exists())
        .unwrap()
        .to_path_buf();
    let wanted = has(&above);
    let given = read(&above, "cgroup.subtree_control");
    if wanted
        .split_whitespace()
        .any(|c| !given.split_whitespace().any(|g| g == c))
    {
        eprintln!(
            "SKIPPED: {} gives its children only {given:?} of {wanted:?}; the test changes nothing there",
            above.display()
        );
        return;
    }
    {
        let _d = Daemon::start(&format!("cgroup_parent = {parent:?}"));
        let dir = &v2_parent;
        let got = has(dir);
        for c in wanted.split_whitespace() {
            assert!(
                got.split_whitespace().any(|g| g == c),
                "{} has {got:?}, not {c} (its parent's {wanted:?})",
                dir.display()
            );
        }
    }
    let dirs = made.0.clone();
    drop(made);
    for dir in dirs {
        assert!(!dir.exists(), "{} left", dir.display());
    }
}

/// `airlock --host stop` without `-t` leaves the grace to the daemon's
/// `stop_grace`: it used to send the local default (10 s) every time.
#[test]
fn a_remote_stop_takes_the_daemons_grace() {
    if !root_or_skip("a_remote_stop_takes_the_daemons_grace") {
        return;
    }
    let d = Daemon::start("stop_grace = 1");
    let script = "trap '' TERM; echo ready; while :; do sleep 1; done";
    let r = airlock(
        &d,
        None,
        &["run", "-d", "--name", "deaf", "--", "sh", "-c", script],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ready = || {
        airlock(&d, None, &["logs", "deaf"])
            .stdout
            .contains("ready")
    };
    let mut tries = 0;
    while !ready() {
        tries += 1;
        assert!(tries < 500, "the workload never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Past the daemon's bound: refused, naming the flag typed.
    let r = airlock(&d, None, &["stop", "-t", "900", "deaf"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("--time: 900 seconds"), "{}", r.stderr);
    let began = std::time::Instant::now();
    let r = airlock(&d, None, &["stop", "deaf"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // SIGTERM is ignored: only the kill after the grace ends it.
    let took = began.elapsed();
    let _ = airlock(&d, None, &["rm", "-f", "deaf"]);
    assert!(took < std::time::Duration::from_secs(8), "{took:?}");
}

/// A list shows the first kilobyte or so of each command (Inspect gives
/// it whole): sandboxes whose specs hold a megabyte of arguments made a
/// list larger than a client took in one message, and `ps` failed for
/// everyone who could see them (root sees every user's).
#[test]
fn a_list_of_large_commands_is_still_a_list() {
    if !root_or_skip("a_list_of_large_commands_is_still_a_list") {
        return;
    }
    let d = Daemon::start("");
    let big = "x".repeat(120 << 10);
    for n in 0..6 {
        let name = format!("big{n}");
        let mut args = vec!["create", "--name", &name, "--", "true"];
        args.extend(std::iter::repeat_n(big.as_str(), 7));
        let r = airlock(&d, None, &args);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let r = airlock(&d, None, &["ps", "-a"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 7, "{}", r.stdout.len());
    for line in r.stdout.lines().skip(1) {
        assert!(line.ends_with('…') && line.len() < 2048, "{}", line.len());
    }
    let r = airlock(&d, None, &["inspect", "big0"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.len() > 7 * (120 << 10), "{}", r.stdout.len());
}

/// An Exec or Attach stream holds one of its caller's places from its
/// start, before its first message: one that never sent it held a task
/// and an HTTP/2 stream outside `max_streams_per_caller`.
#[test]
fn a_silent_stream_holds_a_place() {
    if !root_or_skip("a_silent_stream_holds_a_place") {
        return;
    }
    use airlock_client::proto;
    let d = Daemon::start(&format!("group = \"{USER}\"\nmax_streams_per_caller = 1"));
    ok(airlock(
        &d,
        Some(USER),
        &["run", "-d", "--name", "quiet", "--", "sleep", "100"],
    ));
    let socket = d.socket();
    let refused = std::thread::spawn(move || {
        runtime_as(USER).block_on(async {
            let c = airlock_client::Client::connect_path(&socket).await.unwrap();
            let silent = || {
                let mut c = c.clone();
                tokio::spawn(async move {
                    let never = tokio_stream::pending::<proto::ExecInput>();
                    c.raw().exec(never).await.map(drop)
                })
            };
            let mut held = silent();
            // Until the silent stream has its place (or for good, if it
            // never takes one). A Logs call may hold the only place when
            // the Exec arrives, which is then refused and ends: it is
            // opened again.
            let mut r = Ok(());
            for _ in 0..200 {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                if held.is_finished() {
                    held = silent();
                    continue;
                }
                let logs = proto::LogsRequest {
                    sandbox: "quiet".into(),
                    tail: None,
                    follow: false,
                };
                r = c.clone().raw().logs(logs).await.map(drop);
                if r.is_err() {
                    break;
                }
            }
            held.abort();
            r
        })
    })
    .join()
    .unwrap();
    let _ = airlock(&d, Some(USER), &["rm", "-f", "quiet"]);
    let e = refused.expect_err("a second stream beside the silent one");
    assert!(e.message().contains("max_streams_per_caller"), "{e:?}");
}

/// A request holds one of its caller's places from its head on, while
/// its message is received: tonic receives a call's whole message (up to
/// 2 MiB) before the handler takes a place under `max_calls_per_caller`,
/// so a caller that began hundreds of calls and never finished sending
/// them held that much of the daemon's memory outside every limit.
#[test]
fn a_message_being_received_holds_a_place() {
    if !root_or_skip("a_message_being_received_holds_a_place") {
        return;
    }
    use airlock_client::proto;
    let d = Daemon::start(&format!(
        "group = \"{USER}\"\nmax_calls_per_caller = 1\nmax_streams_per_caller = 1"
    ));
    let socket = d.socket();
    let (refused, freed) = std::thread::spawn(move || {
        runtime_as(USER).block_on(async {
            let c = airlock_client::Client::connect_path(&socket).await.unwrap();
            // A List whose message never comes: the request's body stays
            // open, as a message's last byte held back would keep it.
            let unfinished = || {
                let channel = c.channel();
                tokio::spawn(async move {
                    let mut g = tonic::client::Grpc::new(channel);
                    g.ready().await.unwrap();
                    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
                        "/airlock.v1.Sandboxes/List",
                    );
                    let never = tokio_stream::pending::<proto::ListRequest>();
                    g.client_streaming::<_, _, proto::ListResponse, _>(
                        tonic::Request::new(never),
                        path,
                        tonic_prost::ProstCodec::default(),
                    )
                    .await
                    .map(drop)
                })
            };
            let held = [unfinished(), unfinished()];
            // A whole List goes through until both are being received.
            let mut refused = Ok(());
            for _ in 0..200 {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                refused = c
                    .clone()
                    .raw()
                    .list(proto::ListRequest::default())
                    .await
                    .map(drop);
                if refused.is_err() || held.iter().any(|h| h.is_finished()) {
                    break;
                }
            }
            for h in &held {
                h.abort();
            }
            // Their places are given back once the daemon sees them gone.
            let mut freed = Err(tonic::Status::unknown("never tried"));
            for _ in 0..200 {
                freed = c
                    .clone()
                    .raw()
                    .list(proto::ListRequest::default())
                    .await
                    .map(drop);
                if freed.is_ok() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            (refused, freed)
        })
    })
    .join()
    .unwrap();
    let e = refused.expect_err("a List beside two messages being received");
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message()
            .contains("uid 1000 has 2 requests being received"),
        "{e:?}"
    );
    freed.expect("a List once the unfinished requests went away");
    // Root is not counted.
    ok(airlock(&d, None, &["ps"]));
}

/// A caller other than root has at most `max_calls_per_caller` other
/// calls under way at once (each waits on the daemon's blocking pool,
/// which every caller shares); root is not counted, and a call's end
/// gives its place back.
#[test]
fn a_callers_calls_under_way_are_bounded() {
    if !root_or_skip("a_callers_calls_under_way_are_bounded") {
        return;
    }
    let d = Daemon::start(&format!("group = \"{USER}\"\nmax_calls_per_caller = 1"));
    ok(airlock(
        &d,
        Some(USER),
        &[
            "run",
            "-d",
            "--name",
            "stubborn",
            "--",
            "sh",
            "-c",
            "trap '' TERM; echo up; sleep 100",
        ],
    ));
    until(
        || airlock(&d, Some(USER), &["logs", "stubborn"]),
        |o| o.stdout.contains("up"),
    );
    // A Stop holds its call through the grace period the workload
    // ignores SIGTERM for.
    let stop = || {
        command(&d, Some(USER), &["stop", "-t", "5", "stubborn"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut stopping, second) = refused_while(stop, || airlock(&d, Some(USER), &["ps"]));
    assert_eq!(second.code, 125, "{}", second.stderr);
    assert!(
        second.stderr.contains("max_calls_per_caller") && second.stderr.contains("uid 1000 has 1"),
        "{}",
        second.stderr
    );
    // A stream's lookup, and a Wait's, take a call's place while they
    // read the state (up to a megabyte of spec each): not only the
    // stream's place, of which a caller has four times as many.
    for verb in ["logs", "wait"] {
        let r = airlock(&d, Some(USER), &[verb, "stubborn"]);
        assert_eq!(r.code, 125, "{verb}: {}", r.stderr);
        assert!(
            r.stderr.contains("max_calls_per_caller"),
            "{verb}: {}",
            r.stderr
        );
    }
    // Root's are not counted.
    ok(airlock(&d, None, &["ps"]));
    let _ = stopping.kill();
    stopping.wait().unwrap();
    let freed = until(|| airlock(&d, Some(USER), &["ps"]), |o| o.code == 0);
    assert_eq!(freed.code, 0, "{}", freed.stderr);
    let _ = airlock(&d, None, &["rm", "-f", "u1000-stubborn"]);
}

/// A call whose client went away keeps its place while the work it
/// handed the daemon's blocking pool runs on: that work is not cancelled
/// with the call, and a caller that sent calls and left at once had the
/// pool work for it outside `max_calls_per_caller`.
#[test]
fn a_cancelled_calls_work_keeps_its_place() {
    if !root_or_skip("a_cancelled_calls_work_keeps_its_place") {
        return;
    }
    let d = Daemon::start(&format!("group = \"{USER}\"\nmax_calls_per_caller = 1"));
    // A Create slow to set up: many binds (see BINDS).
    let targets: Vec<String> = (0..BINDS).map(|i| format!("/b/{i}")).collect();
    let mut args = vec!["create", "--name", "slow"];
    for t in &targets {
        args.extend(["--ro-bind", "/usr", t.as_str()]);
    }
    args.extend(["--", "true"]);
    let mut creating = command(&d, Some(USER), &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The Create's work has begun once its state directory is there.
    while d.indexed_names().is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = creating.kill();
    creating.wait().unwrap();
    let refused = airlock(&d, Some(USER), &["ps"]);
    let freed = until(|| airlock(&d, Some(USER), &["ps", "-a"]), |o| o.code == 0);
    assert_eq!(refused.code, 125, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("max_calls_per_caller")
            && refused.stderr.contains("uid 1000 has 1"),
        "{}",
        refused.stderr
    );
    assert_eq!(freed.code, 0, "{}", freed.stderr);
    // The work went on to its end.
    assert!(freed.stdout.contains("slow"), "{}", freed.stdout);
    ok(airlock(&d, Some(USER), &["rm", "-f", "slow"]));
}

/// Enough for half a second's setup in a debug build, well inside
/// `until`'s patience.
const BINDS: usize = 300;

/// A client's errors name its sandboxes as it does: the library's say
/// how the state root keeps them (`u1000-web`).
#[test]
fn a_clients_errors_name_its_sandbox_as_it_does() {
    if !root_or_skip("a_clients_errors_name_its_sandbox_as_it_does") {
        return;
    }
    let d = Daemon::start(&format!("group = \"{USER}\""));
    ok(airlock(
        &d,
        Some(USER),
        &["run", "-d", "--name", "web", "--", "sleep", "100"],
    ));
    let again = airlock(&d, Some(USER), &["start", "web"]);
    let _ = airlock(&d, Some(USER), &["rm", "-f", "web"]);
    assert_eq!(again.code, 125, "{}", again.stderr);
    assert!(
        again.stderr.contains("sandbox web is running"),
        "{}",
        again.stderr
    );
    assert!(!again.stderr.contains("u1000-"), "{}", again.stderr);
}

#[path = "../../airlock-cli/tests/common/images.rs"]
mod images;

/// `airlock attach NAME` through the daemon, `input` typed (and its end),
/// its output piped.
fn attach_typing(d: &Daemon, name: &str, input: &[u8]) -> std::process::Child {
    let mut attach = command(d, None, &["attach", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut attach.stdin.take().unwrap(), input).unwrap();
    attach
}

/// A remote verb ends as the local one does: an image path relative to
/// the caller's directory is found there (the daemon's is another); an
/// attach to a `--rm` sandbox writes all the output, then ends with the
/// status its end left; a sandbox whose supervisor was killed is
/// told with why and 125, not a made-up 137; `events --since 0` is every
/// event kept.
#[test]
fn remote_verbs_end_as_local_ones_do() {
    if !root_or_skip("remote_verbs_end_as_local_ones_do") {
        return;
    }
    let d = Daemon::start("");
    let here = d.dir.path().join("here");
    std::fs::create_dir(&here).unwrap();
    images::oci_layout(
        &here.join("img"),
        &[(
            "demo:1",
            vec![images::busybox_layer()],
            serde_json::json!({"Cmd": ["/bin/sh", "-c", "echo from-image"]}),
        )],
    );
    let o = command(
        &d,
        None,
        &["run", "-d", "--name", "img", "--image", "./img"],
    )
    .current_dir(&here)
    .output()
    .unwrap();
    let said = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(o.status.success(), "{}", said(&o));
    assert_eq!(ok(airlock(&d, None, &["wait", "img"])).trim(), "0");
    assert_eq!(ok(airlock(&d, None, &["logs", "img"])), "from-image\n");

    ok(airlock(
        &d,
        None,
        &[
            "run",
            "-d",
            "-i",
            "--rm",
            "--name",
            "big",
            "--",
            "sh",
            "-c",
            "read x; head -c 300000 /dev/zero; exit 6",
        ],
    ));
    let attach = attach_typing(&d, "big", b"go\n");
    // A reader slower than the stream: what the client queued when the
    // stream ended is still to be written.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let o = attach.wait_with_output().unwrap();
    assert_eq!(
        o.stdout.len(),
        300000,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(6), "{}", said(&o));

    ok(airlock(
        &d,
        None,
        &["run", "-d", "-i", "--name", "k", "--", "sleep", "1000"],
    ));
    let attach = command(&d, None, &["attach", "k"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(airlock(&d, None, &["inspect", "k"]))).unwrap();
    let supervisor = inspect["supervisor_pid"].as_i64().unwrap() as i32;
    // SAFETY: kill on the supervisor this test's daemon started.
    unsafe { libc::kill(supervisor, libc::SIGKILL) };
    let o = attach.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", said(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("sandbox k stopped ("),
        "{}",
        said(&o)
    );
    ok(airlock(&d, None, &["rm", "-f", "k"]));

    let events = ok(airlock(
        &d,
        None,
        &["events", "--since", "0", "--no-follow"],
    ));
    assert!(events.contains("created"), "{events}");
}

/// A signal sent to `airlock --host exec` reaches the process, as it
/// does locally: its trap runs and its own status comes back, where the
/// client used to die of it and the daemon then stopped the process.
#[test]
fn a_remote_exec_passes_its_signals_on() {
    use std::io::BufRead;
    if !root_or_skip("a_remote_exec_passes_its_signals_on") {
        return;
    }
    let d = Daemon::start("");
    ok(airlock(
        &d,
        None,
        &["run", "-d", "--name", "s", "--", "sleep", "100"],
    ));
    for (sig, name) in [(libc::SIGTERM, "TERM"), (libc::SIGUSR1, "USR1"), (40, "40")] {
        let script =
            format!("trap 'echo bye; exit 3' {name}; echo ready; while :; do sleep 0.05; done");
        let mut child = command(&d, None, &["exec", "s", "--", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        assert_eq!(rest, "bye\n", "{name}");
        assert_eq!(status.code(), Some(3), "{name}");
    }
    // Behind input the process does not read (megabytes of it), a signal
    // ends the exec (it waited behind the input, and Ctrl-C did nothing),
    // and the process with it.
    let script = "echo ready; while :; do sleep 0.05; done";
    let mut child = command(&d, None, &["exec", "s", "--", "sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 16];
        while std::io::Write::write_all(&mut input, &chunk).is_ok() {}
    });
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    // Until the client holds as much as it queues.
    std::thread::sleep(std::time::Duration::from_secs(1));
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let ended = (0..100).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        child.try_wait().unwrap()
    });
    let Some(status) = ended else {
        let _ = child.kill();
        panic!("the exec did not end on SIGINT");
    };
    assert_eq!(status.code(), Some(130), "{status:?}");
    // The daemon sees the client gone within its poll, then stops it.
    let gone = (0..50).any(|_| {
        let ps = ok(airlock(&d, None, &["exec", "s", "--", "ps", "-o", "args"]));
        std::thread::sleep(std::time::Duration::from_millis(100));
        !ps.contains("while")
    });
    assert!(gone, "the exec's process outlived it");
    ok(airlock(&d, None, &["rm", "-f", "s"]));
}

/// A created sandbox (its workload held until `start`) may be attached
/// to through the daemon, as locally: what is typed waits for the start,
/// and the output and status come back.
#[test]
fn a_created_sandbox_can_be_attached_to() {
    if !root_or_skip("a_created_sandbox_can_be_attached_to") {
        return;
    }
    let d = Daemon::start("");
    ok(airlock(
        &d,
        None,
        &[
            "create",
            "-i",
            "--name",
            "j",
            "--",
            "sh",
            "-c",
            "read x; echo got $x",
        ],
    ));
    let attach = attach_typing(&d, "j", b"hi\n");
    std::thread::sleep(std::time::Duration::from_millis(500));
    ok(airlock(&d, None, &["start", "j"]));
    let o = attach.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "got hi\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0));
    ok(airlock(&d, None, &["rm", "-f", "j"]));
}

/// A client's sandbox may name, as an overlay lower, a directory shaped
/// as a layer of an image store (root's among them): the root supervisor
/// the daemon starts for it takes no lock there, which would hold off
/// root's `image prune` of that layer for as long as the client keeps
/// the sandbox held. (The daemon runs no image for a client; root's own
/// sandboxes still pin their layers, see the CLI's images tests.)
#[test]
fn a_clients_lower_holds_off_no_prune() {
    if !root_or_skip("a_clients_lower_holds_off_no_prune") {
        return;
    }
    let d = Daemon::start(&format!("group = \"{USER}\""));
    let layer = d.dir.path().join("store/layers/ab-plain");
    std::fs::create_dir_all(layer.join("rootfs/bin")).unwrap();
    std::fs::write(layer.join("meta.json"), "{}").unwrap();
    std::fs::copy("/bin/busybox", layer.join("rootfs/bin/true")).unwrap();
    for p in ["store", "store/layers", "store/layers/ab-plain"] {
        let p = d.dir.path().join(p);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let rootfs = layer.join("rootfs");
    let spec = d.dir.path().join("lower.json");
    std::fs::write(
        &spec,
        serde_json::json!({
            "process": {"args": ["/bin/true"]},
            "filesystem": {"root": {"type": "overlay", "lower": [rootfs]}},
        })
        .to_string(),
    )
    .unwrap();
    std::fs::set_permissions(&spec, std::fs::Permissions::from_mode(0o644)).unwrap();
    let spec = spec.to_str().unwrap();
    ok(airlock(
        &d,
        Some(USER),
        &["create", "--name", "low", "--spec", spec],
    ));
    let ps = airlock(&d, Some(USER), &["ps", "-a"]);
    assert!(
        ps.stdout.contains("low") && ps.stdout.contains("created"),
        "{}",
        ps.stdout
    );
    let dir = std::fs::File::open(&rootfs).unwrap();
    let exclusive = rustix::fs::FlockOperation::NonBlockingLockExclusive;
    assert!(
        rustix::fs::flock(&dir, exclusive).is_ok(),
        "the client's held sandbox pins the layer"
    );
    drop(dir);
    ok(airlock(&d, Some(USER), &["rm", "-f", "low"]));
}
