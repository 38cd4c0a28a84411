//! FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms] (Redis 6.2+): a master hands its role
//! to one of its replicas without losing writes. Writes are held (a pause only FAILOVER
//! lifts); once a replica acknowledged the whole stream (or the timeout passed with FORCE),
//! the master becomes that replica's replica and asks it, with `PSYNC <replid> <offset>
//! FAILOVER`, to become the master; the target continues our history (+CONTINUE) and we
//! continue its. A refused PSYNC, or the timeout without FORCE, aborts the failover.

use std::sync::atomic::{AtomicU8, Ordering};

use parking_lot::Mutex;

use super::ONLINE;
use crate::commands::args::{self, is};
use crate::commands::{CmdError, CmdResult, Ctx};
use crate::server::{log, Server};

const NO_FAILOVER: u8 = 0;
const WAIT_FOR_SYNC: u8 = 1;
const IN_PROGRESS: u8 = 2;

#[derive(Default)]
struct Target {
    host: Option<String>,
    port: i64,
    /// Unix ms when the wait ends (0: never).
    end_ms: i64,
    force: bool,
}

/// The failover state (INFO's master_failover_state).
#[derive(Default)]
pub struct Failover {
    state: AtomicU8,
    target: Mutex<Target>,
}

impl Failover {
    pub fn state_name(&self) -> &'static str {
        match self.state.load(Ordering::SeqCst) {
            NO_FAILOVER => "no-failover",
            IN_PROGRESS => "failover-in-progress",
            WAIT_FOR_SYNC => "waiting-for-sync",
            _ => "unknown",
        }
    }

    /// A failover is going on (REPLICAOF is refused meanwhile).
    pub fn active(&self) -> bool {
        self.state.load(Ordering::SeqCst) != NO_FAILOVER
    }

    /// We became the target's replica and wait for its answer to PSYNC FAILOVER.
    pub fn in_progress(&self) -> bool {
        self.state.load(Ordering::SeqCst) == IN_PROGRESS
    }

    /// Writes are held for the failover.
    pub fn pausing(&self) -> bool {
        self.active()
    }
}

/// End the failover (it succeeded or was aborted): writes run again.
fn clear(server: &Server) {
    *server.repl.failover.target.lock() = Target::default();
    server.repl.failover.state.store(NO_FAILOVER, Ordering::SeqCst);
    server.pause.set_failover(false, &server.keyspace);
}

/// Abort a failover in progress (Redis's abortFailover).
pub fn abort(server: &Server, why: &str) {
    let f = &server.repl.failover;
    if !f.active() {
        return;
    }
    let (host, port) = {
        let t = f.target.lock();
        (t.host.clone(), t.port)
    };
    match host {
        Some(h) => log::notice(&format!("FAILOVER to {h}:{port} aborted: {why}")),
        None => log::notice(&format!("FAILOVER to any replica aborted: {why}")),
    }
    if f.in_progress() {
        super::replica::stop(server);
    }
    clear(server);
}

/// The target answered our PSYNC FAILOVER: done, or abort.
pub fn psync_result(server: &Server, accepted: bool) {
    if !server.repl.failover.in_progress() {
        return;
    }
    if accepted {
        clear(server);
    } else {
        abort(server, "Failover target rejected psync request");
    }
}

/// An online replica at `host:port`.
fn find_replica(server: &Server, host: &str, port: i64) -> Option<std::sync::Arc<super::Link>> {
    server.repl.replicas.lock().iter().find(|l| l.ip.eq_ignore_ascii_case(host) && l.port == port).cloned()
}

/// FAILOVER.
pub fn command(ctx: &mut Ctx) -> CmdResult {
    let server = ctx.server;
    let a = ctx.args;
    let f = &server.repl.failover;
    if a.len() == 2 && is(&a[1], "abort") {
        if !f.active() {
            return Err(CmdError::new("No failover in progress."));
        }
        abort(server, "Failover manually aborted");
        ctx.reply.ok();
        return Ok(());
    }
    let (mut timeout, mut force, mut host, mut port) = (0i64, false, None::<String>, 0i64);
    let mut j = 1;
    while j < a.len() {
        if is(&a[j], "timeout") && j + 1 < a.len() && timeout == 0 {
            timeout = args::int(&a[j + 1])?;
            if timeout <= 0 {
                return Err(CmdError::new("FAILOVER timeout must be greater than 0"));
            }
            j += 2;
        } else if is(&a[j], "to") && j + 2 < a.len() && host.is_none() {
            port = args::int(&a[j + 2])?;
            host = Some(args::text(&a[j + 1]));
            j += 3;
        } else if is(&a[j], "force") && !force {
            force = true;
            j += 1;
        } else {
            return Err(CmdError::new(crate::commands::errors::SYNTAX));
        }
    }
    if f.active() {
        return Err(CmdError::new("FAILOVER already in progress."));
    }
    if server.replica.is_replica() {
        return Err(CmdError::new("FAILOVER is not valid when server is a replica."));
    }
    if server.repl.replica_count() == 0 {
        return Err(CmdError::new("FAILOVER requires connected replicas."));
    }
    if force && (timeout == 0 || host.is_none()) {
        return Err(CmdError::new("FAILOVER with force option requires both a timeout and target HOST and IP."));
    }
    if let Some(h) = &host {
        let Some(replica) = find_replica(server, h, port) else {
            return Err(CmdError::new("FAILOVER target HOST and PORT is not a replica."));
        };
        if replica.state() != ONLINE {
            return Err(CmdError::new("FAILOVER target replica is not online."));
        }
        log::notice(&format!("FAILOVER requested to {h}:{port}."));
    } else {
        log::notice("FAILOVER requested to any replica.");
    }
    let end_ms = if timeout > 0 { crate::keyspace::now_ms() + timeout } else { 0 };
    *f.target.lock() = Target { host, port, end_ms, force };
    f.state.store(WAIT_FOR_SYNC, Ordering::SeqCst);
    server.pause.set_failover(true, &server.keyspace);
    ctx.reply.ok();
    Ok(())
}

/// Every 100 ms: has a replica caught up (or the timeout passed)? Then become its replica
/// (Redis's updateFailoverStatus).
pub fn cron(server: &Server) {
    let f = &server.repl.failover;
    if f.state.load(Ordering::SeqCst) != WAIT_FOR_SYNC {
        return;
    }
    let (host, port, end_ms, force) = {
        let t = f.target.lock();
        (t.host.clone(), t.port, t.end_ms, t.force)
    };
    let go = |server: &Server, host: String, port: i64| {
        f.state.store(IN_PROGRESS, Ordering::SeqCst);
        if let Some(me) = server.me.upgrade() {
            super::replica::start(&me, host, port as u16);
        }
    };
    if end_ms != 0 && end_ms <= crate::keyspace::now_ms() {
        if force {
            let h = host.unwrap_or_default();
            log::notice(&format!("FAILOVER to {h}:{port} time out exceeded, failing over."));
            go(server, h, port);
        } else {
            abort(server, "Replica never caught up before timeout");
        }
        return;
    }
    let offset = server.repl.offset();
    let caught_up = |l: &super::Link| l.ack_off.load(Ordering::SeqCst) == offset;
    let replica = match &host {
        Some(h) => find_replica(server, h, port),
        None => {
            let found = server.repl.replicas.lock().iter().find(|l| caught_up(l)).cloned();
            if let Some(l) = &found {
                let mut t = f.target.lock();
                t.host = Some(l.ip.clone());
                t.port = l.port;
            }
            found
        }
    };
    if let Some(l) = replica.filter(|l| caught_up(l)) {
        log::notice(&format!("Failover target {}:{} is synced, failing over.", l.ip, l.port));
        go(server, l.ip.clone(), l.port);
    }
}
