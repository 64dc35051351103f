//! The runner: the freshly exec'd, single-threaded helper that carries out
//! a [`Plan`]. Library callers and the daemon are multi-threaded, and work
//! between fork and exec in a multi-threaded process is unsafe, so all
//! setup happens here instead.
//!
//! Its outer half, the supervisor, stays on the host side: it clones the
//! sandbox's PID 1 into new namespaces, writes the id maps from outside,
//! forwards signals, and exits with PID 1's status. One module per kernel
//! concern does the rest (`mount`, `dev`, `time`, `net`, `identity`, ...).

// Shared with the caller's side, which must not import runner internals.
use crate::{fs, report, signals};

mod child;
mod clone;
mod copy_up;
mod dev;
mod ending;
mod enter;
mod exec;
mod guard;
mod hook_root;
pub mod hooks;
mod identity;
mod idmap;
mod init;
mod interp;
pub mod landlock;
mod layer_lock;
mod lock_file;
mod logs;
mod mount;
mod nested_user;
mod net;
mod overlay;
mod pidns;
mod protect;
mod sched;
mod sources;
mod status_fd;
mod supervisor;
mod time;
mod tty;
mod upper;
mod watch;

use crate::plan::Job;
use report::{report_fd, Reporter, SetupError, StepExt};
use std::io::Read;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};

/// The runner's program name (the `airlock-runner` crate's binary).
pub const RUNNER_BIN: &str = "airlock-runner";

/// The same runner linked statically against musl, which the build puts
/// beside [`RUNNER_BIN`] when it can (see the runner's build.rs): it
/// starts about 1 ms sooner, so a directory that has both gives this one.
pub const RUNNER_STATIC_BIN: &str = "airlock-runner-static";

/// Entry point of the runner process
/// (`RUNNER PARENT_PID PLAN_FD REPORT_FD [ALIVE_FD]`): reads the job from
/// the sealed memfd, reports on the socket, and exits with the sandbox's
/// (or the exec'd process's) status, 125 when setup fails. `ALIVE_FD` is
/// the flock'd `alive` file of a sandbox with state, held for as long as
/// the supervisor lives.
/// A workload that may not call setgroups (its namespace denies it, as a
/// rootless caller's must) keeps the supplementary groups of whoever
/// started the runner. For its own caller those are its own; host root
/// launching on behalf of another (a service acting for a client) must
/// not hand the workload the service's groups, so it drops them all
/// before any namespace exists.
fn drop_service_groups(process: &crate::plan::ProcessPlan) -> Result<(), SetupError> {
    // uid 0 of a user namespace of one id (`unshare -r`) has only the
    // groups it came with, and is denied setgroups there.
    if process.setgroups || !rustix::process::geteuid().is_root() || crate::sys::maps_one_id() {
        return Ok(());
    }
    rustix::thread::set_thread_groups(&[]).step(|| "drop the supplementary groups".into())
}

/// The runner binary's global allocator keeps freed blocks for reuse; this
/// names how it gives their pages back once setup is over.
pub use crate::sys::on_release_free_memory;
pub use time::own_offsets as own_time_offsets;

pub fn main(parent_pid: i32, plan_fd: i32, report: i32, alive_fd: Option<i32>) -> ! {
    refuse_elevated();
    if plan_fd < 3 || report < 3 || plan_fd == report {
        by_hand()
    }
    crate::signals::default_child_signal();
    report::set_report_fd(report);
    // SAFETY: the caller passed the report socket as this fd, inheritable,
    // and nothing else in this process uses that number.
    let sock = unsafe { BorrowedFd::borrow_raw(report_fd()) };
    run(
        Reporter::new(sock, false),
        parent_pid,
        plan_fd,
        alive_fd,
        None,
    )
}

/// Entry point of a runner that took its caller's place
/// (`RUNNER --attended PLAN_FD [REPORT_FILE]`, exec'd by `airlock run`
/// in its own process; see [`crate::Sandbox::exec_supervisor`]): the same
/// sandbox, with what the caller would have shown shown here
/// ([`report::Attended`]) and the same exit status.
pub fn main_attended(plan_fd: i32, report_file: Option<std::path::PathBuf>) -> ! {
    refuse_elevated();
    if plan_fd < 3 {
        by_hand()
    }
    crate::signals::default_child_signal();
    let attended = report::Attended::new(report_file);
    // Parent pid 0: there is no caller to watch; we are it.
    run(
        Reporter::attended(&attended, false),
        0,
        plan_fd,
        None,
        Some(&attended),
    )
}

/// The runner acts with the privileges of whoever runs it. Run
/// set-user-ID, set-group-ID or with file capabilities (AT_SECURE), it
/// would act with its file's owner's for anyone who may run it: refused.
/// (A workload that could chmod the runner's file is kept from it by the
/// sealed copy, `sandbox::runner_exe`; this is the wall behind that one.)
fn refuse_elevated() {
    // SAFETY: getauxval only reads the auxiliary vector the kernel gave.
    if unsafe { libc::getauxval(libc::AT_SECURE) } != 0 {
        eprintln!(
            "airlock: the runner refuses to run set-user-ID, set-group-ID or with file capabilities \
             (it acts with the privileges of whoever runs it)"
        );
        std::process::exit(125);
    }
}

fn by_hand() -> ! {
    eprintln!("airlock: the runner is started by airlock itself, not by hand");
    std::process::exit(125);
}

/// The workload inherits our stdin, stdout and stderr, and the fds the
/// caller preserves for it (3 to 3+`preserved`-1). A directory (or an
/// O_PATH handle) among them would be a way back into the host's tree
/// through openat, whatever the mounts say (runc's CVE-2024-21626 leaked
/// one): refuse it.
fn vet_inherited(preserved: u32) -> Result<(), SetupError> {
    let names = ["stdin", "stdout", "stderr"];
    for fd in 0..3 + preserved as i32 {
        // SAFETY: the fds are borrowed only for these calls; a closed
        // one makes them fail with EBADF.
        let f = unsafe { BorrowedFd::borrow_raw(fd) };
        let name = names
            .get(fd as usize)
            .map_or_else(|| "a preserved fd".to_string(), |n| n.to_string());
        let flags = match rustix::fs::fcntl_getfl(f) {
            Ok(flags) => flags,
            Err(_) if fd < 3 => continue,
            Err(e) => {
                return Err(SetupError::new(
                    "--preserve-fds",
                    format!("fd {fd} is not open: {e}"),
                ))
            }
        };
        let is_dir = rustix::fs::fstat(f)
            .map(|st| {
                rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
            })
            .unwrap_or(false);
        if flags.contains(rustix::fs::OFlags::PATH) || is_dir {
            let step = if fd < 3 { "stdio" } else { "--preserve-fds" };
            return Err(SetupError::new(
                step,
                format!("{name} (fd {fd}) is a directory or a path handle: refused, since the workload could reach the host's files through it with openat"),
            ));
        }
    }
    Ok(())
}

/// The first of the runner's own fds (`ours`, and the plan's) that lies
/// among the `preserve` fds from 3 on.
fn own_among_preserved(ours: &[i32], plan_fd: i32, preserve: u32) -> Option<i32> {
    let preserved = 3..3 + preserve as i32;
    ours.iter()
        .copied()
        .chain([plan_fd])
        .find(|fd| preserved.contains(fd))
}

fn run(
    reporter: Reporter,
    parent_pid: i32,
    plan_fd: i32,
    alive_fd: Option<i32>,
    attended: Option<&report::Attended>,
) -> ! {
    // Forwarded signals wait (blocked) until there is a process to forward
    // them to: a Ctrl-C during setup must not kill us before we can clean
    // up. forward_to() unblocks them.
    signals::block();
    child::remember_host_euid();
    let run = || -> Result<i32, SetupError> {
        let job = read_job(plan_fd)?;
        if !crate::sys::single_threaded() {
            return Err(SetupError::new(
                "runner",
                "the runner must be single-threaded",
            ));
        }
        // Nothing of the caller's beyond stdio, the socket and the lock.
        let process = match &job {
            Job::Start(p) => &p.process,
            Job::Exec(p) => &p.process,
        };
        let mut keep: Vec<i32> = reporter
            .caller()
            .map(|fd| fd.as_raw_fd())
            .into_iter()
            .collect();
        keep.extend(alive_fd);
        // Ours sit at the lowest numbers free when the runner was spawned:
        // one among the caller's preserved fds means the caller had not
        // opened them all, and ours would be closed, or passed on to the
        // workload, as the caller's.
        if let Some(fd) = own_among_preserved(&keep, plan_fd, process.preserve_fds) {
            return Err(SetupError::new(
                "--preserve-fds",
                format!(
                    "fd {fd} is the runner's own: the caller's fds 3 to {} must all be open when the sandbox starts",
                    2 + process.preserve_fds
                ),
            ));
        }
        keep.extend(3..3 + process.preserve_fds as i32);
        let ours = keep.clone();
        if let Job::Start(plan) = &job {
            keep.extend(plan.status_fds.fds());
        }
        crate::sys::close_from_except(3, &keep).step(|| "close inherited fds".into())?;
        if let Job::Start(plan) = &job {
            status_fd::check(&plan.status_fds, &ours)?;
        }
        vet_inherited(process.preserve_fds)?;
        drop_service_groups(process)?;
        match (job, reporter.caller()) {
            (Job::Start(plan), _) => {
                if let Some(a) = attended {
                    a.plan(plan.spec.timeout, plan.process.terminal, &plan.field_names);
                    if plan.status_fds.block.is_none() {
                        a.enter_raw();
                    }
                }
                supervisor::supervise(parent_pid, *plan, reporter, alive_fd)
            }
            (Job::Exec(plan), Some(sock)) => enter::run(*plan, sock, parent_pid),
            (Job::Exec(_), None) => Err(SetupError::new(
                "runner",
                "an exec into a sandbox is started beside its caller",
            )),
        }
    };
    match run() {
        Ok(code) => std::process::exit(reporter.exit_code(code)),
        Err(e) => {
            // Attended, the failure's own status (126, 127) wins.
            reporter.failed(&e);
            std::process::exit(reporter.exit_code(125))
        }
    }
}

fn read_job(plan_fd: i32) -> Result<Job, SetupError> {
    // SAFETY: the caller passed the sealed memfd as this fd; we take
    // ownership and it is closed after reading.
    let mut f = unsafe { std::fs::File::from_raw_fd(plan_fd) };
    let mut text = String::new();
    f.read_to_string(&mut text)
        .step(|| "read the plan".into())?;
    let (build, json) = text.split_once('\n').unwrap_or(("", &text));
    if build != crate::plan::BUILD_ID {
        return Err(SetupError::new(
            "read the plan",
            format!(
                "this runner ({}, build {}) was built from other sources than its caller (build {build:?}): rebuild both from one checkout (`cargo build --workspace`) or install them together",
                std::env::current_exe().map_or_else(|_| "?".into(), |p| p.display().to_string()),
                crate::plan::BUILD_ID
            ),
        ));
    }
    serde_json::from_str(json).map_err(|e| SetupError::new("read the plan", e.to_string()))
}

#[cfg(test)]
mod tests {
    /// A caller whose fd 4 was closed when it asked for 3 preserved fds:
    /// the runner's socket took 4, and is found there.
    #[test]
    fn an_own_fd_among_the_preserved_is_found() {
        assert_eq!(super::own_among_preserved(&[4, 7], 8, 3), Some(4));
        assert_eq!(super::own_among_preserved(&[6, 7], 5, 3), Some(5));
        assert_eq!(super::own_among_preserved(&[6, 7], 8, 3), None);
        assert_eq!(super::own_among_preserved(&[3, 4], 5, 0), None);
    }
}
