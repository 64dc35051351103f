//! `airlock attach` to a detached workload (`run -d -i`, `run -d -t`),
//! `airlock logs --tail`, and the errors when there is nothing to attach
//! to, as root and as an unprivileged user.

mod common;
use common::*;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/terminal/drive.py");

/// `airlock --state-root ROOT ARGS...`, as root or as the test user.
fn cmd(root: &Path, as_user: bool, args: &[&str]) -> Command {
    let mut a = vec!["--state-root", root.to_str().unwrap()];
    a.extend_from_slice(args);
    if as_user {
        airlock_as_user(&a)
    } else {
        airlock(&a)
    }
}

fn al(root: &Path, as_user: bool, args: &[&str]) -> Run {
    output(cmd(root, as_user, args))
}

/// Kills and removes a test's sandboxes when the test ends, passed or
/// not, so a failure leaves no workload behind.
struct Remove<'a>(&'a Path, bool, &'static [&'static str]);

impl Drop for Remove<'_> {
    fn drop(&mut self) {
        let mut args = vec!["rm", "-f"];
        args.extend_from_slice(self.2);
        let _ = cmd(self.0, self.1, &args).stderr(Stdio::null()).output();
    }
}

/// A state root the test user may use too (it creates it, 0700).
fn state_root() -> (tempfile::TempDir, std::path::PathBuf) {
    let shared = shared_dir();
    let root = shared.path().join("state");
    (shared, root)
}

/// `airlock attach NAME` with its stdin and stdout piped.
fn attach(root: &Path, as_user: bool, name: &str) -> Child {
    cmd(root, as_user, &["attach", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `child`'s stdout, line by line, read by a thread that keeps it open.
fn lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn next(lines: &std::sync::mpsc::Receiver<String>) -> Option<String> {
    lines.recv_timeout(Duration::from_secs(10)).ok()
}

fn attach_to_stdin(as_user: bool) {
    let (_keep, root) = state_root();
    let root = &root;
    let _cleanup = Remove(root, as_user, &["x"]);
    let r = al(
        root,
        as_user,
        &["run", "-d", "-i", "--name", "x", "--", "cat"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut a = attach(root, as_user, "x");
    let a_out = lines(&mut a);
    let mut input = a.stdin.take().unwrap();
    input.write_all(b"hello\n").unwrap();
    // Our end-of-file stops the copying, not cat: its stdin stays open.
    drop(input);
    assert_eq!(next(&a_out).as_deref(), Some("hello"));
    assert!(
        a.try_wait().unwrap().is_none(),
        "attach returned before the workload ended"
    );
    assert!(wait_until(5, || al(root, as_user, &["logs", "x"]).stdout == "hello\n"));
    // A second attach writes to the same stdin.
    let mut b = attach(root, as_user, "x");
    let b_out = lines(&mut b);
    b.stdin.take().unwrap().write_all(b"again\n").unwrap();
    assert_eq!(next(&b_out).as_deref(), Some("again"));
    assert_eq!(next(&a_out).as_deref(), Some("again"), "both see it");
    // Both return when the workload ends, with its status.
    assert_eq!(al(root, as_user, &["stop", "-t", "5", "x"]).code, 0);
    for mut child in [a, b] {
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    }
    assert_eq!(al(root, as_user, &["logs", "x"]).stdout, "hello\nagain\n");
    assert_eq!(al(root, as_user, &["rm", "x"]).code, 0);
}

#[test]
fn attach_to_stdin_as_root() {
    require_root!();
    attach_to_stdin(false);
}

#[test]
fn attach_to_stdin_rootless() {
    require_root!();
    attach_to_stdin(true);
}

fn attach_to_a_terminal(as_user: bool) {
    let (_keep, root) = state_root();
    let root = &root;
    let _cleanup = Remove(root, as_user, &["t"]);
    let r = al(
        root,
        as_user,
        &[
            "run",
            "-d",
            "-t",
            "--name",
            "t",
            "--",
            "sh",
            "-c",
            "tty; read line; echo got:$line; exit 4",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // What it printed before anyone attached is in the logs.
    assert!(wait_until(5, || al(root, as_user, &["logs", "t"])
        .stdout
        .contains("/dev/pts/0\r\n")));
    let mut a = attach(root, as_user, "t");
    a.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let r = a.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    assert_eq!(r.status.code(), Some(4), "{out:?}");
    // The terminal's echo of what we typed, then the workload's answer.
    assert_eq!(out, "hello\r\ngot:hello\r\n");
    let logs = al(root, as_user, &["logs", "t"]);
    assert_eq!(logs.stdout, "/dev/pts/0\r\nhello\r\ngot:hello\r\n");
    assert_eq!(al(root, as_user, &["rm", "t"]).code, 0);
}

#[test]
fn attach_to_a_terminal_as_root() {
    require_root!();
    attach_to_a_terminal(false);
}

#[test]
fn attach_to_a_terminal_rootless() {
    require_root!();
    attach_to_a_terminal(true);
}

/// Attached from a terminal (the driver's pseudo-terminal, 33x101, then
/// resized to 40x120): the workload's terminal takes our size when we
/// attach and again when ours changes, and what we type reaches it.
#[test]
fn attach_follows_our_window_size() {
    require_root!();
    let (_keep, root) = state_root();
    let root = &root;
    let _cleanup = Remove(root, false, &["w"]);
    // It waits for a size: a detached terminal starts at 0x0.
    let script = "while [ \"$(stty size)\" = '0 0' ]; do sleep 0.05; done; \
        stty size; echo READY; read line; stty size; echo got=$line; exit 3";
    let r = al(
        root,
        false,
        &["run", "-d", "-t", "--name", "w", "--", "sh", "-c", script],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let inner = cmd(root, false, &["attach", "w"]);
    let mut c = Command::new("python3");
    c.arg(DRIVER)
        .arg(inner.get_program())
        .args(inner.get_args());
    let r = output(c);
    let mut lines = r.stdout.lines();
    let screen = lines.next().unwrap_or_default().to_string();
    for want in ["33 101\\r\\n", "READY", "40 120\\r\\n", "got=hello"] {
        assert!(screen.contains(want), "missing {want:?} in {screen}");
    }
    // Echoed once, by the workload's terminal: ours was in raw mode.
    assert_eq!(screen.matches("hello").count(), 2, "{screen}");
    assert_eq!(lines.next(), Some("status 3"), "{screen}");
    assert_eq!(al(root, false, &["rm", "w"]).code, 0);
}

/// A Ctrl-P held back to see whether Ctrl-Q follows is passed on when
/// our input ends after it: it was the user's key.
#[test]
fn a_lone_ctrl_p_at_the_end_of_input_reaches_the_workload() {
    require_root!();
    let (_keep, root) = state_root();
    let root = &root;
    let _cleanup = Remove(root, false, &["p"]);
    let script = "stty raw -echo; echo READY; head -c 3 | od -An -c; exit 5";
    let r = al(
        root,
        false,
        &["run", "-d", "-t", "--name", "p", "--", "sh", "-c", script],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Its terminal is raw before we type.
    assert!(wait_until(10, || al(root, false, &["logs", "p"])
        .stdout
        .contains("READY")));
    let mut a = attach(root, false, "p");
    a.stdin.take().unwrap().write_all(b"xy\x10").unwrap();
    assert!(
        wait_until(10, || a.try_wait().unwrap().is_some()),
        "the workload never got its third key"
    );
    let r = a.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    assert_eq!(r.status.code(), Some(5), "{out:?}");
    assert!(out.contains("x   y 020"), "{out:?}");
}

/// Without a terminal of ours to restore, a signal ends the attach by
/// its default action (a shell sees the signal, and a loop of attaches
/// stops at Ctrl-C); a reader that goes away ends it with SIGPIPE's
/// status, not 0. The workload goes on either way.
#[test]
fn attach_ends_as_its_signal_or_its_reader_says() {
    require_root!();
    use std::os::unix::process::ExitStatusExt;
    let (_keep, root) = state_root();
    let root = &root;
    let _cleanup = Remove(root, false, &["e"]);
    let script = "while :; do echo tick; sleep 0.05; done";
    let r = al(
        root,
        false,
        &["run", "-d", "-i", "--name", "e", "--", "sh", "-c", script],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut a = attach(root, false, "e");
    let a_out = lines(&mut a);
    assert_eq!(next(&a_out).as_deref(), Some("tick"));
    // SAFETY: kill(2) of the child this test spawned and has not reaped.
    assert_eq!(unsafe { libc::kill(a.id() as i32, libc::SIGINT) }, 0);
    let status = a.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    let mut b = cmd(root, false, &["attach", "e"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(b.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "tick\n");
    // Our reader is gone once the line is read and the pipe dropped.
    assert_eq!(b.wait().unwrap().code(), Some(128 + libc::SIGPIPE));
    assert_eq!(
        al(root, false, &["ps", "--format", "json"])
            .stdout
            .matches("\"running\"")
            .count(),
        1,
        "the workload goes on"
    );
    assert_eq!(al(root, false, &["rm", "-f", "e"]).code, 0);
}

/// One line on stderr, exit 125.
fn refused(r: &Run, want: &str) {
    assert_eq!(r.code, 125, "stdout {} stderr {}", r.stdout, r.stderr);
    assert_eq!(r.stderr, format!("airlock: error: {want}\n"));
}

fn nothing_to_attach_to(as_user: bool) {
    let (_keep, root) = state_root();
    let root = &root;
    let _cleanup = Remove(root, as_user, &["n", "s"]);
    let r = al(
        root,
        as_user,
        &["run", "-d", "--name", "n", "--", "sleep", "100"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    refused(
        &al(root, as_user, &["attach", "n"]),
        "sandbox n was started without a terminal or open stdin: nothing to attach to",
    );
    let r = al(
        root,
        as_user,
        &["run", "-d", "-i", "--name", "s", "--", "true"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(al(root, as_user, &["wait", "s"]).code, 0);
    refused(
        &al(root, as_user, &["attach", "s"]),
        "sandbox s is stopped: there is nothing to attach to",
    );
    refused(
        &al(root, as_user, &["attach", "nope"]),
        "no sandbox named or with an id starting \"nope\"",
    );
    assert_eq!(al(root, as_user, &["rm", "-f", "n", "s"]).code, 0);
}

#[test]
fn nothing_to_attach_to_as_root() {
    require_root!();
    nothing_to_attach_to(false);
}

#[test]
fn nothing_to_attach_to_rootless() {
    require_root!();
    nothing_to_attach_to(true);
}

#[test]
fn logs_tail() {
    require_root!();
    let (_keep, root) = state_root();
    let root = &root;
    let _cleanup = Remove(root, false, &["l"]);
    let r = al(
        root,
        false,
        &[
            "run",
            "-d",
            "--name",
            "l",
            "--",
            "sh",
            "-c",
            "echo a; echo b; echo c; echo e1 >&2; echo e2 >&2",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(al(root, false, &["wait", "l"]).code, 0);
    let r = al(root, false, &["logs", "--tail", "1", "l"]);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("c\n", "e2\n"));
    let r = al(root, false, &["logs", "--tail", "2", "l"]);
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("b\nc\n", "e1\ne2\n")
    );
    let r = al(root, false, &["logs", "--tail", "0", "l"]);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    let r = al(root, false, &["logs", "l"]);
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("a\nb\nc\n", "e1\ne2\n")
    );
    assert_eq!(al(root, false, &["rm", "l"]).code, 0);
}

/// `logs -f` behind a burst (about 30 log files of 1 MiB between two of
/// its polls) says on stderr how many files went unread, and goes on to
/// the end, as root and as the user whose supervisor marked the files.
fn followed_logs_count_what_went_unread(as_user: bool) {
    let (_keep, root) = state_root();
    let root = &root;
    let _cleanup = Remove(root, as_user, &["burst"]);
    let burst = "echo first; sleep 1; head -c 30000000 /dev/zero; echo; echo last";
    let r = al(
        root,
        as_user,
        &["run", "-d", "--name", "burst", "--", "sh", "-c", burst],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = al(root, as_user, &["logs", "-f", "burst"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("first\n") && r.stdout.ends_with("\0\nlast\n"),
        "{} bytes",
        r.stdout.len()
    );
    assert!(r.stdout.len() < 30_000_000, "{} bytes", r.stdout.len());
    assert!(
        r.stderr.starts_with("airlock: warning: ")
            && r.stderr
                .contains(" stdout log file(s) were rotated away before they were read"),
        "{}",
        r.stderr
    );
    assert_eq!(al(root, as_user, &["rm", "burst"]).code, 0);
}

#[test]
fn followed_logs_count_what_went_unread_as_root() {
    require_root!();
    followed_logs_count_what_went_unread(false);
}

#[test]
fn followed_logs_count_what_went_unread_rootless() {
    require_root!();
    followed_logs_count_what_went_unread(true);
}

/// The one kept end in the state root's `.ended` (a `run -d --rm`
/// sandbox's last state, among those of its caller's uid), and that
/// there is one.
fn kept_end(root: &Path) -> serde_json::Value {
    let list = |d: &Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(d)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let kept: Vec<_> = list(&root.join(".ended"))
        .iter()
        .flat_map(|uid| list(uid))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    serde_json::from_slice(&std::fs::read(&kept[0]).unwrap()).unwrap()
}

/// `run -d --rm`: the sandbox's directory (logs included) is gone the
/// moment the workload ends; attach still prints the last of its output,
/// and ends with the workload's status, which its end left for a while.
#[test]
fn attach_to_a_sandbox_that_removes_itself() {
    require_root!();
    let (_keep, root) = state_root();
    let root = &root;
    let _cleanup = Remove(root, false, &["r"]);
    let r = al(
        root,
        false,
        &[
            "run",
            "-d",
            "-i",
            "--rm",
            "--name",
            "r",
            "--",
            "sh",
            "-c",
            "read x; echo got $x; exit 4",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut a = attach(root, false, "r");
    a.stdin.take().unwrap().write_all(b"hi\n").unwrap();
    let r = a.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout), "got hi\n");
    assert_eq!(
        r.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(sandbox_dirs(root).is_empty());
    assert_eq!(kept_end(root)["exit"]["code"], 4);
}

/// `wait` on a sandbox that removes itself as it ends gives its status,
/// as podman's does: the end is kept beside the state root (`.ended`),
/// where a foreground `--rm` run, whose caller has its status, keeps
/// nothing.
#[test]
fn wait_for_a_sandbox_that_removes_itself() {
    require_root!();
    let (_keep, root) = state_root();
    let root = &root;
    let _cleanup = Remove(root, false, &["w"]);
    let r = al(root, false, &["run", "--rm", "--name", "f", "--", "true"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!root.join(".ended").exists());
    let r = al(
        root,
        false,
        &[
            "run",
            "-d",
            "--rm",
            "--name",
            "w",
            "--",
            "sh",
            "-c",
            "sleep 2; exit 7",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = al(root, false, &["wait", "w"]);
    assert_eq!((r.code, r.stdout.as_str()), (7, "7\n"), "{}", r.stderr);
    assert!(sandbox_dirs(root).is_empty());
    assert_eq!(kept_end(root)["name"], "w");
    // Once gone, its name is free, and a wait finds nothing by it.
    let r = al(root, false, &["wait", "w"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
}

/// Typed on a terminal, until the workload answers, then Ctrl-P Ctrl-Q.
const DETACH_DRIVER: &str = include_str!("detach_driver.py");

/// Ctrl-P Ctrl-Q ends the attach (status 0) and leaves the workload
/// running; a Ctrl-P on its own would have been passed on.
#[test]
fn detach_keys_leave_the_workload_running() {
    require_root!();
    let (_keep, root) = state_root();
    let root = &root;
    let _cleanup = Remove(root, false, &["k"]);
    let r = al(
        root,
        false,
        &[
            "run",
            "-d",
            "-t",
            "--name",
            "k",
            "--",
            "sh",
            "-c",
            "while read l; do echo ${l%ing}ong; done",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let inner = cmd(root, false, &["attach", "k"]);
    let mut c = Command::new("python3");
    c.args(["-c", DETACH_DRIVER])
        .arg(inner.get_program())
        .args(inner.get_args());
    let r = output(c);
    assert!(r.stdout.contains("ping\\r\\npong\\r\\n"), "{}", r.stdout);
    assert!(r.stdout.ends_with("status 0\n"), "{}", r.stdout);
    let st = al(root, false, &["inspect", "k"]);
    assert!(st.stdout.contains("\"running\""), "{}", st.stdout);
    assert_eq!(al(root, false, &["rm", "-f", "k"]).code, 0);
}

/// `airlock attach` on a terminal, ended by a signal (TERM, HUP), gives
/// the terminal back as it found it before it goes; the sandbox runs on.
#[test]
fn a_signalled_attach_gives_the_terminal_back() {
    require_root!();
    let (_keep, root) = state_root();
    let root = &root;
    let _cleanup = Remove(root, false, &["sig"]);
    let r = al(
        root,
        false,
        &["run", "-d", "-t", "--name", "sig", "--", "sleep", "100"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // On a terminal of the driver's own: wait for attach to make it raw,
    // signal it, and compare the modes it left with those it found.
    let driver = include_str!("signal_driver.py");
    for sig in [libc::SIGTERM, libc::SIGHUP] {
        let out = Command::new("/usr/bin/python3")
            .args(["-c", driver, &sig.to_string()])
            .arg(airlock_bin())
            .args(["--state-root", root.to_str().unwrap(), "attach", "sig"])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            said.trim(),
            "raw True ended True restored True",
            "signal {sig}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let running = al(root, false, &["ps"]);
    assert!(running.stdout.contains("sig"), "{}", running.stdout);
}
