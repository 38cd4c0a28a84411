//! Prefetching the keys of a pipelined batch before it runs (as Valkey does): the dict lookups
//! of a big keyspace each miss the cache twice (the bucket, then the entry), and a batch that
//! runs one lookup after another waits for every miss in turn. Starting all of a batch's loads
//! first lets them overlap.

use smallvec::SmallVec;

use crate::protocol::parser::peek_requests;
use crate::server::Server;

/// Requests looked at, and keys prefetched, at a time (Valkey's prefetch-batch-max-size).
pub const BATCH: usize = 16;

/// Below this many buffered bytes there is at most one usual request (an unpipelined GET or
/// SET is 35–60 bytes): nothing to overlap, so not even a look.
const MIN_BYTES: usize = 64;

/// Prefetch, in database `db`, the keys of the complete requests at the front of `buf` (up to
/// [`BATCH`]) whose commands have fixed key positions. Returns how many requests it looked at,
/// so that the caller looks again once they have run; nothing is prefetched for a lone request.
#[inline]
pub fn prefetch_batch(server: &Server, db: usize, buf: &[u8]) -> usize {
    if buf.len() < MIN_BYTES || !server.keyspace.worth_prefetching() {
        return 0;
    }
    prefetch_keys(server, db, buf)
}

#[inline(never)]
fn prefetch_keys(server: &Server, db: usize, buf: &[u8]) -> usize {
    let mut keys: SmallVec<[&[u8]; BATCH]> = SmallVec::new();
    let seen = peek_requests(buf, BATCH, |argc, args| {
        let Some(cmd) = args.first().and_then(|name| super::super::table::lookup(name)) else { return };
        cmd.for_each_simple_key(argc, |i| {
            if let Some(key) = args.get(i).filter(|_| keys.len() < BATCH) {
                keys.push(key);
            }
        });
    });
    if seen > 1 {
        server.keyspace.prefetch(db, &keys);
    }
    seen
}
