//! Process metrics: memory accounting (`used_memory`, what maxmemory is measured against) and
//! per-client output buffers (`client-output-buffer-limit`).

pub mod memory;
pub mod obuf;
