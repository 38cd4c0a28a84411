//! A skiplist-encoded sorted set's map from member to its node in the skiplist (which holds the
//! member and its score, as Redis's dict points into its zskiplist nodes), kept without a second
//! copy of each member: the map is keyed by the member's 64-bit hash, in 24-byte nodes (hash,
//! node, link) where a copy of the member and its score took 48. A hit is checked against the
//! member the node holds, so a member that is absent but shares a hash with one present is not
//! found.
//!
//! Two members whose hashes are equal (a pair in about 10^19) cannot share an entry: that hash
//! is then marked shared, and its members are kept by member instead, now and later. Unit tests
//! fold the hashes to three bits ([`FOLD`]), so that shared hashes happen all the time and every
//! sorted-set test goes through their handling.

use std::collections::HashSet;

use super::skiplist::SkipList;
use crate::types::dict::hash_key;
use crate::types::Dict;

/// The bits of a member's hash the map keys it by: all of them in the server; three in unit
/// tests (see the module's comment).
const FOLD: u64 = if cfg!(test) { 0b111 } else { u64::MAX };

fn hash_of(member: &[u8]) -> u64 {
    hash_key(member) as u64 & FOLD
}

#[derive(Default)]
pub struct MemberIndex {
    /// Hash -> node, for members whose hash no other member has had.
    by_hash: Dict<u32, u64>,
    /// The members whose hash is shared. Boxed: almost always absent.
    shared: Option<Box<Shared>>,
}

#[derive(Default)]
struct Shared {
    /// Hashes two members have had.
    hashes: HashSet<u64>,
    /// Member -> node, for members whose hash is in `hashes`.
    by_member: Dict<u32>,
}

impl MemberIndex {
    /// The members kept by member, when `h` is a shared hash.
    fn shared_for(&self, h: u64) -> Option<&Dict<u32>> {
        self.shared.as_ref().filter(|s| s.hashes.contains(&h)).map(|s| &s.by_member)
    }

    fn by_member(&mut self) -> &mut Dict<u32> {
        &mut self.shared.get_or_insert_with(Box::default).by_member
    }

    /// The node of `member` in `zsl`, if it is in the set.
    pub fn get(&self, member: &[u8], zsl: &SkipList) -> Option<u32> {
        let h = hash_of(member);
        if let Some(by_member) = self.shared_for(h) {
            return by_member.get(member).copied();
        }
        let x = *self.by_hash.get(&h)?;
        (zsl.member(x) == member).then_some(x)
    }

    /// Note `member`, absent until now, at node `x` of `zsl`.
    pub fn insert(&mut self, member: &[u8], x: u32, zsl: &SkipList) {
        let h = hash_of(member);
        if self.shared_for(h).is_some() {
            self.by_member().insert_new(member.into(), x);
        } else if let Some(other) = self.by_hash.remove(&h) {
            // Another member has this hash: from now on its members are kept by member.
            self.shared.get_or_insert_with(Box::default).hashes.insert(h);
            let by_member = self.by_member();
            by_member.insert_new(zsl.member(other).into(), other);
            by_member.insert_new(member.into(), x);
        } else {
            self.by_hash.insert_new(h, x);
        }
    }

    /// Forget `member`, returning its node, if it is in the set.
    pub fn remove(&mut self, member: &[u8], zsl: &SkipList) -> Option<u32> {
        let h = hash_of(member);
        if self.shared_for(h).is_some() {
            return self.by_member().remove(member);
        }
        let x = *self.by_hash.get(&h)?;
        if zsl.member(x) != member {
            return None;
        }
        self.by_hash.remove(&h)
    }

    /// One step of ZSCAN over the nodes, with the hash map's reverse-binary cursor (see
    /// [`Dict::scan_budget`]); the members kept by member come with the last step.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(u32)) -> u64 {
        let next = self.by_hash.scan_budget(cursor, count, |_, &x| f(x));
        if next == 0 {
            if let Some(s) = &self.shared {
                s.by_member.for_each(|_, &x| f(x));
            }
        }
        next
    }

    /// A copy for `zsl`'s copy (node numbers are kept by `SkipList::clone`).
    pub fn copy(&self) -> MemberIndex {
        let mut by_hash = Dict::new();
        self.by_hash.for_each(|&h, &x| {
            by_hash.insert_new(h, x);
        });
        let shared = self.shared.as_ref().map(|s| {
            let mut by_member = Dict::new();
            s.by_member.for_each(|m, &x| {
                by_member.insert_new(m.into(), x);
            });
            Box::new(Shared { hashes: s.hashes.clone(), by_member })
        });
        MemberIndex { by_hash, shared }
    }
}
