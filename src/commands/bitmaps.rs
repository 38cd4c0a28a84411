//! Bitmap commands on strings (Redis's bitops.c): SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
//! and the table rows of BITFIELD / BITFIELD_RO (their handlers are in `bitfield.rs`). Bitmaps
//! are plain string values; the bit arithmetic lives in `types::bits` and `types::bitfield`.

use super::args;
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::notify as ev;
use crate::keyspace::Db;
use crate::types::bits::{self, BitOp, BitOpFold, Unit};
use crate::types::{StrValue, Value};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("setbit", setbit),
    CommandSpec::new("getbit", getbit),
    CommandSpec::new("bitcount", bitcount),
    CommandSpec::new("bitpos", bitpos),
    // Key 2 is the destination (OW update), the rest are sources.
    CommandSpec::new("bitop", bitop),
    CommandSpec::new("bitfield", super::bitfield::bitfield).getkeys(super::key_specs::procs::bitfield),
    CommandSpec::new("bitfield_ro", super::bitfield::bitfield_ro),
];

/// Compare an argument with a keyword as C's strcasecmp does on Redis's strings (the argument
/// ends at its first NUL byte).
pub(super) fn kw(arg: &[u8], word: &str) -> bool {
    args::is(crate::util::bytetext::c_str(arg), word)
}

/// A bit offset argument (Redis's getBitOffsetFromArgument): a non-negative integer whose byte
/// lies below proto-max-bulk-len (not enforced for the master link). With `hash_bits`,
/// `#N` means N fields of that width (BITFIELD).
pub(super) fn bit_offset(ctx: &Ctx, arg: &[u8], hash_bits: Option<u32>) -> Result<u64, CmdError> {
    let err = || CmdError::new("bit offset is not an integer or out of range");
    let hash = hash_bits.filter(|_| arg.first() == Some(&b'#'));
    let mut off = args::int(&arg[usize::from(hash.is_some())..]).map_err(|_| err())?;
    if let Some(bits) = hash {
        off = off.wrapping_mul(i64::from(bits));
    }
    let max = ctx.server.config.load().proto_max_bulk_len;
    if off < 0 || (!ctx.client.is_master && (off >> 3) >= max) {
        return Err(err());
    }
    Ok(off as u64)
}

/// The string at `key` for a bit write reaching bit `maxbit` (Redis's
/// lookupStringForBitCommand): created zero-filled if missing, zero-padded if shorter, made
/// `raw`. The flag says whether it was created or grown.
pub(super) fn string_for_bits<'d>(
    db: &'d mut Db,
    key: &[u8],
    maxbit: u64,
) -> Result<(&'d mut Vec<u8>, bool), CmdError> {
    let byte = (maxbit >> 3) as usize;
    let (e, created) = db.get_or_insert_with(key, || Value::Str(StrValue::raw(Vec::new())));
    let raw = e.value.as_str_mut().ok_or_else(|| CmdError::new(errors::WRONGTYPE))?.make_raw();
    let grew = raw.len() <= byte;
    if grew {
        raw.resize(byte + 1, 0);
    }
    Ok((raw, created || grew))
}

fn setbit(ctx: &mut Ctx) -> CmdResult {
    const ERR: &str = "bit is not an integer or out of range";
    let args = ctx.args;
    let key = &args[1];
    let offset = bit_offset(ctx, &args[2], None)?;
    let on = args::int_or(&args[3], ERR)?;
    if on & !1 != 0 {
        return Err(CmdError::new(ERR));
    }
    let (raw, dirty) = string_for_bits(ctx.db, key, offset)?;
    let byte = (offset >> 3) as usize;
    let mask = 1u8 << (7 - (offset & 7));
    let old = raw[byte] & mask != 0;
    if dirty || old != (on == 1) {
        if on == 1 {
            raw[byte] |= mask;
        } else {
            raw[byte] &= !mask;
        }
        ctx.db.touch_dirty(1);
        ctx.db.notify(ev::STRING, "setbit", key);
    }
    ctx.reply.int(old as i64);
    Ok(())
}

fn getbit(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let offset = bit_offset(ctx, &args[2], None)?;
    let bit = match ctx.db.get(&args[1]) {
        None => false,
        Some(e) => {
            let s = e.value.as_str().ok_or_else(|| CmdError::new(errors::WRONGTYPE))?;
            let byte = (offset >> 3) as usize;
            s.to_bytes().get(byte).is_some_and(|b| b & (1 << (7 - (offset & 7))) != 0)
        }
    };
    ctx.reply.int(bit as i64);
    Ok(())
}

/// `BIT` / `BYTE` (anything else is a syntax error).
fn unit(arg: &[u8]) -> Result<Unit, CmdError> {
    if kw(arg, "bit") {
        Ok(Unit::Bit)
    } else if kw(arg, "byte") {
        Ok(Unit::Byte)
    } else {
        Err(CmdError::new(errors::SYNTAX))
    }
}

/// BITCOUNT key [start end [BYTE|BIT]]
fn bitcount(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let Some(e) = ctx.db.get(&args[1]) else {
        ctx.reply.int(0);
        return Ok(());
    };
    let s = e.value.as_str().ok_or_else(|| CmdError::new(errors::WRONGTYPE))?;
    let range = match args.len() {
        2 => None,
        4 | 5 => {
            let start = args::int(&args[2])?;
            let end = args::int(&args[3])?;
            if start < 0 && end < 0 && start > end {
                ctx.reply.int(0);
                return Ok(());
            }
            let u = if args.len() == 5 { unit(&args[4])? } else { Unit::Byte };
            Some((start, end, u))
        }
        _ => return Err(CmdError::new(errors::SYNTAX)),
    };
    let n = bits::bitcount(&s.to_bytes(), range);
    ctx.reply.int(n);
    Ok(())
}

/// BITPOS key bit [start [end [BYTE|BIT]]]
fn bitpos(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let bit = args::int(&args[2])?;
    if bit != 0 && bit != 1 {
        return Err(CmdError::new("The bit argument must be 1 or 0."));
    }
    let Some(e) = ctx.db.get(&args[1]) else {
        ctx.reply.int(if bit == 1 { -1 } else { 0 });
        return Ok(());
    };
    let s = e.value.as_str().ok_or_else(|| CmdError::new(errors::WRONGTYPE))?;
    let range = match args.len() {
        3 => None,
        4..=6 => {
            let start = args::int(&args[3])?;
            let u = if args.len() == 6 { unit(&args[5])? } else { Unit::Byte };
            let end = if args.len() >= 5 { Some(args::int(&args[4])?) } else { None };
            Some((start, end, u))
        }
        _ => return Err(CmdError::new(errors::SYNTAX)),
    };
    let pos = bits::bitpos(&s.to_bytes(), bit == 1, range);
    ctx.reply.int(pos);
    Ok(())
}

/// BITOP AND|OR|XOR|NOT destkey key [key ...]
fn bitop(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let name = &args[1];
    let op = BitOp::parse(&name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())])
        .ok_or_else(|| CmdError::new(errors::SYNTAX))?;
    if op == BitOp::Not && args.len() != 4 {
        return Err(CmdError::new("BITOP NOT must be called with a single source key."));
    }
    let mut fold = BitOpFold::new(op);
    for key in &args[3..] {
        match ctx.db.get(key) {
            None => fold.add(&[]),
            Some(e) => {
                let s = e.value.as_str().ok_or_else(|| CmdError::new(errors::WRONGTYPE))?;
                fold.add(&s.to_bytes());
            }
        }
    }
    let res = fold.finish();
    let dest = &args[2];
    let len = res.len();
    if len > 0 {
        ctx.db.set(dest, Value::Str(StrValue::raw(res)), false);
        ctx.db.notify(ev::STRING, "set", dest);
        ctx.db.touch_dirty(1);
    } else if ctx.db.delete(dest) {
        ctx.db.notify(ev::GENERIC, "del", dest);
        ctx.db.touch_dirty(1);
    }
    ctx.reply.int(len as i64);
    Ok(())
}
