//! Replication, master side: a replica (or anything speaking SYNC/PSYNC, such as the Redis test
//! suite's stream reader) gets a consistent RDB snapshot, then every later effect from the
//! effect stream, encoded as RESP commands with SELECT whenever the database changes.
//!
//! Consistency: the snapshot is taken and the effect-stream subscription opened while every
//! shard is locked, and writers publish their effects before releasing their shard locks, so no
//! write can fall between the snapshot and the stream, nor appear in both.
//!
//! Acknowledgements (`REPLCONF ACK <offset> [FACK <aof-offset>]`) are mapped back to effect
//! sequence numbers ([`Acks`]), which WAIT and WAITAOF compare with the client's last write.

pub mod replica;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::server::listen::Stream;
use parking_lot::Mutex;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::keyspace::effects::EffectBatch;
use crate::protocol::encode_command;

/// Encode a batch, preceded by SELECT when it targets another database than the last one.
fn encode_batch(out: &mut Vec<u8>, batch: &EffectBatch, selected: &mut Option<usize>) {
    for e in batch.iter().filter(|e| !e.aof_only) {
        if *selected != Some(e.db) {
            encode_command(out, &[b"SELECT".as_slice(), itoa::Buffer::new().format(e.db).as_bytes()]);
            *selected = Some(e.db);
        }
        encode_command(out, &e.argv);
    }
}

/// Master side: what each connected replica was sent and has acknowledged, for WAIT and
/// WAITAOF. Offsets are bytes of the stream after the snapshot (the replica's offset, as
/// FULLRESYNC starts it at 0); each is mapped back to the effect sequence number it covers.
#[derive(Default)]
pub struct Acks {
    links: Mutex<Vec<Arc<Link>>>,
    /// Woken whenever a replica acknowledges something.
    pub changed: tokio::sync::Notify,
}

#[derive(Default)]
struct Link {
    /// (effect sequence number, stream offset just after it), oldest first.
    sent: Mutex<VecDeque<(u64, u64)>>,
    /// The last effect the replica has received and applied (REPLCONF ACK).
    acked_seq: AtomicU64,
    /// ... and fsynced to its AOF (REPLCONF ACK .. FACK), once it ever reported one.
    facked_seq: AtomicU64,
    sends_fack: AtomicBool,
    /// Ask the replica for an acknowledgement now (REPLCONF GETACK).
    getack: tokio::sync::Notify,
}

impl Link {
    /// The last sequence number fully sent at or before `offset`.
    fn seq_at(sent: &VecDeque<(u64, u64)>, offset: u64) -> Option<u64> {
        sent.iter().take_while(|&&(_, o)| o <= offset).last().map(|&(s, _)| s)
    }

    fn acked(&self, offset: u64, fack: Option<u64>) {
        let mut sent = self.sent.lock();
        if let Some(s) = Self::seq_at(&sent, offset) {
            self.acked_seq.fetch_max(s, Ordering::SeqCst);
        }
        if let Some(f) = fack {
            self.sends_fack.store(true, Ordering::SeqCst);
            if let Some(s) = Self::seq_at(&sent, f) {
                self.facked_seq.fetch_max(s, Ordering::SeqCst);
            }
        }
        // Forget what both counters are past (keep the last entry: it maps later offsets).
        let keep = if self.sends_fack.load(Ordering::SeqCst) { offset.min(fack.unwrap_or(0)) } else { offset };
        while sent.len() > 1 && sent[1].1 <= keep {
            sent.pop_front();
        }
    }
}

impl Acks {
    fn register(&self, base_seq: u64) -> Arc<Link> {
        let link = Arc::new(Link::default());
        link.sent.lock().push_back((base_seq, 0));
        link.acked_seq.store(base_seq, Ordering::SeqCst);
        link.facked_seq.store(base_seq, Ordering::SeqCst);
        self.links.lock().push(link.clone());
        link
    }

    fn unregister(&self, link: &Arc<Link>) {
        self.links.lock().retain(|l| !Arc::ptr_eq(l, link));
        self.changed.notify_waiters();
    }

    /// Replicas that acknowledged every effect up to `seq` (fsynced to their AOF, with `aof`).
    pub fn count(&self, seq: u64, aof: bool) -> usize {
        self.links
            .lock()
            .iter()
            .filter(|l| {
                if aof {
                    l.sends_fack.load(Ordering::SeqCst) && l.facked_seq.load(Ordering::SeqCst) >= seq
                } else {
                    l.acked_seq.load(Ordering::SeqCst) >= seq
                }
            })
            .count()
    }

    /// The most stream bytes sent to any replica since its snapshot: what a cluster master
    /// announces as its replication offset (a replica that received everything has it).
    pub fn max_offset(&self) -> u64 {
        self.links.lock().iter().filter_map(|l| l.sent.lock().back().map(|&(_, o)| o)).max().unwrap_or(0)
    }

    /// Ask every replica for an acknowledgement (Redis's replicationRequestAckFromSlaves).
    pub fn request(&self) {
        for l in self.links.lock().iter() {
            l.getack.notify_one();
        }
    }
}

/// A WAIT / WAITAOF that blocks: what it waits for.
#[derive(Debug)]
pub struct WaitSpec {
    /// The effect sequence number of the client's last write.
    pub target: u64,
    pub numreplicas: u64,
    /// WAITAOF: the local fsync wanted (0 or 1); None for WAIT.
    pub numlocal: Option<u64>,
    pub deadline: Option<std::time::Instant>,
}

/// Whether the local AOF has fsynced everything up to `seq` (WAITAOF's local count).
pub fn local_fsynced(server: &crate::server::Server, seq: u64) -> bool {
    server.aof.on.load(Ordering::Acquire) && server.aof.fsynced() >= seq
}

/// The reply of WAIT (the replicas count) or WAITAOF ([local, replicas]).
pub fn reply_acks(server: &crate::server::Server, spec: &WaitSpec, out: &mut crate::protocol::ReplySink) {
    match spec.numlocal {
        None => out.int(server.acks.count(spec.target, false) as i64),
        Some(_) => {
            out.array(2);
            out.int(local_fsynced(server, spec.target) as i64);
            out.int(server.acks.count(spec.target, true) as i64);
        }
    }
}

/// Block until the acknowledgements WAIT / WAITAOF asked for arrived or the timeout passed,
/// then write the reply.
pub async fn wait_acks(server: &crate::server::Server, spec: &WaitSpec, out: &mut crate::protocol::ReplySink) {
    let aof = spec.numlocal.is_some();
    loop {
        let done = server.acks.count(spec.target, aof) as u64 >= spec.numreplicas
            && (spec.numlocal.unwrap_or(0) == 0 || local_fsynced(server, spec.target));
        if done || spec.deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            break;
        }
        server.acks.request();
        // Woken by an acknowledgement; the AOF's fsync and the deadline are polled.
        let tick = std::time::Duration::from_millis(10);
        let _ = tokio::time::timeout(tick, server.acks.changed.notified()).await;
    }
    reply_acks(server, spec, out);
}

/// Stream effects to a replica connection until it closes (or the stream ends). The replica's
/// `REPLCONF ACK <offset> [FACK <aof-offset>]` are recorded in `acks`; `base_seq` is the effect
/// sequence number the snapshot covers.
pub async fn stream_to_replica(
    server: &crate::server::Server,
    sock: &mut Stream,
    handle: &crate::session::ClientHandle,
    base_seq: u64,
    mut effects: UnboundedReceiver<EffectBatch>,
) -> Result<(), String> {
    let acks = &server.acks;
    let link = acks.register(base_seq);
    let result = stream_loop(server, sock, handle, &link, base_seq, &mut effects).await;
    acks.unregister(&link);
    result
}

/// The replica class of `client-output-buffer-limit`; as Redis, a hard limit below
/// `repl-backlog-size` is raised to it.
fn replica_limit(server: &crate::server::Server) -> crate::metrics::obuf::ClassLimit {
    let mut limit = server.obuf_limits.read().replica;
    let backlog = server.config.load().repl_backlog_size as usize;
    if limit.hard > 0 && limit.hard < backlog {
        limit.hard = backlog;
    }
    limit
}

/// Stream effects to the replica without ever waiting for its socket: what it has not taken
/// yet is queued (the replica's output buffer) and the link is cut, with Redis's log line,
/// when that goes past the replica class of `client-output-buffer-limit`.
async fn stream_loop(
    server: &crate::server::Server,
    sock: &mut Stream,
    handle: &crate::session::ClientHandle,
    link: &Link,
    base_seq: u64,
    effects: &mut UnboundedReceiver<EffectBatch>,
) -> Result<(), String> {
    use crate::server::outbox::Outbox;
    let acks = &server.acks;
    let mut selected: Option<usize> = None;
    let mut out = Outbox::new(crate::protocol::ReplySink::default(), handle.meter.clone());
    let mut inbuf = bytes::BytesMut::with_capacity(4096);
    let (mut seq, mut offset) = (base_seq, 0u64);
    loop {
        let limit = replica_limit(server);
        let soft_deadline = out.meter.soft_deadline_ms(limit);
        let pending = out.has_pending() || sock.has_unflushed();
        tokio::select! {
            batch = effects.recv() => {
                let Some(batch) = batch else { return Ok(()) };
                let before = out.sink.buf.len();
                encode_batch(&mut out.sink.buf, &batch, &mut selected);
                seq += 1;
                // Drain what else is ready so a burst of writes leaves in one syscall.
                while let Ok(more) = effects.try_recv() {
                    encode_batch(&mut out.sink.buf, &more, &mut selected);
                    seq += 1;
                }
                offset += (out.sink.buf.len() - before) as u64;
                link.sent.lock().push_back((seq, offset));
                if out.over(limit) {
                    return Err(crate::server::outbox::obuf_closed(server, handle, true));
                }
                out.pump(sock).map_err(|e| e.to_string())?;
            }
            _ = link.getack.notified() => {
                let before = out.sink.buf.len();
                encode_command(&mut out.sink.buf, &[b"REPLCONF".as_slice(), b"GETACK", b"*"]);
                offset += (out.sink.buf.len() - before) as u64;
                link.sent.lock().push_back((seq, offset));
                out.pump(sock).map_err(|e| e.to_string())?;
            }
            r = sock.writable(), if pending => {
                r.map_err(|e| e.to_string())?;
                out.pump(sock).map_err(|e| e.to_string())?;
            }
            _ = handle.killed() => return Err("killed".into()),
            _ = async {
                let wait = soft_deadline.map_or(0, |d| (d - crate::keyspace::now_ms()).max(0) as u64);
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await
            }, if soft_deadline.is_some() => {
                if out.over(limit) {
                    return Err(crate::server::outbox::obuf_closed(server, handle, false));
                }
            }
            r = sock.readable() => {
                r.map_err(|e| e.to_string())?;
                match sock.try_read_buf(&mut inbuf) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => return Ok(()),
                }
                let limits = crate::protocol::ParseLimits::default();
                while let Ok(Some(req)) = crate::protocol::parse_request(&mut inbuf, &limits) {
                    let a = &req.args;
                    let is = |i: usize, w: &str| a.get(i).is_some_and(|x| x.eq_ignore_ascii_case(w.as_bytes()));
                    if is(0, "replconf") && is(1, "ack") {
                        let num = |i: usize| a.get(i).and_then(|x| crate::util::num::parse_i64(x)).map(|v| v.max(0) as u64);
                        if let Some(off) = num(2) {
                            let fack = if is(3, "fack") { num(4) } else { None };
                            link.acked(off, fack);
                            acks.changed.notify_waiters();
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn commands_are_resp_multibulks() {
        let mut out = Vec::new();
        super::encode_command(&mut out, &[b"SET".as_slice(), b"k", b""]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }
}
