//! The container's process as runc treats it: a program that is not in
//! the rootfs fails `create` and leaves nothing; one that vanishes before
//! `start` leaves a stopped container with its exit recorded; and what
//! `exec --process` and `exec --cap` ask for, checked from inside.

#[macro_use]
mod common;
use common::*;
use serde_json::{json, Value};
use std::process::Command;

/// The airlock state of container `id` under the test's root.
fn airlock_state(env: &Env, id: &str) -> Value {
    for e in std::fs::read_dir(env.root()).unwrap().flatten() {
        let Ok(text) = std::fs::read(e.path().join("state.json")) else {
            continue;
        };
        let v: Value = serde_json::from_slice(&text).unwrap();
        if v["name"] == id {
            return v;
        }
    }
    panic!("no state for {id}");
}

#[test]
fn a_missing_program_fails_create_and_leaves_nothing() {
    require_root!();
    let env = Env::new();
    for (i, (args, needle)) in [
        (
            vec!["nope"],
            "exec: \"nope\": executable file not found in $PATH",
        ),
        (vec!["/bin/nope"], "/bin/nope: no such file or directory"),
        (vec!["/etc"], "/etc: permission denied"),
    ]
    .into_iter()
    .enumerate()
    {
        let b = env.bundle(&format!("b{i}"), &args, |c| {
            c["linux"]["resources"] = json!({"pids": {"limit": 50}});
        });
        let id = format!("m{i}");
        let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), &id]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {out} {err}");
        assert!(err.contains(needle), "{needle:?} not in {err}");
        assert!(
            !env.rt(&["state", &id]).status.success(),
            "left a container"
        );
    }
    // The root's own lock stays; no container directory does.
    let left: Vec<_> = std::fs::read_dir(env.root())
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(left.is_empty(), "state left behind: {left:?}");
}

/// An exec of a program the container lacks fails in the words runc's
/// clients read for a shell's status (podman: 127 and 126).
#[test]
fn a_missing_program_fails_exec_in_runcs_words() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("b", &["sleep", "1000"], |_| {});
    let o = env.rt(&["run", "-d", "--bundle", b.to_str().unwrap(), "x1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    for (program, needle) in [
        ("nope", "exec: \"nope\": executable file not found in $PATH"),
        ("/bin/nope", "/bin/nope: no such file or directory"),
        ("/etc", "permission denied"),
    ] {
        let o = env.rt(&["exec", "x1", program]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(255), "{program}: {out} {err}");
        assert!(
            err.to_lowercase().contains(&needle.to_lowercase()),
            "{needle:?} not in {err}"
        );
    }
    assert_eq!(state(&env, "x1")["status"], "running");
    assert!(env.rt(&["delete", "--force", "x1"]).status.success());
}

/// HOME, when the process's environment has none, is its user's home in
/// the container's /etc/passwd, else `/`, as runc sets it; for the
/// workload and an exec. A FIFO standing as /etc/passwd neither hangs
/// the create nor gives a home.
#[test]
fn home_comes_from_the_containers_passwd() {
    require_root!();
    let env = Env::new();
    let workload = "echo $HOME > /tmp/home; exec sleep 1000";
    let b = env.bundle("b", &["sh", "-c", workload], |_| {});
    std::fs::write(
        b.join("rootfs/etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n",
    )
    .unwrap();
    let o = env.rt(&["run", "-d", "--bundle", b.to_str().unwrap(), "h1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let written = "while [ ! -s /tmp/home ]; do sleep 0.05; done; cat /tmp/home";
    let o = env.rt(&["exec", "h1", "sh", "-c", written]);
    assert_eq!(text(&o).0, "/root\n", "{:?}", text(&o));
    let o = env.rt(&[
        "exec",
        "--user",
        "1000:1000",
        "h1",
        "sh",
        "-c",
        "echo $HOME",
    ]);
    assert_eq!(text(&o).0, "/home/u\n", "{:?}", text(&o));
    let o = env.rt(&[
        "exec",
        "--user",
        "1001:1001",
        "h1",
        "sh",
        "-c",
        "echo $HOME",
    ]);
    assert_eq!(text(&o).0, "/\n", "{:?}", text(&o));
    let o = env.rt(&["exec", "--env", "HOME=/x", "h1", "sh", "-c", "echo $HOME"]);
    assert_eq!(text(&o).0, "/x\n", "{:?}", text(&o));
    // An empty HOME counts as none, as runc counts it.
    let o = env.rt(&["exec", "--env", "HOME=", "h1", "sh", "-c", "echo $HOME"]);
    assert_eq!(text(&o).0, "/root\n", "{:?}", text(&o));
    assert!(env.rt(&["delete", "--force", "h1"]).status.success());

    let b = env.bundle("f", &["sh", "-c", "echo $HOME"], |_| {});
    let fifo = std::ffi::CString::new(b.join("rootfs/etc/passwd").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "h2"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out, "/\n");
}

#[test]
fn a_program_that_vanishes_after_create_stops_the_container() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("b", &["/bin/gone"], |_| {});
    std::fs::copy("/bin/busybox", b.join("rootfs/bin/gone")).unwrap();
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "v1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(state(&env, "v1")["status"], "created");
    std::fs::remove_file(b.join("rootfs/bin/gone")).unwrap();
    let o = env.rt(&["start", "v1"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(err.contains("/bin/gone"), "{err}");
    let s = wait_status(&env, "v1", "stopped");
    assert_eq!(s["pid"], 0);
    let st = airlock_state(&env, "v1");
    assert_eq!(st["exit"]["code"], 127, "{st}");
    assert!(
        st["reason"].as_str().unwrap_or("").contains("/bin/gone"),
        "{st}"
    );
    assert!(env.rt(&["delete", "v1"]).status.success());
}

#[test]
fn exec_honours_the_process_object_and_cap() {
    require_root!();
    let env = Env::new();
    // Without no_new_privs, so that exec's --no-new-privs shows.
    let b = env.bundle("b", &["sleep", "1000"], |c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["process"]["user"]["additionalGids"] = json!([7]);
    });
    let o = env.rt(&["run", "-d", "--bundle", b.to_str().unwrap(), "x1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let write = |name: &str, v: Value| {
        let p = env.dir.path().join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p.display().to_string()
    };
    let script = "busybox grep -E 'CapEff|CapBnd|NoNewPrivs' /proc/self/status; ulimit -n; pwd; echo $FOO; echo ${TERM:-no-term}; umask";
    let p = write(
        "p1.json",
        json!({
            "args": ["sh", "-c", script],
            "env": ["PATH=/bin", "FOO=bar"],
            "cwd": "/tmp",
            "user": {"uid": 0, "gid": 0, "umask": 0o027},
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}],
            "noNewPrivileges": true
        }),
    );
    let o = env.rt(&["exec", "--process", &p, "x1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    let v: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().last().unwrap_or(""))
        .collect();
    // CAP_KILL is bit 5; the container's CAP_NET_BIND_SERVICE is gone.
    assert_eq!(
        v,
        [
            "0000000000000020",
            "0000000000000020",
            "1",
            "100",
            "/tmp",
            "bar",
            "no-term",
            "0027"
        ],
        "{out}"
    );

    // Another user and its groups.
    let p = write(
        "p2.json",
        json!({
            "args": ["id"],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "user": {"uid": 1000, "gid": 1001, "additionalGids": [5, 7]},
            "noNewPrivileges": true
        }),
    );
    let o = env.rt(&["exec", "--process", &p, "x1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert!(out.starts_with("uid=1000 gid=1001 groups="), "{out}");
    assert!(out.contains("5") && out.contains("7"), "{out}");

    // A process file without noNewPrivileges runs as one into a container
    // made with it: its root is not the host's, as for the container.
    let p = write(
        "p3.json",
        json!({"args": ["busybox", "grep", "NoNewPrivs", "/proc/self/status"], "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}}),
    );
    let o = env.rt(&["exec", "--process", &p, "x1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert!(out.trim_end().ends_with('0'), "{out}");

    // --user UID alone keeps the container's gid and groups, as runc's.
    let o = env.rt(&["exec", "--user", "1000", "x1", "id"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert!(out.starts_with("uid=1000 gid=0"), "{out}");
    assert!(out.contains("groups=7"), "{out}");
    let o = env.rt(&["exec", "--user", "1000:1001", "x1", "id"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert!(out.starts_with("uid=1000 gid=1001"), "{out}");
    assert!(out.contains("groups=7"), "{out}");

    // --cap adds to the container's.
    let o = env.rt(&[
        "exec",
        "--cap",
        "CAP_CHOWN",
        "x1",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    // CHOWN 0, KILL 5, NET_BIND_SERVICE 10.
    assert!(out.trim().ends_with("0000000000000421"), "{out}");

    // What the guardrails refuse for the container, they refuse here.
    let o = env.rt(&["exec", "--cap", "CAP_SYS_ADMIN", "x1", "true"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(255), "{out} {err}");
    assert!(err.contains("CAP_SYS_ADMIN"), "{err}");
    // An rlimit that lets the process raise itself ahead of the host's
    // work, as the container's would be (it was not judged at all).
    let p = write(
        "p4.json",
        json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "rlimits": [{"type": "RLIMIT_RTPRIO", "soft": 99, "hard": 99}], "noNewPrivileges": true}),
    );
    let o = env.rt(&["exec", "--process", &p, "x1"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(255), "{out} {err}");
    assert!(err.contains("raised-priority"), "{err}");
    // And what airlock cannot honour is named.
    let p = write(
        "p3.json",
        json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "apparmorProfile": "unconfined", "noNewPrivileges": true}),
    );
    let o = env.rt(&["exec", "--process", &p, "x1"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(255), "{out} {err}");
    assert!(err.contains("apparmorProfile"), "{err}");
    // A flag that the process file sets again is refused, not lost to it.
    let p = write(
        "p5.json",
        json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "noNewPrivileges": true}),
    );
    for (extra, named) in [
        (&["-e", "FOO=1"][..], "--env"),
        (&["--cwd", "/tmp"], "--cwd"),
        (&["-u", "5"], "--user"),
    ] {
        let mut args = vec!["exec", "--process", &p];
        args.extend_from_slice(extra);
        args.push("x1");
        let o = env.rt(&args);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(255), "{extra:?}: {out} {err}");
        assert!(err.contains(&format!("{named} cannot be given")), "{err}");
    }
    let o = env.rt(&["exec", "--process", &p, "x1", "id"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(255), "{out} {err}");
    assert!(err.contains("a command cannot be given"), "{err}");
    // --tty where the file says no terminal (it ran without one).
    let o = env.rt(&["exec", "--process", &p, "--tty", "x1"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(255), "{out} {err}");
    assert!(err.contains("--tty asks for a terminal"), "{err}");
    // runc's flags likewise: honoured (nnp, extra groups) or refused by
    // name, never dropped (they were all dropped before).
    let o = env.rt(&[
        "exec",
        "--no-new-privs",
        "x1",
        "busybox",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert!(out.trim().ends_with('1'), "{out}");
    let o = env.rt(&["exec", "-u", "5:6", "-g", "10", "x1", "id"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert!(
        out.starts_with("uid=5 gid=6 groups=") && out.contains("10"),
        "{out}"
    );
    // Without --user, on top of the container process's own ids and
    // groups (additionalGids [7]), as runc adds them.
    let o = env.rt(&["exec", "-g", "10", "x1", "id"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out.trim(), "uid=0 gid=0 groups=7,10", "{err}");
    for (flags, named) in [
        (&["--apparmor", "x"][..], "--apparmor"),
        (&["--process-label", "x"], "--process-label"),
        (&["--cgroup", "x"], "--cgroup"),
    ] {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.extend(["x1", "true"]);
        let o = env.rt(&args);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(255), "{flags:?}: {out} {err}");
        assert!(err.contains(named), "{flags:?}: {err}");
    }
    // A cwd under /proc, however spelled, as create refuses it (runc
    // CVE-2024-21626).
    for cwd in ["/proc/self/fd/3", "//proc/self/cwd"] {
        let o = env.rt(&["exec", "--cwd", cwd, "x1", "true"]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(255), "{cwd}: {out} {err}");
        assert!(err.contains("cwd: must not be under /proc"), "{cwd}: {err}");
    }
    assert!(env.rt(&["delete", "--force", "x1"]).status.success());
}

/// A root process with no_new_privs gets its effective and permitted
/// sets, not what is only in bounding (every set was merged before, so a
/// bundle asking CHOWN effective and NET_RAW, KILL in bounding got all
/// three effective); without no_new_privs, root's exec gains bounding
/// anyway (under runc too), and it is kept.
#[test]
fn only_bounding_capabilities_are_not_effective_with_no_new_privs() {
    require_root!();
    let env = Env::new();
    let caps = "busybox grep -E '^Cap(Prm|Eff)' /proc/self/status";
    for (nnp, want) in [(true, "0000000000000001"), (false, "0000000000002021")] {
        let id = format!("c{}", nnp as u8);
        let b = env.bundle(&id, &["sh", "-c", caps], |c| {
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["process"]["capabilities"] = json!({
                "bounding": ["CAP_NET_RAW", "CAP_CHOWN", "CAP_KILL"],
                "effective": ["CAP_CHOWN"],
                "permitted": ["CAP_CHOWN"],
            });
        });
        let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), &id]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{out} {err}");
        let sets: Vec<&str> = out
            .lines()
            .map(|l| l.split_whitespace().last().unwrap_or(""))
            .collect();
        assert_eq!(sets, [want, want], "no_new_privs {nnp}: {out}");
    }
    // Bounding is the ceiling of every set, with no_new_privs or
    // without: NET_RAW only effective and FOWNER only inheritable are not
    // the process's (they were merged in before).
    for nnp in [true, false] {
        let id = format!("b{}", nnp as u8);
        let b = env.bundle(&id, &["sh", "-c", caps], |c| {
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["process"]["capabilities"] = json!({
                "bounding": ["CAP_CHOWN"],
                "effective": ["CAP_CHOWN", "CAP_NET_RAW"],
                "permitted": ["CAP_CHOWN", "CAP_NET_RAW"],
                "inheritable": ["CAP_FOWNER"],
            });
        });
        let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), &id]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{out} {err}");
        for line in out.lines() {
            assert!(
                line.ends_with("0000000000000001"),
                "no_new_privs {nnp}: {out}"
            );
        }
    }
    // exec --no-new-privs into the container made without it: the
    // effective set, from the flag alone or over a process file that
    // says false (the container's merged set was kept before).
    let split = json!({
        "bounding": ["CAP_NET_RAW", "CAP_CHOWN", "CAP_KILL"],
        "effective": ["CAP_CHOWN"],
        "permitted": ["CAP_CHOWN"],
    });
    let b = env.bundle("d", &["sleep", "1000"], |c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["process"]["capabilities"] = split.clone();
    });
    let o = env.rt(&["run", "-d", "--bundle", b.to_str().unwrap(), "d"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let p = env.dir.path().join("p.json");
    std::fs::write(
        &p,
        json!({"args": ["busybox", "grep", "CapEff", "/proc/self/status"], "cwd": "/",
               "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"],
               "capabilities": split, "noNewPrivileges": false})
        .to_string(),
    )
    .unwrap();
    for args in [
        vec![
            "exec",
            "--no-new-privs",
            "d",
            "busybox",
            "grep",
            "CapEff",
            "/proc/self/status",
        ],
        vec![
            "exec",
            "--no-new-privs",
            "--process",
            p.to_str().unwrap(),
            "d",
        ],
    ] {
        let o = env.rt(&args);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{args:?}: {out} {err}");
        assert!(out.trim().ends_with("0000000000000001"), "{args:?}: {out}");
    }
    assert!(env.rt(&["delete", "--force", "d"]).status.success());
}

/// A non-root container user keeps over its exec only the bundle's
/// ambient capabilities, as under runc: with the usual bounding,
/// effective and permitted sets and no ambient one, it has none (it kept
/// them all before, through the ambient set, CVE-2022-29162's class).
#[test]
fn a_non_root_user_keeps_only_the_ambient_capabilities() {
    require_root!();
    let env = Env::new();
    let caps = "busybox grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status";
    let sets = |out: &str| -> Vec<String> {
        out.lines()
            .map(|l| l.split_whitespace().last().unwrap_or("").to_string())
            .collect()
    };
    let b = env.bundle("b", &["sh", "-c", caps], |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "n1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    // Inh, Prm, Eff, Bnd (KILL 5, NET_BIND_SERVICE 10), Amb.
    let none = "0000000000000000";
    assert_eq!(
        sets(&out),
        [none, none, none, "0000000000000420", none],
        "{out}"
    );

    let b = env.bundle("b2", &["sh", "-c", caps], |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"]["inheritable"] = json!(["CAP_NET_BIND_SERVICE"]);
        c["process"]["capabilities"]["ambient"] = json!(["CAP_NET_BIND_SERVICE"]);
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "n2"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    let amb = "0000000000000400";
    assert_eq!(
        sets(&out),
        [amb, amb, amb, "0000000000000420", amb],
        "{out}"
    );

    // And exec as a non-root user into a root container: none either.
    let b = env.bundle("b3", &["sleep", "1000"], |_| {});
    let o = env.rt(&["run", "-d", "--bundle", b.to_str().unwrap(), "n3"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = env.rt(&["exec", "--user", "1000:1000", "n3", "sh", "-c", caps]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(
        sets(&out),
        [none, none, none, "0000000000000420", none],
        "{out}"
    );
    assert!(env.rt(&["delete", "--force", "n3"]).status.success());
}

/// `process.oomScoreAdj` is the container process's score, as root and
/// as a rootless runtime (which was refused: the score was written from
/// outside to a PID 1 whose /proc files are not the caller's). A score
/// below the runtime's own needs CAP_SYS_RESOURCE and fails create by
/// name.
#[test]
fn the_oom_score_is_the_bundles_as_root_and_rootless() {
    require_root!();
    let env = Env::new();
    let cat = ["cat", "/proc/self/oom_score_adj"];
    let b = env.bundle("b", &cat, |c| c["process"]["oomScoreAdj"] = json!(500));
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "r1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out.trim(), "500");
    // An exec's process has the container's score, as under runc, unless
    // its process file gives one (it had its caller's, the test's 0).
    let b = env.bundle("e", &["sleep", "100"], |c| {
        c["process"]["oomScoreAdj"] = json!(500)
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "e1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let file = |name: &str, process: Value| {
        let p = env.dir.path().join(name);
        std::fs::write(&p, process.to_string()).unwrap();
        p.display().to_string()
    };
    let plain = file(
        "plain.json",
        json!({"args": cat, "cwd": "/", "user": {"uid": 0, "gid": 0}}),
    );
    let own = file(
        "own.json",
        json!({"args": cat, "cwd": "/", "user": {"uid": 0, "gid": 0}, "oomScoreAdj": 700}),
    );
    for (args, want) in [
        (vec!["exec", "e1", cat[0], cat[1]], "500"),
        (vec!["exec", "--process", &plain, "e1"], "500"),
        (vec!["exec", "--process", &own, "e1"], "700"),
    ] {
        let o = env.rt(&args);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{args:?}: {out} {err}");
        assert_eq!(out.trim(), want, "{args:?}");
    }
    assert!(env.rt(&["delete", "--force", "e1"]).status.success());

    // Rootless: the bundle and state root are nobody's, and the container
    // maps its root to nobody.
    let rootless = |c: &mut Value, adj: i32| {
        c["process"]["oomScoreAdj"] = json!(adj);
        let map = json!([{"containerID": 0, "hostID": 65534, "size": 1}]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
    };
    let up = env.bundle("up", &cat, |c| rootless(c, 600));
    let down = env.bundle("down", &cat, |c| rootless(c, -5));
    run(Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(env.dir.path()));
    let as_nobody = |bundle: &std::path::Path, id: &str| {
        env.rt_as_nobody(&["run", "--bundle", bundle.to_str().unwrap(), id])
    };
    let o = as_nobody(&up, "u1");
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out.trim(), "600");
    let o = as_nobody(&down, "u2");
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        err.contains("process.oomScoreAdj") && err.contains("CAP_SYS_RESOURCE"),
        "{err}"
    );
    // Refused before the container existed (and `run` deleted u1's).
    let states = std::fs::read_dir(env.dir.path().join("nobody-state"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("state.json").exists())
        .count();
    assert_eq!(states, 0);
}

/// A process's scheduling from inside: nice and policy (fields 19 and 41
/// of /proc/self/stat), its I/O class (busybox ionice) and its CPUs.
const SCHED_PROBE: &str = "busybox cut -d' ' -f19,41 /proc/self/stat; busybox ionice -p $$; busybox grep Cpus_allowed_list /proc/self/status | busybox cut -f2";

#[test]
fn the_scheduler_and_io_priority_are_the_bundles_and_an_execs_own() {
    require_root!();
    let env = Env::new();
    // The CPUs this test may use (a cpuset or taskset may narrow them),
    // and the last of them, to confine an exec to.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let ours = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string();
    let last = ours.rsplit(['-', ',']).next().unwrap().to_string();
    let b = env.bundle("b", &["sleep", "1000"], |c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 6});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
        c["process"]["execCPUAffinity"] = json!({"final": last});
    });
    let o = env.rt(&["run", "-d", "--bundle", b.to_str().unwrap(), "s1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    // An exec without a process file is the container's process, its
    // scheduling included (SCHED_BATCH is 3), and the bundle's
    // execCPUAffinity is where it runs.
    let o = env.rt(&["exec", "s1", "sh", "-c", SCHED_PROBE]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out, format!("6 3\nidle\n{last}\n"), "the container's");
    // The container's own process is not confined by it.
    let o = env.rt(&[
        "exec",
        "s1",
        "busybox",
        "grep",
        "Cpus_allowed_list",
        "/proc/1/status",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert!(out.trim().ends_with(&format!("\t{ours}")), "{out}");

    // An exec's process file is its whole process: its own scheduler,
    // I/O priority and final CPU affinity.
    let write = |name: &str, v: Value| {
        let p = env.dir.path().join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p.display().to_string()
    };
    let process = |affinity: Value| {
        json!({
            "args": ["sh", "-c", SCHED_PROBE],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "user": {"uid": 0, "gid": 0},
            "scheduler": {"policy": "SCHED_IDLE"},
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 6},
            "execCPUAffinity": affinity,
            "noNewPrivileges": true
        })
    };
    let p = write("p.json", process(json!({"initial": "0", "final": last})));
    let o = env.rt(&["exec", "--process", &p, "s1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    // SCHED_IDLE is 5; without a nice of its own it keeps the runtime's
    // (this test's), not the container's, as under runc.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let own_nice = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(16)
        .unwrap();
    assert_eq!(
        out,
        format!("{own_nice} 5\nbest-effort: prio 6\n{last}\n"),
        "the exec's own"
    );
    // Only `initial`: the process does not stay there, but runs where the
    // container may (runc's reset to the cpuset).
    let p = write("p2.json", process(json!({"initial": last})));
    let o = env.rt(&["exec", "--process", &p, "s1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert!(out.ends_with(&format!("\n{ours}\n")), "{out}");

    // What airlock cannot do is refused by name, not dropped.
    for (field, value, want) in [
        (
            "scheduler",
            json!({"policy": "SCHED_DEADLINE", "runtime": 1000000}),
            "scheduler.policy",
        ),
        (
            "scheduler",
            json!({"policy": "SCHED_FIFO", "priority": 5, "flags": ["SCHED_RESET_ON_FORK"]}),
            "scheduler.flags",
        ),
        (
            "scheduler",
            json!({"policy": "SCHED_FIFO"}),
            "scheduler.priority",
        ),
        (
            "ioPriority",
            json!({"class": "IOPRIO_CLASS_BE", "priority": 9}),
            "ioPriority.priority",
        ),
    ] {
        let b = env.bundle(&format!("bad-{want}"), &["true"], |c| {
            c["process"][field] = value.clone()
        });
        let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "bad"]);
        let (out, err) = text(&o);
        assert!(!o.status.success(), "{want}: {out}");
        assert!(err.contains(&format!("process.{want}")), "{want}: {err}");
    }
    let b = env.bundle("bad-affinity", &["true"], |c| {
        c["process"]["execCPUAffinity"] = json!({"final": "3-1"})
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "bad"]);
    let (_, err) = text(&o);
    assert!(
        !o.status.success()
            && err.contains("process.execCPUAffinity.final")
            && err.contains("backwards"),
        "{err}"
    );
    // A real-time policy raises the container above the host's work: the
    // guardrail's, until acknowledged.
    let b = env.bundle(
        "rt",
        &["sh", "-c", "busybox cut -d' ' -f41 /proc/self/stat"],
        |c| {
            c["process"]["scheduler"] = json!({"policy": "SCHED_RR", "priority": 3});
        },
    );
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "rt1"]);
    let (_, err) = text(&o);
    assert!(
        !o.status.success() && err.contains("raised-priority"),
        "{err}"
    );
    // Acknowledged, it is tried: the container's v1 cpu cgroup (where the
    // kernel has real-time groups, as here) has no real-time runtime, and
    // the bundle gives none (linux.resources.cpu.realtimeRuntime, which
    // airlock refuses), so the kernel refuses it, as under runc; without
    // real-time groups (or as a v2 host) it runs.
    let o = env.rt(&[
        "--allow-unsafe",
        "raised-priority",
        "run",
        "--bundle",
        b.to_str().unwrap(),
        "rt2",
    ]);
    let (out, err) = text(&o);
    let rt_groups = std::path::Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists();
    if rt_groups {
        assert!(!o.status.success(), "{out}");
        assert!(
            err.contains("process.scheduler.policy") && err.contains("cpu.rt_runtime_us"),
            "{err}"
        );
    } else {
        assert!(o.status.success(), "{out} {err}");
        assert_eq!(out.trim(), "2", "SCHED_RR");
    }
}
