//! The ledgers against a counting allocator of their own (unit tests run on the system
//! allocator): what a scope books, nesting, the figures `used_memory` is made of, and
//! [`Apart`] as a value, a future and a stream.

use std::alloc::{GlobalAlloc, Layout, System};

use super::super::{counted, total, Counting, TEST_LOCK};
use super::*;

static A: Counting<System> = Counting(System);

/// `used_memory` before the Lua heaps are taken off (other tests run scripts meanwhile).
fn used() -> isize {
    counted()
}

/// `n` bytes from the counting allocator, given back when dropped.
struct Block(*mut u8, usize);

fn block(n: usize) -> Block {
    // SAFETY: a non-zero size and a valid alignment.
    Block(unsafe { A.alloc(Layout::from_size_align(n, 8).unwrap()) }, n)
}

impl Block {
    fn grow(&mut self, n: usize) {
        // SAFETY: the block was allocated by `A` with this layout.
        self.0 = unsafe { A.realloc(self.0, Layout::from_size_align(self.1, 8).unwrap(), n) };
        self.1 = n;
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated by `A` with this layout, freed once.
        unsafe { A.dealloc(self.0, Layout::from_size_align(self.1, 8).unwrap()) }
    }
}

#[test]
fn a_scope_books_what_it_allocates_and_frees_there() {
    let _turn = TEST_LOCK.lock();
    let ledger = Ledger::default();
    let mut b = ledger.scope(|| block(100));
    assert_eq!(ledger.balance(), 100);
    // Outside the scope nothing is booked.
    let outside = block(50);
    assert_eq!(ledger.balance(), 100);
    ledger.scope(|| b.grow(300));
    assert_eq!(ledger.balance(), 300);
    ledger.scope(|| drop(b));
    assert_eq!(ledger.balance(), 0);
    drop(outside);
    assert_eq!(ledger.balance(), 0);
}

#[test]
fn nested_scopes_book_to_their_own_ledgers() {
    let _turn = TEST_LOCK.lock();
    let (outer, inner) = (Ledger::default(), Ledger::default());
    let (a, b, c) = outer.scope(|| {
        let a = block(10);
        let b = inner.scope(|| block(20));
        let c = block(30);
        (a, b, c)
    });
    assert_eq!((outer.balance(), inner.balance()), (40, 20));
    outer.scope(|| drop((a, b, c)));
    assert_eq!((outer.balance(), inner.balance()), (-20, 20));
}

#[test]
fn used_memory_leaves_out_what_live_ledgers_hold() {
    let _turn = TEST_LOCK.lock();
    let (base, held_before) = (used(), held());
    let data = block(10_000);
    assert_eq!(used(), base + 10_000);
    let ledger = Ledger::default();
    let tls = ledger.scope(|| block(1_000));
    assert_eq!((used(), held()), (base + 10_000, held_before + 1_000));
    let more = block(300);
    assert_eq!(used(), base + 10_300);
    // Freed outside its scope (an error the library returned, say): the figure is short by
    // it while the ledger lives, and exact again once the ledger is dropped.
    drop(tls);
    assert_eq!(used(), base + 9_300);
    drop(ledger);
    assert_eq!((used(), held()), (base + 10_300, held_before));
    drop((data, more));
    assert_eq!(used(), base);
}

#[test]
fn a_negative_balance_holds_nothing() {
    let _turn = TEST_LOCK.lock();
    let (held_before, total_before) = (held(), total());
    let ledger = Ledger::default();
    let outside = block(500);
    let inside = ledger.scope(|| block(200));
    ledger.scope(|| drop(outside));
    assert_eq!((ledger.balance(), held()), (-300, held_before));
    ledger.scope(|| drop(inside));
    drop(ledger);
    assert_eq!((held(), total()), (held_before, total_before));
}

#[test]
fn a_panic_inside_a_scope_leaves_the_thread_unmarked() {
    let _turn = TEST_LOCK.lock();
    let ledger = Ledger::default();
    let mut kept = None;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ledger.scope(|| {
            kept = Some(block(64));
            panic!("in the library");
        })
    }));
    assert!(r.is_err());
    assert_eq!(ledger.balance(), 64);
    LOCAL.with(|l| assert_eq!(l.slot.get() & APART, 0));
    let after = block(32);
    assert_eq!(ledger.balance(), 64);
    drop(after);
    ledger.scope(|| drop(kept));
    assert_eq!(ledger.balance(), 0);
}

#[test]
fn other_threads_are_not_booked() {
    let _turn = TEST_LOCK.lock();
    let ledger = Ledger::default();
    let kept = ledger.scope(|| {
        let mine = block(8);
        let theirs = std::thread::spawn(|| {
            let b = block(4_000);
            let p = b.0 as usize;
            std::mem::forget(b);
            p
        })
        .join()
        .unwrap();
        (mine, theirs)
    });
    assert_eq!(ledger.balance(), 8);
    drop(Block(kept.1 as *mut u8, 4_000));
    ledger.scope(|| drop(kept.0));
    assert_eq!(ledger.balance(), 0);
}

#[test]
fn an_apart_value_is_made_used_and_dropped_in_its_scope() {
    let _turn = TEST_LOCK.lock();
    let (base, held_before) = (used(), held());
    let mut v = Apart::new(|| block(1_000));
    assert_eq!((v.ledger().balance(), used(), held()), (1_000, base, held_before + 1_000));
    v.with(|b| b.grow(2_000));
    let v = v.map(|b| (b, block(24)));
    assert_eq!((v.ledger().balance(), used()), (2_024, base));
    drop(v);
    assert_eq!((used(), held()), (base, held_before));
}

#[test]
fn an_error_leaves_the_scope_and_is_counted() {
    let _turn = TEST_LOCK.lock();
    let (base, held_before) = (used(), held());
    let made = Apart::new(|| Err::<(), Block>(block(64)));
    assert_eq!(used(), base);
    let err = made.transpose().err().unwrap();
    assert_eq!((used(), held()), (base + 64, held_before));
    drop(err);
    assert_eq!(used(), base);
    let ok = Apart::new(|| Ok::<Block, ()>(block(64))).transpose().unwrap();
    assert_eq!((ok.ledger().balance(), used()), (64, base));
}

/// A handshake: allocates at each poll, done at the second, its result a block.
struct Handshake(Option<Block>);

impl Future for Handshake {
    type Output = Block;
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Block> {
        match self.0.take() {
            None => {
                self.0 = Some(block(100));
                Poll::Pending
            }
            Some(mut b) => {
                b.grow(150);
                Poll::Ready(b)
            }
        }
    }
}

#[test]
fn a_future_books_its_polls_and_its_result_keeps_the_ledger() {
    let _turn = TEST_LOCK.lock();
    let (base, held_before) = (used(), held());
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut f = Apart::new(|| Handshake(None));
    assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
    assert_eq!(f.ledger().balance(), 100);
    let Poll::Ready(done) = Pin::new(&mut f).poll(&mut cx) else { panic!("not done") };
    assert_eq!((done.ledger().balance(), f.ledger().balance(), used()), (150, 0, base));
    drop(f);
    assert_eq!(held(), held_before + 150);
    drop(done);
    assert_eq!((used(), held()), (base, held_before));
}

/// A stream whose writes are kept in blocks and whose reads use a scratch block.
struct Library(Vec<Block>);

impl AsyncWrite for Library {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.0.push(block(buf.len()));
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.clear();
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Library {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let scratch = block(4_096);
        buf.put_slice(b"+OK\r\n");
        drop(scratch);
        Poll::Ready(Ok(()))
    }
}

#[test]
fn a_stream_is_read_and_written_in_its_scope() {
    let _turn = TEST_LOCK.lock();
    let base = used();
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut s = Apart::new(|| Library(Vec::new()));
    let mut reply = block(16);
    assert!(Pin::new(&mut s).poll_write(&mut cx, b"PING\r\n").is_ready());
    assert!(Pin::new(&mut s).poll_write_vectored(&mut cx, &[IoSlice::new(b"GET k\r\n")]).is_ready());
    assert_eq!((s.ledger().balance(), used()), (13, base + 16));
    let mut space = [0u8; 16];
    let mut rb = ReadBuf::new(&mut space);
    assert!(Pin::new(&mut s).poll_read(&mut cx, &mut rb).is_ready());
    assert_eq!(rb.filled(), b"+OK\r\n");
    // Our own buffer, grown outside the library, stays counted.
    reply.grow(64);
    assert_eq!((s.ledger().balance(), used()), (13, base + 64));
    assert!(Pin::new(&mut s).poll_flush(&mut cx).is_ready());
    assert_eq!(s.ledger().balance(), 0);
    drop((s, reply));
    assert_eq!(used(), base);
}
