//! What the server records about every command it ran (Redis's call() epilogue): the MONITOR
//! feed, the slow log, the "command"/"fast-command" latency events and the per-command latency
//! histogram. [`command_done`] is the one hook the pipeline calls after a handler.

use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use super::Server;
use crate::commands::pipeline::Command;
use crate::commands::pipeline::{flags, Action};
use crate::session::Client;

/// The settings [`command_done`] reads for every command, copied out of the configuration by
/// `Server::apply_config` (loading the configuration cost ~55 instructions per command).
#[derive(Default)]
pub struct Settings {
    latency_monitor_threshold: AtomicI64,
    slowlog_log_slower_than: AtomicI64,
    slowlog_max_len: AtomicI64,
    latency_tracking: AtomicBool,
}

impl Settings {
    pub fn configure(&self, cfg: &crate::config::Config) {
        self.latency_monitor_threshold.store(cfg.latency_monitor_threshold, Ordering::Relaxed);
        self.slowlog_log_slower_than.store(cfg.slowlog_log_slower_than, Ordering::Relaxed);
        self.slowlog_max_len.store(cfg.slowlog_max_len, Ordering::Relaxed);
        self.latency_tracking.store(cfg.latency_tracking, Ordering::Relaxed);
    }
}

/// After a command's handler returned: `took` is the handler's own run time, `action` what it
/// asked the connection to do.
pub fn command_done(server: &Server, client: &Client, cmd: &Command, args: &[Bytes], took: Duration, action: &Action) {
    // Replaying the AOF records nothing (Redis clears CMD_CALL_SLOWLOG / STATS while loading).
    if client.handle.id == 0 && client.handle.addr == "aof" {
        return;
    }
    let blocked = matches!(action, Action::Block(_));
    super::monitor::after(server, client, cmd, args);
    if blocked {
        // Recorded when the command is served after its wait.
        return;
    }
    let us = took.as_micros() as u64;
    let cfg = &server.observe;
    let event = if cmd.has_flag(flags::FAST) { "fast-command" } else { "command" };
    server.latency.add_if_needed(cfg.latency_monitor_threshold.load(Ordering::Relaxed), event, us / 1000);
    let slower_than = cfg.slowlog_log_slower_than.load(Ordering::Relaxed);
    if slower_than >= 0 && us >= slower_than as u64 && !cmd.has_flag(flags::SKIP_SLOWLOG) {
        let redact = super::monitor::redacted_args(args);
        let name = client.name().map_or(&b""[..], |n| &n[..]);
        server.slowlog.push_if_needed(
            slower_than,
            cfg.slowlog_max_len.load(Ordering::Relaxed) as usize,
            us,
            args,
            &redact,
            &client.handle.addr,
            name,
        );
    }
    if cfg.latency_tracking.load(Ordering::Relaxed) {
        cmd.stats.latency.record(took.as_nanos() as u64);
    }
}
