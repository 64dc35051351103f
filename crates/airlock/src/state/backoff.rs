//! Polling for what another process writes (a sandbox's state, its
//! `alive` lock) where the kernel offers nothing to block on: the first
//! look comes after 100 µs and each pause doubles up to a ceiling, so a
//! change that takes 1 ms is seen within about 1 ms more, not a whole
//! fixed period later (a fixed 5 ms pause was a third of an OCI `run` of
//! `/bin/true`), and a long wait still costs few wake-ups.

use std::time::{Duration, Instant};

/// Growing pauses between looks, up to `max`.
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(max: Duration) -> Backoff {
        Backoff {
            next: Duration::from_micros(100).min(max),
            max,
        }
    }

    /// Sleep for the next pause, never past `deadline`.
    pub fn pause_until(&mut self, deadline: Instant) {
        self.sleep(deadline.saturating_duration_since(Instant::now()));
    }

    /// Sleep for the next pause.
    pub fn pause(&mut self) {
        self.sleep(Duration::MAX);
    }

    fn sleep(&mut self, at_most: Duration) {
        std::thread::sleep(self.next.min(at_most));
        self.next = (self.next * 2).min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_the_ceiling_and_stop_at_the_deadline() {
        let mut b = Backoff::new(Duration::from_millis(1));
        let start = Instant::now();
        for _ in 0..8 {
            b.pause();
        }
        // 0.1 + 0.2 + 0.4 + 0.8 + 4 × 1 ms, and sleeps never end early.
        assert!(start.elapsed() >= Duration::from_micros(5500));
        assert_eq!(b.next, Duration::from_millis(1));
        let mut b = Backoff::new(Duration::from_secs(10));
        b.next = Duration::from_secs(10);
        let start = Instant::now();
        b.pause_until(start + Duration::from_millis(20));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "slept past the deadline"
        );
    }
}
