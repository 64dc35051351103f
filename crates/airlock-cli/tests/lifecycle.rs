//! Process lifetime: our PID 1, signals, exit statuses, terminal isolation.

mod common;
use common::*;
use std::io::BufReader;
use std::process::Stdio;
use std::process::{Child, ChildStdout};

#[test]
fn exit_status_rules() {
    require_root!();
    assert_eq!(sh(&[], "exit 3").code, 3);
    assert_eq!(sh(&[], "exit 0").code, 0);
    assert_eq!(sh(&[], "kill -9 $$").code, 128 + 9, "signal N is 128+N");
    assert_eq!(sh(&[], "kill -TERM $$").code, 128 + 15);
    let r = output(airlock(&["run", "--", "no-such-program-xyz"]));
    assert_eq!(r.code, 127, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("\"no-such-program-xyz\": executable file not found in $PATH"),
        "{}",
        r.stderr
    );
    // A file that exists but is not executable.
    let dir = tempdir();
    let f = dir.path().join("script");
    std::fs::write(&f, "#!/bin/sh\necho hi\n").unwrap();
    let src = f.display().to_string();
    let r = output(airlock(&[
        "run",
        "--ro-bind",
        &src,
        "/script",
        "--",
        "/script",
    ]));
    assert_eq!(r.code, 126, "{}", r.stderr);
    assert!(r.stderr.contains("cannot execute"), "{}", r.stderr);
    // airlock's own refusal.
    let r = output(airlock(&["run", "--tmpfs", "relative", "--", "true"]));
    assert_eq!(r.code, 125, "{}", r.stderr);
    // A caller that ignores SIGCHLD (the disposition survives exec, and
    // setpriv's too) still gets the status: the kernel reaped the
    // sandbox's processes itself, and the wait for them failed with ECHILD
    // ("wait for the sandbox: No child process", 125).
    for unprivileged in callers() {
        let args = ["run", "--", "sh", "-c", "echo hi; exit 3"];
        let mut c = match unprivileged {
            false => airlock(&args),
            true => airlock_as_user(&args),
        };
        // SAFETY: between fork and exec, one async-signal-safe call.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut c, || {
                libc::signal(libc::SIGCHLD, libc::SIG_IGN);
                Ok(())
            });
        }
        let r = output(c);
        assert_eq!((r.code, r.stdout.as_str()), (3, "hi\n"), "{}", r.stderr);
    }
}

/// Makes an orphan that exits, waits until it is reaped (or has stayed a
/// zombie for two seconds, which no init that reaps leaves it), then
/// counts zombies in the sandbox.
const ORPHAN_PROBE: &str = "import os, subprocess, time\n\
orphan = subprocess.run(['sh', '-c', 'sleep 0.2 >/dev/null 2>&1 & echo $!'], capture_output=True).stdout.strip().decode()\n\
since = None\n\
for _ in range(1000):\n    \
try:\n        \
state = open('/proc/' + orphan + '/stat').read().rsplit(') ', 1)[1][0]\n    \
except FileNotFoundError:\n        \
break\n    \
since = (since or time.monotonic()) if state == 'Z' else None\n    \
if since and time.monotonic() - since > 2:\n        \
break\n    \
time.sleep(0.02)\n\
z = 0\n\
for p in os.listdir('/proc'):\n    \
if p.isdigit():\n        \
z += open('/proc/' + p + '/stat').read().rsplit(') ', 1)[1].startswith('Z')\n\
print(z)\n";

#[test]
fn orphans_are_reaped() {
    require_root!();
    // The orphaned sleep is reparented to PID 1; once it exits, our init
    // must reap it.
    let r = output(airlock(&["run", "--", "python3", "-c", ORPHAN_PROBE]));
    assert_eq!(
        r.stdout.trim(),
        "0",
        "zombies left under our init: {}",
        r.stderr
    );
    // Control: with python as PID 1 (it never reaps what is not its own),
    // the zombie stays, so the probe can see one.
    let r = output(airlock(&[
        "run",
        "--as-pid1",
        "--",
        "python3",
        "-c",
        ORPHAN_PROBE,
    ]));
    assert_eq!(
        r.stdout.trim(),
        "1",
        "the probe can see a zombie: {}",
        r.stderr
    );
}

/// Every signal a process may be sent to ask something of it reaches the
/// workload through the supervisor and our init, real-time ones included
/// (before, only TERM, INT, HUP, QUIT, USR1, USR2 and WINCH did; an ALRM
/// or a real-time signal sent to `airlock run` killed the sandbox).
/// Start a workload (with `start`) that traps `name` and exits 7, send
/// `sig` to airlock, and check the trap ran.
fn trap_fires(start: &dyn Fn(&str) -> (Child, BufReader<ChildStdout>), sig: i32, name: &str) {
    let script =
        format!("trap 'echo got-{name}; exit 7' {name}; echo ready; while :; do sleep 0.05; done");
    let (mut child, mut out) = start(&script);
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.id() as i32, sig) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(rest.trim(), format!("got-{name}"), "{status:?}");
    assert_eq!(status.code(), Some(7));
}

/// Every signal a process may be sent to ask something of it reaches the
/// workload through the supervisor and our init, real-time ones included
/// (before, only TERM, INT, HUP, QUIT, USR1, USR2 and WINCH did; an ALRM
/// or a real-time signal sent to `airlock run` killed the sandbox).
#[test]
fn signals_reach_the_workload() {
    require_root!();
    for (sig, name) in [
        (libc::SIGTERM, "TERM"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGALRM, "ALRM"),
        (libc::SIGURG, "URG"),
        (40, "40"),
    ] {
        trap_fires(&|script| spawn_ready(&[], script), sig, name);
    }
}

/// With the runner beside the CLI (`--rm`: a glibc CLI forwarding to the
/// musl supervisor) the same signals arrive, and 34, which musl keeps for
/// itself, is not passed on: it ends the CLI, and the sandbox with it,
/// instead of killing the supervisor under the CLI's feet.
#[test]
fn signals_reach_the_workload_through_the_cli() {
    require_root!();
    let state = tempdir();
    let state = state.path().display().to_string();
    let start = |script: &str| {
        spawn_ready_args(&[
            "--state-root",
            &state,
            "run",
            "--rm",
            "--",
            "sh",
            "-c",
            script,
        ])
    };
    for (sig, name) in [(libc::SIGALRM, "ALRM"), (libc::SIGUSR2, "USR2"), (40, "40")] {
        trap_fires(&start, sig, name);
    }
    let (mut child, _out) =
        start("trap 'echo got-34' 34; echo ready; while :; do sleep 0.05; done");
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.id() as i32, 34) };
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(34)
    );
    // Its supervisor saw it go and removed the sandbox (--rm).
    let listed = || {
        output(airlock(&[
            "--state-root",
            &state,
            "ps",
            "-a",
            "--format",
            "json",
        ]))
    };
    assert!(
        wait_until(10, || listed().stdout.trim() == "[]"),
        "{}",
        listed().stdout
    );
}

/// `airlock --state-root STATE ARGS`, run to its end.
fn in_root(state: &str, args: &[&str]) -> Run {
    let mut a = vec!["--state-root", state];
    a.extend(args);
    output(airlock(&a))
}

/// A signal sent to the whole process group of an `airlock exec` (a
/// terminal's ^C, `kill -- -PGID`, a service manager's stop) reaches the
/// exec'd process once: the CLI forwards it, and the runner, out of the
/// caller's group, does not pass on a second copy of its own. 40 is a
/// real-time signal, whose copies queue instead of merging.
#[test]
fn a_signal_to_an_execs_group_reaches_it_once() {
    use std::io::BufRead;
    require_root!();
    let state = tempdir();
    let state = state.path().display().to_string();
    let al = |args: &[&str]| in_root(&state, args);
    for session in [None, Some("--keep-session")] {
        let mut run = vec!["run", "-d", "--name", "g"];
        run.extend(session);
        run.extend(["--", "sleep", "100"]);
        let started = al(&run);
        assert_eq!(started.code, 0, "{}", started.stderr);
        // Counted one by one (a shell's trap runs once for copies that
        // came together).
        let script = "import signal, sys\n\
                      signal.pthread_sigmask(signal.SIG_BLOCK, {40, signal.SIGTERM})\n\
                      print('ready', flush=True)\n\
                      while signal.sigwaitinfo({40, signal.SIGTERM}).si_signo == 40:\n\
                      \x20   print('got', flush=True)\n\
                      sys.exit(5)\n";
        let mut cmd = airlock(&[
            "--state-root",
            &state,
            "exec",
            "g",
            "--",
            "python3",
            "-c",
            script,
        ]);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        let group = child.id() as i32;
        // SAFETY: kill on the process group of our own child, which leads it.
        unsafe { libc::kill(-group, 40) };
        std::thread::sleep(std::time::Duration::from_millis(500));
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let status = child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        assert_eq!(rest.matches("got").count(), 1, "{session:?}: {rest:?}");
        assert_eq!(status.code(), Some(5), "{session:?}");
        assert_eq!(al(&["rm", "-f", "g"]).code, 0);
    }
}

/// An exec dies with `airlock exec`: killed by SIGKILL, the CLI forwards
/// nothing, and its runner's parent-death signal kills the process and
/// what it started in the background, as a stop does, instead of leaving
/// them running unwatched in the sandbox.
#[test]
fn an_exec_dies_with_its_caller() {
    require_root!();
    let state = tempdir();
    let state = state.path().display().to_string();
    let al = |args: &[&str]| in_root(&state, args);
    let started = al(&["run", "-d", "--name", "d", "--", "sleep", "100"]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    let script = "sleep 300 & echo ready; wait";
    let (mut child, _out) = spawn_ready_args(&[
        "--state-root",
        &state,
        "exec",
        "d",
        "--",
        "sh",
        "-c",
        script,
    ]);
    let listed = || al(&["exec", "d", "--", "ps", "-eo", "args"]).stdout;
    assert!(listed().contains("sleep 300"), "{}", listed());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        wait_until(10, || !listed().contains("sleep 300")),
        "{}",
        listed()
    );
    assert_eq!(al(&["rm", "-f", "d"]).code, 0);
}

#[test]
fn signals_reach_a_workload_of_another_uid() {
    require_root!();
    // Our init forwards as root of the namespace; the workload runs as 1000.
    let script = "trap 'echo got-TERM; exit 9' TERM; echo ready; while :; do sleep 0.05; done";
    let (mut child, mut out) = spawn_ready(&["--uid", "1000"], script);
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(rest.trim(), "got-TERM");
    assert_eq!(status.code(), Some(9));
}

/// Killing `airlock run FLAGS -- sh` (the supervisor) kills everything
/// in the sandbox.
fn killing_airlock_kills_what_runs(flags: &[&str]) {
    let (mut child, _out) = spawn_ready(flags, "echo ready; sleep 1000");
    let pid = child.id() as i32;
    // airlock became the supervisor: its descendants are init, sh and
    // (once sh has forked it) sleep.
    assert!(
        wait_until(5, || descendants(pid).len() >= 3),
        "init, sh, sleep: {:?}",
        descendants(pid)
    );
    let inside = descendants(pid);
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    child.wait().unwrap();
    assert!(
        wait_until(5, || inside.iter().all(|p| !alive(*p))),
        "still alive after airlock died: {:?}",
        inside.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
    );
}

#[test]
fn killing_airlock_kills_the_workload() {
    require_root!();
    killing_airlock_kills_what_runs(&[]);
}

/// Also when setup made a mount point in a root caller's writable bind
/// as the workload (`--uid 1000`: PID 1's own ids have no mapping in the
/// idmapped bind): PID 1 changed its file-system ids and back, which
/// makes the kernel clear the parent-death signal, and the sandbox
/// (which has no cgroup to be killed through by default) outlived its
/// supervisor.
#[test]
fn killing_airlock_kills_a_workload_whose_files_pid1_made_as_it() {
    require_root!();
    let share = tempdir();
    let s = share.path().display().to_string();
    killing_airlock_kills_what_runs(&["--uid", "1000", "--bind", &s, "/w", "--dir", "/w/made"]);
}

#[test]
fn an_attached_run_keeps_no_process_of_its_own() {
    require_root!();
    // `airlock run` execs the runner in its place: the process its caller
    // waits for is the supervisor, and beside the workload there are only
    // the supervisor and our init (the default pids limit is an rlimit,
    // which needs no cgroup and so no guard).
    let (mut child, _out) = spawn_ready(&[], "echo ready; exec sleep 1000");
    let pid = child.id() as i32;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.ends_with("airlock-runner"), "{exe:?}");
    let ok = wait_until(5, || descendants(pid).len() == 2);
    let seen = descendants(pid);
    if !ok {
        // SAFETY: kill on our own child's pid; a failed test leaves nothing.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert!(ok, "init and sleep: {seen:?}");
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(128 + libc::SIGTERM));
}

/// Open a pty pair; the slave becomes the controlling terminal of airlock.
fn run_on_terminal(flags: &[&str], probe: &str) -> String {
    use std::os::unix::process::CommandExt;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two fds into the given out-pointers.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0);
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "python3", "-c", probe]);
    let mut cmd = airlock(&args);
    // SAFETY: the fds are ours; dup keeps the slave open for Stdio.
    let (stdin, stdout) = unsafe {
        (
            std::fs::File::from_raw_fd_checked(libc::dup(slave)),
            std::fs::File::from_raw_fd_checked(libc::dup(slave)),
        )
    };
    cmd.stdin(stdin).stdout(stdout).stderr(Stdio::inherit());
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    // SAFETY: closing our copy of the slave fd.
    unsafe { libc::close(slave) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // Read everything the terminal received (output and any injected input).
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let mut pfd = libc::pollfd {
            fd: master,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: pfd is a valid pollfd, buf a valid buffer of its length.
        unsafe {
            if libc::poll(&mut pfd, 1, 200) <= 0 {
                break;
            }
            let n = libc::read(master, buf.as_mut_ptr() as *mut libc::c_void, buf.len());
            if n <= 0 {
                break;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
    }
    // SAFETY: closing our master fd.
    unsafe { libc::close(master) };
    String::from_utf8_lossy(&out).into_owned()
}

trait FromRawChecked {
    unsafe fn from_raw_fd_checked(fd: i32) -> Self;
}
impl FromRawChecked for std::fs::File {
    unsafe fn from_raw_fd_checked(fd: i32) -> Self {
        assert!(fd >= 0);
        // SAFETY: the caller passes a fresh fd it owns.
        unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
    }
}

const TIOCSTI_PROBE: &str = "import fcntl, termios\n\
try:\n    fcntl.ioctl(0, termios.TIOCSTI, b'Z')\n    print('INJECTED')\n\
except OSError as e:\n    print('blocked', e.errno)\n";

#[test]
fn tiocsti_cannot_reach_the_callers_terminal() {
    require_root!();
    // Two walls: the new session (no controlling terminal) and the seccomp
    // filter (TIOCSTI refused on the low 32 bits of the request).
    let out = run_on_terminal(&[], TIOCSTI_PROBE);
    assert!(out.contains("blocked"), "terminal saw: {out:?}");
    assert!(!out.contains("INJECTED"));
    let no_filter = [
        "--seccomp-profile",
        "none",
        "--allow-unsafe",
        "seccomp-disabled",
    ];
    let out = run_on_terminal(&no_filter, TIOCSTI_PROBE);
    assert!(
        out.contains("blocked") && !out.contains("INJECTED"),
        "session alone: {out:?}"
    );
    let out = run_on_terminal(&["--keep-session"], TIOCSTI_PROBE);
    assert!(
        out.contains("blocked") && !out.contains("INJECTED"),
        "seccomp alone: {out:?}"
    );
    // Control: with both walls down the same probe injects (when the
    // kernel still allows TIOCSTI at all), so the probe can fail.
    let legacy = std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti").unwrap_or_default();
    if legacy.trim() == "1" {
        let mut flags = vec!["--keep-session"];
        flags.extend_from_slice(&no_filter);
        let out = run_on_terminal(&flags, TIOCSTI_PROBE);
        assert!(
            out.contains("INJECTED"),
            "control probe did not inject: {out:?}"
        );
    } else {
        eprintln!("control skipped: dev.tty.legacy_tiocsti is not 1 on this kernel");
    }
}

/// The state letter of `pid` in /proc (R, S, T, ...).
fn proc_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    after.trim_start().chars().next().unwrap_or('?')
}

/// The lines the workload has ticked into `file` so far.
fn ticks(file: &std::path::Path) -> usize {
    std::fs::read_to_string(file).map_or(0, |s| s.lines().count())
}

/// Ctrl-Z (SIGTSTP to the foreground `airlock run`) stops the whole
/// sandbox with it, frozen through its cgroup, and SIGCONT (`fg`, `bg`)
/// lets it go on, as a job's processes do. Only the supervisor stopped
/// before: the sandbox ran on unwatched, its timeout uncounted.
#[test]
fn ctrl_z_stops_the_sandbox_with_airlock() {
    require_root!();
    let dir = tempdir();
    let out = dir.path().display().to_string();
    let tick = dir.path().join("tick");
    let script = "echo ready; while :; do echo t >> /out/tick; sleep 0.05; done";
    let (mut child, _stdout) = spawn_ready(&["--pids", "100", "--bind", &out, "/out"], script);
    let pid = child.id();
    let signal = |sig| {
        // SAFETY: kill takes plain integers; `pid` is our unreaped child.
        assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
    };
    signal(libc::SIGTSTP);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while proc_state(pid) != 'T' && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(proc_state(pid), 'T', "airlock did not stop");
    let before = ticks(&tick);
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert_eq!(
        ticks(&tick),
        before,
        "the workload ran on while airlock was stopped"
    );
    signal(libc::SIGCONT);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ticks(&tick) < before + 5 && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(ticks(&tick) >= before + 5, "the workload did not go on");
    signal(libc::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
}

/// Without a cgroup to freeze, Ctrl-Z is refused with a word: airlock
/// stays to watch the sandbox, whose timeout still ends it.
#[test]
fn ctrl_z_without_a_cgroup_keeps_the_timeout() {
    require_root!();
    let mut child = airlock(&[
        "run",
        "--timeout",
        "2",
        "--",
        "sh",
        "-c",
        "echo ready; sleep 30",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    // SAFETY: kill takes plain integers; the pid is our unreaped child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTSTP) }, 0);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_ne!(proc_state(child.id()), 'T');
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(137), "{err}");
    assert!(
        err.contains("no cgroup to freeze") && err.contains("timeout"),
        "{err}"
    );
}
