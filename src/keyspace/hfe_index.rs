//! The hashes of one database slice that have fields with a TTL, queued by their earliest field
//! TTL (Redis 7.4's per-database `hexpires` ebuckets): the active field-expiry cycle takes the
//! hashes that are due, earliest first, instead of sampling at random, so a due field goes
//! within a cycle however many hashes have TTLs, and fields go in the order of their times.
//!
//! A hash is queued at a time no later than its earliest field TTL: a TTL set earlier moves it
//! up at once; one that goes (HPERSIST, the field deleted) leaves it queued early, and the cycle
//! that takes it then finds nothing due and queues it again at its real time (or forgets it), as
//! Redis does.

use std::collections::BTreeSet;

use crate::types::Dict;

#[derive(Default)]
pub struct HashTtlIndex {
    /// Each queued key and the time it is queued at.
    queued: Dict<i64>,
    /// The same, ordered by time.
    by_time: BTreeSet<(i64, Box<[u8]>)>,
}

impl HashTtlIndex {
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    pub fn for_each(&self, f: impl FnMut(&[u8], &i64)) {
        self.queued.for_each(f)
    }

    /// `key`'s hash has a field TTL at `earliest`: queue it, or move it up if it was queued
    /// later. Returns whether it was not queued before.
    pub fn note(&mut self, key: &[u8], earliest: i64) -> bool {
        match self.queued.get_mut(key) {
            Some(at) if *at <= earliest => false,
            Some(at) => {
                let old = std::mem::replace(at, earliest);
                self.by_time.remove(&(old, Box::from(key)));
                self.by_time.insert((earliest, Box::from(key)));
                false
            }
            None => {
                self.queued.insert_new(key.into(), earliest);
                self.by_time.insert((earliest, Box::from(key)));
                true
            }
        }
    }

    /// Queue `key` at exactly `earliest` (the cycle, after reclaiming its due fields).
    pub fn requeue(&mut self, key: &[u8], earliest: i64) {
        self.remove(key);
        self.note(key, earliest);
    }

    pub fn remove(&mut self, key: &[u8]) {
        if let Some(at) = self.queued.remove(key) {
            self.by_time.remove(&(at, Box::from(key)));
        }
    }

    /// The keys queued at or before `now`, earliest first, at most `max` (they stay queued).
    pub fn due(&self, now: i64, max: usize) -> impl Iterator<Item = (i64, &[u8])> {
        self.by_time.iter().take_while(move |(at, _)| *at <= now).take(max).map(|(at, k)| (*at, &**k))
    }
}

#[cfg(test)]
mod tests {
    use super::HashTtlIndex;

    fn due(ix: &HashTtlIndex, now: i64) -> Vec<(i64, String)> {
        ix.due(now, 100).map(|(t, k)| (t, String::from_utf8_lossy(k).into_owned())).collect()
    }

    #[test]
    fn earliest_first_moved_up_never_down() {
        let mut ix = HashTtlIndex::default();
        assert!(ix.note(b"b", 20));
        assert!(ix.note(b"a", 30));
        assert!(!ix.note(b"a", 40), "a later TTL leaves it where it is");
        assert_eq!(due(&ix, 100), vec![(20, "b".into()), (30, "a".into())]);
        assert!(!ix.note(b"a", 10), "an earlier one moves it up");
        assert_eq!(due(&ix, 15), vec![(10, "a".into())]);
        ix.requeue(b"a", 50);
        assert_eq!(due(&ix, 100), vec![(20, "b".into()), (50, "a".into())]);
        ix.remove(b"b");
        assert_eq!((ix.len(), due(&ix, 100)), (1, vec![(50, "a".into())]));
        assert_eq!(due(&ix, 40), vec![]);
    }
}
