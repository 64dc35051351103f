//! What the runtime's tests share: a state root and bundles per test,
//! one airlock-runtime call per verb.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("SKIPPED: this test needs root (CI runs it as root)");
            return;
        }
    };
}

/// A state root and a bundle directory for one test.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("airlock-runtime-test")
            .tempdir()
            .unwrap();
        Env { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `airlock-runtime --root STATE ARGS`. Its stdout and stderr are
    /// files, not pipes: a created container keeps the stdio it was given
    /// (as with runc), so a pipe would stay open for its whole life.
    pub fn rt(&self, args: &[&str]) -> Output {
        let out = tempfile::NamedTempFile::new_in(self.dir.path()).unwrap();
        let err = tempfile::NamedTempFile::new_in(self.dir.path()).unwrap();
        let status = Command::new(env!("CARGO_BIN_EXE_airlock-runtime"))
            .arg("--root")
            .arg(self.root())
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.reopen().unwrap())
            .stderr(err.reopen().unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(out.path()).unwrap(),
            stderr: std::fs::read(err.path()).unwrap(),
        }
    }

    /// A busybox bundle running `args`, `edit` applied to its config.
    pub fn bundle(&self, name: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> PathBuf {
        let b = self.dir.path().join(name);
        let rootfs = b.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        for d in ["proc", "dev", "sys", "tmp", "etc"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for c in [
            "sh", "echo", "cat", "id", "ls", "sleep", "stat", "touch", "ps",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(c)).unwrap();
        }
        let mut config = base_config(args);
        edit(&mut config);
        std::fs::write(b.join("config.json"), config.to_string()).unwrap();
        b
    }
}

pub fn base_config(args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "oci-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts"},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm"},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]}
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"]
        }
    })
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

pub fn state(env: &Env, id: &str) -> Value {
    let o = env.rt(&["state", id]);
    assert!(o.status.success(), "{:?}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

pub fn wait_status(env: &Env, id: &str, want: &str) -> Value {
    for _ in 0..200 {
        let s = state(env, id);
        if s["status"] == want {
            return s;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("{id} never became {want}: {}", state(env, id));
}

pub fn alive(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
