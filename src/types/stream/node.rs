//! One stream node: a listpack holding a "master entry" and delta-encoded entries, exactly as
//! Redis's t_stream.c lays it out (so the bytes travel unchanged to RDB files and DUMP).
//!
//! ```text
//! master: count | deleted | num-fields | field_1 ... field_N | 0
//! entry:  flags | ms-delta | seq-delta | [num-fields | field_1 | value_1 ... | value_N] | lp-count
//!         (with the SAMEFIELDS flag: flags | ms-delta | seq-delta | value_1 ... value_N | lp-count)
//! ```
//! `count`/`deleted` are the live and deleted (tombstone) entries; IDs are deltas from the
//! node's master ID (its key in the tree); `lp-count` is the number of elements of the entry
//! before it, so the node can be walked backwards.

use super::id::StreamId;
use super::lp::{self, Ele};

pub const FLAG_DELETED: i64 = 1;
pub const FLAG_SAMEFIELDS: i64 = 2;

/// Position of the first entry's flags (None for a node with no entries, which never exists
/// in a valid stream), the master field count and the master fields' position.
#[derive(Clone, Copy, Debug)]
pub struct Master {
    pub count: i64,
    pub deleted: i64,
    pub nfields: usize,
    /// Position of the first master field (or of the terminator when there are none).
    pub fields_pos: usize,
    /// Position of the first entry's flags.
    pub first_entry: Option<usize>,
}

/// Read the master entry.
pub fn master(node: &[u8]) -> Master {
    let p = lp::HDR;
    let count = lp::get_int(node, p);
    let p = lp::next(node, p).unwrap_or(p);
    let deleted = lp::get_int(node, p);
    let p = lp::next(node, p).unwrap_or(p);
    let nfields = lp::get_int(node, p).max(0) as usize;
    let mut q = lp::next(node, p).unwrap_or(p);
    let fields_pos = q;
    for _ in 0..nfields {
        q = lp::next(node, q).unwrap_or(q);
    }
    // q is the master terminator.
    Master { count, deleted, nfields, fields_pos, first_entry: lp::next(node, q) }
}

/// A new node whose master entry takes the fields of its first entry, `id`.
pub fn create(master_id: StreamId, id: StreamId, pairs: &[&[u8]], prealloc: usize) -> Vec<u8> {
    let mut node = lp::new(prealloc);
    let nfields = pairs.len() / 2;
    lp::append_int(&mut node, 1);
    lp::append_int(&mut node, 0);
    lp::append_int(&mut node, nfields as i64);
    for f in pairs.iter().step_by(2) {
        lp::append_str(&mut node, f);
    }
    lp::append_int(&mut node, 0);
    push_entry(&mut node, master_id, id, pairs, true);
    node
}

/// Append entry `id` to a node with master ID `master_id` (bumping the live count).
pub fn append(node: &mut Vec<u8>, master_id: StreamId, id: StreamId, pairs: &[&[u8]]) {
    let count = lp::get_int(node, lp::HDR);
    lp::replace_int(node, lp::HDR, count + 1);
    let m = master(node);
    let nfields = pairs.len() / 2;
    let mut same = m.nfields == nfields;
    if same {
        let mut p = m.fields_pos;
        for f in pairs.iter().step_by(2) {
            if !lp::get(node, p).eq_bytes(f) {
                same = false;
                break;
            }
            p = lp::next(node, p).unwrap_or(p);
        }
    }
    push_entry(node, master_id, id, pairs, same);
}

fn push_entry(node: &mut Vec<u8>, master_id: StreamId, id: StreamId, pairs: &[&[u8]], same: bool) {
    let nfields = pairs.len() / 2;
    lp::append_int(node, if same { FLAG_SAMEFIELDS } else { 0 });
    // Deltas are stored as int64 the way Redis's unsigned subtraction casts them.
    lp::append_int(node, id.ms.wrapping_sub(master_id.ms) as i64);
    lp::append_int(node, id.seq.wrapping_sub(master_id.seq) as i64);
    if !same {
        lp::append_int(node, nfields as i64);
    }
    for pair in pairs.chunks(2) {
        if !same {
            lp::append_str(node, pair[0]);
        }
        lp::append_str(node, pair[1]);
    }
    let mut lp_count = nfields as i64 + 3;
    if !same {
        lp_count += nfields as i64 + 1;
    }
    lp::append_int(node, lp_count);
}

/// An entry inside a node, as found by walking it.
#[derive(Clone, Copy, Debug)]
pub struct EntryRef<'a> {
    pub id: StreamId,
    pub flags: i64,
    node: &'a [u8],
    /// Position of the flags element.
    pub flags_pos: usize,
    /// Position of the first field (or first value for SAMEFIELDS entries).
    body: usize,
    /// Position of the master's first field.
    master_fields: usize,
    pub nfields: usize,
    /// Position of the lp-count element.
    pub count_pos: usize,
}

impl<'a> EntryRef<'a> {
    pub fn deleted(&self) -> bool {
        self.flags & FLAG_DELETED != 0
    }

    /// The field/value pairs.
    pub fn fields(&self) -> Fields<'a> {
        Fields {
            node: self.node,
            same: self.flags & FLAG_SAMEFIELDS != 0,
            master: self.master_fields,
            pos: self.body,
            left: self.nfields,
        }
    }
}

/// Iterator over an entry's field/value pairs.
pub struct Fields<'a> {
    node: &'a [u8],
    same: bool,
    master: usize,
    pos: usize,
    left: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (Ele<'a>, Ele<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let field = if self.same {
            let f = lp::get(self.node, self.master);
            self.master = lp::next(self.node, self.master).unwrap_or(self.master);
            f
        } else {
            let f = lp::get(self.node, self.pos);
            self.pos = lp::next(self.node, self.pos).unwrap_or(self.pos);
            f
        };
        let value = lp::get(self.node, self.pos);
        self.pos = lp::next(self.node, self.pos).unwrap_or(self.pos);
        Some((field, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Fields<'_> {}

/// Read the entry whose flags are at `p`.
pub fn entry_at<'a>(node: &'a [u8], master_id: StreamId, m: &Master, p: usize) -> EntryRef<'a> {
    let flags = lp::get_int(node, p);
    let q = lp::next(node, p).unwrap_or(p);
    let ms = lp::get_int(node, q);
    let q = lp::next(node, q).unwrap_or(q);
    let seq = lp::get_int(node, q);
    let mut q = lp::next(node, q).unwrap_or(q);
    let id = StreamId::new(master_id.ms.wrapping_add(ms as u64), master_id.seq.wrapping_add(seq as u64));
    let same = flags & FLAG_SAMEFIELDS != 0;
    let nfields = if same {
        m.nfields
    } else {
        let n = lp::get_int(node, q).max(0) as usize;
        q = lp::next(node, q).unwrap_or(q);
        n
    };
    let body = q;
    let skip = if same { nfields } else { nfields * 2 };
    for _ in 0..skip {
        q = lp::next(node, q).unwrap_or(q);
    }
    EntryRef { id, flags, node, flags_pos: p, body, master_fields: m.fields_pos, nfields, count_pos: q }
}

/// The flags position of the entry after `e` in its node.
pub fn next_entry(node: &[u8], e: &EntryRef) -> Option<usize> {
    lp::next(node, e.count_pos)
}

/// The flags position of the entry whose lp-count element is at `count_pos` (None when it is
/// the master's terminator).
pub fn entry_from_count(node: &[u8], count_pos: usize) -> Option<usize> {
    let n = lp::get_int(node, count_pos);
    if n <= 0 {
        return None;
    }
    let mut p = count_pos;
    for _ in 0..n {
        p = lp::prev(node, p)?;
    }
    Some(p)
}

/// The flags position of the entry before `e` in its node.
pub fn prev_entry(node: &[u8], e: &EntryRef) -> Option<usize> {
    let c = lp::prev(node, e.flags_pos)?;
    entry_from_count(node, c)
}

/// The flags position of the node's last entry.
pub fn last_entry(node: &[u8]) -> Option<usize> {
    entry_from_count(node, lp::last(node)?)
}

/// Mark the entry whose flags are at `flags_pos` deleted and update the master counters.
/// Returns the number of live entries left (the caller removes the node at zero).
pub fn mark_deleted(node: &mut Vec<u8>, flags_pos: usize, flags: i64) -> i64 {
    lp::replace_int(node, flags_pos, flags | FLAG_DELETED);
    let count = lp::get_int(node, lp::HDR);
    if count == 1 {
        return 0;
    }
    adjust_counts(node, -1);
    count - 1
}

/// Add `delta` to the live count and subtract it from the deleted count.
pub fn adjust_counts(node: &mut Vec<u8>, delta: i64) {
    let count = lp::get_int(node, lp::HDR);
    lp::replace_int(node, lp::HDR, count + delta);
    let p = lp::next(node, lp::HDR).unwrap_or(lp::HDR);
    let deleted = lp::get_int(node, p);
    lp::replace_int(node, p, deleted - delta);
}

/// Check a loaded node as Redis's streamValidateListpackIntegrity does with deep validation:
/// a valid listpack whose elements form a master entry and `count + deleted` entries, with
/// integer fields where integers belong and consistent lp-counts. Returns the live count and
/// the first and last entry IDs.
pub fn validate(node: &[u8], master_id: StreamId) -> Result<NodeSummary, &'static str> {
    const BAD: &str = "stream node is not a valid stream listpack";
    let pos = lp::validate(node)?;
    let mut it = pos.into_iter();
    let int = |it: &mut std::vec::IntoIter<usize>| -> Result<i64, &'static str> {
        let p = it.next().ok_or(BAD)?;
        lp::get(node, p).int().ok_or(BAD)
    };
    let count = int(&mut it)?;
    let deleted = int(&mut it)?;
    let nfields = int(&mut it)?;
    if count < 0 || deleted < 0 || nfields < 0 {
        return Err(BAD);
    }
    for _ in 0..nfields {
        it.next().ok_or(BAD)?;
    }
    if int(&mut it)? != 0 {
        return Err(BAD);
    }
    let mut live = 0i64;
    let mut first = None;
    let mut last = None;
    let mut prev_id: Option<StreamId> = None;
    for _ in 0..count.checked_add(deleted).ok_or(BAD)? {
        let flags = int(&mut it)?;
        let ms = int(&mut it)?;
        let seq = int(&mut it)?;
        let id = StreamId::new(master_id.ms.wrapping_add(ms as u64), master_id.seq.wrapping_add(seq as u64));
        prev_id = Some(id);
        let mut fields = nfields;
        let mut extra = 3;
        if flags & FLAG_SAMEFIELDS == 0 {
            fields = int(&mut it)?;
            if fields < 0 {
                return Err(BAD);
            }
            for _ in 0..fields {
                it.next().ok_or(BAD)?;
            }
            extra += fields + 1;
        }
        for _ in 0..fields {
            it.next().ok_or(BAD)?;
        }
        if int(&mut it)? != fields + extra {
            return Err(BAD);
        }
        if flags & FLAG_DELETED == 0 {
            live += 1;
            if first.is_none() {
                first = Some(id);
            }
            last = Some(id);
        }
    }
    if it.next().is_some() {
        return Err(BAD);
    }
    if live != count {
        return Err("stream node live count does not match its entries");
    }
    Ok(NodeSummary { live: live as u64, first, last, last_any: prev_id })
}

/// What [`validate`] learned about a node.
#[derive(Clone, Copy, Debug)]
pub struct NodeSummary {
    pub live: u64,
    pub first: Option<StreamId>,
    pub last: Option<StreamId>,
    /// The last entry's ID, deleted or not.
    pub last_any: Option<StreamId>,
}
