//! Bitmap commands on strings (Redis's bitops.c): SETBIT and GETBIT. Bit 0 is the most
//! significant bit of the first byte.

use super::args;
use super::flags::*;
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::types::{StrValue, Value};

const B: &[&str] = &["bitmap"];

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("setbit", 4, WRITE | DENYOOM, setbit)
        .keys(1, 1, 1)
        .acl(B)
        .group("bitmap")
        .doc("2.2.0", "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist."),
    CommandSpec::new("getbit", 3, READONLY | FAST, getbit)
        .keys(1, 1, 1)
        .acl(B)
        .group("bitmap")
        .doc("2.2.0", "Returns a bit value by offset."),
];

/// A bit offset argument, limited by proto-max-bulk-len (Redis's getBitOffsetFromArgument).
fn bit_offset(ctx: &Ctx, arg: &[u8]) -> Result<u64, CmdError> {
    let err = || CmdError::new("bit offset is not an integer or out of range");
    let off = args::int(arg).map_err(|_| err())?;
    let max = ctx.server.config.load().proto_max_bulk_len;
    if off < 0 || (off >> 3) >= max {
        return Err(err());
    }
    Ok(off as u64)
}

fn setbit(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let key = &args[1];
    let offset = bit_offset(ctx, &args[2])?;
    let on = args::int_or(&args[3], "bit is not an integer or out of range")?;
    if on & !1 != 0 {
        return Err(CmdError::new("bit is not an integer or out of range"));
    }
    let byte = (offset >> 3) as usize;
    let created = match ctx.db.get(key) {
        None => true,
        Some(e) => {
            e.value.as_str().ok_or_else(|| CmdError::new(errors::WRONGTYPE))?;
            false
        }
    };
    if created {
        ctx.db.set(key, Value::Str(StrValue::raw(Vec::new())), false);
    }
    let s = ctx.db.get_mut(key).and_then(|e| e.value.as_str_mut()).ok_or_else(|| CmdError::new(errors::WRONGTYPE))?;
    let raw = s.make_raw();
    let grew = raw.len() <= byte;
    if grew {
        raw.resize(byte + 1, 0);
    }
    let mask = 1u8 << (7 - (offset & 7));
    let old = raw[byte] & mask != 0;
    if on == 1 {
        raw[byte] |= mask;
    } else {
        raw[byte] &= !mask;
    }
    if created || grew || old != (on == 1) {
        ctx.db.touch_dirty(1);
        ctx.db.notify(crate::keyspace::notify::STRING, "setbit", key);
    }
    ctx.reply.int(old as i64);
    Ok(())
}

fn getbit(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let offset = bit_offset(ctx, &args[2])?;
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
