//! Our PID 1: it forwards signals to the workload, reaps every orphan that
//! is reparented to it, and exits with the workload's status once the
//! workload ends (the kernel then kills whatever is left in the namespace).

use super::{identity, signals};

pub fn run(workload: i32, own_session: bool) -> ! {
    signals::forward_to(workload, own_session);
    // The workload has just exec'd (or waits to be started), and that
    // woke us (child.rs): let it run first. Dropping our privileges and
    // giving memory back is work the workload need not wait for, and a
    // workload that is done by the time we run again leaves none of it.
    std::thread::yield_now();
    if let Some(status) = reap(workload, libc::WNOHANG) {
        std::process::exit(status);
    }
    // Init needs no privilege to reap, and only CAP_KILL to forward.
    identity::drop_all_but_kill();
    crate::sys::release_free_memory();
    loop {
        if let Some(status) = reap(workload, 0) {
            std::process::exit(status);
        }
    }
}

/// Reap what has ended (with `WNOHANG`, only what already has; without,
/// waiting for the next); the workload's exit status once it is among
/// them.
fn reap(workload: i32, flags: i32) -> Option<i32> {
    loop {
        // Seen before it is reaped: a signal forwarded to the workload's
        // pid once it is reaped could reach another process given that
        // pid (in a PID namespace shared with others).
        // SAFETY: a zeroed siginfo_t is valid; the kernel fills it in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: info is a valid out-pointer for the call.
        let r = unsafe {
            libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOWAIT | flags,
            )
        };
        // SAFETY: filled in by waitid for an ended child (0 otherwise,
        // from the zeroed struct).
        let ended = unsafe { info.si_pid() };
        if r == 0 && ended == workload {
            signals::stop_forwarding(workload);
        }
        let mut status = 0;
        let pid = match (r, ended) {
            // SAFETY: status is a valid out-pointer; `ended` is our
            // child, ended and not reaped yet.
            (0, p) if p > 0 => unsafe { libc::waitpid(p, &mut status, 0) },
            (0, _) => 0,
            _ => -1,
        };
        if pid == workload {
            return Some(signals::shell_status(status));
        }
        if pid == 0 {
            return None; // WNOHANG: nothing more has ended yet
        }
        if pid < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                // No children left without having seen the workload's
                // status: cannot happen, but do not spin.
                std::process::exit(125);
            }
            if flags & libc::WNOHANG != 0 {
                return None;
            }
        }
    }
}
