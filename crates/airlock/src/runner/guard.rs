//! The guard: a small process forked by the supervisor that makes sure
//! nothing of the sandbox outlives the supervisor, even when the
//! supervisor is killed with SIGKILL and cannot clean up.
//!
//! PID 1's parent-death signal alone does not promise that: a workload
//! that is PID 1 itself (`init = "workload"`) may clear it, and any uid
//! change clears it; and a dead supervisor cannot remove its cgroups.
//!
//! The guard is forked before the cgroups are made, so that no moment
//! exists in which they are there and nobody would remove them. The
//! supervisor tells it, over a socket whose only other end is the
//! supervisor's, what there is to clean as it comes to be: the cgroups
//! once made (`c`, their paths), PID 1 once cloned (`p`, its pidfd).
//! `d` means "done, I cleaned up"; end-of-file without it means the
//! supervisor died (or gave up on an error), and the guard kills what it
//! was told of, removes the cgroups and, once PID 1 existed, records why
//! in the state directory. It holds the supervisor's `alive` lock
//! (inherited), so `airlock wait` returns only once it has finished.

use super::report::{SetupError, StepExt};
use super::signals;
use crate::cgroup::Cgroup;
use crate::state::{CgroupPaths, SandboxDir, Status};
use crate::sys;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

pub struct Guard {
    pid: i32,
    /// The supervisor's end of the socket; its close without `d` is
    /// what the guard acts on.
    tell: OwnedFd,
}

/// Fork the guard. It keeps its end of the socket and the alive locks
/// (`alive_fds`); every other fd is closed in it, and its stdio goes to
/// /dev/null (a caller's pipes must see their end when the workload's
/// copies close, whatever the guard still waits for).
pub fn spawn(
    dir: Option<&SandboxDir>,
    alive_fds: &[i32],
    removal: Removal,
) -> Result<Guard, SetupError> {
    let (tell, heard) = sys::seqpacket_pair().step(|| "socketpair for the guard".into())?;
    // SAFETY: the supervisor is single-threaded (checked at its start), so
    // the child's copy of memory is consistent; the child only runs `watch`
    // and exits.
    match unsafe { sys::fork() } {
        -1 => Err(SetupError::io(
            "fork the guard",
            &std::io::Error::last_os_error(),
        )),
        0 => {
            sys::exit_on_panic();
            // A session of its own: a SIGKILL of the supervisor's process
            // group (`kill -9 -PGID`, a terminal's job control) is what
            // the guard is there to outlive.
            // SAFETY: setsid takes no pointers; a forked child is never a
            // process group leader, so it succeeds.
            unsafe { libc::setsid() };
            let mut keep = vec![heard.as_raw_fd()];
            keep.extend(alive_fds);
            let _ = sys::close_from_except(3, &keep);
            let _ = sys::stdio_to_null();
            std::mem::forget(tell);
            watch(heard, dir, removal)
        }
        pid => Ok(Guard { pid, tell }),
    }
}

/// What the plan asks of a sandbox's directory as it ends, given at the
/// guard's fork (it reads nothing of the plan later): remove it
/// (`run --rm`), keeping the end of a detached one for its waiters,
/// among the ends of the caller's sandboxes.
#[derive(Clone, Copy, Default)]
pub struct Removal {
    pub on_exit: bool,
    pub keep_end: bool,
    pub caller: u32,
}

/// What the supervisor has told the guard of so far.
#[derive(Default)]
struct Told {
    cgroup: Option<Cgroup>,
    pid1: Option<OwnedFd>,
}

fn watch(heard: OwnedFd, dir: Option<&SandboxDir>, removal: Removal) -> ! {
    // Signals meant for the supervisor's process group are not ours.
    for sig in signals::forwarded() {
        // SAFETY: setting SIG_IGN is valid for these catchable signals.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    // SAFETY: restoring the default disposition of a catchable signal.
    unsafe { libc::signal(signals::stop_signal(), libc::SIG_DFL) };
    // The guard stays beside the workload for its whole life: what it
    // copied of the supervisor's setup (the stack of the calls that forked
    // it, the free blocks) is given back, as the supervisor's is once set
    // up. Our procfs is still the host's.
    sys::release_free_memory();
    let mut told = Told::default();
    // The cgroup paths' JSON grows with a nested path's depth. Past the
    // runner's arena, from the C library's fresh pages: untouched beyond
    // what a message fills.
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (n, mut fds) =
            match sys::recv_with_fds(&heard, &mut buf, rustix::net::RecvFlags::empty()) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
                Ok(got) => got,
            };
        match buf[..n].split_first() {
            Some((b'd', _)) => {
                // SAFETY: _exit ends this forked copy without running the
                // supervisor's destructors (its cgroups are the supervisor's).
                unsafe { libc::_exit(0) }
            }
            Some((b'c', json)) => {
                if let Ok(paths) = serde_json::from_slice::<CgroupPaths>(json) {
                    told.cgroup = Some(Cgroup::adopt(&paths));
                }
            }
            Some((b'p', _)) if !fds.is_empty() => told.pid1 = Some(fds.remove(0)),
            // End-of-file: the supervisor is gone.
            None => break,
            Some(_) => {}
        }
    }
    clean_up(told, dir, removal)
}

/// The supervisor died without cleaning up: kill what it told us of,
/// remove the cgroups, and say why in the state.
fn clean_up(told: Told, dir: Option<&SandboxDir>, removal: Removal) -> ! {
    let Told { cgroup, pid1 } = told;
    // Whether PID 1 is known gone (a process stuck in the kernel is not).
    let mut gone = true;
    match &pid1 {
        Some(pidfd) => {
            super::ending::kill_sandbox(cgroup.as_ref(), pidfd);
            // PID 1 is not our child: wait for it to be gone through its
            // pidfd.
            let mut pfd = [rustix::event::PollFd::new(
                pidfd,
                rustix::event::PollFlags::IN,
            )];
            let five = rustix::event::Timespec {
                tv_sec: 5,
                tv_nsec: 0,
            };
            gone = rustix::event::poll(&mut pfd, Some(&five)).is_ok_and(|n| n > 0);
        }
        None => {
            if let Some(cg) = &cgroup {
                cg.kill();
            }
        }
    }
    // remove() kills what is left and removes the directories; what it
    // could not (a process stuck in the kernel) is recorded, for a later
    // `rm` to try again (`reclaim_cgroups`).
    let left = cgroup.is_some_and(|mut cg| !cg.remove());
    // Only a sandbox that was started has a state to say so in: before
    // PID 1, a supervisor's error is its own to report, and its own
    // destructors undo the rest.
    if let (Some(sb), Some(_)) = (dir, &pid1) {
        let mut last = None;
        let recorded = sb.update(|st| {
            if st.status != Status::Stopped {
                st.status = Status::Stopped;
                st.finished = Some(crate::state::now());
                st.reason = Some(
                    "its supervisor was killed; every process of the sandbox was killed with it"
                        .into(),
                );
            }
            st.cgroups_left |= left;
            last = Some(st.without_spec());
        });
        // One asked to go as it ends (`run --rm`) goes, as the supervisor
        // would have taken it (ending::finish), its end kept for a
        // detached one's waiters; not while something of it may be left
        // (cgroups, a process that outlived the kill): its record is what
        // a later `rm` cleans up by.
        if removal.on_exit && gone && !left {
            match (removal.keep_end, recorded.ok().and(last)) {
                (true, Some(last)) => drop(sb.remove_keeping_end(&last, removal.caller)),
                _ => drop(sb.remove()),
            }
        }
    }
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

impl Guard {
    /// The cgroups exist: from here on the guard removes them if we die.
    pub fn cgroups(&self, cgroup: &Cgroup) -> Result<(), SetupError> {
        let json = serde_json::to_vec(&cgroup.paths())
            .map_err(|e| SetupError::new("guard", e.to_string()))?;
        let mut msg = Vec::with_capacity(json.len() + 1);
        msg.push(b'c');
        msg.extend(json);
        sys::send_with_fds(&self.tell, &msg, &[]).step(|| "tell the guard of the cgroups".into())
    }

    /// PID 1 exists: from here on the guard kills it if we die.
    pub fn pid1(&self, pidfd: &OwnedFd) -> Result<(), SetupError> {
        sys::send_with_fds(&self.tell, b"p", &[pidfd.as_fd()])
            .step(|| "hand the guard PID 1's pidfd".into())
    }

    /// The supervisor finished its own cleanup: let the guard go.
    pub fn release(self) {
        let _ = rustix::io::write(&self.tell, b"d");
        drop(self.tell);
        let _ = sys::reap(self.pid);
    }
}
