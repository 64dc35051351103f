//! The time namespace: the sandbox's CLOCK_MONOTONIC and CLOCK_BOOTTIME
//! start where the spec says (near zero by default), so uptime does not
//! reveal the host's.
//!
//! Offsets can only be written while the new namespace has no process in
//! it, so the order is: unshare (which only affects our future children),
//! write the offsets through PID 1's `timens_offsets`, then setns into
//! `time_for_children` so that init itself runs on the new clocks too.
//!
//! The supervisor opens that file for PID 1 ([`offsets_file`]) and hands
//! it over: the kernel judges the write by the opener's credentials. PID
//! 1 could open its own only by making itself dumpable, and a dumpable PID
//! 1 may be ptraced by the host uid that owns its user namespace (a
//! daemon's client, whose sandbox the daemon sets up as root), which
//! would then hold PID 1's report socket to the root supervisor.

use super::report::{SetupError, StepExt};
use crate::spec::Clocks;
use rustix::fs::{Mode, OFlags};
use std::os::fd::{AsFd, OwnedFd};

/// PID 1's `timens_offsets`, opened by the supervisor while PID 1 waits
/// for "go": it is still the supervisor's uid then, or (created as another
/// uid by root) not dumpable and so root's.
pub fn offsets_file(pid: i32) -> Result<OwnedFd, SetupError> {
    match rustix::fs::open(
        format!("/proc/{pid}/timens_offsets").as_str(),
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(f) => Ok(f),
        // Also what a PID 1 that died already leaves.
        Err(rustix::io::Errno::NOENT) if !std::path::Path::new("/proc/self/ns/time").exists() => {
            Err(no_time_namespaces())
        }
        Err(e) => Err(SetupError::io(
            "time namespace: open PID 1's clock offsets",
            &e.into(),
        )),
    }
}

fn no_time_namespaces() -> SetupError {
    SetupError::new(
        "namespaces.time",
        "this kernel has no time namespaces (Linux 5.6 or later, built with CONFIG_TIME_NS): share the host's clocks (--share-time; namespaces.time = false)",
    )
}

/// Unshare the time namespace, write the offsets through `offsets` (from
/// [`offsets_file`]) and enter it.
pub fn enter(clocks: &Clocks, offsets: impl AsFd) -> Result<(), SetupError> {
    let step = || "time namespace".to_string();
    // The kernel takes offsets from the host's clocks (the initial time
    // namespace's), while we read ours: inside a time namespace already
    // (airlock in a sandbox, a container), ours are offset. Read before
    // the unshare, after which the file shows the namespace to come.
    let (own_mono, own_boot) = own_offsets()?;
    // SAFETY: unshare takes no pointers; the runner is single-threaded.
    if unsafe { libc::unshare(libc::CLONE_NEWTIME) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINVAL) {
            return Err(no_time_namespaces());
        }
        return Err(SetupError::io(step(), &e));
    }
    let host = |id, own: i64| rustix::time::clock_gettime(id).tv_sec - own;
    let mono = host(rustix::time::ClockId::Monotonic, own_mono);
    let boot = host(rustix::time::ClockId::Boottime, own_boot);
    // Whole seconds only: the sandbox's clocks start between `start` and
    // `start + 1s`, never below zero (the kernel refuses a negative clock).
    // Offsets asked as such (OCI's) are written as they are.
    let (mono_off, boot_off) = match clocks.offsets {
        true => (clocks.monotonic, clocks.boottime),
        false => (clocks.monotonic - mono, clocks.boottime - boot),
    };
    let text = format!(
        "{} {mono_off} 0\n{} {boot_off} 0\n",
        libc::CLOCK_MONOTONIC,
        libc::CLOCK_BOOTTIME,
    );
    match rustix::io::write(offsets, text.as_bytes()) {
        Ok(_) => {}
        Err(e) if e != rustix::io::Errno::RANGE => {
            return Err(SetupError::io("write clock offsets", &e.into()))
        }
        Err(e) => {
            // ERANGE: an offset that puts a clock below zero (or past what it
            // counts); only the host's clocks now tell which.
            let field = if mono.saturating_add(mono_off) < 0 {
                "time.monotonic"
            } else if boot.saturating_add(boot_off) < 0 {
                "time.boottime"
            } else {
                "time"
            };
            return Err(SetupError::new(
            field,
            format!("the kernel refused the clock offsets monotonic {mono_off}s, boottime {boot_off}s from the host's clocks: {e}"),
        ));
        }
    }
    let ns = rustix::fs::open(
        "/proc/self/ns/time_for_children",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .step(step)?;
    rustix::thread::move_into_link_name_space(
        ns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Time),
    )
    .step(|| "enter the time namespace".into())?;
    Ok(())
}

/// The seconds our own time namespace adds to the host's monotonic and
/// boot-time clocks (none in the host's), rounded up.
fn own_offsets() -> Result<(i64, i64), SetupError> {
    let text = match std::fs::read_to_string("/proc/self/timens_offsets") {
        Ok(t) => t,
        // No time namespaces here: the unshare says so.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(SetupError::io("time namespace: read our clock offsets", &e)),
    };
    let (mut mono, mut boot) = (0, 0);
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(clock), Some(secs), nanos) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        let unexpected = || {
            SetupError::new(
                "time namespace",
                format!("/proc/self/timens_offsets: unexpected line {line:?}"),
            )
        };
        let mut secs: i64 = secs.parse().map_err(|_| unexpected())?;
        // Rounded up (the nanoseconds are 0 to 1e9-1 past the seconds):
        // the host's clock is then taken as a little early, never late,
        // and the sandbox's starts at or just above what was asked, never
        // below zero.
        if nanos.is_some_and(|n| n.parse::<u64>().map_or(true, |n| n > 0)) {
            secs += 1;
        }
        match clock {
            "monotonic" => mono = secs,
            "boottime" => boot = secs,
            _ => {}
        }
    }
    Ok((mono, boot))
}
