//! The stream type (Redis's t_stream.c data structure): an ordered map from master IDs to
//! listpack nodes (Redis's radix tree of listpacks, `node.rs`, `lp.rs`), with the stream's
//! length, last/first IDs, tombstone and added-entries bookkeeping, and its consumer groups
//! (`cgroup.rs`). Ranges (`range.rs`) seek the first node in O(log n). `rax.rs` computes the
//! radix-tree shape Redis would have for the same node keys (XINFO reports it).

pub mod cgroup;
pub mod id;
pub mod lp;
pub mod node;
pub mod node_map;
pub mod range;
pub mod rax;

use std::collections::BTreeMap;

use bytes::Bytes;

pub use cgroup::{Consumer, ConsumerGroup, Nack, INVALID_ENTRIES_READ};
pub use id::StreamId;
pub use node::EntryRef;
pub use node_map::NodeMap;
pub use range::Range;

/// The largest listpack a node may grow to, whatever stream-node-max-bytes says.
pub const LISTPACK_MAX_SIZE: usize = 1 << 30;
const MAX_PREALLOC: usize = 4096;

/// stream-node-max-bytes / stream-node-max-entries.
#[derive(Clone, Copy, Debug)]
pub struct NodeLimits {
    pub max_bytes: usize,
    pub max_entries: i64,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits { max_bytes: 4096, max_entries: 100 }
    }
}

/// Why an entry could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddError {
    /// The ID is not greater than the last one (or the sequence would overflow).
    IdTooSmall,
    /// The fields and values together are too large for a node.
    TooLarge,
}

/// How XADD/XTRIM trim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamValue {
    nodes: NodeMap,
    length: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted_entry_id: StreamId,
    pub entries_added: u64,
    pub groups: BTreeMap<Bytes, ConsumerGroup>,
}

impl StreamValue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Number of nodes (XINFO's radix-tree-keys).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Nodes in ID order: (master ID, listpack bytes).
    pub fn nodes(&self) -> impl Iterator<Item = (&StreamId, &Vec<u8>)> {
        self.nodes.iter()
    }

    /// The number of radix-tree nodes Redis would use for these node keys.
    pub fn rax_nodes(&self) -> usize {
        rax::node_count(self.nodes.iter().map(|(k, _)| k.to_be_bytes()))
    }

    /// Entries between `start` and `end` (inclusive), tombstones skipped.
    pub fn range(&self, start: StreamId, end: StreamId, rev: bool) -> Range<'_> {
        Range::new(&self.nodes, start, end, rev)
    }

    /// The live entry `id`, if any (Redis's streamEntryExists).
    pub fn get(&self, id: StreamId) -> Option<EntryRef<'_>> {
        self.range(id, id, false).next()
    }

    /// The first or last entry's ID, tombstones included or not (Redis's streamGetEdgeID):
    /// MAX (first) or MIN (last) when there is none.
    pub fn edge_id(&self, first: bool, skip_tombstones: bool) -> StreamId {
        let mut r = Range::new(&self.nodes, StreamId::MIN, StreamId::MAX, !first);
        if !skip_tombstones {
            r = r.with_tombstones();
        }
        match r.next() {
            Some(e) => e.id,
            None if first => StreamId::MAX,
            None => StreamId::MIN,
        }
    }

    /// The last live entry's ID (0-0 when empty: Redis's streamLastValidID).
    pub fn last_valid_id(&self) -> StreamId {
        self.range(StreamId::MIN, StreamId::MAX, true).next().map_or(StreamId::MIN, |e| e.id)
    }

    /// Append an entry (Redis's streamAppendItem). `id` is the explicit ID (with whether its
    /// sequence was given), or None for an automatic one at `now_ms`.
    pub fn add(
        &mut self,
        pairs: &[&[u8]],
        id: Option<id::ParsedId>,
        now_ms: u64,
        limits: NodeLimits,
    ) -> Result<StreamId, AddError> {
        let new_id = match id {
            Some(p) if p.seq_given => p.id,
            Some(p) if self.last_id.ms == p.id.ms => {
                if self.last_id.seq == u64::MAX {
                    return Err(AddError::IdTooSmall);
                }
                StreamId::new(p.id.ms, self.last_id.seq + 1)
            }
            Some(p) => p.id,
            None if now_ms > self.last_id.ms => StreamId::new(now_ms, 0),
            None => self.last_id.incr().unwrap_or(StreamId::MIN),
        };
        if new_id <= self.last_id {
            return Err(AddError::IdTooSmall);
        }
        let total: usize = pairs.iter().map(|p| p.len()).sum();
        if total > LISTPACK_MAX_SIZE {
            return Err(AddError::TooLarge);
        }
        let max_bytes = if limits.max_bytes == 0 || limits.max_bytes > LISTPACK_MAX_SIZE {
            LISTPACK_MAX_SIZE
        } else {
            limits.max_bytes
        };
        let mut tail = self.nodes.last_mut();
        if let Some((_, lp)) = &mut tail {
            let full = if lp.len() + total >= max_bytes {
                true
            } else if limits.max_entries > 0 {
                let m = node::master(lp);
                m.count + m.deleted >= limits.max_entries
            } else {
                false
            };
            if full {
                // A fresh exact-size copy rather than shrink_to_fit: allocators often shrink
                // in place, keeping the whole preallocated block.
                if lp.capacity() > lp.len() {
                    **lp = lp.as_slice().to_vec();
                }
                tail = None;
            }
        }
        match tail {
            Some((master, lp)) => node::append(lp, *master, new_id, pairs),
            None => {
                let mut prealloc = MAX_PREALLOC;
                if limits.max_bytes > 0 && limits.max_bytes < prealloc {
                    prealloc = limits.max_bytes;
                }
                self.nodes.insert(new_id, node::create(new_id, new_id, pairs, prealloc));
            }
        }
        self.length += 1;
        // Redis's counters are C integers that wrap (a RESTOREd or XSETID counter at the top).
        self.entries_added = self.entries_added.wrapping_add(1);
        self.last_id = new_id;
        if self.length == 1 {
            self.first_id = new_id;
        }
        Ok(new_id)
    }

    /// Delete the live entry `id` (Redis's streamDeleteItem): true if it was there.
    fn delete_one(&mut self, id: StreamId) -> bool {
        let Some((master, flags_pos, flags)) = self.get(id).map(|e| {
            let (master, _) = self.nodes.floor(id, true).expect("an entry lives in a node");
            (*master, e.flags_pos, e.flags)
        }) else {
            return false;
        };
        let lp = self.nodes.get_mut(master).expect("node found above");
        if node::mark_deleted(lp, flags_pos, flags) == 0 {
            self.nodes.remove(master);
        }
        self.length -= 1;
        true
    }

    /// XDEL: delete the given entries, keeping first ID and maximal tombstone right. Returns
    /// how many were deleted.
    pub fn delete(&mut self, ids: &[StreamId]) -> u64 {
        let mut deleted = 0;
        let mut first_entry = false;
        for &id in ids {
            if self.delete_one(id) {
                if id == self.first_id {
                    first_entry = true;
                }
                if id > self.max_deleted_entry_id {
                    self.max_deleted_entry_id = id;
                }
                deleted += 1;
            }
        }
        if deleted > 0 {
            if self.length == 0 {
                self.first_id = StreamId::MIN;
            } else if first_entry {
                self.first_id = self.edge_id(true, true);
            }
        }
        deleted
    }

    /// Trim from the oldest entries (Redis's streamTrim). With `approx`, only whole nodes are
    /// removed; `limit` (0: none) caps the entries removed. Returns how many were removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: i64) -> i64 {
        let mut deleted: i64 = 0;
        let mut from = StreamId::MIN;
        while let Some((&master, lp)) = self.nodes.ceil(from, true) {
            if let Trim::MaxLen(maxlen) = how {
                if self.length <= maxlen {
                    break;
                }
            }
            let m = node::master(lp);
            let entries = m.count;
            if limit > 0 && deleted + entries > limit {
                break;
            }
            let remove = match how {
                Trim::MaxLen(maxlen) => self.length.saturating_sub(entries as u64) >= maxlen,
                Trim::MinId(minid) => {
                    let last = node::last_entry(lp).map_or(StreamId::MIN, |p| node::entry_at(lp, master, &m, p).id);
                    last < minid
                }
            };
            if remove {
                self.nodes.remove(master);
                self.length = self.length.saturating_sub(entries as u64);
                deleted += entries;
                from = master;
                continue;
            }
            if approx {
                break;
            }
            // Mark entries deleted inside this node.
            let lp = self.nodes.get_mut(master).expect("node found above");
            let mut marked = 0i64;
            let mut pos = m.first_entry;
            while let Some(p) = pos {
                let e = node::entry_at(lp, master, &m, p);
                let stop = match how {
                    Trim::MaxLen(maxlen) => self.length <= maxlen,
                    Trim::MinId(minid) => e.id >= minid,
                };
                if stop {
                    break;
                }
                let (flags, count_pos) = (e.flags, e.count_pos);
                if flags & node::FLAG_DELETED == 0 {
                    let before = lp.len();
                    lp::replace_int(lp, p, flags | node::FLAG_DELETED);
                    let after = lp.len();
                    marked += 1;
                    self.length -= 1;
                    pos = lp::next(lp, count_pos + after - before);
                } else {
                    pos = lp::next(lp, count_pos);
                }
            }
            node::adjust_counts(lp, -marked);
            deleted += marked;
            break;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if deleted > 0 {
            self.first_id = self.edge_id(true, true);
        }
        deleted
    }

    /// Whether `start..=end` may hold a tombstone (Redis's streamRangeHasTombstones; `end`
    /// None means the end of the stream).
    pub fn range_has_tombstones(&self, start: StreamId, end: Option<StreamId>) -> bool {
        if self.length == 0 || self.max_deleted_entry_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_entry_id {
            return false;
        }
        let end = end.unwrap_or(StreamId::MAX);
        start <= self.max_deleted_entry_id && self.max_deleted_entry_id <= end
    }

    /// The logical read counter of `id` (Redis's streamEstimateDistanceFromFirstEverEntry),
    /// or INVALID_ENTRIES_READ when it cannot be known.
    pub fn estimate_distance(&self, id: StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        if self.length == 0 && id <= self.last_id {
            return self.entries_added as i64;
        }
        if id == self.last_id {
            return self.entries_added as i64;
        } else if id > self.last_id {
            return INVALID_ENTRIES_READ;
        }
        if self.max_deleted_entry_id.is_zero() || self.max_deleted_entry_id < self.first_id {
            if id < self.first_id {
                return (self.entries_added - self.length) as i64;
            } else if id == self.first_id {
                return (self.entries_added - self.length + 1) as i64;
            }
        }
        INVALID_ENTRIES_READ
    }

    /// A group's lag (Redis's streamReplyWithCGLag): None when it cannot be known.
    pub fn lag(&self, g: &ConsumerGroup) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != INVALID_ENTRIES_READ && !self.range_has_tombstones(g.last_id, None) {
            return Some((self.entries_added as i64).wrapping_sub(g.entries_read));
        }
        let read = self.estimate_distance(g.last_id);
        (read != INVALID_ENTRIES_READ).then(|| (self.entries_added as i64).wrapping_sub(read))
    }

    /// A group delivered `id` (greater than its last ID): advance its last ID and read counter
    /// as Redis's streamReplyWithRange does.
    pub fn advance_group(&mut self, group: &[u8], id: StreamId) {
        let valid = self.groups.get(group).is_some_and(|g| g.entries_read != INVALID_ENTRIES_READ);
        let read = if valid && !self.range_has_tombstones(id, None) {
            None
        } else if self.entries_added > 0 {
            Some(self.estimate_distance(id))
        } else {
            Some(self.groups.get(group).map_or(0, |g| g.entries_read))
        };
        if let Some(g) = self.groups.get_mut(group) {
            match read {
                None => g.entries_read = g.entries_read.wrapping_add(1),
                Some(r) => g.entries_read = r,
            }
            g.last_id = id;
        }
    }

    /// Replace every field of the stream's header (RDB loading, XSETID...).
    pub fn set_length(&mut self, length: u64) {
        self.length = length;
    }

    /// Insert a loaded node (RDB): false if its key exists.
    pub fn insert_node(&mut self, master: StreamId, lp: Vec<u8>) -> bool {
        if self.nodes.contains_key(master) {
            return false;
        }
        self.nodes.insert(master, lp);
        true
    }

    /// Bytes used, roughly (MEMORY USAGE): nodes, tree overhead, groups and their PELs.
    pub fn memory_usage(&self) -> usize {
        let mut n = 96 + self.nodes.iter().map(|(_, lp)| lp.capacity() + 48).sum::<usize>();
        for (name, g) in &self.groups {
            n += 64 + name.len() + g.pel.len() * 64;
            for (cname, c) in &g.consumers {
                n += 64 + cname.len() + c.pel.len() * 24;
            }
        }
        n
    }

    /// Walk every entry forwards and backwards, reading every field (for fuzzing and checks of
    /// loaded values): returns the number of live entries seen in each direction.
    pub fn walk(&self) -> (u64, u64) {
        let mut counts = [0u64; 2];
        for (i, rev) in [false, true].into_iter().enumerate() {
            for e in self.range(StreamId::MIN, StreamId::MAX, rev) {
                counts[i] += 1;
                for (f, v) in e.fields() {
                    std::hint::black_box((f.text_len(), v.text_len()));
                }
            }
        }
        (counts[0], counts[1])
    }

    /// Redis's lazyfree effort for this value: nodes, plus groups times the first group's PEL.
    pub fn free_effort(&self) -> usize {
        let mut effort = self.rax_nodes();
        if let Some(g) = self.groups.values().next() {
            effort += self.groups.len() * (1 + g.pel.len());
        }
        effort
    }
}

#[cfg(test)]
mod tests;
