//! The machine's physical memory (INFO's total_system_memory, the Lua heap's limit).

/// Bytes of physical memory (0 when the system does not say).
pub fn total_system_memory() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let (pages, size) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
    (pages.max(0) as u64) * (size.max(0) as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_machine_has_some_memory() {
        assert!(super::total_system_memory() > 1 << 20);
    }
}
