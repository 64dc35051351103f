//! A bundle's mount options, checked from inside the container: what a
//! bind or a tmpfs asks for is what the workload meets, and what airlock
//! cannot honour is an error naming the option.

#[macro_use]
mod common;
use common::*;
use serde_json::json;
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
        cp /exec/busybox /tmp-noexec/bb; /tmp-noexec/bb true 2>/dev/null; echo tmp-noexec=$?";
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
    });
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
        ],
        "{out} {err}"
    );
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
}
