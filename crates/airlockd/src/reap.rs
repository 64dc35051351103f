//! Supervisors the daemon reaps itself. A detached supervisor normally
//! forks once more to leave its caller's process tree, so that a caller
//! that forgets it never holds a zombie; the daemon spares every sandbox
//! that fork (`LifecycleOptions::supervisor_stays_child`) and reaps each
//! supervisor when its pidfd says it has exited.
//!
//! Each supervisor waited for holds one of the daemon's fds for as long
//! as its sandbox runs, and the soft limit on open files is often 1024:
//! at most half of it goes to them. A sandbox started past that forks
//! its supervisor away as before, and the daemon holds nothing for it.

use airlock::Sandbox;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;

pub struct Reaper {
    /// Supervisors waited for, or about to be.
    held: Arc<AtomicUsize>,
    /// The most there may be.
    most: usize,
}

/// One supervisor's place among those the daemon reaps, given back when
/// it has been reaped (or its sandbox did not start).
pub struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Reaper {
    /// Half the fds this process may open.
    pub fn new() -> Reaper {
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        Reaper::with_room(usize::try_from(soft / 2).unwrap_or(usize::MAX))
    }

    fn with_room(most: usize) -> Reaper {
        Reaper {
            held: Arc::new(AtomicUsize::new(0)),
            most,
        }
    }

    /// A place for one more supervisor to stay our child, if there is room.
    pub fn reserve(&self) -> Option<Place> {
        let reserved = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.most).then_some(n + 1)
            })
            .is_ok();
        reserved.then(|| Place(self.held.clone()))
    }
}

impl Place {
    /// Reap `sandbox`'s supervisor, which stayed our child, once it has
    /// exited: when its pidfd says so, or, without one (out of fds), by
    /// asking once a second. No thread waits for it: a thread per
    /// sandbox would take the blocking pool every call needs.
    pub fn reap(self, sandbox: Sandbox) {
        let sup = match sandbox.into_supervisor() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "a supervisor to reap");
                return;
            }
        };
        // SAFETY: the pidfd belongs to `sup`, which this task owns and
        // drops only after the AsyncFd (deregistered as it drops).
        let watch = sup
            .pidfd()
            .and_then(|fd| unsafe { AsyncFd::register(fd.as_raw_fd()) }.ok());
        tokio::spawn(async move {
            match watch {
                Some(exited) => {
                    while let Ok(mut ready) = exited.readable().await {
                        match sup.reap() {
                            Ok(None) => ready.clear_ready(),
                            _ => break,
                        }
                    }
                    drop(exited);
                }
                None => {
                    tracing::warn!(pid = sup.pid(), "no pidfd for a supervisor: polling it");
                    let mut tick = tokio::time::interval(Duration::from_secs(1));
                    while matches!(sup.reap(), Ok(None)) {
                        tick.tick().await;
                    }
                }
            }
            drop(sup);
            drop(self);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_run_out_and_come_back() {
        let r = Reaper::with_room(2);
        let (a, b) = (r.reserve(), r.reserve());
        assert!(a.is_some() && b.is_some());
        assert!(r.reserve().is_none(), "a third place beyond the room");
        drop(a);
        assert!(r.reserve().is_some(), "a place given back is free again");
    }

    #[test]
    fn the_room_is_half_the_soft_fd_limit() {
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap();
        assert_eq!(Reaper::new().most as u64, soft / 2);
    }
}
