//! Exec into a running sandbox: the runner joins the sandbox's cgroups and,
//! through a pidfd on its PID 1, every one of its namespaces at once
//! (`setns(pidfd, flags)`), then forks — the PID and time namespaces apply
//! to children — and the child takes the same walls as the workload
//! (Landlock, seccomp, capability bounds, no_new_privs, its ids) before it
//! execs. The runner stays outside as the process's parent: it forwards
//! signals and exits with the process's status.
//!
//! Order matters: the cgroup files are written while the host's mount
//! namespace is still ours (inside, /sys/fs/cgroup is not there), and the
//! pidfd is checked to be the supervisor's child before anything is
//! joined, so a pid reused after the sandbox ended is never entered.

use super::report::{Report, Reporter, SetupError, StepExt};
use super::{child, exec, signals};
use crate::plan::ExecPlan;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// The parent pid of `pid`, from /proc/PID/stat.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// A pidfd on the sandbox's PID 1, checked to be the supervisor's child.
fn open_init(plan: &ExecPlan) -> Result<OwnedFd, SetupError> {
    let step = || "exec: find the sandbox's PID 1".to_string();
    let pid = rustix::process::Pid::from_raw(plan.pid)
        .ok_or_else(|| SetupError::new(step(), "no PID 1 recorded"))?;
    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|_| SetupError::new(step(), "the sandbox is not running"))?;
    // The pidfd holds the process it was opened on; while that has not
    // exited (the pidfd is not readable), /proc/PID is that same process.
    let mut pfd = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let exited = rustix::event::poll(&mut pfd, Some(&zero)).step(step)? > 0;
    if exited || parent_of(plan.pid) != Some(plan.supervisor_pid) {
        return Err(SetupError::new(step(), "the sandbox is not running"));
    }
    Ok(fd)
}

fn join_cgroups(plan: &ExecPlan) -> Result<(), SetupError> {
    let Some(cg) = &plan.cgroup else {
        return Ok(());
    };
    let me = std::process::id().to_string();
    for dir in cg.v2.iter().chain(cg.v1.values()) {
        std::fs::write(dir.join("cgroup.procs"), &me)
            .step(|| format!("exec: join the cgroup {}", dir.display()))?;
    }
    Ok(())
}

fn namespace_flags(plan: &ExecPlan) -> u32 {
    let ns = &plan.spec.namespaces;
    let mut flags = 0;
    for (on, flag) in [
        (ns.user, libc::CLONE_NEWUSER),
        (ns.mount, libc::CLONE_NEWNS),
        (ns.pid, libc::CLONE_NEWPID),
        (ns.uts, libc::CLONE_NEWUTS),
        (ns.ipc, libc::CLONE_NEWIPC),
        (ns.net, libc::CLONE_NEWNET),
        (ns.cgroup, libc::CLONE_NEWCGROUP),
        (ns.time, libc::CLONE_NEWTIME),
    ] {
        if on {
            flags |= flag as u32;
        }
    }
    flags
}

pub(super) fn run(plan: ExecPlan, sock: BorrowedFd) -> Result<i32, SetupError> {
    let report = Reporter::new(sock, plan.verbose);
    let init = open_init(&plan)?;
    join_cgroups(&plan)?;
    report.progress(|| format!("setns into PID {}'s namespaces", plan.pid));
    rustix::thread::move_into_thread_name_spaces(
        init.as_fd(),
        rustix::thread::ThreadNameSpaceType::from_bits_retain(namespace_flags(&plan)),
    )
    .step(|| "exec: join the sandbox's namespaces".into())?;
    drop(init);
    let (inner, inner_child) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .step(|| "socketpair".into())?;
    // SAFETY: the runner is single-threaded; the child only runs
    // `become_process`, which execs or exits.
    let pid = match unsafe { libc::fork() } {
        -1 => {
            return Err(SetupError::io(
                "exec: fork",
                &std::io::Error::last_os_error(),
            ))
        }
        0 => {
            drop(inner);
            let report = Reporter::new(inner_child.as_fd(), plan.verbose);
            let e = become_process(&plan, report);
            report.failed(&e);
            // SAFETY: _exit skips the runner's destructors in this copy.
            unsafe { libc::_exit(e.kind.exit_code()) }
        }
        pid => pid,
    };
    drop(inner_child);
    signals::forward_to(pid, true);
    // Relay until the exec closes the child's copy of the socket.
    let mut failed = false;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match rustix::net::recv(&inner, &mut buf[..], rustix::net::RecvFlags::empty()) {
            Ok((0, _)) => break,
            Ok((n, _)) => {
                if let Ok(Report::Failed(_)) = serde_json::from_slice::<Report>(&buf[..n]) {
                    failed = true;
                }
                let _ = rustix::net::send(sock, &buf[..n], rustix::net::SendFlags::NOSIGNAL);
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
    }
    if !failed {
        report.send(&Report::Started { pid, freezer: None });
    }
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer; pid is our child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(SetupError::io(
                "exec: wait",
                &std::io::Error::last_os_error(),
            ));
        }
    }
    let code = signals::shell_status(status);
    if !failed {
        report.send(&Report::Exited(super::report::ExitReport::from_code(code)));
    }
    Ok(code)
}

/// In the child, inside every namespace: the workload's walls, then exec.
fn become_process(plan: &ExecPlan, report: Reporter) -> SetupError {
    let p = &plan.process;
    let run = || -> Result<(), SetupError> {
        if plan.spec.new_session {
            rustix::process::setsid().step(|| "setsid".into())?;
        }
        child::lock_down(&plan.spec, p, report, || {
            // Dies with the runner that waits for it (the uid change above
            // cleared any earlier parent-death signal).
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .step(|| "set parent-death signal".into())
        })
    };
    if let Err(e) = run() {
        return e;
    }
    report.send(&Report::Exec);
    exec::exec(p)
}
