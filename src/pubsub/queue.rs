//! A connection's push queue: the [`Push`] messages other connections and threads hand it
//! (Pub/Sub messages, invalidations, MONITOR lines, wake-ups). Every idle connection polls it
//! in its wait for input, once per request on an unpipelined connection: with nothing queued,
//! a poll is an atomic load and a waker slot compared under an uncontended lock (a tokio
//! channel's poll took about 300 instructions there: its block list and its atomic waker).

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::Push;

/// Queue slots kept once the queue is drained.
const KEEP_CAPACITY: usize = 16;

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<Push>>,
    /// Messages in `queue` (read without its lock).
    len: AtomicUsize,
    /// The receiving task's waker, taken by the send that wakes it.
    waker: Mutex<Option<Waker>>,
    /// The receiver is gone.
    closed: AtomicBool,
}

/// The sending side (any number of clones).
#[derive(Clone)]
pub struct PushSender(Arc<Shared>);

/// The receiving side: its connection.
pub struct PushReceiver(Arc<Shared>);

/// Nothing queued.
#[derive(Debug, PartialEq, Eq)]
pub struct Empty;

/// A new, empty queue.
pub fn queue() -> (PushSender, PushReceiver) {
    let shared = Arc::new(Shared::default());
    (PushSender(shared.clone()), PushReceiver(shared))
}

impl PushSender {
    /// Queue a message and wake the receiver; false (the message dropped) when it is gone.
    pub fn send(&self, msg: Push) -> bool {
        if self.is_closed() {
            return false;
        }
        {
            let mut q = self.0.queue.lock();
            q.push_back(msg);
            self.0.len.store(q.len(), Ordering::Release);
        }
        // After the message is visible: a receiver that registers later finds it when it
        // checks again (see `poll_recv`).
        let waker = self.0.waker.lock().take();
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::Acquire)
    }
}

impl PushReceiver {
    /// The oldest queued message, without waiting.
    pub fn try_recv(&mut self) -> Result<Push, Empty> {
        if self.0.len.load(Ordering::Acquire) == 0 {
            return Err(Empty);
        }
        let mut q = self.0.queue.lock();
        let msg = q.pop_front().ok_or(Empty)?;
        self.0.len.store(q.len(), Ordering::Release);
        // A burst (a mass eviction's invalidations, say) grew the queue: give the memory back
        // once it is drained, as it counts in used_memory and nothing else accounts for it.
        if q.is_empty() && q.capacity() > KEEP_CAPACITY {
            *q = VecDeque::new();
        }
        Ok(msg)
    }

    /// Give the queue's storage back if nothing is queued: an idle connection keeps none (the
    /// first message, the cron's wake-up say, allocates room for four; 416 bytes a connection).
    pub fn release_if_empty(&mut self) {
        let mut q = self.0.queue.lock();
        if q.is_empty() && q.capacity() > 0 {
            *q = VecDeque::new();
        }
    }

    /// The oldest queued message, or Pending with the task's waker registered for the next.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Push> {
        if let Ok(msg) = self.try_recv() {
            return Poll::Ready(msg);
        }
        {
            let mut slot = self.0.waker.lock();
            if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *slot = Some(cx.waker().clone());
            }
        }
        // A message sent before the waker was registered found no waker to wake: it is
        // visible now (the sender queued it before it looked at the waker slot).
        match self.try_recv() {
            Ok(msg) => Poll::Ready(msg),
            Err(Empty) => Poll::Pending,
        }
    }
}

impl Drop for PushReceiver {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.queue.lock().clear();
        self.0.len.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn an_idle_queue_gives_its_storage_back_only_when_empty() {
        let (tx, mut rx) = queue();
        tx.send(Push::Wake);
        tx.send(Push::Wake);
        rx.release_if_empty();
        assert!(matches!(rx.try_recv(), Ok(Push::Wake)), "a queued message is kept");
        assert!(tx.0.queue.lock().capacity() > 0);
        assert!(rx.try_recv().is_ok());
        rx.release_if_empty();
        assert_eq!(tx.0.queue.lock().capacity(), 0);
        assert!(tx.send(Push::Wake) && rx.try_recv().is_ok(), "the queue still works");
    }

    #[test]
    fn a_drained_burst_gives_its_memory_back() {
        let (tx, mut rx) = queue();
        for _ in 0..1000 {
            tx.send(Push::Wake);
        }
        assert!(tx.0.queue.lock().capacity() >= 1000);
        while rx.try_recv().is_ok() {}
        assert!(tx.0.queue.lock().capacity() <= KEEP_CAPACITY);
    }

    #[test]
    fn messages_arrive_in_order_and_wake_a_registered_receiver() {
        let (tx, mut rx) = queue();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_recv(&mut cx).is_pending());
        assert!(tx.send(Push::Wake));
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the send woke the receiver");
        assert!(tx.send(Push::RedirBroken { id: 7 }));
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "no waker registered since");
        assert!(matches!(rx.poll_recv(&mut cx), Poll::Ready(Push::Wake)));
        assert!(matches!(rx.try_recv(), Ok(Push::RedirBroken { id: 7 })));
        assert_eq!(rx.try_recv().err(), Some(Empty));
        assert!(rx.poll_recv(&mut cx).is_pending());
        drop(rx);
        assert!(tx.is_closed());
        assert!(!tx.send(Push::Wake), "nobody to receive it");
    }

    #[test]
    fn sends_from_another_thread_all_arrive() {
        let (tx, mut rx) = queue();
        let senders: Vec<_> = (0..4)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        tx.send(Push::RedirBroken { id: t * 1000 + i });
                    }
                })
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        let mut last = [None::<u64>; 4];
        let mut n = 0;
        while let Ok(Push::RedirBroken { id }) = rx.try_recv() {
            let t = (id / 1000) as usize;
            assert!(last[t].is_none_or(|l| l < id), "one sender's messages stay in order");
            last[t] = Some(id);
            n += 1;
        }
        assert_eq!(n, 4000);
    }
}
