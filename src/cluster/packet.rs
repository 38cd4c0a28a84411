//! Processing a received bus message (Redis's clusterProcessPacket): epochs and offsets from
//! the header, the handshake, failure detection through gossip, role and slot changes
//! (UPDATE, config-epoch collisions), FAIL, PUBLISH, votes and manual-failover requests.

use super::msg::{self, types, Body, Ext, Gossip, Header, Msg, NULL_NAME};
use super::node::{flag, name_str, LinkId, NodeId};
use super::state::{todo, Deferred, State, MF_PAUSE_MULT, MF_TIMEOUT};
use super::SLOTS;
use crate::keyspace::now_ms;
use crate::server::log;

impl State {
    /// Handle one frame from `link`. Returns false when the link was closed by it.
    pub fn process_packet(&mut self, link: LinkId, frame: &[u8]) -> bool {
        let m = match msg::decode(frame) {
            Ok(m) => m,
            Err(msg::Invalid::Ignored) => return true,
            Err(e) => {
                log::warning(&format!("Received invalid cluster bus packet: {e:?}"));
                return true;
            }
        };
        let Some(l) = self.links.get(&link) else { return false };
        let (inbound, link_node) = (l.inbound, l.node);
        let mtype = m.hdr.mtype;
        if (mtype as usize) < types::COUNT {
            self.stats_received[mtype as usize] += 1;
        }
        if mtype as i64 == self.drop_filter {
            log::warning("Dropping packet that matches debug drop filter");
            return true;
        }
        let now = now_ms();
        let hdr = &m.hdr;
        let sender = self.sender_of(link, link_node, hdr);
        if let Some(s) = sender.and_then(|s| self.nodes.get_mut(&s)) {
            s.data_received = now;
        }
        let (mut sender_current_epoch, mut sender_config_epoch) = (0, 0);
        if let Some(sid) = sender.filter(|s| !self.nodes[s].in_handshake()) {
            sender_current_epoch = hdr.current_epoch;
            sender_config_epoch = hdr.config_epoch;
            if sender_current_epoch > self.current_epoch {
                self.current_epoch = sender_current_epoch;
            }
            let s = self.nodes.get_mut(&sid).expect("sender exists");
            if sender_config_epoch > s.config_epoch {
                s.config_epoch = sender_config_epoch;
                self.route_dirty = true;
                self.do_before_sleep(todo::SAVE_CONFIG | todo::FSYNC_CONFIG);
            }
            let s = self.nodes.get_mut(&sid).expect("sender exists");
            s.repl_offset = hdr.offset as i64;
            s.repl_offset_time = now;
            // A replica in a manual failover learns the offset of its paused master.
            if self.mf_end != 0
                && self.is_myself_slave()
                && self.me().slaveof == Some(sid)
                && hdr.mflags[0] & msg::MFLAG_PAUSED != 0
                && self.mf_master_offset == -1
            {
                self.mf_master_offset = hdr.offset as i64;
                self.do_before_sleep(todo::HANDLE_MANUALFAILOVER);
                log::notice(&format!(
                    "Received replication offset for paused master manual failover: {}",
                    self.mf_master_offset
                ));
            }
        }

        if mtype == types::PING || mtype == types::MEET {
            // Learn our own address from the connection a MEET (or a first PING) came on.
            if (mtype == types::MEET || self.me().ip.is_empty()) && self.cfg.announce_ip.is_empty() {
                let ip = self.links.get(&link).map(|l| l.local_ip.clone()).unwrap_or_default();
                if !ip.is_empty() && ip != self.me().ip {
                    log::notice(&format!("IP address for this node updated to {ip}"));
                    self.me_mut().ip = ip;
                    self.route_dirty = true;
                    self.do_before_sleep(todo::SAVE_CONFIG);
                }
            }
            if sender.is_none() && mtype == types::MEET {
                let ip = self.node_ip(link, hdr);
                let id = self.create_node(None, flag::HANDSHAKE);
                let n = self.nodes.get_mut(&id).expect("just created");
                n.ip = ip;
                n.port = hdr.port;
                n.pport = hdr.pport;
                n.cport = hdr.cport;
                self.do_before_sleep(todo::SAVE_CONFIG);
                if let Body::Ping { gossip, .. } = &m.body {
                    self.process_gossip(gossip, None);
                }
            }
            self.send_ping(link, types::PONG);
        }

        match &m.body {
            Body::Ping { gossip, exts } => {
                if !self.process_ping_like(link, inbound, link_node, sender, &m, sender_config_epoch) {
                    return false;
                }
                if let Some(s) = sender {
                    if self.nodes.contains_key(&s) {
                        self.process_gossip(gossip, Some(s));
                        self.process_ping_exts(exts, s);
                    }
                }
            }
            Body::Fail { about } => match sender {
                Some(s) => {
                    if let Some(f) = self.lookup_name(about) {
                        let from = self.nodes[&s].log_name();
                        let n = self.nodes.get_mut(&f).expect("found");
                        if n.flags & (flag::FAIL | flag::MYSELF) == 0 {
                            log::notice(&format!("FAIL message received from {from} about {}", n.log_name()));
                            n.flags |= flag::FAIL;
                            n.fail_time = now;
                            n.flags &= !flag::PFAIL;
                            self.route_dirty = true;
                            self.do_before_sleep(todo::SAVE_CONFIG | todo::UPDATE_STATE);
                        }
                    }
                }
                None => log::notice(&format!(
                    "Ignoring FAIL message from unknown node {} about {}",
                    name_str(&hdr.sender),
                    name_str(about)
                )),
            },
            Body::Publish { channel, message } => {
                if sender.is_some() {
                    self.pending.push(Deferred::Publish {
                        channel: channel.clone(),
                        message: message.clone(),
                        shard: mtype == types::PUBLISHSHARD,
                    });
                }
            }
            Body::Update { config_epoch, name, slots } => {
                if sender.is_none() {
                    return true;
                }
                let Some(n) = self.lookup_name(name) else { return true };
                if self.nodes[&n].config_epoch >= *config_epoch {
                    return true;
                }
                if self.nodes[&n].is_slave() {
                    self.set_node_as_master(n);
                }
                self.nodes.get_mut(&n).expect("found").config_epoch = *config_epoch;
                self.do_before_sleep(todo::SAVE_CONFIG | todo::FSYNC_CONFIG);
                self.update_slots_config_with(n, *config_epoch, slots);
            }
            Body::Module { .. } => {}
            Body::Empty => match mtype {
                types::FAILOVER_AUTH_REQUEST => {
                    if let Some(s) = sender {
                        self.send_failover_auth_if_needed(s, hdr);
                    }
                }
                types::FAILOVER_AUTH_ACK => {
                    // A vote counts from a master serving slots, for this election or later.
                    if let Some(s) = sender {
                        let n = &self.nodes[&s];
                        if n.is_master() && n.numslots > 0 && sender_current_epoch >= self.failover_auth_epoch {
                            self.failover_auth_count += 1;
                            self.do_before_sleep(todo::HANDLE_FAILOVER);
                        }
                    }
                }
                types::MFSTART => {
                    // Only from one of my replicas.
                    let Some(s) = sender else { return true };
                    if self.nodes[&s].slaveof != Some(self.myself) {
                        return true;
                    }
                    self.reset_manual_failover();
                    self.mf_end = now + MF_TIMEOUT;
                    self.mf_slave = Some(s);
                    self.pending.push(Deferred::PauseWrites(now + MF_TIMEOUT * MF_PAUSE_MULT));
                    log::notice(&format!("Manual failover requested by replica {}.", self.nodes[&s].log_name()));
                    // The ping carries our offset, now that clients are paused.
                    self.send_ping(link, types::PING);
                }
                types::PING | types::PONG | types::MEET => {}
                other => log::warning(&format!("Received unknown packet type: {other}")),
            },
        }
        true
    }

    /// The node a message comes from (getNodeFromLinkAndMsg): the link's node once known,
    /// else the header's sender name (an inbound link then learns its node).
    fn sender_of(&mut self, link: LinkId, link_node: Option<NodeId>, hdr: &Header) -> Option<NodeId> {
        if let Some(n) = link_node.filter(|n| self.nodes.get(n).is_some_and(|n| !n.in_handshake())) {
            return Some(n);
        }
        let s = self.lookup_name(&hdr.sender)?;
        if link_node.is_none() {
            self.set_inbound_link(s, link);
        }
        Some(s)
    }

    /// The sender's address: the announced IP, or the peer address of the link.
    fn node_ip(&self, link: LinkId, hdr: &Header) -> String {
        if !hdr.myip.is_empty() {
            return hdr.myip.clone();
        }
        self.links.get(&link).map(|l| l.peer_ip.clone()).unwrap_or_default()
    }

    /// PING/PONG/MEET: handshake, flags, address, roles and slots. Returns false when the
    /// link was freed.
    fn process_ping_like(
        &mut self,
        link: LinkId,
        inbound: bool,
        link_node: Option<NodeId>,
        sender: Option<NodeId>,
        m: &Msg,
        sender_config_epoch: u64,
    ) -> bool {
        let hdr = &m.hdr;
        let now = now_ms();
        if !inbound {
            let Some(ln) = link_node.filter(|n| self.nodes.contains_key(n)) else { return false };
            if self.nodes[&ln].in_handshake() {
                if let Some(s) = sender {
                    // We know this node already: update its address, drop the handshake node.
                    if self.update_address_if_needed(s, link, hdr) {
                        self.do_before_sleep(todo::SAVE_CONFIG | todo::UPDATE_STATE);
                    }
                    self.del_node(ln);
                    return false;
                }
                self.rename_node(ln, hdr.sender);
                let n = self.nodes.get_mut(&ln).expect("exists");
                n.flags &= !flag::HANDSHAKE;
                n.flags |= hdr.flags & (flag::MASTER | flag::SLAVE);
                self.route_dirty = true;
                self.do_before_sleep(todo::SAVE_CONFIG);
            } else if self.nodes[&ln].name != hdr.sender {
                // Someone else answers at this address now.
                let n = self.nodes.get_mut(&ln).expect("exists");
                n.flags |= flag::NOADDR;
                n.ip.clear();
                n.port = 0;
                n.pport = 0;
                n.cport = 0;
                self.free_link(link);
                self.route_dirty = true;
                self.do_before_sleep(todo::SAVE_CONFIG);
                return false;
            }
        }
        if let Some(s) = sender {
            let n = self.nodes.get_mut(&s).expect("sender exists");
            n.flags = (n.flags & !flag::NOFAILOVER) | (hdr.flags & flag::NOFAILOVER);
        }
        if let Some(s) = sender {
            if hdr.mtype == types::PING && !self.nodes[&s].in_handshake() && self.update_address_if_needed(s, link, hdr)
            {
                self.do_before_sleep(todo::SAVE_CONFIG | todo::UPDATE_STATE);
            }
        }
        if !inbound && hdr.mtype == types::PONG {
            if let Some(ln) = link_node {
                let n = self.nodes.get_mut(&ln).expect("exists");
                n.pong_received = now;
                n.ping_sent = 0;
                if n.timed_out() {
                    n.flags &= !flag::PFAIL;
                    self.route_dirty = true;
                    self.do_before_sleep(todo::SAVE_CONFIG | todo::UPDATE_STATE);
                } else if n.failed() {
                    self.clear_failure_if_needed(ln);
                }
            }
        }
        let Some(s) = sender else { return true };
        // Role switches.
        if hdr.slaveof == NULL_NAME {
            self.set_node_as_master(s);
        } else {
            let master = self.lookup_name(&hdr.slaveof);
            if self.nodes[&s].is_master() {
                self.del_node_slots(s);
                let n = self.nodes.get_mut(&s).expect("exists");
                n.flags &= !(flag::MASTER | flag::MIGRATE_TO);
                n.flags |= flag::SLAVE;
                self.route_dirty = true;
                self.do_before_sleep(todo::SAVE_CONFIG | todo::UPDATE_STATE);
            }
            if let Some(master) = master {
                if self.nodes[&s].slaveof != Some(master) {
                    if let Some(old) = self.nodes[&s].slaveof {
                        self.remove_slave(old, s);
                    }
                    self.add_slave(master, s);
                    self.nodes.get_mut(&s).expect("exists").slaveof = Some(master);
                    let id = self.nodes[&master].shard_id;
                    self.update_shard_id(s, id);
                    self.route_dirty = true;
                    self.do_before_sleep(todo::SAVE_CONFIG);
                }
            }
        }
        // Slots: only when the claimed set differs from what we know.
        let sender_master = if self.nodes[&s].is_master() { Some(s) } else { self.nodes[&s].slaveof };
        let dirty_slots = sender_master.and_then(|m| self.nodes.get(&m)).is_some_and(|m| m.slots != hdr.myslots);
        if self.nodes[&s].is_master() && dirty_slots {
            self.update_slots_config_with(s, sender_config_epoch, &hdr.myslots);
        }
        // The sender claims slots a newer configuration gives to someone else: tell it.
        if dirty_slots {
            for j in 0..SLOTS {
                if !hdr.myslots.get(j) {
                    continue;
                }
                let Some(owner) = self.slots[j] else { continue };
                if owner == s || self.slot_unclaimed(j) {
                    continue;
                }
                if self.nodes[&owner].config_epoch > sender_config_epoch {
                    log::verbose(&format!(
                        "Node {} has old slots configuration, sending an UPDATE message about {}",
                        self.nodes[&s].name_str(),
                        self.nodes[&owner].name_str()
                    ));
                    let l = self.nodes[&s].link;
                    self.send_update(l, owner);
                    break;
                }
            }
        }
        if self.me().is_master() && self.nodes[&s].is_master() && sender_config_epoch == self.me().config_epoch {
            self.handle_config_epoch_collision(s);
        }
        true
    }

    /// Update a node's address from the header and the link it was received on; returns
    /// whether it changed (nodeUpdateAddressIfNeeded).
    fn update_address_if_needed(&mut self, id: NodeId, link: LinkId, hdr: &Header) -> bool {
        if self.nodes[&id].link == Some(link) {
            return false;
        }
        let ip = self.node_ip(link, hdr);
        if ip.is_empty() {
            return false;
        }
        let n = &self.nodes[&id];
        if n.port == hdr.port && n.cport == hdr.cport && n.pport == hdr.pport && n.ip == ip {
            return false;
        }
        let old_link = n.link;
        let n = self.nodes.get_mut(&id).expect("exists");
        n.ip = ip;
        n.port = hdr.port;
        n.pport = hdr.pport;
        n.cport = hdr.cport;
        n.flags &= !flag::NOADDR;
        let (name, ip, port) = (n.log_name(), n.ip.clone(), n.port);
        let repl_port = self.replication_port(&self.nodes[&id]);
        if let Some(l) = old_link {
            self.free_link(l);
        }
        self.route_dirty = true;
        log::notice(&format!("Address updated for node {name}, now {ip}:{port}"));
        if self.is_myself_slave() && self.me().slaveof == Some(id) {
            self.pending.push(Deferred::SetMaster { host: ip, port: repl_port });
        }
        true
    }

    /// The gossip section: failure reports from masters, pong times, addresses of failing
    /// nodes, and nodes we did not know (clusterProcessGossipSection).
    fn process_gossip(&mut self, gossip: &[Gossip], sender: Option<NodeId>) {
        let now = now_ms();
        for g in gossip {
            let gflags = g.flags;
            match self.lookup_name(&g.name) {
                Some(node) => {
                    let sender_is_master = sender.and_then(|s| self.nodes.get(&s)).is_some_and(|s| s.is_master());
                    if sender_is_master && node != self.myself {
                        let s = sender.expect("checked");
                        if gflags & (flag::FAIL | flag::PFAIL) != 0 {
                            if self.add_failure_report(node, s) {
                                log::verbose(&format!(
                                    "Node {} reported node {} as not reachable.",
                                    self.nodes[&s].log_name(),
                                    self.nodes[&node].log_name()
                                ));
                            }
                            self.mark_failing_if_needed(node);
                        } else if self.del_failure_report(node, s) {
                            log::verbose(&format!(
                                "Node {} reported node {} is back online.",
                                self.nodes[&s].log_name(),
                                self.nodes[&node].log_name()
                            ));
                        }
                    }
                    // Trust others' pong times for nodes that look fine to us.
                    if gflags & (flag::FAIL | flag::PFAIL) == 0
                        && self.nodes[&node].ping_sent == 0
                        && self.failure_reports_count(node) == 0
                    {
                        let pongtime = g.pong_received as i64 * 1000;
                        let n = self.nodes.get_mut(&node).expect("exists");
                        if pongtime <= now + 500 && pongtime > n.pong_received {
                            n.pong_received = pongtime;
                        }
                    }
                    // A node we cannot reach seen elsewhere at another address: reconnect there.
                    let n = &self.nodes[&node];
                    if n.flags & (flag::FAIL | flag::PFAIL) != 0
                        && gflags & flag::NOADDR == 0
                        && gflags & (flag::FAIL | flag::PFAIL) == 0
                        && (!n.ip.eq_ignore_ascii_case(&g.ip) || n.port != g.port || n.cport != g.cport)
                    {
                        if let Some(l) = n.link {
                            self.free_link(l);
                        }
                        let n = self.nodes.get_mut(&node).expect("exists");
                        n.ip = g.ip.clone();
                        n.port = g.port;
                        n.pport = g.pport;
                        n.cport = g.cport;
                        n.flags &= !flag::NOADDR;
                        self.route_dirty = true;
                    }
                }
                None => {
                    // Only from a known sender, never a node we were told to forget.
                    if sender.is_some()
                        && gflags & flag::NOADDR == 0
                        && !self.blacklist_exists(&g.name)
                        && super::node::valid_name(&g.name)
                    {
                        let id = self.create_node(Some(g.name), gflags);
                        let n = self.nodes.get_mut(&id).expect("just created");
                        n.ip = g.ip.clone();
                        n.port = g.port;
                        n.pport = g.pport;
                        n.cport = g.cport;
                    }
                }
            }
        }
    }

    /// Ping extensions: hostname and human node name (absent means none), forgotten nodes,
    /// the shard id (absent: the sender's master's, as a node older than 7.2 sends none).
    fn process_ping_exts(&mut self, exts: &[Ext], sender: NodeId) {
        let mut hostname = None;
        let mut human = None;
        let mut shard_id = None;
        for e in exts {
            match e {
                Ext::Hostname(h) => hostname = Some(String::from_utf8_lossy(h).into_owned()),
                Ext::HumanNodename(h) => human = Some(String::from_utf8_lossy(h).into_owned()),
                Ext::ForgottenNode { name, ttl } => {
                    let n = self.lookup_name(name);
                    if let Some(n) = n {
                        let my_master = self.is_myself_slave() && self.me().slaveof == Some(n);
                        if n != self.myself && !my_master {
                            log::notice(&format!(
                                "Node {} was forgotten by {}.",
                                name_str(name),
                                self.nodes[&sender].name_str()
                            ));
                            self.blacklist_add(*name, *ttl as i64);
                            self.del_node(n);
                            self.do_before_sleep(todo::UPDATE_STATE | todo::SAVE_CONFIG);
                        }
                    }
                }
                Ext::ShardId(id) => shard_id = Some(*id),
                Ext::Unknown(t) => log::warning(&format!("Received unknown extension type {t}")),
            }
        }
        if let Some(n) = self.nodes.get_mut(&sender) {
            let h = hostname.unwrap_or_default();
            if n.hostname != h {
                n.hostname = h;
                self.route_dirty = true;
            }
            n.human_nodename = human.unwrap_or_default();
        }
        if self.nodes.contains_key(&sender) {
            let id = shard_id.unwrap_or_else(|| self.nodes[&self.top_master(sender)].shard_id);
            self.update_shard_id(sender, id);
        }
    }

    /// A master claims slots with some config epoch: take the slots whose owner has an older
    /// one, and follow the new owner of our own slots (clusterUpdateSlotsConfigWith).
    pub fn update_slots_config_with(&mut self, sender: NodeId, sender_epoch: u64, slots: &msg::SlotBitmap) {
        if sender == self.myself {
            log::notice("Discarding UPDATE message about myself.");
            return;
        }
        let me = self.myself;
        let curmaster = if self.me().is_master() { Some(me) } else { self.me().slaveof };
        let mut newmaster = None;
        let mut lost = Vec::new();
        let mut sender_slots = 0;
        let mut migrated_our_slots = 0;
        for j in 0..SLOTS {
            if slots.get(j) {
                sender_slots += 1;
                if self.slots[j] == Some(sender) {
                    self.owner_not_claiming.clear(j);
                    continue;
                }
                // Importing: only an administrator closes the slot.
                if self.importing_from[j].is_some() {
                    continue;
                }
                let older =
                    self.slots[j].and_then(|o| self.nodes.get(&o)).is_some_and(|o| o.config_epoch < sender_epoch);
                if self.slot_unclaimed(j) || older {
                    if self.slots[j] == Some(me) {
                        lost.push(j as u16);
                    }
                    if self.slots[j].is_some() && self.slots[j] == curmaster {
                        newmaster = Some(sender);
                        migrated_our_slots += 1;
                    }
                    self.del_slot(j);
                    self.add_slot(sender, j);
                    self.owner_not_claiming.clear(j);
                    self.do_before_sleep(todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG);
                }
            } else if self.slots[j] == Some(sender) {
                // Still bound to the sender, which no longer claims it.
                self.owner_not_claiming.set(j);
            }
        }
        let cur_numslots = curmaster.and_then(|c| self.nodes.get(&c)).map_or(0, |c| c.numslots);
        let grandmaster = self.me().slaveof.and_then(|m| self.nodes.get(&m)).and_then(|m| m.slaveof);
        if newmaster.is_some()
            && cur_numslots == 0
            && (self.cfg.allow_replica_migration || sender_slots == migrated_our_slots)
        {
            log::notice(&format!(
                "Configuration change detected. Reconfiguring myself as a replica of {}",
                self.nodes[&sender].log_name()
            ));
            self.set_master(sender);
            self.do_before_sleep(todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG);
        } else if let Some(gm) = grandmaster.filter(|&gm| gm != me) {
            log::notice(&format!(
                "I'm a sub-replica! Reconfiguring myself as a replica of grandmaster {}",
                self.nodes[&gm].log_name()
            ));
            self.set_master(gm);
            self.do_before_sleep(todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG);
        } else if !lost.is_empty() {
            // Still a master: the keys of the slots we lost must go.
            self.pending.push(Deferred::DelKeysInSlots(lost));
        }
    }

    /// Two masters with the same config epoch: the one with the smaller name moves on
    /// (clusterHandleConfigEpochCollision).
    fn handle_config_epoch_collision(&mut self, sender: NodeId) {
        let s = &self.nodes[&sender];
        let me = self.me();
        if s.config_epoch != me.config_epoch || !s.is_master() || !me.is_master() {
            return;
        }
        if s.name <= me.name {
            return;
        }
        let sname = s.log_name();
        self.current_epoch += 1;
        let e = self.current_epoch;
        self.me_mut().config_epoch = e;
        self.route_dirty = true;
        self.todo |= todo::SAVE_CONFIG | todo::FSYNC_CONFIG;
        self.save_now_or_die();
        log::verbose(&format!("WARNING: configEpoch collision with node {sname}. configEpoch set to {e}"));
    }

    /// Vote for a replica asking to replace its failed master, if the rules allow it
    /// (clusterSendFailoverAuthIfNeeded).
    fn send_failover_auth_if_needed(&mut self, node: NodeId, req: &Header) {
        let me = self.me();
        if me.is_slave() || me.numslots == 0 {
            return;
        }
        let name = self.nodes[&node].log_name();
        if req.current_epoch < self.current_epoch {
            log::warning(&format!(
                "Failover auth denied to {name}: reqEpoch ({}) < curEpoch({})",
                req.current_epoch, self.current_epoch
            ));
            return;
        }
        if self.last_vote_epoch == self.current_epoch {
            log::warning(&format!("Failover auth denied to {name}: already voted for epoch {}", self.current_epoch));
            return;
        }
        let n = &self.nodes[&node];
        let force_ack = req.mflags[0] & msg::MFLAG_FORCEACK != 0;
        let master = n.slaveof.and_then(|m| self.nodes.get(&m));
        if n.is_master() {
            log::warning(&format!("Failover auth denied to {name}: it is a master node"));
            return;
        }
        let Some(master) = master else {
            log::warning(&format!("Failover auth denied to {name}: I don't know its master"));
            return;
        };
        if !master.failed() && !force_ack {
            log::warning(&format!("Failover auth denied to {name}: its master is up"));
            return;
        }
        let since = now_ms() - master.voted_time;
        if since < self.cfg.node_timeout * 2 {
            log::warning(&format!(
                "Failover auth denied to {name}: can't vote about this master before {} milliseconds",
                self.cfg.node_timeout * 2 - since
            ));
            return;
        }
        for j in 0..SLOTS {
            if !req.myslots.get(j) || self.slot_unclaimed(j) {
                continue;
            }
            let owner_epoch = self.slots[j].and_then(|o| self.nodes.get(&o)).map_or(0, |o| o.config_epoch);
            if owner_epoch <= req.config_epoch {
                continue;
            }
            log::warning(&format!(
                "Failover auth denied to {name}: slot {j} epoch ({owner_epoch}) > reqEpoch ({})",
                req.config_epoch
            ));
            return;
        }
        let master_id = master.id;
        self.last_vote_epoch = self.current_epoch;
        self.nodes.get_mut(&master_id).expect("exists").voted_time = now_ms();
        self.do_before_sleep(todo::SAVE_CONFIG | todo::FSYNC_CONFIG);
        self.send_failover_auth(node);
        log::notice(&format!("Failover auth granted to {name} for epoch {}", self.current_epoch));
    }
}
