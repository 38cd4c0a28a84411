//! Output buffers: how much a client has waiting to be sent, measured as Redis measures it,
//! and Redis's rule for `client-output-buffer-limit` (hard limit, or the soft limit held for
//! longer than its seconds). The connection updates a client's [`Meter`] as it encodes and
//! writes replies; Pub/Sub publishers add the messages they queue for it, so either side can
//! find the client over its limit.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

/// The bytes Redis keeps in a client's static reply buffer before it starts its reply list
/// (PROTO_REPLY_CHUNK_BYTES): only what goes past it counts as output-buffer memory.
pub const REPLY_CHUNK_BYTES: usize = 16 * 1024;

/// One class of `client-output-buffer-limit` (bytes; 0 disables; seconds of the soft limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassLimit {
    pub hard: usize,
    pub soft: usize,
    pub soft_seconds: u64,
    /// The hard limit of a class configured without one (`output-buffer-ceiling`; 0: none).
    /// Redis has none there, so one command that answers without bound (`SRANDMEMBER key
    /// -1000000000000`, `MGET` of one big key a million times) grows its reply until the
    /// kernel kills the process; Ferrous closes the client instead.
    pub ceiling: usize,
}

impl ClassLimit {
    /// The hard limit in force: the configured one, else the ceiling (0: none).
    pub fn hard_or_ceiling(&self) -> usize {
        if self.hard > 0 {
            self.hard
        } else {
            self.ceiling
        }
    }
}

/// The ceiling `output-buffer-ceiling 0` stands for: a quarter of the memory the process may
/// use (the machine's, or its cgroup's limit), at least 256 MiB.
pub fn auto_ceiling() -> usize {
    let quarter = crate::util::sysmem::usable_memory() / 4;
    usize::try_from(quarter).unwrap_or(usize::MAX).max(256 << 20)
}

/// The three classes (a master link counts as normal, as in Redis).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub normal: ClassLimit,
    pub replica: ClassLimit,
    pub pubsub: ClassLimit,
}

/// Which limit applies to a client (Redis's getClientType).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Normal,
    Replica,
    Pubsub,
    /// A client that must authenticate and has not: whatever its class, 1 KB of output beyond
    /// the static buffer (Redis 7.2.8, CVE-2025-21605: a client that never authenticated and
    /// never read its -NOAUTH replies made the server's memory grow without bound).
    Unauthenticated,
}

/// [`Class::Unauthenticated`]'s limit: closed once more than 1024 bytes wait (Redis's
/// `used_mem > 1024 && authRequired(c)`), not configurable.
const UNAUTHENTICATED: ClassLimit = ClassLimit { hard: 1025, soft: 0, soft_seconds: 0, ceiling: 0 };

impl Limits {
    /// From the configuration's classes (normal, replica, pubsub: hard bytes, soft bytes, soft
    /// seconds) and the ceiling of a class without a hard limit.
    pub fn from_classes(classes: [(u64, u64, i64); 3], ceiling: usize) -> Limits {
        let l = |(hard, soft, secs): (u64, u64, i64)| ClassLimit {
            hard: hard as usize,
            soft: soft as usize,
            soft_seconds: secs.max(0) as u64,
            ceiling,
        };
        Limits { normal: l(classes[0]), replica: l(classes[1]), pubsub: l(classes[2]) }
    }

    pub fn of(&self, class: Class) -> ClassLimit {
        match class {
            Class::Normal => self.normal,
            Class::Replica => self.replica,
            Class::Pubsub => self.pubsub,
            Class::Unauthenticated => UNAUTHENTICATED,
        }
    }
}

/// Usable bytes of one of Redis's reply blocks: 16 KB chunks are allocated in jemalloc's
/// 20 KB size class, and Redis uses (and counts) all of it.
pub const REPLY_BLOCK_BYTES: usize = 20480 - 16;
/// What Redis counts per block on top of its bytes (its list node and block header).
const REPLY_BLOCK_OVERHEAD: usize = 40;

/// Reply blocks Redis would hold for a client with `pending` bytes not yet written (CLIENT
/// LIST's oll).
pub fn blocks(pending: usize) -> usize {
    pending.saturating_sub(REPLY_CHUNK_BYTES).div_ceil(REPLY_BLOCK_BYTES)
}

/// Redis's output-buffer memory of a client with `pending` bytes not yet written: what does
/// not fit its 16 KB static buffer, in reply blocks (getClientOutputBufferMemoryUsage:
/// reply_bytes plus the list's overhead). CLIENT LIST's omem, and what the limits compare.
pub fn omem(pending: usize) -> usize {
    blocks(pending) * (REPLY_BLOCK_BYTES + REPLY_BLOCK_OVERHEAD)
}

/// A client's output, as other threads see it.
#[derive(Debug, Default)]
pub struct Meter {
    /// Bytes encoded for the client and not yet written to its socket.
    pub unsent: AtomicUsize,
    /// Bytes of Pub/Sub messages queued for the client and not yet encoded (estimated).
    pub queued: AtomicUsize,
    /// Unix ms when the soft limit was first found reached (0: under it).
    soft_since: AtomicI64,
}

impl Meter {
    /// Everything waiting to be sent.
    pub fn pending(&self) -> usize {
        self.unsent.load(Ordering::Relaxed) + self.queued.load(Ordering::Relaxed)
    }

    /// Redis's checkClientOutputBufferLimits: over the hard limit, or over the soft limit for
    /// more than its seconds (the first time the soft limit is seen reached only starts the
    /// clock; seen under it, the clock stops). A client with nothing past its static buffer is
    /// never over (Redis skips the check then, without stopping the clock; a drained buffer
    /// stops it here).
    pub fn over(&self, limit: ClassLimit, now_ms: i64) -> bool {
        let used = omem(self.pending());
        if used == 0 {
            // Everything fits the static buffer: under any limit, and the soft clock stops.
            self.soft_since.store(0, Ordering::Relaxed);
            return false;
        }
        let hard = limit.hard_or_ceiling();
        let hard = hard > 0 && used >= hard;
        let soft_reached = limit.soft > 0 && used >= limit.soft;
        let soft = if soft_reached {
            let since = self.soft_since.load(Ordering::Relaxed);
            if since == 0 {
                self.soft_since.store(now_ms.max(1), Ordering::Relaxed);
                false
            } else {
                now_ms - since > limit.soft_seconds as i64 * 1000
            }
        } else {
            self.soft_since.store(0, Ordering::Relaxed);
            false
        };
        hard || soft
    }

    /// When the soft limit, reached now, will have lasted too long (for a check without
    /// traffic, as Redis's clientsCron does).
    pub fn soft_deadline_ms(&self, limit: ClassLimit) -> Option<i64> {
        let since = self.soft_since.load(Ordering::Relaxed);
        (since != 0 && limit.soft > 0).then(|| since + limit.soft_seconds as i64 * 1000 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_canonical_value() {
        let l = Limits::from_classes([(0, 0, 0), (256 << 20, 64 << 20, 60), (32 << 20, 8 << 20, 60)], 0);
        assert_eq!(l.normal, ClassLimit::default());
        assert_eq!(l.replica, ClassLimit { hard: 268435456, soft: 67108864, soft_seconds: 60, ceiling: 0 });
        assert_eq!(l.of(Class::Pubsub).hard, 32 << 20);
    }

    #[test]
    fn hard_limit_counts_past_the_static_buffer() {
        let m = Meter::default();
        let limit = ClassLimit { hard: 30_000, soft: 0, soft_seconds: 0, ceiling: 0 };
        m.unsent.store(REPLY_CHUNK_BYTES, Ordering::Relaxed);
        assert!(!m.over(limit, 1));
        m.queued.store(1, Ordering::Relaxed);
        assert_eq!(omem(m.pending()), 20504);
        assert!(!m.over(limit, 1));
        m.queued.store(REPLY_BLOCK_BYTES + 1, Ordering::Relaxed);
        assert_eq!(blocks(m.pending()), 2);
        assert!(m.over(limit, 1));
    }

    #[test]
    fn a_class_without_a_hard_limit_has_the_ceiling() {
        let l = Limits::from_classes([(0, 0, 0), (256 << 20, 64 << 20, 60), (0, 10, 2)], 30_000);
        assert_eq!(l.normal.hard_or_ceiling(), 30_000);
        assert_eq!(l.replica.hard_or_ceiling(), 256 << 20);
        let m = Meter::default();
        m.unsent.store(REPLY_CHUNK_BYTES + 2 * REPLY_BLOCK_BYTES, Ordering::Relaxed);
        assert!(m.over(l.normal, 1));
        // The soft limit still needs its seconds; the ceiling does not.
        assert!(m.over(l.pubsub, 1));
        m.unsent.store(REPLY_CHUNK_BYTES + 100, Ordering::Relaxed);
        assert!(!m.over(l.normal, 1));
        assert!(!m.over(Limits::from_classes([(0, 0, 0); 3], 0).normal, 1));
        assert!(auto_ceiling() >= 256 << 20);
    }

    #[test]
    fn soft_limit_must_hold_longer_than_its_seconds() {
        let m = Meter::default();
        let limit = ClassLimit { hard: 0, soft: 10, soft_seconds: 2, ceiling: 0 };
        m.unsent.store(REPLY_CHUNK_BYTES + 100, Ordering::Relaxed);
        assert!(!m.over(limit, 1_000));
        assert_eq!(m.soft_deadline_ms(limit), Some(3_001));
        assert!(!m.over(limit, 3_000));
        assert!(m.over(limit, 3_001));
        // Under it again: the clock starts over.
        m.unsent.store(0, Ordering::Relaxed);
        assert!(!m.over(limit, 3_002));
        assert_eq!(m.soft_deadline_ms(limit), None);
    }
}
