//! Prefetching the keys of a pipelined batch before it runs (as Valkey does): the dict lookups
//! of a big keyspace each miss the cache twice (the bucket, then the entry), and a batch that
//! runs one lookup after another waits for every miss in turn. Starting all of a batch's loads
//! first lets them overlap.

use smallvec::SmallVec;

use super::super::key_specs::{BeginSearch, FindKeys};
use super::Command;
use crate::protocol::parser::peek_requests;
use crate::server::Server;

/// Requests looked at at a time (Valkey's prefetch-batch-max-size).
pub const BATCH: usize = 16;

/// Keys prefetched at a time: a batch of 16 single-key requests, or three MSETs of ten keys.
pub const KEYS: usize = 32;

/// Arguments (after the command names) looked at at a time: a request that would take the
/// batch past them is left for the next look rather than read twice (the fourth MSET of ten
/// pairs; 16 SETs or GETs fit).
const ARGS: usize = 2 * KEYS;

/// Below this many buffered bytes there is at most one usual request (an unpipelined GET or
/// SET is 35–60 bytes): nothing to overlap, so not even a look.
const MIN_BYTES: usize = 64;

/// Prefetch, in database `db`, the keys of the complete requests at the front of `buf` (up to
/// [`BATCH`] requests and [`KEYS`] keys) whose commands have fixed key positions. Returns how
/// many requests were covered (every key of theirs taken, or the first one in part), so that
/// the caller prefetches again once they have run: a batch of multi-key requests is prefetched
/// a few requests at a time, each of them in whole. A lone request is prefetched only when it
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
    let mut keys: SmallVec<[&[u8]; KEYS]> = SmallVec::new();
    let (seen, covered) = batch_keys(buf, &mut keys);
    if seen > 1 || keys.len() > 1 {
        server.keyspace.prefetch(db, &keys);
    }
    covered
}

/// The keys [`prefetch_keys`] prefetches, into `keys`; returns (requests looked at, requests
/// covered).
fn batch_keys<'b>(buf: &'b [u8], keys: &mut SmallVec<[&'b [u8]; KEYS]>) -> (usize, usize) {
    let mut covered = 0;
    let seen = peek_requests(buf, BATCH, ARGS, |argc, args| {
        let mut whole = true;
        request_keys(argc, args, |i| match args.get(i) {
            Some(key) if keys.len() < KEYS => keys.push(key),
            _ => whole = false,
        });
        // A request whose keys did not all fit is covered when it is the first: it runs next
        // with what was prefetched of it (one with more keys than a look shows never fits).
        if whole || covered == 0 {
            covered += 1;
        }
        whole && keys.len() < KEYS
    });
    (seen, covered)
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

    fn batch(requests: &[&[&str]]) -> (usize, usize, usize) {
        let mut buf = Vec::new();
        for r in requests {
            buf.extend_from_slice(format!("*{}\r\n", r.len()).as_bytes());
            for a in *r {
                buf.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
            }
        }
        let mut keys = SmallVec::new();
        let (seen, covered) = batch_keys(&buf, &mut keys);
        (seen, covered, keys.len())
    }

    #[test]
    fn a_batch_covers_the_requests_whose_keys_all_fit() {
        // Single-key requests: BATCH of them, one key each.
        let get: &[&str] = &["GET", "k"];
        assert_eq!(batch(&[get; 20]), (BATCH, BATCH, BATCH));
        // MSETs of ten keys: three fit (the fourth is left for the next look, unread).
        let mset: Vec<String> = std::iter::once("MSET".to_string())
            .chain((0..10).flat_map(|i| [format!("key:{i}"), "v".to_string()]))
            .collect();
        let mset: Vec<&str> = mset.iter().map(String::as_str).collect();
        assert_eq!(batch(&[&mset[..]; 8]), (3, 3, 30));
        // HSETs of four fields: ARGS bounds them (nine arguments each).
        let hset: &[&str] = &["HSET", "h", "f1", "v", "f2", "v", "f3", "v", "f4", "v"];
        assert_eq!(batch(&[hset; 20]), (ARGS / 9, ARGS / 9, ARGS / 9));
        // A request with more keys than a look shows is covered alone, with what was shown.
        let big: Vec<String> = std::iter::once("MGET".to_string()).chain((0..40).map(|i| format!("k{i}"))).collect();
        let big: Vec<&str> = big.iter().map(String::as_str).collect();
        assert_eq!(batch(&[&big[..], get]), (1, 1, crate::protocol::parser::PEEK_ARGS - 1));
        // Requests without keys are covered too.
        assert_eq!(batch(&[&["PING"], get, &["PING"]]), (3, 3, 1));
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
