//! A cache prefetch hint: ask the CPU to start loading a cache line that is about to be read,
//! so that several independent loads overlap instead of each waiting for memory in turn.

/// Hint the CPU to bring the cache line at `p` into all cache levels. Reads nothing and never
/// faults, whatever `p` is; a no-op off x86-64.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is only a hint; it does not dereference `p` (an invalid address
        // is ignored).
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
