//! Starting the runner as a new process with `posix_spawn(3)`, which glibc
//! and musl carry out with `clone(CLONE_VM | CLONE_VFORK)`: the child runs
//! on the caller's memory until it execs, so nothing of the caller's
//! address space is copied.
//!
//! Why not `std::process::Command`: it has no way to keep a chosen fd open
//! across exec except a `pre_exec` closure, and with one it forks. A fork
//! of a multi-threaded service (airlockd) copies its page tables and
//! write-protects its heap, so every thread's next write takes a
//! copy-on-write fault and a TLB shootdown across the CPUs; profiled under
//! airlockd's 16-client benchmark, that was about a fifth of the daemon's
//! CPU. `posix_spawn_file_actions_adddup2(fd, fd)` clears `FD_CLOEXEC` on
//! `fd` in the child (POSIX 2024; glibc since 2.29, and musl),
//! which is exactly "keep this fd", with no code of ours in the child.
//!
//! Written by hand over `libc` because no maintained crate exposes
//! posix_spawn's file actions with an owned, waitable child.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;

/// A process started by [`spawn`]: like `std::process::Child`, it is not
/// killed when dropped, and it is reaped only by [`Spawned::wait`].
#[derive(Debug)]
pub struct Spawned {
    pid: i32,
    status: Option<ExitStatus>,
}

/// Where the new process's fds 0, 1 and 2 come from.
pub enum Stdio<'a> {
    /// The caller's own.
    Inherit,
    /// `/dev/null` for all three.
    Null,
    /// These fds (the caller keeps its copies).
    Fds([BorrowedFd<'a>; 3]),
}

/// Start `program` (searched on PATH when it has no slash, as
/// `std::process::Command` does) with `args` (after argv\[0\], which is
/// `program`), the caller's environment plus `env`, the fds in `keep` open
/// at their numbers, and `stdio`. Signal dispositions and the signal mask
/// start as `Command` leaves them: SIGPIPE at its default (Rust ignores it
/// in the caller), nothing blocked.
pub fn spawn(
    program: &Path,
    args: &[OsString],
    env: &[(&str, &str)],
    keep: &[RawFd],
    stdio: Stdio,
) -> std::io::Result<Spawned> {
    keeping_fds_works()?;
    let cstr = |s: &OsStr| {
        CString::new(s.as_bytes()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a NUL byte in an argument",
            )
        })
    };
    let path = cstr(program.as_os_str())?;
    let mut argv = vec![path.clone()];
    for a in args {
        argv.push(cstr(a)?);
    }
    let mut envp = Vec::new();
    for (k, v) in std::env::vars_os() {
        if env.iter().any(|(name, _)| OsStr::new(name) == k) {
            continue;
        }
        let mut kv = k;
        kv.push("=");
        kv.push(v);
        envp.push(cstr(&kv)?);
    }
    for (k, v) in env {
        envp.push(cstr(OsStr::new(&format!("{k}={v}")))?);
    }
    let argv_ptrs = nul_terminated(&argv);
    let envp_ptrs = nul_terminated(&envp);

    // What stands in for stdio is placed above every kept fd: on a number
    // in `keep` (a gap among the preserved ones) it would be handed on as
    // if the caller had kept it. Above 2 as well, since dup2 onto 0, 1 and
    // 2 one after another would clobber a source that is one of them.
    let floor = keep.iter().map(|fd| fd + 1).max().unwrap_or(3).max(3);
    let mut placed: Vec<OwnedFd> = Vec::new();
    let mut place = |fd: BorrowedFd<'_>| -> std::io::Result<RawFd> {
        let copy = rustix::io::fcntl_dupfd_cloexec(fd, floor)?;
        let raw = copy.as_raw_fd();
        placed.push(copy);
        Ok(raw)
    };
    let sources = match stdio {
        Stdio::Inherit => None,
        Stdio::Null => {
            let null = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")?;
            let fd = place(null.as_fd())?;
            Some([fd; 3])
        }
        Stdio::Fds(fds) => {
            let mut out = [0; 3];
            for (slot, fd) in out.iter_mut().zip(fds) {
                *slot = if fd.as_raw_fd() < 3 || keep.contains(&fd.as_raw_fd()) {
                    place(fd)?
                } else {
                    fd.as_raw_fd()
                };
            }
            Some(out)
        }
    };

    let mut actions = FileActions::new()?;
    if let Some(fds) = sources {
        for (to, from) in fds.into_iter().enumerate() {
            actions.dup2(from, to as RawFd)?;
        }
    }
    for &fd in keep {
        actions.dup2(fd, fd)?;
    }
    let attr = Attr::new()?;
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is valid for the call: the path and the argv
    // and envp arrays (NUL-terminated arrays of pointers into CStrings that
    // outlive the call), and the initialised file actions and attributes.
    let rc = unsafe {
        libc::posix_spawnp(
            &mut pid,
            path.as_ptr(),
            &*actions.0,
            &*attr.0,
            argv_ptrs.as_ptr(),
            envp_ptrs.as_ptr(),
        )
    };
    drop(placed);
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(Spawned { pid, status: None })
}

impl Spawned {
    /// The process's PID.
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Wait for the process to end (once; later calls give the same status).
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        // Ended, not yet reaped: signals we forward (`Sandbox::
        // forward_signals`) stop naming its pid before it can be another's.
        crate::sys::wait_ended(self.pid)?;
        crate::signals::stop_forwarding(self.pid);
        let mut status = 0;
        loop {
            // SAFETY: waitpid on our own child, with a valid out-pointer.
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r == self.pid {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        let s = ExitStatus::from_raw(status);
        self.status = Some(s);
        Ok(s)
    }
}

/// `adddup2(fd, fd)` clears `FD_CLOEXEC` in the child only from glibc
/// 2.29 on; an older glibc would start the runner without its plan. Refuse
/// there, by name, rather than fail later with a missing fd.
fn keeping_fds_works() -> std::io::Result<()> {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: gnu_get_libc_version returns a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(gnu_get_libc_version()) };
        let v = v.to_string_lossy();
        let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if (major, minor) < (2, 29) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!("glibc {v} cannot keep an fd open across posix_spawn (2.29 or later can)"),
            ));
        }
    }
    Ok(())
}

#[cfg(target_env = "gnu")]
extern "C" {
    fn gnu_get_libc_version() -> *const libc::c_char;
}

fn nul_terminated(strings: &[CString]) -> Vec<*mut libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr() as *mut libc::c_char)
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect()
}

/// `posix_spawn_file_actions_t`, destroyed when dropped. Boxed: POSIX
/// does not promise that an initialised one may be moved.
struct FileActions(Box<libc::posix_spawn_file_actions_t>);

impl FileActions {
    fn new() -> std::io::Result<Self> {
        // SAFETY: the zeroed struct is only an out-parameter for init.
        let mut a = Box::new(unsafe { std::mem::zeroed::<libc::posix_spawn_file_actions_t>() });
        // SAFETY: init on a struct we own, at the address it keeps.
        check(unsafe { libc::posix_spawn_file_actions_init(&mut *a) })?;
        Ok(Self(a))
    }

    fn dup2(&mut self, from: RawFd, to: RawFd) -> std::io::Result<()> {
        // SAFETY: an initialised actions struct; the fds are plain numbers.
        check(unsafe { libc::posix_spawn_file_actions_adddup2(&mut *self.0, from, to) })
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in new, destroyed once.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut *self.0) };
    }
}

/// `posix_spawnattr_t` that resets SIGPIPE and the signal mask, as
/// `std::process::Command` does; destroyed when dropped. Boxed, as above.
struct Attr(Box<libc::posix_spawnattr_t>);

impl Attr {
    fn new() -> std::io::Result<Self> {
        // SAFETY: the zeroed structs are out-parameters for their inits
        // (the attributes' at the address they keep); the sigset calls take
        // pointers to initialised local sets. A failed init leaves nothing
        // to destroy; after it, Drop destroys.
        unsafe {
            let mut a = Box::new(std::mem::zeroed::<libc::posix_spawnattr_t>());
            check(libc::posix_spawnattr_init(&mut *a))?;
            let mut attr = Self(a);
            let mut default: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut default);
            libc::sigaddset(&mut default, libc::SIGPIPE);
            check(libc::posix_spawnattr_setsigdefault(&mut *attr.0, &default))?;
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            check(libc::posix_spawnattr_setsigmask(&mut *attr.0, &empty))?;
            let flags = libc::POSIX_SPAWN_SETSIGDEF | libc::POSIX_SPAWN_SETSIGMASK;
            check(libc::posix_spawnattr_setflags(&mut *attr.0, flags as _))?;
            Ok(attr)
        }
    }
}

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: initialised in new, destroyed once.
        unsafe { libc::posix_spawnattr_destroy(&mut *self.0) };
    }
}

fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(rc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_fds_stay_open_and_others_close() {
        // Two close-on-exec fds: the one in `keep` reaches the child at its
        // number, the other does not.
        let kept = std::fs::File::open("/dev/null").unwrap();
        let closed = std::fs::File::open("/dev/null").unwrap();
        let (k, c) = (kept.as_raw_fd(), closed.as_raw_fd());
        let script = format!("test -e /proc/self/fd/{k} && ! test -e /proc/self/fd/{c}");
        let args = ["-c".into(), script.into()];
        let mut child = spawn(Path::new("/bin/sh"), &args, &[], &[k], Stdio::Null).unwrap();
        assert!(child.wait().unwrap().success());
        assert!(
            child.wait().unwrap().success(),
            "a second wait says the same"
        );
    }

    #[test]
    fn stdio_env_and_a_missing_program() {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let args = ["-c".into(), "printf %s \"$AIRLOCK_SPAWN_TEST\"".into()];
        let mut child = spawn(
            Path::new("/bin/sh"),
            &args,
            &[("AIRLOCK_SPAWN_TEST", "yes")],
            &[],
            Stdio::Fds([
                std::io::stdin().as_fd(),
                w.as_fd(),
                std::io::stderr().as_fd(),
            ]),
        )
        .unwrap();
        drop(w);
        assert!(child.wait().unwrap().success());
        let mut out = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut out).unwrap();
        assert_eq!(out, "yes");
        let missing = spawn(Path::new("/nonexistent/x"), &[], &[], &[], Stdio::Inherit);
        assert_eq!(missing.unwrap_err().kind(), std::io::ErrorKind::NotFound);
    }
}
