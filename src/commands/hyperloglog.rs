//! HyperLogLog commands (Redis's hyperloglog.c): PFADD, PFCOUNT, PFMERGE, PFDEBUG and
//! PFSELFTEST. An HLL is an ordinary string value holding Redis's exact `HYLL` layout (see
//! [`crate::types::hll`]), so GET/SET/DUMP/RESTORE move it between servers unchanged.

use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::notify as ev;
use crate::keyspace::Db;
use crate::types::hll::{self, Corrupt};
use crate::types::{StrValue, Value};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("pfadd", pfadd),
    CommandSpec::new("pfcount", pfcount),
    CommandSpec::new("pfmerge", pfmerge),
    CommandSpec::new("pfdebug", pfdebug),
    CommandSpec::new("pfselftest", pfselftest),
];

const NOT_HLL: &str = "-WRONGTYPE Key is not a valid HyperLogLog string value.";
const INVALID: &str = "-INVALIDOBJ Corrupted HLL object detected";

fn invalid(_: Corrupt) -> CmdError {
    CmdError::new(INVALID)
}

/// `hll-sparse-max-bytes`.
fn sparse_max(ctx: &Ctx) -> usize {
    ctx.server.config.load().hll_sparse_max_bytes.max(0) as usize
}

/// Redis's isHLLObjectOrReply: WRONGTYPE for another type, the HLL-specific WRONGTYPE for a
/// string that is not an HLL (integers included: they are not sds-encoded in Redis).
fn check(v: &Value) -> Result<&StrValue, CmdError> {
    let s = v.as_str().ok_or_else(|| CmdError::new(errors::WRONGTYPE))?;
    if matches!(s, StrValue::Int(_)) || !hll::is_valid_header(&s.to_bytes()) {
        return Err(CmdError::new(NOT_HLL));
    }
    Ok(s)
}

/// The HLL bytes of `key` as a mutable raw buffer (Redis's dbUnshareStringValue), validated.
fn hll_mut<'a>(db: &'a mut Db, key: &[u8]) -> Result<Option<&'a mut Vec<u8>>, CmdError> {
    match db.get_mut(key) {
        None => Ok(None),
        Some(e) => {
            check(&e.value)?;
            match e.value.as_str_mut() {
                Some(s) => Ok(Some(s.make_raw())),
                None => Err(CmdError::new(errors::WRONGTYPE)),
            }
        }
    }
}

fn pfadd(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let key = &args[1];
    let max = sparse_max(ctx);
    let mut updated = 0u64;
    if hll_mut(ctx.db, key)?.is_none() {
        ctx.db.set(key, Value::Str(StrValue::raw(hll::new_sparse())), false);
        updated += 1;
    }
    {
        let buf = hll_mut(ctx.db, key)?.ok_or_else(|| CmdError::new(INVALID))?;
        let mut ghost = 0u8;
        for ele in &args[2..] {
            if hll::add(buf, ele, max, &mut ghost).map_err(invalid)? {
                updated += 1;
            }
        }
        if updated > 0 {
            hll::invalidate_cache(buf);
        }
    }
    if updated > 0 {
        ctx.db.touch_dirty(updated);
        ctx.db.notify(ev::STRING, "pfadd", key);
    }
    ctx.reply.int((updated > 0) as i64);
    Ok(())
}

fn pfcount(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if args.len() > 2 {
        // Several keys: the cardinality of their union, never cached.
        let mut max = vec![0u8; hll::REGISTERS];
        for key in &args[1..] {
            let Some(e) = ctx.db.get(key) else { continue };
            let s = check(&e.value)?;
            hll::merge_into(&mut max, &s.to_bytes()).map_err(invalid)?;
        }
        ctx.reply.int(hll::count_raw(&max) as i64);
        return Ok(());
    }
    let key = &args[1];
    let (card, refreshed) = {
        let Some(buf) = hll_mut(ctx.db, key)? else {
            ctx.reply.int(0);
            return Ok(());
        };
        match hll::cached_card(buf) {
            Some(c) => (c, false),
            None => {
                let c = hll::count(buf).map_err(invalid)?;
                hll::set_cached_card(buf, c);
                (c, true)
            }
        }
    };
    if refreshed {
        // The cached cardinality is part of the string: propagate the change and signal the
        // key, with no event (Redis does).
        ctx.db.touch_dirty(1);
        ctx.db.signal_modified(key);
    }
    ctx.reply.int(card as i64);
    Ok(())
}

fn pfmerge(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let dest = &args[1];
    let smax = sparse_max(ctx);
    let mut max = vec![0u8; hll::REGISTERS];
    let mut use_dense = false;
    for key in &args[1..] {
        let Some(e) = ctx.db.get(key) else { continue };
        let s = check(&e.value)?;
        let b = s.to_bytes();
        if hll::encoding(&b) == hll::DENSE {
            use_dense = true;
        }
        hll::merge_into(&mut max, &b).map_err(invalid)?;
    }
    if hll_mut(ctx.db, dest)?.is_none() {
        ctx.db.set(dest, Value::Str(StrValue::raw(hll::new_sparse())), false);
    }
    {
        let buf = hll_mut(ctx.db, dest)?.ok_or_else(|| CmdError::new(INVALID))?;
        if use_dense {
            hll::sparse_to_dense(buf).map_err(invalid)?;
        }
        let mut ghost = 0u8;
        for (j, &m) in max.iter().enumerate() {
            if m != 0 {
                // As in Redis, a corrupt destination only loses the update.
                let _ = hll::set_register(buf, j, m, smax, &mut ghost);
            }
        }
        hll::invalidate_cache(buf);
    }
    ctx.db.touch_dirty(1);
    // Redis reports a merge as a mass add.
    ctx.db.notify(ev::STRING, "pfadd", dest);
    ctx.reply.ok();
    Ok(())
}

fn pfdebug(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let sub = String::from_utf8_lossy(&args[1]).into_owned();
    let key = &args[2];
    let mut dirty = false;
    {
        let Some(buf) = hll_mut(ctx.db, key)? else {
            return Err(CmdError::new("The specified key does not exist"));
        };
        match sub.to_ascii_lowercase().as_str() {
            "getreg" => {
                if hll::encoding(buf) == hll::SPARSE {
                    hll::sparse_to_dense(buf).map_err(invalid)?;
                    dirty = true;
                }
                let regs = hll::dense_registers(buf);
                ctx.reply.array(regs.len());
                for r in regs {
                    ctx.reply.int(r as i64);
                }
            }
            "decode" => {
                if hll::encoding(buf) != hll::SPARSE {
                    return Err(CmdError::new("HLL encoding is not sparse"));
                }
                let text = hll::decode_sparse(buf);
                ctx.reply.bulk(text.as_bytes());
            }
            "encoding" => {
                ctx.reply.simple(if hll::encoding(buf) == hll::DENSE { "dense" } else { "sparse" });
            }
            "todense" => {
                if hll::encoding(buf) == hll::SPARSE {
                    hll::sparse_to_dense(buf).map_err(invalid)?;
                    dirty = true;
                }
                ctx.reply.int(dirty as i64);
            }
            _ => return Err(CmdError::new(format!("Unknown PFDEBUG subcommand '{sub}'"))),
        }
    }
    if dirty {
        ctx.db.touch_dirty(1);
    }
    Ok(())
}

fn pfselftest(ctx: &mut Ctx) -> CmdResult {
    hll::self_test().map_err(CmdError::new)?;
    ctx.reply.ok();
    Ok(())
}
