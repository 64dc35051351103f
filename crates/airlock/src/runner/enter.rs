//! Exec into a running sandbox: the runner joins the sandbox's cgroups
//! and every one of its namespaces — fds on PID 1's namespaces that the
//! supervisor hands out on its control socket, so no ptrace access to the
//! non-dumpable PID 1 is needed, and a sandbox that has ended (no
//! supervisor) is never joined — then forks, since the PID and time
//! namespaces apply to children. The child takes the same walls as the
//! workload (Landlock, seccomp, capability bounds, no_new_privs, its ids)
//! before it execs. The runner stays outside as the process's parent: it
//! forwards signals and exits with the process's status.
//!
//! Order matters: the cgroup files are written while the host's mount
//! namespace is still ours (inside, /sys/fs/cgroup is not there), and the
//! user namespace is joined first, since it grants the capabilities that
//! joining the others needs.

use super::report::{Report, Reporter, SetupError, StepExt};
use super::{child, exec, signals};
use crate::plan::ExecPlan;
use crate::sys;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// The `cgroup.procs` of each of the sandbox's cgroups, opened here (in
/// the caller's mount and cgroup namespaces, with its credentials, which
/// the kernel checks a move against) for the process to move itself in
/// once forked: the runner itself stays out, so that the sandbox's `ps`,
/// `kill --all` and pids limit count the process alone, as runc's exec.
fn open_cgroups(plan: &ExecPlan) -> Result<Vec<OwnedFd>, SetupError> {
    let Some(cg) = &plan.cgroup else {
        return Ok(Vec::new());
    };
    let mut procs_files = Vec::new();
    for dir in cg.v2.iter().chain(cg.v1.values()) {
        let step = || format!("exec: join the cgroup {}", dir.display());
        let procs = rustix::fs::open(
            dir.join("cgroup.procs"),
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .step(step)?;
        // The paths come from the sandbox's state: written as root, they
        // are only ever a cgroup's file, never one a path was made to
        // lead to elsewhere.
        let fs = rustix::fs::fstatfs(&procs).step(step)?;
        if !crate::cgroup::is_cgroup_fs(&fs) {
            return Err(SetupError::new(step(), "refused: not a cgroup file system"));
        }
        procs_files.push(procs);
    }
    Ok(procs_files)
}

/// The forked process moves itself into the sandbox's cgroups ("0": the
/// writer), first of all; a cpuset there resets its CPU affinity, so the
/// one asked for is set again.
fn join_cgroups(plan: &ExecPlan, procs_files: &[OwnedFd]) -> Result<(), SetupError> {
    for procs in procs_files {
        rustix::io::write(procs, b"0").step(|| "exec: join the sandbox's cgroups".into())?;
    }
    match &plan.process.scheduling {
        Some(s) if !procs_files.is_empty() && s.cpu_affinity.is_some() => {
            let affinity = crate::spec::Scheduling {
                cpu_affinity: s.cpu_affinity.clone(),
                ..Default::default()
            };
            super::sched::apply(0, &affinity)
        }
        _ => Ok(()),
    }
}

pub(super) fn run(plan: ExecPlan, sock: BorrowedFd, parent_pid: i32) -> Result<i32, SetupError> {
    let report = Reporter::new(sock, plan.verbose);
    // Before anything of the sandbox's: a workload of the same host uid
    // (a rootless caller's, or one whose Landlock is off) could otherwise
    // ptrace this runner or its child, or write their /proc/PID/mem, in
    // the window before the child's walls are up (runc CVE-2016-9962 and
    // CVE-2019-5736's class). The child inherits it (and sets it again
    // after its id change, which resets it); its exec resets it.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .step(|| "exec: make the runner non-dumpable".into())?;
    // Away from the caller's terminal and process group, as the
    // supervisor goes: a signal to the caller's group (a terminal's ^C, a
    // `kill -- -PGID`) reaches only the caller, which forwards it once,
    // not once more through us; and the process, forked from us, cannot
    // take the caller's terminal as its own (/dev/tty) even where the
    // sandbox keeps its session (`new_session` off, which is about its
    // workload, not about whoever execs into it).
    rustix::process::setsid().step(|| "exec: setsid".into())?;
    let procs_files = open_cgroups(&plan)?;
    // Still with the caller's privilege on the host, which raising a
    // priority needs; the child inherits it. The CPU affinity waits for
    // the child, in the sandbox's cpuset: here, in the caller's, the
    // sandbox's CPUs may be refused.
    if let Some(s) = &plan.process.scheduling {
        let mut s = s.clone();
        if !procs_files.is_empty() {
            s.cpu_affinity = None;
        }
        super::sched::apply(0, &s)?;
    }
    // The child inherits them, lowered as the workload's were.
    super::sched::lower_priority_limits(0, &plan.process.rlimits)?;
    // Its path is in the caller's mount namespace, which we leave next.
    let console = match (&plan.console_socket, plan.process.terminal) {
        (Some(path), true) => Some(super::tty::connect_console_socket(path)?),
        _ => None,
    };
    // The process gets one of its own, as the sandbox's PID 1 did: not
    // the caller's. Made before the namespaces, as the caller.
    if !plan.process.keep_session_keyring {
        sys::join_new_session_keyring().map_err(super::supervisor::session_keyring)?;
    }
    join_namespaces(&plan, report)?;
    // Again (joining the user namespace did it first): joining a user
    // namespace whose owner is not our euid (a root caller's or a daemon
    // client's sandbox) changed our credentials, and where
    // fs.suid_dumpable is 1 made us dumpable, and so ptraceable by that
    // owner (it has every capability over our credentials now) while we
    // still hold the host's root and its fds. The child inherits it.
    super::child::not_dumpable()?;
    // After the join, whose change of credentials (a user namespace not
    // of our euid) clears a parent-death signal set before it.
    if plan.die_with_caller {
        die_with_caller(parent_pid)?;
    }
    // In the sandbox's mount namespace now: its /dev/ptmx.
    let pty = if plan.process.terminal {
        let pty = terminal_as(plan.process.uid, plan.process.gid)?;
        if let Some((rows, cols)) = plan.terminal_size {
            crate::terminal::set_size(&pty.master, rows, cols)
                .step(|| "exec: the terminal's size".into())?;
        }
        Some(pty)
    } else {
        None
    };
    let (inner, inner_child) = sys::seqpacket_pair().step(|| "socketpair".into())?;
    // SAFETY: the runner is single-threaded; the child only runs
    // `become_process`, which execs or exits.
    let pid = match unsafe { crate::sys::fork() } {
        -1 => {
            return Err(SetupError::io(
                "exec: fork",
                &std::io::Error::last_os_error(),
            ))
        }
        0 => {
            sys::exit_on_panic();
            drop(inner);
            let report = Reporter::new(inner_child.as_fd(), plan.verbose);
            let e = match join_cgroups(&plan, &procs_files) {
                Ok(()) => {
                    drop(procs_files);
                    let runner = inner_child.as_fd();
                    become_process(&plan, report, pty.as_ref().map(|p| &p.slave), runner)
                }
                Err(e) => e,
            };
            report.failed(&e);
            // SAFETY: _exit skips the runner's destructors in this copy.
            unsafe { libc::_exit(e.kind.exit_code()) }
        }
        pid => pid,
    };
    drop((inner_child, procs_files));
    sys::close_preserved(plan.process.preserve_fds).step(|| "--preserve-fds: close".into())?;
    let proxy = match pty {
        Some(super::tty::Pty { master, slave }) if console.is_some() => {
            // The client proxies it (OCI's --console-socket).
            drop(slave);
            super::tty::send_terminal(console.as_ref().expect("matched above"), master)?;
            None
        }
        Some(super::tty::Pty { master, slave }) => {
            drop(slave);
            let child = rustix::process::Pid::from_raw(pid).expect("fork returned a pid");
            let pidfd = rustix::process::pidfd_open(child, rustix::process::PidfdFlags::empty())
                .step(|| "exec: pidfd_open".into())?;
            Some((master, pidfd))
        }
        None => None,
    };
    signals::forward_to(pid, true);
    signals::stop_kills_group(pid);
    let failed = relay_until_exec(&inner, sock);
    if !failed {
        report.send(&Report::Started { pid, freezer: None });
    }
    if let Some((master, pidfd)) = proxy {
        // After forward_to: SIGWINCH now resizes the terminal instead.
        let mut p = super::tty::Proxy::new(master)?;
        super::tty::proxy_until_exit(&mut p, &pidfd)?;
    }
    // Ended but not reaped, its pid still its own: the stop signal and the
    // forwarded ones stop naming it before the pid can be another
    // process's.
    sys::wait_ended(pid).step(|| "exec: wait".into())?;
    signals::stop_kills_group(0);
    signals::stop_forwarding(pid);
    // Left unreaped when the caller's subreaper is to reap it (OCI's
    // `exec --pid-file`): it gets the zombie when we exit.
    let (status, _) = sys::wait_status(pid, !plan.leave_to_reaper).step(|| "exec: wait".into())?;
    let code = signals::shell_status(status);
    if !failed {
        report.send(&Report::Exited(super::report::ExitReport::from_code(code)));
    }
    Ok(code)
}

/// The exec'd process's terminal, owned by it. A new terminal is owned by
/// the file-system ids of whoever makes it: ours are the host's, which the
/// sandbox's user namespace may not map (a root caller's), and then
/// neither could the process own it nor fchown change it. A short-lived
/// fork makes it as the process's ids (we hold CAP_SETUID in the namespace
/// we joined) and hands both ends back, so that our own ids, which the
/// child's setup still opens paths by (Landlock's), never change.
fn terminal_as(uid: u32, gid: u32) -> Result<super::tty::Pty, SetupError> {
    let step = || "exec: make the terminal".to_string();
    let (ours, theirs) = sys::seqpacket_pair().step(step)?;
    // SAFETY: the runner is single-threaded; the child only makes the
    // terminal, sends it and _exits.
    let pid = unsafe { crate::sys::fork() };
    if pid < 0 {
        return Err(SetupError::io(step(), &std::io::Error::last_os_error()));
    }
    if pid == 0 {
        sys::exit_on_panic();
        drop(ours);
        // Our fds include the caller's (its terminal as stdio for a local
        // `exec -t`, the fds it preserved, the report socket, an OCI
        // console socket's connection), and the id change below makes us
        // dumpable for a moment where fs.suid_dumpable is 1, visible in
        // the sandbox's /proc: a workload watching for it could take one.
        // All but our end of the pair are closed first (the window size
        // is set by the parent); nothing is opened in their place, as
        // the sandbox's /dev/null is the workload's to replace.
        let keep = theirs.as_raw_fd() as u32;
        // SAFETY: close_range takes fd numbers only; this forked copy
        // _exits without running the destructors of what held them, and
        // uses none of them again.
        unsafe {
            if keep > 0 {
                libc::syscall(
                    libc::SYS_close_range,
                    0 as libc::c_uint,
                    keep - 1,
                    0 as libc::c_uint,
                );
            }
            libc::syscall(
                libc::SYS_close_range,
                keep + 1,
                libc::c_uint::MAX,
                0 as libc::c_uint,
            );
        }
        let made = (|| -> Result<super::tty::Pty, String> {
            // SAFETY: setfsgid and setfsuid take plain ids and no pointers;
            // asking again with an id that is never valid reads the
            // current one without changing it.
            let took = unsafe {
                libc::setfsgid(gid);
                libc::setfsuid(uid);
                (
                    libc::setfsuid(u32::MAX) as u32,
                    libc::setfsgid(u32::MAX) as u32,
                )
            };
            if took != (uid, gid) {
                return Err(format!("cannot act as uid {uid}, gid {gid} in the sandbox"));
            }
            // The id change made us dumpable again where fs.suid_dumpable is 1.
            super::child::not_dumpable().map_err(|e| e.to_string())?;
            super::tty::open((uid, gid)).map_err(|e| e.to_string())
        })();
        let sent = match &made {
            Ok(pty) => sys::send_with_fds(&theirs, b"", &[pty.master.as_fd(), pty.slave.as_fd()]),
            Err(why) => sys::send_with_fds(&theirs, why.as_bytes(), &[]),
        };
        // SAFETY: _exit ends this forked copy without the runner's
        // destructors.
        unsafe { libc::_exit(i32::from(made.is_err() || sent.is_err())) }
    }
    drop(theirs);
    let mut why = [0u8; 512];
    let got = sys::recv_with_fds(&ours, &mut why, rustix::net::RecvFlags::empty());
    // SAFETY: waitpid on our own child with a valid out-pointer.
    unsafe { libc::waitpid(pid, &mut 0, 0) };
    match got.step(step)? {
        (_, fds) if fds.len() == 2 => {
            let mut fds = fds.into_iter();
            let pty = super::tty::Pty {
                master: fds.next().expect("two fds"),
                slave: fds.next().expect("two fds"),
            };
            if let Some(size) = crate::terminal::winsize() {
                let _ = rustix::termios::tcsetwinsize(&pty.master, size);
            }
            Ok(pty)
        }
        (n, _) => Err(SetupError::new(
            step(),
            String::from_utf8_lossy(&why[..n]).into_owned(),
        )),
    }
}

/// Every namespace of the sandbox, through the fds its supervisor hands
/// out, in join order: the user namespace first, as it grants what joining
/// the others needs.
fn join_namespaces(plan: &ExecPlan, report: Reporter) -> Result<(), SetupError> {
    let mut namespaces = crate::state::control::namespaces(&plan.dir)
        .map_err(|e| SetupError::new("exec", format!("the sandbox is not running ({e})")))?;
    // A namespace the sandbox joined belongs to a user namespace above
    // its own: it is joined first, while we still have our capabilities
    // there.
    check_handed_out(plan, &namespaces)?;
    // So are those it shares with whoever made it (not its own).
    let above = |ns: &crate::namespace::Namespace| !plan.namespaces.contains(ns);
    namespaces.sort_by_key(|(ns, _)| (!above(ns), *ns));
    // One we are in already (a shared kind, from where it was made):
    // nothing to join, and a user namespace cannot be joined again. Ours
    // are all looked at before the first join: once in the sandbox's
    // mount namespace, /proc/thread-self is a path in a tree the workload
    // may have made, which could name its own namespaces and have every
    // later join skipped (exec would then run in the caller's).
    let ours: Vec<_> = namespaces
        .iter()
        .map(|(ns, _)| {
            rustix::fs::stat(format!("/proc/thread-self/ns/{}", ns.proc_name()).as_str())
                .map(|st| (st.st_dev, st.st_ino))
        })
        .collect();
    for ((ns, fd), ours) in namespaces.iter().zip(ours) {
        let name = ns.proc_name();
        let theirs = rustix::fs::fstat(fd).map(|st| (st.st_dev, st.st_ino));
        if matches!((ours, theirs), (Ok(a), Ok(b)) if a == b) {
            continue;
        }
        report.progress(|| format!("setns {name}"));
        if *ns == crate::namespace::Namespace::User {
            act_as_owner(fd)?;
        }
        rustix::thread::move_into_link_name_space(fd.as_fd(), Some(ns.link_type()))
            .step(|| format!("exec: join the sandbox's {name} namespace"))?;
        // At once, not after the last join: a user namespace whose owner
        // is not our euid makes us dumpable where fs.suid_dumpable is 1,
        // and its owner could attach while we are still the host's root
        // in its mount namespace (an attach outlasts a later reset).
        if *ns == crate::namespace::Namespace::User {
            super::child::not_dumpable()?;
        }
    }
    Ok(())
}

/// Root joining a user namespace another uid owns (a daemon client's
/// sandbox, or one whose root maps to a real user) takes that owner as
/// its effective uid first, its real and saved uids staying 0. The
/// kernel makes a process whose new capabilities are not a subset of its
/// old ones dumpable again at fs.suid_dumpable (commit_creds), which the
/// join of a namespace owned by someone other than our euid is; where
/// that is 1, the owner could attach in the few instructions before the
/// prctl that follows, while we are still the host's root, and an attach
/// outlasts that prctl. With the owner's euid the join is a subset (and
/// nobody can attach by uid: real and saved uids are 0's).
fn act_as_owner(userns: &OwnedFd) -> Result<(), SetupError> {
    // NS_GET_OWNER_UID (_IO(0xb7, 0x4)): the uid, in our namespace.
    const NS_GET_OWNER_UID: libc::c_ulong = 0xb704;
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    // Only where the knob is 1 (or cannot be read): at 0 the reset makes
    // us undumpable, at 2 only the host's root may attach. Elsewhere the
    // runner keeps root's file-system uid through the joins, as before
    // (a cgroup.procs opened as root is written as root on kernels that
    // judge the writer, not the opener, before Linux 5.16).
    if std::fs::read_to_string("/proc/sys/fs/suid_dumpable").is_ok_and(|v| v.trim() != "1") {
        return Ok(());
    }
    let mut owner: libc::uid_t = 0;
    // SAFETY: the ioctl writes one uid_t through the pointer, to a local
    // that outlives the call.
    if unsafe { libc::ioctl(userns.as_raw_fd(), NS_GET_OWNER_UID as _, &mut owner) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(SetupError::io(
            "exec: read the owner of the sandbox's user namespace",
            &e,
        ));
    }
    if owner == 0 {
        return Ok(());
    }
    // Not dumpable across our own change of euid either (it resets that
    // as well): set again right after it.
    sys::set_effective_uid(owner).step(|| {
        format!("exec: take uid {owner}, the owner of the sandbox's user namespace, as the effective uid")
    })?;
    super::child::not_dumpable()
}

/// What the control socket handed out must be the sandbox's: every kind
/// it made, none of them ours (a sandbox always makes its mount
/// namespace; the spec cannot share it). Whatever answers on the socket is
/// trusted no further than that: a process that could take the socket's
/// place (a workload given the state directory) would otherwise leave
/// exec in the caller's mount namespace, or as root of the caller's user
/// namespace, where its walls hold nothing in.
fn check_handed_out(
    plan: &ExecPlan,
    got: &[(crate::namespace::Namespace, OwnedFd)],
) -> Result<(), SetupError> {
    use crate::namespace::Namespace;
    let refuse = |why: String| SetupError::new("exec", format!("refused: {why}"));
    let joined = plan.join.iter().map(|(ns, _)| ns);
    for kind in plan
        .namespaces
        .iter()
        .chain(joined)
        .chain([&Namespace::Mnt])
    {
        if !got.iter().any(|(n, _)| n == kind) {
            return Err(refuse(format!(
                "the sandbox's supervisor did not hand out its {} namespace",
                kind.proc_name()
            )));
        }
    }
    // One the sandbox made is never ours. Above all its user namespace:
    // joining would be skipped as done, and its uids set in ours.
    for (kind, fd) in got {
        if *kind != Namespace::Mnt && !plan.namespaces.contains(kind) {
            continue;
        }
        let name = kind.proc_name();
        let ours = rustix::fs::stat(format!("/proc/thread-self/ns/{name}").as_str())
            .step(|| format!("exec: our {name} namespace"))?;
        let theirs = rustix::fs::fstat(fd).step(|| "exec: the sandbox's namespace".into())?;
        if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino) {
            let name = if *kind == Namespace::Mnt {
                "mount"
            } else {
                name
            };
            return Err(refuse(format!(
                "the {name} namespace handed out is the caller's own"
            )));
        }
    }
    Ok(())
}

/// Pass the child's reports on to the caller until its exec closes its
/// copy of the socket. True when setup failed.
fn relay_until_exec(inner: &OwnedFd, sock: BorrowedFd) -> bool {
    let mut failed = false;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match rustix::net::recv(inner, &mut buf[..], rustix::net::RecvFlags::empty()) {
            Ok((0, _)) => return failed,
            Ok((n, _)) => {
                if let Ok(Report::Failed(_)) = serde_json::from_slice::<Report>(&buf[..n]) {
                    failed = true;
                }
                let _ = rustix::net::send(sock, &buf[..n], rustix::net::SendFlags::NOSIGNAL);
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return failed,
        }
    }
}

/// In the child, inside every namespace: the workload's walls, then exec.
/// Arm the parent-death signal, then make sure the runner had not died
/// already: its end of our report socket (`runner`), which it holds
/// until we exec, is closed then. (Our parent's pid cannot tell: the
/// runner is outside the sandbox's PID namespace, pid 0 to us, and so is
/// whoever we are given to when it dies.) Without the check, a runner
/// killed before the signal was armed left the command running on,
/// unwatched.
fn die_with_runner(runner: BorrowedFd<'_>) -> Result<(), SetupError> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .step(|| "set parent-death signal".into())?;
    let mut pfd = [PollFd::new(&runner, PollFlags::empty())];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut pfd, Some(&now)).step(|| "check the runner is alive".into())?;
    match pfd[0].revents().contains(PollFlags::HUP) {
        true => Err(SetupError::new(
            "exec",
            "the runner that waits for this process has ended",
        )),
        false => Ok(()),
    }
}

/// The stop signal when the caller ends: until `stop_kills_group` it
/// ends us, and the process (not yet forked, or dying with us through
/// its own parent-death signal) with us; from then on it kills the
/// process's group, which we reap and report. A caller that ended before
/// the signal was set is seen by its pid no longer being our parent's.
fn die_with_caller(parent_pid: i32) -> Result<(), SetupError> {
    // SAFETY: the stop signal is a real-time signal of Linux's, 36, a
    // valid signal number (rustix names no real-time signal).
    let stop = unsafe { rustix::process::Signal::from_raw_unchecked(signals::stop_signal()) };
    sys::arm_parent_death((stop, rustix::process::Pid::from_raw(parent_pid)))
        .step(|| "exec: die with the caller".into())
}

fn become_process(
    plan: &ExecPlan,
    report: Reporter,
    terminal: Option<&OwnedFd>,
    runner: BorrowedFd<'_>,
) -> SetupError {
    let p = &*exec::with_home(&plan.process);
    let run = || -> Result<(), SetupError> {
        // Dies with the runner that waits for it: from the start, and
        // again after the uid change, which clears the signal.
        die_with_runner(runner)?;
        if plan.new_session {
            rustix::process::setsid().step(|| "setsid".into())?;
        }
        if let Some(t) = terminal {
            super::tty::attach(t)?;
        }
        child::lock_down(&plan.walls, p, report, || die_with_runner(runner))
    };
    if let Err(e) = run() {
        return e;
    }
    report.send(&Report::Exec);
    if let Err(e) = child::install_given_filters(&plan.walls) {
        return e;
    }
    exec::exec(p)
}
