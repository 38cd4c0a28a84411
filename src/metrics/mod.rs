//! Process metrics: memory accounting (`used_memory`, what maxmemory is measured against) and
//! per-client output buffers (`client-output-buffer-limit`).
//! the optional Prometheus endpoint (`metrics-port`).

pub mod instantaneous;
pub mod latency;
pub mod memory;
pub mod obuf;
pub mod prometheus;
pub mod slowlog;
