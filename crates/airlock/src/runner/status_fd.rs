//! bubblewrap's `--info-fd` and `--json-status-fd`: JSON about the
//! sandbox, written by the supervisor to fds its caller gave it.
//!
//! Once PID 1 exists (before it is let go): its pid on the host as
//! `child-pid` and the ids of its namespaces (`pid-namespace`, ...), as
//! one object on the info fd, which is then closed, and as the first line
//! on the status fd. When the sandbox has ended, `{"exit-code": N}` (the
//! shell's encoding, 128+N for a signal) on the status fd, which is then
//! closed. PID 1 and the workload never hold either fd.
//!
//! `--sync-fd` is only held, by the supervisor, so it closes when the
//! supervisor exits: the sandbox is gone and cleaned up by then.
//! `--block-fd` is read (one byte, or its end) after the info is written
//! and before PID 1 is let go, so a caller can prepare what the sandbox
//! needs from outside (its network, say) with `child-pid` in hand.
//! bubblewrap's PID 1 reads it after its mounts instead; waiting here,
//! in the supervisor, keeps the caller's fd out of the sandbox and lets
//! a signal end the wait (PID 1 then has nothing set up to undo).

use crate::plan::{Plan, StatusFds};
use crate::report::{SetupError, StepExt};
use std::os::fd::{FromRawFd, OwnedFd};

/// The kinds of namespace bubblewrap names (as `<kind>-namespace`).
const KINDS: &[&str] = &["cgroup", "ipc", "mnt", "net", "pid", "uts"];

/// The object both fds get once PID 1 (host pid `pid`) exists: the
/// namespaces the sandbox made, as bubblewrap gives those it unshared.
/// (Those made in a joined PID namespace's user namespace are made by
/// PID 1 only after it is let go: none are named then.)
fn started(plan: &Plan, pid: i32) -> serde_json::Value {
    let mut o = serde_json::Map::new();
    o.insert("child-pid".into(), pid.into());
    let made = plan
        .namespaces
        .iter()
        .map(|n| n.proc_name())
        .filter(|k| KINDS.contains(k) && !plan.userns_of_pid);
    for kind in made {
        // The link reads "pid:[4026532...]"; its inode is the id.
        let id = std::fs::metadata(format!("/proc/{pid}/ns/{kind}"))
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        if let Ok(id) = id {
            o.insert(format!("{kind}-namespace"), id.into());
        }
    }
    serde_json::Value::Object(o)
}

/// The status fds must be what the caller handed over: open, distinct,
/// and none of the runner's own (`ours`: the plan, the report socket,
/// the alive lock, the preserved fds). Then close-on-exec: no program
/// the runner starts (newuidmap, a hook) inherits them.
pub(super) fn check(fds: &StatusFds, ours: &[i32]) -> Result<(), SetupError> {
    let all: Vec<i32> = fds.fds().collect();
    if let Some(fd) = all
        .iter()
        .find(|fd| all.iter().filter(|x| x == fd).count() > 1)
    {
        return Err(SetupError::new(
            "status fds",
            format!(
                "{fd} is given for two of --info-fd, --json-status-fd, --sync-fd and --block-fd"
            ),
        ));
    }
    for fd in fds.fds() {
        if fd < 3 || ours.contains(&fd) {
            return Err(SetupError::new(
                "status fd",
                format!("{fd} is one the runner uses itself"),
            ));
        }
        // SAFETY: the fd is checked to be open first; only its flags change.
        let f = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        rustix::io::fcntl_getfd(f)
            .and_then(|_| rustix::io::fcntl_setfd(f, rustix::io::FdFlags::CLOEXEC))
            .step(|| format!("status fd {fd}"))?;
    }
    Ok(())
}

/// Close the status fds in PID 1, which was cloned holding them.
pub(super) fn close_in_pid1(fds: &StatusFds) {
    for fd in fds.fds() {
        // SAFETY: the fd is the supervisor's copy of the caller's, which
        // this process (PID 1) inherited at the clone and never used.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
}

/// Write the start to both fds; close the info fd. Returns the status
/// fd, for [`ended`].
pub(super) fn write_started(plan: &Plan, pid: i32) -> Result<Option<OwnedFd>, SetupError> {
    let fds = &plan.status_fds;
    if fds.is_empty() {
        return Ok(None);
    }
    let object = started(plan, pid);
    if let Some(fd) = fds.info {
        // SAFETY: the caller's fd, kept across the runner's exec for us
        // alone; closed here once written, as bubblewrap does.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let text = serde_json::to_string_pretty(&object).expect("JSON serializes");
        write_all(&fd, text.as_bytes()).step(|| "--info-fd: write".into())?;
    }
    let Some(fd) = fds.json_status else {
        return Ok(None);
    };
    // SAFETY: as above; kept until the end is written.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let line = format!("{object}\n");
    write_all(&fd, line.as_bytes()).step(|| "--json-status-fd: write".into())?;
    Ok(Some(fd))
}

/// The end, on the status fd, which is closed with it. The sandbox is
/// gone already: a reader that went away changes nothing.
pub(super) fn write_ended(fd: Option<OwnedFd>, code: i32) {
    if let Some(fd) = fd {
        let _ = write_all(&fd, format!("{{\"exit-code\": {code}}}\n").as_bytes());
    }
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `--block-fd`: wait until `fd` has a byte to read (taken) or is closed,
/// while PID 1 waits to be let go. A stop (the supervisor's parent gone,
/// or a kill), SIGINT, SIGTERM, SIGHUP or SIGQUIT (held, not yet
/// forwarded: nothing runs to forward them to), PID 1's end or the
/// timeout end the wait with an error, and the caller ends the sandbox.
pub(super) fn wait_block(
    fd: i32,
    pidfd: &OwnedFd,
    stop: &OwnedFd,
    deadline: Option<std::time::Instant>,
) -> Result<(), SetupError> {
    use rustix::event::{poll, PollFd, PollFlags};
    let step = || "--block-fd".to_string();
    // SAFETY: the caller's fd, checked open by `check`, kept for this read.
    let block = unsafe { OwnedFd::from_raw_fd(fd) };
    let ending = ending_signals().step(step)?;
    loop {
        let timeout = match deadline.map(super::watch::time_left) {
            Some(None) => {
                return Err(SetupError::new(
                    step(),
                    "the sandbox's timeout ran out while waiting on it",
                ))
            }
            left => left.flatten(),
        };
        let mut fds = [
            PollFd::new(&block, PollFlags::IN),
            PollFd::new(&ending, PollFlags::IN),
            PollFd::new(stop, PollFlags::IN),
            PollFd::new(pidfd, PollFlags::IN),
        ];
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(SetupError::io(step(), &e.into())),
        }
        let ready = |i: usize| !fds[i].revents().is_empty();
        if ready(1) {
            // A signalfd_siginfo, whose first field is the signal's number.
            let mut info = [0u8; 128];
            let sig = match rustix::io::read(&ending, &mut info) {
                Ok(n) if n >= 4 => {
                    let n = u32::from_ne_bytes(info[..4].try_into().expect("4 bytes"));
                    format!("signal {n}")
                }
                _ => "a signal".to_string(),
            };
            return Err(SetupError::new(
                step(),
                format!("{sig} arrived while waiting on it; the sandbox was ended"),
            ));
        }
        if ready(2) || super::signals::stop_requested() {
            return Err(SetupError::new(step(), "stopped while waiting on it"));
        }
        if ready(3) {
            return Err(SetupError::new(step(), "PID 1 ended while waiting on it"));
        }
        if ready(0) {
            let mut b = [0u8; 1];
            return match rustix::io::read(&block, &mut b) {
                Ok(_) => Ok(()),
                Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => continue,
                Err(e) => Err(SetupError::io(step(), &e.into())),
            };
        }
    }
}

/// A signalfd for the signals that end a process by default and that a
/// terminal or a service manager sends, all blocked in the runner until
/// PID 1 runs (`signals::block`); those read from it are consumed, the
/// others stay pending for the workload.
fn ending_signals() -> std::io::Result<OwnedFd> {
    // SAFETY: an initialised sigset passed by pointer for the calls only;
    // signalfd returns a new fd (or -1), which is owned from here.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::sigaddset(&mut set, sig);
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}
