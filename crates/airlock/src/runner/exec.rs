//! The last step: find the program in the sandbox's PATH and execve it
//! with exactly the planned environment.

use super::report::{describe, FailureKind, SetupError};
use crate::plan::ProcessPlan;
use std::ffi::CString;
use std::io;

/// The search path when the workload's environment has no PATH.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn cstr(s: &str) -> CString {
    // validate() refused NUL bytes in args and env.
    CString::new(s).unwrap_or_default()
}

/// `p` with HOME set, when it asks for it and its environment has none
/// (or an empty one, as runc counts it): the user's home in the sandbox's
/// /etc/passwd, else `/`. Read inside the sandbox (its /etc, its
/// symlinks), before Landlock and the id change could deny it.
pub fn with_home(p: &ProcessPlan) -> std::borrow::Cow<'_, ProcessPlan> {
    if !p.home_from_passwd || p.env.iter().any(|(k, v)| k == "HOME" && !v.is_empty()) {
        return std::borrow::Cow::Borrowed(p);
    }
    let mut p = p.clone();
    p.env.retain(|(k, _)| k != "HOME");
    let home = home_of(p.uid).unwrap_or_else(|| "/".into());
    p.env.push(("HOME".into(), home));
    std::borrow::Cow::Owned(p)
}

/// The home directory of `uid` in /etc/passwd (name:pw:uid:gid:gecos:home:shell).
/// Resolved inside our root without magic links (a sandbox sharing the
/// host's /proc could point a link through /proc/N/root at a host file),
/// and opened for reading only once it was seen to be a regular file
/// that anyone may read (and found to be that same file once open): a
/// device or FIFO the workload put there is not read.
fn home_of(uid: u32) -> Option<String> {
    use rustix::fs::OFlags;
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    let seen = crate::fs::path_in(&root, "/etc/passwd").ok()?;
    let st = rustix::fs::fstat(&seen).ok()?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return None;
    }
    // Read with the caller's rights (an exec's, root's), before the id
    // change: only a file anyone may read, or the workload could link
    // /etc/passwd to a host file only root reads, and learn from HOME.
    if st.st_mode & 0o004 == 0 {
        return None;
    }
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
    let fd = crate::fs::open_in(&root, "/etc/passwd", flags).ok()?;
    // The same file as checked (not one swapped in since), and regular.
    let now = rustix::fs::fstat(&fd).ok()?;
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
        return None;
    }
    let text = crate::fs::read_regular(fd, 1 << 20)?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 7 && f[2].parse() == Ok(uid))
        .map(|f| f[5].to_string())
        .filter(|home| !home.is_empty())
}

/// execve the workload; returns only on failure.
pub fn exec(p: &ProcessPlan) -> SetupError {
    let env = &p.env;
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| DEFAULT_PATH.to_string());
    let mut argv: Vec<CString> = p.args.iter().map(|a| cstr(a)).collect();
    if let Some(argv0) = &p.argv0 {
        argv[0] = cstr(argv0);
    }
    let envp: Vec<CString> = env.iter().map(|(k, v)| cstr(&format!("{k}={v}"))).collect();
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());

    let program = &p.args[0];
    let try_exec = |path: &str| -> io::Error {
        let c = cstr(path);
        // SAFETY: c, argv_ptrs and envp_ptrs are NUL-terminated arrays of
        // valid C strings that outlive the call; execve returns only on error.
        unsafe { libc::execve(c.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
        io::Error::last_os_error()
    };
    let candidates: Vec<String> = if program.contains('/') {
        vec![program.clone()]
    } else {
        path_var
            .split(':')
            .map(|d| if d.is_empty() { "." } else { d })
            .map(|d| format!("{}/{program}", d.trim_end_matches('/')))
            .collect()
    };
    let mut denied: Option<io::Error> = None;
    let mut last = io::Error::from_raw_os_error(libc::ENOENT);
    for c in &candidates {
        let e = try_exec(c);
        match e.raw_os_error() {
            // The program is there: what is missing is its interpreter.
            Some(libc::ENOENT) if std::fs::metadata(c).is_ok() => {
                return no_interpreter(program, c, e);
            }
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => last = e,
            Some(libc::EACCES) | Some(libc::EPERM) => {
                denied.get_or_insert(e);
            }
            _ => {
                denied = Some(e);
                break;
            }
        }
    }
    match denied {
        Some(e) => SetupError {
            step: format!("exec {program}"),
            reason: format!("cannot execute: {}", describe(&e)),
            errno: e.raw_os_error(),
            kind: FailureKind::NotExecutable,
        },
        None => not_found(program, &path_var, last.raw_os_error()),
    }
}

/// Find the program as execve will, without running it: an executable
/// regular file at its path, or in one of the PATH directories. A created
/// sandbox checks this before it waits for `start`, so a program that is
/// not there fails the create (as runc's does) rather than the start.
/// The words are the ones clients match to give a shell's status
/// ("executable file not found in $PATH" or "no such file or directory"
/// is 127, "permission denied" 126).
pub fn look_up(p: &ProcessPlan) -> Result<(), SetupError> {
    use std::os::unix::fs::PermissionsExt;
    let program = &p.args[0];
    let path_var = p
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
    let executable = |c: &str| {
        std::fs::metadata(c).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return match std::fs::metadata(program) {
            Ok(_) if executable(program) => Ok(()),
            Ok(_) => Err(SetupError {
                step: format!("exec {program}"),
                reason: format!("{program}: permission denied (not an executable file)"),
                errno: Some(libc::EACCES),
                kind: FailureKind::NotExecutable,
            }),
            Err(e) => Err(not_found(program, path_var, e.raw_os_error())),
        };
    }
    let found = path_var
        .split(':')
        .map(|d| if d.is_empty() { "." } else { d })
        .any(|d| executable(&format!("{}/{program}", d.trim_end_matches('/'))));
    if found {
        return Ok(());
    }
    Err(not_found(program, path_var, Some(libc::ENOENT)))
}

/// `program` is not in the sandbox, in the words clients read for a
/// shell's 127 ("executable file not found in $PATH", "no such file or
/// directory"), whether found missing before execve or by it.
fn not_found(program: &str, path_var: &str, errno: Option<i32>) -> SetupError {
    let reason = if program.contains('/') {
        format!("{program}: no such file or directory in the sandbox")
    } else {
        format!(
            "exec: \"{program}\": executable file not found in $PATH (the sandbox's PATH is {path_var})"
        )
    };
    SetupError {
        step: format!("exec {program}"),
        reason,
        errno,
        kind: FailureKind::NotFound,
    }
}

/// `found` exists but execve said ENOENT: name the interpreter or loader
/// the sandbox lacks, not the program it has.
fn no_interpreter(program: &str, found: &str, e: io::Error) -> SetupError {
    let reason = match super::interp::missing_interpreter(found) {
        Some(interp) => format!(
            "{found} exists, but the interpreter it needs, {interp:?}, is not in the sandbox (bind it, or the directory that holds it)"
        ),
        None => format!("{found} exists, but the kernel could not find what it needs to run it"),
    };
    SetupError {
        step: format!("exec {program}"),
        reason,
        errno: e.raw_os_error(),
        kind: FailureKind::NotExecutable,
    }
}
