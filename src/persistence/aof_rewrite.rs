//! A base AOF without RDB preamble (`aof-use-rdb-preamble no`): the dataset written as the
//! commands that rebuild it, as Redis's rewriteAppendOnlyFileRio does — FUNCTION LOAD per library, SELECT per database,
//! SET for strings, RPUSH / SADD / ZADD / HMSET in batches of 64 elements, PEXPIREAT for keys
//! with an expiry.

use super::rdb_load::Loaded;
use crate::protocol::encode_command;
use crate::types::Value;

/// Elements per command (Redis's AOF_REWRITE_ITEMS_PER_CMD).
const ITEMS_PER_CMD: usize = 64;

/// Emit `cmd key` followed by the items, in batches.
fn batched(out: &mut Vec<u8>, cmd: &[u8], key: &[u8], items: Vec<Vec<u8>>, per_item: usize) {
    for chunk in items.chunks(ITEMS_PER_CMD * per_item) {
        let mut argv: Vec<&[u8]> = vec![cmd, key];
        argv.extend(chunk.iter().map(Vec::as_slice));
        encode_command(out, &argv);
    }
}

/// The commands rebuilding `loaded` (keys grouped by database, in the image's order).
pub fn commands(loaded: &Loaded) -> Vec<u8> {
    let mut out = Vec::new();
    // The function libraries first, as FUNCTION LOAD (Redis's rewriteFunctions).
    for code in &loaded.functions {
        encode_command(&mut out, &[b"FUNCTION".as_slice(), b"LOAD", code]);
    }
    let mut keys: Vec<_> = loaded.keys.iter().collect();
    keys.sort_by_key(|k| k.db);
    let mut selected = None;
    for k in keys {
        if selected != Some(k.db) {
            encode_command(&mut out, &[b"SELECT".as_slice(), itoa::Buffer::new().format(k.db).as_bytes()]);
            selected = Some(k.db);
        }
        let key = &k.key[..];
        match &k.value {
            Value::Str(s) => encode_command(&mut out, &[b"SET".as_slice(), key, &s.to_bytes()]),
            Value::List(l) => batched(&mut out, b"RPUSH", key, l.iter().map(<[u8]>::to_vec).collect(), 1),
            Value::Set(s) => batched(&mut out, b"SADD", key, s.members(), 1),
            // A hash with field TTLs: one HMSET per field, each followed by the field's
            // HPEXPIREAT (Redis 7.4's rewriteHashObject).
            Value::Hash(h) if h.has_ttls() => h.for_each_with_ttl(|f, v, t| {
                encode_command(&mut out, &[b"HMSET".as_slice(), key, f, v]);
                if let Some(t) = t {
                    let t = itoa::Buffer::new().format(t).as_bytes().to_vec();
                    encode_command(&mut out, &[b"HPEXPIREAT".as_slice(), key, &t, b"FIELDS", b"1", f]);
                }
            }),
            Value::Hash(h) => {
                let items = h.pairs().into_iter().flat_map(|(f, v)| [f, v]).collect();
                batched(&mut out, b"HMSET", key, items, 2);
            }
            Value::ZSet(z) => {
                let mut items = Vec::with_capacity(z.len() * 2);
                z.for_each(|m, s| {
                    let mut score = Vec::new();
                    // Redis 7.2's rioWriteBulkDouble: fpconv_dtoa.
                    crate::util::dtoa::fpconv_dtoa(s, &mut score);
                    items.push(score);
                    items.push(m.to_vec());
                });
                batched(&mut out, b"ZADD", key, items, 2);
            }
            Value::Stream(st) => rewrite_stream(&mut out, key, st),
        }
        if let Some(when) = k.expire {
            encode_command(&mut out, &[b"PEXPIREAT".as_slice(), key, itoa::Buffer::new().format(when).as_bytes()]);
        }
    }
    out
}

/// A stream as Redis's rewriteStreamObject writes it: XADD per entry (or `XADD key MAXLEN 0
/// 0-1 x y` for an empty stream), XSETID with the last ID, entries added and maximal deleted
/// ID, then per group XGROUP CREATE ... ENTRIESREAD, and per consumer XCLAIM ... TIME
/// RETRYCOUNT JUSTID FORCE for each pending entry (XGROUP CREATECONSUMER when it has none).
fn rewrite_stream(out: &mut Vec<u8>, key: &[u8], st: &crate::types::StreamValue) {
    use crate::types::stream::StreamId;
    let num = |n: i64| itoa::Buffer::new().format(n).as_bytes().to_vec();
    if st.is_empty() {
        encode_command(out, &[b"XADD".as_slice(), key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]);
    } else {
        for e in st.range(StreamId::MIN, StreamId::MAX, false) {
            let id = e.id.to_bytes();
            let mut items: Vec<Vec<u8>> = Vec::with_capacity(e.nfields * 2);
            for (f, v) in e.fields() {
                items.push(f.to_vec());
                items.push(v.to_vec());
            }
            let mut argv: Vec<&[u8]> = vec![b"XADD", key, &id];
            argv.extend(items.iter().map(Vec::as_slice));
            encode_command(out, &argv);
        }
    }
    let last = st.last_id.to_bytes();
    let added = num(st.entries_added as i64);
    let maxdel = st.max_deleted_entry_id.to_bytes();
    encode_command(out, &[b"XSETID".as_slice(), key, &last, b"ENTRIESADDED", &added, b"MAXDELETEDID", &maxdel]);
    for (name, g) in &st.groups {
        let last = g.last_id.to_bytes();
        let read = num(g.entries_read);
        encode_command(out, &[b"XGROUP".as_slice(), b"CREATE", key, name, &last, b"ENTRIESREAD", &read]);
        for (cname, c) in &g.consumers {
            if c.pel.is_empty() {
                encode_command(out, &[b"XGROUP".as_slice(), b"CREATECONSUMER", key, name, cname]);
                continue;
            }
            for id in &c.pel {
                let Some(nack) = g.pel.get(id) else { continue };
                let (id, time, count) = (id.to_bytes(), num(nack.delivery_time), num(nack.delivery_count as i64));
                encode_command(
                    out,
                    &[
                        b"XCLAIM".as_slice(),
                        key,
                        name,
                        cname,
                        b"0",
                        &id,
                        b"TIME",
                        &time,
                        b"RETRYCOUNT",
                        &count,
                        b"JUSTID",
                        b"FORCE",
                    ],
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::aof::{parse_commands, Ending};
    use crate::persistence::rdb_load::LoadedKey;
    use crate::types::{ListValue, SmallBytes, StrValue};

    #[test]
    fn lists_are_batched_and_expiry_follows() {
        let mut l = ListValue::default();
        for i in 0..100 {
            l.push_back(format!("e{i}").as_bytes());
        }
        let loaded = Loaded {
            keys: vec![
                LoadedKey {
                    db: 2,
                    key: SmallBytes::new(b"l"),
                    value: Value::List(l),
                    expire: None,
                    idle: None,
                    freq: None,
                },
                LoadedKey {
                    db: 0,
                    key: SmallBytes::new(b"s"),
                    value: Value::Str(StrValue::from_bytes(b"v")),
                    expire: Some(5),
                    idle: None,
                    freq: None,
                },
            ],
            ..Loaded::default()
        };
        let out = commands(&loaded);
        let c = parse_commands(&out, 0);
        assert_eq!(c.ending, Ending::Clean);
        let names: Vec<_> = c.commands.iter().map(|a| String::from_utf8_lossy(&a[0]).into_owned()).collect();
        assert_eq!(names, ["SELECT", "SET", "PEXPIREAT", "SELECT", "RPUSH", "RPUSH"]);
        assert_eq!(c.commands[4].len(), 2 + 64);
    }
}
