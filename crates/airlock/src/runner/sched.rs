//! The scheduling a process starts with (spec `process.scheduling`): its
//! CPU affinity, policy, nice value and I/O priority.
//!
//! Set from the host side on a process that has not started the workload
//! yet — the supervisor on PID 1 before "go" (the workload, its fork,
//! inherits them), an exec's runner on itself before it enters the
//! sandbox — because raising a priority takes CAP_SYS_NICE in the host's
//! user namespace, which nothing inside the sandbox's own has. Lowering
//! needs no privilege. Each failure names its field and fails the start.

use crate::report::{describe, SetupError};
use crate::spec::scheduling::{affinity_cpus, ioprio_value, IoClass, Scheduling};

/// Set `s` on process `pid` (0: the calling process).
pub(super) fn apply(pid: i32, s: &Scheduling) -> Result<(), SetupError> {
    let field = |name: &str| format!("process.scheduling.{name}");
    // First: a real-time policy then runs only where it may.
    if let Some(list) = &s.cpu_affinity {
        crate::sys::set_cpu_affinity(pid, &affinity_cpus(list)).map_err(|e| {
            let why = match e.raw_os_error() {
                Some(libc::EINVAL) => format!(
                    "none of the CPUs {list} is one the sandbox may run on (the host's online CPUs, within its cpuset)"
                ),
                _ => describe(&e),
            };
            SetupError::new(field("cpu_affinity"), why)
        })?;
    }
    if let Some(policy) = s.policy {
        // SAFETY: sched_param is plain integers, valid zeroed (musl's has
        // more fields than glibc's).
        let mut param: libc::sched_param = unsafe { std::mem::zeroed() };
        param.sched_priority = s.priority.unwrap_or(0) as i32;
        // The system call itself: musl's wrapper only says ENOSYS (POSIX
        // means the process, Linux sets the thread: here, the one thread
        // of PID 1 or of exec's runner).
        // SAFETY: a plain pid and policy, and a pointer to a sched_param
        // that lives across the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_sched_setscheduler,
                pid,
                policy.number(),
                &param as *const libc::sched_param,
            )
        };
        if r == -1 {
            let e = std::io::Error::last_os_error();
            let why = if e.raw_os_error() == Some(libc::EPERM) && policy.is_realtime() {
                format!(
                    "{}: a real-time policy needs CAP_SYS_NICE in the host's user namespace (a root caller), and, where the v1 cpu controller has real-time groups, a cpu cgroup with cpu.rt_runtime_us",
                    describe(&e)
                )
            } else {
                describe(&e)
            };
            return Err(SetupError::new(field("policy"), why));
        }
    }
    if let Some(nice) = s.nice {
        rustix::process::setpriority_process(rustix::process::Pid::from_raw(pid), nice).map_err(
            |e| {
                // EACCES is a raise without the privilege (EPERM would be
                // another owner's process, which PID 1 is not).
                let why = if e == rustix::io::Errno::ACCESS {
                    format!(
                        "{}: a nice value below the caller's needs CAP_SYS_NICE in the host's user namespace (a root caller)",
                        describe(&e.into())
                    )
                } else {
                    describe(&e.into())
                };
                SetupError::new(field("nice"), why)
            },
        )?;
    }
    if let Some(class) = s.io_class {
        const IOPRIO_WHO_PROCESS: libc::c_int = 1;
        let value = ioprio_value(class, s.io_level);
        // SAFETY: ioprio_set takes three plain integers and no pointers.
        let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, pid, value) };
        if r == -1 {
            let e = std::io::Error::last_os_error();
            let why = if e.raw_os_error() == Some(libc::EPERM) && class == IoClass::Realtime {
                format!(
                    "{}: the realtime class needs CAP_SYS_NICE or CAP_SYS_ADMIN in the host's user namespace (a root caller)",
                    describe(&e)
                )
            } else {
                describe(&e)
            };
            return Err(SetupError::new(field("io_class"), why));
        }
    }
    Ok(())
}

/// Lower `pid`'s (0: our own) RLIMIT_RTPRIO and RLIMIT_NICE to the
/// kernel's defaults where `rlimits` (its plan's) sets none: see
/// [`crate::plan::priority_defaults`]. Lowering our own needs no
/// privilege (another's needs its ids or CAP_SYS_RESOURCE).
pub(super) fn lower_priority_limits(
    pid: i32,
    rlimits: &[(i32, u64, u64)],
) -> Result<(), SetupError> {
    use rustix::process::{prlimit, Pid, Resource, Rlimit};
    for (resource, _, _) in crate::plan::priority_defaults(rlimits) {
        let resource = match resource {
            r if r == libc::RLIMIT_RTPRIO as i32 => Resource::Rtprio,
            _ => Resource::Nice,
        };
        let none = Rlimit {
            current: Some(0),
            maximum: Some(0),
        };
        prlimit(Pid::from_raw(pid), resource, none).map_err(|e| {
            SetupError::new(
                "process.rlimits",
                format!(
                    "lower the priority limits (rtprio, nice) to 0: {}",
                    describe(&e.into())
                ),
            )
        })?;
    }
    Ok(())
}
