//! Active expiry: a periodic, time-bounded sampling of keys with an expiry (Redis's
//! activeExpireCycle), so expired keys are reclaimed even if nobody touches them. Each shard is
//! locked only while it is sampled, so the cycle never stalls the whole server.

use super::{Keyspace, NSHARDS};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Keys sampled per database and round.
const SAMPLE: usize = 20;
/// Keep sampling a database while more than this percentage of the sample was expired.
const STALE_PERCENT: usize = 10;
/// Hashes with due fields a cycle reclaims even when keys took its time.
const FIELD_HASHES_AT_LEAST: usize = 64;

/// The shards that may hold keys (or hash fields) with a TTL: what one cycle visits. A shard's
/// bit is set, under its lock, whenever a TTL is added to it ([`TtlShards::mark`]) and cleared,
/// under the same lock, by the cycle that finds it holds none: so a shard with a TTL always has
/// its bit. Redis looks at every database at every cycle, so a key past its time goes within one
/// cron period (100 ms at hz 10); visiting all 256 shards each tick to find them cost an idle server
/// ~40k instructions per tick, and visiting a quarter of them per tick let a key live 400 ms.
pub struct TtlShards([AtomicU64; NSHARDS / 64]);

impl Default for TtlShards {
    fn default() -> Self {
        TtlShards(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl TtlShards {
    /// `shard` got a TTL (its caller holds the shard's lock). Most calls find the bit set already
    /// and only read the word, which keeps it shared between cores.
    #[inline]
    pub fn mark(&self, shard: usize) {
        let (word, bit) = (&self.0[shard / 64], 1u64 << (shard % 64));
        if word.load(Ordering::Relaxed) & bit == 0 {
            word.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// Every shard `other` marked is marked here too (a staged keyspace adopted whole).
    pub fn absorb(&self, other: &TtlShards) {
        for (mine, theirs) in self.0.iter().zip(&other.0) {
            mine.fetch_or(theirs.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// `shard` holds no TTL (its caller holds the shard's lock and looked).
    pub(super) fn clear(&self, shard: usize) {
        self.0[shard / 64].fetch_and(!(1u64 << (shard % 64)), Ordering::Relaxed);
    }

    /// The marked shards, starting from `first` and wrapping around.
    fn marked_from(&self, first: usize) -> impl Iterator<Item = usize> + '_ {
        (first..first + NSHARDS)
            .map(|s| s % NSHARDS)
            .filter(|&s| self.0[s / 64].load(Ordering::Relaxed) & (1 << (s % 64)) != 0)
    }
}

/// What one cycle saw, for INFO: keys sampled and found expired (expired_stale_perc), and per
/// database the TTLs left of the keys sampled alive (avg_ttl), as Redis's activeExpireCycle
/// keeps them.
#[derive(Default)]
struct CycleStats {
    sampled: u64,
    expired: u64,
    /// (sum of TTLs left in ms, keys) per database sampled.
    ttls: smallvec::SmallVec<[(usize, i64, i64); 4]>,
    /// Hashes with fields due, from every slice visited (taken at the end, earliest first).
    due_fields: Vec<super::hfe::Due>,
}

impl CycleStats {
    fn ttl(&mut self, db: usize, ttl: i64) {
        match self.ttls.iter_mut().find(|t| t.0 == db) {
            Some(t) => {
                // TTLs near i64::MAX ms (EXPIREAT 9e15) would overflow the sum (Redis's
                // ttl_sum wraps): it stays at the maximum instead.
                t.1 = t.1.saturating_add(ttl);
                t.2 += 1;
            }
            None => self.ttls.push((db, ttl, 1)),
        }
    }

    /// Fold the cycle into the running figures: each database's average TTL moves 1/50 of the
    /// way to this cycle's (or starts at it), the stale share 5% of the way.
    fn publish(&self, ks: &Keyspace, timed_out: bool) {
        for &(db, sum, n) in &self.ttls {
            if let Some(avg) = ks.avg_ttl.get(db) {
                let cycle = sum / n;
                let old = avg.load(Ordering::Relaxed);
                avg.store(if old == 0 { cycle } else { old / 50 * 49 + cycle / 50 }, Ordering::Relaxed);
            }
        }
        let st = &ks.stats;
        let current = if self.sampled > 0 { self.expired as f64 / self.sampled as f64 } else { 0.0 };
        let old = f64::from_bits(st.expired_stale_perc.load(Ordering::Relaxed));
        st.expired_stale_perc.store((current * 0.05 + old * 0.95).to_bits(), Ordering::Relaxed);
        if timed_out {
            st.expired_time_cap_reached.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One active-expiry cycle over every shard that may hold TTLs and their databases, within about
/// `budget` of time. Returns the number of keys deleted. A cycle that runs out of time leaves the
/// next one to start at the shard it did not finish.
pub fn active_expire_cycle(ks: &Keyspace, budget: Duration) -> u64 {
    if super::now_ms() < ks.expiry_paused_until.load(Ordering::Relaxed) {
        return 0;
    }
    let start = Instant::now();
    let mut deleted = 0;
    let mut stats = CycleStats::default();
    let first = ks.expire_cursor.load(Ordering::Relaxed) % NSHARDS;
    for shard in ks.ttl_shards.marked_from(first) {
        // The bit may be stale (the shard's last TTL went): one cheap look clears it.
        let dbs = ks.dbs_with_ttls(shard);
        if dbs.is_empty() {
            continue;
        }
        for db in dbs {
            deleted += expire_in(ks, db, shard, start, budget, &mut stats);
        }
        if start.elapsed() > budget {
            ks.expire_cursor.store(shard + 1, Ordering::Relaxed);
            expire_fields(ks, &mut stats.due_fields, start, budget);
            stats.publish(ks, true);
            return deleted;
        }
    }
    expire_fields(ks, &mut stats.due_fields, start, budget);
    stats.publish(ks, false);
    deleted
}

/// Hash fields whose TTL passed (Redis 7.4's hash-field expiry), in the hashes collected from
/// every slice the cycle visited: earliest first across all shards, so fields go (and their
/// HDELs propagate) in the order of their times, as from Redis's one ordered index. Past the
/// cycle's time (after a first few hashes, so keys cannot starve fields), the rest stay queued
/// for the next cycle.
fn expire_fields(ks: &Keyspace, due: &mut [super::hfe::Due], start: Instant, budget: Duration) {
    due.sort_unstable();
    for (i, (_, shard, db, key)) in due.iter().enumerate() {
        if i >= FIELD_HASHES_AT_LEAST && start.elapsed() > budget {
            return;
        }
        super::hfe::reclaim_due(&mut ks.lock_shard(*db, *shard), key);
    }
}

/// Sample `db` of `shard` for keys past their time and delete them, again while more than
/// [`STALE_PERCENT`] of a sample was expired and the cycle has time left.
fn expire_in(ks: &Keyspace, db: usize, shard: usize, start: Instant, budget: Duration, stats: &mut CycleStats) -> u64 {
    let mut deleted = 0;
    let mut view = ks.lock_shard(db, shard);
    // Hashes with fields past their TTL: taken once every slice was visited.
    let now = view.now_ms;
    super::hfe::collect_due(&mut view, shard, db, now, &mut stats.due_fields);
    loop {
        let now = view.now_ms;
        let mut expired_keys = Vec::new();
        let mut sampled = 0;
        {
            let (_, sd) = view.sampled_shards().next().expect("one shard locked");
            let n = sd.ttls.len().min(SAMPLE);
            for _ in 0..n {
                if let Some((k, when)) = sd.random_ttl() {
                    sampled += 1;
                    if when <= now {
                        expired_keys.push(k);
                    } else {
                        stats.ttl(db, when - now);
                    }
                }
            }
        }
        stats.sampled += sampled as u64;
        stats.expired += expired_keys.len() as u64;
        expired_keys.sort();
        expired_keys.dedup();
        for k in &expired_keys {
            // expire_if_needed deletes and propagates the DEL.
            if view.expire_if_needed(k) {
                deleted += 1;
            }
        }
        if sampled == 0 || expired_keys.len() * 100 / sampled <= STALE_PERCENT || start.elapsed() > budget {
            return deleted;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{StrValue, Value};

    /// Store `key` in `db` with an expiry `offset_ms` from now (negative: already past).
    fn set_with_ttl(ks: &Keyspace, db: usize, key: &[u8], offset_ms: i64) {
        let mut view = ks.lock_keys(db, &[key]);
        view.set(key, Value::Str(StrValue::from_bytes(b"v")), false);
        let when = view.now_ms + offset_ms;
        view.set_expire(key, when);
    }

    #[test]
    fn reclaims_expired_keys_without_access() {
        let ks = Keyspace::new(2);
        for i in 0..500 {
            set_with_ttl(&ks, 1, format!("k{i}").as_bytes(), if i % 2 == 0 { -10 } else { 100_000 });
        }
        let mut total = 0;
        for _ in 0..50 {
            total += active_expire_cycle(&ks, Duration::from_millis(50));
        }
        assert_eq!(total, 250);
        assert_eq!(ks.db_counts(1), (250, 250));
    }

    fn marked(ks: &Keyspace) -> usize {
        ks.ttl_shards.0.iter().map(|w| w.load(Ordering::Relaxed).count_ones() as usize).sum()
    }

    #[test]
    fn one_cycle_finds_keys_past_their_time_in_any_shard() {
        // As Redis's cycle, which looks at every database: 32 keys spread over the shards, all
        // past their time, all go in one cycle (a quarter of the shards per cycle left most).
        let ks = Keyspace::new(1);
        for i in 0..32 {
            set_with_ttl(&ks, 0, format!("key:{i}").as_bytes(), -1);
        }
        assert_eq!(active_expire_cycle(&ks, Duration::from_secs(10)), 32);
        assert_eq!(ks.db_counts(0), (0, 0));
    }

    #[test]
    fn a_shard_is_visited_while_it_holds_ttls() {
        let ks = Keyspace::new(2);
        assert_eq!(marked(&ks), 0, "a new keyspace has no TTL to look for");
        set_with_ttl(&ks, 1, b"k", 100_000);
        assert_eq!(marked(&ks), 1);
        assert_eq!(active_expire_cycle(&ks, Duration::from_secs(10)), 0);
        assert_eq!(marked(&ks), 1, "a shard whose TTL is still ahead stays marked");
        assert!(ks.lock_keys(1, &[b"k"]).persist(b"k"));
        active_expire_cycle(&ks, Duration::from_secs(10));
        assert_eq!(marked(&ks), 0, "the cycle unmarks a shard without TTLs");
    }

    #[test]
    fn an_adopted_keyspace_brings_its_marks() {
        let live = Keyspace::new(1);
        let staged = Keyspace::new(1);
        set_with_ttl(&staged, 0, b"k", -1);
        drop(live.lock_all(0).adopt(staged));
        assert_eq!(active_expire_cycle(&live, Duration::from_secs(10)), 1);
    }

    #[test]
    fn cycles_estimate_the_average_ttl_and_the_stale_share() {
        let ks = Keyspace::new(2);
        for i in 0..40 {
            set_with_ttl(&ks, 1, format!("live:{i}").as_bytes(), 100_000);
            set_with_ttl(&ks, 1, format!("gone:{i}").as_bytes(), -1);
        }
        active_expire_cycle(&ks, Duration::from_secs(10));
        // The first cycle's sample sets the estimate (a little under 100 s: time passes).
        let avg = ks.avg_ttl(1);
        assert!((90_000..=100_000).contains(&avg), "{avg}");
        assert_eq!(ks.avg_ttl(0), 0, "nothing sampled in db 0");
        let stale = f64::from_bits(ks.stats.expired_stale_perc.load(Ordering::Relaxed));
        assert!(stale > 0.0 && stale <= 0.05, "5% of this cycle's expired share: {stale}");
        // Emptied, the database's estimate starts again.
        ks.lock_all(1).flush(false);
        assert_eq!(ks.avg_ttl(1), 0);
        // TTLs near i64::MAX ms (EXPIREAT 9e15) do not overflow the cycle's sum.
        for i in 0..40 {
            set_with_ttl(&ks, 1, format!("far:{i}").as_bytes(), i64::MAX / 2);
        }
        active_expire_cycle(&ks, Duration::from_secs(10));
        assert!(ks.avg_ttl(1) > 0);
    }
}
