//! Streams in RDB files and DUMP payloads: written as Redis 7.0 writes them
//! (RDB_TYPE_STREAM_LISTPACKS_2, type 19) in RDB 10, as Redis 7.2 does (STREAM_LISTPACKS_3,
//! type 21, with each consumer's active time) from RDB 11 on; read from types 15 (Redis
//! 5-6.2), 19 (7.0), 21 (Redis 7.2 to 8.4 / Valkey) and 26 (Redis 8.6, RDB 13).
//!
//! Layout: the node count; each node as its 16-byte big-endian master ID and its listpack
//! (as strings); length; last ID; (19+) first ID, maximal deleted ID, entries added; the group
//! count; each group: name, last ID, (19+) entries read, its PEL (count, then raw 16-byte IDs
//! each with delivery time (8 bytes LE ms) and delivery count), its consumers (count, then
//! name, seen time, (21+) active time, and the IDs of its PEL); (26) the stream's IDMP state
//! (see [`skip_idmp`]).
//!
//! Redis 8.6's idempotent producers (XADD IDMP / IDMPAUTO, XCFGSET IDMP-*) do not exist in
//! Redis 7.2, so Ferrous has nowhere to keep their state: a type 26 stream loads with its
//! entries, metadata, groups, PELs and consumers intact, and its IDMP state is read (checked
//! for structure like the rest) and dropped.
//!
//! Loading checks what Redis's deep integrity validation checks (every listpack, the node
//! keys, duplicate groups / consumers / PEL entries, consumer PEL entries present in the
//! group PEL) and a little more, so a damaged payload is refused rather than installed: a PEL
//! entry owned by no consumer or by two is refused too.

use bytes::Bytes;

use super::rdb::{write_len, write_string, SaveOptions};
use super::reader::{RdbError, Reader, Result};
use crate::types::stream::{node, ConsumerGroup, Nack, StreamId, StreamValue};

pub const TYPE_STREAM_LISTPACKS: u8 = 15;
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
pub const TYPE_STREAM_LISTPACKS_3: u8 = 21;
/// Redis 8.6 (RDB 13): type 21 followed by the stream's IDMP state.
pub const TYPE_STREAM_LISTPACKS_4: u8 = 26;

fn write_id(out: &mut Vec<u8>, id: StreamId) {
    write_len(out, id.ms);
    write_len(out, id.seq);
}

/// Append a stream's serialisation (type 19 body; type 21 from RDB version 11).
pub fn write(out: &mut Vec<u8>, s: &StreamValue, opts: SaveOptions) {
    write_len(out, s.node_count() as u64);
    for (master, lp) in s.nodes() {
        write_string(out, &master.to_be_bytes(), opts);
        write_string(out, lp, opts);
    }
    write_len(out, s.len());
    write_id(out, s.last_id);
    write_id(out, s.first_id);
    write_id(out, s.max_deleted_entry_id);
    write_len(out, s.entries_added);
    write_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        write_string(out, name, opts);
        write_id(out, g.last_id);
        write_len(out, g.entries_read as u64);
        write_len(out, g.pel.len() as u64);
        for (id, nack) in &g.pel {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&nack.delivery_time.to_le_bytes());
            write_len(out, nack.delivery_count);
        }
        write_len(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            write_string(out, cname, opts);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            if opts.version >= 11 {
                out.extend_from_slice(&c.active_time.to_le_bytes());
            }
            write_len(out, c.pel.len() as u64);
            for id in &c.pel {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
    }
}

/// One IDMP producer as Redis 8.6 writes it: its ID and its (idempotent ID, stream ID) pairs.
#[cfg(test)]
pub type IdmpProducer<'a> = (&'a [u8], &'a [(&'a [u8], StreamId)]);

/// Append the IDMP state that ends a type 26 stream, as Redis 8.6 writes it (Ferrous never
/// writes it: for tests that build RDB 13 data by hand).
#[cfg(test)]
pub fn write_idmp(out: &mut Vec<u8>, producers: &[IdmpProducer]) {
    let opts = SaveOptions::default();
    write_len(out, 100);
    write_len(out, 1000);
    write_len(out, producers.len() as u64);
    let mut added = 0;
    for (pid, ids) in producers {
        write_string(out, pid, opts);
        write_len(out, ids.len() as u64);
        for (iid, id) in ids.iter() {
            write_string(out, iid, opts);
            write_id(out, *id);
            added += 1;
        }
    }
    write_len(out, added + 3);
    write_len(out, 3);
}

fn read_id(r: &mut Reader) -> Result<StreamId> {
    Ok(StreamId::new(r.length()?, r.length()?))
}

fn raw_id(r: &mut Reader) -> Result<StreamId> {
    let b: [u8; 16] = r.bytes(16)?.try_into().unwrap_or([0; 16]);
    Ok(StreamId::from_be_bytes(&b))
}

fn ms_time(r: &mut Reader) -> Result<i64> {
    Ok(r.u64_le()? as i64)
}

/// Read past the IDMP (idempotent producer) state that ends a type 26 stream, keeping none of
/// it (Ferrous has no IDMP): the duration (seconds) and the most IDs kept per producer, the
/// producers (count, then each one's ID and its count of (idempotent ID, stream ID) pairs),
/// then the counts of IDs ever added and of duplicates found.
fn skip_idmp(r: &mut Reader) -> Result<()> {
    r.length()?;
    r.length()?;
    let producers = r.count(2)?;
    for _ in 0..producers {
        r.string()?;
        let ids = r.count(3)?;
        for _ in 0..ids {
            r.string()?;
            read_id(r)?;
        }
    }
    r.length()?;
    r.length()?;
    Ok(())
}

/// Read a stream value of RDB type `ty` (15, 19, 21 or 26).
pub fn read(r: &mut Reader, ty: u8) -> Result<StreamValue> {
    let at = r.pos();
    // Refusals carry Redis 7.2's report (rdb.c line, reason).
    let corrupt = |line: u32, why: &str| RdbError::corrupt(at, line, why);
    let mut s = StreamValue::new();
    let nodes = r.count(2)?;
    let mut live = 0u64;
    for _ in 0..nodes {
        let key = r.string()?;
        let Ok(key) = <[u8; 16]>::try_from(key.as_slice()) else {
            return Err(corrupt(2501, "Stream node key entry is not the size of a stream ID"));
        };
        let master = StreamId::from_be_bytes(&key);
        let lp_at = r.pos();
        let lp = r.string()?;
        let sum = node::validate(&lp, master).map_err(|e| {
            RdbError::new(lp_at, e.to_string()).reported(2520, "Stream listpack integrity check failed.")
        })?;
        if crate::types::stream::lp::first(&lp).is_none() {
            return Err(corrupt(2532, "Empty listpack inside stream"));
        }
        live += sum.live;
        if !s.insert_node(master, lp) {
            return Err(corrupt(2544, "Listpack re-added with existing key"));
        }
    }
    let length = r.length()?;
    if length != live {
        let e = RdbError::new(at, "Stream length inconsistent with its nodes");
        return Err(e.reported(2588, "Stream length inconsistent with rax entries"));
    }
    s.set_length(length);
    s.last_id = read_id(r)?;
    if ty >= TYPE_STREAM_LISTPACKS_2 {
        s.first_id = read_id(r)?;
        s.max_deleted_entry_id = read_id(r)?;
        s.entries_added = r.length()?;
    } else {
        s.entries_added = length;
        s.first_id = if length > 0 { s.edge_id(true, true) } else { StreamId::MIN };
    }
    let ngroups = r.count(3)?;
    for _ in 0..ngroups {
        let name = r.string()?;
        let last_id = read_id(r)?;
        let entries_read =
            if ty >= TYPE_STREAM_LISTPACKS_2 { r.length()? as i64 } else { s.estimate_distance(last_id) };
        if s.groups.contains_key(name.as_slice()) {
            return Err(corrupt(2638, &format!("Duplicated consumer group name {}", String::from_utf8_lossy(&name))));
        }
        let mut g = ConsumerGroup::new(last_id, entries_read);
        let npel = r.count(16 + 9)?;
        for _ in 0..npel {
            let id = raw_id(r)?;
            let delivery_time = ms_time(r)?;
            let delivery_count = r.length()?;
            let nack = Nack { delivery_time, delivery_count, consumer: Bytes::new() };
            if g.pel.insert(id, nack).is_some() {
                return Err(corrupt(2674, "Duplicated global PEL entry loading stream consumer group"));
            }
        }
        let nconsumers = r.count(9)?;
        let mut owned = 0usize;
        for _ in 0..nconsumers {
            let cname = Bytes::from(r.string()?);
            if !g.create_consumer(&cname, 0) {
                return Err(corrupt(2702, "Duplicate stream consumer detected."));
            }
            let seen = ms_time(r)?;
            let active = if ty >= TYPE_STREAM_LISTPACKS_3 { ms_time(r)? } else { seen };
            let n = r.count(16)?;
            let mut pel = std::collections::BTreeSet::new();
            for _ in 0..n {
                let id = raw_id(r)?;
                match g.pel.get_mut(&id) {
                    None => return Err(corrupt(2745, "Consumer entry not found in group global PEL")),
                    Some(nack) if !nack.consumer.is_empty() || !pel.insert(id) => {
                        // (Redis's text has the two spaces.)
                        return Err(corrupt(2756, "Duplicated consumer PEL entry  loading a stream consumer group"));
                    }
                    Some(nack) => nack.consumer = cname.clone(),
                }
            }
            owned += pel.len();
            if let Some(c) = g.consumers.get_mut(&cname) {
                c.seen_time = seen;
                c.active_time = active;
                c.pel = pel;
            }
        }
        if owned != g.pel.len() {
            return Err(corrupt(2775, "Stream CG PEL entry without consumer"));
        }
        s.groups.insert(Bytes::from(name), g);
    }
    if ty == TYPE_STREAM_LISTPACKS_4 {
        skip_idmp(r)?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::stream::{NodeLimits, INVALID_ENTRIES_READ};

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn reads_a_valkey_stream_listpacks_3_value() {
        // DUMP of a stream from Valkey 9.1 (rdbcompression no): type 21, then the value, the
        // RDB version and the CRC. Consumers carry an active time (-1: never active).
        let dump = unhex("150110000000000000000100000000000000013131000000110002010001010181610200010201000100010101040100010101dfff0201018162028568656c6c6f060601ff0202000101000002010167000081ffffffffffffffff01000000000000000100000000000000010068e5cf8b010000010205616c696365560cf439a2010000560cf439a2010000010000000000000001000000000000000103626f625a0cf439a2010000ffffffffffffffff0050006992a269c6c83d8a");
        assert_eq!(dump[0], TYPE_STREAM_LISTPACKS_3);
        let body = &dump[1..dump.len() - 10];
        let s = read(&mut Reader::new(body), TYPE_STREAM_LISTPACKS_3).unwrap();
        assert_eq!(s.len(), 2);
        let ids: Vec<_> = s.range(StreamId::MIN, StreamId::MAX, false).map(|e| e.id.to_string()).collect();
        assert_eq!(ids, ["1-1", "2-0"]);
        let g = &s.groups[&b"g"[..]];
        assert_eq!(g.entries_read, INVALID_ENTRIES_READ);
        assert_eq!(g.pel[&StreamId::new(1, 1)].delivery_time, 1_700_000_000_000);
        assert_eq!(g.consumers[&b"alice"[..]].active_time, g.consumers[&b"alice"[..]].seen_time);
        assert_eq!(g.consumers[&b"bob"[..]].active_time, -1);
        assert!(g.consumers[&b"bob"[..]].pel.is_empty());
        // Every truncation is refused.
        for n in 0..body.len() {
            assert!(read(&mut Reader::new(&body[..n]), TYPE_STREAM_LISTPACKS_3).is_err(), "{n}");
        }
    }

    #[test]
    fn round_trip_with_groups() {
        let mut s = StreamValue::new();
        for i in 1..=250u64 {
            let v = i.to_string();
            let id = Some(crate::types::stream::id::ParsedId { id: StreamId::new(i, 0), seq_given: true });
            s.add(&[b"field", v.as_bytes()], id, 0, NodeLimits::default()).unwrap();
        }
        s.delete(&[StreamId::new(3, 0)]);
        let mut g = ConsumerGroup::new(StreamId::new(10, 0), 10);
        g.create_consumer(b"alice", 1234);
        g.create_consumer(b"7", 99);
        let alice = Bytes::from_static(b"alice");
        for i in 4..8 {
            g.deliver(StreamId::new(i, 0), &alice, 5000 + i as i64);
        }
        s.groups.insert(Bytes::from_static(b"g1"), g);
        s.groups.insert(Bytes::from_static(b"g0"), ConsumerGroup::new(StreamId::MIN, -1));
        let mut out = Vec::new();
        write(&mut out, &s, SaveOptions::default());
        let back = read(&mut Reader::new(&out), TYPE_STREAM_LISTPACKS_2).unwrap();
        assert_eq!(back.len(), s.len());
        // Type 19 keeps no active time: it comes back as the seen time (as in Redis 7.2).
        for g in s.groups.values_mut() {
            for c in g.consumers.values_mut() {
                c.active_time = c.seen_time;
            }
        }
        assert_eq!(back.groups, s.groups);
        assert_eq!(back.first_id, s.first_id);
        assert_eq!(back.max_deleted_entry_id, StreamId::new(3, 0));
        let a: Vec<_> = back.nodes().map(|(k, v)| (*k, v.clone())).collect();
        let b: Vec<_> = s.nodes().map(|(k, v)| (*k, v.clone())).collect();
        assert_eq!(a, b);
        // Every truncation is refused.
        for n in 0..out.len() {
            assert!(read(&mut Reader::new(&out[..n]), TYPE_STREAM_LISTPACKS_2).is_err(), "{n}");
        }
    }

    #[test]
    fn type_26_loads_as_type_21_without_its_idmp_state() {
        let mut s = StreamValue::new();
        for i in 1..=3u64 {
            let id = Some(crate::types::stream::id::ParsedId { id: StreamId::new(i, 0), seq_given: true });
            s.add(&[b"f", b"v"], id, 0, NodeLimits::default()).unwrap();
        }
        let mut g = ConsumerGroup::new(StreamId::new(2, 0), 2);
        g.create_consumer(b"c", 1000);
        g.deliver(StreamId::new(1, 0), &Bytes::from_static(b"c"), 1500);
        s.groups.insert(Bytes::from_static(b"g"), g);
        let opts = SaveOptions { version: 12, ..SaveOptions::default() };
        let mut body = Vec::new();
        write(&mut body, &s, opts);
        let v21 = read(&mut Reader::new(&body), TYPE_STREAM_LISTPACKS_3).unwrap();
        let long = b"p".repeat(100);
        let one: &[(&[u8], StreamId)] = &[(b"iid-1", StreamId::new(1, 0))];
        let two: &[(&[u8], StreamId)] = &[(b"a", StreamId::new(2, 0)), (b"", StreamId::new(3, 0))];
        let cases: [&[IdmpProducer]; 4] =
            [&[], &[(b"producer1", one)], &[(b"p1", one), (b"p2", two), (&long, &[]), (b"12345", two)], &[(b"", &[])]];
        for producers in cases {
            let mut v26 = body.clone();
            write_idmp(&mut v26, producers);
            let mut r = Reader::new(&v26);
            let back = read(&mut r, TYPE_STREAM_LISTPACKS_4).unwrap();
            assert_eq!(r.remaining(), 0, "the IDMP state is read to its end");
            assert_eq!(back.groups, v21.groups);
            assert_eq!((back.len(), back.last_id, back.entries_added), (v21.len(), v21.last_id, v21.entries_added));
            let a: Vec<_> = back.nodes().map(|(k, v)| (*k, v.clone())).collect();
            let b: Vec<_> = v21.nodes().map(|(k, v)| (*k, v.clone())).collect();
            assert_eq!(a, b);
            // Every truncation is refused, the IDMP state's included.
            for n in 0..v26.len() {
                assert!(read(&mut Reader::new(&v26[..n]), TYPE_STREAM_LISTPACKS_4).is_err(), "{n}");
            }
        }
        // A producer count the bytes left cannot hold is refused.
        let mut lying = body.clone();
        lying.extend_from_slice(&[1, 1, 0x80, 0x10, 0, 0, 0, 1, b'p', 0, 0, 0]);
        assert!(read(&mut Reader::new(&lying), TYPE_STREAM_LISTPACKS_4).is_err());
    }

    #[test]
    fn rdb_11_keeps_the_active_time() {
        let mut s = StreamValue::new();
        let id = Some(crate::types::stream::id::ParsedId { id: StreamId::new(1, 0), seq_given: true });
        s.add(&[b"f", b"v"], id, 0, NodeLimits::default()).unwrap();
        let mut g = ConsumerGroup::new(StreamId::new(1, 0), 1);
        g.create_consumer(b"idle", 1000);
        g.create_consumer(b"busy", 2000);
        let busy = Bytes::from_static(b"busy");
        g.deliver(StreamId::new(1, 0), &busy, 2500);
        g.consumers.get_mut(&b"busy"[..]).unwrap().active_time = 2500;
        s.groups.insert(Bytes::from_static(b"g"), g);
        let opts = SaveOptions { version: 11, ..SaveOptions::default() };
        assert_eq!(crate::persistence::rdb::value_type(&crate::types::Value::Stream(Box::new(s.clone())), 11), 21);
        let mut out = Vec::new();
        write(&mut out, &s, opts);
        let back = read(&mut Reader::new(&out), TYPE_STREAM_LISTPACKS_3).unwrap();
        assert_eq!(back.groups, s.groups);
        assert_eq!(back.groups[&b"g"[..]].consumers[&b"idle"[..]].active_time, -1);
    }
}
