//! Memory booked apart from `used_memory`: what the TLS library allocates for the TLS context
//! and each connection, which Redis never counts (OpenSSL allocates outside zmalloc).
//!
//! Each owner of such memory (a connection, the TLS context, the session cache) keeps a
//! [`Ledger`]: every call into the library on its behalf runs in the ledger's
//! [`scope`](Ledger::scope), which marks the thread so that the allocator (`add_slow`) also
//! adds what the thread allocates and frees there to a thread-local sum; on leaving, the sum
//! is booked to the ledger. The ledger's balance is then what the owner's library calls
//! allocated and did not free. Only the balance's positive part is left out of
//! `used_memory` (it can never be made negative), and all of it comes back into the figure
//! when the ledger is dropped: whatever the library allocated for an owner and left behind
//! is counted from then on, so nothing drifts as owners come and go.
//!
//! The marks nest (the session cache is used inside a connection's handshake): an inner
//! scope's bytes go to its own ledger only. [`Apart`] holds a value with its ledger: made,
//! used and dropped in its scope.

use std::future::Future;
use std::io::{self, IoSlice, Read, Write};
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{own_slot, Slot, APART, LOCAL, STRIPES};

/// The ledgers' positive balances, added up on the booking thread's stripe (a stripe may go
/// below zero when a ledger booked on one thread is released on another; the sum never does).
static HELD: [Slot; STRIPES] = [const { Slot(AtomicIsize::new(0)) }; STRIPES];

/// Bytes held apart now: the sum of the live ledgers' positive balances.
pub(super) fn held() -> usize {
    HELD.iter().fold(0isize, |sum, s| sum.wrapping_add(s.0.load(Ordering::Relaxed))).max(0) as usize
}

fn hold(bytes: isize) {
    if bytes != 0 {
        let slot = LOCAL.with(own_slot);
        HELD[slot].0.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// What the library calls made for one owner allocated and have not freed.
#[derive(Debug, Default)]
pub struct Ledger {
    balance: AtomicIsize,
}

impl Ledger {
    /// Run `f` (a call into the TLS library), booking what it allocates and frees on this
    /// thread to this ledger.
    pub fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _mark = Mark::enter(self);
        f()
    }

    /// The balance: bytes allocated in this ledger's scopes less bytes freed there.
    pub fn balance(&self) -> isize {
        self.balance.load(Ordering::Relaxed)
    }

    fn book(&self, bytes: isize) {
        if bytes == 0 {
            return;
        }
        let old = self.balance.fetch_add(bytes, Ordering::Relaxed);
        let new = old.wrapping_add(bytes);
        hold(new.max(0) - old.max(0));
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        hold(-(*self.balance.get_mut()).max(0));
    }
}

/// The thread's mark while a scope runs; leaving (or unwinding) books the scope's bytes and
/// restores the outer scope's state.
struct Mark<'a> {
    ledger: &'a Ledger,
    slot: usize,
    outer: isize,
}

impl<'a> Mark<'a> {
    fn enter(ledger: &'a Ledger) -> Self {
        LOCAL.with(|l| {
            let stripe = own_slot(l);
            let slot = l.slot.replace(stripe | APART);
            Mark { ledger, slot, outer: l.apart.replace(0) }
        })
    }
}

impl Drop for Mark<'_> {
    fn drop(&mut self) {
        let bytes = LOCAL.with(|l| {
            l.slot.set(self.slot);
            l.apart.replace(self.outer)
        });
        self.ledger.book(bytes);
    }
}

/// A value of the TLS library (a connection, a handshake in progress, the TLS context) with
/// its ledger: made in the ledger's scope, used there through [`Apart::with`] and the I/O
/// traits, dropped there.
#[derive(Debug)]
pub struct Apart<T> {
    value: ManuallyDrop<T>,
    ledger: Ledger,
}

impl<T> Apart<T> {
    /// What `make` returns, with what making it allocated booked to a new ledger.
    pub fn new(make: impl FnOnce() -> T) -> Self {
        let ledger = Ledger::default();
        let value = ledger.scope(make);
        Apart { value: ManuallyDrop::new(value), ledger }
    }

    /// The value, for calls that allocate nothing (or whose allocations are the caller's:
    /// a copy made from it is counted).
    pub fn get(&self) -> &T {
        &self.value
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Run `f` on the value in the ledger's scope.
    pub fn with<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        let Apart { value, ledger } = self;
        ledger.scope(|| f(value))
    }

    /// Turn the value into another one, in the ledger's scope, keeping the ledger.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Apart<U> {
        let (value, ledger) = self.into_parts();
        let value = ledger.scope(|| f(value));
        Apart { value: ManuallyDrop::new(value), ledger }
    }

    fn into_parts(self) -> (T, Ledger) {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used again nor dropped, so the value and the ledger are
        // each moved out exactly once.
        unsafe { (ManuallyDrop::take(&mut this.value), std::ptr::read(&this.ledger)) }
    }
}

impl<T, E> Apart<Result<T, E>> {
    /// The value, or the error: an error leaves the library, and its ledger is closed (its
    /// bytes counted from now on, like whatever else the failed call left behind).
    pub fn transpose(self) -> Result<Apart<T>, E> {
        let (value, ledger) = self.into_parts();
        match value {
            Ok(v) => Ok(Apart { value: ManuallyDrop::new(v), ledger }),
            Err(e) => Err(e),
        }
    }
}

impl<T> Drop for Apart<T> {
    fn drop(&mut self) {
        let Apart { value, ledger } = self;
        // SAFETY: the value is dropped here once, and never used again.
        ledger.scope(|| unsafe { ManuallyDrop::drop(value) });
    }
}

/// A handshake: polled in the ledger's scope; its result keeps the ledger.
impl<F: Future + Unpin> Future for Apart<F> {
    type Output = Apart<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.with(|f| Pin::new(f).poll(cx)) {
            Poll::Ready(v) => {
                Poll::Ready(Apart { value: ManuallyDrop::new(v), ledger: std::mem::take(&mut this.ledger) })
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Apart<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.get_mut().with(|s| Pin::new(s).poll_read(cx, buf))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Apart<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().with(|s| Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().with(|s| Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.value.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().with(|s| Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().with(|s| Pin::new(s).poll_shutdown(cx))
    }
}

impl<T: Read> Read for Apart<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.with(|s| s.read(buf))
    }
}

impl<T: Write> Write for Apart<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.with(|s| s.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.with(|s| s.flush())
    }
}

#[cfg(test)]
mod tests;
