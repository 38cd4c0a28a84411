//! Point-in-time captures without fork (BGSAVE, full synchronisation, AOF rewrite), at the
//! granularity of a segment: each database slice of each shard is cut into [`SEGMENTS`] by
//! the low bits of its dict's hash ([`crate::types::Dict::segment_of`]). Once a capture began
//! (every shard marked, atomically), the first access to a key of a segment the capture has
//! not seen hands that segment — as it was — to the capture before the access goes on; whatever
//! walks or replaces a whole shard hands over the rest of it first; the capturing thread takes
//! what is left shard by shard, one segment per hold of the shard's lock
//! ([`super::Keyspace::finish_capture`]).
//!
//! A command thus pays for 1/(256 × 64) of a database at most per key it touches first, never
//! for a whole shard: with writes spread over the keyspace, serialising the snapshot no longer
//! lands on the command threads all at once (it used to stall them for hundreds of ms on a
//! multi-million-key dataset).

use std::sync::Arc;

use super::{Shard, ShardDb};

/// Segments per database slice of a shard (a power of two, at most 64: one bit each).
pub const SEGMENTS: usize = 64;

/// Receives the parts of a point-in-time capture, each exactly once, before anything changes
/// them.
pub trait ShardCapture: Send + Sync {
    /// Database `db` of shard `shard` as it was at the point in time: segment `Some(seg)` of
    /// [`SEGMENTS`] (see [`crate::types::Dict::for_each_in_segment`]), or all of it (`None`).
    fn capture(&self, shard: usize, db: usize, contents: &ShardDb, segment: Option<usize>);
}

/// A capture that has not seen all of a shard: the segments it has, per database.
pub(super) struct Pending {
    sink: Arc<dyn ShardCapture>,
    done: Vec<u64>,
}

impl Pending {
    pub(super) fn new(sink: Arc<dyn ShardCapture>, databases: usize) -> Pending {
        Pending { sink, done: vec![0; databases] }
    }
}

impl Shard {
    /// Hand the capture in progress everything of this shard it has not seen yet (before a
    /// walk over the shard or a change of it as a whole).
    pub(super) fn capture_all(&mut self, shard: usize) {
        let Some(p) = self.capture.take() else { return };
        for (db, sd) in self.dbs.iter().enumerate() {
            match p.done[db] {
                0 => p.sink.capture(shard, db, sd, None),
                u64::MAX => {}
                done => {
                    for seg in (0..SEGMENTS).filter(|s| done & (1 << s) == 0) {
                        p.sink.capture(shard, db, sd, Some(seg));
                    }
                }
            }
        }
    }

    /// Hand the capture in progress segment `seg` of database `db` unless it has it; false
    /// when no capture is pending on this shard any more (the capturing thread's walk, one
    /// segment per lock hold, so a command waiting for the shard waits for one segment at most).
    pub(super) fn capture_segment(&mut self, shard: usize, db: usize, seg: usize) -> bool {
        let Some(p) = self.capture.as_mut() else { return false };
        let Some(sd) = self.dbs.get(db) else { return true };
        if p.done[db] & (1 << seg) == 0 {
            if sd.main.is_empty() {
                // Nothing to hand over in this database: every segment at once. (A segment
                // not handed over yet is as it was at the point in time, since any access to
                // it hands it over first: empty now, it was empty then.)
                p.done[db] = u64::MAX;
            } else {
                p.done[db] |= 1 << seg;
                p.sink.capture(shard, db, sd, Some(seg));
            }
        }
        if p.done.iter().all(|&d| d == u64::MAX) {
            self.capture = None;
        }
        true
    }

    /// Hand the capture in progress the segment of `key` in database `db`, unless it has it
    /// (before the key is read or changed). A segment is handed over even when empty: a key
    /// created in it later is not part of the point in time.
    #[inline]
    pub(super) fn capture_key(&mut self, shard: usize, db: usize, key: &[u8]) {
        if self.capture.is_none() {
            return;
        }
        let seg = self.dbs[db].main.segment_of(key, SEGMENTS);
        self.capture_segment(shard, db, seg);
    }
}
