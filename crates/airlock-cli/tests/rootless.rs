//! The core cases again, as an unprivileged user (rootless): the caller's
//! own uid is mapped, nothing else.

mod common;
use common::*;

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
}
