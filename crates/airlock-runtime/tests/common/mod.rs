//! What the runtime's tests share: a state root and bundles per test,
//! one airlock-runtime call per verb; and, for the containerd and CRI
//! tests, a private containerd (root, state, socket and config in a
//! temporary directory) and busybox-based images built here from Debian's
//! busybox-static, saved by podman as a docker-archive and imported with
//! ctr (no registry is reachable).
#![allow(dead_code)] // each test binary uses its own part

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

#[path = "../../../airlock/tests/common/host.rs"]
mod host;
pub use host::*;

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

    /// `airlock-runtime ARGS` started in the background (stdin and
    /// stdout /dev/null, stderr piped), for a test that kills it midway.
    pub fn rt_spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new(runtime())
            .arg("--root")
            .arg(self.root())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `airlock-runtime ARGS` as nobody, a rootless runtime, with its own
    /// state root in the test's directory (which the test gives nobody).
    pub fn rt_as_nobody(&self, args: &[&str]) -> Output {
        Command::new("setpriv")
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "--",
            ])
            .arg(runtime())
            .arg("--root")
            .arg(self.dir.path().join("nobody-state"))
            .args(args)
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
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

/// A failing test leaves no container running behind it: whatever is
/// still in its state root is deleted by force.
impl Drop for Env {
    fn drop(&mut self) {
        if !self.root().exists() {
            return;
        }
        let listed = self.rt(&["list", "-q"]);
        for id in String::from_utf8_lossy(&listed.stdout).lines() {
            let _ = self.rt(&["delete", "--force", id.trim()]);
        }
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

/// Running, not a zombie: the runtime leaves a container
/// process's zombie to its caller's subreaper (here the host's init).
pub fn alive(pid: i64) -> bool {
    // "PID (COMM) STATE ...": the state follows the last parenthesis.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s[s.rfind(')')? + 2..].starts_with(['Z', 'X'])))
        .is_some_and(|zombie| !zombie)
}

pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

pub fn run(c: &mut Command) {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

pub fn runtime() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_airlock-runtime"))
}

pub struct Containerd {
    pub dir: tempfile::TempDir,
    daemon: Child,
    /// The containerd namespace: the runc shim keeps runtime state under
    /// /run/containerd/runc/NAMESPACE.
    pub ns: String,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        if self.ns != "k8s.io" {
            let _ = std::fs::remove_dir_all(format!("/run/containerd/runc/{}", self.ns));
            // ctr gives each container the cgroups path /NAMESPACE/ID. The
            // runtime removes the ID cgroups, and /NAMESPACE too when it
            // made it, but two containers run one after the other race for
            // it: the second finds it made while the first's supervisor,
            // still going, cannot remove it. (runc never removes it.)
            for h in std::fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
            {
                let _ = std::fs::remove_dir(h.path().join(&self.ns));
            }
            // A pure v2 host's, at the hierarchy's root.
            let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(&self.ns));
        }
    }
}

impl Containerd {
    /// Skips (None, with the reason on stderr) unless root with
    /// containerd, ctr and podman. `config` is the rest of containerd's
    /// config.toml (top-level keys, then tables; the socket's `[grpc]` table
    /// comes last), given the temporary directory.
    pub fn start(ns: &str, config: impl Fn(&Path) -> String) -> Option<Containerd> {
        if !is_root() {
            eprintln!("SKIPPED: this test needs root (CI runs it as root)");
            return None;
        }
        for tool in ["containerd", "ctr", "podman"] {
            if !have(tool) {
                eprintln!(
                    "SKIPPED: {tool} is not installed (.ci/run installs containerd and podman)"
                );
                return None;
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("airlock-ctd")
            .tempdir()
            .unwrap();
        let d = dir.path().display().to_string();
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n{}\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n",
            config(dir.path())
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let c = Containerd {
            dir,
            daemon,
            ns: ns.to_string(),
        };
        for _ in 0..200 {
            if c.ctr(&["version"]).status.success() {
                return Some(c);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("containerd did not come up: {}", c.log());
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    pub fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.socket())
            .args(["--namespace", &self.ns])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Imports a busybox image named `name`; `changes` are podman import's
    /// `--change` instructions (an entrypoint for a pause image).
    pub fn import_busybox(&self, name: &str, changes: &[&str]) {
        // podman refuses a runroot longer than 50 characters: a short
        // directory per image.
        let n = std::fs::read_dir(self.dir.path()).unwrap().count();
        let d = self.dir.path().join(format!("i{n}"));
        let rootfs = d.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for c in ["sh", "echo", "id", "cat", "sleep", "hostname"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(c)).unwrap();
        }
        let tar = d.join("rootfs.tar");
        run(Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg("."));
        let podman = |args: &[&str]| {
            let mut c = Command::new("podman");
            c.arg("--root")
                .arg(d.join("podman"))
                .arg("--runroot")
                .arg(d.join("podman-run"))
                .args(["--storage-driver", "vfs"])
                .args(args);
            c
        };
        let mut import = podman(&["import"]);
        for c in changes {
            import.args(["--change", c]);
        }
        run(import.arg(&tar).arg(name));
        let archive = d.join("archive.tar");
        run(podman(&["save", "--format", "docker-archive", "-o"])
            .arg(&archive)
            .arg(name));
        let o = self.ctr(&["images", "import", archive.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // podman's storage is root-owned files the tempdir removes anyway;
        // remove it now so that a failed test leaves less behind.
        let _ = std::fs::remove_dir_all(d.join("podman"));
    }
}
