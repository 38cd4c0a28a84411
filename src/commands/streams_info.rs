//! XINFO STREAM (plain and FULL), XINFO GROUPS, XINFO CONSUMERS, XINFO HELP (Redis's
//! xinfoCommand). Consumers report Redis 7.2's fields: `idle` (since seen), `inactive` (since
//! active, -1 never) and, in FULL, `seen-time` and `active-time`.

use super::args::{self, is};
use super::streams::{self, c_str, reply_entry, reply_id};
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::protocol::ReplySink;
use crate::types::stream::{ConsumerGroup, StreamId, StreamValue, INVALID_ENTRIES_READ};

pub static XINFO_SUBS: &[CommandSpec] = &[
    CommandSpec::new("stream", xinfo_stream),
    CommandSpec::new("groups", xinfo_groups),
    CommandSpec::new("consumers", xinfo_consumers),
    CommandSpec::new("help", xinfo_help),
];

fn xinfo_help(ctx: &mut Ctx) -> CmdResult {
    super::server::reply_help(
        ctx,
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    );
    Ok(())
}

fn stream<'a>(ctx: &'a mut Ctx) -> Result<&'a StreamValue, CmdError> {
    let key = &ctx.args[2];
    ctx.db.read::<StreamValue>(key)?.ok_or_else(|| CmdError::new(errors::NO_KEY))
}

/// The stream and the reply sink, borrowed together.
fn stream_and_reply<'a>(ctx: &'a mut Ctx) -> Result<(&'a StreamValue, &'a mut ReplySink), CmdError> {
    let key = &ctx.args[2];
    let s = ctx.db.read::<StreamValue>(key)?.ok_or_else(|| CmdError::new(errors::NO_KEY))?;
    Ok((s, &mut *ctx.reply))
}

fn entries_read(r: &mut ReplySink, g: &ConsumerGroup) {
    if g.entries_read != INVALID_ENTRIES_READ {
        r.int(g.entries_read);
    } else {
        r.null();
    }
}

fn lag(r: &mut ReplySink, s: &StreamValue, g: &ConsumerGroup) {
    match s.lag(g) {
        Some(n) => r.int(n),
        None => r.null(),
    }
}

fn xinfo_consumers(ctx: &mut Ctx) -> CmdResult {
    let now = ctx.db.now_ms;
    let (key, group) = (ctx.args[2].clone(), ctx.args[3].clone());
    let (s, r) = stream_and_reply(ctx)?;
    let Some(g) = s.groups.get(&group[..]) else {
        return Err(CmdError::new(format!(
            "-NOGROUP No such consumer group '{}' for key name '{}'",
            c_str(&group),
            c_str(&key)
        )));
    };
    r.array(g.consumers.len());
    for (name, c) in &g.consumers {
        r.map(4);
        r.bulk(b"name");
        r.bulk(name);
        r.bulk(b"pending");
        r.int(c.pel.len() as i64);
        r.bulk(b"idle");
        r.int((now - c.seen_time).max(0));
        r.bulk(b"inactive");
        r.int(if c.active_time != -1 { now - c.active_time } else { -1 });
    }
    Ok(())
}

fn xinfo_groups(ctx: &mut Ctx) -> CmdResult {
    let (s, r) = stream_and_reply(ctx)?;
    r.array(s.groups.len());
    for (name, g) in &s.groups {
        r.map(6);
        r.bulk(b"name");
        r.bulk(name);
        r.bulk(b"consumers");
        r.int(g.consumers.len() as i64);
        r.bulk(b"pending");
        r.int(g.pel.len() as i64);
        r.bulk(b"last-delivered-id");
        reply_id(r, g.last_id);
        r.bulk(b"entries-read");
        entries_read(r, g);
        r.bulk(b"lag");
        lag(r, s, g);
    }
    Ok(())
}

fn xinfo_stream(ctx: &mut Ctx) -> CmdResult {
    // The key is checked before the options.
    stream(ctx)?;
    let a = ctx.args;
    let opts = &a[3..];
    let mut full = false;
    let mut count: i64 = 10;
    if !opts.is_empty() {
        if (opts.len() != 1 && opts.len() != 3) || !is(&opts[0], "full") {
            return super::server::container_help(ctx);
        }
        full = true;
        if opts.len() == 3 {
            if !is(&opts[1], "count") {
                return super::server::container_help(ctx);
            }
            count = args::int(&opts[2])?;
            if count < 0 {
                count = 10;
            }
        }
    }
    let (s, r) = stream_and_reply(ctx)?;
    r.map(if full { 9 } else { 10 });
    r.bulk(b"length");
    r.int(s.len() as i64);
    r.bulk(b"radix-tree-keys");
    r.int(s.node_count() as i64);
    r.bulk(b"radix-tree-nodes");
    r.int(s.rax_nodes() as i64);
    r.bulk(b"last-generated-id");
    reply_id(r, s.last_id);
    r.bulk(b"max-deleted-entry-id");
    reply_id(r, s.max_deleted_entry_id);
    r.bulk(b"entries-added");
    r.int(s.entries_added as i64);
    r.bulk(b"recorded-first-entry-id");
    reply_id(r, s.first_id);
    if !full {
        r.bulk(b"groups");
        r.int(s.groups.len() as i64);
        for (name, rev) in [(&b"first-entry"[..], false), (&b"last-entry"[..], true)] {
            r.bulk(name);
            match s.range(StreamId::MIN, StreamId::MAX, rev).next() {
                Some(e) => reply_entry(r, &e),
                None => r.null(),
            }
        }
        return Ok(());
    }
    // COUNT 0 means everything.
    let limit = if count == 0 { usize::MAX } else { count as usize };
    r.bulk(b"entries");
    let entries: Vec<_> = s.range(StreamId::MIN, StreamId::MAX, false).take(limit).collect();
    streams::reply_entries(r, &entries);
    r.bulk(b"groups");
    r.array(s.groups.len());
    for (name, g) in &s.groups {
        r.map(7);
        r.bulk(b"name");
        r.bulk(name);
        r.bulk(b"last-delivered-id");
        reply_id(r, g.last_id);
        r.bulk(b"entries-read");
        entries_read(r, g);
        r.bulk(b"lag");
        lag(r, s, g);
        r.bulk(b"pel-count");
        r.int(g.pel.len() as i64);
        r.bulk(b"pending");
        let pel: Vec<_> = g.pel.iter().take(limit).collect();
        r.array(pel.len());
        for (id, n) in pel {
            r.array(4);
            reply_id(r, *id);
            r.bulk(&n.consumer);
            r.int(n.delivery_time);
            r.int(n.delivery_count as i64);
        }
        r.bulk(b"consumers");
        r.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            r.map(5);
            r.bulk(b"name");
            r.bulk(cname);
            r.bulk(b"seen-time");
            r.int(c.seen_time);
            r.bulk(b"active-time");
            r.int(c.active_time);
            r.bulk(b"pel-count");
            r.int(c.pel.len() as i64);
            r.bulk(b"pending");
            let pel: Vec<_> = c.pel.iter().take(limit).collect();
            r.array(pel.len());
            for id in pel {
                let dt = g.pel.get(id).map_or(0, |n| n.delivery_time);
                let dc = g.pel.get(id).map_or(0, |n| n.delivery_count);
                r.array(3);
                reply_id(r, *id);
                r.int(dt);
                r.int(dc as i64);
            }
        }
    }
    Ok(())
}
