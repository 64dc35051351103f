//! The caller's side: start the runner with a plan and hold the sandbox.
//!
//! The plan travels in a sealed memfd (never a file in /tmp), progress and
//! errors come back as typed messages over a SOCK_SEQPACKET socketpair.

mod runner;

use runner::{
    find_runner, job_memfd, runner_exe, runner_in_place, spawn_runner, RunnerFds, SandboxIds,
};

use crate::plan::{ExecPlan, Job, Lifecycle, Plan};
use crate::report::{ExitReport, Report, SetupError};
use crate::spawn::Spawned;
use crate::spec::SandboxSpec;
use crate::state::{SandboxDir, StateError, StateRoot, Status};
use crate::ExecOptions;
use crate::{Context, Error};
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};

/// How to start a sandbox (beyond what the spec says).
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// The `airlock-runner` binary. Default: `$AIRLOCK_RUNNER`, else
    /// `airlock-runner-static` or `airlock-runner` (in that order, in each
    /// directory) beside this program (or in its parent directory), in
    /// `/usr/libexec/airlock`, `/usr/local/libexec/airlock`, or on PATH.
    pub runner: Option<PathBuf>,
    /// Collect a trace of every setup step (see [`Sandbox::trace`]).
    pub verbose: bool,
    /// Called with each setup step as it starts (needs `verbose`).
    pub progress: Option<fn(&str)>,
    /// Who the sandbox is launched for (default: [`Context::current`]).
    pub context: Option<Context>,
    /// Give the sandbox state in the state root (a name, a directory that
    /// other processes find it by), and say how it lives.
    pub lifecycle: Option<LifecycleOptions>,
    /// The runner's stdin, stdout and stderr, which an exec'd process or an
    /// attended workload uses (default: the caller's). A service that
    /// relays a process's output over its API hands it pipes this way.
    pub stdio: Option<std::sync::Arc<[OwnedFd; 3]>>,
    /// The caller's fds 3 to 3+N-1 reach the workload at the same numbers
    /// (OCI's `--preserve-fds`; a `create` carries them until `start`).
    /// A directory or O_PATH fd among them is refused: it would lead back
    /// into the host's tree.
    pub preserve_fds: u32,
}

/// How a sandbox with state lives.
#[derive(Debug, Clone, Default)]
pub struct LifecycleOptions {
    /// Its name (default: the first 12 digits of its id).
    pub name: Option<String>,
    /// The supervisor outlives the caller; the workload's output goes to
    /// logs ([`SandboxDir::log_reader`]), a terminal's too (then
    /// [`SandboxDir::attach`] writes to it), its stdin is /dev/null.
    pub detach: bool,
    /// Detached with logs, without a terminal: stdin is a pipe the
    /// supervisor keeps open, written through [`SandboxDir::attach`]
    /// (podman's `-i`). Otherwise the workload has a stdin already.
    pub stdin: bool,
    /// Set the sandbox up and hold the workload before exec until
    /// [`SandboxDir::request`] with `Start` (create, then start).
    pub hold: bool,
    /// Remove the sandbox's directory when it ends.
    pub remove_on_exit: bool,
    /// Bytes per log file before it is rotated (default 1 MiB).
    pub log_limit: Option<u64>,
    /// A detached workload keeps the caller's stdin, stdout and stderr
    /// instead of logs (an OCI runtime's caller hands it the container's
    /// stdio this way).
    pub keep_stdio: bool,
    /// With a terminal: send its master over this unix socket
    /// (SCM_RIGHTS) instead of proxying it (OCI's `--console-socket`).
    pub console_socket: Option<PathBuf>,
    /// With `console_socket`: the terminal's size (rows, columns), set
    /// before its master is sent (OCI's `process.consoleSize`).
    pub console_size: Option<(u16, u16)>,
    /// PID 1's exit is for the caller's subreaper to reap, as runc's
    /// clients (conmon, containerd's shims) reap the container process
    /// they were given: the supervisor reads the exit without reaping,
    /// records it and exits, and the kernel hands PID 1's zombie on.
    pub leave_pid1_to_reaper: bool,
    /// A detached supervisor stays this process's child instead of
    /// forking once more to leave it: the caller reaps it
    /// ([`Sandbox::into_supervisor`]) or exits soon and leaves it to its
    /// own reaper, as a CLI does. That spares a fork and an exit per
    /// sandbox; without it, a long-lived caller never holds a zombie.
    pub supervisor_stays_child: bool,
    /// Files of the caller's own (a service's record of who owns the
    /// sandbox), written into its directory before its supervisor starts,
    /// so that the sandbox is never there without them. A name is one
    /// plain file name, not one of the state's own (`state.json`, ...).
    pub files: Vec<(String, Vec<u8>)>,
}

/// The state's own files in a sandbox's directory, which
/// [`LifecycleOptions::files`] may not name.
const STATE_FILES: &[&str] = &[
    "state.json",
    "state.lock",
    "plan.json",
    "lock",
    "alive",
    "control.sock",
    "stdout.log",
    "stderr.log",
];

/// Kills a sandbox, or signals it ([`Sandbox::stopper`]): a pidfd on its
/// runner, so it never reaches another process that took the runner's pid.
#[derive(Debug)]
pub struct Stopper(OwnedFd);

impl Stopper {
    pub fn stop(&self) -> std::io::Result<()> {
        self.send(crate::signals::stop_signal())
    }

    /// Pass `sig` on to the workload (or the exec'd process), as
    /// [`Sandbox::signal`] does, from any thread; one the runner does not
    /// pass on (`signals::kept`) is refused.
    pub fn signal(&self, sig: i32) -> std::io::Result<()> {
        if let Some(why) = crate::signals::kept(sig) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("signal {sig} is not passed on to the workload: {why}"),
            ));
        }
        self.send(sig)
    }

    fn send(&self, sig: i32) -> std::io::Result<()> {
        // SAFETY: pidfd_send_signal takes the pidfd we own, a signal
        // number, a null siginfo (the kernel fills in a default) and no
        // flags; nothing is read from or written to our memory.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// A detached sandbox's supervisor that stayed the caller's child
/// ([`LifecycleOptions::supervisor_stays_child`]), for the caller to reap
/// ([`Sandbox::into_supervisor`]). Its pidfd, when one could be opened,
/// becomes readable when it exits; [`Supervisor::reap`] then collects it.
/// Dropped unreaped, it leaves a zombie until this process exits.
#[derive(Debug)]
pub struct Supervisor {
    /// Our child, unreaped until `reap` says it has exited: its pid
    /// cannot be another process's meanwhile.
    pid: rustix::process::Pid,
    pidfd: Option<OwnedFd>,
}

impl Supervisor {
    /// The supervisor's pid on the host.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw_nonzero().get()
    }

    /// A pidfd that becomes readable when the supervisor exits; `None`
    /// when none could be opened (out of fds), when only polling
    /// [`Supervisor::reap`] tells.
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|f| f.as_fd())
    }

    /// Collect the supervisor's exit status if it has exited; `None` while
    /// it runs. Never blocks.
    pub fn reap(&self) -> std::io::Result<Option<std::process::ExitStatus>> {
        use rustix::process::{waitid, WaitId, WaitIdOptions};
        let id = match &self.pidfd {
            Some(fd) => WaitId::PidFd(fd.as_fd()),
            None => WaitId::Pid(self.pid),
        };
        let Some(st) = waitid(id, WaitIdOptions::EXITED | WaitIdOptions::NOHANG)? else {
            return Ok(None);
        };
        // As waitpid would have put it: the code in the second byte, or
        // the signal in the first.
        let raw = match (st.exit_status(), st.terminating_signal()) {
            (Some(code), _) => (code & 0xff) << 8,
            (None, Some(sig)) => sig & 0x7f,
            (None, None) => 0,
        };
        Ok(Some(std::process::ExitStatus::from_raw(raw)))
    }
}

/// A started sandbox: its workload has been exec'd.
#[derive(Debug)]
pub struct Sandbox {
    runner: Spawned,
    trace: Vec<String>,
    /// Our end of the report socket: the exit report arrives on it.
    sock: OwnedFd,
    /// PID 1 of the sandbox, on the host.
    init_pid: i32,
    /// The cgroup file that freezes it, when it has a cgroup.
    freezer: Option<std::path::PathBuf>,
    /// Its cgroup directories (none for an exec, which joins the sandbox's).
    cgroups: Vec<std::path::PathBuf>,
    /// Its directory in the state root, when it has state.
    state: Option<SandboxDir>,
    /// The runner is a detached supervisor that stayed our child, for
    /// [`Sandbox::into_supervisor`].
    stays_child: bool,
    /// The runner was a first process that left the supervisor behind,
    /// and is reaped: its pid may be anyone's now, so the sandbox is
    /// reached through its state directory instead.
    runner_reaped: bool,
}

/// The cgroup directories a job makes (none for an exec, which joins the
/// sandbox's).
fn cgroup_dirs(job: &Job) -> Vec<PathBuf> {
    match job {
        Job::Start(p) => p
            .cgroup
            .iter()
            .flat_map(|c| c.v2.iter().chain(c.v1.values()))
            .cloned()
            .collect(),
        Job::Exec(_) => Vec::new(),
    }
}

/// The caller's fds a sandbox's process is to get must all be open; the
/// runner keeps 3 to 3+N-1 and closes the rest.
fn preserved(count: u32) -> Result<(), Error> {
    crate::sys::preserved_fds_open(count).map_err(|why| Error::Io {
        what: "preserve_fds",
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
    })
}

impl Sandbox {
    /// Validate, check the guardrails, plan, and start `spec`.
    pub fn spawn(spec: &SandboxSpec) -> Result<Sandbox, Error> {
        Self::spawn_with(spec, &SpawnOptions::default())
    }

    /// The one launch path: validate, guardrails, host probe and plan,
    /// each once ([`crate::launch::prepare`]), then start.
    pub fn spawn_with(spec: &SandboxSpec, opts: &SpawnOptions) -> Result<Sandbox, Error> {
        let ctx = opts.context.clone().unwrap_or_else(Context::current);
        let prepared = crate::launch::prepare(spec, &ctx)?;
        Self::start_prepared(prepared.plan, &ctx, opts)
    }

    /// Start a plan made by [`crate::launch::prepare`] (whose findings the
    /// caller has shown).
    pub fn start_prepared(
        mut plan: Plan,
        ctx: &Context,
        opts: &SpawnOptions,
    ) -> Result<Sandbox, Error> {
        plan.verbose = opts.verbose;
        plan.process.preserve_fds = opts.preserve_fds;
        let Some(l) = &opts.lifecycle else {
            return Self::start(&Job::Start(Box::new(plan)), opts, None);
        };
        if l.detach && l.keep_stdio && plan.process.terminal && l.console_socket.is_none() {
            // Its output would go nowhere: no logs, no caller.
            return Err(crate::spec::SpecError::new(
                "process.terminal",
                "a detached terminal that keeps the caller's stdio needs a console socket",
            )
            .into());
        }
        for (name, _) in &l.files {
            let plain = !name.is_empty() && !name.contains('/') && !name.starts_with('.');
            // `.log` and its rotations (`stdout.log.1`) are the logs'.
            if !plain || STATE_FILES.contains(&name.as_str()) || name.contains(".log") {
                return Err(Error::Io {
                    what: "write the caller's files",
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("{name:?} is not a file name of the caller's own"),
                    ),
                });
            }
        }
        let root = StateRoot::open(&ctx.state_root)?;
        let (sb, alive) = root.create(&plan.id, l.name.as_deref(), &plan.spec, l.detach)?;
        for (name, bytes) in &l.files {
            if let Err(e) = sb.write_atomic(name, bytes) {
                let _ = sb.remove();
                return Err(e.into());
            }
        }
        // Cgroups named after this sandbox's fresh id are its own, and
        // nothing else knows them yet: a supervisor killed before its
        // guard was there (or before it recorded them) leaves them behind
        // for this caller to take away. Not a cgroup path the caller gave,
        // which may be another's.
        let ours = format!("airlock-{}", plan.id);
        let own_cgroups = plan
            .cgroup
            .as_ref()
            .map(|c| crate::state::CgroupPaths {
                v2: c.v2.clone(),
                v1: c.v1.clone(),
                made: Vec::new(),
            })
            .filter(|p| {
                p.v2.iter()
                    .chain(p.v1.values())
                    .all(|d| d.file_name() == Some(ours.as_ref()))
            });
        let stays_child = l.detach && l.supervisor_stays_child;
        plan.lifecycle = Some(Lifecycle {
            dir: sb.dir.clone(),
            detached: l.detach,
            hold: l.hold,
            log_limit: l.log_limit.unwrap_or(1 << 20),
            remove_on_exit: l.remove_on_exit,
            keep_stdio: l.keep_stdio,
            console_socket: l.console_socket.clone(),
            console_size: l.console_size,
            stdin: l.stdin,
            leave_pid1_to_reaper: l.leave_pid1_to_reaper,
            stay_child: stays_child,
        });
        match Self::start(&Job::Start(Box::new(plan)), opts, Some(&alive)) {
            Ok(mut s) => {
                if l.detach && !stays_child {
                    // The runner's first process left at once; the
                    // supervisor lives on without us.
                    let _ = s.runner.wait();
                    s.runner_reaped = true;
                }
                s.stays_child = stays_child;
                s.state = Some(sb);
                Ok(s)
            }
            Err(e) => {
                // Nothing of a sandbox that did not start stays behind.
                drop(alive);
                // A supervisor that lived on past a failure of ours (a
                // report we could not read) ends first: its state must not
                // go from under a sandbox that runs. One not listening
                // yet (stuck in its setup) is killed by its pid.
                if sb.alive() {
                    let _ = sb.kill_all();
                }
                if sb.alive() {
                    // Still there: its state stays, for `rm -f` to end it.
                    return Err(e);
                }
                if let Some(paths) = &own_cgroups {
                    crate::cgroup::Cgroup::adopt(paths).remove();
                }
                let _ = sb.remove();
                Err(e)
            }
        }
    }

    /// Start `plan` with this process becoming its supervisor: the runner
    /// is exec'd in this process's place, so nothing of the caller stays
    /// beside the sandbox (`airlock run` in front of one sandbox). The
    /// process keeps its pid, stdio, terminal, session and parent, which
    /// gets the sandbox's exit status as [`ExitReport::code`] says (126 or
    /// 127 for a program that is missing or not executable, 125 when
    /// setup fails), and signals sent to it reach the sandbox as
    /// [`Sandbox::forward_signals`] would pass them on. What a caller of
    /// [`Sandbox::wait`] would learn, the runner prints to stderr: the
    /// trace (`airlock: STEP`, with `opts.verbose`), a failure (`airlock:
    /// error: ...`) and how the sandbox ended; it writes the exit report
    /// as JSON to `report_file`. With a terminal (`process.terminal`) it
    /// holds stdin's terminal in raw mode while the workload's is proxied.
    ///
    /// Returns only when the runner could not be exec'd. A sandbox with
    /// state (`opts.lifecycle`) starts beside its caller instead
    /// ([`Sandbox::start_prepared`]).
    pub fn exec_supervisor(
        mut plan: Plan,
        opts: &SpawnOptions,
        report_file: Option<&Path>,
    ) -> Error {
        let io = |what: &'static str| move |source: std::io::Error| Error::Io { what, source };
        if opts.lifecycle.is_some() {
            return io("exec the runner in place")(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "a sandbox with state starts beside its caller",
            ));
        }
        plan.verbose = opts.verbose;
        if let Err(e) = preserved(opts.preserve_fds) {
            return e;
        }
        plan.process.preserve_fds = opts.preserve_fds;
        let plan_preserve = opts.preserve_fds;
        let status_fds = plan.status_fds.clone();
        let ids = SandboxIds {
            user_ns: plan.user_ns(),
            uid_map: &plan.uid_map,
            gid_map: &plan.gid_map,
        };
        let runner = match find_runner(opts).and_then(|r| runner_exe(r, ids)) {
            Ok(r) => r,
            Err(e) => return e,
        };
        let memfd = match job_memfd(&Job::Start(Box::new(plan))) {
            Ok(fd) => fd,
            Err(e) => return e,
        };
        let mut args: Vec<OsString> =
            vec!["--attended".into(), memfd.as_raw_fd().to_string().into()];
        args.extend(report_file.map(|p| p.as_os_str().to_owned()));
        let inherit = [Some(memfd.as_raw_fd()), None, None];
        let mut runner = runner_in_place(&runner.path, args, inherit, plan_preserve, status_fds);
        io("exec the runner")(runner.exec())
    }

    /// Start a plan as it is, without running the guardrails on its spec
    /// first. The runner still judges every bind source it opens against
    /// `plan.host`; everything else is the caller's responsibility. Meant
    /// for tests that need to change the host between check and start.
    #[doc(hidden)]
    pub fn spawn_plan_unchecked(plan: &Plan, opts: &SpawnOptions) -> Result<Sandbox, Error> {
        Self::start(&Job::Start(Box::new(plan.clone())), opts, None)
    }

    /// Run a further process inside the running sandbox `sb`: it joins
    /// every namespace and cgroup of the sandbox and gets the workload's
    /// seccomp filter, Landlock rules, capability bounds and no_new_privs.
    /// Its stdio is the caller's; [`Sandbox::wait`] gives its status.
    pub fn exec(sb: &SandboxDir, e: &ExecOptions, opts: &SpawnOptions) -> Result<Sandbox, Error> {
        let st = sb.state()?;
        let created = e.allow_created && st.status == Status::Created;
        if st.status != Status::Running && !created {
            let what = match e.allow_created {
                true => "only a created or running sandbox can be exec'd into",
                false => "only a running sandbox can be exec'd into",
            };
            return Err(StateError::WrongStatus {
                name: st.name,
                status: st.status,
                what: what.into(),
            }
            .into());
        }
        // Its runner would freeze as it joined the cgroup, and its caller
        // wait on it for good.
        let frozen = st.cgroup.as_ref().and_then(|c| {
            crate::cgroup::freezer_file(c.v2.as_deref(), c.v1.get("freezer").map(|p| p.as_path()))
        });
        if !e.allow_paused && frozen.is_some_and(|f| crate::cgroup::freeze_asked(&f)) {
            return Err(StateError::WrongStatus {
                name: st.name,
                status: st.status,
                what: "it is paused (its cgroup frozen): resume it first".into(),
            }
            .into());
        }
        let plan = sb.plan()?;
        let process = crate::exec::process(&plan, e)?;
        let job = Job::Exec(Box::new(ExecPlan {
            dir: sb.dir.clone(),
            walls: plan.walls,
            new_session: plan.new_session,
            join: plan.join.clone(),
            namespaces: plan.namespaces.clone(),
            console_socket: e.console_socket.clone(),
            terminal_size: e.tty_size,
            cgroup: st.cgroup,
            process,
            verbose: opts.verbose,
            leave_to_reaper: e.leave_to_reaper,
            die_with_caller: e.die_with_caller,
            id_maps: (plan.uid_map.clone(), plan.gid_map.clone()),
        }));
        Self::start(&job, opts, None)
    }

    /// The sandbox's directory in the state root, when it has state.
    pub fn state(&self) -> Option<&SandboxDir> {
        self.state.as_ref()
    }

    /// Exec the runner with `job` and read its reports until the workload
    /// runs (or setup failed, when nothing of the sandbox is left).
    fn start(
        job: &Job,
        opts: &SpawnOptions,
        alive: Option<&std::fs::File>,
    ) -> Result<Sandbox, Error> {
        // Only a runner in the caller's place has the caller's fds.
        if matches!(job, Job::Start(p) if !p.status_fds.is_empty()) {
            return Err(Error::Io {
                what: "start a sandbox beside its caller",
                source: std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "status fds are written by a runner exec'd in its caller's place (Sandbox::exec_supervisor)",
                ),
            });
        }
        let ids = match job {
            Job::Start(p) => SandboxIds {
                user_ns: p.user_ns(),
                uid_map: &p.uid_map,
                gid_map: &p.gid_map,
            },
            Job::Exec(p) => SandboxIds {
                user_ns: p.namespaces.contains(&crate::namespace::Namespace::User),
                uid_map: &p.id_maps.0,
                gid_map: &p.id_maps.1,
            },
        };
        let preserve = match job {
            Job::Start(p) => p.process.preserve_fds,
            Job::Exec(p) => p.process.preserve_fds,
        };
        preserved(preserve)?;
        let runner = runner_exe(find_runner(opts)?, ids)?;
        let io = |what: &'static str| move |e: std::io::Error| Error::Io { what, source: e };
        let memfd = job_memfd(job)?;
        let (ours, theirs) =
            crate::sys::seqpacket_pair().map_err(io("create the report socket"))?;
        // A detached runner gets none of the caller's terminal, unless the
        // workload is to keep the caller's stdio.
        let detached = matches!(job, Job::Start(p)
            if p.lifecycle.as_ref().is_some_and(|l| l.detached && !l.keep_stdio));
        let fds = RunnerFds {
            plan: memfd.as_raw_fd(),
            sock: theirs.as_raw_fd(),
            alive: alive.map(|f| f.as_raw_fd()),
            preserve,
        };
        let child = spawn_runner(&runner.path, fds, detached, opts.stdio.as_deref())
            .map_err(io("start the runner"))?;
        drop(theirs);
        drop(memfd);
        let mut sandbox = Sandbox {
            runner: child,
            trace: Vec::new(),
            sock: ours,
            init_pid: 0,
            freezer: None,
            cgroups: cgroup_dirs(job),
            state: None,
            stays_child: false,
            runner_reaped: false,
        };
        match sandbox.read_reports(opts.progress) {
            None => Ok(sandbox),
            Some(err) => {
                // Setup failed: the runner exits by itself and takes the
                // namespaces, and so every mount, with it. If the failure
                // was ours (a garbled report), make sure it does.
                let _ = sandbox.kill();
                let _ = sandbox.runner.wait();
                Err(Error::Setup(err))
            }
        }
    }

    /// Read reports until the workload was exec'd or setup failed.
    fn read_reports(&mut self, progress: Option<fn(&str)>) -> Option<SetupError> {
        // Not zeroed: a report is one datagram, read into the spare room.
        let mut buf = Vec::with_capacity(1 << 16);
        loop {
            buf.clear();
            let room = rustix::buffer::spare_capacity(&mut buf);
            match rustix::net::recv(&self.sock, room, rustix::net::RecvFlags::empty()) {
                Ok((0, _)) => {
                    return Some(SetupError::new(
                        "runner",
                        "the runner ended without starting the sandbox",
                    ))
                }
                Ok((n, _)) => match serde_json::from_slice::<Report>(&buf[..n]) {
                    Ok(Report::Progress { step }) => {
                        if let Some(f) = progress {
                            f(&step);
                        }
                        self.trace.push(step)
                    }
                    Ok(Report::Failed(e)) => return Some(e),
                    Ok(Report::Started { pid, freezer }) => {
                        self.init_pid = pid;
                        self.freezer = freezer;
                        return None;
                    }
                    Ok(Report::Exited(_))
                    | Ok(Report::Exec)
                    | Ok(Report::Held)
                    | Ok(Report::Namespaces { .. })
                    | Ok(Report::RuntimeHooks)
                    | Ok(Report::Terminal) => {}
                    Err(e) => {
                        return Some(SetupError::new("runner", format!("garbled report: {e}")))
                    }
                },
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Some(SetupError::io("read the runner's reports", &e.into())),
            }
        }
    }

    /// Hold the signals [`Sandbox::forward_signals`] passes on (call before
    /// starting, from a single-threaded program such as a CLI): one that
    /// arrives while the sandbox starts waits, then is forwarded.
    pub fn hold_signals() {
        crate::signals::block();
    }

    /// Forward the signals this process receives to the sandbox from now
    /// on (a CLI in front of one sandbox): every catchable one but
    /// SIGCHLD, the faults, SIGPIPE, SIGXCPU, SIGXFSZ, job control's, 32
    /// to 34 and 36 (`signals::forwarded`). This takes over SIGALRM,
    /// SIGPROF, SIGIO and the real-time signals of the whole process: not
    /// for a program that uses them itself (timers, profilers).
    /// `own_session`: the workload is in a session of its own, so
    /// terminal-generated signals must be passed on too.
    /// A detached sandbox whose supervisor is not our child gets nothing
    /// forwarded (its pid is not ours to follow): signal it with
    /// [`Sandbox::signal`].
    pub fn forward_signals(&self, own_session: bool) {
        if !self.runner_reaped {
            crate::signals::forward_to(self.runner.id() as i32, own_session);
        }
    }

    /// The setup steps, in order (empty unless `verbose` was set).
    pub fn trace(&self) -> &[String] {
        &self.trace
    }

    /// The directories of the sandbox's cgroups on the host (its limits
    /// and counters are there), when it has any.
    pub fn cgroups(&self) -> &[std::path::PathBuf] {
        &self.cgroups
    }

    /// The PID of the runner (the sandbox's supervisor) on the host.
    pub fn pid(&self) -> u32 {
        let recorded = || self.state.as_ref()?.state().ok()?.supervisor_pid;
        match self.runner_reaped {
            true => recorded().map_or(0, |p| p as u32),
            false => self.runner.id(),
        }
    }

    /// Send a signal to the sandbox; it is forwarded to the workload.
    /// SIGKILL kills the whole sandbox (as [`Sandbox::kill`]); a signal
    /// the supervisor does not pass on (`signals::kept`: faults, SIGCHLD,
    /// job control's) is refused, since it would act on the supervisor.
    pub fn signal(&self, sig: i32) -> std::io::Result<()> {
        let sig = if sig == libc::SIGKILL {
            crate::signals::stop_signal()
        } else {
            sig
        };
        if let Some(why) =
            crate::signals::kept(sig).filter(|_| sig != crate::signals::stop_signal())
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("signal {sig} is not passed on to the workload: {why}"),
            ));
        }
        if self.runner_reaped {
            // Through the supervisor's control socket, by the state.
            let sb = self.state.as_ref().expect("a detached sandbox has state");
            let sig = match sig == crate::signals::stop_signal() {
                true => libc::SIGKILL,
                false => sig,
            };
            return sb.signal(sig).map_err(std::io::Error::other);
        }
        // SAFETY: kill takes no pointers; the pid is our own child's, which
        // we have not reaped yet, so it cannot have been reused.
        if unsafe { libc::kill(self.runner.id() as i32, sig) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// A handle that kills the sandbox from another thread while this one
    /// waits for it (a service whose client went away).
    pub fn stopper(&self) -> std::io::Result<Stopper> {
        if self.runner_reaped {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "the supervisor of a detached sandbox is not this process's child: stop it through its state (signal, SandboxDir::stop)",
            ));
        }
        let pid = rustix::process::Pid::from_raw(self.runner.id() as i32)
            .ok_or_else(|| std::io::Error::other("the runner has no pid"))?;
        Ok(Stopper(rustix::process::pidfd_open(
            pid,
            rustix::process::PidfdFlags::empty(),
        )?))
    }

    /// Kill every process of the sandbox (through its cgroup when it has
    /// one, so double-forked processes go too); `wait` then reports it.
    pub fn kill(&self) -> std::io::Result<()> {
        self.signal(crate::signals::stop_signal())
    }

    /// Freeze every process of the sandbox (its cgroup's freezer), or thaw
    /// it again. Only a sandbox with a cgroup (resource limits, or a shared
    /// PID namespace) can be frozen. A freeze returns once every process
    /// is frozen ([`crate::cgroup::set_frozen`]); one that does not
    /// complete within [`crate::cgroup::FREEZE_WITHIN`] is thawed again and
    /// is an error of kind `TimedOut`.
    pub fn freeze(&self, frozen: bool) -> std::io::Result<()> {
        let Some(file) = &self.freezer else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this sandbox has no cgroup to freeze (give it a resource limit)",
            ));
        };
        crate::cgroup::set_frozen(file, frozen)
    }

    /// PID 1 of the sandbox (of an exec, the exec'd process), as the
    /// host sees it.
    pub fn init_pid(&self) -> i32 {
        self.init_pid
    }

    /// The supervisor of a detached sandbox started with
    /// [`LifecycleOptions::supervisor_stays_child`], which stayed this
    /// process's child and is this process's to reap; refused for any
    /// other sandbox, whose runner is not ours to reap (a forked-away
    /// supervisor's intermediate was reaped at start, and an attended
    /// runner is [`Sandbox::wait`]'s).
    pub fn into_supervisor(self) -> Result<Supervisor, Error> {
        let pid = rustix::process::Pid::from_raw(self.runner.id() as i32);
        let (true, Some(pid)) = (self.stays_child, pid) else {
            return Err(Error::Io {
                what: "take the supervisor",
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "only a detached sandbox started with supervisor_stays_child has a supervisor to reap",
                ),
            });
        };
        // Best effort: without a pidfd, polling `reap` still works.
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::NONBLOCK).ok();
        Ok(Supervisor { pid, pidfd })
    }

    /// Wait for the sandbox to end; the report says how it ended and what
    /// it used.
    pub fn wait(mut self) -> Result<ExitReport, Error> {
        let mut report = None;
        // A step that failed after the start (the terminal's proxy, a
        // console socket): what the runner's 125 is about.
        let mut failed = None;
        let mut buf = Vec::with_capacity(1 << 16);
        loop {
            buf.clear();
            let room = rustix::buffer::spare_capacity(&mut buf);
            match rustix::net::recv(&self.sock, room, rustix::net::RecvFlags::empty()) {
                Ok((0, _)) => break,
                Ok((n, _)) => match serde_json::from_slice::<Report>(&buf[..n]) {
                    Ok(Report::Exited(r)) => report = Some(r),
                    Ok(Report::Failed(e)) => failed = Some(e),
                    _ => {}
                },
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
        }
        let status = self.runner.wait();
        if let Some(r) = report {
            // Received: the runner's own status adds nothing to it.
            return Ok(r);
        }
        let status = status.map_err(|e| Error::Io {
            what: "wait for the runner",
            source: e,
        })?;
        if self.runner_reaped {
            // The runner reaped was only the process that left the
            // supervisor behind (its 0 says nothing of the sandbox): a
            // supervisor that ended without a report left its end in the
            // state, if anything.
            return self.ended_without_report();
        }
        if let Some(e) = failed {
            return Err(Error::Setup(e));
        }
        // Killed itself (OOM, SIGKILL), the supervisor says nothing of the
        // workload: its 128+N is not the workload's status.
        if let (None, Some(s)) = (status.code(), status.signal()) {
            return Err(Error::Io {
                what: "wait for the sandbox",
                source: std::io::Error::other(format!(
                    "its supervisor was killed by signal {s} before it reported how the sandbox ended"
                )),
            });
        }
        Ok(ExitReport::from_code(status.code().unwrap_or(125)))
    }

    /// How a detached sandbox whose supervisor sent no exit report ended,
    /// from its state: an error when that says nothing either (the
    /// supervisor was killed before it recorded the end).
    fn ended_without_report(&self) -> Result<ExitReport, Error> {
        let lost = |why: String| Error::Io {
            what: "wait for the sandbox",
            source: std::io::Error::other(why),
        };
        let Some(sb) = self.state.as_ref() else {
            return Err(lost("its supervisor ended without a report".into()));
        };
        // A detached supervisor may have let our socket go long before
        // the sandbox ends: its end is what is waited for.
        sb.wait_ended(None);
        match sb.state() {
            Ok(st) => st.exit.ok_or_else(|| {
                lost(format!(
                    "its supervisor ended without recording how ({})",
                    st.reason.as_deref().unwrap_or("no reason recorded")
                ))
            }),
            Err(_) if !sb.dir.exists() => {
                Err(lost("it was removed on its exit, with how it ended".into()))
            }
            Err(e) => Err(lost(format!("its supervisor ended without a report: {e}"))),
        }
    }
}
