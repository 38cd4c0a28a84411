//! DEBUG subcommands the Redis test suite and operators use beyond the core ones in
//! `server.rs`: POPULATE, HTSTATS, HTSTATS-KEY, LOG, REPLYBUFFER, SET-SKIP-CHECKSUM-VALIDATION,
//! CONFIG-REWRITE-FORCE-ALL, SEGFAULT, PANIC, ASSERT, OOM, AOF-FLUSH-SLEEP, REPLICATE, LEAK,
//! ERROR, STRUCTSIZE, STRINGMATCH-TEST, CHANGE-REPL-ID.

use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};

use super::args::{self, is};
use super::{CmdError, CmdResult, Ctx};
use crate::types::{StrValue, Value};

/// DEBUG SET-SKIP-CHECKSUM-VALIDATION: RESTORE payloads' checksums are not verified.
pub static SKIP_CHECKSUM: AtomicBool = AtomicBool::new(false);

/// DEBUG CLUSTERLINK KILL to|from|all <node-id>: close bus links to / from a node.
fn clusterlink_kill(ctx: &mut Ctx) -> CmdResult {
    let Some(c) = ctx.server.cluster.get() else {
        return Err(CmdError::new("Debug option only available for cluster mode enabled setup!"));
    };
    let args = ctx.args;
    let (dir, node) = (args::text(&args[3]).to_ascii_lowercase(), args[4].clone());
    c.with(|st| {
        let Some(n) = st.lookup(&node) else {
            return Err(CmdError::new(format!("Unknown node {}", args::text(&node))));
        };
        let (to, from) = (st.nodes[&n].link, st.nodes[&n].inbound_link);
        let links = match dir.as_str() {
            "from" => vec![from],
            "to" => vec![to],
            "all" => vec![to, from],
            _ => return Err(CmdError::new(format!("Unknown direction {}", args::text(&args[3])))),
        };
        for l in links.into_iter().flatten() {
            st.free_link(l);
        }
        Ok(())
    })?;
    ctx.reply.ok();
    Ok(())
}

/// Run `DEBUG <sub> ...` if it is one of these; None otherwise.
pub fn run(ctx: &mut Ctx) -> Option<CmdResult> {
    let args = ctx.args;
    let sub = &args[1];
    let n = args.len();
    Some(if is(sub, "populate") && (3..=5).contains(&n) {
        populate(ctx)
    } else if is(sub, "listpack") && n == 3 {
        print_structure(ctx, &["listpack", "listpackex"], "Listpack")
    } else if is(sub, "quicklist") && (n == 3 || n == 4) {
        print_structure(ctx, &["quicklist"], "Quicklist")
    } else if is(sub, "htstats") && n == 3 {
        htstats(ctx)
    } else if is(sub, "htstats-key") && n == 3 {
        htstats_key(ctx)
    } else if is(sub, "drop-cluster-packet-filter") && n == 3 {
        args::int(&args[2]).map(|t| {
            if let Some(c) = ctx.server.cluster.get() {
                c.with(|st| st.drop_filter = t);
            }
            ctx.reply.ok();
        })
    } else if is(sub, "clusterlink") && n == 5 && is(&args[2], "kill") {
        clusterlink_kill(ctx)
    } else if is(sub, "leak") && n == 3 {
        ctx.reply.ok();
        Ok(())
    } else if is(sub, "error") && n == 3 {
        let text = args::text(&args[2]).replace(['\r', '\n'], " ");
        ctx.reply.error(&format!("-{text}"));
        Ok(())
    } else if is(sub, "structsize") && n == 2 {
        // Redis's C structure sizes on 64-bit builds (what tools estimating memory read).
        ctx.reply.bulk(b"bits:64 robj:16 dictentry:24 sdshdr5:1 sdshdr8:3 sdshdr16:5 sdshdr32:9 sdshdr64:17 ");
        Ok(())
    } else if is(sub, "stringmatch-test") && n == 2 {
        crate::util::glob::glob_match(b"a*?[a-z]\\", b"abcdz\\", false);
        ctx.reply.simple("Apparently Redis did not crash: test passed");
        Ok(())
    } else if is(sub, "replicate") && n >= 3 {
        ctx.db.propagate_to_replicas(args[2..].to_vec());
        ctx.reply.ok();
        Ok(())
    } else if is(sub, "log") && n == 3 {
        crate::server::log::warning(&format!("DEBUG LOG: {}", args::text(&args[2])));
        ctx.reply.ok();
        Ok(())
    } else if is(sub, "replybuffer") && n == 4 {
        // How the cron resizes reply buffers (see `Outbox::resize_reply_buffer`).
        let server = ctx.server;
        if is(&args[2], "peak-reset-time") {
            let ms = if is(&args[3], "never") {
                -1
            } else if is(&args[3], "reset") {
                crate::server::REPLY_BUFFER_PEAK_RESET_MS
            } else {
                match args::int(&args[3]) {
                    Ok(ms) => ms,
                    Err(e) => return Some(Err(e)),
                }
            };
            server.reply_buffer_peak_reset_ms.store(ms, Ordering::Relaxed);
        } else if is(&args[2], "resizing") {
            // Read with atoi, as Redis does.
            let on = crate::util::num::atoi(&args[3]) != 0;
            server.reply_buffer_resizing.store(on, Ordering::Relaxed);
        } else {
            // addReplySubcommandSyntaxError, naming the subcommand as typed.
            return Some(Err(CmdError::new(format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
                args::echo(sub)
            ))));
        }
        ctx.reply.ok();
        Ok(())
    } else if is(sub, "set-skip-checksum-validation") && n == 3 {
        SKIP_CHECKSUM.store(args::int(&args[2]).map(|v| v != 0).unwrap_or(false), Ordering::Relaxed);
        ctx.reply.ok();
        Ok(())
    } else if is(sub, "config-rewrite-force-all") && n == 2 {
        let Some(path) = ctx.server.config.file.clone() else {
            return Some(Err(CmdError::new("CONFIG-REWRITE-FORCE-ALL failed: Bad address")));
        };
        match crate::config::rewrite_file(
            &ctx.server.config.snapshot(),
            &path,
            true,
            super::acl::config_rewrite_lines(ctx.server).as_deref(),
        ) {
            Ok(()) => {
                ctx.reply.ok();
                Ok(())
            }
            Err(e) => {
                Err(CmdError::new(format!("CONFIG-REWRITE-FORCE-ALL failed: {}", crate::config::kinds::strerror(&e))))
            }
        }
    } else if (is(sub, "segfault") || is(sub, "panic") || is(sub, "assert") || is(sub, "oom")) && n == 2 {
        crate::server::log::warning(&format!(
            "DEBUG {} received: crashing on purpose",
            args::text(sub).to_ascii_uppercase()
        ));
        crate::server::process::crash_now(is(sub, "segfault"));
    } else if is(sub, "aof-flush-sleep") && n == 3 {
        if let Err(e) = args::int(&args[2]) {
            return Some(Err(e));
        }
        ctx.reply.ok();
        Ok(())
    } else if (is(sub, "change-repl-id") && n == 2) || (is(sub, "quicklist-packed-threshold") && n == 3) {
        ctx.reply.ok();
        Ok(())
    } else {
        return None;
    })
}

/// DEBUG LISTPACK / QUICKLIST <key>: print the value's packed structure on stdout (here: its
/// encoding and key, Ferrous's layout being its own) if it has one of `encodings`.
fn print_structure(ctx: &mut Ctx, encodings: &[&str], what: &str) -> CmdResult {
    let key = &ctx.args[2];
    let Some(encoding) = ctx.db.peek(key).map(|e| e.value.encoding()) else {
        return Err(CmdError::new("no such key"));
    };
    if !encodings.contains(&encoding) {
        return Err(CmdError::new(format!("Not a {} encoded object.", what.to_ascii_lowercase())));
    }
    println!("{{{encoding}}} key {}", String::from_utf8_lossy(key));
    ctx.reply.simple(&format!("{what} structure printed on stdout"));
    Ok(())
}

/// DEBUG POPULATE <count> [prefix] [size]: create `prefix:N` keys holding "value:N" (cut or
/// zero-padded to `size`), skipping keys that exist. Nothing is propagated, as in Redis; each
/// key is signalled (WATCH, client-side caching) without an event.
fn populate(ctx: &mut Ctx) -> CmdResult {
    let count = match crate::util::num::parse_i64(&ctx.args[2]) {
        Some(v) if v >= 0 => v as u64,
        Some(_) => return Err(CmdError::new("value is out of range, must be positive")),
        None => return Err(CmdError::new(super::errors::NOT_INTEGER)),
    };
    let prefix = ctx.args.get(3).cloned().unwrap_or_else(|| Bytes::from_static(b"key"));
    let size = match ctx.args.get(4) {
        Some(a) => match crate::util::num::parse_i64(a) {
            Some(v) if v >= 0 => Some(v as usize),
            Some(_) => return Err(CmdError::new("value is out of range, must be positive")),
            None => return Err(CmdError::new(super::errors::NOT_INTEGER)),
        },
        None => None,
    };
    ctx.db.index = ctx.client.db;
    let dirty = ctx.db.dirty;
    for j in 0..count {
        let mut key = prefix.to_vec();
        key.extend_from_slice(format!(":{j}").as_bytes());
        if ctx.db.contains_raw(&key) {
            continue;
        }
        let text = format!("value:{j}").into_bytes();
        let val = match size {
            None => text,
            Some(sz) => {
                let mut v = vec![0u8; sz];
                let n = sz.min(text.len());
                v[..n].copy_from_slice(&text[..n]);
                v
            }
        };
        ctx.db.set(&key, Value::Str(StrValue::from_bytes(&val)), false);
        ctx.db.signal_modified(&key);
    }
    ctx.db.dirty = dirty;
    ctx.reply.ok();
    Ok(())
}

fn htstats(ctx: &mut Ctx) -> CmdResult {
    let dbid = args::int(&ctx.args[2])?;
    if dbid < 0 || dbid as usize >= ctx.server.keyspace.databases() {
        return Err(CmdError::new("Out of range database"));
    }
    let selected = ctx.db.index;
    ctx.db.index = dbid as usize;
    let (mut keys, mut expires, mut slots, mut eslots) = (0usize, 0usize, 0usize, 0usize);
    for (_, sd) in ctx.db.locked_shards() {
        keys += sd.main.len();
        expires += sd.ttls.len();
        slots += sd.main.buckets();
        eslots += sd.ttls.buckets();
    }
    ctx.db.index = selected;
    let block = |size: usize, n: usize| {
        if n == 0 {
            "No stats available for empty dictionaries\n".to_string()
        } else {
            format!("Hash table 0 stats (main hash table):\n table size: {size}\n number of elements: {n}\n")
        }
    };
    let text = format!("[Dictionary HT]\n{}[Expires HT]\n{}", block(slots, keys), block(eslots, expires));
    ctx.reply.verbatim(b"txt", text.as_bytes());
    Ok(())
}

fn htstats_key(ctx: &mut Ctx) -> CmdResult {
    let key = ctx.args[2].clone();
    let Some(e) = ctx.db.peek_raw(&key) else {
        return Err(CmdError::new(super::errors::NO_KEY));
    };
    let enc = e.value.encoding();
    if enc != "hashtable" {
        return Err(CmdError::new("The value stored at the specified key is not represented using an hash table"));
    }
    let n = match &e.value {
        Value::Hash(h) => h.len(),
        Value::Set(s) => s.len(),
        Value::ZSet(z) => z.len(),
        _ => 0,
    };
    let text = format!(
        "Hash table 0 stats (main hash table):\n table size: {}\n number of elements: {n}\n",
        n.next_power_of_two().max(4)
    );
    ctx.reply.verbatim(b"txt", text.as_bytes());
    Ok(())
}
