//! What a refused DUMP payload reports: payloads of Redis's `integration/corrupt-dump` suite
//! (with their footers: version and CRC) decoded by [`dump::restore_value`], each checked for
//! the reason Redis 7.2 logs for it (the server logs that: RESTORE at verbose level, a file at
//! warning level), for a refusal without a report where Redis reports nothing, and for the
//! one payload Redis accepts.

use super::dump::restore_value;
use super::rdb_value::Limits;
use super::reader::Report;
use crate::types::hash::HashLimits;

/// The report of a refused payload (panics if it was accepted).
fn report(payload: &[u8], lim: &Limits) -> Option<Report> {
    match restore_value(payload, lim) {
        Ok(v) => panic!("accepted: {v:?}"),
        Err(e) => e.report,
    }
}

/// The (rdb.c line, reason) of a refused payload's report.
fn reason(payload: &[u8]) -> (u32, String) {
    match report(payload, &Limits::default()) {
        Some(Report::Corrupt { line, reason }) => (line, reason),
        other => panic!("expected a report, got {other:?}"),
    }
}

#[test]
fn compact_encodings_report_their_integrity_check() {
    // "hash with valid zip list header, invalid entry len".
    let hash_ziplist = b"\x0D\x1B\x1B\x00\x00\x00\x16\x00\x00\x00\x04\x00\x00\x02\x61\x00\x04\x02\x62\x00\x04\x14\x63\x00\x04\x02\x64\x00\xFF\x09\x00\xD9\x10\x54\x92\x15\xF5\x5F\x52";
    assert_eq!(reason(hash_ziplist), (2430, "Hash ziplist integrity check failed.".into()));
    // "#3080 - ziplist": a list ziplist whose size header lies.
    let list_ziplist = b"\x0A\x80\x00\x00\x00\x10\x41\x41\x41\x41\x41\x41\x41\x41\x02\x00\x00\x80\x41\x41\x41\x41\x07\x00\x39\x5B\x49\xE0\xC1\xC6\xDD\x76";
    assert_eq!(reason(list_ziplist), (2323, "List ziplist integrity check failed.".into()));
    // "quicklist ziplist wrong count": a quicklist node (RDB 7-10) is a ziplist.
    let quicklist = b"\x0E\x01\x13\x13\x00\x00\x00\x0E\x00\x00\x00\x03\x00\x00\x02\x61\x00\x04\x02\x62\x00\xFF\x09\x00\x4D\xE2\x0A\x2F\x08\x25\xDF\x91";
    assert_eq!(reason(quicklist), (2213, "Ziplist integrity check failed.".into()));
    // "zset ziplist invalid tail offset".
    let zset_ziplist = b"\x0C\x19\x19\x00\x00\x00\x02\x00\x00\x00\x06\x00\x00\xF1\x02\xF1\x02\x02\x5F\x31\x04\xF2\x02\xF3\x02\xF3\xFF\x09\x00\x4D\x72\x7B\x97\xCD\x9A\x70\xC1";
    assert_eq!(reason(zset_ziplist), (2384, "Zset ziplist integrity check failed.".into()));
    // "hash listpack first element too long entry len".
    let hash_listpack = b"\x10\x15\x15\x00\x00\x00\x06\x00\xF0\x01\x00\x01\x01\x01\x82\x5F\x31\x03\x02\x01\x02\x01\xFF\x0A\x00\x94\x21\x0A\xFA\x06\x52\x9F\x44";
    assert_eq!(reason(hash_listpack), (2456, "Hash listpack integrity check failed.".into()));
    // "hash empty zipmap": a zipmap without pairs is damage, not an empty key.
    let zipmap = b"\x09\x02\x00\xFF\x09\x00\xC0\xF1\xB8\x67\x4C\x16\xAC\xE3";
    assert_eq!(reason(zipmap), (2265, "Zipmap integrity check failed.".into()));
    // An intset of no integers, likewise.
    let intset = b"\x0B\x08\x02\x00\x00\x00\x00\x00\x00\x00\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    assert_eq!(reason(intset), (2348, "Intset integrity check failed.".into()));
}

#[test]
fn streams_report_what_redis_reports() {
    // "stream with duplicate consumers".
    let dup_consumers = b"\x0F\x00\x00\x00\x00\x01\x07\x6D\x79\x67\x72\x6F\x75\x70\x00\x00\x00\x02\x04\x6E\x61\x6D\x65\x2A\x4C\xAA\x9A\x7D\x01\x00\x00\x00\x04\x6E\x61\x6D\x65\x2B\x4C\xAA\x9A\x7D\x01\x00\x00\x00\x0A\x00\xCC\xED\x8C\xA7\x62\xEE\xC7\xC8";
    assert_eq!(reason(dup_consumers), (2702, "Duplicate stream consumer detected.".into()));
    // "listpack invalid size header".
    let bad_node = b"\x0F\x01\x10\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x02\x40\x55\x5F\x00\x00\x00\x0F\x00\x01\x01\x00\x01\x02\x01\x88\x31\x00\x00\x00\x00\x00\x00\x00\x09\x88\x32\x00\x00\x00\x00\x00\x00\x00\x09\x00\x01\x00\x01\x00\x01\x00\x01\x02\x02\x88\x31\x00\x00\x00\x00\x00\x00\x00\x09\x88\x61\x00\x00\x00\x00\x00\x00\x00\x09\x88\x32\x00\x00\x00\x00\x00\x00\x00\x09\x88\x62\x00\x00\x00\x00\x00\x00\x00\x09\x08\x01\xFF\x0A\x01\x00\x00\x09\x00\x45\x91\x0A\x87\x2F\xA5\xF9\x2E";
    assert_eq!(reason(bad_node), (2520, "Stream listpack integrity check failed.".into()));
}

#[test]
fn a_quicklist_node_of_no_bytes_is_refused_without_a_report() {
    // "quicklist encoded_len is 0": a PLAIN node (container 1) of 0 bytes.
    let plain = b"\x12\x01\x01\x00\x0a\x00\x8f\xc6\xc0\x57\x1c\x0a\xb3\x3c";
    assert_eq!(report(plain, &Limits::default()), None);
    // The same with a PACKED node (container 2), and a quicklist of ziplists (type 14).
    assert_eq!(report(b"\x12\x01\x02\x00\x0a\x00\0\0\0\0\0\0\0\0", &Limits::default()), None);
    assert_eq!(report(b"\x0E\x01\x00\x0a\x00\0\0\0\0\0\0\0\0", &Limits::default()), None);
    // A container Redis does not know is its quicklist integrity failure.
    let odd_container = b"\x12\x01\x03\x01\x61\x0a\x00\0\0\0\0\0\0\0\0";
    assert_eq!(reason(odd_container), (2180, "Quicklist integrity check failed.".into()));
}

#[test]
fn a_hash_listpack_with_duplicates_reports_by_sanitisation() {
    // "hash listpack with duplicate records - convert": fields a, a.
    let dup = b"\x10\x17\x17\x00\x00\x00\x04\x00\x82\x61\x00\x03\x82\x62\x00\x03\x82\x61\x00\x03\x82\x64\x00\x03\xff\x0a\x00\xc0\xcf\xa6\x87\xe5\xa7\xc5\xbe";
    let listpack = dup[2..2 + 0x17].to_vec();
    let converting = Limits { hash: HashLimits { max_entries: 1, max_value: 64 }, ..Limits::default() };
    // Without deep sanitisation Redis meets the duplicate converting it to a table: the dump.
    assert_eq!(report(dup, &converting), Some(Report::DupListpack(listpack)));
    // With it (or when it stays a listpack), its integrity check refuses it.
    let deep = Limits { deep_sanitize: true, ..converting };
    let integrity = Some(Report::corrupt(2456, "Hash listpack integrity check failed."));
    assert_eq!(report(dup, &deep), integrity);
    assert_eq!(report(dup, &Limits::default()), integrity);
}

#[test]
fn payloads_redis_accepts_are_accepted() {
    // "fuzzer findings - hash crash": odd-looking, but a valid hash ziplist.
    let ok = b"\x0D\x19\x19\x00\x00\x00\x16\x00\x00\x00\x06\x00\x00\xF1\x02\xF1\x02\xF2\x02\x02\x5F\x31\x04\xF3\x02\xF3\xFF\x09\x00\x38\xB8\x10\xC0\x8A\xF9\x16\xDF";
    let v = restore_value(ok, &Limits::default()).unwrap().unwrap();
    assert_eq!(v.type_name(), "hash");
}
