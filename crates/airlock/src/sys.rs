//! The few system calls that rustix does not wrap (clone3, mount_setattr,
//! close_range with flags), each behind a small safe function.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `struct clone_args` from `<linux/sched.h>` (version 2, with cgroup).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Set this process's effective uid alone, with the effective
/// capabilities it had: the real and saved uids stay, and so does the
/// permitted set, from which the kernel's fixup for leaving uid 0
/// (effective set emptied) is undone. With `uid` 0 again, the kernel
/// itself copies the permitted set back to the effective one.
///
/// Only sound in a single-threaded process (the runner is one): the raw
/// syscall changes the calling thread's credentials, where libc's wrapper
/// would signal every thread.
/// The parent-death signal set on us, with the parent it was set under,
/// for [`arm_parent_death`] to set again after a change of our effective
/// uid, which clears it; none when none is set.
pub type ParentDeath = (rustix::process::Signal, Option<rustix::process::Pid>);

pub fn parent_death_watch() -> io::Result<Option<ParentDeath>> {
    let signal = rustix::process::parent_process_death_signal()?;
    Ok(signal.map(|s| (s, rustix::process::getppid())))
}

/// Set the parent-death signal of [`parent_death_watch`] again; an error
/// if that parent has exited meanwhile (the signal would never come).
pub fn arm_parent_death((signal, parent): ParentDeath) -> io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(signal))?;
    if rustix::process::getppid() != parent {
        return Err(io::Error::other("the parent process has exited"));
    }
    Ok(())
}

pub fn set_effective_uid(uid: u32) -> io::Result<()> {
    // SAFETY: setresuid with -1 (unchanged) for the real and saved uids
    // touches only this thread's credentials, which is all of this
    // process's (see above).
    let r = unsafe { libc::syscall(libc::SYS_setresuid, -1i32, uid as libc::c_int, -1i32) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    if uid != 0 {
        let raised = caps::read(None, caps::CapSet::Permitted)
            .and_then(|permitted| caps::set(None, caps::CapSet::Effective, &permitted));
        if let Err(e) = raised {
            // Not left half-way: root again (the kernel gives the
            // effective set back), and the caller is told.
            // SAFETY: as above.
            unsafe { libc::syscall(libc::SYS_setresuid, -1i32, 0, -1i32) };
            return Err(io::Error::other(e));
        }
    }
    Ok(())
}

/// Give this process, and what it forks from now on, a new and empty
/// session keyring (`keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)`), as runc
/// and crun give each container one. Keyrings are not namespaced: a
/// process possesses the keys of its session keyring, and may read them,
/// whatever its user namespace. A kernel without keys (ENOSYS, and no
/// `/proc/key-users`) has nothing to share, which is not an error; an
/// ENOSYS where the kernel has keys comes from a seccomp filter around
/// the caller and stays an error, since the caller's keyring would be
/// the sandbox's.
pub fn join_new_session_keyring() -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: a NULL name asks for a new anonymous keyring; the kernel
    // reads no memory of ours, and the call changes only this process's
    // keyrings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    match r {
        r if r >= 0 => Ok(()),
        _ => match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::ENOSYS) && !kernel_has_keys() => Ok(()),
            e => Err(e),
        },
    }
}

/// Whether the kernel was built with keys: procfs lists their users then
/// (`/proc/key-users`, unconditional with CONFIG_KEYS since Linux 4.10).
/// Without a whole procfs to ask (none mounted, or one that shows only
/// processes: `subset=pid`, where `/proc/version` is hidden too) it
/// cannot tell, and says yes: a caller's keyring is kept only where
/// there is surely none.
fn kernel_has_keys() -> bool {
    let proc = std::path::Path::new("/proc");
    let whole = proc.join("self").exists() && proc.join("version").exists();
    proc.join("key-users").exists() || !whole
}

/// In a child of fork or clone3, which never returns to the frames it
/// was copied with: a panic ends the process (status 125) rather than
/// unwind into them, where the parent's owners would close its fds a
/// second time and a cgroup's guard kill the running sandbox. The
/// message goes out through write(2) alone: the parent's other threads
/// (a test harness's) may have held stderr's lock when it forked.
pub fn exit_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        let text = format!("airlock: internal error in a sandbox process: {info}\n");
        // SAFETY: write(2) of our own buffer, and _exit, which runs no
        // destructor or atexit handler of the parent's.
        unsafe {
            libc::write(2, text.as_ptr().cast(), text.len());
            libc::_exit(125)
        }
    }));
}

/// What `clone3` returned in the calling process.
pub enum Forked {
    Parent { pid: i32, pidfd: OwnedFd },
    Child,
}

/// `clone3(flags | CLONE_PIDFD)` with fork semantics (no new stack): the
/// child continues from here on a copy of the caller's memory.
///
/// Only sound in a single-threaded process (the runner is one): the child
/// gets a copy of this thread alone, so no lock can be held by a thread that
/// does not exist in the child.
pub fn clone3(flags: u64, cgroup_fd: Option<i32>) -> io::Result<Forked> {
    // New namespaces only: with fork semantics, CLONE_VM would share this
    // stack, CLONE_FILES close the parent's fds with the child's, and
    // CLONE_VFORK or CLONE_SETTLS hang or break the caller. A plan is data
    // a caller may build by hand (`Sandbox::spawn_plan_unchecked`).
    const NAMESPACES: u64 = (libc::CLONE_NEWNS
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWCGROUP) as u64
        | 0x80; // CLONE_NEWTIME
    if flags & !NAMESPACES != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("clone flags {:#x} are not namespaces", flags & !NAMESPACES),
        ));
    }
    debug_assert!(
        !THREADED.load(std::sync::atomic::Ordering::SeqCst),
        "clone3 after the runner started a thread"
    );
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= 0x200000000; // CLONE_INTO_CGROUP
        args.cgroup = fd as u64;
    }
    // libc does not know of a raw clone3 child: musl keeps the thread id
    // it cached for us, and its raise (abort's first step) sends to that
    // id, which is ours. A child that aborts (a double panic, no memory)
    // would kill its parent with SIGABRT. Ignored here, that stray signal
    // is lost; abort in either process still ends it (both libcs reset
    // SIGABRT to its default and raise again), and the child resets every
    // disposition before it execs anything (signals::reset_for_exec).
    // SAFETY: setting SIG_IGN for a catchable signal takes no pointers.
    unsafe { libc::signal(libc::SIGABRT, libc::SIG_IGN) };
    // SAFETY: args is a valid clone_args of the size we pass; with stack 0
    // the kernel gives the child a copy of our stack (fork semantics). The
    // runner is single-threaded (checked by the caller at startup), so the
    // child's copy of the heap and of libc's state is consistent.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match check(ret)? {
        0 => {
            exit_on_panic();
            Ok(Forked::Child)
        }
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: with CLONE_PIDFD the kernel stored a new, owned fd here.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// `struct mount_attr` from `<linux/mount.h>`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], ...)`: add the
/// given attributes to the mount `fd` refers to (and, recursively, to its
/// children) and make its propagation private. Attributes are only ever
/// added, so flags the kernel has locked on a mount from a more privileged
/// namespace stay as they are.
pub fn mount_setattr(fd: impl AsFd, attr_set: u64, recursive: bool) -> io::Result<()> {
    mount_setattr_clr(fd, attr_set, 0, recursive)
}

/// Make a detached tree an idmapped mount through the user namespace
/// `userns` (recursively).
pub fn mount_setattr_idmap(fd: impl AsFd, userns: impl AsFd) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_fd().as_raw_fd() as u64,
    };
    raw_mount_setattr(fd.as_fd(), &attr, true)
}

fn raw_mount_setattr(fd: BorrowedFd, attr: &MountAttr, recursive: bool) -> io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= 0x8000; // AT_RECURSIVE
    }
    // SAFETY: the path is a valid NUL-terminated empty string, attr is a
    // valid mount_attr of the size we pass, and fd (and any userns fd in
    // attr) is borrowed for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(ret).map(drop)
}

/// Like [`mount_setattr`], also clearing `attr_clr` (only ever used on
/// mounts we created or cloned ourselves, whose flags are not locked).
pub fn mount_setattr_clr(
    fd: impl AsFd,
    attr_set: u64,
    attr_clr: u64,
    recursive: bool,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set,
        attr_clr,
        propagation: libc::MS_PRIVATE,
        userns_fd: 0,
    };
    raw_mount_setattr(fd.as_fd(), &attr, recursive)
}

/// Mark every fd from `first` up close-on-exec (`close_range` with
/// `CLOSE_RANGE_CLOEXEC`), so nothing the runner holds reaches the workload,
/// while fds it still needs until exec stay usable.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range only changes fd flags; no memory is involved.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 1u32 << 2) };
    check(ret).map(drop)
}

/// Are this process's fds 3 to 3+`count`-1, which a sandbox's process is
/// to get (OCI's `--preserve-fds`), all open? Names the first that is not.
/// Counted wide: `3 + count` past i32::MAX would wrap to a range that
/// checks nothing, and the runner would close the workload's stdio.
pub fn preserved_fds_open(count: u32) -> Result<(), String> {
    for fd in 3..3 + i64::from(count) {
        let Ok(fd) = i32::try_from(fd) else {
            return Err(format!("fd {fd} is past any fd"));
        };
        // SAFETY: F_GETFD reads the flags of an fd number; nothing else.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            return Err(format!("fd {fd} is not open"));
        }
    }
    Ok(())
}

/// Does this process's user namespace map one id only (`unshare -r`)?
/// Its uid 0 can then map nothing but itself, and launches as a rootless
/// caller. A namespace of many ids (a rootless container's, with its
/// subordinate range) keeps the root path, whose explicit maps work
/// there. Read once, from /proc/self/uid_map, where /proc is still the
/// caller's. Anything but procfs's answer (no /proc, a plain file where
/// /proc should be) is "no": taken as the host's root, a sandbox's root
/// stays off the host's ids, where the rootless path's own-id map would
/// put it on uid 0.
pub fn maps_one_id() -> bool {
    one_id_outside().is_some()
}

/// The one uid a namespace of one id maps: its number in the parent
/// namespace (0 when root ran `unshare -r`).
pub fn one_id_outside() -> Option<u32> {
    static ONE: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *ONE.get_or_init(|| one_id(&read_own_map("uid_map")?))
}

/// The gids of a namespace of one uid: the one it maps, by its number
/// in the parent namespace (`unshare --map-groups` may map another, or
/// several).
pub fn gids_outside() -> Vec<(u32, u32)> {
    let map = read_own_map("gid_map").unwrap_or_default();
    map_lines(&map)
        .into_iter()
        .map(|[_, outside, count]| (outside, count))
        .collect()
}

/// Is this the user namespace of every id of the host's (one line, 0 0
/// 4294967295: the initial one, or a container without one of its own),
/// where root has every capability over every file? Read from procfs.
pub fn holds_every_id() -> bool {
    read_own_map("uid_map").is_some_and(|m| map_lines(&m) == [[0, 0, u32::MAX]])
}

/// An id map's lines as (inside, outside, count); a line that is not
/// three numbers is left out.
fn map_lines(map: &str) -> Vec<[u32; 3]> {
    map.lines()
        .filter_map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            <[u32; 3]>::try_from(f).ok()
        })
        .collect()
}

/// /proc/self/`file`, from the kernel's procfs only.
fn read_own_map(file: &str) -> Option<String> {
    let f = std::fs::File::open(format!("/proc/self/{file}")).ok()?;
    // PROC_SUPER_MAGIC: the kernel's own procfs.
    let procfs = rustix::fs::fstatfs(&f).is_ok_and(|s| s.f_type == 0x9fa0);
    procfs.then_some(())?;
    std::io::read_to_string(f).ok()
}

/// A uid_map of one line mapping one id: that id's number outside.
fn one_id(map: &str) -> Option<u32> {
    match map_lines(map).as_slice() {
        [[_, outside, 1]] => Some(*outside),
        _ => None,
    }
}

/// Let go of the fds preserved for a sandbox's process (3 to 3+`count`-1)
/// once it has its copies: held here, a pipe's write end would keep its
/// reader from seeing the end.
pub fn close_preserved(count: u32) -> io::Result<()> {
    if count == 0 {
        return Ok(());
    }
    // SAFETY: close_range closes fds this process keeps only for the
    // process it made; no memory is involved.
    check(unsafe { libc::syscall(libc::SYS_close_range, 3u32, 2 + count, 0u32) }).map(drop)
}

/// Close every fd from `first` up, except `keep`.
pub fn close_from_except(first: i32, keep: &[i32]) -> io::Result<()> {
    let mut keep: Vec<i32> = keep.iter().copied().filter(|fd| *fd >= first).collect();
    keep.sort_unstable();
    let mut lo = first as u32;
    for k in keep {
        if (k as u32) > lo {
            // SAFETY: closes fds this process does not use (they were inherited
            // from the caller); no memory is involved.
            check(unsafe { libc::syscall(libc::SYS_close_range, lo, k as u32 - 1, 0u32) })?;
        }
        lo = k as u32 + 1;
    }
    // SAFETY: as above.
    check(unsafe { libc::syscall(libc::SYS_close_range, lo, u32::MAX, 0u32) }).map(drop)
}

/// Write kernel parameters through /proc/sys, which shows the namespaces
/// of whoever opens it.
pub fn write_sysctls(
    sysctls: &[(String, String)],
    report: crate::report::Reporter,
) -> Result<(), crate::report::SetupError> {
    use crate::report::StepExt;
    for (k, v) in sysctls {
        report.progress(|| format!("sysctl {k}={v}"));
        std::fs::write(sysctl_path(k), v).step(|| format!("sysctl {k}"))?;
    }
    Ok(())
}

/// Where sysctl `key` (`net.ipv4.ip_forward`) is under /proc/sys.
fn sysctl_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// Sysctls written into a namespace others share (a pod's network
/// namespace, joined by path), put back as they were when dropped unless
/// kept: a start refused after the write (a workload that cannot be run,
/// PID 1's setup) must leave the namespace as it found it.
#[must_use]
pub struct SharedSysctls {
    /// Each written sysctl's path, the value it had and the one written,
    /// in order.
    old: Vec<(String, String, String)>,
}

impl SharedSysctls {
    /// The sandbox got going: the values stay.
    pub fn keep(mut self) {
        self.old.clear();
    }
}

impl Drop for SharedSysctls {
    fn drop(&mut self) {
        for (path, old, ours) in self.old.iter().rev() {
            // Only what still holds our value: another of the namespace's
            // users may have set it since (a held sandbox removed later).
            let now = std::fs::read_to_string(path).unwrap_or_default();
            if now.trim() == ours.trim() {
                let _ = std::fs::write(path, old);
            }
        }
    }
}

/// [`write_sysctls`] into a shared namespace, remembering what each held.
pub fn write_shared_sysctls(
    sysctls: &[(String, String)],
    report: crate::report::Reporter,
) -> Result<SharedSysctls, crate::report::SetupError> {
    let mut written = SharedSysctls { old: Vec::new() };
    for (k, v) in sysctls {
        let path = sysctl_path(k);
        // One that cannot be read (a trigger such as net.ipv4.route.flush,
        // write-only) has no value to put back: written all the same.
        let old = std::fs::read_to_string(&path).ok();
        write_sysctls(&[(k.clone(), v.clone())], report)?;
        if let Some(old) = old {
            written.old.push((path, old, v.clone()));
        }
    }
    Ok(written)
}

/// Point stdin, stdout and stderr at /dev/null.
pub fn stdio_to_null() -> io::Result<()> {
    let null = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    for fd in [
        rustix::stdio::stdin(),
        rustix::stdio::stdout(),
        rustix::stdio::stderr(),
    ] {
        // SAFETY: the std fds are open for the whole life of the process;
        // dup2 onto them replaces what they refer to without closing them.
        let mut target =
            std::mem::ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(fd.as_raw_fd()) });
        rustix::io::dup2(&null, &mut target)?;
    }
    if null.as_raw_fd() <= 2 {
        // It landed on a closed std fd, which must stay open.
        std::mem::forget(null);
    }
    Ok(())
}

/// Wait until the child `pid` has ended, without reaping it: its pid
/// stays taken (a zombie's is never given to another process) until
/// [`reap`].
pub fn wait_ended(pid: i32) -> io::Result<()> {
    wait_status(pid, false).map(|_| ())
}

/// Wait for our child `pid` to end (retrying when a signal interrupts)
/// and return its raw wait status.
pub fn reap(pid: i32) -> io::Result<i32> {
    wait_status(pid, true).map(|(status, _)| status)
}

/// Our child `pid`'s raw wait status and resource usage once it has
/// ended; reaped, or with `reap` false left as a zombie, which goes to our
/// parent or subreaper when we exit and keeps its pid until then: the pid
/// a client was given still names it, for the client to reap.
pub fn wait_status(pid: i32, reap: bool) -> io::Result<(i32, libc::rusage)> {
    // 0 and -1 would wait for any child.
    if pid <= 0 {
        return Err(io::Error::from_raw_os_error(libc::ECHILD));
    }
    // SAFETY: a zeroed rusage is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if reap {
        let mut status = 0;
        loop {
            // SAFETY: both pointers are valid for the call; pid is our
            // child, reaped exactly once here.
            let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            if r == pid {
                return Ok((status, usage));
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }
    // SAFETY: a zeroed siginfo_t is valid; the kernel fills it in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waitid's system call (libc's wrapper has no rusage
        // argument, which WNOWAIT fills as well) with pointers valid for
        // the call; WNOWAIT leaves the child as it is.
        let r = unsafe {
            libc::syscall(
                libc::SYS_waitid,
                libc::P_PID,
                pid,
                &mut info as *mut libc::siginfo_t,
                libc::WEXITED | libc::WNOWAIT,
                &mut usage as *mut libc::rusage,
            )
        };
        if r == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
    // SAFETY: the kernel filled in a SIGCHLD siginfo, whose status field
    // this reads.
    let code = unsafe { info.si_status() };
    // As wait4 would have encoded it.
    let status = match info.si_code {
        libc::CLD_EXITED => (code & 0xff) << 8,
        libc::CLD_DUMPED => code | 0x80,
        _ => code,
    };
    Ok((status, usage))
}

/// Read a file of /proc (or /sys) whole, in as few reads as it takes.
/// Such a file says its size is 0, so `std::fs::read_to_string` probes
/// with a 32-byte read and doubles from there: eight reads for a short
/// mountinfo, each of which walks the table again to where the last one
/// stopped (`seq_read_iter`). A buffer of 16 KiB takes most in one.
pub fn read_proc(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    read_proc_file(&mut std::fs::File::open(path)?)
}

/// When process `pid` started, in clock ticks after boot (the 22nd field
/// of `/proc/PID/stat`, which anyone may read, a process that is not
/// dumpable too): with its pid, what tells it from a process that took
/// the number since.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = read_proc(format!("/proc/{pid}/stat")).ok()?;
    // The name (field 2) is in parentheses and may hold anything; the
    // fields after it start at the 3rd.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(22 - 3)?.parse().ok()
}

/// [`read_proc`] of a file already open (from where it stands).
pub fn read_proc_file(file: &mut std::fs::File) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(16 << 10);
    file.read_to_string(&mut text)?;
    Ok(text)
}

/// How the program's own global allocator gives its free pages back, if
/// it has one that keeps them (the runner's arena): set once, at start.
static HEAP_RELEASE: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Have [`release_free_memory`] call `release` too: a program whose global
/// allocator keeps freed memory for reuse names here how it gives it back.
pub fn on_release_free_memory(release: fn()) {
    // A second call names the same allocator: the first stays.
    let _ = HEAP_RELEASE.set(release);
}

/// Give the memory setup no longer uses back to the kernel: a process
/// that stays beside the workload for its whole life (the supervisor, our
/// init) should not keep the memory of parsing and carrying out the plan.
/// Call it from the main thread of a single-threaded process.
pub fn release_free_memory() {
    let stack = main_stack_low_end();
    // musl's allocator returns freed pages by itself; glibc's keeps them
    // in its arena until asked.
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0)
    };
    if let Some(release) = HEAP_RELEASE.get() {
        release();
    }
    if let Some(low) = stack {
        release_stack_below_here(low);
    }
}

/// Where [`release_free_memory`] finds our stack's low end.
#[derive(Clone, Copy)]
enum StackEnd {
    /// In /proc/self/maps: the host's procfs (the supervisor's /proc).
    Proc,
    /// Our PID 1's, read while the host's procfs was still its /proc:
    /// once the sandbox's root is entered /proc is the sandbox's, which
    /// the workload may have mounted over or replaced (a fake `[stack]`
    /// line would have us zero our own heap, a fifo would hang us; runc's
    /// CVE-2025-52881 class). Setup has not been seen to grow the
    /// mapping after (PID 1's is still the size of the supervisor's, which
    /// it was cloned from); if it did, the pages below would only stay.
    Kept(Option<usize>),
}

static STACK_END: std::sync::Mutex<StackEnd> = std::sync::Mutex::new(StackEnd::Proc);

/// Note our stack's low end for [`release_free_memory`]: call before the
/// sandbox's mounts, in a process that stays in the sandbox.
pub fn keep_stack_end() {
    let end = stack_end_in(&read_proc("/proc/self/maps").unwrap_or_default());
    *STACK_END.lock().unwrap_or_else(|e| e.into_inner()) = StackEnd::Kept(end);
}

/// The low end of the main thread's stack mapping.
fn main_stack_low_end() -> Option<usize> {
    match *STACK_END.lock().unwrap_or_else(|e| e.into_inner()) {
        StackEnd::Proc => stack_end_in(&read_proc("/proc/self/maps").ok()?),
        StackEnd::Kept(end) => end,
    }
}

/// The `[stack]` mapping's low end in the text of a maps file.
fn stack_end_in(maps: &str) -> Option<usize> {
    let line = maps.lines().find(|l| l.ends_with("[stack]"))?;
    usize::from_str_radix(line.split('-').next()?, 16).ok()
}

/// More than any stack of ours grows to (the usual limit is 8 MiB).
const MOST_STACK: usize = 64 << 20;

/// Setup ran deep (serde, the mount steps) and left those stack pages
/// resident; the watch loop that follows never goes as deep again.
#[inline(never)]
fn release_stack_below_here(low: usize) {
    let page = rustix::param::page_size();
    let marker = 0u8;
    let here = std::hint::black_box(std::ptr::addr_of!(marker)) as usize;
    // A page of margin below our frame covers the red zone and madvise's
    // own call.
    let high = (here & !(page - 1)).saturating_sub(page);
    // Only a stack's worth below us, whatever the maps said.
    if high > low && high - low <= MOST_STACK {
        // SAFETY: [low, high) is the part of this (main) thread's stack
        // below its current frame, which by the ABI holds nothing live;
        // MADV_DONTNEED makes those pages read back as zeros when the
        // stack grows into them again. No other thread runs on it.
        unsafe { libc::madvise(low as *mut libc::c_void, high - low, libc::MADV_DONTNEED) };
    }
}

/// Set once the runner starts a thread of its own (a terminal's output
/// copier, [`note_thread`]): from then on a fork would copy the calling
/// thread alone, and a lock the other holds would stay held in the child.
static THREADED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Say that this process now runs a second thread: a later [`fork`] or
/// [`clone3`] is a bug, caught in debug builds.
pub(crate) fn note_thread() {
    THREADED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// fork(2), at the runner's sites that rely on its being single-threaded.
///
/// # Safety
///
/// As for `libc::fork`: the process must be single-threaded (checked in
/// debug builds against [`note_thread`]), and the child may only do what
/// the site's own SAFETY comment says before it execs or exits.
pub(crate) unsafe fn fork() -> libc::pid_t {
    debug_assert!(
        !THREADED.load(std::sync::atomic::Ordering::SeqCst),
        "fork after the runner started a thread"
    );
    // SAFETY: the caller's contract, above.
    unsafe { libc::fork() }
}

/// Is this process single-threaded? (`/proc/self/task` has one entry.)
pub fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count() == 1)
        .unwrap_or(false)
}

/// Send `bytes` with `fds` attached (SCM_RIGHTS) on a unix socket.
pub fn send_with_fds(
    sock: impl AsFd,
    bytes: &[u8],
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    use std::mem::MaybeUninit;
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !anc.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("too many fds for one message"));
    }
    rustix::net::sendmsg(
        sock,
        &[io::IoSlice::new(bytes)],
        &mut anc,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// Receive one message and the fds attached to it (close-on-exec).
pub fn recv_with_fds(
    sock: impl AsFd,
    buf: &mut [u8],
    flags: rustix::net::RecvFlags,
) -> io::Result<(usize, Vec<OwnedFd>)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    use std::mem::MaybeUninit;
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(16))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        sock,
        &mut [io::IoSliceMut::new(buf)],
        &mut anc,
        flags | RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for m in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = m {
            fds.extend(received);
        }
    }
    Ok((msg.bytes, fds))
}

/// A close-on-exec SOCK_SEQPACKET socket pair: one message per packet, for
/// the reports between runner, supervisor and PID 1.
/// Is there something to read on `fd` right now (a poll that does not
/// wait)?
pub fn readable_now(fd: std::os::fd::BorrowedFd) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut pfd = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut pfd, Some(&zero)).is_ok_and(|n| n > 0) && pfd[0].revents().contains(PollFlags::IN)
}

pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Confine process `pid` (0: the calling one) to `cpus`
/// (sched_setaffinity).
pub fn set_cpu_affinity(pid: i32, cpus: &[u32]) -> io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    for &cpu in cpus {
        set.set(cpu as usize);
    }
    rustix::thread::sched_setaffinity(rustix::process::Pid::from_raw(pid), &set)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// A process's start time, read past a name that holds parentheses
    /// and spaces: a child started after us started no earlier, and a
    /// pid nobody has gives none.
    #[test]
    fn start_time_is_read_past_any_name() {
        let ours = super::start_time(std::process::id() as i32).unwrap();
        // The name is the program file's.
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join(") x 1 2 (");
        std::fs::copy("/bin/sleep", &odd).unwrap();
        // Another test's fork may hold the copy's fd open for a moment.
        let mut child = loop {
            match std::process::Command::new(&odd).arg("5").spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                r => break r.unwrap(),
            }
        };
        let pid = child.id() as i32;
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !super::read_proc(format!("/proc/{pid}/stat"))
            .unwrap()
            .contains(") x 1 2 (")
            && std::time::Instant::now() < end
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let theirs = super::start_time(pid);
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            theirs.is_some_and(|t| t >= ours),
            "{theirs:?} against {ours}"
        );
        assert_eq!(super::start_time(i32::MAX), None);
    }

    #[test]
    fn only_a_map_of_one_id_is_one_id() {
        assert_eq!(super::one_id("         0          0          1\n"), Some(0));
        assert_eq!(super::one_id("0 1000 1"), Some(1000));
        for more in [
            "",
            "         0          0 4294967295\n",
            "0 1000 1\n1 100000 65536\n",
            "0 0 65536\n",
            "0 0 10\n",
        ] {
            assert_eq!(super::one_id(more), None, "{more}");
        }
        assert_eq!(
            super::map_lines("         0          0 4294967295\n"),
            [[0, 0, u32::MAX]]
        );
        assert_eq!(super::map_lines("0 1000 1\nbroken\n1 2\n"), [[0, 1000, 1]]);
        // This test's own namespace: the host's, whatever /proc says.
        if rustix::process::geteuid().is_root()
            && std::fs::read_to_string("/proc/self/uid_map")
                .is_ok_and(|m| m.split_whitespace().nth(2) == Some("4294967295"))
        {
            assert!(!super::maps_one_id());
        }
    }

    /// clone3 makes namespaces and nothing else: a plan is data, and a
    /// flag that shares memory or files with the child is refused before
    /// the kernel sees it (CLONE_SIGHAND, which the kernel itself refuses
    /// without CLONE_VM, keeps this test safe on a build without the
    /// check).
    #[test]
    fn clone3_takes_namespace_flags_only() {
        let e = match super::clone3(libc::CLONE_SIGHAND as u64, None) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("cloned with CLONE_SIGHAND"),
        };
        assert!(e.contains("are not namespaces"), "{e}");
    }

    /// A child of fork that panics ends with 125, and unwinds nothing of
    /// the frames it was copied with (whose owners are the parent's).
    #[test]
    fn a_forked_child_that_panics_exits_without_unwinding() {
        use std::os::fd::{AsRawFd, OwnedFd};
        let (r, w) = rustix::pipe::pipe().unwrap();
        struct Tell<'a>(&'a OwnedFd);
        impl Drop for Tell<'_> {
            fn drop(&mut self) {
                let _ = rustix::io::write(self.0, b"unwound");
            }
        }
        // SAFETY: the child only sets the hook, panics and so _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // Its message is not the test run's.
            let null = std::fs::File::open("/dev/null").unwrap();
            // SAFETY: dup2 of two fds this process holds.
            unsafe { libc::dup2(null.as_raw_fd(), 2) };
            let _tell = Tell(&w);
            super::exit_on_panic();
            panic!("in the child");
        }
        drop(w);
        let mut status = 0;
        // SAFETY: our own child, reaped once.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 125);
        let mut buf = [0u8; 16];
        assert_eq!(
            rustix::io::read(&r, &mut buf).unwrap(),
            0,
            "{}",
            r.as_raw_fd()
        );
    }
}
