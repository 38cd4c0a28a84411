//! Routing: an immutable snapshot of who serves each slot (rebuilt whenever the cluster state
//! changes, read without a lock by every command), and Redis's getNodeByQuery decision on it —
//! serve here, or answer MOVED / ASK / TRYAGAIN / CROSSSLOT / CLUSTERDOWN.

use super::node::NodeId;
use super::state::State;
use super::SLOTS;

const NONE: u16 = u16::MAX;

/// Where a node is reached (for MOVED/ASK).
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub ip: String,
    pub hostname: String,
    /// Its client ports, plain and TLS (see `Node::client_ports`).
    pub port: u16,
    pub tls_port: u16,
}

/// The routing snapshot.
pub struct Route {
    pub ok: bool,
    pub myself: u16,
    /// Our master when we are a replica.
    pub my_master: Option<u16>,
    pub slots: Box<[u16]>,
    pub migrating: Box<[u16]>,
    pub importing: Box<[u16]>,
    pub nodes: Vec<Endpoint>,
    pub allow_reads_when_down: bool,
    pub allow_pubsubshard_when_down: bool,
    /// 0 ip, 1 hostname, 2 unknown-endpoint.
    pub preferred_endpoint: u32,
}

impl Route {
    /// A snapshot of the state.
    pub fn build(st: &State) -> Route {
        let index: std::collections::HashMap<NodeId, u16> =
            st.nodes.keys().enumerate().map(|(i, id)| (*id, i as u16)).collect();
        let map = |v: &[Option<NodeId>]| -> Box<[u16]> {
            v.iter().map(|o| o.and_then(|id| index.get(&id).copied()).unwrap_or(NONE)).collect()
        };
        let me = st.me();
        Route {
            ok: st.ok,
            myself: index[&st.myself],
            my_master: me.slaveof.filter(|_| me.is_slave()).and_then(|m| index.get(&m).copied()),
            slots: map(&st.slots),
            migrating: map(&st.migrating_to),
            importing: map(&st.importing_from),
            nodes: st
                .nodes
                .values()
                .map(|n| {
                    let (port, tls_port) = n.client_ports(st.cfg.tls_cluster);
                    Endpoint { ip: n.ip.clone(), hostname: n.hostname.clone(), port, tls_port }
                })
                .collect(),
            allow_reads_when_down: st.cfg.allow_reads_when_down,
            allow_pubsubshard_when_down: st.cfg.allow_pubsubshard_when_down,
            preferred_endpoint: st.cfg.preferred_endpoint,
        }
    }

    /// The snapshot of a node that is not in a cluster yet (nothing served: every key is
    /// "not served").
    pub fn empty() -> Route {
        Route {
            ok: false,
            myself: 0,
            my_master: None,
            slots: vec![NONE; SLOTS].into(),
            migrating: vec![NONE; SLOTS].into(),
            importing: vec![NONE; SLOTS].into(),
            nodes: vec![Endpoint { ip: String::new(), hostname: String::new(), port: 0, tls_port: 0 }],
            allow_reads_when_down: false,
            allow_pubsubshard_when_down: true,
            preferred_endpoint: 0,
        }
    }

    /// The port a client connected over TLS or not reaches node `n` on (Redis 7.2's
    /// getNodeClientPort with shouldReturnTlsInfo).
    fn client_port(&self, n: u16, tls: bool) -> u16 {
        let e = &self.nodes[n as usize];
        if tls {
            e.tls_port
        } else {
            e.port
        }
    }

    /// The endpoint text of a redirection (getPreferredEndpoint).
    fn endpoint(&self, n: u16) -> String {
        let e = &self.nodes[n as usize];
        match self.preferred_endpoint {
            1 if !e.hostname.is_empty() => e.hostname.clone(),
            1 => "?".into(),
            2 => String::new(),
            _ => e.ip.clone(),
        }
    }

    /// Whether the cluster state, the slots this node (or its master) serves or those it
    /// imports differ: what [`Route::blocked_redirect`] depends on.
    pub fn serving_changed(&self, new: &Route) -> bool {
        let mine = |r: &Route, s: usize| r.slots[s] == r.myself || r.my_master.is_some_and(|m| r.slots[s] == m);
        let imports = |r: &Route, s: usize| r.importing[s] != NONE;
        self.ok != new.ok || (0..SLOTS).any(|s| mine(self, s) != mine(new, s) || imports(self, s) != imports(new, s))
    }

    /// Redis's clusterRedirectBlockedClientIfNeeded: the error that unblocks a client blocked
    /// on a key of `slot`, or None while it may wait on (this node serves or imports the slot).
    /// `replica_read`: a READONLY client blocked in a read-only command, which a replica of the
    /// slot's master serves. `tls`: redirections name the TLS ports.
    pub fn blocked_redirect(&self, slot: u16, replica_read: bool, tls: bool) -> Option<String> {
        if !self.ok {
            return Some("-CLUSTERDOWN The cluster is down".into());
        }
        let s = slot as usize;
        let mut n = self.slots[s];
        if replica_read && self.my_master == Some(n) {
            n = self.myself;
        }
        if n == self.myself || self.importing[s] != NONE {
            return None;
        }
        if n == NONE {
            return Some("-CLUSTERDOWN Hash slot not served".into());
        }
        Some(format!("-MOVED {slot} {}:{}", self.endpoint(n), self.client_port(n, tls)))
    }

    /// Whether this node serves `slot` for a plain command (the common, fast case).
    pub fn serves(&self, slot: u16) -> bool {
        let s = slot as usize;
        self.ok && self.slots[s] == self.myself && self.migrating[s] == NONE && self.importing[s] == NONE
    }
}

/// One command's part in a routing decision (a transaction has several).
pub struct Query<'a> {
    /// The slots of its keys (or shard channels), in argument order, with the key itself.
    pub keys: Vec<(u16, &'a [u8])>,
    pub write: bool,
}

/// What else the decision depends on.
pub struct QueryCtx {
    /// The client sent ASKING, or the command is flagged `asking` (RESTORE-ASKING).
    pub asking: bool,
    /// The client sent READONLY.
    pub readonly: bool,
    /// SSUBSCRIBE / SUNSUBSCRIBE / SPUBLISH.
    pub pubsubshard: bool,
    /// MIGRATE.
    pub migrate: bool,
    /// The client is connected over TLS (redirections name the TLS ports then).
    pub tls: bool,
    /// The command (or the transaction) writes.
    pub write: bool,
}

/// Redis's getNodeByQuery: Ok(()) to run the command here, Err(the error reply) otherwise.
/// `exists` says whether a key is here (asked only for slots being migrated or imported).
pub fn route(
    r: &Route,
    queries: &[Query],
    ctx: &QueryCtx,
    exists: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<(), String> {
    let mut first: Option<(u16, &[u8])> = None;
    let mut n = NONE;
    let (mut migrating, mut importing, mut multiple_keys) = (false, false, false);
    let (mut missing, mut existing) = (0usize, 0usize);
    for q in queries {
        for &(slot, key) in &q.keys {
            match first {
                None => {
                    first = Some((slot, key));
                    n = r.slots[slot as usize];
                    if n == NONE {
                        return Err("-CLUSTERDOWN Hash slot not served".into());
                    }
                    if n == r.myself && r.migrating[slot as usize] != NONE {
                        migrating = true;
                    } else if r.importing[slot as usize] != NONE {
                        importing = true;
                    }
                }
                Some((fslot, fkey)) => {
                    if slot != fslot {
                        return Err("-CROSSSLOT Keys in request don't hash to the same slot".into());
                    }
                    if importing && !multiple_keys && fkey != key {
                        multiple_keys = true;
                    }
                }
            }
            if (migrating || importing) && !ctx.pubsubshard {
                if exists(key) {
                    existing += 1;
                } else {
                    missing += 1;
                }
            }
        }
    }
    let Some((slot, _)) = first else { return Ok(()) };
    if !r.ok {
        if ctx.pubsubshard {
            if !r.allow_pubsubshard_when_down {
                return Err("-CLUSTERDOWN The cluster is down".into());
            }
        } else if !r.allow_reads_when_down {
            return Err("-CLUSTERDOWN The cluster is down".into());
        } else if ctx.write {
            return Err("-CLUSTERDOWN The cluster is down and only accepts read commands".into());
        }
    }
    if (migrating || importing) && ctx.migrate {
        return Ok(());
    }
    if migrating && missing > 0 {
        if existing > 0 {
            return Err("-TRYAGAIN Multiple keys request during rehashing of slot".into());
        }
        let to = r.migrating[slot as usize];
        return Err(format!("-ASK {slot} {}:{}", r.endpoint(to), r.client_port(to, ctx.tls)));
    }
    if importing && ctx.asking {
        if multiple_keys && missing > 0 {
            return Err("-TRYAGAIN Multiple keys request during rehashing of slot".into());
        }
        return Ok(());
    }
    if (ctx.readonly || ctx.pubsubshard) && !ctx.write && r.my_master == Some(n) {
        return Ok(());
    }
    if n != r.myself {
        return Err(format!("-MOVED {slot} {}:{}", r.endpoint(n), r.client_port(n, ctx.tls)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route3() -> Route {
        let mut r = Route::empty();
        r.ok = true;
        r.nodes = vec![
            Endpoint { ip: "127.0.0.1".into(), hostname: String::new(), port: 7000, tls_port: 7100 },
            Endpoint { ip: "127.0.0.1".into(), hostname: "h1".into(), port: 7001, tls_port: 7101 },
        ];
        for s in 0..SLOTS {
            r.slots[s] = if s < 8192 { 0 } else { 1 };
        }
        r
    }

    fn q(keys: &[(u16, &'static [u8])], write: bool) -> Query<'static> {
        Query { keys: keys.to_vec(), write }
    }

    fn ctx(write: bool) -> QueryCtx {
        QueryCtx { asking: false, readonly: false, pubsubshard: false, migrate: false, tls: false, write }
    }

    #[test]
    fn redirections_name_the_port_of_the_clients_connection_type() {
        let r = route3();
        let tls = QueryCtx { tls: true, ..ctx(false) };
        let key = [(9000u16, &b"k"[..])];
        let moved = |c: &QueryCtx| route(&r, &[q(&key, false)], c, &mut |_| true).unwrap_err();
        assert_eq!(moved(&ctx(false)), "-MOVED 9000 127.0.0.1:7001");
        assert_eq!(moved(&tls), "-MOVED 9000 127.0.0.1:7101");
    }

    #[test]
    fn redirections() {
        let mut r = route3();
        let mut none = |_: &[u8]| false;
        assert_eq!(route(&r, &[q(&[(5, b"a")], false)], &ctx(false), &mut none), Ok(()));
        assert_eq!(
            route(&r, &[q(&[(9000, b"a")], false)], &ctx(false), &mut none),
            Err("-MOVED 9000 127.0.0.1:7001".into())
        );
        assert_eq!(
            route(&r, &[q(&[(5, b"a"), (6, b"b")], false)], &ctx(false), &mut none),
            Err("-CROSSSLOT Keys in request don't hash to the same slot".into())
        );
        r.preferred_endpoint = 1;
        assert_eq!(route(&r, &[q(&[(9000, b"a")], false)], &ctx(false), &mut none), Err("-MOVED 9000 h1:7001".into()));
        r.preferred_endpoint = 0;
        // Migrating slot 5 to node 1: missing keys are asked there, some missing is TRYAGAIN.
        r.migrating[5] = 1;
        assert_eq!(route(&r, &[q(&[(5, b"a")], true)], &ctx(true), &mut none), Err("-ASK 5 127.0.0.1:7001".into()));
        let mut only_a = |k: &[u8]| k == b"a";
        assert_eq!(route(&r, &[q(&[(5, b"a")], true)], &ctx(true), &mut only_a), Ok(()));
        assert_eq!(
            route(&r, &[q(&[(5, b"a"), (5, b"b")], true)], &ctx(true), &mut only_a),
            Err("-TRYAGAIN Multiple keys request during rehashing of slot".into())
        );
        // Importing slot 9000 from node 1: only with ASKING.
        r.importing[9000] = 1;
        assert!(route(&r, &[q(&[(9000, b"a")], true)], &ctx(true), &mut none).is_err());
        let asking = QueryCtx { asking: true, ..ctx(true) };
        assert_eq!(route(&r, &[q(&[(9000, b"a")], true)], &asking, &mut none), Ok(()));
        // No keys: always served; cluster down: refused.
        assert_eq!(route(&r, &[q(&[], true)], &ctx(true), &mut none), Ok(()));
        r.ok = false;
        assert_eq!(
            route(&r, &[q(&[(5, b"a")], false)], &ctx(false), &mut only_a),
            Err("-CLUSTERDOWN The cluster is down".into())
        );
        r.allow_reads_when_down = true;
        assert_eq!(route(&r, &[q(&[(1, b"x")], false)], &ctx(false), &mut none), Ok(()));
        assert_eq!(
            route(&r, &[q(&[(1, b"x")], true)], &ctx(true), &mut none),
            Err("-CLUSTERDOWN The cluster is down and only accepts read commands".into())
        );
        r.slots[3] = NONE;
        assert_eq!(
            route(&r, &[q(&[(3, b"x")], false)], &ctx(false), &mut none),
            Err("-CLUSTERDOWN Hash slot not served".into())
        );
    }

    #[test]
    fn readonly_replica_reads() {
        let mut r = route3();
        r.myself = 1;
        r.my_master = Some(0);
        r.slots.iter_mut().for_each(|s| *s = 0);
        let mut none = |_: &[u8]| false;
        let ro = QueryCtx { readonly: true, ..ctx(false) };
        assert_eq!(route(&r, &[q(&[(5, b"a")], false)], &ro, &mut none), Ok(()));
        let row = QueryCtx { readonly: true, ..ctx(true) };
        assert_eq!(route(&r, &[q(&[(5, b"a")], true)], &row, &mut none), Err("-MOVED 5 127.0.0.1:7000".into()));
        assert_eq!(route(&r, &[q(&[(5, b"a")], false)], &ctx(false), &mut none), Err("-MOVED 5 127.0.0.1:7000".into()));
    }

    #[test]
    fn blocked_clients_are_redirected_once_the_slot_is_not_served_here() {
        let mut r = route3();
        // Served here: the client waits on.
        assert_eq!(r.blocked_redirect(5, false, false), None);
        // Moved to node 1 (MOVED names the port of the connection type asked for).
        r.slots[5] = 1;
        assert_eq!(r.blocked_redirect(5, false, false), Some("-MOVED 5 127.0.0.1:7001".into()));
        assert_eq!(r.blocked_redirect(5, false, true), Some("-MOVED 5 127.0.0.1:7101".into()));
        // While this node imports the slot, it waits on.
        r.importing[5] = 1;
        assert_eq!(r.blocked_redirect(5, false, false), None);
        r.importing[5] = NONE;
        // Unassigned, then the whole cluster down.
        r.slots[5] = NONE;
        assert_eq!(r.blocked_redirect(5, false, false), Some("-CLUSTERDOWN Hash slot not served".into()));
        r.ok = false;
        assert_eq!(r.blocked_redirect(9000, false, false), Some("-CLUSTERDOWN The cluster is down".into()));
        // A replica: a READONLY client's read waits on slots of its master, others are moved.
        let mut r = route3();
        r.myself = 1;
        r.my_master = Some(0);
        assert_eq!(r.blocked_redirect(5, true, false), None);
        assert_eq!(r.blocked_redirect(5, false, false), Some("-MOVED 5 127.0.0.1:7000".into()));
    }

    #[test]
    fn imports_starting_or_ending_count_as_a_serving_change() {
        let r = route3();
        let mut new = route3();
        assert!(!r.serving_changed(&new));
        new.importing[5] = 1;
        assert!(r.serving_changed(&new));
        assert!(new.serving_changed(&r));
    }
}
