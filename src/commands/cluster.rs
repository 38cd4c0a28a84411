//! Cluster commands: CLUSTER and its subcommands, ASKING, READONLY, READWRITE, RESTORE-ASKING;
//! and the cluster admission checks the pipeline calls (Redis's getNodeByQuery for clients,
//! scriptVerifyClusterState for `redis.call`). The cluster state itself is `crate::cluster`.

use bytes::Bytes;
use std::sync::Arc;

use super::args::{self, is};
use super::pipeline::Command;
use super::{errors, flags, CmdError, CmdResult, CommandSpec, Ctx};
use crate::cluster::node::{name_str, NodeId};
use crate::cluster::route::{Query, QueryCtx};
use crate::cluster::state::{todo, MF_TIMEOUT};
use crate::cluster::{Cluster, SLOTS};

use crate::keyspace::now_ms;
use crate::server::{log, Server};
use crate::session::client::Client;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("cluster", super::server::container_help).subs(CLUSTER_SUBS),
    CommandSpec::new("asking", asking),
    CommandSpec::new("readonly", readonly),
    CommandSpec::new("readwrite", readwrite),
    CommandSpec::new("restore-asking", super::persistence::restore),
];

static CLUSTER_SUBS: &[CommandSpec] = &[
    CommandSpec::new("help", help),
    CommandSpec::new("addslots", addslots),
    CommandSpec::new("addslotsrange", addslotsrange),
    CommandSpec::new("bumpepoch", bumpepoch),
    CommandSpec::new("count-failure-reports", count_failure_reports),
    CommandSpec::new("countkeysinslot", countkeysinslot),
    CommandSpec::new("delslots", addslots),
    CommandSpec::new("delslotsrange", addslotsrange),
    CommandSpec::new("failover", failover),
    CommandSpec::new("flushslots", flushslots),
    CommandSpec::new("forget", forget),
    CommandSpec::new("getkeysinslot", getkeysinslot),
    CommandSpec::new("info", info),
    CommandSpec::new("keyslot", keyslot),
    CommandSpec::new("links", links),
    CommandSpec::new("meet", meet),
    CommandSpec::new("myid", myid),
    CommandSpec::new("myshardid", myshardid),
    CommandSpec::new("nodes", nodes),
    CommandSpec::new("replicas", replicas),
    CommandSpec::new("replicate", replicate),
    CommandSpec::new("reset", reset),
    CommandSpec::new("saveconfig", saveconfig),
    CommandSpec::new("set-config-epoch", set_config_epoch),
    CommandSpec::new("setslot", setslot),
    CommandSpec::new("shards", shards),
    CommandSpec::new("slaves", replicas),
    CommandSpec::new("slots", slots),
];

const DISABLED: &str = "This instance has cluster support disabled";

fn cluster(ctx: &Ctx) -> Result<Arc<Cluster>, CmdError> {
    ctx.server.cluster.get().cloned().ok_or_else(|| CmdError::new(DISABLED))
}

/// Redis's addReplySubcommandSyntaxError.
fn syntax(ctx: &Ctx) -> CmdError {
    CmdError::new(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try CLUSTER HELP.",
        args::text(&ctx.args[1]).chars().take(128).collect::<String>()
    ))
}

/// Redis's getSlotOrReply.
fn slot_arg(a: &[u8]) -> Result<usize, CmdError> {
    match crate::util::num::parse_i64(a) {
        Some(s) if (0..SLOTS as i64).contains(&s) => Ok(s as usize),
        _ => Err(CmdError::new("Invalid or out of range slot")),
    }
}

/// The number of keys in database 0, without waiting for a lock the command already holds.
fn db0_size(ctx: &mut Ctx) -> usize {
    if ctx.db.holds_locks() && ctx.db.is_all_locked() {
        let index = ctx.db.index;
        ctx.db.index = 0;
        let n = ctx.db.len();
        ctx.db.index = index;
        n
    } else {
        ctx.server.keyspace.db_counts(0).0
    }
}

/// COUNTKEYSINSLOT / GETKEYSINSLOT on database 0.
fn slot_keys(ctx: &mut Ctx, slot: u16, max: usize) -> (usize, Vec<Bytes>) {
    if ctx.db.holds_locks() && ctx.db.is_all_locked() {
        let index = ctx.db.index;
        ctx.db.index = 0;
        let r = crate::cluster::keys_in_slot(ctx.db, slot, max);
        ctx.db.index = index;
        r
    } else {
        let shard = crate::keyspace::shard_of_slot(slot);
        let mut view = ctx.server.keyspace.lock_shard(0, shard);
        crate::cluster::keys_in_slot(&mut view, slot, max)
    }
}

fn help(ctx: &mut Ctx) -> CmdResult {
    cluster(ctx)?;
    super::server::reply_help(
        ctx,
        "CLUSTER",
        &[
            "ADDSLOTS <slot> [<slot> ...]",
            "    Assign slots to current node.",
            "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
            "    Assign slots which are between <start-slot> and <end-slot> to current node.",
            "BUMPEPOCH",
            "    Advance the cluster config epoch.",
            "COUNT-FAILURE-REPORTS <node-id>",
            "    Return number of failure reports for <node-id>.",
            "COUNTKEYSINSLOT <slot>",
            "    Return the number of keys in <slot>.",
            "DELSLOTS <slot> [<slot> ...]",
            "    Delete slots information from current node.",
            "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
            "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
            "FAILOVER [FORCE|TAKEOVER]",
            "    Promote current replica node to being a master.",
            "FORGET <node-id>",
            "    Remove a node from the cluster.",
            "GETKEYSINSLOT <slot> <count>",
            "    Return key names stored by current node in a slot.",
            "FLUSHSLOTS",
            "    Delete current node own slots information.",
            "INFO",
            "    Return information about the cluster.",
            "KEYSLOT <key>",
            "    Return the hash slot for <key>.",
            "MEET <ip> <port> [<bus-port>]",
            "    Connect nodes into a working cluster.",
            "MYID",
            "    Return the node id.",
            "MYSHARDID",
            "    Return the node's shard id.",
            "NODES",
            "    Return cluster configuration seen by node. Output format:",
            "    <id> <ip:port@bus-port[,hostname]> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
            "REPLICATE <node-id>",
            "    Configure current node as replica to <node-id>.",
            "RESET [HARD|SOFT]",
            "    Reset current node (default: soft).",
            "SET-CONFIG-EPOCH <epoch>",
            "    Set config epoch of current node.",
            "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
            "    Set slot state.",
            "REPLICAS <node-id>",
            "    Return <node-id> replicas.",
            "SAVECONFIG",
            "    Force saving cluster configuration on disk.",
            "SLOTS",
            "    Return information about slots range mappings. Each range is made of:",
            "    start, end, master and replicas IP addresses, ports and ids",
            "SHARDS",
            "    Return information about slot range mappings and the nodes associated with them.",
            "LINKS",
            "    Return information about all network links between this node and its peers.",
            "    Output format is an array where each array element is a map containing attributes of a link",
        ],
    );
    Ok(())
}

fn meet(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let args = ctx.args;
    if args.len() > 5 {
        return Err(syntax(ctx));
    }
    let port = crate::util::num::parse_i64(&args[3])
        .ok_or_else(|| CmdError::new(format!("Invalid base port specified: {}", args::text(&args[3]))))?;
    let cport = match args.get(4) {
        Some(a) => crate::util::num::parse_i64(a)
            .ok_or_else(|| CmdError::new(format!("Invalid bus port specified: {}", args::text(a))))?,
        None => port + 10000,
    };
    let ip = args::text(&args[2]);
    match c.with(|st| st.start_handshake(&ip, port, cport)) {
        Err(true) => Err(CmdError::new(format!("Invalid node address specified: {ip}:{}", args::text(&args[3])))),
        _ => {
            ctx.reply.ok();
            Ok(())
        }
    }
}

fn nodes(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let lines = crate::cluster::config::Lines::Client { tls: ctx.client.tls };
    let text = c.read(|st| st.nodes_description(lines));
    ctx.reply.verbatim(b"txt", text.as_bytes());
    Ok(())
}

fn myid(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let name = c.read(|st| st.me().name);
    ctx.reply.bulk(&name);
    Ok(())
}

fn myshardid(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let id = c.read(|st| st.me().shard_id);
    ctx.reply.bulk(&id);
    Ok(())
}

/// One node in CLUSTER SLOTS (addNodeToNodeReply), with the port of the client's connection
/// type.
fn node_entry(st: &crate::cluster::State, id: NodeId, tls: bool, r: &mut crate::protocol::ReplySink) {
    let n = &st.nodes[&id];
    let pref = st.cfg.preferred_endpoint;
    r.array(4);
    match pref {
        1 if !n.hostname.is_empty() => r.bulk(n.hostname.as_bytes()),
        1 => r.bulk(b"?"),
        2 => r.null(),
        _ => r.bulk(n.ip.as_bytes()),
    }
    r.int(st.client_port(n, tls) as i64);
    r.bulk(&n.name);
    let ip = pref != 0;
    let host = pref != 1 && !n.hostname.is_empty();
    r.map(ip as usize + host as usize);
    if ip {
        r.bulk(b"ip");
        r.bulk(n.ip.as_bytes());
    }
    if host {
        r.bulk(b"hostname");
        r.bulk(n.hostname.as_bytes());
    }
}

fn slots(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let tls = ctx.client.tls;
    let r = &mut *ctx.reply;
    c.read(|st| {
        let mut ranges: Vec<(usize, usize, NodeId)> = Vec::new();
        let mut j = 0;
        while j < SLOTS {
            let Some(n) = st.slots[j] else {
                j += 1;
                continue;
            };
            let start = j;
            while j < SLOTS && st.slots[j] == Some(n) {
                j += 1;
            }
            ranges.push((start, j - 1, n));
        }
        r.array(ranges.len());
        for (a, b, n) in ranges {
            let replicas: Vec<NodeId> =
                st.nodes[&n].slaves.iter().copied().filter(|&s| st.replica_available(s)).collect();
            r.array(3 + replicas.len());
            r.int(a as i64);
            r.int(b as i64);
            node_entry(st, n, tls, r);
            for s in replicas {
                node_entry(st, s, tls, r);
            }
        }
    });
    Ok(())
}

/// One node in CLUSTER SHARDS (addNodeDetailsToShardReply).
fn shard_node(st: &crate::cluster::State, id: NodeId, r: &mut crate::protocol::ReplySink) {
    let n = &st.nodes[&id];
    let offset = if id == st.myself { st.my_repl_offset() } else { n.repl_offset };
    let mut fields: Vec<(&str, Result<String, i64>)> = vec![("id", Ok(n.name_str().to_string()))];
    // Both ports (Redis 7.2's addNodeDetailsToShardReply).
    let (port, tls_port) = n.client_ports(st.cfg.tls_cluster);
    if port != 0 {
        fields.push(("port", Err(port as i64)));
    }
    if tls_port != 0 {
        fields.push(("tls-port", Err(tls_port as i64)));
    }
    fields.push(("ip", Ok(n.ip.clone())));
    let endpoint = match st.cfg.preferred_endpoint {
        1 if !n.hostname.is_empty() => n.hostname.clone(),
        1 => "?".into(),
        2 => String::new(),
        _ => n.ip.clone(),
    };
    fields.push(("endpoint", Ok(endpoint)));
    if !n.hostname.is_empty() {
        fields.push(("hostname", Ok(n.hostname.clone())));
    }
    fields.push(("role", Ok(if n.is_slave() { "replica" } else { "master" }.into())));
    fields.push(("replication-offset", Err(offset)));
    let health = if n.failed() {
        "fail"
    } else if n.is_slave() && offset == 0 {
        "loading"
    } else {
        "online"
    };
    fields.push(("health", Ok(health.into())));
    r.map(fields.len());
    for (k, v) in fields {
        r.bulk(k.as_bytes());
        match v {
            Ok(s) => r.bulk(s.as_bytes()),
            Err(i) => r.int(i),
        }
    }
}

fn shards(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let r = &mut *ctx.reply;
    c.read(|st| {
        let ranges = st.slot_ranges();
        let masters: Vec<NodeId> = st.nodes.values().filter(|n| n.is_master()).map(|n| n.id).collect();
        r.array(masters.len());
        for m in masters {
            r.map(2);
            r.bulk(b"slots");
            let rr = ranges.get(&m).map(|v| v.as_slice()).unwrap_or(&[]);
            r.array(rr.len() * 2);
            for &(a, b) in rr {
                r.int(a as i64);
                r.int(b as i64);
            }
            r.bulk(b"nodes");
            let nodes = st.nodes_serving_slots_of(m);
            r.array(nodes.len());
            for n in nodes {
                shard_node(st, n, r);
            }
        }
    });
    Ok(())
}

fn flushslots(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    if db0_size(ctx) != 0 {
        return Err(CmdError::new("DB must be empty to perform CLUSTER FLUSHSLOTS."));
    }
    c.with(|st| {
        let me = st.myself;
        st.del_node_slots(me);
        st.do_before_sleep(todo::UPDATE_STATE | todo::SAVE_CONFIG);
    });
    ctx.reply.ok();
    Ok(())
}

/// Check the slots of ADDSLOTS / DELSLOTS (checkSlotAssignmentsOrReply).
fn check_slots(st: &crate::cluster::State, seen: &mut [u8], del: bool, a: usize, b: usize) -> Result<(), CmdError> {
    for (slot, owner) in st.slots.iter().enumerate().take(b + 1).skip(a) {
        if del && owner.is_none() {
            return Err(CmdError::new(format!("Slot {slot} is already unassigned")));
        } else if !del && owner.is_some() {
            return Err(CmdError::new(format!("Slot {slot} is already busy")));
        }
        seen[slot] += 1;
        if seen[slot] == 2 {
            return Err(CmdError::new(format!("Slot {slot} specified multiple times")));
        }
    }
    Ok(())
}

/// Assign or unassign the checked slots (clusterUpdateSlots).
fn update_slots(st: &mut crate::cluster::State, seen: &[u8], del: bool) {
    let me = st.myself;
    for (j, &s) in seen.iter().enumerate() {
        if s == 0 {
            continue;
        }
        st.importing_from[j] = None;
        if del {
            st.del_slot(j);
        } else {
            st.add_slot(me, j);
        }
    }
    st.route_dirty = true;
    st.do_before_sleep(todo::UPDATE_STATE | todo::SAVE_CONFIG);
}

/// ADDSLOTS / DELSLOTS.
fn addslots(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let args = ctx.args;
    let del = is(&args[1], "delslots");
    let slots: Vec<usize> = args[2..].iter().map(|a| slot_arg(a)).collect::<Result<_, _>>()?;
    c.with(|st| {
        let mut seen = vec![0u8; SLOTS];
        for &s in &slots {
            check_slots(st, &mut seen, del, s, s)?;
        }
        update_slots(st, &seen, del);
        Ok::<_, CmdError>(())
    })?;
    ctx.reply.ok();
    Ok(())
}

/// ADDSLOTSRANGE / DELSLOTSRANGE.
fn addslotsrange(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let args = ctx.args;
    if args.len() % 2 == 1 {
        return Err(CmdError::new(format!(
            "wrong number of arguments for 'cluster|{}' command",
            args::text(&args[1]).to_ascii_lowercase()
        )));
    }
    let del = is(&args[1], "delslotsrange");
    c.with(|st| {
        let mut seen = vec![0u8; SLOTS];
        for pair in args[2..].chunks(2) {
            let a = slot_arg(&pair[0])?;
            let b = slot_arg(&pair[1])?;
            if a > b {
                return Err(CmdError::new(format!("start slot number {a} is greater than end slot number {b}")));
            }
            check_slots(st, &mut seen, del, a, b)?;
        }
        update_slots(st, &seen, del);
        Ok(())
    })?;
    ctx.reply.ok();
    Ok(())
}

fn setslot(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let args = ctx.args;
    if c.read(|st| st.is_myself_slave()) {
        return Err(CmdError::new("Please use SETSLOT only with masters."));
    }
    let slot = slot_arg(&args[2])?;
    let action = args::text(&args[3]).to_ascii_lowercase();
    let node_arg = args.get(4).cloned();
    // Keys are counted before the cluster lock is taken (nothing locks shards under it).
    let keys = if action == "node" { slot_keys(ctx, slot as u16, 0).0 } else { 0 };
    let result = c.with(|st| -> Result<(), CmdError> {
        let me = st.myself;
        let lookup = |st: &crate::cluster::State, a: &Bytes| st.lookup(a);
        match (action.as_str(), &node_arg) {
            ("migrating", Some(a)) if args.len() == 5 => {
                if st.slots[slot] != Some(me) {
                    return Err(CmdError::new(format!("I'm not the owner of hash slot {slot}")));
                }
                let n =
                    lookup(st, a).ok_or_else(|| CmdError::new(format!("I don't know about node {}", args::text(a))))?;
                if st.nodes[&n].is_slave() {
                    return Err(CmdError::new("Target node is not a master"));
                }
                st.migrating_to[slot] = Some(n);
            }
            ("importing", Some(a)) if args.len() == 5 => {
                if st.slots[slot] == Some(me) {
                    return Err(CmdError::new(format!("I'm already the owner of hash slot {slot}")));
                }
                let n =
                    lookup(st, a).ok_or_else(|| CmdError::new(format!("I don't know about node {}", args::text(a))))?;
                if st.nodes[&n].is_slave() {
                    return Err(CmdError::new("Target node is not a master"));
                }
                st.importing_from[slot] = Some(n);
            }
            ("stable", None) if args.len() == 4 => {
                st.importing_from[slot] = None;
                st.migrating_to[slot] = None;
            }
            ("node", Some(a)) if args.len() == 5 => {
                let n = lookup(st, a).ok_or_else(|| CmdError::new(format!("Unknown node {}", args::text(a))))?;
                if st.nodes[&n].is_slave() {
                    return Err(CmdError::new("Target node is not a master"));
                }
                if st.slots[slot] == Some(me) && n != me && keys != 0 {
                    return Err(CmdError::new(format!(
                        "Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
                    )));
                }
                if keys == 0 && st.migrating_to[slot].is_some() {
                    st.migrating_to[slot] = None;
                }
                let was_mine = st.slots[slot] == Some(me);
                st.del_slot(slot);
                st.add_slot(n, slot);
                if was_mine && n != me && st.me().numslots == 0 && st.cfg.allow_replica_migration {
                    log::notice(&format!(
                        "Configuration change detected. Reconfiguring myself as a replica of {}",
                        st.nodes[&n].log_name()
                    ));
                    st.set_master(n);
                    st.do_before_sleep(todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG);
                }
                if n == me && st.importing_from[slot].is_some() {
                    // A manual migration: a new epoch without agreement, spread at once.
                    if st.bump_epoch_without_consensus() {
                        log::notice(&format!("configEpoch updated after importing slot {slot}"));
                    }
                    st.importing_from[slot] = None;
                    st.broadcast_pong(crate::cluster::send::PongTarget::All);
                }
            }
            _ => return Err(CmdError::new("Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")),
        }
        st.route_dirty = true;
        st.do_before_sleep(todo::SAVE_CONFIG | todo::UPDATE_STATE);
        Ok(())
    });
    result?;
    ctx.reply.ok();
    Ok(())
}

fn bumpepoch(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let (bumped, epoch) = c.with(|st| (st.bump_epoch_without_consensus(), st.me().config_epoch));
    ctx.reply.simple(&format!("{} {epoch}", if bumped { "BUMPED" } else { "STILL" }));
    Ok(())
}

/// CLUSTER INFO's text (genClusterInfoString).
pub fn info_string(st: &crate::cluster::State) -> String {
    let (mut assigned, mut ok, mut pfail, mut fail) = (0, 0, 0, 0);
    for s in st.slots.iter() {
        let Some(n) = s.and_then(|id| st.nodes.get(&id)) else { continue };
        assigned += 1;
        if n.failed() {
            fail += 1;
        } else if n.timed_out() {
            pfail += 1;
        } else {
            ok += 1;
        }
    }
    let me = st.me();
    let myepoch = match me.slaveof.and_then(|m| st.nodes.get(&m)) {
        Some(m) if me.is_slave() => m.config_epoch,
        _ => me.config_epoch,
    };
    let mut s = format!(
        "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{ok}\r\ncluster_slots_pfail:{pfail}\r\ncluster_slots_fail:{fail}\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{myepoch}\r\n",
        if st.ok { "ok" } else { "fail" },
        st.nodes.len(),
        st.size,
        st.current_epoch,
    );
    use crate::cluster::msg::types;
    let mut total = 0;
    for (i, &n) in st.stats_sent.iter().enumerate() {
        if n > 0 {
            total += n;
            s.push_str(&format!("cluster_stats_messages_{}_sent:{n}\r\n", types::name(i)));
        }
    }
    s.push_str(&format!("cluster_stats_messages_sent:{total}\r\n"));
    let mut total = 0;
    for (i, &n) in st.stats_received.iter().enumerate() {
        if n > 0 {
            total += n;
            s.push_str(&format!("cluster_stats_messages_{}_received:{n}\r\n", types::name(i)));
        }
    }
    s.push_str(&format!("cluster_stats_messages_received:{total}\r\n"));
    s.push_str(&format!("total_cluster_links_buffer_limit_exceeded:{}\r\n", st.links_buffer_limit_exceeded));
    s
}

fn info(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let text = c.read(info_string);
    ctx.reply.verbatim(b"txt", text.as_bytes());
    Ok(())
}

fn saveconfig(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    c.with(|st| {
        st.todo |= todo::FSYNC_CONFIG;
        st.save_config(true)
    })
    .map_err(|e| {
        CmdError::new(format!("error saving the cluster node config: {}", crate::config::kinds::strerror(&e)))
    })?;
    ctx.reply.ok();
    Ok(())
}

fn keyslot(ctx: &mut Ctx) -> CmdResult {
    cluster(ctx)?;
    ctx.reply.int(crate::keyspace::slot::key_hash_slot(&ctx.args[2]) as i64);
    Ok(())
}

fn countkeysinslot(ctx: &mut Ctx) -> CmdResult {
    cluster(ctx)?;
    let slot = args::int(&ctx.args[2])?;
    if !(0..SLOTS as i64).contains(&slot) {
        return Err(CmdError::new("Invalid slot"));
    }
    let n = slot_keys(ctx, slot as u16, 0).0;
    ctx.reply.int(n as i64);
    Ok(())
}

fn getkeysinslot(ctx: &mut Ctx) -> CmdResult {
    cluster(ctx)?;
    let slot = args::int(&ctx.args[2])?;
    let max = args::int(&ctx.args[3])?;
    if !(0..SLOTS as i64).contains(&slot) || max < 0 {
        return Err(CmdError::new("Invalid slot or number of keys"));
    }
    let (_, keys) = slot_keys(ctx, slot as u16, max.min(u32::MAX as i64) as usize);
    ctx.reply.array(keys.len());
    for k in keys {
        ctx.reply.bulk(&k);
    }
    Ok(())
}

fn forget(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let a = ctx.args[2].clone();
    c.with(|st| {
        let Some(n) = st.lookup(&a) else {
            // Already forgotten (perhaps told by another node): pretend it worked (Redis 7.2).
            if crate::cluster::node::to_name(&a).is_some_and(|name| st.blacklist_exists(&name)) {
                return Ok(());
            }
            return Err(CmdError::new(format!("Unknown node {}", args::text(&a))));
        };
        if n == st.myself {
            return Err(CmdError::new("I tried hard but I can't forget myself..."));
        }
        if st.is_myself_slave() && st.me().slaveof == Some(n) {
            return Err(CmdError::new("Can't forget my master!"));
        }
        let name = st.nodes[&n].name;
        st.blacklist_add(name, crate::cluster::state::BLACKLIST_TTL);
        st.del_node(n);
        st.do_before_sleep(todo::UPDATE_STATE | todo::SAVE_CONFIG);
        Ok(())
    })?;
    ctx.reply.ok();
    Ok(())
}

fn replicate(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let a = ctx.args[2].clone();
    let keys = db0_size(ctx);
    c.with(|st| {
        let n = st.lookup(&a).ok_or_else(|| CmdError::new(format!("Unknown node {}", args::text(&a))))?;
        if n == st.myself {
            return Err(CmdError::new("Can't replicate myself"));
        }
        if st.nodes[&n].is_slave() {
            return Err(CmdError::new("I can only replicate a master, not a replica."));
        }
        if st.me().is_master() && (st.me().numslots != 0 || keys != 0) {
            return Err(CmdError::new("To set a master the node must be empty and without assigned slots."));
        }
        st.set_master(n);
        st.do_before_sleep(todo::UPDATE_STATE | todo::SAVE_CONFIG);
        Ok(())
    })?;
    ctx.reply.ok();
    Ok(())
}

fn replicas(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let a = ctx.args[2].clone();
    let kind = crate::cluster::config::Lines::Client { tls: ctx.client.tls };
    let lines = c.read(|st| {
        let n = st.lookup(&a).ok_or_else(|| CmdError::new(format!("Unknown node {}", args::text(&a))))?;
        if st.nodes[&n].is_slave() {
            return Err(CmdError::new("The specified node is not a master"));
        }
        Ok(st.nodes[&n].slaves.iter().map(|&s| st.node_description(s, None, kind)).collect::<Vec<_>>())
    })?;
    ctx.reply.array(lines.len());
    for l in lines {
        ctx.reply.bulk(l.as_bytes());
    }
    Ok(())
}

fn count_failure_reports(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let a = ctx.args[2].clone();
    let n = c.with(|st| {
        let n = st.lookup(&a).ok_or_else(|| CmdError::new(format!("Unknown node {}", args::text(&a))))?;
        Ok::<_, CmdError>(st.failure_reports_count(n))
    })?;
    ctx.reply.int(n as i64);
    Ok(())
}

fn failover(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let args = ctx.args;
    if args.len() > 3 {
        return Err(syntax(ctx));
    }
    let (mut force, mut takeover) = (false, false);
    if let Some(a) = args.get(2) {
        if is(a, "force") {
            force = true;
        } else if is(a, "takeover") {
            takeover = true;
            force = true;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
    }
    c.with(|st| {
        if st.me().is_master() {
            return Err(CmdError::new("You should send CLUSTER FAILOVER to a replica"));
        }
        let Some(m) = st.me().slaveof else {
            return Err(CmdError::new("I'm a replica but my master is unknown to me"));
        };
        let mn = &st.nodes[&m];
        if !force && (mn.failed() || mn.link.is_none()) {
            return Err(CmdError::new("Master is down or failed, please use CLUSTER FAILOVER FORCE"));
        }
        st.reset_manual_failover();
        st.mf_end = now_ms() + MF_TIMEOUT;
        if takeover {
            log::notice("Taking over the master (user request).");
            st.bump_epoch_without_consensus();
            st.failover_replace_master();
        } else if force {
            log::notice("Forced failover user request accepted.");
            st.mf_can_start = true;
        } else {
            log::notice("Manual failover user request accepted.");
            st.send_mfstart(m);
        }
        Ok(())
    })?;
    ctx.reply.ok();
    Ok(())
}

fn set_config_epoch(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let epoch = args::int(&ctx.args[2])?;
    c.with(|st| {
        if epoch < 0 {
            return Err(CmdError::new(format!("Invalid config epoch specified: {epoch}")));
        }
        if st.nodes.len() > 1 {
            return Err(CmdError::new(
                "The user can assign a config epoch only when the node does not know any other node.",
            ));
        }
        if st.me().config_epoch != 0 {
            return Err(CmdError::new("Node config epoch is already non-zero"));
        }
        st.me_mut().config_epoch = epoch as u64;
        log::notice(&format!("configEpoch set to {epoch} via CLUSTER SET-CONFIG-EPOCH"));
        if st.current_epoch < epoch as u64 {
            st.current_epoch = epoch as u64;
        }
        st.route_dirty = true;
        st.do_before_sleep(todo::UPDATE_STATE | todo::SAVE_CONFIG);
        Ok(())
    })?;
    ctx.reply.ok();
    Ok(())
}

fn reset(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let args = ctx.args;
    if args.len() > 3 {
        return Err(syntax(ctx));
    }
    let hard = match args.get(2) {
        None => false,
        Some(a) if is(a, "hard") => true,
        Some(a) if is(a, "soft") => false,
        Some(_) => return Err(CmdError::new(errors::SYNTAX)),
    };
    let keys = db0_size(ctx);
    let was_replica = c.with(|st| {
        if st.me().is_master() && keys != 0 {
            return Err(CmdError::new("CLUSTER RESET can't be called with master nodes containing keys"));
        }
        Ok(st.reset(hard))
    })?;
    if was_replica {
        // A replica turned master starts empty (Redis's emptyData), through this command's
        // view (which may hold every lock already, under EXEC).
        drop(ctx.db.flush(true));
    }
    ctx.reply.ok();
    Ok(())
}

fn links(ctx: &mut Ctx) -> CmdResult {
    let c = cluster(ctx)?;
    let r = &mut *ctx.reply;
    c.read(|st| {
        let mut out = Vec::new();
        for n in st.nodes.values() {
            for l in [n.link, n.inbound_link].into_iter().flatten() {
                if let Some(link) = st.links.get(&l) {
                    out.push((link, n.name));
                }
            }
        }
        r.array(out.len());
        for (l, name) in out {
            let used = l.out.queued();
            r.map(6);
            r.bulk(b"direction");
            r.bulk(if l.inbound { b"from" } else { b"to" });
            r.bulk(b"node");
            r.bulk(name_str(&name).as_bytes());
            r.bulk(b"create-time");
            r.int(l.ctime);
            r.bulk(b"events");
            r.bulk(if used > 0 { b"rw" } else { b"r" });
            r.bulk(b"send-buffer-allocated");
            r.int(l.queued_peak.max(used) as i64);
            r.bulk(b"send-buffer-used");
            r.int(used as i64);
        }
    });
    Ok(())
}

fn asking(ctx: &mut Ctx) -> CmdResult {
    cluster(ctx)?;
    ctx.client.asking = true;
    ctx.reply.ok();
    Ok(())
}

fn readonly(ctx: &mut Ctx) -> CmdResult {
    cluster(ctx)?;
    ctx.client.readonly = true;
    ctx.reply.ok();
    Ok(())
}

fn readwrite(ctx: &mut Ctx) -> CmdResult {
    cluster(ctx)?;
    ctx.client.readonly = false;
    ctx.reply.ok();
    Ok(())
}

// ---- admission ------------------------------------------------------------------------------

/// The keys Redis's cluster checks read (getKeysFromCommand): the command's key finder, or
/// its legacy (first, last, step) range — which includes the shard channels of SPUBLISH and
/// SSUBSCRIBE.
fn cluster_keys<'a>(cmd: &Command, args: &'a [Bytes]) -> Vec<(u16, &'a [u8])> {
    let slot = |k: &'a Bytes| (crate::keyspace::slot::key_hash_slot(k), &k[..]);
    if let Some(f) = cmd.spec.getkeys {
        return f(args).iter().filter_map(|k| args.get(k.pos)).map(slot).collect();
    }
    let [first, last, step] = cmd.meta.legacy_range;
    if first <= 0 {
        return Vec::new();
    }
    let argc = args.len() as i64;
    let last = if last < 0 { argc + last as i64 } else { last as i64 };
    let mut out = Vec::new();
    let mut j = first as i64;
    while j <= last {
        if j < argc {
            out.push(slot(&args[j as usize]));
        }
        j += step.max(1) as i64;
    }
    out
}

fn is_pubsubshard(cmd: &Command) -> bool {
    matches!(cmd.spec.name, "ssubscribe" | "sunsubscribe" | "spublish")
}

/// Whether a command skips the cluster check: no key specs and no movable keys (EXEC is
/// always checked, for what it holds).
fn unchecked(cmd: &Command) -> bool {
    !cmd.has_flag(flags::MOVABLE_KEYS) && cmd.meta.key_specs.is_empty() && !cmd.has_flag(flags::TX_EXEC)
}

/// A write for the redirection (getCommandFlags): a write command, or a script with a shebang
/// or a function that did not declare `no-writes` (a READONLY client is redirected to the
/// master for it, not answered -READONLY).
fn writes(server: &Server, cmd: &Command, args: &[Bytes]) -> bool {
    cmd.has_flag(flags::WRITE)
        || (cmd.has_flag(flags::SCRIPT_RUN)
            && crate::scripting::declared::command_flags(&server.scripting, cmd.spec.name, args)
                .is_some_and(|f| f.write))
}

/// Redis's processCommand cluster redirection, for a client's command (or the transaction
/// EXEC would run). Err is the redirection or error reply.
pub fn admission(server: &Server, client: &Client, cmd: &'static Command, args: &[Bytes]) -> Result<(), String> {
    let Some(c) = server.cluster.get() else { return Ok(()) };
    if unchecked(cmd) {
        return Ok(());
    }
    let mut queries = Vec::new();
    let mut write = false;
    let mut asking = client.asking || cmd.has_flag(flags::ASKING);
    let mut pubsubshard = is_pubsubshard(cmd);
    let mut migrate = cmd.spec.name == "migrate";
    if cmd.has_flag(flags::TX_EXEC) {
        let Some(m) = &client.multi else { return Ok(()) };
        for argv in &m.commands {
            let Ok(qc) = super::pipeline::resolve(argv, super::pipeline::Caller::Exec) else { continue };
            let w = writes(server, qc, argv);
            write |= w;
            queries.push(Query { keys: cluster_keys(qc, argv), write: w });
        }
        // As Redis, these follow EXEC itself, not what it holds.
        asking = client.asking;
        pubsubshard = false;
        migrate = false;
    } else {
        write = writes(server, cmd, args);
        queries.push(Query { keys: cluster_keys(cmd, args), write });
    }
    let ctx = QueryCtx { asking, readonly: client.readonly, pubsubshard, migrate, tls: client.tls, write };
    let route = c.route();
    // The common case without any lookup: every key in a slot served here and stable.
    if route.ok && queries.iter().all(|q| q.keys.iter().all(|(s, _)| route.serves(*s))) {
        let first = queries.iter().flat_map(|q| q.keys.first()).next().map(|k| k.0);
        if queries.iter().all(|q| q.keys.iter().all(|(s, _)| Some(*s) == first)) {
            return Ok(());
        }
    }
    // CONFIG SET cluster-preferred-endpoint-type shows in the next redirection.
    let route = if route.preferred_endpoint != server.config.load().cluster_preferred_endpoint_type {
        c.read(|_| ());
        c.route()
    } else {
        route
    };
    let mut exists = |key: &[u8]| {
        let mut db = server.keyspace.lock_keys(0, &[key]);
        db.contains_raw(key) && !db.is_expired(key)
    };
    crate::cluster::route::route(&route, &queries, &ctx, &mut exists)
}

/// Redis's clusterRedirectBlockedClientIfNeeded, for a client blocked in `args` on `key`: the
/// error it is unblocked with once this node no longer serves (nor imports) the key's slot, or
/// the cluster is down; None while it waits on. Redis checks from its clients cron, where no
/// client is current, so MOVED names the ports `tls-cluster` picks.
pub fn blocked_redirect(server: &Server, client: &Client, args: &[Bytes], key: &[u8]) -> Option<String> {
    let c = server.cluster.get()?;
    let write =
        super::pipeline::resolve(args, super::pipeline::Caller::AofLoad).map_or(true, |cmd| cmd.has_flag(flags::WRITE));
    let slot = crate::keyspace::slot::key_hash_slot(key);
    c.route().blocked_redirect(slot, client.readonly && !write, server.config.load().tls_cluster)
}

/// Redis's scriptVerifyClusterState for a command a script calls: only local keys, and all in
/// one slot unless the script declared `allow-cross-slot-keys`.
pub fn script_check(
    server: &Server,
    client: &mut Client,
    cmd: &'static Command,
    args: &[Bytes],
    db: &mut crate::keyspace::Db<'_>,
) -> Result<(), String> {
    let Some(c) = server.cluster.get() else { return Ok(()) };
    if unchecked(cmd) {
        return Ok(());
    }
    let keys = cluster_keys(cmd, args);
    let write = cmd.has_flag(flags::WRITE);
    let ctx = QueryCtx {
        asking: client.asking || cmd.has_flag(flags::ASKING),
        readonly: client.readonly,
        pubsubshard: is_pubsubshard(cmd),
        migrate: cmd.spec.name == "migrate",
        tls: client.tls,
        write,
    };
    let route = c.route();
    let index = db.index;
    db.index = 0;
    let mut exists = |key: &[u8]| db.contains_raw(key) && !db.is_expired(key);
    let queries = [Query { keys, write }];
    let routed = crate::cluster::route::route(&route, &queries, &ctx, &mut exists);
    db.index = index;
    if let Err(e) = routed {
        return Err(if e.starts_with("-CLUSTERDOWN The cluster is down and only") {
            "Script attempted to execute a write command while the cluster is down and readonly".into()
        } else if e.starts_with("-CLUSTERDOWN The cluster is down") {
            "Script attempted to execute a command while the cluster is down".into()
        } else {
            "Script attempted to access a non local key in a cluster node".into()
        });
    }
    if let Some(&(slot, _)) = queries[0].keys.first() {
        if !client.cross_slot {
            match client.slot {
                None => client.slot = Some(slot),
                Some(s) if s != slot => {
                    return Err("Script attempted to access keys that do not hash to the same slot".into())
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Whether an error reply is a cluster redirection (a refused EXEC then discards its
/// transaction and answers the redirection itself, not EXECABORT).
pub fn is_redirect(text: &str) -> bool {
    ["-MOVED ", "-ASK ", "-TRYAGAIN ", "-CROSSSLOT ", "-CLUSTERDOWN "].iter().any(|p| text.starts_with(p))
}

/// A command finished: ASKING lasts for one command (or one transaction).
pub fn after_command(client: &mut Client, cmd: Option<&Command>) {
    if client.asking && client.multi.is_none() && cmd.is_none_or(|c| c.spec.name != "asking") {
        client.asking = false;
    }
}

/// The slot a script's declared keys are in (the script's starting slot), when clustered.
pub fn declared_slot(server: &Server, keys: &[Bytes]) -> Option<u16> {
    server.cluster.get()?;
    keys.first().map(|k| crate::keyspace::slot::key_hash_slot(k))
}
