//! Non-blocking I/O on a connection's [`Stream`] for the [`Outbox`](super::outbox::Outbox) and
//! the connection loop, which wait for readiness and then read or write only what is ready
//! (so a client that does not read never makes its task wait). TCP and Unix sockets map to
//! tokio's read/write readiness and `try_write`; a TLS stream is polled once without a waker, and
//! what TLS keeps buffered (plaintext already decrypted, records not yet written) is reported
//! so that the loop neither sleeps on it nor forgets it.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;

use super::listen::Stream;

impl Stream {
    /// Ready when a read may make progress (the connection's wait polls it beside its push
    /// queue without a `select!`: one waker slot per direction, no waiter list to lock).
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_read_ready(cx),
            #[cfg(unix)]
            Stream::Unix(s) => s.poll_read_ready(cx),
            Stream::Tls(s) => {
                // Decrypted plaintext (or the peer's close_notify) is there to read now.
                if !s.get().get_ref().1.wants_read() {
                    return Poll::Ready(Ok(()));
                }
                s.get().get_ref().0.poll_read_ready(cx)
            }
            Stream::TlsClient(s) => {
                if !s.get().get_ref().1.wants_read() {
                    return Poll::Ready(Ok(()));
                }
                s.get().get_ref().0.poll_read_ready(cx)
            }
        }
    }

    /// Ready when a write may make progress.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_write_ready(cx),
            #[cfg(unix)]
            Stream::Unix(s) => s.poll_write_ready(cx),
            Stream::Tls(s) => s.get().get_ref().0.poll_write_ready(cx),
            Stream::TlsClient(s) => s.get().get_ref().0.poll_write_ready(cx),
        }
    }

    /// Wait until a read may make progress.
    pub async fn readable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_read_ready(cx)).await
    }

    /// Wait until a write may make progress.
    pub async fn writable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_write_ready(cx)).await
    }

    /// TLS records accepted but not written to the socket yet.
    pub fn has_unflushed(&self) -> bool {
        match self {
            Stream::Tls(s) => s.get().get_ref().1.wants_write(),
            Stream::TlsClient(s) => s.get().get_ref().1.wants_write(),
            _ => false,
        }
    }

    /// Write what the stream takes now; WouldBlock when it takes nothing.
    pub fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.try_write(buf),
            _ => self.poll_once(|s, cx| s.poll_write(cx, buf)),
        }
    }

    /// Vectored [`Stream::try_write`].
    pub fn try_write_vectored(&mut self, iov: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write_vectored(iov),
            #[cfg(unix)]
            Stream::Unix(s) => s.try_write_vectored(iov),
            _ => self.poll_once(|s, cx| s.poll_write_vectored(cx, iov)),
        }
    }

    /// Push TLS's buffered records to the socket as far as it takes them now.
    pub fn try_flush(&mut self) -> io::Result<()> {
        if !self.has_unflushed() {
            return Ok(());
        }
        match self.poll_once(|s, cx| s.poll_flush(cx).map_ok(|()| 0)) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            r => r.map(|_| ()),
        }
    }

    fn poll_once(
        &mut self,
        f: impl FnOnce(Pin<&mut Stream>, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> io::Result<usize> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match f(Pin::new(self), &mut cx) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}
