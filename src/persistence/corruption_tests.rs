//! Bounded, deterministic corruption of RDB files and DUMP payloads: every value type and
//! encoding the writer produces (strings raw / integer / LZF, quicklists of several nodes,
//! listpack and table hashes, intset and table sets, listpack and skiplist sorted sets),
//! expiries, several databases, function libraries and IDLE / FREQ opcodes, with compression on
//! and off, and a stream with groups and pending entries (each loaded stream is then used
//! as commands use it: ranges both ways, appends, deletes, trims); and the same values in an
//! RDB 13 file as Redis 8.6 writes one (built by hand: KEY_META records, the stream as type 26
//! with IDMP state). Each file is truncated at every length, has a bit flipped at every offset, has a
//! huge length field inserted at every offset, and gets a few thousand pseudo-random
//! multi-byte mutations; the loader must answer each with an error or a complete load — never
//! a panic, an unbounded allocation or a hang. Checksums are disabled (or recomputed) so the
//! value decoders are reached. `fuzz/` runs the same entry points under libFuzzer.

use super::dump;
use super::rdb::{snapshot, AccessInfo, SaveOptions, CRC64};
use super::rdb_load::{install, parse, LoadOptions};
use super::rdb_value::Limits;
use crate::keyspace::Keyspace;
use crate::types::hash::HashLimits;
use crate::types::set::SetLimits;
use crate::types::zset::Limits as ZLimits;
use crate::types::{HashValue, ListValue, SetValue, StrValue, Value, ZSetValue};

/// Tiny encoding limits, so that every large encoding appears in a file of a few KB (the test
/// loads thousands of variants of each file).
fn limits() -> Limits {
    Limits {
        hash: HashLimits { max_entries: 4, max_value: 16 },
        set: SetLimits { max_intset_entries: 4, max_listpack_entries: 4, max_listpack_value: 16 },
        zset: ZLimits { max_entries: 4, max_value: 16 },
        deep_sanitize: true,
    }
}

/// One value of every type and encoding.
fn values() -> Vec<(&'static str, Value)> {
    let l = limits();
    let mut small_list = ListValue::new();
    (0..3).for_each(|i| small_list.push_back(format!("{i}").as_bytes()));
    // A quicklist of three nodes (4, 4 and 3 entries), as a file would carry it.
    let mut elems: Vec<Vec<u8>> = (0..10).map(|i| format!("element {i}").into_bytes()).collect();
    elems.push(b"y".repeat(70));
    let big_list = ListValue::from_nodes(elems.chunks(4).map(<[Vec<u8>]>::to_vec).collect());
    assert_eq!(big_list.encoding(), "quicklist");
    let mut small_hash = HashValue::default();
    small_hash.set(b"field", b"value", l.hash);
    small_hash.set(b"n", b"12345", l.hash);
    let mut big_hash = HashValue::default();
    (0..6).for_each(|i| {
        big_hash.set(format!("f{i}").as_bytes(), format!("v{i}").as_bytes(), l.hash);
    });
    let mut intset = SetValue::default();
    [-5i64, 70000, 5_000_000_000].iter().for_each(|n| {
        intset.add(n.to_string().as_bytes(), l.set);
    });
    let mut listpack_set = SetValue::default();
    ["a", "-7", "bcd"].iter().for_each(|m| {
        listpack_set.add(m.as_bytes(), l.set);
    });
    let mut table_set = SetValue::default();
    (0..6).for_each(|i| {
        table_set.add(format!("member-{i}").as_bytes(), l.set);
    });
    let mut small_z = ZSetValue::new();
    small_z.insert(b"a", 1.5, l.zset);
    small_z.insert(b"b", -3.0, l.zset);
    small_z.insert(b"c", 1e300, l.zset);
    let mut big_z = ZSetValue::new();
    (0..6).for_each(|i| {
        big_z.insert(format!("m{i}").as_bytes(), i as f64 * 0.25, l.zset);
    });
    vec![
        ("stream", Value::Stream(Box::new(stream_sample()))),
        ("str:raw", Value::Str(StrValue::from_bytes(b"hello world"))),
        ("str:int", Value::Str(StrValue::from_bytes(b"-123456789"))),
        ("str:i64", Value::Str(StrValue::from_bytes(b"9223372036854775807"))),
        ("str:lzf", Value::Str(StrValue::from_bytes(&b"compressible ".repeat(8)))),
        ("list:small", Value::List(small_list)),
        ("list:big", Value::List(big_list)),
        ("hash:listpack", Value::Hash(small_hash)),
        ("hash:table", Value::Hash(big_hash)),
        ("set:intset", Value::Set(intset)),
        ("set:listpack", Value::Set(listpack_set)),
        ("set:table", Value::Set(table_set)),
        ("zset:listpack", Value::ZSet(small_z)),
        ("zset:skiplist", Value::ZSet(big_z)),
    ]
}

/// A stream of two nodes with a tombstone, mixed fields, two groups with pending entries and
/// consumers (one without pending entries).
fn stream_sample() -> crate::types::StreamValue {
    use crate::types::stream::id::ParsedId;
    use crate::types::stream::{ConsumerGroup, NodeLimits, StreamId};
    let mut s = crate::types::StreamValue::new();
    let lim = NodeLimits { max_bytes: 4096, max_entries: 3 };
    for i in 1..=5u64 {
        let id = Some(ParsedId { id: StreamId::new(i, i), seq_given: true });
        let v = format!("{}", i * 1000);
        let pairs: Vec<&[u8]> = if i == 4 { vec![b"other", b"x"] } else { vec![b"f", v.as_bytes()] };
        s.add(&pairs, id, 0, lim).expect("increasing IDs");
    }
    s.delete(&[StreamId::new(2, 2)]);
    let mut g = ConsumerGroup::new(StreamId::new(3, 3), 3);
    g.create_consumer(b"alice", 1_700_000_000_000);
    g.create_consumer(b"bob", 1_700_000_000_001);
    let alice = bytes::Bytes::from_static(b"alice");
    g.deliver(StreamId::new(1, 1), &alice, 1_700_000_000_002);
    g.deliver(StreamId::new(3, 3), &alice, 1_700_000_000_003);
    // RDB type 19 keeps no active time: it loads as the seen time.
    for c in g.consumers.values_mut() {
        c.active_time = c.seen_time;
    }
    s.groups.insert(bytes::Bytes::from_static(b"g"), g);
    s.groups.insert(bytes::Bytes::from_static(b"h"), ConsumerGroup::new(StreamId::MIN, -1));
    s
}

/// Use a loaded stream the way commands do (both directions, lookups, appends, deletes,
/// trims, the radix-tree shape): whatever the loader accepted must be safe to use.
fn exercise(v: &Value) {
    use crate::types::stream::{NodeLimits, StreamId, Trim};
    let Value::Stream(s) = v else { return };
    let mut s = (**s).clone();
    assert_eq!(s.walk(), (s.len(), s.len()), "a loaded stream's length matches its entries");
    let mut ids = Vec::new();
    for rev in [false, true] {
        for e in s.range(StreamId::MIN, StreamId::MAX, rev) {
            ids.push(e.id);
            for (f, v) in e.fields() {
                let _ = (f.to_vec(), v.to_vec());
            }
        }
    }
    for id in ids.iter().take(4) {
        let _ = s.get(*id);
    }
    let _ = (s.rax_nodes(), s.last_valid_id(), s.edge_id(true, false), s.free_effort());
    for g in s.groups.values() {
        let _ = s.lag(g);
    }
    let _ = s.add(&[b"f", b"v"], None, u64::MAX - 1, NodeLimits::default());
    s.delete(&ids);
    s.trim(Trim::MaxLen(1), false, 0);
    s.trim(Trim::MinId(StreamId::MAX), true, 10);
}

/// A valid file holding every value, with functions, expiries, three databases and the given
/// compression and access metadata; no checksum.
fn sample(compression: bool, access: AccessInfo, version: u16) -> Vec<u8> {
    let ks = Keyspace::new(16);
    {
        let mut db = ks.lock_all(0);
        for (i, (name, v)) in values().into_iter().enumerate() {
            db.index = [0, 3, 15][i % 3];
            db.set(name.as_bytes(), v, false);
            if i % 4 == 1 {
                db.set_expire(name.as_bytes(), 4_000_000_000_000 + i as i64);
            }
        }
    }
    let functions = vec![b"#!lua name=lib\nredis.register_function('f', function() return 1 end)".to_vec()];
    let opts = SaveOptions { compression, checksum: false, access, version, repl: None };
    let mut db = ks.lock_all(0);
    snapshot(&mut db, 16, &functions, opts)
}

/// The values of [`sample`] in an RDB 13 file (Ferrous does not write RDB 13): every other key
/// with ignorable module metadata (KEY_META), after its expiry where it has one; the stream as
/// type 26, with the IDMP state of two producers; no checksum.
fn sample_v13() -> Vec<u8> {
    use super::rdb::*;
    use super::rdb_stream::{write_idmp, TYPE_STREAM_LISTPACKS_4};
    use crate::types::stream::StreamId;
    let opts = SaveOptions { compression: true, checksum: false, access: AccessInfo::None, version: 12, repl: None };
    let mut f = b"REDIS0013".to_vec();
    f.push(OPCODE_FUNCTION2);
    write_string(&mut f, b"#!lua name=lib\nredis.register_function('f', function() return 1 end)", opts);
    for (i, (name, v)) in values().into_iter().enumerate() {
        f.extend_from_slice(&[OPCODE_SELECTDB, [0, 3, 15][i % 3]]);
        if i % 4 == 1 {
            f.push(OPCODE_EXPIRETIME_MS);
            f.extend_from_slice(&(4_000_000_000_000 + i as u64).to_le_bytes());
        }
        if i % 2 == 0 {
            // One class ("KMT1", version 0, ALLOW_IGNORE) holding a UINT and a STRING.
            f.extend_from_slice(&[OPCODE_KEY_META, 1, 0x01, 0xf5, 0xc4, 0x28, 2, 42, 5, 1, b'm', 0]);
        }
        let stream = matches!(v, Value::Stream(_));
        f.push(if stream { TYPE_STREAM_LISTPACKS_4 } else { value_type(&v, 12) });
        write_string(&mut f, name.as_bytes(), opts);
        write_value(&mut f, &v, opts);
        if stream {
            let a: &[(&[u8], StreamId)] = &[(b"i1", StreamId::new(1, 1)), (b"i2", StreamId::new(3, 3))];
            write_idmp(&mut f, &[(b"producer-a", a), (b"b", &[])]);
        }
    }
    f.push(OPCODE_EOF);
    f.extend_from_slice(&[0; 8]);
    f
}

fn samples() -> Vec<Vec<u8>> {
    vec![
        sample(true, AccessInfo::None, 10),
        sample(false, AccessInfo::Idle { clock: 1000 }, 11),
        sample(true, AccessInfo::Freq { now_ms: 1_700_000_000_000, decay_time: 1 }, 10),
        sample_v13(),
    ]
}

fn opts() -> LoadOptions {
    LoadOptions { databases: 16, limits: limits(), now_ms: 1_700_000_000_000 }
}

thread_local! {
    /// One keyspace per test thread, reused (creating one costs more than a load).
    static KS: Keyspace = Keyspace::new(16);
}

/// Parse, and install what parsed (replacing keys already there): errors are fine, panics
/// are not.
fn load(data: &[u8]) -> bool {
    match parse(data, &opts()) {
        Ok(loaded) => {
            loaded.keys.iter().for_each(|k| exercise(&k.value));
            KS.with(|ks| {
                let mut db = ks.lock_all(0);
                let _ = install(&mut db, loaded, true);
            });
            true
        }
        Err(_) => false,
    }
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Length fields that claim far more than is there: 32-bit, 64-bit, 14-bit forms and the
/// special (encoded string) forms.
const INFLATED: &[&[u8]] = &[
    &[0x80, 0xFF, 0xFF, 0xFF, 0xF0],
    &[0x81, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
    &[0x81, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
    &[0x7F, 0xFF],
    &[0xC3, 0x80, 0x10, 0x00, 0x00, 0x00, 0x80, 0x7F, 0xFF, 0xFF, 0xFF],
    &[0xC3, 0x05, 0x81, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
];

#[test]
fn the_samples_load() {
    let encodings: std::collections::BTreeSet<&str> = values().iter().map(|(_, v)| v.encoding()).collect();
    for e in ["int", "embstr", "raw", "quicklist", "listpack", "hashtable", "intset", "skiplist", "stream"] {
        assert!(encodings.contains(e), "no {e} value in the samples: {encodings:?}");
    }
    for s in samples() {
        assert!(s.len() < 4096, "keep the samples small: {} bytes", s.len());
        let loaded = parse(&s, &opts()).expect("a valid sample");
        assert_eq!(loaded.keys.len(), values().len());
        assert_eq!(loaded.functions.len(), 1);
    }
    // The RDB 13 file loads the same keys as the RDB 12 one, IDMP state and metadata dropped.
    let keys = |f: &[u8]| {
        let mut k: Vec<_> = parse(f, &opts())
            .expect("a valid sample")
            .keys
            .into_iter()
            .map(|k| (k.db, k.key, k.value, k.expire))
            .collect();
        k.sort_by(|a, b| a.1.cmp(&b.1));
        k
    };
    assert_eq!(keys(&sample_v13()), keys(&sample(true, AccessInfo::None, 12)));
}

#[test]
fn every_truncation_is_an_error() {
    for s in samples() {
        for cut in 0..s.len() {
            assert!(!load(&s[..cut]), "a file cut at {cut} of {} loaded", s.len());
        }
    }
}

#[test]
fn every_bit_flip_and_byte_overwrite() {
    for s in samples() {
        for i in 9..s.len() - 8 {
            let mut d = s.clone();
            d[i] ^= 1 << (i % 8);
            load(&d);
            for b in [0x00, 0xFF, 0x80, 0xC3] {
                d[i] = b;
                load(&d);
            }
        }
    }
}

#[test]
fn inflated_length_fields_at_every_offset() {
    for s in samples() {
        for i in 9..s.len() - 8 {
            for field in INFLATED {
                // Inserted before the byte at i, and overwriting it.
                let mut ins = s[..i].to_vec();
                ins.extend_from_slice(field);
                ins.extend_from_slice(&s[i..]);
                load(&ins);
                let mut over = s.clone();
                let end = (i + field.len()).min(s.len() - 8);
                over.splice(i..end, field.iter().copied());
                load(&over);
            }
        }
    }
}

#[test]
fn random_multi_byte_mutations() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for s in samples() {
        for _ in 0..20_000 {
            let mut d = s.clone();
            for _ in 0..1 + rng.below(6) {
                let body = d.len() - 17;
                let i = 9 + rng.below(body);
                match rng.below(5) {
                    0 => d[i] = rng.next() as u8,
                    1 => d[i] ^= 1 << rng.below(8),
                    2 => {
                        d.remove(i);
                    }
                    3 => d.insert(i, rng.next() as u8),
                    _ => {
                        // Duplicate a slice (repeats opcodes, keys, nested structures).
                        let len = rng.below(32).min(d.len() - 8 - i);
                        let part = d[i..i + len].to_vec();
                        d.splice(i..i, part);
                    }
                }
            }
            load(&d);
        }
    }
}

/// DUMP payloads with a recomputed CRC (so every mutation reaches the decoders): RESTORE must
/// refuse or give a value whose own DUMP restores to the same value.
#[test]
fn mutated_dump_payloads() {
    let mut rng = Rng(42);
    let with_crc = |body: &[u8]| {
        let mut p = body.to_vec();
        p.extend_from_slice(&11u16.to_le_bytes());
        let crc = CRC64.checksum(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        p
    };
    for (name, v) in values() {
        let dump_opts = SaveOptions { version: 11, ..SaveOptions::default() };
        let good = dump::dump(&v, dump_opts);
        let body = &good[..good.len() - 10];
        assert_eq!(dump::restore(&good, &limits()).as_ref(), Some(&v), "{name}");
        let mut cases: Vec<Vec<u8>> = (0..body.len()).map(|cut| body[..cut].to_vec()).collect();
        for i in 0..body.len() {
            let mut d = body.to_vec();
            d[i] ^= 1 << (i % 8);
            cases.push(d);
            for field in INFLATED.iter().take(3) {
                let mut ins = body[..i].to_vec();
                ins.extend_from_slice(field);
                ins.extend_from_slice(&body[i..]);
                cases.push(ins);
            }
        }
        for _ in 0..300 {
            let mut d = body.to_vec();
            let i = rng.below(d.len());
            d[i] = rng.next() as u8;
            cases.push(d);
        }
        for c in cases {
            let p = with_crc(&c);
            assert!(dump::verify(&p));
            if let Some(back) = dump::restore(&p, &limits()) {
                exercise(&back);
                let again = dump::dump(&back, dump_opts);
                assert_eq!(dump::restore(&again, &limits()), Some(back), "{name}: re-dump differs");
            }
        }
    }
}

/// A valid AOF command stream: SELECT, plain commands, a transaction, a binary and a large
/// argument.
fn aof_sample() -> Vec<u8> {
    let mut out = Vec::new();
    let big = vec![b'x'; 5000];
    let cmds: Vec<Vec<&[u8]>> = vec![
        vec![b"SELECT", b"0"],
        vec![b"SET", b"k", b"v"],
        vec![b"MULTI"],
        vec![b"RPUSH", b"l", b"a", b"\r\n\x00b"],
        vec![b"PEXPIREAT", b"l", b"4102444800000"],
        vec![b"EXEC"],
        vec![b"SET", b"big", &big],
        vec![b"DEL", b"k"],
    ];
    for c in &cmds {
        crate::protocol::encode_command(&mut out, c);
    }
    out
}

/// Every truncation of an AOF is either clean (cut between commands) or a torn tail whose
/// valid prefix holds only whole commands; nothing panics.
#[test]
fn aof_every_truncation_is_a_torn_tail() {
    use super::aof::{parse_commands, Ending};
    let data = aof_sample();
    let full = parse_commands(&data, 0);
    assert_eq!(full.ending, Ending::Clean);
    assert_eq!(full.commands.len(), 8);
    for cut in 0..data.len() {
        let parsed = parse_commands(&data[..cut], 0);
        // Never half a transaction: every MULTI accepted comes with its EXEC.
        let count = |name: &[u8]| parsed.commands.iter().filter(|c| c[0].eq_ignore_ascii_case(name)).count();
        assert_eq!(count(b"multi"), count(b"exec"), "cut {cut}: a torn transaction was kept");
        match parsed.ending {
            Ending::Clean => assert!(full.commands.starts_with(&parsed.commands)),
            Ending::Truncated { valid_up_to, .. } => {
                assert!(valid_up_to <= cut);
                let again = parse_commands(&data[..valid_up_to], 0);
                assert_eq!(again.ending, Ending::Clean, "cut {cut}: the valid prefix must parse cleanly");
            }
            Ending::BadFormat { offset } => panic!("cut {cut}: a truncation read as bad format at {offset}"),
        }
    }
}

/// Bit flips, byte overwrites and random multi-byte mutations of an AOF never panic the
/// parser, and whatever it accepts is made of whole commands.
#[test]
fn aof_mutations_never_panic() {
    use super::aof::parse_commands;
    let data = aof_sample();
    for i in 0..data.len() {
        for bit in 0..8 {
            let mut d = data.clone();
            d[i] ^= 1 << bit;
            let _ = parse_commands(&d, 0);
        }
        for b in [0u8, b'*', b'$', b'\r', b'\n', b'-', b'9', 0xff] {
            let mut d = data.clone();
            d[i] = b;
            let parsed = parse_commands(&d, 0);
            assert!(parsed.commands.iter().all(|c| !c.is_empty()));
        }
    }
    let mut rng = Rng(0x5eed);
    for _ in 0..20_000 {
        let mut d = data.clone();
        for _ in 0..1 + rng.below(6) {
            let i = rng.below(d.len());
            d[i] = rng.next() as u8;
        }
        let _ = parse_commands(&d, 0);
    }
}
