//! podman drives airlock-runtime as it drives runc (`--runtime`), with its
//! own storage (vfs) and run root in a temporary directory and a busybox
//! image imported from a tarball made here from Debian's busybox-static.

use std::process::{Command, Output, Stdio};

fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// podman with storage, run root and runtime of this test only. On this
/// machine root lacks CAP_SYS_RESOURCE: podman's default rlimits are too
/// high to set, so every run lowers them.
struct Podman {
    dir: tempfile::TempDir,
    /// podman's own storage and run root (`/var/lib/containers`, where
    /// the runtime-state guardrail looks), not the test's.
    default_storage: bool,
    image: String,
}

impl Podman {
    fn new() -> Option<Podman> {
        Podman::with(false)
    }

    fn with(default_storage: bool) -> Option<Podman> {
        if !is_root() {
            eprintln!("SKIPPED: this test needs root (CI runs it as root)");
            return None;
        }
        if Command::new("podman").arg("--version").output().is_err() {
            eprintln!(
                "SKIPPED: podman is not installed (.ci/run installs it: apt-get install podman)"
            );
            return None;
        }
        let p = Podman {
            dir: tempfile::Builder::new()
                .prefix("airlock-podman")
                .tempdir()
                .unwrap(),
            default_storage,
            image: match default_storage {
                // Its own name in the shared store, removed at the end.
                true => format!("localhost/airlock-test-busybox:{}", std::process::id()),
                false => "localhost/busybox:test".into(),
            },
        };
        p.import_busybox();
        Some(p)
    }

    fn cmd(&self) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        if !self.default_storage {
            c.arg("--root")
                .arg(d.join("root"))
                .arg("--runroot")
                .arg(d.join("runroot"))
                .args(["--storage-driver", "vfs"]);
        }
        c.args(["--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "file", "--runtime"])
            .arg(env!("CARGO_BIN_EXE_airlock-runtime"));
        c
    }

    fn import_busybox(&self) {
        let rootfs = self.dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        for d in ["proc", "dev", "sys", "tmp", "etc"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        std::fs::create_dir_all(rootfs.join("srv")).unwrap();
        std::fs::write(rootfs.join("srv/motd"), "from the image\n").unwrap();
        for c in [
            "sh", "echo", "id", "pwd", "touch", "cat", "sleep", "ls", "stat",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(c)).unwrap();
        }
        let tar = self.dir.path().join("busybox.tar");
        let ok = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(ok.success());
        let o = self
            .cmd()
            .args(["import"])
            .arg(&tar)
            .arg(&self.image)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    /// `podman run --rm` of the test image with `args` before it and
    /// `command` after.
    fn run(&self, args: &[&str], command: &[&str]) -> Output {
        self.cmd()
            .args(["run", "--rm", "--network", "none"])
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ])
            .args(args)
            .arg(&self.image)
            .args(command)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if self.default_storage {
            let _ = self.cmd().args(["rmi", "-f", &self.image]).output();
        }
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn podman_runs_containers_through_airlock() {
    let Some(p) = Podman::new() else { return };
    // Output and exit status.
    let o = p.run(&[], &["sh", "-c", "echo hello; exit 5"]);
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    assert_eq!(out(&o), "hello\n");
    // --env, --workdir, --user.
    let o = p.run(
        &["-e", "FOO=bar", "-w", "/tmp", "--user", "1000:1000"],
        &["sh", "-c", "echo $FOO; pwd; id -u; id -g"],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "bar\n/tmp\n1000\n1000\n");
    // Root in the container is not the host's root, yet the image's files
    // are root's as the image has them (idmapped root), and so are the
    // files podman keeps for the container under its run root, not in the
    // bundle (idmapped binds).
    let o = p.run(
        &[],
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map; stat -c %u /bin/busybox; stat -c %u /etc/hosts /etc/hostname; echo 10.0.0.1 added >> /etc/hosts && echo appended",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    let mut lines = text.lines();
    let map: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(map[0], "0");
    assert_ne!(map[1], "0", "{text}");
    assert_eq!(lines.next(), Some("0"), "{text}");
    assert_eq!(lines.next(), Some("0"), "/etc/hosts: {text}");
    assert_eq!(lines.next(), Some("0"), "/etc/hostname: {text}");
    assert_eq!(lines.next(), Some("appended"), "{text}");
    // podman's default networking: a network namespace netavark prepared,
    // joined by path.
    let o = p
        .cmd()
        .args([
            "run",
            "--rm",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .args(["localhost/busybox:test", "cat", "/proc/net/dev"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("eth0:"), "{}", out(&o));
    // run -it: the container's terminal goes to conmon's console socket.
    let mut podman = p.cmd();
    podman
        .args(["run", "--rm", "-it", "--network", "none"])
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .args([
            "localhost/busybox:test",
            "sh",
            "-c",
            "tty; stat -c %t:%T /dev/console; exit 2",
        ]);
    let o = on_a_terminal(&podman);
    // The terminal is the container's /dev/console too (the runtime spec).
    assert_eq!(out(&o), "'/dev/pts/0\\r\\n88:0\\r\\n' 2\n", "{}", err(&o));
    // --memory, --memory-reservation and --pids-limit: the container's
    // own cgroups, at the path podman gives (linux.cgroupsPath,
    // libpod_parent/libpod-ID) beneath its caller's.
    let o = p.run(
        &[
            "--memory",
            "64m",
            "--memory-reservation",
            "32m",
            "--pids-limit",
            "50",
        ],
        &[
            "sh",
            "-c",
            "grep -c /libpod_parent/libpod- /proc/self/cgroup",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).trim().parse::<u32>().unwrap() >= 2, "{}", out(&o));
    // --read-only: the root cannot be written.
    let o = p.run(&["--read-only"], &["sh", "-c", "touch /x"]);
    assert_ne!(o.status.code(), Some(0), "{}", out(&o));
    // --tmpfs: podman asks for tmpcopyup, and the tmpfs starts with what
    // the image has there.
    let o = p.run(
        &["--tmpfs", "/srv"],
        &["sh", "-c", "cat /srv/motd; touch /srv/new && echo writable"],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "from the image\nwritable\n", "{}", err(&o));
    // The default seccomp profile podman sends is applied.
    let o = p.run(&[], &["sh", "-c", "grep Seccomp: /proc/self/status"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o).split_whitespace().last(), Some("2"));
}

/// The README's example as it is: podman with its own storage, whose
/// container roots and per-container files live in /var/lib/containers,
/// runtime state a bind must not otherwise reach. (The guardrail refused
/// every such container before it told one container's directory from
/// the state around it.)
#[test]
fn podman_with_its_default_storage() {
    let Some(p) = Podman::with(true) else { return };
    let o = p.run(&[], &["sh", "-c", "echo hello"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "hello\n");
}

/// podman's own storage is overlayfs, whose roots cannot be idmapped:
/// under the user namespace airlock adds, the image's files show as
/// nobody. With id maps of the container's own (`--uidmap`, `--gidmap`)
/// podman maps the image's layers and its per-container files for that
/// range, and the container's root owns and writes its root. The range is
/// a subordinate one, owning no host file: no acknowledgement is needed
/// for the capabilities podman gives (CAP_DAC_OVERRIDE among them).
#[test]
fn podman_uidmap_on_its_overlay_storage() {
    let Some(p) = Podman::with(true) else { return };
    let script = "stat -c '%u %g' /bin/busybox /etc/hosts; touch /bin/new && stat -c %u /bin/new; cat /proc/self/uid_map /proc/self/gid_map";
    let o = p.run(&[], &["sh", "-c", script]);
    assert!(
        out(&o).starts_with("65534 65534\n"),
        "{} {}",
        out(&o),
        err(&o)
    );
    let range = "0:1879179264:65536";
    let o = p.run(
        &["--uidmap", range, "--gidmap", range],
        &["sh", "-c", script],
    );
    assert!(o.status.success(), "{} {}", out(&o), err(&o));
    let text = out(&o);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "0"], "the image's files are root's: {text}");
    assert_eq!(
        lines[1],
        ["0", "0"],
        "podman's /etc/hosts is root's: {text}"
    );
    assert_eq!(lines[2], ["0"], "root writes its root: {text}");
    for map in &lines[3..5] {
        assert_eq!(map[..], ["0", "1879179264", "65536"], "{text}");
    }
}

/// Runs argv on a new pseudo-terminal; prints what it showed (repr) and
/// its exit status.
const PTY_DRIVER: &str = "
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out, end = b'', time.time() + 20
while time.time() < end:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            c = os.read(fd, 4096)
        except OSError:
            break
        if not c:
            break
        out += c
_, st = os.waitpid(pid, 0)
print(repr(out.decode()), os.waitstatus_to_exitcode(st))
";

/// Run `cmd` on a new pseudo-terminal (see [`PTY_DRIVER`]).
fn on_a_terminal(cmd: &Command) -> Output {
    let argv: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    Command::new("python3")
        .arg("-c")
        .arg(PTY_DRIVER)
        .args(&argv)
        .output()
        .unwrap()
}

#[test]
fn podman_detached_container_lifecycle() {
    let Some(p) = Podman::new() else { return };
    let vol = p.dir.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    let o = p
        .cmd()
        .args(["run", "-d", "--name", "lc", "--network", "none", "-v"])
        .arg(format!("{}:/vol", vol.display()))
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .args(["localhost/busybox:test", "sh", "-c"])
        .arg("echo started; echo made > /tmp/made; trap 'exit 0' TERM; while true; do sleep 0.1; done")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let logs = |p: &Podman| out(&p.cmd().args(["logs", "lc"]).output().unwrap());
    for _ in 0..100 {
        if logs(&p).contains("started") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(logs(&p), "started\n");
    let o = p
        .cmd()
        .args(["exec", "lc", "sh", "-c", "echo in-exec; exit 4"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", err(&o));
    assert_eq!(out(&o), "in-exec\n");
    // A program the container lacks: 127, as podman gives it with runc
    // (it reads the runtime's words).
    let o = p.cmd().args(["exec", "lc", "nope"]).output().unwrap();
    assert_eq!(o.status.code(), Some(127), "{}", err(&o));
    // exec -it: a terminal of the container's own, over conmon's console
    // socket (driven from a pseudo-terminal, as a person at one).
    let mut podman = p.cmd();
    podman.args(["exec", "-it", "lc", "sh", "-c", "tty; exit 6"]);
    let o = on_a_terminal(&podman);
    assert_eq!(out(&o), "'/dev/pts/0\\r\\n' 6\n", "{}", err(&o));
    let o = p
        .cmd()
        .args(["ps", "--format", "{{.Names}} {{.Status}}"])
        .output()
        .unwrap();
    assert!(out(&o).starts_with("lc Up"), "{}", out(&o));
    // The pid podman was given (the runtime's --pid-file) is the
    // container's process, as runc gives it: `top` lists what runs in the
    // container and nothing of the host, and `cp` reaches its volumes.
    let o = p.cmd().args(["top", "lc", "pid", "args"]).output().unwrap();
    let top = out(&o);
    assert!(o.status.success(), "{}", err(&o));
    let rows: Vec<&str> = top.lines().skip(1).collect();
    assert!(
        rows[0].starts_with("1 ") && rows[0].contains("trap 'exit 0' TERM"),
        "{top}"
    );
    // A sleep that has just exited and waits for the shell to reap it
    // shows as `[sleep]` (no arguments left to show).
    assert!(
        rows[1..]
            .iter()
            .all(|r| r.contains("sleep 0.1") || r.contains("[sleep]")),
        "only the container's processes: {top}"
    );
    let o = p
        .cmd()
        .args(["inspect", "--format", "{{.State.Pid}}", "lc"])
        .output()
        .unwrap();
    let pid = out(&o).trim().to_string();
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
    assert_ne!(ns(&pid), ns("self"), "pid {pid} is not the container's");
    let file = p.dir.path().join("file");
    std::fs::write(&file, "copied\n").unwrap();
    let o = p
        .cmd()
        .arg("cp")
        .arg(&file)
        .arg("lc:/vol/file")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        std::fs::read_to_string(vol.join("file")).unwrap(),
        "copied\n"
    );
    let o = p
        .cmd()
        .arg("cp")
        .arg("lc:/tmp/made")
        .arg(p.dir.path().join("made"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        std::fs::read_to_string(p.dir.path().join("made")).unwrap(),
        "made\n"
    );
    // pause/unpause freeze its cgroup (podman's default pids limit gives
    // it one).
    let status = |p: &Podman| {
        let o = p
            .cmd()
            .args(["inspect", "--format", "{{.State.Status}}", "lc"])
            .output()
            .unwrap();
        out(&o).trim().to_string()
    };
    assert!(p.cmd().args(["pause", "lc"]).status().unwrap().success());
    assert_eq!(status(&p), "paused");
    assert!(p.cmd().args(["unpause", "lc"]).status().unwrap().success());
    assert_eq!(status(&p), "running");
    let o = p.cmd().args(["stop", "-t", "5", "lc"]).output().unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let o = p
        .cmd()
        .args(["inspect", "--format", "{{.State.ExitCode}}", "lc"])
        .output()
        .unwrap();
    assert_eq!(out(&o).trim(), "0", "{}", err(&o));
    let o = p.cmd().args(["rm", "lc"]).output().unwrap();
    assert!(o.status.success(), "{}", err(&o));
}
