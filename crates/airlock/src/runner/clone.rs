//! PID 1's birth, on both sides of the clone. In the clone: let go of
//! what is the supervisor's and become PID 1 (`child::main`). In the
//! supervisor, between the clone and "go": PID 1 handed to the guard, the
//! id maps, the v1 cgroups, the scheduling and the state record, each of
//! which kills and reaps PID 1 if it fails, before PID 1 ran anything of
//! the workload's.

use super::guard;
use super::logs::Logs;
use super::report::{report_fd, Reporter, SetupError, StepExt};
use super::{child, idmap, signals, sources};
use crate::cgroup::Cgroup;
use crate::plan::Plan;
use crate::state::SandboxDir;
use crate::sys;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

/// PID 1's ends of what it shares with the supervisor, and the trees
/// cloned for it on the host side.
pub(super) struct Pid1Ends {
    pub(super) go: OwnedFd,
    pub(super) inner: OwnedFd,
    pub(super) hold: Option<OwnedFd>,
    pub(super) sources: sources::Sources,
    /// The user namespace to join first (see `pidns`).
    pub(super) userns: Option<OwnedFd>,
}

/// In the clone: let go of what is the supervisor's, put the log pipes on
/// stdio and the inner socket on the report fd, and become PID 1.
pub(super) fn become_pid1(
    plan: Plan,
    by_root: bool,
    alive_fds: &[i32],
    logs: Option<Logs>,
    ends: Pid1Ends,
    report: Reporter,
) -> ! {
    // Cloned by root as the uid its user namespace belongs to, which may
    // ptrace what is dumpable in it (fs.suid_dumpable = 1 leaves the
    // seteuid's child so): nothing of ours needs it, root writes our maps
    // and opens our clock offsets whatever we are. A rootless caller's
    // supervisor needs us dumpable until "go", and is us.
    if by_root {
        if let Err(e) = child::not_dumpable() {
            report.failed(&e);
            std::process::exit(125);
        }
    }
    for fd in alive_fds {
        // SAFETY: the alive locks' fds are ours, closed once here (this
        // clone never returns to where their owners would close them: a
        // panic ends it, `sys::exit_on_panic`);
        // the sandbox must not keep the supervisor's locks.
        drop(unsafe { OwnedFd::from_raw_fd(*fd) });
    }
    signals::forget_stop();
    if let Some(l) = &logs {
        if let Err(e) = l.attach_stdio() {
            report.failed(&SetupError::io("runner: log pipes", &e));
            std::process::exit(125);
        }
    }
    drop(logs);
    // Our report fd number now names the inner socket, close-on-exec, so
    // the workload's exec is what closes it. In the caller's place there
    // is no caller's socket: the inner one keeps its own number.
    if report.caller().is_none() {
        super::report::set_report_fd(ends.inner.into_raw_fd());
    } else {
        if let Err(e) = rustix::io::dup3(
            &ends.inner,
            &mut unsafe_report_fd(),
            rustix::io::DupFlags::CLOEXEC,
        ) {
            report.failed(&SetupError::io("runner: report socket", &e.into()));
            std::process::exit(125);
        }
        drop(ends.inner);
    }
    // SAFETY: the report fd is the inner socket now, open until the exec
    // that ends this process image.
    let report = Reporter::new(unsafe { BorrowedFd::borrow_raw(report_fd()) }, plan.verbose);
    child::main(plan, ends.go, report, ends.hold, ends.sources, ends.userns)
}

pub(super) fn clone_failed(e: &std::io::Error) -> SetupError {
    let mut err = SetupError::io("clone3 into new namespaces", e);
    if e.raw_os_error() == Some(libc::EPERM) || e.raw_os_error() == Some(libc::ENOSPC) {
        err.reason.push_str(
            " (creating namespaces was refused: unprivileged user namespaces may be \
             disabled, or user.max_user_namespaces reached)",
        );
    }
    err
}

/// Between the clone and "go": PID 1 handed to the guard, its id maps and
/// v1 cgroups, the state file. A failure kills and reaps PID 1 before it
/// ran anything.
pub(super) fn start_pid1(
    plan: &Plan,
    pid: i32,
    pidfd: &OwnedFd,
    cgroup: Option<&Cgroup>,
    guard: Option<&guard::Guard>,
    state_dir: Option<&SandboxDir>,
    report: Reporter,
) -> Result<(), SetupError> {
    let early = |e: SetupError| {
        kill_and_reap(pidfd, pid);
        e
    };
    // First: from here on, PID 1 is the guard's to kill if we die.
    if let Some(g) = guard {
        g.pid1(pidfd).map_err(early)?;
    }
    // A joined user namespace has its maps (checked to be ours).
    if plan.user_ns() && !plan.userns_of_pid {
        report.progress(|| "write id maps".into());
        idmap::write_maps(plan, pid).map_err(early)?;
    }
    if let Some(cg) = cgroup {
        cg.add_v1(pid).map_err(early)?;
    }
    // In its cgroups (an affinity outside their cpuset is refused), and
    // before "go": the workload, its fork, starts with it.
    if let Some(s) = &plan.process.scheduling {
        super::sched::apply(pid, s).map_err(early)?;
    }
    if let Some(sb) = state_dir {
        record_start(sb, plan, pid, cgroup).map_err(early)?;
    }
    // Not before the maps are written: /proc/PID of a non-dumpable child
    // belongs to the host's root, and a rootless caller could not write them.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .step(|| "make the supervisor non-dumpable".into())?;
    Ok(())
}

/// PID 1, the supervisor and the cgroups go into the state file, the plan
/// beside it (exec takes the sandbox's walls from it).
fn record_start(
    sb: &SandboxDir,
    plan: &Plan,
    pid: i32,
    cgroup: Option<&Cgroup>,
) -> Result<(), SetupError> {
    let state_err = |e: crate::state::StateError| SetupError::new("state", e.to_string());
    // A record outlives the binaries that wrote it (an `exec` after an
    // upgrade reads it): it holds the seccomp programs themselves, not
    // the names only this build's binaries resolve.
    let mut recorded = plan.clone();
    for p in &mut recorded.walls.seccomp {
        *p = p.to_owned_bytes();
    }
    let bytes = serde_json::to_vec(&recorded).expect("plans serialize");
    sb.write_atomic("plan.json", &bytes).map_err(state_err)?;
    sb.update(|st| {
        st.pid = Some(pid);
        st.supervisor_pid = Some(std::process::id() as i32);
        st.supervisor_started = crate::sys::start_time(std::process::id() as i32);
        st.cgroup = cgroup.map(Cgroup::paths);
    })
    .map_err(state_err)
}

/// The report fd number, as an OwnedFd to dup onto. Never dropped: the
/// number stays ours after the dup.
fn unsafe_report_fd() -> std::mem::ManuallyDrop<OwnedFd> {
    // SAFETY: the report fd is open in this process (the caller's socket);
    // ManuallyDrop makes sure this handle never closes it.
    std::mem::ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(report_fd()) })
}

pub(super) fn kill_and_reap(pidfd: &OwnedFd, pid: i32) {
    let _ = rustix::process::pidfd_send_signal(pidfd.as_fd(), rustix::process::Signal::KILL);
    let _ = sys::reap(pid);
}
