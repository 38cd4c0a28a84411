//! Handing queued bus messages to the links' writer tasks. A message queued on a worker thread
//! (a PUBLISH, a CLUSTER command) waits for the end of the worker's pass (`server::pass`),
//! concatenated with the others the pass queued for the same link: one wake-up of the writer
//! and one write for all of them, as Redis writes a link's buffer once per event-loop
//! iteration. Inside an EXEC that is after the EXEC, so INFO in the same EXEC still counts
//! the messages in mem_cluster_links. Elsewhere (the bus tasks, the cron) it goes at once.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

/// What a link's writer gets: the bytes of one or more whole messages.
pub type Sender = UnboundedSender<Vec<u8>>;

/// The messages of this pass for one link.
struct Waiting {
    tx: Sender,
    /// The link's count of bytes not yet written (already counting these).
    queued: Arc<AtomicUsize>,
    bytes: Vec<u8>,
}

thread_local! {
    static WAITING: RefCell<Vec<Waiting>> = const { RefCell::new(Vec::new()) };
}

/// Hand `bytes` (already counted in `queued`) to the writer behind `tx`: now, or at the end
/// of this worker's pass.
pub fn hand_over(tx: &Sender, queued: &Arc<AtomicUsize>, bytes: Vec<u8>) {
    let first = WAITING.with(|w| w.borrow().is_empty());
    if first && crate::server::pass::after_pass(flush).is_err() {
        return send(tx, queued, bytes);
    }
    WAITING.with(|w| {
        let mut w = w.borrow_mut();
        match w.iter_mut().find(|x| x.tx.same_channel(tx)) {
            Some(x) => x.bytes.extend_from_slice(&bytes),
            None => w.push(Waiting { tx: tx.clone(), queued: queued.clone(), bytes }),
        }
    });
}

/// The end of the pass: every link's messages to its writer.
fn flush() {
    let waiting = WAITING.with(|w| std::mem::take(&mut *w.borrow_mut()));
    for x in waiting {
        send(&x.tx, &x.queued, x.bytes);
    }
}

fn send(tx: &Sender, queued: &AtomicUsize, bytes: Vec<u8>) {
    let len = bytes.len();
    // A link freed meanwhile: nothing will write (or count) these.
    if tx.send(bytes).is_err() {
        queued.fetch_sub(len, Ordering::Relaxed);
    }
}
