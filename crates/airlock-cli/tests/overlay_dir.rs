//! A persistent writable layer (`--overlay-dir DIR`): the workload's writes
//! land in DIR/upper and nowhere else. An `upper` or `work` that is a link
//! (which overlayfs would follow, copying up with the mounter's
//! credentials wherever it points), not a directory, someone else's or
//! writable by others is refused before anything is mounted, naming it.

mod common;
use common::*;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A rootfs, a layer directory and two directories outside both (for
/// `upper` and `work` to point at).
struct Case {
    _dir: tempfile::TempDir,
    root: String,
    layer: PathBuf,
    outside: [PathBuf; 2],
}

impl Case {
    fn new() -> Case {
        let dir = tempdir();
        let (root, layer) = (dir.path().join("root"), dir.path().join("layer"));
        let outside = [dir.path().join("outside"), dir.path().join("outside2")];
        for d in [&root, &layer, &outside[0], &outside[1]] {
            std::fs::create_dir(d).unwrap();
            std::fs::set_permissions(d, PermissionsExt::from_mode(0o755)).unwrap();
        }
        // Anyone may write outside: a followed link would let the write
        // through, so an empty directory after the run means something.
        for d in &outside {
            std::fs::set_permissions(d, PermissionsExt::from_mode(0o777)).unwrap();
        }
        Case {
            root: root.display().to_string(),
            layer,
            outside,
            _dir: dir,
        }
    }

    fn flags(&self) -> Vec<String> {
        let mut f = rootfs_with_host_usr(&self.root);
        f.extend(["--overlay-dir".into(), self.layer.display().to_string()]);
        f
    }

    fn write_newfile(&self, as_user: bool) -> Run {
        let owned = self.flags();
        let flags: Vec<&str> = owned.iter().map(String::as_str).collect();
        let script = "echo x > /newfile";
        if as_user {
            sh_as_user(&flags, script)
        } else {
            sh(&flags, script)
        }
    }

    fn outside_is_empty(&self) -> bool {
        self.outside
            .iter()
            .all(|d| std::fs::read_dir(d).unwrap().next().is_none())
    }

    fn refused(&self, r: &Run, name: &str, why: &str) {
        let path = format!("{}/{name}", self.layer.display());
        assert_eq!(r.code, 125, "{}", r.stderr);
        assert!(
            r.stderr.contains(&format!("{path} {why}")),
            "names {path} and why ({why}): {}",
            r.stderr
        );
        assert!(
            self.outside_is_empty(),
            "a write escaped to the link's target"
        );
        assert!(!self.root_has_newfile());
    }

    fn root_has_newfile(&self) -> bool {
        Path::new(&self.root).join("newfile").exists()
    }
}

#[test]
fn writes_land_in_the_layer_and_persist() {
    require_root!();
    let c = Case::new();
    let r = c.write_newfile(false);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let upper = c.layer.join("upper");
    assert_eq!(
        std::fs::read_to_string(upper.join("newfile")).unwrap(),
        "x\n"
    );
    // upper/ and work/ belong to the sandbox's root on the host, not root.
    assert_ne!(std::fs::metadata(&upper).unwrap().uid(), 0);
    assert!(!c.root_has_newfile(), "the lower layer is untouched");
    let owned = c.flags();
    let flags: Vec<&str> = owned.iter().map(String::as_str).collect();
    assert_eq!(sh(&flags, "cat /newfile").stdout, "x\n");
}

/// A sandbox that fails to start (a missing bind source, or a step after
/// the overlay was mounted) leaves no `upper/` or `work/` it made behind,
/// for the root layer or a mount's, nor what setup put in them; what was
/// there before stays.
#[test]
fn a_failed_start_leaves_no_layer_directories() {
    for user in callers() {
        let c = Case::new();
        let mounted = c.layer.join("mounted");
        std::fs::create_dir(&mounted).unwrap();
        if user {
            for d in [c.layer.parent().unwrap(), &c.layer, &mounted] {
                chown(d, USER, USER);
            }
        }
        let missing = ["--ro-bind", "/nonexistent-airlock-source", "/n"].map(String::from);
        let root_layer: Vec<String> = c.flags().into_iter().chain(missing.clone()).collect();
        let (up, wk) = (mounted.join("up"), mounted.join("wk"));
        let mount_layer: Vec<String> = ["--overlay-src", "/usr", "--overlay"]
            .map(String::from)
            .into_iter()
            .chain([
                up.display().to_string(),
                wk.display().to_string(),
                "/m".into(),
            ])
            .chain(missing)
            .collect();
        // Refused in the sandbox, once the overlay root is mounted and
        // setup has made its mount points in upper/.
        let late: Vec<String> = c
            .flags()
            .into_iter()
            .chain(["--remount-ro".into(), "/etc".into()])
            .collect();
        for (flags, why) in [
            (root_layer, "does not exist"),
            (mount_layer, "does not exist"),
            (late, "remount /etc read-only"),
        ] {
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            let r = if user {
                sh_as_user(&flags, "true")
            } else {
                sh(&flags, "true")
            };
            assert_eq!(r.code, 125, "as user: {user}: {flags:?}: {}", r.stderr);
            assert!(r.stderr.contains(why), "{}", r.stderr);
            for made in ["upper", "work", "mounted/up", "mounted/wk"] {
                assert!(
                    !c.layer.join(made).exists(),
                    "as user: {user}: {made} left behind"
                );
            }
        }
        assert!(mounted.exists());
    }
}

/// A sandbox named `one` in `state`, running, with an overlay of /usr at
/// /m whose upper layer and work directory are `upper` and `work`.
fn running_overlay(state: &str, upper: &str, work: &str) -> Run {
    output(airlock(&[
        "--state-root",
        state,
        "run",
        "-d",
        "--name",
        "one",
        "--overlay-src",
        "/usr",
        "--overlay",
        upper,
        work,
        "/m",
        "--",
        "sleep",
        "1000",
    ]))
}

/// `true` in a sandbox with such an overlay.
fn overlay_true(upper: &str, work: &str) -> Run {
    sh(
        &["--overlay-src", "/usr", "--overlay", upper, work, "/m"],
        "true",
    )
}

/// One upper layer is one running sandbox's: a second sandbox given the
/// same --overlay-dir (or bubblewrap's --overlay RWSRC) while the first
/// runs is refused, naming it, and runs once the first has ended.
#[test]
fn two_running_sandboxes_cannot_share_an_upper_layer() {
    require_root!();
    let c = Case::new();
    let state = tempdir();
    let st = state.path().display().to_string();
    let rwsrc = c.layer.join("rw");
    let (rw, wk) = (
        rwsrc.display().to_string(),
        c.layer.join("wk").display().to_string(),
    );
    let mounted = ["--overlay-src", "/usr", "--overlay", &rw, &wk, "/m"];
    for (layer, upper) in [
        (c.flags(), c.layer.join("upper")),
        (mounted.map(String::from).to_vec(), rwsrc.clone()),
    ] {
        let mut first: Vec<String> = ["--state-root", &st, "run", "-d", "--name", "one"]
            .map(String::from)
            .to_vec();
        first.extend(layer.iter().cloned());
        first.extend(["--", "sleep", "1000"].map(String::from));
        let args: Vec<&str> = first.iter().map(String::as_str).collect();
        let r = output(airlock(&args));
        assert_eq!(r.code, 0, "{}", r.stderr);
        let flags: Vec<&str> = layer.iter().map(String::as_str).collect();
        let r = sh(&flags, "true");
        assert_eq!(r.code, 125, "{}", r.stderr);
        assert!(
            r.stderr.contains(&format!(
                "{} is, or holds, the upper layer or work directory of a sandbox that is running",
                upper.display()
            )),
            "{}",
            r.stderr
        );
        let r = output(airlock(&["--state-root", &st, "rm", "-f", "one"]));
        assert_eq!(r.code, 0, "{}", r.stderr);
        let r = sh(&flags, "true");
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    // A work directory is one sandbox's too: a second mount would empty
    // it under the first. Given as another's upper layer, likewise.
    let other = c.layer.join("rw2").display().to_string();
    let r = running_overlay(&st, &rw, &wk);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for (upper, work) in [(&other, &wk), (&wk, &other)] {
        let r = overlay_true(upper, work);
        assert_eq!(r.code, 125, "{}", r.stderr);
        assert!(
            r.stderr.contains(&format!(
                "{wk} is, or holds, the upper layer or work directory of a sandbox that is running"
            )),
            "{}",
            r.stderr
        );
    }
    let r = output(airlock(&["--state-root", &st, "rm", "-f", "one"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// A root caller's sandbox writes its persistent layer as the id range
/// every such sandbox shares (which owns the image store): no setuid or
/// setgid mode may be left there for a local user to run. Other modes
/// are set as asked; a layer that vanishes with the sandbox keeps them.
#[test]
fn no_setuid_file_is_left_in_a_persistent_layer() {
    require_root!();
    let c = Case::new();
    let owned = c.flags();
    let flags: Vec<&str> = owned.iter().map(String::as_str).collect();
    let script = "cp /bin/true /t; chmod 0755 /t && echo plain; \
                  chmod 4755 /t || echo refused; chmod g+s /t || echo refused";
    let r = sh(&flags, script);
    assert_eq!(r.stdout, "plain\nrefused\nrefused\n", "{}", r.stderr);
    let mode = std::fs::metadata(c.layer.join("upper/t")).unwrap().mode();
    assert_eq!(mode & 0o7777, 0o755);
    let tmp = rootfs_with_host_usr(&c.root);
    let mut flags: Vec<&str> = tmp.iter().map(String::as_str).collect();
    flags.push("--overlay");
    let r = sh(&flags, "cp /bin/true /t; chmod 4755 /t && stat -c %a /t");
    assert_eq!(r.stdout, "4755\n", "{}", r.stderr);
}

#[test]
fn symlinked_upper_or_work_is_refused_and_nothing_escapes() {
    require_root!();
    let _lock = mount_lock();
    // Links that climb out of DIR: relative, and absolute as the runner
    // sees the host (at /oldroot once it has pivoted away), and plain.
    let styles: [fn(&Case, usize) -> String; 3] = [
        |_, i| ["../outside", "../outside2"][i].to_string(),
        |c, i| format!("/oldroot{}", c.outside[i].display()),
        |c, i| c.outside[i].display().to_string(),
    ];
    for style in styles {
        for links in [&["upper"][..], &["work"], &["upper", "work"]] {
            let c = Case::new();
            let mut targets = Vec::new();
            for (i, name) in links.iter().enumerate() {
                targets.push(style(&c, i));
                symlink(&targets[i], c.layer.join(name)).unwrap();
            }
            let before = host_mounts();
            let r = c.write_newfile(false);
            c.refused(
                &r,
                links[0],
                &format!("is a symbolic link (to {})", targets[0]),
            );
            assert_nothing_left(&before);
        }
    }
    // A link that leads nowhere yet.
    let c = Case::new();
    symlink("/no/such/dir", c.layer.join("upper")).unwrap();
    let r = c.write_newfile(false);
    c.refused(&r, "upper", "is a symbolic link (to /no/such/dir)");
}

#[test]
fn upper_that_is_not_a_plain_directory_of_the_sandbox_is_refused() {
    require_root!();
    let c = Case::new();
    std::fs::write(c.layer.join("upper"), "not a dir").unwrap();
    let r = c.write_newfile(false);
    c.refused(&r, "upper", "is not a directory but a regular file");
    assert_eq!(
        std::fs::read_to_string(c.layer.join("upper")).unwrap(),
        "not a dir"
    );
    // A directory of another host user, and one anyone may write.
    let c = Case::new();
    std::fs::create_dir(c.layer.join("upper")).unwrap();
    chown(&c.layer.join("upper"), USER, USER);
    let r = c.write_newfile(false);
    c.refused(&r, "upper", &format!("is owned by uid {USER}"));
    let c = Case::new();
    let r = c.write_newfile(false);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let work = c.layer.join("work");
    std::fs::set_permissions(&work, PermissionsExt::from_mode(0o777)).unwrap();
    let r = c.write_newfile(false);
    c.refused(&r, "work", "is writable by other users (mode 0777");
}

#[test]
fn rootless_symlinked_upper_is_refused() {
    require_root!(); // to become the test user
    let c = Case::new();
    for d in [&c.layer, &c.outside[0]] {
        chown(d, USER, USER);
    }
    // The user's own layer works.
    let r = c.write_newfile(true);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::metadata(c.layer.join("upper")).unwrap().uid(),
        USER
    );
    // Their link out of it does not.
    std::fs::remove_dir_all(c.layer.join("upper")).unwrap();
    symlink("../outside", c.layer.join("upper")).unwrap();
    let r = c.write_newfile(true);
    c.refused(&r, "upper", "is a symbolic link (to ../outside)");
}

/// Nor may a layer lie inside a running sandbox's upper layer (overlayfs
/// only warns, and the two mix their files), nor hold one (which
/// overlayfs does not see at all: the second sandbox would write the
/// first's live layer): both are refused, naming the running one, and
/// nothing is left in its layer. Layers side by side still run together.
#[test]
fn a_layer_cannot_lie_inside_or_hold_a_running_sandboxs() {
    require_root!();
    let c = Case::new();
    let state = tempdir();
    let st = state.path().display().to_string();
    let elsewhere = tempdir();
    let path = |p: &Path| p.display().to_string();
    let work = |n: &str| path(&elsewhere.path().join(n));
    // A layer an earlier sandbox made (the sandbox root's), which the
    // running one's lies in.
    let outer = path(&c.layer.join("outer"));
    assert_eq!(overlay_true(&outer, &work("w0")).code, 0);
    let rw = path(&c.layer.join("outer/rw"));
    let wk = path(&c.layer.join("wk"));
    let r = running_overlay(&st, &rw, &wk);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let inner = path(&c.layer.join("outer/rw/inner"));
    for (upper, work, says) in [
        (&inner, work("w1"), format!("{inner} lies inside {rw}")),
        (&outer, work("w2"), format!("{outer} is, or holds,")),
    ] {
        let r = overlay_true(upper, &work);
        assert_eq!(r.code, 125, "{upper}: {}", r.stderr);
        assert!(r.stderr.contains(&says), "{says}: {}", r.stderr);
    }
    assert!(!Path::new(&inner).exists(), "left in the running layer");
    // Side by side: shared parents.
    let r = overlay_true(&path(&c.layer.join("outer/rw2")), &work("w3"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = output(airlock(&["--state-root", &st, "rm", "-f", "one"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// A root caller's overlay over a rootfs of host root's files can change
/// them: overlayfs refused to copy up a file whose owner the sandbox's
/// user namespace does not map, and the sandbox's root could not write a
/// directory of host root's, so only the top of `/` took a write. The
/// layer is idmapped through the sandbox's namespace (host root's files
/// are its root's), and stays as it was on the host, with a tmpfs upper
/// layer and a kept one alike.
#[test]
fn a_root_callers_overlay_of_a_host_rootfs_takes_writes() {
    require_root!();
    let case = Case::new();
    let etc = Path::new(&case.root).join("etc");
    std::fs::create_dir(&etc).unwrap();
    std::fs::write(etc.join("hostname"), "host\n").unwrap();
    std::fs::create_dir_all(Path::new(&case.root).join("var/tmp")).unwrap();
    let script = "echo more >> /etc/hostname && mkdir /var/tmp/made && \
                  cat /etc/hostname && stat -c %u /etc/hostname";
    let mut tmp = rootfs_with_host_usr(&case.root);
    tmp.push("--overlay".into());
    for flags in [tmp, case.flags()] {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let r = sh(&flags, script);
        assert_eq!(
            (r.code, r.stdout.as_str()),
            (0, "host\nmore\n0\n"),
            "{flags:?}: {}",
            r.stderr
        );
    }
    assert_eq!(
        std::fs::read_to_string(etc.join("hostname")).unwrap(),
        "host\n"
    );
    assert!(!Path::new(&case.root).join("var/tmp/made").exists());
    // Redirects are neither made nor followed, whatever the module's
    // defaults on the host.
    let flags = case.flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let r = sh(&flags, "grep ' / / ' /proc/self/mountinfo");
    assert!(r.stdout.contains("redirect_dir=nofollow"), "{}", r.stdout);
    // The kept layer holds the change, as the sandbox's root's.
    let kept = case.layer.join("upper/etc/hostname");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "host\nmore\n");
    assert_eq!(
        std::fs::metadata(&kept).unwrap().uid(),
        airlock::plan::ROOT_CALLER_BASE
    );
}

/// That idmap shows sandbox root a layer's files as their owners': a
/// root caller's rootfs that reaches files only their owners may read
/// (/etc itself, with its shadow) is refused before anything starts
/// (`idmapped-private`), naming the layer; acknowledged, the sandbox
/// reads them, as the finding says.
#[test]
fn a_root_callers_overlay_of_private_host_files_is_refused() {
    require_root!();
    let args = |ack: bool| {
        let mut a = vec!["run", "--rootfs", "/etc", "--overlay"];
        a.extend(["--ro-bind", "/bin/busybox", "/busybox"]);
        if ack {
            a.extend(["--allow-unsafe", "idmapped-private"]);
        }
        a.extend(["--", "/busybox", "head", "-c", "5", "/shadow"]);
        a
    };
    let r = output(airlock(&args(false)));
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("error[idmapped-private]: filesystem.root.lower[0]: /etc is a layer")
            && r.stderr.contains("nothing was started"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout, "");
    let r = output(airlock(&args(true)));
    assert_eq!((r.code, r.stdout.as_str()), (0, "root:"), "{}", r.stderr);
}

/// `cmd` started with its stdout piped, once it has printed its first
/// line (`want`): a holder of something until it is ended.
struct Holder(std::process::Child);

impl Holder {
    fn start(mut cmd: std::process::Command, want: &str) -> Holder {
        use std::io::BufRead;
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the holder");
        let mut line = String::new();
        let out = child.stdout.take().unwrap();
        std::io::BufReader::new(out).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), want, "the holder did not get going");
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of our own child, not yet reaped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// Anyone may flock a directory they can open: another user's exclusive
/// locks on `/`, on the directory that holds the layer and on the layer
/// itself hold no sandbox's layer back (a sandbox's locks are in its
/// caller's own directory), while two sandboxes of one caller still meet
/// there: the second is refused while the first runs.
#[test]
fn another_users_locks_hold_no_layer_back() {
    require_root!(); // to lock as another user
    for user in callers() {
        let c = Case::new();
        let top = c.layer.parent().unwrap();
        std::fs::set_permissions(top, PermissionsExt::from_mode(0o755)).unwrap();
        if user {
            chown(&c.layer, USER, USER);
        }
        // Made once, so that there is a layer to lock.
        let r = c.write_newfile(user);
        assert_eq!(r.code, 0, "as user: {user}: {}", r.stderr);
        let upper = c.layer.join("upper");
        let dirs = [Path::new("/"), top, &c.layer, &upper];
        let _held: Vec<Holder> = dirs
            .iter()
            .map(|d| {
                let mut cmd = setpriv_as(65533, "--clear-groups", &[]);
                // The lock on an fd of the one process the holder ends.
                let script = r#"exec 9<"$1"; flock -x -n 9 && echo held && exec sleep 1000"#;
                cmd.args(["sh", "-c", script, "sh"]).arg(d);
                Holder::start(cmd, "held")
            })
            .collect();
        let r = c.write_newfile(user);
        assert_eq!(r.code, 0, "as user: {user}: {}", r.stderr);
        // The caller's own running sandbox does hold it.
        let owned = c.flags();
        let mut args = vec!["run"];
        args.extend(owned.iter().map(String::as_str));
        args.extend(["--", "sh", "-c", "echo up; exec sleep 1000"]);
        let first = match user {
            true => airlock_as_user(&args),
            false => airlock(&args),
        };
        let _first = Holder::start(first, "up");
        let r = c.write_newfile(user);
        assert_eq!(r.code, 125, "as user: {user}: {}", r.stderr);
        let says = format!("{} is, or holds, the upper layer", upper.display());
        assert!(r.stderr.contains(&says), "{says}: {}", r.stderr);
    }
}
