//! XREAD and XREADGROUP (Redis's xreadCommand): synchronous reads, consumer-group delivery
//! (pending entries, read counters, propagation as XCLAIM / XGROUP SETID / XGROUP
//! CREATECONSUMER), history reads from a consumer's PEL, and blocking.
//!
//! Blocking uses the shared machinery (`server/blocking.rs`): a read that finds nothing returns
//! `Action::Block` on its keys, marked `wake_all` (a key made ready — see `keyspace::ready` —
//! wakes every stream reader of the key, in the order they blocked, since all of them may be
//! served) with `$` replaced by the
//! resolved ID, and is re-run on a wake-up. Readers on one worker thread re-run in that order
//! (so consumers of a group are served first come, first served, as in Redis); readers on
//! different workers run concurrently and race for a group's new entries (each entry is still
//! delivered once). A re-run (`client.block_retry`) is the command run again, as Redis 7.2
//! re-executes a blocked client's command: it serves, fails or blocks again exactly as a fresh
//! call would — so a blocked XREADGROUP whose key was deleted, replaced or lost its group fails
//! with `-NOGROUP` or `-WRONGTYPE`. A woken XREAD re-runs only when a key that woke it is a
//! stream (Redis re-runs an XREAD only for a ready key that is a stream); it then fails with
//! WRONGTYPE if another of its keys is not.

use bytes::Bytes;

use super::args::{self, is};
use super::streams::{self, c_str, id_arg, parse_strict_id, reply_entry, reply_id};
use super::{errors, Action, CmdError, CmdResult, Ctx};
use crate::protocol::ReplySink;
use crate::session::blocking::BlockSpec;
use crate::types::stream::{StreamId, StreamValue};

struct ReadArgs {
    /// BLOCK milliseconds (0: forever); None without BLOCK.
    block: Option<i64>,
    count: usize,
    streams_at: usize,
    nstreams: usize,
    group: Option<(Bytes, Bytes)>,
    noack: bool,
}

fn parse_args(ctx: &Ctx, readgroup: bool) -> Result<ReadArgs, CmdError> {
    let a = ctx.args;
    let mut r = ReadArgs { block: None, count: 0, streams_at: 0, nstreams: 0, group: None, noack: false };
    let mut i = 1;
    while i < a.len() {
        let more = a.len() - i - 1;
        let o = &a[i][..];
        if is(o, "block") && more > 0 {
            if ctx.client.script {
                return Err(CmdError::new(format!(
                    "{} command is not allowed with BLOCK option from scripts",
                    c_str(&a[0])
                )));
            }
            i += 1;
            let ms = args::int_or(&a[i], "timeout is not an integer or out of range")?;
            if ms < 0 {
                return Err(CmdError::new("timeout is negative"));
            }
            r.block = Some(ms);
        } else if is(o, "count") && more > 0 {
            i += 1;
            r.count = args::int(&a[i])?.max(0) as usize;
        } else if is(o, "streams") && more > 0 {
            r.streams_at = i + 1;
            let n = a.len() - r.streams_at;
            if !n.is_multiple_of(2) {
                let (name, symbol) = if readgroup { ("xreadgroup", '>') } else { ("xread", '$') };
                return Err(CmdError::new(format!(
                    "Unbalanced '{name}' list of streams: for each stream key an ID or '{symbol}' must be specified."
                )));
            }
            r.nstreams = n / 2;
            break;
        } else if is(o, "group") && more >= 2 {
            if !readgroup {
                return Err(CmdError::new(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.group = Some((a[i + 1].clone(), a[i + 2].clone()));
            i += 2;
        } else if is(o, "noack") {
            if !readgroup {
                return Err(CmdError::new(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.noack = true;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
        i += 1;
    }
    if r.streams_at == 0 {
        return Err(CmdError::new(errors::SYNTAX));
    }
    if readgroup && r.group.is_none() {
        return Err(CmdError::new("Missing GROUP option for XREADGROUP"));
    }
    Ok(r)
}

/// The ID a key was asked from: entries greater than it are served. `New` is XREADGROUP's `>`.
#[derive(Clone, Copy)]
enum From {
    Id(StreamId),
    New,
}

pub fn xread(ctx: &mut Ctx) -> CmdResult {
    read(ctx, false)
}

pub fn xreadgroup(ctx: &mut Ctx) -> CmdResult {
    read(ctx, true)
}

fn read(ctx: &mut Ctx, readgroup: bool) -> CmdResult {
    let r = parse_args(ctx, readgroup)?;
    let a = ctx.args;
    let retry = ctx.client.block_retry;
    let keys = &a[r.streams_at..r.streams_at + r.nstreams];
    let id_args = &a[r.streams_at + r.nstreams..];
    if retry && !readgroup && !super::blocking::woken_for(ctx, keys, |v| matches!(v, crate::types::Value::Stream(_))) {
        return block(ctx, &r, &[], false);
    }
    // Resolve the IDs (and check keys and groups) before serving anything.
    let mut from = Vec::with_capacity(r.nstreams);
    for (key, id_arg) in keys.iter().zip(id_args) {
        let s = ctx.db.read::<StreamValue>(key)?;
        if let Some((group, _)) = &r.group {
            match s {
                Some(s) if s.groups.contains_key(&group[..]) => {}
                _ => {
                    return Err(CmdError::new(format!(
                        "-NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                        c_str(key),
                        c_str(group)
                    )))
                }
            }
        }
        if &id_arg[..] == b"$" {
            if readgroup {
                return Err(CmdError::new("The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."));
            }
            from.push(From::Id(s.map_or(StreamId::MIN, |s| s.last_id)));
        } else if &id_arg[..] == b">" {
            if !readgroup {
                return Err(CmdError::new(
                    "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                ));
            }
            from.push(From::New);
        } else {
            from.push(From::Id(parse_strict_id(id_arg)?));
        }
    }
    let count = r.count;
    // Serve what can be served, each key's reply into its own buffer (the number of keys
    // served is only known at the end).
    let mut served: Vec<Vec<u8>> = Vec::new();
    // The same key named many times is read as many times: once the replies held here pass
    // the client's output limit (`ReplySink::limit`) the reply is never sent, so the reading
    // stops (what is held is still written, which takes the sink past its limit).
    let room = match ctx.reply.limit {
        0 => usize::MAX,
        limit => limit.saturating_sub(ctx.reply.len()),
    };
    let mut held = 0usize;
    for (i, key) in keys.iter().enumerate() {
        if held > room {
            break;
        }
        let mut out = ReplySink::new(ctx.reply.proto);
        let done = match &r.group {
            None => serve_read(ctx, key, from[i], count, &mut out)?,
            Some((group, consumer)) => {
                let opts = GroupRead { group, consumer, noack: r.noack, count };
                serve_group(ctx, key, from[i], &opts, &mut out)?
            }
        };
        if done {
            held += out.buf.len();
            served.push(out.buf.to_vec());
        }
    }
    // XREADGROUP propagates its effects itself (or nothing: a history read, a consumer
    // created without NOACK), never the command (Redis's preventCommandPropagation).
    ctx.db.suppress_command_effect();
    if !served.is_empty() {
        if ctx.reply.is_resp3() {
            ctx.reply.map(served.len());
        } else {
            ctx.reply.array(served.len());
        }
        for s in &served {
            ctx.reply.raw(s);
        }
        return Ok(());
    }
    if r.block.is_some() {
        return block(ctx, &r, &from, true);
    }
    ctx.reply.null_array();
    Ok(())
}

/// Wait on the keys (the connection answers a null array on timeout); `$` IDs are replaced by
/// the IDs they resolved to, so the re-run waits for entries after them.
fn block(ctx: &mut Ctx, r: &ReadArgs, from: &[From], resolved: bool) -> CmdResult {
    let a = ctx.args;
    let mut argv = a.to_vec();
    if resolved {
        for (i, f) in from.iter().enumerate() {
            let pos = r.streams_at + r.nstreams + i;
            if let (From::Id(id), true) = (f, &a[pos][..] == b"$") {
                argv[pos] = id_arg(*id);
            }
        }
    }
    let ms = r.block.unwrap_or(0);
    let deadline =
        if ms > 0 { std::time::Instant::now().checked_add(std::time::Duration::from_millis(ms as u64)) } else { None };
    let db = ctx.client.db;
    let keys = &a[r.streams_at..r.streams_at + r.nstreams];
    ctx.action = Action::Block(Box::new(BlockSpec {
        keys: keys.iter().map(|k| (db, k.clone())).collect(),
        deadline,
        timeout_null_array: true,
        rerun_args: Some(argv),
        wake_all: true,
        unblock_on_nokey: r.group.is_some(),
        kind: crate::keyspace::ready::WaitKind::Stream,
        epoch: ctx.server.blocking.epoch(),
    }));
    Ok(())
}

/// Write `[key, entries]` (RESP2) or `key => entries` (RESP3 map member) for one stream.
fn key_header(out: &mut ReplySink, key: &[u8]) {
    if !out.is_resp3() {
        out.array(2);
    }
    out.bulk(key);
}

/// XREAD on one key: serve entries after `from` if there are any.
fn serve_read(ctx: &mut Ctx, key: &Bytes, from: From, count: usize, out: &mut ReplySink) -> Result<bool, CmdError> {
    let From::Id(gt) = from else { return Ok(false) };
    let Some(s) = ctx.db.read::<StreamValue>(key)? else { return Ok(false) };
    // Served only when a live entry is newer (never with an empty array).
    if s.is_empty() || s.last_valid_id() <= gt {
        return Ok(false);
    }
    let Some(start) = gt.incr() else { return Ok(false) };
    key_header(out, key);
    let limit = if count == 0 { usize::MAX } else { count };
    let entries: Vec<_> = s.range(start, StreamId::MAX, false).take(limit).collect();
    streams::reply_entries(out, &entries);
    Ok(true)
}

struct GroupRead<'a> {
    group: &'a Bytes,
    consumer: &'a Bytes,
    noack: bool,
    count: usize,
}

fn stream_mut<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Option<&'a mut StreamValue> {
    ctx.db.write::<StreamValue>(key).ok().flatten()
}

/// XREADGROUP on one key: new entries (`>`) or the consumer's history. As in Redis 7.2, the
/// consumer is looked up (seen now) or created whether or not anything is served — a client
/// that blocks is a consumer of the group from then on.
fn serve_group(ctx: &mut Ctx, key: &Bytes, from: From, o: &GroupRead, out: &mut ReplySink) -> Result<bool, CmdError> {
    let now = ctx.db.now_ms;
    let Some(s) = stream_mut(ctx, key) else { return Ok(false) };
    let Some(g) = s.groups.get_mut(&o.group[..]) else { return Ok(false) };
    let created = g.create_consumer(o.consumer, now);
    if let Some(c) = g.consumers.get_mut(&o.consumer[..]) {
        c.seen_time = now;
    }
    let group_last = g.last_id;
    let (start, history) = match from {
        From::Id(id) => (id.incr(), true),
        // New entries are served only when a live one is past the group's last ID.
        From::New if !s.is_empty() && s.last_valid_id() > group_last => (group_last.incr(), false),
        From::New => (None, false),
    };
    if created {
        ctx.db.event_only(crate::keyspace::notify::STREAM, "xgroup-createconsumer", key);
        ctx.db.touch_dirty(1);
        if o.noack {
            ctx.db.propagate_effect(vec![
                Bytes::from_static(b"XGROUP"),
                Bytes::from_static(b"CREATECONSUMER"),
                key.clone(),
                o.group.clone(),
                o.consumer.clone(),
            ]);
        }
    }
    let Some(start) = start else { return Ok(false) };
    key_header(out, key);
    if history {
        serve_history(ctx, key, start, o, out);
    } else {
        serve_new(ctx, key, start, o, out);
    }
    Ok(true)
}

/// Entries from the consumer's own PEL (Redis's streamReplyWithRangeFromConsumerPEL): each
/// one delivered again (its count and time updated), a deleted one as `[id, nil]`.
fn serve_history(ctx: &mut Ctx, key: &Bytes, start: StreamId, o: &GroupRead, out: &mut ReplySink) {
    let now = ctx.db.now_ms;
    let Some(s) = stream_mut(ctx, key) else { return };
    let Some(g) = s.groups.get(&o.group[..]) else { return };
    let limit = if o.count == 0 { usize::MAX } else { o.count };
    let ids: Vec<StreamId> = g
        .consumers
        .get(&o.consumer[..])
        .map(|c| c.pel.range(start..).take(limit).copied().collect())
        .unwrap_or_default();
    out.array(ids.len());
    let mut found = Vec::with_capacity(ids.len());
    for &id in &ids {
        match s.get(id) {
            Some(e) => {
                reply_entry(out, &e);
                found.push(id);
            }
            None => {
                out.array(2);
                reply_id(out, id);
                out.null_array();
            }
        }
    }
    if let Some(g) = s.groups.get_mut(&o.group[..]) {
        for id in found {
            if let Some(n) = g.pel.get_mut(&id) {
                n.delivery_time = now;
                n.delivery_count += 1;
            }
        }
    }
}

/// New entries after the group's last ID (Redis's streamReplyWithRange with a group): the
/// group's last ID and read counter advance, each entry becomes pending for the consumer
/// (unless NOACK) and is propagated as `XCLAIM ... FORCE JUSTID LASTID`; with NOACK the new
/// last ID is propagated as `XGROUP SETID ... ENTRIESREAD`.
fn serve_new(ctx: &mut Ctx, key: &Bytes, start: StreamId, o: &GroupRead, out: &mut ReplySink) {
    let now = ctx.db.now_ms;
    let propagating = ctx.db.propagating();
    let Some(s) = stream_mut(ctx, key) else { return };
    let limit = if o.count == 0 { usize::MAX } else { o.count };
    let ids: Vec<StreamId> = {
        let entries: Vec<_> = s.range(start, StreamId::MAX, false).take(limit).collect();
        streams::reply_entries(out, &entries);
        entries.iter().map(|e| e.id).collect()
    };
    let mut effects: Vec<Vec<Bytes>> = Vec::new();
    let mut last_moved = false;
    for &id in &ids {
        let last = s.groups.get(&o.group[..]).map_or(StreamId::MAX, |g| g.last_id);
        if id > last {
            s.advance_group(o.group, id);
            last_moved = true;
        }
        if o.noack {
            continue;
        }
        let Some(g) = s.groups.get_mut(&o.group[..]) else { continue };
        g.deliver(id, o.consumer, now);
        if let Some(c) = g.consumers.get_mut(&o.consumer[..]) {
            c.active_time = now;
        }
        if propagating {
            let n = &g.pel[&id];
            effects.push(xclaim_effect(key, o.group, id, n, g.last_id));
        }
    }
    if o.noack && last_moved && propagating {
        if let Some(g) = s.groups.get(&o.group[..]) {
            effects.push(vec![
                Bytes::from_static(b"XGROUP"),
                Bytes::from_static(b"SETID"),
                key.clone(),
                o.group.clone(),
                id_arg(g.last_id),
                Bytes::from_static(b"ENTRIESREAD"),
                Bytes::from(g.entries_read.to_string()),
            ]);
        }
    }
    if (o.noack && last_moved) || (!o.noack && !ids.is_empty()) {
        ctx.db.touch_dirty(1);
    }
    for e in effects {
        ctx.db.propagate_effect(e);
    }
}

/// `XCLAIM key group consumer 0 id TIME ms RETRYCOUNT n FORCE JUSTID LASTID last`, the
/// idempotent form pending entries are propagated in (Redis's streamPropagateXCLAIM).
pub fn xclaim_effect(
    key: &Bytes,
    group: &Bytes,
    id: StreamId,
    n: &crate::types::stream::Nack,
    last: StreamId,
) -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"XCLAIM"),
        key.clone(),
        group.clone(),
        n.consumer.clone(),
        Bytes::from_static(b"0"),
        id_arg(id),
        Bytes::from_static(b"TIME"),
        Bytes::from(n.delivery_time.to_string()),
        Bytes::from_static(b"RETRYCOUNT"),
        Bytes::from(n.delivery_count.to_string()),
        Bytes::from_static(b"FORCE"),
        Bytes::from_static(b"JUSTID"),
        Bytes::from_static(b"LASTID"),
        id_arg(last),
    ]
}
