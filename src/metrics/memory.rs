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

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

/// Bytes allocated minus bytes freed, per thread (`util::striped::stripe`: a thread's counter
/// may go below zero when it frees what another allocated; the sum is what counts).
static USED: [Slot; STRIPES] = [const { Slot(AtomicIsize::new(0)) }; STRIPES];
const STRIPES: usize = crate::util::striped::STRIPES;

/// One thread's counter, alone on its cache lines.
#[repr(align(128))]
struct Slot(AtomicIsize);

/// Count `bytes` more (or fewer) on the calling thread's counter.
#[inline]
fn add(bytes: isize) {
    // Only a const-initialised thread-local without destructor is read here: nothing
    // allocates, so the allocator does not recurse.
    USED[crate::util::striped::stripe()].0.fetch_add(bytes, Ordering::Relaxed);
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

/// Bytes allocated and not yet freed, the Lua heaps excepted (Redis's `used_memory`).
pub fn used() -> usize {
    let scripts: usize = SCRIPT_HEAPS.iter().map(|h| h.load(Ordering::Relaxed)).sum();
    let used = (total().max(0) as usize).saturating_sub(scripts);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_alloc_realloc_and_free() {
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
