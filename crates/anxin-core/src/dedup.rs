//! The message ids the engine has seen inside its dedup window.
//!
//! A set of `(device, message id)` that grows by a press at a time and keeps each entry's
//! hash beside it. When the table grows it moves every entry to a table twice the size, and
//! a set that hashed its entries again would read both ids' text for each one, scattered
//! over the heap: at 57,344 presses this set and two tables keyed by device ids, growing
//! together, took the engine 40 ms of SipHash in the middle of a surge, with every press
//! behind them waiting. Here growing reads only the stored hashes.

use crate::ids::{DeviceId, MessageId};
use hashbrown::hash_table::{Entry, HashTable};
use std::hash::{BuildHasher, RandomState};

#[derive(Debug)]
struct Seen {
    hash: u64,
    device: DeviceId,
    msg: MessageId,
}

/// A set of `(device, message id)` pairs; see the module's documentation.
#[derive(Debug, Default)]
pub(crate) struct SeenMessages {
    table: HashTable<Seen>,
    /// Keyed anew in every process, as std's maps are: ids come from devices.
    hasher: RandomState,
}

impl SeenMessages {
    fn hash(&self, device: &DeviceId, msg: &MessageId) -> u64 {
        self.hasher.hash_one((device, msg))
    }

    pub(crate) fn contains(&self, device: &DeviceId, msg: &MessageId) -> bool {
        self.table.find(self.hash(device, msg), |s| s.device == *device && s.msg == *msg).is_some()
    }

    /// Adds the pair; false if it was there already.
    pub(crate) fn insert(&mut self, device: DeviceId, msg: MessageId) -> bool {
        let hash = self.hash(&device, &msg);
        match self.table.entry(hash, |s| s.device == device && s.msg == msg, |s| s.hash) {
            Entry::Occupied(_) => false,
            Entry::Vacant(slot) => {
                slot.insert(Seen { hash, device, msg });
                true
            }
        }
    }

    pub(crate) fn remove(&mut self, device: &DeviceId, msg: &MessageId) {
        if let Ok(entry) = self.table.find_entry(self.hash(device, msg), |s| s.device == *device && s.msg == *msg) {
            entry.remove();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.len()
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.table.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(d: usize, m: usize) -> (DeviceId, MessageId) {
        (DeviceId::parse(format!("d{d}")).unwrap(), MessageId::parse(format!("m{m}")).unwrap())
    }

    #[test]
    fn a_pair_is_seen_once_until_removed() {
        let mut seen = SeenMessages::default();
        let (d, m) = pair(1, 1);
        assert!(!seen.contains(&d, &m));
        assert!(seen.insert(d.clone(), m.clone()));
        assert!(seen.contains(&d, &m));
        assert!(!seen.insert(d.clone(), m.clone()), "the same pair again is not new");
        let (other_device, other_msg) = pair(2, 2);
        assert!(!seen.contains(&other_device, &m), "the same message id from another device is another message");
        assert!(!seen.contains(&d, &other_msg));
        seen.remove(&d, &m);
        assert!(!seen.contains(&d, &m));
        seen.remove(&d, &m); // removing what is not there is nothing
        assert!(seen.insert(d, m));
    }

    #[test]
    fn every_pair_is_still_found_after_the_table_grows_many_times() {
        let mut seen = SeenMessages::default();
        let mut grew = 0;
        for i in 0..20_000 {
            let before = seen.capacity();
            let (d, m) = pair(i % 997, i);
            assert!(seen.insert(d, m));
            grew += usize::from(seen.capacity() > before);
        }
        assert!(grew >= 10, "the table grew {grew} times");
        assert_eq!(seen.len(), 20_000);
        for i in 0..20_000 {
            let (d, m) = pair(i % 997, i);
            assert!(seen.contains(&d, &m), "pair {i} lost in growing");
        }
        for i in (0..20_000).step_by(2) {
            let (d, m) = pair(i % 997, i);
            seen.remove(&d, &m);
        }
        assert_eq!(seen.len(), 10_000);
        for i in 0..20_000 {
            let (d, m) = pair(i % 997, i);
            assert_eq!(seen.contains(&d, &m), i % 2 == 1, "pair {i}");
        }
    }
}
