//! Memory accounting: a global allocator wrapper that counts the bytes the process has
//! allocated and not freed, like Redis's zmalloc `used_memory`. This is the figure `maxmemory`
//! is compared with and eviction works against: unlike RSS it drops as soon as a key is freed.
//!
//! Hand-written rather than taken from a crate because it sits on the allocation hot path: one
//! relaxed atomic add per allocation and per free, nothing else, on the calling thread's own
//! counter (as Redis 7's zmalloc keeps one per thread): a single counter written by every
//! worker moved its cache line between cores at each allocation. Reading the figure adds the
//! counters up. The peak is updated lazily (when the figure is read), as Redis does from its
//! cron.
//!
//! What the TLS library allocates (`apart`) is counted apart and left out of the figure, as
//! Redis's zmalloc never sees OpenSSL's allocations: a thread that runs rustls marks itself,
//! and only a marked thread's allocations take the slower path that also books them apart.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

mod apart;
pub use apart::{Apart, Ledger};

/// Bytes allocated minus bytes freed, per thread (`util::striped::stripe`: a thread's counter
/// may go below zero when it frees what another allocated; the sum is what counts).
static USED: [Slot; STRIPES] = [const { Slot(AtomicIsize::new(0)) }; STRIPES];
const STRIPES: usize = crate::util::striped::STRIPES;

/// One thread's counter, alone on its cache lines.
#[repr(align(128))]
struct Slot(AtomicIsize);

/// The calling thread's view of the counters: its stripe, with [`APART`] set while it runs
/// the TLS library ([`UNSET`] until its first allocation), and what it allocated net while
/// marked (`apart::scope` reads it around each call into the library).
struct Local {
    slot: Cell<usize>,
    apart: Cell<isize>,
}

/// The mark on `Local::slot` of a thread inside the TLS library.
const APART: usize = 1 << (usize::BITS - 2);
const UNSET: usize = usize::MAX;

thread_local! {
    // Const-initialised, without destructor: reading it allocates nothing, so the allocator
    // does not recurse.
    static LOCAL: Local = const { Local { slot: Cell::new(UNSET), apart: Cell::new(0) } };
}

/// Count `bytes` more (or fewer) on the calling thread's counter.
#[inline]
fn add(bytes: isize) {
    LOCAL.with(|l| {
        let slot = l.slot.get();
        // The plain path: one comparison, as the stripe's own "not yet assigned" test was.
        if slot < STRIPES {
            USED[slot].0.fetch_add(bytes, Ordering::Relaxed);
        } else {
            add_slow(l, bytes)
        }
    })
}

/// A thread's first allocation (no stripe yet), or one made inside the TLS library.
#[cold]
#[inline(never)]
fn add_slow(l: &Local, bytes: isize) {
    let slot = own_slot(l);
    USED[slot].0.fetch_add(bytes, Ordering::Relaxed);
    if l.slot.get() & APART != 0 {
        l.apart.set(l.apart.get().wrapping_add(bytes));
    }
}

/// The calling thread's stripe, assigned on first use.
fn own_slot(l: &Local) -> usize {
    match l.slot.get() {
        UNSET => {
            let s = crate::util::striped::stripe();
            l.slot.set(s);
            s
        }
        s => s & !APART,
    }
}

/// The calling thread's counter: what it allocated minus what it freed (of any thread's). The
/// difference between two readings is what the thread's own work in between allocated or
/// freed, whatever other threads did meanwhile (eviction measures a deletion with it).
pub fn thread_net() -> isize {
    USED[crate::util::striped::stripe()].0.load(Ordering::Relaxed)
}

/// All threads' counters added up.
fn total() -> isize {
    USED.iter().fold(0isize, |sum, s| sum.wrapping_add(s.0.load(Ordering::Relaxed)))
}
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// The Lua heaps (the EVAL engine's and the functions engine's), which the allocator counts in
/// `USED` but Redis does not: its Lua allocates outside zmalloc, so scripts never count toward
/// `used_memory` or maxmemory (INFO reports them apart, as used_memory_lua / _vm_*).
static SCRIPT_HEAPS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
static STARTUP: AtomicUsize = AtomicUsize::new(0);

/// Wraps an allocator and counts the bytes allocated through it.
pub struct Counting<A>(pub A);

unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { self.0.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Called by the cron (hz times a second): ask mimalloc to return the freed pages that are
/// due. mimalloc v3 gives a page freed to its arenas back to the system only after a delay
/// (`purge_delay`, 1 s) and only when some thread's later allocation or collection looks, so
/// without this an idle server kept what it freed last:
/// - the resident memory of its last big reply (1 GB after an MGET of two 512 MB values, where
///   Redis's jemalloc returned it);
/// - the values of a FLUSHALL (213 MB resident after one of 200 MB of 33 KB values, where
///   Redis's went back to 65 MB);
/// - the old arrays of the tables that grew (every shard's dictionary and TTL index): after a
///   load of 1M keys with a TTL, RSS stayed 10-30 MB over what MEMORY PURGE left.
///
/// A normal collection, not a forced one: it purges only what is due, and returns at once when
/// nothing is; the cron thread's own heap, which it walks, is small. (It used to run only for
/// a second after a big free, which ended before the last pages freed were due.)
pub fn give_back_freed() {
    // SAFETY: mi_collect takes no pointers and only walks the allocator's own structures.
    unsafe { libmimalloc_sys::mi_collect(false) };
}

/// Whether the counting allocator is installed (it is in the server binary; unit tests run
/// on the system allocator and see 0).
pub fn counting() -> bool {
    total() != 0
}

/// Which Lua engine a heap size is for.
#[derive(Clone, Copy, Debug)]
pub enum ScriptHeap {
    Eval = 0,
    Functions = 1,
}

/// Record the current size of a Lua engine's heap (after each use of the engine; 0 once it
/// is dropped).
pub fn set_script_heap(engine: ScriptHeap, bytes: usize) {
    SCRIPT_HEAPS[engine as usize].store(bytes, Ordering::Relaxed);
}

/// Bytes allocated and not freed, less what the TLS library's ledgers hold.
fn counted() -> isize {
    total().wrapping_sub(apart::held() as isize)
}

/// Bytes allocated and not yet freed, the Lua heaps and the TLS library's memory excepted
/// (Redis's `used_memory`).
pub fn used() -> usize {
    let scripts: usize = SCRIPT_HEAPS.iter().map(|h| h.load(Ordering::Relaxed)).sum();
    let used = (counted().max(0) as usize).saturating_sub(scripts);
    // Read before writing: eviction reads the figure before every command under maxmemory,
    // on every worker, and the peak's line is written only when it moves.
    if used > PEAK.load(Ordering::Relaxed) {
        PEAK.fetch_max(used, Ordering::Relaxed);
    }
    used
}

/// The highest `used()` seen.
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed).max(used())
}

/// Note the memory used once the server is initialised (INFO's used_memory_startup).
pub fn mark_startup() {
    STARTUP.store(used(), Ordering::Relaxed);
}

pub fn startup() -> usize {
    STARTUP.load(Ordering::Relaxed)
}

/// CONFIG RESETSTAT: the peak restarts from the current figure.
pub fn reset_peak() {
    PEAK.store(used(), Ordering::Relaxed);
}

/// Tests that read the process-wide figures take turns.
#[cfg(test)]
static TEST_LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_alloc_realloc_and_free() {
        let _turn = TEST_LOCK.lock();
        let a = Counting(std::alloc::System);
        let before = total();
        unsafe {
            let layout = Layout::from_size_align(100, 8).unwrap();
            let p = a.alloc(layout);
            assert_eq!(total() - before, 100);
            let p = a.realloc(p, layout, 300);
            assert_eq!(total() - before, 300);
            a.dealloc(p, Layout::from_size_align(300, 8).unwrap());
        }
        assert_eq!(total(), before);
    }
}
