//! The runner: the freshly exec'd, single-threaded helper that carries out
//! a [`Plan`]. Library callers and the daemon are multi-threaded, and work
//! between fork and exec in a multi-threaded process is unsafe, so all
//! setup happens here instead.
//!
//! Its outer half, the supervisor, stays on the host side: it clones the
//! sandbox's PID 1 into new namespaces, writes the id maps from outside,
//! forwards signals, and exits with PID 1's status. One module per kernel
//! concern does the rest (`mount`, `dev`, `time`, `net`, `identity`, ...).

mod child;
mod dev;
mod exec;
pub mod fs;
mod identity;
mod idmap;
mod init;
mod mount;
mod net;
pub mod report;
pub mod signals;
mod time;

use crate::plan::Plan;
use crate::sys::{self, Forked};
use report::{Reporter, SetupError, StepExt, PLAN_FD, REPORT_FD};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

/// The argument that turns the `airlock` binary into the runner.
pub const RUNNER_ARG: &str = "__airlock-runner";

/// Entry point of the runner process (`airlock __airlock-runner PARENT_PID`).
/// Reads the plan from fd 3, reports on fd 4, and exits with the sandbox's
/// status (125 when setup fails).
pub fn main(parent_pid: i32) -> ! {
    // SAFETY: the caller set up fd 4 as the report socket for us, and
    // nothing else in this process uses that number.
    let sock = unsafe { BorrowedFd::borrow_raw(REPORT_FD) };
    let report = Reporter::new(sock, false);
    // A caller may start us with its forwarded signals blocked; we
    // install our own handlers before anything could need them.
    signals::unblock();
    match supervise(parent_pid, sock) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            report.failed(&e);
            std::process::exit(125)
        }
    }
}

fn read_plan() -> Result<Plan, SetupError> {
    // SAFETY: the caller passed the sealed memfd as fd 3; we take ownership
    // and it is closed after reading.
    let mut f = unsafe { std::fs::File::from_raw_fd(PLAN_FD) };
    let mut text = String::new();
    f.read_to_string(&mut text)
        .step(|| "read the plan".into())?;
    serde_json::from_str(&text).map_err(|e| SetupError::new("read the plan", e.to_string()))
}

fn namespace_flags(plan: &Plan) -> u64 {
    let ns = &plan.spec.namespaces;
    let mut flags = 0u64;
    for (on, flag) in [
        (ns.user, libc::CLONE_NEWUSER),
        (ns.mount, libc::CLONE_NEWNS),
        (ns.pid, libc::CLONE_NEWPID),
        (ns.uts, libc::CLONE_NEWUTS),
        (ns.ipc, libc::CLONE_NEWIPC),
        (ns.net, libc::CLONE_NEWNET),
        (ns.cgroup, libc::CLONE_NEWCGROUP),
    ] {
        if on {
            flags |= flag as u64;
        }
    }
    // The time namespace is entered later by PID 1 itself (see time.rs).
    flags
}

fn supervise(parent_pid: i32, sock: BorrowedFd) -> Result<i32, SetupError> {
    let plan = read_plan()?;
    let report = Reporter::new(sock, plan.verbose);
    if plan.spec.die_with_parent {
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
            .step(|| "set parent-death signal".into())?;
        // The caller may have died before the line above took effect.
        if rustix::process::getppid().map(|p| p.as_raw_nonzero().get()) != Some(parent_pid) {
            std::process::exit(125);
        }
    }
    if !sys::single_threaded() {
        return Err(SetupError::new(
            "runner",
            "the runner must be single-threaded",
        ));
    }
    // Nothing of the caller's beyond stdio, the plan and the socket.
    sys::close_from_except(3, &[REPORT_FD]).step(|| "close inherited fds".into())?;
    if plan.spec.new_session {
        // Away from the caller's terminal: terminal signals reach only the
        // caller, which forwards them once.
        rustix::process::setsid().step(|| "setsid".into())?;
    }

    let (go_read, go_write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).step(|| "pipe".into())?;
    report.progress(|| "clone3 into new namespaces".into());
    let flags = namespace_flags(&plan);
    let (pid, pidfd) = match sys::clone3(flags, None) {
        Ok(Forked::Child) => {
            drop(go_write);
            child::main(&plan, go_read, report)
        }
        Ok(Forked::Parent { pid, pidfd }) => (pid, pidfd),
        Err(e) => {
            let mut err = SetupError::io("clone3 into new namespaces", &e);
            if e.raw_os_error() == Some(libc::EPERM) || e.raw_os_error() == Some(libc::ENOSPC) {
                err.reason.push_str(
                    " (creating namespaces was refused: unprivileged user namespaces may be \
                     disabled, or user.max_user_namespaces reached)",
                );
            }
            return Err(err);
        }
    };
    drop(go_read);

    if plan.spec.namespaces.user {
        report.progress(|| "write id maps".into());
        if let Err(e) = idmap::write_maps(&plan, pid) {
            kill_and_reap(&pidfd, pid);
            return Err(e);
        }
    }
    // Not before the maps are written: /proc/PID of a non-dumpable child
    // belongs to the host's root, and a rootless caller could not write them.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .step(|| "make the supervisor non-dumpable".into())?;
    rustix::io::write(&go_write, b"g").step(|| "start the sandbox".into())?;
    // go_write stays open until we exit: PID 1 watches it to learn whether
    // we died before its parent-death signal was armed.

    signals::forward_to(pid, plan.spec.new_session);
    // SAFETY: REPORT_FD is ours; PID 1 and the workload keep their own copies.
    unsafe { libc::close(REPORT_FD) };

    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer for the call.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(signals::shell_status(status));
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(SetupError::io("wait for the sandbox", &err));
        }
    }
}

fn kill_and_reap(pidfd: &OwnedFd, pid: i32) {
    let _ = rustix::process::pidfd_send_signal(pidfd.as_fd(), rustix::process::Signal::KILL);
    let mut status = 0;
    // SAFETY: status is a valid out-pointer for the call.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}
