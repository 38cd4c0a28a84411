//! Process metrics: memory accounting (`used_memory`, what maxmemory is measured against) and
//! the optional Prometheus endpoint (`metrics-port`).

pub mod instantaneous;
pub mod latency;
pub mod memory;
pub mod prometheus;
pub mod slowlog;
