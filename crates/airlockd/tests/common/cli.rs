//! The `airlock` CLI against a test's daemon (`--host`), as root or as
//! another user.

use super::Daemon;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The `airlock` binary, copied where every user can run it (the
/// checkout may sit under a directory they cannot enter).
pub fn airlock_bin(d: &Daemon) -> PathBuf {
    let built = PathBuf::from(env!("CARGO_BIN_EXE_airlockd")).with_file_name("airlock");
    assert!(
        built.is_file(),
        "{} is missing: run `cargo test --workspace`",
        built.display()
    );
    let copy = d.dir.path().join("airlock");
    if !copy.exists() {
        // By `cp`, under another name, then renamed: a file this
        // (threaded) process held open for writing would be inherited by
        // any child another test thread forks meanwhile, and exec'ing the
        // copy would fail with ETXTBSY until that child execs.
        let tmp = d.dir.path().join("airlock.copying");
        let copied = Command::new("cp").arg(&built).arg(&tmp).status().unwrap();
        assert!(copied.success(), "cp {} {}", built.display(), tmp.display());
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&tmp, &copy).unwrap();
    }
    copy
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `setpriv` to `uid` (its group too, no other groups), for the program
/// and arguments the caller adds.
pub fn as_user(uid: u32) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        format!("--reuid={uid}"),
        format!("--regid={uid}"),
        "--clear-groups".into(),
        "--".into(),
    ]);
    c
}

/// Debian's python3, which every user may run, with `script`, as `uid`.
pub fn python_as(uid: u32, script: &str) -> Command {
    let mut c = as_user(uid);
    c.args(["/usr/bin/python3", "-c", script]);
    c
}

/// The command `airlock ARGS` against the daemon, as `uid` (None: as we
/// are), with no input.
pub fn command(d: &Daemon, uid: Option<u32>, args: &[&str]) -> Command {
    let bin = airlock_bin(d);
    let mut c = match uid {
        None => Command::new(&bin),
        Some(u) => {
            let mut c = as_user(u);
            c.arg(&bin);
            c
        }
    };
    c.env("AIRLOCK_HOST", d.host())
        .args(args)
        .stdin(Stdio::null())
        .current_dir("/");
    c
}

/// `airlock ARGS` against the daemon, as `uid` (None: as we are).
pub fn airlock(d: &Daemon, uid: Option<u32>, args: &[&str]) -> Out {
    let mut c = command(d, uid, args);
    // Another test thread may fork while this one's copy of the binary
    // is still open for writing: that child holds the write fd until it
    // execs, and exec'ing the copy meanwhile fails with ETXTBSY, here or,
    // as another user, in setpriv (which then exits 126 and says so).
    let busy = |o: &std::process::Output| {
        uid.is_some()
            && o.status.code() == Some(126)
            && String::from_utf8_lossy(&o.stderr).contains("Text file busy")
    };
    let mut tries = 0;
    let o = loop {
        match c.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {}
            Ok(o) if busy(&o) && tries < 100 => {}
            r => break r.unwrap(),
        }
        tries += 1;
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `run` again, every 25 ms for up to 10 s, until `done` says its
/// output is the one awaited (what a daemon does with a client's end is
/// asynchronous); the last output either way.
pub fn until(mut run: impl FnMut() -> Out, done: impl Fn(&Out) -> bool) -> Out {
    let mut out = run();
    for _ in 0..400 {
        if done(&out) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
        out = run();
    }
    out
}

/// Keep a call under way (`start`, started again whenever it has ended:
/// its exec can meet another test's copy of the binary still open for
/// writing, ETXTBSY) while `probe` runs until it is refused; the call
/// still under way and the refused probe's output.
pub fn refused_while(
    start: impl Fn() -> std::process::Child,
    mut probe: impl FnMut() -> Out,
) -> (std::process::Child, Out) {
    let mut holder = start();
    let out = until(
        || {
            if holder.try_wait().unwrap().is_some() {
                holder = start();
            }
            probe()
        },
        |o| o.code != 0,
    );
    (holder, out)
}

pub fn ok(o: Out) -> String {
    assert_eq!(o.code, 0, "stdout: {}\nstderr: {}", o.stdout, o.stderr);
    o.stdout
}

/// Spawn `server` with its stdout piped and wait for the line "ready" it
/// prints once it listens.
pub fn spawn_ready_server(server: &mut Command) -> std::process::Child {
    let mut child = server.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "ready\n");
    child
}
