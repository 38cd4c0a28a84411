//! RDB serialisation (version 10, as Redis 7.0 writes it): header, aux fields, one section per
//! database (SELECTDB, RESIZEDB, entries with their expiry), EOF and the CRC-64 trailer.
//! Function libraries come before the databases (FUNCTION2 + the library's source), and each
//! entry carries its idle time (IDLE) under an LRU maxmemory policy or its access frequency
//! (FREQ) under an LFU one, as Redis 7.0 writes them.
//!
//! Values use the encodings Redis 7.0 writes, so files (and DUMP payloads) look like Redis's:
//! lists as a quicklist of listpacks, small hashes and sorted sets as one listpack, integer
//! sets as an intset, larger ones as plain collections (sorted sets with binary scores).
//! Strings longer than 20 bytes are LZF-compressed when `rdbcompression` is on and that saves
//! space; with `rdbchecksum no` the trailer is eight zero bytes (which loaders accept as
//! "no checksum").
//!
//! Two snapshot shapes, both point-in-time images: [`snapshot`] serialises a view that holds
//! every shard lock (SAVE, DEBUG RELOAD, replication; one section per database), and
//! [`PointInTime`] captures the keyspace without stopping it (BGSAVE; one section per
//! database present in each shard, shards serialised copy-on-write).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crc::{Crc, Digest, Table, CRC_64_REDIS};

use super::{intset, listpack, lzf};
use crate::keyspace::capture::{self, SEGMENTS};
use crate::keyspace::{Db, Keyspace, ShardCapture, ShardDb, NSHARDS};
use crate::types::set::Enc;
use crate::types::{Entry, HashValue, StrValue, Value};

/// The RDB version written by default (`rdb-version`): Redis 7.0's, which every Redis from 7.0
/// on loads.
pub const RDB_VERSION: u16 = 10;
/// The newest RDB version Ferrous writes (`rdb-version`; Redis 7.4's: 11 added listpack sets,
/// 12 hashes with field TTLs), and so the newest DUMP payload RESTORE accepts: Redis refuses
/// payloads newer than the version it writes. Files load up to `rdb_load::RDB_VERSION_MAX_REDIS`.
pub const RDB_VERSION_MAX: u16 = 12;
/// RDB 13 (Redis 8.6): module metadata classes attached to the key that follows.
pub const OPCODE_KEY_META: u8 = 243;
pub const OPCODE_SLOT_INFO: u8 = 244;
pub const OPCODE_FUNCTION2: u8 = 245;
pub const OPCODE_FUNCTION_PRE_GA: u8 = 246;
pub const OPCODE_MODULE_AUX: u8 = 247;
pub const OPCODE_IDLE: u8 = 248;
pub const OPCODE_FREQ: u8 = 249;
pub const OPCODE_AUX: u8 = 250;
pub const OPCODE_RESIZEDB: u8 = 251;
pub const OPCODE_EXPIRETIME_MS: u8 = 252;
pub const OPCODE_EXPIRETIME: u8 = 253;
pub const OPCODE_SELECTDB: u8 = 254;
pub const OPCODE_EOF: u8 = 255;

pub const TYPE_STRING: u8 = 0;
pub const TYPE_LIST: u8 = 1;
pub const TYPE_SET: u8 = 2;
pub const TYPE_ZSET: u8 = 3;
pub const TYPE_HASH: u8 = 4;
pub const TYPE_ZSET_2: u8 = 5;
pub const TYPE_MODULE: u8 = 6;
pub const TYPE_MODULE_2: u8 = 7;
pub const TYPE_HASH_ZIPMAP: u8 = 9;
pub const TYPE_LIST_ZIPLIST: u8 = 10;
pub const TYPE_SET_INTSET: u8 = 11;
pub const TYPE_ZSET_ZIPLIST: u8 = 12;
pub const TYPE_HASH_ZIPLIST: u8 = 13;
pub const TYPE_LIST_QUICKLIST: u8 = 14;
pub const TYPE_STREAM_LISTPACKS: u8 = 15;
pub const TYPE_HASH_LISTPACK: u8 = 16;
pub const TYPE_ZSET_LISTPACK: u8 = 17;
pub const TYPE_LIST_QUICKLIST_2: u8 = 18;
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
/// RDB 11 (Redis 7.2).
pub const TYPE_SET_LISTPACK: u8 = 20;
/// RDB 12 (Redis 7.4): hashes with field TTLs. The PRE_GA types (7.4 release candidates) kept
/// absolute TTLs and no minimum; they are read, never written.
pub const TYPE_HASH_METADATA_PRE_GA: u8 = 22;
pub const TYPE_HASH_LISTPACK_EX_PRE_GA: u8 = 23;
pub const TYPE_HASH_METADATA: u8 = 24;
pub const TYPE_HASH_LISTPACK_EX: u8 = 25;

/// Quicklist node containers (RDB_TYPE_LIST_QUICKLIST_2).
pub const QUICKLIST_NODE_PLAIN: u64 = 1;
pub const QUICKLIST_NODE_PACKED: u64 = 2;

const ENC_INT8: u8 = 0xC0;
const ENC_INT16: u8 = 0xC1;
const ENC_INT32: u8 = 0xC2;
const ENC_LZF: u8 = 0xC3;

/// Redis's CRC-64 (Jones), of RDB files and DUMP payloads. Sixteen tables (32 KB, built at
/// compile time), read 16 bytes a step, whose loads do not wait on each other: 2 GB a second
/// here, where the one-table form's chain of dependent loads gave 0.36 and held back SAVE and
/// every load (Redis's crcspeed reads 8 bytes a step).
pub static CRC64: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_REDIS);

/// A CRC-64 computed as the bytes go by.
pub type Crc64Digest<'a> = Digest<'a, u64, Table<16>>;

/// The access metadata written with each entry (Redis: IDLE only under an LRU maxmemory
/// policy, FREQ only under an LFU one; DUMP payloads never carry either).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccessInfo {
    #[default]
    None,
    /// Idle seconds, from entries' LRU clocks, relative to this LRU clock reading.
    Idle { clock: u32 },
    /// Entries' LFU counters decayed as of unix ms `now_ms`.
    Freq { now_ms: i64, decay_time: u32 },
}

/// The `rdbcompression` and `rdbchecksum` settings (lists are written as the quicklist nodes
/// Redis would hold them in, see `types::list_shape`), the access metadata
/// the `maxmemory-policy` calls for and the RDB version to write (`rdb-version`: 10 by
/// default, so that Redis 7.0 loads the files; 11 writes listpack sets as Redis 7.2 does).
#[derive(Clone, Copy, Debug)]
pub struct SaveOptions {
    pub compression: bool,
    pub checksum: bool,
    pub access: AccessInfo,
    pub version: u16,
    /// The replication state the file records (files only, not DUMP payloads).
    pub repl: Option<ReplAux>,
}

/// The replication aux fields of a file (Redis's rdbSaveInfo): the database the replication
/// stream has selected, the replication ID and offset the data corresponds to. A server
/// restarted from the file can then continue that history (PSYNC instead of a full sync).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplAux {
    pub stream_db: i64,
    pub id: [u8; 40],
    pub offset: i64,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions { compression: true, checksum: true, access: AccessInfo::None, version: RDB_VERSION, repl: None }
    }
}

impl SaveOptions {
    pub fn from_config(cfg: &crate::config::Config) -> Self {
        let now = crate::keyspace::now_ms();
        let policy = cfg.maxmemory_policy_name();
        let access = if policy.ends_with("-lru") {
            AccessInfo::Idle { clock: crate::keyspace::lru_clock_at(now) }
        } else if policy.ends_with("-lfu") {
            let decay_time = cfg.lfu_decay_time as u32;
            AccessInfo::Freq { now_ms: now, decay_time }
        } else {
            AccessInfo::None
        };
        SaveOptions {
            compression: cfg.rdbcompression,
            checksum: cfg.rdbchecksum,
            access,
            version: cfg.rdb_version as u16,
            repl: None,
        }
    }
}

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

/// Append a string, integer-encoded when it is a small canonical integer (as Redis does), else
/// LZF-compressed when allowed and worth it, else raw.
pub fn write_string(out: &mut Vec<u8>, s: &[u8], opts: SaveOptions) {
    if s.len() <= 11 {
        if let Some(n) = crate::util::num::parse_i64(s) {
            if write_int(out, n) {
                return;
            }
        }
    }
    // Redis compresses strings longer than 20 bytes when that saves more than 4 bytes.
    if opts.compression && s.len() > 20 {
        if let Some(c) = lzf::compress(s, s.len() - 4) {
            out.push(ENC_LZF);
            write_len(out, c.len() as u64);
            write_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
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

/// The RDB version a value needs at least: 12 for a hash with field TTLs (no older format
/// can carry them, so a file holding one is written as version 12 whatever `rdb-version`
/// says), else 0.
pub fn version_needed(v: &Value) -> u16 {
    match v {
        Value::Hash(h) if h.has_ttls() => 12,
        _ => 0,
    }
}

/// The RDB type byte a value is written with in a file of RDB version `version` (a listpack
/// set is a plain set before version 11, as is a stream without its consumers' active times;
/// a hash with field TTLs needs version 12).
pub fn value_type(v: &Value, version: u16) -> u8 {
    match v {
        Value::Str(_) => TYPE_STRING,
        Value::List(_) => TYPE_LIST_QUICKLIST_2,
        Value::Hash(h) => match (h, h.has_ttls() || version >= 12) {
            (HashValue::ListpackEx(_), true) => TYPE_HASH_LISTPACK_EX,
            (HashValue::TableEx(_), _) if h.has_ttls() => TYPE_HASH_METADATA,
            (HashValue::Listpack(_) | HashValue::ListpackEx(_), _) => TYPE_HASH_LISTPACK,
            (HashValue::Table(_) | HashValue::TableEx(_), _) => TYPE_HASH,
        },
        Value::Set(s) => match s.enc() {
            Enc::Intset(_) => TYPE_SET_INTSET,
            Enc::Listpack(_) if version >= 11 => TYPE_SET_LISTPACK,
            Enc::Listpack(_) | Enc::Table(_) => TYPE_SET,
        },
        Value::ZSet(z) if z.encoding() == "listpack" => TYPE_ZSET_LISTPACK,
        Value::ZSet(_) => TYPE_ZSET_2,
        Value::Stream(_) if version >= 11 => super::rdb_stream::TYPE_STREAM_LISTPACKS_3,
        Value::Stream(_) => TYPE_STREAM_LISTPACKS_2,
    }
}

/// Append a value's serialisation (what follows the type byte and the key).
pub fn write_value(out: &mut Vec<u8>, v: &Value, opts: SaveOptions) {
    match v {
        Value::Stream(s) => super::rdb_stream::write(out, s, opts),
        Value::Str(StrValue::Int(n)) if write_int(out, *n) => {}
        Value::Str(s) => write_string(out, &s.to_bytes(), opts),
        Value::List(l) => {
            // The quicklist nodes Redis would hold (one for a listpack-encoded list).
            let counts = l.node_counts();
            write_len(out, counts.len() as u64);
            let mut it = l.iter();
            for n in counts {
                let mut node = listpack::Builder::new();
                it.by_ref().take(n).for_each(|e| node.push(e));
                write_len(out, QUICKLIST_NODE_PACKED);
                write_string(out, &node.finish(), opts);
            }
        }
        Value::Hash(h) => match value_type(v, opts.version) {
            TYPE_HASH_LISTPACK | TYPE_HASH_LISTPACK_EX => {
                let ex = value_type(v, opts.version) == TYPE_HASH_LISTPACK_EX;
                if ex {
                    out.extend_from_slice(&h.min_ttl().unwrap_or(0).to_le_bytes());
                }
                let mut b = listpack::Builder::new();
                let mut num = itoa::Buffer::new();
                h.for_each_with_ttl(|k, v, t| {
                    b.push(k);
                    b.push(v);
                    if ex {
                        b.push(num.format(t.unwrap_or(0)).as_bytes());
                    }
                });
                write_string(out, &b.finish(), opts);
            }
            TYPE_HASH_METADATA => {
                // The earliest TTL, then each field's TTL relative to it (+1; 0 = none).
                let min = h.min_ttl().unwrap_or(0);
                out.extend_from_slice(&min.to_le_bytes());
                write_len(out, h.len() as u64);
                h.for_each_with_ttl(|k, v, t| {
                    write_len(out, t.map_or(0, |t| (t - min + 1) as u64));
                    write_string(out, k, opts);
                    write_string(out, v, opts);
                });
            }
            _ => {
                write_len(out, h.len() as u64);
                h.for_each(|k, v| {
                    write_string(out, k, opts);
                    write_string(out, v, opts);
                });
            }
        },
        Value::Set(s) => match s.enc() {
            Enc::Intset(v) => write_string(out, &intset::encode(v.width(), v.raw()), opts),
            Enc::Listpack(p) if opts.version >= 11 => {
                let mut b = listpack::Builder::new();
                p.iter().for_each(|e| b.push(e));
                write_string(out, &b.finish(), opts);
            }
            Enc::Listpack(_) | Enc::Table(_) => {
                write_len(out, s.len() as u64);
                s.for_each(|m| write_string(out, m, opts));
            }
        },
        Value::ZSet(z) if z.encoding() == "listpack" => {
            let mut b = listpack::Builder::new();
            let mut score = Vec::new();
            z.for_each(|m, s| {
                b.push(m);
                score.clear();
                crate::types::ZSetValue::listpack_score_text(s, &mut score);
                b.push(&score);
            });
            write_string(out, &b.finish(), opts);
        }
        Value::ZSet(z) => {
            // Highest score first, as Redis writes skiplists (so loading inserts at the head).
            let len = z.len();
            write_len(out, len as u64);
            if len > 0 {
                z.walk(len - 1, true, |m, s| {
                    write_string(out, m, opts);
                    out.extend_from_slice(&s.to_le_bytes());
                    true
                });
            }
        }
    }
}

/// One key/value pair with its expiry and access metadata:
/// [EXPIRETIME_MS ms] [IDLE seconds | FREQ counter] type key value.
pub fn write_entry(out: &mut Vec<u8>, key: &[u8], entry: &Entry, expire: Option<i64>, opts: SaveOptions) {
    if let Some(when) = expire {
        out.push(OPCODE_EXPIRETIME_MS);
        out.extend_from_slice(&when.to_le_bytes());
    }
    match opts.access {
        AccessInfo::None => {}
        AccessInfo::Idle { clock } => {
            out.push(OPCODE_IDLE);
            write_len(out, (clock as u64 + 0x100_0000 - (entry.lru as u64 & 0xFF_FFFF)) % 0x100_0000);
        }
        AccessInfo::Freq { now_ms, decay_time } => {
            out.push(OPCODE_FREQ);
            out.push(crate::keyspace::lfu::counter(entry.lru, now_ms, decay_time));
        }
    }
    out.push(value_type(&entry.value, opts.version));
    write_string(out, key, opts);
    write_value(out, &entry.value, opts);
}

fn aux(out: &mut Vec<u8>, k: &str, v: &str) {
    out.push(OPCODE_AUX);
    write_string(out, k.as_bytes(), SaveOptions { compression: false, ..SaveOptions::default() });
    write_string(out, v.as_bytes(), SaveOptions { compression: false, ..SaveOptions::default() });
}

/// The magic, the version, the aux fields Redis writes, then the function libraries (their
/// source code, as Redis's rdbSaveFunctions).
fn header(out: &mut Vec<u8>, functions: &[Vec<u8>], opts: SaveOptions) {
    out.extend_from_slice(format!("REDIS{:04}", opts.version).as_bytes());
    aux(out, "redis-ver", crate::REDIS_VERSION);
    aux(out, "redis-bits", "64");
    aux(out, "ctime", &(crate::keyspace::now_ms() / 1000).to_string());
    aux(out, "used-mem", "0");
    if let Some(r) = opts.repl {
        aux(out, "repl-stream-db", &r.stream_db.to_string());
        aux(out, "repl-id", &String::from_utf8_lossy(&r.id));
        aux(out, "repl-offset", &r.offset.to_string());
    }
    aux(out, "aof-base", "0");
    for code in functions {
        out.push(OPCODE_FUNCTION2);
        write_string(out, code, opts);
    }
}

/// Every entry of one shard's slice of a database.
fn write_shard_db(out: &mut Vec<u8>, sd: &ShardDb, opts: SaveOptions) {
    write_shard_part(out, sd, None, None, opts);
}

/// One key of a database slice, its entry `e` with the slice's expiry for it.
fn write_key(out: &mut Vec<u8>, sd: &ShardDb, k: &[u8], e: &Entry, opts: SaveOptions) {
    write_entry(out, k, e, sd.ttl_of(k, e), opts);
}

/// Segment `segment` of a database slice (all of it for None), less the keys in `seen`; returns
/// the keys written.
fn write_shard_part(
    out: &mut Vec<u8>,
    sd: &ShardDb,
    segment: Option<usize>,
    seen: Option<&capture::Seen>,
    opts: SaveOptions,
) -> u64 {
    let seen = seen.filter(|s| !s.is_empty());
    let mut keys = 0;
    let mut one = |k: &[u8], e: &Entry| {
        if seen.is_some_and(|s| s.contains(k)) {
            return;
        }
        write_key(out, sd, k, e, opts);
        keys += 1;
    };
    match segment {
        None => sd.main.for_each(&mut one),
        Some(seg) => sd.main.for_each_in_segment(seg, SEGMENTS, &mut one),
    }
    keys
}

/// The trailer value: the CRC-64 of everything before it, or 0 when checksums are disabled.
/// An RDB file holding the function libraries and no data (Redis's RDBFLAGS_KEEP_FUNCTIONS
/// without keys: `REPLCONF rdb-filter-only functions`, redis-cli --functions-rdb).
pub fn functions_only(functions: &[Vec<u8>], opts: SaveOptions) -> Vec<u8> {
    let mut out = Vec::new();
    header(&mut out, functions, opts);
    out.push(OPCODE_EOF);
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&trailer(crc, opts));
    out
}

fn trailer(crc: u64, opts: SaveOptions) -> [u8; 8] {
    if opts.checksum {
        crc.to_le_bytes()
    } else {
        [0; 8]
    }
}

/// Serialise the function libraries (their sources) and every database visible through `db`
/// (which must hold every shard locked) into memory (replication, tests).
pub fn snapshot(db: &mut Db, databases: usize, functions: &[Vec<u8>], opts: SaveOptions) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    // Writing to a Vec cannot fail.
    let _ = write_snapshot(db, databases, functions, opts, &mut out);
    out
}

/// Stream the same serialisation as [`snapshot`] to `w`, a shard at a time (SAVE: the file is
/// never held in memory as a whole).
pub fn write_snapshot(
    db: &mut Db,
    databases: usize,
    functions: &[Vec<u8>],
    opts: SaveOptions,
    w: &mut impl Write,
) -> io::Result<()> {
    let mut digest: Crc64Digest<'_> = CRC64.digest();
    let mut buf = Vec::with_capacity(1 << 16);
    let mut flush = |buf: &mut Vec<u8>, w: &mut dyn Write| -> io::Result<()> {
        digest.update(buf);
        w.write_all(buf)?;
        buf.clear();
        Ok(())
    };
    let current = db.index;
    let mut opts = opts;
    for index in 0..databases {
        db.index = index;
        if db.locked_shards().any(|(_, sd)| sd.has_hash_field_ttls()) {
            // Hashes with field TTLs exist only in RDB 12 (see `version_needed`).
            opts.version = opts.version.max(12);
        }
    }
    header(&mut buf, functions, opts);
    let mut result = Ok(());
    for index in 0..databases {
        db.index = index;
        let (keys, expires) = db.locked_shards().fold((0, 0), |(k, e), (_, sd)| (k + sd.main.len(), e + sd.ttls.len()));
        if keys == 0 {
            continue;
        }
        buf.push(OPCODE_SELECTDB);
        write_len(&mut buf, index as u64);
        buf.push(OPCODE_RESIZEDB);
        write_len(&mut buf, keys as u64);
        write_len(&mut buf, expires as u64);
        for (_, sd) in db.locked_shards() {
            write_shard_db(&mut buf, sd, opts);
            if buf.len() >= 1 << 16 {
                result = flush(&mut buf, w);
                if result.is_err() {
                    break;
                }
            }
        }
        if result.is_err() {
            break;
        }
    }
    db.index = current;
    result?;
    buf.push(OPCODE_EOF);
    flush(&mut buf, w)?;
    w.write_all(&trailer(digest.finalize(), opts))
}

/// How far a point-in-time save has got, as Redis's fork child reports it to its parent
/// (INFO's current_save_keys_total / _processed, current_fork_perc, current_cow_size): the
/// keys at the point in time, the keys written so far, and the bytes commands serialised for
/// the save before changing keys it had not written yet — what the snapshot holds apart from
/// the live keyspace because of writes: Ferrous's copy-on-write, per key instead of per page.
#[derive(Debug, Default)]
pub struct SaveProgress {
    pub keys_total: AtomicU64,
    pub keys_processed: AtomicU64,
    pub cow_bytes: AtomicU64,
}

impl SaveProgress {
    /// Percentage of the keys written (INFO's current_fork_perc).
    pub fn percent(&self) -> f64 {
        let total = self.keys_total.load(Ordering::Relaxed);
        let done = self.keys_processed.load(Ordering::Relaxed).min(total);
        if total == 0 {
            0.0
        } else {
            done as f64 * 100.0 / total as f64
        }
    }
}

/// One shard's serialisation so far: the bytes, the number of keys, the database the bytes
/// ended with (the next part of another database starts with a SELECTDB).
#[derive(Default)]
struct CapturedShard {
    bytes: Vec<u8>,
    keys: u64,
    db: Option<usize>,
}

impl CapturedShard {
    fn select(&mut self, db: usize) {
        if self.db != Some(db) {
            self.bytes.push(OPCODE_SELECTDB);
            write_len(&mut self.bytes, db as u64);
            self.db = Some(db);
        }
    }
}

/// The shards' serialisations of a point-in-time capture, filled by whoever reaches each
/// part first (a command about to touch a key or a shard, or [`write_point_in_time`]).
struct CapturedShards {
    opts: SaveOptions,
    slots: Vec<Mutex<CapturedShard>>,
    keys: AtomicU64,
    /// Set when the save failed: shards still pending are then skipped cheaply.
    aborted: AtomicBool,
    progress: Arc<SaveProgress>,
}

impl ShardCapture for CapturedShards {
    fn capture(
        &self,
        shard: usize,
        db: usize,
        contents: &ShardDb,
        segment: Option<usize>,
        seen: Option<&capture::Seen>,
    ) {
        if self.aborted.load(Ordering::Relaxed) || contents.main.is_empty() {
            return;
        }
        let mut part = Vec::new();
        let keys = write_shard_part(&mut part, contents, segment, seen, self.opts);
        if keys == 0 {
            return;
        }
        self.keys.fetch_add(keys, Ordering::Relaxed);
        let mut slot = self.slots[shard].lock();
        slot.select(db);
        slot.bytes.extend_from_slice(&part);
        slot.keys += keys;
    }

    fn capture_key(&self, shard: usize, db: usize, contents: &ShardDb, key: &[u8]) {
        if self.aborted.load(Ordering::Relaxed) {
            return;
        }
        let Some(entry) = contents.main.get(key) else { return };
        self.keys.fetch_add(1, Ordering::Relaxed);
        let mut slot = self.slots[shard].lock();
        let before = slot.bytes.len();
        slot.select(db);
        write_key(&mut slot.bytes, contents, key, entry, self.opts);
        slot.keys += 1;
        // A command is about to change this key: the copy is the save's copy-on-write.
        self.progress.cow_bytes.fetch_add((slot.bytes.len() - before) as u64, Ordering::Relaxed);
    }

    fn abandoned(&self) -> bool {
        self.aborted.load(Ordering::Relaxed)
    }
}

/// Reads `rdb-key-save-delay` now. A save in progress reads it again as it sleeps, so setting it
/// to 0 lets a slowed save finish at once. (Redis's tests end such a save by setting it to 0 and
/// killing the save's child process: Ferrous's stand-in child, see `server/save_child.rs`.)
pub type KeyDelay = Box<dyn Fn() -> i64 + Send>;

/// A point-in-time snapshot of the keyspace taken without stopping it (BGSAVE): started by
/// [`PointInTime::begin`] (which marks every shard under all the locks for an instant), then
/// written by [`PointInTime::write`] on any thread while the server keeps serving.
///
/// Consistency: the file holds the keyspace exactly as it was at `begin`. A command that
/// touches a key of a segment not yet written first serialises that key as it was
/// (copy-on-write per key, see `keyspace/capture.rs`), then goes on. Each shard's part of the
/// file selects its databases as it needs them.
pub struct PointInTime {
    shards: Arc<CapturedShards>,
    /// The function libraries as they were at `begin`, and the header's options (written when
    /// the file is, see [`PointInTime::set_repl`]).
    functions: Vec<Vec<u8>>,
    head_opts: SaveOptions,
    /// Microseconds to sleep per key written (`rdb-key-save-delay`, a testing aid), read again
    /// as the sleep goes on (see [`KeyDelay`]).
    pub key_delay: Option<KeyDelay>,
    /// Set to stop the write early (nobody wants the file any more).
    pub abort: Arc<AtomicBool>,
    /// How far the write has got (INFO persistence's current_* fields).
    pub progress: Arc<SaveProgress>,
}

impl PointInTime {
    /// Fix the point in time (of the keyspace; `functions` are the libraries' sources at that
    /// time). The caller must hold no shard lock.
    pub fn begin(ks: &Keyspace, functions: &[Vec<u8>], opts: SaveOptions) -> PointInTime {
        Self::begin_then(ks, functions, opts, || ()).0
    }

    /// [`PointInTime::begin`], running `at_point` at the point in time, every shard locked.
    pub fn begin_then<R>(
        ks: &Keyspace,
        functions: &[Vec<u8>],
        opts: SaveOptions,
        at_point: impl FnOnce() -> R,
    ) -> (PointInTime, R) {
        let shards = Arc::new(CapturedShards {
            opts,
            slots: (0..NSHARDS).map(|_| Mutex::new(CapturedShard::default())).collect(),
            keys: AtomicU64::new(0),
            aborted: AtomicBool::new(false),
            progress: Arc::new(SaveProgress::default()),
        });
        let (r, field_ttls, keys) = ks.begin_capture_checked(shards.clone(), at_point);
        shards.progress.keys_total.store(keys, Ordering::Relaxed);
        // Hashes with field TTLs exist only in RDB 12: the file says so (see `version_needed`).
        let version = if field_ttls { opts.version.max(12) } else { opts.version };
        let progress = shards.progress.clone();
        let pit = PointInTime {
            shards,
            functions: functions.to_vec(),
            head_opts: SaveOptions { version, ..opts },
            key_delay: None,
            abort: Arc::new(AtomicBool::new(false)),
            progress,
        };
        (pit, r)
    }

    /// Record the replication state of the point in time in the file's aux fields.
    pub fn set_repl(&mut self, repl: Option<ReplAux>) {
        self.head_opts.repl = repl;
    }

    /// Write the RDB file to `w`. Returns the number of keys written.
    pub fn write(self, ks: &Keyspace, w: &mut impl Write) -> io::Result<u64> {
        let result = self.write_all(ks, w);
        if result.is_err() {
            // Release the shards still pending without serialising them.
            self.shards.aborted.store(true, Ordering::Relaxed);
            for shard in 0..NSHARDS {
                ks.finish_capture(shard);
            }
        }
        result
    }

    fn write_all(&self, ks: &Keyspace, w: &mut impl Write) -> io::Result<u64> {
        let mut digest: Crc64Digest<'_> = CRC64.digest();
        let mut head = Vec::new();
        header(&mut head, &self.functions, self.head_opts);
        digest.update(&head);
        w.write_all(&head)?;
        let aborted = || io::Error::other("the save was aborted");
        for shard in 0..NSHARDS {
            if self.abort.load(Ordering::Relaxed) {
                return Err(aborted());
            }
            // What commands did not take yet of the shard.
            ks.finish_capture(shard);
            let CapturedShard { bytes: part, keys, .. } = std::mem::take(&mut *self.shards.slots[shard].lock());
            let delay_us = self.key_delay.as_ref().map_or(0, |d| d());
            if delay_us > 0 && keys > 0 {
                // rdb-key-save-delay: sleep per key, in slices so an abort, or the delay set to
                // 0, stops it quickly.
                let mut left = std::time::Duration::from_micros(delay_us as u64 * keys);
                while !left.is_zero() {
                    if self.abort.load(Ordering::Relaxed) {
                        return Err(aborted());
                    }
                    if self.key_delay.as_ref().is_some_and(|d| d() <= 0) {
                        break;
                    }
                    let step = left.min(std::time::Duration::from_millis(20));
                    std::thread::sleep(step);
                    left -= step;
                }
            }
            digest.update(&part);
            w.write_all(&part)?;
            self.progress.keys_processed.fetch_add(keys, Ordering::Relaxed);
        }
        digest.update(&[OPCODE_EOF]);
        w.write_all(&[OPCODE_EOF])?;
        w.write_all(&trailer(digest.finalize(), self.shards.opts))?;
        Ok(self.shards.keys.load(Ordering::Relaxed))
    }
}

/// A point in time dropped before its file was written (a save thread that failed to start)
/// gives the capture up: the shards stop recording what commands touch for it.
impl Drop for PointInTime {
    fn drop(&mut self) {
        self.shards.aborted.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_gives_the_check_values_of_redis_crc64_test() {
        assert_eq!(CRC64.checksum(b"123456789"), 0xe9c6d914c4b8d9ca);
        // Redis's test sums its C string with the terminating NUL.
        let lorem = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor \
            incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud \
            exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure \
            dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. \
            Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt \
            mollit anim id est laborum.\0";
        assert_eq!(CRC64.checksum(lorem), 0xc7794709e69683b3);
        // Fed in pieces that do not fall on the tables' 16-byte steps: the same sum.
        let mut d: Crc64Digest<'_> = CRC64.digest();
        for piece in lorem.chunks(7) {
            d.update(piece);
        }
        assert_eq!(d.finalize(), 0xc7794709e69683b3);
    }

    /// Segment-granular capture: whatever commands change after `begin` (values, expiries,
    /// deletions, new keys, in several databases, a FLUSHDB of one of them), the file is the
    /// keyspace as it was at `begin`, each key once.
    #[test]
    fn point_in_time_holds_under_changes_to_every_segment() {
        use crate::persistence::rdb_load::{parse, LoadOptions};
        use std::collections::BTreeMap;
        let ks = Keyspace::new(16);
        let str_of = |v: &str| Value::Str(StrValue::from_bytes(v.as_bytes()));
        let mut expected = BTreeMap::new();
        for db in [0usize, 2, 7] {
            let mut view = ks.lock_all(db);
            for i in 0..3000 {
                let key = format!("k{i}");
                view.set(key.as_bytes(), str_of(&format!("v{db}-{i}")), false);
                if i % 5 == 0 {
                    view.set_expire(key.as_bytes(), 4_000_000_000_000 + i);
                }
                expected.insert((db, key), (format!("v{db}-{i}"), (i % 5 == 0).then_some(4_000_000_000_000 + i)));
            }
        }
        let pit = PointInTime::begin(&ks, &[], SaveOptions::default());
        // Key by key, as commands do: overwrite, expire, delete, create.
        for db in [0usize, 2, 7] {
            for i in (0..3000).step_by(3) {
                let (key, new) = (format!("k{i}"), format!("new{i}"));
                let mut view = ks.lock_keys(db, &[key.as_bytes(), new.as_bytes()]);
                match i % 4 {
                    0 => view.set(key.as_bytes(), str_of("changed"), false),
                    1 => view.set_expire(key.as_bytes(), 4_100_000_000_000),
                    2 => {
                        view.delete(key.as_bytes());
                    }
                    _ => view.set(new.as_bytes(), str_of("new"), false),
                }
            }
        }
        ks.lock_all(7).flush(false);
        let mut file = Vec::new();
        assert_eq!(pit.write(&ks, &mut file).unwrap(), expected.len() as u64);
        let opts = LoadOptions { databases: 16, limits: Default::default(), now_ms: 0 };
        let loaded = parse(&file, &opts).unwrap();
        let mut got = BTreeMap::new();
        for k in loaded.keys {
            let Value::Str(s) = &k.value else { panic!("not a string") };
            let v = String::from_utf8(s.to_bytes().to_vec()).unwrap();
            let prev = got.insert((k.db, String::from_utf8(k.key.to_vec()).unwrap()), (v, k.expire));
            assert!(prev.is_none(), "a key twice in the file");
        }
        assert_eq!(got, expected);
    }

    /// A point in time dropped unwritten (its save thread never started) is given up: the next
    /// write to a shard drops that shard's pending capture instead of recording the key for it.
    #[test]
    fn a_point_in_time_dropped_unwritten_is_given_up() {
        let ks = Keyspace::new(1);
        ks.lock_keys(0, &[b"k"]).set(b"k", Value::Str(StrValue::from_bytes(b"v")), false);
        let shard = crate::keyspace::shard_of(b"k");
        let pit = PointInTime::begin(&ks, &[], SaveOptions::default());
        assert!(ks.capture_pending(shard));
        drop(pit);
        ks.lock_keys(0, &[b"k"]).set(b"k", Value::Str(StrValue::from_bytes(b"w")), false);
        assert!(!ks.capture_pending(shard));
    }

    /// Copy-on-write per key: a key deleted and created again, a value moved to a key that
    /// did not exist (RENAME's take + insert), a key changed twice, with the saving thread
    /// taking some shards in between: the file is the point in time, each key once.
    #[test]
    fn point_in_time_holds_when_keys_come_and_go_between_segment_walks() {
        use crate::persistence::rdb_load::{parse, LoadOptions};
        use std::collections::BTreeMap;
        let ks = Keyspace::new(16);
        let str_of = |v: &str| Value::Str(StrValue::from_bytes(v.as_bytes()));
        let mut expected = BTreeMap::new();
        for i in 0..4000 {
            let key = format!("k{i}");
            ks.lock_keys(0, &[key.as_bytes()]).set(key.as_bytes(), str_of(&format!("v{i}")), false);
            expected.insert(key, format!("v{i}"));
        }
        let pit = PointInTime::begin(&ks, &[], SaveOptions::default());
        for i in 0..4000 {
            if i % 500 == 0 {
                // The saving thread gets ahead on some shards meanwhile.
                ks.finish_capture(i / 500 * 7);
            }
            let (key, moved) = (format!("k{i}"), format!("m{i}"));
            let mut view = ks.lock_keys(0, &[key.as_bytes(), moved.as_bytes()]);
            match i % 4 {
                0 => {
                    view.delete(key.as_bytes());
                    view.set(key.as_bytes(), str_of("again"), false);
                }
                1 => {
                    let (entry, _) = view.take(key.as_bytes()).unwrap();
                    view.insert_entry(moved.as_bytes(), entry);
                }
                2 => {
                    view.set(key.as_bytes(), str_of("once"), false);
                    view.set(key.as_bytes(), str_of("twice"), false);
                }
                _ => {}
            }
        }
        let mut file = Vec::new();
        assert_eq!(pit.write(&ks, &mut file).unwrap(), expected.len() as u64);
        let opts = LoadOptions { databases: 16, limits: Default::default(), now_ms: 0 };
        let mut got = BTreeMap::new();
        for k in parse(&file, &opts).unwrap().keys {
            let Value::Str(s) = &k.value else { panic!("not a string") };
            let v = String::from_utf8(s.to_bytes().to_vec()).unwrap();
            assert!(got.insert(String::from_utf8(k.key.to_vec()).unwrap(), v).is_none(), "a key twice in the file");
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn lengths_and_integers_use_redis_encodings() {
        let mut v = Vec::new();
        write_len(&mut v, 10);
        write_len(&mut v, 300);
        write_len(&mut v, 70000);
        assert_eq!(v, vec![10, 0x41, 0x2c, 0x80, 0, 1, 0x11, 0x70]);
        let mut v = Vec::new();
        let o = SaveOptions::default();
        write_string(&mut v, b"-5", o);
        write_string(&mut v, b"1000", o);
        write_string(&mut v, b"007", o);
        assert_eq!(v, vec![ENC_INT8, 0xfb, ENC_INT16, 0xe8, 0x03, 3, b'0', b'0', b'7']);
    }

    #[test]
    fn long_strings_are_compressed_only_when_enabled() {
        let s = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let mut on = Vec::new();
        write_string(&mut on, s, SaveOptions::default());
        assert_eq!(on[0], ENC_LZF);
        assert!(on.len() < 20);
        let mut off = Vec::new();
        write_string(&mut off, s, SaveOptions { compression: false, ..SaveOptions::default() });
        assert_eq!(off.len(), 2 + s.len()); // 64 bytes need the 14-bit length form
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
        let rdb = snapshot(&mut db, 16, &[], SaveOptions::default());
        drop(db);
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
        let mut by_shard = Vec::new();
        let pit = PointInTime::begin(&ks, &[], SaveOptions::default());
        assert_eq!(pit.write(&ks, &mut by_shard).unwrap(), 1);
        let body = &by_shard[..by_shard.len() - 8];
        assert_eq!(CRC64.checksum(body).to_le_bytes(), by_shard[by_shard.len() - 8..]);
        // Point in time: writes after `begin` are not in the file.
        let pit = PointInTime::begin(&ks, &[], SaveOptions::default());
        ks.lock_keys(3, &[b"k"]).set(b"k", Value::Str(StrValue::from_bytes(b"later")), false);
        ks.lock_keys(3, &[b"new"]).set(b"new", Value::Str(StrValue::from_bytes(b"x")), false);
        let mut pit_file = Vec::new();
        assert_eq!(pit.write(&ks, &mut pit_file).unwrap(), 1);
        assert!(pit_file.windows(5).any(|w| w == b"hello"));
        assert!(!pit_file.windows(5).any(|w| w == b"later"));
        let nocrc = snapshot(&mut ks.lock_all(0), 16, &[], SaveOptions { checksum: false, ..SaveOptions::default() });
        assert_eq!(nocrc[nocrc.len() - 8..], [0; 8]);
    }
    /// The point in time against a model: random writes, deletions, expiries (future ones, and
    /// past ones that a later read reclaims), moves between keys and databases (RENAME, MOVE),
    /// SWAPDB and FLUSHDB/FLUSHALL before and after `begin`, interleaved with the capturing
    /// thread's walk (one segment, or a whole shard) and whole-shard hand-overs: the file holds
    /// exactly the model as it was at `begin`, each key once, in its database.
    mod point_in_time_model {
        use super::*;
        use crate::keyspace::{capture::SEGMENTS, shard_of};
        use crate::persistence::rdb_load::{parse, LoadOptions};
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        const DBS: usize = 3;

        #[derive(Debug, Clone)]
        enum Op {
            Set { db: usize, key: u8 },
            Delete { db: usize, key: u8 },
            Expire { db: usize, key: u8, past: bool },
            Persist { db: usize, key: u8 },
            Read { db: usize, key: u8 },
            Move { from: usize, to: usize, key: u8, dst: u8 },
            Swap { a: usize, b: usize },
            Flush { db: usize, all: bool },
            WalkSegment { key: u8, db: usize, seg: usize },
            WalkShard { key: u8 },
            HandOver { key: u8 },
        }

        /// Keys of three shards (two hash tags) and spread ones: many keys per segment walk.
        fn key(k: u8) -> Vec<u8> {
            match k % 3 {
                0 => format!("{{a}}{k}"),
                1 => format!("{{b}}{k}"),
                _ => format!("k{k}"),
            }
            .into_bytes()
        }

        fn op() -> impl Strategy<Value = Op> {
            let db = 0..DBS;
            let k = 0u8..60;
            prop_oneof![
                6 => (db.clone(), k.clone()).prop_map(|(db, key)| Op::Set { db, key }),
                2 => (db.clone(), k.clone()).prop_map(|(db, key)| Op::Delete { db, key }),
                2 => (db.clone(), k.clone(), any::<bool>()).prop_map(|(db, key, past)| Op::Expire { db, key, past }),
                1 => (db.clone(), k.clone()).prop_map(|(db, key)| Op::Persist { db, key }),
                2 => (db.clone(), k.clone()).prop_map(|(db, key)| Op::Read { db, key }),
                2 => (db.clone(), db.clone(), k.clone(), k.clone())
                    .prop_map(|(from, to, key, dst)| Op::Move { from, to, key, dst }),
                1 => (db.clone(), db.clone()).prop_map(|(a, b)| Op::Swap { a, b }),
                1 => (db.clone(), prop::bool::weighted(0.2)).prop_map(|(db, all)| Op::Flush { db, all }),
                4 => (k.clone(), db.clone(), 0..SEGMENTS).prop_map(|(key, db, seg)| Op::WalkSegment { key, db, seg }),
                1 => k.clone().prop_map(|key| Op::WalkShard { key }),
                1 => k.prop_map(|key| Op::HandOver { key }),
            ]
        }

        /// (database, key) -> (value, expiry), as stored (expired keys not yet reclaimed included).
        type Model = BTreeMap<(usize, Vec<u8>), (String, Option<i64>)>;

        fn apply(ks: &Keyspace, model: &mut Model, op: &Op, n: usize) {
            let now = crate::keyspace::now_ms();
            let expired = |m: &Model, db: usize, k: &[u8]| {
                m.get(&(db, k.to_vec())).is_some_and(|(_, e)| e.is_some_and(|t| t <= now))
            };
            match *op {
                Op::Set { db, key: k } => {
                    let (key, v) = (key(k), format!("v{n}"));
                    ks.lock_keys(db, &[&key]).set(&key, Value::Str(StrValue::from_bytes(v.as_bytes())), false);
                    model.insert((db, key), (v, None));
                }
                Op::Delete { db, key: k } => {
                    let key = key(k);
                    ks.lock_keys(db, &[&key]).delete(&key);
                    model.remove(&(db, key));
                }
                Op::Expire { db, key: k, past } => {
                    let key = key(k);
                    let mut view = ks.lock_keys(db, &[&key]);
                    if expired(model, db, &key) {
                        model.remove(&(db, key.clone()));
                    }
                    if view.exists(&key) {
                        let when = if past { 1 } else { 4_000_000_000_000 + n as i64 };
                        view.set_expire(&key, when);
                        model.get_mut(&(db, key)).expect("in the model").1 = Some(when);
                    }
                }
                Op::Persist { db, key: k } => {
                    let key = key(k);
                    let mut view = ks.lock_keys(db, &[&key]);
                    if expired(model, db, &key) {
                        model.remove(&(db, key.clone()));
                    }
                    if view.exists(&key) {
                        view.persist(&key);
                        model.get_mut(&(db, key)).expect("in the model").1 = None;
                    }
                }
                Op::Read { db, key: k } => {
                    let key = key(k);
                    ks.lock_keys(db, &[&key]).get(&key);
                    if expired(model, db, &key) {
                        model.remove(&(db, key));
                    }
                }
                Op::Move { from, to, key: k, dst } => {
                    let (src, dst) = (key(k), key(dst));
                    if (from, &src) == (to, &dst) {
                        return;
                    }
                    let mut view = ks.lock_keys(from, &[&src, &dst]);
                    if expired(model, from, &src) {
                        model.remove(&(from, src.clone()));
                    }
                    if let Some((entry, ttl)) = view.take(&src) {
                        view.index = to;
                        view.delete(&dst);
                        view.insert_entry(&dst, entry);
                        if let Some(t) = ttl {
                            view.set_expire(&dst, t);
                        }
                        let moved = model.remove(&(from, src)).expect("in the model");
                        model.insert((to, dst), moved);
                    }
                }
                Op::Swap { a, b } => {
                    ks.lock_all(0).swap_dbs(a, b);
                    let swapped = std::mem::take(model)
                        .into_iter()
                        .map(|((db, k), v)| {
                            (
                                (
                                    if db == a {
                                        b
                                    } else if db == b {
                                        a
                                    } else {
                                        db
                                    },
                                    k,
                                ),
                                v,
                            )
                        })
                        .collect();
                    *model = swapped;
                }
                Op::Flush { db, all } => {
                    ks.lock_all(db).flush(all);
                    model.retain(|(d, _), _| !all && *d != db);
                }
                Op::WalkSegment { key: k, db, seg } => ks.capture_segment_step(shard_of(&key(k)), db, seg),
                Op::WalkShard { key: k } => ks.finish_capture(shard_of(&key(k))),
                Op::HandOver { key: k } => drop(ks.lock_shard(0, shard_of(&key(k))).locked_shards().count()),
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]
            #[test]
            fn the_file_is_the_keyspace_at_begin(
                before in prop::collection::vec(op(), 0..80),
                after in prop::collection::vec(op(), 0..200),
                // SWAPDB and FLUSHDB hand the whole capture over: without them in half the
                // cases, so that the walk and the commands interleave to the end.
                global_after in any::<bool>(),
            ) {
                let ks = Keyspace::new(DBS);
                let mut model = Model::new();
                for (n, o) in before.iter().enumerate() {
                    apply(&ks, &mut model, o, n);
                }
                let pit = PointInTime::begin(&ks, &[], SaveOptions::default());
                let at_begin = model.clone();
                for (n, o) in after.iter().enumerate() {
                    if !global_after && matches!(o, Op::Swap { .. } | Op::Flush { .. }) {
                        continue;
                    }
                    apply(&ks, &mut model, o, before.len() + n);
                }
                let mut file = Vec::new();
                let written = pit.write(&ks, &mut file).unwrap();
                let opts = LoadOptions { databases: DBS, limits: Default::default(), now_ms: 0 };
                let mut got = Model::new();
                for k in parse(&file, &opts).unwrap().keys {
                    let Value::Str(s) = &k.value else { panic!("not a string") };
                    let v = String::from_utf8(s.to_bytes().to_vec()).unwrap();
                    let twice = got.insert((k.db, k.key.to_vec()), (v, k.expire));
                    prop_assert!(twice.is_none(), "{:?} twice in the file", k.key);
                }
                prop_assert_eq!(written, at_begin.len() as u64);
                prop_assert_eq!(got, at_begin);
            }
        }
    }
}
