//! Counters that every worker thread writes, kept per thread: each thread adds to its own
//! stripe, a cache line that no other thread writes, and a reader (INFO, the cron, Prometheus)
//! adds the stripes up. A single counter written by every worker moves its cache line from core
//! to core at each write once several workers run commands (docs/SCALING.md: the coherence
//! cost κ), and caps every command that writes it, whatever the number of cores.
//!
//! Threads take stripes in turn; with more threads than [`STRIPES`] some share one, which
//! stays correct (the stripes are atomics), only no longer free of sharing.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Stripes per counter: more than the worker threads of a server on most machines.
pub const STRIPES: usize = 32;

/// One stripe, alone on its cache line (two lines: the adjacent-line prefetcher of x86 pairs
/// them).
#[repr(align(128))]
#[derive(Default)]
struct Line<T>(T);

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

/// The calling thread's stripe.
#[inline]
pub fn stripe() -> usize {
    STRIPE.with(|s| {
        let i = s.get();
        if i != usize::MAX {
            return i;
        }
        let i = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
        s.set(i);
        i
    })
}

/// A `T` per stripe, allocated when first used (a counter nobody writes costs one word).
pub struct Striped<T>(OnceLock<Box<[Line<T>]>>);

impl<T> Default for Striped<T> {
    fn default() -> Self {
        Striped(OnceLock::new())
    }
}

impl<T: Default> Striped<T> {
    /// The calling thread's `T`.
    #[inline]
    pub fn local(&self) -> &T {
        let lines = self.lines();
        // Each counter's array is 4 KB, the period of the first-level cache's sets: a thread's
        // stripes at the same index in every counter would all compete for one set. The
        // array's address moves the index (still one stripe per thread per counter).
        let salt = lines.as_ptr() as usize >> 12;
        &lines[(stripe() + salt) % STRIPES].0
    }

    fn lines(&self) -> &[Line<T>] {
        self.0.get_or_init(|| (0..STRIPES).map(|_| Line::default()).collect())
    }
}

impl<T> Striped<T> {
    /// Every stripe's `T` (none before the first use).
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.0.get().into_iter().flat_map(|lines| lines.iter().map(|l| &l.0))
    }
}

/// `N` counters written together, in one stripe line per thread (one lookup for all of them).
/// Reading adds the stripes up; a stripe may go below zero (wrapping) when a thread takes off
/// what another added, and the sum stays right.
pub struct CounterSet<const N: usize>(Striped<[AtomicU64; N]>);

impl<const N: usize> Default for CounterSet<N> {
    fn default() -> Self {
        CounterSet(Striped::default())
    }
}

impl<const N: usize> CounterSet<N>
where
    [AtomicU64; N]: Default,
{
    /// The calling thread's counters, to add to (relaxed).
    #[inline]
    pub fn local(&self) -> &[AtomicU64; N] {
        self.0.local()
    }

    /// Counter `i`, all stripes added up.
    pub fn get(&self, i: usize) -> u64 {
        self.0.iter().fold(0u64, |sum, c| sum.wrapping_add(c[i].load(Ordering::Relaxed)))
    }

    /// Counter `i`'s largest stripe (for counters each thread keeps a maximum in).
    pub fn max(&self, i: usize) -> u64 {
        self.0.iter().map(|c| c[i].load(Ordering::Relaxed)).max().unwrap_or(0)
    }

    /// Set counter `i`'s total (CONFIG RESETSTAT, a save clearing `dirty`): a stripe's add
    /// that runs at the same time may survive it, as with Redis's own counters read by another
    /// thread.
    pub fn set(&self, i: usize, value: u64) {
        let mut first = true;
        for c in self.0.iter() {
            c[i].store(if first { value } else { 0 }, Ordering::Relaxed);
            first = false;
        }
        if first && value != 0 {
            self.local()[i].store(value, Ordering::Relaxed);
        }
    }
}

/// Raise a counter of the calling thread's stripe (from `CounterSet::local`) to `value` if it
/// is below: a per-thread maximum, read with `CounterSet::max`.
#[inline]
pub fn raise(counter: &AtomicU64, value: u64) {
    if value > counter.load(Ordering::Relaxed) {
        counter.store(value, Ordering::Relaxed);
    }
}

/// One counter with `AtomicU64`'s interface (the orderings are accepted and the operations are
/// relaxed: these are statistics), kept per stripe.
#[derive(Default)]
pub struct Counter(CounterSet<1>);

impl Counter {
    #[inline]
    pub fn fetch_add(&self, n: u64, _: Ordering) {
        self.0.local()[0].fetch_add(n, Ordering::Relaxed);
    }

    pub fn load(&self, _: Ordering) -> u64 {
        self.0.get(0)
    }

    pub fn store(&self, value: u64, _: Ordering) {
        self.0.set(0, value);
    }

    /// Take `n` off the total, stopping at zero.
    pub fn sub_saturating(&self, n: u64) {
        if self.0.get(0) <= n {
            self.0.set(0, 0);
        } else {
            self.0.local()[0].fetch_sub(n, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_add_to_their_own_stripes_and_readers_see_the_sum() {
        let c = std::sync::Arc::new(Counter::default());
        assert_eq!(c.load(Ordering::Relaxed), 0);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.fetch_add(2, Ordering::Relaxed);
                    }
                    stripe()
                })
            })
            .collect();
        let stripes: std::collections::HashSet<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(stripes.len(), 4, "each thread has a stripe of its own");
        assert_eq!(c.load(Ordering::Relaxed), 8000);
        c.store(5, Ordering::Relaxed);
        assert_eq!(c.load(Ordering::Relaxed), 5);
        c.fetch_add(1, Ordering::Relaxed);
        assert_eq!(c.load(Ordering::Relaxed), 6);
        c.sub_saturating(4);
        assert_eq!(c.load(Ordering::Relaxed), 2);
        c.sub_saturating(9);
        assert_eq!(c.load(Ordering::Relaxed), 0);
        let set = CounterSet::<3>::default();
        set.local()[1].fetch_add(4, Ordering::Relaxed);
        assert_eq!((set.get(0), set.get(1)), (0, 4));
        set.set(1, 0);
        assert_eq!(set.get(1), 0);
        let fresh = Counter::default();
        fresh.store(7, Ordering::Relaxed);
        assert_eq!(fresh.load(Ordering::Relaxed), 7);
    }
}
