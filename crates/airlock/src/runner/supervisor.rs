//! The supervisor: the runner's outer half, on the host side. It creates
//! the cgroups, clones PID 1 into the new namespaces, writes the id maps
//! from outside, relays setup reports, and then watches the sandbox until
//! it ends: the caller (unless detached), the stop signal, the timeout, the
//! control socket and a detached workload's output. At the end it reaps
//! PID 1, writes the exit report, removes the cgroups and, for a sandbox
//! with state, records how it ended.

use super::guard;
use super::logs::Logs;
use super::report::{report_fd, Ended, ExitReport, Report, Reporter, SetupError, StepExt};
use super::{child, idmap, overlay, signals, tty};
use crate::cgroup::Cgroup;
use crate::plan::Plan;
use crate::state::control::{self, Request};
use crate::state::{SandboxDir, Status};
use crate::sys::{self, Forked};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::OFlags;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Die with the caller: its pidfd becomes readable when it exits. (The
/// parent-death signal would fire when the *thread* that spawned us ends,
/// and library callers are multi-threaded.)
fn watch_caller(plan: &Plan, parent_pid: i32) -> Result<Option<OwnedFd>, SetupError> {
    if !plan.die_with_caller || plan.lifecycle.as_ref().is_some_and(|l| l.detached) {
        return Ok(None);
    }
    let fd = rustix::process::Pid::from_raw(parent_pid)
        .map(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()))
        .transpose()
        .map_err(|e| SetupError::io("watch the caller", &e.into()))?;
    // The caller may have died (and its pid been reused) before that.
    if rustix::process::getppid().map(|p| p.as_raw_nonzero().get()) != Some(parent_pid) {
        std::process::exit(125);
    }
    Ok(fd)
}

/// A detached supervisor leaves its caller's process tree: the caller
/// reaps the intermediate process at once and never holds a zombie, and
/// the supervisor lives on under the host's init (or a subreaper).
fn leave_caller() -> Result<(), SetupError> {
    // SAFETY: single-threaded (checked before); the parent only exits.
    match unsafe { libc::fork() } {
        -1 => Err(SetupError::io(
            "fork the detached supervisor",
            &std::io::Error::last_os_error(),
        )),
        // SAFETY: _exit skips destructors that belong to the child now.
        0 => Ok(()),
        _ => unsafe { libc::_exit(0) },
    }
}

/// cgroups first: a limit the host cannot apply stops us here, before any
/// namespace exists. Dropping the result removes what was created.
fn create_cgroup(plan: &Plan, report: Reporter) -> Result<Option<Cgroup>, SetupError> {
    let Some(cg) = &plan.cgroup else {
        return Ok(None);
    };
    report.progress(|| "create cgroups and write the limits".into());
    Cgroup::create(cg).map(Some)
}

pub(super) fn supervise(
    parent_pid: i32,
    plan: Plan,
    sock: std::os::fd::BorrowedFd,
    alive_fd: Option<i32>,
) -> Result<i32, SetupError> {
    let report = Reporter::new(sock, plan.verbose);
    let lifecycle = plan.lifecycle.clone();
    let detached = lifecycle.as_ref().is_some_and(|l| l.detached);
    let state_dir = lifecycle.as_ref().map(|l| SandboxDir::at(&l.dir));
    if detached {
        leave_caller()?;
    }
    // After the close above, which would take its fds too.
    let stop = signals::catch_stop().step(|| "stop signal pipe".into())?;
    let parent = watch_caller(&plan, parent_pid)?;
    if plan.new_session || detached {
        // Away from the caller's terminal: terminal signals reach only the
        // caller, which forwards them once.
        rustix::process::setsid().step(|| "setsid".into())?;
    }

    overlay::prepare_upper(&plan)?;
    let mut cgroup = create_cgroup(&plan, report)?;
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
    let mut logs = match (&lifecycle, detached) {
        (Some(l), true) => Some(Logs::create(&l.dir, l.log_limit)?),
        _ => None,
    };
    let control = match &lifecycle {
        Some(l) => Some(control::listen(&l.dir).step(|| "listen on the control socket".into())?),
        None => None,
    };
    let hold = match &lifecycle {
        Some(l) if l.hold => Some(
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .step(|| "pipe to hold the workload".into())?,
        ),
        _ => None,
    };
    let (hold_read, hold_write) = match hold {
        Some((r, w)) => (Some(r), Some(w)),
        None => (None, None),
    };

    let (go_read, go_write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).step(|| "pipe".into())?;
    // PID 1 and the workload report to us; we relay to the caller.
    let (inner, inner_child) = sys::seqpacket_pair().step(|| "socketpair".into())?;
    report.progress(|| "clone3 into new namespaces".into());
    let flags = plan.clone_flags;
    let (pid, pidfd) = match sys::clone3(flags, cgroup_fd.as_ref().map(|f| f.as_raw_fd())) {
        Ok(Forked::Child) => {
            drop((go_write, inner, stop, cgroup_fd, control, hold_write));
            if let Some(fd) = alive_fd {
                // SAFETY: the alive lock's fd is ours; the sandbox must not
                // keep the supervisor's lock.
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
            }
            signals::forget_stop();
            if let Some(l) = &logs {
                if let Err(e) = l.attach_stdio() {
                    report.failed(&SetupError::io("runner: log pipes", &e));
                    std::process::exit(125);
                }
            }
            drop(logs);
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
            child::main(plan, go_read, report, hold_read)
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
    let started = Instant::now();
    drop((go_read, inner_child, cgroup_fd, hold_read));
    if let Some(l) = logs.as_mut() {
        l.close_writers();
    }

    let early = |e: SetupError| {
        kill_and_reap(&pidfd, pid);
        e
    };
    // Nothing of a sandbox may outlive its supervisor. Our init dies with
    // it (parent-death signal, armed after its last uid change), which
    // ends the PID namespace, and a dead supervisor's `alive` lock is
    // released, so the state shows it stopped. Where that is not enough —
    // cgroups to remove, or a workload as PID 1 that may clear its
    // parent-death signal — a guard kills what is left.
    let needs_guard = cgroup.is_some() || plan.init == crate::spec::InitMode::Workload;
    let guard = if needs_guard {
        Some(guard::spawn(&pidfd, cgroup.as_ref(), state_dir.as_ref(), alive_fd).map_err(early)?)
    } else {
        None
    };
    if plan.user_ns() {
        report.progress(|| "write id maps".into());
        idmap::write_maps(&plan, pid).map_err(early)?;
    }
    if let Some(cg) = &cgroup {
        cg.add_v1(pid).map_err(early)?;
    }
    if let Some(sb) = &state_dir {
        record_start(sb, &plan, pid, cgroup.as_ref()).map_err(early)?;
    }
    // Not before the maps are written: /proc/PID of a non-dumpable child
    // belongs to the host's root, and a rootless caller could not write them.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .step(|| "make the supervisor non-dumpable".into())?;
    rustix::io::write(&go_write, b"g").step(|| "start the sandbox".into())?;
    // go_write stays open until we exit: PID 1 watches it to learn whether
    // we died before its parent-death signal was armed.
    signals::forward_to(pid, plan.new_session);

    let deadline = plan
        .timeout_ms
        .and_then(|t| started.checked_add(Duration::from_millis(t)));
    // Recorded and carried out: the watch needs none of it.
    drop(plan);
    let mut w = Watch {
        report,
        pid,
        pidfd: &pidfd,
        stop: &stop,
        parent,
        cgroup: cgroup.as_ref(),
        deadline,
        timed_out: false,
        killed: None,
        inner: Some(inner),
        control,
        logs,
        hold: hold_write,
        state_dir: state_dir.as_ref(),
        namespaces: Vec::new(),
        tty: None,
        failed: false,
        exec_seen: false,
        announced: false,
    };
    let mut watching = false;
    while !w.step()? {
        if w.inner.is_none() && !watching {
            // Setup is over; from here on we only watch, maybe for the
            // sandbox's whole life.
            watching = true;
            crate::sys::release_free_memory();
        }
    }
    let (failed, timed_out, killed) = (w.failed, w.timed_out, w.killed.take());
    drop(w);

    let (code, exit) = reap(pid, timed_out, cgroup.as_ref(), started.elapsed())?;
    if let Some(cg) = cgroup.as_mut() {
        cg.remove();
    }
    if let Some(sb) = &state_dir {
        let _ = sb.update(|st| {
            st.status = Status::Stopped;
            st.finished = Some(crate::state::now());
            st.reason = killed.or(st.reason.take());
            st.exit = (!failed).then(|| exit.clone());
        });
    }
    if let Some(g) = guard {
        g.release();
    }
    if let (Some(sb), Some(l)) = (&state_dir, &lifecycle) {
        if l.remove_on_exit {
            let _ = sb.remove();
        }
    }
    if !failed {
        report.send(&Report::Exited(exit));
    }
    Ok(code)
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
    let bytes = serde_json::to_vec(plan).expect("plans serialize");
    sb.write_atomic("plan.json", &bytes).map_err(state_err)?;
    sb.update(|st| {
        st.pid = Some(pid);
        st.supervisor_pid = Some(std::process::id() as i32);
        st.cgroup = cgroup.map(Cgroup::paths);
    })
    .map_err(state_err)
}

/// Reap PID 1 and say how the sandbox ended.
fn reap(
    pid: i32,
    timed_out: bool,
    cgroup: Option<&Cgroup>,
    wall: Duration,
) -> Result<(i32, ExitReport), SetupError> {
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
    Ok((
        code,
        exit_report(code, status, timed_out, cgroup, &usage, wall),
    ))
}

/// The report fd number, as an OwnedFd to dup onto. Never dropped: the
/// number stays ours after the dup.
fn unsafe_report_fd() -> std::mem::ManuallyDrop<OwnedFd> {
    // SAFETY: the report fd is open in this process (the caller's socket);
    // ManuallyDrop makes sure this handle never closes it.
    std::mem::ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(report_fd()) })
}

/// Everything the supervisor watches while the sandbox lives. Each
/// `step` polls once and handles what is ready; it returns true once PID 1
/// has ended (and the setup reports are all relayed).
struct Watch<'a> {
    report: Reporter<'a>,
    pid: i32,
    pidfd: &'a OwnedFd,
    stop: &'a OwnedFd,
    parent: Option<OwnedFd>,
    cgroup: Option<&'a Cgroup>,
    deadline: Option<Instant>,
    timed_out: bool,
    /// Why the sandbox was killed, once it was.
    killed: Option<String>,
    /// PID 1's and the workload's reports, until the workload's exec.
    inner: Option<OwnedFd>,
    control: Option<OwnedFd>,
    logs: Option<Logs>,
    /// Releases a created sandbox's workload.
    hold: Option<OwnedFd>,
    state_dir: Option<&'a SandboxDir>,
    /// PID 1's namespaces, for `exec` (a sandbox with state).
    namespaces: Vec<(crate::namespace::Namespace, OwnedFd)>,
    /// The workload's terminal, proxied to our stdin and stdout.
    tty: Option<tty::Proxy>,
    failed: bool,
    exec_seen: bool,
    /// The caller has been told the sandbox started (or is created).
    announced: bool,
}

/// Tokens for the fds of one poll.
#[derive(Clone, Copy, PartialEq)]
enum Src {
    Pid,
    Stop,
    Parent,
    Inner,
    Control,
    Log(usize),
    Tty(tty::Ready),
}

impl Watch<'_> {
    fn kill(&mut self, why: &str) {
        if self.killed.is_none() {
            self.killed = Some(why.to_string());
            kill_sandbox(self.cgroup, self.pidfd);
        }
    }

    fn timeout(&mut self) -> Option<Timespec> {
        let d = self.deadline?;
        if self.timed_out {
            return None;
        }
        let left = d.saturating_duration_since(Instant::now());
        if left.is_zero() {
            self.timed_out = true;
            self.kill("it reached its timeout");
            return None;
        }
        Some(Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        })
    }

    fn step(&mut self) -> Result<bool, SetupError> {
        let timeout = self.timeout();
        let mut srcs = vec![Src::Stop];
        let mut fds = vec![PollFd::new(self.stop, PollFlags::IN)];
        // The setup reports first: PID 1 may end right after the last one.
        if let Some(i) = &self.inner {
            srcs.push(Src::Inner);
            fds.push(PollFd::new(i, PollFlags::IN));
        } else {
            srcs.push(Src::Pid);
            fds.push(PollFd::new(self.pidfd, PollFlags::IN));
        }
        if let Some(p) = &self.parent {
            srcs.push(Src::Parent);
            fds.push(PollFd::new(p, PollFlags::IN));
        }
        if let Some(c) = &self.control {
            srcs.push(Src::Control);
            fds.push(PollFd::new(c, PollFlags::IN));
        }
        if let Some(l) = &self.logs {
            for (i, fd) in l.open_fds() {
                srcs.push(Src::Log(i));
                fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
            }
        }
        if let Some(t) = &self.tty {
            for (r, fd) in t.fds() {
                srcs.push(Src::Tty(r));
                fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
            }
        }
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(SetupError::io("wait for the sandbox", &e.into())),
        }
        let ready: Vec<Src> = srcs
            .iter()
            .zip(&fds)
            .filter(|(_, f)| !f.revents().is_empty())
            .map(|(s, _)| *s)
            .collect();
        drop(fds);
        let mut ended = false;
        for src in ready {
            match src {
                Src::Stop => {
                    let mut b = [0u8; 16];
                    let _ = rustix::io::read(self.stop, &mut b);
                }
                Src::Parent => {
                    // Stop watching it; it stays readable.
                    self.parent = None;
                    self.kill("its caller ended");
                }
                Src::Inner => self.relay()?,
                Src::Control => self.serve(),
                Src::Log(i) => {
                    if let Some(l) = self.logs.as_mut() {
                        l.drain(i);
                    }
                }
                Src::Tty(r) => {
                    if let Some(t) = self.tty.as_mut() {
                        t.handle(r);
                    }
                }
                Src::Pid => ended = true,
            }
        }
        if signals::stop_requested() {
            self.kill("it was stopped");
        }
        if ended {
            self.drain_logs();
            if let Some(t) = self.tty.as_mut() {
                t.drain();
            }
        }
        Ok(ended)
    }

    fn drain_logs(&mut self) {
        if let Some(l) = self.logs.as_mut() {
            for i in 0..l.streams.len() {
                if !l.streams[i].open {
                    continue;
                }
                while sys::readable_now(l.streams[i].read.as_fd()) && l.drain(i) {}
            }
        }
    }

    /// One setup report from PID 1 or the workload, passed on to the caller.
    fn relay(&mut self) -> Result<(), SetupError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let mut buf = vec![0u8; 1 << 16];
        let got = sys::recv_with_fds(inner, &mut buf[..], rustix::net::RecvFlags::DONTWAIT)
            .map_err(|e| rustix::io::Errno::from_io_error(&e));
        match got {
            Ok((0, _)) | Err(Some(rustix::io::Errno::CONNRESET)) => self.setup_ended(),
            Ok((n, fds)) => {
                match serde_json::from_slice::<Report>(&buf[..n]) {
                    Ok(Report::Failed(_)) => self.failed = true,
                    Ok(Report::Exec) => self.exec_seen = true,
                    Ok(Report::Held) => {
                        self.announce(Status::Created);
                        return Ok(());
                    }
                    Ok(Report::Namespaces { names }) => {
                        self.namespaces = names.into_iter().zip(fds).collect();
                        return Ok(());
                    }
                    Ok(Report::Terminal) => {
                        let master = fds
                            .into_iter()
                            .next()
                            .ok_or_else(|| SetupError::new("tty", "PID 1 sent no terminal"))?;
                        self.tty = Some(tty::Proxy::new(master)?);
                        return Ok(());
                    }
                    _ => {}
                }
                let _ = rustix::net::send(
                    self.report.fd(),
                    &buf[..n],
                    rustix::net::SendFlags::NOSIGNAL,
                );
            }
            Err(Some(rustix::io::Errno::INTR)) | Err(Some(rustix::io::Errno::AGAIN)) => {}
            Err(_) => self.setup_ended(),
        }
        Ok(())
    }

    /// The workload's exec closed the report socket (or setup died).
    fn setup_ended(&mut self) {
        self.inner = None;
        if !self.failed && !self.exec_seen {
            // PID 1 went away without a word (killed, out of memory): setup
            // did not finish, whatever its exit status will say.
            self.failed = true;
            self.report.failed(&SetupError::new(
                "setup",
                "the sandbox's PID 1 ended before starting the workload (killed, or out of memory?)",
            ));
        }
        if !self.failed {
            self.announce(Status::Running);
        }
    }

    /// Tell the caller (and the state file) the sandbox is up.
    fn announce(&mut self, status: Status) {
        if let Some(sb) = self.state_dir {
            let _ = sb.update(|st| {
                st.status = status;
                if status == Status::Running {
                    st.started = Some(crate::state::now());
                }
            });
        }
        if !self.announced {
            self.announced = true;
            self.report.send(&Report::Started {
                pid: self.pid,
                freezer: self.cgroup.and_then(Cgroup::freezer_file),
            });
        }
    }

    fn serve(&mut self) {
        let Some(listener) = &self.control else {
            return;
        };
        let Some(incoming) = control::accept(listener) else {
            return;
        };
        if incoming.request == Request::Namespaces {
            incoming.reply_namespaces(&self.namespaces);
            return;
        }
        let result = match incoming.request {
            Request::Signal { signal } => {
                // SAFETY: kill takes no pointers; PID 1 is our unreaped child.
                if unsafe { libc::kill(self.pid, signal) } == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error().to_string())
                }
            }
            Request::Kill => {
                self.kill("it was killed");
                Ok(())
            }
            Request::Start => match self.hold.take() {
                Some(w) => rustix::io::write(&w, b"s")
                    .map(drop)
                    .map_err(|e| e.to_string()),
                None => Err("it was started already".into()),
            },
            Request::Namespaces => unreachable!("answered above"),
        };
        incoming.reply(result);
    }
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
    timed_out: bool,
    cgroup: Option<&Cgroup>,
    usage: &libc::rusage,
    wall: Duration,
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
