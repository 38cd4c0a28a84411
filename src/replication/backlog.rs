//! The replication buffer, as Redis 7 keeps it: one list of blocks shared by the backlog and
//! every replica. The bytes of the replication stream are appended once; each replica reads
//! them from its own position, and the backlog is the whole list, trimmed from the front (a
//! block at a time) once it holds more than `repl-backlog-size` and no replica still needs the
//! first block. A slow replica therefore keeps the blocks it has not sent alive (the backlog
//! grows past its size, and PSYNC may use that history) until the output-buffer limit of the
//! replica class disconnects it.
//!
//! Offsets are Redis's: the stream's bytes are numbered from 1; `end` is the offset of the
//! last byte appended (`master_repl_offset`), and a position is the offset of the next byte a
//! reader wants (PSYNC's offset). Knows nothing of the server: a plain data structure.

use std::collections::{HashMap, VecDeque};

/// Redis's PROTO_REPLY_CHUNK_BYTES: the smallest block.
pub const BLOCK_MIN: usize = 16 * 1024;
/// Memory counted per block beyond its bytes (Redis: the block header and its list node).
pub const BLOCK_OVERHEAD: usize = 64;
/// Blocks trimmed per call at most (Redis's REPL_BACKLOG_TRIM_BLOCKS_PER_CALL): freeing a
/// huge history after a slow replica leaves happens over several calls.
const TRIM_PER_CALL: usize = 64;

struct Block {
    /// Offset of the block's first byte.
    start: i64,
    /// Its bytes; the capacity is fixed when the block is made.
    data: Vec<u8>,
    cap: usize,
}

impl Block {
    fn end(&self) -> i64 {
        self.start + self.data.len() as i64
    }
}

/// A replica reading the buffer.
#[derive(Debug, Clone, Copy)]
struct Reader {
    /// Offset of the next byte it wants.
    pos: i64,
    /// Unix seconds since which its soft output-buffer limit is exceeded (0: it is not).
    soft_since: i64,
}

/// Output-buffer limits of the replica class (`client-output-buffer-limit replica`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ObufLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_seconds: i64,
}

/// What [`ReplBuffer::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// This many bytes were appended to the output.
    Data(usize),
    /// The reader has everything.
    UpToDate,
    /// The reader is unknown (it was removed, or the buffer was reset).
    Gone,
}

/// The stream's history and the replicas' positions in it.
#[derive(Default)]
pub struct ReplBuffer {
    blocks: VecDeque<Block>,
    /// Offset of the last byte appended.
    pub end: i64,
    histlen: i64,
    /// `repl-backlog-size`.
    limit: usize,
    mem: usize,
    readers: HashMap<u64, Reader>,
}

/// Reader ids are unique in the process: a reader of a buffer that was replaced is simply
/// unknown to the new one.
static NEXT_READER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl ReplBuffer {
    /// An empty buffer whose next byte will have offset `end + 1`.
    pub fn new(end: i64, limit: usize) -> Self {
        ReplBuffer { end, limit: limit.max(1), ..Default::default() }
    }

    /// Offset of the first byte held (Redis's `repl_backlog->offset`).
    pub fn first_offset(&self) -> i64 {
        self.end - self.histlen + 1
    }

    /// Bytes held (`repl_backlog_histlen`).
    pub fn histlen(&self) -> i64 {
        self.histlen
    }

    /// Memory of the blocks (`mem_total_replication_buffers`).
    pub fn memory(&self) -> usize {
        self.mem
    }

    /// Memory beyond what the backlog itself may hold: what lagging replicas keep alive, which
    /// maxmemory does not count (Redis's freeMemoryGetNotCountedMemory: the blocks beyond
    /// `repl-backlog-size` and its approximate per-block overhead).
    pub fn uncounted(&self) -> usize {
        let counted = self.limit + (self.limit / BLOCK_MIN + 1) * BLOCK_OVERHEAD;
        self.mem.saturating_sub(counted)
    }

    /// Change `repl-backlog-size` (trimming what is now too much).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
        self.trim();
    }

    /// Shift every offset by `delta` (a master restarted from an RDB file that carries its
    /// replication offset: Redis's rebaseReplicationBuffer).
    pub fn rebase(&mut self, delta: i64) {
        self.end += delta;
        for b in &mut self.blocks {
            b.start += delta;
        }
        for r in self.readers.values_mut() {
            r.pos += delta;
        }
    }

    /// Whether PSYNC at `offset` can be served from here.
    pub fn can_serve(&self, offset: i64) -> bool {
        offset >= self.first_offset() && offset <= self.end + 1
    }

    /// Append stream bytes.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        let mut new_block = false;
        while !bytes.is_empty() {
            if let Some(tail) = self.blocks.back_mut() {
                let room = tail.cap - tail.data.len();
                if room > 0 {
                    let n = room.min(bytes.len());
                    tail.data.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    self.end += n as i64;
                    self.histlen += n as i64;
                    continue;
                }
            }
            // Redis: at least a reply chunk, at most a sixteenth of the backlog (so a block is
            // never much bigger than what trimming removes at once).
            let most = (self.limit / 16).max(BLOCK_MIN);
            let cap = bytes.len().max(BLOCK_MIN).min(most);
            let mut data = Vec::with_capacity(cap);
            let n = cap.min(bytes.len());
            data.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            self.blocks.push_back(Block { start: self.end + 1, data, cap });
            self.end += n as i64;
            self.histlen += n as i64;
            self.mem += cap + BLOCK_OVERHEAD;
            new_block = true;
        }
        if new_block {
            self.trim();
        }
    }

    /// The readers over their output-buffer limit (what they have not been sent yet). Checked
    /// periodically rather than on every append: a replica keeping up is sent a big write
    /// before the check, as Redis writes it out (a replica that stopped reading, or is still
    /// waiting for its snapshot, is caught).
    pub fn over_limit(&mut self, obuf: ObufLimit, now_s: i64) -> Vec<u64> {
        let mut over = Vec::new();
        if obuf.hard == 0 && obuf.soft == 0 {
            return over;
        }
        // A hard limit under the backlog size is raised to it (Redis: partial resyncs would
        // succeed and the replica then be dropped at once).
        let hard = if obuf.hard > 0 { obuf.hard.max(self.limit as u64) } else { 0 };
        let ids: Vec<u64> = self.readers.keys().copied().collect();
        for id in ids {
            let used = self.reader_memory(id) as u64;
            let Some(r) = self.readers.get_mut(&id) else { continue };
            let mut soft = obuf.soft > 0 && used >= obuf.soft;
            if soft {
                if r.soft_since == 0 {
                    r.soft_since = now_s;
                    soft = false;
                } else if now_s - r.soft_since <= obuf.soft_seconds {
                    soft = false;
                }
            } else {
                r.soft_since = 0;
            }
            if (hard > 0 && used >= hard) || soft {
                over.push(id);
            }
        }
        over
    }

    /// Drop blocks from the front while the history is over its size and no reader needs them.
    fn trim(&mut self) {
        self.trim_up_to(TRIM_PER_CALL);
    }

    fn trim_up_to(&mut self, most: usize) {
        let mut trimmed = 0;
        while self.histlen > self.limit as i64 && trimmed < most && self.blocks.len() > 1 {
            let first = &self.blocks[0];
            let first_end = first.end();
            if self.readers.values().any(|r| r.pos < first_end) {
                break;
            }
            if self.histlen - (first.data.len() as i64) <= self.limit as i64 {
                break;
            }
            let len = first.data.len() as i64;
            let cap = first.cap;
            self.blocks.pop_front();
            self.histlen -= len;
            self.mem -= cap + BLOCK_OVERHEAD;
            trimmed += 1;
        }
    }

    /// Trim what became unneeded (a reader left, the size shrank): ten times the blocks of a
    /// write (Redis trims so before each event loop sleep).
    pub fn trim_step(&mut self) {
        self.trim_up_to(10 * TRIM_PER_CALL);
    }

    /// A new reader wanting everything from `pos` (which [`can_serve`](Self::can_serve)
    /// must accept, or be the next byte).
    pub fn add_reader(&mut self, pos: i64) -> u64 {
        let id = NEXT_READER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.readers.insert(id, Reader { pos, soft_since: 0 });
        id
    }

    pub fn remove_reader(&mut self, id: u64) {
        if self.readers.remove(&id).is_some() {
            self.trim();
        }
    }

    /// The position of a reader.
    pub fn reader_pos(&self, id: u64) -> Option<i64> {
        self.readers.get(&id).map(|r| r.pos)
    }

    /// Bytes a reader holds alive (Redis's output-buffer memory of a replica: from the block
    /// it reads to the end of the last block).
    pub fn reader_memory(&self, id: u64) -> usize {
        let Some(r) = self.readers.get(&id) else { return 0 };
        let Some(last) = self.blocks.back() else { return 0 };
        let idx = self.block_index(r.pos).unwrap_or(self.blocks.len() - 1);
        let cur = &self.blocks[idx];
        let n = self.blocks.len() - idx;
        (last.start + last.cap as i64 - cur.start) as usize + n * BLOCK_OVERHEAD
    }

    /// Index of the block holding offset `pos` (the last block when `pos` is just past the
    /// end).
    fn block_index(&self, pos: i64) -> Option<usize> {
        if self.blocks.is_empty() || pos < self.blocks[0].start {
            return None;
        }
        let i = self.blocks.partition_point(|b| b.end() < pos);
        Some(i.min(self.blocks.len() - 1))
    }

    /// Copy up to `max` bytes from a reader's position into `out`, advancing it.
    pub fn read(&mut self, id: u64, max: usize, out: &mut Vec<u8>) -> Read {
        let Some(pos) = self.reader_pos(id) else { return Read::Gone };
        if pos > self.end {
            return Read::UpToDate;
        }
        let Some(mut idx) = self.block_index(pos) else { return Read::Gone };
        let mut at = pos;
        let mut copied = 0;
        while copied < max && idx < self.blocks.len() {
            let b = &self.blocks[idx];
            let from = (at - b.start) as usize;
            let n = (b.data.len() - from).min(max - copied);
            out.extend_from_slice(&b.data[from..from + n]);
            copied += n;
            at += n as i64;
            idx += 1;
        }
        if let Some(r) = self.readers.get_mut(&id) {
            r.pos = at;
        }
        self.trim();
        Read::Data(copied)
    }

    /// The newest `n` bytes (for the log when the stream looks broken).
    pub fn tail(&self, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for b in self.blocks.iter().rev() {
            if out.len() >= n {
                break;
            }
            let take = (n - out.len()).min(b.data.len());
            let mut part = b.data[b.data.len() - take..].to_vec();
            part.extend_from_slice(&out);
            out = part;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_start_after_the_base_and_readers_get_every_byte() {
        let mut b = ReplBuffer::new(100, 1 << 20);
        assert_eq!(b.first_offset(), 101);
        assert_eq!(b.histlen(), 0);
        let r = b.add_reader(101);
        b.feed(b"hello");
        b.feed(b" world");
        assert_eq!(b.end, 111);
        let mut out = Vec::new();
        assert_eq!(b.read(r, 3, &mut out), Read::Data(3));
        assert_eq!(b.read(r, 100, &mut out), Read::Data(8));
        assert_eq!(out, b"hello world");
        assert_eq!(b.read(r, 100, &mut out), Read::UpToDate);
        assert!(b.can_serve(101) && b.can_serve(112) && !b.can_serve(100) && !b.can_serve(113));
        b.remove_reader(r);
        assert_eq!(b.read(r, 1, &mut out), Read::Gone);
    }

    #[test]
    fn history_is_trimmed_a_block_at_a_time_unless_a_reader_needs_it() {
        let mut b = ReplBuffer::new(0, BLOCK_MIN);
        let slow = b.add_reader(1);
        let chunk = vec![b'x'; BLOCK_MIN];
        for _ in 0..4 {
            b.feed(&chunk);
        }
        // The slow reader keeps everything alive.
        assert_eq!(b.histlen(), 4 * BLOCK_MIN as i64);
        assert_eq!(b.reader_memory(slow), 4 * (BLOCK_MIN + BLOCK_OVERHEAD));
        let mut out = Vec::new();
        b.read(slow, 3 * BLOCK_MIN, &mut out);
        // It moved on to the last block: the history falls back to the backlog size (never
        // under it: a block is dropped only if what stays is still more than the size).
        assert_eq!(b.histlen(), 2 * BLOCK_MIN as i64);
        assert_eq!(b.first_offset(), 2 * BLOCK_MIN as i64 + 1);
        b.remove_reader(slow);
        // A PSYNC from the first byte kept is served from the right place.
        let r = b.add_reader(b.first_offset() + 10);
        out.clear();
        assert_eq!(b.read(r, usize::MAX, &mut out), Read::Data(2 * BLOCK_MIN - 10));
    }

    #[test]
    fn readers_over_the_hard_limit_are_reported() {
        let mut b = ReplBuffer::new(0, BLOCK_MIN);
        let r = b.add_reader(1);
        let limit = ObufLimit { hard: 3 * BLOCK_MIN as u64, soft: 0, soft_seconds: 0 };
        b.feed(&vec![0; BLOCK_MIN]);
        b.feed(&vec![0; BLOCK_MIN]);
        assert!(b.over_limit(limit, 0).is_empty());
        b.feed(&vec![0; BLOCK_MIN]);
        assert_eq!(b.over_limit(limit, 0), vec![r]);
        // Soft limit: reported once exceeded for longer than its seconds.
        let mut b = ReplBuffer::new(0, BLOCK_MIN);
        let r = b.add_reader(1);
        let soft = ObufLimit { hard: 0, soft: BLOCK_MIN as u64, soft_seconds: 2 };
        b.feed(&vec![0; BLOCK_MIN]);
        assert!(b.over_limit(soft, 10).is_empty());
        assert!(b.over_limit(soft, 12).is_empty());
        assert_eq!(b.over_limit(soft, 13), vec![r]);
    }

    #[test]
    fn big_writes_are_split_into_blocks_of_at_most_a_sixteenth_of_the_backlog() {
        let mut b = ReplBuffer::new(0, 1 << 20);
        b.feed(&vec![1; 200_000]);
        assert_eq!(b.end, 200_000);
        // Three blocks of 64 KiB, and the rest in a block of the minimum size.
        assert_eq!(b.memory(), 3 * ((1 << 16) + BLOCK_OVERHEAD) + BLOCK_MIN + BLOCK_OVERHEAD);
        assert_eq!(b.tail(3), vec![1, 1, 1]);
        b.rebase(1000);
        assert_eq!(b.first_offset(), 1001);
        assert_eq!(b.end, 201_000);
    }
}
