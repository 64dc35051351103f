//! The supervisor's watch over a running sandbox: one poll over PID 1's
//! pidfd, the stop signal, the caller (unless detached), the timeout, the
//! setup reports until the workload's exec, the control socket, a
//! detached workload's output (and terminal) and a proxied terminal,
//! until PID 1 ends.

use super::ending::kill_sandbox;
use super::logs::{self, Logs};
use super::report::{Report, Reporter, SetupError};
use super::{signals, tty};
use crate::cgroup::Cgroup;
use crate::state::control::{self, Request};
use crate::state::{SandboxDir, Status};
use crate::sys;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use std::os::fd::OwnedFd;
use std::time::Instant;

/// OCI's prestart and createRuntime hooks, their state, and the
/// namespaces they run in (the runtime's, which the supervisor left).
pub(super) struct RuntimeHooks {
    pub hooks: Vec<crate::plan::Hook>,
    pub state: String,
    pub namespaces: Vec<std::os::fd::OwnedFd>,
}

/// Everything the supervisor watches while the sandbox lives. Each
/// `step` polls once and handles what is ready; it returns true once PID 1
/// has ended (and the setup reports are all relayed).
pub(super) struct Watch<'a> {
    pub(super) report: Reporter<'a>,
    pub(super) pid: i32,
    pub(super) pidfd: &'a OwnedFd,
    pub(super) stop: &'a OwnedFd,
    pub(super) parent: Option<OwnedFd>,
    pub(super) cgroup: Option<&'a Cgroup>,
    pub(super) deadline: Option<Instant>,
    pub(super) timed_out: bool,
    /// Why the sandbox was killed, once it was.
    pub(super) killed: Option<String>,
    /// PID 1's and the workload's reports, until the workload's exec.
    pub(super) inner: Option<OwnedFd>,
    /// Where those reports are received, made at the first: one buffer
    /// for all of them (each of their own was a 64 KiB mapping made,
    /// faulted in and unmapped), and gone with `inner`.
    pub(super) inbox: Vec<u8>,
    pub(super) control: Option<OwnedFd>,
    /// Callers on the control socket whose request has not come yet.
    pub(super) waiting: control::Waiting,
    pub(super) logs: Option<Logs>,
    /// Releases a created sandbox's workload.
    pub(super) hold: Option<OwnedFd>,
    /// The timeout of a created sandbox, counted from its start: its
    /// `deadline` is set then (a sandbox created now and started in an
    /// hour has its whole timeout to run).
    pub(super) held_timeout: Option<std::time::Duration>,
    pub(super) state_dir: Option<&'a SandboxDir>,
    /// PID 1's namespaces, for `exec` (a sandbox with state).
    pub(super) namespaces: Vec<(crate::namespace::Namespace, OwnedFd)>,
    /// PID 1 is airlock's init, which passes on only the signals in
    /// `signals::forwarded` (a signal from outside its namespace that it
    /// has no handler for, the kernel drops).
    pub(super) own_init: bool,
    /// The workload's terminal, proxied to our stdin and stdout.
    pub(super) tty: Option<tty::Proxy>,
    /// Where a terminal's master goes instead of being proxied.
    pub(super) console_socket: Option<std::path::PathBuf>,
    pub(super) console_size: Option<(u16, u16)>,
    pub(super) failed: bool,
    /// Why the workload of a created sandbox failed after `start`.
    pub(super) failed_after_create: Option<String>,
    pub(super) exec_seen: bool,
    /// The caller has been told the sandbox started (or is created).
    pub(super) announced: bool,
    /// The plan's runtime hooks and the state they get, run when PID 1
    /// says it waits for them (`Report::RuntimeHooks`).
    pub(super) runtime_hooks: Option<RuntimeHooks>,
    /// Readable when job control asked us to stop (Ctrl-Z): caught only
    /// where we are in the caller's foreground (`signals::catch_suspend`).
    pub(super) suspend: Option<OwnedFd>,
}

/// Tokens for the fds of one poll.
#[derive(Clone, Copy, PartialEq)]
enum Src {
    Pid,
    Stop,
    Suspend,
    Parent,
    Inner,
    Control,
    Waiting,
    Log(logs::Source),
    Tty(tty::Ready),
}

/// How the watch ended.
pub(super) struct Outcome {
    /// Setup failed (the caller was told why).
    pub failed: bool,
    pub timed_out: bool,
    /// Setup had finished (the sandbox was created) and what `start`
    /// released failed: why. The sandbox ran, so its exit is recorded.
    pub failed_after_create: Option<String>,
    /// Why the sandbox was killed, if it was.
    pub killed: Option<String>,
}

/// What is left until `deadline`, as poll takes it; `None` once it has
/// passed.
pub(super) fn time_left(deadline: Instant) -> Option<Timespec> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then(|| Timespec {
        tv_sec: left.as_secs() as i64,
        tv_nsec: left.subsec_nanos() as i64,
    })
}

impl<'a> Watch<'a> {
    /// A watch over PID 1 and the stop signal only; the caller fills in
    /// what else this sandbox has.
    pub(super) fn new(
        report: Reporter<'a>,
        pid: i32,
        pidfd: &'a OwnedFd,
        stop: &'a OwnedFd,
        cgroup: Option<&'a Cgroup>,
        state_dir: Option<&'a SandboxDir>,
    ) -> Self {
        Watch {
            report,
            pid,
            pidfd,
            stop,
            parent: None,
            cgroup,
            deadline: None,
            timed_out: false,
            killed: None,
            inner: None,
            control: None,
            waiting: control::Waiting::default(),
            logs: None,
            hold: None,
            held_timeout: None,
            state_dir,
            namespaces: Vec::new(),
            tty: None,
            console_socket: None,
            console_size: None,
            failed: false,
            failed_after_create: None,
            exec_seen: false,
            announced: false,
            own_init: false,
            inbox: Vec::new(),
            runtime_hooks: None,
            suspend: None,
        }
    }

    /// Watch until PID 1 has ended.
    pub(super) fn run(mut self) -> Result<Outcome, SetupError> {
        let mut watching = false;
        while !self.step()? {
            if self.inner.is_none() && !watching {
                // Setup is over; from here on we only watch, maybe for
                // the sandbox's whole life.
                watching = true;
                sys::release_free_memory();
            }
        }
        Ok(Outcome {
            failed: self.failed,
            timed_out: self.timed_out,
            failed_after_create: self.failed_after_create.take(),
            killed: self.killed.take(),
        })
    }

    /// Has PID 1 ended (its pidfd readable), whatever this step's poll
    /// said?
    fn pid1_ended(&self) -> bool {
        let mut fds = [PollFd::new(self.pidfd, PollFlags::IN)];
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        poll(&mut fds, Some(&now)).is_ok_and(|n| n > 0)
    }

    /// Job control stops us (Ctrl-Z): the sandbox stops too, frozen
    /// through its cgroup, and goes on when we are continued (`fg`, `bg`;
    /// SIGCONT is passed on to the workload as well), as the processes of
    /// a job do. A sandbox already paused stays the pauser's to thaw.
    ///
    /// Without a cgroup to freeze, Ctrl-Z is refused with a word: stopped
    /// alone, we would leave the sandbox running unwatched, its timeout
    /// and the caller's end unseen. A read or write of the caller's
    /// terminal from the background still stops us (the terminal is not
    /// ours to use then, and the kernel would only send it again).
    fn suspend(&mut self) {
        if let Some(s) = &self.suspend {
            let mut b = [0u8; 16];
            while rustix::io::read(s, &mut b).is_ok_and(|n| n > 0) {}
        }
        let freezer = self.cgroup.and_then(|c| c.freezer_file());
        if freezer.is_none() && signals::suspend_signal() == libc::SIGTSTP {
            eprintln!("airlock: the sandbox has no cgroup to freeze, so it is not stopped (a limit such as --pids gives it one)");
            return;
        }
        let froze = freezer
            .as_deref()
            .filter(|f| !crate::cgroup::freeze_asked(f))
            .is_some_and(|f| crate::cgroup::set_frozen(f, true).is_ok());
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::STOP);
        if let (true, Some(f)) = (froze, freezer.as_deref()) {
            let _ = crate::cgroup::set_frozen(f, false);
        }
    }

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
        let left = time_left(d);
        if left.is_none() {
            self.timed_out = true;
            self.kill("it reached its timeout");
        }
        left
    }

    fn step(&mut self) -> Result<bool, SetupError> {
        let timeout = match (self.timeout(), self.waiting.deadline()) {
            (t, None) => t,
            // A caller's request is waited for a second at most.
            (t, Some(d)) => {
                let left = time_left(d).unwrap_or_default();
                Some(t.map_or(left, |t| {
                    match (t.tv_sec, t.tv_nsec) < (left.tv_sec, left.tv_nsec) {
                        true => t,
                        false => left,
                    }
                }))
            }
        };
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
        if let Some(s) = &self.suspend {
            srcs.push(Src::Suspend);
            fds.push(PollFd::new(s, PollFlags::IN));
        }
        if let Some(c) = &self.control {
            srcs.push(Src::Control);
            fds.push(PollFd::new(c, PollFlags::IN));
        }
        for c in self.waiting.fds() {
            srcs.push(Src::Waiting);
            fds.push(PollFd::from_borrowed_fd(c, PollFlags::IN));
        }
        if let Some(l) = &self.logs {
            for (s, fd) in l.open_fds() {
                srcs.push(Src::Log(s));
                fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
            }
        }
        if let Some(t) = &self.tty {
            for (r, fd, flags) in t.fds() {
                srcs.push(Src::Tty(r));
                fds.push(PollFd::from_borrowed_fd(fd, flags));
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
        let waiting_ready: Vec<bool> = srcs
            .iter()
            .zip(&fds)
            .filter(|(s, _)| **s == Src::Waiting)
            .map(|(_, f)| !f.revents().is_empty())
            .collect();
        drop(fds);
        // Every step: those that waited too long are let go too.
        for incoming in self.waiting.take_ready(&waiting_ready) {
            self.answer(incoming);
        }
        // PID 1 ended in this very step (or before it: a signal cuts the
        // poll short, its results unread): a stop or the caller's end that
        // came with it finds nothing to stop, and the end is its own (not
        // "it was stopped", and an OOM kill still reads as one).
        let mut ended = ready.contains(&Src::Pid);
        // Asked only when something would kill: a step for a log line or
        // a terminal's bytes costs no extra syscall.
        let killing = signals::stop_requested() || ready.contains(&Src::Parent);
        let over = ended || (killing && self.pid1_ended());
        for src in ready {
            match src {
                Src::Stop => {
                    let mut b = [0u8; 16];
                    let _ = rustix::io::read(self.stop, &mut b);
                }
                Src::Suspend => self.suspend(),
                Src::Parent => {
                    // Stop watching it; it stays readable.
                    self.parent = None;
                    if !over {
                        self.kill("its caller ended");
                    }
                }
                Src::Inner => self.relay()?,
                Src::Control => self.serve(),
                Src::Waiting => {} // answered above
                Src::Log(s) => {
                    if let Some(l) = self.logs.as_mut() {
                        l.drain(s);
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
        if signals::stop_requested() && !over {
            self.kill("it was stopped");
        }
        if ended {
            if let Some(l) = self.logs.as_mut() {
                l.drain_all();
            }
            if let Some(t) = self.tty.as_mut() {
                t.drain(self.killed.is_none());
            }
        }
        Ok(ended)
    }

    /// One setup report from PID 1 or the workload, passed on to the caller.
    fn relay(&mut self) -> Result<(), SetupError> {
        let mut buf = std::mem::take(&mut self.inbox);
        if buf.is_empty() {
            buf = vec![0u8; 1 << 16];
        }
        let relayed = self.relay_from(&mut buf);
        if self.inner.is_some() {
            self.inbox = buf;
        }
        relayed
    }

    fn relay_from(&mut self, buf: &mut [u8]) -> Result<(), SetupError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let got = sys::recv_with_fds(inner, &mut buf[..], rustix::net::RecvFlags::DONTWAIT)
            .map_err(|e| rustix::io::Errno::from_io_error(&e));
        match got {
            Ok((0, _)) | Err(Some(rustix::io::Errno::CONNRESET)) => self.setup_ended(),
            Ok((n, fds)) => {
                match serde_json::from_slice::<Report>(&buf[..n]) {
                    Ok(Report::Failed(e)) => {
                        self.failed = true;
                        if self.announced {
                            self.failed_after_create = Some(e.to_string());
                        }
                    }
                    Ok(Report::Exec) => self.exec_seen = true,
                    Ok(Report::RuntimeHooks) => {
                        self.run_runtime_hooks();
                        return Ok(());
                    }
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
                        // Detached, it is logged and attached to; attended,
                        // proxied to the caller.
                        match (&self.console_socket, self.logs.as_mut()) {
                            (Some(path), _) => {
                                // Before the client has it: a size it sets
                                // itself then is not raced.
                                if let Some((rows, cols)) = self.console_size {
                                    crate::terminal::set_size(&master, rows, cols).map_err(
                                        |e| SetupError::io("tty: the console's size", &e),
                                    )?;
                                }
                                tty::send_to_console_socket(path, master)?
                            }
                            (None, Some(logs)) => logs.set_terminal(master),
                            (None, None) => self.tty = Some(tty::Proxy::new(master)?),
                        }
                        return Ok(());
                    }
                    _ => {}
                }
                self.report.relay(&buf[..n]);
            }
            Err(Some(rustix::io::Errno::INTR)) | Err(Some(rustix::io::Errno::AGAIN)) => {}
            Err(_) => self.setup_ended(),
        }
        Ok(())
    }

    /// prestart and createRuntime, here in the host's namespaces, while
    /// PID 1 waits: it goes on when told, or is killed when one fails
    /// (whose error is the setup's).
    fn run_runtime_hooks(&mut self) {
        let Some(RuntimeHooks {
            hooks,
            state,
            namespaces,
        }) = self.runtime_hooks.take()
        else {
            return;
        };
        // A stop that came with PID 1's report was read from its pipe
        // already, and would not abort a hook that never ends.
        if signals::stop_requested() || self.killed.is_some() {
            self.failed = true;
            self.report.failed(&SetupError::new(
                "hooks",
                "stopped before its runtime hooks ran",
            ));
            self.kill("it was stopped");
            return;
        }
        use std::os::fd::AsFd;
        let back: Vec<_> = namespaces.iter().map(|fd| fd.as_fd()).collect();
        let place = super::hooks::Place::Host { namespaces: &back };
        let mut abort = vec![self.stop.as_fd(), self.pidfd.as_fd()];
        abort.extend(self.parent.as_ref().map(|p| p.as_fd()));
        // A kill on the control socket ends the hook; any other call is
        // told the sandbox is still being created.
        let listener = self.control.as_ref();
        let mut ask = || {
            // None: no call could be taken (EMFILE), and the socket would
            // wake the wait at once, again and again: it stops watching
            // (a stop still ends the hook). A call that brought no request
            // (another user's, a probe that only connects, one it cannot
            // read) was answered: the hook goes on, and so does the watch,
            // for a kill that comes after it.
            let incoming = match control::accept(listener?) {
                Err(_) => return None,
                Ok(None) => return Some(false),
                Ok(Some(incoming)) => incoming,
            };
            let kill = matches!(incoming.request, control::Request::Kill);
            incoming.reply(match kill {
                true => Ok(()),
                false => Err("the sandbox is being created: its runtime hooks run".into()),
            });
            Some(kill)
        };
        let control = listener.map(|l| (l.as_fd(), &mut ask as &mut dyn FnMut() -> Option<bool>));
        match super::hooks::run(
            &hooks, &state, "creating", self.pid, &place, &abort, control,
        ) {
            Ok(()) => {
                if let Some(inner) = &self.inner {
                    let _ = rustix::net::send(inner, b"go", rustix::net::SendFlags::empty());
                }
            }
            Err(e) => {
                self.failed = true;
                self.report.failed(&e);
                self.kill("a runtime hook failed");
            }
        }
    }

    /// The workload's exec closed the report socket (or setup died).
    fn setup_ended(&mut self) {
        self.inner = None;
        if !self.failed && !self.exec_seen {
            // PID 1 went away without a word (killed, out of memory): setup
            // did not finish, whatever its exit status will say.
            self.failed = true;
            let why = if self.timed_out {
                "the timeout expired before the workload started (setup took longer than `timeout`)"
            } else {
                "the sandbox's PID 1 ended before starting the workload (killed, out of memory, or a custom seccomp profile that denies execve?)"
            };
            self.report.failed(&SetupError::new("setup", why));
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

    /// Killed, or PID 1 gone (its pidfd readable), though not yet seen.
    fn ending(&self) -> bool {
        let mut fds = [PollFd::new(self.pidfd, PollFlags::IN)];
        let gone = poll(&mut fds, Some(&Timespec::default())).is_ok_and(|n| n > 0);
        self.killed.is_some() || gone
    }

    fn serve(&mut self) {
        let Some(listener) = &self.control else {
            return;
        };
        if let Some(incoming) = self.waiting.accept(listener) {
            self.answer(incoming);
        }
    }

    fn answer(&mut self, incoming: control::Incoming) {
        match incoming.request {
            // Not those of a sandbox on its way out: a process joining
            // them would run in a cgroup being removed, or fail to fork
            // into a PID namespace whose init is gone, and say so badly.
            Request::Namespaces if self.ending() => {
                return incoming.reply(Err("the sandbox has stopped".into()))
            }
            // Nor before it is created: PID 1 sends them before it builds
            // the root, and a process joining the mount namespace then
            // would stand in the host's tree.
            Request::Namespaces if !self.announced => {
                return incoming.reply(Err("the sandbox is still being set up".into()))
            }
            Request::Namespaces => return incoming.reply_namespaces(&self.namespaces),
            Request::Attach => {
                return incoming.reply_attach(self.logs.as_ref().and_then(Logs::attach_fd))
            }
            _ => {}
        }
        let result = match incoming.request {
            // Decided here, where a start is too: the signal ends what it
            // reaches, never a workload that started meanwhile.
            Request::Signal { signal } if self.hold.is_some() && signals::ends_held(signal) => {
                self.kill("it was signalled before it started");
                Ok(())
            }
            // The rest a held init ignores, as runc's does (Go's runtime
            // ignores USR1, ...): delivered, the held workload, whose
            // signals are back to their defaults already, would end by
            // most of them, unrecorded.
            Request::Signal { .. } if self.hold.is_some() => Ok(()),
            Request::Signal { signal }
                if self.own_init && signal != libc::SIGKILL && signals::kept(signal).is_some() =>
            {
                let why = signals::kept(signal).unwrap_or_default();
                Err(format!(
                    "airlock's init, PID 1, does not pass signal {signal} on to the workload: {why}"
                ))
            }
            // A SIGKILL asked for (the OCI runtime's `kill ID KILL`) is a
            // kill on request, recorded so (an earlier OOM kill of some
            // process must not take the blame), of all the sandbox holds:
            // with its own PID namespace that is what it does anyway.
            Request::Signal {
                signal: libc::SIGKILL,
            } => {
                self.kill("it was killed");
                Ok(())
            }
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
                Some(w) => {
                    if let Some(t) = self.held_timeout.take() {
                        self.deadline = Instant::now().checked_add(t);
                    }
                    rustix::io::write(&w, b"s")
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
                None => Err("it was started already".into()),
            },
            Request::Namespaces | Request::Attach => unreachable!("answered above"),
        };
        incoming.reply(result);
    }
}
