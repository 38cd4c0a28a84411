//! Access metadata of an entry (`Entry::lru`, 24 bits used, as Redis packs `robj->lru`): the
//! LRU clock (unix seconds, 24 bits) under every policy except the LFU ones, and under
//! `volatile-lfu` / `allkeys-lfu` Redis's LFU pair instead: the last decrement time in minutes
//! (16 bits) above an 8-bit logarithmic access counter. The counter starts at 5
//! (LFU_INIT_VAL), grows on an access with probability 1/((counter-5)*lfu-log-factor+1), and
//! loses one per `lfu-decay-time` minutes elapsed when it is read.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// A new key's counter, so that it survives a while before being evicted (Redis's LFU_INIT_VAL).
pub const LFU_INIT_VAL: u32 = 5;

/// The LFU settings, read by every key access (updated by CONFIG SET through `apply_config`).
#[derive(Default)]
pub struct LfuSettings {
    enabled: AtomicBool,
    log_factor: AtomicU32,
    decay_time: AtomicU32,
}

impl LfuSettings {
    /// Set from the configuration: `policy` is `maxmemory-policy`.
    pub fn configure(&self, policy: &str, log_factor: u32, decay_time: u32) {
        self.enabled.store(policy.ends_with("-lfu"), Ordering::Relaxed);
        self.log_factor.store(log_factor, Ordering::Relaxed);
        self.decay_time.store(decay_time, Ordering::Relaxed);
    }

    /// Take `other`'s settings (a staging keyspace: see `staging`).
    pub fn copy_from(&self, other: &LfuSettings) {
        self.enabled.store(other.enabled(), Ordering::Relaxed);
        self.log_factor.store(other.log_factor.load(Ordering::Relaxed), Ordering::Relaxed);
        self.decay_time.store(other.decay_time(), Ordering::Relaxed);
    }

    /// Whether entries hold LFU data (an LFU maxmemory policy is selected).
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn decay_time(&self) -> u32 {
        self.decay_time.load(Ordering::Relaxed)
    }

    /// Redis's updateLFU: decay, then a logarithmic increment, stamped with the current minute.
    pub fn touch(&self, meta: u32, now_ms: i64) -> u32 {
        let counter = counter(meta, now_ms, self.decay_time());
        pack(now_ms, log_incr(counter, self.log_factor.load(Ordering::Relaxed)))
    }
}

/// Unix minutes, 16 bits (Redis's LFUGetTimeInMinutes).
pub fn minutes(now_ms: i64) -> u32 {
    ((now_ms / 60_000) & 0xFFFF) as u32
}

/// An LFU pair: the current minute and `counter`.
pub fn pack(now_ms: i64, counter: u8) -> u32 {
    (minutes(now_ms) << 8) | counter as u32
}

/// Minutes since `ldt`, the 16-bit clock wrapping at most once (Redis's LFUTimeElapsed).
fn elapsed(ldt: u32, now_ms: i64) -> u32 {
    let now = minutes(now_ms);
    if now >= ldt {
        now - ldt
    } else {
        65535 - ldt + now
    }
}

/// The counter after decay (Redis's LFUDecrAndReturn; the entry is not changed): OBJECT FREQ,
/// the RDB FREQ opcode.
pub fn counter(meta: u32, now_ms: i64, decay_time: u32) -> u8 {
    let (ldt, counter) = ((meta >> 8) & 0xFFFF, meta & 0xFF);
    let periods = elapsed(ldt, now_ms).checked_div(decay_time).unwrap_or(0);
    counter.saturating_sub(periods) as u8
}

/// Redis's LFULogIncr: the higher the counter, the less likely an increment (saturates at 255).
pub fn log_incr(counter: u8, log_factor: u32) -> u8 {
    if counter == 255 {
        return 255;
    }
    let base = (counter as f64 - LFU_INIT_VAL as f64).max(0.0);
    let p = 1.0 / (base * log_factor as f64 + 1.0);
    if rand::random::<f64>() < p {
        counter + 1
    } else {
        counter
    }
}

/// The metadata of an entry created now, optionally with a recorded idle time (seconds) or
/// access frequency, as RESTORE IDLETIME/FREQ and the RDB IDLE/FREQ opcodes give them (Redis's
/// objectSetLRUOrLFU: a frequency only counts under an LFU policy, an idle time only
/// otherwise).
pub fn initial(lfu: bool, now_ms: i64, idle: Option<u64>, freq: Option<u8>) -> u32 {
    let clock = super::lru_clock_at(now_ms);
    match (lfu, idle, freq) {
        (true, _, Some(f)) => pack(now_ms, f),
        (true, _, None) => pack(now_ms, LFU_INIT_VAL as u8),
        // The 24-bit LRU clock wraps around, like Redis's.
        (false, Some(idle), _) => ((clock as u64 + 0x100_0000 - (idle % 0x100_0000)) % 0x100_0000) as u32,
        (false, None, _) => clock,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_decays_one_per_period() {
        let now = 1_700_000_000_000i64;
        let m = pack(now - 10 * 60_000, 100);
        assert_eq!(counter(m, now, 1), 90);
        assert_eq!(counter(m, now, 2), 95);
        assert_eq!(counter(m, now, 0), 100);
        assert_eq!(counter(pack(now - 300 * 60_000, 100), now, 1), 0);
        // The minute clock wraps once.
        let wrapped = (0xFFFF << 8) | 50;
        assert!(counter(wrapped, 1000 * 60_000, 1) < 50);
    }

    #[test]
    fn increments_are_logarithmic() {
        assert_eq!(log_incr(255, 10), 255);
        // Below LFU_INIT_VAL + 1 the increment is certain.
        assert_eq!(log_incr(3, 10), 4);
        let mut c = LFU_INIT_VAL as u8;
        for _ in 0..1000 {
            c = log_incr(c, 10);
        }
        // Redis's table: 1K hits with factor 10 give about 18.
        assert!((10..40).contains(&c), "{c}");
    }

    #[test]
    fn initial_metadata() {
        let now = 1_700_000_000_000i64;
        assert_eq!(initial(true, now, None, Some(100)) & 0xFF, 100);
        assert_eq!(initial(true, now, Some(5), None) & 0xFF, LFU_INIT_VAL);
        let clock = crate::keyspace::lru_clock_at(now);
        assert_eq!(initial(false, now, Some(1000), Some(3)), clock - 1000);
        assert_eq!(initial(false, now, None, None), clock);
    }
}
