//! A replica's link, master side: after SYNC / PSYNC the connection belongs to this module.
//! [`try_partial`] answers PSYNC from the backlog (+CONTINUE) when the replica's history is
//! ours; otherwise [`begin_full_sync`] registers it for a snapshot (`fullsync`). [`serve`]
//! then runs two halves on the socket: the writer sends the snapshot (the file, or the stream
//! of a diskless transfer) and then the replication stream from the replica's position in the
//! buffer; the reader takes `REPLCONF ACK <offset> [FACK <aof-offset>]` (acknowledgements for
//! WAIT, min-replicas-to-write and FAILOVER). Anything else a replica sends is run as a command
//! that may not touch the keyspace, and a replica whose command would be answered is
//! disconnected, as Redis does.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use super::backlog::Read;
use super::{fullsync, now_s, Link, ONLINE, RDB_TRANSMITTED, SEND_BULK, WAIT_BGSAVE_END, WAIT_BGSAVE_START};
use crate::protocol::{parse_request, ParseLimits, Proto, ReplySink};
use crate::server::{log, Server};
use crate::session::client::{Client, REPL_NONE, REPL_REPLICA};

/// The link of a replica that sent SYNC (`pre_psync`) or PSYNC, from what REPLCONF told us.
pub fn new_link(client: &Client, pre_psync: bool) -> Arc<Link> {
    let conf = &client.replconf;
    let ip = conf.ip_address.clone().unwrap_or_else(|| peer_ip(&client.handle.addr));
    Arc::new(Link {
        handle: client.handle.clone(),
        ip,
        port: conf.listening_port,
        capa_eof: conf.capa_eof,
        capa_psync2: conf.capa_psync2,
        pre_psync,
        rdb_only: conf.rdb_only,
        functions_only: conf.rdb_only && conf.functions_only,
        state: AtomicU8::new(WAIT_BGSAVE_START),
        ack_off: AtomicI64::new(0),
        fack_off: AtomicI64::new(-1),
        ack_time: AtomicI64::new(now_s()),
        reader: AtomicU64::new(0),
        initial_offset: AtomicI64::new(-1),
        start_on_ack: AtomicBool::new(false),
        last_partial_write: AtomicI64::new(0),
        since: now_s(),
        wake: Notify::new(),
        job: Mutex::new(None),
        rdb_rx: Mutex::new(None),
        rdb_file: Mutex::new(None),
    })
}

/// The IP of `ip:port` (`[v6]:port` too).
fn peer_ip(addr: &str) -> String {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']').to_string()
}

/// PSYNC replid offset: continue from the backlog when `replid` is our history (or our
/// previous one, up to where it stops) and the backlog still holds `offset` (Redis's
/// masterTryPartialResynchronization). On success +CONTINUE is written to `reply` and the
/// link is online; Err gives the link back for a full synchronisation.
pub fn try_partial(
    server: &Server,
    link: Arc<Link>,
    replid: &[u8],
    offset: i64,
    reply: &mut ReplySink,
) -> Result<Arc<Link>, Arc<Link>> {
    let repl = &server.repl;
    let ids = repl.ids();
    let asked = String::from_utf8_lossy(replid).to_string();
    let same = asked.eq_ignore_ascii_case(&ids.replid);
    let second = asked.eq_ignore_ascii_case(&ids.replid2);
    let partial_err = |link: Arc<Link>| {
        if !asked.starts_with('?') {
            repl.stats.sync_partial_err.fetch_add(1, Ordering::Relaxed);
        }
        Err(link)
    };
    if !same && (!second || offset > ids.second_offset) {
        if asked.starts_with('?') {
            log::notice(&format!("Full resync requested by replica {}", link.name()));
        } else if !same && !second {
            log::notice(&format!(
                "Partial resynchronization not accepted: Replication ID mismatch (Replica asked for '{}', my replication IDs are '{}' and '{}')",
                asked, ids.replid, ids.replid2
            ));
        } else {
            log::notice(&format!(
                "Partial resynchronization not accepted: Requested offset for second ID was {}, but I can reply up to {}",
                offset, ids.second_offset
            ));
        }
        return partial_err(link);
    }
    let Some(reader) = repl.add_reader(offset) else {
        log::notice(&format!(
            "Unable to partial resync with replica {} for lack of backlog (Replica request was: {}).",
            link.name(),
            offset
        ));
        if offset > repl.offset() {
            log::warning(&format!(
                "Warning: replica {} tried to PSYNC with an offset that is greater than the master replication offset.",
                link.name()
            ));
        }
        return partial_err(link);
    };
    link.reader.store(reader, Ordering::SeqCst);
    link.ack_time.store(now_s(), Ordering::SeqCst);
    link.state.store(ONLINE, Ordering::SeqCst);
    link.handle.repl_kind.store(REPL_REPLICA, Ordering::SeqCst);
    repl.attach(link.clone());
    if link.capa_psync2 {
        reply.simple(&format!("CONTINUE {}", ids.replid));
    } else {
        reply.simple("CONTINUE");
    }
    repl.stats.sync_partial_ok.fetch_add(1, Ordering::Relaxed);
    log::notice(&format!(
        "Partial resynchronization request from {} accepted. Sending {} bytes of backlog starting from offset {}.",
        link.name(),
        repl.offset() + 1 - offset,
        offset
    ));
    repl.refresh_good(server.config.load().min_replicas_max_lag);
    Ok(link)
}

/// A full synchronisation: the replica waits for a snapshot (the backlog is made for the first
/// replica, with a new history).
pub fn begin_full_sync(server: &Server, link: &Arc<Link>) {
    let repl = &server.repl;
    repl.stats.sync_full.fetch_add(1, Ordering::Relaxed);
    link.handle.repl_kind.store(REPL_REPLICA, Ordering::SeqCst);
    repl.attach(link.clone());
    if !repl.backlog_active() && repl.replica_count() == 1 {
        repl.change_replid();
        repl.clear_replid2();
        repl.create_backlog(&server.keyspace.effects, server.config.load().repl_backlog_size);
        let ids = repl.ids();
        log::notice(&format!(
            "Replication backlog created, my new replication IDs are '{}' and '{}'",
            ids.replid, ids.replid2
        ));
    }
    if link.functions_only {
        // Nothing of the dataset is captured: the writer sends the libraries at once.
        link.initial_offset.store(repl.offset(), Ordering::SeqCst);
        link.set_state(WAIT_BGSAVE_END);
        return;
    }
    fullsync::request(server, link);
}

/// Serve the replica on `sock` until the link ends. `input` holds what it already sent after
/// SYNC / PSYNC.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    server: &Arc<Server>,
    sock: &mut S,
    client: &mut Client,
    link: Arc<Link>,
    input: BytesMut,
) -> Result<(), String> {
    let (mut rd, mut wr) = tokio::io::split(sock);
    let handle = link.handle.clone();
    let result = tokio::select! {
        r = reader(server, &mut rd, client, &link, input) => r,
        r = writer(server, &mut wr, &link) => r,
        _ = handle.killed() => Err("killed".to_string()),
    };
    fullsync::replica_left(server, &link);
    server.repl.detach(&link);
    link.handle.repl_omem.store(0, Ordering::Relaxed);
    link.handle.repl_kind.store(REPL_NONE, Ordering::SeqCst);
    log::notice(&format!("Connection with replica {} lost.", link.name()));
    server.repl.refresh_good(server.config.load().min_replicas_max_lag);
    result
}

/// The replica's input: acknowledgements, and commands that must not be answered.
async fn reader<R: AsyncRead + Unpin>(
    server: &Arc<Server>,
    rd: &mut R,
    client: &mut Client,
    link: &Arc<Link>,
    mut buf: BytesMut,
) -> Result<(), String> {
    let limits = ParseLimits { max_bulk_len: 512 << 20, unauthenticated: false };
    let mut sink = ReplySink::discarding(Proto::Resp2);
    loop {
        loop {
            let req = match parse_request(&mut buf, &limits) {
                Ok(Some(req)) => req,
                Ok(None) => break,
                Err(e) => return Err(format!("protocol error from replica: {}", e.0)),
            };
            let args = &req.args;
            if args.is_empty() {
                continue;
            }
            client.handle.touch();
            if super::is_word(&args[0], "replconf") && args.len() >= 3 && super::is_word(&args[1], "ack") {
                ack(server, link, args);
                continue;
            }
            if super::is_word(&args[0], "replconf") && args.len() >= 2 && super::is_word(&args[1], "getack") {
                continue;
            }
            sink.clear();
            sink.errors.clear();
            let _ = crate::commands::pipeline::execute(server, client, args, &mut sink);
            if !sink.buf.is_empty() {
                let name = client.last_cmd;
                if sink.buf.first() == Some(&b'-') {
                    let text = String::from_utf8_lossy(&sink.buf[1..]).trim_end().to_string();
                    log::warning(&format!(
                        "== CRITICAL == This master is sending an error to its replica: '{text}' after processing the command '{name}'"
                    ));
                }
                log::warning(&format!(
                    "Replica generated a reply to command '{name}', disconnecting it: {}",
                    client.handle.info_line(None)
                ));
                return Err("replica generated a reply".into());
            }
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(16 * 1024);
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => return Err("connection closed by replica".into()),
            Ok(n) => {
                server.stats.io.local()[crate::server::io::NET_INPUT].fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// REPLCONF ACK <offset> [FACK <aof-offset>].
fn ack(server: &Server, link: &Arc<Link>, args: &[Bytes]) {
    let num = |i: usize| args.get(i).and_then(|x| crate::util::num::parse_i64(x));
    let Some(off) = num(2) else { return };
    link.ack_off.fetch_max(off, Ordering::SeqCst);
    if args.len() >= 5 && super::is_word(&args[3], "fack") {
        if let Some(f) = num(4) {
            link.fack_off.fetch_max(f, Ordering::SeqCst);
        }
    }
    link.ack_time.store(now_s(), Ordering::SeqCst);
    if link.start_on_ack.load(Ordering::SeqCst) && link.state() == ONLINE {
        link.start_on_ack.store(false, Ordering::SeqCst);
        link.wake.notify_one();
    }
    server.repl.acked.notify_waiters();
}

/// Write everything the replica needs, in order: keep-alives while it waits, the snapshot,
/// then the stream.
async fn writer<W: AsyncWrite + Unpin>(server: &Arc<Server>, wr: &mut W, link: &Arc<Link>) -> Result<(), String> {
    let mut tick = crate::util::timer::interval(Duration::from_secs(1));
    tick.tick().await;
    // Waiting for a capture: a newline every second keeps the replica's handshake alive.
    while link.state() == WAIT_BGSAVE_START {
        tokio::select! {
            _ = tick.tick() => write(server, wr, b"\n").await?,
            _ = link.wake.notified() => {}
        }
    }
    if link.state() == WAIT_BGSAVE_END {
        if !link.pre_psync {
            let line =
                format!("+FULLRESYNC {} {}\r\n", server.repl.replid(), link.initial_offset.load(Ordering::SeqCst));
            write(server, wr, line.as_bytes()).await?;
        }
        if link.functions_only {
            let cfg = server.config.load();
            let file = crate::persistence::rdb::functions_only(
                &server.scripting.library_sources(),
                crate::persistence::rdb::SaveOptions::from_config(&cfg),
            );
            drop(cfg);
            write(server, wr, format!("${}\r\n", file.len()).as_bytes()).await?;
            write(server, wr, &file).await?;
        } else {
            let job = link.job.lock().clone().ok_or("no snapshot for the replica")?;
            if job.disk {
                send_file(server, wr, link, &job).await?;
            } else {
                send_streamed(server, wr, link, &job).await?;
            }
        }
    }
    if link.rdb_only {
        link.set_state(RDB_TRANSMITTED);
        log::notice(&format!("RDB transfer completed, rdb only replica ({}) should be disconnected asap", link.name()));
        return Ok(());
    }
    stream(server, wr, link).await
}

async fn write<W: AsyncWrite + Unpin>(server: &Server, wr: &mut W, data: &[u8]) -> Result<(), String> {
    server.repl.wait_unstalled().await;
    wr.write_all(data).await.map_err(|e| e.to_string())?;
    server.repl.stats.net_repl_output_bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// The replica is in sync (Redis's replicaPutOnline).
fn put_online(server: &Server, link: &Link) {
    link.ack_time.store(now_s(), Ordering::SeqCst);
    link.set_state(ONLINE);
    server.repl.refresh_good(server.config.load().min_replicas_max_lag);
    log::notice(&format!("Synchronization with replica {} succeeded", link.name()));
}

/// A disk capture: wait for the file (keeping the link alive), then send it as `$<len>`.
async fn send_file<W: AsyncWrite + Unpin>(
    server: &Arc<Server>,
    wr: &mut W,
    link: &Arc<Link>,
    job: &Arc<fullsync::Job>,
) -> Result<(), String> {
    let mut done = job.done.subscribe();
    let mut tick = crate::util::timer::interval(Duration::from_secs(1));
    tick.tick().await;
    let ok = loop {
        if let Some(ok) = *done.borrow_and_update() {
            break ok;
        }
        tokio::select! {
            _ = tick.tick() => write(server, wr, b"\n").await?,
            r = done.changed() => { if r.is_err() { break false; } }
        }
    };
    if !ok {
        return Err("SYNC failed: the background save failed".into());
    }
    let file = link.rdb_file.lock().take().ok_or("SYNC failed. Can't open/stat DB after BGSAVE")?;
    let mut file = tokio::fs::File::from_std(file);
    let len = file.metadata().await.map_err(|e| e.to_string())?.len();
    link.set_state(SEND_BULK);
    // The `$<len>` preamble leaves in one write with the file's first chunk, as Redis's
    // sendBulkToSlave sends them. Written alone, it was what released a client's next command
    // (a PING after SYNC, held by the client's Nagle's algorithm until the SYNC was
    // acknowledged), and that command's reply closed the link while the chunk was being read:
    // the client had a bulk length and no payload, and a TLS client reading it hung.
    let mut chunk = Vec::with_capacity(FILE_CHUNK + 32);
    chunk.extend_from_slice(format!("${len}\r\n").as_bytes());
    let mut sent = 0u64;
    loop {
        let start = chunk.len();
        let want = ((len - sent) as usize).min(FILE_CHUNK);
        chunk.resize(start + want, 0);
        let n = file.read(&mut chunk[start..]).await.map_err(|e| e.to_string())?;
        if n == 0 && want > 0 {
            return Err("the RDB file shrank while it was sent".into());
        }
        chunk.truncate(start + n);
        write(server, wr, &chunk).await?;
        sent += n as u64;
        if sent >= len {
            break;
        }
        chunk.clear();
    }
    put_online(server, link);
    Ok(())
}

/// How much of an RDB file [`send_file`] reads and writes at a time.
const FILE_CHUNK: usize = 64 * 1024;

/// A diskless capture: forward the snapshot's bytes as they come; the stream then starts at
/// the replica's first ACK (so the end of the RDB is never glued to the stream).
async fn send_streamed<W: AsyncWrite + Unpin>(
    server: &Arc<Server>,
    wr: &mut W,
    link: &Arc<Link>,
    job: &Arc<fullsync::Job>,
) -> Result<(), String> {
    let mut rx = link.rdb_rx.lock().take().ok_or("no snapshot stream for the replica")?;
    while let Some(chunk) = rx.recv().await {
        link.last_partial_write.store(now_s(), Ordering::SeqCst);
        write(server, wr, &chunk).await?;
        link.last_partial_write.store(0, Ordering::SeqCst);
    }
    let mut done = job.done.subscribe();
    let ok = loop {
        if let Some(ok) = *done.borrow_and_update() {
            break ok;
        }
        if done.changed().await.is_err() {
            break false;
        }
    };
    if !ok {
        return Err("diskless transfer failed".into());
    }
    log::notice(&format!(
        "Streamed RDB transfer with replica {} succeeded (socket). Waiting for REPLCONF ACK from slave to enable streaming",
        link.name()
    ));
    link.start_on_ack.store(true, Ordering::SeqCst);
    put_online(server, link);
    Ok(())
}

/// A link's send buffer as [`Repl::send_buffers`] counts it (given back when the link ends).
struct SendBuffer<'a> {
    repl: &'a crate::replication::Repl,
    bytes: usize,
}

impl SendBuffer<'_> {
    fn set(&mut self, bytes: usize) {
        if bytes != self.bytes {
            self.repl.send_buffers.fetch_add(bytes, Ordering::Relaxed);
            self.repl.send_buffers.fetch_sub(self.bytes, Ordering::Relaxed);
            self.bytes = bytes;
        }
    }
}

impl Drop for SendBuffer<'_> {
    fn drop(&mut self) {
        self.set(0);
    }
}

/// The replication stream, from the replica's position in the buffer.
async fn stream<W: AsyncWrite + Unpin>(server: &Arc<Server>, wr: &mut W, link: &Arc<Link>) -> Result<(), String> {
    while link.start_on_ack.load(Ordering::SeqCst) {
        link.wake.notified().await;
    }
    let repl = &server.repl;
    let reader = link.reader.load(Ordering::SeqCst);
    let mut out = Vec::with_capacity(64 * 1024);
    let mut counted = SendBuffer { repl, bytes: 0 };
    loop {
        let data = repl.data.notified();
        tokio::pin!(data);
        data.as_mut().enable();
        out.clear();
        let (r, mem) = repl.read(reader, 1 << 20, &mut out);
        counted.set(out.capacity());
        link.handle.repl_omem.store(mem, Ordering::Relaxed);
        match r {
            Read::Data(_) => {
                write(server, wr, &out).await?;
                server.stats.io.local()[crate::server::io::NET_OUTPUT].fetch_add(out.len() as u64, Ordering::Relaxed);
                if out.capacity() > 4 << 20 {
                    out = Vec::with_capacity(64 * 1024);
                }
            }
            Read::UpToDate => {
                tokio::select! {
                    _ = &mut data => {}
                    _ = link.wake.notified() => {}
                }
            }
            Read::Gone => return Err("the replication backlog was reset".into()),
        }
    }
}
