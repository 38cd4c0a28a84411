//! Work an atomic unit (EXEC, a script) holds back until it ends: what Redis does once its event
//! loop's iteration is over rather than at once, such as writing a cluster bus link's send
//! buffer (INFO inside the same EXEC still counts the queued messages).
//!
//! Per thread: a unit runs on one worker thread from start to end. The thread's other tasks run
//! meanwhile only while a script steps aside (past busy-reply-threshold, or for the Lua
//! debugger's I/O); the work held so far is released then, as Redis's
//! processEventsWhileBlocked writes the links, and the tasks that run meanwhile hold nothing of
//! the script's.

use std::cell::{Cell, RefCell};

type Held = Box<dyn FnOnce()>;

thread_local! {
    /// How many units are open on this thread (EXEC running a script: two).
    static OPEN: Cell<u32> = const { Cell::new(0) };
    /// What they hold, in the order it was deferred.
    static HELD: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
}

/// An open unit: when the last one on the thread closes (is dropped), what was held runs.
#[must_use = "the unit closes when this is dropped"]
pub struct Unit(());

/// Open a unit on this thread.
pub fn open() -> Unit {
    OPEN.with(|o| o.set(o.get() + 1));
    Unit(())
}

impl Drop for Unit {
    fn drop(&mut self) {
        let left = OPEN.with(|o| {
            let n = o.get().saturating_sub(1);
            o.set(n);
            n
        });
        if left == 0 {
            release();
        }
    }
}

/// Whether a unit is open on this thread (work should then be [`hold`]).
pub fn holding() -> bool {
    OPEN.with(|o| o.get() > 0)
}

/// Run `f` when the units open on this thread have closed (at once if none is open).
pub fn hold(f: impl FnOnce() + 'static) {
    if holding() {
        HELD.with(|h| h.borrow_mut().push(Box::new(f)));
    } else {
        f();
    }
}

/// The running script steps aside: release what it held and close its units for the thread's
/// other tasks. The count to give back to [`step_back`] when it resumes.
pub fn step_aside() -> u32 {
    let open = OPEN.with(|o| o.replace(0));
    release();
    open
}

/// The script resumes: its units are open again.
pub fn step_back(open: u32) {
    OPEN.with(|o| o.set(open));
}

/// Run what is held (and whatever that defers in turn), in order.
fn release() {
    loop {
        let batch = HELD.with(|h| std::mem::take(&mut *h.borrow_mut()));
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

    type Seen = Rc<RefCell<Vec<u32>>>;

    /// Work that records `n` in `seen` when it runs.
    fn note(seen: &Seen, n: u32) -> impl FnOnce() {
        let s = seen.clone();
        move || s.borrow_mut().push(n)
    }

    #[test]
    fn outside_a_unit_work_runs_at_once() {
        let seen = Seen::default();
        hold(note(&seen, 1));
        assert_eq!(*seen.borrow(), [1]);
        assert!(!holding());
    }

    #[test]
    fn work_waits_for_the_outermost_unit_to_close() {
        let seen = Seen::default();
        let outer = open();
        hold(note(&seen, 1));
        {
            let _inner = open();
            hold(note(&seen, 2));
        }
        assert!(seen.borrow().is_empty(), "released when an inner unit closed");
        drop(outer);
        assert_eq!(*seen.borrow(), [1, 2]);
        assert!(!holding());
    }

    #[test]
    fn a_script_stepping_aside_releases_its_work_and_holds_nothing_of_others() {
        let seen = Seen::default();
        let script = open();
        hold(note(&seen, 1));
        let open_units = step_aside();
        assert_eq!(*seen.borrow(), [1]);
        // Another task of the thread meanwhile: its own work is not held by the script's unit.
        assert!(!holding());
        hold(note(&seen, 2));
        assert_eq!(*seen.borrow(), [1, 2]);
        step_back(open_units);
        hold(note(&seen, 3));
        assert_eq!(*seen.borrow(), [1, 2]);
        drop(script);
        assert_eq!(*seen.borrow(), [1, 2, 3]);
    }
}
