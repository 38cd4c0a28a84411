//! The periodic work (Redis's clusterCron, ten times a second) and what runs before sleeping:
//! reconnecting links, pinging, PFAIL detection, replica elections (automatic and manual
//! failover), replica migration, and the todo flags (state update, nodes.conf).

use super::msg::types;
use super::node::{flag, NodeId};
use super::send::PongTarget;
use super::state::{todo, CantFailover, Deferred, State, SLAVE_MIGRATION_DELAY};
use super::SLOTS;
use crate::keyspace::now_ms;
use crate::server::log;

const CANT_FAILOVER_RELOG_PERIOD: i64 = 60 * 5;

impl State {
    /// One cron tick. New outbound links to open are queued as [`Deferred::Connect`].
    pub fn cron(&mut self) {
        self.cron_iteration += 1;
        let iteration = self.cron_iteration;
        let timeout = self.cfg.node_timeout;
        let handshake_timeout = timeout.max(1000);
        let now = now_ms();
        self.stats_pfail_nodes = 0;
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in &ids {
            let Some(n) = self.nodes.get(id) else { continue };
            // Send buffers over cluster-link-sendbuf-limit close the link.
            if self.cfg.link_sendbuf_limit > 0 {
                for l in [n.link, n.inbound_link].into_iter().flatten() {
                    let used = self.links.get(&l).map_or(0, |l| l.out.queued());
                    if used as u64 > self.cfg.link_sendbuf_limit {
                        log::warning(&format!(
                            "Freeing cluster link({} node {}, used memory: {used}) due to exceeding send buffer memory limit.",
                            if self.links[&l].inbound { "from" } else { "to" },
                            self.nodes[id].name_str()
                        ));
                        self.free_link(l);
                        self.links_buffer_limit_exceeded += 1;
                    }
                }
            }
            let n = &self.nodes[id];
            if n.flags & (flag::MYSELF | flag::NOADDR) != 0 {
                continue;
            }
            if n.has(flag::PFAIL) {
                self.stats_pfail_nodes += 1;
            }
            if n.in_handshake() && now - n.ctime > handshake_timeout {
                self.del_node(*id);
                continue;
            }
            if n.link.is_none() {
                self.open_link(*id);
            }
        }

        // Once a second, ping the node with the oldest pong among a few random ones.
        if iteration.is_multiple_of(10) {
            let mut best: Option<(NodeId, i64)> = None;
            for _ in 0..5 {
                let id = ids[rand::random::<usize>() % ids.len()];
                let Some(n) = self.nodes.get(&id) else { continue };
                if n.link.is_none() || n.ping_sent != 0 || n.flags & (flag::MYSELF | flag::HANDSHAKE) != 0 {
                    continue;
                }
                if best.is_none_or(|(_, p)| p > n.pong_received) {
                    best = Some((id, n.pong_received));
                }
            }
            if let Some((id, _)) = best {
                if let Some(l) = self.nodes[&id].link {
                    self.send_ping(l, types::PING);
                }
            }
        }

        let mut orphaned_masters = 0;
        let mut max_slaves = 0;
        let mut this_slaves = 0;
        let mut update_state = false;
        let me_slave = self.is_myself_slave();
        let my_master = self.me().slaveof;
        for id in self.nodes.keys().copied().collect::<Vec<_>>() {
            let now = now_ms();
            let Some(n) = self.nodes.get(&id) else { continue };
            if n.flags & (flag::MYSELF | flag::NOADDR | flag::HANDSHAKE) != 0 {
                continue;
            }
            if me_slave && n.is_master() && !n.failed() {
                let okslaves = self.count_non_failing_slaves(id);
                if okslaves == 0 && n.numslots > 0 && n.has(flag::MIGRATE_TO) {
                    orphaned_masters += 1;
                }
                max_slaves = max_slaves.max(okslaves);
                if my_master == Some(id) {
                    this_slaves = okslaves;
                }
            }
            let n = &self.nodes[&id];
            let ping_delay = now - n.ping_sent;
            let data_delay = now - n.data_received;
            // No traffic at all for half the timeout while a ping waits: reconnect.
            if let Some(l) = n.link {
                let link_age = self.links.get(&l).map_or(0, |l| now - l.ctime);
                if link_age > timeout && n.ping_sent != 0 && ping_delay > timeout / 2 && data_delay > timeout / 2 {
                    self.free_link(l);
                }
            }
            let n = &self.nodes[&id];
            if let Some(l) = n.link {
                if n.ping_sent == 0 && now - n.pong_received > timeout / 2 {
                    self.send_ping(l, types::PING);
                    continue;
                }
                if self.mf_end != 0 && self.me().is_master() && self.mf_slave == Some(id) {
                    self.send_ping(l, types::PING);
                    continue;
                }
            }
            let n = &self.nodes[&id];
            if n.ping_sent == 0 {
                continue;
            }
            let node_delay = ping_delay.min(data_delay);
            if node_delay > timeout && n.flags & (flag::PFAIL | flag::FAIL) == 0 {
                // The only master of the cluster is its own quorum: it marks the node FAIL at
                // once (Redis 7.2.5, #12824; before, a replica of a one-shard cluster stayed PFAIL).
                let own_quorum = self.me().is_master() && self.size == 1;
                if !own_quorum {
                    log::debug(&format!("*** NODE {} possibly failing", n.name_str()));
                }
                self.nodes.get_mut(&id).expect("exists").flags |= flag::PFAIL;
                self.route_dirty = true;
                update_state = true;
                if own_quorum {
                    self.mark_failing_if_needed(id);
                }
            }
        }

        // A replica whose replication is off while its master is known: start it.
        if me_slave && !self.repl.configured {
            if let Some(m) = my_master.and_then(|m| self.nodes.get(&m)) {
                if !m.has(flag::NOADDR) {
                    let port = self.replication_port(m);
                    self.pending.push(Deferred::SetMaster { host: m.ip.clone(), port });
                    self.repl.configured = true;
                }
            }
        }

        self.manual_failover_check_timeout();
        if me_slave {
            self.handle_manual_failover();
            self.handle_slave_failover();
            if orphaned_masters > 0 && max_slaves >= 2 && this_slaves == max_slaves && self.cfg.allow_replica_migration
            {
                self.handle_slave_migration(max_slaves);
            }
        }
        if update_state || !self.ok {
            self.update_state();
        }
        // A safety net: the routing snapshot is rebuilt at least once a second.
        if iteration.is_multiple_of(10) {
            self.route_dirty = true;
        }
    }

    /// What Redis does before sleeping: elections, the cluster state, nodes.conf.
    pub fn before_sleep(&mut self) {
        let flags = self.todo;
        self.todo = 0;
        if flags & todo::HANDLE_MANUALFAILOVER != 0 {
            if self.is_myself_slave() {
                self.handle_manual_failover();
                self.handle_slave_failover();
            }
        } else if flags & todo::HANDLE_FAILOVER != 0 {
            self.handle_slave_failover();
        }
        if flags & todo::UPDATE_STATE != 0 {
            self.update_state();
        }
        if flags & todo::SAVE_CONFIG != 0 {
            self.todo |= flags & todo::FSYNC_CONFIG;
            self.save_now_or_die();
        }
        // Whatever the handlers above asked for runs now too.
        if self.todo & todo::SAVE_CONFIG != 0 {
            self.save_now_or_die();
        }
        if self.todo & todo::UPDATE_STATE != 0 {
            self.update_state();
        }
    }

    /// This replica's rank among its master's replicas by replication offset.
    fn slave_rank(&self) -> usize {
        let Some(m) = self.me().slaveof.and_then(|m| self.nodes.get(&m)) else { return 0 };
        let myoffset = self.repl.replica_offset;
        m.slaves
            .iter()
            .filter(|&&s| s != self.myself)
            .filter_map(|s| self.nodes.get(s))
            .filter(|s| !s.has(flag::NOFAILOVER) && s.repl_offset > myoffset)
            .count()
    }

    fn log_cant_failover(&mut self, reason: CantFailover) {
        let now = now_ms();
        if reason == self.cant_failover_reason && now / 1000 - self.cant_failover_logged < CANT_FAILOVER_RELOG_PERIOD {
            return;
        }
        self.cant_failover_reason = reason;
        let nolog = self.cfg.node_timeout + 5000;
        if let Some(m) = self.me().slaveof.and_then(|m| self.nodes.get(&m)) {
            if m.failed() && now - m.fail_time < nolog {
                return;
            }
        }
        let msg = match reason {
            CantFailover::DataAge => "Disconnected from master for longer than allowed. Please check the 'cluster-replica-validity-factor' configuration option.",
            CantFailover::WaitingDelay => "Waiting the delay before I can start a new failover.",
            CantFailover::Expired => "Failover attempt expired.",
            CantFailover::WaitingVotes => "Waiting for votes, but majority still not reached.",
            CantFailover::None => "Unknown reason code.",
        };
        self.cant_failover_logged = now / 1000;
        log::notice(&format!("Currently unable to failover: {msg}"));
    }

    /// Take over the master's slots and tell everyone (clusterFailoverReplaceYourMaster).
    pub fn failover_replace_master(&mut self) {
        let me = self.myself;
        let Some(old) = self.me().slaveof.filter(|_| !self.me().is_master()) else { return };
        self.set_node_as_master(me);
        self.pending.push(Deferred::UnsetMaster);
        for j in 0..SLOTS {
            if self.nodes.get(&old).is_some_and(|o| o.slots.get(j)) {
                self.del_slot(j);
                self.add_slot(me, j);
            }
        }
        self.update_state();
        self.todo |= todo::FSYNC_CONFIG;
        self.save_now_or_die();
        self.broadcast_pong(PongTarget::All);
        self.reset_manual_failover();
    }

    /// A replica of a failed master (or in a manual failover): get elected and take over
    /// (clusterHandleSlaveFailover).
    pub fn handle_slave_failover(&mut self) {
        let now = now_ms();
        let auth_age = now - self.failover_auth_time;
        let quorum = self.size / 2 + 1;
        let manual = self.mf_end != 0 && self.mf_can_start;
        self.todo &= !todo::HANDLE_FAILOVER;
        let timeout = self.cfg.node_timeout;
        let auth_timeout = (timeout * 2).max(2000);
        let auth_retry_time = auth_timeout * 2;
        let me = self.me();
        let master = me.slaveof.and_then(|m| self.nodes.get(&m));
        let skip = me.is_master()
            || master.is_none()
            || master.is_some_and(|m| (!m.failed() && !manual) || m.numslots == 0)
            || (self.cfg.replica_no_failover && !manual);
        if skip {
            self.cant_failover_reason = CantFailover::None;
            return;
        }
        // How long we have been without our master, beyond the time it took to flag it FAIL.
        let mut data_age = (now / 1000 - self.repl.last_io).max(0) * 1000;
        if data_age > timeout {
            data_age -= timeout;
        }
        if self.cfg.replica_validity_factor != 0
            && data_age > self.cfg.repl_ping_replica_period * 1000 + timeout * self.cfg.replica_validity_factor
            && !manual
        {
            self.log_cant_failover(CantFailover::DataAge);
            return;
        }
        if auth_age > auth_retry_time {
            self.failover_auth_time = now + 500 + (rand::random::<u64>() % 500) as i64;
            self.failover_auth_count = 0;
            self.failover_auth_sent = false;
            self.failover_auth_rank = self.slave_rank();
            self.failover_auth_time += self.failover_auth_rank as i64 * 1000;
            if self.mf_end != 0 {
                self.failover_auth_time = now;
                self.failover_auth_rank = 0;
                self.do_before_sleep(todo::HANDLE_FAILOVER);
            }
            log::notice(&format!(
                "Start of election delayed for {} milliseconds (rank #{}, offset {}).",
                self.failover_auth_time - now,
                self.failover_auth_rank,
                self.repl.replica_offset
            ));
            self.broadcast_pong(PongTarget::LocalSlaves);
            return;
        }
        if !self.failover_auth_sent && self.mf_end == 0 {
            let newrank = self.slave_rank();
            if newrank > self.failover_auth_rank {
                let added = (newrank - self.failover_auth_rank) as i64 * 1000;
                self.failover_auth_time += added;
                self.failover_auth_rank = newrank;
                log::notice(&format!("Replica rank updated to #{newrank}, added {added} milliseconds of delay."));
            }
        }
        if now < self.failover_auth_time {
            self.log_cant_failover(CantFailover::WaitingDelay);
            return;
        }
        if auth_age > auth_timeout {
            self.log_cant_failover(CantFailover::Expired);
            return;
        }
        if !self.failover_auth_sent {
            self.current_epoch += 1;
            self.failover_auth_epoch = self.current_epoch;
            log::notice(&format!("Starting a failover election for epoch {}.", self.current_epoch));
            self.request_failover_auth();
            self.failover_auth_sent = true;
            self.do_before_sleep(todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG);
            return;
        }
        if self.failover_auth_count >= quorum {
            log::notice("Failover election won: I'm the new master.");
            if self.me().config_epoch < self.failover_auth_epoch {
                let e = self.failover_auth_epoch;
                self.me_mut().config_epoch = e;
                log::notice(&format!("configEpoch set to {e} after successful failover"));
            }
            self.failover_replace_master();
        } else {
            self.log_cant_failover(CantFailover::WaitingVotes);
        }
    }

    /// Move to an orphaned master when ours has replicas to spare (clusterHandleSlaveMigration).
    fn handle_slave_migration(&mut self, max_slaves: usize) {
        if !self.ok {
            return;
        }
        let Some(mymaster) = self.me().slaveof else { return };
        let okslaves = self.nodes[&mymaster]
            .slaves
            .iter()
            .filter_map(|s| self.nodes.get(s))
            .filter(|s| !s.failed() && !s.timed_out())
            .count();
        if okslaves as i64 <= self.cfg.migration_barrier {
            return;
        }
        let mut candidate = self.myself;
        let mut target = None;
        let now = now_ms();
        for id in self.nodes.keys().copied().collect::<Vec<_>>() {
            let n = &self.nodes[&id];
            let mut orphaned = !(n.is_slave() || n.failed()) && n.has(flag::MIGRATE_TO);
            let ok = if n.is_master() { self.count_non_failing_slaves(id) } else { 0 };
            if ok > 0 {
                orphaned = false;
            }
            if orphaned {
                if target.is_none() && n.numslots > 0 {
                    target = Some(id);
                }
                let n = self.nodes.get_mut(&id).expect("exists");
                if n.orphaned_time == 0 {
                    n.orphaned_time = now;
                }
            } else {
                self.nodes.get_mut(&id).expect("exists").orphaned_time = 0;
            }
            if ok == max_slaves {
                for s in self.nodes[&id].slaves.clone() {
                    if self.nodes.get(&s).is_some_and(|sn| sn.name < self.nodes[&candidate].name) {
                        candidate = s;
                    }
                }
            }
        }
        if let Some(t) = target {
            if candidate == self.myself && now - self.nodes[&t].orphaned_time > SLAVE_MIGRATION_DELAY {
                log::notice(&format!("Migrating to orphaned master {}", self.nodes[&t].name_str()));
                self.set_master(t);
            }
        }
    }

    fn manual_failover_check_timeout(&mut self) {
        if self.mf_end != 0 && self.mf_end < now_ms() {
            log::warning("Manual failover timed out.");
            self.reset_manual_failover();
        }
    }

    /// A replica in a manual failover starts the election once it processed everything its
    /// paused master sent (clusterHandleManualFailover).
    fn handle_manual_failover(&mut self) {
        if self.mf_end == 0 || self.mf_can_start || self.mf_master_offset == -1 {
            return;
        }
        if self.mf_master_offset == self.repl.replica_offset {
            self.mf_can_start = true;
            log::notice("All master replication stream processed, manual failover can start.");
            self.do_before_sleep(todo::HANDLE_FAILOVER);
            return;
        }
        self.do_before_sleep(todo::HANDLE_MANUALFAILOVER);
    }
}
