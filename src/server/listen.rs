//! Accepting connections: the TCP listeners of `bind`/`port` and the Unix socket of
//! `unixsocket`/`unixsocketperm`, the accept loops, and the command-executing worker threads the
//! accepted connections are handed to. The TCP listeners can be replaced at run time (CONFIG SET
//! port / bind): the new ones are bound first, so a failure leaves the old ones serving.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{connection, log, Server};
use crate::metrics::memory::Apart;

/// A connection over TCP, TLS (accepted on `tls-port`, or made to our master with
/// `tls-replication`) or a Unix socket. A TLS stream is used in its ledger's scope: what rustls
/// allocates for it is not counted in `used_memory` (`metrics::memory::apart`).
pub enum Stream {
    Tcp(TcpStream),
    Tls(Apart<Box<tokio_rustls::server::TlsStream<TcpStream>>>),
    TlsClient(Apart<Box<tokio_rustls::client::TlsStream<TcpStream>>>),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl Stream {
    /// [`Stream::try_read_buf`] that asks the socket itself rather than the reactor, which may
    /// not have seen yet input that arrived after a read drained the socket (see there):
    /// the read before waiting, for a client whose next request is usually there already.
    pub fn try_read_now(&mut self, buf: &mut bytes::BytesMut) -> std::io::Result<usize> {
        #[cfg(unix)]
        use std::os::fd::AsRawFd;
        match self {
            #[cfg(unix)]
            Stream::Tcp(s) => read_fd(buf, s.as_raw_fd()),
            #[cfg(unix)]
            Stream::Unix(s) => read_fd(buf, s.as_raw_fd()),
            _ => self.try_read_buf(buf),
        }
    }

    /// Read what is ready without waiting (see `TcpStream::try_read_buf`); WouldBlock when
    /// nothing is.
    ///
    /// A TCP or Unix socket read that leaves room in `buf` took everything the socket held:
    /// like tokio's own `poll_read`, it clears the socket's read readiness, so that the next
    /// wait for input really waits instead of first going round once more for a read that
    /// finds the socket empty (the reactor reports the socket readable until a read fails).
    /// Data arriving after the read raises a new edge, which the next wait sees.
    pub fn try_read_buf(&mut self, buf: &mut bytes::BytesMut) -> std::io::Result<usize> {
        #[cfg(unix)]
        use std::os::fd::AsRawFd;
        match self {
            #[cfg(unix)]
            Stream::Tcp(s) => drain_read(buf, s.as_raw_fd(), |f| s.try_io(tokio::io::Interest::READABLE, f)),
            #[cfg(unix)]
            Stream::Unix(s) => drain_read(buf, s.as_raw_fd(), |f| s.try_io(tokio::io::Interest::READABLE, f)),
            #[cfg(not(unix))]
            Stream::Tcp(s) => s.try_read_buf(buf),
            // TLS: poll the stream once without a waker; Pending means nothing is ready.
            _ => {
                let mut cx = Context::from_waker(std::task::Waker::noop());
                let dst = buf.spare_capacity_mut();
                let mut rb = ReadBuf::uninit(dst);
                match Pin::new(self).poll_read(&mut cx, &mut rb) {
                    Poll::Ready(Ok(())) => {
                        let n = rb.filled().len();
                        // SAFETY: poll_read initialised and filled these `n` bytes of the spare
                        // capacity.
                        unsafe { buf.set_len(buf.len() + n) };
                        Ok(n)
                    }
                    Poll::Ready(Err(e)) => Err(e),
                    Poll::Pending => Err(std::io::ErrorKind::WouldBlock.into()),
                }
            }
        }
    }

    /// The TCP connection under the stream, if any.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Tcp(s) => Some(s),
            Stream::Tls(s) => Some(s.get().get_ref().0),
            Stream::TlsClient(s) => Some(s.get().get_ref().0),
            #[cfg(unix)]
            Stream::Unix(_) => None,
        }
    }

    /// The verified client certificate of a TLS connection (DER), if the client sent one.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        match self {
            Stream::Tls(s) => s.get().get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()),
            _ => None,
        }
    }

    #[cfg(unix)]
    pub fn raw_fd(&self) -> i64 {
        use std::os::fd::AsRawFd;
        match self {
            #[cfg(unix)]
            Stream::Unix(s) => s.as_raw_fd() as i64,
            _ => self.tcp().map_or(-1, |t| t.as_raw_fd() as i64),
        }
    }

    #[cfg(not(unix))]
    pub fn raw_fd(&self) -> i64 {
        -1
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Stream::TlsClient(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Stream::TlsClient(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
            Stream::TlsClient(s) => Pin::new(s).poll_flush(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Stream::TlsClient(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Redis 7.0's islocalClient for TCP: exactly 127.0.0.1 or ::1 (not the rest of 127.0.0.0/8).
pub fn is_local_peer(peer: &SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(a) => a == std::net::Ipv4Addr::LOCALHOST,
        std::net::IpAddr::V6(a) => a == std::net::Ipv6Addr::LOCALHOST,
    }
}

/// An accepted connection on its way to a worker.
enum Incoming {
    Tcp(std::net::TcpStream, SocketAddr),
    /// Accepted on `tls-port`: the worker runs the handshake.
    Tls(std::net::TcpStream, SocketAddr),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream, String),
}

/// The command-executing threads. Each runs its own single-threaded tokio runtime and serves
/// the connections handed to it for their whole life (thread-per-core): no work stealing and no
/// cross-thread wake-ups on the hot path, while different connections still run on different
/// cores at the same time. The shard locks make their keyspace accesses safe.
pub struct Workers {
    senders: Vec<tokio::sync::mpsc::UnboundedSender<Incoming>>,
    next: std::sync::atomic::AtomicUsize,
}

impl Workers {
    pub fn start(server: &Arc<Server>) -> Workers {
        let configured = server.config.load().worker_threads as usize;
        let busy_poll = super::busy_poll::ceiling(server.config.load().busy_poll_us);
        // By default one core is left to the kernel's network processing and to background work
        // (cron, lazy freeing); on a 2-core machine that means one worker.
        let n = if configured > 0 {
            configured
        } else {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).saturating_sub(1).max(1)
        };
        let senders = (0..n)
            .map(|i| {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Incoming>();
                let server = server.clone();
                // Deep Lua results and libraries recurse (scripts inside EXEC run on this stack).
                let spawned = std::thread::Builder::new()
                    .name(format!("ferrous-worker-{i}"))
                    .stack_size(64 << 20)
                    .spawn(move || {
                        let handover = async move {
                            let _worker = super::pass::enter_worker();
                            while let Some(incoming) = rx.recv().await {
                                match incoming {
                                    Incoming::Tcp(sock, peer) => match TcpStream::from_std(sock) {
                                        Ok(sock) => {
                                            {
                                                use std::os::fd::AsRawFd;
                                                super::busy_poll::watch(sock.as_raw_fd());
                                            }
                                            let laddr = sock.local_addr().map(|a| a.to_string()).unwrap_or_default();
                                            let _ = sock.set_nodelay(true);
                                            let s = Stream::Tcp(sock);
                                            tokio::task::spawn_local(connection::serve(
                                                server.clone(),
                                                s,
                                                peer.to_string(),
                                                laddr,
                                                is_local_peer(&peer),
                                            ));
                                        }
                                        Err(e) => log::warning(&format!("Registering client connection: {e}")),
                                    },
                                    Incoming::Tls(sock, peer) => match TcpStream::from_std(sock) {
                                        Ok(sock) => {
                                            tokio::task::spawn_local(serve_tls(server.clone(), sock, peer));
                                        }
                                        Err(e) => log::warning(&format!("Registering client connection: {e}")),
                                    },
                                    #[cfg(unix)]
                                    Incoming::Unix(sock, path) => match tokio::net::UnixStream::from_std(sock) {
                                        Ok(sock) => {
                                            let addr = format!("{path}:0");
                                            tokio::task::spawn_local(connection::serve(
                                                server.clone(),
                                                Stream::Unix(sock),
                                                addr.clone(),
                                                addr,
                                                true,
                                            ));
                                        }
                                        Err(e) => log::warning(&format!("Registering client connection: {e}")),
                                    },
                                }
                            }
                        };
                        if let Err(e) = run_worker(handover, busy_poll) {
                            log::warning(&format!("Failed to start worker {i}: {e}"));
                        }
                    });
                if let Err(e) = spawned {
                    log::warning(&format!("Failed to start worker thread {i}: {e}"));
                }
                tx
            })
            .collect();
        Workers { senders, next: std::sync::atomic::AtomicUsize::new(0) }
    }

    /// Give a new connection to the next worker (round robin).
    fn hand_over(&self, incoming: Incoming) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.senders.len();
        let _ = self.senders[i].send(incoming);
    }
}

/// A worker's runtime: I/O only. No time driver: its clock read and wheel walk at every wake-up
/// cost about 450 instructions per unpipelined request; timers live on the process's timer
/// thread (`util::timer`).
///
/// With a busy-polling ceiling (`server::busy_poll::ceiling`), the worker polls its connections
/// for an adaptive while, up to that long, before it sleeps; the park hooks run on the worker's
/// thread.
fn worker_runtime(ceiling: std::time::Duration) -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_io().thread_stack_size(64 << 20);
    if !ceiling.is_zero() && super::busy_poll::init(ceiling) {
        builder.on_thread_park(|| {
            // Tasks woken from other threads (timers, blocked keys, the acceptor) wait in the
            // runtime's global queue: they end the spin too.
            let handle = tokio::runtime::Handle::try_current().ok();
            super::busy_poll::before_sleep(|| handle.as_ref().is_some_and(|h| h.metrics().global_queue_depth() > 0));
        });
        builder.on_thread_unpark(super::busy_poll::after_wake);
    }
    builder
}

/// The run queue of the worker a connection runs on: whether other tasks are ready to run now.
pub(crate) struct RunQueue {
    #[cfg(tokio_unstable)]
    metrics: Option<tokio::runtime::RuntimeMetrics>,
}

impl RunQueue {
    /// The current task's worker (a worker runtime has one thread, its worker 0). On any other
    /// runtime, and without `--cfg tokio_unstable` (no run-queue metrics), never "ready".
    pub(crate) fn current() -> Self {
        #[cfg(tokio_unstable)]
        {
            let handle = tokio::runtime::Handle::current();
            let metrics = match handle.runtime_flavor() {
                tokio::runtime::RuntimeFlavor::CurrentThread => Some(handle.metrics()),
                _ => None,
            };
            RunQueue { metrics }
        }
        #[cfg(not(tokio_unstable))]
        RunQueue {}
    }

    /// Whether other tasks of this worker are in its run queue (a relaxed atomic load).
    pub(crate) fn others_ready(&self) -> bool {
        #[cfg(tokio_unstable)]
        return self.metrics.as_ref().is_some_and(|m| m.worker_local_queue_depth(0) > 0);
        #[cfg(not(tokio_unstable))]
        false
    }
}

/// Run a worker until `handover` (the task that takes the connections handed over) ends.
///
/// Built with `--cfg tokio_unstable` (the repository's .cargo/config.toml), a `LocalRuntime`:
/// its tasks are the runtime's own, so a connection woken by the reactor goes straight to the
/// run queue. Otherwise a `LocalSet`, which costs each wake-up a second wake (of the set) and a
/// poll of the future `block_on` drives — here a flag, cheaper to look at than a join handle.
#[cfg(tokio_unstable)]
fn run_worker(
    handover: impl std::future::Future<Output = ()> + 'static,
    busy_poll: std::time::Duration,
) -> std::io::Result<()> {
    let rt = worker_runtime(busy_poll).build_local(tokio::runtime::LocalOptions::default())?;
    rt.block_on(async move {
        let _ = tokio::task::spawn_local(handover).await;
    });
    Ok(())
}

#[cfg(not(tokio_unstable))]
fn run_worker(
    handover: impl std::future::Future<Output = ()> + 'static,
    busy_poll: std::time::Duration,
) -> std::io::Result<()> {
    let rt = worker_runtime(busy_poll).build()?;
    // The waker of the first poll is kept: `block_on`'s never changes.
    let done = std::rc::Rc::new((std::cell::Cell::new(false), std::cell::OnceCell::new()));
    let finished = done.clone();
    tokio::task::LocalSet::new().block_on(&rt, async move {
        tokio::task::spawn_local(async move {
            handover.await;
            finished.0.set(true);
            if let Some(w) = finished.1.get() {
                std::task::Waker::wake_by_ref(w);
            }
        });
        std::future::poll_fn(|cx| {
            if done.0.get() {
                return Poll::Ready(());
            }
            done.1.get_or_init(|| cx.waker().clone());
            Poll::Pending
        })
        .await
    });
    Ok(())
}

/// The TLS handshake of a connection accepted on `tls-port`, then the connection itself.
async fn serve_tls(server: Arc<Server>, sock: TcpStream, peer: SocketAddr) {
    let laddr = sock.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let _ = sock.set_nodelay(true);
    let Some(acceptor) = server.tls.acceptor(server.config.load().tls_auth_clients) else {
        return;
    };
    // Over maxclients: refused before the handshake, as Redis's acceptCommonHandler (whose
    // error text cannot be written on a TLS connection not yet set up): the client sees the
    // connection fail.
    if server.clients.lock().len() >= server.config.load().maxclients as usize {
        server.stats.total_connections_received.fetch_add(1, Ordering::Relaxed);
        server.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
        log::verbose(&format!("Error accepting a client connection: max number of clients reached (addr={peer})"));
        return;
    }
    // Something other than a TLS handshake record (a plain-text client on the TLS port): close
    // without answering, as OpenSSL does (rustls would send an alert the client reads as data).
    let mut first = [0u8; 1];
    match crate::util::timer::timeout(Duration::from_secs(10), sock.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == 0x16 => {}
        _ => {
            log::warning(&format!("Error accepting a client connection: not a TLS handshake (addr={peer})"));
            return;
        }
    }
    let handshake = Apart::new(|| Box::pin(acceptor.accept(sock)));
    match crate::util::timer::timeout(Duration::from_secs(10), handshake).await.map(Apart::transpose) {
        Ok(Ok(tls)) => {
            let local = is_local_peer(&peer);
            connection::serve(server, Stream::Tls(tls.map(Box::new)), peer.to_string(), laddr, local).await
        }
        Ok(Err(e)) => log::warning(&format!("Error accepting a client connection: {e} (addr={peer} laddr={laddr})")),
        Err(_) => log::warning(&format!("Error accepting a client connection: TLS handshake timeout (addr={peer})")),
    }
}

/// The running accept loops.
#[derive(Default)]
pub struct Listeners {
    /// Connections are accepted once this is true (see [`Listeners::open`]).
    open: tokio::sync::watch::Sender<bool>,
    tcp: Mutex<Vec<Accepting>>,
    tls: Mutex<Vec<Accepting>>,
    unix: Mutex<Option<Accepting>>,
    workers: std::sync::OnceLock<Arc<Workers>>,
    /// The runtime the accept loops run on (the server's own, not a worker's).
    handle: std::sync::OnceLock<tokio::runtime::Handle>,
    /// `tcp-backlog` (immutable), for listeners bound again by CONFIG SET port / bind.
    backlog: std::sync::OnceLock<i64>,
}

/// An accept loop and its listening socket.
struct Accepting {
    task: tokio::task::JoinHandle<()>,
    fd: ListenFd,
}

#[cfg(unix)]
type ListenFd = std::os::fd::RawFd;
#[cfg(not(unix))]
type ListenFd = ();

#[cfg(unix)]
fn listen_fd(l: &impl std::os::fd::AsRawFd) -> ListenFd {
    l.as_raw_fd()
}

#[cfg(not(unix))]
fn listen_fd<T>(_: &T) -> ListenFd {}

impl Accepting {
    /// Stop at once: the socket is shut down here, so a client that connects from now on is
    /// refused, whenever the loop's runtime gets to drop it (aborting a task only asks that).
    fn close(self) {
        #[cfg(unix)]
        // SAFETY: the fd belongs to the listener the task still owns (the loop never ends by
        // itself, and the task is aborted only below), so it is open and not reused.
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
        let _ = self.fd;
        self.task.abort();
    }
}

/// An accept loop's error: logged, and a short pause before the next try. A socket shut down by
/// [`Accepting::close`] (EINVAL) waits quietly for its task to be aborted.
async fn accept_failed(e: std::io::Error) {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::EINVAL) {
        return std::future::pending().await;
    }
    if one_connections_error(&e) {
        return;
    }
    log::warning(&format!("Accepting client connection: {e}"));
    crate::util::timer::sleep(Duration::from_millis(10)).await;
}

/// An error of the one connection being accepted (Linux's accept hands over a new connection's
/// pending network error): the next is accepted at once, as Redis 7.2.10's anetRetryAcceptOnError
/// (CVE-2025-48367: each such error paused accepting, so a peer aborting connections in a loop
/// kept every other client out).
fn one_connections_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::EPROTO
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
        )
    )
}

/// Bind the TCP listeners of `bind` (an address with a leading `-` may be unavailable) on `port`,
/// listening with `tcp-backlog` (Redis's anetTcpServer). Err carries Redis's log line for the
/// failure.
pub async fn bind_tcp(binds: &[String], port: u16, backlog: i64) -> Result<Vec<tokio::net::TcpListener>, String> {
    let backlog = backlog.clamp(0, i32::MAX as i64) as u32;
    let mut listeners = Vec::new();
    for addr in binds {
        let optional = addr.starts_with('-');
        let addr = addr.trim_start_matches('-');
        let target = match addr {
            "*" => "0.0.0.0".to_string(),
            "::*" => "::".to_string(),
            a => a.to_string(),
        };
        let sock_addr = if target.contains(':') { format!("[{target}]:{port}") } else { format!("{target}:{port}") };
        match bind_one(&sock_addr, backlog).await {
            Ok(l) => listeners.push(l),
            Err(e) if optional && e.kind() != std::io::ErrorKind::AddrInUse => {}
            Err(e) => {
                return Err(format!(
                    "Warning: Could not create server TCP listening socket {addr}:{port}: bind: {}",
                    crate::config::kinds::strerror(&e)
                ));
            }
        }
    }
    Ok(listeners)
}

async fn bind_one(addr: &str, backlog: u32) -> std::io::Result<tokio::net::TcpListener> {
    let sa: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(_) => tokio::net::lookup_host(addr).await?.next().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "Cannot assign requested address")
        })?,
    };
    let sock = if sa.is_ipv6() { tokio::net::TcpSocket::new_v6()? } else { tokio::net::TcpSocket::new_v4()? };
    sock.set_reuseaddr(true)?;
    #[cfg(unix)]
    if sa.is_ipv6() {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: a valid socket fd and a c_int option value of the size given.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                &on as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    sock.bind(sa)?;
    sock.listen(backlog)
}

/// Redis's anetUnixServer: a listening Unix socket at `path`, with mode `perm` when not 0
/// (otherwise what the umask gives, as Redis leaves it), listening with `backlog`. Err with
/// Redis's text ("bind: ...").
///
/// CVE-2023-45145: a socket chmod'ed only after it listens can be connected to meanwhile by
/// anyone its umask-given mode lets in. Redis 7.2.2 chmods between bind and listen (a socket
/// that does not listen yet refuses every connection). Here the socket does not even appear at
/// `path` with another mode: it is bound, chmod'ed and made to listen in a fresh directory of
/// mode 0700 beside `path`, then renamed onto `path` (same directory, so the rename is atomic),
/// and the directory removed; the process's umask is not touched (other threads create files).
/// Only where the temporary name does not fit a socket address is it bound at `path` itself,
/// in Redis's order.
#[cfg(unix)]
fn bind_unix(path: &str, perm: u32, backlog: i32) -> Result<std::os::unix::net::UnixListener, String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let strerror = |what: &str, e: std::io::Error| format!("{what}: {}", crate::config::kinds::strerror(&e));
    let max = unix_path_capacity();
    if path.len() > max - 1 {
        return Err(format!("unix socket path too long ({}), must be under {max}", path.len()));
    }
    // bind, chmod, listen: the socket accepts nobody before it has its mode.
    let listen_at = |at: &str| -> Result<std::os::unix::net::UnixListener, String> {
        let sock = unix_socket().map_err(|e| strerror("socket", e))?;
        unix_bind(&sock, at).map_err(|e| strerror("bind", e))?;
        if perm != 0 {
            // As Redis, a failed chmod does not stop the listener.
            let _ = std::fs::set_permissions(at, std::fs::Permissions::from_mode(perm));
        }
        // SAFETY: a valid socket descriptor we own.
        if unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&sock), backlog) } == -1 {
            let e = std::io::Error::last_os_error();
            let _ = std::fs::remove_file(at);
            return Err(strerror("listen", e));
        }
        Ok(std::os::unix::net::UnixListener::from(sock))
    };
    if perm == 0 {
        return listen_at(path);
    }
    let target = std::path::Path::new(path);
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let mut private = None;
    for _ in 0..16 {
        let dir = parent.join(format!(".ferrous-sock-{:08x}", rand::random::<u32>()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                private = Some(dir);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // (Then binding at `path` fails the same way, with bind's error as Redis's.)
            Err(_) => break,
        }
    }
    let temp = private.as_ref().map(|d| d.join("s")).filter(|t| t.as_os_str().len() < max);
    let (Some(dir), Some(temp)) = (private.as_ref(), temp) else {
        if let Some(dir) = &private {
            let _ = std::fs::remove_dir(dir);
        }
        return listen_at(path);
    };
    let listener = listen_at(&temp.to_string_lossy()).and_then(|l| {
        std::fs::rename(&temp, target).map(|()| l).map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            strerror("bind", e)
        })
    });
    let _ = std::fs::remove_dir(dir);
    listener
}

/// sizeof(sockaddr_un.sun_path): the longest socket path is one byte less.
#[cfg(unix)]
fn unix_path_capacity() -> usize {
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sa.sun_path.len()
}

/// A new Unix stream socket, closed on exec.
#[cfg(unix)]
fn unix_socket() -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: socket(2) with constant arguments; the descriptor is owned at once.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
    if fd == -1 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nothing else owns.
    let sock = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: fcntl(2) on the descriptor just created.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(sock)
}

/// bind(2) `sock` to the path `at` (shorter than [`unix_path_capacity`]).
#[cfg(unix)]
fn unix_bind(sock: &std::os::fd::OwnedFd, at: &str) -> std::io::Result<()> {
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if at.len() >= sa.sun_path.len() || at.as_bytes().contains(&0) {
        return Err(std::io::ErrorKind::InvalidInput.into());
    }
    for (d, s) in sa.sun_path.iter_mut().zip(at.as_bytes()) {
        *d = *s as libc::c_char;
    }
    // SAFETY: a valid socket and a NUL-terminated address of the size given.
    let r = unsafe {
        libc::bind(
            std::os::fd::AsRawFd::as_raw_fd(sock),
            &sa as *const libc::sockaddr_un as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        )
    };
    if r == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl Listeners {
    /// Start serving: the workers, the TCP accept loops, and the Unix socket when configured.
    pub fn start(&self, server: &Arc<Server>, tcp: Vec<tokio::net::TcpListener>) -> Result<(), String> {
        let workers = self.workers.get_or_init(|| Arc::new(Workers::start(server))).clone();
        let _ = self.handle.set(tokio::runtime::Handle::current());
        self.replace_tcp(tcp);
        let cfg = server.config.load();
        let _ = self.backlog.set(cfg.tcp_backlog);
        #[cfg(unix)]
        if !cfg.unixsocket.is_empty() {
            let path = cfg.unixsocket.clone();
            let _ = std::fs::remove_file(&path);
            let backlog = cfg.tcp_backlog.clamp(0, i32::MAX as i64) as i32;
            let l = bind_unix(&path, cfg.unixsocketperm as u32, backlog)
                .and_then(|l| {
                    l.set_nonblocking(true).map_err(|e| crate::config::kinds::strerror(&e))?;
                    tokio::net::UnixListener::from_std(l).map_err(|e| crate::config::kinds::strerror(&e))
                })
                .map_err(|e| format!("Failed opening Unix socket: {e}"))?;
            let fd = listen_fd(&l);
            let mut open = self.open.subscribe();
            let task = tokio::spawn(async move {
                let _ = open.wait_for(|&o| o).await;
                loop {
                    match l.accept().await {
                        Ok((sock, _)) => {
                            if let Ok(std_sock) = sock.into_std() {
                                workers.hand_over(Incoming::Unix(std_sock, path.clone()));
                            }
                        }
                        Err(e) => accept_failed(e).await,
                    }
                }
            });
            *self.unix.lock() = Some(Accepting { task, fd });
        }
        Ok(())
    }

    /// Start accepting connections. At start-up the sockets listen at once but connections
    /// wait in the backlog until the data starts loading (then they are served, and answered
    /// -LOADING) or start-up is done, as Redis's do until its event loop first runs: a client
    /// that connects while an empty AOF's base is being written waits instead of being
    /// refused. Idempotent.
    pub fn open(&self) {
        self.open.send_if_modified(|o| !std::mem::replace(o, true));
    }

    /// Stop accepting TCP connections and close the listening sockets (shutting down: a client
    /// that connects after SHUTDOWN is refused, as by Redis, which exits inside the command).
    pub fn stop_accepting(&self) {
        for t in self.tcp.lock().drain(..).chain(self.tls.lock().drain(..)).chain(self.unix.lock().take()) {
            t.close();
        }
    }

    /// Serve these TCP listeners instead of the current ones.
    pub fn replace_tcp(&self, listeners: Vec<tokio::net::TcpListener>) {
        self.replace(listeners, false)
    }

    /// Serve these listeners on `tls-port` instead of the current ones.
    pub fn replace_tls(&self, listeners: Vec<tokio::net::TcpListener>) {
        self.replace(listeners, true)
    }

    fn replace(&self, listeners: Vec<tokio::net::TcpListener>, tls: bool) {
        let (Some(workers), Some(handle)) = (self.workers.get(), self.handle.get()) else {
            return;
        };
        let mut tasks = if tls { self.tls.lock() } else { self.tcp.lock() };
        for t in tasks.drain(..) {
            t.close();
        }
        for l in listeners {
            let workers = workers.clone();
            let fd = listen_fd(&l);
            let mut open = self.open.subscribe();
            let task = handle.spawn(async move {
                let _ = open.wait_for(|&o| o).await;
                loop {
                    match l.accept().await {
                        Ok((sock, peer)) => {
                            if let Ok(std_sock) = sock.into_std() {
                                workers.hand_over(if tls {
                                    Incoming::Tls(std_sock, peer)
                                } else {
                                    Incoming::Tcp(std_sock, peer)
                                });
                            }
                        }
                        Err(e) => accept_failed(e).await,
                    }
                }
            });
            tasks.push(Accepting { task, fd });
        }
    }

    /// CONFIG SET port / bind: bind the new addresses (on the server's runtime), then switch.
    pub fn rebind(&self, binds: &[String], port: u16, bind_changed: bool) -> Result<u16, String> {
        self.rebind_kind(binds, port, bind_changed, false)
    }

    /// CONFIG SET tls-port (0: stop listening for TLS) / bind.
    pub fn rebind_tls(&self, binds: &[String], port: u16, bind_changed: bool) -> Result<u16, String> {
        if port == 0 {
            self.replace_tls(Vec::new());
            return Ok(0);
        }
        self.rebind_kind(binds, port, bind_changed, true)
    }

    /// Stop listening on TCP (`port 0` while a TLS port serves).
    pub fn close_tcp(&self) {
        self.replace_tcp(Vec::new());
    }

    fn rebind_kind(&self, binds: &[String], port: u16, bind_changed: bool, tls: bool) -> Result<u16, String> {
        let Some(handle) = self.handle.get() else {
            return Err("Unable to listen on this port. Check server logs.".into());
        };
        let binds = binds.to_vec();
        let bound = std::thread::scope(|s| {
            let backlog = self.backlog.get().copied().unwrap_or(511);
            s.spawn(move || handle.block_on(async { bind_tcp(&binds, port, backlog).await }))
                .join()
                .unwrap_or_else(|_| Err("bind panicked".into()))
        });
        match bound {
            Ok(ls) => {
                let actual = ls.first().and_then(|l| l.local_addr().ok()).map(|a| a.port()).unwrap_or(port);
                // Enter the runtime to register the listeners' sockets with its reactor.
                let _guard = handle.enter();
                self.replace(ls, tls);
                Ok(actual)
            }
            Err(line) => {
                log::warning(&line);
                Err(if bind_changed {
                    "Failed to bind to specified addresses.".into()
                } else {
                    "Unable to listen on this port. Check server logs.".into()
                })
            }
        }
    }
}

/// [`Stream::try_read_buf`] on a socket: `try_io` runs the read while the socket is reported
/// readable and clears that when the read returns WouldBlock, which the read is made to return
/// (after keeping its bytes) when it left room in the buffer.
#[cfg(unix)]
fn drain_read(
    buf: &mut bytes::BytesMut,
    fd: std::os::fd::RawFd,
    try_io: impl FnOnce(&mut dyn FnMut() -> std::io::Result<usize>) -> std::io::Result<usize>,
) -> std::io::Result<usize> {
    use std::io::ErrorKind::WouldBlock;
    let mut got = 0;
    let r = try_io(&mut || {
        let room = buf.capacity() - buf.len();
        got = read_fd(buf, fd)?;
        if got > 0 && got < room {
            // Everything the socket held: report WouldBlock so that try_io clears readiness.
            return Err(WouldBlock.into());
        }
        Ok(got)
    });
    match r {
        Err(e) if e.kind() == WouldBlock && got > 0 => Ok(got),
        r => r,
    }
}

/// read(2) from `fd` into `buf`'s spare capacity: the byte count (0 at end of stream).
#[cfg(unix)]
fn read_fd(buf: &mut bytes::BytesMut, fd: std::os::fd::RawFd) -> std::io::Result<usize> {
    let dst = buf.spare_capacity_mut();
    // SAFETY: `dst` is writable spare capacity of `buf`, and read(2) writes at most its length.
    let n = unsafe { libc::read(fd, dst.as_mut_ptr().cast(), dst.len()) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        // A signal before anything was read: nothing read, as when nothing is there.
        return Err(if e.kind() == std::io::ErrorKind::Interrupted {
            std::io::ErrorKind::WouldBlock.into()
        } else {
            e
        });
    }
    // SAFETY: read(2) initialised these `n` bytes.
    unsafe { buf.set_len(buf.len() + n as usize) };
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connections_own_error_does_not_pause_accepting() {
        let err = |code| std::io::Error::from_raw_os_error(code);
        assert!(one_connections_error(&err(libc::ECONNABORTED)));
        assert!(one_connections_error(&err(libc::EPROTO)));
        // Out of descriptors or memory: accepting again at once would spin.
        assert!(!one_connections_error(&err(libc::EMFILE)));
        assert!(!one_connections_error(&err(libc::ENOBUFS)));
    }

    /// A fresh directory for one test's sockets, removed when dropped.
    #[cfg(unix)]
    struct TempDir(std::path::PathBuf);

    #[cfg(unix)]
    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("ferrous-listen-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn entries(&self) -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        }
    }

    #[cfg(unix)]
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The socket is at its path with `unixsocketperm`'s mode, serves connections, and nothing
    /// else is left beside it.
    #[cfg(unix)]
    #[test]
    fn a_unix_socket_appears_with_its_mode() {
        use std::io::{Read, Write};
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let dir = TempDir::new("perm");
        let path = dir.0.join("redis.sock");
        let path_s = path.to_str().unwrap();
        for perm in [0o700, 0o770, 0o777] {
            let _ = std::fs::remove_file(&path);
            let l = bind_unix(path_s, perm, 16).unwrap();
            let meta = std::fs::metadata(&path).unwrap();
            assert!(meta.file_type().is_socket());
            assert_eq!(meta.permissions().mode() & 0o777, perm, "{perm:o}");
            assert_eq!(dir.entries(), ["redis.sock"]);
            let mut c = std::os::unix::net::UnixStream::connect(&path).unwrap();
            let (mut s, _) = l.accept().unwrap();
            c.write_all(b"hi").unwrap();
            let mut buf = [0u8; 2];
            s.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"hi");
            drop(l);
        }
        // unixsocketperm 0: no chmod, the socket is bound at its path directly.
        let _ = std::fs::remove_file(&path);
        let l = bind_unix(path_s, 0, 16).unwrap();
        assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
        drop(l);
        assert_eq!(dir.entries(), ["redis.sock"]);
    }

    /// A path whose temporary name would not fit a socket address is bound in place (Redis's
    /// order: chmod before listen), still with its mode; one too long for any address is
    /// refused with Redis's text.
    #[cfg(unix)]
    #[test]
    fn long_unix_socket_paths() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("long");
        let max = unix_path_capacity();
        let base = dir.0.to_str().unwrap().len() + 1;
        assert!(base + 8 < max, "temp dir path too long for this test");
        let name = "x".repeat(max - 1 - base);
        let path = dir.0.join(&name);
        let l = bind_unix(path.to_str().unwrap(), 0o700, 16).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
        assert_eq!(dir.entries(), vec![name]);
        drop(l);
        let long = format!("{}y", path.to_str().unwrap());
        let err = bind_unix(&long, 0o700, 16).unwrap_err();
        assert_eq!(err, format!("unix socket path too long ({}), must be under {max}", long.len()));
        // A directory that does not exist: bind's error, as Redis's.
        let missing = dir.0.join("nope").join("s.sock");
        assert_eq!(bind_unix(missing.to_str().unwrap(), 0o700, 16).unwrap_err(), "bind: No such file or directory");
    }
}
