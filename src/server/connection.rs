//! One client connection: read bytes, decode every complete request in the buffer, execute them
//! in order through the pipeline, and send all their replies in one write (pipelining).
//! Also enforces the per-connection limits: maxclients at accept, the idle `timeout`,
//! `client-query-buffer-limit`, `client-output-buffer-limit` (checked after every command and
//! every Pub/Sub message, as Redis checks when a reply is added, and without traffic when a
//! soft limit runs out), and closes after a protocol error (after replying to it).
//!
//! Replies leave through the connection's [`Outbox`], which never waits for the socket: a
//! client that does not read keeps its replies queued (up to its limit) while the task goes
//! on reading it and serving it, as Redis's event loop does, and nothing else on the worker
//! waits for it.

use super::listen::Stream;
use bytes::{Bytes, BytesMut};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

use super::outbox::Outbox;
use super::query_buffer::{make_room, Sizing, READ_CHUNK};
use super::{log, Server};
use crate::commands::pipeline::{self, Action};
use crate::keyspace::clock::Stamp;
use crate::metrics::obuf::{Class, Meter};
use crate::protocol::parser::{parse_request_framed, Framing};
use crate::protocol::{ParseLimits, ReplySink};
use crate::session::{Client, ClientHandle};
use crate::util::striped;

/// Serve one connection. `addr`/`laddr` are CLIENT LIST's (`path:0` for a Unix socket);
/// `local`: the peer is 127.0.0.1, ::1 or a Unix socket (Redis 7.0's islocalClient: protected
/// mode serves only those while the default user has no password).
///
/// The connection's task holds this future for its whole life, idle or not, and a future is
/// as big as its biggest wait: the rare ones (a blocked command, a replica's stream, CLIENT
/// PAUSE, WAIT, a script, a SHUTDOWN, the AOF's wait, the last flush) are boxed when they start,
/// so that they do not size every connection. The task (tokio's header, this future, its
/// trailer) then fits mimalloc's 2 KiB size class; see the test below.
#[allow(clippy::manual_async_fn)] // on purpose: see the comment on the block
pub fn serve(
    server: Arc<Server>,
    mut sock: Stream,
    addr: String,
    laddr: String,
    local: bool,
) -> impl Future<Output = ()> {
    // An async block, not an async fn: an async fn's future keeps a second copy of its
    // arguments (rust-lang/rust#62958), ~100 bytes of every connection's task.
    async move {
        server.stats.total_connections_received.fetch_add(1, Ordering::Relaxed);
        let settings = server.config.snapshot();
        if let Some(tcp) = sock.tcp() {
            set_keepalive(tcp, settings.tcp_keepalive as u64);
        }
        if !local && settings.protected_mode && server.acl.default_nopass() {
            server.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
            let _ = sock.write_all(PROTECTED_MODE_ERROR.as_bytes()).await;
            return;
        }
        let fd = sock.raw_fd();
        let id = server.next_client_id();
        let handle = ClientHandle::new(id, addr, laddr, fd);
        let admitted = {
            let mut clients = server.clients.lock();
            let ok = clients.len() < settings.maxclients as usize;
            if ok {
                clients.insert(id, handle.clone());
            }
            ok
        };
        if !admitted {
            server.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
            let _ = sock.write_all(b"-ERR max number of clients reached\r\n").await;
            return;
        }
        let mut client = Client::new(handle.clone(), false);
        client.tls = matches!(sock, Stream::Tls(_));
        crate::commands::pipeline::services::set_default_auth(&server, &mut client);
        if let Some(cert) = sock.peer_certificate() {
            crate::commands::pipeline::services::authenticate_certificate(&server, &mut client, &cert);
        }
        // Pub/Sub messages reach this connection through its push queue.
        let (push_tx, mut push_rx) = crate::pubsub::queue();
        // Weak references: the handle holds this subscriber (for CLIENT TRACKING REDIRECT), and
        // the server holds the handle.
        // (In a block: what it builds is not kept in the task's future across the wait below.)
        {
            let killer = Arc::downgrade(&handle);
            let weak_server = server.me.clone();
            let subscriber = crate::pubsub::Subscriber::new(
                id,
                push_tx,
                handle.meter.clone(),
                Arc::new(move || {
                    // A publisher found this subscriber over its output-buffer limit.
                    if let (Some(h), Some(s)) = (killer.upgrade(), weak_server.upgrade()) {
                        super::outbox::obuf_closed(&s, &h, true);
                    }
                }),
            );
            let _ = handle.push.set(subscriber.clone());
            client.subs.subscriber = Some(subscriber);
        }
        let result = client_loop(&server, &mut sock, &mut client, &mut push_rx).await;
        if client.monitor {
            server.monitors.remove(id);
        }
        pipeline::client_closed(&server, &mut client);
        if client.tracking.take().is_some() {
            server.tracking.disable(id);
        }
        if let Err(why) = result {
            log::verbose(&format!("Client id={} addr={} closed: {}", id, handle.addr, why));
        }
        handle.meter.unsent.store(0, Ordering::Relaxed);
        super::client_eviction::forget(&server, &handle);
        server.clients.lock().remove(&id);
    }
}

const PROTECTED_MODE_ERROR: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

type PushRx = crate::pubsub::PushReceiver;

/// The output-buffer class of a client (Redis's getClientType; a replica link streams through
/// `replication::stream_to_replica` with its own class), or the unauthenticated client's limit.
fn class_of(server: &Server, client: &Client) -> Class {
    if crate::commands::pipeline::services::auth_required(server, client) {
        Class::Unauthenticated
    } else if client.subs.active() {
        Class::Pubsub
    } else {
        Class::Normal
    }
}

/// Encode a Pub/Sub message for the connection's protocol (a RESP2 array or a RESP3 push).
/// Invalidations reach a RESP2 connection only as `__redis__:invalidate` messages to a client
/// that others redirect to and that is in Pub/Sub mode (Redis's sendTrackingMessage).
fn encode_push(out: &mut ReplySink, msg: &crate::pubsub::Push, subs: &mut crate::session::Subscriptions) {
    use crate::pubsub::Push;
    let resp3 = out.proto == crate::protocol::Proto::Resp3;
    let subscribed = subs.active();
    match msg {
        Push::Invalidate { keys, redirected, null_resp3 } => {
            if resp3 {
                out.push(2);
                out.bulk(b"invalidate");
            } else if *redirected && subscribed {
                out.push(3);
                out.bulk(b"message");
                out.bulk(b"__redis__:invalidate");
            } else {
                return;
            }
            match keys {
                Some(keys) => {
                    out.array(keys.len());
                    for k in keys {
                        out.bulk(k);
                    }
                }
                None => out.raw(if *null_resp3 { b"_\r\n" } else { b"$-1\r\n" }),
            }
        }
        Push::RedirBroken { id } => {
            if resp3 {
                out.push(2);
                out.bulk(b"tracking-redir-broken");
                out.int(*id as i64);
            }
        }
        Push::Message { channel, payload } | Push::SMessage { channel, payload } => {
            out.push(3);
            out.bulk(if matches!(msg, Push::Message { .. }) { b"message" } else { b"smessage" });
            out.bulk(channel);
            out.bulk(payload);
        }
        Push::Monitor(line) => {
            out.buf.push(b'+');
            out.buf.extend_from_slice(line);
            out.buf.extend_from_slice(b"\r\n");
        }
        Push::SUnsubscribed(channel) => {
            subs.shard_channels.retain(|c| c != channel);
            out.push(3);
            out.bulk(b"sunsubscribe");
            out.bulk(channel);
            out.int(subs.shard_channels.len() as i64);
        }
        Push::Wake => {}
        Push::PMessage { pattern, channel, payload } => {
            out.push(4);
            out.bulk(b"pmessage");
            out.bulk(pattern);
            out.bulk(channel);
            out.bulk(payload);
        }
    }
}

/// Encode every message already queued for this connection.
fn drain_pushes(out: &mut ReplySink, push_rx: &mut PushRx, meter: &Meter, subs: &mut crate::session::Subscriptions) {
    while let Ok(m) = push_rx.try_recv() {
        encode_push(out, &m, subs);
        crate::pubsub::Subscriber::written(meter, &m);
    }
}

/// Write out what is already queued for this connection ahead of the reply of the command
/// about to run, or to run again after a wait (blocked, paused, behind a script): Redis added
/// it to the reply buffer when it was sent, before anything that command writes. Returns
/// whether anything was queued.
fn drain_queued(out: &mut Outbox, push_rx: &mut PushRx, client: &mut Client) -> bool {
    let queued = out.meter.queued.load(Ordering::Relaxed) > 0;
    if queued {
        out.sink.proto = client.proto;
        drain_pushes(&mut out.sink, push_rx, &out.meter, &mut client.subs);
    }
    queued
}

/// Encode a message just received for this connection and every one queued behind it.
fn encode_received(out: &mut Outbox, msg: &crate::pubsub::Push, push_rx: &mut PushRx, client: &mut Client) {
    out.sink.proto = client.proto;
    encode_push(&mut out.sink, msg, &mut client.subs);
    crate::pubsub::Subscriber::written(&out.meter, msg);
    drain_pushes(&mut out.sink, push_rx, &out.meter, &mut client.subs);
}

/// Send the BCAST invalidations collected so far (Redis's beforeSleep does, once per
/// event-loop cycle): at the end of a batch of pipelined requests, and before the client
/// waits (blocked, paused, WAIT...), its own messages following the replies written so far.
/// The batch's guard sends them as it goes (see [`crate::tracking::Tracking::defer_bcast`]).
fn broadcast_invalidations(
    server: &Server,
    out: &mut Outbox,
    push_rx: &mut PushRx,
    client: &mut Client,
    defer: &mut Option<crate::tracking::DeferBcast<'_>>,
) {
    let sent = defer.take().is_some();
    if server.tracking.any() {
        if !sent {
            server.tracking.flush_bcast();
        }
        drain_queued(out, push_rx, client);
    }
}

/// What woke the connection up.
enum Event {
    Readable,
    Writable,
    Push(crate::pubsub::Push),
    SoftLimit,
}

/// Requests run back to back (or reply bytes produced) before the connection lets the
/// worker's other tasks run.
const BATCH_SLICE: u64 = 64;
const SLICE_BYTES: usize = 512 * 1024;
/// Waits that go straight to the reactor after a read before waiting found nothing (the
/// client waits for each reply): one failed read in this many plus one.
const EARLY_READ_BACKOFF: u32 = 8;
/// Without an output-buffer limit, replies past this are sent during a long batch.
const SEND_DURING_BATCH: usize = 1 << 20;
/// Replies a batch may add before its connection's memory is published again (client
/// eviction): Redis counts each reply as it is added and evicts before the next command, so
/// a pipeline of big replies must not wait for its batch's end to count.
const ACCOUNT_STEP: usize = 64 * 1024;

#[allow(clippy::manual_async_fn)] // on purpose, as `serve`
fn client_loop<'a>(
    server: &'a Arc<Server>,
    sock: &'a mut Stream,
    client: &'a mut Client,
    push_rx: &'a mut PushRx,
) -> impl Future<Output = Result<(), String>> + 'a {
    // An async block, as `serve`'s.
    async move {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let mut sizing = Sizing::default();
        let mut out = Outbox::new(ReplySink::new(client.proto), client.handle.meter.clone());
        let handle = client.handle.clone();
        // One argument vector for all of this connection's requests (no allocation per command;
        // an idle connection gives it back with its buffers).
        let mut args: Vec<Bytes> = Vec::with_capacity(8);
        // A big request's own buffer (see `Framing`).
        let mut framing = Framing::default();
        // Reads in a row that found input without waiting, and waits to go before the next read
        // before waiting after one found nothing (see below).
        let mut streak = 0u32;
        let mut skip_early = 0u32;
        let run_queue = super::listen::RunQueue::current();
        let mut settings = Settings::load(server);
        loop {
            settings.refresh(server);
            // Read before waiting: a busy client's next requests are usually there already (the
            // socket is asked, not the reactor: a read that drained the socket cleared its
            // readiness, see `Stream::try_read_buf`). A client that waits for each reply has sent
            // nothing yet: after a read that found nothing, the next few waits go straight to the
            // reactor, which the drained read left waiting for input. A run of reads goes through
            // the wait now and then, where the scheduler's budget can suspend it, so one client
            // cannot hog its worker.
            // (Not into a buffer an idle connection gave back: that waits for input first.)
            let try_early = streak < 16 && skip_early == 0 && buf.capacity() - buf.len() >= 1024;
            skip_early = skip_early.saturating_sub(1);
            let early = if try_early { read_input(sock, &mut buf, Stream::try_read_now)? } else { None };
            if try_early && early.is_none() {
                skip_early = EARLY_READ_BACKOFF;
            }
            let n = if let Some(n) = early {
                streak += 1;
                n
            } else {
                streak = 0;
                // Wait for input, unless the connection is killed or idle for too long.
                let soft_deadline = out.meter.soft_deadline_ms(settings.obuf_limits.of(class_of(server, client)));
                // A soft limit that ran out is acted on here, not left to the wait below: there a
                // timer already due is not ready at its first poll (the timer thread fires it), and
                // the wake-up it then gives is taken as input, so the wait could go round without
                // ever seeing it (the client closed seconds late, whenever another event came).
                if soft_deadline.is_some_and(|ms| ms <= crate::keyspace::now_ms())
                    && out.over(settings.obuf_limits.of(class_of(server, client)))
                {
                    return Err(super::outbox::obuf_closed(server, &handle, false));
                }
                let pending = out.has_pending() || sock.has_unflushed();
                // Input first, then the socket taking more output, then the push queue (a kill
                // wakes the connection through it: `ClientHandle::kill`), then the soft limit.
                // Polled by hand rather than with `select!`: this runs once per request on an
                // unpipelined connection, and the readiness polls register one waker slot each
                // instead of a waiter in the socket's list.
                //
                // Once the first poll has registered the wake-ups, a wake-up is taken as input: the
                // read that follows looks at the socket's readiness (no system call when it is not
                // ready) and comes back here if there was none. A second readiness poll per request
                // (scheduler budget, readiness, waker check) cost ~200 instructions more.
                let mut soft = soft_deadline.map(|ms| Box::pin(sleep_until_ms(ms)));
                // (Not under the idle timeout, whose expiry must be seen as such.)
                let timed = settings.timeout > 0 && !client.subs.active() && !client.replica_flagged();
                let mut registered = false;
                let wait = std::future::poll_fn(|cx| {
                    if registered && !timed {
                        return Poll::Ready(Ok(Event::Readable));
                    }
                    registered = true;
                    if let Poll::Ready(r) = sock.poll_read_ready(cx) {
                        return Poll::Ready(r.map(|_| Event::Readable).map_err(|e| e.to_string()));
                    }
                    if pending {
                        if let Poll::Ready(r) = sock.poll_write_ready(cx) {
                            return Poll::Ready(r.map(|_| Event::Writable).map_err(|e| e.to_string()));
                        }
                    }
                    if let Poll::Ready(msg) = push_rx.poll_recv(cx) {
                        return Poll::Ready(Ok(Event::Push(msg)));
                    }
                    if let Some(sleep) = soft.as_mut() {
                        if sleep.as_mut().poll(cx).is_ready() {
                            return Poll::Ready(Ok(Event::SoftLimit));
                        }
                    }
                    Poll::Pending
                });
                // Subscribers and monitors are not subject to the idle timeout, as in Redis.
                // The timeout counts from the last interaction (Redis's lastinteraction: a request,
                // or a reply written), not from this wait: the cron's wake-ups and other pushes
                // between do not put it off.
                let event = if timed {
                    let idle = Stamp::now().as_ms().saturating_sub(handle.last_interaction_ms.load(Ordering::Relaxed));
                    let left = Duration::from_secs(settings.timeout).saturating_sub(Duration::from_millis(idle));
                    match crate::util::timer::timeout(left, wait).await {
                        Ok(r) => r?,
                        Err(_) => return Err("idle timeout".into()),
                    }
                } else {
                    wait.await?
                };
                match event {
                    Event::Readable => {}
                    Event::Writable => {
                        send(server, sock, &mut out).await?;
                        handle.touch_at(Stamp::now());
                        if !out.has_pending() {
                            out.shrink();
                        }
                        account_memory(server, &handle, &buf, &out, client, None, Some(&run_queue))?;
                        continue;
                    }
                    Event::SoftLimit => {
                        // Over the soft limit for too long without traffic (Redis's clientsCron check).
                        if out.over(settings.obuf_limits.of(class_of(server, client))) {
                            return Err(super::outbox::obuf_closed(server, &handle, false));
                        }
                        continue;
                    }
                    Event::Push(msg) => {
                        if handle.is_killed() {
                            return Err("killed".into());
                        }
                        let wake = matches!(msg, crate::pubsub::Push::Wake);
                        let shrink = wake && handle.take_shrink_request();
                        // An idle client gives its buffers back, the push queue's too (below).
                        let idle = shrink && handle.idle_secs() >= 2;
                        if shrink {
                            // The cron asks (see `query_buffer::resize_client_buffers`): trim the input
                            // buffer and resize the reply buffer, as Redis's clientsCron does; an
                            // idle client gives both back. The next read makes room again.
                            sizing.resize(&mut buf, idle);
                            if idle {
                                // (Empty between requests: see the batch's end.)
                                args = Vec::new();
                            }
                            resize_reply_buffer(server, &mut out, idle);
                            show_buffers(&handle, &buf, &out);
                        }
                        {
                            // Deliver every queued Pub/Sub message, then go back to reading. (The
                            // message is moved into this block: not kept across the send below.)
                            let msg = msg;
                            encode_received(&mut out, &msg, push_rx, client);
                        }
                        if idle {
                            push_rx.release_if_empty();
                        }
                        if out.over(settings.obuf_limits.of(class_of(server, client))) {
                            return Err(super::outbox::obuf_closed(server, &handle, true));
                        }
                        send(server, sock, &mut out).await?;
                        if !wake {
                            // A message written (an invalidation, say) is an interaction too.
                            handle.touch_at(Stamp::now());
                        }
                        account_memory(server, &handle, &buf, &out, client, None, Some(&run_queue))?;
                        continue;
                    }
                }
                match read_input(sock, &mut buf, Stream::try_read_buf)? {
                    Some(n) => n,
                    None => continue,
                }
            };
            sizing.note_read(&buf);
            let io = server.stats.io.local();
            io[super::io::NET_INPUT].fetch_add(n as u64, Ordering::Relaxed);
            io[super::io::READS].fetch_add(1, Ordering::Relaxed);
            let limits = ParseLimits {
                unauthenticated: crate::commands::pipeline::services::auth_required(server, client),
                ..settings.limits
            };
            // Execute every complete request in the buffer (one "event loop cycle" for INFO).
            // The batch's start is its first command's (see `call_locked`): no clock reading here.
            client.batch_began = None;
            let mut processed = 0u64;
            let mut close = false;
            let (mut slice_start, mut slice_bytes) = (0u64, out.pending());
            let mut accounted = out.pending();
            // Requests at the front of the buffer whose keys were prefetched (see `prefetch`).
            let mut prefetched = 0usize;
            // The view's memory apart from output, when this batch publishes the view.
            let mut view_base = None;
            // While the batch runs, the clients its commands wake leave the BCAST messages to it.
            let mut defer = None;
            loop {
                if handle.is_killed() {
                    return Err("killed".into());
                }
                if prefetched == 0 {
                    prefetched = pipeline::prefetch::prefetch_batch(server, client.db, &buf);
                }
                match parse_request_framed(&mut buf, &limits, &mut args, &mut framing) {
                    Ok(Some(_inline)) => {
                        prefetched = prefetched.saturating_sub(1);
                        if args.is_empty() {
                            continue;
                        }
                        out.sink.proto = client.proto;
                        processed += 1;
                        // Evict clients over maxmemory-clients before the command, as Redis's
                        // processCommand does (with what they published: this one's new input is
                        // counted after its command); a client that evicted itself stops here.
                        if super::client_eviction::enforce(server) && handle.is_killed() {
                            return Err("evicted".into());
                        }
                        // Evict keys over maxmemory before the command (evictions invalidate
                        // tracked keys, whose messages then precede this reply, as in Redis).
                        server.evict_before_command();
                        // Then keep the tracking table within tracking-table-max-keys (as Redis's
                        // processCommand does, after its evictions).
                        if server.tracking.any() {
                            server.tracking.enforce_limit(client.id());
                            if defer.is_none() {
                                defer = Some(server.tracking.defer_bcast());
                            }
                        }
                        // Messages queued before this command (an invalidation caused by the
                        // previous one, say) go out before its reply, as in Redis.
                        drain_queued(&mut out, push_rx, client);
                        out.set_limit(settings.obuf_limits.of(class_of(server, client)));
                        // A request that is its buffer's whole allocation: SET may keep its value
                        // as it is (no copy of a big value, as Redis keeps the argument's sds).
                        let own_frame = framing.owned;
                        if own_frame.is_some() {
                            client.own_frame = own_frame;
                        }
                        let mut action = if on_script_stack(client, &args) {
                            // The Lua debugger writes to the client before the reply: what precedes
                            // goes first.
                            if client.lua_debug.on() {
                                flush_all(server, sock, &mut out, &handle).await?;
                                out.set_limit(settings.obuf_limits.of(class_of(server, client)));
                            }
                            run_script(server, sock, client, &args, &mut out.sink).await
                        } else {
                            pipeline::execute(server, client, &args, &mut out.sink)
                        };
                        // A paused or blocked command waits here (this client's later requests wait
                        // too, as in Redis), then is run again.
                        let mut retry = false;
                        loop {
                            match action {
                                Action::Paused => {
                                    out.clear_limit();
                                    broadcast_invalidations(server, &mut out, push_rx, client, &mut defer);
                                    send(server, sock, &mut out).await?;
                                    server.blocking.postpone(true);
                                    let mut input = Input { buf: &mut buf, limit: settings.qb_limit };
                                    // (Boxed, as the other rare waits: see `serve`.)
                                    let gone = Box::pin(async {
                                        tokio::select! {
                                            _ = server.pause.released() => None,
                                            _ = handle.killed() => Some("killed".to_string()),
                                            why = input.until_gone(server, sock, &handle) => Some(why),
                                        }
                                    })
                                    .await;
                                    server.blocking.postpone(false);
                                    if let Some(why) = gone {
                                        return Err(why);
                                    }
                                    drain_queued(&mut out, push_rx, client);
                                    out.set_limit(settings.obuf_limits.of(class_of(server, client)));
                                    action = pipeline::execute(server, client, &args, &mut out.sink);
                                }
                                Action::Block(spec) => {
                                    out.clear_limit();
                                    broadcast_invalidations(server, &mut out, push_rx, client, &mut defer);
                                    let input = Input { buf: &mut buf, limit: settings.qb_limit };
                                    action = Box::pin(block(
                                        server, sock, client, &args, &mut out, push_rx, *spec, retry, input,
                                    ))
                                    .await?;
                                    retry = true;
                                }
                                Action::WaitScript => {
                                    // A script holds the keyspace: wait (without a lock) for it to
                                    // end or to run past busy-reply-threshold, then try again. The
                                    // wake-up is registered before the script is looked at again, so
                                    // one that ends in between is not missed.
                                    out.clear_limit();
                                    let busy = &server.scripting.busy;
                                    let _waiting = busy.waiting();
                                    let done = busy.done.notified();
                                    tokio::pin!(done);
                                    done.as_mut().enable();
                                    if !busy.is_idle() {
                                        broadcast_invalidations(server, &mut out, push_rx, client, &mut defer);
                                        send(server, sock, &mut out).await?;
                                        // (Boxed, as the other rare waits: see `serve`.)
                                        let killed = Box::pin(async {
                                            tokio::select! {
                                                _ = &mut done => false,
                                                _ = crate::util::timer::sleep(busy_poll(server)) => false,
                                                _ = handle.killed() => true,
                                            }
                                        })
                                        .await;
                                        if killed {
                                            return Err("killed".into());
                                        }
                                    }
                                    drain_queued(&mut out, push_rx, client);
                                    out.set_limit(settings.obuf_limits.of(class_of(server, client)));
                                    action = if on_script_stack(client, &args) {
                                        run_script(server, sock, client, &args, &mut out.sink).await
                                    } else {
                                        pipeline::execute(server, client, &args, &mut out.sink)
                                    };
                                }
                                _ => break,
                            }
                        }
                        if server.blocking.has_unsettled() {
                            // The BCAST messages wait for the batch's end (also when a woken client
                            // could not run in time).
                            let_woken_clients_run(server).await;
                        }
                        // Redis checks the output-buffer limit as each reply is added: a client over
                        // it is closed before anything more is sent to it (a reply over the hard
                        // limit is never sent at all).
                        let limit = settings.obuf_limits.of(class_of(server, client));
                        if out.over(limit) {
                            return Err(super::outbox::obuf_closed(server, &handle, true));
                        }
                        out.clear_limit();
                        match action {
                            Action::None | Action::Block(_) | Action::Paused | Action::WaitScript => {}
                            Action::Close => {
                                close = true;
                                break;
                            }
                            // Nothing more is sent, not even the replies already encoded.
                            Action::Drop => return Err("cross protocol request".into()),
                            Action::Replicate(link) => {
                                flush_all(server, sock, &mut out, &handle).await?;
                                // Replica links are never evicted (Redis evicts normal and Pub/Sub
                                // clients only).
                                handle.view.lock().no_evict = true;
                                if let Some(t) = sock.tcp() {
                                    let _ = t.set_nodelay(!server.config.load().repl_disable_tcp_nodelay);
                                }
                                let input = std::mem::take(&mut buf);
                                let _shut = crate::session::ShutOnKill::new(&handle);
                                return Box::pin(crate::replication::master::serve(server, sock, client, link, input))
                                    .await;
                            }
                            Action::WaitAcks(spec) => {
                                broadcast_invalidations(server, &mut out, push_rx, client, &mut defer);
                                send(server, sock, &mut out).await?;
                                let killed = handle.clone();
                                // Counted in blocked_clients meanwhile, as Redis's BLOCKED_WAIT.
                                server.blocking.postpone(true);
                                let timeout_entry = server.blocking.timeout_entry(spec.deadline);
                                let mut input = Input { buf: &mut buf, limit: settings.qb_limit };
                                let closing = Box::pin(async {
                                    tokio::select! {
                                        c = crate::replication::wait_acks(server, &spec, &mut out.sink) => Ok(c),
                                        _ = killed.killed() => Err("killed".to_string()),
                                        why = input.until_gone(server, sock, &handle) => Err(why),
                                    }
                                })
                                .await;
                                server.blocking.postpone(false);
                                drop(timeout_entry);
                                count_sink_errors(server, &mut out.sink);
                                match closing {
                                    Err(why) => return Err(why),
                                    Ok(true) => {
                                        close = true;
                                        break;
                                    }
                                    Ok(false) => {}
                                }
                            }
                            Action::Shutdown(flags) => {
                                broadcast_invalidations(server, &mut out, push_rx, client, &mut defer);
                                send(server, sock, &mut out).await?;
                                // Blocked until the outcome, as Redis's BLOCKED_SHUTDOWN (counted
                                // with the paused clients in blocked_clients).
                                server.blocking.postpone(true);
                                let killed = handle.clone();
                                let outcome = Box::pin(async {
                                    tokio::select! {
                                        r = super::shutdown::request(server, flags) => Some(r),
                                        _ = killed.killed() => None,
                                    }
                                })
                                .await;
                                server.blocking.postpone(false);
                                match outcome {
                                    None => return Err("killed".into()),
                                    // The process is exiting: as with Redis, this client sees its
                                    // connection close only when the process is gone (closing it
                                    // now let a client connect and be served meanwhile).
                                    Some(Ok(())) => std::future::pending().await,
                                    Some(Err(msg)) => {
                                        out.sink.error(msg);
                                        count_sink_errors(server, &mut out.sink);
                                    }
                                }
                            }
                        }
                        if own_frame.is_some() {
                            client.own_frame = None;
                        }
                        out.sink.proto = client.proto;
                        out.spill();
                        if out.pending() >= accounted + ACCOUNT_STEP {
                            account_memory(server, &handle, &buf, &out, client, None, None)?;
                            accounted = out.pending();
                        }
                        if processed - slice_start >= BATCH_SLICE || out.pending() > slice_bytes + SLICE_BYTES {
                            // A long pipeline: without a limit, big replies start leaving now;
                            // and the worker's other connections get their turn.
                            if limit.hard == 0 && limit.soft == 0 && out.pending() > SEND_DURING_BATCH {
                                send(server, sock, &mut out).await?;
                            }
                            tokio::task::yield_now().await;
                            slice_start = processed;
                            slice_bytes = out.pending();
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // The other clients get the batch's BCAST invalidations (this one closes).
                        if defer.take().is_none() && server.tracking.any() {
                            server.tracking.flush_bcast();
                        }
                        out.sink.error(&e.0);
                        count_sink_errors(server, &mut out.sink);
                        log::verbose(&format!("Protocol error ({}) from client id={}", e.0, client.id()));
                        flush_all(server, sock, &mut out, &handle).await?;
                        return Err("protocol error".into());
                    }
                }
            }
            // The last request's arguments are released (parse_request_framed cleared them), so the
            // read buffer is again the only owner of its memory; a huge request's vector goes.
            if args.capacity() > 1024 {
                args = Vec::with_capacity(8);
            }
            // The batch's BCAST invalidations (a QUITting client is not sent its own: they are
            // queued after the close, as Redis drops a reply to a client closing after its reply).
            // (Sent by the guard; without one, left to a batch that defers them, as a client woken
            // by its command is served within its event-loop cycle in Redis.)
            if defer.take().is_none() && processed > 0 && server.tracking.any() && !server.tracking.bcast_deferred() {
                server.tracking.flush_bcast();
            }
            let mut cycle = Duration::ZERO;
            if processed > 0 {
                let io = server.stats.io.local();
                io[super::io::CYCLES].fetch_add(1, Ordering::Relaxed);
                // The batch's last reading (its last command's end): no clock read.
                let now = Stamp::last();
                cycle = client.batch_began.take().map_or(Duration::ZERO, |start| now.since(start));
                io[super::io::CYCLES_US].fetch_add(cycle.as_micros() as u64, Ordering::Relaxed);
                io[super::io::COMMANDS].fetch_add(processed, Ordering::Relaxed);
                // This thread's maxima (INFO debug), on the stripe line already in hand.
                striped::raise(&io[super::io::CYCLE_MAX_US], cycle.as_micros() as u64);
                striped::raise(&io[super::io::CYCLE_MAX_CMDS], processed);
                handle.touch_at(now);
                sizing.after_requests(&mut buf);
                if buf.is_empty() {
                    // All consumed: the front the requests took is room again (CLIENT LIST shows
                    // the whole allocation free, as Redis's qbuf-free); no allocation.
                    let _ = buf.try_reclaim(READ_CHUNK);
                }
                let (rbs, rbp) = out.reply_buffer();
                view_base = Some(client.sync_view_with(
                    client.last_cmd,
                    buf.len(),
                    Some((buf.capacity() - buf.len(), rbs, rbp)),
                ));
            }
            // Part of a request arrived: CLIENT LIST shows the query buffer filling (after a
            // batch that consumed everything, sync_view_with has already shown it empty).
            if processed == 0 || !buf.is_empty() {
                if processed == 0 {
                    // Input without a complete request is an interaction too (Redis sets
                    // lastinteraction on every read): CLIENT LIST's idle, and the query buffer's
                    // idle trim, which must not take the room a big argument is being read into.
                    handle.touch_at(Stamp::now());
                }
                show_partial(&handle, &buf, &mut sizing);
                view_base = None;
            }
            if close {
                flush_all(server, sock, &mut out, &handle).await?;
                return Ok(());
            }
            // What the batch's last command queued for this connection itself (the invalidation
            // of a key it tracks and wrote, a message it published to its own channel) follows
            // that reply in the same write, as Redis appends it to the reply buffer after the
            // command (afterCommand): a client that looks for pushes without waiting before its
            // next command (redis-py's client-side cache) must find it there.
            if processed > 0
                && drain_queued(&mut out, push_rx, client)
                && out.over(settings.obuf_limits.of(class_of(server, client)))
            {
                return Err(super::outbox::obuf_closed(server, &handle, true));
            }
            // Other connections' input arrived in the same reactor turn: their batches run first and
            // the replies then go out back to back, as Redis writes in beforeSleep. A client woken
            // by the first reply is still reading when the next ones arrive, which spares the kernel
            // a wake-up of a sleeping client per reply (GET -P 16, 50 clients: server system time
            // per request 0.8 -> 0.4 us, rps +30%). Not after a single request: there the task's
            // second poll cost more than it saved (GET -P 1, 50 clients, callgrind: 4,913 -> 4,387
            // instructions per request without it; Redis 4,266), unless the request ran long enough
            // for the client to fall asleep meanwhile (MSET of 10 keys, -P 1, 50 clients, busy
            // polling off: server system time per request 7.8-9.4 -> 4.6-6.0 us, rps +15-40%).
            if (processed > 1 || cycle >= DEFER_AFTER) && out.has_pending() && run_queue.others_ready() {
                // The replies held back count toward maxmemory-clients before the others run, as
                // Redis counts a reply when it is added and evicts before the next command: a
                // client over the limit is gone before another's command (CLIENT LIST, say) sees
                // it over.
                account_memory(server, &handle, &buf, &out, client, view_base, None)?;
                tokio::task::yield_now().await;
            }
            if server.aof.unsynced(|| server.keyspace.effects.seq()).is_some() {
                send(server, sock, &mut out).await?;
            } else {
                send_now(server, sock, &mut out)?;
            }
            // What it holds now (a big argument being read counts): maybe over maxmemory-clients,
            // checked after the replies were written when no other task of this worker is ready
            // (Redis evicts in beforeSleep, after its writes). The view's part is known when this
            // batch published it (saving a second lock of the view).
            account_memory(server, &handle, &buf, &out, client, view_base, Some(&run_queue))?;
            super::query_buffer::check_limit(server, &handle, &buf, settings.qb_limit)?;
        }
    }
}

/// The configuration a connection reads for every batch, kept until CONFIG SET (or anything
/// else that applies the configuration) moves `Server::config_epoch`: loading the config and
/// the output limits cost ~70 instructions per batch, a tenth of a GET's own work.
#[derive(Clone, Copy)]
struct Settings {
    epoch: u64,
    timeout: u64,
    limits: ParseLimits,
    qb_limit: usize,
    obuf_limits: crate::metrics::obuf::Limits,
}

impl Settings {
    fn load(server: &Server) -> Settings {
        // The epoch first: a change applied while the values are read moves it again, and the
        // next batch reads them anew.
        let epoch = server.config_epoch.load(Ordering::Acquire);
        let c = server.config.load();
        Settings {
            epoch,
            timeout: c.timeout as u64,
            limits: ParseLimits { max_bulk_len: c.proto_max_bulk_len, unauthenticated: false },
            qb_limit: c.client_query_buffer_limit as usize,
            obuf_limits: *server.obuf_limits.read(),
        }
    }

    #[inline]
    fn refresh(&mut self, server: &Server) {
        if server.config_epoch.load(Ordering::Acquire) != self.epoch {
            *self = Settings::load(server);
        }
    }
}

/// CLIENT LIST's qbuf / qbuf-free / argv-mem while a request is partly read, as Redis counts
/// them (see `parser::partial_progress`); the room an argument being read needs counts in the
/// buffer's peak.
fn show_partial(handle: &crate::session::ClientHandle, buf: &BytesMut, sizing: &mut Sizing) {
    let (consumed, argv, pending_end) = crate::protocol::parser::partial_progress(buf);
    if let Some(end) = pending_end {
        sizing.note_pending(consumed, end);
    }
    let mut v = handle.view.lock();
    v.qbuf = buf.len() - consumed;
    v.qbuf_free = buf.capacity() - buf.len();
    v.argv_mem = argv;
}

/// The cron's request to resize the reply buffer (Redis's clientsCronResizeOutputBuffer, off
/// with DEBUG REPLYBUFFER RESIZING 0): an idle client's goes back to the smallest size.
fn resize_reply_buffer(server: &Server, out: &mut Outbox, idle: bool) {
    if !server.reply_buffer_resizing.load(Ordering::Relaxed) {
        return;
    }
    if idle {
        out.shrink();
    }
    let reset = server.reply_buffer_peak_reset_ms.load(Ordering::Relaxed);
    let counter = match out.resize_reply_buffer((reset >= 0).then(|| Duration::from_millis(reset as u64))) {
        std::cmp::Ordering::Less => &server.stats.reply_buffer_shrinks,
        std::cmp::Ordering::Greater => &server.stats.reply_buffer_expands,
        std::cmp::Ordering::Equal => return,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// CLIENT LIST's qbuf-free, rbs and rbp after the cron resized the buffers between batches.
fn show_buffers(handle: &ClientHandle, buf: &BytesMut, out: &Outbox) {
    let (rbs, rbp) = out.reply_buffer();
    let mut v = handle.view.lock();
    v.qbuf_free = buf.capacity() - buf.len();
    v.rbs = rbs;
    v.rbp = rbp;
}

/// How long the last reply of a client that killed itself may take to leave.
const LAST_REPLY_WAIT: Duration = Duration::from_secs(10);

/// What a connection holds (see `client_eviction`).
fn client_memory(server: &Server, buf: &BytesMut, out: &Outbox, client: &Client) -> usize {
    super::client_eviction::client_memory(server, buf.capacity(), out, client)
}

/// Publish what the connection holds toward maxmemory-clients (`view_base`: the view's part,
/// when this batch published the view). With `run_queue`, when the worker's turn ends with
/// this connection (no other task of its worker ready: where Redis's beforeSleep runs, after
/// the turn's replies were written), evict clients over the limit. Err when this one was
/// evicted.
fn account_memory(
    server: &Server,
    handle: &ClientHandle,
    buf: &BytesMut,
    out: &Outbox,
    client: &Client,
    view_base: Option<usize>,
    run_queue: Option<&super::listen::RunQueue>,
) -> Result<(), String> {
    let mem = client_memory(server, buf, out, client);
    match view_base {
        Some(base) => super::client_eviction::update_with_view(server, handle, mem, base),
        None => super::client_eviction::update(server, handle, mem),
    }
    if let Some(run_queue) = run_queue {
        if super::client_eviction::enforce_if(server, || !run_queue.others_ready()) && handle.is_killed() {
            return Err("evicted".into());
        }
    }
    Ok(())
}

/// Count the errors a reply written outside the pipeline (a refusal, an unblocking) holds
/// in the error statistics, as the pipeline counts its commands' errors.
fn count_sink_errors(server: &Server, sink: &mut ReplySink) {
    for code in std::mem::take(&mut sink.errors) {
        server.count_error(&code);
    }
}

/// A single request whose run took at least this long has its reply held back, as a pipelined
/// batch's are, while other connections of the worker have input (see `client_loop`).
const DEFER_AFTER: Duration = Duration::from_micros(2);

/// How long a client waiting for a script ([`Action::WaitScript`]) may sleep before looking
/// again: until the script runs past busy-reply-threshold (then the client gets BUSY); the
/// script's end wakes it sooner. A gate taken but not yet marked running is a moment's state.
fn busy_poll(server: &Server) -> Duration {
    let busy = &server.scripting.busy;
    match (pipeline::busy_threshold(server), busy.running_for()) {
        (None, Some(_)) => Duration::from_secs(3600),
        (Some(limit), Some(ran)) => limit.saturating_sub(ran).max(Duration::from_millis(1)),
        (_, None) => Duration::from_millis(1),
    }
}

/// Sleep until a unix time in milliseconds.
async fn sleep_until_ms(at_ms: i64) {
    let wait = (at_ms - crate::keyspace::now_ms()).max(0) as u64;
    crate::util::timer::sleep(Duration::from_millis(wait)).await;
}

/// Send what the socket takes now, without waiting for it. With the AOF on, replies first wait
/// until the writes they may reflect were handed to it (see `aof::AofState::wait_synced`).
async fn send(server: &Server, sock: &mut Stream, out: &mut Outbox) -> Result<(), String> {
    if !out.has_pending() && !sock.has_unflushed() {
        return Ok(());
    }
    server.aof.wait_synced(|| server.keyspace.effects.seq()).await;
    send_now(server, sock, out)
}

/// [`send`] once nothing is left to wait for (a synchronous call for the batch's usual end:
/// the future `send` builds and drops cost ~40 instructions per batch).
fn send_now(server: &Server, sock: &mut Stream, out: &mut Outbox) -> Result<(), String> {
    if !out.has_pending() && !sock.has_unflushed() {
        return Ok(());
    }
    let r = out.pump(sock);
    account_output(server, out);
    r.map_err(|e| e.to_string())
}

/// Count what the last send wrote: its bytes (net_output_bytes) and, when it wrote any, one
/// socket write (total_writes_processed, counted per write to a client as Redis does).
fn account_output(server: &Server, out: &mut Outbox) {
    let written = out.take_written();
    if written > 0 {
        let io = server.stats.io.local();
        io[super::io::NET_OUTPUT].fetch_add(written, Ordering::Relaxed);
        io[super::io::WRITES].fetch_add(1, Ordering::Relaxed);
    }
}

/// Send everything, waiting for the socket (before the connection closes or changes hands),
/// unless the client is killed meanwhile. A client that killed itself (CLIENT KILL of its own
/// id) still gets its reply, for as long as [`LAST_REPLY_WAIT`].
async fn flush_all(server: &Server, sock: &mut Stream, out: &mut Outbox, handle: &ClientHandle) -> Result<(), String> {
    // Boxed: it runs as a connection closes or changes hands, and inline its future (~350
    // bytes) would be part of every connection's task, idle or not.
    Box::pin(async move {
        server.aof.wait_synced(|| server.keyspace.effects.seq()).await;
        let killed_before = handle.is_killed();
        let r = tokio::select! {
            r = out.flush_all(sock) => r.map_err(|e| e.to_string()),
            _ = handle.killed(), if !killed_before => Err("killed".to_string()),
            _ = crate::util::timer::sleep(LAST_REPLY_WAIT), if killed_before => Err("killed".to_string()),
        };
        account_output(server, out);
        r
    })
    .await
}

/// Whether a command runs on a script stack: script commands (EVAL*, FCALL*, DEBUG), and every
/// command of a client under SCRIPT DEBUG (an EVAL inside EXEC is debugged too).
fn on_script_stack(client: &Client, args: &[Bytes]) -> bool {
    client.lua_debug.on() || pipeline::runs_script(client, args)
}

/// Run a command inline, on a script stack: a script running past busy-reply-threshold steps
/// aside now and then so this worker keeps serving its other connections (they answer BUSY,
/// SCRIPT KILL...), and the Lua debugger's writes and reads are done here, on the connection's
/// stream (`super::console`). See `scripting::fiber`.
async fn run_script(
    server: &Arc<Server>,
    sock: &mut Stream,
    client: &mut Client,
    args: &[bytes::Bytes],
    out: &mut ReplySink,
) -> Action {
    // Boxed, as `flush_all`: a script's future (~250 bytes) would otherwise size every
    // connection's task; one allocation per script call.
    Box::pin(async move {
        let mut console = super::console::StreamConsole(sock);
        crate::scripting::fiber::run(&mut console, || pipeline::execute(server, client, args, out)).await
    })
    .await
}

/// The connection's input buffer and its limit (`client-query-buffer-limit`), which a blocked
/// client keeps filling.
struct Input<'a> {
    buf: &'a mut BytesMut,
    limit: usize,
}

/// Read what the socket has with `read` (a [`Stream`] read): the byte count, None when nothing
/// was there, Err when the peer closed or the read failed.
fn read_input(
    sock: &mut Stream,
    buf: &mut BytesMut,
    read: fn(&mut Stream, &mut BytesMut) -> std::io::Result<usize>,
) -> Result<Option<usize>, String> {
    make_room(buf);
    match read(sock, buf) {
        Ok(0) => Err("connection closed by peer".into()),
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

impl Input<'_> {
    fn make_room(&mut self) {
        make_room(self.buf);
    }

    /// Account `n` bytes just read; Err when the buffer went past its limit.
    fn received(&mut self, server: &Server, handle: &ClientHandle, n: usize) -> Result<(), String> {
        server.stats.io.local()[crate::server::io::NET_INPUT].fetch_add(n as u64, Ordering::Relaxed);
        super::query_buffer::check_limit(server, handle, self.buf, self.limit)
    }

    /// Read the socket while the client waits (for CLIENT PAUSE to end, for WAIT's
    /// acknowledgements): what it sends meanwhile is kept for after the wait, and a client that
    /// disconnects is removed at once, as Redis's event loop reads blocked clients. Returns only
    /// why the connection must close.
    async fn until_gone(&mut self, server: &Server, sock: &mut Stream, handle: &ClientHandle) -> String {
        loop {
            let read = match sock.readable().await {
                Ok(()) => self.drain_ready(server, sock, handle),
                Err(e) => Err(e.to_string()),
            };
            if let Err(why) = read {
                return why;
            }
        }
    }

    /// Read whatever the socket holds without waiting; Err when the peer closed the connection
    /// (or it failed, or the buffer went past its limit).
    fn drain_ready(&mut self, server: &Server, sock: &mut Stream, handle: &ClientHandle) -> Result<(), String> {
        loop {
            self.make_room();
            match sock.try_read_buf(self.buf) {
                Ok(0) => return Err("connection closed by peer".into()),
                Ok(n) => self.received(server, handle, n)?,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// Wait for one of the keys of a blocked command, its timeout, CLIENT UNBLOCK or a kill; then
/// reply to the timeout / unblock, or run the command again.
///
/// While blocked the socket is still read (into the input buffer, for after the wait), as
/// Redis's event loop reads blocked clients: a client that disconnects is removed at once, and
/// is checked once more before it is served, so nothing is handed to a client that is gone. If
/// the reply to a served command cannot be written, what it took is put back.
#[allow(clippy::too_many_arguments)]
async fn block(
    server: &Server,
    sock: &mut Stream,
    client: &mut Client,
    args: &[bytes::Bytes],
    out: &mut Outbox,
    push_rx: &mut PushRx,
    spec: crate::session::blocking::BlockSpec,
    retry: bool,
    mut input: Input<'_>,
) -> Result<Action, String> {
    // CLIENT LIST shows the command the client is blocked in.
    client.sync_view(client.last_cmd, input.buf.len());
    pipeline::adjust_blocked_call_stats(args, -1, false);
    send(server, sock, out).await?;
    let waiter = client.handle.waiter.clone();
    server.blocking.register_for(&waiter, &spec, retry);
    // A signal between the command's run and this registration found no queue: look again
    // at once, as if woken by all the keys.
    let mut missed = server.blocking.epoch() != spec.epoch;
    // However this wait ends, the wake-up (if any) is settled when it is over.
    let settle = Settle(&server.blocking, &waiter);
    let _timeout_entry = server.blocking.timeout_entry(spec.deadline);
    let handle = client.handle.clone();
    let timed_out = 'woken: loop {
        let timed_out = loop {
            if std::mem::take(&mut missed) {
                break false;
            }
            input.make_room();
            let pending = out.has_pending() || sock.has_unflushed();
            let left = tokio::select! {
                _ = waiter.wait() => break false,
                _ = async {
                    match spec.deadline {
                        Some(d) => crate::util::timer::sleep_until(d.into()).await,
                        None => std::future::pending().await,
                    }
                } => break true,
                _ = handle.killed() => Err("killed".to_string()),
                r = sock.readable() => match r {
                    Ok(()) => input.drain_ready(server, sock, &handle),
                    Err(e) => Err(e.to_string()),
                },
                // Replies queued before the blocking command keep leaving while it waits.
                r = sock.writable(), if pending => match r {
                    Ok(()) => send(server, sock, out).await,
                    Err(e) => Err(e.to_string()),
                },
                // So do the messages sent to it meanwhile (Pub/Sub, invalidations), as Redis
                // writes them to a blocked client when they are sent.
                msg = std::future::poll_fn(|cx| push_rx.poll_recv(cx)) => {
                    encode_received(out, &msg, push_rx, client);
                    if out.over(server.obuf_limits.read().of(class_of(server, client))) {
                        Err(super::outbox::obuf_closed(server, &handle, true))
                    } else {
                        send(server, sock, out).await
                    }
                }
            };
            if let Err(why) = left {
                server.blocking.abandon(&waiter, &spec.keys);
                return Err(why);
            }
        };
        // Woken by a change of the slots this cluster node serves: one that no longer serves the
        // keys' slot unblocks the client with the redirection (Redis's clients cron does it with
        // clusterRedirectBlockedClientIfNeeded). A write's wake-up it took goes on to the next.
        let redirect = match spec.keys.first() {
            Some((_, key)) if !timed_out && !waiter.unblock_requested() => {
                pipeline::services::blocked_redirect(server, client, args, key)
            }
            _ => None,
        };
        if let Some(err) = redirect {
            server.blocking.abandon(&waiter, &spec.keys);
            out.sink.error(&err);
            count_sink_errors(server, &mut out.sink);
            pipeline::adjust_blocked_call_stats(args, 1, true);
            return Ok(Action::None);
        }
        if timed_out || spec.unblock_on_nokey || waiter.unblock_requested() {
            break 'woken timed_out;
        }
        // Woken by a write, but is any of its keys there? As Redis 7.2 (handleClientsBlockedOnKey's
        // LOOKUP_NOEFFECTS), they are looked up without side effects: a key that expired in the
        // meantime keeps the client blocked and is not deleted here (the next command to touch it
        // deletes and propagates it). Registered again first, so a signal from now on is not
        // missed; the wake-up that found nothing is then settled, and the writer may go on.
        server.blocking.register_for(&waiter, &spec, true);
        if any_key_present(server, &spec.keys) {
            waiter.claim();
            break 'woken false;
        }
        // Nothing there: what signalled is stale by the next wake-up.
        waiter.take_signalled();
        server.blocking.settle(&waiter);
    };
    // Woken: make sure the client is still there before anything is handed to it.
    if !timed_out {
        if let Err(why) = input.drain_ready(server, sock, &handle) {
            server.blocking.abandon(&waiter, &spec.keys);
            return Err(why);
        }
    }
    if timed_out || waiter.unblock_requested() {
        // Ending without running its command: a signal that picked it meanwhile goes on.
        server.blocking.abandon(&waiter, &spec.keys);
    } else {
        server.blocking.unregister(&waiter, &spec.keys);
    }
    // What other clients' writes sent it meanwhile (the invalidation of the key it was woken
    // for, say) precedes its reply.
    drain_queued(out, push_rx, client);
    // The queue may have drained while it waited: the sink's room is measured again.
    out.set_limit(server.obuf_limits.read().of(class_of(server, client)));
    let out_sink = &mut out.sink;
    // Timed out (or CLIENT UNBLOCK ... TIMEOUT): a null array whatever the command, as Redis.
    let null = |out: &mut ReplySink| out.null_array();
    match waiter.take_unblock() {
        Some(crate::session::blocking::Unblock::Error) => {
            out_sink.error("-UNBLOCKED client unblocked via CLIENT UNBLOCK");
            count_sink_errors(server, out_sink);
            pipeline::adjust_blocked_call_stats(args, 1, true);
            return Ok(Action::None);
        }
        Some(crate::session::blocking::Unblock::StateChanged) => {
            out_sink
                .error("-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)");
            count_sink_errors(server, out_sink);
            pipeline::adjust_blocked_call_stats(args, 1, true);
            return Ok(Action::Close);
        }
        Some(crate::session::blocking::Unblock::Timeout) => {
            null(out_sink);
            pipeline::adjust_blocked_call_stats(args, 1, false);
            return Ok(Action::None);
        }
        None => {}
    }
    if timed_out {
        null(out_sink);
        pipeline::adjust_blocked_call_stats(args, 1, false);
        return Ok(Action::None);
    }
    // Run again as a new command: evictions first, so the pipeline's OOM check sees memory as
    // it is now (Redis 7.2 reprocesses an unblocked command through processCommand, #11012).
    server.evict_before_command();
    client.block_retry = true;
    client.block_woken_by = waiter.take_signalled();
    client.block_undo.clear();
    let args = spec.rerun_args.as_deref().unwrap_or(args);
    let mut action = pipeline::execute(server, client, args, out_sink);
    client.block_retry = false;
    // Blocked again (the entry went to another reader, the key expired): the wait keeps its
    // first deadline, as Redis 7.2.5's CLIENT_REPROCESSING_COMMAND (#13004; before it an XREADGROUP
    // BLOCK 1000 woken after 200 ms timed out at 1200 ms).
    if let Action::Block(again) = &mut action {
        again.deadline = spec.deadline;
    }
    let signalled = std::mem::take(&mut client.block_woken_by);
    // Served or not, the signals that woke this client go on to the waiters queued behind it
    // (never to one before it), as Redis goes through all the clients of a ready key: those
    // still find the data if some is left. (`wake_all` waiters were all woken by the signal
    // itself.)
    if !spec.wake_all {
        for (db, key) in if signalled.is_empty() { &spec.keys[..] } else { &signalled[..] } {
            server.blocking.pass_on(&waiter, *db, key);
        }
    }
    // The command ran (and woke whoever its own write unblocked): the writer that woke this
    // client may go on. The last woken client to settle sends the BCAST messages held back
    // meanwhile (see `pipeline::execute_as`), unless the client that woke it will.
    drop(settle);
    if server.tracking.any() && !server.blocking.has_unsettled() && !server.tracking.bcast_deferred() {
        server.tracking.flush_bcast();
    }
    let undo = std::mem::take(&mut client.block_undo);
    if !undo.is_empty() {
        // Served: write the reply now; if the client is gone, put the elements back.
        if let Err(why) = send(server, sock, out).await {
            let mut discard = ReplySink::discarding(client.proto);
            for argv in &undo {
                pipeline::execute_internal(server, client, argv, &mut discard);
            }
            return Err(why);
        }
    }
    Ok(action)
}

/// Whether any of a blocked client's keys holds a value that has not expired, looked up
/// without side effects (no lazy expiry, no statistics). A running script holds the keyspace and
/// a worker thread never waits for it: the keys then count as present and the command's re-run
/// waits for the script as any command does.
fn any_key_present(server: &Server, keys: &[(usize, bytes::Bytes)]) -> bool {
    if server.scripting.busy.running_for().is_some() {
        return true;
    }
    keys.iter().any(|(db, key)| {
        let mut view = server.keyspace.lock_keys(*db, &[key]);
        view.contains_raw(key) && !view.is_expired(key)
    })
}

/// Settles a blocked client's wake-up when dropped (see [`crate::session::blocking::Blocking::settle`]).
struct Settle<'a>(&'a crate::session::blocking::Blocking, &'a crate::session::blocking::Waiter);

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        self.0.settle(self.1);
    }
}

/// A command woke blocked clients: let them run their commands before this client's next
/// command (Redis serves them right after the command that unblocked them, so a client that
/// pushed and then reads sees the element gone, and chains of BLMOVEs complete). Bounded, so
/// a woken client that cannot run (CLIENT PAUSE, a busy worker) delays nobody for long.
async fn let_woken_clients_run(server: &Server) {
    let start = std::time::Instant::now();
    let mut spins = 0u32;
    while server.blocking.has_unsettled() {
        spins += 1;
        if spins.is_multiple_of(16) && start.elapsed() > Duration::from_millis(5) {
            break;
        }
        tokio::task::yield_now().await;
    }
}

/// Apply `tcp-keepalive` (seconds; 0 disables) like Redis's anetKeepAlive.
#[cfg(target_os = "linux")]
fn set_keepalive(sock: &tokio::net::TcpStream, secs: u64) {
    use std::os::fd::AsRawFd;
    if secs == 0 {
        return;
    }
    let fd = sock.as_raw_fd();
    let set = |level, opt, val: libc::c_int| unsafe {
        // SAFETY: fd is a valid open socket for the duration of the call and the option value
        // is a plain c_int whose size we pass.
        libc::setsockopt(
            fd,
            level,
            opt,
            &val as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    let interval = (secs / 3).max(1) as libc::c_int;
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs as libc::c_int);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, interval);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
}

#[cfg(not(target_os = "linux"))]
fn set_keepalive(_sock: &tokio::net::TcpStream, _secs: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an async fn of five arguments returns.
    fn future_size<A, B, C, D, E, F: std::future::Future>(_: fn(A, B, C, D, E) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn a_connections_task_is_not_sized_by_its_rare_waits() {
        // Every connection's task holds `serve`'s future, idle or not. With the waits of a
        // blocked command, a replica's stream, CLIENT PAUSE, WAIT and the Lua debugger kept
        // inline it took 2,968 bytes in a release build (2,984 in a test build); boxed, 2,240
        // (2,256). That made a 2,432-byte task, in mimalloc's 2,560-byte class. With a script,
        // SHUTDOWN, the AOF's wait and the last flush boxed too, and no second copy of the
        // arguments (async blocks, not async fns), the future takes 1,856 bytes in a test
        // build and the task 2,048: the 2 KiB class, 512 bytes less a connection. (Tokio's
        // header and trailer add about 100 bytes, and the task is rounded up to 128: past
        // ~1,940 bytes it would not fit; the bound below keeps a margin.)
        let size = future_size(serve);
        assert!(size <= 1_872, "serve's future takes {size} bytes");
    }
}
