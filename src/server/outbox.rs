//! A connection's output: the reply sink commands write into, and what the socket has not
//! taken yet. Writes never wait: [`Outbox::pump`] hands the socket what it accepts now and
//! keeps the rest, in order, for when it becomes writable again, so a client that does not
//! read holds only its own task (and its own memory, bounded by `client-output-buffer-limit`),
//! never the worker its connection runs on.
//!
//! The common case costs what a plain write does: replies that the socket takes at once are
//! written straight from the sink's buffer, which is then reused. Only what is left over moves
//! (without a copy) into the queue.

use super::listen::Stream;
use super::Server;
use crate::metrics::obuf::{ClassLimit, Meter};
use crate::protocol::ReplySink;
use crate::session::ClientHandle;
use bytes::Bytes;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A new or idle connection's reply buffer: Redis's smallest (PROTO_REPLY_MIN_BYTES).
pub const SINK_MIN: usize = 1024;
/// The most a busy connection's reply buffer is grown to between batches: Redis's
/// PROTO_REPLY_CHUNK_BYTES (a bigger reply goes to blocks freed once written).
const SINK_MAX: usize = 16 * 1024;
/// A reply buffer this big moves to the queue between commands (see [`Outbox::spill`]).
const SPILL_AT: usize = 64 * 1024;
/// Buffers handed to one vectored write.
const MAX_IOV: usize = 32;

/// Replies waiting in the queue, and the allocation they keep alive (a reply buffer keeps its
/// whole capacity while any of it waits: that is what the client's memory is).
struct Chunk {
    bytes: Bytes,
    alloc: usize,
}

pub struct Outbox {
    /// Where commands write their replies.
    pub sink: ReplySink,
    /// Replies the socket did not take yet, oldest first; `head` bytes of the first are sent.
    queue: VecDeque<Chunk>,
    head: usize,
    /// Bytes waiting in the queue, and the allocations holding them.
    queued: usize,
    queued_alloc: usize,
    /// Shared with the client's handle (CLIENT LIST) and its Pub/Sub subscriber.
    pub meter: Arc<Meter>,
    /// Bytes written to the socket since the last [`Outbox::take_written`].
    written: u64,
    /// The reply buffer's size between batches (Redis's buf_usable_size): a batch's replies may
    /// grow the buffer past it, and it is cut back to it once they are written, so used_memory
    /// does not creep by what the last big reply needed; the cron moves it with the peak
    /// ([`Outbox::resize_reply_buffer`]).
    size: usize,
    /// The most the reply buffer held at once since `peak_since` (Redis's buf_peak).
    peak: usize,
    peak_since: std::time::Instant,
}

impl Outbox {
    pub fn new(mut sink: ReplySink, meter: Arc<Meter>) -> Self {
        sink.write_big_apart();
        if sink.buf.capacity() < SINK_MIN {
            sink.buf = Vec::with_capacity(SINK_MIN);
        }
        let (size, peak, peak_since) = (sink.buf.capacity(), 0, std::time::Instant::now());
        let (queue, head, queued, queued_alloc, written) = (VecDeque::new(), 0, 0, 0, 0);
        Outbox { sink, queue, head, queued, queued_alloc, meter, written, size, peak, peak_since }
    }

    /// CLIENT LIST's rbs and rbp: the reply buffer's size between batches and the most it held
    /// since the peak was last reset (not above its size: what a batch needs beyond it is
    /// Redis's reply list, as CLIENT LIST's oll and omem count it).
    pub fn reply_buffer(&self) -> (usize, usize) {
        (self.size, self.peak.max(self.sink.buf.len()).min(self.size))
    }

    /// Bytes encoded and not yet written.
    pub fn pending(&self) -> usize {
        self.queued + self.sink.len()
    }

    /// Memory held for output: the reply buffer's allocation and what waits in the queue.
    pub fn memory(&self) -> usize {
        self.sink.allocated() + self.queued_alloc + self.queue.capacity() * std::mem::size_of::<Chunk>()
    }

    pub fn has_pending(&self) -> bool {
        self.queued > 0 || !self.sink.is_empty()
    }

    /// Publish the pending bytes (CLIENT LIST's omem, the Pub/Sub side of the limit check).
    pub fn publish(&self) {
        self.meter.unsent.store(self.pending(), Ordering::Relaxed);
    }

    /// Whether the client is over its output-buffer limit (Redis's rule, see `metrics::obuf`),
    /// or, in a class without one, over the ceiling.
    pub fn over(&self, limit: ClassLimit) -> bool {
        self.publish();
        if self.sink.overflowed() {
            return true;
        }
        if limit.hard == 0 && limit.soft == 0 {
            // (Bytes, not Redis's reply blocks: a bound, not a limit to match. A sink past its
            // `set_limit` room is always past it.)
            return limit.ceiling > 0 && self.pending() > limit.ceiling;
        }
        self.meter.over(limit, crate::keyspace::now_ms())
    }

    /// Tell the sink how much more it may hold before the client is over the hard limit (or
    /// the ceiling; `ReplySink::limit`), given what is already waiting.
    pub fn set_limit(&mut self, limit: ClassLimit) {
        self.sink.limit = match limit.hard_or_ceiling() {
            0 => 0,
            hard => (hard + crate::metrics::obuf::REPLY_CHUNK_BYTES).saturating_sub(self.queued).max(1),
        };
    }

    /// The limit is set only while a command runs: what is encoded between commands
    /// (Pub/Sub messages, invalidations) is never cut short, whatever left the queue meanwhile.
    pub fn clear_limit(&mut self) {
        self.sink.limit = 0;
    }

    /// Bytes written since the last call (INFO's net_output_bytes).
    pub fn take_written(&mut self) -> u64 {
        std::mem::take(&mut self.written)
    }

    /// Write what the socket takes now, without waiting. Err only when the socket failed.
    pub fn pump(&mut self, sock: &mut Stream) -> io::Result<()> {
        let r = self.pump_replies(sock);
        r.and_then(|()| sock.try_flush())
    }

    fn pump_replies(&mut self, sock: &mut Stream) -> io::Result<()> {
        self.peak = self.peak.max(self.sink.buf.len());
        if self.queue.is_empty() && self.sink.len() == self.sink.buf.len() {
            let buf = &self.sink.buf;
            let mut off = 0;
            while off < buf.len() {
                match sock.try_write(&buf[off..]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => off += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            self.written += off as u64;
            if off == self.sink.buf.len() {
                self.sink.buf.clear();
                if self.sink.buf.capacity() > self.size {
                    self.sink.buf = Vec::with_capacity(self.size);
                }
            } else {
                self.queue_sink(off);
            }
            self.publish();
            return Ok(());
        }
        if !self.sink.is_empty() {
            self.queue_sink(0);
        }
        while !self.queue.is_empty() {
            let mut iov: smallvec::SmallVec<[IoSlice<'_>; MAX_IOV]> = smallvec::SmallVec::new();
            for (i, c) in self.queue.iter().take(MAX_IOV).enumerate() {
                iov.push(IoSlice::new(if i == 0 { &c.bytes[self.head..] } else { &c.bytes }));
            }
            let r = sock.try_write_vectored(&iov);
            drop(iov);
            match r {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        self.publish();
        Ok(())
    }

    /// Move the sink's replies into the queue (without a copy), so a long batch of big replies
    /// builds a list of buffers instead of growing (and re-copying) one: Redis's reply list.
    /// Nothing is written: the batch's end (or a limit) decides what is sent.
    pub fn spill(&mut self) {
        if self.sink.len() >= SPILL_AT {
            self.queue_sink(0);
        }
    }

    /// Move the reply buffers to the queue (the first `sent` bytes of the current one already
    /// written, when it is the only one); replies go on in a new small one.
    fn queue_sink(&mut self, sent: usize) {
        for done in self.sink.take_sealed() {
            self.push(done, 0);
        }
        let buf = std::mem::replace(&mut self.sink.buf, Vec::with_capacity(self.size));
        self.push(buf, sent);
    }

    /// Queue a reply buffer whose first `sent` bytes are already written.
    fn push(&mut self, buf: Vec<u8>, sent: usize) {
        if buf.len() > sent {
            let alloc = buf.capacity();
            let bytes = Bytes::from(buf).slice(sent..);
            self.queued += bytes.len();
            self.queued_alloc += alloc;
            self.queue.push_back(Chunk { bytes, alloc });
        }
    }

    /// `n` more bytes of the queue were written.
    fn advance(&mut self, mut n: usize) {
        self.written += n as u64;
        self.queued -= n;
        while n > 0 {
            let Some(front) = self.queue.front() else { break };
            let left = front.bytes.len() - self.head;
            if n < left {
                self.head += n;
                return;
            }
            n -= left;
            self.head = 0;
            self.queued_alloc -= front.alloc;
            self.queue.pop_front();
        }
    }

    /// Write everything, waiting for the socket as long as it takes.
    pub async fn flush_all(&mut self, sock: &mut Stream) -> io::Result<()> {
        loop {
            self.pump(sock)?;
            if !self.has_pending() && !sock.has_unflushed() {
                return Ok(());
            }
            sock.writable().await?;
        }
    }

    /// Give back memory a burst left behind (an idle connection keeps a small buffer).
    pub fn shrink(&mut self) {
        if self.sink.buf.is_empty() && self.sink.buf.capacity() > SINK_MIN {
            self.sink.buf = Vec::with_capacity(SINK_MIN);
            (self.size, self.peak) = (SINK_MIN, 0);
        }
        if self.queue.is_empty() && self.queue.capacity() > 0 {
            self.queue = VecDeque::new();
        }
    }

    /// The cron's look at the reply buffer (Redis's clientsCronResizeOutputBuffer): one used
    /// under half since the peak was last reset is cut to that peak (at least [`SINK_MIN`]);
    /// one filled is doubled (up to [`SINK_MAX`]), once per filling, as Redis's peak never
    /// passes its buffer. Then, every `reset_after` (None: never), the peak starts again from
    /// what the buffer holds. Returns the resize: Less (shrunk), Greater (expanded) or Equal.
    pub fn resize_reply_buffer(&mut self, reset_after: Option<std::time::Duration>) -> std::cmp::Ordering {
        let size = self.size;
        let resized = if size / 2 >= SINK_MIN && self.peak < size / 2 {
            self.size = SINK_MIN.max(self.peak + 1);
            std::cmp::Ordering::Less
        } else if size < SINK_MAX && self.peak >= size {
            self.size = SINK_MAX.min(size * 2);
            self.peak = size;
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        };
        if self.sink.is_empty() && self.sink.buf.capacity() != self.size {
            self.sink.buf = Vec::with_capacity(self.size);
        }
        if reset_after.is_some_and(|after| self.peak_since.elapsed() >= after) {
            self.peak = self.sink.buf.len();
            self.peak_since = std::time::Instant::now();
        }
        resized
    }
}

/// Close a client for going over its output-buffer limit: Redis's log line (`asap` when found
/// while adding output, as Redis's asynchronous close; otherwise found by the timer of a soft
/// limit) and INFO's counter, once per client. Returns the connection's reason to end.
pub fn obuf_closed(server: &Server, handle: &ClientHandle, asap: bool) -> String {
    let info = handle.info_line(None);
    if handle.kill() {
        server.stats.client_output_buffer_limit_disconnections.fetch_add(1, Ordering::Relaxed);
        if asap {
            super::log::warning(&format!(
                "Client {info} scheduled to be closed ASAP for overcoming of output buffer limits."
            ));
        } else {
            super::log::warning(&format!("Client {info} closed for overcoming of output buffer limits."));
        }
    }
    "output buffer limit".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_walks_the_queue() {
        let mut o = Outbox::new(ReplySink::default(), Arc::new(Meter::default()));
        o.push(b"abc".to_vec(), 0);
        o.push(b"xdefg".to_vec(), 1);
        assert_eq!(o.pending(), 7);
        o.advance(2);
        assert_eq!((o.head, o.queued), (2, 5));
        o.advance(3);
        assert_eq!((o.head, o.queued, o.queue.len()), (2, 2, 1));
        o.advance(2);
        assert!(!o.has_pending());
        assert_eq!((o.take_written(), o.queued_alloc), (7, 0));
    }

    #[test]
    fn memory_counts_what_a_partly_sent_reply_keeps_alive() {
        let mut o = Outbox::new(ReplySink::default(), Arc::new(Meter::default()));
        let mut big = Vec::with_capacity(100_000);
        big.resize(90_000, b'x');
        // The socket took all but 10 bytes: the whole allocation stays until they leave.
        o.push(big, 89_990);
        assert_eq!(o.pending(), 10);
        assert!(o.memory() >= 100_000, "{}", o.memory());
        o.advance(10);
        // What stays is the reply buffer's 1 KB.
        assert!(o.memory() < 2_000, "{}", o.memory());
    }

    #[test]
    fn the_cron_doubles_a_full_reply_buffer_and_halves_one_used_under_half() {
        let mut o = Outbox::new(ReplySink::default(), Arc::new(Meter::default()));
        let sizes = |o: &Outbox| (o.size, o.sink.buf.capacity());
        assert_eq!(sizes(&o), (SINK_MIN, SINK_MIN));
        // Replies of 5 KB at a time (as a batch's write notes them): 2, 4, then 8 KB, which
        // holds them; 40 KB ones: 16 KB, and no more.
        for (peak, expected) in
            [(5000, 2048), (5000, 4096), (5000, 8192), (5000, 8192), (40_000, SINK_MAX), (40_000, SINK_MAX)]
        {
            o.peak = peak;
            o.resize_reply_buffer(None);
            assert_eq!(sizes(&o), (expected, expected));
        }
        // The peak restarts (until then it stays, and so does the size) and stays low: the
        // buffer is cut to it, and never under 1 KB.
        o.peak = 3000;
        o.resize_reply_buffer(Some(std::time::Duration::ZERO));
        assert_eq!((sizes(&o), o.peak), ((3001, 3001), 0));
        o.resize_reply_buffer(Some(std::time::Duration::ZERO));
        assert_eq!(sizes(&o), (SINK_MIN, SINK_MIN));
    }
}
