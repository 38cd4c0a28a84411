//! The cluster bus connections: the accept loop on the bus port, outbound connections to other
//! nodes, and one task pair per link (frames in: checked and handed to the state; bytes out:
//! whatever the state queued on the link's `Outgoing` and no worker wrote itself). A link ends
//! when either side fails or when the state drops it (which closes its `Outgoing`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};

use super::msg::{self, types};
use super::node::{flag, LinkId};
use super::outgoing::Outgoing;
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
        let out = Outgoing::new();
        let link = cluster.with(|st| {
            let id = st.add_link(None, out.clone());
            if let Some(l) = st.links.get_mut(&id) {
                l.local_ip = local;
                l.peer_ip = peer;
            }
            id
        });
        tokio::spawn(start_inbound(cluster.clone(), link, sock, out));
    }
}

/// An accepted link: with `tls-cluster`, its TLS handshake first (a failed one ends the link).
async fn start_inbound(cluster: Arc<Cluster>, link: LinkId, sock: TcpStream, out: Arc<Outgoing>) {
    // (The server is not held while the link runs: the cluster only has a weak reference.)
    let acceptor = match tls_cluster(&cluster) {
        None => return run_tcp_link(cluster, link, sock, out).await,
        Some(s) => s.tls.acceptor(s.config.load().tls_auth_clients),
    };
    let Some(acceptor) = acceptor else {
        return cluster.with(|st| st.free_link(link));
    };
    // The handshake and the stream in a ledger's scope: rustls's memory is not `used_memory`.
    let handshake = Apart::new(|| acceptor.accept(sock));
    match crate::util::timer::timeout(HANDSHAKE_TIMEOUT, handshake).await.map(Apart::transpose) {
        Ok(Ok(tls)) => run_link(cluster, link, tls, out).await,
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
pub async fn connect(cluster: Arc<Cluster>, link: LinkId, ip: String, port: u16, out: Arc<Outgoing>) {
    let timeout = Duration::from_millis(cluster.read(|st| st.cfg.node_timeout).max(1000) as u64);
    let source = cluster.server.upgrade().map(|s| s.config.load().bind_source_addr.clone()).unwrap_or_default();
    match crate::util::timer::timeout(timeout, crate::util::net::connect_from(&ip, port, &source)).await {
        Ok(Ok(sock)) => {
            let _ = sock.set_nodelay(true);
            let (local, peer) = (ip_of(sock.local_addr()), ip_of(sock.peer_addr()));
            // The TLS handshake counts as part of connecting.
            let client = match tls_cluster(&cluster) {
                None => {
                    if connected(&cluster, link, local, peer) {
                        run_tcp_link(cluster, link, sock, out).await;
                    }
                    return;
                }
                Some(s) => s.tls.client(),
            };
            let name = rustls::pki_types::ServerName::try_from(ip.clone()).ok();
            let (Some(client), Some(name)) = (client, name) else {
                return cluster.with(|st| st.link_connect_failed(link));
            };
            let handshake = Apart::new(|| tokio_rustls::TlsConnector::from(client).connect(name, sock));
            match crate::util::timer::timeout(timeout, handshake).await.map(Apart::transpose) {
                Ok(Ok(tls)) => {
                    if connected(&cluster, link, local, peer) {
                        run_link(cluster, link, tls, out).await;
                    }
                }
                _ => cluster.with(|st| st.link_connect_failed(link)),
            }
        }
        _ => cluster.with(|st| st.link_connect_failed(link)),
    }
}

/// An outbound link is up (from IP `local` to IP `peer`): MEET or PING the node. False when
/// the link is gone meanwhile.
fn connected(cluster: &Cluster, link: LinkId, local: String, peer: String) -> bool {
    cluster.with(|st| st.link_connected(link, local, peer))
}

/// Where a link's writer task writes.
enum Writer<W> {
    /// A plain TCP link's socket, which workers write to as well (see `outgoing`).
    Tcp(Arc<OwnedWriteHalf>),
    /// A TLS stream's write half.
    Stream(W),
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    async fn write_all(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Writer::Tcp(socket) => {
                while !bytes.is_empty() {
                    socket.writable().await?;
                    match socket.try_write(bytes) {
                        Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                        Ok(n) => bytes = &bytes[n..],
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            // (A TLS stream may keep the record until flushed.)
            Writer::Stream(w) => {
                w.write_all(bytes).await?;
                w.flush().await
            }
        }
    }
}

/// Run a plain TCP link: its socket is shared with the workers' direct writes.
async fn run_tcp_link(cluster: Arc<Cluster>, link: LinkId, sock: TcpStream, out: Arc<Outgoing>) {
    let (rd, wr) = sock.into_split();
    let wr = Arc::new(wr);
    out.attach(wr.clone());
    run_halves(cluster, link, rd, Writer::<OwnedWriteHalf>::Tcp(wr), out).await;
}

/// Run a TLS link.
async fn run_link<S>(cluster: Arc<Cluster>, link: LinkId, sock: S, out: Arc<Outgoing>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(sock);
    run_halves(cluster, link, rd, Writer::Stream(wr), out).await;
}

/// Move bytes both ways until the link ends, then drop it from the state.
async fn run_halves<R, W>(cluster: Arc<Cluster>, link: LinkId, rd: R, mut wr: Writer<W>, out: Arc<Outgoing>)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let mut reader = tokio::spawn(read_loop(cluster.clone(), link, rd));
    // Everything waiting goes in one write (Redis writes a link's whole buffer).
    let mut buf = Vec::new();
    loop {
        tokio::select! {
            open = out.take(&mut buf) => {
                if !open || wr.write_all(&buf).await.is_err() {
                    break;
                }
                out.written(&mut buf);
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
