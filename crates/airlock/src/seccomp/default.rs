//! The default seccomp profile, in the spirit of Docker's: an allow-list.
//! Anything not listed (including syscalls newer than this list) returns
//! EPERM; the known escape and attack-surface calls are left out on
//! purpose; a few calls are allowed only with safe arguments.
//!
//! `ALLOWED` is every x86_64 syscall of the Linux 6.1 UAPI headers
//! (`asm/unistd_64.h`) minus `DENIED`; names are resolved per architecture
//! by libseccomp, and a name it does not know is left out (deny).
//!
//! This file stands alone (libseccomp and libc only): the crate's build
//! script includes it too, to compile the profile once at build time (see
//! the module doc of `seccomp`).

use libseccomp::error::SeccompError;
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

/// Syscalls allowed unconditionally.
pub const ALLOWED: &[&str] = &[
    "read",
    "write",
    "open",
    "close",
    "stat",
    "fstat",
    "lstat",
    "poll",
    "lseek",
    "mmap",
    "mprotect",
    "munmap",
    "brk",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "access",
    "pipe",
    "select",
    "sched_yield",
    "mremap",
    "msync",
    "mincore",
    "madvise",
    "shmget",
    "shmat",
    "shmctl",
    "dup",
    "dup2",
    "pause",
    "nanosleep",
    "getitimer",
    "alarm",
    "setitimer",
    "getpid",
    "sendfile",
    "connect",
    "accept",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "shutdown",
    "bind",
    "listen",
    "getsockname",
    "getpeername",
    "socketpair",
    "setsockopt",
    "getsockopt",
    "fork",
    "vfork",
    "execve",
    "exit",
    "wait4",
    "kill",
    "uname",
    "semget",
    "semop",
    "semctl",
    "shmdt",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "fcntl",
    "flock",
    "fsync",
    "fdatasync",
    "truncate",
    "ftruncate",
    "getdents",
    "getcwd",
    "chdir",
    "fchdir",
    "rename",
    "mkdir",
    "rmdir",
    "creat",
    "link",
    "unlink",
    "symlink",
    "readlink",
    "chmod",
    "fchmod",
    "chown",
    "fchown",
    "lchown",
    "umask",
    "gettimeofday",
    "getrlimit",
    "getrusage",
    "sysinfo",
    "times",
    "getuid",
    "getgid",
    "setuid",
    "setgid",
    "geteuid",
    "getegid",
    "setpgid",
    "getppid",
    "getpgrp",
    "setsid",
    "setreuid",
    "setregid",
    "getgroups",
    "setgroups",
    "setresuid",
    "getresuid",
    "setresgid",
    "getresgid",
    "getpgid",
    "setfsuid",
    "setfsgid",
    "getsid",
    "capget",
    "capset",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "rt_sigsuspend",
    "sigaltstack",
    "utime",
    "mknod",
    "statfs",
    "fstatfs",
    "getpriority",
    "setpriority",
    "sched_setparam",
    "sched_getparam",
    "sched_setscheduler",
    "sched_getscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "mlock",
    "munlock",
    "mlockall",
    "munlockall",
    "modify_ldt",
    "prctl",
    "arch_prctl",
    "adjtimex",
    "setrlimit",
    "sync",
    "sethostname",
    "setdomainname",
    "gettid",
    "readahead",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "tkill",
    "time",
    "futex",
    "sched_setaffinity",
    "sched_getaffinity",
    "set_thread_area",
    "io_setup",
    "io_destroy",
    "io_getevents",
    "io_submit",
    "io_cancel",
    "get_thread_area",
    "epoll_create",
    "epoll_ctl_old",
    "epoll_wait_old",
    "remap_file_pages",
    "getdents64",
    "set_tid_address",
    "restart_syscall",
    "semtimedop",
    "fadvise64",
    "timer_create",
    "timer_settime",
    "timer_gettime",
    "timer_getoverrun",
    "timer_delete",
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "exit_group",
    "epoll_wait",
    "epoll_ctl",
    "tgkill",
    "utimes",
    "vserver",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    "waitid",
    "ioprio_set",
    "ioprio_get",
    "inotify_init",
    "inotify_add_watch",
    "inotify_rm_watch",
    "openat",
    "mkdirat",
    "mknodat",
    "fchownat",
    "futimesat",
    "newfstatat",
    "unlinkat",
    "renameat",
    "linkat",
    "symlinkat",
    "readlinkat",
    "fchmodat",
    "faccessat",
    "pselect6",
    "ppoll",
    "set_robust_list",
    "get_robust_list",
    "splice",
    "tee",
    "sync_file_range",
    "vmsplice",
    "utimensat",
    "epoll_pwait",
    "signalfd",
    "timerfd_create",
    "eventfd",
    "fallocate",
    "timerfd_settime",
    "timerfd_gettime",
    "accept4",
    "signalfd4",
    "eventfd2",
    "epoll_create1",
    "dup3",
    "pipe2",
    "inotify_init1",
    "preadv",
    "pwritev",
    "rt_tgsigqueueinfo",
    "recvmmsg",
    "fanotify_mark",
    "prlimit64",
    "syncfs",
    "sendmmsg",
    "getcpu",
    "sched_setattr",
    "sched_getattr",
    "renameat2",
    "seccomp",
    "getrandom",
    "memfd_create",
    "execveat",
    "membarrier",
    "mlock2",
    "copy_file_range",
    "preadv2",
    "pwritev2",
    "pkey_mprotect",
    "pkey_alloc",
    "pkey_free",
    "statx",
    "io_pgetevents",
    "rseq",
    "pidfd_send_signal",
    "pidfd_open",
    "close_range",
    "openat2",
    "faccessat2",
    "epoll_pwait2",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    "memfd_secret",
    "process_mrelease",
    "futex_waitv",
];

/// Syscalls the default profile leaves out on purpose (they return EPERM).
/// `clone`, `socket`, `ioctl` and `personality` are allowed only with the
/// arguments below; `clone3` returns ENOSYS so libc falls back to
/// `clone`, whose flags can be inspected.
pub const DENIED: &[&str] = &[
    "_sysctl",
    "acct",
    "add_key",
    "afs_syscall",
    "bpf",
    "chroot",
    "clock_adjtime",
    "clock_settime",
    "clone",
    "clone3",
    "create_module",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "getpmsg",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioctl",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "migrate_pages",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "personality",
    "pidfd_getfd",
    "pivot_root",
    "process_madvise",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "putpmsg",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "security",
    "set_mempolicy",
    "set_mempolicy_home_node",
    "setns",
    "settimeofday",
    "socket",
    "swapoff",
    "swapon",
    "sysfs",
    "syslog",
    "tuxcall",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vhangup",
];

pub const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// Socket families the default profile allows.
pub const SOCKET_FAMILIES: &[i32] = &[
    libc::AF_UNIX,
    libc::AF_INET,
    libc::AF_INET6,
    libc::AF_NETLINK,
    libc::AF_PACKET,
];

/// personality(2) values that do not weaken the address space (Docker's list).
pub const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// ioctl requests that push input into a terminal (CVE-2017-5226 class).
const TERMINAL_INJECTION: &[u64] = &[libc::TIOCSTI, libc::TIOCLINUX];

/// Mode bits that make a program run as its file's owner or group. In a
/// bind written as the caller (`spec::BindOwner::Caller`) a root caller's
/// sandbox creates host root's files: one of these bits set there would be
/// a setuid-root program for every host user.
const SET_ID_BITS: &[u64] = &[libc::S_ISUID as u64, libc::S_ISGID as u64];

/// Calls that set a mode: (name, index of the mode argument, index of the
/// flags argument when the mode counts only with O_CREAT or O_TMPFILE).
const MODE_SETTERS: &[(&str, u32, Option<u32>)] = &[
    ("chmod", 1, None),
    ("fchmod", 1, None),
    ("fchmodat", 2, None),
    ("fchmodat2", 2, None),
    ("mknod", 1, None),
    ("mknodat", 2, None),
    ("creat", 1, None),
    ("open", 2, Some(1)),
    ("openat", 3, Some(2)),
];

/// The open flags under which the mode argument is used (`__O_TMPFILE` is
/// the bit of O_TMPFILE that is not O_DIRECTORY).
const CREATING: &[u64] = &[libc::O_CREAT as u64, 0o20000000];

/// A syscall of the native architecture by name; `None` when libseccomp
/// does not know it.
pub fn syscall(name: &str) -> Option<ScmpSyscall> {
    ScmpSyscall::from_name(name).ok()
}

/// The default profile as two filters. The kernel runs every filter and
/// the most restrictive answer wins, which lets the second one refuse what
/// the first allows: ioctl requests compared on their low 32 bits only (the
/// kernel ignores the rest, CVE-2019-10063), and clone3 with ENOSYS.
pub fn filters() -> Result<Vec<ScmpFilterContext>, SeccompError> {
    let mut allow = ScmpFilterContext::new(ScmpAction::Errno(libc::EPERM))?;
    for name in ALLOWED.iter().chain(["ioctl", "clone3"].iter()) {
        if let Some(s) = syscall(name) {
            allow.add_rule(ScmpAction::Allow, s)?;
        }
    }
    if let Some(clone) = syscall("clone") {
        let cmp = ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(NAMESPACE_FLAGS), 0);
        allow.add_rule_conditional(ScmpAction::Allow, clone, &[cmp])?;
    }
    if let Some(socket) = syscall("socket") {
        for family in SOCKET_FAMILIES {
            let cmp = ScmpArgCompare::new(0, ScmpCompareOp::Equal, *family as u64);
            allow.add_rule_conditional(ScmpAction::Allow, socket, &[cmp])?;
        }
    }
    if let Some(p) = syscall("personality") {
        for value in PERSONALITIES {
            let cmp = ScmpArgCompare::new(0, ScmpCompareOp::Equal, *value);
            allow.add_rule_conditional(ScmpAction::Allow, p, &[cmp])?;
        }
    }
    Ok(vec![allow, refuse(&[])?])
}

/// A filter that allows what it has no rule for, on the native
/// architecture and `arches`: the base of the refusals. Architectures
/// before rules: libseccomp gives an architecture added later none of the
/// rules already there.
fn allowing_on(arches: &[ScmpArch]) -> Result<ScmpFilterContext, SeccompError> {
    let mut f = ScmpFilterContext::new(ScmpAction::Allow)?;
    for a in arches {
        if *a != ScmpArch::native() {
            f.add_arch(*a)?;
        }
    }
    Ok(f)
}

/// The second filter: refusals by argument, on top of whatever the first
/// allows, for the native architecture and `arches`. Custom profiles get
/// it too (see `custom_filters` in the module), so every rule added here
/// applies to them as well.
pub fn refuse(arches: &[ScmpArch]) -> Result<ScmpFilterContext, SeccompError> {
    let mut refuse = allowing_on(arches)?;
    if let Some(ioctl) = syscall("ioctl") {
        for req in TERMINAL_INJECTION {
            let cmp = ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(0xffff_ffff), *req);
            refuse.add_rule_conditional(ScmpAction::Errno(libc::EPERM), ioctl, &[cmp])?;
        }
    }
    if let Some(clone3) = syscall("clone3") {
        refuse.add_rule(ScmpAction::Errno(libc::ENOSYS), clone3)?;
    }
    Ok(refuse)
}

/// A third filter, for sandboxes whose writable binds are written as a
/// root caller (`spec::BindOwner::Caller`): what the workload makes there
/// is host root's, so no call may give a file a setuid or setgid mode
/// (`SET_ID_BITS`). Only there: elsewhere such a file is the sandbox's own
/// ids' and nosuid, and refusing it everywhere would break installing
/// packages in a container.
pub fn set_id_refusals(arches: &[ScmpArch]) -> Result<ScmpFilterContext, SeccompError> {
    let mut refuse = allowing_on(arches)?;
    for (name, mode, flags) in MODE_SETTERS {
        let Some(call) = syscall(name) else { continue };
        for bit in SET_ID_BITS {
            let set = ScmpArgCompare::new(*mode, ScmpCompareOp::MaskedEqual(*bit), *bit);
            match flags {
                None => {
                    refuse.add_rule_conditional(ScmpAction::Errno(libc::EPERM), call, &[set])?;
                }
                Some(f) => {
                    for c in CREATING {
                        let creating = ScmpArgCompare::new(*f, ScmpCompareOp::MaskedEqual(*c), *c);
                        refuse.add_rule_conditional(
                            ScmpAction::Errno(libc::EPERM),
                            call,
                            &[creating, set],
                        )?;
                    }
                }
            }
        }
    }
    // Its mode is behind a pointer, out of a filter's reach: ENOSYS, so
    // that callers fall back to openat, whose mode is checked above.
    if let Some(openat2) = syscall("openat2") {
        refuse.add_rule(ScmpAction::Errno(libc::ENOSYS), openat2)?;
    }
    Ok(refuse)
}
