//! Replication, replica side (REPLICAOF host port): a background task connects to the master,
//! performs the handshake (PING, REPLCONF listening-port / capa psync2, PSYNC ? -1), loads the
//! RDB snapshot of the full resynchronisation (length-prefixed; Ferrous does not announce
//! `capa eof`, so a diskless master falls back to sending its file), then applies the command
//! stream through the pipeline as the master client (exempt from READONLY, replies
//! discarded), acknowledging its offset every second and on `REPLCONF GETACK`. A lost link is
//! retried every second; REPLICAOF NO ONE ends the task.
//!
//! The master client's writes go to Ferrous's own effect stream, so a replica's AOF and its own
//! replicas follow the master.

use crate::server::listen::Stream;
use bytes::{Buf, BytesMut};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::protocol::{parse_request, ParseLimits, Proto, ReplySink};
use crate::server::{log, Server};
use crate::session::Client;

/// The replica state: who the master is and how the link is doing.
#[derive(Default)]
pub struct ReplicaState {
    /// (host, port) of the master; None when this server is a master.
    pub master: Mutex<Option<(String, u16)>>,
    /// Bumped by every REPLICAOF: a link task whose generation is stale stops.
    generation: AtomicU64,
    /// The link is up (the snapshot was loaded and the stream is being applied).
    pub link_up: AtomicBool,
    /// A full synchronisation is in progress.
    pub syncing: AtomicBool,
    /// Replication offset reached (master's offset at the snapshot + stream bytes applied).
    pub offset: AtomicI64,
    /// Unix seconds of the last byte received from the master.
    pub last_io: AtomicI64,
}

impl ReplicaState {
    pub fn is_replica(&self) -> bool {
        self.master.lock().is_some()
    }
}

/// REPLICAOF host port: become a replica of `host:port` (returns false when already replicating
/// exactly that master).
pub fn start(server: &Arc<Server>, host: String, port: u16) -> bool {
    let st = &server.replica;
    {
        let mut m = st.master.lock();
        if m.as_ref() == Some(&(host.clone(), port)) {
            return false;
        }
        *m = Some((host.clone(), port));
    }
    server.config.update(|c| c.replicaof = Some((host.clone(), port)));
    log::set_role(true);
    let _ = crate::server::process::set_oom_score_adj(&server.config.load(), true);
    st.link_up.store(false, Ordering::SeqCst);
    let generation = st.generation.fetch_add(1, Ordering::SeqCst) + 1;
    log::notice(&format!("Connecting to MASTER {host}:{port}"));
    let server = server.clone();
    tokio::spawn(async move { link(server, host, port, generation).await });
    true
}

/// REPLICAOF NO ONE: stop replicating (the data stays).
pub fn stop(server: &Server) {
    let st = &server.replica;
    server.config.update(|c| c.replicaof = None);
    log::set_role(false);
    let _ = crate::server::process::set_oom_score_adj(&server.config.load(), false);
    if st.master.lock().take().is_some() {
        st.generation.fetch_add(1, Ordering::SeqCst);
        st.link_up.store(false, Ordering::SeqCst);
        st.syncing.store(false, Ordering::SeqCst);
        log::notice("MASTER MODE enabled (user request from the REPLICAOF NO ONE command)");
    }
}

fn current(server: &Server, generation: u64) -> bool {
    server.replica.generation.load(Ordering::SeqCst) == generation
}

async fn link(server: Arc<Server>, host: String, port: u16, generation: u64) {
    while current(&server, generation) {
        match sync_and_stream(&server, &host, port, generation).await {
            Ok(()) => {}
            Err(e) if current(&server, generation) => {
                log::warning(&format!("Replication with MASTER {host}:{port}: {e}"));
            }
            Err(_) => {}
        }
        server.replica.link_up.store(false, Ordering::SeqCst);
        server.replica.syncing.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Read one line (without CRLF), skipping the bare newlines a master sends as keep-alives.
async fn read_line(sock: &mut Stream, buf: &mut BytesMut) -> Result<String, String> {
    loop {
        while buf.first() == Some(&b'\n') {
            buf.advance(1);
        }
        if let Some(pos) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..pos]).to_string();
            buf.advance(pos + 2);
            return Ok(line);
        }
        fill(sock, buf).await?;
    }
}

async fn fill(sock: &mut Stream, buf: &mut BytesMut) -> Result<(), String> {
    buf.reserve(64 * 1024);
    let n = tokio::time::timeout(Duration::from_secs(60), sock.read_buf(buf))
        .await
        .map_err(|_| "timeout reading from master".to_string())?
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("connection closed by master".into());
    }
    Ok(())
}

async fn command(sock: &mut Stream, buf: &mut BytesMut, argv: &[&str]) -> Result<String, String> {
    let mut out = Vec::new();
    super::encode_command(&mut out, argv);
    sock.write_all(&out).await.map_err(|e| e.to_string())?;
    read_line(sock, buf).await
}

async fn sync_and_stream(server: &Arc<Server>, host: &str, port: u16, generation: u64) -> Result<(), String> {
    let mut sock = crate::server::tls::connect_to_master(server, host, port).await?;
    let mut buf = BytesMut::new();
    let pong = command(&mut sock, &mut buf, &["PING"]).await?;
    if pong.starts_with('-') && !pong.starts_with("-NOAUTH") {
        return Err(format!("master answered PING with {pong}"));
    }
    let (user, pass) = {
        let cfg = server.config.load();
        (cfg.masteruser.clone(), cfg.masterauth.clone())
    };
    if !pass.is_empty() {
        // AUTH <masteruser> <masterauth> when a user is configured (ACL), as Redis.
        let argv: Vec<&str> = if user.is_empty() { vec!["AUTH", &pass] } else { vec!["AUTH", &user, &pass] };
        let r = command(&mut sock, &mut buf, &argv).await?;
        if r.starts_with('-') {
            log::warning(&format!("Unable to AUTH to MASTER: {r}"));
            return Err(format!("AUTH: {r}"));
        }
    }
    let my_port = server.port.load(Ordering::Relaxed).to_string();
    command(&mut sock, &mut buf, &["REPLCONF", "listening-port", &my_port]).await?;
    command(&mut sock, &mut buf, &["REPLCONF", "capa", "psync2"]).await?;
    let reply = command(&mut sock, &mut buf, &["PSYNC", "?", "-1"]).await?;
    let offset: i64 = match reply.strip_prefix("+FULLRESYNC ") {
        Some(rest) => rest.split_whitespace().nth(1).and_then(|o| o.parse().ok()).unwrap_or(0),
        None if reply.starts_with("+") => 0,
        None => return Err(format!("PSYNC: {reply}")),
    };
    server.replica.syncing.store(true, Ordering::SeqCst);
    let header = read_line(&mut sock, &mut buf).await?;
    let len: usize = header
        .strip_prefix('$')
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| format!("unexpected snapshot header {header:?}"))?;
    while buf.len() < len {
        fill(&mut sock, &mut buf).await?;
    }
    let rdb = buf.split_to(len);
    if !current(server, generation) {
        return Ok(());
    }
    load_snapshot(server, &rdb)?;
    log::notice(&format!("MASTER <-> REPLICA sync: Finished with success ({len} bytes)"));
    let st = &server.replica;
    st.offset.store(offset, Ordering::SeqCst);
    st.last_io.store(crate::keyspace::now_ms() / 1000, Ordering::Relaxed);
    st.syncing.store(false, Ordering::SeqCst);
    st.link_up.store(true, Ordering::SeqCst);
    stream(server, &mut sock, &mut buf, generation).await
}

/// Replace the dataset with the master's snapshot (all shards locked: all or nothing).
fn load_snapshot(server: &Server, rdb: &[u8]) -> Result<(), String> {
    let opts = crate::server::saving::load_options(server);
    let loaded = crate::persistence::rdb_load::parse(rdb, &opts).map_err(|e| format!("bad snapshot: {e}"))?;
    let mut db = server.keyspace.lock_all(0);
    drop(db.flush(true));
    if let Err(e) = crate::persistence::rdb_load::install(&mut db, loaded, false) {
        drop(db.flush(true));
        return Err(e);
    }
    db.touch_dirty(1);
    Ok(())
}

/// Apply the master's command stream until the link drops or REPLICAOF changes.
async fn stream(server: &Arc<Server>, sock: &mut Stream, buf: &mut BytesMut, generation: u64) -> Result<(), String> {
    let handle = crate::session::client::ClientHandle::new(0, "master".into(), String::new(), -1);
    let mut client = Client::new(handle, true);
    client.is_master = true;
    let mut sink = ReplySink::new(Proto::Resp2);
    let limits = ParseLimits { max_bulk_len: i64::MAX, unauthenticated: false };
    let mut ack = tokio::time::interval(Duration::from_secs(1));
    let st = &server.replica;
    loop {
        loop {
            let before = buf.len();
            let req = match parse_request(buf, &limits) {
                Ok(Some(req)) => req,
                Ok(None) => break,
                Err(e) => return Err(format!("protocol error from master: {}", e.0)),
            };
            let used = (before - buf.len()) as i64;
            if req.args.is_empty() {
                st.offset.fetch_add(used, Ordering::SeqCst);
                continue;
            }
            let getack = req.args.len() >= 2
                && req.args[0].eq_ignore_ascii_case(b"replconf")
                && req.args[1].eq_ignore_ascii_case(b"getack");
            if !getack {
                // CLIENT PAUSE holds the master's writes too; they run once it ends.
                while let crate::commands::Action::Paused = crate::commands::pipeline::execute_as(
                    server,
                    &mut client,
                    crate::commands::pipeline::Caller::Master,
                    &req.args,
                    &mut sink,
                ) {
                    server.pause.released().await;
                }
                sink.buf.clear();
                sink.errors.clear();
            }
            st.offset.fetch_add(used, Ordering::SeqCst);
            if getack {
                send_ack(sock, st.offset.load(Ordering::SeqCst)).await?;
            }
        }
        if !current(server, generation) {
            return Ok(());
        }
        tokio::select! {
            r = sock.read_buf(buf) => {
                match r {
                    Ok(0) => return Err("connection closed by master".into()),
                    Ok(_) => st.last_io.store(crate::keyspace::now_ms() / 1000, Ordering::Relaxed),
                    Err(e) => return Err(e.to_string()),
                }
            }
            _ = ack.tick() => {
                if !current(server, generation) {
                    return Ok(());
                }
                send_ack(sock, st.offset.load(Ordering::SeqCst)).await?;
            }
        }
    }
}

async fn send_ack(sock: &mut Stream, offset: i64) -> Result<(), String> {
    let mut out = Vec::new();
    super::encode_command(&mut out, &["REPLCONF", "ACK", &offset.to_string()]);
    sock.write_all(&out).await.map_err(|e| e.to_string())
}
