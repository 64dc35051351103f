//! OCI hooks the runner runs: prestart and createRuntime by the
//! supervisor, in the host's namespaces, once PID 1 has made the
//! sandbox's namespaces and mounts (PID 1 waits for them); createContainer
//! and startContainer inside the sandbox. Each is a child of the process
//! that reached the hook's point, so it is in that process's namespaces,
//! with the state JSON on its stdin, its stdout and stderr kept for the
//! error, its group killed after its timeout. runc runs them at the same
//! points.

use super::report::{describe, SetupError};
use crate::plan::Hook;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// Our pid as the container sees it, for the hooks that run inside: as
/// OCI asks ("for hooks executed in the container namespace, the pid as
/// seen by the container") and runc gives (its init's `getpid`). The
/// process that runs them: PID 1 under the OCI runtime (the workload is
/// PID 1 there); under airlock's own init, the workload's process.
pub fn own_pid() -> i32 {
    rustix::process::getpid().as_raw_nonzero().get()
}

/// Where a hook runs, beyond the namespaces it inherits.
pub enum Place<'a> {
    /// prestart and createRuntime: the supervisor's place, the host's,
    /// back in the runtime's `namespaces` the supervisor left to join a
    /// bundle's by path.
    Host { namespaces: &'a [BorrowedFd<'a>] },
    /// createContainer: the host's tree as root, the new root as cwd.
    BeforePivot {
        host: BorrowedFd<'a>,
        root: BorrowedFd<'a>,
    },
    /// startContainer: where the workload is.
    Inside,
}

/// Run `hooks` in order, `pid` (PID 1's, as the place they run in sees
/// it) and `status` in the state they get; the first failure is the
/// error, naming the hook. Any
/// of `abort` readable (the supervisor's stop, PID 1's end), or a kill on
/// `control`, kills the running hook's group and fails it: the
/// supervisor, which waits here, must still answer a kill or a delete of
/// a hook that hangs.
pub fn run(
    hooks: &[Hook],
    state: &str,
    status: &str,
    pid: i32,
    place: &Place,
    abort: &[BorrowedFd],
    mut control: Option<Control<'_>>,
) -> Result<(), SetupError> {
    if hooks.is_empty() {
        return Ok(());
    }
    let mut value: serde_json::Value =
        serde_json::from_str(state).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(o) = value.as_object_mut() {
        o.insert("status".into(), status.into());
        o.insert("pid".into(), pid.into());
    }
    let state = value.to_string();
    for h in hooks {
        run_one(h, state.as_bytes(), place, abort, &mut control)
            .map_err(|reason| SetupError::new(format!("{} {}", h.name, h.path), reason))?;
    }
    Ok(())
}

fn cstr(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{s:?} holds a NUL byte"))
}

/// The sandbox's control socket while runtime hooks run, and what to do
/// with a call on it: true ends the hook (a kill); any other call is
/// answered there and the hook goes on (a liveness probe, an attach or a
/// window size must not fail the create); `None`, no call could be
/// taken: the socket is no longer watched.
pub type Control<'a> = (BorrowedFd<'a>, &'a mut dyn FnMut() -> Option<bool>);

fn run_one(
    h: &Hook,
    state: &[u8],
    place: &Place,
    abort: &[BorrowedFd],
    control: &mut Option<Control<'_>>,
) -> Result<(), String> {
    let path = cstr(&h.path)?;
    let args: Vec<CString> = if h.args.is_empty() {
        vec![path.clone()]
    } else {
        h.args.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?
    };
    let env: Vec<CString> = h.env.iter().map(|e| cstr(e)).collect::<Result<_, _>>()?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let flags = rustix::pipe::PipeFlags::CLOEXEC;
    let (stdin_r, stdin_w) = rustix::pipe::pipe_with(flags).map_err(|e| e.to_string())?;
    let (out_r, out_w) = rustix::pipe::pipe_with(flags).map_err(|e| e.to_string())?;
    let parent = rustix::process::getpid();
    // SAFETY: the runner is single-threaded; the child only calls
    // async-signal-safe functions before execve or _exit.
    let pid = unsafe { crate::sys::fork() };
    if pid < 0 {
        return Err(format!(
            "fork: {}",
            describe(&std::io::Error::last_os_error())
        ));
    }
    if pid == 0 {
        // SAFETY: in the forked child; everything it touches was made
        // before the fork, and it ends in execve or _exit.
        unsafe { child(&path, &argv, &envp, &stdin_r, &out_w, place, parent) }
    }
    drop((stdin_r, out_w));
    // The state goes in while we wait, as the pipe takes it: with every
    // annotation it may be more than a pipe holds, and a hook that does
    // not read it (or has already exited) is not an error. Before the
    // workload's exec its signals are back to their defaults, and a
    // SIGPIPE must not end it here.
    let _ = rustix::io::ioctl_fionbio(&stdin_w, true);
    // SAFETY: setting a disposition and putting the old one back.
    let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let verdict = wait(
        pid,
        h.timeout,
        &out_r,
        Some((stdin_w, state)),
        abort,
        control,
    );
    // SAFETY: as above.
    unsafe { libc::signal(libc::SIGPIPE, old) };
    verdict
}

/// The hook's side of the fork: its stdio, its place, then execve.
///
/// # Safety
/// Only in the child of a fork of a single-threaded process.
unsafe fn child(
    path: &CString,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    stdin: &OwnedFd,
    out: &OwnedFd,
    place: &Place,
    parent: rustix::process::Pid,
) -> ! {
    // SAFETY: plain syscalls on fds this process holds; pointers are to
    // NUL-terminated strings and arrays that outlive the execve.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // A parent that died before the signal was armed left no one to
        // time the hook out or collect it. Its pid tells where we share
        // its PID namespace; 0 is a parent outside ours (one that joined
        // a PID namespace forks into it), alive or not: no answer there.
        let ppid = libc::getppid();
        if ppid != 0 && ppid != parent.as_raw_nonzero().get() {
            libc::_exit(126);
        }
        // A group of its own, killed whole at the timeout.
        libc::setpgid(0, 0);
        if libc::dup2(stdin.as_raw_fd(), 0) < 0
            || libc::dup2(out.as_raw_fd(), 1) < 0
            || libc::dup2(out.as_raw_fd(), 2) < 0
        {
            libc::_exit(126);
        }
        match place {
            Place::BeforePivot { host, root } => {
                if libc::fchdir(host.as_raw_fd()) != 0
                    || libc::chroot(c".".as_ptr()) != 0
                    || libc::fchdir(root.as_raw_fd()) != 0
                {
                    libc::_exit(126);
                }
            }
            Place::Host { namespaces } => {
                for ns in namespaces.iter() {
                    if libc::setns(ns.as_raw_fd(), 0) != 0 {
                        let msg: &[u8] = b"cannot return to the runtime's namespaces to run\n";
                        let _ = libc::write(2, msg.as_ptr().cast(), msg.len());
                        libc::_exit(126);
                    }
                }
            }
            Place::Inside => {}
        }
        // Nothing of the sandbox's setup goes with the hook.
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 1u32 << 2);
        crate::signals::reset_for_exec();
        libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
        let errno = *libc::__errno_location();
        let msg: &[u8] = match errno {
            libc::ENOENT => b"cannot execute it: no such file or directory\n",
            libc::EACCES => b"cannot execute it: permission denied\n",
            _ => b"cannot execute it\n",
        };
        let _ = libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(if errno == libc::ENOENT { 127 } else { 126 });
    }
}

/// Wait for the hook, keeping the end of what it wrote and writing
/// `input` (non-blocking) to its stdin, closed once written; kill it and
/// its group at its timeout, or once one of `abort` is readable.
fn wait(
    pid: i32,
    timeout: Option<u32>,
    out: &OwnedFd,
    mut input: Option<(OwnedFd, &[u8])>,
    abort: &[BorrowedFd],
    control: &mut Option<Control<'_>>,
) -> Result<(), String> {
    let kill = |status: &mut i32| {
        // SAFETY: pid is our unreaped child, and the group its own.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, status, 0);
        }
    };
    let deadline = timeout
        .filter(|t| *t > 0)
        .and_then(|t| Instant::now().checked_add(Duration::from_secs(t.into())));
    let mut output = Vec::new();
    let mut open = true;
    loop {
        if let Some((fd, rest)) = &mut input {
            match rustix::io::write(&*fd, rest) {
                Ok(n) => *rest = &rest[n..],
                Err(rustix::io::Errno::AGAIN) => {}
                Err(_) => *rest = &[],
            }
            if rest.is_empty() {
                input = None;
            }
        }
        let mut status = 0;
        // SAFETY: pid is our child; status is a valid pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            drain(out, &mut output);
            return verdict(status, &output);
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // Reaped by no one but us, unless SIGCHLD is ignored.
            return Err(format!(
                "cannot wait for it: {}",
                describe(&std::io::Error::last_os_error())
            ));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            kill(&mut status);
            return Err(format!(
                "did not finish within its timeout of {}s and was killed",
                timeout.unwrap_or(0)
            ));
        }
        let tick = Timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        let mut fds: Vec<PollFd> = abort
            .iter()
            .chain(control.as_ref().map(|(fd, _)| fd))
            .map(|fd| PollFd::from_borrowed_fd(*fd, PollFlags::IN))
            .collect();
        let watched = fds.len();
        if open {
            fds.push(PollFd::new(out, PollFlags::IN));
        }
        let _ = poll(&mut fds, Some(&tick));
        let called = control.is_some() && !fds[abort.len()].revents().is_empty();
        let asked = match called {
            true => control.as_mut().and_then(|(_, ask)| ask()),
            false => Some(false),
        };
        if asked.is_none() {
            *control = None;
        }
        let killed = asked == Some(true);
        if killed || fds[..abort.len()].iter().any(|f| !f.revents().is_empty()) {
            kill(&mut status);
            return Err("stopped while it ran (the sandbox was stopped or killed)".into());
        }
        if let Some(f) = fds.get(watched) {
            let ready = f.revents();
            if ready.contains(PollFlags::HUP) && !read_some(out, &mut output) {
                open = false;
            } else if ready.contains(PollFlags::IN) {
                read_some(out, &mut output);
            }
        }
    }
}

/// Read what is there into `into`, which keeps the last 4 to 8 KiB;
/// false at end of file.
fn read_some(fd: &OwnedFd, into: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 4096];
    match rustix::io::read(fd.as_fd(), &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            // The end of what it said is what explains a failure.
            into.extend_from_slice(&buf[..n]);
            if into.len() > 8192 {
                into.drain(..into.len() - 4096);
            }
            true
        }
    }
}

/// Read everything there is now (the fd is made non-blocking).
fn drain(fd: &OwnedFd, into: &mut Vec<u8>) {
    let _ = rustix::io::ioctl_fionbio(fd, true);
    while read_some(fd, into) {}
}

fn verdict(status: i32, output: &[u8]) -> Result<(), String> {
    let said = said(output);
    if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => Ok(()),
            code => Err(format!("exited with status {code}{said}")),
        }
    } else {
        Err(format!("killed by signal {}{said}", libc::WTERMSIG(status)))
    }
}

/// What a failed hook said, for its error: `: ` and the last 400
/// characters of its output (the end is what explains a failure), or
/// nothing. The OCI runtime's own hooks (poststart, poststop) say theirs
/// the same way.
pub fn said(output: &[u8]) -> String {
    let said = String::from_utf8_lossy(output);
    let said = said.trim();
    if said.is_empty() {
        return String::new();
    }
    let tail: String = said
        .chars()
        .rev()
        .take(400)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!(": {tail}")
}
