//! Places per caller: how many of something (connections, streams) each
//! uid other than root holds at once, each place given back when what
//! holds it is dropped. A caller of the group opening without end would
//! otherwise take the daemon's file descriptors and threads from every
//! other caller, root's included.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The places each uid holds of one kind.
#[derive(Clone, Default)]
pub struct Quota {
    held: Arc<Mutex<HashMap<u32, usize>>>,
}

/// One place, held until dropped.
pub struct Place {
    held: Arc<Mutex<HashMap<u32, usize>>>,
    uid: u32,
}

impl Quota {
    /// A place for `uid` if it holds fewer than `max`; otherwise how many
    /// it holds.
    pub fn take(&self, uid: u32, max: usize) -> Result<Place, usize> {
        let mut held = self.held.lock().expect("quota lock");
        let n = held.entry(uid).or_default();
        if *n >= max {
            let have = *n;
            if have == 0 {
                held.remove(&uid);
            }
            return Err(have);
        }
        *n += 1;
        Ok(Place {
            held: self.held.clone(),
            uid,
        })
    }

    #[cfg(test)]
    fn holds(&self, uid: u32) -> usize {
        self.held
            .lock()
            .unwrap()
            .get(&uid)
            .copied()
            .unwrap_or_default()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut held = self.held.lock().expect("quota lock");
        if let Some(n) = held.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Quota;

    #[test]
    fn places_are_counted_per_uid_and_given_back_when_dropped() {
        let q = Quota::default();
        let a = q.take(1000, 2).unwrap();
        let b = q.take(1000, 2).unwrap();
        assert_eq!(q.take(1000, 2).err(), Some(2));
        // Another uid has places of its own.
        let c = q.take(1001, 2).unwrap();
        drop(a);
        assert_eq!(q.holds(1000), 1);
        let _a = q.take(1000, 2).unwrap();
        drop((b, c));
        assert_eq!(q.holds(1001), 0);
        assert_eq!(q.take(7, 0).err(), Some(0));
        assert!(q.held.lock().unwrap().get(&7).is_none());
    }
}
