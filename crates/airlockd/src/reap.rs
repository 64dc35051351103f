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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub struct Reaper {
    /// Supervisors waited for (or about to be), and the most there may be.
    held: Arc<AtomicUsize>,
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
    /// exited. Without a pidfd for it, a pool thread waits instead.
    pub fn reap(self, sandbox: Sandbox) {
        let watch = sandbox.supervisor().ok().and_then(|s| {
            // SAFETY: the Supervisor owns its pidfd, whose number never
            // changes, and closes it only when the AsyncFd drops it, after
            // deregistering it.
            unsafe { tokio::io::unix::AsyncFd::register(s) }.ok()
        });
        let Some(exited) = watch else {
            tokio::task::spawn_blocking(move || {
                let _ = sandbox.wait();
                drop(self);
            });
            return;
        };
        drop(sandbox);
        tokio::spawn(async move {
            while let Ok(mut ready) = exited.readable().await {
                match exited.get_ref().reap() {
                    Ok(None) => ready.clear_ready(),
                    _ => break,
                }
            }
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
