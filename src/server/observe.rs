//! What the server records about every command it ran (Redis's call() epilogue): the MONITOR
//! feed, the slow log, the "command"/"fast-command" latency events and the per-command latency
//! histogram. [`command_done`] is the one hook the pipeline calls after a handler.

use bytes::Bytes;
use std::time::Duration;

use super::Server;
use crate::commands::pipeline::Command;
use crate::commands::pipeline::{flags, Action};
use crate::session::Client;

/// After a command's handler returned: `took` is the handler's own run time, `action` what it
/// asked the connection to do (a DEBUG SLEEP's pause counts as the command's time, as the
/// server-wide sleep does in Redis).
pub fn command_done(server: &Server, client: &Client, cmd: &Command, args: &[Bytes], took: Duration, action: &Action) {
    // Replaying the AOF records nothing (Redis clears CMD_CALL_SLOWLOG / STATS while loading).
    if client.handle.id == 0 && client.handle.addr == "aof" {
        return;
    }
    let blocked = matches!(action, Action::Block(_));
    let took = match action {
        Action::Sleep(d) => took + *d,
        _ => took,
    };
    super::monitor::after(server, client, cmd, args);
    if blocked {
        // Recorded when the command is served after its wait.
        return;
    }
    let us = took.as_micros() as u64;
    let cfg = server.config.load();
    let event = if cmd.has_flag(flags::FAST) { "fast-command" } else { "command" };
    server.latency.add_if_needed(cfg.latency_monitor_threshold, event, us / 1000);
    let slower_than = cfg.slowlog_log_slower_than;
    if slower_than >= 0 && us >= slower_than as u64 && !cmd.has_flag(flags::SKIP_SLOWLOG) {
        let redact = super::monitor::redacted_args(args);
        let name = client.name.as_deref().unwrap_or(b"");
        server.slowlog.push_if_needed(
            cfg.slowlog_log_slower_than,
            cfg.slowlog_max_len as usize,
            us,
            args,
            &redact,
            &client.handle.addr,
            name,
        );
    }
    if cfg.latency_tracking {
        cmd.stats.latency.record(took.as_nanos() as u64);
    }
}
