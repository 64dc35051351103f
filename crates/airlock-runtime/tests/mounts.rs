//! A bundle's mount options, checked from inside the container: what a
//! bind or a tmpfs asks for is what the workload meets, and what airlock
//! cannot honour is an error naming the option.

#[macro_use]
mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on the host for the test, unmounted when dropped.
struct HostMount(PathBuf);

impl HostMount {
    fn tmpfs(at: &Path) -> HostMount {
        std::fs::create_dir_all(at).unwrap();
        run(Command::new("mount").args(["-t", "tmpfs", "tmpfs"]).arg(at));
        HostMount(at.to_path_buf())
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn bind_and_tmpfs_options_are_honoured() {
    require_root!();
    let env = Env::new();
    // A directory with a program in it, and a mount below it.
    let src = env.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy("/bin/busybox", src.join("busybox")).unwrap();
    let _sub = HostMount::tmpfs(&src.join("sub"));
    std::fs::write(src.join("sub/below"), "x").unwrap();
    let script = "\
        /exec/busybox true && echo exec-ok; \
        /noexec/busybox true 2>/dev/null; echo noexec=$?; \
        test -e /rbind/sub/below && echo rbind-sees-below; \
        test -e /bind/sub/below || echo bind-hides-below; \
        touch /ro-tmp/x 2>&1 | grep -q 'Read-only' && echo ro-tmpfs-refuses; \
        touch /tmp-sized/x && echo tmpfs-writable; \
        stat -c %a /tmp-sized; stat -f -c '%b %S' /tmp-sized; \
        cp /exec/busybox /tmp-noexec/bb; /tmp-noexec/bb true 2>/dev/null; echo tmp-noexec=$?; \
        stat -c %a /tmp-noexec; stat -c %a /covered; stat -L -c %a /linked; \
        stat -f -c '%b %S' /dev/shm; \
        cp /exec/busybox /dev/shm/bb; /dev/shm/bb true 2>/dev/null; echo shm-noexec=$?";
    let b = env.bundle("b", &["sh", "-c", script], |c| {
        let m = c["mounts"].as_array_mut().unwrap();
        for (dest, opts) in [
            ("/exec", json!(["rbind", "ro"])),
            ("/noexec", json!(["rbind", "ro", "noexec", "nosuid", "nodev", "rprivate"])),
            ("/rbind", json!(["rbind", "ro", "relatime"])),
            ("/bind", json!(["bind", "ro"])),
        ] {
            m.push(json!({"destination": dest, "type": "bind", "source": src, "options": opts}));
        }
        m.push(json!({"destination": "/ro-tmp", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "nosuid"]}));
        m.push(json!({"destination": "/tmp-sized", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=0710", "strictatime"]}));
        m.push(json!({"destination": "/tmp-noexec", "type": "tmpfs", "source": "tmpfs", "options": ["noexec", "rw"]}));
        m.push(json!({"destination": "/covered", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}));
        m.push(json!({"destination": "/linked", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}));
        // As containerd and podman give it.
        for e in m.iter_mut().filter(|e| e["destination"] == "/dev/shm") {
            e["options"] = json!(["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]);
        }
    });
    let covered = b.join("rootfs/covered");
    std::fs::create_dir(&covered).unwrap();
    std::fs::set_permissions(
        &covered,
        std::os::unix::fs::PermissionsExt::from_mode(0o750),
    )
    .unwrap();
    // A destination that is a link in the image, absolute as images have
    // them: the mode is its target's in the rootfs (not the host's
    // /srv/data, nor the kernel's 1777 for a link).
    std::fs::create_dir_all(b.join("rootfs/srv/data")).unwrap();
    std::fs::set_permissions(
        b.join("rootfs/srv/data"),
        std::os::unix::fs::PermissionsExt::from_mode(0o751),
    )
    .unwrap();
    std::os::unix::fs::symlink("/srv/data", b.join("rootfs/linked")).unwrap();
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "m1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "exec-ok",
            // The shell's status for a file it may not execute (EACCES).
            "noexec=126",
            "rbind-sees-below",
            "bind-hides-below",
            "ro-tmpfs-refuses",
            "tmpfs-writable",
            "710",
            "256 4096",
            "tmp-noexec=126",
            // No mode=: the kernel's 1777 where nothing is covered, the
            // covered directory's mode where one is, as under runc.
            "1777",
            "750",
            "751",
            // The bundle's /dev/shm, size=65536k and noexec, over airlock's.
            "16384 4096",
            "shm-noexec=126",
        ],
        "{out} {err}"
    );
}

/// The bundle's cgroup mount (every bundle here has one) shows the
/// container's own cgroups, read-only, as runc mounts them: its limits
/// read where a v2 host (or a v1 one) puts them, and nothing is written.
#[test]
fn the_cgroup_mount_shows_the_containers_own_limits_read_only() {
    require_root!();
    let env = Env::new();
    let cg = "/sys/fs/cgroup";
    let script = format!(
        "cat {cg}/memory.max 2>/dev/null || cat {cg}/memory/memory.limit_in_bytes; \
         cat {cg}/pids.max 2>/dev/null || cat {cg}/pids/pids.max; \
         for f in {cg}/pids.max {cg}/pids/pids.max; do test -e $f && (echo 5 > $f) 2>&1; done; \
         mkdir {cg}/x 2>&1; \
         busybox grep -c ' {cg}' /proc/self/mountinfo; \
         cat {cg}/cpuset.cpus 2>/dev/null || cat {cg}/cpuset/cpuset.cpus; \
         busybox grep Cpus_allowed_list /proc/self/status; \
         if [ -d {cg}/pids ]; then m={cg}/pids; c=$(busybox grep :pids: /proc/self/cgroup); \
         else m={cg}; c=$(busybox grep ^0:: /proc/self/cgroup); fi; \
         r=$(busybox awk -v m=$m '$5==m {{print $4}}' /proc/self/mountinfo); \
         [ \"$r\" = \"${{c##*:}}\" ] && echo own-cgroup || echo \"mounted $r, in ${{c##*:}}\""
    );
    let b = env.bundle("b", &["sh", "-c", &script], |c| {
        c["linux"]["resources"] =
            json!({"memory": {"limit": 67108864}, "pids": {"limit": 7}, "cpu": {"cpus": "1"}});
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "cg1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["67108864", "7"], "{out} {err}");
    assert!(lines[2].contains("Read-only file system"), "{out}");
    assert!(lines[3].contains("Read-only file system"), "{out}");
    // Mounted: a v2 directory alone, or a tmpfs with each hierarchy.
    assert!(lines[4].parse::<u32>().unwrap() >= 1, "{out}");
    // linux.resources.cpu.cpus, in the cgroup and as the kernel applies it.
    assert_eq!(lines[5], "1", "{out}");
    assert!(lines[6].ends_with("\t1"), "{out}");
    // What is mounted is the container's own cgroup, not one above it.
    assert_eq!(lines[7], "own-cgroup", "{out}");
}

/// podman's /dev/mqueue below its /dev tmpfs is an mqueue of the
/// container's IPC namespace; with the host's IPC namespace shared
/// (acknowledged), an empty directory no one can write stands there.
#[test]
fn dev_mqueue_is_the_containers_own() {
    require_root!();
    let env = Env::new();
    let script =
        "busybox grep -c ' /dev/mqueue mqueue' /proc/mounts; touch /dev/mqueue/q 2>&1; true";
    let with_mqueue = |c: &mut Value| {
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        );
    };
    let b = env.bundle("own", &["sh", "-c", script], with_mqueue);
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "mq1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out, "1\n", "{err}");
    let b = env.bundle("shared", &["sh", "-c", script], |c| {
        with_mqueue(c);
        c["linux"]["namespaces"] =
            json!([{"type": "pid"}, {"type": "network"}, {"type": "uts"}, {"type": "mount"}]);
        c["annotations"] = json!({"run.airlock.allow-unsafe": "shared-ipc"});
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "mq2"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert!(out.starts_with("0\ntouch: /dev/mqueue/q: "), "{out} {err}");
}

#[test]
fn options_airlock_cannot_honour_are_refused() {
    require_root!();
    let env = Env::new();
    let src = env.dir.path().display().to_string();
    let cases = [
        (
            json!({"destination": "/x", "type": "bind", "source": src, "options": ["rbind", "rshared"]}),
            "rshared propagation is not supported",
        ),
        (
            json!({"destination": "/x", "type": "bind", "source": src, "options": ["rbind", "rslave"]}),
            "rslave propagation",
        ),
        (
            json!({"destination": "/x", "type": "bind", "source": src, "options": ["rbind", "suid"]}),
            "suid",
        ),
        (
            json!({"destination": "/x", "type": "bind", "source": src, "options": ["rbind", "idmap"]}),
            "\"idmap\" is not an option",
        ),
        (
            json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["nr_inodes=5"]}),
            "\"nr_inodes=5\"",
        ),
        (
            json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["mode=99"]}),
            "mode=99",
        ),
    ];
    for (i, (mount, needle)) in cases.into_iter().enumerate() {
        let b = env.bundle(&format!("b{i}"), &["true"], |c| {
            c["mounts"].as_array_mut().unwrap().push(mount.clone());
        });
        let id = format!("r{i}");
        let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), &id]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{mount}: {out} {err}");
        assert!(err.contains("mounts[6].options"), "{mount}: {err}");
        assert!(err.contains(needle), "{needle:?} not in {err}");
        assert!(!env.rt(&["state", &id]).status.success());
    }
    // The bundle's own /dev tmpfs, which becomes airlock's /dev: its
    // options are judged too, not dropped.
    let dev_cases = [
        (json!(["nosuid", "bogus"]), "\"bogus\" is not an option"),
        (json!(["suid"]), "suid is not supported"),
        (json!(["nosuid", "exec"]), "exec is not supported on /dev"),
        (
            json!(["nosuid", "mode=777"]),
            "mode=777 is not supported on /dev",
        ),
    ];
    for (i, (options, needle)) in dev_cases.into_iter().enumerate() {
        let mut at = None;
        let b = env.bundle(&format!("dev{i}"), &["true"], |c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            let k = mounts
                .iter()
                .position(|m| m["destination"] == "/dev")
                .unwrap();
            mounts[k]["options"] = options.clone();
            at = Some(k);
        });
        let id = format!("dev{i}");
        let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), &id]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{options}: {out} {err}");
        assert!(
            err.contains(&format!("mounts[{}].options", at.unwrap())),
            "{err}"
        );
        assert!(err.contains(needle), "{needle:?} not in {err}");
        assert!(!env.rt(&["state", &id]).status.success());
    }
}

/// The bundle's /dev/pts is where airlock's /dev makes its own devpts: a
/// devpts there whose options that one keeps runs; another filesystem, a
/// closer mode or an unknown option is refused by name, not dropped. And
/// `/dev/` is `/dev`: airlock's /dev, with its nodes and its devpts.
#[test]
fn the_bundles_dev_pts_is_judged_and_dev_is_dev_however_written() {
    require_root!();
    let env = Env::new();
    let pts_at = |c: &Value| {
        c["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .position(|m| m["destination"] == "/dev/pts")
            .unwrap()
    };
    let cases = [
        (
            json!({"type": "tmpfs", "options": []}),
            ".type",
            "\"tmpfs\" mount there",
        ),
        (
            json!({"type": "devpts", "options": ["bogus=1"]}),
            ".options",
            "\"bogus=1\" is not supported on /dev/pts",
        ),
        (
            json!({"type": "devpts", "options": ["mode=0600"]}),
            ".options",
            "\"mode=0600\"",
        ),
    ];
    for (i, (change, field, needle)) in cases.into_iter().enumerate() {
        let mut at = 0;
        let b = env.bundle(&format!("pts{i}"), &["true"], |c| {
            at = pts_at(c);
            let m = &mut c["mounts"][at];
            m["type"] = change["type"].clone();
            m["options"] = change["options"].clone();
        });
        let id = format!("pts{i}");
        let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), &id]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{change}: {out} {err}");
        assert!(err.contains(&format!("mounts[{at}]{field}")), "{err}");
        assert!(err.contains(needle), "{needle:?} not in {err}");
        assert!(!env.rt(&["state", &id]).status.success());
    }
    let probe = "test -c /dev/null && test -c /dev/pts/ptmx && echo dev-made";
    let b = env.bundle("slash", &["sh", "-c", probe], |c| {
        let at = pts_at(c);
        // podman's list (with rprivate where gid 5 is not mapped).
        c["mounts"][at]["options"] = json!([
            "rprivate",
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5"
        ]);
        for m in c["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/dev" {
                m["destination"] = "/dev/".into();
            }
        }
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "slash"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out.trim(), "dev-made", "{err}");
}

/// podman adds `tmpcopyup` to every `--tmpfs`: the tmpfs starts with a copy
/// of what the image had there, written to in memory, and an image's link
/// to a host path is copied as a link, not read through.
#[test]
fn tmpcopyup_fills_the_tmpfs_with_the_image_content_and_follows_no_link() {
    require_root!();
    let env = Env::new();
    let secret = env.dir.path().join("host-secret");
    std::fs::write(&secret, "HOST-SECRET").unwrap();
    let script = "\
        cat /data/file; echo; stat -c '%a %Y' /data/file; \
        cat /data/sub/nested; echo; \
        busybox readlink /data/out-link; \
        cat /data/out-link 2>/dev/null || echo out-link-dangles; \
        cat /data/in-link; echo; \
        test -p /data/fifo && echo fifo-copied; \
        busybox grep -c ' /data tmpfs ' /proc/mounts; \
        echo changed > /data/file && echo written; \
        ls -A /empty | busybox wc -l";
    let b = env.bundle("b", &["sh", "-c", script], |c| {
        let m = c["mounts"].as_array_mut().unwrap();
        let opts = json!(["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"]);
        m.push(
            json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": opts}),
        );
        m.push(
            json!({"destination": "/empty", "type": "tmpfs", "source": "tmpfs", "options": opts}),
        );
    });
    let data = b.join("rootfs/data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("file"), "image-content").unwrap();
    run(Command::new("chmod").arg("640").arg(data.join("file")));
    run(Command::new("touch")
        .args(["-d", "@978307200"])
        .arg(data.join("file")));
    std::fs::write(data.join("sub/nested"), "nested").unwrap();
    std::os::unix::fs::symlink(&secret, data.join("out-link")).unwrap();
    std::os::unix::fs::symlink("file", data.join("in-link")).unwrap();
    run(Command::new("mkfifo").arg(data.join("fifo")));

    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "c1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "image-content",
            "640 978307200",
            "nested",
            secret.to_str().unwrap(),
            "out-link-dangles",
            "image-content",
            "fifo-copied",
            "1",
            "written",
            "0",
        ],
        "{out} {err}"
    );
    assert!(!out.contains("HOST-SECRET") && !err.contains("HOST-SECRET"));
    // Written in the tmpfs, not in the image.
    assert_eq!(
        std::fs::read_to_string(data.join("file")).unwrap(),
        "image-content"
    );
}

/// What cannot be copied fails the create by its path and leaves nothing.
#[test]
fn tmpcopyup_of_a_socket_fails_by_its_path_and_leaves_nothing() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("b", &["true"], |c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}));
    });
    std::fs::create_dir_all(b.join("rootfs/run/app")).unwrap();
    // A socket file left in the image, nobody listening: a live one would
    // be refused before (socket-bind: the container could reach its
    // listener).
    drop(std::os::unix::net::UnixListener::bind(b.join("rootfs/run/app/sock")).unwrap());
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "c1"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(
        err.contains("/run")
            && err.contains("copying /app/sock into the tmpfs: a socket is not copied"),
        "{err}"
    );
    assert!(
        !env.rt(&["state", "c1"]).status.success(),
        "left a container"
    );
}

/// An image whose /proc, /sys or /dev is a symlink (`/proc -> /`) would
/// have the kernel filesystem stacked where the link leads, and the masked
/// and read-only paths, found by path, would all miss it (runc
/// CVE-2019-19921, CVE-2023-27561): refused, naming the path, as runc does.
#[test]
fn a_kernel_filesystem_is_never_mounted_through_a_symlink() {
    require_root!();
    let env = Env::new();
    for (i, dir) in ["proc", "sys", "dev"].into_iter().enumerate() {
        let b = env.bundle(&format!("b{i}"), &["true"], |_| {});
        let at = b.join("rootfs").join(dir);
        std::fs::remove_dir(&at).unwrap();
        std::os::unix::fs::symlink("/", &at).unwrap();
        let id = format!("k{i}");
        let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), &id]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{dir}: {out} {err}");
        assert!(
            err.contains(&format!("/{dir} is a symlink or is reached through one")),
            "{dir}: {err}"
        );
        assert!(!env.rt(&["state", &id]).status.success(), "left {id}");
    }
}

/// A destination is idmapped only where every bind onto it is the
/// container's own file: a host directory bound onto the same path after
/// one (two mounts an engine gives for one destination) keeps the host's
/// view of ownership, so the container's root cannot write it as the
/// host's root under the acknowledgement meant for its own files.
#[test]
fn a_host_bind_beside_an_own_file_at_one_destination_is_not_idmapped() {
    require_root!();
    let env = Env::new();
    let shared = env.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let own = env.dir.path().join("b/own");
    let b = env.bundle(
        "b",
        &["sh", "-c", "touch /data/x 2>/dev/null && echo wrote; stat -c %u /data"],
        |c| {
            let m = c["mounts"].as_array_mut().unwrap();
            for source in [&own, &shared] {
                m.push(json!({"destination": "/data", "type": "bind", "source": source, "options": ["rbind", "rw"]}));
            }
        },
    );
    std::fs::create_dir(&own).unwrap();
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "i1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert!(
        !shared.join("x").exists(),
        "written as the host's root: {out}"
    );
    // The host root's directory, seen from a namespace that does not map
    // it: nobody's.
    assert_eq!(out, "65534\n", "{err}");
}

/// runc's CVE-2025-31133: a masked path was hidden by a bind of the
/// container's own /dev/null, which a rootfs (or a racing process) could
/// make a symbolic link to /proc/sys/kernel/core_pattern: the "mask" was
/// then that sysctl, bound writable over /proc/kcore. Here /dev is the
/// rootfs's own (no tmpfs over it) and its `null` is such a link: the
/// masked file (/proc/version, which every kernel has) is still the
/// host's null device, empty, 1:3 and read-only, and the host's
/// core_pattern is as it was.
#[test]
fn a_masked_path_is_never_hidden_by_the_rootfs_dev_null() {
    require_root!();
    let env = Env::new();
    let b = env.bundle(
        "devnull-link",
        &[
            "sh",
            "-c",
            "stat -c '%F %t:%T' /proc/version; wc -c < /proc/version; \
             echo '|/tmp/x' > /proc/version 2>/dev/null || echo refused",
        ],
        |c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
            c["linux"]["maskedPaths"] = json!(["/proc/version"]);
        },
    );
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", b.join("rootfs/dev/null")).unwrap();
    let before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let o = env.rt(&["run", "--bundle", &b.display().to_string(), "devnull-link"]);
    let (out, err) = text(&o);
    assert_eq!(
        out.trim_end().lines().collect::<Vec<_>>(),
        ["character special file 1:3", "0", "refused"],
        "{out} {err}"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        before
    );
}
