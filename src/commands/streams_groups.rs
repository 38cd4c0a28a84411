//! Consumer-group commands (Redis's t_stream.c): XGROUP CREATE / SETID / DESTROY /
//! CREATECONSUMER / DELCONSUMER / HELP, XACK, XPENDING, XCLAIM and XAUTOCLAIM.
//!
//! Consumers are created as Redis 7.0 creates them (XREADGROUP when it serves, XCLAIM and
//! XAUTOCLAIM when they claim something, XGROUP CREATECONSUMER); their seen-time and
//! active-time follow Redis 7.2 (seen: every read or claim attempt; active: every delivery or
//! claim). XCLAIM and XAUTOCLAIM propagate each change as the idempotent XCLAIM form.

use bytes::Bytes;

use super::args::{self, is};
use super::streams::{self, c_str, id_arg, parse_id, parse_range_end, parse_range_start, parse_strict_id, reply_id};
use super::streams_read::xclaim_effect;
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::notify;
use crate::types::stream::{ConsumerGroup, Nack, StreamId, StreamValue, INVALID_ENTRIES_READ};
use crate::types::Value;

pub static XGROUP_SUBS: &[CommandSpec] = &[
    CommandSpec::new("create", xgroup),
    CommandSpec::new("setid", xgroup),
    CommandSpec::new("destroy", xgroup),
    CommandSpec::new("createconsumer", xgroup),
    CommandSpec::new("delconsumer", xgroup),
    CommandSpec::new("help", xgroup_help),
];

fn xgroup_help(ctx: &mut Ctx) -> CmdResult {
    super::server::reply_help(
        ctx,
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    );
    Ok(())
}

fn nogroup(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::new(format!("-NOGROUP No such key '{}' or consumer group '{}'", c_str(key), c_str(group)))
}

/// XGROUP's subcommands (one function, as Redis's xgroupCommand: the checks are shared).
fn xgroup(ctx: &mut Ctx) -> CmdResult {
    let a = ctx.args;
    let sub = &a[1];
    let (create, setid) = (is(sub, "create"), is(sub, "setid"));
    let mut mkstream = false;
    let mut entries_read = INVALID_ENTRIES_READ;
    let mut i = 5;
    while i < a.len() {
        if create && is(&a[i], "mkstream") {
            mkstream = true;
            i += 1;
        } else if (create || setid) && is(&a[i], "entriesread") && i + 1 < a.len() {
            entries_read = args::int(&a[i + 1])?;
            if entries_read < 0 && entries_read != INVALID_ENTRIES_READ {
                return Err(CmdError::new("value for ENTRIESREAD must be positive or -1"));
            }
            i += 2;
        } else {
            return super::server::container_help(ctx);
        }
    }
    let (key, group) = (&a[2], &a[3]);
    let exists = ctx.db.write::<StreamValue>(key)?.is_some();
    if !mkstream {
        let Some(s) = ctx.db.write::<StreamValue>(key)? else {
            return Err(CmdError::new("The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."));
        };
        if !s.groups.contains_key(&group[..]) && !create && !is(sub, "destroy") {
            return Err(CmdError::new(format!(
                "-NOGROUP No such consumer group '{}' for key name '{}'",
                c_str(group),
                c_str(key)
            )));
        }
    }
    let now = ctx.db.now_ms;
    if create && a.len() <= 8 {
        let last = ctx.db.write::<StreamValue>(key)?.map(|s| s.last_id);
        let id = if &a[4][..] == b"$" { last.unwrap_or(StreamId::MIN) } else { parse_strict_id(&a[4])? };
        if !exists {
            ctx.db.get_or_insert_with(key, || Value::Stream(Box::default()));
            // MKSTREAM's new key is a modification; the group itself is not (Redis).
            ctx.db.signal_modified(key);
        }
        let s = ctx.db.write::<StreamValue>(key)?.expect("created above");
        if s.groups.contains_key(&group[..]) {
            return Err(CmdError::new("-BUSYGROUP Consumer Group name already exists"));
        }
        s.groups.insert(group.clone(), ConsumerGroup::new(id, entries_read));
        ctx.reply.ok();
        ctx.db.touch_dirty(1);
        ctx.db.event_only(notify::STREAM, "xgroup-create", key);
    } else if setid && (a.len() == 5 || a.len() == 7) {
        let s = ctx.db.write::<StreamValue>(key)?.expect("checked above");
        let id = if &a[4][..] == b"$" { s.last_id } else { parse_id(&a[4], 0)? };
        if let Some(g) = s.groups.get_mut(&group[..]) {
            g.last_id = id;
            g.entries_read = entries_read;
        }
        ctx.reply.ok();
        ctx.db.touch_dirty(1);
        ctx.db.event_only(notify::STREAM, "xgroup-setid", key);
    } else if is(sub, "destroy") && a.len() == 4 {
        let s = ctx.db.write::<StreamValue>(key)?.expect("checked above");
        if s.groups.remove(&group[..]).is_some() {
            ctx.reply.int(1);
            ctx.db.touch_dirty(1);
            ctx.db.event_only(notify::STREAM, "xgroup-destroy", key);
            // Its blocked readers fail with NOGROUP (Redis signals the stream as ready).
            ctx.db.signal_ready(key);
        } else {
            ctx.reply.int(0);
        }
    } else if is(sub, "createconsumer") && a.len() == 5 {
        let s = ctx.db.write::<StreamValue>(key)?.expect("checked above");
        let created = s.groups.get_mut(&group[..]).is_some_and(|g| g.create_consumer(&a[4], now));
        ctx.reply.int(created as i64);
        if created {
            ctx.db.touch_dirty(1);
            ctx.db.event_only(notify::STREAM, "xgroup-createconsumer", key);
        }
    } else if is(sub, "delconsumer") && a.len() == 5 {
        let s = ctx.db.write::<StreamValue>(key)?.expect("checked above");
        let pending = s.groups.get_mut(&group[..]).and_then(|g| g.delete_consumer(&a[4]));
        if pending.is_some() {
            ctx.db.touch_dirty(1);
            ctx.db.event_only(notify::STREAM, "xgroup-delconsumer", key);
        }
        ctx.reply.int(pending.unwrap_or(0) as i64);
    } else {
        return super::server::container_help(ctx);
    }
    Ok(())
}

pub fn xack(ctx: &mut Ctx) -> CmdResult {
    let a = ctx.args;
    let (key, group) = (&a[1], &a[2]);
    let has_group = ctx.db.read::<StreamValue>(key)?.is_some_and(|s| s.groups.contains_key(&group[..]));
    if !has_group {
        ctx.reply.int(0);
        return Ok(());
    }
    // All IDs are checked first: the reply cannot be an error once something was acknowledged.
    let ids = a[3..].iter().map(|x| parse_strict_id(x)).collect::<Result<Vec<_>, _>>()?;
    let s = ctx.db.write::<StreamValue>(key)?.expect("checked above");
    let g = s.groups.get_mut(&group[..]).expect("checked above");
    let acked = ids.iter().filter(|&&id| g.ack(id)).count();
    ctx.db.touch_dirty(acked as u64);
    ctx.reply.int(acked as i64);
    Ok(())
}

pub fn xpending(ctx: &mut Ctx) -> CmdResult {
    let a = ctx.args;
    let (key, group) = (&a[1], &a[2]);
    if a.len() != 3 && (a.len() < 6 || a.len() > 9) {
        return Err(CmdError::new(errors::SYNTAX));
    }
    let mut range = None;
    if a.len() >= 6 {
        let mut at = 3;
        let mut minidle = 0;
        if is(&a[3], "idle") {
            minidle = args::int(&a[4])?;
            if a.len() < 8 {
                return Err(CmdError::new(errors::SYNTAX));
            }
            at += 2;
        }
        let count = args::int(&a[at + 2])?.max(0);
        let start = parse_range_start(&a[at])?;
        let end = parse_range_end(&a[at + 1])?;
        let consumer = a.get(at + 3).cloned();
        range = Some((start, end, count, minidle, consumer));
    }
    let now = ctx.db.now_ms;
    let r = &mut *ctx.reply;
    let Some(s) = ctx.db.read::<StreamValue>(key)? else { return Err(nogroup(key, group)) };
    let Some(g) = s.groups.get(&group[..]) else { return Err(nogroup(key, group)) };
    let Some((start, end, mut count, minidle, consumer)) = range else {
        r.array(4);
        r.int(g.pel.len() as i64);
        if g.pel.is_empty() {
            r.null();
            r.null();
            r.null_array();
            return Ok(());
        }
        reply_id(r, *g.pel.keys().next().expect("not empty"));
        reply_id(r, *g.pel.keys().next_back().expect("not empty"));
        let owners: Vec<_> = g.consumers.iter().filter(|(_, c)| !c.pel.is_empty()).collect();
        r.array(owners.len());
        for (name, c) in owners {
            r.array(2);
            r.bulk(name);
            r.bulk_int(c.pel.len() as i64);
        }
        return Ok(());
    };
    let ids: Box<dyn Iterator<Item = StreamId>> = match &consumer {
        Some(name) => match g.consumers.get(&name[..]) {
            Some(c) => Box::new(c.pel.range(start..).copied()),
            None => {
                r.array(0);
                return Ok(());
            }
        },
        None => Box::new(g.pel.range(start..).map(|(id, _)| *id)),
    };
    let mut rows: Vec<(StreamId, &Nack)> = Vec::new();
    if count > 0 {
        for id in ids {
            if id > end {
                break;
            }
            let Some(n) = g.pel.get(&id) else { continue };
            if minidle != 0 && now - n.delivery_time < minidle {
                continue;
            }
            rows.push((id, n));
            count -= 1;
            if count == 0 {
                break;
            }
        }
    }
    r.array(rows.len());
    for (id, n) in rows {
        r.array(4);
        reply_id(r, id);
        r.bulk(&n.consumer);
        r.int((now - n.delivery_time).max(0));
        r.int(n.delivery_count as i64);
    }
    Ok(())
}

/// The group of a claim: checked before the arguments (XCLAIM) or after them (XAUTOCLAIM).
fn claim_group(ctx: &mut Ctx) -> Result<(), CmdError> {
    let a = ctx.args;
    let (key, group) = (&a[1], &a[2]);
    match ctx.db.read::<StreamValue>(key)? {
        Some(s) if s.groups.contains_key(&group[..]) => Ok(()),
        _ => Err(nogroup(key, group)),
    }
}

/// Look the claiming consumer up (seen now) or create it: as in Redis 7.2, XCLAIM and XAUTOCLAIM
/// make it a consumer of the group whether or not anything is claimed (7.0 created it lazily).
fn claimer(ctx: &mut Ctx, s_key: &Bytes) {
    let a = ctx.args;
    let (group, name) = (&a[2], &a[3]);
    let now = ctx.db.now_ms;
    let Some(s) = ctx.db.write::<StreamValue>(s_key).ok().flatten() else { return };
    let Some(g) = s.groups.get_mut(&group[..]) else { return };
    let created = g.create_consumer(name, now);
    if let Some(c) = g.consumers.get_mut(&name[..]) {
        c.seen_time = now;
    }
    if created {
        ctx.db.touch_dirty(1);
        ctx.db.event_only(notify::STREAM, "xgroup-createconsumer", s_key);
    }
}

fn group_mut<'a>(s: &'a mut StreamValue, group: &[u8]) -> &'a mut ConsumerGroup {
    s.groups.get_mut(group).expect("the group was checked")
}

pub fn xclaim(ctx: &mut Ctx) -> CmdResult {
    claim_group(ctx)?;
    let a = ctx.args;
    let (key, group, name) = (&a[1], &a[2], &a[3]);
    let minidle = args::int_or(&a[4], "Invalid min-idle-time argument for XCLAIM")?.max(0);
    let mut j = 5;
    let mut ids = Vec::new();
    while j < a.len() {
        match streams::strict_id(&a[j]) {
            Some(id) => ids.push((id, j)),
            None => break,
        }
        j += 1;
    }
    let now = ctx.db.now_ms;
    let (mut force, mut justid) = (false, false);
    let mut retrycount: i64 = -1;
    let mut deliverytime: i64 = -1;
    let mut last_id = StreamId::MIN;
    while j < a.len() {
        let more = a.len() - 1 - j;
        let opt = &a[j];
        if is(opt, "force") {
            force = true;
        } else if is(opt, "justid") {
            justid = true;
        } else if is(opt, "idle") && more > 0 {
            j += 1;
            // (Wrapping as Redis's C arithmetic does: a bogus time is made now below.)
            deliverytime = now.wrapping_sub(args::int_or(&a[j], "Invalid IDLE option argument for XCLAIM")?);
        } else if is(opt, "time") && more > 0 {
            j += 1;
            deliverytime = args::int_or(&a[j], "Invalid TIME option argument for XCLAIM")?;
        } else if is(opt, "retrycount") && more > 0 {
            j += 1;
            retrycount = args::int_or(&a[j], "Invalid RETRYCOUNT option argument for XCLAIM")?;
        } else if is(opt, "lastid") && more > 0 {
            j += 1;
            last_id = parse_strict_id(&a[j])?;
        } else {
            return Err(CmdError::new(format!("Unrecognized XCLAIM option '{}'", c_str(opt))));
        }
        j += 1;
    }
    ctx.db.suppress_command_effect();
    let s = ctx.db.write::<StreamValue>(key)?.expect("checked above");
    let mut propagate_last_id = false;
    let g = group_mut(s, group);
    if last_id > g.last_id {
        g.last_id = last_id;
        propagate_last_id = true;
    }
    if deliverytime == -1 || deliverytime < 0 || deliverytime > now {
        deliverytime = now;
    }
    claimer(ctx, key);
    let mut out = crate::protocol::ReplySink::new(ctx.reply.proto);
    let mut claimed = 0;
    let mut effects = Vec::new();
    for (id, pos) in ids {
        let s = ctx.db.write::<StreamValue>(key)?.expect("checked above");
        let existing = s.groups[&group[..]].pel.get(&id).cloned();
        if s.get(id).is_none() {
            // The entry is gone: its pending entry goes too.
            if let Some(n) = existing {
                let last = s.groups[&group[..]].last_id;
                let mut eff = xclaim_effect(key, group, id, &n, last);
                eff[5] = a[pos].clone();
                effects.push(eff);
                group_mut(s, group).ack(id);
                propagate_last_id = false;
                ctx.db.touch_dirty(1);
            }
            continue;
        }
        if existing.is_none() && !force {
            continue;
        }
        if let Some(n) = &existing {
            if minidle > 0 && now - n.delivery_time < minidle {
                continue;
            }
        }
        let s = ctx.db.write::<StreamValue>(key)?.expect("checked above");
        let g = group_mut(s, group);
        if existing.is_none() {
            g.pel.insert(id, Nack { delivery_time: now, delivery_count: 1, consumer: name.clone() });
        }
        let n = g.assign(id, name).expect("pending entry present");
        n.delivery_time = deliverytime;
        if retrycount >= 0 {
            n.delivery_count = retrycount as u64;
        } else if !justid {
            n.delivery_count += 1;
        }
        let n = n.clone();
        if let Some(c) = g.consumers.get_mut(&name[..]) {
            c.active_time = now;
        }
        let last = g.last_id;
        if justid {
            reply_id(&mut out, id);
        } else if let Some(e) = s.get(id) {
            streams::reply_entry(&mut out, &e);
        }
        claimed += 1;
        let mut eff = xclaim_effect(key, group, id, &n, last);
        eff[5] = a[pos].clone();
        effects.push(eff);
        propagate_last_id = false;
        ctx.db.touch_dirty(1);
    }
    if propagate_last_id {
        let s = ctx.db.write::<StreamValue>(key)?.expect("checked above");
        let g = &s.groups[&group[..]];
        effects.push(setid_effect(key, group, g));
        ctx.db.touch_dirty(1);
    }
    for e in effects {
        ctx.db.propagate_effect(e);
    }
    ctx.reply.array(claimed);
    ctx.reply.raw(&out.buf);
    Ok(())
}

/// `XGROUP SETID key group last ENTRIESREAD n` (Redis's streamPropagateGroupID).
fn setid_effect(key: &Bytes, group: &Bytes, g: &ConsumerGroup) -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"XGROUP"),
        Bytes::from_static(b"SETID"),
        key.clone(),
        group.clone(),
        id_arg(g.last_id),
        Bytes::from_static(b"ENTRIESREAD"),
        Bytes::from(g.entries_read.to_string()),
    ]
}

/// The largest XAUTOCLAIM COUNT whose transient array of deleted IDs (16 bytes per ID) fits in a
/// 47-bit address space; Redis's allocation of a larger one fails everywhere.
const XAUTOCLAIM_MAX_ALLOCATABLE_COUNT: i64 = (1 << 47) / 16 - 1;

pub fn xautoclaim(ctx: &mut Ctx) -> CmdResult {
    let a = ctx.args;
    let (key, group, name) = (&a[1], &a[2], &a[3]);
    let minidle = args::int_or(&a[4], "Invalid min-idle-time argument for XAUTOCLAIM")?.max(0);
    let start = parse_range_start(&a[5])?;
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < a.len() {
        let more = a.len() - 1 - j;
        if is(&a[j], "count") && more > 0 {
            let max = i64::MAX / 16;
            count = match crate::util::num::parse_i64(&a[j + 1]) {
                Some(n) if (1..=max).contains(&n) => n,
                _ => return Err(CmdError::new("COUNT must be > 0")),
            };
            j += 1;
        } else if is(&a[j], "justid") {
            justid = true;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
        j += 1;
    }
    claim_group(ctx)?;
    // Redis allocates COUNT stream IDs (16 bytes each) for the deleted IDs before claiming, and
    // fails when it cannot; an array past a 47-bit address space cannot exist on any host.
    if count > XAUTOCLAIM_MAX_ALLOCATABLE_COUNT {
        return Err(CmdError::new("Insufficient memory, failed allocating transient memory, COUNT too high."));
    }
    ctx.db.suppress_command_effect();
    let now = ctx.db.now_ms;
    claimer(ctx, key);
    let mut attempts = count.saturating_mul(10);
    let mut out = crate::protocol::ReplySink::new(ctx.reply.proto);
    let mut claimed = 0;
    let mut deleted = Vec::new();
    let mut effects = Vec::new();
    let mut cursor = start;
    let mut next: Option<StreamId>;
    loop {
        let s = ctx.db.write::<StreamValue>(key)?.expect("checked above");
        next = s.groups[&group[..]].pel.range(cursor..).next().map(|(id, _)| *id);
        if attempts == 0 || count == 0 {
            break;
        }
        attempts -= 1;
        let Some(id) = next else { break };
        cursor = match id.incr() {
            Some(c) => c,
            None => {
                // The very last possible ID: nothing can follow it.
                next = None;
                StreamId::MAX
            }
        };
        let n = s.groups[&group[..]].pel[&id].clone();
        if s.get(id).is_none() {
            effects.push(xclaim_effect(key, group, id, &n, s.groups[&group[..]].last_id));
            group_mut(s, group).ack(id);
            ctx.db.touch_dirty(1);
            deleted.push(id);
            count -= 1;
        } else if minidle == 0 || now - n.delivery_time >= minidle {
            let s = ctx.db.write::<StreamValue>(key)?.expect("checked above");
            let g = group_mut(s, group);
            let n = g.assign(id, name).expect("pending entry present");
            n.delivery_time = now;
            if !justid {
                n.delivery_count += 1;
            }
            let n = n.clone();
            if let Some(c) = g.consumers.get_mut(&name[..]) {
                c.active_time = now;
            }
            let last = g.last_id;
            if justid {
                reply_id(&mut out, id);
            } else if let Some(e) = s.get(id) {
                streams::reply_entry(&mut out, &e);
            }
            claimed += 1;
            count -= 1;
            effects.push(xclaim_effect(key, group, id, &n, last));
            ctx.db.touch_dirty(1);
        }
        if next.is_none() {
            break;
        }
    }
    for e in effects {
        ctx.db.propagate_effect(e);
    }
    let r = &mut *ctx.reply;
    r.array(3);
    reply_id(r, next.unwrap_or(StreamId::MIN));
    r.array(claimed);
    r.raw(&out.buf);
    r.array(deleted.len());
    for id in deleted {
        reply_id(r, id);
    }
    Ok(())
}
