//! Iterating a stream's entries between two IDs, forwards or backwards, as Redis's
//! streamIterator does: the first node is found in O(log n) in the ordered map of nodes, then
//! entries are walked inside each node, skipping tombstones (deleted entries) unless asked.

use super::id::StreamId;
use super::node::{self, EntryRef, Master};
use super::node_map::NodeMap;

struct Cursor<'a> {
    master_id: StreamId,
    node: &'a [u8],
    m: Master,
    /// The flags position of the next entry to look at.
    pos: Option<usize>,
}

impl<'a> Cursor<'a> {
    fn open(master_id: StreamId, node: &'a [u8], rev: bool) -> Self {
        let m = node::master(node);
        let pos = if rev { node::last_entry(node) } else { m.first_entry };
        Cursor { master_id, node, m, pos }
    }
}

/// Entries with `start <= id <= end`, in order (or reverse order).
pub struct Range<'a> {
    nodes: &'a NodeMap,
    start: StreamId,
    end: StreamId,
    rev: bool,
    tombstones: bool,
    cur: Option<Cursor<'a>>,
}

impl<'a> Range<'a> {
    pub fn new(nodes: &'a NodeMap, start: StreamId, end: StreamId, rev: bool) -> Self {
        let first = if rev { nodes.floor(end, true) } else { nodes.floor(start, true).or_else(|| nodes.iter().next()) };
        let cur = first.map(|(k, v)| Cursor::open(*k, v, rev));
        Range { nodes, start, end, rev, tombstones: false, cur }
    }

    /// Also yield deleted entries.
    pub fn with_tombstones(mut self) -> Self {
        self.tombstones = true;
        self
    }

    fn next_node(&mut self) {
        let Some(c) = &self.cur else { return };
        let next = if self.rev { self.nodes.floor(c.master_id, false) } else { self.nodes.ceil(c.master_id, false) };
        self.cur = next.map(|(k, v)| Cursor::open(*k, v, self.rev));
    }
}

impl<'a> Iterator for Range<'a> {
    type Item = EntryRef<'a>;

    fn next(&mut self) -> Option<EntryRef<'a>> {
        loop {
            let c = self.cur.as_mut()?;
            let Some(pos) = c.pos else {
                self.next_node();
                continue;
            };
            let e = node::entry_at(c.node, c.master_id, &c.m, pos);
            c.pos = if self.rev { node::prev_entry(c.node, &e) } else { node::next_entry(c.node, &e) };
            if !self.tombstones && e.deleted() {
                continue;
            }
            if !self.rev {
                if e.id < self.start {
                    continue;
                }
                if e.id > self.end {
                    self.cur = None;
                    return None;
                }
            } else {
                if e.id > self.end {
                    continue;
                }
                if e.id < self.start {
                    self.cur = None;
                    return None;
                }
            }
            return Some(e);
        }
    }
}
