//! Client eviction (`maxmemory-clients`, Redis 7.0): every connection publishes what it holds
//! (query buffer, replies waiting to be sent, its transaction's queued commands, watched keys,
//! subscriptions, its fixed state) in its handle — CLIENT LIST's `tot-mem` — and keeps the
//! server's total up to date; when normal and Pub/Sub clients together hold more than the
//! limit, the biggest ones are closed first (Redis's evictClients: largest buckets first)
//! until the total is under it again, with Redis's log line and INFO's `evicted_clients`.
//! Clients with CLIENT NO-EVICT ON and replica links are never evicted.
//!
//! When, as in Redis: publishing memory never evicts by itself. Eviction runs before each
//! command a client sends (processCommand), and when a worker's turn ends after its replies
//! were written (beforeSleep: the connection that finds no other task ready), with the cron
//! as a backstop. So a client that just sent a request gets its reply before it can be
//! evicted for the memory its reading took, unless an earlier client's command evicts it.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::outbox::Outbox;
use super::{log, Server};
use crate::session::{Client, ClientHandle};

/// Redis never lets the limit go under 128 KB, so a bad setting cannot lock everyone out.
const MIN_LIMIT: usize = 128 * 1024;

/// What every connection costs before it holds anything (its state, handle, task and
/// buffers' bookkeeping), in the spirit of Redis's `zmalloc_size(c)`.
pub fn fixed_cost() -> usize {
    std::mem::size_of::<Client>() + std::mem::size_of::<ClientHandle>() + 1024
}

/// The limit in bytes for the configured value (bytes, or a percentage of maxmemory stored
/// negated, as the configuration keeps `N%`); 0: off.
pub fn limit_of(value: i64, maxmemory: usize) -> usize {
    let limit = if value < 0 {
        if maxmemory == 0 {
            return 0;
        }
        (maxmemory as f64 * (-value) as f64 / 100.0) as usize
    } else {
        value as usize
    };
    if limit == 0 {
        0
    } else {
        limit.max(MIN_LIMIT)
    }
}

/// A connection's memory, as Redis's getClientMemoryUsage adds it up.
pub fn client_memory(server: &Server, qbuf_capacity: usize, out: &Outbox, client: &Client) -> usize {
    let mut mem = fixed_cost() + qbuf_capacity + out.memory();
    if let Some(m) = &client.multi {
        mem += m.commands.iter().map(|argv| argv.iter().map(|a| a.len() + 32).sum::<usize>() + 24).sum::<usize>();
    }
    mem += client.watched.iter().map(|(_, k, _)| k.len() + 48).sum::<usize>();
    let subs = &client.subs;
    mem += (subs.channels.len() + subs.patterns.len() + subs.shard_channels.len()) * 48;
    if client.tracking.as_ref().is_some_and(|t| t.opts.bcast) {
        mem += server.tracking.prefix_memory(client.id());
    }
    mem
}

/// Publish a connection's memory (CLIENT LIST's tot-mem) and keep the server's total (see
/// [`enforce`] for when that evicts).
pub fn update(server: &Server, handle: &ClientHandle, mem: usize) {
    update_with_view(server, handle, mem, handle.view_memory_base());
}

/// [`update`] when the caller knows the view's memory apart from output (what
/// `Client::sync_view_with` returned, the view unchanged since).
pub fn update_with_view(server: &Server, handle: &ClientHandle, mem: usize, view_base: usize) {
    // Never less than CLIENT LIST's tot-mem shows, so no client is seen over the limit unevicted.
    let mem = mem.max(view_base + crate::metrics::obuf::omem(handle.meter.pending()));
    // Usually unchanged since the last batch: then neither the handle nor the server's total
    // (a line every worker writes) is written. A lowered limit is enforced by CONFIG SET.
    if handle.mem.load(Ordering::Relaxed) == mem {
        return;
    }
    let before = handle.mem.swap(mem, Ordering::Relaxed);
    let total = &server.clients_mem;
    if mem >= before {
        total.fetch_add(mem - before, Ordering::Relaxed);
    } else {
        let _ = total.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| Some(t.saturating_sub(before - mem)));
    }
}

/// Evict clients if they hold more than `maxmemory-clients` together (before a command, at the
/// end of a worker's turn, from the cron, and right after the limit is lowered, as Redis's
/// CONFIG SET does); true when it evicted any. Two relaxed loads when under the limit.
#[inline]
pub fn enforce(server: &Server) -> bool {
    enforce_if(server, || true)
}

/// [`enforce`] when `when` (asked only when over the limit) says it is time.
#[inline]
pub fn enforce_if(server: &Server, when: impl FnOnce() -> bool) -> bool {
    let limit = server.maxmemory_clients.load(Ordering::Relaxed);
    limit > 0 && server.clients_mem.load(Ordering::Relaxed) >= limit && when() && evict(server, limit)
}

/// A connection is gone: its memory leaves the total (and the closing clients', when client
/// eviction closed it).
pub fn forget(server: &Server, handle: &ClientHandle) {
    update_total_only(&server.clients_mem, handle.mem.swap(0, Ordering::Relaxed));
    update_total_only(&server.clients_mem_closing, handle.evicted_mem.swap(0, Ordering::Relaxed));
}

fn update_total_only(total: &AtomicUsize, gone: usize) {
    let _ = total.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| Some(t.saturating_sub(gone)));
}

/// Redis's memory buckets: clients under 32 KB share the first, then one per power of two.
fn bucket(mem: usize) -> u32 {
    (usize::BITS - mem.leading_zeros()).saturating_sub(15)
}

/// Close the biggest evictable clients until the total is under `limit`: the biggest bucket
/// first and, within a bucket, the oldest client first (Redis keeps a bucket's clients in the
/// order they entered it and evicts from its head). True when it closed any.
#[cold]
fn evict(server: &Server, limit: usize) -> bool {
    let mut candidates: Vec<std::sync::Arc<ClientHandle>> =
        server.clients.lock().values().filter(|h| !h.is_killed() && !h.view.lock().no_evict).cloned().collect();
    candidates.sort_by_key(|h| (std::cmp::Reverse(bucket(h.mem.load(Ordering::Relaxed))), h.id));
    let mut total = server.clients_mem.load(Ordering::Relaxed);
    let mut evicted = false;
    for h in candidates {
        if total < limit {
            return evicted;
        }
        let info = h.info_line(None);
        if h.kill() {
            log::notice(&format!("Evicting client: {info}"));
            server.stats.evicted_clients.fetch_add(1, Ordering::Relaxed);
            // Counted as gone now; until its task ends and frees it, key eviction does not
            // count it either (`clients_mem_closing`).
            let mem = h.mem.swap(0, Ordering::Relaxed);
            update_total_only(&server.clients_mem, mem);
            h.evicted_mem.store(mem, Ordering::Relaxed);
            server.clients_mem_closing.fetch_add(mem, Ordering::Relaxed);
            total = total.saturating_sub(mem);
            evicted = true;
        }
    }
    if total >= limit {
        log::warning("Over client maxmemory after evicting all evictable clients");
    }
    evicted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_as_redis_reads_them() {
        assert_eq!(limit_of(0, 0), 0);
        assert_eq!(limit_of(1000, 0), MIN_LIMIT);
        assert_eq!(limit_of(1048576, 0), 1 << 20);
        assert_eq!(limit_of(-10, 0), 0);
        assert_eq!(limit_of(-10, 100 << 20), 10 << 20);
        assert_eq!(limit_of(-1, 1 << 20), MIN_LIMIT);
    }

    #[test]
    fn buckets_as_redis_sorts_clients() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(22_400), 0);
        assert_eq!(bucket(32_767), 0);
        assert_eq!(bucket(32_768), 1);
        assert_eq!(bucket(65_535), 1);
        assert_eq!(bucket(65_536), 2);
        assert_eq!(bucket(1 << 30), 16);
    }
}
