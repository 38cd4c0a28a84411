//! Client-side caching (CLIENT TRACKING), as Redis's tracking.c does it.
//!
//! * **Default mode**: the keys a tracking client reads are remembered in a table
//!   key → client ids (keys are database-agnostic, as in Redis). When such a key is modified,
//!   every remembered client is sent an invalidation and the key leaves the table.
//! * **BCAST mode**: nothing is remembered; clients register prefixes, and the keys modified
//!   under a prefix are collected and sent as one message per prefix and client once the
//!   connection that modified them has run its batch of pipelined requests, or before it waits
//!   (Redis sends them once per event-loop cycle, in beforeSleep).
//! * Messages go to the client's own push queue (RESP3 `invalidate` pushes), or to the queue of
//!   the client it redirects to (which encodes them as `__redis__:invalidate` Pub/Sub messages
//!   when it speaks RESP2). A redirect target that has gone away breaks the redirection: the
//!   tracking client is told with a `tracking-redir-broken` push.
//! * The table is bounded by `tracking-table-max-keys`: keys over the limit are invalidated.
//!
//! Locking: keys are remembered and invalidated while the command holds its shard locks (so a
//! read can never miss the invalidation of a concurrent write); the state's own mutex is taken
//! after shard locks and never the other way round.

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::keyspace::ModifiedBy;
use crate::pubsub::{Push, Subscriber};

/// A client's tracking options (CLIENT TRACKING ON ...).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
}

/// A tracking client as the connection sees it (its own copy of the options).
#[derive(Clone, Debug, Default)]
pub struct ClientTracking {
    pub opts: Options,
    /// Client id invalidations are redirected to (0: none).
    pub redirect: u64,
    /// CLIENT CACHING was given for the next command.
    pub caching: bool,
    /// The redirect target is gone (set by whoever tried to send to it).
    pub broken: Arc<AtomicBool>,
}

impl ClientTracking {
    /// Whether the next read-only command's keys are remembered (OPTIN needs CACHING yes,
    /// OPTOUT is cancelled by CACHING no; BCAST remembers nothing).
    pub fn remembers(&self) -> bool {
        let o = &self.opts;
        let optin_ok = !o.optin || self.caching;
        let optout_ok = !o.optout || !self.caching;
        !o.bcast && optin_ok && optout_ok
    }
}

struct Tracked {
    opts: Options,
    redirect: u64,
    own: Subscriber,
    redirect_to: Option<Subscriber>,
    broken: Arc<AtomicBool>,
    prefixes: Vec<Bytes>,
    /// The client speaks RESP3 (how a flush's null is written to the client it redirects
    /// to; kept up to date by HELLO, see [`Tracking::set_protocol`]).
    resp3: bool,
}

#[derive(Default)]
struct Prefix {
    clients: BTreeSet<u64>,
    /// Keys modified since the last broadcast → the client that wrote it last (0: none; see
    /// [`ModifiedBy::writer`]).
    keys: BTreeMap<Bytes, u64>,
}

#[derive(Default)]
struct State {
    table: HashMap<Bytes, BTreeSet<u64>>,
    items: usize,
    clients: HashMap<u64, Tracked>,
    prefixes: BTreeMap<Bytes, Prefix>,
    /// Consecutive limit enforcements that could not get under the limit (raises the effort).
    limit_rounds: usize,
}

/// The server-wide tracking state.
#[derive(Default)]
pub struct Tracking {
    /// Number of clients with tracking on (INFO's tracking_clients; zero makes every hook free).
    clients: AtomicUsize,
    keys: AtomicUsize,
    bcast_pending: AtomicBool,
    /// Connections running a batch that will send the BCAST messages (see [`Tracking::defer_bcast`]).
    deferring: AtomicUsize,
    /// `tracking-table-max-keys` (0: unlimited).
    pub max_keys: AtomicUsize,
    state: Mutex<State>,
}

/// See [`Tracking::defer_bcast`].
pub struct DeferBcast<'a>(&'a Tracking);

impl Drop for DeferBcast<'_> {
    /// The batch is done (or about to wait): its messages go out, with those of the clients
    /// that left them to it.
    fn drop(&mut self) {
        self.0.deferring.fetch_sub(1, Ordering::SeqCst);
        self.0.flush_bcast();
    }
}

/// Redis's check that a client's BCAST prefixes do not overlap (one is a prefix of another).
fn overlaps(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

fn send(t: &Tracked, keys: Option<Vec<Bytes>>) {
    if t.redirect != 0 {
        match &t.redirect_to {
            Some(target) if !target.is_closed() => {
                target.push(Push::Invalidate { keys, redirected: true, null_resp3: t.resp3 })
            }
            _ => {
                t.broken.store(true, Ordering::SeqCst);
                t.own.push(Push::RedirBroken { id: t.redirect });
            }
        }
    } else {
        // Written only if the client speaks RESP3 when its connection writes it out (after a
        // HELLO 3 later in the same transaction, say), so its null is always RESP3's.
        t.own.push(Push::Invalidate { keys, redirected: false, null_resp3: true });
    }
}

impl Tracking {
    /// Whether any client tracks keys (the hooks cost nothing otherwise).
    #[inline]
    pub fn any(&self) -> bool {
        self.clients.load(Ordering::Relaxed) > 0
    }

    /// Memory a BCAST client's prefixes hold (client eviction counts it, as Redis counts the
    /// nodes of a client's prefix tree).
    pub fn prefix_memory(&self, id: u64) -> usize {
        let st = self.state.lock();
        st.clients.get(&id).map_or(0, |t| t.prefixes.iter().map(|p| p.len() + 48).sum())
    }

    /// Check a BCAST client's new prefixes against each other and its existing ones, with
    /// Redis's error text.
    pub fn check_prefixes(&self, id: u64, new: &[Bytes]) -> Result<(), String> {
        let st = self.state.lock();
        let existing: &[Bytes] = st.clients.get(&id).map_or(&[], |t| &t.prefixes);
        for (i, p) in new.iter().enumerate() {
            // The first in byte order, as Redis walks the client's prefix tree.
            if let Some(old) = existing.iter().filter(|old| overlaps(old, p)).min() {
                return Err(format!(
                    "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(old)
                ));
            }
            if let Some(other) = new[i + 1..].iter().find(|q| overlaps(p, q)) {
                return Err(format!(
                    "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(other)
                ));
            }
        }
        Ok(())
    }

    /// CLIENT TRACKING ON (also when already on: options are replaced, BCAST prefixes added).
    pub fn enable(
        &self,
        id: u64,
        mode: &ClientTracking,
        own: Subscriber,
        redirect_to: Option<Subscriber>,
        prefixes: &[Bytes],
        resp3: bool,
    ) {
        let mut st = self.state.lock();
        let st = &mut *st;
        let t = st.clients.entry(id).or_insert_with(|| {
            self.clients.fetch_add(1, Ordering::Relaxed);
            Tracked {
                opts: mode.opts,
                redirect: 0,
                own,
                redirect_to: None,
                broken: Default::default(),
                prefixes: Vec::new(),
                resp3,
            }
        });
        // A new entry, or CLIENT TRACKING ON again: the options given now apply.
        t.opts = mode.opts;
        t.redirect = mode.redirect;
        t.redirect_to = redirect_to;
        t.broken = mode.broken.clone();
        t.resp3 = resp3;
        if mode.opts.bcast {
            let empty = [Bytes::new()];
            let wanted = if prefixes.is_empty() { &empty[..] } else { prefixes };
            for p in wanted {
                if !t.prefixes.contains(p) {
                    t.prefixes.push(p.clone());
                }
                st.prefixes.entry(p.clone()).or_default().clients.insert(id);
            }
        }
    }

    /// HELLO switched a client's protocol: a flush's null is written in the protocol the
    /// tracking client speaks at the time (Redis's shared.null[c->resp]).
    pub fn set_protocol(&self, id: u64, resp3: bool) {
        if let Some(t) = self.state.lock().clients.get_mut(&id) {
            t.resp3 = resp3;
        }
    }

    /// CLIENT TRACKING OFF, or the client disconnected. Its ids left in the table are skipped
    /// when their keys are invalidated (Redis does no cleanup either).
    pub fn disable(&self, id: u64) {
        let mut st = self.state.lock();
        let Some(t) = st.clients.remove(&id) else { return };
        self.clients.fetch_sub(1, Ordering::Relaxed);
        for p in &t.prefixes {
            if let Some(prefix) = st.prefixes.get_mut(p) {
                prefix.clients.remove(&id);
                if prefix.clients.is_empty() {
                    st.prefixes.remove(p);
                }
            }
        }
    }

    /// The prefixes of a BCAST client (CLIENT TRACKINGINFO), in Redis's (sorted) order.
    pub fn prefixes_of(&self, id: u64) -> Vec<Bytes> {
        let mut p = self.state.lock().clients.get(&id).map(|t| t.prefixes.clone()).unwrap_or_default();
        p.sort();
        p
    }

    /// Remember that client `id` read these keys.
    pub fn remember<'k>(&self, id: u64, keys: impl Iterator<Item = &'k Bytes>) {
        let mut st = self.state.lock();
        for key in keys {
            let ids = match st.table.get_mut(&key[..]) {
                Some(ids) => ids,
                None => st.table.entry(crate::protocol::detached(key)).or_default(),
            };
            if ids.insert(id) {
                st.items += 1;
            }
        }
        self.keys.store(st.table.len(), Ordering::Relaxed);
    }

    /// A key was modified: invalidate it for the clients that read it, and queue it for the
    /// BCAST prefixes.
    pub fn invalidate(&self, key: &[u8], by: ModifiedBy) {
        let mut st = self.state.lock();
        self.invalidate_locked(&mut st, key, by, true);
        self.keys.store(st.table.len(), Ordering::Relaxed);
    }

    /// Redis's trackingInvalidateKey: `bcast` is false where the key only leaves the table
    /// (tracking-table-max-keys), which the BCAST prefixes are not told of.
    fn invalidate_locked(&self, st: &mut State, key: &[u8], by: ModifiedBy, bcast: bool) {
        let mut queued = false;
        for (p, prefix) in st.prefixes.iter_mut().filter(|_| bcast) {
            if key.starts_with(p) {
                prefix.keys.insert(Bytes::copy_from_slice(key), by.writer);
                queued = true;
            }
        }
        if queued {
            self.bcast_pending.store(true, Ordering::Release);
        }
        let Some(ids) = st.table.remove(key) else { return };
        st.items -= ids.len();
        for id in ids {
            let Some(t) = st.clients.get(&id) else { continue };
            if t.opts.bcast || (t.opts.noloop && id == by.current) {
                continue;
            }
            send(t, Some(vec![Bytes::copy_from_slice(key)]));
        }
    }

    /// Send the keys collected for the BCAST prefixes (see the module's doc for when).
    pub fn flush_bcast(&self) {
        if !self.bcast_pending.swap(false, Ordering::AcqRel) {
            return;
        }
        let mut st = self.state.lock();
        let st = &mut *st;
        for prefix in st.prefixes.values_mut() {
            if prefix.keys.is_empty() {
                continue;
            }
            let keys = std::mem::take(&mut prefix.keys);
            for id in &prefix.clients {
                let Some(t) = st.clients.get(id) else { continue };
                let list: Vec<Bytes> = keys
                    .iter()
                    .filter(|(_, modifier)| !(t.opts.noloop && **modifier == *id))
                    .map(|(k, _)| k.clone())
                    .collect();
                if !list.is_empty() {
                    send(t, Some(list));
                }
            }
        }
    }

    /// A connection runs a batch of pipelined requests, and sends the BCAST messages when it is
    /// done: while the guard lives, the blocked clients its commands woke (which it waits for)
    /// leave the messages to it, as Redis serves them within the writer's event-loop cycle,
    /// whose keys go out in one message. Dropping the guard sends them (always: with batches
    /// overlapping without end, waiting for the last one would never send them).
    pub fn defer_bcast(&self) -> DeferBcast<'_> {
        self.deferring.fetch_add(1, Ordering::SeqCst);
        DeferBcast(self)
    }

    /// Whether a connection will send the BCAST messages at the end of its batch.
    pub fn bcast_deferred(&self) -> bool {
        self.deferring.load(Ordering::SeqCst) > 0
    }

    /// FLUSHDB / FLUSHALL: every tracking client is told to drop its whole cache (a null
    /// invalidation) and the table is emptied. `flusher` is the client that runs the command:
    /// Redis defers its own null to after the command (tracking_pending_keys).
    pub fn invalidate_all(&self, flusher: u64) {
        // Keys remembered for clients that have since turned tracking off are dropped too.
        if !crate::keyspace::KeyObserver::active(self) {
            return;
        }
        let mut st = self.state.lock();
        // In the order the clients connected (client ids grow), as Redis walks its client list,
        // the flusher's own last.
        let mut ids: Vec<u64> = st.clients.keys().copied().collect();
        ids.sort_unstable_by_key(|&id| (id == flusher, id));
        for id in ids {
            send(&st.clients[&id], None);
        }
        st.table.clear();
        st.items = 0;
        self.keys.store(0, Ordering::Relaxed);
    }

    /// Invalidate keys until the table is within `tracking-table-max-keys`. The effort grows
    /// each time one round was not enough, as in Redis. `current`: the client whose command is
    /// about to run (0: none), not told in NOLOOP mode.
    pub fn enforce_limit(&self, current: u64) {
        let max = self.max_keys.load(Ordering::Relaxed);
        if max == 0 || self.keys.load(Ordering::Relaxed) <= max {
            return;
        }
        let mut st = self.state.lock();
        let mut effort = 100 * (st.limit_rounds + 1);
        while st.table.len() > max && effort > 0 {
            effort -= 1;
            let Some(key) = st.table.keys().next().cloned() else { break };
            self.invalidate_locked(&mut st, &key, ModifiedBy { current, writer: 0 }, false);
        }
        st.limit_rounds = if st.table.len() > max { st.limit_rounds + 1 } else { 0 };
        self.keys.store(st.table.len(), Ordering::Relaxed);
    }

    /// INFO: (tracking_clients, tracking_total_keys, tracking_total_items, tracking_total_prefixes).
    pub fn stats(&self) -> (usize, usize, usize, usize) {
        let st = self.state.lock();
        (st.clients.len(), st.table.len(), st.items, st.prefixes.len())
    }
}

impl crate::keyspace::KeyObserver for Tracking {
    fn active(&self) -> bool {
        // Keys read by clients that have since turned tracking off still leave the table when
        // modified (Redis keeps invalidating once its table exists: INFO's tracking_total_keys).
        self.any() || self.keys.load(Ordering::Relaxed) > 0
    }

    fn key_modified(&self, key: &[u8], by: ModifiedBy) {
        self.invalidate(key, by);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriber(id: u64) -> (Subscriber, crate::pubsub::PushReceiver) {
        let (tx, rx) = crate::pubsub::queue();
        (Subscriber::new(id, tx, Arc::new(crate::metrics::obuf::Meter::default()), Arc::new(|| {})), rx)
    }

    fn keys_of(p: Push) -> Option<Vec<Bytes>> {
        match p {
            Push::Invalidate { keys, .. } => keys,
            other => panic!("unexpected push {other:?}"),
        }
    }

    #[test]
    fn default_mode_invalidates_once_and_honours_noloop() {
        let tr = Tracking::default();
        let (s1, mut r1) = subscriber(1);
        let mode = ClientTracking { opts: Options { noloop: true, ..Default::default() }, ..Default::default() };
        tr.enable(1, &mode, s1, None, &[], true);
        let k = Bytes::from_static(b"k");
        tr.remember(1, [&k].into_iter());
        assert_eq!(tr.stats(), (1, 1, 1, 0));
        // Modified by the client itself: NOLOOP suppresses the message, the key still leaves.
        tr.invalidate(b"k", ModifiedBy::client(1));
        assert!(r1.try_recv().is_err());
        assert_eq!(tr.stats().1, 0);
        tr.remember(1, [&k].into_iter());
        tr.invalidate(b"k", ModifiedBy::client(2));
        assert_eq!(keys_of(r1.try_recv().unwrap()), Some(vec![k.clone()]));
        // Only once: the key is no longer tracked.
        tr.invalidate(b"k", ModifiedBy::client(2));
        assert!(r1.try_recv().is_err());
    }

    #[test]
    fn bcast_batches_per_prefix_and_flush_sends_null() {
        let tr = Tracking::default();
        let (s1, mut r1) = subscriber(1);
        let mode = ClientTracking { opts: Options { bcast: true, ..Default::default() }, ..Default::default() };
        let prefixes = [Bytes::from_static(b"a:"), Bytes::from_static(b"b:")];
        assert!(tr.check_prefixes(1, &[Bytes::from_static(b"ab"), Bytes::from_static(b"a")]).is_err());
        tr.enable(1, &mode, s1, None, &prefixes, true);
        assert!(tr.check_prefixes(1, &[Bytes::from_static(b"a")]).unwrap_err().contains("existing prefix 'a:'"));
        for k in [&b"a:1"[..], b"a:2", b"b:1", b"c:1"] {
            tr.invalidate(k, ModifiedBy::default());
        }
        tr.flush_bcast();
        let first = keys_of(r1.try_recv().unwrap()).unwrap();
        let second = keys_of(r1.try_recv().unwrap()).unwrap();
        assert_eq!(first, vec![Bytes::from_static(b"a:1"), Bytes::from_static(b"a:2")]);
        assert_eq!(second, vec![Bytes::from_static(b"b:1")]);
        assert!(r1.try_recv().is_err());
        tr.invalidate_all(0);
        assert_eq!(keys_of(r1.try_recv().unwrap()), None);
        tr.disable(1);
        assert_eq!(tr.stats(), (0, 0, 0, 0));
    }

    #[test]
    fn deferring_batch_sends_the_bcast_keys_when_done() {
        let tr = Tracking::default();
        let (s1, mut r1) = subscriber(1);
        let mode = ClientTracking { opts: Options { bcast: true, ..Default::default() }, ..Default::default() };
        tr.enable(1, &mode, s1, None, &[], true);
        let batch = tr.defer_bcast();
        assert!(tr.bcast_deferred());
        tr.invalidate(b"x", ModifiedBy::default());
        tr.invalidate(b"y", ModifiedBy::default());
        assert!(r1.try_recv().is_err());
        drop(batch);
        assert!(!tr.bcast_deferred());
        assert_eq!(keys_of(r1.try_recv().unwrap()), Some(vec![Bytes::from_static(b"x"), Bytes::from_static(b"y")]));
        assert!(r1.try_recv().is_err());
    }

    #[test]
    fn broken_redirect_is_reported_and_limit_evicts() {
        let tr = Tracking::default();
        let (own, mut r_own) = subscriber(1);
        let (target, r_target) = subscriber(2);
        drop(r_target);
        let mode = ClientTracking { redirect: 2, ..Default::default() };
        tr.enable(1, &mode, own, Some(target), &[], true);
        let keys: Vec<Bytes> = (0..250).map(|i| Bytes::from(format!("k{i}"))).collect();
        tr.remember(1, keys.iter());
        tr.max_keys.store(1, Ordering::Relaxed);
        tr.enforce_limit(0);
        tr.enforce_limit(0);
        tr.enforce_limit(0);
        assert_eq!(tr.stats().1, 1);
        assert!(matches!(r_own.try_recv(), Ok(Push::RedirBroken { id: 2 })));
        assert!(mode.broken.load(Ordering::SeqCst));
    }
}
