//! The CLI's streams through a daemon, at their ends: a reader that goes
//! away (`| head`), a daemon that never answers, a sandbox that ended
//! without an exit status. (A client that reads slowly is the pump's
//! unit test, in stdio.rs: the buffers between make it a matter of
//! minutes here.)

mod common;

use common::cli::*;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `script` under `bash -c` with pipefail, with `airlock` on the daemon
/// (`$AIRLOCK`) and `timeout` as a backstop: a hang is exit 124, not a
/// stuck test.
fn shell(d: &Daemon, script: &str) -> Out {
    let o = Command::new("timeout")
        .args(["60", "bash", "-o", "pipefail", "-c", script])
        .env("AIRLOCK", airlock_bin(d))
        .env("AIRLOCK_HOST", d.host())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn running(d: &Daemon, name: &str) {
    ok(airlock(
        d,
        None,
        &["run", "-d", "--name", name, "--", "sleep", "1000"],
    ));
}

/// A reader that stops reading ends the verb, as SIGPIPE ends the local
/// ones: SIGPIPE is ignored through a daemon, and every write failed
/// with EPIPE unseen, so `exec -- yes | head -1` never ended and
/// `events | head -1` panicked.
#[test]
fn a_reader_that_goes_away_ends_the_verb() {
    if !root_or_skip("a_reader_that_goes_away_ends_the_verb") {
        return;
    }
    let d = Daemon::start("");
    running(&d, "web");
    // `yes` stops with the stream: the daemon stops an exec whose
    // caller has gone. The pipeline's status is the exec's.
    let r = shell(
        &d,
        r#""$AIRLOCK" exec web -- yes | head -1; echo "status $?""#,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("y\n") && r.stdout.contains("status 141"),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    // Events: the first line, then the next event's write finds no
    // reader (two more sandboxes made meanwhile).
    let shown = Command::new("sh")
        .args(["-c", r#""$AIRLOCK" events --format json | head -1"#])
        .env("AIRLOCK", airlock_bin(&d))
        .env("AIRLOCK_HOST", d.host())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    for n in ["e1", "e2", "e3"] {
        ok(airlock(&d, None, &["create", "--name", n, "--", "true"]));
    }
    let began = Instant::now();
    let o = shown.wait_with_output().unwrap();
    assert!(began.elapsed() < Duration::from_secs(20));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("\"kind\""),
        "{err}"
    );
    let _ = airlock(&d, None, &["rm", "-f", "web", "e1", "e2", "e3"]);
}

/// A daemon that accepts and then never answers (stopped, or stuck) does
/// not hold a call for good: the client's pings go unanswered and it
/// fails with a message.
#[test]
fn a_silent_daemon_is_given_up_on() {
    if !root_or_skip("a_silent_daemon_is_given_up_on") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("mute.sock");
    // Accepts, keeps the connections, and never reads or writes.
    let script = format!(
        "import socket, time\n\
         s = socket.socket(socket.AF_UNIX)\n\
         s.bind({:?})\n\
         s.listen(8)\n\
         print('ready', flush=True)\n\
         held = []\n\
         while True:\n\
         \x20   held.append(s.accept())\n",
        sock.to_str().unwrap()
    );
    let mut server = spawn_ready_server(Command::new("/usr/bin/python3").args(["-c", &script]));
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_airlockd")).with_file_name("airlock");
    let began = Instant::now();
    let o = Command::new("timeout")
        .arg("90")
        .arg(&bin)
        .args(["--host", &format!("unix://{}", sock.display()), "ps"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = began.elapsed();
    let _ = server.kill();
    let _ = server.wait();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err} after {took:?}");
    assert!(err.starts_with("airlock: error:"), "{err}");
}

/// A sandbox whose supervisor was killed ended without an exit status:
/// `wait` says so and fails, as it does locally, instead of printing the
/// daemon's stand-in 137 as the workload's.
#[test]
fn wait_on_a_sandbox_that_ended_without_a_status() {
    if !root_or_skip("wait_on_a_sandbox_that_ended_without_a_status") {
        return;
    }
    let d = Daemon::start("");
    running(&d, "cut");
    let info: serde_json::Value =
        serde_json::from_str(&ok(airlock(&d, None, &["inspect", "cut"]))).unwrap();
    let supervisor = info["supervisor_pid"].as_i64().unwrap();
    assert!(supervisor > 1, "{info}");
    // SAFETY: kill takes plain integers; the pid is the supervisor of
    // the sandbox this test started, alive while inspect said so.
    assert_eq!(unsafe { libc::kill(supervisor as i32, libc::SIGKILL) }, 0);
    let r = airlock(&d, None, &["wait", "cut"]);
    assert_eq!(r.code, 125, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("sandbox cut stopped ("), "{}", r.stderr);
    assert_eq!(r.stdout, "");
    let _ = airlock(&d, None, &["rm", "-f", "cut"]);
}

/// `exec -n` through a daemon reads nothing of ours: a `while read` loop
/// around it keeps its input, where a plain exec reads ahead (as `ssh`
/// without `-n` does) and the loop ends after one line.
#[test]
fn exec_without_stdin_reads_none_of_ours() {
    if !root_or_skip("exec_without_stdin_reads_none_of_ours") {
        return;
    }
    let d = Daemon::start("");
    running(&d, "web");
    let looped = |flags: &str| {
        let r = shell(
            &d,
            &format!(
                r#"printf '1\n2\n3\n' | while read x; do "$AIRLOCK" exec {flags} web -- true; echo "got $x"; done"#
            ),
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout
    };
    assert_eq!(looped("-n"), "got 1\ngot 2\ngot 3\n");
    assert_eq!(looped(""), "got 1\n");
    let _ = airlock(&d, None, &["rm", "-f", "web"]);
}

/// Output rotated away before the daemon's follower read it (a burst
/// between two of its polls, at a small `log_limit`) ends `logs -f` with
/// an error that says so, after what came before: a hole in the output
/// is never silent.
#[test]
fn followed_logs_say_when_output_was_rotated_away_unread() {
    if !root_or_skip("followed_logs_say_when_output_was_rotated_away_unread") {
        return;
    }
    let d = Daemon::start("log_limit = 4096");
    // About 500 KB in well under a second: a hundred rotations or more.
    let burst = "echo first; sleep 1; i=0; while [ $i -lt 5000 ]; do \
                 echo line$i-0123456789012345678901234567890123456789012345678901234567890123456789012345678; \
                 i=$((i+1)); done; echo last; sleep 1";
    ok(airlock(
        &d,
        None,
        &["run", "-d", "--name", "burst", "--", "sh", "-c", burst],
    ));
    let r = airlock(&d, None, &["logs", "-f", "burst"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stdout.starts_with("first\n"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("of the sandbox's stdout log files were rotated away")
            && r.stderr.contains("their output is lost"),
        "{}",
        r.stderr
    );
    // The kept files hold the end, as a new `logs` shows once the burst
    // is over (`logs -f` ends at the loss, which may come while the
    // burst still writes).
    let _ = airlock(&d, None, &["wait", "burst"]);
    let again = ok(airlock(&d, None, &["logs", "burst"]));
    assert!(again.ends_with("last\n"), "{again}");
    let _ = airlock(&d, None, &["rm", "-f", "burst"]);
}
