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
pub mod landlock;
mod mount;
mod net;
mod overlay;
pub mod report;
pub mod signals;
mod time;

use crate::cgroup::Cgroup;
use crate::plan::Plan;
use crate::sys::{self, Forked};
use report::{report_fd, Ended, ExitReport, Report, Reporter, SetupError, StepExt};
use rustix::fs::OFlags;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

/// The argument that turns the `airlock` binary into the runner.
pub const RUNNER_ARG: &str = "__airlock-runner";

/// Entry point of the runner process
/// (`airlock __airlock-runner PARENT_PID PLAN_FD REPORT_FD`): reads the
/// plan from the sealed memfd, reports on the socket, and exits with the
/// sandbox's status (125 when setup fails).
pub fn main(parent_pid: i32, plan_fd: i32, report: i32) -> ! {
    if plan_fd < 3 || report < 3 || plan_fd == report {
        eprintln!("airlock: the runner is started by airlock itself, not by hand");
        std::process::exit(125);
    }
    report::set_report_fd(report);
    // SAFETY: the caller passed the report socket as this fd, inheritable,
    // and nothing else in this process uses that number.
    let sock = unsafe { BorrowedFd::borrow_raw(report_fd()) };
    let report = Reporter::new(sock, false);
    // Forwarded signals wait (blocked) until there is a PID 1 to forward
    // them to: a Ctrl-C during setup must not kill us before we can clean
    // up. forward_to() unblocks them.
    signals::block();
    match supervise(parent_pid, plan_fd, sock) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            report.failed(&e);
            std::process::exit(125)
        }
    }
}

fn read_plan(plan_fd: i32) -> Result<Plan, SetupError> {
    // SAFETY: the caller passed the sealed memfd as this fd; we take
    // ownership and it is closed after reading.
    let mut f = unsafe { std::fs::File::from_raw_fd(plan_fd) };
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

fn supervise(parent_pid: i32, plan_fd: i32, sock: BorrowedFd) -> Result<i32, SetupError> {
    let plan = read_plan(plan_fd)?;
    let report = Reporter::new(sock, plan.verbose);
    if !sys::single_threaded() {
        return Err(SetupError::new(
            "runner",
            "the runner must be single-threaded",
        ));
    }
    // Nothing of the caller's beyond stdio, the plan and the socket.
    sys::close_from_except(3, &[report_fd()]).step(|| "close inherited fds".into())?;
    // After the close above, which would take its fds too.
    let stop = signals::catch_stop().step(|| "stop signal pipe".into())?;
    // Die with the caller: its pidfd becomes readable when it exits. (The
    // parent-death signal would fire when the *thread* that spawned us
    // ends, and library callers are multi-threaded.)
    let parent = if plan.spec.die_with_parent {
        let fd = rustix::process::Pid::from_raw(parent_pid)
            .map(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()))
            .transpose()
            .map_err(|e| SetupError::io("watch the caller", &e.into()))?;
        // The caller may have died (and its pid been reused) before that.
        if rustix::process::getppid().map(|p| p.as_raw_nonzero().get()) != Some(parent_pid) {
            std::process::exit(125);
        }
        fd
    } else {
        None
    };
    if plan.spec.new_session {
        // Away from the caller's terminal: terminal signals reach only the
        // caller, which forwards them once.
        rustix::process::setsid().step(|| "setsid".into())?;
    }

    overlay::prepare_upper(&plan)?;
    // cgroups first: a limit the host cannot apply stops us here, before
    // any namespace exists. Dropping `cgroup` removes what was created.
    // Without a PID namespace of its own, killing PID 1 does not end the
    // sandbox: a cgroup is then what stop and timeout kill through.
    let mut cgroup = if plan.spec.resources.any() || !plan.spec.namespaces.pid {
        report.progress(|| "create cgroups and write the limits".into());
        let name = format!("airlock-{}", std::process::id());
        Some(Cgroup::create(&plan.spec.resources, &name)?)
    } else {
        None
    };
    let cgroup_fd = match cgroup.as_ref().and_then(|c| c.v2.as_ref()) {
        Some(dir) => Some(
            rustix::fs::open(
                dir,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .step(|| "open the sandbox's cgroup".into())?,
        ),
        None => None,
    };

    let (go_read, go_write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).step(|| "pipe".into())?;
    // PID 1 and the workload report to us; we relay to the caller.
    let (inner, inner_child) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .step(|| "socketpair".into())?;
    report.progress(|| "clone3 into new namespaces".into());
    let flags = namespace_flags(&plan);
    let (pid, pidfd) = match sys::clone3(flags, cgroup_fd.as_ref().map(|f| f.as_raw_fd())) {
        Ok(Forked::Child) => {
            drop(go_write);
            drop(inner);
            drop(stop);
            drop(cgroup_fd);
            signals::forget_stop();
            // Our report fd number now names the inner socket, close-on-exec,
            // so the workload's exec is what closes it.
            if let Err(e) = rustix::io::dup3(
                &inner_child,
                &mut unsafe_report_fd(),
                rustix::io::DupFlags::CLOEXEC,
            ) {
                report.failed(&SetupError::io("runner: report socket", &e.into()));
                std::process::exit(125);
            }
            drop(inner_child);
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
    let started = std::time::Instant::now();
    drop(go_read);
    drop(inner_child);
    drop(cgroup_fd);

    let early = |e: SetupError| {
        kill_and_reap(&pidfd, pid);
        e
    };
    if plan.spec.namespaces.user {
        report.progress(|| "write id maps".into());
        idmap::write_maps(&plan, pid).map_err(early)?;
    }
    if let Some(cg) = &cgroup {
        cg.add_v1(pid).map_err(early)?;
    }
    // Not before the maps are written: /proc/PID of a non-dumpable child
    // belongs to the host's root, and a rootless caller could not write them.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .step(|| "make the supervisor non-dumpable".into())?;
    rustix::io::write(&go_write, b"g").step(|| "start the sandbox".into())?;
    // go_write stays open until we exit: PID 1 watches it to learn whether
    // we died before its parent-death signal was armed.
    signals::forward_to(pid, plan.spec.new_session);

    let deadline = plan
        .spec
        .timeout
        .and_then(|t| std::time::Duration::try_from_secs_f64(t).ok())
        .and_then(|d| started.checked_add(d));
    let mut waiter = Waiter {
        stop: &stop,
        parent: parent.as_ref(),
        pidfd: &pidfd,
        cgroup: cgroup.as_ref(),
        deadline,
        timed_out: false,
        killed: false,
    };

    // Relay setup reports until the workload's exec closes the socket.
    let mut failed = false;
    let mut exec_seen = false;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let ready = waiter.wait(&inner)?;
        if !ready {
            continue;
        }
        match rustix::net::recv(&inner, &mut buf[..], rustix::net::RecvFlags::DONTWAIT) {
            Ok((0, _)) => break,
            Ok((n, _)) => {
                match serde_json::from_slice::<Report>(&buf[..n]) {
                    Ok(Report::Failed(_)) => failed = true,
                    Ok(Report::Exec) => exec_seen = true,
                    _ => {}
                }
                let _ = rustix::net::send(sock, &buf[..n], rustix::net::SendFlags::NOSIGNAL);
            }
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => continue,
            Err(_) => break,
        }
    }
    drop(inner);
    if !failed && !exec_seen {
        // PID 1 went away without a word (killed, out of memory): setup
        // did not finish, whatever its exit status will say.
        failed = true;
        report.failed(&SetupError::new(
            "setup",
            "the sandbox's PID 1 ended before starting the workload (killed, or out of memory?)",
        ));
    }
    if !failed {
        report.send(&Report::Started {
            pid,
            freezer: cgroup.as_ref().and_then(Cgroup::freezer_file),
        });
    }

    // Wait for PID 1, with the wall-clock limit if there is one.
    while !waiter.wait(&pidfd)? {}
    let timed_out = waiter.timed_out;
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; both pointers are valid for the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; pid is our child, reaped exactly once here.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r != pid {
        return Err(SetupError::io(
            "wait for the sandbox",
            &std::io::Error::last_os_error(),
        ));
    }
    let code = signals::shell_status(status);
    let exit = exit_report(
        code,
        status,
        timed_out,
        cgroup.as_ref(),
        &usage,
        started.elapsed(),
    );
    if let Some(cg) = cgroup.as_mut() {
        cg.remove();
    }
    if !failed {
        report.send(&Report::Exited(exit));
    }
    Ok(code)
}

/// The report fd number, as an OwnedFd to dup onto. Never dropped: the
/// number stays ours after the dup.
fn unsafe_report_fd() -> std::mem::ManuallyDrop<OwnedFd> {
    // SAFETY: the report fd is open in this process (the caller's socket);
    // ManuallyDrop makes sure this handle never closes it.
    std::mem::ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(report_fd()) })
}

/// Waits for one fd while watching the stop pipe, the caller's pidfd and
/// the deadline; any of those kills the whole sandbox (once).
struct Waiter<'a> {
    stop: &'a OwnedFd,
    parent: Option<&'a OwnedFd>,
    pidfd: &'a OwnedFd,
    cgroup: Option<&'a Cgroup>,
    deadline: Option<std::time::Instant>,
    timed_out: bool,
    killed: bool,
}

impl Waiter<'_> {
    fn kill(&mut self) {
        if !self.killed {
            self.killed = true;
            kill_sandbox(self.cgroup, self.pidfd);
        }
    }

    /// Poll until `fd` is readable (true) or something else happened
    /// (false: call again).
    fn wait(&mut self, fd: &OwnedFd) -> Result<bool, SetupError> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let mut timeout = None;
        if let (Some(d), false) = (self.deadline, self.timed_out) {
            let left = d.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                self.timed_out = true;
                self.kill();
            } else {
                timeout = Some(Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: left.subsec_nanos() as i64,
                });
            }
        }
        let mut fds = vec![
            PollFd::new(fd, PollFlags::IN),
            PollFd::new(self.stop, PollFlags::IN),
        ];
        if let Some(p) = self.parent {
            fds.push(PollFd::new(p, PollFlags::IN));
        }
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(SetupError::io("wait for the sandbox", &e.into())),
        }
        if !fds[1].revents().is_empty() {
            let mut b = [0u8; 16];
            let _ = rustix::io::read(self.stop, &mut b);
        }
        let parent_gone = fds.get(2).is_some_and(|p| !p.revents().is_empty());
        let ready = !fds[0].revents().is_empty();
        if signals::stop_requested() || parent_gone {
            self.kill();
            if parent_gone {
                // Stop watching it; it stays readable.
                self.parent = None;
            }
        }
        Ok(ready)
    }
}

/// Kill every process of the sandbox: through its cgroup when there is
/// one (double-forked processes included), else PID 1, which takes the
/// whole PID namespace with it.
fn kill_sandbox(cgroup: Option<&Cgroup>, pidfd: &OwnedFd) {
    if let Some(cg) = cgroup {
        cg.kill();
    }
    let _ = rustix::process::pidfd_send_signal(pidfd.as_fd(), rustix::process::Signal::KILL);
}

fn exit_report(
    code: i32,
    status: i32,
    timed_out: bool,
    cgroup: Option<&Cgroup>,
    usage: &libc::rusage,
    wall: std::time::Duration,
) -> ExitReport {
    let signal = libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
    let oom_kills = cgroup.map_or(0, Cgroup::oom_kills);
    let ended = if timed_out {
        Ended::TimedOut
    } else if oom_kills > 0 && (signal == Some(libc::SIGKILL) || code == 128 + libc::SIGKILL) {
        Ended::OomKilled
    } else if code > 128 {
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
        signal: signal.or_else(|| (code > 128).then_some(code - 128)),
        oom_kills,
        pids_limit_hit: cgroup.is_some_and(Cgroup::pids_limit_hit),
        peak_memory_bytes: peak,
        peak_memory_scope: scope.into(),
        cpu_seconds: secs(usage.ru_utime) + secs(usage.ru_stime),
        wall_seconds: wall.as_secs_f64(),
    }
}

fn kill_and_reap(pidfd: &OwnedFd, pid: i32) {
    let _ = rustix::process::pidfd_send_signal(pidfd.as_fd(), rustix::process::Signal::KILL);
    let mut status = 0;
    // SAFETY: status is a valid out-pointer for the call.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}
