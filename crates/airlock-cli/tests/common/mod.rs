//! Helpers shared by the integration tests: they start real sandboxes with
//! the real `airlock` binary, as root and as an unprivileged user.
#![allow(dead_code)]

#[path = "../../../airlock/tests/common/host.rs"]
mod host;
pub mod images;
pub use host::*;

use airlock::runner::{RUNNER_BIN, RUNNER_STATIC_BIN};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The unprivileged user the rootless tests run as.
pub const USER: u32 = 1000;

/// The airlock binary, copied once with the runner into a directory every
/// user can reach (the checkout may sit under a directory an unprivileged
/// user cannot enter). The runner is another package's binary: `cargo
/// test --workspace` builds it beside this one, and its static (musl) copy
/// when the build has the target; the copy is the one airlock would pick,
/// so the tests run what a user runs.
pub fn airlock_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let built = PathBuf::from(env!("CARGO_BIN_EXE_airlock"));
        let static_runner = built.with_file_name(RUNNER_STATIC_BIN);
        let runner = if static_runner.is_file() {
            static_runner
        } else {
            built.with_file_name(RUNNER_BIN)
        };
        assert!(
            runner.is_file(),
            "{} is missing: run the tests with `cargo test --workspace` (or `cargo build -p airlock-runner` first)",
            runner.display()
        );
        sweep_bin_dirs();
        let dir = bin_dir(std::process::id());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for (from, name) in [(&runner, RUNNER_BIN), (&built, "airlock")] {
            let tmp = dir.join(format!("{name}.{:?}", std::thread::current().id()));
            // A hard link costs no space (a debug build's two binaries are
            // about 170 MB, and every test binary makes its directory); a
            // copy where the link cannot be made or would not be runnable
            // by everyone. The copy is made by `cp`: a file this (threaded)
            // process held open for writing would be inherited by any
            // child another test thread forks meanwhile, and exec'ing the
            // copy would fail with ETXTBSY until that child execs.
            let everyone = from
                .metadata()
                .is_ok_and(|m| m.permissions().mode() & 0o755 == 0o755);
            if !everyone || std::fs::hard_link(from, &tmp).is_err() {
                let copied = Command::new("cp").arg(from).arg(&tmp).status().unwrap();
                assert!(copied.success(), "cp {} {}", from.display(), tmp.display());
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            std::fs::rename(&tmp, dir.join(name)).unwrap();
        }
        // SAFETY: registers a plain function, run once at exit.
        unsafe { libc::atexit(remove_bin_dir) };
        dir.join("airlock")
    })
}

const BIN_DIR: &str = "airlock-test-bin-";

/// The directory of binaries of the test process `pid`.
fn bin_dir(pid: u32) -> PathBuf {
    std::env::temp_dir().join(format!("{BIN_DIR}{pid}"))
}

/// At the test binary's exit: its directory of binaries goes.
extern "C" fn remove_bin_dir() {
    let _ = std::fs::remove_dir_all(bin_dir(std::process::id()));
}

/// The directories of test binaries that ended without their exit
/// handler (killed, aborted): whose process is gone.
fn sweep_bin_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(BIN_DIR)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The runner binary, beside [`airlock_bin`].
pub fn runner_bin() -> PathBuf {
    airlock_bin().with_file_name(RUNNER_BIN)
}

/// `airlock ARGS...` as the current user.
pub fn airlock(args: &[&str]) -> Command {
    let mut c = Command::new(airlock_bin());
    c.args(args).stdin(Stdio::null());
    c
}

/// `airlock ARGS...` as the unprivileged test user (via setpriv).
pub fn airlock_as_user(args: &[&str]) -> Command {
    let mut c = as_user();
    c.arg(airlock_bin()).args(args).stdin(Stdio::null());
    c
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn output(mut c: Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().expect("start airlock");
    use std::os::unix::process::ExitStatusExt;
    Run {
        code: status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Run `sh -c SCRIPT` in a default sandbox with extra flags.
pub fn sh(flags: &[&str], script: &str) -> Run {
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    output(airlock(&args))
}

pub fn sh_as_user(flags: &[&str], script: &str) -> Run {
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    output(airlock_as_user(&args))
}

pub fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

/// Processes whose command line mentions `needle`.
pub fn processes_with(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                out.push(pid);
            }
        }
    }
    out
}

/// Whether strace is installed, which the tests that hold a process in
/// one syscall use; says the test is skipped when not.
pub fn has_strace() -> bool {
    let found = Command::new("strace").arg("-V").output().is_ok();
    if !found {
        eprintln!("SKIPPED: strace is not installed");
    }
    found
}

/// Every descendant of `pid` (from /proc/*/stat).
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                let ppid: i32 = rest
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0);
                parent_of.push((p, ppid));
            }
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let cur = found[i];
        for (p, pp) in &parent_of {
            if *pp == cur && !found.contains(p) {
                found.push(*p);
            }
        }
        i += 1;
    }
    found.remove(0);
    found
}

/// Check that a failed start left nothing behind: no mount on the host
/// and no runner process of that airlock invocation.
pub fn assert_nothing_left(mounts_before: &str) {
    assert_eq!(host_mounts(), mounts_before, "a mount was left on the host");
}

/// Start `airlock run FLAGS -- sh -c SCRIPT` and wait for the script to
/// print `ready`: the sandbox is then fully up.
pub fn spawn_ready(
    flags: &[&str],
    script: &str,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
) {
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    spawn_ready_args(&args)
}

/// [`spawn_ready`] with airlock's whole argument list (global flags first).
pub fn spawn_ready_args(
    args: &[&str],
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
) {
    use std::io::BufRead;
    let mut child = airlock(args).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    (child, out)
}

/// Flags that borrow the host's /usr (merged-/usr layout) for a root of
/// the test's own.
pub fn host_usr() -> Vec<String> {
    [
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Flags for a --rootfs that borrows the host's /usr.
pub fn rootfs_with_host_usr(root: &str) -> Vec<String> {
    let mut flags = vec!["--rootfs".to_string(), root.to_string()];
    flags.extend(host_usr());
    flags
}

/// Who a test runs airlock as: as we are, and as the unprivileged test
/// user (`true`) when we are root and can become it.
pub fn callers() -> Vec<bool> {
    if is_root() {
        vec![false, true]
    } else {
        vec![false]
    }
}

/// A fifo at `path`, mode 0666.
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path; mkfifo only makes the node.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o666) },
        0,
        "mkfifo {}",
        path.display()
    );
}

/// A pipe whose ends are close-on-exec here (other tests' children would
/// hold them open); `handed` clears it in airlock's own child only.
pub fn cloexec_pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: a valid two-int array for pipe2 to fill.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds are new and ours.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// `c` with `fds` inherited across its exec.
pub fn handed(c: &mut Command, fds: Vec<i32>) {
    // SAFETY: runs in the forked child before its exec, and only clears
    // close-on-exec on fds it inherited.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(c, move || {
            for &fd in &fds {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// The JSON airlock writes to `--info-fd` (read to its end: airlock
/// closes it once written).
pub fn read_info(info: std::os::fd::OwnedFd) -> serde_json::Value {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::from(info).read_to_string(&mut text).unwrap();
    serde_json::from_str(&text).expect("one JSON object")
}

/// PID 1's pid, from [`read_info`].
pub fn info_child_pid(info: std::os::fd::OwnedFd) -> i64 {
    read_info(info)["child-pid"].as_i64().expect("child-pid")
}

/// `setpriv` ready to run a program as the unprivileged test user.
pub fn as_user() -> Command {
    setpriv_as(USER, "--clear-groups", &[])
}

/// `setpriv` ready to run a program as `uid` (its gid the same), with
/// `groups` (`--clear-groups`, `--groups=N`) and `extra` setpriv flags
/// (`--no-new-privs`); stdin is /dev/null.
pub fn setpriv_as(uid: u32, groups: &str, extra: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(extra)
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .args([groups, "--"])
        .stdin(Stdio::null());
    c
}
