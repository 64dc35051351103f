//! containerd drives airlock-runtime through its runc shim (v2), as
//! `ctr run --runc-binary` does: a containerd of this test's own (root,
//! state, socket and config in a temporary directory), a busybox image
//! saved by podman from a tarball made here and imported with ctr.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

struct Containerd {
    dir: tempfile::TempDir,
    daemon: Child,
    /// The containerd namespace, unique to this test run: the runc shim
    /// keeps runtime state under /run/containerd/runc/NAMESPACE.
    ns: String,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = std::fs::remove_dir_all(format!("/run/containerd/runc/{}", self.ns));
    }
}

impl Containerd {
    fn start() -> Option<Containerd> {
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
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n"
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
            ns: format!("airlock-test-{}", std::process::id()),
        };
        for _ in 0..200 {
            if c.ctr(&["version"]).status.success() {
                c.import_busybox();
                return Some(c);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("containerd did not come up: {}", c.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.dir.path().join("containerd.sock"))
            .args(["--namespace", &self.ns])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn import_busybox(&self) {
        let d = self.dir.path();
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
        run(podman(&["import"]).arg(&tar).arg("localhost/busybox:ctr"));
        let archive = d.join("busybox-archive.tar");
        run(podman(&["save", "--format", "docker-archive", "-o"])
            .arg(&archive)
            .arg("localhost/busybox:ctr"));
        let o = self.ctr(&["images", "import", archive.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    fn runtime() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_airlock-runtime"))
    }
}

fn run(c: &mut Command) {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn ctr_runs_tasks_through_the_runc_shim() {
    let Some(c) = Containerd::start() else { return };
    let rt = Containerd::runtime();
    let rt = rt.to_str().unwrap();
    // A task's output and exit status.
    let o = c.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        rt,
        "localhost/busybox:ctr",
        "t1",
        "sh",
        "-c",
        "echo hi from ctr; cat /proc/self/uid_map; exit 3",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out} {err}\n{}", c.log());
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("hi from ctr"));
    let map: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_ne!(map[1], "0", "container root is not the host's root: {out}");
    // A detached task: exec into it, then kill it.
    let o = c.ctr(&[
        "run",
        "-d",
        "--runc-binary",
        rt,
        "localhost/busybox:ctr",
        "t2",
        "sleep",
        "1000",
    ]);
    assert!(o.status.success(), "{:?}\n{}", text(&o), c.log());
    let o = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "t2",
        "sh",
        "-c",
        "cat /proc/1/comm; exit 4",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(4), "{out} {err}");
    assert_eq!(out, "sleep\n");
    let o = c.ctr(&["task", "kill", "-s", "SIGKILL", "t2"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let mut stopped = false;
    for _ in 0..100 {
        let o = c.ctr(&["task", "ls"]);
        let (out, _) = text(&o);
        if out
            .lines()
            .any(|l| l.starts_with("t2 ") && l.contains("STOPPED"))
        {
            stopped = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(stopped, "{:?}", text(&c.ctr(&["task", "ls"])));
    let o = c.ctr(&["task", "delete", "t2"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = c.ctr(&["container", "delete", "t2"]);
    assert!(o.status.success(), "{:?}", text(&o));
    // Nothing of either task is left in the runtime's state root.
    let root = format!("/run/containerd/runc/{}", c.ns);
    let o = Command::new(rt)
        .args(["--root", &root, "list", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(text(&o).0.trim(), "[]", "{:?}", text(&o));
    assert!(Path::new(&root).is_dir(), "the shim used {root}");
}
