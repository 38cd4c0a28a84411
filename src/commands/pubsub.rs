//! Pub/Sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH and PUBSUB.

use bytes::Bytes;

use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("subscribe", subscribe).internal(PUSH_REPLY | SUBSCRIBED_OK),
    CommandSpec::new("unsubscribe", unsubscribe).internal(PUSH_REPLY | SUBSCRIBED_OK),
    CommandSpec::new("psubscribe", psubscribe).internal(PUSH_REPLY | SUBSCRIBED_OK),
    CommandSpec::new("punsubscribe", punsubscribe).internal(PUSH_REPLY | SUBSCRIBED_OK),
    CommandSpec::new("ssubscribe", ssubscribe).internal(PUSH_REPLY | SUBSCRIBED_OK),
    CommandSpec::new("sunsubscribe", sunsubscribe).internal(PUSH_REPLY | SUBSCRIBED_OK),
    CommandSpec::new("publish", publish),
    CommandSpec::new("spublish", spublish),
    CommandSpec::new("pubsub", super::server::container_help).subs(PUBSUB_SUBS),
];

static PUBSUB_SUBS: &[CommandSpec] = &[
    CommandSpec::new("channels", pubsub_channels),
    CommandSpec::new("numsub", pubsub_numsub),
    CommandSpec::new("numpat", pubsub_numpat),
    CommandSpec::new("shardchannels", pubsub_shardchannels),
    CommandSpec::new("shardnumsub", pubsub_shardnumsub),
    CommandSpec::new("help", pubsub_help),
];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn words(self) -> (&'static [u8], &'static [u8]) {
        match self {
            Kind::Channel => (b"subscribe", b"unsubscribe"),
            Kind::Pattern => (b"psubscribe", b"punsubscribe"),
            Kind::Shard => (b"ssubscribe", b"sunsubscribe"),
        }
    }
}

fn list<'c>(ctx: &'c mut Ctx<'_, '_>, kind: Kind) -> &'c mut Vec<Bytes> {
    let s = &mut ctx.client.subs;
    match kind {
        Kind::Channel => &mut s.channels,
        Kind::Pattern => &mut s.patterns,
        Kind::Shard => &mut s.shard_channels,
    }
}

fn count(ctx: &Ctx, kind: Kind) -> i64 {
    let s = &ctx.client.subs;
    if kind == Kind::Shard {
        s.shard_channels.len() as i64
    } else {
        s.count() as i64
    }
}

fn reply_event(ctx: &mut Ctx, word: &[u8], name: Option<&[u8]>, n: i64) {
    ctx.reply.push(3);
    ctx.reply.bulk(word);
    match name {
        Some(c) => ctx.reply.bulk(c),
        None => ctx.reply.null(),
    }
    ctx.reply.int(n);
}

fn sub_generic(ctx: &mut Ctx, kind: Kind) -> CmdResult {
    let args = ctx.args;
    let Some(subscriber) = ctx.client.subs.subscriber.clone() else {
        return Err(CmdError::new("this connection cannot subscribe"));
    };
    for name in &args[1..] {
        if !list(ctx, kind).contains(name) {
            let name = &crate::protocol::detached(name);
            list(ctx, kind).push(name.clone());
            let ps = &ctx.server.pubsub;
            match kind {
                Kind::Channel => ps.subscribe(name, &subscriber, false),
                Kind::Shard => ps.subscribe(name, &subscriber, true),
                Kind::Pattern => ps.psubscribe(name, &subscriber),
            }
        }
        let n = count(ctx, kind);
        reply_event(ctx, kind.words().0, Some(name), n);
    }
    Ok(())
}

/// Unsubscribe from the given names (all when empty), replying one event per name.
fn unsub_generic(ctx: &mut Ctx, kind: Kind, names: &[Bytes], notify: bool) {
    let names: Vec<Bytes> = if names.is_empty() { list(ctx, kind).clone() } else { names.to_vec() };
    let id = ctx.client.id();
    if names.is_empty() && notify {
        let n = count(ctx, kind);
        reply_event(ctx, kind.words().1, None, n);
        return;
    }
    for name in names {
        let l = list(ctx, kind);
        if let Some(pos) = l.iter().position(|c| *c == name) {
            l.remove(pos);
            let ps = &ctx.server.pubsub;
            match kind {
                Kind::Channel => ps.unsubscribe(&name, id, false),
                Kind::Shard => ps.unsubscribe(&name, id, true),
                Kind::Pattern => ps.punsubscribe(&name, id),
            }
        }
        if notify {
            let n = count(ctx, kind);
            reply_event(ctx, kind.words().1, Some(&name), n);
        }
    }
}

/// Drop every subscription of a connection (RESET, disconnection).
pub fn unsubscribe_all(server: &crate::server::Server, client: &mut crate::session::client::Client) {
    let id = client.id();
    let s = &mut client.subs;
    for c in s.channels.drain(..) {
        server.pubsub.unsubscribe(&c, id, false);
    }
    for c in s.shard_channels.drain(..) {
        server.pubsub.unsubscribe(&c, id, true);
    }
    for p in s.patterns.drain(..) {
        server.pubsub.punsubscribe(&p, id);
    }
}

fn subscribe(ctx: &mut Ctx) -> CmdResult {
    sub_generic(ctx, Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx) -> CmdResult {
    sub_generic(ctx, Kind::Pattern)
}

fn ssubscribe(ctx: &mut Ctx) -> CmdResult {
    sub_generic(ctx, Kind::Shard)
}

fn unsubscribe(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    unsub_generic(ctx, Kind::Channel, &args[1..], true);
    Ok(())
}

fn punsubscribe(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    unsub_generic(ctx, Kind::Pattern, &args[1..], true);
    Ok(())
}

fn sunsubscribe(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    unsub_generic(ctx, Kind::Shard, &args[1..], true);
    Ok(())
}

fn publish(ctx: &mut Ctx) -> CmdResult {
    if ctx.server.sentinel.get().is_some() {
        return super::sentinel::publish(ctx);
    }
    let n = ctx.server.pubsub.publish(&ctx.args[1], &ctx.args[2], false);
    match ctx.server.cluster.get() {
        // In a cluster the bus carries it to every node (replicas included).
        Some(c) => c.propagate_publish(&ctx.args[1], &ctx.args[2], false),
        // Replicas' subscribers get the message too (Redis propagates PUBLISH to replicas only).
        None => ctx.db.propagate_to_replicas(ctx.args.to_vec()),
    }
    ctx.reply.int(n as i64);
    Ok(())
}

fn spublish(ctx: &mut Ctx) -> CmdResult {
    let n = ctx.server.pubsub.publish(&ctx.args[1], &ctx.args[2], true);
    if let Some(c) = ctx.server.cluster.get() {
        c.propagate_publish(&ctx.args[1], &ctx.args[2], true);
    }
    ctx.reply.int(n as i64);
    Ok(())
}

fn channels_generic(ctx: &mut Ctx, shard: bool) -> CmdResult {
    let args = ctx.args;
    if args.len() > 3 {
        return Err(CmdError::new(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            super::args::echo(&args[1])
        )));
    }
    let chans = ctx.server.pubsub.channels(args.get(2).map(|p| &p[..]), shard);
    ctx.reply.array(chans.len());
    for c in chans {
        ctx.reply.bulk(&c);
    }
    Ok(())
}

fn numsub_generic(ctx: &mut Ctx, shard: bool) -> CmdResult {
    let args = ctx.args;
    ctx.reply.array((args.len() - 2) * 2);
    for c in &args[2..] {
        ctx.reply.bulk(c);
        ctx.reply.int(ctx.server.pubsub.numsub(c, shard) as i64);
    }
    Ok(())
}

fn pubsub_channels(ctx: &mut Ctx) -> CmdResult {
    channels_generic(ctx, false)
}

fn pubsub_shardchannels(ctx: &mut Ctx) -> CmdResult {
    channels_generic(ctx, true)
}

fn pubsub_numsub(ctx: &mut Ctx) -> CmdResult {
    numsub_generic(ctx, false)
}

fn pubsub_shardnumsub(ctx: &mut Ctx) -> CmdResult {
    numsub_generic(ctx, true)
}

fn pubsub_numpat(ctx: &mut Ctx) -> CmdResult {
    ctx.reply.int(ctx.server.pubsub.numpat() as i64);
    Ok(())
}

fn pubsub_help(ctx: &mut Ctx) -> CmdResult {
    super::server::reply_help(
        ctx,
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    );
    Ok(())
}

/// Whether a RESP2 connection in subscribed mode may run this command.
pub fn allowed_when_subscribed(name: &str) -> bool {
    matches!(
        name,
        "ping"
            | "subscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "quit"
            | "reset"
    )
}
