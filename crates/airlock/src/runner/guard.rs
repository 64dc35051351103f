//! The guard: a small process forked by the supervisor that makes sure
//! nothing of the sandbox outlives the supervisor, even when the
//! supervisor is killed with SIGKILL and cannot clean up.
//!
//! PID 1's parent-death signal alone does not promise that: a workload
//! that is PID 1 itself (`init = "workload"`) may clear it, and any uid
//! change clears it; and a dead supervisor cannot remove its cgroups. The
//! guard blocks on a pipe whose only writer is the supervisor. A byte
//! means "done, I cleaned up"; end-of-file without one means the supervisor
//! died, and the guard kills the whole sandbox, removes its cgroups and
//! records why in the state directory. It holds the supervisor's `alive`
//! lock (inherited), so `airlock wait` returns only once it has finished.

use super::report::{SetupError, StepExt};
use super::signals;
use crate::cgroup::Cgroup;
use crate::state::{SandboxDir, Status};
use std::os::fd::{AsRawFd, OwnedFd};

pub struct Guard {
    pid: i32,
    done: OwnedFd,
}

/// Fork the guard. It holds on to the pidfd of PID 1 and the alive locks
/// (`alive_fds`); every other fd is closed in it.
pub fn spawn(
    pidfd: &OwnedFd,
    cgroup: Option<&Cgroup>,
    dir: Option<&SandboxDir>,
    alive_fds: &[i32],
) -> Result<Guard, SetupError> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .step(|| "pipe for the guard".into())?;
    // SAFETY: the supervisor is single-threaded (checked at its start), so
    // the child's copy of memory is consistent; the child only runs `watch`
    // and exits.
    match unsafe { crate::sys::fork() } {
        -1 => Err(SetupError::io(
            "fork the guard",
            &std::io::Error::last_os_error(),
        )),
        0 => {
            crate::sys::exit_on_panic();
            // A session of its own: a SIGKILL of the supervisor's process
            // group (`kill -9 -PGID`, a terminal's job control) is what
            // the guard is there to outlive.
            // SAFETY: setsid takes no pointers; a forked child is never a
            // process group leader, so it succeeds.
            unsafe { libc::setsid() };
            let mut keep = vec![r.as_raw_fd(), pidfd.as_raw_fd()];
            keep.extend(alive_fds);
            let _ = crate::sys::close_from_except(3, &keep);
            std::mem::forget(w);
            watch(r, pidfd, cgroup, dir)
        }
        pid => Ok(Guard { pid, done: w }),
    }
}

fn watch(r: OwnedFd, pidfd: &OwnedFd, cgroup: Option<&Cgroup>, dir: Option<&SandboxDir>) -> ! {
    // Signals meant for the supervisor's process group are not ours.
    for sig in signals::forwarded() {
        // SAFETY: setting SIG_IGN is valid for these catchable signals.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    // SAFETY: restoring the default disposition of a catchable signal.
    unsafe { libc::signal(signals::stop_signal(), libc::SIG_DFL) };
    let mut b = [0u8; 1];
    let n = loop {
        match rustix::io::read(&r, &mut b) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other.unwrap_or(0),
        }
    };
    if n == 1 {
        // SAFETY: _exit ends this forked copy without running the
        // supervisor's destructors (its cgroups are the supervisor's).
        unsafe { libc::_exit(0) }
    }
    super::ending::kill_sandbox(cgroup, pidfd);
    // PID 1 is not our child: wait for it to be gone through its pidfd.
    let mut pfd = [rustix::event::PollFd::new(
        pidfd,
        rustix::event::PollFlags::IN,
    )];
    let five = rustix::event::Timespec {
        tv_sec: 5,
        tv_nsec: 0,
    };
    let _ = rustix::event::poll(&mut pfd, Some(&five));
    if let Some(cg) = cgroup {
        // A copy of the supervisor's cgroups: remove() kills what is left
        // and removes the directories.
        let mut cg = cg.clone();
        cg.remove();
    }
    if let Some(sb) = dir {
        let _ = sb.update(|st| {
            if st.status != Status::Stopped {
                st.status = Status::Stopped;
                st.finished = Some(crate::state::now());
                st.reason = Some(
                    "its supervisor was killed; every process of the sandbox was killed with it"
                        .into(),
                );
            }
        });
    }
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

impl Guard {
    /// The supervisor finished its own cleanup: let the guard go.
    pub fn release(self) {
        let _ = rustix::io::write(&self.done, b"d");
        drop(self.done);
        let _ = crate::sys::reap(self.pid);
    }
}
