//! Process metrics: memory accounting (`used_memory`, what maxmemory is measured against).

pub mod memory;
