//! A root caller's writable binds are its own (filesystem.bind_owner):
//! the sandbox's root, an unprivileged host id, writes there as the caller
//! through an idmapped mount, and no setuid, setgid or file capability can
//! come out of it. A bind is private both ways, on a shared host too.

mod common;
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn mode(path: &Path, m: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
}

/// A root-owned 0700 directory holding `out` (root's, 0755) with a file of
/// root's and a file of another user's in it.
fn roots_private_tree() -> (tempfile::TempDir, std::path::PathBuf) {
    let top = tempdir();
    mode(top.path(), 0o700);
    let out = top.path().join("out");
    std::fs::create_dir(&out).unwrap();
    mode(&out, 0o755);
    std::fs::write(out.join("roots"), "before\n").unwrap();
    mode(&out.join("roots"), 0o644);
    std::fs::write(out.join("users"), "theirs\n").unwrap();
    mode(&out.join("users"), 0o644);
    chown(&out.join("users"), USER, USER);
    (top, out)
}

#[test]
fn a_root_callers_writable_bind_is_written_as_the_caller() {
    require_root!();
    let (_top, out) = roots_private_tree();
    let o = out.display().to_string();
    let r = sh(
        &["--bind", &o, "/out"],
        "set -e; id -u; stat -c '%u %g' /out /out/roots /out/users; \
         echo after > /out/roots; mkdir /out/made; echo new > /out/made/file; \
         (echo no > /out/users) 2>/dev/null || echo users-refused",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Inside, the caller's files are sandbox root's; another user's are
    // nobody's and stay theirs.
    assert_eq!(
        r.stdout, "0\n0 0\n0 0\n65534 65534\nusers-refused\n",
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(out.join("roots")).unwrap(),
        "after\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("users")).unwrap(),
        "theirs\n"
    );
    // On the host, what the sandbox made belongs to the caller.
    for made in ["made", "made/file"] {
        let m = std::fs::metadata(out.join(made)).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0), "{made}");
    }
    // Read-only binds are not idmapped, and the default view is as before:
    // the host's root-owned files are nobody's inside.
    let r = sh(&["--ro-bind", &o, "/ro"], "stat -c '%u' /ro/roots /usr/bin");
    assert_eq!(r.stdout, "65534\n65534\n", "{}", r.stderr);
}

/// With another workload uid than 0 the bind is that uid's inside, and
/// the mount points, directories, files and links airlock makes in it
/// (which the sandbox's root, not mapped there, could not) are made as the
/// workload: the caller's on the host.
#[test]
fn a_workload_uid_other_than_root_gets_its_mount_points_in_a_writable_bind() {
    require_root!();
    let (_top, out) = roots_private_tree();
    let o = out.display().to_string();
    let r = sh(
        &[
            "--uid",
            "1000",
            "--gid",
            "1000",
            "--bind",
            &o,
            "/out",
            "--tmpfs",
            "/out/cache",
            "--dir",
            "/out/d",
            "--symlink",
            "d",
            "/out/l",
            "--ro-bind",
            "/usr/bin",
            "/out/a/b",
        ],
        "id -u; stat -c '%u %n' /out /out/d /out/a; test -L /out/l && echo link; \
         stat -f -c %T /out/cache",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout, "1000\n1000 /out\n1000 /out/d\n1000 /out/a\nlink\ntmpfs\n",
        "{}",
        r.stderr
    );
    for made in ["cache", "d", "l", "a", "a/b"] {
        let m = std::fs::symlink_metadata(out.join(made)).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0), "{made}");
    }
}

#[test]
fn bind_owner_as_is_keeps_the_host_ids() {
    require_root!();
    let (_top, out) = roots_private_tree();
    let o = out.display().to_string();
    let r = sh(
        &["--bind-owner", "as-is", "--bind", &o, "/out"],
        "stat -c %u /out/roots; echo x > /out/roots 2>/dev/null || echo refused",
    );
    assert_eq!(r.stdout, "65534\nrefused\n", "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(out.join("roots")).unwrap(),
        "before\n"
    );
}

/// Every way a process can give a file a setuid or setgid mode, tried in a
/// writable bind: each must fail, and the host must see no such bit.
const SET_ID_PROBE: &str = r#"
import ctypes, errno, os, stat
libc = ctypes.CDLL(None, use_errno=True)
d = "/out"
open(d + "/plain", "w").close()
def attempt(name, f):
    try:
        r = f()
        if isinstance(r, int) and r < 0:
            print(name, "errno", ctypes.get_errno())
        else:
            print(name, "ALLOWED")
    except OSError as e:
        print(name, "errno", e.errno)
for bit, tag in ((stat.S_ISUID, "suid"), (stat.S_ISGID, "sgid")):
    m = 0o755 | bit
    attempt(tag + " chmod", lambda: libc.syscall(90, (d + "/plain").encode(), m))
    attempt(tag + " fchmodat", lambda: libc.syscall(268, -100, (d + "/plain").encode(), m))
    fd = os.open(d + "/plain", os.O_RDONLY)
    attempt(tag + " fchmod", lambda: os.fchmod(fd, m))
    os.close(fd)
    attempt(tag + " fchmodat2", lambda: libc.syscall(452, -100, (d + "/plain").encode(), m, 0))
    attempt(tag + " open", lambda: os.open(d + "/o-" + tag, os.O_CREAT | os.O_WRONLY, m))
    attempt(tag + " creat", lambda: libc.syscall(85, (d + "/c-" + tag).encode(), m))
    attempt(tag + " tmpfile", lambda: os.open(d, os.O_TMPFILE | os.O_WRONLY, m))
    attempt(tag + " mknod", lambda: os.mknod(d + "/n-" + tag, stat.S_IFREG | m))
attempt("openat2", lambda: libc.syscall(437, -100, b"/out/plain", ctypes.c_void_p(0), 0))
attempt("setcap", lambda: os.setxattr(d + "/plain", "security.capability",
        bytes.fromhex("01000002" "00200000" "00000000" "00000000" "00000000")))
"#;

#[test]
fn no_setuid_setgid_or_file_capability_comes_out_of_a_writable_bind() {
    require_root!();
    let (_top, out) = roots_private_tree();
    let o = out.display().to_string();
    let r = output(airlock(&[
        "run",
        "--bind",
        &o,
        "/out",
        "--",
        "python3",
        "-c",
        SET_ID_PROBE,
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 18, "{}\n{}", r.stdout, r.stderr);
    for line in &lines {
        // openat2 answers ENOSYS so that callers fall back to openat;
        // fchmodat2 too, as a syscall newer than the default profile's
        // list (or EPERM, from a libseccomp that knows its name).
        let refused = match line {
            l if l.starts_with("openat2") => l.ends_with("errno 38"),
            l if l.contains("fchmodat2") => l.ends_with("errno 38") || l.ends_with("errno 1"),
            l => l.ends_with("errno 1"),
        };
        assert!(refused, "{line}\n{}", r.stdout);
    }
    for e in std::fs::read_dir(&out).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap().mode();
        assert_eq!(m & 0o6000, 0, "{:?} has mode {m:o}", e.path());
        assert!(
            xattr_absent(&e.path(), "security.capability"),
            "{:?}",
            e.path()
        );
    }
    // Written as the host sees the sandbox's ids (--bind-owner as-is), a
    // root caller's files are the range every such sandbox shares: no
    // set-id mode either (a local user who runs one becomes that range).
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = sh(
        &["--bind-owner", "as-is", "--bind", &o, "/out"],
        "cp /bin/true /out/s && chmod 4755 /out/s; echo $?",
    );
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_ne!(r.stdout.trim(), "0", "{}", r.stderr);
    let m = std::fs::metadata(out.join("s")).unwrap();
    assert_eq!(m.mode() & 0o6000, 0, "mode {:o}", m.mode());
    assert!(m.uid() >= 0x7000_0000, "written as uid {}", m.uid());
    // The filter is there only with such a bind: in a sandbox without one,
    // a set-id file is the sandbox's own ids' on a nosuid mount, and
    // refusing it would only break installing packages.
    let r = sh(&[], "touch /tmp/x && chmod u+s /tmp/x; echo $?");
    assert_eq!(r.stdout.trim(), "0", "{}", r.stderr);
    let r = sh(
        &["--ro-bind", &o, "/ro"],
        "touch /tmp/x && chmod u+s /tmp/x; echo $?",
    );
    assert_eq!(r.stdout.trim(), "0", "{}", r.stderr);
    // A custom profile gets it too, even one that allows everything.
    let profile = out.parent().unwrap().join("allow-all.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}"#,
    )
    .unwrap();
    let p = profile.display().to_string();
    let permissive = [
        "--seccomp-profile",
        &p,
        "--allow-unsafe",
        "seccomp-permissive",
        "--bind",
        &o,
        "/out",
    ];
    let r = sh(&permissive, "touch /out/c; chmod u+s /out/c; echo $?");
    assert_eq!(r.stdout.trim(), "1", "{}", r.stderr);
    // io_uring, which such a profile lets through, would open with a mode
    // the filter cannot see (IORING_OP_OPENAT): ENOSYS at its setup.
    let setup = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n\
                 params = ctypes.create_string_buffer(120)\n\
                 r = libc.syscall(425, 8, params)\nprint(r, ctypes.get_errno())\n";
    let mut args = vec!["run"];
    args.extend(permissive);
    args.extend(["--", "python3", "-c", setup]);
    let r = output(airlock(&args));
    assert_eq!(r.stdout.trim(), "-1 38", "{}", r.stderr);
}

fn xattr_absent(path: &Path, name: &str) -> bool {
    let out = std::process::Command::new("getfattr")
        .args(["--absolute-names", "-n", name])
        .arg(path)
        .output();
    match out {
        Ok(o) => !o.status.success(),
        // Without getfattr, read the attribute through python.
        Err(_) => {
            let o = std::process::Command::new("python3")
                .args(["-c", "import os,sys; os.getxattr(sys.argv[1], sys.argv[2])"])
                .arg(path)
                .arg(name)
                .output()
                .unwrap();
            !o.status.success()
        }
    }
}

#[test]
fn setfcap_or_no_filter_with_a_writable_bind_is_a_finding() {
    require_root!();
    let (_top, out) = roots_private_tree();
    let o = out.display().to_string();
    let r = sh(&["--cap-add", "CAP_SETFCAP", "--bind", &o, "/out"], "true");
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("caller-bind-setfcap"), "{}", r.stderr);
    // Without a filter nothing keeps set-id modes out: its own finding,
    // which acknowledging seccomp-disabled alone does not cover.
    let r = sh(
        &[
            "--seccomp-profile",
            "none",
            "--allow-unsafe",
            "seccomp-disabled",
            "--bind",
            &o,
            "/out",
        ],
        "true",
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("caller-bind-unfiltered"), "{}", r.stderr);
    // Neighbours: read-only, or ids as they are, need no such finding.
    for flags in [
        &["--cap-add", "CAP_SETFCAP", "--ro-bind", &o, "/out"][..],
        &[
            "--cap-add",
            "CAP_SETFCAP",
            "--bind-owner",
            "as-is",
            "--bind",
            &o,
            "/out",
        ][..],
    ] {
        let r = sh(flags, "true");
        assert_eq!(r.code, 0, "{flags:?}: {}", r.stderr);
    }
}

#[test]
fn a_filesystem_that_cannot_be_idmapped_is_named() {
    require_root!();
    let _lock = mount_lock();
    let before = host_mounts();
    let top = tempdir();
    for d in ["lower", "upper", "work", "merged"] {
        std::fs::create_dir(top.path().join(d)).unwrap();
    }
    let p = |d: &str| top.path().join(d).display().to_string();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        p("lower"),
        p("upper"),
        p("work")
    );
    let ok = std::process::Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts, &p("merged")])
        .status()
        .unwrap();
    assert!(ok.success());
    let r = sh(&["--bind", &p("merged"), "/out"], "true");
    let _ = std::process::Command::new("umount")
        .arg(p("merged"))
        .status();
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("mount /out")
            && r.stderr.contains(&p("merged"))
            && r.stderr.contains("cannot be idmapped")
            && r.stderr.contains("--bind-owner as-is"),
        "{}",
        r.stderr
    );
    assert_nothing_left(&before);
}

#[test]
fn a_rootless_callers_writable_bind_is_unchanged() {
    require_root!();
    let mine = tempdir();
    chown(mine.path(), USER, USER);
    let m = mine.path().display().to_string();
    let r = sh_as_user(
        &["--bind", &m, "/out"],
        "id -u; echo x > /out/f; stat -c %u /out/f",
    );
    assert_eq!(r.stdout, format!("{USER}\n{USER}\n"), "{}", r.stderr);
    let meta = std::fs::metadata(mine.path().join("f")).unwrap();
    assert_eq!(meta.uid(), USER);
}

/// Without no_new_privs (acknowledged) the filter that keeps set-id bits
/// out of the caller's binds comes before the ids change, and it refuses
/// openat2: the working directory is found before it, and entered by its
/// path after.
#[test]
fn without_no_new_privs_a_writable_bind_and_a_working_directory_go_together() {
    require_root!();
    let (_top, out) = roots_private_tree();
    let o = out.display().to_string();
    let dir = tempdir();
    let spec = dir.path().join("spec.toml");
    std::fs::write(
        &spec,
        "allow_unsafe = [\"no-new-privs-disabled\"]\n\
         [process]\nargs = [\"true\"]\nno_new_privs = false\n",
    )
    .unwrap();
    let spec = spec.display().to_string();
    let mut flags = vec!["--spec".to_string(), spec];
    flags.extend(host_usr());
    for f in ["--proc", "/proc", "--bind", &o, "/out", "--chdir", "/out"] {
        flags.push(f.to_string());
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let r = sh(
        &flags,
        "pwd; grep NoNewPrivs /proc/self/status; echo x > made && cat made",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "/out\nNoNewPrivs:\t0\nx\n", "{}", r.stderr);
}

/// A bind is the host's tree as it was at the start, private both ways,
/// even where the host's mounts are shared (as systemd makes `/`): a
/// mount made on the host under the source later does not appear in the
/// sandbox, and nothing in the sandbox's mount table is in a peer group
/// with the host's (no `shared:`), so none of its mounts could reach the
/// host either. A CI host whose `/` is private would pass without the
/// protection; the test makes its own mount namespace shared first.
#[test]
fn binds_are_private_both_ways_on_a_shared_host() {
    require_root!();
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let state = tempdir();
    let script = r#"
        set -e
        al() { "$AIRLOCK" --state-root "$STATE" "$@"; }
        al run -d --name p --bind "$SRC" /d -- sleep 100 > /dev/null
        trap 'al rm -f p > /dev/null' EXIT
        mount -t tmpfs tmpfs "$SRC/sub"
        touch "$SRC/sub/marker"
        grep -q shared: /proc/self/mountinfo && echo host-shared
        al exec p -- sh -c 'ls -A /d/sub; echo listed; grep -c shared: /proc/self/mountinfo || true'
    "#;
    let mut c = std::process::Command::new("unshare");
    c.args(["-m", "--propagation", "shared", "sh", "-c", script])
        .env("AIRLOCK", airlock_bin())
        .env("STATE", state.path())
        .env("SRC", dir.path())
        .stdin(std::process::Stdio::null());
    let r = output(c);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout, "host-shared\nlisted\n0\n", "{}", r.stderr);
}
