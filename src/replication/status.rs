//! What replication shows: INFO's replication section (every field Redis 7.0 prints, in its
//! order) and ROLE.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::replica::{CONNECT, CONNECTED, CONNECTING, HANDSHAKE, NONE, TRANSFER};
use super::{now_s, state_name, ONLINE};
use crate::protocol::ReplySink;
use crate::server::Server;

/// INFO replication, lines ending in CRLF.
pub fn info(server: &Server) -> String {
    let mut out = String::new();
    let cfg = server.config.load();
    let st = &server.replica;
    let repl = &server.repl;
    let master = st.master.lock().clone();
    let _ = write!(out, "# Replication\r\nrole:{}\r\n", if master.is_some() { "slave" } else { "master" });
    if let Some((host, port)) = master {
        let up = st.state() == CONNECTED;
        let offset = repl.offset();
        let read_offset = offset + if up { st.unapplied.load(Ordering::Relaxed) } else { 0 };
        let (roff, rroff) = if up || st.has_history() { (offset, read_offset) } else { (1, 1) };
        let io = now_s() - st.last_io.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "master_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{rroff}\r\nslave_repl_offset:{roff}\r\n",
            if up { "up" } else { "down" },
            if up { io.max(0) } else { -1 },
            (st.state() == TRANSFER) as u8,
        );
        if st.state() == TRANSFER {
            let size = st.transfer_size.load(Ordering::Relaxed);
            let read = st.transfer_read.load(Ordering::Relaxed);
            let size = size.max(0);
            let perc = if size > 0 { read as f64 / size as f64 * 100.0 } else { 0.0 };
            let _ = write!(
                out,
                "master_sync_total_bytes:{size}\r\nmaster_sync_read_bytes:{read}\r\nmaster_sync_left_bytes:{}\r\nmaster_sync_perc:{perc:.2}\r\nmaster_sync_last_io_seconds_ago:{}\r\n",
                size - read,
                now_s() - st.transfer_last_io.load(Ordering::Relaxed)
            );
        }
        if !up {
            let since = st.down_since.load(Ordering::Relaxed);
            let _ = write!(out, "master_link_down_since_seconds:{}\r\n", if since > 0 { now_s() - since } else { -1 });
        }
        let _ = write!(
            out,
            "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:{}\r\n",
            cfg.replica_priority, cfg.replica_read_only as u8, cfg.replica_announced as u8
        );
    }
    let links = repl.replicas.lock().clone();
    let _ = write!(out, "connected_slaves:{}\r\n", links.len());
    if cfg.min_replicas_to_write > 0 && cfg.min_replicas_max_lag > 0 {
        let _ = write!(out, "min_slaves_good_slaves:{}\r\n", repl.good_replicas());
    }
    let now = now_s();
    for (i, l) in links.iter().enumerate() {
        let state = l.state();
        let lag = if state == ONLINE { now - l.ack_time.load(Ordering::SeqCst) } else { 0 };
        let _ = write!(
            out,
            "slave{i}:ip={},port={},state={},offset={},lag={lag}\r\n",
            l.ip,
            l.port,
            state_name(state),
            l.ack_off.load(Ordering::SeqCst)
        );
    }
    let ids = repl.ids();
    let backlog = repl.backlog_info();
    let _ = write!(
        out,
        "master_failover_state:{}\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:{}\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{}\r\n",
        repl.failover.state_name(),
        ids.replid,
        ids.replid2,
        repl.offset(),
        ids.second_offset,
        backlog.is_some() as u8,
        cfg.repl_backlog_size,
        backlog.map_or(0, |b| b.0),
        backlog.map_or(0, |b| b.1),
    );
    out
}

/// The replication buffers' memory (INFO memory's mem_total_replication_buffers), the
/// backlog's share of it (mem_replication_backlog) and the replicas' (mem_clients_slaves): as
/// Redis, what exceeds repl-backlog-size counts for the replicas when there are some.
pub fn memory(server: &Server) -> (usize, usize, usize) {
    let total = server.repl.backlog_info().map_or(0, |b| b.2);
    let size = server.config.load().repl_backlog_size.max(0) as usize;
    if server.repl.replica_count() > 0 && total > size {
        (total, size, total - size)
    } else {
        (total, total, 0)
    }
}

/// ROLE.
pub fn role(server: &Server, r: &mut ReplySink) {
    let st = &server.replica;
    let repl = &server.repl;
    let master = st.master.lock().clone();
    match master {
        None => {
            r.array(3);
            r.bulk(b"master");
            r.int(repl.offset());
            let online: Vec<_> = repl.replicas.lock().iter().filter(|l| l.state() == ONLINE).cloned().collect();
            r.array(online.len());
            for l in online {
                r.array(3);
                r.bulk(l.ip.as_bytes());
                r.bulk(l.port.to_string().as_bytes());
                r.bulk(l.ack_off.load(Ordering::SeqCst).to_string().as_bytes());
            }
        }
        Some((host, port)) => {
            let state = match st.state() {
                NONE => "none",
                CONNECT => "connect",
                CONNECTING => "connecting",
                HANDSHAKE => "handshake",
                TRANSFER => "sync",
                CONNECTED => "connected",
                _ => "unknown",
            };
            r.array(5);
            r.bulk(b"slave");
            r.bulk(host.as_bytes());
            r.int(port as i64);
            r.bulk(state.as_bytes());
            r.int(if st.state() == CONNECTED { repl.offset() } else { -1 });
        }
    }
}
