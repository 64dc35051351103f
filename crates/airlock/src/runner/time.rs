//! The time namespace: the sandbox's CLOCK_MONOTONIC and CLOCK_BOOTTIME
//! start where the spec says (near zero by default), so uptime does not
//! reveal the host's.
//!
//! Offsets can only be written while the new namespace has no process in
//! it, so the order is: unshare (which only affects our future children),
//! write the offsets through /proc/self/timens_offsets, then setns into
//! `time_for_children` so that init itself runs on the new clocks too.

use super::report::{SetupError, StepExt};
use crate::spec::Clocks;
use rustix::fs::{Mode, OFlags};

pub fn enter(clocks: &Clocks) -> Result<(), SetupError> {
    let step = || "time namespace".to_string();
    // SAFETY: unshare takes no pointers; the runner is single-threaded.
    if unsafe { libc::unshare(libc::CLONE_NEWTIME) } != 0 {
        return Err(SetupError::io(step(), &std::io::Error::last_os_error()));
    }
    let mono = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let boot = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    // Whole seconds only: the sandbox's clocks start between `start` and
    // `start + 1s`, never below zero (the kernel refuses a negative clock).
    // Offsets asked as such (OCI's) are written as they are.
    let (mono_off, boot_off) = match clocks.offsets {
        true => (clocks.monotonic, clocks.boottime),
        false => (
            clocks.monotonic - mono.tv_sec,
            clocks.boottime - boot.tv_sec,
        ),
    };
    let offsets = format!(
        "{} {mono_off} 0\n{} {boot_off} 0\n",
        libc::CLOCK_MONOTONIC,
        libc::CLOCK_BOOTTIME,
    );
    let f = rustix::fs::open(
        "/proc/self/timens_offsets",
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .step(step)?;
    rustix::io::write(&f, offsets.as_bytes()).step(|| "write clock offsets".into())?;
    let ns = rustix::fs::open(
        "/proc/self/ns/time_for_children",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .step(step)?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&ns),
        Some(rustix::thread::LinkNameSpaceType::Time),
    )
    .step(|| "enter the time namespace".into())?;
    Ok(())
}
