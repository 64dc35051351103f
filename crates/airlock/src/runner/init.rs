//! Our PID 1: it forwards signals to the workload, reaps every orphan that
//! is reparented to it, and exits with the workload's status once the
//! workload ends (the kernel then kills whatever is left in the namespace).

use super::{identity, signals};

pub fn run(workload: i32, own_session: bool) -> ! {
    signals::forward_to(workload, own_session);
    // Init needs no privilege to reap, and only CAP_KILL to forward.
    identity::drop_all_but_kill();
    crate::sys::release_free_memory();
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer for the call.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == workload {
            std::process::exit(signals::shell_status(status));
        }
        if pid < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                // No children left without having seen the workload's
                // status: cannot happen, but do not spin.
                std::process::exit(125);
            }
        }
    }
}
