//! The process's timers: every sleep, timeout and interval of the server is registered with one
//! small runtime of its own (a time driver on a `ferrous-timer` thread), whichever thread awaits it.
//!
//! Why not each runtime's own time driver: a worker runtime with a time driver reads the clock
//! and walks its timer wheel at every wake-up, that is once per request on an unpipelined
//! connection (about 450 instructions of ~6,800 per GET at -P 1 under bench/callgrind.sh), while
//! a worker's timers are rare (blocking-command timeouts, idle timeouts, DEBUG SLEEP). So the
//! worker runtimes are built without one and their timers live here; a timer firing wakes its
//! task across threads, which costs nothing on the request path.

use std::future::IntoFuture;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::{Instant, Interval, Sleep, Timeout};

static TIMERS: OnceLock<Option<Handle>> = OnceLock::new();

/// The timer runtime, started on first use; it lives as long as the process. None when its
/// thread could not start (resources exhausted): timers then use the caller's runtime.
fn timers() -> Option<&'static Handle> {
    TIMERS
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            let spawned = std::thread::Builder::new().name("ferrous-timer".into()).spawn(move || {
                match tokio::runtime::Builder::new_current_thread().enable_time().build() {
                    Ok(rt) => {
                        let _ = tx.send(Some(rt.handle().clone()));
                        rt.block_on(std::future::pending::<()>());
                    }
                    Err(_) => {
                        let _ = tx.send(None);
                    }
                }
            });
            spawned.ok().and_then(|_| rx.recv().ok().flatten())
        })
        .as_ref()
}

/// [`tokio::time::sleep`] on the timer runtime.
pub fn sleep(d: Duration) -> Sleep {
    let _on = timers().map(Handle::enter);
    tokio::time::sleep(d)
}

/// [`tokio::time::sleep_until`] on the timer runtime.
pub fn sleep_until(at: Instant) -> Sleep {
    let _on = timers().map(Handle::enter);
    tokio::time::sleep_until(at)
}

/// [`tokio::time::timeout`] on the timer runtime.
pub fn timeout<F: IntoFuture>(d: Duration, f: F) -> Timeout<F::IntoFuture> {
    let _on = timers().map(Handle::enter);
    tokio::time::timeout(d, f)
}

/// [`tokio::time::interval`] on the timer runtime.
pub fn interval(period: Duration) -> Interval {
    let _on = timers().map(Handle::enter);
    tokio::time::interval(period)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// A runtime without a time driver (as a worker's) can still sleep and time out.
    #[test]
    fn timers_work_on_a_runtime_without_a_time_driver() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
        rt.block_on(async {
            let start = std::time::Instant::now();
            super::sleep(Duration::from_millis(20)).await;
            assert!(start.elapsed() >= Duration::from_millis(20));
            let never = std::future::pending::<()>();
            assert!(super::timeout(Duration::from_millis(5), never).await.is_err());
            let mut tick = super::interval(Duration::from_millis(1));
            tick.tick().await;
            tick.tick().await;
        });
    }
}
