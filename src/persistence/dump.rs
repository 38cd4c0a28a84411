//! DUMP / RESTORE payloads, byte-compatible with Redis 7.0: the value's RDB serialisation
//! (type byte, then the value), the RDB version as 2 bytes little endian, and the CRC-64 of
//! everything before it, 8 bytes little endian.

use super::rdb::{value_type, write_value, SaveOptions, CRC64, RDB_VERSION_MAX};
use super::rdb_value::{read_value, Limits};
use super::reader::{RdbError, Reader, Result};
use crate::types::Value;

/// Serialise a value as DUMP does (`rdbcompression` and the list node size apply, as in Redis;
/// the checksum is always there).
pub fn dump(v: &Value, opts: SaveOptions) -> Vec<u8> {
    // A hash with field TTLs needs RDB 12 (see `rdb::version_needed`).
    let opts = SaveOptions { version: opts.version.max(super::rdb::version_needed(v)), ..opts };
    let mut out = vec![value_type(v, opts.version)];
    write_value(&mut out, v, opts);
    out.extend_from_slice(&opts.version.to_le_bytes());
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Redis's verifyDumpPayload: long enough, a version no newer than this server writes (Redis
/// 7.4's 12: Redis 8.6's version 13 payloads are refused, as Redis 7.2 refuses 7.4's), a
/// matching CRC.
pub fn verify(payload: &[u8]) -> bool {
    verify_with(payload, false)
}

/// [`verify`], without the CRC check when `skip_checksum` (DEBUG SET-SKIP-CHECKSUM-VALIDATION).
pub fn verify_with(payload: &[u8], skip_checksum: bool) -> bool {
    if payload.len() < 10 {
        return false;
    }
    let footer = &payload[payload.len() - 10..];
    if u16::from_le_bytes([footer[0], footer[1]]) > RDB_VERSION_MAX {
        return false;
    }
    skip_checksum || CRC64.checksum(&payload[..payload.len() - 8]).to_le_bytes() == footer[2..]
}

/// Decode a verified payload's value (`None`: malformed, or an empty collection — both are
/// "Bad data format" for RESTORE).
pub fn restore(payload: &[u8], limits: &Limits) -> Option<Value> {
    restore_value(payload, limits).ok().flatten()
}

/// [`restore`], saying why a malformed payload was refused (its error's `report` is what
/// Redis logs); `Ok(None)`: an empty collection, which Redis refuses without a report.
pub fn restore_value(payload: &[u8], limits: &Limits) -> Result<Option<Value>> {
    let Some((&ty, rest)) = payload[..payload.len().saturating_sub(10)].split_first() else {
        return Err(RdbError::new(0, "unexpected end of data: empty payload"));
    };
    read_value(&mut Reader::new(rest), ty, limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ListValue, StrValue};
    use proptest::prelude::*;

    #[test]
    fn matches_redis_dump_of_a_string() {
        // redis-cli: SET k hello; DUMP k
        let redis = b"\x00\x05hello\n\x00cr\xdfve4 \n";
        let v = Value::Str(StrValue::from_bytes(b"hello"));
        assert_eq!(dump(&v, SaveOptions::default()), redis.to_vec());
        assert!(verify(redis));
        assert_eq!(restore(redis, &Limits::default()), Some(v));
    }

    #[test]
    fn bad_payloads() {
        let mut l = ListValue::new();
        l.push_back(b"a");
        let good = dump(&Value::List(l), SaveOptions::default());
        assert!(verify(&good));
        let mut v11 = good.clone();
        let n = v11.len();
        v11[n - 10] = 11;
        assert!(!verify(&v11));
        assert!(!verify(&good[1..]));
        assert!(!verify(b"short"));
        // Versions up to 12 pass, 13 (Redis 8.6) does not, whatever the checksum says.
        let with_version = |v: u16| {
            let mut p = good[..good.len() - 10].to_vec();
            p.extend_from_slice(&v.to_le_bytes());
            p.extend_from_slice(&CRC64.checksum(&p).to_le_bytes());
            p
        };
        assert!(verify(&with_version(12)) && verify(&with_version(1)));
        assert!(!verify(&with_version(13)) && !verify_with(&with_version(13), true));
    }

    proptest! {
        #[test]
        fn corrupt_payloads_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
            let mut l = ListValue::new();
            (0..50).for_each(|i| l.push_back(format!("item {i}").as_bytes()));
            let mut p = dump(&Value::List(l), SaveOptions::default());
            let n = p.len() - 10;
            for (pos, b) in flips {
                p[pos % n] = b;
            }
            let _ = restore(&p, &Limits::default());
        }
    }
}
