//! nodes.conf and CLUSTER NODES: a node's description line (the same text for both), writing
//! the file atomically (a temporary file, fsync, rename, as Redis 7.2 does) and loading it at
//! start-up with Redis's checks (a corrupted file stops the server). The file is locked with
//! flock for the life of the process so two nodes never share one.

use std::io::Write;

use super::node::{flag, flags_repr, name_str, to_name, NodeId};
use super::state::{todo, State};
use super::SLOTS;
use crate::keyspace::now_ms;
use crate::server::log;
use crate::util::num::atoi;

/// Who node lines are for: nodes.conf, or a client (CLUSTER NODES and REPLICAS show it the
/// ports of its own connection type, TLS or not, as Redis 7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lines {
    File,
    Client { tls: bool },
}

impl State {
    /// One node's line (clusterGenNodeDescription), without the trailing newline. The file's
    /// lines carry Redis 7.2's aux fields after the address (`,hostname,tls-port=0,nodename=x,
    /// shard-id=y`: the comma stays when the hostname is empty); CLUSTER NODES shows none.
    pub fn node_description(&self, id: NodeId, ranges: Option<&[(usize, usize)]>, lines: Lines) -> String {
        let n = &self.nodes[&id];
        let for_file = lines == Lines::File;
        let port = match lines {
            Lines::File => n.port,
            Lines::Client { tls } => self.client_port(n, tls),
        };
        let mut s = String::with_capacity(128);
        s.push_str(n.name_str());
        s.push_str(&format!(" {}:{port}@{}", n.ip, n.cport));
        if !n.hostname.is_empty() || for_file {
            s.push(',');
            s.push_str(&n.hostname);
        }
        if for_file {
            // The other port (the first is in the address): the plain one with tls-cluster.
            let other = if self.cfg.tls_cluster { "tcp-port" } else { "tls-port" };
            s.push_str(&format!(",{other}={}", n.pport));
            if !n.human_nodename.is_empty() {
                s.push_str(&format!(",nodename={}", n.human_nodename));
            }
            s.push_str(&format!(",shard-id={}", name_str(&n.shard_id)));
        }
        s.push(' ');
        s.push_str(&flags_repr(n.flags));
        s.push(' ');
        match n.slaveof.and_then(|m| self.nodes.get(&m)) {
            Some(m) => s.push_str(m.name_str()),
            None => s.push('-'),
        }
        let epoch = match n.slaveof.and_then(|m| self.nodes.get(&m)) {
            Some(m) if n.is_slave() => m.config_epoch,
            _ => n.config_epoch,
        };
        let connected = n.link.is_some() || n.has(flag::MYSELF);
        s.push_str(&format!(
            " {} {} {} {}",
            n.ping_sent,
            n.pong_received,
            epoch,
            if connected { "connected" } else { "disconnected" }
        ));
        let own;
        let ranges = match ranges {
            Some(r) => r,
            None => {
                own = bitmap_ranges(|j| n.slots.get(j));
                &own
            }
        };
        for &(a, b) in ranges {
            if a == b {
                s.push_str(&format!(" {a}"));
            } else {
                s.push_str(&format!(" {a}-{b}"));
            }
        }
        if n.has(flag::MYSELF) {
            for j in 0..SLOTS {
                if let Some(t) = self.migrating_to[j].and_then(|t| self.nodes.get(&t)) {
                    s.push_str(&format!(" [{j}->-{}]", t.name_str()));
                } else if let Some(f) = self.importing_from[j].and_then(|f| self.nodes.get(&f)) {
                    s.push_str(&format!(" [{j}-<-{}]", f.name_str()));
                }
            }
        }
        s
    }

    /// The slot ranges of every node, from the slot table (clusterGenNodesSlotsInfo).
    pub fn slot_ranges(&self) -> std::collections::HashMap<NodeId, Vec<(usize, usize)>> {
        let mut out: std::collections::HashMap<NodeId, Vec<(usize, usize)>> = Default::default();
        let mut j = 0;
        while j < SLOTS {
            let Some(n) = self.slots[j] else {
                j += 1;
                continue;
            };
            let start = j;
            while j < SLOTS && self.slots[j] == Some(n) {
                j += 1;
            }
            out.entry(n).or_default().push((start, j - 1));
        }
        out
    }

    /// CLUSTER NODES, or nodes.conf's node lines (which leave out nodes in handshake).
    pub fn nodes_description(&self, lines: Lines) -> String {
        let for_file = lines == Lines::File;
        let ranges = self.slot_ranges();
        let mut out = String::new();
        for n in self.nodes.values() {
            if for_file && n.in_handshake() {
                continue;
            }
            let r = ranges.get(&n.id).map(|v| v.as_slice()).unwrap_or(&[]);
            out.push_str(&self.node_description(n.id, Some(r), lines));
            out.push('\n');
        }
        out
    }

    /// Write nodes.conf (clusterSaveConfig).
    pub fn save_config(&mut self, fsync: bool) -> std::io::Result<()> {
        self.todo &= !todo::SAVE_CONFIG;
        if fsync {
            self.todo &= !todo::FSYNC_CONFIG;
        }
        let mut content = self.nodes_description(Lines::File);
        content.push_str(&format!("vars currentEpoch {} lastVoteEpoch {}\n", self.current_epoch, self.last_vote_epoch));
        write_atomically(&self.cfg.config_file, content.as_bytes(), fsync)
    }

    /// Save, or stop the server as Redis does when its cluster config cannot be written.
    pub fn save_now_or_die(&mut self) {
        let fsync = self.todo & todo::FSYNC_CONFIG != 0;
        if let Err(e) = self.save_config(fsync) {
            log::warning(&format!("Could not save the cluster config file: {e}"));
            log::warning("Fatal: can't update cluster config file.");
            std::process::exit(1);
        }
    }

    /// Load nodes.conf. Ok(false) when there is none (or it is empty); Err for a corrupted file.
    pub fn load_config(&mut self, path: &str) -> Result<bool, String> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(format!("Loading the cluster node config from {path}: {e}")),
        };
        self.load_config_text(&text)
    }

    /// Load nodes.conf's content (see [`State::load_config`]).
    pub fn load_config_text(&mut self, text: &[u8]) -> Result<bool, String> {
        if text.is_empty() {
            return Ok(false);
        }
        let fmterr = || "Unrecoverable error: corrupted cluster config file.".to_string();
        let mut myself = None;
        // Replicas whose line has no shard id (a file older than 7.2) take their master's.
        let mut follows_master = Vec::new();
        for line in text.split(|&c| c == b'\n') {
            if line.is_empty() || line.iter().all(|c| c.is_ascii_whitespace()) {
                continue;
            }
            let argv = crate::util::split_args::split_args(line).ok_or_else(fmterr)?;
            if argv.is_empty() {
                continue;
            }
            let arg = |i: usize| String::from_utf8_lossy(&argv[i]).into_owned();
            if argv[0].eq_ignore_ascii_case(b"vars") {
                if argv.len() % 2 == 0 {
                    return Err(fmterr());
                }
                for j in (1..argv.len()).step_by(2) {
                    let v: u64 = arg(j + 1).parse().unwrap_or(0);
                    if argv[j].eq_ignore_ascii_case(b"currentEpoch") {
                        self.current_epoch = v;
                    } else if argv[j].eq_ignore_ascii_case(b"lastVoteEpoch") {
                        self.last_vote_epoch = v;
                    } else {
                        log::notice(&format!("Skipping unknown cluster config variable '{}'", arg(j)));
                    }
                }
                continue;
            }
            if argv.len() < 8 {
                return Err(fmterr());
            }
            let name = to_name(&argv[0]).ok_or_else(fmterr)?;
            let id = match self.lookup_name(&name) {
                Some(id) => id,
                None => self.create_node(Some(name), 0),
            };
            // ip:port[@cport][,hostname[,aux=value...]] (Redis 7.2 adds the aux fields).
            let addr = arg(1);
            let mut parts = addr.split(',');
            let hostport = parts.next().unwrap_or("");
            let mut hostname = String::new();
            let mut human = String::new();
            let mut pport = 0;
            let mut shard_id = None;
            for (i, p) in parts.enumerate() {
                match p.split_once('=') {
                    Some(("nodename", v)) => human = v.to_string(),
                    Some(("shard-id", v)) => shard_id = Some(to_name(v.as_bytes()).ok_or_else(fmterr)?),
                    // The port not in the address: the plain one with tls-cluster.
                    Some((k @ ("tcp-port" | "tls-port"), v)) if (k == "tcp-port") == self.cfg.tls_cluster => {
                        pport = u16::try_from(atoi(v)).map_err(|_| fmterr())?
                    }
                    Some(_) => {}
                    None if i == 0 => hostname = p.to_string(),
                    None => {}
                }
            }
            match shard_id {
                Some(s) => self.nodes.get_mut(&id).expect("created").shard_id = s,
                None => follows_master.push(id),
            }
            let (ip, ports) = hostport.rsplit_once(':').ok_or_else(fmterr)?;
            let (port, cport) = match ports.split_once('@') {
                Some((p, c)) => (atoi(p), atoi(c)),
                None => (atoi(ports), atoi(ports).saturating_add(10000)),
            };
            {
                let n = self.nodes.get_mut(&id).expect("created");
                n.hostname = hostname;
                n.human_nodename = human;
                n.ip = ip.to_string();
                n.port = port as u16;
                n.pport = pport;
                n.cport = cport as u16;
            }
            for f in arg(2).split(',') {
                let n = self.nodes.get_mut(&id).expect("created");
                match f.to_ascii_lowercase().as_str() {
                    "myself" => {
                        if myself.is_some() {
                            return Err(fmterr());
                        }
                        myself = Some(id);
                        n.flags |= flag::MYSELF;
                    }
                    "master" => n.flags |= flag::MASTER,
                    "slave" => n.flags |= flag::SLAVE,
                    "fail?" => n.flags |= flag::PFAIL,
                    "fail" => {
                        n.flags |= flag::FAIL;
                        n.fail_time = now_ms();
                    }
                    "handshake" => n.flags |= flag::HANDSHAKE,
                    "noaddr" => n.flags |= flag::NOADDR,
                    "nofailover" => n.flags |= flag::NOFAILOVER,
                    "noflags" => {}
                    _ => return Err("Unknown flag in redis cluster config file".into()),
                }
            }
            if argv[3].first() != Some(&b'-') {
                let mname = to_name(&argv[3]).ok_or_else(fmterr)?;
                let master = match self.lookup_name(&mname) {
                    Some(m) => m,
                    None => self.create_node(Some(mname), 0),
                };
                self.nodes.get_mut(&id).expect("created").slaveof = Some(master);
                self.add_slave(master, id);
            }
            {
                let n = self.nodes.get_mut(&id).expect("created");
                if atoi(arg(4)) != 0 {
                    n.ping_sent = now_ms();
                }
                if atoi(arg(5)) != 0 {
                    n.pong_received = now_ms();
                }
                n.config_epoch = if n.is_slave() && n.slaveof.is_some() { 0 } else { arg(6).parse().unwrap_or(0) };
            }
            for a in &argv[8..] {
                let a = String::from_utf8_lossy(a).into_owned();
                if let Some(rest) = a.strip_prefix('[') {
                    // [slot->-name] migrating, [slot-<-name] importing.
                    let (slot, tail) = rest.split_once('-').ok_or_else(fmterr)?;
                    let slot = atoi(slot);
                    if !(0..SLOTS as i64).contains(&slot) {
                        return Err(fmterr());
                    }
                    let dir = tail.chars().next().ok_or_else(fmterr)?;
                    let target = tail.get(2..).and_then(|t| t.strip_suffix(']')).ok_or_else(fmterr)?;
                    let tname = to_name(target.as_bytes()).ok_or_else(fmterr)?;
                    let t = match self.lookup_name(&tname) {
                        Some(t) => t,
                        None => self.create_node(Some(tname), 0),
                    };
                    if dir == '>' {
                        self.migrating_to[slot as usize] = Some(t);
                    } else {
                        self.importing_from[slot as usize] = Some(t);
                    }
                    continue;
                }
                let (start, stop) = match a.split_once('-') {
                    Some((x, y)) => (atoi(x), atoi(y)),
                    None => (atoi(&a), atoi(&a)),
                };
                if !(0..SLOTS as i64).contains(&start) || !(0..SLOTS as i64).contains(&stop) {
                    return Err(fmterr());
                }
                for j in start..=stop {
                    self.add_slot(id, j as usize);
                }
            }
        }
        let Some(me) = myself else { return Err(fmterr()) };
        for id in follows_master {
            if let Some(m) = self.nodes[&id].slaveof {
                let shard = self.nodes[&m].shard_id;
                self.nodes.get_mut(&id).expect("loaded").shard_id = shard;
            }
        }
        // The random node created with the state is replaced by the one in the file.
        let placeholder = self.myself;
        if placeholder != me {
            self.myself = me;
            self.del_node(placeholder);
        }
        log::notice(&format!("Node configuration loaded, I'm {}", name_str(&self.me().name)));
        let max = self.max_epoch();
        if max > self.current_epoch {
            self.current_epoch = max;
        }
        self.route_dirty = true;
        Ok(true)
    }
}

/// Ranges of consecutive slots for which `has` holds.
pub fn bitmap_ranges(has: impl Fn(usize) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut j = 0;
    while j < SLOTS {
        if !has(j) {
            j += 1;
            continue;
        }
        let start = j;
        while j < SLOTS && has(j) {
            j += 1;
        }
        out.push((start, j - 1));
    }
    out
}

/// Write `content` to `path` through a temporary file and a rename.
fn write_atomically(path: &str, content: &[u8], fsync: bool) -> std::io::Result<()> {
    let tmp = format!("{path}.tmp-{}-{}", std::process::id(), now_ms());
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(content)?;
        if fsync {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if fsync {
            let dir = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty());
            if let Ok(d) = std::fs::File::open(dir.unwrap_or(std::path::Path::new("."))) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Lock nodes.conf for the life of the process (the descriptor is kept open on purpose).
pub fn lock_config(path: &str) -> Result<(), String> {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("Can't open {path} in order to acquire a lock: {e}"))?;
    // SAFETY: flock on a descriptor we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == -1 {
        let e = std::io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            format!("Sorry, the cluster configuration file {path} is already used by a different Redis Cluster node. Please make sure that different nodes use different cluster configuration files.")
        } else {
            format!("Impossible to lock {path}: {e}")
        });
    }
    std::mem::forget(f);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::state::{Settings, State};
    use super::*;

    #[test]
    fn nodes_conf_round_trips() {
        let dir = std::env::temp_dir().join(format!("ferrous-nodes-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nodes.conf").to_string_lossy().into_owned();
        let cfg = Settings { config_file: path.clone(), port: 7000, ..Default::default() };
        let mut st = State::new(cfg.clone());
        let other = st.create_node(Some([b'b'; 40]), flag::MASTER);
        {
            let n = st.nodes.get_mut(&other).unwrap();
            n.ip = "127.0.0.1".into();
            n.port = 7001;
            n.cport = 17001;
            n.config_epoch = 7;
            n.hostname = "host-b".into();
        }
        st.me_mut().ip = "127.0.0.1".into();
        st.me_mut().port = 7000;
        st.me_mut().cport = 17000;
        for j in 0..100 {
            st.add_slot(st.myself, j);
        }
        st.add_slot(st.myself, 200);
        for j in 101..200 {
            st.add_slot(other, j);
        }
        st.migrating_to[5] = Some(other);
        st.current_epoch = 9;
        st.last_vote_epoch = 3;
        st.save_config(true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mine = text.lines().next().unwrap();
        assert!(
            mine.ends_with(" myself,master - 0 0 0 connected 0-99 200 [5->-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb]"),
            "{mine}"
        );
        let b_shard = name_str(&st.nodes[&other].shard_id).to_string();
        assert!(
            text.contains(&format!(
                "127.0.0.1:7001@17001,host-b,tls-port=0,shard-id={b_shard} master - 0 0 7 disconnected 101-199\n"
            )),
            "{text}"
        );
        assert!(mine.contains(" 127.0.0.1:7000@17000,,tls-port=0,shard-id="), "{mine}");
        assert!(text.ends_with("vars currentEpoch 9 lastVoteEpoch 3\n"));

        let mut loaded = State::new(cfg);
        assert!(loaded.load_config(&path).unwrap());
        assert_eq!(loaded.me().name, st.me().name);
        assert_eq!(loaded.me().numslots, 101);
        assert_eq!(loaded.current_epoch, 9);
        assert_eq!(loaded.last_vote_epoch, 3);
        let b = loaded.lookup(&[b'b'; 40]).unwrap();
        assert_eq!(loaded.nodes[&b].hostname, "host-b");
        assert_eq!(loaded.nodes[&b].config_epoch, 7);
        assert_eq!(loaded.migrating_to[5], Some(b));
        assert_eq!(loaded.nodes_description(Lines::File), st.nodes_description(Lines::File));
        assert_eq!(loaded.me().shard_id, st.me().shard_id);
        assert_eq!(loaded.nodes[&b].shard_id, st.nodes[&other].shard_id);
        // CLUSTER NODES shows no aux fields.
        assert!(loaded
            .nodes_description(Lines::Client { tls: false })
            .contains(" 127.0.0.1:7001@17001,host-b master "));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_replica_in_a_file_without_shard_ids_follows_its_master() {
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        // The replica's line comes first, before its master's shard id is known.
        let text = format!(
            "{b} 127.0.0.1:7001@17001 slave {a} 0 0 1 connected\n\
             {a} 127.0.0.1:7000@17000,,tls-port=0,shard-id={} myself,master - 0 0 1 connected 0-10\n",
            "c".repeat(40)
        );
        let mut st = State::new(Settings::default());
        assert!(st.load_config_text(text.as_bytes()).unwrap());
        let b = st.lookup(b.as_bytes()).unwrap();
        assert_eq!(st.me().shard_id, [b'c'; 40]);
        assert_eq!(st.nodes[&b].shard_id, [b'c'; 40]);
        let bad = format!("{a} 127.0.0.1:7000@17000,,shard-id=xyz myself,master - 0 0 1 connected\n");
        assert!(State::new(Settings::default()).load_config_text(bad.as_bytes()).is_err());
    }

    #[test]
    fn a_port_too_big_for_any_integer_loads_without_a_panic() {
        let line = format!("{} 127.0.0.1:{} myself,master - 0 0 0 connected\n", "a".repeat(40), "6".repeat(40));
        assert!(State::new(Settings::default()).load_config_text(line.as_bytes()).unwrap());
    }

    #[test]
    fn corrupted_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("ferrous-nodes-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nodes.conf").to_string_lossy().into_owned();
        for bad in ["garbage line\n", "vars currentEpoch\n", "abc 1.2.3.4:1@2 master - 0 0 0 connected\n"] {
            std::fs::write(&path, bad).unwrap();
            let mut st = State::new(Settings::default());
            assert!(st.load_config(&path).is_err(), "{bad}");
        }
        std::fs::write(&path, "").unwrap();
        assert!(!State::new(Settings::default()).load_config(&path).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
