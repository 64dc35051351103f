//! bubblewrap's `--assert-userns-disabled` (`namespaces.assert_userns_disabled`):
//! the workload's last check before its exec, with every wall up, that
//! it cannot make a user namespace of its own by any of the three calls
//! that make one. A custom filter that allows one of them, under a user
//! namespace whose limit was not lowered, is caught here rather than
//! trusted; the sandbox that asked does not run.

use super::report::SetupError;

/// Called in the workload's own process, single-threaded, after Landlock,
/// the ids and the seccomp filter. Each call must fail with an error that
/// means "not allowed" (the filter's EPERM or ENOSYS, the sysctl's
/// ENOSPC); another failure (EAGAIN from a pids limit, ENOMEM) proves
/// nothing and fails the check too. On success the process has a new
/// user namespace (or a child in one, reaped here) and fails anyway.
pub fn assert_disabled(field: &str) -> Result<(), SetupError> {
    // SAFETY: unshare takes flags only; this process is single-threaded
    // (CLONE_NEWUSER needs that).
    let r = unsafe { libc::unshare(libc::CLONE_NEWUSER) };
    judge(field, "unshare(CLONE_NEWUSER)", r as libc::c_long)?;
    // SAFETY: the raw clone without CLONE_VM copies this process, stack
    // included (a null stack pointer keeps the current one); the child
    // runs only `_exit`, which is async-signal-safe.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    leave_or_reap(pid);
    judge(field, "clone(CLONE_NEWUSER)", pid)?;
    // clone_args up to `cgroup` (CLONE_ARGS_SIZE_VER2): flags, then
    // exit_signal at index 4; no pidfd, no stack (a copy of ours).
    let mut args = [0u64; 11];
    args[0] = libc::CLONE_NEWUSER as u64;
    args[4] = libc::SIGCHLD as u64;
    // SAFETY: args is a zero-initialised clone_args of the size passed;
    // as above, the child only calls `_exit`. Not `sys::clone3`, which
    // ignores SIGABRT for its caller: that would outlive our exec.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args.as_mut_ptr(),
            std::mem::size_of_val(&args),
        )
    };
    leave_or_reap(pid);
    judge(field, "clone3(CLONE_NEWUSER)", pid)
}

/// In the child of a clone: leave at once. In the parent: reap it.
fn leave_or_reap(pid: libc::c_long) {
    if pid == 0 {
        // SAFETY: the child of the clone leaves at once.
        unsafe { libc::_exit(0) };
    }
    if pid > 0 {
        let mut status = 0;
        // SAFETY: reaps our own child; status is a valid out pointer.
        unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::__WALL) };
    }
}

/// A call's result: refused as a filter or the kernel's limit refuses it,
/// or the check fails.
fn judge(field: &str, call: &str, r: libc::c_long) -> Result<(), SetupError> {
    if r >= 0 {
        return Err(SetupError::new(
            field.to_string(),
            format!(
                "the workload could make a user namespace ({call} succeeded just before its exec): \
                 neither the seccomp filter nor a user.max_user_namespaces of 0 refuses it, so it was not run"
            ),
        ));
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES | libc::ENOSPC | libc::EUSERS | libc::ENOSYS) => Ok(()),
        _ => Err(SetupError {
            errno: e.raw_os_error(),
            ..SetupError::new(
                field.to_string(),
                format!(
                    "{call} failed with {}, which does not show user namespaces are refused, so the workload was not run",
                    super::report::describe(&e)
                ),
            )
        }),
    }
}
