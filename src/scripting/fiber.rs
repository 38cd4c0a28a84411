//! Scripts run inline, on the connection's own worker thread, but on a stack of their own (a
//! stackful coroutine, `corosensei`), so a long script can step aside without losing its place.
//!
//! Why: handing every script to another thread (tokio's blocking pool, or a dedicated script
//! thread) costs two cross-thread wake-ups per script, which dominated short scripts (EVALSHA of
//! three commands ran at 0.05-0.2x Redis). Running inline costs a stack switch (nanoseconds).
//!
//! The catch is Redis's busy-script behaviour: while a script runs past `busy-reply-threshold`,
//! every other client must get `-BUSY` and may send SCRIPT KILL — including the clients served
//! by the same worker thread (with the default configuration of a 2-core machine there is only
//! one worker). Redis does it by processing events from its Lua hook. Here the Lua count hook
//! (every 100k instructions) calls [`step_aside`] once the script is past the threshold: the
//! coroutine suspends, the connection task yields to its runtime (the worker serves its other
//! connections: they see the script running before taking any lock and answer BUSY; SCRIPT KILL
//! sets the kill flag) and then resumes the script where it stopped. Locks held by the script
//! stay held on the same thread, and no other task on it takes them: the pipeline checks
//! the busy state before any lock, and the commands allowed while busy take none.
//!
//! The Lua debugger suspends its script the same way for its I/O ([`console`]): the task
//! driving the stack does the write or read on its client's connection (its
//! [`Console`]) and resumes the script with the outcome, so the debugger never touches a socket
//! and the worker serves its other connections while the debugger waits for its client.

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use std::cell::Cell;

use crate::session::console::{Console, ConsoleDone, ConsoleIo};

/// Why a script's stack is suspended.
enum Suspend {
    /// To let the worker serve its other tasks.
    StepAside,
    /// For the debugger's I/O on the client's connection.
    Console(ConsoleIo),
}

/// The running script's side of its stack: it suspends with a [`Suspend`] and is resumed with
/// the answer to a console request (None after stepping aside).
type ScriptYielder = Yielder<Option<ConsoleDone>, Suspend>;

/// The stack scripts run on (as large as the worker threads': results and libraries recurse).
/// Only reserved address space until touched.
const STACK_SIZE: usize = 64 << 20;

thread_local! {
    /// A stack kept for the next script of this thread.
    static SPARE: Cell<Option<DefaultStack>> = const { Cell::new(None) };
    /// The running script's yielder while it runs on this thread (null otherwise).
    static YIELDER: Cell<*const ScriptYielder> = const { Cell::new(std::ptr::null()) };
}

/// Drives a coroutine; if dropped unfinished (its task cancelled at shutdown), the coroutine is
/// leaked rather than unwound through Lua's C frames.
struct Fiber<R>(std::mem::ManuallyDrop<Coroutine<Option<ConsoleDone>, Suspend, R, DefaultStack>>);

impl<R> Drop for Fiber<R> {
    fn drop(&mut self) {
        // SAFETY: taken once, here, and never used again.
        let co = unsafe { std::mem::ManuallyDrop::take(&mut self.0) };
        if co.done() {
            SPARE.with(|s| s.set(Some(co.into_stack())));
        } else {
            std::mem::forget(co);
        }
    }
}

/// Run `f` on a script stack of this thread; each time it steps aside, let the runtime serve
/// the thread's other tasks before resuming it; each time it asks for console I/O, do it
/// through `console`. Falls back to running `f` directly if no stack can be had (its console
/// requests then find no client).
pub async fn run<R>(console: &mut impl Console, f: impl FnOnce() -> R) -> R {
    let stack = match SPARE.with(|s| s.take()) {
        Some(s) => s,
        None => match DefaultStack::new(STACK_SIZE) {
            Ok(s) => s,
            Err(_) => return f(),
        },
    };
    let body = move |y: &ScriptYielder, _: Option<ConsoleDone>| {
        YIELDER.with(|c| c.set(y));
        let r = f();
        YIELDER.with(|c| c.set(std::ptr::null()));
        r
    };
    // SAFETY: everything `body` borrows outlives this function, and the coroutine is either
    // driven to completion here or leaked (never resumed again) by `Fiber::drop`.
    let mut fiber = Fiber(std::mem::ManuallyDrop::new(unsafe { Coroutine::with_stack_unchecked(stack, body) }));
    let mut answer = None;
    loop {
        match fiber.0.resume(answer.take()) {
            CoroutineResult::Yield(Suspend::StepAside) => tokio::task::yield_now().await,
            // (Boxed: the debugger's reads and writes would size every script call's future,
            // which a connection's task holds; see `server::connection::serve`.)
            CoroutineResult::Yield(Suspend::Console(io)) => answer = Some(Box::pin(console.serve(io)).await),
            CoroutineResult::Return(r) => return r,
        }
    }
}

/// Suspend the running script with `why`; its driver's answer, None outside a script stack.
fn suspend(why: Suspend) -> Option<Option<ConsoleDone>> {
    let y = YIELDER.with(|c| c.replace(std::ptr::null()));
    if y.is_null() {
        return None;
    }
    // SAFETY: the pointer was set by the coroutine body running on this thread, which is the
    // caller's own (suspended only through this call): the yielder is alive.
    let answer = unsafe { (*y).suspend(why) };
    YIELDER.with(|c| c.set(y));
    Some(answer)
}

/// Called by a running script (its Lua hook): suspend it and let its worker serve other
/// clients, then continue. Does nothing outside a script stack (a script inside EXEC, tests).
pub fn step_aside() {
    suspend(Suspend::StepAside);
}

/// Called by the running script's debugger: suspend the script while the task driving its
/// stack does `io` on the client's connection, then continue with the outcome. None outside a
/// script stack (there is no client to talk to). The caller takes away whatever else of the
/// script other tasks of the thread must not see meanwhile (as around [`step_aside`]).
pub fn console(io: ConsoleIo) -> Option<ConsoleDone> {
    suspend(Suspend::Console(io)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::console::NoConsole;

    #[test]
    fn runs_and_steps_aside() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut n = 0;
        let r = rt.block_on(run(&mut NoConsole, || {
            for _ in 0..3 {
                n += 1;
                step_aside();
            }
            7
        }));
        assert_eq!((r, n), (7, 3));
        step_aside(); // outside a script stack: nothing happens
                      // The stack is kept for the next run.
        assert_eq!(rt.block_on(run(&mut NoConsole, || 1)), 1);
    }

    /// A console that answers every read with its next input, and records the writes.
    struct Scripted {
        inputs: Vec<Vec<u8>>,
        written: Vec<u8>,
    }

    impl Console for Scripted {
        async fn serve(&mut self, io: ConsoleIo) -> ConsoleDone {
            match io {
                ConsoleIo::Write { bytes, .. } => {
                    self.written.extend_from_slice(&bytes);
                    ConsoleDone::Written
                }
                ConsoleIo::Read { .. } if self.inputs.is_empty() => ConsoleDone::Closed,
                ConsoleIo::Read { .. } => ConsoleDone::Input(self.inputs.remove(0)),
            }
        }
    }

    #[test]
    fn console_requests_are_served_by_the_driver() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut scripted = Scripted { inputs: vec![b"s".to_vec()], written: Vec::new() };
        let within = std::time::Duration::from_millis(1);
        let answers = rt.block_on(run(&mut scripted, || {
            let w = console(ConsoleIo::Write { bytes: b"log".to_vec(), within });
            step_aside();
            let r1 = console(ConsoleIo::Read { within });
            let r2 = console(ConsoleIo::Read { within });
            (w, r1, r2)
        }));
        assert_eq!(
            answers,
            (Some(ConsoleDone::Written), Some(ConsoleDone::Input(b"s".to_vec())), Some(ConsoleDone::Closed))
        );
        assert_eq!(scripted.written, b"log");
        // Outside a script stack there is no client.
        assert_eq!(console(ConsoleIo::Read { within }), None);
    }
}
