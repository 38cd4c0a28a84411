//! Loading an RDB file into the keyspace: versions 1 to 10 (everything up to Redis 7.0), 11
//! (Redis 7.2, Valkey 7.2/8), 12 (Redis 7.4 to 8.4), 13 (Redis 8.6) and Valkey 9's `VALKEY080`
//! files. Which server wrote a file is read from its signature and aux fields
//! ([`Loaded::producer`]).
//!
//! [`parse_stream`] reads a file as a stream of records (through a bounded `rdb_window`) —
//! header, aux fields, SELECTDB / RESIZEDB, expiry, idle and frequency opcodes, module aux
//! data, functions, every value, EOF and the CRC-64 trailer (0 means the writer disabled
//! checksums) — handing each key on as it is decoded; the server inserts them into a dataset of
//! its own that it swaps in only once the whole file checked out, so a corrupt or truncated file
//! never leaves a partial dataset behind. [`parse`] collects a whole file into a [`Loaded`]
//! image instead, for [`install`]. Newer formats differ from 10 only by opcodes (RDB 12's SLOT_INFO,
//! skipped; RDB 13's KEY_META, see [`skip_key_meta`]) and value types (RDB 13's stream type 26
//! loads without its IDMP state, see `rdb_stream`); a type Ferrous does not decode yet is
//! refused naming it and the key (see `rdb_value::read_value`). Unknown future versions are
//! refused as Redis refuses them ("Can't handle RDB format version N").
//!
//! Functions (RDB_OPCODE_FUNCTION2) are returned as library sources in [`Loaded::functions`],
//! for the server to install through the scripting engine (`server::saving::load_file`: a
//! library that fails to load fails the whole load, as in Redis). Idle times and access
//! frequencies become each entry's LRU clock or LFU counter, whichever the maxmemory policy
//! keeps. Module aux data is self-describing and is skipped; keys holding module
//! values are refused (the module is not there to decode them). As in Redis on a master, keys
//! already expired are not loaded.

use super::rdb::*;
use super::rdb_value::{read_value, Limits};
use super::rdb_window::Window;
use super::reader::{RdbError, Reader, Result};
use crate::keyspace::Db;
use crate::types::{Entry, SmallBytes, Value};

/// What to load with.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    pub databases: usize,
    pub limits: Limits,
    /// Unix ms: keys expiring at or before this are skipped.
    pub now_ms: i64,
}

/// One key read from the file.
#[derive(Debug)]
pub struct LoadedKey {
    pub db: usize,
    pub key: SmallBytes,
    pub value: Value,
    pub expire: Option<i64>,
    /// Seconds since last access (RDB_OPCODE_IDLE), if the file recorded it.
    pub idle: Option<u64>,
    /// LFU access counter (RDB_OPCODE_FREQ), if the file recorded it.
    pub freq: Option<u8>,
}

/// What [`parse_stream`] hands its caller as it reads: a key, or the file's RESIZEDB hint that
/// a database's keys follow (a bulk inserter sizes its tables for them up front).
pub enum Parsed {
    Key(LoadedKey),
    SizeHint { db: usize, keys: u64, expires: u64 },
}

/// `key-load-delay` (a debugging knob of Redis's test suite): microseconds to wait after each
/// key read, so tests can watch a server while it loads. Set from the configuration.
pub static KEY_LOAD_DELAY_US: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// The newest Redis RDB version Ferrous loads: Redis 8.6's (11 is Redis 7.2's, 12 Redis
/// 7.4's to 8.4's). Ferrous writes up to `rdb::RDB_VERSION_MAX`.
pub const RDB_VERSION_MAX_REDIS: u16 = 13;
/// Valkey 9's RDB version (its files start with `VALKEY080`).
pub const RDB_VERSION_VALKEY: u16 = 80;
/// The most metadata classes a key carries in RDB 13 (Redis's modules' classes 1 to 7).
const KEY_META_MAX_CLASSES: u64 = 7;

/// A fully parsed file.
#[derive(Default, Debug)]
pub struct Loaded {
    pub version: u16,
    /// `VALKEY` for Valkey 9's signature, else `REDIS`.
    pub signature: &'static str,
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    pub keys: Vec<LoadedKey>,
    /// Function libraries (their source code), in file order.
    pub functions: Vec<Vec<u8>>,
    /// Keys skipped because they had already expired.
    pub expired_skipped: u64,
    /// Those keys (database, name): a master restarting from the file propagates their
    /// deletion to its replicas, as Redis does.
    pub expired_keys: Vec<(usize, Vec<u8>)>,
    /// Keys skipped because their collection was empty.
    pub empty_skipped: u64,
    /// The names of the first [`EMPTY_KEYS_NAMED`] of them (Redis logs those).
    pub empty_keys: Vec<Vec<u8>>,
}

/// How many skipped empty keys a load names (Redis logs the first 10).
pub const EMPTY_KEYS_NAMED: usize = 10;

/// Module aux payloads are a sequence of typed items ending with opcode 0 (RDB_MODULE_OPCODE_EOF).
fn skip_module_data(r: &mut Reader) -> Result<()> {
    loop {
        match r.length()? {
            0 => return Ok(()),
            1 | 2 => {
                r.length()?;
            }
            3 => {
                r.bytes(4)?;
            }
            4 => {
                r.bytes(8)?;
            }
            5 => {
                r.string()?;
            }
            op => return r.err(format!("unknown module data opcode {op}")),
        }
    }
}

/// The 4-character name of a key metadata class from its 32-bit spec (6 bits a character, over
/// bits 8 to 31; then a 5-bit version and 3 flag bits), for the error that refuses it.
fn meta_class_name(spec: u32) -> String {
    (0..4).map(|i| META_CLASS_CHARS[((spec >> (8 + 6 * (3 - i))) & 63) as usize] as char).collect()
}

/// The 64 characters of a key metadata class name, by their 6-bit codes.
const META_CLASS_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/// RDB 13's KEY_META record (after its opcode), which always comes right before a key's type
/// byte: the count of metadata classes (at most 7), then per class its 32-bit spec (little
/// endian) and its value as module data up to the module EOF opcode. Redis 8.6 writes it only
/// for modules' metadata classes — a key's expiry, idle time and frequency keep their own
/// opcodes — so Ferrous, without modules, has nothing to apply from it: a class flagged
/// ALLOW_IGNORE (flag bit 0) is skipped, as Redis 8.6 skips it when the module is not loaded;
/// any other class is refused naming it, as Redis 8.6 refuses it then.
fn skip_key_meta(r: &mut Reader) -> Result<()> {
    let classes = r.length()?;
    if classes > KEY_META_MAX_CLASSES {
        return r.err(format!("{classes} key metadata classes (at most {KEY_META_MAX_CLASSES})"));
    }
    for _ in 0..classes {
        let at = r.pos();
        let spec = r.u32_le()?;
        if spec & 1 == 0 {
            let name = meta_class_name(spec);
            let msg = format!(
                "key metadata of class '{name}' needs the module that wrote it (the class does not allow ignoring it)"
            );
            return Err(RdbError::new(at, msg));
        }
        skip_module_data(r)?;
    }
    Ok(())
}

/// Parse a whole RDB file.
pub fn parse(data: &[u8], opts: &LoadOptions) -> Result<Loaded> {
    parse_whole(&mut Window::new(data), opts)
}

/// Parse a whole RDB stream, keeping every key in the image; nothing may follow the RDB data.
pub fn parse_whole<R: std::io::Read>(w: &mut Window<R>, opts: &LoadOptions) -> Result<Loaded> {
    let out = parse_collecting(w, opts)?;
    check_end(w)?;
    Ok(out)
}

/// [`parse_stream`] keeping every key in the image (for the callers that want it whole).
fn parse_collecting<R: std::io::Read>(w: &mut Window<R>, opts: &LoadOptions) -> Result<Loaded> {
    let mut keys = Vec::new();
    let mut out = parse_stream(w, opts, |p| {
        if let Parsed::Key(k) = p {
            keys.push(k);
        }
        Ok(())
    })?;
    out.keys = keys;
    Ok(out)
}

/// After [`parse_stream`] of a whole file: refuse bytes after the RDB data.
pub fn check_end<R: std::io::Read>(w: &mut Window<R>) -> Result<()> {
    let used = w.offset();
    match w.count_rest()? {
        0 => Ok(()),
        n => Err(RdbError::new(used, format!("{n} unexpected bytes after the end of the RDB data"))),
    }
}

/// Parse the RDB file at the start of `data` (an AOF with an RDB preamble goes on with
/// commands after it). Returns the image and the number of bytes it took.
pub fn parse_prefix(data: &[u8], opts: &LoadOptions) -> Result<(Loaded, usize)> {
    let mut w = Window::new(data);
    let out = parse_collecting(&mut w, opts)?;
    Ok((out, w.offset()))
}

/// One record of the file: an opcode and its payload.
enum Record {
    Expire(i64),
    Idle(u64),
    Freq(u8),
    SelectDb(usize),
    Aux(Vec<u8>, Vec<u8>),
    Function(Vec<u8>),
    Key(SmallBytes, Option<Value>),
    /// RESIZEDB: how many keys the database holds, and how many of them have a TTL.
    Resize(u64, u64),
    Eof,
    /// SLOT_INFO, module aux data: hints and data Ferrous skips.
    Skipped,
}

/// A key of type `ty`: its name and value.
fn read_key(r: &mut Reader, ty: u8, opts: &LoadOptions) -> Result<Record> {
    // (Inline up to 22 bytes: most keys cost no allocation.)
    let key = SmallBytes::new(&r.string_cow()?);
    let value = read_value(r, ty, &opts.limits).map_err(|mut e| {
        e.msg = format!("{} (key '{}')", e.msg, String::from_utf8_lossy(&key));
        e
    })?;
    Ok(Record::Key(key, value))
}

/// Read the record at `r` (nothing is changed until it is complete: see `rdb_window`).
/// `key_meta`: whether opcode 243 is Redis 8.6's KEY_META (Valkey 9 gives it another meaning).
fn read_record(r: &mut Reader, version: u16, key_meta: bool, opts: &LoadOptions) -> Result<Record> {
    let at = r.pos();
    let op = r.u8()?;
    Ok(match op {
        OPCODE_EXPIRETIME => Record::Expire(r.u32_le()? as i64 * 1000),
        OPCODE_EXPIRETIME_MS => Record::Expire(r.u64_le()? as i64),
        OPCODE_IDLE => Record::Idle(r.length()?),
        OPCODE_FREQ => Record::Freq(r.u8()?),
        OPCODE_SELECTDB => {
            let n = r.length()?;
            if n >= opts.databases as u64 {
                return Err(RdbError::new(
                    at,
                    format!(
                        "the file selects database {n}, but this server is configured with {} databases",
                        opts.databases
                    ),
                ));
            }
            Record::SelectDb(n as usize)
        }
        OPCODE_RESIZEDB => {
            let keys = r.length()?;
            Record::Resize(keys, r.length()?)
        }
        OPCODE_SLOT_INFO if version >= 12 => {
            r.length()?;
            r.length()?;
            r.length()?;
            Record::Skipped
        }
        OPCODE_AUX => {
            let k = r.string()?;
            Record::Aux(k, r.string()?)
        }
        OPCODE_MODULE_AUX => {
            r.length()?; // module id
            let when_op = r.length()?;
            if when_op != 2 {
                return r.err("module aux data without its 'when' field");
            }
            r.length()?; // when
            skip_module_data(r)?;
            Record::Skipped
        }
        OPCODE_FUNCTION2 => Record::Function(r.string()?),
        OPCODE_FUNCTION_PRE_GA => {
            let msg = "pre-release (7.0 rc) function format is not supported";
            return Err(RdbError::new(at, msg).reported(3225, "Pre-release function format not supported."));
        }
        OPCODE_EOF => Record::Eof,
        // Metadata, then the key it belongs to (one record: nothing may come between them).
        OPCODE_KEY_META if key_meta => {
            skip_key_meta(r)?;
            let ty = r.u8()?;
            if ty >= OPCODE_KEY_META {
                return r.err(format!("key metadata followed by opcode {ty} instead of a key"));
            }
            read_key(r, ty, opts)?
        }
        // A key/value pair of type `op`.
        _ => read_key(r, op, opts)?,
    })
}

/// The line of Redis 7.2.4's rdb.c that reports a checksum mismatch ("RDB CRC error").
pub const CRC_ERROR_LINE: u32 = 3341;

/// Read the header (signature and version).
fn read_header(r: &mut Reader) -> Result<(&'static str, u16)> {
    let magic = r.bytes(9).map_err(|_| RdbError::new(0, "unexpected end of data: file too short to be an RDB file"))?;
    let digits =
        |d: &[u8]| d.iter().all(u8::is_ascii_digit).then(|| std::str::from_utf8(d).ok()?.parse::<u16>().ok()).flatten();
    let (signature, version) = if &magic[..5] == b"REDIS" && digits(&magic[5..]).is_some() {
        ("REDIS", digits(&magic[5..]).unwrap_or(0))
    } else if &magic[..6] == b"VALKEY" && digits(&magic[6..]).is_some() {
        ("VALKEY", digits(&magic[6..]).unwrap_or(0))
    } else {
        return Err(RdbError::new(0, "Wrong signature trying to load DB from file"));
    };
    let known = match signature {
        "REDIS" => (1..=RDB_VERSION_MAX_REDIS).contains(&version),
        _ => version == RDB_VERSION_VALKEY,
    };
    if !known {
        // Redis's words, then what Ferrous reads.
        return Err(RdbError::new(
            5,
            format!(
                "Can't handle RDB format version {version} ({signature} signature; Ferrous reads Redis versions 1 to {RDB_VERSION_MAX_REDIS} and Valkey {RDB_VERSION_VALKEY})"
            ),
        ));
    }
    Ok((signature, version))
}

/// Parse the RDB data at the start of the stream `w` as it is read, handing each key to
/// `emit` in file order (an error from `emit` stops the parse with it). The returned image has
/// no keys. An error means the file is bad even when keys were handed out already: the caller
/// loads into a dataset of its own and keeps it only when this succeeds (see `rdb_window` for
/// how the stream is read; the checksum trailer is checked last). `w` stops after the
/// trailer (an AOF's commands may follow).
pub fn parse_stream<R: std::io::Read>(
    w: &mut Window<R>,
    opts: &LoadOptions,
    mut emit: impl FnMut(Parsed) -> Result<()>,
) -> Result<Loaded> {
    let (signature, version) = w.record(read_header)?;
    let mut out = Loaded { version, signature, ..Loaded::default() };
    let key_meta = signature == "REDIS" && version >= 13;
    let mut db = 0usize;
    let mut expire: Option<i64> = None;
    let mut idle: Option<u64> = None;
    let mut freq: Option<u8> = None;
    loop {
        match w.record(|r| read_record(r, version, key_meta, opts))? {
            Record::Expire(when) => expire = Some(when),
            Record::Idle(secs) => idle = Some(secs),
            Record::Freq(f) => freq = Some(f),
            Record::SelectDb(n) => db = n,
            Record::Aux(k, v) => out.aux.push((k, v)),
            Record::Function(code) => out.functions.push(code),
            Record::Resize(keys, expires) => emit(Parsed::SizeHint { db, keys, expires })?,
            Record::Skipped => {}
            Record::Eof => break,
            Record::Key(key, value) => {
                let delay = KEY_LOAD_DELAY_US.load(std::sync::atomic::Ordering::Relaxed);
                if delay > 0 {
                    std::thread::sleep(std::time::Duration::from_micros(delay as u64));
                }
                let (when, idle, freq) = (expire.take(), idle.take(), freq.take());
                match value {
                    None => {
                        out.empty_skipped += 1;
                        if out.empty_keys.len() < EMPTY_KEYS_NAMED {
                            out.empty_keys.push(key.to_vec());
                        }
                    }
                    Some(_) if when.is_some_and(|w| w <= opts.now_ms) => {
                        out.expired_skipped += 1;
                        out.expired_keys.push((db, key.to_vec()));
                    }
                    Some(value) => emit(Parsed::Key(LoadedKey { db, key, value, expire: when, idle, freq }))?,
                }
            }
        }
    }
    if version >= 5 {
        let at = w.offset();
        let crc = w.checksum();
        let stored = w.record(|r| r.u64_le())?;
        if stored != 0 && crc != stored {
            // Redis logs this line before its report of the CRC error (see `staged_load::log_rdb_error`).
            let msg = format!("Wrong RDB checksum expected: ({crc:x}) but got ({stored:x}). Aborting now.");
            return Err(RdbError::new(at, msg).reported(CRC_ERROR_LINE, "RDB CRC error"));
        }
    }
    Ok(out)
}

impl Loaded {
    fn aux(&self, name: &str) -> Option<String> {
        self.aux.iter().find(|(k, _)| k == name.as_bytes()).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// The log line naming the server that wrote the file, from its aux fields, as Redis
    /// ("Loading RDB produced by version 7.2.4") and Valkey ("... by valkey version 9.1.2")
    /// log it; none when the file does not say.
    pub fn producer_line(&self) -> Option<String> {
        match (self.aux("valkey-ver"), self.aux("redis-ver")) {
            (Some(v), _) => Some(format!("Loading RDB produced by valkey version {v}")),
            (None, Some(v)) => Some(format!("Loading RDB produced by version {v}")),
            (None, None) => None,
        }
    }

    /// Seconds since the file was written (aux `ctime`), if it says.
    pub fn age_secs(&self, now_ms: i64) -> Option<i64> {
        self.aux("ctime").and_then(|v| v.parse::<i64>().ok()).map(|t| now_ms / 1000 - t)
    }

    /// The writer's memory use when it wrote the file (aux `used-mem`), in bytes.
    pub fn used_mem(&self) -> Option<u64> {
        self.aux("used-mem").and_then(|v| v.parse().ok())
    }
}

/// Insert the loaded keys through `db`, which must hold every shard. A key that already exists
/// is replaced with `merge` (DEBUG RELOAD MERGE), otherwise it is an error (having inserted
/// some keys: the caller empties the keyspace again).
/// Functions are not installed here (see [`Loaded::functions`]).
pub fn install(db: &mut Db, loaded: Loaded, merge: bool) -> std::result::Result<u64, String> {
    let mut n = 0;
    let current = db.index;
    for k in loaded.keys {
        if let Err(e) = install_key(db, k, merge) {
            db.index = current;
            return Err(e);
        }
        n += 1;
    }
    db.index = current;
    Ok(n)
}

/// Insert one loaded key through `db` (see [`install`]; `db.index` is left at the key's
/// database).
pub fn install_key(db: &mut Db, k: LoadedKey, merge: bool) -> std::result::Result<(), String> {
    db.index = k.db;
    if merge {
        db.delete(&k.key);
    }
    let meta = db.entry_meta(k.idle, k.freq);
    // A key stored twice replaces the first, and the load fails (its caller drops what it
    // loaded: see `install`).
    if !db.load_entry(&k.key, Entry::new(k.value, meta)) && !merge {
        return Err(format!("duplicate key '{}' in DB {}", String::from_utf8_lossy(&k.key), k.db));
    }
    if let Some(when) = k.expire {
        db.set_expire(&k.key, when);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Keyspace;
    use crate::persistence::reader::Report;
    use crate::types::{HashValue, StrValue};
    use proptest::prelude::*;

    fn opts() -> LoadOptions {
        LoadOptions { databases: 16, limits: Limits::default(), now_ms: crate::keyspace::now_ms() }
    }

    fn sample() -> Vec<u8> {
        let ks = Keyspace::new(16);
        {
            let mut db = ks.lock_all(0);
            db.set(b"s", Value::Str(StrValue::from_bytes(&b"x".repeat(100))), false);
            db.set(b"n", Value::Str(StrValue::from_bytes(b"42")), false);
            db.set_expire(b"n", 4_000_000_000_000);
            let mut h = HashValue::default();
            h.set(b"f", b"v", Limits::default().hash);
            db.index = 5;
            db.set(b"h", Value::Hash(h), false);
        }
        let mut db = ks.lock_all(0);
        snapshot(&mut db, 16, &[], SaveOptions::default())
    }

    #[test]
    fn loads_a_snapshot() {
        let data = sample();
        let loaded = parse(&data, &opts()).unwrap();
        assert_eq!(loaded.version, 10);
        assert_eq!(loaded.keys.len(), 3);
        let ks = Keyspace::new(16);
        let mut db = ks.lock_all(0);
        assert_eq!(install(&mut db, loaded, false).unwrap(), 3);
        assert_eq!(db.expire_of(b"n"), Some(4_000_000_000_000));
        db.index = 5;
        assert_eq!(db.get(b"h").unwrap().value.type_name(), "hash");
    }

    #[test]
    fn version_checksum_and_truncation_errors() {
        let data = sample();
        // A version after Redis 8.6's 13 is refused by number, in Redis's words.
        let mut v14 = data.clone();
        v14[5..9].copy_from_slice(b"0014");
        assert!(parse(&v14, &opts()).unwrap_err().msg.starts_with("Can't handle RDB format version 14 "));
        let mut valkey = b"VALKEY081".to_vec();
        valkey.extend_from_slice(&data[9..]);
        assert!(parse(&valkey, &opts()).unwrap_err().msg.contains("version 81"));
        let mut bad_crc = data.clone();
        let n = bad_crc.len();
        bad_crc[n - 1] ^= 1;
        assert!(parse(&bad_crc, &opts()).unwrap_err().msg.contains("checksum"));
        let mut no_crc = data.clone();
        no_crc[n - 8..].copy_from_slice(&[0; 8]);
        assert!(parse(&no_crc, &opts()).is_ok());
        for cut in 0..data.len() {
            assert!(parse(&data[..cut], &opts()).is_err(), "truncated at {cut}");
        }
        let few = LoadOptions { databases: 4, ..opts() };
        assert!(parse(&data, &few).unwrap_err().msg.contains("database 5"));
    }

    /// A version 10 file (checksum disabled) of database 0 holding `records` (type, key, value).
    fn file_of(records: &[u8]) -> Vec<u8> {
        let mut f = b"REDIS0010\xfe\x00".to_vec();
        f.extend_from_slice(records);
        f.push(OPCODE_EOF);
        f.extend_from_slice(&[0; 8]);
        f
    }

    /// A key metadata class's 32-bit spec, as Redis 8.6 encodes it.
    fn class_spec(name: &str, version: u32, flags: u32) -> u32 {
        let enc =
            name.bytes().fold(0u32, |acc, c| acc << 6 | META_CLASS_CHARS.iter().position(|&x| x == c).unwrap() as u32);
        (enc << 5 | version) << 3 | flags
    }

    /// A KEY_META record of `classes` (spec, module data ending with its EOF opcode).
    fn key_meta(classes: &[(u32, &[u8])]) -> Vec<u8> {
        let mut out = vec![OPCODE_KEY_META, classes.len() as u8];
        for (spec, data) in classes {
            out.extend_from_slice(&spec.to_le_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    /// Module data of every item kind: SINT, UINT, FLOAT, DOUBLE, STRING, then EOF.
    const META_VALUE: &[u8] =
        &[1, 0x40, 0x80, 2, 7, 3, 0, 0, 0x80, 0x3f, 4, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 5, 2, b'h', b'i', 0];

    /// An RDB 13 file as Redis 8.6 writes one (checksum disabled): a string with an expiry and
    /// ignorable metadata of two classes, a string with metadata of no class, a stream of type
    /// 26 with IDMP state, a slot-info hint.
    fn v13_file() -> Vec<u8> {
        use crate::persistence::rdb_stream::{write, write_idmp, TYPE_STREAM_LISTPACKS_4};
        use crate::types::stream::{id::ParsedId, NodeLimits, StreamId, StreamValue};
        let mut f = b"REDIS0013".to_vec();
        f.extend_from_slice(&[
            OPCODE_AUX, 9, b'r', b'e', b'd', b'i', b's', b'-', b'v', b'e', b'r', 5, b'8', b'.', b'6', b'.', b'0',
        ]);
        f.extend_from_slice(&[OPCODE_SELECTDB, 0, OPCODE_RESIZEDB, 3, 1, OPCODE_SLOT_INFO, 1, 3, 1]);
        f.push(OPCODE_EXPIRETIME_MS);
        f.extend_from_slice(&4_000_000_000_000u64.to_le_bytes());
        f.extend(key_meta(&[(class_spec("KMT1", 3, 1), META_VALUE), (class_spec("ab_-", 31, 7), &[0])]));
        f.extend_from_slice(&[TYPE_STRING, 1, b's', 1, b'v']);
        f.extend(key_meta(&[]));
        f.extend_from_slice(&[TYPE_STRING, 1, b't', 1, b'w']);
        let mut s = StreamValue::new();
        let id = Some(ParsedId { id: StreamId::new(5, 1), seq_given: true });
        s.add(&[b"f", b"v"], id, 0, NodeLimits::default()).unwrap();
        f.extend_from_slice(&[TYPE_STREAM_LISTPACKS_4, 2, b'x', b's']);
        write(&mut f, &s, SaveOptions { version: 12, ..SaveOptions::default() });
        write_idmp(&mut f, &[(b"producer1", &[(b"iid", StreamId::new(5, 1))]), (b"producer2", &[])]);
        f.push(OPCODE_EOF);
        f.extend_from_slice(&[0; 8]);
        f
    }

    /// `v13_file` with `record` in place of the string 't' (and its empty KEY_META).
    fn v13_with(record: &[u8]) -> Vec<u8> {
        let f = v13_file();
        let t = [OPCODE_KEY_META, 0, TYPE_STRING, 1, b't', 1, b'w'];
        let at = f.windows(t.len()).position(|w| w == t).unwrap();
        [&f[..at], record, &f[at + t.len()..]].concat()
    }

    #[test]
    fn loads_redis_8_6_files() {
        let loaded = parse(&v13_file(), &opts()).unwrap();
        assert_eq!(
            (loaded.version, loaded.producer_line().unwrap()),
            (13, "Loading RDB produced by version 8.6.0".into())
        );
        let keys: Vec<_> = loaded.keys.iter().map(|k| (k.key.to_vec(), k.expire)).collect();
        assert_eq!(keys, [(b"s".to_vec(), Some(4_000_000_000_000)), (b"t".to_vec(), None), (b"xs".to_vec(), None)]);
        let Value::Stream(s) = &loaded.keys[2].value else { panic!("a stream") };
        assert_eq!(s.len(), 1);
        // A truncation at any offset is refused (the trailer is all of the last 8 bytes).
        let f = v13_file();
        for cut in 0..f.len() {
            assert!(parse(&f[..cut], &opts()).is_err(), "truncated at {cut}");
        }
        // The same file with a checksum.
        let mut summed = f[..f.len() - 8].to_vec();
        summed.extend_from_slice(&CRC64.checksum(&summed).to_le_bytes());
        assert_eq!(parse(&summed, &opts()).unwrap().keys.len(), 3);
    }

    #[test]
    fn key_meta_is_skipped_or_refused_as_redis_8_6_without_the_module() {
        let err = |record: &[u8]| parse(&v13_with(record), &opts()).unwrap_err().msg;
        let key = [TYPE_STRING, 1, b't', 1, b'w'];
        // A class that does not allow ignoring it needs its module.
        let strict = [key_meta(&[(class_spec("KMT1", 3, 1), &[0]), (class_spec("KMT2", 0, 6), &[0])]), key.to_vec()];
        assert!(err(&strict.concat()).contains("class 'KMT2'"), "{}", err(&strict.concat()));
        // More classes than Redis has room for.
        let many: Vec<(u32, &[u8])> = vec![(class_spec("KMT1", 0, 1), &[0]); 8];
        assert!(err(&[key_meta(&many), key.to_vec()].concat()).contains("8 key metadata classes"));
        // Module data with an unknown opcode, and metadata that no key follows.
        assert!(err(&[key_meta(&[(class_spec("KMT1", 0, 1), &[6, 0])]), key.to_vec()].concat()).contains("opcode 6"));
        assert!(err(&[key_meta(&[]), vec![OPCODE_SELECTDB, 0]].concat()).contains("opcode 254 instead of a key"));
        let twice = [key_meta(&[]), key_meta(&[]), key.to_vec()].concat();
        assert!(err(&twice).contains("opcode 243 instead of a key"));
        // Before RDB 13 (and in Valkey's files, where it is SLOT_IMPORT) 243 is no KEY_META.
        let ok = v13_with(&[key_meta(&[]), key.to_vec()].concat());
        let mut v12 = ok.clone();
        v12[5..9].copy_from_slice(b"0012");
        let valkey = [&b"VALKEY080"[..], &ok[9..]].concat();
        for f in [v12, valkey] {
            assert!(parse(&f, &opts()).unwrap_err().msg.contains("unknown RDB value type 243"));
        }
    }

    #[test]
    fn empty_keys_are_skipped_and_the_first_ten_named() {
        // Twelve empty sets, then one member.
        let mut records = Vec::new();
        for i in 0..12 {
            records.extend_from_slice(&[TYPE_SET, 3, b'e', b'0' + i / 10, b'0' + i % 10, 0]);
        }
        records.extend_from_slice(&[TYPE_SET, 1, b's', 1, 1, b'm']);
        let loaded = parse(&file_of(&records), &opts()).unwrap();
        assert_eq!((loaded.keys.len(), loaded.empty_skipped), (1, 12));
        let named: Vec<_> = loaded.empty_keys.iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
        assert_eq!(named, (0..10).map(|i| format!("e{i:02}")).collect::<Vec<_>>());
    }

    #[test]
    fn damage_in_a_file_carries_redis_report() {
        // A key whose hash ziplist is 3 bytes: its integrity check fails, named with the key.
        let e = parse(&file_of(&[TYPE_HASH_ZIPLIST, 1, b'h', 3, 1, 2, 3]), &opts()).unwrap_err();
        assert_eq!(e.report, Some(Report::corrupt(2430, "Hash ziplist integrity check failed.")));
        assert!(e.msg.ends_with("(key 'h')"), "{}", e.msg);
        // A wrong checksum.
        let mut data = sample();
        let n = data.len();
        data[n - 1] ^= 1;
        assert_eq!(parse(&data, &opts()).unwrap_err().report, Some(Report::corrupt(3341, "RDB CRC error")));
    }

    #[test]
    fn expired_keys_are_skipped() {
        let later = LoadOptions { now_ms: 5_000_000_000_000, ..opts() };
        let loaded = parse(&sample(), &later).unwrap();
        assert_eq!((loaded.keys.len(), loaded.expired_skipped), (2, 1));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Random corruption of a valid file (checksum disabled so the decoders are reached)
        /// must give an error or a load, never a panic.
        #[test]
        fn corrupted_files_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
            let mut data = sample();
            let n = data.len();
            data[n - 8..].copy_from_slice(&[0; 8]);
            for (pos, b) in flips {
                let i = 9 + pos % (n - 17);
                data[i] = b;
            }
            let _ = parse(&data, &opts());
        }
    }
}
