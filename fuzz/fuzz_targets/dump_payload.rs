//! Fuzz target: an arbitrary byte string as a DUMP payload body (type byte + value). The RDB
//! version and a valid CRC-64 are appended, so every input reaches the value decoders (the raw
//! input is also tried as a whole payload). RESTORE's decoder must refuse it or give a value
//! whose own DUMP restores to the same value (a stream is also walked entry by entry).
#![no_main]

use ferrous::persistence::dump::{dump, restore, verify};
use ferrous::persistence::rdb::{SaveOptions, CRC64, RDB_VERSION, RDB_VERSION_MAX};
use ferrous::persistence::rdb_value::Limits;
use ferrous::types::{HashValue, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if verify(data) {
        let _ = restore(data, &limits);
    }
    let mut payload = data.to_vec();
    payload.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    if let Some(value) = restore(&payload, &limits) {
        // A restored stream is walked both ways, every field read; its length is its entries.
        if let Value::Stream(s) = &value {
            assert_eq!(s.walk(), (s.len(), s.len()), "a restored stream's length differs from its entries");
        }
        // Written in the newest format, which holds everything a value can carry (the default,
        // Redis 7.0's version 10, has no consumer active times).
        let again = dump(&value, SaveOptions { version: RDB_VERSION_MAX, ..SaveOptions::default() });
        let back = restore(&again, &limits).expect("a restored value's DUMP is refused");
        match (&value, &back) {
            // A hash read from a type that can hold field TTLs keeps that encoding even when it
            // holds none, and a DUMP of it without TTLs may be a plain hash: the same fields,
            // values and TTLs in the other encoding.
            (Value::Hash(a), Value::Hash(b)) => assert_eq!(fields(a), fields(b), "a restored hash's DUMP differs"),
            _ => assert_eq!(back, value, "a restored value's DUMP does not restore to it"),
        }
    }
});

/// A hash's (field, value, TTL) triplets, sorted.
fn fields(h: &HashValue) -> Vec<(Vec<u8>, Vec<u8>, Option<i64>)> {
    let mut v = Vec::new();
    h.for_each_with_ttl(|f, x, t| v.push((f.to_vec(), x.to_vec(), t)));
    v.sort();
    v
}
