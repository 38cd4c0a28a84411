//! Freeing big values off the command path (Redis's lazyfree): UNLINK hands a value whose free
//! effort exceeds 64 allocations to a background thread, counted in INFO's `lazyfree_pending_objects` / `lazyfreed_objects`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

use crate::types::Value;

/// Values needing more frees than this go to the background (Redis's LAZYFREE_THRESHOLD).
pub const THRESHOLD: usize = 64;

static PENDING: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

fn worker() -> &'static Mutex<Sender<Value>> {
    static TX: OnceLock<Mutex<Sender<Value>>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = channel::<Value>();
        std::thread::Builder::new()
            .name("ferrous-lazyfree".into())
            .spawn(move || {
                for v in rx {
                    drop(v);
                    PENDING.fetch_sub(1, Ordering::Relaxed);
                    FREED.fetch_add(1, Ordering::Relaxed);
                }
            })
            .expect("spawn the lazyfree thread");
        Mutex::new(tx)
    })
}

/// Free `v` now, or in the background when that is a lot of work.
pub fn free(v: Value) {
    if v.free_effort() <= THRESHOLD {
        return drop(v);
    }
    PENDING.fetch_add(1, Ordering::Relaxed);
    let tx = worker().lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Err(e) = tx.send(v) {
        PENDING.fetch_sub(1, Ordering::Relaxed);
        drop(e.0);
    }
}

/// Objects waiting to be freed in the background.
pub fn pending() -> u64 {
    PENDING.load(Ordering::Relaxed)
}

/// Objects freed in the background since the start (or CONFIG RESETSTAT).
pub fn freed() -> u64 {
    FREED.load(Ordering::Relaxed)
}

pub fn reset_stats() {
    FREED.store(0, Ordering::Relaxed);
}
