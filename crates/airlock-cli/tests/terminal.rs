//! `-t`: the workload (or an exec'd process) gets a pseudo-terminal of the
//! sandbox's own devpts, proxied to the caller's terminal: input, output,
//! window size and job control work, and the process never holds the
//! caller's terminal.

mod common;
use common::*;

const DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/terminal/drive.py");

/// In the sandbox: the terminal's name and size, job control (we are the
/// terminal's foreground group), the size after the caller's resize, and
/// a line typed by the caller.
const SCRIPT: &str = "tty; stty size; \
    python3 -c 'import os; print(\"foreground\", os.tcgetpgrp(0) == os.getpgrp())'; \
    echo READY; read line; stty size; echo got=$line; exit 3";

/// Run airlock (as root, or as the test user) under the driver's terminal;
/// returns what the terminal showed and the exit status.
fn drive(as_user: bool, args: &[&str]) -> (String, i32) {
    let inner = if as_user {
        airlock_as_user(args)
    } else {
        airlock(args)
    };
    drive_command(inner, false)
}

/// [`drive`] of `inner`, run as a background job when `background`.
fn drive_command(inner: std::process::Command, background: bool) -> (String, i32) {
    let mut c = std::process::Command::new("python3");
    if background {
        c.env("DRIVE_IN_BACKGROUND", "1");
    }
    c.arg(DRIVER)
        .arg(inner.get_program())
        .args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let r = output(c);
    let mut lines = r.stdout.lines();
    let screen = lines.next().unwrap_or_default().to_string();
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("status "))
        .and_then(|s| s.parse().ok())
        .unwrap_or(-1);
    (screen, status)
}

fn assert_terminal(screen: &str) {
    for want in [
        "/dev/pts/0\\r\\n",
        "33 101\\r\\n",
        "foreground True",
        "40 120\\r\\n",
        "got=hello",
    ] {
        assert!(screen.contains(want), "missing {want:?} in {screen}");
    }
}

#[test]
fn run_with_a_terminal() {
    require_root!();
    let (screen, status) = drive(false, &["run", "-t", "--", "sh", "-c", SCRIPT]);
    assert_terminal(&screen);
    assert_eq!(status, 3, "{screen}");
    // As PID 1 too: the workload itself takes the terminal.
    let (screen, status) = drive(false, &["run", "-t", "--as-pid1", "--", "sh", "-c", SCRIPT]);
    assert_terminal(&screen);
    assert_eq!(status, 3, "{screen}");
}

#[test]
fn rootless_run_with_a_terminal() {
    require_root!();
    let (screen, status) = drive(true, &["run", "-t", "--", "sh", "-c", SCRIPT]);
    assert_terminal(&screen);
    assert_eq!(status, 3, "{screen}");
}

/// The terminal is the workload's own (it may open it again by name) and
/// is its /dev/console, as the OCI runtime spec asks of `terminal: true`.
#[test]
fn the_terminal_is_the_workloads_and_its_console() {
    require_root!();
    let script =
        "a=$(stat -c '%u %t:%T' /dev/console); b=$(stat -L -c '%u %t:%T' /proc/self/fd/0); \
        [ \"$a\" = \"$b\" ] && echo same-$a; true <>\"$(tty)\" && echo reopened";
    let (screen, status) = drive(
        false,
        &["run", "-t", "--uid", "1000", "--", "sh", "-c", script],
    );
    assert_eq!(status, 0, "{screen}");
    assert!(screen.contains("same-1000 88:0"), "{screen}");
    assert!(screen.contains("reopened"), "{screen}");
    // Without a terminal there is no console.
    let r = output(airlock(&["run", "--", "test", "-e", "/dev/console"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
}

/// `airlock --state-root ROOT ARGS...`
fn al(root: &str, args: &[&str]) -> Run {
    let mut a = vec!["--state-root", root];
    a.extend_from_slice(args);
    output(airlock(&a))
}

#[test]
fn exec_with_a_terminal() {
    require_root!();
    let root = tempdir();
    let r = root.path().display().to_string();
    let al = |args: &[&str]| al(&r, args);
    assert_eq!(
        al(&["run", "-d", "--name", "tt", "--", "sleep", "100"]).code,
        0
    );
    let (screen, status) = drive(
        false,
        &[
            "--state-root",
            &r,
            "exec",
            "-t",
            "tt",
            "--",
            "sh",
            "-c",
            SCRIPT,
        ],
    );
    assert_terminal(&screen);
    assert_eq!(status, 3, "{screen}");
    // As another user: the terminal is that user's, in a sandbox whose
    // ids the host's root (the exec runner) is not among.
    let probe = "stat -c %u:%g \"$(tty)\"; true <>\"$(tty)\" && echo reopened";
    for (user, want) in [("1000", "1000:1000"), ("0:1000", "0:1000")] {
        let (screen, status) = drive(
            false,
            &[
                "--state-root",
                &r,
                "exec",
                "-t",
                "-u",
                user,
                "tt",
                "--",
                "sh",
                "-c",
                probe,
            ],
        );
        assert_eq!(status, 0, "-u {user}: {screen}");
        assert!(screen.contains(want), "-u {user}: {screen}");
        assert!(screen.contains("reopened"), "-u {user}: {screen}");
    }
    assert_eq!(al(&["rm", "-f", "tt"]).code, 0);
    assert_eq!(al(&["ps", "-a", "--format", "json"]).stdout.trim(), "[]");
}

/// An exec's terminal comes from the sandbox's /dev/ptmx, a path in a
/// tree the workload may change where it may mount (here with every
/// protection against that turned off): anything but the multiplexer
/// there is refused by name before an ioctl is asked of it (on a FUSE
/// file its server would answer them, TIOCGPTPEER's "fd" among them).
#[test]
fn an_exec_refuses_a_ptmx_the_workload_replaced() {
    require_root!();
    let root = tempdir();
    let r = root.path().display().to_string();
    let al = |args: &[&str]| al(&r, args);
    let unguarded = [
        "--cap-add",
        "CAP_SYS_ADMIN",
        "--seccomp-profile",
        "none",
        "--landlock",
        "off",
        "--allow-unsafe",
        "cap-sys-admin",
        "--allow-unsafe",
        "seccomp-disabled",
    ];
    let script = "mount --bind /dev/null /dev/pts/ptmx && touch /tmp/bound; sleep 100";
    let mut args = vec!["run", "-d", "--name", "px"];
    args.extend(unguarded);
    args.extend(["--", "sh", "-c", script]);
    assert_eq!(al(&args).code, 0);
    let bound = || al(&["exec", "px", "--", "test", "-e", "/tmp/bound"]).code == 0;
    let start = std::time::Instant::now();
    while !bound() {
        assert!(
            start.elapsed().as_secs() < 10,
            "the workload never bound /dev/null"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let e = al(&["exec", "-t", "px", "--", "echo", "ran"]);
    assert_eq!(e.code, 125, "{}", e.stderr);
    assert!(!e.stdout.contains("ran"), "{}", e.stdout);
    assert!(
        e.stderr
            .contains("tty: check /dev/ptmx: it is device 1:3, not a pseudo-terminal's"),
        "{}",
        e.stderr
    );
    // Without a terminal, the exec goes on as before.
    assert_eq!(al(&["exec", "px", "--", "true"]).code, 0);
    assert_eq!(al(&["rm", "-f", "px"]).code, 0);
}

/// Without `-t`, an exec from a terminal gets pipes, not the caller's
/// terminal: a workload outside Landlock's walls could otherwise open
/// the exec'd process's /proc/PID/fd/0 and keep the caller's terminal
/// after the exec ended. Nor can it open the caller's terminal as its
/// controlling one (/dev/tty), even in a sandbox that keeps the caller's
/// session (`--keep-session`, which is about its workload). What it writes
/// still reaches the terminal, what is typed still reaches it, and its
/// status is the exec's.
#[test]
fn exec_without_a_terminal_never_holds_the_callers() {
    require_root!();
    let root = tempdir();
    let r = root.path().display().to_string();
    let al = |args: &[&str]| al(&r, args);
    for session in [None, Some("--keep-session")] {
        let mut run = vec!["run", "-d", "--landlock", "off", "--name", "nt"];
        run.extend(session);
        run.extend(["--", "sleep", "100"]);
        let started = al(&run);
        assert_eq!(started.code, 0, "{}", started.stderr);
        // A prompt without a newline shows at once (it was held back in
        // the CLI's line buffer until the next newline: nothing showed).
        let script = "for n in 0 1 2; do readlink /proc/self/fd/$n; done; \
                      if (: </dev/tty) 2>/dev/null; then echo HAS-TTY; else echo NO-TTY; fi; \
                      printf 'name? READY'; read line; echo got=$line; exit 4";
        let (screen, status) = drive(
            false,
            &["--state-root", &r, "exec", "nt", "--", "sh", "-c", script],
        );
        assert_eq!(screen.matches("pipe:[").count(), 3, "{session:?}: {screen}");
        assert!(!screen.contains("/dev/pts"), "{session:?}: {screen}");
        assert!(screen.contains("NO-TTY"), "{session:?}: {screen}");
        assert!(screen.contains("got=hello"), "{session:?}: {screen}");
        assert_eq!(status, 4, "{session:?}: {screen}");
        assert_eq!(al(&["rm", "-f", "nt"]).code, 0);
    }
    // From a background job (`airlock exec ... &`) the terminal is not
    // read: the exec gets /dev/null, as with -n, and ends. It read the
    // terminal, and the kernel stopped the whole CLI (SIGTTIN).
    let started = al(&["run", "-d", "--name", "bg", "--", "sleep", "100"]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    let script = "readlink /proc/self/fd/0; cat; echo READY; exit 5";
    let inner = airlock(&["--state-root", &r, "exec", "bg", "--", "sh", "-c", script]);
    let (screen, status) = drive_command(inner, true);
    assert!(
        screen.contains("/dev/null") && screen.contains("READY"),
        "{screen}"
    );
    assert_eq!(status, 5, "{screen}");
    assert_eq!(al(&["rm", "-f", "bg"]).code, 0);
}

/// With input that is not a terminal (`< /dev/null`, a pipe) the window
/// size comes from the caller's terminal on stdout, at the start and at
/// each resize: it stayed 0x0, for which a full-screen program lays out
/// nothing.
#[test]
fn the_window_size_comes_from_the_output_when_input_is_not_a_terminal() {
    require_root!();
    let mut c = std::process::Command::new("sh");
    c.args(["-c", "exec \"$0\" \"$@\" < /dev/null"])
        .arg(airlock_bin())
        .args([
            "run",
            "-t",
            "--",
            "sh",
            "-c",
            "stty size; echo READY; sleep 1; stty size",
        ]);
    let (screen, status) = drive_command(c, false);
    assert_eq!(status, 0, "{screen}");
    assert!(
        screen.contains("33 101\\r") && screen.contains("40 120\\r"),
        "{screen}"
    );
}

/// Piped input to a workload with a terminal of its own ends as a
/// terminal's does, by its end-of-file character: `cat` ends (it waited
/// for more for ever), for run and exec, after a whole line or a part.
#[test]
fn piped_input_ends_for_a_workload_with_a_terminal() {
    require_root!();
    let root = tempdir();
    let r = root.path().display().to_string();
    assert_eq!(
        al(&r, &["run", "-d", "--name", "pe", "--", "sleep", "100"]).code,
        0
    );
    for (verb, input) in [
        (vec!["run", "-t", "--", "cat"], "hi\n"),
        (vec!["run", "-t", "--", "cat"], "partial"),
        (vec!["exec", "-t", "pe", "--", "cat"], "hi\n"),
    ] {
        let mut args = vec!["--state-root", r.as_str()];
        args.extend_from_slice(&verb);
        let mut child = airlock(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
        let status = ended_within(&mut child, 10);
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{verb:?} {input:?}");
        let mut out = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
        assert!(out.contains(input.trim_end()), "{verb:?}: {out:?}");
    }
    al(&r, &["rm", "-f", "pe"]);
}

/// Input a -t workload never reads fills its terminal's queue; the
/// supervisor goes on watching (it used to block in a write to the
/// master for good): the timeout still kills the sandbox, for run and
/// exec alike.
#[test]
fn unread_input_does_not_hold_the_supervisor() {
    require_root!();
    let root = tempdir();
    let r = root.path().display().to_string();
    assert_eq!(
        al(&r, &["run", "-d", "--name", "ur", "--", "sleep", "100"]).code,
        0
    );
    for verb in [
        vec!["run", "-t", "--timeout", "2", "--", "sleep", "30"],
        vec!["exec", "-t", "ur", "--", "sleep", "3"],
    ] {
        let mut args = vec!["--state-root", r.as_str()];
        args.extend_from_slice(&verb);
        let mut child = airlock(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        // As `yes |`: until the pipe is closed on the other side.
        let writer = std::thread::spawn(move || {
            let line = [b'y', b'\n'].repeat(4096);
            while std::io::Write::write_all(&mut input, &line).is_ok() {}
        });
        let status = ended_within(&mut child, 15);
        writer.join().unwrap();
        let want = if verb[0] == "run" { 137 } else { 0 };
        assert_eq!(status.and_then(|s| s.code()), Some(want), "{verb:?}");
    }
    al(&r, &["rm", "-f", "ur"]);
}

/// Output of a -t workload that its caller does not read fills the
/// caller's pipe; the supervisor goes on watching (it used to block in a
/// write to the caller's stdout for good): the timeout still ends the
/// sandbox and the run. Read, all of it arrives.
#[test]
fn unread_output_does_not_hold_the_supervisor() {
    for as_user in callers() {
        let args = ["run", "-t", "--timeout", "2", "--", "yes"];
        let mut child = if as_user {
            airlock_as_user(&args)
        } else {
            airlock(&args)
        };
        let mut child = child
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let status = ended_within(&mut child, 20);
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(137),
            "as user {as_user}"
        );
        let r = output(airlock(&["run", "-t", "--", "seq", "1", "100000"]));
        assert_eq!(r.code, 0, "{}", r.stderr);
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(lines.len(), 100000);
        assert_eq!(lines[99999].trim_end(), "100000");
    }
}

/// A workload run without -t holds the caller's terminal: the modes it
/// sets there (no echo), exclusive mode (which keeps every later open
/// out but root's) and a stop of its output (TCOOFF, which no typed
/// Ctrl-Q undoes: the shell hung at its next prompt) do not outlive the
/// sandbox.
#[test]
fn the_callers_terminal_modes_outlive_no_workload() {
    let driver = r#"
import fcntl, os, struct, subprocess, sys, termios
master, slave = os.openpty()
before = termios.tcgetattr(slave)
work = ("import fcntl, termios\n"
        "a = termios.tcgetattr(0); a[3] &= ~termios.ECHO\n"
        "termios.tcsetattr(0, termios.TCSANOW, a)\n"
        "fcntl.ioctl(0, termios.TIOCEXCL)\n"
        "print('changed', flush=True)\n"
        "termios.tcflow(0, termios.TCOOFF)\n")
for extra in ([], ["--rm", "--name", "modes-%d" % os.getpid()]):
    r = subprocess.run([sys.argv[1], "run", *extra, "--", "/usr/bin/python3", "-c", work],
                       stdin=slave, stdout=slave, stderr=slave)
    excl = struct.unpack("i", fcntl.ioctl(slave, 0x80045440, b"\0\0\0\0"))[0]
    out = os.read(master, 65536).decode(errors="replace")
    fl = fcntl.fcntl(slave, fcntl.F_GETFL)
    fcntl.fcntl(slave, fcntl.F_SETFL, fl | os.O_NONBLOCK)
    try:
        os.write(slave, b"x"); flowing = True
    except BlockingIOError:
        flowing = False
    fcntl.fcntl(slave, fcntl.F_SETFL, fl)
    print("code", r.returncode, "changed", "changed" in out,
          "restored", termios.tcgetattr(slave) == before, "exclusive", excl,
          "flowing", flowing)
    termios.tcsetattr(slave, termios.TCSANOW, before)
    fcntl.ioctl(slave, termios.TIOCNXCL)
    termios.tcflow(slave, termios.TCOON)
    os.read(master, 65536) if flowing else None
"#;
    for as_user in callers() {
        let mut c = match as_user {
            true => {
                let mut c = std::process::Command::new("setpriv");
                c.args([
                    format!("--reuid={USER}"),
                    format!("--regid={USER}"),
                    "--clear-groups".into(),
                    "/usr/bin/python3".into(),
                ]);
                c
            }
            false => std::process::Command::new("/usr/bin/python3"),
        };
        c.args(["-c", driver]).arg(airlock_bin());
        let r = output(c);
        // Once as a plain run, once with state (--rm --name).
        assert_eq!(
            r.stdout.trim(),
            ["code 0 changed True restored True exclusive 0 flowing True"; 2].join("\n"),
            "as user {as_user}: {}",
            r.stderr
        );
    }
}

/// `child`'s status if it ends within `secs` seconds; killed (and `None`)
/// if not, so that a hung test leaves nothing behind.
fn ended_within(child: &mut std::process::Child, secs: u64) -> Option<std::process::ExitStatus> {
    let mut status = None;
    let _ = wait_until(secs, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if status.is_none() {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
    }
    status
}

/// With `-t` the workload never holds the caller's terminal: an exclusive
/// mode the caller set on it before is theirs, and stays.
#[test]
fn the_callers_own_exclusive_mode_stays_with_a_terminal_of_the_sandboxs() {
    require_root!();
    let driver = r#"
import fcntl, os, struct, subprocess, sys, termios
master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCEXCL)
r = subprocess.run([sys.argv[1], "run", "-t", "--", "true"],
                   stdin=slave, stdout=slave, stderr=slave)
excl = struct.unpack("i", fcntl.ioctl(slave, 0x80045440, b"\0\0\0\0"))[0]
print("code", r.returncode, "exclusive", excl)
"#;
    let mut c = std::process::Command::new("/usr/bin/python3");
    c.args(["-c", driver]).arg(airlock_bin());
    let r = output(c);
    assert_eq!(r.stdout.trim(), "code 0 exclusive 1", "{}", r.stderr);
}
