//! Starting the runner: finding its binary, handing it the job in a
//! sealed memfd, and the fds it keeps across its exec, whether it is
//! spawned beside the caller or exec'd in the caller's place.

use crate::plan::Job;
use crate::runner::{RUNNER_BIN, RUNNER_STATIC_BIN};
use crate::spawn::Spawned;
use crate::Error;
use std::ffi::OsString;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::SpawnOptions;

/// Where the runner binary is looked for, after `$AIRLOCK_RUNNER` and
/// beside the calling program: the install locations packagers use.
const RUNNER_DIRS: &[&str] = &["/usr/libexec/airlock", "/usr/local/libexec/airlock"];

pub(super) fn find_runner(opts: &SpawnOptions) -> Result<PathBuf, Error> {
    if let Some(r) = &opts.runner {
        return on_path(r.clone(), std::env::var_os("PATH"));
    }
    if let Some(r) = std::env::var_os("AIRLOCK_RUNNER") {
        return on_path(r.into(), std::env::var_os("PATH"));
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(me) = std::env::current_exe() {
        // Beside the program, and one level up: a test binary of cargo's
        // lives in target/<profile>/deps, the runner in target/<profile>.
        dirs.extend(me.ancestors().skip(1).take(2).map(PathBuf::from));
    }
    dirs.extend(RUNNER_DIRS.iter().map(PathBuf::from));
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .flat_map(|d| [d.join(RUNNER_STATIC_BIN), d.join(RUNNER_BIN)])
        .find(|c| c.is_file())
        .ok_or(Error::RunnerNotFound)
}

/// A runner named without a slash, found on `path` as the spawn's and
/// exec's PATH search would find it: `runner_exe` must judge the file
/// that runs, and `metadata` of a bare name looks in the working
/// directory instead (where, finding nothing, it would skip the copy).
fn on_path(runner: PathBuf, path: Option<OsString>) -> Result<PathBuf, Error> {
    use std::os::unix::fs::PermissionsExt;
    if runner.as_os_str().as_encoded_bytes().contains(&b'/') {
        return Ok(runner);
    }
    path.iter()
        .flat_map(std::env::split_paths)
        // An empty entry is the working directory, as execvp takes it.
        .map(|d| match d.as_os_str().is_empty() {
            true => Path::new(".").join(&runner),
            false => d.join(&runner),
        })
        .find(|c| {
            std::fs::metadata(c).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or(Error::RunnerNotFound)
}

/// The runner as it is exec'd: its file, or a sealed copy of it.
pub(super) struct RunnerExe {
    pub path: PathBuf,
    /// The copy, open until the exec (or spawn) has taken it.
    _copy: Option<OwnedFd>,
}

/// Whose ids a sandbox's processes have on the host.
#[derive(Clone, Copy)]
pub(super) struct SandboxIds<'a> {
    /// Without a user namespace of its own the sandbox has the host's
    /// ids, its root the host's.
    pub user_ns: bool,
    pub uid_map: &'a [crate::spec::IdMap],
    pub gid_map: &'a [crate::spec::IdMap],
}

impl SandboxIds<'_> {
    /// Whether a process of the sandbox could change a file of this owner
    /// and mode (at `path`): one of its uids owns it (and so may chmod or
    /// chown it, which no Landlock right covers), a group it may be in
    /// may write it (one mapped into the sandbox, or one of the caller's
    /// supplementary groups, which a rootless sandbox without newgidmap
    /// keeps), anyone may, or an ACL may grant it to whoever it names.
    /// Without a user namespace, assumed so: its root is the host's.
    fn may_write(&self, path: &Path, m: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt;
        let mapped = |map: &[crate::spec::IdMap], id: u32| {
            map.iter()
                .any(|r| id >= r.outside && u64::from(id - r.outside) < u64::from(r.count))
        };
        let group_may = m.mode() & 0o020 != 0
            && (mapped(self.gid_map, m.gid())
                || rustix::process::getgroups()
                    .is_ok_and(|g| g.iter().any(|g| g.as_raw() == m.gid())));
        !self.user_ns
            || m.mode() & 0o002 != 0
            || mapped(self.uid_map, m.uid())
            || group_may
            || rustix::fs::getxattr_query(path, "system.posix_acl_access").is_ok()
    }
}

/// The runner to exec for a sandbox with `ids`.
///
/// A process running the runner execs the workload's program, a path in
/// the sandbox: a script there whose interpreter is `/proc/self/exe` runs
/// the runner's file again, as the workload, which can then reach the
/// file through `/proc/PID/exe`: reopen it for writing once it has
/// exited, if its ids may write the file (runc's CVE-2019-5736), or,
/// owning it, chmod it setuid or world-writable; every later sandbox,
/// and any root that runs airlock, would run what it wrote. Landlock
/// is no answer: it governs opening for writing (and truncating, from
/// its ABI 3), not chmod, chown or extended attributes. Where the
/// sandbox's ids may change the file (a rootless caller's own build, or
/// any runner for a sandbox that keeps the host's ids), the runner is
/// exec'd from a sealed copy in a memfd, which no one can change, as runc
/// does. The copy costs about a millisecond, so it is made only where it
/// is needed.
pub(super) fn runner_exe(runner: PathBuf, ids: SandboxIds) -> Result<RunnerExe, Error> {
    let io = |source| Error::Io {
        what: "copy the runner into a sealed memfd",
        source,
    };
    // A missing runner is reported by the exec, in its own words.
    let writable = std::fs::metadata(&runner).is_ok_and(|m| ids.may_write(&runner, &m));
    if !writable {
        return Ok(RunnerExe {
            path: runner,
            _copy: None,
        });
    }
    let mut file = std::fs::File::open(&runner).map_err(io)?;
    let copy = sealed_memfd("airlock-runner", true, |out| {
        std::io::copy(&mut file, out).map(drop)
    })
    .map_err(io)?;
    Ok(RunnerExe {
        path: format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&copy)).into(),
        _copy: Some(copy),
    })
}

/// A memfd named `name`, filled by `fill` and sealed against any change.
/// Close-on-exec: an exec through `/proc/self/fd/N` opens the file before
/// closing it. `exec`: made executable, which Linux 6.3's
/// vm.memfd_noexec may otherwise make it not; a kernel before 6.3 knows
/// no such flag (EINVAL) and makes it so.
fn sealed_memfd(
    name: &str,
    exec: bool,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<OwnedFd> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    let fd = match exec {
        false => rustix::fs::memfd_create(name, flags)?,
        true => match rustix::fs::memfd_create(name, flags | MemfdFlags::EXEC) {
            Err(rustix::io::Errno::INVAL) => rustix::fs::memfd_create(name, flags)?,
            made => made?,
        },
    };
    // Above stdio: a caller started with fd 0, 1 or 2 closed would have
    // it here, where a spawn's stdio would be put over it.
    let fd = match std::os::fd::AsRawFd::as_raw_fd(&fd) {
        0..=2 => rustix::io::fcntl_dupfd_cloexec(&fd, 3)?,
        _ => fd,
    };
    let mut file = std::fs::File::from(fd);
    fill(&mut file)?;
    let fd = OwnedFd::from(file);
    rustix::fs::seek(&fd, rustix::fs::SeekFrom::Start(0))?;
    // F_SEAL_WRITE waits a little for the file's pages to have no
    // reference but the page cache's, then says EBUSY: a page just
    // written may still sit in another CPU's LRU batch, or be taken for
    // a moment by compaction, on a busy machine (seen once in a full test
    // run). Nothing of ours maps the file, so such a reference passes.
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match rustix::fs::fcntl_add_seals(
            &fd,
            SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
        ) {
            Err(rustix::io::Errno::BUSY) if pause < std::time::Duration::from_millis(200) => {
                std::thread::sleep(pause);
                pause *= 2;
            }
            sealed => return sealed.map(|()| fd).map_err(Into::into),
        }
    }
}

/// The job for the runner, in a sealed memfd.
pub(super) fn job_memfd(job: &Job) -> Result<OwnedFd, Error> {
    // The build's id on the first line: the runner refuses another's.
    let mut bytes = format!("{}\n", crate::plan::BUILD_ID).into_bytes();
    serde_json::to_writer(&mut bytes, job).expect("plans serialize");
    sealed_memfd("airlock-plan", false, |out| {
        std::io::Write::write_all(out, &bytes)
    })
    .map_err(|source| Error::Io {
        what: "write the plan to a memfd",
        source,
    })
}

/// The fds the runner inherits, by number: the plan's memfd, its end of
/// the report socket, and the sandbox's liveness lock when it has state.
#[derive(Clone, Copy)]
pub(super) struct RunnerFds {
    pub plan: RawFd,
    pub sock: RawFd,
    pub alive: Option<RawFd>,
    /// The caller's fds 3 to 3+N-1, for the sandbox's process.
    pub preserve: u32,
}

/// Start the runner beside us: its command line is our pid and the fds
/// it inherits. A detached runner gets none of the caller's terminal,
/// since its supervisor outlives the caller. Spawned, not forked (see
/// [`crate::spawn`]).
pub(super) fn spawn_runner(
    runner: &Path,
    fds: RunnerFds,
    detached: bool,
    stdio: Option<&[OwnedFd; 3]>,
) -> std::io::Result<Spawned> {
    let mut args = vec![
        std::process::id().to_string().into(),
        fds.plan.to_string().into(),
        fds.sock.to_string().into(),
    ];
    args.extend(fds.alive.map(|fd| fd.to_string().into()));
    let keep: Vec<RawFd> =
        runner_keeps([Some(fds.plan), Some(fds.sock), fds.alive], fds.preserve).collect();
    let stdio = match (detached, stdio) {
        (true, _) => crate::spawn::Stdio::Null,
        (false, Some(s)) => crate::spawn::Stdio::Fds(s.each_ref().map(std::os::fd::AsFd::as_fd)),
        (false, None) => crate::spawn::Stdio::Inherit,
    };
    crate::spawn::spawn(runner, &args, &[RUNNER_ENV], &keep, stdio)
}

/// The fds a runner keeps across its exec: `inherit` (its plan, report
/// socket, liveness lock), and the caller's fds 3 to 3+`preserve`-1 (OCI's
/// `--preserve-fds`).
fn runner_keeps(inherit: [Option<RawFd>; 3], preserve: u32) -> impl Iterator<Item = RawFd> {
    inherit
        .into_iter()
        .flatten()
        .chain(3..3 + preserve as RawFd)
}

/// glibc's per-thread cache keeps freed chunks scattered over the heap,
/// where malloc_trim cannot give their pages back; a glibc runner's two
/// long-lived processes trim after setup (sys::release_free_memory) and
/// want nothing held back. (A static musl runner ignores it.)
const RUNNER_ENV: (&str, &str) = ("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0");

/// The runner exec'd in place of this process with `args`, keeping the fds
/// of [`runner_keeps`] and the plan's status fds open across exec.
pub(super) fn runner_in_place(
    runner: &Path,
    args: Vec<OsString>,
    inherit: [Option<RawFd>; 3],
    preserve: u32,
    status_fds: crate::plan::StatusFds,
) -> Command {
    let mut cmd = Command::new(runner);
    cmd.args(args).env(RUNNER_ENV.0, RUNNER_ENV.1);
    // SAFETY: the closure runs in this very process just before exec (no
    // fork: the caller execs), and only makes the fcntl syscall.
    unsafe {
        cmd.pre_exec(move || {
            for fd in runner_keeps(inherit, preserve).chain(status_fds.fds()) {
                let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
                rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            }
            Ok(())
        });
    }
    cmd
}
