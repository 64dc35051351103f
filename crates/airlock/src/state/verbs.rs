//! What every front end does to a sandbox with state, once: signal, stop
//! (SIGTERM, a grace period, then kill everything), kill and delete. The
//! CLI's lifecycle verbs and the daemon's calls are argument handling
//! over these.

use super::control::Request;
use super::{SandboxDir, State, StateError, Status};
use std::time::Duration;

impl SandboxDir {
    /// Release a created sandbox's workload, and wait (a few seconds at
    /// most) until its supervisor records that it runs, so the caller's
    /// next look sees it running. Takes the sandbox's lock.
    pub fn start(&self) -> Result<(), StateError> {
        let lock = self.lock()?;
        self.start_holding(&lock)
    }

    /// [`SandboxDir::start`] by a caller that holds the sandbox's lock
    /// already (from [`SandboxDir::try_lock`]).
    pub fn start_holding(&self, _lock: &std::fs::File) -> Result<(), StateError> {
        let st = self.state()?;
        if st.status != Status::Created {
            return Err(StateError::WrongStatus {
                name: st.name,
                status: st.status,
                what: "only a created sandbox can be started".into(),
            });
        }
        self.request(&Request::Start)?;
        let end = std::time::Instant::now() + Duration::from_secs(5);
        let mut pause = super::Backoff::new(Duration::from_millis(2));
        while std::time::Instant::now() < end {
            match self.state() {
                Ok(st) if st.status == Status::Created => pause.pause_until(end),
                Ok(_) => break,
                // Started, ended and removed on its exit before this look.
                Err(StateError::Removed(_)) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Send `signal` to the workload; SIGKILL kills every process of the
    /// sandbox. A sandbox that is not running has nothing to signal.
    pub fn signal(&self, signal: i32) -> Result<(), StateError> {
        let st = self.state()?;
        if st.status == Status::Stopped {
            return Err(StateError::WrongStatus {
                name: st.name,
                status: st.status,
                what: "there is nothing to signal".into(),
            });
        }
        if signal == libc::SIGKILL {
            return self.kill_all();
        }
        self.request(&Request::Signal { signal }).or_else(|e| {
            // Its supervisor lets its socket go before it records the
            // end (after reaping and removing the cgroups): one ending
            // as we asked has nothing to signal, said as such. Any other
            // answer (a signal init keeps, a refusal) is said at once.
            let socket_gone = matches!(&e, StateError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::NotConnected);
            if !socket_gone || !self.wait_ended(Some(SIGNAL_WAIT)) {
                return Err(e);
            }
            let st = self.state()?;
            Err(StateError::WrongStatus {
                name: st.name,
                status: Status::Stopped,
                what: "there is nothing to signal".into(),
            })
        })
    }

    /// SIGTERM (forwarded to the workload), up to `grace` for it to end,
    /// then the whole sandbox is killed. A created sandbox, whose workload
    /// never ran, is killed at once. Takes the sandbox's lock.
    pub fn stop(&self, grace: Duration) -> Result<State, StateError> {
        let _lock = self.lock()?;
        let before = self.state()?;
        if self.terminate()? && self.wait_ended(Some(grace)) {
            return self.state_after_end(&before);
        }
        self.kill_all()?;
        self.state_after_end(&before)
    }

    /// The state once the sandbox has ended; one that took its directory
    /// along (remove-on-exit) ended as `before` was, stopped.
    fn state_after_end(&self, before: &State) -> Result<State, StateError> {
        match self.state() {
            Err(_) if !self.dir.exists() => Ok(State {
                status: Status::Stopped,
                ..before.clone()
            }),
            other => other,
        }
    }

    /// A stop's first step, under the sandbox's lock: SIGTERM to a
    /// running workload. True when the caller should give it its grace
    /// period before [`SandboxDir::kill_all`] (which a stopped sandbox
    /// needs no more than a created one needs the grace).
    pub fn terminate(&self) -> Result<bool, StateError> {
        if self.state()?.status != Status::Running {
            return Ok(false);
        }
        let _ = self.request(&Request::Signal {
            signal: libc::SIGTERM,
        });
        Ok(true)
    }

    /// Kill every process of the sandbox and wait for its supervisor to
    /// record the end, for at most [`KILL_WAIT`]. A supervisor that does
    /// not take the kill (stopped with SIGSTOP, stuck) is killed itself,
    /// as runc's `delete --force` kills a container's init: PID 1 dies
    /// with it (its parent-death signal) and the guard removes the
    /// cgroups. An error when even that does not end it, or when one that
    /// took the kill does not end in time (a process stuck in the kernel).
    pub fn kill_all(&self) -> Result<(), StateError> {
        let asked = self.request(&Request::Kill);
        // It may be ending meanwhile (its socket gone, its guard still
        // cleaning up); one that let the call time out has had its wait.
        let wait = match &asked {
            Err(StateError::Io { source, .. }) if source.kind() == std::io::ErrorKind::TimedOut => {
                Duration::ZERO
            }
            _ => KILL_WAIT,
        };
        if self.wait_ended(Some(wait)) {
            return Ok(());
        }
        // Only one that did not take the kill: one that took it and still
        // waits for its processes (stuck in the kernel, on a dead NFS
        // server) is doing its work, and keeps the record of what is left.
        if asked.is_err() && self.kill_supervisor() && self.wait_ended(Some(KILL_WAIT)) {
            return Ok(());
        }
        Err(match asked {
            Err(e) => e,
            Ok(()) => StateError::Io {
                what: "wait for the end of",
                path: self.dir.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "its supervisor did not end within {} s of the kill (a process stuck in \
                         the kernel?)",
                        KILL_WAIT.as_secs()
                    ),
                ),
            },
        })
    }

    /// SIGKILL the sandbox's supervisor through a pidfd on its recorded
    /// pid, if that is still the supervisor's process: one that started
    /// when the supervisor did (a state from before that was recorded:
    /// one that holds this sandbox's directory, which only root can see
    /// of a supervisor, not being dumpable). True if the signal went.
    fn kill_supervisor(&self) -> bool {
        use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};
        let Ok(st) = self.state() else {
            return false;
        };
        let Some(pid) = st.supervisor_pid else {
            return false;
        };
        let Some(fd) = Pid::from_raw(pid).and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok())
        else {
            return false;
        };
        // Asked after the pidfd is open: a process that took the number
        // later is not the pidfd's.
        let ours = match st.supervisor_started {
            Some(t) => crate::sys::start_time(pid) == Some(t),
            None => self.held_by(pid),
        };
        ours && pidfd_send_signal(&fd, Signal::KILL).is_ok()
    }

    /// Remove a stopped sandbox, or a created one (nothing of its
    /// workload has run: its held process is killed, as docker's `rm` and
    /// runc's `delete` do); with `force`, kill a running one first. Takes
    /// the sandbox's lock. Returns its last state.
    pub fn delete(&self, force: bool) -> Result<State, StateError> {
        let lock = self.lock()?;
        self.delete_holding(&lock, force)
    }

    /// [`SandboxDir::delete`] by a caller that holds the sandbox's lock
    /// already (from [`SandboxDir::try_lock`]).
    pub fn delete_holding(&self, _lock: &std::fs::File, force: bool) -> Result<State, StateError> {
        let mut st = self.state()?;
        if st.status != Status::Stopped {
            if !force && st.status != Status::Created {
                return Err(StateError::WrongStatus {
                    name: st.name,
                    status: st.status,
                    what: "stop it first, or force the removal (airlock rm -f; Delete's force)"
                        .into(),
                });
            }
            self.kill_all()?;
            st = self.state_after_end(&st)?;
            if !self.dir.exists() {
                return Ok(st); // removed on its exit: nothing left to remove
            }
        }
        self.reclaim_cgroups(&st);
        match self.remove() {
            // Its supervisor removed it on its exit as we looked.
            Ok(()) | Err(StateError::Removed(_)) => Ok(st),
            Err(e) => Err(e),
        }
    }

    /// Kill what is left in the cgroups of a sandbox (`st`, as its state
    /// was judged) and remove them, when they are still its own: stopped
    /// by no one's record, its supervisor and guard were killed together
    /// (SIGKILL to their process group, a unit's last SIGKILL); recorded
    /// stopped with `cgroups_left`, its supervisor gave up their removal
    /// after a second (a process stuck in the kernel, a workload that
    /// forked faster than the kills). Nothing else would. For a remover
    /// to call before the sandbox's directory goes.
    pub fn reclaim_cgroups(&self, st: &State) {
        let Some(paths) = &st.cgroup else {
            return;
        };
        let Ok(recorded) = self.recorded() else {
            return;
        };
        if recorded.status != Status::Stopped || recorded.cgroups_left {
            crate::cgroup::Cgroup::adopt(paths).remove();
        }
    }
}

/// How long [`SandboxDir::signal`] gives a supervisor that did not answer
/// to show it was ending.
const SIGNAL_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long [`SandboxDir::kill_all`] waits for the supervisor to end.
pub const KILL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A signal by name (`TERM`, `SIGTERM`, case-insensitive), number
/// (1-64), or real-time name as podman numbers them (`RTMIN+3` is 37,
/// `RTMAX-1` 63: the kernel's, not glibc's, which keeps two for itself).
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let real_time = |base: &str, sign: i32, edge: i32| {
        let rest = name.strip_prefix(base)?;
        let off = match rest {
            "" => 0,
            _ => {
                let digits = rest.strip_prefix(if sign > 0 { '+' } else { '-' })?;
                // Digits only: no second sign, no spaces.
                if !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                digits.parse::<i32>().ok()?
            }
        };
        let n = edge + sign * off;
        (34..=64).contains(&n).then_some(n)
    };
    if let Some(n) = real_time("RTMIN", 1, 34).or_else(|| real_time("RTMAX", -1, 64)) {
        return Some(n);
    }
    let table = [
        ("HUP", libc::SIGHUP),
        ("INT", libc::SIGINT),
        ("QUIT", libc::SIGQUIT),
        ("KILL", libc::SIGKILL),
        ("USR1", libc::SIGUSR1),
        ("USR2", libc::SIGUSR2),
        ("TERM", libc::SIGTERM),
        ("ALRM", libc::SIGALRM),
        ("CONT", libc::SIGCONT),
        ("STOP", libc::SIGSTOP),
        ("WINCH", libc::SIGWINCH),
        ("PIPE", libc::SIGPIPE),
        ("CHLD", libc::SIGCHLD),
        ("CLD", libc::SIGCHLD),
        ("TSTP", libc::SIGTSTP),
        ("TTIN", libc::SIGTTIN),
        ("TTOU", libc::SIGTTOU),
        ("PWR", libc::SIGPWR),
        ("SYS", libc::SIGSYS),
        // The rest of what runc's table (Go's unix.SignalNum) names.
        ("ABRT", libc::SIGABRT),
        ("IOT", libc::SIGIOT),
        ("BUS", libc::SIGBUS),
        ("FPE", libc::SIGFPE),
        ("ILL", libc::SIGILL),
        ("SEGV", libc::SIGSEGV),
        ("TRAP", libc::SIGTRAP),
        ("URG", libc::SIGURG),
        ("XCPU", libc::SIGXCPU),
        ("XFSZ", libc::SIGXFSZ),
        ("VTALRM", libc::SIGVTALRM),
        ("PROF", libc::SIGPROF),
        ("IO", libc::SIGIO),
        ("POLL", libc::SIGPOLL),
        ("STKFLT", libc::SIGSTKFLT),
    ];
    table.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn signals_by_name_and_number() {
        use super::parse_signal;
        assert_eq!(parse_signal("TERM"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("sigkill"), Some(libc::SIGKILL));
        assert_eq!(parse_signal("10"), Some(10));
        assert_eq!(parse_signal("ABRT"), Some(libc::SIGABRT));
        assert_eq!(parse_signal("SIGSEGV"), Some(libc::SIGSEGV));
        assert_eq!(parse_signal("xcpu"), Some(libc::SIGXCPU));
        assert_eq!(parse_signal("CLD"), Some(libc::SIGCHLD));
        // Real-time signals by name, numbered as podman does.
        assert_eq!(parse_signal("RTMIN"), Some(34));
        assert_eq!(parse_signal("SIGRTMIN+3"), Some(37));
        assert_eq!(parse_signal("rtmin+30"), Some(64));
        assert_eq!(parse_signal("RTMAX"), Some(64));
        assert_eq!(parse_signal("SIGRTMAX-1"), Some(63));
        for bad in [
            "RTMIN+31", "RTMAX-31", "RTMIN-1", "RTMAX+1", "RTMIN++3", "RTMIN+", "RTMIN+-3",
            "RTMIN3",
        ] {
            assert_eq!(parse_signal(bad), None, "{bad}");
        }
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("65"), None);
        assert_eq!(parse_signal("BOGUS"), None);
    }
}
