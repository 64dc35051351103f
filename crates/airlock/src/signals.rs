//! Signals, shared by the caller (forwarding to the runner), the
//! supervisor (to PID 1, plus the stop and SIGWINCH wake-up pipes) and our
//! init (to the workload). The handler only calls kill(2), which is
//! async-signal-safe.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The standard signals passed on to the workload: every one a process
/// may be sent to ask something of it, as tini and runc pass them on.
/// Not passed on: SIGKILL and SIGSTOP (they cannot be caught), SIGCHLD
/// (ours, for reaping), the faults a process raises in itself (SIGSEGV,
/// SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT), those the kernel
/// sends a process about its own writes and limits (SIGPIPE, SIGXCPU,
/// SIGXFSZ), and job control (SIGTSTP, SIGTTIN, SIGTTOU stop the one who
/// receives them, as before).
const STANDARD: &[i32] = &[
    libc::SIGWINCH,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGCONT,
    libc::SIGURG,
    libc::SIGIO,
    libc::SIGPROF,
    libc::SIGVTALRM,
    libc::SIGPWR,
    libc::SIGSTKFLT,
];

/// The first real-time signal every process on the way can catch: musl
/// (the runner) keeps 32 to 34 for itself, glibc (the CLI) 32 and 33. A
/// 34 the glibc CLI caught and passed on would kill the musl runner, which
/// can neither catch nor block it; not caught, it ends the CLI, which
/// stops the sandbox cleanly.
const FIRST_REALTIME: i32 = 35;

/// Every signal passed on to the workload: [`STANDARD`] and the real-time
/// signals from 35 but the stop signal (36).
pub fn forwarded() -> impl Iterator<Item = i32> {
    STANDARD
        .iter()
        .copied()
        .chain((FIRST_REALTIME..=64).filter(|&s| s != stop_signal()))
}

/// Why `sig` is not passed on to the workload, or `None` when it is.
pub fn kept(sig: i32) -> Option<&'static str> {
    // 0 delivers nothing: kill(2)'s probe of whether the process is there.
    if sig == 0 || forwarded().any(|s| s == sig) {
        return None;
    }
    Some(match sig {
        s if !(1..=64).contains(&s) => "it is not a signal",
        s if s == stop_signal() => "it is airlock's own stop signal (a kill without a signal sends it)",
        32..=34 => "libc keeps it for itself",
        libc::SIGCHLD => "PID 1 reaps with it",
        libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU | libc::SIGSTOP => "job control stops the process it is sent to, not the workload",
        libc::SIGKILL => "it cannot be caught to be passed on",
        _ => "it reports a fault or a limit of the process that receives it (SEGV, BUS, FPE, ILL, TRAP, SYS, ABRT, PIPE, XCPU, XFSZ)",
    })
}

/// Whether `sig` ends a sandbox held before its start (`--hold`, OCI's
/// created container): its PID 1 ignores a signal it has no handler for,
/// where runc's held init, a Go program, dies of these: the terminating
/// ones Go does not catch and ignore (HUP, INT, TERM) and those it exits
/// on with a stack dump; SIGKILL too.
pub fn ends_held(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGHUP
            | libc::SIGINT
            | libc::SIGTERM
            | libc::SIGQUIT
            | libc::SIGILL
            | libc::SIGTRAP
            | libc::SIGABRT
            | libc::SIGBUS
            | libc::SIGFPE
            | libc::SIGSEGV
            | libc::SIGSTKFLT
            | libc::SIGSYS
            | libc::SIGKILL
    )
}

static TARGET: AtomicI32 = AtomicI32::new(0);
static FORWARD_TERMINAL: AtomicBool = AtomicBool::new(true);

extern "C" fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // A signal the terminal sent (SI_KERNEL) has already reached the whole
    // foreground process group, the workload included, unless the workload
    // is in a session of its own: then it is ours to pass on.
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let from_terminal = !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL;
    if from_terminal && !FORWARD_TERMINAL.load(Ordering::Relaxed) {
        return;
    }
    let pid = TARGET.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe and takes no pointers; errno is
        // saved and restored around it for the code we interrupted.
        unsafe {
            let saved = *libc::__errno_location();
            libc::kill(pid, sig);
            *libc::__errno_location() = saved;
        }
    }
}

/// Forward the signals in [`forwarded`] to `pid` from now on, including
/// any that arrived while they were blocked.
/// `own_session`: the workload is not in the caller's foreground process
/// group, so terminal-generated signals must be passed on too.
pub fn forward_to(pid: i32, own_session: bool) {
    TARGET.store(pid, Ordering::Relaxed);
    FORWARD_TERMINAL.store(own_session, Ordering::Relaxed);
    for sig in forwarded() {
        // SAFETY: sigaction with a zeroed struct, a handler of the
        // SA_SIGINFO signature, and an empty mask is well-defined.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    unblock();
}

/// Forward nothing more to `pid` (the handlers stay, and drop what
/// comes): call once it has ended, before it is reaped and its pid can be
/// another process's.
pub fn stop_forwarding(pid: i32) {
    let _ = TARGET.compare_exchange(pid, 0, Ordering::Relaxed, Ordering::Relaxed);
}

static GROUP: AtomicI32 = AtomicI32::new(0);

extern "C" fn kill_group(_sig: libc::c_int) {
    let pid = GROUP.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe and takes no pointers; errno is
        // saved and restored around it for the code we interrupted.
        unsafe {
            let saved = *libc::__errno_location();
            libc::kill(-pid, libc::SIGKILL);
            libc::kill(pid, libc::SIGKILL);
            *libc::__errno_location() = saved;
        }
    }
}

/// From now on, the stop signal (see [`stop_signal`]) kills `pid`'s whole
/// process group, which an exec'd process leads (its runner made it a
/// session of its own): what it started in the background goes with it,
/// where the parent-death signal of a runner that died of the stop signal
/// reached only `pid`. The runner then reaps `pid` and reports it killed.
/// (An exec without a new session, which a spec may ask, has no group of
/// its own: only `pid` is killed then.) `0` stops it, before `pid` is
/// reaped and could be reused.
pub fn stop_kills_group(pid: i32) {
    GROUP.store(pid, Ordering::Relaxed);
    // SAFETY: sigaction with a zeroed struct, a plain handler and an
    // empty mask is well-defined.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = kill_group as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(stop_signal(), &sa, std::ptr::null_mut());
    }
}

/// SIGCHLD at its default disposition. A caller may have started us with
/// it ignored (which survives exec): the kernel then reaps our children
/// itself, and every wait for one fails with ECHILD, so a sandbox's exit
/// status, a hook's or a runner's would be lost.
pub fn default_child_signal() {
    // SAFETY: setting one signal's disposition to its default.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
}

/// For a verb that only prints: SIGPIPE back to its default, so that a
/// reader that stops early (`| head`) ends it quietly, as it ends `ls`,
/// instead of Rust's ignored SIGPIPE turning the next print into a panic.
/// Not for a verb that starts or changes a sandbox: one cut short there
/// would leave it half done.
pub fn default_pipe_signal() {
    // SAFETY: setting one signal's disposition to its default.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Give the workload a clean signal state: default dispositions for
/// everything (Rust's runtime ignores SIGPIPE, and ignored signals survive
/// exec) and an empty mask.
pub fn reset_for_exec() {
    // Every signal the kernel has, real-time ones included, and by the
    // raw call: libc refuses the numbers it keeps for itself (32 and 33 in
    // glibc, 32 to 34 in musl), and which those are depends on the libc
    // the runner was linked with, not on the workload's.
    // A zeroed kernel sigaction is SIG_DFL with no flags and an empty
    // mask, whichever of its layouts the architecture has.
    let dfl = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads a zeroed struct at least as large as
        // the kernel's and writes nothing (no old action asked for).
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
    }
    // SAFETY: an empty, initialised sigset passed by pointer.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// The shell's view of a wait status: the exit code, or 128+N for signal N.
pub fn shell_status(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        125
    }
}

/// Block the forwarded signals (before a child exists to forward to); a
/// signal that arrives meanwhile stays pending until [`forward_to`] and
/// [`unblock`] deliver it.
pub fn block() {
    set_mask(libc::SIG_BLOCK);
}

pub fn unblock() {
    set_mask(libc::SIG_UNBLOCK);
}

/// Wait for one of the forwarded signals, which must be blocked in every
/// thread ([`block`] before any other thread starts), and return it: for
/// a thread that passes them on by other means than `kill(2)`.
pub fn next_forwarded() -> i32 {
    // SAFETY: an initialised sigset and an int, both valid for the call.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in forwarded() {
            libc::sigaddset(&mut set, sig);
        }
        let mut sig = 0;
        // Its only errors are EINVAL for a bad set, which this is not.
        while libc::sigwait(&set, &mut sig) != 0 {}
        sig
    }
}

fn set_mask(how: libc::c_int) {
    // SAFETY: an initialised sigset passed by pointer for the call only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in forwarded() {
            libc::sigaddset(&mut set, sig);
        }
        libc::sigprocmask(how, &set, std::ptr::null_mut());
    }
}

static STOP: AtomicBool = AtomicBool::new(false);
/// Write end of the self-pipe the stop handler writes to, so a stop that
/// lands just before a poll still wakes it.
static STOP_PIPE: AtomicI32 = AtomicI32::new(-1);

/// The signal that tells the supervisor to kill the whole sandbox, clean
/// up and exit: sent by `Sandbox::kill`, and the supervisor's parent-death
/// signal (SIGKILL would leave its cgroups behind).
///
/// A fixed kernel number, not `SIGRTMIN() + n`: the caller may be linked
/// against glibc (SIGRTMIN 34) and the runner against musl (SIGRTMIN 35),
/// and both must mean the same signal. 36 is a real-time signal neither
/// libc keeps for itself, and the number airlock has always sent.
pub fn stop_signal() -> i32 {
    36
}

/// Wake whoever polls the read end of the pipe `fd` (from a handler).
fn poke(fd: i32) {
    if fd >= 0 {
        // SAFETY: write is async-signal-safe; the buffer is a static byte;
        // errno is saved and restored for the code we interrupted.
        unsafe {
            let saved = *libc::__errno_location();
            libc::write(fd, b"s".as_ptr() as *const libc::c_void, 1);
            *libc::__errno_location() = saved;
        }
    }
}

extern "C" fn on_stop(_sig: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
    poke(STOP_PIPE.load(Ordering::Relaxed));
}

static WINCH_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_winch(_sig: libc::c_int) {
    poke(WINCH_PIPE.load(Ordering::Relaxed));
}

/// Route each of `sigs` to `handler`, which pokes the pipe in `slot`; the
/// returned read end becomes readable when one comes (poll it beside
/// whatever the caller waits for).
fn catch_to_pipe(
    sigs: &[i32],
    slot: &AtomicI32,
    handler: extern "C" fn(libc::c_int),
) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::IntoRawFd;
    let (r, w) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
    )?;
    // The write end lives as long as the process: the handler may run at
    // any time.
    slot.store(w.into_raw_fd(), Ordering::Relaxed);
    // SAFETY: a zeroed sigaction with a plain handler and an empty mask;
    // SA_RESTART so that blocking reads and writes are not cut short.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        for &sig in sigs {
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    Ok(r)
}

/// Catch the stop signal (see [`catch_to_pipe`]).
pub fn catch_stop() -> std::io::Result<std::os::fd::OwnedFd> {
    catch_to_pipe(&[stop_signal()], &STOP_PIPE, on_stop)
}

/// Catch SIGWINCH, which the caller forwards when its terminal is resized
/// (see [`catch_to_pipe`]).
pub fn catch_winch() -> std::io::Result<std::os::fd::OwnedFd> {
    catch_to_pipe(&[libc::SIGWINCH], &WINCH_PIPE, on_winch)
}

static SUSPEND_PIPE: AtomicI32 = AtomicI32::new(-1);
static SUSPEND_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_suspend(sig: libc::c_int) {
    SUSPEND_SIGNAL.store(sig, Ordering::Relaxed);
    poke(SUSPEND_PIPE.load(Ordering::Relaxed));
}

/// The job-control stop that came last (see [`catch_suspend`]).
pub fn suspend_signal() -> i32 {
    SUSPEND_SIGNAL.load(Ordering::Relaxed)
}

/// Catch job control's stops (SIGTSTP: Ctrl-Z; SIGTTIN and SIGTTOU: the
/// caller's terminal read or written from the background), which would
/// stop the supervisor alone and leave the sandbox running unwatched, its
/// timeout uncounted: the supervisor stops the sandbox with itself (see
/// [`catch_to_pipe`]).
pub fn catch_suspend() -> std::io::Result<std::os::fd::OwnedFd> {
    catch_to_pipe(
        &[libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU],
        &SUSPEND_PIPE,
        on_suspend,
    )
}

/// Has a stop been asked for?
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// In PID 1 (a fork of the supervisor): no stop handler, no pipe to the
/// supervisor's wake-up. A handled signal can be sent to a namespace's
/// init from inside; a default one cannot.
pub fn forget_stop() {
    // SAFETY: restoring the default disposition, then closing the fd this
    // process inherited (the handler is gone, nothing else uses it).
    unsafe {
        libc::signal(stop_signal(), libc::SIG_DFL);
        let fd = STOP_PIPE.swap(-1, Ordering::Relaxed);
        if fd >= 0 {
            libc::close(fd);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_stop_signal_is_an_application_real_time_signal() {
        // glibc keeps 32 and 33 for itself, musl 32 to 34: a number below
        // this libc's SIGRTMIN would be one of its own.
        let sig = super::stop_signal();
        assert!(
            (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&sig) && sig >= 35,
            "{sig}"
        );
    }
}
