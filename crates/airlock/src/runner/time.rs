//! The time namespace: the sandbox's CLOCK_MONOTONIC and CLOCK_BOOTTIME
//! start where the spec says (near zero by default), so that a workload's
//! clocks do not depend on the host's uptime. (They do not hide it: a
//! process may read its own `/proc/self/timens_offsets`, which holds the
//! host's uptime at the start, and no mount can cover a per-process file.)
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
/// uid by root) not dumpable and so root's. A root supervisor opens it
/// with the euid that made PID 1's user namespace (see `supervisor.rs`).
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
    // In nanoseconds, boot-time first: each clock starts where asked to
    // within the time it takes to get going, and boot time, read before
    // monotonic, stays ahead of it by at least what was asked (the kernel
    // keeps boottime >= monotonic; offsets of whole seconds from the
    // seconds of each clock put them up to a second apart either way on a
    // host that has been suspended).
    let host = |id, own: i128| nanos(rustix::time::clock_gettime(id)) - own;
    let boot = host(rustix::time::ClockId::Boottime, own_boot);
    let mono = host(rustix::time::ClockId::Monotonic, own_mono);
    let monotonic = secs(clocks.monotonic) + clocks.monotonic_nanos as i128;
    let boottime = secs(clocks.boottime) + clocks.boottime_nanos as i128;
    // Offsets asked as such (OCI's) are written as they are.
    let (mono_off, boot_off) = match clocks.offsets {
        true => (monotonic, boottime),
        false => (monotonic - mono, boottime - boot),
    };
    let text = format!(
        "{} {}\n{} {}\n",
        libc::CLOCK_MONOTONIC,
        written(mono_off),
        libc::CLOCK_BOOTTIME,
        written(boot_off),
    );
    match rustix::io::write(offsets, text.as_bytes()) {
        Ok(_) => {}
        Err(e) if e != rustix::io::Errno::RANGE => {
            return Err(SetupError::io("write clock offsets", &e.into()))
        }
        Err(e) => {
            // ERANGE: an offset that puts a clock below zero or past what
            // it counts; only the host's clocks now tell which.
            let out = |host: i128, off: i128| !(0..=secs(MAX_CLOCK)).contains(&(host + off));
            let field = if out(mono, mono_off) {
                "time.monotonic"
            } else if out(boot, boot_off) {
                "time.boottime"
            } else {
                "time"
            };
            return Err(SetupError::new(
                field,
                format!(
                    "the kernel refused the clock offsets monotonic {}s, boottime {}s from the host's clocks (monotonic {}s, boottime {}s): {e}",
                    mono_off / NANOS, boot_off / NANOS, mono / NANOS, boot / NANOS
                ),
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

const NANOS: i128 = 1_000_000_000;

/// The largest value a time namespace's clock may take, in seconds (the
/// kernel's `KTIME_SEC_MAX / 2`), as it bounds an offset too.
const MAX_CLOCK: i64 = crate::spec::validate::MAX_CLOCK_OFFSET;

fn nanos(t: rustix::time::Timespec) -> i128 {
    t.tv_sec as i128 * NANOS + t.tv_nsec as i128
}

fn secs(s: i64) -> i128 {
    s as i128 * NANOS
}

/// An offset as `timens_offsets` takes it: seconds, and nanoseconds from
/// 0 to 1e9-1 past them (-1.5 s is `-2 500000000`).
fn written(off: i128) -> String {
    format!("{} {}", off.div_euclid(NANOS), off.rem_euclid(NANOS))
}

/// The nanoseconds our own time namespace adds to the host's monotonic
/// and boot-time clocks (none in the host's).
pub fn own_offsets() -> Result<(i128, i128), SetupError> {
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
        let secs: i64 = secs.parse().map_err(|_| unexpected())?;
        // The nanoseconds are 0 to 1e9-1 past the seconds.
        let nanos: u32 = nanos.map_or(Ok(0), str::parse).map_err(|_| unexpected())?;
        let off = self::secs(secs) + nanos as i128;
        match clock {
            "monotonic" => mono = off,
            "boottime" => boot = off,
            _ => {}
        }
    }
    Ok((mono, boot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_written_with_nanoseconds_past_the_seconds() {
        assert_eq!(written(-1_500_000_000), "-2 500000000");
        assert_eq!(written(1_500_000_000), "1 500000000");
        assert_eq!(written(-3 * NANOS), "-3 0");
        assert_eq!(written(0), "0 0");
    }
}
