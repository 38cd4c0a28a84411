//! Non-blocking I/O on a connection's [`Stream`] for the [`Outbox`](super::outbox::Outbox) and
//! the connection loop, which wait for readiness and then read or write only what is ready
//! (so a client that does not read never makes its task wait).
//!
//! A stream kind that buffers inside the library (TLS) must report what it holds: plaintext
//! already decrypted makes `readable` ready at once, records not yet written make
//! `has_unflushed` true (the loop then waits for `writable` and pumps again), and its writes
//! are one poll without a waker (Pending is WouldBlock).

use std::io::{self, IoSlice};

use super::listen::Stream;

impl Stream {
    /// Wait until a read may make progress.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.readable().await,
            #[cfg(unix)]
            Stream::Unix(s) => s.readable().await,
        }
    }

    /// Wait until a write may make progress.
    pub async fn writable(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.writable().await,
            #[cfg(unix)]
            Stream::Unix(s) => s.writable().await,
        }
    }

    /// Bytes the stream accepted but has not written to the socket yet (none for TCP and Unix
    /// sockets).
    pub fn has_unflushed(&self) -> bool {
        false
    }

    /// Write what the stream takes now; WouldBlock when it takes nothing.
    pub fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.try_write(buf),
        }
    }

    /// Vectored [`Stream::try_write`].
    pub fn try_write_vectored(&mut self, iov: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write_vectored(iov),
            #[cfg(unix)]
            Stream::Unix(s) => s.try_write_vectored(iov),
        }
    }

    /// Push what the stream buffers to the socket as far as it takes it now.
    pub fn try_flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
