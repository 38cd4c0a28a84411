//! Links to instances (Redis's instanceLink): a command connection to every instance, and a
//! Pub/Sub connection (subscribed to `__sentinel__:hello`) to masters and replicas. Each
//! connection is a task on the server's background runtime that owns the socket: it writes what
//! the state queued and hands every reply back to the state, which matches it with the request
//! it answers (replies come in order). The state never touches a socket: it queues commands
//! and drops a connection by dropping its sender. With `tls-replication yes` the links use TLS.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::instance::Addr;
use super::resp::{self, Reply};
use super::{InstanceId, Sentinel};
use crate::server::Server;

/// What a reply on the command connection answers (Redis's reply callbacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    Discard,
    Ping,
    Info,
    Publish,
    IsMasterDown,
}

/// One open connection: its sender and the requests waiting for replies.
pub struct Conn {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    pub generation: u64,
    pending: VecDeque<Pending>,
}

/// An instance's connections and their timings (ms).
pub struct Link {
    pub cc: Option<Conn>,
    pub pc: Option<Conn>,
    /// The generation of a connection attempt in flight, per connection.
    pub cc_connecting: Option<u64>,
    pub pc_connecting: Option<u64>,
    disconnected: bool,
    pub pending_commands: i64,
    pub cc_conn_time: i64,
    pub pc_conn_time: i64,
    pub pc_last_activity: i64,
    pub last_avail_time: i64,
    pub act_ping_time: i64,
    pub last_ping_time: i64,
    pub last_pong_time: i64,
    pub last_reconn_time: i64,
}

impl Link {
    pub fn new(now: i64) -> Link {
        Link {
            cc: None,
            pc: None,
            cc_connecting: None,
            pc_connecting: None,
            disconnected: true,
            pending_commands: 0,
            cc_conn_time: 0,
            pc_conn_time: 0,
            pc_last_activity: 0,
            last_avail_time: now,
            act_ping_time: now,
            last_ping_time: 0,
            last_pong_time: now,
            last_reconn_time: 0,
        }
    }

    pub fn disconnected(&self) -> bool {
        self.disconnected
    }

    /// Mark the link usable once its connections are up (`pubsub`: whether it needs one).
    pub fn update_connected(&mut self, pubsub: bool) {
        if self.cc.is_some() && (!pubsub || self.pc.is_some()) {
            self.disconnected = false;
        }
    }

    /// Close the command connection (its task ends when it sees the sender gone).
    pub fn close_cc(&mut self) {
        if self.cc.take().is_some() {
            self.pending_commands = 0;
        }
        self.cc_connecting = None;
        self.disconnected = true;
    }

    pub fn close_pc(&mut self) {
        self.pc = None;
        self.pc_connecting = None;
        self.disconnected = true;
    }

    pub fn close_all(&mut self) {
        self.close_cc();
        self.close_pc();
    }

    /// Queue a command on the command connection; false when there is none.
    pub fn send(&mut self, argv: &[&str], pending: Pending) -> bool {
        let Some(cc) = self.cc.as_mut() else { return false };
        let mut out = Vec::new();
        crate::protocol::encode_command(&mut out, argv);
        if cc.tx.send(out).is_err() {
            return false;
        }
        cc.pending.push_back(pending);
        self.pending_commands += 1;
        true
    }

    /// Queue a command on the Pub/Sub connection: with `reply`, its reply is discarded (AUTH,
    /// CLIENT SETNAME); without (SUBSCRIBE), what comes back is read as messages.
    pub fn send_pubsub(&mut self, argv: &[&str], reply: bool) -> bool {
        let Some(pc) = self.pc.as_mut() else { return false };
        let mut out = Vec::new();
        crate::protocol::encode_command(&mut out, argv);
        if pc.tx.send(out).is_err() {
            return false;
        }
        if reply {
            pc.pending.push_back(Pending::Discard);
        }
        true
    }

    /// Whether a reply on the Pub/Sub connection answers AUTH or CLIENT SETNAME.
    pub fn take_pubsub_pending(&mut self) -> bool {
        self.pc.as_mut().and_then(|c| c.pending.pop_front()).is_some()
    }

    /// The request a reply of command connection `generation` answers (None: a stale reply).
    pub fn take_pending(&mut self, generation: u64) -> Option<Pending> {
        let cc = self.cc.as_mut().filter(|c| c.generation == generation)?;
        let p = cc.pending.pop_front()?;
        self.pending_commands -= 1;
        Some(p)
    }

    /// Install a connection that just connected (false: the attempt is stale).
    pub fn install(&mut self, pubsub: bool, generation: u64, tx: mpsc::UnboundedSender<Vec<u8>>, now: i64) -> bool {
        let conn = Conn { tx, generation, pending: VecDeque::new() };
        if pubsub {
            if self.pc_connecting != Some(generation) {
                return false;
            }
            self.pc_connecting = None;
            self.pc = Some(conn);
            self.pc_conn_time = now;
            self.pc_last_activity = now;
        } else {
            if self.cc_connecting != Some(generation) {
                return false;
            }
            self.cc_connecting = None;
            self.cc = Some(conn);
            self.pending_commands = 0;
            self.cc_conn_time = now;
        }
        true
    }

    /// A connection of this generation closed or failed to connect.
    pub fn lost(&mut self, pubsub: bool, generation: u64) {
        if pubsub {
            if self.pc_connecting == Some(generation) || self.pc.as_ref().is_some_and(|c| c.generation == generation) {
                self.close_pc();
            }
        } else if self.cc_connecting == Some(generation) || self.cc.as_ref().is_some_and(|c| c.generation == generation)
        {
            self.close_cc();
        }
    }

    pub fn is_current(&self, pubsub: bool, generation: u64) -> bool {
        let c = if pubsub { &self.pc } else { &self.cc };
        c.as_ref().is_some_and(|c| c.generation == generation)
    }
}

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

/// Start a connection task (on the current runtime: the server's background one).
pub fn spawn(sentinel: Arc<Sentinel>, server: Arc<Server>, id: InstanceId, pubsub: bool, addr: Addr, generation: u64) {
    tokio::spawn(async move {
        run(&sentinel, &server, &id, pubsub, addr, generation).await;
        sentinel.lock(&server).link_lost(&id, pubsub, generation);
    });
}

async fn run(sentinel: &Sentinel, server: &Server, id: &InstanceId, pubsub: bool, addr: Addr, generation: u64) {
    // From bind-source-addr, as Redis's redisAsyncConnectBind (best effort, as the other links).
    let source = server.config.load().bind_source_addr.clone();
    let connect = crate::util::net::connect_from(addr.ip.as_str(), addr.port, &source);
    let stream = match crate::util::timer::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            sentinel.lock(server).link_event_debug(id, pubsub, &e.to_string());
            return;
        }
        Err(_) => {
            sentinel.lock(server).link_event_debug(id, pubsub, "Connection timed out");
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    // Over TLS with tls-replication yes, as Redis's links.
    let stream = match crate::server::tls::secure_master_link(server, &addr.host, stream).await {
        Ok(s) => s,
        Err(e) => {
            sentinel.lock(server).link_event_debug(id, pubsub, &e);
            return;
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    if !sentinel.lock(server).link_up(id, pubsub, generation, tx) {
        return;
    }
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(bytes) => {
                    if wr.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            n = rd.read_buf(&mut buf) => {
                match n {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let mut used = 0;
                let mut replies = Vec::new();
                loop {
                    match resp::parse(&buf[used..]) {
                        Ok(Some((r, n))) => {
                            replies.push(r);
                            used += n;
                        }
                        Ok(None) => break,
                        Err(_) => return,
                    }
                }
                buf.drain(..used);
                if !replies.is_empty() && !deliver(sentinel, server, id, pubsub, generation, replies) {
                    return;
                }
            }
        }
    }
}

/// Hand replies to the state; false when this connection is no longer the instance's.
fn deliver(
    sentinel: &Sentinel,
    server: &Server,
    id: &InstanceId,
    pubsub: bool,
    generation: u64,
    replies: Vec<Reply>,
) -> bool {
    let mut st = sentinel.lock(server);
    for r in replies {
        if !st.on_reply(id, pubsub, generation, r) {
            return false;
        }
    }
    true
}
