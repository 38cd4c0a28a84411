//! How a connection's input buffer (Redis's query buffer) is sized. A read makes room for 16 KB,
//! or for all of an argument whose header announced it (see `protocol::parser`); after a big
//! argument read across reads, room for another as big (up to 1 MB) is kept; a buffer much
//! bigger than what its client needed lately is trimmed, and an idle client's spare room is given
//! back. The trims are Redis's `clientsCronResizeQueryBuffer`: the cron asks
//! (`resize_client_buffers`), and the connection, which owns the buffer, checks and trims when it
//! next waits for input.

use super::outbox::SINK_MIN;
use super::{log, Server};
use crate::protocol::parser::{partial_progress, pending_argument_end};
use crate::session::ClientHandle;
use bytes::BytesMut;
use std::sync::atomic::Ordering;

/// What a read asks room for (Redis's PROTO_IOBUF_LEN).
pub const READ_CHUNK: usize = 16 * 1024;
/// An argument at least this long, read across reads, leaves room for another as long after its
/// request (Redis's PROTO_MBULK_BIG_ARG: "if we saw a fat argument we'll see another one likely").
const BIG_ARG: usize = 32 * 1024;
/// The most room kept after a big argument. Redis keeps room for all of it, but Ferrous's parser
/// makes room for an announced argument anyway, so the room kept only shows in CLIENT LIST and
/// counts in used_memory: a 5 GB value does not leave 5 GB behind.
const FAT_ARG_ROOM_MAX: usize = 1 << 20;
/// A buffer no bigger than this is never trimmed for being bigger than its peak (Redis's
/// PROTO_RESIZE_THRESHOLD).
const RESIZE_THRESHOLD: usize = 32 * 1024;
/// Spare room not worth a trim (Redis trims only when more than 4 KB would be saved).
const WASTE: usize = 4 * 1024;

/// A connection's record of what its buffer needed since the last check.
#[derive(Default)]
pub struct Sizing {
    /// The most the buffer held or had to make room for since the last check (Redis's
    /// `querybuf_peak`).
    peak: usize,
    /// The length of a big argument still being read, kept for when its request is done.
    fat_arg: usize,
}

impl Sizing {
    /// After a read: the buffer holds `buf.len()` bytes.
    #[inline]
    pub fn note_read(&mut self, buf: &BytesMut) {
        self.peak = self.peak.max(buf.len());
    }

    /// A request is partly read, its current argument's payload starting at `start` and ending
    /// (with its two trailing bytes) at `end`: the room made for it counts in the peak.
    pub fn note_pending(&mut self, start: usize, end: usize) {
        self.peak = self.peak.max(end);
        let len = end.saturating_sub(start + 2);
        if len >= BIG_ARG {
            self.fat_arg = len;
        }
    }

    /// After a batch that executed requests: if one of them carried a big argument read across
    /// reads, keep room for another as big.
    #[inline]
    pub fn after_requests(&mut self, buf: &mut BytesMut) {
        if self.fat_arg > 0 {
            let room = (self.fat_arg + 2).min(FAT_ARG_ROOM_MAX);
            buf.reserve(room);
            self.peak = self.peak.max(buf.len() + room);
            self.fat_arg = 0;
        }
    }

    /// The cron's check: an idle client's spare room goes (its pending bytes stay); a buffer
    /// bigger than the threshold and more than twice its recent peak is cut to that peak (not
    /// below what it holds, nor below the end of an argument being read). Then the peak starts
    /// again from what the buffer holds.
    pub fn resize(&mut self, buf: &mut BytesMut, idle: bool) {
        let pending_end = pending_argument_end(buf).unwrap_or(0);
        if buf.capacity() - buf.len() > WASTE {
            if idle {
                shrink_to(buf, buf.len());
            } else if buf.capacity() > RESIZE_THRESHOLD && buf.capacity() / 2 > self.peak {
                shrink_to(buf, buf.len().max(self.peak).max(pending_end));
            }
        }
        self.peak = buf.len().max(pending_end);
    }
}

/// Replace `buf` with one of `capacity` bytes holding the same bytes.
fn shrink_to(buf: &mut BytesMut, capacity: usize) {
    let mut smaller = if capacity == 0 { BytesMut::new() } else { BytesMut::with_capacity(capacity) };
    smaller.extend_from_slice(buf);
    *buf = smaller;
}

/// Room to read into (an idle connection may have given its buffer back): at least 1 KB, taken
/// as 16 KB more.
///
/// Not while the rest of a big argument fits in the room the parser made for it (its exact
/// size): growing a full buffer doubles it, and a client reading a 6 MB argument would count
/// 12 MB towards maxmemory-clients, and be evicted, depending on how its last bytes arrived.
/// Redis likewise reads only what the argument still lacks into a buffer sized for it.
pub fn make_room(buf: &mut BytesMut) {
    make_room_with(buf, 1024, READ_CHUNK);
}

/// [`make_room`] with other sizes: under `min_free` bytes of room, room for `chunk` more.
pub fn make_room_with(buf: &mut BytesMut, min_free: usize, chunk: usize) {
    let free = buf.capacity() - buf.len();
    if free < min_free {
        if free > 0 && buf.capacity() > READ_CHUNK && pending_argument_end(buf).is_some_and(|end| end <= buf.capacity())
        {
            return;
        }
        buf.reserve(chunk);
    }
}

/// Close a client whose query buffer passed `client-query-buffer-limit`, as Redis does: what
/// counts is what the buffer holds beyond the complete arguments of the request being read
/// (Redis moves those out of its query buffer, so a request of two 600 MB arguments is within a
/// 1 GB limit). Err (why the connection closes) when over, after Redis's log line and INFO's
/// count.
pub fn check_limit(server: &Server, handle: &ClientHandle, buf: &[u8], limit: usize) -> Result<(), String> {
    if buf.len() <= limit {
        return Ok(());
    }
    let (consumed, _, _) = partial_progress(buf);
    let held = &buf[consumed..];
    if held.len() <= limit {
        return Ok(());
    }
    server.stats.client_query_buffer_limit_disconnections.fetch_add(1, Ordering::Relaxed);
    let mut initial = Vec::new();
    super::monitor::repr_into(&mut initial, &held[..held.len().min(64)]);
    log::warning(&format!(
        "Closing client that reached max query buffer length: {} (qbuf initial bytes: {})",
        handle.info_line(None),
        String::from_utf8_lossy(&initial)
    ));
    Err("query buffer limit".into())
}

/// From the cron, every tick: ask the connections whose buffers may be resized (the query
/// buffer, or the reply buffer) to check them
/// (through their push queues, at most one request outstanding; a connection that left its read
/// loop, a replica link say, never takes it). As Redis's clientsCron, every client is looked at
/// once a second, and at every tick while there are at most 5.
pub fn resize_client_buffers(server: &Server, every_second: bool) {
    let clients = server.clients.lock();
    if !every_second && clients.len() > 5 {
        return;
    }
    for h in clients.values() {
        let (held, free, rbs, rbp) = {
            let v = h.view.lock();
            (v.qbuf + v.qbuf_free, v.qbuf_free, v.rbs, v.rbp)
        };
        // A reply buffer above the smallest may shrink, one that held anything may grow, and
        // its peak is reset (as Redis's clientsCron looks at every client).
        let reply_buffer = rbs > SINK_MIN || rbp > 0;
        if (free > WASTE && (held > RESIZE_THRESHOLD || h.idle_secs() >= 2)) || reply_buffer {
            h.request_shrink();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(capacity: usize, content: &[u8]) -> BytesMut {
        let mut b = BytesMut::with_capacity(capacity);
        b.extend_from_slice(content);
        b
    }

    #[test]
    fn an_idle_buffer_keeps_only_what_it_holds() {
        let mut s = Sizing::default();
        let mut b = buffer(READ_CHUNK, b"");
        s.resize(&mut b, true);
        assert_eq!(b.capacity(), 0);
        let head = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1000000\r\n";
        let mut b = buffer(1 << 20, head);
        s.resize(&mut b, true);
        assert_eq!((b.capacity(), &b[..]), (head.len(), &head[..]), "no room kept for the argument");
        // Little to gain: left alone.
        let mut b = buffer(3000, b"x");
        s.resize(&mut b, true);
        assert_eq!(b.capacity(), 3000);
    }

    #[test]
    fn a_busy_buffer_is_cut_to_its_recent_peak_once_that_is_under_half() {
        let mut s = Sizing::default();
        let mut b = buffer(400_002, b"");
        s.note_read(&buffer(400_002, &[b'A'; 300_000]));
        s.resize(&mut b, false);
        assert_eq!(b.capacity(), 400_002, "the peak is still high");
        s.note_read(&buffer(64, &[b'A'; 40]));
        s.resize(&mut b, false);
        assert_eq!(b.capacity(), 40);
        // At most the threshold: kept.
        let mut b = buffer(RESIZE_THRESHOLD, b"");
        s.resize(&mut b, false);
        assert_eq!(b.capacity(), RESIZE_THRESHOLD);
    }

    #[test]
    fn a_cut_keeps_room_for_the_argument_being_read() {
        let mut s = Sizing::default();
        let head = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$100000\r\n";
        let mut b = buffer(1 << 20, head);
        s.resize(&mut b, false);
        s.resize(&mut b, false);
        assert_eq!(b.capacity(), head.len() + 100_002);
    }

    #[test]
    fn a_fat_argument_leaves_room_for_another() {
        let mut s = Sizing::default();
        s.note_pending(30, 30 + 400_002);
        let mut b = BytesMut::new();
        s.after_requests(&mut b);
        assert!(b.capacity() >= 400_002);
        // A huge one leaves at most 1 MB.
        s.note_pending(30, 30 + (5 << 30));
        let mut b = BytesMut::new();
        s.after_requests(&mut b);
        assert_eq!(b.capacity(), FAT_ARG_ROOM_MAX);
        // Once only, and not for a small argument.
        let mut b = BytesMut::new();
        s.after_requests(&mut b);
        s.note_pending(30, 30 + 1002);
        s.after_requests(&mut b);
        assert_eq!(b.capacity(), 0);
    }
}
