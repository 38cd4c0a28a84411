//! Point-in-time captures without fork (BGSAVE, full synchronisation, AOF rewrite), copy on
//! write at the granularity of a key: each database slice of each shard is cut into
//! [`SEGMENTS`] by the low bits of its dict's hash ([`crate::types::Dict::segment_of`]). Once a
//! capture began (every shard marked, atomically), the first access to a key of a segment the
//! capture has not taken yet hands that key — its entry and expiry as they were, or nothing if
//! it did not exist — to the capture before the access goes on, and the segment remembers the
//! key as seen; whatever walks or replaces a whole shard hands over the rest of it first; the
//! capturing thread takes what is left shard by shard, one segment per hold of the shard's
//! lock, skipping the keys seen ([`super::Keyspace::finish_capture`]).
//!
//! A command thus pays for the keys it touches (one entry's serialisation each), not for the
//! segments around them: with random writes over a large keyspace nearly every segment is
//! touched before the capturing thread reaches it, and copying whole segments made the command
//! thread serialise most of the snapshot itself (a second's CPU during a BGSAVE of 5M keys,
//! with 4-12 ms stalls whenever the scheduler preempted it in the middle of one).

use std::sync::Arc;

use ahash::{AHashMap, AHashSet};

use super::{Shard, ShardDb};

/// Segments per database slice of a shard (a power of two, a multiple of 64). The capturing
/// thread holds a shard's lock for one segment at a time, so this bounds how long a command
/// waits for it: at 64 segments a 5M-key BGSAVE held it for ~300 keys, and the worker thread
/// waited 0.5-1 ms for it a few times a second (perf trace of its futex waits) while the
/// capturing thread shared its core.
pub const SEGMENTS: usize = 256;

/// Which segments of one database slice a capture has taken (one bit each).
#[derive(Clone, Copy, PartialEq, Eq)]
struct SegmentSet([u64; SEGMENTS / 64]);

impl SegmentSet {
    const ALL: SegmentSet = SegmentSet([u64::MAX; SEGMENTS / 64]);
    const NONE: SegmentSet = SegmentSet([0; SEGMENTS / 64]);

    fn has(&self, seg: usize) -> bool {
        self.0[seg / 64] & (1 << (seg % 64)) != 0
    }

    fn add(&mut self, seg: usize) {
        self.0[seg / 64] |= 1 << (seg % 64);
    }
}

/// Receives the parts of a point-in-time capture, each exactly once, before anything changes
/// them.
pub trait ShardCapture: Send + Sync {
    /// Database `db` of shard `shard` as it was at the point in time: segment `Some(seg)` of
    /// [`SEGMENTS`] (see [`crate::types::Dict::for_each_in_segment`]), or all of it (`None`),
    /// less the keys in `seen` (handed over one by one already, or created since).
    fn capture(&self, shard: usize, db: usize, contents: &ShardDb, segment: Option<usize>, seen: Option<&Seen>);

    /// Key `key` of database `db` of shard `shard` (which holds it), its entry and expiry in
    /// `contents` as they were at the point in time.
    fn capture_key(&self, shard: usize, db: usize, contents: &ShardDb, key: &[u8]);

    /// Nobody will read what is handed over any more (the save was given up before it wrote
    /// anything, say its thread failed to start): the shards drop the capture at their next
    /// touch instead of recording seen keys for it.
    fn abandoned(&self) -> bool {
        false
    }
}

/// The keys of a segment handed over one by one (or found missing) before the segment was.
pub type Seen = AHashSet<Box<[u8]>>;

/// A capture that has not seen all of a shard: the segments it has, per database, and the
/// keys it has of the segments it has not.
pub(super) struct Pending {
    sink: Arc<dyn ShardCapture>,
    done: Vec<SegmentSet>,
    /// Keyed by `db * SEGMENTS + segment`; dropped when the segment is handed over.
    seen: AHashMap<usize, Seen>,
}

impl Pending {
    pub(super) fn new(sink: Arc<dyn ShardCapture>, databases: usize) -> Pending {
        Pending { sink, done: vec![SegmentSet::NONE; databases], seen: AHashMap::new() }
    }
}

impl Shard {
    /// Hand the capture in progress everything of this shard it has not seen yet (before a
    /// walk over the shard or a change of it as a whole).
    pub(super) fn capture_all(&mut self, shard: usize) {
        let Some(p) = self.capture.take() else { return };
        for (db, sd) in self.dbs.iter().enumerate() {
            let done = p.done[db];
            if done == SegmentSet::ALL {
                continue;
            }
            if done == SegmentSet::NONE && !p.seen.keys().any(|k| k / SEGMENTS == db) {
                p.sink.capture(shard, db, sd, None, None);
                continue;
            }
            for seg in (0..SEGMENTS).filter(|&s| !done.has(s)) {
                p.sink.capture(shard, db, sd, Some(seg), p.seen.get(&(db * SEGMENTS + seg)));
            }
        }
    }

    /// Hand the capture in progress segment `seg` of database `db` unless it has it; false
    /// when no capture is pending on this shard any more (the capturing thread's walk, one
    /// segment per lock hold, so a command waiting for the shard waits for one segment at most).
    pub(super) fn capture_segment(&mut self, shard: usize, db: usize, seg: usize) -> bool {
        let Some(p) = self.capture.as_mut() else { return false };
        let Some(sd) = self.dbs.get(db) else { return true };
        if !p.done[db].has(seg) {
            if sd.main.is_empty() {
                // Nothing to hand over in this database: every segment at once. (A key that
                // was there at the point in time and has gone since was handed over when it
                // was deleted, since any access to a key hands it over first.)
                p.done[db] = SegmentSet::ALL;
                p.seen.retain(|k, _| k / SEGMENTS != db);
            } else {
                p.done[db].add(seg);
                let seen = p.seen.remove(&(db * SEGMENTS + seg));
                p.sink.capture(shard, db, sd, Some(seg), seen.as_ref());
            }
        }
        if p.done.iter().all(|&d| d == SegmentSet::ALL) {
            self.capture = None;
        }
        true
    }

    /// Hand the capture in progress key `key` of database `db` as it is now, unless it has it
    /// (before the key is read or changed): its entry and expiry, or the fact that it does not
    /// exist (so that a key created later is not part of the point in time).
    #[inline]
    pub(super) fn capture_key(&mut self, shard: usize, db: usize, key: &[u8]) {
        if self.capture.is_none() {
            return;
        }
        self.capture_key_slow(shard, db, key);
    }

    #[inline(never)]
    fn capture_key_slow(&mut self, shard: usize, db: usize, key: &[u8]) {
        let Some(p) = self.capture.as_mut() else { return };
        if p.sink.abandoned() {
            self.capture = None;
            return;
        }
        let sd = &self.dbs[db];
        let seg = sd.main.segment_of(key, SEGMENTS);
        if p.done[db].has(seg) {
            return;
        }
        let seen = p.seen.entry(db * SEGMENTS + seg).or_default();
        if seen.contains(key) {
            return;
        }
        if sd.main.contains_key(key) {
            p.sink.capture_key(shard, db, sd, key);
        }
        seen.insert(key.into());
    }
}
