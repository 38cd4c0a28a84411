//! Active expiry: a periodic, time-bounded sampling of keys with an expiry (Redis's
//! activeExpireCycle), so expired keys are reclaimed even if nobody touches them. Each shard is
//! locked only while it is sampled, so the cycle never stalls the whole server.

use super::{Keyspace, NSHARDS};
use std::time::{Duration, Instant};

/// Keys sampled per database and round.
const SAMPLE: usize = 20;
/// Keep sampling a database while more than this percentage of the sample was expired.
const STALE_PERCENT: usize = 10;

/// Shards one cycle visits: a quarter, the next quarter at the next cycle (every shard every
/// 0.4 s with the default hz). A look at every shard and database at every tick cost an idle
/// server ~40k instructions per tick.
const SHARDS_PER_CYCLE: usize = NSHARDS / 4;

/// One active-expiry cycle over the next [`SHARDS_PER_CYCLE`] shards and their databases,
/// within about `budget` of time. Returns the number of keys deleted.
pub fn active_expire_cycle(ks: &Keyspace, budget: Duration) -> u64 {
    if super::now_ms() < ks.expiry_paused_until.load(std::sync::atomic::Ordering::Relaxed) {
        return 0;
    }
    let start = Instant::now();
    let per_shard = budget / SHARDS_PER_CYCLE as u32;
    let mut deleted = 0;
    let first = ks.expire_cursor.fetch_add(SHARDS_PER_CYCLE, std::sync::atomic::Ordering::Relaxed) % NSHARDS;
    for shard in (first..first + SHARDS_PER_CYCLE).map(|s| s % NSHARDS) {
        // Most shards and databases of most servers hold no TTLs: one cheap look skips them
        // (instead of a locked view, with its clock reading, per shard and database).
        for db in ks.dbs_with_ttls(shard) {
            let shard_start = Instant::now();
            let mut view = ks.lock_shard(db, shard);
            // Hash fields whose TTL passed (Redis 7.4's hash-field expiry).
            let has_field_ttls = view.sampled_shards().next().is_some_and(|(_, sd)| !sd.hexpires.is_empty());
            if has_field_ttls {
                super::hfe::active_expire_fields(&mut view);
            }
            loop {
                let now = view.now_ms;
                let mut expired_keys = Vec::new();
                let mut sampled = 0;
                {
                    let (_, sd) = view.sampled_shards().next().expect("one shard locked");
                    let n = sd.expires.len().min(SAMPLE);
                    for _ in 0..n {
                        if let Some((k, &when)) = sd.expires.random_entry() {
                            sampled += 1;
                            if when <= now {
                                expired_keys.push(k.to_vec());
                            }
                        }
                    }
                }
                expired_keys.sort();
                expired_keys.dedup();
                for k in &expired_keys {
                    // expire_if_needed deletes and propagates the DEL.
                    if view.expire_if_needed(k) {
                        deleted += 1;
                    }
                }
                if sampled == 0
                    || expired_keys.len() * 100 / sampled <= STALE_PERCENT
                    || shard_start.elapsed() > per_shard
                {
                    break;
                }
            }
            drop(view);
            if start.elapsed() > budget {
                return deleted;
            }
        }
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{StrValue, Value};

    #[test]
    fn reclaims_expired_keys_without_access() {
        let ks = Keyspace::new(2);
        for i in 0..500 {
            let k = format!("k{i}");
            let mut db = ks.lock_keys(1, &[k.as_bytes()]);
            db.set(k.as_bytes(), Value::Str(StrValue::from_bytes(b"v")), false);
            let when = if i % 2 == 0 { db.now_ms - 10 } else { db.now_ms + 100_000 };
            db.set_expire(k.as_bytes(), when);
        }
        let mut total = 0;
        for _ in 0..50 {
            total += active_expire_cycle(&ks, Duration::from_millis(50));
        }
        assert_eq!(total, 250);
        assert_eq!(ks.db_counts(1), (250, 250));
    }
}
