//! The allocator of a Lua engine's heap. mlua's allocator aborts the process when the system
//! refuses an allocation (`handle_alloc_error`); Lua expects NULL, and raises "not enough
//! memory" in the script, as Redis's Lua (on libc's realloc) does. So once an engine is made,
//! its state's allocator is replaced by [`allocate`]: mlua's, with the same heap limit and the
//! same alignment (blocks mlua's allocated are freed by this one), returning NULL where mlua's
//! aborts. The guard puts mlua's back when dropped, before the state closes.
//!
//! Only a limit no one set could make the system refuse first (the engine's limit is half the
//! memory the process may use): an address-space rlimit, or strict overcommit.

use mlua::ffi;
use std::alloc::{self, Layout};
use std::os::raw::c_void;

/// The alignment mlua's allocator gives every block.
const ALIGN: usize = ffi::SYS_MIN_ALIGN;

/// What the allocator keeps for one state: bytes in use, and the most it may use.
struct Heap {
    used: isize,
    limit: isize,
}

/// [`allocate`] installed on a state. Dropped before the state closes (the engines declare
/// their `Api`, which holds it, before their `Lua`), it puts mlua's allocator back.
pub struct HeapGuard {
    state: *mut ffi::lua_State,
    prev: (ffi::lua_Alloc, *mut c_void),
    heap: *mut Heap,
}

// SAFETY: used only by whoever holds its engine, as the state itself.
unsafe impl Send for HeapGuard {}

impl HeapGuard {
    /// Install [`allocate`] on `state`, `used` bytes being in use (mlua's count), with `limit`.
    ///
    /// # Safety
    /// `state` is a main state made by mlua, alive until the guard is dropped, used by one
    /// thread at a time, and mlua's memory limit was set on it (so mlua protects its own
    /// allocations against memory errors).
    pub unsafe fn install(state: *mut ffi::lua_State, used: usize, limit: usize) -> HeapGuard {
        let mut ud = std::ptr::null_mut();
        let f = ffi::lua_getallocf(state, &mut ud);
        let heap = Box::into_raw(Box::new(Heap {
            used: used.min(isize::MAX as usize) as isize,
            limit: limit.min(isize::MAX as usize) as isize,
        }));
        ffi::lua_setallocf(state, allocate, heap.cast());
        HeapGuard { state, prev: (f, ud), heap }
    }
}

impl Drop for HeapGuard {
    fn drop(&mut self) {
        // SAFETY: the state is alive (see the type's comment); the heap was made by install
        // and is no longer the state's once mlua's allocator is back.
        unsafe {
            ffi::lua_setallocf(self.state, self.prev.0, self.prev.1);
            drop(Box::from_raw(self.heap));
        }
    }
}

/// Lua's allocation function (lua_Alloc) for a state with a [`Heap`].
unsafe extern "C" fn allocate(ud: *mut c_void, ptr: *mut c_void, osize: usize, nsize: usize) -> *mut c_void {
    // SAFETY: `ud` is the Heap installed with this function; the state is used by one thread.
    let heap = unsafe { &mut *ud.cast::<Heap>() };
    if nsize == 0 {
        if !ptr.is_null() {
            // SAFETY: Lua frees a block it got from this allocator (or mlua's) with its size.
            unsafe { alloc::dealloc(ptr.cast(), Layout::from_size_align_unchecked(osize, ALIGN)) };
            heap.used -= osize as isize;
        }
        return std::ptr::null_mut();
    }
    if nsize > isize::MAX as usize {
        return std::ptr::null_mut();
    }
    let diff = if ptr.is_null() { nsize as isize } else { nsize as isize - osize as isize };
    if diff > 0 && heap.used.saturating_add(diff) > heap.limit {
        return std::ptr::null_mut();
    }
    let Ok(layout) = Layout::from_size_align(nsize, ALIGN) else {
        return std::ptr::null_mut();
    };
    // SAFETY: a new block of a valid layout, or Lua's block with the size it was given.
    let p = unsafe {
        if refused_in_test(nsize) {
            std::ptr::null_mut()
        } else if ptr.is_null() {
            alloc::alloc(layout)
        } else {
            alloc::realloc(ptr.cast(), Layout::from_size_align_unchecked(osize, ALIGN), nsize)
        }
    };
    if p.is_null() {
        // Refused: a new or bigger block fails in Lua ("not enough memory"); a smaller one
        // keeps the block it has, which is big enough (Lua assumes a shrink succeeds).
        return if ptr.is_null() || nsize > osize { std::ptr::null_mut() } else { ptr };
    }
    heap.used += diff;
    p.cast()
}

#[cfg(test)]
thread_local! {
    /// Tests: blocks bigger than this are refused as the system would refuse them.
    static REFUSE_ABOVE: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// Whether a test refuses a block of `nsize` bytes (see `REFUSE_ABOVE`); never outside tests.
#[inline(always)]
fn refused_in_test(nsize: usize) -> bool {
    #[cfg(test)]
    return nsize > REFUSE_ABOVE.with(|r| r.get());
    #[cfg(not(test))]
    {
        let _ = nsize;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::Lua;

    /// The system refusing a block is a Lua memory error the script can catch, not an abort;
    /// the engine goes on, and dropping the guard gives the state back to mlua's allocator.
    #[test]
    fn a_refused_allocation_is_a_lua_memory_error() {
        let lua = Lua::new();
        lua.set_memory_limit(1 << 40).unwrap();
        let mut state = std::ptr::null_mut();
        // SAFETY: the closure only records the state it runs on (the main one: no coroutine).
        unsafe { lua.exec_raw::<()>((), |l| state = l).unwrap() };
        // SAFETY: mlua's main state, alive while `lua` is, which outlives the guard.
        let guard = unsafe { HeapGuard::install(state, lua.used_memory(), 1 << 40) };
        REFUSE_ABOVE.with(|r| r.set(1 << 20));
        let (ok, err): (bool, String) =
            lua.load("return pcall(function() return string.rep('x', 2 ^ 21) end)").eval().unwrap();
        assert!(!ok && err.contains("not enough memory"), "{err}");
        REFUSE_ABOVE.with(|r| r.set(usize::MAX));
        let n: i64 = lua.load("return #string.rep('ab', 2 ^ 20)").eval().unwrap();
        assert_eq!(n, 2 << 20);
        drop(guard);
        let n: i64 = lua.load("return #string.rep('ab', 1000)").eval().unwrap();
        assert_eq!(n, 2000);
    }
}
