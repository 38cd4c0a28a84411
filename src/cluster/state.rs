//! The cluster state of this node (Redis's clusterState): the known nodes, who serves each
//! slot, migrations in progress, epochs, failure reports, the election and manual-failover
//! state, the bus links, and the effects on the rest of the server that must wait until the
//! state lock is released ([`Deferred`]).
//!
//! Rule: nothing here locks the keyspace. Work on keys (deleting a lost slot's keys, emptying
//! a reset replica) is queued as [`Deferred`] and done by the caller after the lock is
//! released, so a command holding shard locks may take the cluster lock without deadlock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::msg::{types, Name, SlotBitmap};
use super::node::{flag, random_name, to_name, LinkId, Node, NodeId};
use super::outgoing::Outgoing;
use super::SLOTS;
use crate::keyspace::now_ms;

/// Things to do before the next sleep (Redis's CLUSTER_TODO_*).
pub mod todo {
    pub const HANDLE_FAILOVER: u32 = 1 << 0;
    pub const UPDATE_STATE: u32 = 1 << 1;
    pub const SAVE_CONFIG: u32 = 1 << 2;
    pub const FSYNC_CONFIG: u32 = 1 << 3;
    pub const HANDLE_MANUALFAILOVER: u32 = 1 << 4;
}

/// Failover timing constants (Redis's defines).
pub const FAIL_REPORT_VALIDITY_MULT: i64 = 2;
pub const FAIL_UNDO_TIME_MULT: i64 = 2;
pub const MF_TIMEOUT: i64 = 5000;
pub const MF_PAUSE_MULT: i64 = 2;
pub const SLAVE_MIGRATION_DELAY: i64 = 5000;
pub const BLACKLIST_TTL: i64 = 60;

/// Why a replica is not failing over (logged once per reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CantFailover {
    #[default]
    None,
    DataAge,
    WaitingDelay,
    Expired,
    WaitingVotes,
}

/// Work on the rest of the server, done once the state lock is released.
#[derive(Debug)]
pub enum Deferred {
    /// Replicate this address (Redis's replicationSetMaster).
    SetMaster {
        host: String,
        port: u16,
    },
    /// Stop replicating, keep the data (replicationUnsetMaster).
    UnsetMaster,
    /// Delete the keys of slots this node no longer serves.
    DelKeysInSlots(Vec<u16>),
    /// Unsubscribe the shard channels of a slot this shard no longer serves.
    RemoveChannelsInSlot(u16),
    /// Deliver a message that came through the bus to local subscribers.
    Publish {
        channel: Vec<u8>,
        message: Vec<u8>,
        shard: bool,
    },
    /// Pause writes until this unix ms (a master during a manual failover).
    PauseWrites(i64),
    Unpause,
    /// Open a bus connection for this (outbound) link; its task writes what `out` holds.
    Connect {
        link: LinkId,
        ip: String,
        port: u16,
        out: Arc<Outgoing>,
    },
}

/// What the state needs from the configuration, refreshed from the server's before each use.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub node_timeout: i64,
    pub require_full_coverage: bool,
    pub allow_reads_when_down: bool,
    pub allow_pubsubshard_when_down: bool,
    pub allow_replica_migration: bool,
    pub migration_barrier: i64,
    pub replica_validity_factor: i64,
    pub replica_no_failover: bool,
    pub announce_ip: String,
    pub announce_hostname: String,
    pub announce_human_nodename: String,
    pub port: u16,
    /// `tls-port`, and `tls-cluster`: the bus and the port announced to clients are TLS.
    pub tls_port: u16,
    pub tls_cluster: bool,
    /// `tls-replication`: a replica connects to its master's TLS port.
    pub tls_replication: bool,
    pub announce_tls_port: u16,
    pub cluster_port: u16,
    pub announce_port: u16,
    pub announce_bus_port: u16,
    pub link_sendbuf_limit: u64,
    /// `cluster-preferred-endpoint-type`: 0 ip, 1 hostname, 2 unknown-endpoint.
    pub preferred_endpoint: u32,
    pub repl_ping_replica_period: i64,
    pub config_file: String,
}

impl Settings {
    /// The port clients reach this node on first: the TLS port with `tls-cluster`.
    pub fn base_port(&self) -> u16 {
        if self.tls_cluster {
            self.tls_port
        } else {
            self.port
        }
    }

    /// Redis 7.2's deriveAnnouncedPorts: (port, pport, cport), `port` the first port (TLS
    /// with `tls-cluster`, else plain), `pport` the other one, as the bus header carries them.
    pub fn announced_ports(&self) -> (u16, u16, u16) {
        let tcp = if self.announce_port != 0 { self.announce_port } else { self.port };
        let tls = if self.announce_tls_port != 0 { self.announce_tls_port } else { self.tls_port };
        let (port, pport) = if self.tls_cluster { (tls, tcp) } else { (tcp, tls) };
        let cport = if self.announce_bus_port != 0 {
            self.announce_bus_port
        } else if self.cluster_port != 0 {
            self.cluster_port
        } else {
            self.base_port().wrapping_add(10000)
        };
        (port, pport, cport)
    }
}

/// What the state needs to know about replication (refreshed by the caller).
#[derive(Clone, Copy, Debug, Default)]
pub struct ReplView {
    /// A master is configured (server.masterhost != NULL).
    pub configured: bool,
    /// The link with the master is up.
    pub connected: bool,
    /// Our offset as a replica (replicationGetSlaveOffset).
    pub replica_offset: i64,
    /// Our offset as a master (master_repl_offset).
    pub master_offset: i64,
    /// Unix seconds of the last data from the master (or since when the link is down).
    pub last_io: i64,
}

/// One bus connection (Redis's clusterLink): the bytes to send go to its outgoing side, which
/// dropping the link closes (its task then ends).
pub struct Link {
    pub id: LinkId,
    pub node: Option<NodeId>,
    pub inbound: bool,
    /// Unix ms it was created.
    pub ctime: i64,
    /// The bytes queued on it and not yet written (CLUSTER LINKS' send buffer).
    pub out: Arc<Outgoing>,
    /// The most ever queued at once (the "allocated" send buffer).
    pub queued_peak: usize,
    /// Our address on this connection (for discovering our own IP from a MEET).
    pub local_ip: String,
    /// The peer's address.
    pub peer_ip: String,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.out.close();
    }
}

pub struct State {
    pub myself: NodeId,
    next_node: NodeId,
    pub nodes: BTreeMap<NodeId, Node>,
    by_name: HashMap<Name, NodeId>,
    pub slots: Vec<Option<NodeId>>,
    pub migrating_to: Vec<Option<NodeId>>,
    pub importing_from: Vec<Option<NodeId>>,
    /// Slots whose owner stopped claiming them (not advertised in UPDATE messages).
    pub owner_not_claiming: SlotBitmap,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
    /// CLUSTER_OK.
    pub ok: bool,
    /// Masters serving at least one slot.
    pub size: usize,
    /// Forgotten nodes (CLUSTER FORGET) not to re-add until the unix second.
    pub blacklist: HashMap<Name, i64>,
    // Election state (replica side).
    pub failover_auth_time: i64,
    pub failover_auth_count: usize,
    pub failover_auth_sent: bool,
    pub failover_auth_rank: usize,
    pub failover_auth_epoch: u64,
    pub cant_failover_reason: CantFailover,
    pub cant_failover_logged: i64,
    // Manual failover state.
    pub mf_end: i64,
    pub mf_slave: Option<NodeId>,
    pub mf_master_offset: i64,
    pub mf_can_start: bool,
    pub todo: u32,
    pub stats_sent: [u64; types::COUNT],
    pub stats_received: [u64; types::COUNT],
    pub stats_pfail_nodes: usize,
    pub links_buffer_limit_exceeded: u64,
    pub links: HashMap<LinkId, Link>,
    next_link: LinkId,
    pub pending: Vec<Deferred>,
    /// The buffer messages are encoded into before they are queued on links (`send.rs`).
    pub(super) scratch: Vec<u8>,
    pub cfg: Settings,
    /// The configuration (and port) `cfg` was read from: read again only when they change.
    pub(super) cfg_source: Option<(Arc<crate::config::Config>, u64)>,
    pub repl: ReplView,
    pub(super) among_minority_time: i64,
    pub(super) first_update_time: i64,
    pub(super) pings_sent: u64,
    pub(super) cron_iteration: u64,
    /// The routing snapshot must be rebuilt.
    pub route_dirty: bool,
    /// DEBUG DROP-CLUSTER-PACKET-FILTER: messages of this type are dropped (-1: none).
    pub drop_filter: i64,
}

impl State {
    /// A state with only `myself` (a master with a new random name).
    pub fn new(cfg: Settings) -> State {
        let mut st = State {
            myself: 0,
            next_node: 1,
            nodes: BTreeMap::new(),
            by_name: HashMap::new(),
            slots: vec![None; SLOTS],
            migrating_to: vec![None; SLOTS],
            importing_from: vec![None; SLOTS],
            owner_not_claiming: SlotBitmap::default(),
            current_epoch: 0,
            last_vote_epoch: 0,
            ok: false,
            size: 0,
            blacklist: HashMap::new(),
            failover_auth_time: 0,
            failover_auth_count: 0,
            failover_auth_sent: false,
            failover_auth_rank: 0,
            failover_auth_epoch: 0,
            cant_failover_reason: CantFailover::None,
            cant_failover_logged: 0,
            mf_end: 0,
            mf_slave: None,
            mf_master_offset: -1,
            mf_can_start: false,
            todo: 0,
            stats_sent: [0; types::COUNT],
            stats_received: [0; types::COUNT],
            stats_pfail_nodes: 0,
            links_buffer_limit_exceeded: 0,
            links: HashMap::new(),
            next_link: 1,
            pending: Vec::new(),
            scratch: Vec::new(),
            cfg,
            cfg_source: None,
            repl: ReplView::default(),
            among_minority_time: 0,
            first_update_time: 0,
            pings_sent: 0,
            cron_iteration: 0,
            route_dirty: true,
            drop_filter: -1,
        };
        let me = st.create_node(None, flag::MYSELF | flag::MASTER);
        st.myself = me;
        st
    }

    pub fn me(&self) -> &Node {
        &self.nodes[&self.myself]
    }
    pub fn me_mut(&mut self) -> &mut Node {
        self.nodes.get_mut(&self.myself).expect("myself exists")
    }
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(&id)
    }
    pub fn node_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        self.nodes.get_mut(&id)
    }
    pub fn do_before_sleep(&mut self, flags: u32) {
        self.todo |= flags;
    }
    pub fn is_myself_slave(&self) -> bool {
        self.me().is_slave()
    }
    /// Our master (None when we are one, or do not know it).
    pub fn my_master(&self) -> Option<NodeId> {
        self.me().slaveof
    }

    /// Create a node (a random name when `name` is None) and add it.
    pub fn create_node(&mut self, name: Option<Name>, flags: u16) -> NodeId {
        let id = self.next_node;
        self.next_node += 1;
        let name = name.unwrap_or_else(random_name);
        self.nodes.insert(id, Node::new(id, name, flags, now_ms()));
        self.by_name.insert(name, id);
        self.route_dirty = true;
        id
    }

    /// Redis's clusterLookupNode: a valid name we know.
    pub fn lookup(&self, name: &[u8]) -> Option<NodeId> {
        to_name(name).and_then(|n| self.by_name.get(&n).copied())
    }
    pub fn lookup_name(&self, name: &Name) -> Option<NodeId> {
        self.by_name.get(name).copied()
    }

    /// Rename a node (a handshake learnt its real name).
    pub fn rename_node(&mut self, id: NodeId, name: Name) {
        if let Some(n) = self.nodes.get_mut(&id) {
            self.by_name.remove(&n.name);
            n.name = name;
            self.by_name.insert(name, id);
        }
    }

    /// Remove a node (Redis's clusterDelNode): its slots become unassigned, its failure
    /// reports are dropped, its links closed.
    pub fn del_node(&mut self, id: NodeId) {
        for j in 0..SLOTS {
            if self.importing_from[j] == Some(id) {
                self.importing_from[j] = None;
            }
            if self.migrating_to[j] == Some(id) {
                self.migrating_to[j] = None;
            }
            if self.slots[j] == Some(id) {
                self.del_slot(j);
            }
        }
        for n in self.nodes.values_mut() {
            n.fail_reports.retain(|(r, _)| *r != id);
        }
        let Some(node) = self.nodes.remove(&id) else { return };
        for s in &node.slaves {
            if let Some(sn) = self.nodes.get_mut(s) {
                sn.slaveof = None;
            }
        }
        if node.is_slave() {
            if let Some(m) = node.slaveof {
                self.remove_slave(m, id);
            }
        }
        self.by_name.remove(&node.name);
        if let Some(l) = node.link {
            self.free_link(l);
        }
        if let Some(l) = node.inbound_link {
            self.free_link(l);
        }
        if self.mf_slave == Some(id) {
            self.mf_slave = None;
        }
        self.route_dirty = true;
    }

    // ---- links -------------------------------------------------------------------------

    /// Register a link (its task is started by the caller).
    pub fn add_link(&mut self, node: Option<NodeId>, out: Arc<Outgoing>) -> LinkId {
        let id = self.next_link;
        self.next_link += 1;
        let inbound = node.is_none();
        self.links.insert(
            id,
            Link {
                id,
                node,
                inbound,
                ctime: now_ms(),
                out,
                queued_peak: 0,
                local_ip: String::new(),
                peer_ip: String::new(),
            },
        );
        if let Some(n) = node.and_then(|n| self.nodes.get_mut(&n)) {
            n.link = Some(id);
        }
        id
    }

    /// Create our link to a node and ask for its connection (clusterNodeCronHandleReconnect).
    pub fn open_link(&mut self, node: NodeId) -> LinkId {
        let out = Outgoing::new();
        let link = self.add_link(Some(node), out.clone());
        let n = &self.nodes[&node];
        self.pending.push(Deferred::Connect { link, ip: n.ip.clone(), port: n.cport, out });
        link
    }

    /// Close a link (dropping it ends its task) and detach it from its node.
    pub fn free_link(&mut self, id: LinkId) {
        let Some(link) = self.links.remove(&id) else { return };
        if let Some(n) = link.node.and_then(|n| self.nodes.get_mut(&n)) {
            if n.link == Some(id) {
                n.link = None;
            } else if n.inbound_link == Some(id) {
                n.inbound_link = None;
            }
        }
    }

    /// An inbound link learnt which node it comes from.
    pub fn set_inbound_link(&mut self, node: NodeId, link: LinkId) {
        let old = self.nodes.get(&node).and_then(|n| n.inbound_link);
        if let Some(old) = old {
            if old == link {
                return;
            }
            // A reconnecting peer may overlap its old link: keep the new one.
            self.free_link(old);
        }
        if let Some(n) = self.nodes.get_mut(&node) {
            n.inbound_link = Some(link);
        }
        if let Some(l) = self.links.get_mut(&link) {
            l.node = Some(node);
        }
    }

    // ---- replicas ----------------------------------------------------------------------

    pub fn remove_slave(&mut self, master: NodeId, slave: NodeId) -> bool {
        let Some(m) = self.nodes.get_mut(&master) else { return false };
        let Some(pos) = m.slaves.iter().position(|&s| s == slave) else { return false };
        m.slaves.remove(pos);
        if m.slaves.is_empty() {
            m.flags &= !flag::MIGRATE_TO;
        }
        true
    }

    pub fn add_slave(&mut self, master: NodeId, slave: NodeId) -> bool {
        let Some(m) = self.nodes.get_mut(&master) else { return false };
        if m.slaves.contains(&slave) {
            return false;
        }
        m.slaves.push(slave);
        m.flags |= flag::MIGRATE_TO;
        true
    }

    pub fn count_non_failing_slaves(&self, id: NodeId) -> usize {
        self.nodes
            .get(&id)
            .map_or(0, |n| n.slaves.iter().filter(|s| self.nodes.get(s).is_some_and(|s| !s.failed())).count())
    }

    // ---- failure reports ---------------------------------------------------------------

    /// Returns true for a new report (false when an existing one was refreshed).
    pub fn add_failure_report(&mut self, failing: NodeId, sender: NodeId) -> bool {
        let now = now_ms();
        let Some(n) = self.nodes.get_mut(&failing) else { return false };
        if let Some(r) = n.fail_reports.iter_mut().find(|(s, _)| *s == sender) {
            r.1 = now;
            return false;
        }
        n.fail_reports.push((sender, now));
        true
    }

    fn cleanup_failure_reports(&mut self, id: NodeId) {
        let maxtime = self.cfg.node_timeout * FAIL_REPORT_VALIDITY_MULT;
        let now = now_ms();
        if let Some(n) = self.nodes.get_mut(&id) {
            n.fail_reports.retain(|(_, t)| now - t <= maxtime);
        }
    }

    pub fn del_failure_report(&mut self, id: NodeId, sender: NodeId) -> bool {
        let Some(n) = self.nodes.get_mut(&id) else { return false };
        let Some(pos) = n.fail_reports.iter().position(|(s, _)| *s == sender) else { return false };
        n.fail_reports.remove(pos);
        self.cleanup_failure_reports(id);
        true
    }

    pub fn failure_reports_count(&mut self, id: NodeId) -> usize {
        self.cleanup_failure_reports(id);
        self.nodes.get(&id).map_or(0, |n| n.fail_reports.len())
    }

    // ---- slots -------------------------------------------------------------------------

    fn masters_have_slaves(&self) -> bool {
        self.nodes.values().filter(|n| !n.is_slave()).any(|n| !n.slaves.is_empty())
    }

    /// Set a node's slot bit; returns the old value.
    pub fn node_set_slot_bit(&mut self, id: NodeId, slot: usize) -> bool {
        let have_slaves = self.masters_have_slaves();
        let Some(n) = self.nodes.get_mut(&id) else { return false };
        let old = n.slots.get(slot);
        n.slots.set(slot);
        if !old {
            n.numslots += 1;
            // A master getting its first slot is a replica-migration target when other
            // masters have replicas.
            if n.numslots == 1 && have_slaves {
                n.flags |= flag::MIGRATE_TO;
            }
        }
        old
    }

    pub fn node_clear_slot_bit(&mut self, id: NodeId, slot: usize) -> bool {
        let Some(n) = self.nodes.get_mut(&id) else { return false };
        let old = n.slots.get(slot);
        n.slots.clear(slot);
        if old {
            n.numslots -= 1;
        }
        old
    }

    /// Assign a free slot to a node.
    pub fn add_slot(&mut self, id: NodeId, slot: usize) -> bool {
        if self.slots[slot].is_some() {
            return false;
        }
        self.node_set_slot_bit(id, slot);
        self.slots[slot] = Some(id);
        self.route_dirty = true;
        true
    }

    /// Unassign a slot (the shard channels of the slot are dropped when it was our shard's).
    pub fn del_slot(&mut self, slot: usize) -> bool {
        let Some(n) = self.slots[slot] else { return false };
        if self.nodes_serving_slots_of(n).contains(&self.myself) {
            self.pending.push(Deferred::RemoveChannelsInSlot(slot as u16));
        }
        self.node_clear_slot_bit(n, slot);
        self.slots[slot] = None;
        // Whoever gets the slot next claims it (Redis 7.2's clusterDelSlot keeps the two
        // consistent): a stale bit would hide the new owner from UPDATE messages.
        self.owner_not_claiming.clear(slot);
        self.route_dirty = true;
        true
    }

    pub fn del_node_slots(&mut self, id: NodeId) -> usize {
        let mut deleted = 0;
        for j in 0..SLOTS {
            if self.nodes.get(&id).is_some_and(|n| n.slots.get(j)) {
                self.del_slot(j);
                deleted += 1;
            }
        }
        deleted
    }

    pub fn close_all_slots(&mut self) {
        self.migrating_to.iter_mut().for_each(|s| *s = None);
        self.importing_from.iter_mut().for_each(|s| *s = None);
        self.route_dirty = true;
    }

    /// Whether nobody (or a node that stopped claiming it) owns the slot (isSlotUnclaimed).
    pub fn slot_unclaimed(&self, slot: usize) -> bool {
        self.slots[slot].is_none() || self.owner_not_claiming.get(slot)
    }

    /// The master of `id`'s shard and its replicas (clusterGetNodesServingMySlots).
    pub fn nodes_serving_slots_of(&self, id: NodeId) -> Vec<NodeId> {
        let Some(n) = self.nodes.get(&id) else { return Vec::new() };
        let primary = if n.is_master() { Some(id) } else { n.slaveof };
        let Some(p) = primary.and_then(|p| self.nodes.get(&p)) else { return Vec::new() };
        let mut v = vec![p.id];
        v.extend(p.slaves.iter().copied());
        v
    }

    // ---- roles -------------------------------------------------------------------------

    /// A node we believed a replica acts as a master (clusterSetNodeAsMaster).
    pub fn set_node_as_master(&mut self, id: NodeId) {
        let (is_master, slaveof) = match self.nodes.get(&id) {
            Some(n) => (n.is_master(), n.slaveof),
            None => return,
        };
        if is_master {
            return;
        }
        if let Some(m) = slaveof {
            self.remove_slave(m, id);
        }
        let me = self.myself;
        if let Some(n) = self.nodes.get_mut(&id) {
            if slaveof.is_some() && id != me {
                n.flags |= flag::MIGRATE_TO;
            }
            n.flags &= !flag::SLAVE;
            n.flags |= flag::MASTER;
            n.slaveof = None;
        }
        self.route_dirty = true;
        self.do_before_sleep(todo::SAVE_CONFIG | todo::UPDATE_STATE);
    }

    /// Memory of the bus links (INFO's mem_cluster_links, Redis's getClusterConnectionsMemory):
    /// each link's bookkeeping and read buffer, and the messages queued on it not yet written.
    pub fn links_memory(&self) -> usize {
        let each = std::mem::size_of::<Link>() + super::bus::READ_BUFFER;
        self.links.values().map(|l| each + l.out.queued()).sum()
    }

    /// The port a client connected over TLS or not reaches node `n` on (Redis 7.2's
    /// getNodeClientPort with shouldReturnTlsInfo).
    pub fn client_port(&self, n: &Node, tls: bool) -> u16 {
        let (plain, tls_port) = n.client_ports(self.cfg.tls_cluster);
        if tls {
            tls_port
        } else {
            plain
        }
    }

    /// The port a replica of `n` connects to (Redis 7.2's getNodeDefaultReplicationPort).
    pub fn replication_port(&self, n: &Node) -> u16 {
        self.client_port(n, self.cfg.tls_replication)
    }

    /// The master at the top of `n`'s chain of masters (`n` itself for a master).
    pub fn top_master(&self, n: NodeId) -> NodeId {
        let mut m = n;
        while let Some(up) = self.nodes.get(&m).and_then(|x| x.slaveof) {
            m = up;
            if m == n {
                break;
            }
        }
        m
    }

    /// `n` is in shard `id`; so am I if `n` is my master (Redis 7.2's updateShardId).
    pub fn update_shard_id(&mut self, n: NodeId, id: Name) {
        let me = self.myself;
        if let Some(node) = self.nodes.get_mut(&n) {
            if node.shard_id != id {
                node.shard_id = id;
                self.do_before_sleep(todo::SAVE_CONFIG);
            }
        }
        if n != me && self.me().slaveof == Some(n) && self.me().shard_id != id {
            self.me_mut().shard_id = id;
            self.do_before_sleep(todo::SAVE_CONFIG | todo::FSYNC_CONFIG);
        }
    }

    /// Become a replica of `n` (clusterSetMaster).
    pub fn set_master(&mut self, n: NodeId) {
        let me = self.myself;
        if n == me {
            return;
        }
        if self.me().is_master() {
            let m = self.me_mut();
            m.flags &= !(flag::MASTER | flag::MIGRATE_TO);
            m.flags |= flag::SLAVE;
            self.close_all_slots();
        } else if let Some(old) = self.me().slaveof {
            self.remove_slave(old, me);
        }
        self.me_mut().slaveof = Some(n);
        if let Some(id) = self.nodes.get(&n).map(|m| m.shard_id) {
            self.update_shard_id(me, id);
        }
        self.add_slave(n, me);
        if let Some(node) = self.nodes.get(&n) {
            self.pending.push(Deferred::SetMaster { host: node.ip.clone(), port: self.replication_port(node) });
        }
        self.reset_manual_failover();
        self.route_dirty = true;
    }

    /// Abort or finish a manual failover (both sides).
    pub fn reset_manual_failover(&mut self) {
        if self.mf_slave.is_some() {
            self.pending.push(Deferred::Unpause);
        }
        self.mf_end = 0;
        self.mf_can_start = false;
        self.mf_slave = None;
        self.mf_master_offset = -1;
    }

    // ---- epochs ------------------------------------------------------------------------

    pub fn max_epoch(&self) -> u64 {
        self.nodes.values().map(|n| n.config_epoch).max().unwrap_or(0).max(self.current_epoch)
    }

    /// A new config epoch for myself without agreement (after importing a slot, TAKEOVER).
    pub fn bump_epoch_without_consensus(&mut self) -> bool {
        let max = self.max_epoch();
        let mine = self.me().config_epoch;
        if mine == 0 || mine != max {
            self.current_epoch += 1;
            let e = self.current_epoch;
            self.me_mut().config_epoch = e;
            self.do_before_sleep(todo::SAVE_CONFIG | todo::FSYNC_CONFIG);
            crate::server::log::notice(&format!("New configEpoch set to {e}"));
            true
        } else {
            false
        }
    }

    // ---- blacklist ---------------------------------------------------------------------

    fn blacklist_cleanup(&mut self) {
        let now = now_ms() / 1000;
        self.blacklist.retain(|_, t| *t >= now);
    }

    pub fn blacklist_add(&mut self, name: Name, ttl: i64) {
        self.blacklist_cleanup();
        self.blacklist.insert(name, now_ms() / 1000 + ttl);
    }

    pub fn blacklist_exists(&mut self, name: &Name) -> bool {
        self.blacklist_cleanup();
        self.blacklist.contains_key(name)
    }

    // ---- failure detection -------------------------------------------------------------

    /// PFAIL → FAIL once a majority of masters reported the node (markNodeAsFailingIfNeeded).
    pub fn mark_failing_if_needed(&mut self, id: NodeId) {
        let quorum = self.size / 2 + 1;
        match self.nodes.get(&id) {
            Some(n) if n.timed_out() && !n.failed() => {}
            _ => return,
        }
        let mut failures = self.failure_reports_count(id);
        if self.me().is_master() {
            failures += 1;
        }
        if failures < quorum {
            return;
        }
        let n = self.nodes.get_mut(&id).expect("checked above");
        crate::server::log::notice(&format!("Marking node {} as failing (quorum reached).", n.log_name()));
        n.flags &= !flag::PFAIL;
        n.flags |= flag::FAIL;
        n.fail_time = now_ms();
        let name = n.name;
        self.route_dirty = true;
        self.send_fail(&name);
        self.do_before_sleep(todo::UPDATE_STATE | todo::SAVE_CONFIG);
    }

    /// A FAIL node we can reach again (clearNodeFailureIfNeeded).
    pub fn clear_failure_if_needed(&mut self, id: NodeId) {
        let now = now_ms();
        let timeout = self.cfg.node_timeout;
        let Some(n) = self.nodes.get_mut(&id) else { return };
        if !n.failed() {
            return;
        }
        if n.is_slave() || n.numslots == 0 {
            crate::server::log::notice(&format!(
                "Clear FAIL state for node {}: {} is reachable again.",
                n.log_name(),
                if n.is_slave() { "replica" } else { "master without slots" }
            ));
            n.flags &= !flag::FAIL;
            self.route_dirty = true;
            self.do_before_sleep(todo::UPDATE_STATE | todo::SAVE_CONFIG);
            return;
        }
        if n.is_master() && n.numslots > 0 && now - n.fail_time > timeout * FAIL_UNDO_TIME_MULT {
            crate::server::log::notice(&format!(
                "Clear FAIL state for node {}: is reachable again and nobody is serving its slots after some time.",
                n.log_name()
            ));
            n.flags &= !flag::FAIL;
            self.route_dirty = true;
            self.do_before_sleep(todo::UPDATE_STATE | todo::SAVE_CONFIG);
        }
    }

    /// Whether a handshake with this address is already in progress.
    fn handshake_in_progress(&self, ip: &str, port: u16, cport: u16) -> bool {
        self.nodes
            .values()
            .any(|n| n.in_handshake() && n.ip.eq_ignore_ascii_case(ip) && n.port == port && n.cport == cport)
    }

    /// CLUSTER MEET: add a node in handshake at this address (clusterStartHandshake).
    /// Err(true) for an invalid address, Err(false) when a handshake is already in progress.
    pub fn start_handshake(&mut self, ip: &str, port: i64, cport: i64) -> Result<(), bool> {
        let norm = match ip.parse::<std::net::IpAddr>() {
            Ok(a) => a.to_string(),
            Err(_) => return Err(true),
        };
        if !(1..=65535).contains(&port) || !(1..=65535).contains(&cport) {
            return Err(true);
        }
        let (port, cport) = (port as u16, cport as u16);
        if self.handshake_in_progress(&norm, port, cport) {
            return Err(false);
        }
        let id = self.create_node(None, flag::HANDSHAKE | flag::MEET);
        let n = self.nodes.get_mut(&id).expect("just created");
        n.ip = norm;
        n.port = port;
        n.cport = cport;
        Ok(())
    }

    // ---- the cluster's health ------------------------------------------------------------

    /// Recompute `ok` and `size` (clusterUpdateState).
    pub fn update_state(&mut self) {
        const MAX_REJOIN_DELAY: i64 = 5000;
        const MIN_REJOIN_DELAY: i64 = 500;
        const WRITABLE_DELAY: i64 = 2000;
        self.todo &= !todo::UPDATE_STATE;
        let now = now_ms();
        if self.first_update_time == 0 {
            self.first_update_time = now;
        }
        // A master that just started waits a little before accepting writes, so the cluster
        // can reconfigure it first.
        if self.me().is_master() && !self.ok && now - self.first_update_time < WRITABLE_DELAY {
            return;
        }
        let mut new_ok = true;
        if self.cfg.require_full_coverage {
            new_ok = self.slots.iter().all(|s| s.and_then(|n| self.nodes.get(&n)).is_some_and(|n| !n.failed()));
        }
        let mut size = 0;
        let mut reachable = 0;
        for n in self.nodes.values() {
            if n.is_master() && n.numslots > 0 {
                size += 1;
                if n.flags & (flag::FAIL | flag::PFAIL) == 0 {
                    reachable += 1;
                }
            }
        }
        self.size = size;
        if reachable < size / 2 + 1 {
            new_ok = false;
            self.among_minority_time = now;
        }
        if new_ok != self.ok {
            let rejoin_delay = self.cfg.node_timeout.clamp(MIN_REJOIN_DELAY, MAX_REJOIN_DELAY);
            if new_ok && self.me().is_master() && now - self.among_minority_time < rejoin_delay {
                return;
            }
            crate::server::log::warning(&format!("Cluster state changed: {}", if new_ok { "ok" } else { "fail" }));
            self.ok = new_ok;
            self.route_dirty = true;
        }
    }

    /// CLUSTER RESET (clusterReset). Returns true when this node was a replica: the caller
    /// then empties the dataset.
    pub fn reset(&mut self, hard: bool) -> bool {
        let was_replica = self.me().is_slave();
        if was_replica {
            let me = self.myself;
            self.set_node_as_master(me);
            self.pending.push(Deferred::UnsetMaster);
        }
        self.close_all_slots();
        self.reset_manual_failover();
        for j in 0..SLOTS {
            self.del_slot(j);
        }
        let others: Vec<NodeId> = self.nodes.keys().copied().filter(|&id| id != self.myself).collect();
        for id in others {
            self.del_node(id);
        }
        if hard {
            self.current_epoch = 0;
            self.last_vote_epoch = 0;
            self.me_mut().config_epoch = 0;
            crate::server::log::notice("configEpoch set to 0 via CLUSTER RESET HARD");
            let name = random_name();
            let me = self.myself;
            self.rename_node(me, name);
            crate::server::log::notice(&format!("Node hard reset, now I'm {}", super::node::name_str(&name)));
        }
        self.route_dirty = true;
        self.do_before_sleep(todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG);
        was_replica
    }

    /// The replicas that count as available in CLUSTER SLOTS (isReplicaAvailable).
    pub fn replica_available(&self, id: NodeId) -> bool {
        let Some(n) = self.nodes.get(&id) else { return false };
        if n.failed() {
            return false;
        }
        let offset = if id == self.myself { self.repl.replica_offset } else { n.repl_offset };
        offset != 0
    }

    /// This node's replication offset as announced (a replica's processed offset, or the
    /// master's).
    pub fn my_repl_offset(&self) -> i64 {
        if self.is_myself_slave() {
            self.repl.replica_offset
        } else {
            self.repl.master_offset
        }
    }
}
