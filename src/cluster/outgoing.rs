//! A bus link's outgoing bytes ([`Outgoing`]): counted when queued, then written by the link's
//! writer task, or, on a plain TCP link, straight from a worker thread.
//!
//! A message queued on a worker thread (a PUBLISH, a CLUSTER command) waits for the end of the
//! worker's pass (`server::pass`), concatenated with the others the pass queued for the same
//! link. The worker then writes them itself when nothing is ahead of them (no bytes waiting for
//! the writer, none being written) and the socket takes them: one write per pass and link, as
//! Redis writes a link's buffer once per event-loop iteration, with no hop to the writer's
//! thread. What the socket does not take goes to the writer. Inside an EXEC the pass ends after
//! the EXEC, so INFO in the same EXEC still counts the messages in mem_cluster_links.
//! Elsewhere (the bus tasks, the cron, all of a TLS link's messages) a message goes to the
//! writer at once.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

/// A buffer larger than this is given back rather than kept for the next bytes (here, and the
/// state's scratch buffer messages are encoded into).
pub(super) const KEEP_CAPACITY: usize = 64 << 10;

/// One link's outgoing side, shared by the cluster state (which queues), the link's writer task
/// and the workers' direct writes.
#[derive(Default)]
pub struct Outgoing {
    pending: Mutex<Pending>,
    /// Wakes the writer: bytes are pending, or the link was closed.
    wake: Notify,
    /// Bytes queued and not yet written (CLUSTER LINKS' send buffer, mem_cluster_links).
    queued: AtomicUsize,
}

#[derive(Default)]
struct Pending {
    /// Bytes for the writer, in order.
    bytes: Vec<u8>,
    /// The writer took bytes and is writing them.
    writing: bool,
    /// The state dropped the link: nothing more is written.
    closed: bool,
    /// A plain TCP link's socket, which a worker may write to when nothing is ahead.
    socket: Option<Arc<OwnedWriteHalf>>,
}

impl Outgoing {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Count `bytes` as queued (before they are handed over, so that the writer never
    /// subtracts them first) and hand them over: at the end of this worker's pass, or now off
    /// a worker. Returns the bytes now queued.
    pub fn queue(self: &Arc<Self>, bytes: &[u8]) -> usize {
        let now = self.queued.fetch_add(bytes.len(), Ordering::Relaxed) + bytes.len();
        let first = WAITING.with(|w| w.borrow().is_empty());
        if first && crate::server::pass::after_pass(flush).is_err() {
            self.push(bytes, false);
            return now;
        }
        WAITING.with(|w| {
            let mut w = w.borrow_mut();
            match w.iter_mut().find(|x| Arc::ptr_eq(&x.out, self)) {
                Some(x) => x.bytes.extend_from_slice(bytes),
                None => {
                    let mut buf = SPARE.with(|s| s.borrow_mut().pop()).unwrap_or_default();
                    buf.extend_from_slice(bytes);
                    w.push(Waiting { out: self.clone(), bytes: buf });
                }
            }
        });
        now
    }

    /// Give the writer `bytes`, or, with `direct`, write them now when nothing is ahead of
    /// them and the socket takes them (what it does not take goes to the writer).
    fn push(&self, bytes: &[u8], direct: bool) {
        let mut p = self.pending.lock();
        if p.closed {
            // Nothing will write (or count) these.
            self.queued.fetch_sub(bytes.len(), Ordering::Relaxed);
            return;
        }
        let mut written = 0;
        if direct && !p.writing && p.bytes.is_empty() {
            if let Some(socket) = &p.socket {
                // (An error is the writer's to meet: it ends the link.)
                written = socket.try_write(bytes).unwrap_or(0);
                self.queued.fetch_sub(written, Ordering::Relaxed);
            }
        }
        if written < bytes.len() {
            p.bytes.extend_from_slice(&bytes[written..]);
            drop(p);
            self.wake.notify_one();
        }
    }

    /// A plain TCP link is up: workers may write to its socket too.
    pub fn attach(&self, socket: Arc<OwnedWriteHalf>) {
        self.pending.lock().socket = Some(socket);
    }

    /// The writer: wait for pending bytes and take them into `buf` (empty), or false when the
    /// link was closed. Call [`Outgoing::written`] once they are written.
    pub async fn take(&self, buf: &mut Vec<u8>) -> bool {
        loop {
            let woken = self.wake.notified();
            {
                let mut p = self.pending.lock();
                if p.closed {
                    return false;
                }
                if !p.bytes.is_empty() {
                    std::mem::swap(buf, &mut p.bytes);
                    p.writing = true;
                    return true;
                }
            }
            woken.await;
        }
    }

    /// The writer wrote what it took (`buf`, cleared here).
    pub fn written(&self, buf: &mut Vec<u8>) {
        self.pending.lock().writing = false;
        self.queued.fetch_sub(buf.len(), Ordering::Relaxed);
        if buf.capacity() > KEEP_CAPACITY {
            *buf = Vec::new();
        }
        buf.clear();
    }

    /// The state dropped the link: its writer ends, and nothing more is written.
    pub fn close(&self) {
        let mut p = self.pending.lock();
        p.closed = true;
        p.socket = None;
        self.queued.fetch_sub(p.bytes.len(), Ordering::Relaxed);
        p.bytes = Vec::new();
        drop(p);
        self.wake.notify_one();
    }
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Outgoing({} bytes queued)", self.queued())
    }
}

/// The messages of this pass for one link.
struct Waiting {
    out: Arc<Outgoing>,
    bytes: Vec<u8>,
}

thread_local! {
    static WAITING: RefCell<Vec<Waiting>> = const { RefCell::new(Vec::new()) };
    /// Emptied buffers of earlier passes (no allocation per pass).
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// The most buffers kept spare on a thread.
const SPARES: usize = 8;

/// The end of the pass: every link's messages written, or handed to its writer.
fn flush() {
    let waiting = WAITING.with(|w| std::mem::take(&mut *w.borrow_mut()));
    for Waiting { out, mut bytes } in waiting {
        out.push(&bytes, true);
        bytes.clear();
        SPARE.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < SPARES && bytes.capacity() <= KEEP_CAPACITY {
                s.push(bytes);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Let the pass end: its deferred flush runs.
    async fn end_of_pass() {
        while WAITING.with(|w| !w.borrow().is_empty()) {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn the_writer_takes_what_was_pushed_in_order_and_a_closed_link_takes_nothing() {
        let out = Outgoing::new();
        // Off a worker: straight to the writer.
        assert_eq!(out.queue(b"ab"), 2);
        assert_eq!(out.queue(b"cd"), 4);
        let mut buf = Vec::new();
        assert!(out.take(&mut buf).await);
        assert_eq!(buf, b"abcd");
        out.queue(b"ef");
        assert_eq!(out.queued(), 6);
        out.written(&mut buf);
        assert_eq!((out.queued(), buf.len()), (2, 0));
        out.close();
        assert_eq!(out.queued(), 0);
        assert!(!out.take(&mut buf).await);
        out.queue(b"gh");
        assert_eq!(out.queued(), 0);
    }

    #[tokio::test]
    async fn a_worker_writes_its_pass_to_the_socket_unless_bytes_are_ahead() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let (mut peer, _) = accepted.unwrap();
        let (_rd, wr) = client.unwrap().into_split();
        let out = Outgoing::new();
        out.attach(Arc::new(wr));
        let local = tokio::task::LocalSet::new();
        let _worker = crate::server::pass::enter_worker();
        // Two messages of one pass: one write, straight from the "worker".
        local
            .run_until(async {
                out.queue(b"one");
                out.queue(b"two");
                assert_eq!(out.queued(), 6, "counted when queued");
                end_of_pass().await;
            })
            .await;
        assert_eq!(out.queued(), 0);
        let mut got = [0u8; 6];
        tokio::io::AsyncReadExt::read_exact(&mut peer, &mut got).await.unwrap();
        assert_eq!(&got, b"onetwo");
        // Bytes waiting for the writer go first: the pass's messages join them.
        // (As `queue` off a worker: counted, then given to the writer.)
        out.queued.fetch_add(3, Ordering::Relaxed);
        out.push(b"old", false);
        local
            .run_until(async {
                out.queue(b"new");
                end_of_pass().await;
            })
            .await;
        let mut buf = Vec::new();
        assert!(out.take(&mut buf).await);
        assert_eq!(buf, b"oldnew");
        assert_eq!(out.queued(), 6);
    }
}
