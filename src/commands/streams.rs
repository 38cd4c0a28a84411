//! Stream commands (Redis's t_stream.c), part one: the command table of every X* command, the
//! shared helpers (ID arguments, lookups, entry replies), and the commands on entries: XADD,
//! XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID. Reads live in `streams_read.rs`, consumer
//! groups in `streams_groups.rs`, XINFO in `streams_info.rs`.

use bytes::Bytes;

use super::args::{self, is};
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use super::{streams_groups as groups, streams_info as info, streams_read as read};
use crate::keyspace::notify;
use crate::protocol::ReplySink;
use crate::types::stream::id::{self, IdSyntax, ParsedId};
use crate::types::stream::{AddError, EntryRef, NodeLimits, StreamId, StreamValue, Trim};
use crate::types::Value;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("xadd", xadd),
    CommandSpec::new("xlen", xlen),
    CommandSpec::new("xrange", xrange),
    CommandSpec::new("xrevrange", xrevrange),
    CommandSpec::new("xdel", xdel),
    CommandSpec::new("xtrim", xtrim),
    CommandSpec::new("xsetid", xsetid),
    // XREAD/XREADGROUP keys follow STREAMS: the range covers them (and over-locks the options).
    CommandSpec::new("xread", read::xread).getkeys(super::key_specs::procs::xread),
    CommandSpec::new("xreadgroup", read::xreadgroup).getkeys(super::key_specs::procs::xread),
    CommandSpec::new("xack", groups::xack),
    CommandSpec::new("xpending", groups::xpending),
    CommandSpec::new("xclaim", groups::xclaim),
    CommandSpec::new("xautoclaim", groups::xautoclaim),
    CommandSpec::new("xgroup", super::server::container_help).subs(groups::XGROUP_SUBS),
    CommandSpec::new("xinfo", super::server::container_help).subs(info::XINFO_SUBS),
];

pub const INVALID_ID: &str = "Invalid stream ID specified as stream command argument";

/// Plain ID syntax (`-` and `+` allowed), the missing sequence being `missing_seq`.
pub fn parse_id(arg: &[u8], missing_seq: u64) -> Result<StreamId, CmdError> {
    let syn = IdSyntax { missing_seq, strict: false, seq_star: false };
    id::parse(arg, syn).map(|p| p.id).ok_or_else(|| CmdError::new(INVALID_ID))
}

/// Strict ID syntax (`-` and `+` refused), missing sequence 0.
pub fn parse_strict_id(arg: &[u8]) -> Result<StreamId, CmdError> {
    strict_id(arg).ok_or_else(|| CmdError::new(INVALID_ID))
}

pub fn strict_id(arg: &[u8]) -> Option<StreamId> {
    id::parse(arg, IdSyntax { missing_seq: 0, strict: true, seq_star: false }).map(|p| p.id)
}

/// A range bound (Redis's streamParseIntervalIDOrReply): `(` makes it exclusive, after which
/// the ID is strict. Returns the ID and whether it is exclusive.
pub fn parse_interval(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), CmdError> {
    if arg.len() > 1 && arg[0] == b'(' {
        let syn = IdSyntax { missing_seq, strict: true, seq_star: false };
        let p = id::parse(&arg[1..], syn).ok_or_else(|| CmdError::new(INVALID_ID))?;
        Ok((p.id, true))
    } else {
        Ok((parse_id(arg, missing_seq)?, false))
    }
}

/// A range's start bound, exclusive bounds moved to the next ID.
pub fn parse_range_start(arg: &[u8]) -> Result<StreamId, CmdError> {
    let (id, ex) = parse_interval(arg, 0)?;
    if ex {
        return id.incr().ok_or_else(|| CmdError::new("invalid start ID for the interval"));
    }
    Ok(id)
}

/// A range's end bound, exclusive bounds moved to the previous ID.
pub fn parse_range_end(arg: &[u8]) -> Result<StreamId, CmdError> {
    let (id, ex) = parse_interval(arg, u64::MAX)?;
    if ex {
        return id.decr().ok_or_else(|| CmdError::new("invalid end ID for the interval"));
    }
    Ok(id)
}

/// A NOGROUP-style error naming arguments as Redis's `%s` does (up to a NUL byte).
pub fn c_str(arg: &[u8]) -> String {
    let end = memchr::memchr(0, arg).unwrap_or(arg.len());
    String::from_utf8_lossy(&arg[..end]).into_owned()
}

/// The server's stream-node-max-bytes / stream-node-max-entries.
pub fn node_limits(ctx: &Ctx) -> NodeLimits {
    let c = ctx.server.config.load();
    NodeLimits { max_bytes: c.stream_node_max_bytes.max(0) as usize, max_entries: c.stream_node_max_entries }
}

/// Whether the command comes from our master or the AOF (Redis's mustObeyClient): trimming
/// limits are not enforced on what they send.
pub fn must_obey(ctx: &Ctx) -> bool {
    ctx.client.is_master || ctx.client.id() == 0
}

pub fn reply_id(reply: &mut ReplySink, id: StreamId) {
    let mut b = Vec::with_capacity(41);
    id.write_to(&mut b);
    reply.bulk(&b);
}

pub fn id_arg(id: StreamId) -> Bytes {
    Bytes::from(id.to_bytes())
}

fn reply_ele(reply: &mut ReplySink, e: crate::types::stream::lp::Ele) {
    match e {
        crate::types::stream::lp::Ele::Int(v) => reply.bulk_int(v),
        crate::types::stream::lp::Ele::Str(s) => reply.bulk(s),
    }
}

/// One entry: `[id, [field, value, ...]]`.
pub fn reply_entry(reply: &mut ReplySink, e: &EntryRef) {
    reply.array(2);
    reply_id(reply, e.id);
    reply.array(e.nfields * 2);
    for (f, v) in e.fields() {
        reply_ele(reply, f);
        reply_ele(reply, v);
    }
}

/// Entries as an array.
pub fn reply_entries(reply: &mut ReplySink, entries: &[EntryRef]) {
    reply.array(entries.len());
    for e in entries {
        reply_entry(reply, e);
    }
}

/// XADD/XTRIM options (Redis's streamAddTrimArgs).
pub struct AddTrim {
    /// XADD: the explicit ID, if not `*`.
    pub id: Option<ParsedId>,
    /// XADD: position of the ID argument.
    pub id_pos: usize,
    pub no_mkstream: bool,
    pub trim: Option<Trim>,
    pub approx: bool,
    pub limit: i64,
    /// Position of the MAXLEN/MINID argument (for rewriting the propagated command).
    pub trim_pos: usize,
}

/// Parse XADD/XTRIM options as Redis's streamParseAddOrTrimArgsOrReply.
pub fn parse_add_trim(ctx: &Ctx, xadd: bool) -> Result<AddTrim, CmdError> {
    let a = ctx.args;
    let mut p =
        AddTrim { id: None, id_pos: a.len(), no_mkstream: false, trim: None, approx: false, limit: 0, trim_pos: 0 };
    let mut limit_given = false;
    let mut i = 2;
    let both = "syntax error, MAXLEN and MINID options at the same time are not compatible";
    while i < a.len() {
        let more = a.len() - 1 - i;
        let opt = &a[i][..];
        if xadd && opt == b"*" {
            break;
        } else if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            if p.trim.is_some() {
                return Err(CmdError::new(both));
            }
            p.approx = false;
            let next = &a[i + 1][..];
            if more >= 2 && next == b"~" {
                p.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            if is(opt, "maxlen") {
                let n = args::int(&a[i + 1])?;
                if n < 0 {
                    return Err(CmdError::new("The MAXLEN argument must be >= 0."));
                }
                p.trim = Some(Trim::MaxLen(n as u64));
            } else {
                p.trim = Some(Trim::MinId(parse_strict_id(&a[i + 1])?));
            }
            i += 1;
            p.trim_pos = i;
        } else if is(opt, "limit") && more > 0 {
            p.limit = args::int(&a[i + 1])?;
            if p.limit < 0 {
                return Err(CmdError::new("The LIMIT argument must be >= 0."));
            }
            limit_given = true;
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            p.no_mkstream = true;
        } else if xadd {
            let syn = IdSyntax { missing_seq: 0, strict: true, seq_star: true };
            p.id = Some(id::parse(opt, syn).ok_or_else(|| CmdError::new(INVALID_ID))?);
            break;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
        i += 1;
    }
    p.id_pos = i;
    if p.limit != 0 && p.trim.is_none() {
        return Err(CmdError::new("syntax error, LIMIT cannot be used without specifying a trimming strategy"));
    }
    if !xadd && p.trim.is_none() {
        return Err(CmdError::new("syntax error, XTRIM must be called with a trimming strategy"));
    }
    if must_obey(ctx) {
        p.limit = 0;
    } else if limit_given {
        if !p.approx {
            return Err(CmdError::new("syntax error, LIMIT cannot be used without the special ~ option"));
        }
    } else if p.approx {
        p.limit = (100 * node_limits(ctx).max_entries).clamp(0, 1_000_000);
        if p.limit <= 0 {
            p.limit = 10000;
        }
    } else {
        p.limit = 0;
    }
    Ok(p)
}

/// The argument vector propagated for an approximate trim: `~` becomes `=` and the threshold
/// the one reached (the length for MAXLEN, the first entry's ID for MINID), so replicas and
/// the AOF trim exactly as much.
fn rewrite_trim(argv: &mut [Bytes], p: &AddTrim, s: &StreamValue) {
    argv[p.trim_pos - 1] = Bytes::from_static(b"=");
    argv[p.trim_pos] = match p.trim {
        Some(Trim::MaxLen(_)) => Bytes::from(s.len().to_string()),
        _ => id_arg(s.edge_id(true, false)),
    };
}

fn xadd(ctx: &mut Ctx) -> CmdResult {
    let p = parse_add_trim(ctx, true)?;
    let a = ctx.args;
    let field_pos = p.id_pos + 1;
    if a.len() < field_pos + 2 || !(a.len() - field_pos).is_multiple_of(2) {
        return Err(CmdError::new("wrong number of arguments for 'xadd' command"));
    }
    if let Some(id) = p.id {
        if id.seq_given && id.id.is_zero() {
            return Err(CmdError::new("The ID specified in XADD must be greater than 0-0"));
        }
    }
    let key = &a[1];
    let limits = node_limits(ctx);
    let now = ctx.db.now_ms.max(0) as u64;
    let propagating = ctx.db.propagating();
    let s = match ctx.db.get_mut(key) {
        Some(e) => match &mut e.value {
            Value::Stream(s) => s,
            _ => return Err(CmdError::new(errors::WRONGTYPE)),
        },
        None if p.no_mkstream => {
            ctx.reply.null();
            return Ok(());
        }
        None => {
            let (e, _) = ctx.db.get_or_insert_with(key, || Value::Stream(Box::default()));
            match &mut e.value {
                Value::Stream(s) => s,
                _ => return Err(CmdError::new(errors::WRONGTYPE)),
            }
        }
    };
    if s.last_id == StreamId::MAX {
        return Err(CmdError::new("The stream has exhausted the last possible ID, unable to add more items"));
    }
    let pairs: Vec<&[u8]> = a[field_pos..].iter().map(|b| &b[..]).collect();
    let id = match s.add(&pairs, p.id, now, limits) {
        Ok(id) => id,
        Err(AddError::IdTooSmall) => {
            return Err(CmdError::new("The ID specified in XADD is equal or smaller than the target stream top item"))
        }
        Err(AddError::TooLarge) => return Err(CmdError::new("Elements are too large to be stored")),
    };
    let mut trimmed = 0;
    if let Some(how) = p.trim {
        trimmed = s.trim(how, p.approx, p.limit);
    }
    // The effect: the chosen ID instead of `*` / `ms-*`, an approximate trim made exact.
    let mut argv: Option<Vec<Bytes>> = None;
    if propagating {
        if p.trim.is_some() && p.approx {
            let mut v = a.to_vec();
            rewrite_trim(&mut v, &p, s);
            argv = Some(v);
        }
        if p.id.is_none_or(|i| !i.seq_given) {
            argv.get_or_insert_with(|| a.to_vec())[p.id_pos] = id_arg(id);
        }
    }
    reply_id(ctx.reply, id);
    ctx.db.notify(notify::STREAM, "xadd", key);
    // New entries for the stream's readers (Redis signals XADD itself: the key was not added).
    ctx.db.signal_ready(key);
    ctx.db.touch_dirty(1);
    if trimmed > 0 {
        ctx.db.notify(notify::STREAM, "xtrim", key);
    }
    if let Some(v) = argv {
        ctx.db.propagate_effect(v);
    }
    Ok(())
}

fn xlen(ctx: &mut Ctx) -> CmdResult {
    let key = &ctx.args[1];
    let n = ctx.db.read::<StreamValue>(key)?.map_or(0, |s| s.len());
    ctx.reply.int(n as i64);
    Ok(())
}

fn xrange_generic(ctx: &mut Ctx, rev: bool) -> CmdResult {
    let a = ctx.args;
    let (start_arg, end_arg) = if rev { (&a[3], &a[2]) } else { (&a[2], &a[3]) };
    let start = parse_range_start(start_arg)?;
    let end = parse_range_end(end_arg)?;
    let mut count: i64 = -1;
    let mut j = 4;
    while j < a.len() {
        if is(&a[j], "count") && j + 1 < a.len() {
            count = args::int(&a[j + 1])?.max(0);
            j += 2;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
    }
    let Some(s) = ctx.db.read::<StreamValue>(&a[1])? else {
        ctx.reply.array(0);
        return Ok(());
    };
    if count == 0 {
        ctx.reply.null_array();
        return Ok(());
    }
    let limit = if count < 0 { usize::MAX } else { count as usize };
    let entries: Vec<EntryRef> = s.range(start, end, rev).take(limit).collect();
    reply_entries(ctx.reply, &entries);
    Ok(())
}

fn xrange(ctx: &mut Ctx) -> CmdResult {
    xrange_generic(ctx, false)
}

fn xrevrange(ctx: &mut Ctx) -> CmdResult {
    xrange_generic(ctx, true)
}

fn xdel(ctx: &mut Ctx) -> CmdResult {
    let a = ctx.args;
    let key = &a[1];
    if ctx.db.write::<StreamValue>(key)?.is_none() {
        ctx.reply.int(0);
        return Ok(());
    }
    // All IDs are checked before anything is deleted.
    let ids = a[2..].iter().map(|x| parse_strict_id(x)).collect::<Result<Vec<_>, _>>()?;
    let Some(s) = ctx.db.write::<StreamValue>(key)? else { return Ok(()) };
    let deleted = s.delete(&ids);
    if deleted > 0 {
        ctx.db.notify(notify::STREAM, "xdel", key);
        ctx.db.touch_dirty(deleted);
    }
    ctx.reply.int(deleted as i64);
    Ok(())
}

fn xtrim(ctx: &mut Ctx) -> CmdResult {
    let p = parse_add_trim(ctx, false)?;
    let a = ctx.args;
    let key = &a[1];
    let Some(s) = ctx.db.write::<StreamValue>(key)? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let how = p.trim.unwrap_or(Trim::MaxLen(u64::MAX));
    let deleted = s.trim(how, p.approx, p.limit);
    if deleted > 0 {
        let argv = p.approx.then(|| {
            let mut v = a.to_vec();
            rewrite_trim(&mut v, &p, s);
            v
        });
        ctx.db.notify(notify::STREAM, "xtrim", key);
        ctx.db.touch_dirty(deleted as u64);
        if let Some(v) = argv {
            ctx.db.propagate_effect(v);
        }
    }
    ctx.reply.int(deleted);
    Ok(())
}

fn xsetid(ctx: &mut Ctx) -> CmdResult {
    let a = ctx.args;
    let id = parse_strict_id(&a[2])?;
    let mut entries_added: i64 = -1;
    let mut max_xdel = StreamId::MIN;
    let mut i = 3;
    while i < a.len() {
        let more = a.len() - 1 - i;
        if is(&a[i], "entriesadded") && more > 0 {
            entries_added = args::int(&a[i + 1])?;
            if entries_added < 0 {
                return Err(CmdError::new("entries_added must be positive"));
            }
            i += 2;
        } else if is(&a[i], "maxdeletedid") && more > 0 {
            max_xdel = parse_strict_id(&a[i + 1])?;
            if id < max_xdel {
                return Err(CmdError::new(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
            i += 2;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
    }
    let key = &a[1];
    let Some(s) = ctx.db.write::<StreamValue>(key)? else {
        return Err(CmdError::new(errors::NO_KEY));
    };
    if id < s.max_deleted_entry_id {
        return Err(CmdError::new("The ID specified in XSETID is smaller than current max_deleted_entry_id"));
    }
    if !s.is_empty() {
        if id < s.last_valid_id() {
            return Err(CmdError::new("The ID specified in XSETID is smaller than the target stream top item"));
        }
        if entries_added != -1 && s.len() > entries_added as u64 {
            return Err(CmdError::new(
                "The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
    }
    s.last_id = id;
    if entries_added != -1 {
        s.entries_added = entries_added as u64;
    }
    if !max_xdel.is_zero() {
        s.max_deleted_entry_id = max_xdel;
    }
    ctx.reply.ok();
    ctx.db.touch_dirty(1);
    ctx.db.event_only(notify::STREAM, "xsetid", key);
    Ok(())
}
