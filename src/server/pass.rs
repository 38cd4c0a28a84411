//! Work a worker thread leaves for the end of its current pass over the tasks ready to run:
//! Redis's beforeSleep, once per event-loop iteration, rather than once per command. The first
//! piece of work deferred in a pass spawns a local task, which the worker's run queue (first in,
//! first out) reaches only after every task that was ready before it. An EXEC never yields, so
//! what its commands defer waits for its end; a script that steps aside lets the pass finish
//! (as Redis's processEventsWhileBlocked does).
//!
//! Used for a cluster bus link's writes: a worker's PUBLISHes of one pass go out in one write
//! per link, which the worker makes itself (see `cluster::outgoing`).

use std::cell::{Cell, RefCell};

type Later = Box<dyn FnOnce()>;

thread_local! {
    /// This thread is a worker, inside its runtime (which runs local tasks).
    static WORKER: Cell<bool> = const { Cell::new(false) };
    /// What waits for the end of the pass.
    static LATER: RefCell<Vec<Later>> = const { RefCell::new(Vec::new()) };
}

/// While this lives (in a worker's first task), [`after_pass`] defers on its thread. Not
/// before the runtime runs nor once its tasks are being dropped: no local task could be
/// spawned then.
#[must_use = "the thread is a worker while this lives"]
pub struct Worker(());

/// The calling thread is a worker inside its runtime until the returned guard is dropped.
pub fn enter_worker() -> Worker {
    WORKER.with(|w| w.set(true));
    Worker(())
}

impl Drop for Worker {
    fn drop(&mut self) {
        WORKER.with(|w| w.set(false));
    }
}

/// Run `f` on this worker once the tasks ready now have run. Off a worker thread: Err(f), for
/// the caller to do it now.
pub fn after_pass<F: FnOnce() + 'static>(f: F) -> Result<(), F> {
    if !WORKER.with(|w| w.get()) {
        return Err(f);
    }
    let first = LATER.with(|l| {
        let mut l = l.borrow_mut();
        l.push(Box::new(f));
        l.len() == 1
    });
    if first {
        tokio::task::spawn_local(async { run_later() });
    }
    Ok(())
}

/// The end of the pass: run what waited, in order (and whatever that defers in turn).
fn run_later() {
    loop {
        let batch = LATER.with(|l| std::mem::take(&mut *l.borrow_mut()));
        if batch.is_empty() {
            return;
        }
        for f in batch {
            f();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn off_a_worker_the_work_comes_back() {
        std::thread::spawn(|| assert!(after_pass(|| {}).is_err())).join().unwrap();
    }

    #[test]
    fn deferred_work_runs_after_the_tasks_ready_before_it() {
        std::thread::spawn(|| {
            let worker = enter_worker();
            let seen = Rc::new(RefCell::new(Vec::new()));
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let local = tokio::task::LocalSet::new();
            let s = seen.clone();
            local.block_on(&rt, async move {
                let (a, b, c) = (s.clone(), s.clone(), s.clone());
                let first = tokio::task::spawn_local(async move {
                    let later = a.clone();
                    assert!(after_pass(move || later.borrow_mut().push("later")).is_ok());
                    a.borrow_mut().push("a");
                });
                let second = tokio::task::spawn_local(async move {
                    let later = b.clone();
                    // A second deferral in the same pass joins the first.
                    assert!(after_pass(move || later.borrow_mut().push("later too")).is_ok());
                    b.borrow_mut().push("b");
                });
                first.await.unwrap();
                second.await.unwrap();
                tokio::task::yield_now().await;
                c.borrow_mut().push("next pass");
            });
            assert_eq!(*seen.borrow(), ["a", "b", "later", "later too", "next pass"]);
            drop(worker);
            assert!(after_pass(|| {}).is_err(), "deferred after the worker's scope");
        })
        .join()
        .unwrap();
    }
}
