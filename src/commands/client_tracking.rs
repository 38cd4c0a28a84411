//! CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO: the connection side of client-side
//! caching (the tracking table itself lives in `crate::tracking`).

use bytes::Bytes;
use std::sync::atomic::Ordering;

use super::args::is;
use super::{errors, CmdError, CmdResult, Ctx};
use crate::tracking::{ClientTracking, Options};

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN] [OPTOUT] [NOLOOP]
pub fn client_tracking(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let mut redirect: i64 = 0;
    let mut opts = Options::default();
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut redirect_to = None;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = &args[j];
        if is(a, "redirect") && more {
            j += 1;
            if redirect != 0 {
                return Err(CmdError::new("A client can only redirect to a single other client"));
            }
            redirect = super::args::int(&args[j])?;
            // The target must exist now, even if it may go away later (a sanity check).
            let target = ctx.server.clients.lock().get(&(redirect as u64)).and_then(|h| h.push.get().cloned());
            match target {
                Some(t) if redirect > 0 => redirect_to = Some(t),
                _ => return Err(CmdError::new("The client ID you want redirect to does not exist")),
            }
        } else if is(a, "bcast") {
            opts.bcast = true;
        } else if is(a, "optin") {
            opts.optin = true;
        } else if is(a, "optout") {
            opts.optout = true;
        } else if is(a, "noloop") {
            opts.noloop = true;
        } else if is(a, "prefix") && more {
            j += 1;
            prefixes.push(crate::protocol::detached(&args[j]));
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
        j += 1;
    }
    let tracking = &ctx.server.tracking;
    let id = ctx.client.id();
    if is(&args[2], "on") {
        if !opts.bcast && !prefixes.is_empty() {
            return Err(CmdError::new("PREFIX option requires BCAST mode to be enabled"));
        }
        if let Some(cur) = &ctx.client.tracking {
            if cur.opts.bcast != opts.bcast {
                return Err(CmdError::new(
                    "You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
                ));
            }
        }
        if opts.bcast && (opts.optin || opts.optout) {
            return Err(CmdError::new("OPTIN and OPTOUT are not compatible with BCAST"));
        }
        if opts.optin && opts.optout {
            return Err(CmdError::new("You can't specify both OPTIN mode and OPTOUT mode"));
        }
        if let Some(cur) = &ctx.client.tracking {
            if (opts.optin && cur.opts.optout) || (opts.optout && cur.opts.optin) {
                return Err(CmdError::new(
                    "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
                ));
            }
        }
        if opts.bcast {
            tracking.check_prefixes(id, &prefixes).map_err(CmdError::new)?;
        }
        let Some(own) = ctx.client.subs.subscriber.clone() else {
            return Err(CmdError::new("this connection cannot receive invalidations"));
        };
        // Re-enabling keeps CLIENT CACHING's pending state but resets a broken redirection.
        let mode = ClientTracking {
            opts,
            redirect: redirect as u64,
            caching: ctx.client.tracking.as_ref().is_some_and(|t| t.caching),
            broken: Default::default(),
        };
        tracking.enable(id, &mode, own, redirect_to, &prefixes, ctx.client.proto == crate::protocol::Proto::Resp3);
        ctx.client.tracking = Some(mode);
    } else if is(&args[2], "off") {
        if ctx.client.tracking.take().is_some() {
            tracking.disable(id);
        }
    } else {
        return Err(CmdError::new(errors::SYNTAX));
    }
    ctx.reply.ok();
    Ok(())
}

/// CLIENT CACHING YES|NO: track (OPTIN) or do not track (OPTOUT) the next command's keys.
pub fn client_caching(ctx: &mut Ctx) -> CmdResult {
    let Some(t) = ctx.client.tracking.as_mut() else {
        return Err(CmdError::new(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    };
    let opt = &ctx.args[2];
    if is(opt, "yes") {
        if !t.opts.optin {
            return Err(CmdError::new("CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."));
        }
    } else if is(opt, "no") {
        if !t.opts.optout {
            return Err(CmdError::new("CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."));
        }
    } else {
        return Err(CmdError::new(errors::SYNTAX));
    }
    t.caching = true;
    ctx.reply.ok();
    Ok(())
}

/// CLIENT GETREDIR: -1 when not tracking, 0 when not redirecting, else the target's id.
pub fn client_getredir(ctx: &mut Ctx) -> CmdResult {
    ctx.reply.int(ctx.client.tracking.as_ref().map_or(-1, |t| t.redirect as i64));
    Ok(())
}

/// CLIENT TRACKINGINFO: flags, redirect and prefixes, in Redis's order.
pub fn client_trackinginfo(ctx: &mut Ctx) -> CmdResult {
    let t = ctx.client.tracking.as_ref();
    let mut flags: Vec<&str> = vec![if t.is_some() { "on" } else { "off" }];
    let mut prefixes = Vec::new();
    if let Some(t) = t {
        if t.opts.bcast {
            flags.push("bcast");
            prefixes = ctx.server.tracking.prefixes_of(ctx.client.id());
        }
        if t.opts.optin {
            flags.push("optin");
            if t.caching {
                flags.push("caching-yes");
            }
        }
        if t.opts.optout {
            flags.push("optout");
            if t.caching {
                flags.push("caching-no");
            }
        }
        if t.opts.noloop {
            flags.push("noloop");
        }
        if t.broken.load(Ordering::SeqCst) {
            flags.push("broken_redirect");
        }
    }
    ctx.reply.map(3);
    ctx.reply.bulk(b"flags");
    ctx.reply.set(flags.len());
    for f in flags {
        ctx.reply.bulk(f.as_bytes());
    }
    ctx.reply.bulk(b"redirect");
    ctx.reply.int(t.map_or(-1, |t| t.redirect as i64));
    ctx.reply.bulk(b"prefixes");
    ctx.reply.array(prefixes.len());
    for p in prefixes {
        ctx.reply.bulk(&p);
    }
    Ok(())
}
