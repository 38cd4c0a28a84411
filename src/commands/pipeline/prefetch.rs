//! Prefetching the keys of a pipelined batch before it runs (as Valkey does): the dict lookups
//! of a big keyspace each miss the cache twice (the bucket, then the entry), and a batch that
//! runs one lookup after another waits for every miss in turn. Starting all of a batch's loads
//! first lets them overlap.

use smallvec::SmallVec;

use super::super::key_specs::{BeginSearch, FindKeys};
use super::Command;
use crate::protocol::parser::peek_requests;
use crate::server::Server;

/// Requests looked at, and keys prefetched, at a time (Valkey's prefetch-batch-max-size).
pub const BATCH: usize = 16;

/// Below this many buffered bytes there is at most one usual request (an unpipelined GET or
/// SET is 35–60 bytes): nothing to overlap, so not even a look.
const MIN_BYTES: usize = 64;

/// Prefetch, in database `db`, the keys of the complete requests at the front of `buf` (up to
/// [`BATCH`]) whose commands have fixed key positions. Returns how many requests it looked at,
/// so that the caller looks again once they have run. A lone request is prefetched only when it
/// has several keys (MSET, MGET, DEL of several keys): a single key has no miss to overlap.
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
        request_keys(argc, args, |i| {
            if let Some(key) = args.get(i).filter(|_| keys.len() < BATCH) {
                keys.push(key);
            }
        });
    });
    if seen > 1 || keys.len() > 1 {
        server.keyspace.prefetch(db, &keys);
    }
    seen
}

/// Call `take` with the position of every key of a peeked request (`argc` arguments, the
/// first of them in `args`) that its command's key specs give: fixed positions, or a count in
/// an argument. Positions may lie past `args`.
fn request_keys(argc: usize, args: &[&[u8]], mut take: impl FnMut(usize)) {
    let Some(cmd) = args.first().and_then(|name| super::super::table::lookup(name)) else { return };
    if !cmd.for_each_simple_key(argc, &mut take) {
        counted_keys(cmd, args, take);
    }
}

/// The keys of a command whose first key spec counts them in an argument (EVALSHA, FCALL,
/// ZUNIONSTORE's sources...): up to what [`peek_requests`] shows.
fn counted_keys(cmd: &Command, args: &[&[u8]], mut take: impl FnMut(usize)) {
    let Some(spec) = cmd.meta.key_specs.first() else { return };
    let (BeginSearch::Index(begin), FindKeys::Keynum { keynumidx, firstkey, keystep }) = (&spec.begin, &spec.find)
    else {
        return;
    };
    let (begin, first, step) = (*begin as usize, *firstkey as usize, (*keystep).max(1) as usize);
    let Some(n) =
        args.get(begin + *keynumidx as usize).and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok())
    else {
        return;
    };
    for k in 0..n.min(BATCH) {
        take(begin + first + k * step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_of(request: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        request_keys(request.len(), request, |i| keys.push(request[i].to_vec()));
        keys
    }

    #[test]
    fn finds_fixed_and_counted_keys() {
        assert_eq!(keys_of(&[b"GET", b"k"]), vec![b"k".to_vec()]);
        assert_eq!(keys_of(&[b"MSET", b"a", b"1", b"b", b"2"]), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(keys_of(&[b"EVALSHA", b"sha", b"2", b"x", b"y", b"arg"]), vec![b"x".to_vec(), b"y".to_vec()]);
        assert_eq!(keys_of(&[b"FCALL", b"f", b"0", b"arg"]), Vec::<Vec<u8>>::new());
        // A bad count finds nothing (the command will answer the error).
        assert_eq!(keys_of(&[b"EVALSHA", b"sha", b"x", b"k"]), Vec::<Vec<u8>>::new());
        assert_eq!(keys_of(&[b"PING"]), Vec::<Vec<u8>>::new());
    }
}
