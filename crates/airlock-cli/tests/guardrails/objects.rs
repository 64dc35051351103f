//! The guardrails judge the object a bind reaches, not the path it is
//! spelled with: another mount of `/` or `/etc` is what it mounts; and
//! the directories every host user shares, sandbox and runtime state,
//! and device nodes, are judged as such.

use super::{refused, refused_with, run, HostMount};
use crate::common::*;
use crate::require_root;
use std::path::Path;

#[test]
fn another_mount_of_a_landmark_is_judged_as_it() {
    require_root!();
    let dir = tempdir();
    let alias = dir.path().join("alias");
    let a = alias.display().to_string();
    {
        let _root = HostMount::bind("/", &alias);
        refused_with(&["--bind", &a, "/x", "--", "true"], "host-root-writable");
        refused_with(
            &["--ro-bind", &a, "/x", "--", "true"],
            "kernel-surface-bind",
        );
        refused_with(
            &["--bind", &format!("{a}/etc"), "/x", "--", "true"],
            "host-system-writable",
        );
        refused_with(
            &["--bind", &format!("{a}/usr/lib"), "/x", "--", "true"],
            "host-system-writable",
        );
        // As a root of its own too.
        refused_with(&["--rootfs", &a, "--", "true"], "host-rootfs");
    }
    {
        let _etc = HostMount::bind("/etc", &alias);
        refused_with(&["--bind", &a, "/x", "--", "true"], "host-system-writable");
    }
    // Another mount of a directory no landmark names (/usr/share), or
    // a path inside one: judged where its filesystem's own mount shows it.
    {
        let _share = HostMount::bind("/usr/share", &alias);
        refused_with(&["--bind", &a, "/x", "--", "true"], "host-system-writable");
        let sub = std::fs::read_dir("/usr/share")
            .unwrap()
            .flatten()
            .find(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .expect("a directory in /usr/share")
            .file_name();
        let sub = sub.to_string_lossy();
        let r = run(&["--bind", &format!("{a}/{sub}"), "/x", "--", "true"]);
        assert!(
            r.stderr
                .contains(&format!("writable bind of /usr/share/{sub} (mounted at")),
            "{}",
            r.stderr
        );
    }
    // A chroot whose /etc is the host's, bound there: a writable bind of
    // the chroot carries it (binds are recursive), and is refused; a
    // read-only one is not.
    {
        let chroot = dir.path().join("chroot");
        std::fs::create_dir_all(chroot.join("etc")).unwrap();
        let _etc = HostMount::bind("/etc", &chroot.join("etc"));
        let c = chroot.display().to_string();
        let r = run(&["--bind", &c, "/x", "--", "true"]);
        assert_eq!(r.code, 125, "{}", r.stderr);
        assert!(
            r.stderr.contains("error[host-system-writable]")
                && r.stderr.contains("writable bind of /etc (mounted at"),
            "{}",
            r.stderr
        );
        let r = run(&["--ro-bind", &c, "/x", "--", "true"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    {
        let _proc = HostMount::bind("/proc", &alias);
        refused_with(
            &["--ro-bind", &a, "/x", "--", "true"],
            "kernel-surface-bind",
        );
    }
    // A procfs or sysfs of its own (a chroot's), or a path inside one:
    // judged by the mount it lies on, not by its name.
    for fstype in ["proc", "sysfs"] {
        let _fs = HostMount::new(fstype, &alias);
        for inside in [a.clone(), format!("{a}/kernel"), format!("{a}/self/..")] {
            refused_with(
                &["--ro-bind", &inside, "/x", "--", "true"],
                "kernel-surface-bind",
            );
        }
    }
    // A plain directory of the same filesystem is itself.
    let plain = dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let r = run(&[
        "--ro-bind",
        &plain.display().to_string(),
        "/x",
        "--",
        "true",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn writable_binds_of_shared_directories_are_refused() {
    require_root!();
    for d in ["/tmp", "/var/tmp", "/dev/shm", "/run", "/home"] {
        if !Path::new(d).is_dir() {
            continue;
        }
        let r = run(&["--bind", d, "/x", "--", "true"]);
        assert_eq!(r.code, 125, "{d}: {}", r.stderr);
        assert!(
            r.stderr.contains("error[host-shared-writable]"),
            "{d}: {}",
            r.stderr
        );
        // Read-only, the shared directory is no finding of this kind.
        let r = run(&["--ro-bind", d, "/x", "--", "true"]);
        assert!(
            !r.stderr.contains("host-shared-writable"),
            "{d}: {}",
            r.stderr
        );
    }
    // A directory of one's own inside /tmp is not the shared /tmp.
    let mine = shared_dir();
    let r = run(&[
        "--bind",
        &mine.path().display().to_string(),
        "/x",
        "--",
        "true",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// A sandbox state root, something in it, or a directory above it is
/// refused even read-only (its control sockets connect, its plans hold
/// the callers' environments, and `exec` trusts what is written there),
/// as root and rootless; acknowledged by name, it runs.
#[test]
fn a_state_root_is_refused_even_read_only() {
    require_root!();
    let dir = shared_dir();
    let root = dir.path().join("state");
    let (r, above, inside) = (
        root.display().to_string(),
        dir.path().display().to_string(),
        root.join("some-sandbox").display().to_string(),
    );
    std::fs::create_dir_all(&inside).unwrap();
    for (bind, path) in [
        ("--ro-bind", &r),
        ("--ro-bind", &above),
        ("--bind", &inside),
    ] {
        let out = output(airlock(&[
            "--state-root",
            &r,
            "run",
            bind,
            path,
            "/x",
            "--",
            "true",
        ]));
        assert_eq!(out.code, 125, "{bind} {path}: {}", out.stderr);
        assert!(
            out.stderr.contains("error[state-root-bind]") && out.stderr.contains(&r),
            "{bind} {path}: {}",
            out.stderr
        );
    }
    let out = output(airlock(&[
        "--state-root",
        &r,
        "run",
        "--allow-unsafe",
        "state-root-bind",
        "--ro-bind",
        &above,
        "/x",
        "--",
        "true",
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    // `check` judges the spec against the same state root as `run`.
    let printed = output(airlock(&[
        "run",
        "--print-spec",
        "--ro-bind",
        &above,
        "/x",
        "--",
        "true",
    ]));
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    let spec = dir.path().join("spec.json");
    std::fs::write(&spec, &printed.stdout).unwrap();
    let out = output(airlock(&[
        "--state-root",
        &r,
        "check",
        &spec.display().to_string(),
    ]));
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("error[state-root-bind]") && out.stdout.contains(&r),
        "{}",
        out.stdout
    );
    // Root's own, wherever the caller's is.
    let out = output(airlock(&[
        "--state-root",
        &r,
        "run",
        "--ro-bind",
        "/run",
        "/x",
        "--",
        "true",
    ]));
    assert!(
        out.stderr.contains("error[state-root-bind]") && out.stderr.contains("/run/airlock"),
        "{}",
        out.stderr
    );
    // Rootless: the runtime directory that holds the caller's.
    chown(dir.path(), USER, USER);
    let out = output({
        let mut c = airlock_as_user(&["run", "--ro-bind", &above, "/x", "--", "true"]);
        c.env("XDG_RUNTIME_DIR", &above)
            .env_remove("AIRLOCK_STATE_ROOT");
        c
    });
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("state root {above}/airlock")),
        "{}",
        out.stderr
    );
    // A relative state root is the one under the working directory.
    let out = output({
        let mut c = airlock(&[
            "--state-root",
            "state",
            "run",
            "--ro-bind",
            &above,
            "/x",
            "--",
            "true",
        ]);
        c.current_dir(dir.path());
        c
    });
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(
        out.stderr.contains("error[state-root-bind]") && out.stderr.contains(&r),
        "{}",
        out.stderr
    );
    // The caller's /tmp fallback, where it exists, whatever root this run
    // keeps its sandboxes in: a job without XDG_RUNTIME_DIR put them there.
    // Made as the user, 0700, as a run of theirs would (never root's for
    // a moment, nor removed after: another test may be using it).
    let fallback = format!("/tmp/airlock-{USER}");
    let made = std::process::Command::new("setpriv")
        .args([
            format!("--reuid={USER}"),
            format!("--regid={USER}"),
            "--clear-groups".into(),
        ])
        .args(["mkdir", "-p", "-m", "700", &fallback])
        .status()
        .unwrap();
    assert!(made.success());
    let out = output({
        let mut c = airlock_as_user(&["run", "--ro-bind", &fallback, "/x", "--", "true"]);
        c.env("XDG_RUNTIME_DIR", &above)
            .env_remove("AIRLOCK_STATE_ROOT");
        c
    });
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("state root {fallback}")),
        "{}",
        out.stderr
    );
}

/// A device bind outside /dev is judged by what it reaches: a directory
/// may hold nodes made with mknod (a chroot's /dev), and a node other
/// than the harmless ones opens the host's device; a harmless node, or a
/// plain file, is no finding.
#[test]
fn device_binds_outside_dev_are_judged_by_their_nodes() {
    require_root!();
    let dir = tempdir();
    let d = dir.path().display().to_string();
    let mknod = |name: &str, kind: &str, major: &str, minor: &str| {
        let st = std::process::Command::new("mknod")
            .args(["-m", "600", &format!("{d}/{name}"), kind, major, minor])
            .status()
            .unwrap();
        assert!(st.success());
    };
    mknod("mem", "c", "1", "1");
    mknod("loop", "b", "7", "0");
    mknod("null", "c", "1", "3");
    // A block device with null's numbers is a RAM disk, not null.
    mknod("ram3", "b", "1", "3");
    std::fs::write(dir.path().join("plain"), "x").unwrap();
    for bad in [
        d.clone(),
        format!("{d}/mem"),
        format!("{d}/loop"),
        format!("{d}/ram3"),
    ] {
        refused_with(&["--dev-bind", &bad, "/x", "--", "true"], "host-dev-bind");
    }
    for fine in ["null", "plain"] {
        let r = run(&["--dev-bind", &format!("{d}/{fine}"), "/x", "--", "true"]);
        assert_eq!(r.code, 0, "{fine}: {}", r.stderr);
    }
    // Without devices, the directory is an ordinary bind.
    let r = run(&["--ro-bind", &d, "/x", "--", "true"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// A read-only root whose mount points a root caller's supervisor makes
/// first (`--rootfs-readonly`) is written on the host, as root: judged as
/// a writable one, so a system directory is refused before anything is
/// made in it (an empty /etc/nologin would lock out every other user).
#[test]
fn a_read_only_rootfs_that_gets_mount_points_is_judged_writable() {
    require_root!();
    refused_with(
        &["--rootfs", "/etc", "--rootfs-readonly", "--", "true"],
        "host-system-writable",
    );
    for made in ["/etc/proc", "/etc/dev", "/etc/tmp"] {
        assert!(!Path::new(made).exists(), "{made} was made");
    }
}

/// Runtime state bind-mounted from elsewhere (fstab's `/data/docker
/// /var/lib/docker none bind`) is reached by that other name too: a bind
/// of it, or of a directory above it, is refused; a sibling is not. In a
/// mount namespace of the test's own, with a tmpfs over /run, so the
/// host's /run is untouched.
#[test]
fn runtime_state_mounted_from_elsewhere_is_refused_by_that_name() {
    require_root!();
    let dir = tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("youki/state")).unwrap();
    std::fs::create_dir_all(data.join("other")).unwrap();
    let script = r#"set -e
        mount -t tmpfs airlock-test /run
        mkdir /run/youki
        mount --bind "$2/youki" /run/youki
        for src in "$2" "$2/youki/state" "$2/other"; do
            "$1" run --ro-bind "$src" /x -- true 2>&1 && echo "ran: $src" || echo "refused: $src"
        done"#;
    let mut c = std::process::Command::new("unshare");
    c.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
    ]);
    c.arg(airlock_bin()).arg(&data);
    let r = output(c);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let d = data.display();
    for refused in [format!("{d}"), format!("{d}/youki/state")] {
        assert!(
            r.stdout.contains(&format!("refused: {refused}\n")),
            "{refused}: {}",
            r.stdout
        );
    }
    assert!(
        r.stdout.contains("error[runtime-socket-bind]")
            && r.stdout.contains("reaches into /run/youki"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("ran: {d}/other\n")),
        "{}",
        r.stdout
    );
}

/// A state root or image store named through another mount of a landmark
/// (ostree's /home is /var/home; here a bind mount of /tmp) is judged by
/// the landmark's name, as bind sources are: a bind of it by its plain
/// path is refused. Compared under two names, it was let through.
#[test]
fn a_state_root_named_through_another_mount_is_refused() {
    require_root!();
    let dir = tempdir();
    let alias = dir.path().join("alias");
    let _tmp = HostMount::bind("/tmp", &alias);
    let leaf = dir.path().file_name().unwrap();
    let (root, store) = (dir.path().join("state"), dir.path().join("store"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    let through = |p: &Path| alias.join(leaf).join(p.file_name().unwrap());
    let (root_alias, store_alias) = (through(&root), through(&store));
    assert!(root_alias.is_dir(), "{}", root_alias.display());
    let out = output(airlock(&[
        "--state-root",
        &root_alias.display().to_string(),
        "run",
        "--ro-bind",
        &root.display().to_string(),
        "/x",
        "--",
        "true",
    ]));
    refused(
        &out,
        "state-root-bind",
        "a state root named through /tmp's alias",
    );
    let mut c = airlock(&[
        "run",
        "--bind",
        &store.display().to_string(),
        "/x",
        "--",
        "true",
    ]);
    c.env("AIRLOCK_STORE", &store_alias);
    let out = output(c);
    refused(
        &out,
        "image-store-writable",
        "a store named through /tmp's alias",
    );
}
