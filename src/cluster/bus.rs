//! The cluster bus connections: the accept loop on the bus port, outbound connections to other
//! nodes, and one task pair per link (frames in: checked and handed to the state; bytes out:
//! whatever the state queued on the link's channel). A link ends when either side fails or
//! when the state drops it (its channel closes).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;

use super::msg::{self, types};
use super::node::{flag, LinkId};
use super::state::State;
use super::Cluster;
use crate::metrics::memory::Apart;
use crate::server::log;

/// A link's read buffer to start with (a message larger than this grows it).
pub const READ_BUFFER: usize = 8192;
/// How long an accepted link's TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most room made ahead of a message's announced length.
const MAX_RESERVE: usize = 1 << 20;
/// Queued messages are joined into one write up to this size.
const MAX_WRITE: usize = 64 << 10;

fn ip_of(a: std::io::Result<std::net::SocketAddr>) -> String {
    a.map(|a| match a.ip() {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        ip => ip.to_string(),
    })
    .unwrap_or_default()
}

/// Accept bus connections (not while loading the data as a master: UPDATE messages could
/// touch keys being loaded).
pub async fn accept_loop(cluster: Arc<Cluster>, listener: TcpListener) {
    loop {
        let Some(server) = cluster.server.upgrade() else { return };
        if server.is_shutting_down() {
            return;
        }
        if server.stats.loading.load(Ordering::Relaxed) && !server.replica.is_replica() {
            drop(server);
            crate::util::timer::sleep(Duration::from_millis(20)).await;
            continue;
        }
        drop(server);
        let (sock, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                log::verbose(&format!("Error accepting cluster node: {e}"));
                crate::util::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        let (local, peer) = (ip_of(sock.local_addr()), ip_of(sock.peer_addr()));
        log::verbose(&format!(
            "Accepting cluster node connection from {}:{}",
            peer,
            sock.peer_addr().map(|a| a.port()).unwrap_or(0)
        ));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let link = cluster.with(|st| {
            let id = st.add_link(None, tx);
            if let Some(l) = st.links.get_mut(&id) {
                l.local_ip = local;
                l.peer_ip = peer;
            }
            id
        });
        tokio::spawn(start_inbound(cluster.clone(), link, sock, rx));
    }
}

/// An accepted link: with `tls-cluster`, its TLS handshake first (a failed one ends the link).
async fn start_inbound(cluster: Arc<Cluster>, link: LinkId, sock: TcpStream, rx: UnboundedReceiver<Vec<u8>>) {
    // (The server is not held while the link runs: the cluster only has a weak reference.)
    let acceptor = match tls_cluster(&cluster) {
        None => return run_link(cluster, link, sock, rx).await,
        Some(s) => s.tls.acceptor(s.config.load().tls_auth_clients),
    };
    let Some(acceptor) = acceptor else {
        return cluster.with(|st| st.free_link(link));
    };
    // The handshake and the stream in a ledger's scope: rustls's memory is not `used_memory`.
    let handshake = Apart::new(|| acceptor.accept(sock));
    match crate::util::timer::timeout(HANDSHAKE_TIMEOUT, handshake).await.map(Apart::transpose) {
        Ok(Ok(tls)) => run_link(cluster, link, tls, rx).await,
        Ok(Err(e)) => {
            log::verbose(&format!("Error accepting cluster node connection: {e}"));
            cluster.with(|st| st.free_link(link));
        }
        Err(_) => cluster.with(|st| st.free_link(link)),
    }
}

/// The server, when `tls-cluster` makes the links TLS (Redis's connTypeOfCluster).
fn tls_cluster(cluster: &Cluster) -> Option<Arc<crate::server::Server>> {
    cluster.server.upgrade().filter(|s| s.config.load().tls_cluster)
}

/// Connect an outbound link, then run it.
pub async fn connect(cluster: Arc<Cluster>, link: LinkId, ip: String, port: u16, rx: UnboundedReceiver<Vec<u8>>) {
    let timeout = Duration::from_millis(cluster.read(|st| st.cfg.node_timeout).max(1000) as u64);
    let source = cluster.server.upgrade().map(|s| s.config.load().bind_source_addr.clone()).unwrap_or_default();
    match crate::util::timer::timeout(timeout, crate::util::net::connect_from(&ip, port, &source)).await {
        Ok(Ok(sock)) => {
            let _ = sock.set_nodelay(true);
            let (local, peer) = (ip_of(sock.local_addr()), ip_of(sock.peer_addr()));
            // The TLS handshake counts as part of connecting.
            let client = match tls_cluster(&cluster) {
                None => return connected(cluster, link, (local, peer), sock, rx).await,
                Some(s) => s.tls.client(),
            };
            let name = rustls::pki_types::ServerName::try_from(ip.clone()).ok();
            let (Some(client), Some(name)) = (client, name) else {
                return cluster.with(|st| st.link_connect_failed(link));
            };
            let handshake = Apart::new(|| tokio_rustls::TlsConnector::from(client).connect(name, sock));
            match crate::util::timer::timeout(timeout, handshake).await.map(Apart::transpose) {
                Ok(Ok(tls)) => connected(cluster, link, (local, peer), tls, rx).await,
                _ => cluster.with(|st| st.link_connect_failed(link)),
            }
        }
        _ => cluster.with(|st| st.link_connect_failed(link)),
    }
}

/// An outbound link is up (on `addrs`: local and peer IP): MEET or PING the node, then run it.
async fn connected<S>(
    cluster: Arc<Cluster>,
    link: LinkId,
    (local, peer): (String, String),
    sock: S,
    rx: UnboundedReceiver<Vec<u8>>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    if cluster.with(|st| st.link_connected(link, local, peer)) {
        run_link(cluster, link, sock, rx).await;
    }
}

/// Move bytes both ways until the link ends, then drop it from the state.
async fn run_link<S>(cluster: Arc<Cluster>, link: LinkId, sock: S, mut rx: UnboundedReceiver<Vec<u8>>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let queued = cluster.read(|st| st.links.get(&link).map(|l| l.queued.clone()));
    let Some(queued) = queued else { return };
    let (rd, mut wr) = tokio::io::split(sock);
    let mut reader = tokio::spawn(read_loop(cluster.clone(), link, rd));
    loop {
        tokio::select! {
            m = rx.recv() => {
                let Some(mut bytes) = m else { break };
                // What else is queued goes in the same write (Redis writes a link's whole buffer).
                while bytes.len() < MAX_WRITE {
                    match rx.try_recv() {
                        Ok(more) => bytes.extend_from_slice(&more),
                        Err(_) => break,
                    }
                }
                let len = bytes.len();
                // (A TLS stream may keep the record until flushed; a socket's flush is free.)
                if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                    break;
                }
                queued.fetch_sub(len, Ordering::Relaxed);
            }
            _ = &mut reader => break,
        }
    }
    reader.abort();
    cluster.with(|st| st.free_link(link));
}

async fn read_loop(cluster: Arc<Cluster>, link: LinkId, mut rd: impl AsyncRead + Unpin) {
    let mut buf = BytesMut::with_capacity(READ_BUFFER);
    loop {
        while buf.len() >= 8 {
            if !msg::valid_start(&buf[..8]) {
                log::warning("Bad message length or signature received from Cluster bus.");
                return;
            }
            let len = msg::frame_len(&buf).unwrap_or(0);
            if buf.len() < len {
                // Room for the rest, but not all at once for a length no byte has backed yet
                // (a bad peer could announce 4 GB): the buffer grows as the bytes arrive.
                buf.reserve((len - buf.len()).min(MAX_RESERVE));
                break;
            }
            let frame = buf.split_to(len);
            if !cluster.with(|st| st.links.contains_key(&link) && st.process_packet(link, &frame)) {
                return;
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

impl State {
    /// Our connection to a node is up: MEET it (a node we were asked to meet) or PING it.
    pub fn link_connected(&mut self, link: LinkId, local_ip: String, peer_ip: String) -> bool {
        let Some(l) = self.links.get_mut(&link) else { return false };
        l.local_ip = local_ip;
        l.peer_ip = peer_ip;
        let Some(node) = l.node.filter(|n| self.nodes.contains_key(n)) else { return false };
        let old_ping_sent = self.nodes[&node].ping_sent;
        let meet = self.nodes[&node].has(flag::MEET);
        self.send_ping(link, if meet { types::MEET } else { types::PING });
        let n = self.nodes.get_mut(&node).expect("exists");
        if old_ping_sent != 0 {
            n.ping_sent = old_ping_sent;
        }
        n.flags &= !flag::MEET;
        true
    }

    /// A connection attempt failed: drop the link (the cron retries). As after Redis's
    /// synchronous connect errors, a pending ping is assumed so the node can time out.
    pub fn link_connect_failed(&mut self, link: LinkId) {
        let node = self.links.get(&link).and_then(|l| l.node);
        self.free_link(link);
        if let Some(n) = node.and_then(|n| self.nodes.get_mut(&n)) {
            if n.ping_sent == 0 {
                n.ping_sent = crate::keyspace::now_ms();
            }
        }
    }
}
