//! Consumer groups: the group's last delivered ID and read counter, its pending entries list
//! (PEL: every entry delivered and not yet acknowledged, with its owner, last delivery time and
//! delivery count) and its consumers, each with its own PEL of IDs. Both PELs are ordered maps
//! (Redis's radix trees), so ranges over them cost O(log n + count).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::id::StreamId;

/// The read counter value meaning "unknown" (Redis's SCG_INVALID_ENTRIES_READ).
pub const INVALID_ENTRIES_READ: i64 = -1;

/// A pending entry: delivered to `consumer`, not yet acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nack {
    pub delivery_time: i64,
    pub delivery_count: u64,
    pub consumer: Bytes,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consumer {
    /// Last time the consumer tried to read or claim (Redis 7.2's seen-time).
    pub seen_time: i64,
    /// Last time it actually read or claimed something (7.2's active-time; -1 never).
    pub active_time: i64,
    pub pel: BTreeSet<StreamId>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumerGroup {
    pub last_id: StreamId,
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

impl ConsumerGroup {
    pub fn new(last_id: StreamId, entries_read: i64) -> Self {
        ConsumerGroup { last_id, entries_read, pel: BTreeMap::new(), consumers: BTreeMap::new() }
    }

    /// Create consumer `name` (seen now, never active); false if it exists.
    pub fn create_consumer(&mut self, name: &[u8], now: i64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers
            .insert(Bytes::copy_from_slice(name), Consumer { seen_time: now, active_time: -1, ..Default::default() });
        true
    }

    /// Delete consumer `name` and its pending entries; the number it had, or None.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }

    /// Acknowledge `id`: true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(nack) => {
                if let Some(c) = self.consumers.get_mut(&nack.consumer) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Give pending entry `id` to consumer `name` (which must exist), taking it from its
    /// previous owner. Returns the NACK.
    pub fn assign(&mut self, id: StreamId, name: &Bytes) -> Option<&mut Nack> {
        let nack = self.pel.get_mut(&id)?;
        if nack.consumer != *name {
            if let Some(old) = self.consumers.get_mut(&nack.consumer) {
                old.pel.remove(&id);
            }
            nack.consumer = name.clone();
        }
        if let Some(c) = self.consumers.get_mut(name) {
            c.pel.insert(id);
        }
        self.pel.get_mut(&id)
    }

    /// Record a delivery of `id` to consumer `name` (XREADGROUP): a new pending entry, or an
    /// existing one moved to this consumer with its delivery count reset to 1.
    pub fn deliver(&mut self, id: StreamId, name: &Bytes, now: i64) {
        let nack = Nack { delivery_time: now, delivery_count: 1, consumer: name.clone() };
        if let Some(old) = self.pel.insert(id, nack) {
            if old.consumer != *name {
                if let Some(c) = self.consumers.get_mut(&old.consumer) {
                    c.pel.remove(&id);
                }
            }
        }
        if let Some(c) = self.consumers.get_mut(name) {
            c.pel.insert(id);
        }
    }
}
