//! The supervisor: the runner's outer half, on the host side. It creates
//! the cgroups, clones PID 1 into the new namespaces, writes the id maps
//! from outside, relays setup reports, and then watches the sandbox until
//! it ends: the caller (unless detached), the stop signal, the timeout, the
//! control socket and a detached workload's output and terminal. At the
//! end it reaps PID 1 (or, for an OCI client that reaps the pid it was
//! given, reads its exit and leaves it), writes the exit report, removes
//! the cgroups and, for a sandbox with state, records how it ended.
//! PID 1's birth is in `clone`, the sandbox's end in `ending`; this file
//! holds the order of it all.

use super::clone::{become_pid1, clone_failed, kill_and_reap, start_pid1, Pid1Ends};
use super::ending::{finish, reap};
use super::logs::Logs;
use super::report::{Report, Reporter, SetupError, StepExt};
use super::watch::{RuntimeHooks, Watch};
use super::{signals, sources, upper};
use crate::cgroup::Cgroup;
use crate::plan::Plan;
use crate::state::control;
use crate::state::SandboxDir;
use crate::sys::{self, Forked};
use rustix::fs::OFlags;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Die with the caller: its pidfd becomes readable when it exits. (The
/// parent-death signal would fire when the *thread* that spawned us ends,
/// and library callers are multi-threaded.)
fn watch_caller(plan: &Plan, parent_pid: i32) -> Result<Option<OwnedFd>, SetupError> {
    // Parent pid 0: the caller exec'd us in its place, so the sandbox
    // dies with its caller by dying with us.
    if !plan.die_with_caller
        || plan.lifecycle.as_ref().is_some_and(|l| l.detached)
        || parent_pid == 0
    {
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

/// The host uid to create the sandbox's user namespace as, when it is
/// not ours: the uid its root (or, for a client, its workload) is on the
/// host, or for a root caller's own range [`crate::plan::ROOT_CALLER_OWNER`]. The kernel charges a user namespace's per-user counts
/// (inotify instances and watches, message queue bytes, nested
/// namespaces) to its creator's uid on the host as well, at every level
/// up; created as host root, a sandbox could take all of root's (128
/// inotify instances by default) and starve the host's own services.
/// Created as the uid its processes run as, it is charged what a rootless
/// caller's sandbox is, and that uid owns the namespace, as a rootless
/// caller does its own.
fn creator_uid(plan: &Plan) -> Option<u32> {
    use crate::plan::{ROOT_CALLER_BASE, ROOT_CALLER_COUNT, ROOT_CALLER_OWNER};
    if plan.clone_flags & libc::CLONE_NEWUSER as u64 == 0 || !plan.caller.is_root() {
        return None;
    }
    let range = ROOT_CALLER_BASE..ROOT_CALLER_BASE.saturating_add(ROOT_CALLER_COUNT);
    super::child::namespace_root(plan)
        .map(|r| r.host_uid)
        .filter(|&uid| uid != 0)
        // A root caller's range: owned by a uid none of them runs as (see
        // ROOT_CALLER_OWNER).
        .map(|uid| match range.contains(&uid) {
            true => ROOT_CALLER_OWNER,
            false => uid,
        })
}

/// A detached supervisor leaves its caller's process tree: the caller
/// reaps the intermediate process at once and never holds a zombie, and
/// the supervisor lives on under the host's init (or a subreaper). A
/// caller that reaps the supervisor itself (`stay_child`: the daemon, or
/// a CLI about to exit) is spared this fork.
fn leave_caller() -> Result<(), SetupError> {
    // SAFETY: single-threaded (checked before); the parent only exits.
    match unsafe { crate::sys::fork() } {
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

/// What the supervisor makes on the host before PID 1 exists.
struct HostSide {
    /// Cleans up after us if we are killed (see `guard`).
    guard: Option<super::guard::Guard>,
    /// Readable once the stop signal arrived.
    stop: OwnedFd,
    /// The caller's pidfd, when the sandbox dies with it.
    parent: Option<OwnedFd>,
    cgroup: Option<Cgroup>,
    /// The v2 cgroup, for CLONE_INTO_CGROUP.
    cgroup_fd: Option<OwnedFd>,
    logs: Option<Logs>,
    control: Option<OwnedFd>,
    /// A created sandbox's workload waits for a byte on the read end.
    hold: Option<(OwnedFd, OwnedFd)>,
    /// PID 1 waits for "go" (after its id maps) on the read end; the write
    /// end stays open for as long as we live.
    go: (OwnedFd, OwnedFd),
    /// PID 1 and the workload report on the child's end until exec.
    inner: (OwnedFd, OwnedFd),
    /// The namespaces the supervisor left to join the plan's by path,
    /// which the runtime hooks go back to (see [`runtime_namespaces`]).
    runtime_ns: Vec<OwnedFd>,
    /// Persistent layer directories made for the sandbox, removed again
    /// if it never gets going, and the locks on its upper layers (held
    /// until we exit).
    made_dirs: upper::MadeDirs,
    /// The sysctls written into a joined namespace, put back if the
    /// sandbox never gets going.
    shared_sysctls: crate::sys::SharedSysctls,
}

pub(super) fn supervise(
    parent_pid: i32,
    plan: Plan,
    report: Reporter,
    alive_fd: Option<i32>,
) -> Result<i32, SetupError> {
    let report = report.with_verbose(plan.verbose);
    let lifecycle = plan.lifecycle.clone();
    let state_dir = lifecycle.as_ref().map(|l| SandboxDir::at(&l.dir));
    // Held beside the maker's `alive` lock, by us and then by the guard
    // too, never by PID 1: the directory's own lock, which no deletion of
    // a file can take away (see `SandboxDir::hold_alive`).
    let dir_alive = state_dir
        .as_ref()
        .map(SandboxDir::hold_alive)
        .transpose()
        .map_err(|e| SetupError::new("state", e.to_string()))?;
    let alive_fds: Vec<i32> = alive_fd
        .into_iter()
        .chain(dir_alive.as_ref().map(AsRawFd::as_raw_fd))
        .collect();
    // The image layers beneath an overlay root stay while the sandbox
    // lives (`image prune` takes only a layer nobody holds); first, so
    // that a layer being pruned refuses the start before anything exists.
    // Only for a sandbox of our own uid's, whose store it is: a root
    // supervisor starting a daemon client's (whose images the daemon
    // refuses) would otherwise hold off root's prunes of any layer the
    // client names as a lower, for as long as it keeps the sandbox held.
    let own_store = plan.caller.uid == rustix::process::geteuid().as_raw();
    let layers = match own_store {
        true => crate::image::store::pin_layers(&plan.filesystem.root)
            .map_err(|why| SetupError::new("filesystem.root", why))?,
        false => Vec::new(),
    };
    let host = prepare_host_side(&plan, parent_pid, state_dir.as_ref(), &alive_fds, report)?;
    let HostSide {
        guard,
        stop,
        parent,
        cgroup,
        cgroup_fd,
        mut logs,
        control,
        hold,
        go,
        inner,
        runtime_ns,
        mut made_dirs,
        shared_sysctls,
    } = host;
    let (hold_read, hold_write) = hold.map_or((None, None), |(r, w)| (Some(r), Some(w)));
    let (go_read, go_write) = go;
    let (inner, inner_child) = inner;

    // With root's privileges, before any namespace exists; a rootless
    // caller's PID 1 does it in its own mount namespace instead.
    let cgroup_paths = cgroup.as_ref().map(Cgroup::paths);
    let sources = match plan.caller.is_root() {
        true => {
            sources::Sources::Cloned(sources::clone_trees(&plan, cgroup_paths.as_ref(), report)?)
        }
        false => sources::Sources::ToClone(cgroup_paths),
    };
    // PID 1 re-checks what it opens itself (a rootless caller's sources,
    // overlay layers) from inside the sandbox's network namespace, where
    // the host's sockets are not listed: it lists them through a socket
    // of ours, of the host's namespace.
    if matches!(sources, sources::Sources::ToClone(_)) || plan.filesystem.has_overlays() {
        crate::check::keep_host_socket_view()
            .step(|| "open a sock_diag socket for PID 1's re-checks".into())?;
    }
    // PID 1 and all it forks keep it: not the caller's (a shell's, a
    // service's), whose keys they would possess. Made as the caller,
    // charged to the caller's key quota.
    if !plan.process.keep_session_keyring {
        sys::join_new_session_keyring().map_err(session_keyring)?;
    }
    // Only for the clone: PID 1 is born in it, our other children not.
    let pid_join = super::pidns::enter_for_clone(&plan)?;
    report.progress(|| "clone3 into new namespaces".into());
    // Decided here, not by PID 1's getuid(): in its user namespace that
    // reads 0 for a rootless caller as soon as we have written its maps.
    let by_root = rustix::process::geteuid().is_root();
    let creator = creator_uid(&plan);
    // Set by `airlock run --die-with-parent` before it exec'd us; every
    // change of our effective uid clears it.
    let dies_with = match creator {
        Some(_) => sys::parent_death_watch()
            .map_err(|e| SetupError::io("read the parent-death signal", &e))?,
        None => None,
    };
    if let Some(uid) = creator {
        sys::set_effective_uid(uid)
            .step(|| format!("become uid {uid} to create the user namespace"))?;
        // That change of euid made us dumpable where fs.suid_dumpable is
        // 1, and PID 1 would be born so, in a user namespace of that
        // uid's, which could attach before PID 1's first step undoes it.
        if let Err(e) = super::child::not_dumpable() {
            let _ = sys::set_effective_uid(0);
            return Err(e);
        }
    }
    let forked = sys::clone3(
        plan.flags_to_clone(),
        cgroup_fd.as_ref().map(|f| f.as_raw_fd()),
    );
    // PID 1's clock offsets are opened now, while our euid is still the
    // creator's: the kernel asks for CAP_SYS_TIME over PID 1's user
    // namespace from the credentials the file was opened with, and its
    // owner has every capability there, where host root has it only with
    // its own CAP_SYS_TIME, which a hardened service lacks (systemd's
    // ProtectClock=yes, a container's default set): opened as root later,
    // every start with a time namespace failed with EPERM. Our effective
    // set was raised with the euid, so the open of the root-owned file
    // (PID 1 is not dumpable) is allowed.
    let early_offsets = match (&forked, creator) {
        (Ok(Forked::Parent { pid, .. }), Some(_)) if plan.clocks.is_some() => {
            Some(super::time::offsets_file(*pid))
        }
        _ => None,
    };
    if creator.is_some() && !matches!(forked, Ok(Forked::Child)) {
        let restored = sys::set_effective_uid(0)
            .map_err(|e| SetupError::io("become root again after the clone", &e))
            .and_then(|()| {
                dies_with
                    .map_or(Ok(()), sys::arm_parent_death)
                    .map_err(|e| {
                        SetupError::io("--die-with-parent: set the parent-death signal again", &e)
                    })
            });
        if let Err(e) = restored {
            if let Ok(Forked::Parent { pid, pidfd }) = &forked {
                kill_and_reap(pidfd, *pid);
            }
            return Err(e);
        }
    }
    let (pid, pidfd) = match forked {
        Ok(Forked::Child) => {
            // The supervisor's to remove, never PID 1's; and its fds on
            // host directories go (the supervisor's copies hold the locks).
            made_dirs.keep();
            shared_sysctls.keep();
            // The caller's pidfd and the runtime's host-namespace fds too:
            // PID 1 never execs, and would hold them for the sandbox's life.
            drop((
                go_write, inner, stop, cgroup_fd, control, hold_write, layers, made_dirs, parent,
                runtime_ns, guard,
            ));
            super::status_fd::close_in_pid1(&plan.status_fds);
            let ends = Pid1Ends {
                go: go_read,
                inner: inner_child,
                hold: hold_read,
                sources,
                userns: pid_join.and_then(|j| j.userns),
            };
            become_pid1(plan, by_root, &alive_fds, logs, ends, report)
        }
        Ok(Forked::Parent { pid, pidfd }) => (pid, pidfd),
        Err(e) => return Err(clone_failed(&e)),
    };
    if let Some(j) = &pid_join {
        if let Err(e) = j.leave() {
            kill_and_reap(&pidfd, pid);
            return Err(e);
        }
    }
    let started = Instant::now();
    drop((go_read, inner_child, cgroup_fd, hold_read));
    sys::close_preserved(plan.process.preserve_fds).step(|| "--preserve-fds: close".into())?;
    if lifecycle
        .as_ref()
        .is_some_and(|l| l.detached && l.keep_stdio)
    {
        // The workload has the caller's stdio; a copy held here would keep
        // the caller's pipes open after the workload closed them.
        sys::stdio_to_null().step(|| "let go of the caller's stdio".into())?;
    }
    if let Some(l) = logs.as_mut() {
        l.close_pid1_ends();
    }
    start_pid1(
        &plan,
        pid,
        &pidfd,
        cgroup.as_ref(),
        guard.as_ref(),
        state_dir.as_ref(),
        report,
    )?;
    // Idmapped only now: the user namespace needs its maps first.
    let owner = pid_join.as_ref().and_then(|j| j.userns.as_ref());
    if let sources::Sources::Cloned(c) = &sources {
        if let Err(e) = c.idmap(&plan, pid, owner) {
            kill_and_reap(&pidfd, pid);
            return Err(e);
        }
    }
    drop((sources, pid_join));
    if plan.clocks.is_some() {
        let opened = early_offsets.unwrap_or_else(|| super::time::offsets_file(pid));
        let sent = opened.and_then(|f| {
            sys::send_with_fds(&inner, b"t", &[f.as_fd()])
                .step(|| "time namespace: hand PID 1 its clock offsets".into())
        });
        if let Err(e) = sent {
            kill_and_reap(&pidfd, pid);
            return Err(e);
        }
    }
    // As bubblewrap: once the child exists, before it runs the workload.
    let status_fd = super::status_fd::write_started(&plan, pid).inspect_err(|_| {
        kill_and_reap(&pidfd, pid);
    })?;
    let timeout = plan.timeout_ms.map(Duration::from_millis);
    let deadline = timeout.and_then(|t| started.checked_add(t));
    if let Some(fd) = plan.status_fds.block {
        super::status_fd::wait_block(fd, &pidfd, &stop, deadline).inspect_err(|_| {
            kill_and_reap(&pidfd, pid);
        })?;
        report.enter_raw();
    }
    rustix::io::write(&go_write, b"g").step(|| "start the sandbox".into())?;
    // go_write stays open until we exit: PID 1 watches it to learn whether
    // we died before its parent-death signal was armed.
    signals::forward_to(pid, plan.new_session);
    // In the caller's place, in its terminal's foreground (not set apart
    // in a session of our own, as prepare_host_side does otherwise): job
    // control's stops are the whole sandbox's (see Watch::suspend).
    let apart = (plan.new_session && report.caller().is_some())
        || plan.lifecycle.as_ref().is_some_and(|l| l.detached);
    let suspend = match apart {
        true => None,
        false => Some(
            signals::catch_suspend()
                .step(|| "job control signal pipe".into())
                .inspect_err(|_| kill_and_reap(&pidfd, pid))?,
        ),
    };
    let own_init = plan.init == crate::spec::InitMode::Airlock;
    let runtime_hooks = (!plan.hooks.runtime.is_empty()).then(|| RuntimeHooks {
        hooks: plan.hooks.runtime.clone(),
        state: plan.hooks.state.clone(),
        namespaces: runtime_ns,
    });
    // Whose sandbox it is, for the end kept after its removal.
    let owner = plan.caller.uid;
    // Recorded and carried out: the watch needs none of it.
    drop(plan);

    let held = hold_write.is_some();
    let outcome = Watch {
        parent,
        deadline: deadline.filter(|_| !held),
        held_timeout: timeout.filter(|_| held),
        inner: Some(inner),
        control,
        logs,
        hold: hold_write,
        console_socket: lifecycle.as_ref().and_then(|l| l.console_socket.clone()),
        console_size: lifecycle.as_ref().and_then(|l| l.console_size),
        own_init,
        runtime_hooks,
        suspend,
        ..Watch::new(
            report,
            pid,
            &pidfd,
            &stop,
            cgroup.as_ref(),
            state_dir.as_ref(),
        )
    }
    .run()?;

    // PID 1 has ended, not yet reaped: no signal may name its pid after.
    signals::stop_forwarding(pid);
    if !outcome.failed {
        made_dirs.keep();
        shared_sysctls.keep();
    }
    let reaped = !lifecycle.as_ref().is_some_and(|l| l.leave_pid1_to_reaper);
    let (code, exit) = reap(pid, reaped, &outcome, cgroup.as_ref(), started.elapsed())?;
    finish(cgroup, state_dir, lifecycle, guard, &outcome, &exit, owner);
    super::status_fd::write_ended(status_fd, code);
    if !outcome.failed {
        report.send(&Report::Exited(exit));
    }
    Ok(code)
}

/// Everything on the host side before the clone, in order: leave a
/// detached caller, the stop signal, the caller's pidfd, the session, a
/// persistent overlay's directories, the cgroups (a limit the host cannot
/// apply stops us here, before any namespace exists), then a sandbox with
/// state's logs, control socket and hold pipe.
fn prepare_host_side(
    plan: &Plan,
    parent_pid: i32,
    state_dir: Option<&SandboxDir>,
    alive_fds: &[i32],
    report: Reporter,
) -> Result<HostSide, SetupError> {
    let lifecycle = plan.lifecycle.as_ref();
    let detached = lifecycle.is_some_and(|l| l.detached);
    if lifecycle.is_some_and(|l| l.detached && !l.stay_child) {
        leave_caller()?;
    }
    // After the fork above, whose parent would take the pipe's fds along.
    let stop = signals::catch_stop().step(|| "stop signal pipe".into())?;
    let parent = watch_caller(plan, parent_pid)?;
    // Away from the caller's terminal: terminal signals reach only the
    // caller, which forwards them once. In the caller's place we stay
    // where it was, and forward them ourselves.
    if (plan.new_session && report.caller().is_some()) || detached {
        rustix::process::setsid().step(|| "setsid".into())?;
    }
    let made_dirs = upper::prepare_upper(plan)?;
    // PID 1 is cloned into what we are in, for what it does not make new.
    // Not the PID namespace: that one only for the clone (`pidns`).
    let join: Vec<_> = plan
        .join
        .iter()
        .filter(|(n, _)| *n != crate::namespace::Namespace::Pid)
        .cloned()
        .collect();
    let runtime_ns = runtime_namespaces(plan, &join)?;
    // The host's sockets, listed from here on whatever network namespace
    // we join: the re-checks of bind sources below, ours and PID 1's, judge
    // against them, not against a pod's namespace, where none are.
    if join
        .iter()
        .any(|(n, _)| *n == crate::namespace::Namespace::Net)
    {
        crate::check::keep_host_socket_view()
            .step(|| "open a sock_diag socket for the re-checks".into())?;
    }
    join_by_path(&join, |ns| match ns {
        crate::namespace::Namespace::Net => Some(plan.host.joins_own_net),
        crate::namespace::Namespace::Ipc => Some(plan.host.joins_own_ipc),
        _ => None,
    })?;
    // After the cgroup, whose limits a host may refuse: the joined
    // namespace is shared, and a start refused there must leave it as it
    // was.
    // Nothing of a sandbox may outlive its supervisor. PID 1 dies with it
    // (parent-death signal, armed after its last uid change), which ends
    // the PID namespace, and a dead supervisor's `alive` lock is
    // released, so the state shows it stopped. Where that is not enough —
    // cgroups to remove, or a workload as PID 1 that may clear its
    // parent-death signal — a guard kills what is left: forked before the
    // cgroups exist, and told of them at once.
    let needs_guard = plan.cgroup.is_some() || plan.init == crate::spec::InitMode::Workload;
    let guard = match needs_guard {
        true => {
            let removal = plan.lifecycle.as_ref().map(|l| super::guard::Removal {
                on_exit: l.remove_on_exit,
                keep_end: l.remove_on_exit && l.detached,
                caller: plan.caller.uid,
            });
            Some(super::guard::spawn(
                state_dir,
                alive_fds,
                removal.unwrap_or_default(),
            )?)
        }
        false => None,
    };
    let cgroup = create_cgroup(plan, report)?;
    if let (Some(g), Some(cg)) = (&guard, &cgroup) {
        g.cgroups(cg)?;
    }
    let shared_sysctls = crate::sys::write_shared_sysctls(&plan.join_sysctls, report)?;
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
    let logs = match lifecycle {
        // A terminal is the workload's stdin (and its output is logged
        // once PID 1 sends it): no stdin pipe then.
        Some(l) if l.detached && !l.keep_stdio => Some(Logs::create(
            &l.dir,
            l.log_limit,
            l.stdin && !plan.process.terminal,
        )?),
        _ => None,
    };
    let control = match lifecycle {
        Some(l) => Some(control::listen(&l.dir).step(|| "listen on the control socket".into())?),
        None => None,
    };
    let pipe = |what: &'static str| {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).step(|| what.into())
    };
    let hold = match lifecycle {
        Some(l) if l.hold => Some(pipe("pipe to hold the workload")?),
        _ => None,
    };
    Ok(HostSide {
        guard,
        stop,
        parent,
        cgroup,
        cgroup_fd,
        logs,
        control,
        hold,
        go: pipe("pipe")?,
        inner: sys::seqpacket_pair().step(|| "socketpair".into())?,
        runtime_ns,
        made_dirs,
        shared_sysctls,
    })
}

/// OCI's prestart and createRuntime hooks run in the runtime's namespaces
/// (a network hook sets up the container's interfaces from the host's
/// network namespace, and its poststop, run by the runtime, takes them
/// down there), but the supervisor that runs them joins the namespaces a
/// bundle gives by path, for PID 1 to be cloned into: it keeps the ones
/// it leaves, for each hook to go back to before its exec.
fn runtime_namespaces(
    plan: &Plan,
    join: &[(crate::namespace::Namespace, String)],
) -> Result<Vec<OwnedFd>, SetupError> {
    if plan.hooks.runtime.is_empty() {
        return Ok(Vec::new());
    }
    join.iter()
        .map(|(ns, _)| {
            let path = format!("/proc/self/ns/{}", ns.proc_name());
            rustix::fs::open(
                path.as_str(),
                OFlags::RDONLY | OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .step(|| format!("open {path} for the runtime hooks"))
        })
        .collect()
}

/// Join the namespaces at `paths` (before the clone, and, for an exec,
/// before the user namespace, whose capabilities do not reach them).
///
/// `judged_own` says, for the kinds the guardrails judge by it, whether
/// the path was the host's namespace when they did: a path that became
/// the host's since (a bind mount over it) would put the sandbox in the
/// host's network unjudged, its abstract sockets unscoped and its net.*
/// sysctls written into the host's, so the namespace opened is checked
/// again, by the fd that is joined.
pub(super) fn join_by_path(
    paths: &[(crate::namespace::Namespace, String)],
    judged_own: impl Fn(crate::namespace::Namespace) -> Option<bool>,
) -> Result<(), SetupError> {
    for (ns, path) in paths {
        let step = || format!("join the {} namespace {path}", ns.proc_name());
        // Non-blocking and no controlling tty: a FIFO or a device given as
        // a namespace must not stall or affect the supervisor.
        let fd = rustix::fs::open(
            path.as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
            rustix::fs::Mode::empty(),
        )
        .step(step)?;
        if judged_own(*ns) == Some(false) {
            still_not_hosts(&fd, *ns, path)?;
        }
        // Typed: a path to another kind of namespace (a mount or user
        // namespace given as "net") is refused, not joined.
        match rustix::thread::move_into_link_name_space(fd.as_fd(), Some(ns.link_type())) {
            Ok(()) => {}
            Err(rustix::io::Errno::INVAL) => {
                return Err(SetupError::new(
                    step(),
                    format!("{path} is not a {} namespace", ns.proc_name()),
                ))
            }
            Err(e) => return Err(SetupError::io(step(), &e.into())),
        }
    }
    Ok(())
}

/// Refuse the namespace `fd`, opened at `path`, that is the host's though
/// it was another when the guardrails judged the path.
pub(super) fn still_not_hosts(
    fd: &OwnedFd,
    ns: crate::namespace::Namespace,
    path: &str,
) -> Result<(), SetupError> {
    match is_hosts(fd, ns.proc_name()) {
        true => Err(SetupError::new(
            format!("join the {} namespace {path}", ns.proc_name()),
            format!(
                "{path} is now the host's {} namespace: it was another when the guardrails judged it",
                ns.proc_name()
            ),
        )),
        false => Ok(()),
    }
}

/// Is `fd` the caller's namespace of `kind`, or PID 1's (as the
/// guardrails' `joins_own_*` take it)?
fn is_hosts(fd: &OwnedFd, kind: &str) -> bool {
    let Ok(opened) = rustix::fs::fstat(fd) else {
        return false;
    };
    ["self", "1"].iter().any(|who| {
        rustix::fs::stat(format!("/proc/{who}/ns/{kind}").as_str())
            .is_ok_and(|s| (s.st_dev, s.st_ino) == (opened.st_dev, opened.st_ino))
    })
}

/// The error of [`sys::join_new_session_keyring`], with why it may fail.
pub(super) fn session_keyring(e: std::io::Error) -> SetupError {
    const STEP: &str = "a session keyring of the sandbox's own";
    const KEEP: &str = "process.keep_session_keyring (airlock-runtime's --no-new-keyring) keeps the caller's keyring instead, which the workload then possesses";
    let why = match e.raw_os_error() {
        Some(libc::EDQUOT) => {
            return SetupError::new(
                STEP,
                format!("{e}: the caller has as many keys as kernel.keys.maxkeys allows"),
            )
        }
        // Docker's and containerd's default seccomp profiles refuse keyctl.
        Some(libc::EPERM) => "keyctl is refused here (a seccomp profile around the caller?)",
        Some(libc::ENOSYS) => {
            "keyctl answers ENOSYS though this kernel has keys (a seccomp filter around the caller?)"
        }
        _ => return SetupError::io(STEP, &e),
    };
    SetupError::new(STEP, format!("{e}: {why}; {KEEP}"))
}
