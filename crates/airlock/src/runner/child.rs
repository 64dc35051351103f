//! Inside the new namespaces: the setup sequence, top to bottom in the
//! order the kernel needs it, then our init or the workload.
//!
//! This process is PID 1 of the sandbox. It runs as root of the new user
//! namespace (all capabilities there, none on the host) until it forks the
//! workload, then drops everything and only reaps and forwards signals.

use super::report::{Report, Reporter, SetupError, StepExt};
use super::sources::Sources;
use super::{exec, hooks, identity, mount, net, signals, time};
use crate::plan::Plan;
use crate::spec::InitMode;
use rustix::fs::{Mode, OFlags};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Run the sandbox side. Never returns. `hold`: wait for a byte on it
/// before the workload's exec (a created sandbox).
pub fn main(
    plan: Plan,
    go: OwnedFd,
    report: Reporter,
    hold: Option<OwnedFd>,
    sources: Sources,
    userns: Option<OwnedFd>,
) -> ! {
    let (go, slave) = match setup(&plan, go, report, sources, userns) {
        Ok(x) => x,
        Err(e) => {
            report.failed(&e);
            std::process::exit(125);
        }
    };
    match plan.init {
        InitMode::Workload => {
            let e = become_workload(
                &plan,
                report,
                Some(&go),
                hold.as_ref(),
                slave.as_ref(),
                None,
            );
            report.failed(&e);
            std::process::exit(exit_code(&e));
        }
        InitMode::Airlock => {
            // Hold signals until init can forward them; the workload
            // unblocks them for itself before exec.
            signals::block();
            let stand_by = match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
                Ok(p) => p,
                Err(e) => {
                    report.failed(&SetupError::io("create a pipe", &e.into()));
                    std::process::exit(125);
                }
            };
            // SAFETY: single-threaded process; the child only runs
            // become_workload, which execs or exits.
            match unsafe { crate::sys::fork() } {
                -1 => {
                    let e = SetupError::io("fork the workload", &std::io::Error::last_os_error());
                    report.failed(&e);
                    std::process::exit(125);
                }
                0 => {
                    crate::sys::exit_on_panic();
                    drop(stand_by.0);
                    let e = become_workload(
                        &plan,
                        report,
                        None,
                        hold.as_ref(),
                        slave.as_ref(),
                        Some(stand_by.1),
                    );
                    report.failed(&e);
                    // SAFETY: _exit skips atexit handlers that belong to the parent.
                    unsafe { libc::_exit(exit_code(&e)) }
                }
                pid => {
                    // Stand by until the workload has exec'd (or waits to
                    // be started, or died). The kernel may leave a new
                    // task queued behind its parent on the parent's CPU,
                    // and what init does first (drop its capabilities,
                    // give memory back) then held the workload's setup up
                    // by a third of a millisecond on this 2-CPU machine.
                    // Signals stay held until init runs: none is lost.
                    drop(stand_by.1);
                    wait_for_close(&stand_by.0);
                    drop(stand_by.0);
                    // The workload holds the report socket until its exec;
                    // our copy must go so the caller sees end-of-file then.
                    // SAFETY: the report fd is ours and not used after this.
                    unsafe { libc::close(super::report::report_fd()) };
                    let own_session = plan.new_session;
                    // The caller's preserved fds are the workload's: kept
                    // here, a pipe among them would never see end-of-file
                    // when the workload closed it.
                    let _ = crate::sys::close_preserved(plan.process.preserve_fds);
                    // Init stays for the sandbox's whole life: it keeps
                    // nothing of the plan (init::run gives the memory back).
                    drop((go, hold, slave, plan));
                    super::init::run(pid, own_session)
                }
            }
        }
    }
}

fn exit_code(e: &SetupError) -> i32 {
    e.kind.exit_code()
}

/// Returns the supervisor's pipe, still open (a workload that is PID 1
/// re-arms its parent-death signal after its own uid change and checks
/// it), and the workload's terminal when it has one.
fn setup(
    plan: &Plan,
    go: OwnedFd,
    report: Reporter,
    sources: Sources,
    userns: Option<OwnedFd>,
) -> Result<(OwnedFd, Option<OwnedFd>), SetupError> {
    // The supervisor writes our id maps from outside, then says go. It
    // keeps its end of the pipe open for as long as it lives.
    let mut byte = [0u8; 1];
    match rustix::io::read(&go, &mut byte) {
        Ok(1) => {}
        _ => std::process::exit(125),
    }
    // Before any filter of the workload's (which may not allow it), for
    // everything the sandbox runs: lowering needs no privilege.
    super::sched::lower_priority_limits(0, &plan.process.rlimits)?;

    if let Some(owner) = userns {
        // Cloned into a joined PID namespace with nothing new: its owner
        // is our user namespace, where we make the rest.
        report.progress(|| "join the pid namespace's user namespace".into());
        super::pidns::join_owner(plan, &owner)?;
        // The join changed our credentials (see `enter::run`).
        not_dumpable()?;
    }
    if plan.user_ns() {
        become_namespace_root(plan, report)?;
        // The uid change leaves us dumpable where fs.suid_dumpable = 1.
        not_dumpable()?;
    }
    if plan.cgroupns_after_v1() {
        // In every v1 cgroup of the sandbox now (the supervisor put us
        // there before "go"): the namespace is rooted at them.
        report.progress(|| "unshare the cgroup namespace, rooted at the sandbox's cgroups".into());
        // SAFETY: a new cgroup namespace changes what /proc/self/cgroup
        // shows, nothing this single-threaded process holds in memory
        // (no fd table or memory is unshared).
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWCGROUP) }
            .step(|| "unshare the cgroup namespace".into())?;
    }

    // Die with the supervisor. Armed only now, because every change of
    // our uid clears it. The supervisor may have died before it was armed:
    // then its end of the pipe is closed.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .step(|| "set parent-death signal".into())?;
    if supervisor_gone(&go)? {
        std::process::exit(125);
    }

    // Clocks before anything else of ours lives in the namespace: offsets
    // can be set only while it is empty. Through the file the supervisor
    // opened for us and sent before "go" (see time.rs): we never become
    // dumpable, which would let our user namespace's owner ptrace us.
    if let Some(clocks) = &plan.clocks {
        report.progress(|| "time namespace: clocks start near the spec's values".into());
        // SAFETY: the report fd is the inner socket, open until our exec.
        let inner = unsafe { BorrowedFd::borrow_raw(super::report::report_fd()) };
        let offsets = match crate::sys::recv_with_fds(
            inner,
            &mut [0u8; 1],
            rustix::net::RecvFlags::empty(),
        ) {
            Ok((1, fds)) if fds.len() == 1 => fds.into_iter().next(),
            _ => None,
        }
        .ok_or_else(|| SetupError::new("time namespace", "the supervisor sent no offsets file"))?;
        time::enter(clocks, offsets)?;
    }

    // From here on nothing in the sandbox may ptrace us or open our
    // /proc/PID files.
    not_dumpable()?;

    if plan.lifecycle.is_some() {
        // Every namespace is ours now (time included): hand them to the
        // supervisor, which gives them to `exec`. Joining through these
        // fds needs no ptrace access to us, which a rootless caller
        // lacks now that we are not dumpable.
        // The joined ones too: exec takes them from here, not from their
        // paths again, which may lead elsewhere by then. And those it
        // shares with whoever made it: an exec from elsewhere (a shell
        // outside the service that ran a --share-net sandbox in its own
        // network namespace) joins the sandbox's, not its own.
        send_namespaces(&crate::namespace::Namespace::ALL, report)?;
    }

    // Through /proc/sys, which shows the namespaces of whoever opens it:
    // ours, while the host's /proc is still mounted.
    crate::sys::write_sysctls(&plan.sysctls, report)?;

    // Before any mount of the sandbox's: what init reads of itself later.
    crate::sys::keep_stack_end();
    if plan.filesystem.caller_maps.is_some() {
        // Mount points, --dir and --file in a writable bind of the caller's
        // are made as the workload where our ids have no mapping there.
        crate::fs::make_as_where_unmapped(plan.process.uid, plan.process.gid);
    }
    let trees = mount::prepare(plan, sources, report)?;
    let protections = mount::apply(plan, &trees, report)?;
    // Every source is opened and judged: the host's sockets are no longer
    // ours to list.
    crate::check::forget_host_socket_view();
    // The root at its host path too while the hooks run, as runc's is.
    let hooks_root = match plan.hooks.runtime.is_empty() && plan.hooks.create.is_empty() {
        true => None,
        false => Some(super::hook_root::bind(plan, report)?),
    };
    if !plan.hooks.runtime.is_empty() {
        // OCI's order: prestart and createRuntime (the supervisor's, in
        // the host's namespaces) before createContainer and pivot_root.
        report.progress(|| "wait for the runtime's hooks".into());
        report.send(&Report::RuntimeHooks);
        wait_for_runtime_hooks(report)?;
    }
    if !plan.hooks.create.is_empty() {
        report.progress(|| "run the hooks inside, before pivot_root".into());
        let place = hooks::Place::BeforePivot {
            host: trees.host.as_fd(),
            root: trees.root.as_fd(),
        };
        // As the container sees it (as runc's are given): PID 1 here.
        let pid = hooks::own_pid();
        hooks::run(
            &plan.hooks.create,
            &plan.hooks.state,
            "creating",
            pid,
            &place,
            &[],
            None,
        )?;
    }
    if let Some(aliases) = hooks_root {
        super::hook_root::unbind(aliases, report)?;
    }
    mount::protect(plan, &trees, protections, report)?;
    crate::mountinfo::forget();
    mount::enter(trees, report)?;
    if plan.filesystem.caller_maps.is_some() && supervisor_gone(&go)? {
        // Made files as the workload, our parent-death signal was cleared
        // for a moment each time (see fs::creating): a supervisor that
        // died then sent none.
        std::process::exit(125);
    }
    if !plan.filesystem.lock_files.is_empty() {
        report.progress(|| "lock the lock files".into());
        super::lock_file::hold(&plan.filesystem.lock_files)?;
    }

    if let Some(name) = &plan.hostname {
        report.progress(|| format!("hostname {name}"));
        rustix::system::sethostname(name.as_bytes()).step(|| "hostname".into())?;
    }
    if let Some(name) = &plan.domainname {
        report.progress(|| format!("domain name {name}"));
        rustix::system::setdomainname(name.as_bytes()).step(|| "domain name".into())?;
    }
    if plan.loopback {
        report.progress(|| "bring up lo".into());
        net::loopback_up()?;
    }
    if plan.new_session {
        // PID 1 gets its own session too: then nothing in the sandbox has
        // the caller's terminal as its controlling terminal.
        rustix::process::setsid().step(|| "setsid".into())?;
    }
    let slave = if plan.process.terminal {
        Some(open_terminal(plan, report)?)
    } else {
        None
    };
    Ok((go, slave))
}

/// Become root of the new user namespace if it is mapped (a root caller's
/// sandbox), so what setup creates is owned by sandbox root. Host root
/// launching for an unprivileged caller (a service acting for a client)
/// is not mapped in that caller's namespace at all (the kernel shows it
/// as the overflow id): it becomes the caller's own id there, which is
/// what the caller's own runner would be. Either way the capabilities the
/// namespace's creator holds stay: the kernel drops them only when a
/// process leaves the namespace's root, which an unmapped one never was.
fn become_namespace_root(plan: &Plan, report: Reporter) -> Result<(), SetupError> {
    let Some(NamespaceRoot { uid, gid, .. }) = namespace_root(plan) else {
        return Ok(());
    };
    report.progress(|| format!("become {uid}:{gid} of the namespace"));
    if plan.process.setgroups {
        // The caller's supplementary groups (host root's 0 among them)
        // are not ours to keep: PID 1 lives as long as the sandbox.
        rustix::thread::set_thread_groups(&[]).step(|| "drop the caller's groups".into())?;
    }
    let g = rustix::process::Gid::from_raw(gid);
    let u = rustix::process::Uid::from_raw(uid);
    rustix::thread::set_thread_res_gid(g, g, g).step(|| format!("setresgid {gid}"))?;
    rustix::thread::set_thread_res_uid(u, u, u).step(|| format!("setresuid {uid}"))?;
    Ok(())
}

/// Who PID 1 becomes in its new user namespace ([`become_namespace_root`]).
pub(super) struct NamespaceRoot {
    pub uid: u32,
    pub gid: u32,
    /// `uid` as the host sees it.
    pub host_uid: u32,
}

/// Who PID 1 becomes in its new user namespace, if anyone: root there if
/// both maps hold 0, else, for a caller that is not root and a runner not
/// mapped there (a service acting for a client), the first ids mapped.
pub(super) fn namespace_root(plan: &Plan) -> Option<NamespaceRoot> {
    let zero = |m: &&crate::spec::IdMap| m.inside == 0;
    // Judged by the host uid, not by geteuid() in here: an unmapped
    // process sees itself as the overflow uid (65534), which a caller's
    // map may well hold (`--uid 65534`), and setup would then run as the
    // host's root.
    let mapped_here = plan
        .uid_map
        .iter()
        .any(|m| (m.outside..m.outside.saturating_add(m.count)).contains(&host_euid()));
    let (u, g) = match (
        plan.uid_map.iter().find(zero),
        plan.gid_map.iter().find(zero),
    ) {
        (Some(u), Some(g)) => (u, g),
        _ => match (plan.uid_map.first(), plan.gid_map.first()) {
            (Some(u), Some(g)) if !plan.caller.is_root() && !mapped_here => (u, g),
            _ => return None,
        },
    };
    Some(NamespaceRoot {
        uid: u.inside,
        gid: g.inside,
        host_uid: u.outside,
    })
}

static HOST_EUID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(u32::MAX);

/// Note the runner's effective uid on the host, before any user
/// namespace of the sandbox's hides it.
pub(super) fn remember_host_euid() {
    HOST_EUID.store(
        rustix::process::geteuid().as_raw(),
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// The runner's effective uid on the host (u32::MAX, which no map holds,
/// if it was never noted).
fn host_euid() -> u32 {
    HOST_EUID.load(std::sync::atomic::Ordering::Relaxed)
}

/// The workload's terminal, from the sandbox's own devpts now that it is
/// mounted; the master goes to the supervisor, which proxies it.
fn open_terminal(plan: &Plan, report: Reporter) -> Result<OwnedFd, SetupError> {
    report.progress(|| "open a pseudo-terminal".into());
    let pty = super::tty::open((plan.process.uid, plan.process.gid))?;
    if super::dev::has_console(plan) {
        report.progress(|| "bind it onto /dev/console".into());
        super::tty::bind_console(&pty.slave)?;
    }
    report
        .send_with_fds(&super::report::Report::Terminal, &[pty.master.as_fd()])
        .step(|| "send the terminal to the supervisor".into())?;
    Ok(pty.slave)
}

/// Read `fd` until its writers are gone (end of file, or an error).
fn wait_for_close(fd: &OwnedFd) {
    let mut b = [0u8; 1];
    loop {
        match rustix::io::read(fd, &mut b) {
            Ok(0) => return,
            Ok(_) | Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
    }
}

/// The workload's own steps: identity, capabilities, limits, cwd, fds, exec.
/// `go`: the supervisor's pipe when the workload is PID 1 itself.
/// `stand_by`: what our init waits on (it forked us); closed at the exec
/// (it is close-on-exec), or here before waiting to be started.
fn become_workload(
    plan: &Plan,
    report: Reporter,
    go: Option<&OwnedFd>,
    hold: Option<&OwnedFd>,
    terminal: Option<&OwnedFd>,
    mut stand_by: Option<OwnedFd>,
) -> SetupError {
    let p = &*exec::with_home(&plan.process);
    let mut run = || -> Result<(), SetupError> {
        if plan.new_session && plan.init == InitMode::Airlock {
            rustix::process::setsid().step(|| "setsid".into())?;
        }
        if let Some(t) = terminal {
            super::tty::attach(t)?;
        }
        lock_down(&plan.walls, p, report, || match go {
            // The uid change cleared the parent-death signal; as PID 1 the
            // workload must still die with the supervisor.
            Some(go) => {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))
                .step(|| "set parent-death signal".into())?;
                if supervisor_gone(go)? {
                    std::process::exit(125);
                }
                Ok(())
            }
            None => Ok(()),
        })?;
        if let Some(field) = &plan.assert_userns_disabled {
            // Every wall is up; nothing of ours runs after this but the
            // exec (and, for a held sandbox, the wait for start).
            super::nested_user::assert_disabled(field)?;
        }
        if let Some(h) = hold {
            // What start would exec must be there now: a create that
            // succeeds promises a start that can.
            exec::look_up(p)?;
            // Waiting to be started can take any time: PID 1 goes on.
            drop(stand_by.take());
            report.send(&super::report::Report::Held);
            let mut b = [0u8; 1];
            match rustix::io::read(h, &mut b) {
                Ok(1) => {}
                // The supervisor is gone: nothing will ever start us.
                _ => std::process::exit(125),
            }
        }
        if !plan.hooks.start.is_empty() {
            report.progress(|| "run the hooks inside, before the exec".into());
            hooks::run(
                &plan.hooks.start,
                &plan.hooks.state,
                "created",
                hooks::own_pid(),
                &hooks::Place::Inside,
                &[],
                None,
            )?;
        }
        report.progress(|| format!("exec {}", p.args[0]));
        Ok(())
    };
    if let Err(e) = run() {
        return e;
    }
    report.send(&super::report::Report::Exec);
    if let Err(e) = install_given_filters(&plan.walls) {
        return e;
    }
    exec::exec(p)
}

/// The working directory, found inside our root through no /proc magic
/// link (/dev/fd/N, /proc/PID/cwd): in a running sandbox (`exec`) the tree
/// is the workload's to change, and such a link leads into another
/// process's tree, or to a directory of the host held open (runc's
/// CVE-2024-21626). The spec's check reads the path as written; a link on
/// the way is only resolved here.
fn open_cwd(p: &crate::plan::ProcessPlan) -> Result<OwnedFd, SetupError> {
    let step = || format!("process.cwd: chdir {}", p.cwd);
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .step(step)?;
    crate::fs::open_in(&root, &p.cwd, OFlags::PATH | OFlags::DIRECTORY).map_err(|e| {
        match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::EXDEV) => SetupError {
                errno: e.raw_os_error(),
                ..SetupError::new(
                    "process.cwd",
                    format!("{} goes through a /proc magic link (or a loop of symbolic links), which no working directory may", p.cwd),
                )
            },
            _ => SetupError::io(step(), &e),
        }
    })
}

/// Enter the working directory `found` ([`open_cwd`]) as the workload's
/// user: by its path, so that the search rights on the way are the
/// workload's (the directory may have been found before the ids changed,
/// where a filter that refuses openat2 comes before them), and only if
/// the path still leads there.
fn enter_cwd(p: &crate::plan::ProcessPlan, found: &OwnedFd) -> Result<(), SetupError> {
    let step = || format!("process.cwd: chdir {}", p.cwd);
    rustix::process::chdir(p.cwd.as_str()).step(step)?;
    let (here, there) = (
        rustix::fs::stat(".").step(step)?,
        rustix::fs::fstat(found).step(step)?,
    );
    if (here.st_dev, here.st_ino) != (there.st_dev, there.st_ino) {
        return Err(SetupError::new(
            "process.cwd",
            format!("{} led elsewhere while it was entered", p.cwd),
        ));
    }
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    let fs = rustix::fs::statfs(".").step(|| format!("process.cwd: statfs {}", p.cwd))?;
    if fs.f_type as i64 == PROC_SUPER_MAGIC {
        return Err(SetupError::new(
            "process.cwd",
            format!(
                "{} resolves into /proc, where no working directory may be",
                p.cwd
            ),
        ));
    }
    Ok(())
}

/// The last steps of every process that runs in a sandbox (the workload,
/// or one exec'd into it), in an order that keeps each possible: Landlock
/// and seccomp, the ids and capabilities (`after_identity` runs right
/// after the uid change), the working directory, close-on-exec for every
/// fd above 2, and a clean signal state.
pub(super) fn lock_down(
    walls: &crate::plan::Walls,
    p: &crate::plan::ProcessPlan,
    report: Reporter,
    after_identity: impl FnOnce() -> Result<(), SetupError>,
) -> Result<(), SetupError> {
    if let Some(persona) = p.personality {
        // Before the filter, which allows the workload only the common
        // values: the domain and flags are the bundle's to choose.
        // SAFETY: personality takes a plain value and touches no memory.
        let r = unsafe { libc::personality(persona as libc::c_ulong) };
        if r == -1 {
            return Err(SetupError::io(
                "linux.personality",
                &std::io::Error::last_os_error(),
            ));
        }
    }
    if let Some(mask) = p.umask {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask));
    }
    // Landlock, then (once the ids are the workload's, so a hard limit is
    // raised in neither order) the rlimits, then the filter: the rlimits
    // after the last of our own setup that takes a file descriptor, so a
    // low `nofile` is the workload's limit and not Landlock's failure,
    // and before a filter that might refuse setrlimit.
    // Its paths opened now, with our ids; enforced below.
    let ruleset = super::landlock::prepare(walls.landlock.as_ref(), report)?;
    let landlock = || super::landlock::restrict(ruleset);
    let filter = || -> Result<(), SetupError> {
        let own = walls.own_seccomp();
        report.progress(|| format!("seccomp: install {} programs", own.len()));
        crate::seccomp::install(own, walls.seccomp_log)
            .map_err(|(_, e)| SetupError::io("seccomp: install the filter", &e))
    };
    // A change of ids makes the process dumpable again where
    // fs.suid_dumpable is 1, open to a ptrace from the sandbox until its
    // exec: it is made not dumpable again right after.
    let ids = || -> Result<(), SetupError> {
        identity::apply(p)?;
        not_dumpable()?;
        after_identity()
    };
    // Everything above 2 closes at exec, the report socket included,
    // which is how the caller learns that exec succeeded; the caller's
    // preserved fds (3 to 3+N-1, never ours: they were open before any
    // of ours) stay. Before the filter: a profile written before
    // close_range (older Docker and containerd ones) would refuse it.
    let first = 3 + p.preserve_fds;
    crate::sys::cloexec_from(first).step(|| "close inherited fds".into())?;
    for fd in 3..first {
        // SAFETY: fds 3..first were open in the caller and kept at these
        // numbers by every process since; only their flags change.
        let f = unsafe { BorrowedFd::borrow_raw(fd as i32) };
        rustix::io::fcntl_setfd(f, rustix::io::FdFlags::empty())
            .step(|| format!("--preserve-fds: fd {fd}"))?;
    }
    // Before any filter of the spec's: answered by one, a drop would look
    // like a capability this kernel does not have.
    identity::drop_bounding_set(p)?;
    if p.no_new_privs {
        ids()?;
        // Before the filter, which could refuse what it takes.
        enter_cwd(p, &open_cwd(p)?)?;
        // As late as possible, so neither judges our own setup.
        landlock()?;
        identity::set_rlimits(p)?;
        filter()?;
    } else {
        // Without no_new_privs the kernel wants CAP_SYS_ADMIN to apply
        // Landlock or load a filter, which holds only until
        // identity::apply drops it.
        // Found before the filter, which may refuse openat2.
        let cwd = open_cwd(p)?;
        landlock()?;
        filter()?;
        ids()?;
        identity::set_rlimits(p)?;
        enter_cwd(p, &cwd)?;
    }
    signals::reset_for_exec();
    Ok(())
}

/// The supervisor's answer once it has run the runtime's hooks; a failed
/// hook kills us instead, and the supervisor reports it.
fn wait_for_runtime_hooks(report: Reporter) -> Result<(), SetupError> {
    let Some(sock) = report.caller() else {
        return Ok(());
    };
    let mut answer = [0u8; 8];
    loop {
        match rustix::net::recv(sock, &mut answer, rustix::net::RecvFlags::empty()) {
            Ok((n, _)) if n > 0 => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            _ => std::process::exit(125),
        }
    }
}

/// Nothing in the sandbox may ptrace us or open our /proc/PID files (runc's
/// CVE-2016-9962 and CVE-2019-5736 classes).
pub(super) fn not_dumpable() -> Result<(), SetupError> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .step(|| "make the process not dumpable".into())
}

/// The caller's own compiled filters (`seccomp_filters`), the last step
/// before the exec, after the report that says it comes (as bubblewrap
/// installs them: nothing of ours runs under them, so they need allow
/// none of it, and none of our setup can be misled by what they answer).
/// no_new_privs is set (validation insists): no privilege is needed.
pub(super) fn install_given_filters(walls: &crate::plan::Walls) -> Result<(), SetupError> {
    crate::seccomp::install(walls.given_seccomp(), walls.seccomp_log)
        .map_err(|(j, e)| SetupError::io(format!("seccomp_filters[{j}]: install"), &e))
}

/// The namespaces of this process that the spec made new, as fds, sent
/// to the supervisor (SCM_RIGHTS) in one `Namespaces` report.
fn send_namespaces(
    namespaces: &[crate::namespace::Namespace],
    report: Reporter,
) -> Result<(), SetupError> {
    let mut fds = Vec::new();
    let mut names = Vec::new();
    for ns in namespaces {
        let path = format!("/proc/self/ns/{}", ns.proc_name());
        let fd = match rustix::fs::open(
            path.as_str(),
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            // A kind this kernel does not have (time before 5.6).
            Err(rustix::io::Errno::NOENT) => continue,
            r => r.step(|| format!("open {path}"))?,
        };
        fds.push(fd);
        names.push(*ns);
    }
    let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    report
        .send_with_fds(&super::report::Report::Namespaces { names }, &borrowed)
        .step(|| "send the namespaces to the supervisor".into())
}

/// Has the supervisor closed its end of the go pipe (that is, died)?
fn supervisor_gone(go: &OwnedFd) -> Result<bool, SetupError> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut pfd = [PollFd::new(go, PollFlags::IN)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut pfd, Some(&now)).step(|| "check the supervisor is alive".into())?;
    Ok(pfd[0].revents().contains(PollFlags::HUP))
}
