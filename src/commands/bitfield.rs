//! BITFIELD and BITFIELD_RO (Redis's bitfieldGeneric): GET / SET / INCRBY of i1..i64 and
//! u1..u63 integers at bit offsets (`#N` = N fields of the type's width), OVERFLOW WRAP / SAT /
//! FAIL applying to the operations after it, several operations per call. The whole call is
//! parsed before anything runs; a call with only GETs reads like a read command. It propagates
//! as itself (deterministic) when it changed something.

use super::args;
use super::bitmaps::{bit_offset, kw, string_for_bits};
use super::{errors, CmdError, CmdResult, Ctx};
use crate::keyspace::notify as ev;
use crate::types::bitfield::{self as bf, FieldType, Overflow};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Get,
    Set,
    Incrby,
}

struct Op {
    kind: Kind,
    ty: FieldType,
    offset: u64,
    value: i64,
    ow: Overflow,
}

pub fn bitfield(ctx: &mut Ctx) -> CmdResult {
    bitfield_generic(ctx, false)
}

pub fn bitfield_ro(ctx: &mut Ctx) -> CmdResult {
    bitfield_generic(ctx, true)
}

fn parse(ctx: &Ctx) -> Result<(Vec<Op>, Option<u64>), CmdError> {
    let args = ctx.args;
    let mut ops = Vec::new();
    let mut ow = Overflow::Wrap;
    // The highest bit a SET/INCRBY reaches (None: the call only reads).
    let mut highest: Option<u64> = None;
    let mut j = 2;
    while j < args.len() {
        let remaining = args.len() - j - 1;
        let sub = &args[j][..];
        let kind = if kw(sub, "get") && remaining >= 2 {
            Kind::Get
        } else if kw(sub, "set") && remaining >= 3 {
            Kind::Set
        } else if kw(sub, "incrby") && remaining >= 3 {
            Kind::Incrby
        } else if kw(sub, "overflow") && remaining >= 1 {
            let t = &args[j + 1][..];
            ow = if kw(t, "wrap") {
                Overflow::Wrap
            } else if kw(t, "sat") {
                Overflow::Sat
            } else if kw(t, "fail") {
                Overflow::Fail
            } else {
                return Err(CmdError::new("Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        };
        let ty = FieldType::parse(&args[j + 1]).ok_or_else(|| {
            CmdError::new(
                "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
            )
        })?;
        let offset = bit_offset(ctx, &args[j + 2], Some(ty.bits))?;
        let mut value = 0;
        if kind != Kind::Get {
            let last = offset + u64::from(ty.bits) - 1;
            highest = Some(highest.map_or(last, |h| h.max(last)));
            value = args::int(&args[j + 3])?;
        }
        ops.push(Op { kind, ty, offset, value, ow });
        j += if kind == Kind::Get { 3 } else { 4 };
    }
    Ok((ops, highest))
}

/// The value of a GET.
fn read(p: &[u8], op: &Op) -> i64 {
    if op.ty.signed {
        bf::get_signed(p, op.offset, op.ty.bits)
    } else {
        bf::get_unsigned(p, op.offset, op.ty.bits) as i64
    }
}

/// Run a SET or INCRBY on the string: the reply value (None: OVERFLOW FAIL refused it) and
/// whether the stored bits changed.
fn write(p: &mut [u8], op: &Op) -> (Option<i64>, bool) {
    let (off, bits) = (op.offset, op.ty.bits);
    if op.ty.signed {
        let old = bf::get_signed(p, off, bits);
        let (new, reply) = if op.kind == Kind::Incrby {
            match bf::check_signed(old, op.value, bits, op.ow) {
                None => (old.wrapping_add(op.value), None),
                Some(Some(w)) => (w, None),
                Some(None) => return (None, false),
            }
        } else {
            match bf::check_signed(op.value, 0, bits, op.ow) {
                None => (op.value, Some(old)),
                Some(Some(w)) => (w, Some(old)),
                Some(None) => return (None, false),
            }
        };
        bf::set_unsigned(p, off, bits, new as u64);
        (Some(reply.unwrap_or(new)), old != new)
    } else {
        let old = bf::get_unsigned(p, off, bits);
        let (new, reply) = if op.kind == Kind::Incrby {
            match bf::check_unsigned(old, op.value, bits, op.ow) {
                None => (old.wrapping_add(op.value as u64), None),
                Some(Some(w)) => (w, None),
                Some(None) => return (None, false),
            }
        } else {
            let v = op.value as u64;
            match bf::check_unsigned(v, 0, bits, op.ow) {
                None => (v, Some(old)),
                Some(Some(w)) => (w, Some(old)),
                Some(None) => return (None, false),
            }
        };
        bf::set_unsigned(p, off, bits, new);
        (Some(reply.unwrap_or(new) as i64), old != new)
    }
}

fn bitfield_generic(ctx: &mut Ctx, read_only: bool) -> CmdResult {
    let (ops, highest) = parse(ctx)?;
    let key = &ctx.args[1];
    let Some(highest) = highest else {
        // Only GETs: a read (a missing key reads as zeros).
        let s = match ctx.db.get(key) {
            Some(e) => Some(e.value.as_str().ok_or_else(|| CmdError::new(errors::WRONGTYPE))?.to_bytes()),
            None => None,
        };
        let p: &[u8] = s.as_deref().unwrap_or(&[]);
        ctx.reply.array(ops.len());
        for op in &ops {
            ctx.reply.int(read(p, op));
        }
        return Ok(());
    };
    if read_only {
        return Err(CmdError::new("BITFIELD_RO only supports the GET subcommand"));
    }
    let (p, grown) = string_for_bits(ctx.db, key, highest)?;
    ctx.reply.array(ops.len());
    let mut changes = 0u64;
    for op in &ops {
        if op.kind == Kind::Get {
            ctx.reply.int(read(p, op));
            continue;
        }
        match write(p, op) {
            (Some(v), changed) => {
                ctx.reply.int(v);
                if grown || changed {
                    changes += 1;
                }
            }
            (None, _) => ctx.reply.null(),
        }
    }
    if changes > 0 {
        ctx.db.notify(ev::STRING, "setbit", key);
        ctx.db.touch_dirty(changes);
    }
    Ok(())
}
