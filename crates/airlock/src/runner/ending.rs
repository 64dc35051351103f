//! The sandbox's end, on the supervisor's side: reap PID 1, say how the
//! sandbox ended (exit, signal, timeout, OOM kill, peak memory, CPU),
//! remove the cgroups and record the end in the state.

use super::guard;
use super::report::{Ended, ExitReport, SetupError};
use super::signals;
use super::watch::Outcome;
use crate::cgroup::Cgroup;
use crate::state::{SandboxDir, Status};
use crate::sys;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

/// After PID 1 is reaped: remove the cgroups, record how the sandbox
/// ended, stand the guard down, and remove the sandbox's directory if it
/// asked for that.
pub(super) fn finish(
    mut cgroup: Option<Cgroup>,
    state_dir: Option<SandboxDir>,
    lifecycle: Option<crate::plan::Lifecycle>,
    guard: Option<guard::Guard>,
    outcome: &Outcome,
    exit: &ExitReport,
    owner: u32,
) {
    let cgroups_left = cgroup.as_mut().is_some_and(|cg| !cg.remove());
    // Detached, someone may be waiting or attached when it removes itself:
    // its end is kept for them. A foreground run's caller has its exit.
    let keep_end = lifecycle
        .as_ref()
        .is_some_and(|l| l.remove_on_exit && l.detached);
    let mut last = None;
    if let Some(sb) = &state_dir {
        let recorded = sb.update(|st| {
            st.status = Status::Stopped;
            st.finished = Some(crate::state::now());
            st.cgroups_left = cgroups_left;
            st.reason = outcome
                .killed
                .clone()
                .or(outcome.failed_after_create.clone())
                .or(st.reason.take());
            st.exit =
                (!outcome.failed || outcome.failed_after_create.is_some()).then(|| exit.clone());
            if keep_end {
                last = Some(st.without_spec());
            }
        });
        if recorded.is_err() {
            last = None;
        }
    }
    if let Some(g) = guard {
        g.release();
    }
    if let (Some(sb), Some(l)) = (&state_dir, &lifecycle) {
        // Its end is kept only once recorded. Not while cgroups of it are
        // left (a process stuck in the kernel): the record is what a
        // later `rm` removes them by.
        match &last {
            _ if cgroups_left => {}
            Some(last) => {
                let _ = sb.remove_keeping_end(last, owner);
            }
            None if l.remove_on_exit => {
                let _ = sb.remove();
            }
            None => {}
        }
    }
}

/// Reap PID 1 (or, when it is the caller's subreaper's to reap, only
/// read how it ended) and say how the sandbox ended.
pub(super) fn reap(
    pid: i32,
    reaped: bool,
    outcome: &Outcome,
    cgroup: Option<&Cgroup>,
    wall: Duration,
) -> Result<(i32, ExitReport), SetupError> {
    let (status, usage) =
        sys::wait_status(pid, reaped).map_err(|e| SetupError::io("wait for the sandbox", &e))?;
    let code = signals::shell_status(status);
    Ok((
        code,
        exit_report(code, status, outcome, cgroup, &usage, wall),
    ))
}

/// Kill every process of the sandbox: through its cgroup when there is
/// one (double-forked processes included), else PID 1, which takes the
/// whole PID namespace with it.
pub(super) fn kill_sandbox(cgroup: Option<&Cgroup>, pidfd: &OwnedFd) {
    if let Some(cg) = cgroup {
        cg.kill();
    }
    let _ = rustix::process::pidfd_send_signal(pidfd.as_fd(), rustix::process::Signal::KILL);
}

fn exit_report(
    code: i32,
    status: i32,
    outcome: &Outcome,
    cgroup: Option<&Cgroup>,
    usage: &libc::rusage,
    wall: Duration,
) -> ExitReport {
    // A shell's 128+N for a signal, as ExitReport::from_code reads it: an
    // `exit 255` is an exit.
    let signal = libc::WIFSIGNALED(status)
        .then(|| libc::WTERMSIG(status))
        .or_else(|| (code > 128 && code < 128 + 65).then_some(code - 128));
    let oom_kills = cgroup.map_or(0, Cgroup::oom_kills);
    let ended = if outcome.timed_out {
        Ended::TimedOut
    } else if oom_kills > 0 && signal == Some(libc::SIGKILL) && outcome.killed.is_none() {
        // Not when it was killed on request: an earlier OOM kill of
        // some other process would take the blame.
        Ended::OomKilled
    } else if signal.is_some() {
        Ended::Signaled
    } else {
        Ended::Exited
    };
    let (peak, scope) = match cgroup.and_then(Cgroup::peak_memory) {
        Some(p) => (p, "cgroup"),
        None => (usage.ru_maxrss as u64 * 1024, "largest-process"),
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    ExitReport {
        code,
        ended,
        signal,
        oom_kills,
        pids_limit_hit: cgroup.is_some_and(Cgroup::pids_limit_hit),
        peak_memory_bytes: peak,
        peak_memory_scope: scope.into(),
        cpu_seconds: secs(usage.ru_utime) + secs(usage.ru_stime),
        wall_seconds: wall.as_secs_f64(),
    }
}
