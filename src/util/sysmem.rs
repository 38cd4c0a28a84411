//! The machine's physical memory (INFO's total_system_memory) and what of it the process may
//! use (the Lua heap's limit, the output-buffer ceiling).

/// Bytes of physical memory (0 when the system does not say).
pub fn total_system_memory() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let (pages, size) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
    (pages.max(0) as u64) * (size.max(0) as u64)
}

/// Bytes the process may use: the machine's memory, or less where its cgroup sets a limit
/// (cgroup v2's memory.max, v1's memory.limit_in_bytes).
pub fn usable_memory() -> u64 {
    let total = total_system_memory();
    ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|s| s.trim().parse::<u64>().ok())
        .fold(total, |m, limit| if limit > 0 && (m == 0 || limit < m) { limit } else { m })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_machine_has_some_memory() {
        assert!(super::total_system_memory() > 1 << 20);
        let usable = super::usable_memory();
        assert!(usable > 1 << 20 && usable <= super::total_system_memory());
    }
}
