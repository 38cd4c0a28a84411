//! Building and sending bus messages: the header every message carries (who we are, our
//! slots, epochs and replication offset), PING/PONG/MEET with their gossip sections and
//! extensions, FAIL, UPDATE, PUBLISH, the election messages and MFSTART.

use smallvec::SmallVec;

use super::msg::{self, types, Body, Ext, Gossip, Header, Msg, NULL_NAME};
use super::node::{flag, LinkId, NodeId};
use super::state::State;
use crate::keyspace::now_ms;

/// Which nodes [`State::broadcast_pong`] reaches.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PongTarget {
    All,
    /// The replicas of my master (or of myself).
    LocalSlaves,
}

impl State {
    /// Redis's clusterBuildMessageHdr.
    pub fn build_header(&self, mtype: u16) -> Header {
        let me = self.me();
        // A replica announces its master's slots and epoch, flagged as a replica.
        let master = match me.slaveof.and_then(|m| self.nodes.get(&m)) {
            Some(m) if me.is_slave() => m,
            _ => me,
        };
        let (port, pport, cport) = self.cfg.announced_ports();
        let mut mflags = [0u8; 3];
        if me.is_master() && self.mf_end != 0 {
            mflags[0] |= msg::MFLAG_PAUSED;
        }
        Header {
            mtype,
            count: 0,
            port,
            current_epoch: self.current_epoch,
            config_epoch: master.config_epoch,
            offset: self.my_repl_offset().max(0) as u64,
            sender: me.name,
            myslots: master.slots.clone(),
            slaveof: me.slaveof.and_then(|m| self.nodes.get(&m)).map_or(NULL_NAME, |m| m.name),
            myip: self.cfg.announce_ip.clone(),
            extensions: 0,
            pport,
            cport,
            flags: me.flags,
            state: if self.ok { 0 } else { 1 },
            mflags,
        }
    }

    /// Queue bytes on a link: counted at once (CLUSTER LINKS, mem_cluster_links), written
    /// by the link's writer, or by a worker at the end of its pass (`outgoing`).
    pub fn send_raw(&mut self, link: LinkId, bytes: &[u8], mtype: u16) {
        let Some(l) = self.links.get_mut(&link) else { return };
        let now = l.out.queue(bytes);
        l.queued_peak = l.queued_peak.max(now);
        if (mtype as usize) < types::COUNT {
            self.stats_sent[mtype as usize] += 1;
        }
    }

    pub fn send_msg(&mut self, link: LinkId, m: &Msg) {
        self.send_to([link], m);
    }

    /// Send to every node with a link, but myself and nodes in handshake.
    pub fn broadcast(&mut self, m: &Msg) {
        let links: SmallVec<[LinkId; 16]> = self
            .nodes
            .values()
            .filter(|n| n.flags & (flag::MYSELF | flag::HANDSHAKE) == 0)
            .filter_map(|n| n.link)
            .collect();
        self.send_to(links, m);
    }

    /// Send `m` on `links`, encoded once, into the state's scratch buffer: sending a message
    /// allocates nothing.
    fn send_to(&mut self, links: impl IntoIterator<Item = LinkId>, m: &Msg) {
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        if bytes.capacity() > super::outgoing::KEEP_CAPACITY {
            bytes = Vec::new();
        }
        msg::encode_into(&mut bytes, m);
        for l in links {
            self.send_raw(l, &bytes, m.hdr.mtype);
        }
        self.scratch = bytes;
    }

    fn gossip_entry(&self, id: NodeId) -> Gossip {
        let n = &self.nodes[&id];
        Gossip {
            name: n.name,
            ping_sent: (n.ping_sent / 1000) as u32,
            pong_received: (n.pong_received / 1000) as u32,
            ip: n.ip.clone(),
            port: n.port,
            cport: n.cport,
            flags: n.flags,
            pport: n.pport,
        }
    }

    /// The extensions our pings carry: the announced hostname and human node name, the
    /// nodes we forgot recently (so the others forget them too) and our shard id, as Redis
    /// 7.2's.
    fn ping_extensions(&self) -> Vec<Ext> {
        let mut exts = Vec::new();
        let me = self.me();
        if !me.hostname.is_empty() {
            exts.push(Ext::Hostname(me.hostname.as_bytes().to_vec()));
        }
        if !me.human_nodename.is_empty() {
            exts.push(Ext::HumanNodename(me.human_nodename.as_bytes().to_vec()));
        }
        let now = now_ms() / 1000;
        for (name, until) in &self.blacklist {
            if *until >= now {
                exts.push(Ext::ForgottenNode { name: *name, ttl: (until - now) as u64 });
            }
        }
        exts.push(Ext::ShardId(me.shard_id));
        exts
    }

    /// A PING, PONG or MEET with gossip about some random nodes and every node in PFAIL
    /// (Redis's clusterSendPing).
    pub fn send_ping(&mut self, link: LinkId, mtype: u16) {
        let Some(l) = self.links.get(&link) else { return };
        let (inbound, target) = (l.inbound, l.node);
        self.pings_sent += 1;
        let round = self.pings_sent;
        let total = self.nodes.len();
        let mut freshnodes = total as i64 - 2;
        let mut wanted = (total / 10).max(3) as i64;
        if wanted > freshnodes {
            wanted = freshnodes;
        }
        if !inbound && mtype == types::PING {
            if let Some(n) = target.and_then(|t| self.nodes.get_mut(&t)) {
                n.ping_sent = now_ms();
            }
        }
        let hdr = self.build_header(mtype);
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        let mut gossip = Vec::new();
        let mut chosen = Vec::new();
        let mut iterations = wanted * 3;
        while freshnodes > 0 && (gossip.len() as i64) < wanted && iterations > 0 {
            iterations -= 1;
            let id = ids[rand::random::<usize>() % ids.len()];
            let n = &self.nodes[&id];
            if id == self.myself || n.has(flag::PFAIL) {
                continue;
            }
            if n.flags & (flag::HANDSHAKE | flag::NOADDR) != 0 || (n.link.is_none() && n.numslots == 0) {
                freshnodes -= 1;
                continue;
            }
            if n.last_in_ping_gossip == round || chosen.contains(&id) {
                continue;
            }
            gossip.push(self.gossip_entry(id));
            chosen.push(id);
            freshnodes -= 1;
        }
        for id in &chosen {
            if let Some(n) = self.nodes.get_mut(id) {
                n.last_in_ping_gossip = round;
            }
        }
        // Every PFAIL node, so failure reports propagate fast.
        let pfail: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.has(flag::PFAIL) && n.flags & (flag::HANDSHAKE | flag::NOADDR) == 0)
            .map(|n| n.id)
            .take(self.stats_pfail_nodes)
            .collect();
        for id in pfail {
            gossip.push(self.gossip_entry(id));
        }
        let exts = self.ping_extensions();
        self.send_msg(link, &Msg { hdr, body: Body::Ping { gossip, exts } });
    }

    /// PONG every connected node (or my shard's replicas), to spread a change fast.
    pub fn broadcast_pong(&mut self, target: PongTarget) {
        let my_master = self.me().slaveof;
        let me = self.myself;
        let links: Vec<LinkId> = self
            .nodes
            .values()
            .filter(|n| n.id != me && !n.in_handshake())
            .filter(|n| {
                target == PongTarget::All
                    || (n.is_slave() && n.slaveof.is_some() && (n.slaveof == Some(me) || n.slaveof == my_master))
            })
            .filter_map(|n| n.link)
            .collect();
        for l in links {
            self.send_ping(l, types::PONG);
        }
    }

    /// Tell everyone a node failed.
    pub fn send_fail(&mut self, name: &msg::Name) {
        let hdr = self.build_header(types::FAIL);
        self.broadcast(&Msg { hdr, body: Body::Fail { about: *name } });
    }

    /// Tell a node (through `link`) the slots configuration of `node`.
    pub fn send_update(&mut self, link: Option<LinkId>, node: NodeId) {
        let Some(link) = link else { return };
        let Some(n) = self.nodes.get(&node) else { return };
        // Slots the owner stopped claiming are not advertised.
        let slots = n.slots.without(&self.owner_not_claiming);
        let body = Body::Update { config_epoch: n.config_epoch, name: n.name, slots };
        let hdr = self.build_header(types::UPDATE);
        self.send_msg(link, &Msg { hdr, body });
    }

    /// Propagate a PUBLISH (to everyone) or SPUBLISH (to my shard's nodes).
    pub fn propagate_publish(&mut self, channel: &[u8], message: &[u8], shard: bool) {
        let body = Body::Publish { channel: channel.to_vec(), message: message.to_vec() };
        if !shard {
            let hdr = self.build_header(types::PUBLISH);
            self.broadcast(&Msg { hdr, body });
            return;
        }
        let hdr = self.build_header(types::PUBLISHSHARD);
        let me = self.myself;
        let targets: SmallVec<[LinkId; 16]> = self
            .nodes_serving_slots_of(me)
            .into_iter()
            .filter_map(|id| self.nodes.get(&id))
            .filter(|n| n.flags & (flag::MYSELF | flag::HANDSHAKE) == 0)
            .filter_map(|n| n.link)
            .collect();
        self.send_to(targets, &Msg { hdr, body });
    }

    /// Ask every node for its vote (FAILOVER_AUTH_REQUEST; FORCEACK in a manual failover).
    pub fn request_failover_auth(&mut self) {
        let mut hdr = self.build_header(types::FAILOVER_AUTH_REQUEST);
        if self.mf_end != 0 {
            hdr.mflags[0] |= msg::MFLAG_FORCEACK;
        }
        self.broadcast(&Msg { hdr, body: Body::Empty });
    }

    /// Vote for `node` (FAILOVER_AUTH_ACK).
    pub fn send_failover_auth(&mut self, node: NodeId) {
        let Some(link) = self.nodes.get(&node).and_then(|n| n.link) else { return };
        let hdr = self.build_header(types::FAILOVER_AUTH_ACK);
        self.send_msg(link, &Msg { hdr, body: Body::Empty });
    }

    /// Ask our master to pause its clients for a manual failover.
    pub fn send_mfstart(&mut self, node: NodeId) {
        let Some(link) = self.nodes.get(&node).and_then(|n| n.link) else { return };
        let hdr = self.build_header(types::MFSTART);
        self.send_msg(link, &Msg { hdr, body: Body::Empty });
    }
}
