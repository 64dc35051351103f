//! bubblewrap's `--assert-userns-disabled`: the workload's last check
//! before its exec, with every wall up, that it cannot make a user
//! namespace of its own, by either call that makes one. A sandbox that
//! asked for that (`namespaces.assert_userns_disabled`, or
//! `namespaces.nested_user = false`) and did not get it does not run:
//! a custom filter that allows `unshare` or `clone` with CLONE_NEWUSER,
//! under a user namespace whose limit was not lowered, is caught here
//! rather than trusted.

use super::report::SetupError;

/// Called in the workload's own process, single-threaded, after Landlock,
/// the ids and the seccomp filter. On success of either attempt the
/// process has a new user namespace (or a child in one, reaped here) and
/// is about to fail anyway.
pub fn assert_disabled(field: &str) -> Result<(), SetupError> {
    // SAFETY: unshare takes flags only; this process is single-threaded
    // (CLONE_NEWUSER needs that), and failing is the expected outcome.
    let unshared = unsafe { libc::unshare(libc::CLONE_NEWUSER) } == 0;
    if unshared {
        return Err(refused(field, "unshare(CLONE_NEWUSER)"));
    }
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
    if pid == 0 {
        // SAFETY: the child of the clone above leaves at once.
        unsafe { libc::_exit(0) };
    }
    if pid > 0 {
        let mut status = 0;
        // SAFETY: reaps the child made above; status is a valid out pointer.
        unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::__WALL) };
        return Err(refused(field, "clone(CLONE_NEWUSER)"));
    }
    Ok(())
}

fn refused(field: &str, call: &str) -> SetupError {
    SetupError::new(
        field.to_string(),
        format!(
            "the workload could make a user namespace ({call} succeeded just before its exec): \
             neither the seccomp filter nor a user.max_user_namespaces of 0 refuses it, so it was not run"
        ),
    )
}
