//! RDB serialisation (version 10, as Redis 7.0 writes it): header, aux fields, one section per
//! non-empty database (SELECTDB, RESIZEDB, entries with their expiry), EOF and the CRC-64
//! trailer. Only the string type exists so far; later types add their encodings here.

use crc::{Crc, CRC_64_REDIS};

use crate::keyspace::Db;
use crate::types::{StrValue, Value};

const RDB_VERSION: &[u8] = b"REDIS0010";
const OPCODE_AUX: u8 = 250;
const OPCODE_RESIZEDB: u8 = 251;
const OPCODE_EXPIRETIME_MS: u8 = 252;
const OPCODE_SELECTDB: u8 = 254;
const OPCODE_EOF: u8 = 255;
const TYPE_STRING: u8 = 0;
const ENC_INT8: u8 = 0xC0;
const ENC_INT16: u8 = 0xC1;
const ENC_INT32: u8 = 0xC2;

static CRC64: Crc<u64> = Crc::<u64>::new(&CRC_64_REDIS);

/// Append an RDB length (6, 14, 32 or 64 bit form).
pub fn write_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// Append a string, integer-encoded when it is a small canonical integer (as Redis does).
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11 {
        if let Some(n) = crate::util::num::parse_i64(s) {
            if write_int(out, n) {
                return;
            }
        }
    }
    write_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn write_int(out: &mut Vec<u8>, n: i64) -> bool {
    if let Ok(v) = i8::try_from(n) {
        out.push(ENC_INT8);
        out.push(v as u8);
    } else if let Ok(v) = i16::try_from(n) {
        out.push(ENC_INT16);
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = i32::try_from(n) {
        out.push(ENC_INT32);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        return false;
    }
    true
}

/// One key/value pair: the type byte, the key, then the value's encoding.
fn write_entry(out: &mut Vec<u8>, key: &[u8], v: &Value) {
    match v {
        Value::Str(s) => {
            out.push(TYPE_STRING);
            write_string(out, key);
            match s {
                StrValue::Int(n) if write_int(out, *n) => {}
                _ => write_string(out, &s.to_bytes()),
            }
        }
        Value::List(v) => typed(out, key, v.rdb_type(), |o| v.rdb_payload(o)),
        Value::Hash(v) => typed(out, key, v.rdb_type(), |o| v.rdb_payload(o)),
        Value::Set(v) => typed(out, key, v.rdb_type(), |o| v.rdb_payload(o)),
        Value::ZSet(v) => typed(out, key, v.rdb_type(), |o| v.rdb_payload(o)),
    }
}

fn typed(out: &mut Vec<u8>, key: &[u8], ty: u8, payload: impl FnOnce(&mut Vec<u8>)) {
    out.push(ty);
    write_string(out, key);
    payload(out);
}

fn aux(out: &mut Vec<u8>, k: &str, v: &str) {
    out.push(OPCODE_AUX);
    write_string(out, k.as_bytes());
    write_string(out, v.as_bytes());
}

/// Serialise every database visible through `db` (which must hold every shard locked).
pub fn snapshot(db: &mut Db, databases: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(RDB_VERSION);
    aux(&mut out, "redis-ver", crate::REDIS_VERSION);
    aux(&mut out, "redis-bits", "64");
    aux(&mut out, "ctime", &(crate::keyspace::now_ms() / 1000).to_string());
    let current = db.index;
    for index in 0..databases {
        db.index = index;
        let (keys, expires) =
            db.locked_shards().fold((0, 0), |(k, e), (_, sd)| (k + sd.main.len(), e + sd.expires.len()));
        if keys == 0 {
            continue;
        }
        out.push(OPCODE_SELECTDB);
        write_len(&mut out, index as u64);
        out.push(OPCODE_RESIZEDB);
        write_len(&mut out, keys as u64);
        write_len(&mut out, expires as u64);
        for (_, sd) in db.locked_shards() {
            let expires = &sd.expires;
            sd.main.for_each(|k, e| {
                if let Some(&when) = expires.get(k) {
                    out.push(OPCODE_EXPIRETIME_MS);
                    out.extend_from_slice(&when.to_le_bytes());
                }
                write_entry(&mut out, k, &e.value);
            });
        }
    }
    db.index = current;
    out.push(OPCODE_EOF);
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Keyspace;

    #[test]
    fn lengths_and_integers_use_redis_encodings() {
        let mut v = Vec::new();
        write_len(&mut v, 10);
        write_len(&mut v, 300);
        write_len(&mut v, 70000);
        assert_eq!(v, vec![10, 0x41, 0x2c, 0x80, 0, 1, 0x11, 0x70]);
        let mut v = Vec::new();
        write_string(&mut v, b"-5");
        write_string(&mut v, b"1000");
        write_string(&mut v, b"007");
        assert_eq!(v, vec![ENC_INT8, 0xfb, ENC_INT16, 0xe8, 0x03, 3, b'0', b'0', b'7']);
    }

    #[test]
    fn snapshot_has_header_entries_and_valid_checksum() {
        let ks = Keyspace::new(16);
        {
            let mut db = ks.lock_keys(3, &[b"k"]);
            db.set(b"k", Value::Str(StrValue::from_bytes(b"hello")), false);
            db.set_expire(b"k", 1_900_000_000_000);
        }
        let mut db = ks.lock_all(0);
        let rdb = snapshot(&mut db, 16);
        assert!(rdb.starts_with(b"REDIS0010"));
        let body = &rdb[..rdb.len() - 8];
        assert_eq!(CRC64.checksum(body).to_le_bytes(), rdb[rdb.len() - 8..]);
        let entry = [
            &[OPCODE_SELECTDB, 3, OPCODE_RESIZEDB, 1, 1, OPCODE_EXPIRETIME_MS][..],
            &1_900_000_000_000i64.to_le_bytes(),
            &[TYPE_STRING, 1, b'k', 5],
            b"hello",
            &[OPCODE_EOF],
        ]
        .concat();
        assert!(body.ends_with(&entry));
    }
}
