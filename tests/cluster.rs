//! Redis Cluster end to end, on local ports: clusters built and changed by the real
//! `redis-cli --cluster` (create, check, add-node, reshard and rebalance while a client
//! writes), redirections, a mixed cluster of Ferrous and real Redis 7.0 nodes that forms,
//! serves and fails over both ways, and a failover after `kill -9` that keeps every write a
//! replica acknowledged (WAIT 1).
//!
//! The tests need `redis-cli` and `redis-server` (skipped without them, unless
//! FERROUS_REQUIRE_REDIS=1).

mod common;

use common::{free_port, wait_until, Raw};
use ferrous::keyspace::slot::key_hash_slot;
use std::collections::HashMap;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Ferrous,
    Redis,
}

/// One cluster node (a process with its own directory), killed when dropped.
struct Node {
    kind: Kind,
    port: u16,
    cport: u16,
    node_timeout: u64,
    child: Child,
    dir: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn bin(kind: Kind) -> PathBuf {
    match kind {
        Kind::Ferrous => PathBuf::from(env!("CARGO_BIN_EXE_ferrous-server")),
        Kind::Redis => common::find_redis_server().expect("redis-server"),
    }
}

/// Whether redis-cli and redis-server are here (or skip, unless FERROUS_REQUIRE_REDIS=1).
fn tools_or_skip(test: &str) -> bool {
    let ok = common::interop::find_tool("redis-cli").is_some() && common::find_redis_server().is_some();
    if !ok {
        if std::env::var("FERROUS_REQUIRE_REDIS").as_deref() == Ok("1") {
            panic!("FERROUS_REQUIRE_REDIS=1 but redis-cli / redis-server are missing");
        }
        eprintln!("SKIPPED: {test} needs redis-cli and redis-server (apt-get install redis-server redis-tools)");
    }
    ok
}

impl Node {
    fn start(kind: Kind, node_timeout: u64) -> Node {
        for attempt in 0..5 {
            let (port, cport) = (free_port(), free_port());
            if port == cport {
                continue;
            }
            let dir = common::work_dir().join(format!("cluster-{port}-{attempt}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("node directory");
            let log = std::fs::File::create(dir.join("log.txt")).expect("log file");
            drop(log);
            let child = Self::spawn(kind, port, cport, node_timeout, &dir);
            let mut node = Node { kind, port, cport, node_timeout, child, dir };
            if node.wait_up() {
                return node;
            }
        }
        panic!("a {kind:?} cluster node did not start");
    }

    fn spawn(kind: Kind, port: u16, cport: u16, node_timeout: u64, dir: &std::path::Path) -> Child {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("log.txt")).expect("log file");
        Command::new(bin(kind))
            .args(["--port", &port.to_string(), "--cluster-port", &cport.to_string()])
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout", &node_timeout.to_string()])
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--dir"])
            .arg(dir)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn a cluster node")
    }

    /// Whether the node answers PING (LOADING counts as up) within 20 s.
    fn wait_up(&mut self) -> bool {
        let port = self.port;
        wait_until(Duration::from_secs(20), || {
            self.child.try_wait().ok().flatten().is_none()
                && common::listens_on(self.child.id(), port)
                && TcpStream::connect(("127.0.0.1", port)).is_ok_and(|s| {
                    let mut r = Raw::new(s);
                    r.send(b"PING\r\n");
                    r.try_read_reply(Duration::from_secs(2))
                        .is_ok_and(|x| x == b"+PONG\r\n" || x.starts_with(b"-LOADING"))
                })
        })
    }

    /// SHUTDOWN SAVE, then start again on the same ports and directory.
    fn restart_with_save(&mut self) {
        let mut r = self.raw();
        r.send_cmd(&["SHUTDOWN", "SAVE"]);
        let _ = r.try_read_reply(Duration::from_secs(10));
        let _ = self.child.wait();
        self.child = Self::spawn(self.kind, self.port, self.cport, self.node_timeout, &self.dir);
        assert!(self.wait_up(), "the node did not restart: {}", self.log());
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn raw(&self) -> Raw {
        Raw::new(TcpStream::connect(("127.0.0.1", self.port)).expect("connect to a node"))
    }

    /// One command, its reply as text (bulk and status contents, `-ERR ...` for errors).
    fn cmd(&self, args: &[&str]) -> String {
        text(&self.raw().cmd(args))
    }

    fn id(&self) -> String {
        self.cmd(&["CLUSTER", "MYID"])
    }

    fn info_field(&self, section: &str, field: &str) -> String {
        let info = self.cmd(&["INFO", section]);
        let cluster = self.cmd(&["CLUSTER", "INFO"]);
        for line in info.lines().chain(cluster.lines()) {
            if let Some(v) = line.strip_prefix(&format!("{field}:")) {
                return v.trim().to_string();
            }
        }
        String::new()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log.txt")).unwrap_or_default()
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A RESP reply as text.
fn text(reply: &[u8]) -> String {
    let s = String::from_utf8_lossy(reply).into_owned();
    match s.as_bytes().first() {
        Some(b'$') | Some(b'=') => {
            let body = s.split_once("\r\n").map(|x| x.1).unwrap_or("");
            let body = body.strip_suffix("\r\n").unwrap_or(body);
            body.strip_prefix("txt:").unwrap_or(body).to_string()
        }
        Some(b'+') | Some(b':') => s[1..].trim_end().to_string(),
        Some(b'-') => s.trim_end().to_string(),
        _ => s,
    }
}

/// Run redis-cli; its output (stdout and stderr) and whether it succeeded.
fn redis_cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(common::interop::find_tool("redis-cli").expect("redis-cli"))
        .args(args)
        .env("TERM", "dumb")
        .output()
        .expect("run redis-cli");
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), s)
}

/// `redis-cli --cluster check` through `node` reports a consistent, covered cluster.
fn assert_check(node: &Node) {
    let (_, out) = redis_cli(&["--cluster", "check", &node.addr()]);
    assert!(out.contains("[OK] All nodes agree about slots configuration."), "{out}");
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    assert!(!out.contains("[WARNING]") && !out.contains("[ERR]"), "{out}");
}

/// Wait until every node reports the cluster ok and the same slot owners.
fn wait_consistent(nodes: &[&Node]) {
    let ok = wait_until(Duration::from_secs(30), || {
        let views: Vec<Vec<String>> = nodes
            .iter()
            .map(|n| {
                let mut v: Vec<String> = n
                    .cmd(&["CLUSTER", "NODES"])
                    .lines()
                    .filter(|l| l.contains("master") && !l.contains("fail"))
                    .map(|l| {
                        let f: Vec<&str> = l.split(' ').collect();
                        format!("{} {}", f[0], f[8..].join(" "))
                    })
                    .collect();
                v.sort();
                v
            })
            .collect();
        views.windows(2).all(|w| w[0] == w[1]) && nodes.iter().all(|n| n.info_field("cluster", "cluster_state") == "ok")
    });
    assert!(
        ok,
        "the nodes did not agree: {:#?}",
        nodes.iter().map(|n| n.cmd(&["CLUSTER", "NODES"])).collect::<Vec<_>>()
    );
}

fn create(nodes: &[&Node], replicas: usize) {
    let mut args = vec!["--cluster".to_string(), "create".to_string()];
    args.extend(nodes.iter().map(|n| n.addr()));
    args.extend(["--cluster-replicas".into(), replicas.to_string(), "--cluster-yes".into()]);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let (ok, out) = redis_cli(&args);
    assert!(ok && out.contains("[OK] All 16384 slots covered."), "{out}");
    wait_consistent(nodes);
}

/// A small cluster client: follows MOVED (updating its slot map), ASK (with ASKING) and
/// TRYAGAIN / CLUSTERDOWN (retried), as cluster clients do.
struct Client {
    slots: HashMap<u16, u16>,
    conns: HashMap<u16, Raw>,
    default: u16,
    redirects: usize,
}

impl Client {
    fn new(port: u16) -> Client {
        Client { slots: HashMap::new(), conns: HashMap::new(), default: port, redirects: 0 }
    }

    fn conn(&mut self, port: u16) -> &mut Raw {
        self.conns
            .entry(port)
            .or_insert_with(|| Raw::new(TcpStream::connect(("127.0.0.1", port)).expect("connect to a cluster node")))
    }

    /// Run a command on `key`'s node; Err after 20 s of redirections or errors.
    fn cmd(&mut self, key: &str, args: &[&str]) -> Result<String, String> {
        let slot = key_hash_slot(key.as_bytes());
        let mut port = *self.slots.get(&slot).unwrap_or(&self.default);
        let mut asking = false;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if Instant::now() > deadline {
                return Err(format!("gave up on {key}"));
            }
            let c = self.conn(port);
            if asking {
                c.send_cmd(&["ASKING"]);
                c.read_reply();
            }
            c.send_cmd(args);
            let r = match c.try_read_reply(Duration::from_secs(5)) {
                Ok(r) => text(&r),
                Err(e) => {
                    self.conns.remove(&port);
                    return Err(format!("{e}"));
                }
            };
            asking = false;
            if let Some(rest) = r.strip_prefix("-MOVED ").or_else(|| r.strip_prefix("-ASK ")) {
                self.redirects += 1;
                let to: u16 = rest.rsplit(':').next().and_then(|p| p.parse().ok()).expect("redirect port");
                if r.starts_with("-MOVED") {
                    self.slots.insert(slot, to);
                } else {
                    asking = true;
                }
                port = to;
                continue;
            }
            if r.starts_with("-TRYAGAIN") || r.starts_with("-CLUSTERDOWN") {
                thread::sleep(Duration::from_millis(20));
                continue;
            }
            return Ok(r);
        }
    }
}

/// Writes `prefix<i>` = i until stopped; returns the keys whose SET was acknowledged.
fn writer(port: u16, prefix: &'static str, stop: Arc<AtomicBool>) -> thread::JoinHandle<(Vec<String>, usize)> {
    thread::spawn(move || {
        let mut c = Client::new(port);
        let mut acked = Vec::new();
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            let k = format!("{prefix}{i}");
            if c.cmd(&k, &["SET", &k, &i.to_string()]).as_deref() == Ok("OK") {
                acked.push(k);
            }
            i += 1;
        }
        (acked, c.redirects)
    })
}

/// Every acknowledged key reads back with its value.
fn assert_all_present(port: u16, keys: &[String], prefix: &str) {
    let mut c = Client::new(port);
    for k in keys {
        let v = c.cmd(k, &["GET", k]).unwrap_or_default();
        assert_eq!(v, k[prefix.len()..], "key {k} lost");
    }
}

#[test]
fn ferrous_cluster_built_and_resharded_by_redis_cli() {
    if !tools_or_skip("ferrous_cluster_built_and_resharded_by_redis_cli") {
        return;
    }
    let nodes: Vec<Node> = (0..6).map(|_| Node::start(Kind::Ferrous, 3000)).collect();
    let refs: Vec<&Node> = nodes.iter().collect();
    create(&refs, 1);
    assert_check(&nodes[0]);

    // Redirections, exactly as Redis words them.
    let owner_of = |slot: u16| {
        nodes
            .iter()
            .find(|n| {
                n.cmd(&["CLUSTER", "NODES"]).lines().any(|l| {
                    l.contains("myself,master")
                        && l.split(' ').skip(8).any(|r| {
                            let (a, b) = r.split_once('-').unwrap_or((r, r));
                            a.parse::<u16>().is_ok_and(|a| a <= slot) && b.parse::<u16>().is_ok_and(|b| slot <= b)
                        })
                })
            })
            .expect("an owner")
    };
    let foo = owner_of(12182);
    let other = nodes
        .iter()
        .find(|n| n.port != foo.port && n.info_field("replication", "role") == "master")
        .expect("another master");
    assert_eq!(other.cmd(&["SET", "foo", "bar"]), format!("-MOVED 12182 127.0.0.1:{}", foo.port));
    assert_eq!(foo.cmd(&["SET", "foo", "bar"]), "OK");
    assert_eq!(foo.cmd(&["MSET", "foo", "1", "bar", "2"]), "-CROSSSLOT Keys in request don't hash to the same slot");
    assert_eq!(foo.cmd(&["MSET", "{foo}a", "1", "{foo}b", "2"]), "OK");
    assert_eq!(foo.cmd(&["SELECT", "1"]), "-ERR SELECT is not allowed in cluster mode");
    assert_eq!(foo.cmd(&["CLUSTER", "KEYSLOT", "foo"]), "12182");
    assert_eq!(foo.cmd(&["CLUSTER", "COUNTKEYSINSLOT", "12182"]), "3");
    // A replica redirects to its master, and serves reads after READONLY.
    let replica = nodes
        .iter()
        .find(|n| n.cmd(&["CLUSTER", "NODES"]).lines().any(|l| l.contains("myself,slave") && l.contains(&foo.id())))
        .expect("foo's replica");
    assert!(wait_until(common::BACKGROUND_WORK, || replica.cmd(&["CLUSTER", "COUNTKEYSINSLOT", "12182"]) == "3"));
    assert_eq!(replica.cmd(&["GET", "foo"]), format!("-MOVED 12182 127.0.0.1:{}", foo.port));
    let mut r = replica.raw();
    assert_eq!(text(&r.cmd(&["READONLY"])), "OK");
    assert_eq!(text(&r.cmd(&["GET", "foo"])), "bar");
    assert_eq!(text(&r.cmd(&["SET", "foo", "x"])), format!("-MOVED 12182 127.0.0.1:{}", foo.port));

    // add-node, then reshard to it and rebalance it empty again, while a client writes.
    let new = Node::start(Kind::Ferrous, 3000);
    let (ok, out) = redis_cli(&["--cluster", "add-node", &new.addr(), &nodes[0].addr()]);
    assert!(ok, "{out}");
    let mut all: Vec<&Node> = refs.clone();
    all.push(&new);
    wait_consistent(&all);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(nodes[0].port, "w", stop.clone());
    thread::sleep(Duration::from_millis(300));
    let (ok, out) = redis_cli(&[
        "--cluster",
        "reshard",
        &nodes[0].addr(),
        "--cluster-from",
        "all",
        "--cluster-to",
        &new.id(),
        "--cluster-slots",
        "60",
        "--cluster-yes",
    ]);
    assert!(ok, "{out}");
    assert!(wait_until(Duration::from_secs(10), || new.info_field("cluster", "cluster_slots_assigned") == "16384"
        && new.cmd(&["CLUSTER", "NODES"]).lines().any(|l| l.contains("myself") && l.split(' ').count() > 8)));
    let weight = format!("{}=0", new.id());
    let (ok, out) = redis_cli(&["--cluster", "rebalance", &nodes[0].addr(), "--cluster-weight", &weight]);
    assert!(ok && out.contains("Moving"), "{out}");
    stop.store(true, Ordering::Relaxed);
    let (acked, redirects) = w.join().expect("writer");
    assert!(acked.len() > 100, "only {} writes", acked.len());
    assert!(redirects > 0, "the writer never saw a redirection");
    assert_all_present(nodes[0].port, &acked, "w");
    wait_consistent(&all);
    assert_check(&nodes[0]);
}

/// Which node of `nodes` replicates `master`.
fn replica_of<'a>(nodes: &'a [Node], master: &Node) -> &'a Node {
    let id = master.id();
    nodes
        .iter()
        .find(|n| n.cmd(&["CLUSTER", "NODES"]).lines().any(|l| l.contains("myself,slave") && l.contains(&id)))
        .expect("a replica")
}

/// Kill -9 `master`; its replica must become a master within `limit`, and the survivors agree.
fn fail_over(master: &mut Node, replica: &Node, survivors: &[&Node], limit: Duration) -> Duration {
    let killed = Instant::now();
    master.kill9();
    let promoted =
        wait_until(limit + Duration::from_secs(10), || replica.info_field("replication", "role") == "master");
    let took = killed.elapsed();
    assert!(promoted, "no failover; replica log: {}", replica.log());
    wait_consistent(survivors);
    took
}

#[test]
fn mixed_ferrous_and_redis_cluster_forms_serves_and_fails_over() {
    if !tools_or_skip("mixed_ferrous_and_redis_cluster_forms_serves_and_fails_over") {
        return;
    }
    let timeout = 3000;
    // Masters: Ferrous, Redis, Ferrous; then a Redis replica for the first Ferrous master and
    // a Ferrous replica for the Redis master, added with add-node.
    let mut m =
        [Node::start(Kind::Ferrous, timeout), Node::start(Kind::Redis, timeout), Node::start(Kind::Ferrous, timeout)];
    create(&m.iter().collect::<Vec<_>>(), 0);
    let r0 = Node::start(Kind::Redis, timeout);
    let r1 = Node::start(Kind::Ferrous, timeout);
    for (r, master) in [(&r0, &m[0]), (&r1, &m[1])] {
        let (ok, out) = redis_cli(&[
            "--cluster",
            "add-node",
            &r.addr(),
            &m[2].addr(),
            "--cluster-slave",
            "--cluster-master-id",
            &master.id(),
        ]);
        assert!(ok, "{out}");
    }
    let everyone = [&m[0], &m[1], &m[2], &r0, &r1];
    wait_consistent(&everyone);
    assert_check(&m[1]);
    // Data through every node, read back through the others.
    let mut c = Client::new(m[1].port);
    for i in 0..300 {
        let k = format!("k{i}");
        assert_eq!(c.cmd(&k, &["SET", &k, &i.to_string()]), Ok("OK".to_string()));
    }
    assert!(c.redirects > 0);
    assert_all_present(m[0].port, &(0..300).map(|i| format!("k{i}")).collect::<Vec<_>>(), "k");
    // Both replicas have their master's keys.
    for (r, master) in [(&r0, &m[0]), (&r1, &m[1])] {
        let want = master.cmd(&["DBSIZE"]);
        assert!(wait_until(Duration::from_secs(10), || r.cmd(&["DBSIZE"]) == want), "{:?} replica behind", r.kind);
    }
    // A Redis replica takes over from a Ferrous master...
    let limit = Duration::from_millis(2 * timeout);
    let (head, tail) = m.split_at_mut(1);
    fail_over(&mut head[0], &r0, &[&tail[0], &tail[1], &r0, &r1], limit);
    // ...and a Ferrous replica from a Redis master.
    let (mid, last) = tail.split_at_mut(1);
    fail_over(&mut mid[0], &r1, &[&last[0], &r0, &r1], limit);
    assert_all_present(r0.port, &(0..300).map(|i| format!("k{i}")).collect::<Vec<_>>(), "k");
    assert_eq!(r1.info_field("cluster", "cluster_state"), "ok");
}

#[test]
fn failover_after_kill_keeps_writes_acknowledged_by_a_replica() {
    if !tools_or_skip("failover_after_kill_keeps_writes_acknowledged_by_a_replica") {
        return;
    }
    let timeout = 5000u64;
    let mut nodes: Vec<Node> = (0..6).map(|_| Node::start(Kind::Ferrous, timeout)).collect();
    create(&nodes.iter().collect::<Vec<_>>(), 1);
    let masters: Vec<usize> = (0..6).filter(|&i| nodes[i].info_field("replication", "role") == "master").collect();
    let victim = masters[0];
    let replica_port = replica_of(&nodes, &nodes[victim]).port;
    // Keys of the victim's slots only, each SET followed by WAIT 1.
    let victim_port = nodes[victim].port;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let w = {
        let (acked, stop) = (acked.clone(), stop.clone());
        thread::spawn(move || {
            let Ok(s) = TcpStream::connect(("127.0.0.1", victim_port)) else { return };
            let mut c = Raw::new(s);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let k = format!("acked{i}");
                c.send_cmd(&["SET", &k, &i.to_string()]);
                match c.try_read_reply(Duration::from_secs(2)) {
                    Ok(r) if r == b"+OK\r\n" => {}
                    Ok(_) => continue,
                    Err(_) => return,
                }
                c.send_cmd(&["WAIT", "1", "1000"]);
                match c.try_read_reply(Duration::from_secs(3)) {
                    Ok(r) if r == b":1\r\n" => acked.lock().expect("acked").push(k),
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), || acked.lock().expect("acked").len() > 200),
        "WAIT never acknowledged"
    );
    let replica = nodes.iter().position(|n| n.port == replica_port).expect("replica index");
    let (a, b) = if victim < replica {
        let (x, y) = nodes.split_at_mut(replica);
        (&mut x[victim], &y[0])
    } else {
        let (x, y) = nodes.split_at_mut(victim);
        (&mut y[0], &x[replica])
    };
    let killed = Instant::now();
    a.kill9();
    let promoted = wait_until(Duration::from_secs(20), || b.info_field("replication", "role") == "master");
    let took = killed.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = w.join();
    assert!(promoted, "no failover: {}", b.log());
    assert!(took <= Duration::from_millis(3 * timeout), "failover took {took:?} (node timeout {timeout} ms)");
    let keys = acked.lock().expect("acked").clone();
    // Only keys of the victim's slots were written, so the new master serves them all.
    let mut missing = 0;
    let mut r = b.raw();
    for k in &keys {
        if text(&r.cmd(&["GET", k])) != k["acked".len()..] {
            missing += 1;
        }
    }
    assert_eq!(missing, 0, "{missing} of {} acknowledged writes lost", keys.len());
}

/// A replica's full sync of a small snapshot is invisible to its clients, as on Redis (which
/// loads it on its only thread and serves clients only every
/// loading-process-events-interval-bytes): CLUSTER NODES right after CLUSTER REPLICATE never
/// answers -LOADING (the legacy cluster suite's create_cluster depends on it).
#[test]
fn replica_full_sync_of_a_small_snapshot_never_answers_loading() {
    let (master, replica) = master_and_stranger(Kind::Ferrous);
    let mut c = master.raw();
    fill(&mut c, 40, 1000, 16);
    meet(&replica, &master);
    let stop = Arc::new(AtomicBool::new(false));
    let port = replica.port;
    let poller = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut r = Raw::new(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
            let mut bad = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                for cmd in [&["CLUSTER", "NODES"][..], &["CLUSTER", "INFO"][..]] {
                    let reply = text(&r.cmd(cmd));
                    if reply.starts_with('-') {
                        bad.push(reply);
                    }
                }
            }
            bad
        })
    };
    assert_eq!(replica.cmd(&["CLUSTER", "REPLICATE", &master.id()]), "OK");
    let synced = wait_until(Duration::from_secs(30), || {
        replica.info_field("replication", "master_link_status") == "up" && replica.cmd(&["DBSIZE"]) == "40000"
    });
    stop.store(true, Ordering::SeqCst);
    let bad = poller.join().expect("poller");
    assert!(synced, "the replica did not sync: {}", replica.log());
    assert!(bad.is_empty(), "errors during the sync: {:?}", &bad[..bad.len().min(3)]);
}

/// A replica restarted with a snapshot to load starts replicating only once it is loaded (as
/// Redis, whose cluster cron does not run while it loads): before, the full sync could land
/// first and the load then died on a duplicate key (legacy suite 04-resharding).
#[test]
fn restarted_replica_loads_its_data_before_it_replicates() {
    let (master, mut replica) = master_and_stranger(Kind::Ferrous);
    let mut c = master.raw();
    const KEYS: usize = 200_000;
    fill(&mut c, KEYS / 1000, 1000, 16);
    meet(&replica, &master);
    assert_eq!(replica.cmd(&["CLUSTER", "REPLICATE", &master.id()]), "OK");
    let synced =
        |n: &Node| n.info_field("replication", "master_link_status") == "up" && n.cmd(&["DBSIZE"]) == KEYS.to_string();
    assert!(wait_until(Duration::from_secs(60), || synced(&replica)), "{}", replica.log());
    for _ in 0..2 {
        replica.restart_with_save();
        assert!(wait_until(Duration::from_secs(60), || synced(&replica)), "{}", replica.log());
        assert!(replica.child.try_wait().ok().flatten().is_none(), "{}", replica.log());
        assert!(!replica.log().contains("Fatal error loading"), "{}", replica.log());
    }
}

/// CLUSTER MYSHARDID (Redis 7.2): a master's shard id is its own and random, its replica takes
/// it over the bus, and both keep it across a restart (it is in nodes.conf), as the legacy
/// suite's 28-cluster-shards checks.
#[test]
fn a_replica_takes_its_masters_shard_id_and_keeps_it_across_a_restart() {
    let (master, mut replica) = master_and_stranger(Kind::Ferrous);
    let shard = master.cmd(&["CLUSTER", "MYSHARDID"]);
    assert_eq!(shard.len(), 40, "{shard}");
    assert_ne!(replica.cmd(&["CLUSTER", "MYSHARDID"]), shard);
    meet(&replica, &master);
    assert_eq!(replica.cmd(&["CLUSTER", "REPLICATE", &master.id()]), "OK");
    assert!(wait_until(Duration::from_secs(20), || replica.cmd(&["CLUSTER", "MYSHARDID"]) == shard));
    replica.restart_with_save();
    // -LOADING until the restarted replica has loaded its snapshot (the command lacks `loading`).
    assert!(wait_until(Duration::from_secs(20), || !replica.cmd(&["CLUSTER", "MYSHARDID"]).starts_with("-LOADING")));
    assert_eq!(replica.cmd(&["CLUSTER", "MYSHARDID"]), shard);
    assert_eq!(master.cmd(&["CLUSTER", "MYSHARDID"]), shard);
    let conf = std::fs::read_to_string(replica.dir.join("nodes.conf")).expect("nodes.conf");
    assert!(conf.contains(&format!(",shard-id={shard} myself,slave ")), "{conf}");
}

/// INFO's mem_cluster_links counts the bus links (none before a node meets another).
#[test]
fn mem_cluster_links_counts_the_bus_links() {
    let (master, other) = master_and_stranger(Kind::Ferrous);
    let links = |n: &Node| n.info_field("memory", "mem_cluster_links").parse::<u64>().expect("a number");
    assert_eq!(links(&master), 0);
    meet(&other, &master);
    // Both directions of the link, on both nodes.
    assert!(wait_until(Duration::from_secs(20), || links(&master) > 2 * 8192 && links(&other) > 2 * 8192));
}

/// PUBLISHes inside a transaction (or a script) stay on the bus links until it is over, as Redis
/// writes a link's send buffer only after the event loop's iteration: INFO in the same EXEC
/// counts them in mem_cluster_links (the suite's unit/cluster/links "Link memory increases with
/// publishes"). Several rounds: a write during the EXEC (the links' writers run on another
/// thread) would show only now and then.
#[test]
fn publishes_in_exec_stay_queued_on_the_bus_until_it_ends() {
    let (master, other) = master_and_stranger(Kind::Ferrous);
    meet(&other, &master);
    let links = |n: &Node| n.info_field("memory", "mem_cluster_links").parse::<u64>().expect("a number");
    assert!(wait_until(Duration::from_secs(20), || links(&master) > 2 * 8192 && links(&other) > 2 * 8192));
    let message = "m".repeat(10_000);
    let mut c = master.raw();
    // Each round starts once the last one's messages are written (a ping may be on its way).
    let idle = links(&master);
    let drained = || assert!(wait_until(Duration::from_secs(10), || links(&master) < idle + 8192));
    // The two INFOs of a reply: the second counts the ten messages (10,000 bytes each and more).
    let grew = |round: &str, reply: &str| {
        let mem: Vec<u64> = reply
            .lines()
            .filter_map(|l| l.strip_prefix("mem_cluster_links:"))
            .map(|v| v.trim().parse().expect("a number"))
            .collect();
        assert_eq!(mem.len(), 2, "{reply}");
        assert!(mem[1] >= mem[0] + 100_000, "{round}: mem_cluster_links {} then {}", mem[0], mem[1]);
    };
    for round in 0..20 {
        drained();
        let mut args: Vec<Vec<&str>> = vec![vec!["MULTI"], vec!["INFO", "memory"]];
        args.extend((0..10).map(|_| vec!["PUBLISH", "ch", message.as_str()]));
        args.extend([vec!["INFO", "memory"], vec!["EXEC"]]);
        for a in &args {
            c.send_cmd(a);
        }
        for _ in 0..args.len() - 1 {
            c.try_read_reply(Duration::from_secs(10)).expect("a reply");
        }
        grew(&format!("EXEC {round}"), &text(&c.try_read_reply(Duration::from_secs(10)).expect("EXEC's reply")));
    }
    // A script's too.
    let script = "local a = redis.call('info', 'memory') \
                  for i = 1, 10 do redis.call('publish', 'ch', ARGV[1]) end \
                  return {a, redis.call('info', 'memory')}";
    for round in 0..20 {
        drained();
        grew(&format!("script {round}"), &text(&c.cmd(&["EVAL", script, "0", &message])));
    }
}

/// A master that learns another node claims one of its slots with a newer epoch deletes the
/// slot's keys (#11084) without telling its clients: Redis 7.2 notifies modules only, 7.0 no one.
#[test]
fn keys_of_a_lost_slot_go_without_keyspace_events() {
    let (master, other) = master_and_stranger(Kind::Ferrous);
    assert_eq!(master.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]), "OK");
    assert_eq!(master.cmd(&["SET", "{t}a", "1"]), "OK");
    let slot = master.cmd(&["CLUSTER", "KEYSLOT", "{t}a"]);
    let mut sub = master.raw();
    sub.send_cmd(&["PSUBSCRIBE", "__key*__:*"]);
    assert!(text(&sub.try_read_reply(Duration::from_secs(5)).unwrap()).contains("psubscribe"));
    meet(&other, &master);
    wait_known(&master, &other);
    assert_eq!(other.cmd(&["CLUSTER", "SETSLOT", &slot, "NODE", &other.id()]), "OK");
    other.cmd(&["CLUSTER", "BUMPEPOCH"]);
    assert!(
        wait_until(Duration::from_secs(20), || master.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot]) == "0"),
        "the slot's keys stayed: {}",
        master.cmd(&["CLUSTER", "NODES"])
    );
    assert_eq!(master.cmd(&["PING"]), "PONG");
    let heard = sub.try_read_reply(Duration::from_millis(500));
    assert!(heard.is_err(), "a keyspace event was sent: {:?}", heard.map(|r| text(&r)));
}

/// Wait until `node` knows `other` by name (the handshake is over).
fn wait_known(node: &Node, other: &Node) {
    let id = other.id();
    assert!(wait_until(Duration::from_secs(20), || {
        let nodes = node.cmd(&["CLUSTER", "NODES"]);
        nodes.contains(&id) && !nodes.contains("handshake")
    }));
}

/// A node serving every slot (cluster state ok), and a second node that knows nothing yet.
fn master_and_stranger(kind: Kind) -> (Node, Node) {
    master_and_stranger_timing_out_at(kind, 5000)
}

/// [`master_and_stranger`] with nodes whose cluster-node-timeout is `node_timeout` ms.
fn master_and_stranger_timing_out_at(kind: Kind, node_timeout: u64) -> (Node, Node) {
    let master = lone_master(kind, node_timeout);
    (master, Node::start(kind, node_timeout))
}

/// A node serving every slot, alone in its cluster (cluster state ok).
fn lone_master(kind: Kind, node_timeout: u64) -> Node {
    let master = Node::start(kind, node_timeout);
    assert_eq!(master.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), "OK");
    assert!(wait_until(Duration::from_secs(20), || master.info_field("cluster", "cluster_state") == "ok"));
    master
}

/// `node` meets `other` and waits until it knows it (handshake done).
fn meet(node: &Node, other: &Node) {
    assert_eq!(node.cmd(&["CLUSTER", "MEET", "127.0.0.1", &other.port.to_string(), &other.cport.to_string()]), "OK");
    wait_known(node, other);
}

/// `batches` MSETs of `per_batch` keys `{t}k<batch>:<i>` (one slot), values of `len` bytes.
fn fill(c: &mut Raw, batches: usize, per_batch: usize, len: usize) {
    for batch in 0..batches {
        let mut args = vec!["MSET".to_string()];
        for i in 0..per_batch {
            args.push(format!("{{t}}k{batch}:{i}"));
            args.push("v".repeat(len));
        }
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        assert_eq!(text(&c.cmd(&args)), "OK");
    }
}

fn master_and_replica(kind: Kind) -> (Node, Node) {
    master_and_replica_timing_out_at(kind, 5000)
}

fn master_and_replica_timing_out_at(kind: Kind, node_timeout: u64) -> (Node, Node) {
    let (master, replica) = master_and_stranger_timing_out_at(kind, node_timeout);
    meet(&replica, &master);
    assert_eq!(replica.cmd(&["CLUSTER", "REPLICATE", &master.id()]), "OK");
    assert!(wait_until(Duration::from_secs(30), || replica.info_field("replication", "master_link_status") == "up"
        && replica.info_field("cluster", "cluster_state") == "ok"));
    (master, replica)
}

/// A READONLY client on a replica is redirected to the master for a script with a shebang
/// that did not declare no-writes (Redis's getNodeByQuery uses the script's flags), also inside
/// MULTI; a no-writes script runs on the replica (legacy suite 16-transactions-on-replica).
#[test]
fn readonly_replica_redirects_scripts_that_may_write() {
    if !tools_or_skip("readonly_replica_redirects_scripts_that_may_write") {
        return;
    }
    let mut seen = Vec::new();
    for kind in [Kind::Redis, Kind::Ferrous] {
        let (master, replica) = master_and_replica(kind);
        assert_eq!(master.cmd(&["SET", "a", "1"]), "OK");
        // The key has reached the replica (a READONLY connection reads it there).
        assert!(wait_until(Duration::from_secs(10), || {
            let mut r = replica.raw();
            r.cmd(&["READONLY"]).starts_with(b"+OK") && r.cmd(&["GET", "a"]) == b"$1\r\n1\r\n"
        }));
        let mut r = replica.raw();
        let mut out = Vec::new();
        for args in [
            &["READONLY"][..],
            &["EVAL", "#!lua\nreturn redis.call('del','a')", "1", "a"],
            &["EVAL", "#!lua flags=no-writes\nreturn redis.call('get','a')", "1", "a"],
            &["EVAL", "return redis.call('get','a')", "1", "a"],
            &["MULTI"],
            &["EVAL", "#!lua\nreturn redis.call('del','a')", "1", "a"],
            &["EXEC"],
        ] {
            out.push(String::from_utf8_lossy(&r.cmd(args)).replace(&master.port.to_string(), "P"));
        }
        seen.push(out);
    }
    assert!(seen[0][1].starts_with("-MOVED"), "{:?}", seen[0]);
    assert_eq!(seen[1], seen[0]);
}

/// CONFIG SET cluster-preferred-endpoint-type hostname shows in the very next redirection
/// (legacy suite 27-endpoints); compared with Redis.
#[test]
fn preferred_endpoint_type_applies_to_the_next_redirection() {
    if !tools_or_skip("preferred_endpoint_type_applies_to_the_next_redirection") {
        return;
    }
    let mut seen = Vec::new();
    for kind in [Kind::Redis, Kind::Ferrous] {
        let (master, replica) = master_and_replica(kind);
        assert_eq!(master.cmd(&["CONFIG", "SET", "cluster-announce-hostname", "them.com"]), "OK");
        assert!(wait_until(Duration::from_secs(20), || replica.cmd(&["CLUSTER", "SHARDS"]).contains("them.com")));
        let mut r = replica.raw();
        let mut out =
            vec![String::from_utf8_lossy(&r.cmd(&["SET", "foo", "1"])).replace(&master.port.to_string(), "P")];
        r.cmd(&["CONFIG", "SET", "cluster-preferred-endpoint-type", "hostname"]);
        out.push(String::from_utf8_lossy(&r.cmd(&["SET", "foo", "1"])).replace(&master.port.to_string(), "P"));
        r.cmd(&["CONFIG", "SET", "cluster-preferred-endpoint-type", "unknown-endpoint"]);
        out.push(String::from_utf8_lossy(&r.cmd(&["SET", "foo", "1"])).replace(&master.port.to_string(), "P"));
        seen.push(out);
    }
    assert_eq!(seen[0][1], "-MOVED 12182 them.com:P\r\n");
    assert_eq!(seen[1], seen[0]);
}

/// A replica restarted from its RDB keeps the keys that expired meanwhile (Redis's rdbLoad
/// drops them only when iAmMaster); its master's DELs remove them later (legacy suite
/// 14-consistency-check). Its master is down here, so nothing else can remove them.
#[test]
fn restarted_replica_keeps_keys_that_expired_in_its_rdb() {
    if !tools_or_skip("restarted_replica_keeps_keys_that_expired_in_its_rdb") {
        return;
    }
    let mut seen = Vec::new();
    for kind in [Kind::Redis, Kind::Ferrous] {
        let (mut master, mut replica) = master_and_replica(kind);
        for i in 0..20 {
            // Long enough for the replica to get them all before the master expires any.
            assert_eq!(master.cmd(&["SET", &format!("{{t}}k{i}"), "v", "PX", "3000"]), "OK");
        }
        assert!(wait_until(Duration::from_secs(10), || replica.cmd(&["DBSIZE"]) == "20"));
        master.kill9();
        thread::sleep(Duration::from_millis(3100)); // the keys' time to live
        replica.restart_with_save();
        assert!(wait_until(Duration::from_secs(20), || !replica.cmd(&["DBSIZE"]).starts_with("-LOADING")));
        seen.push(replica.cmd(&["DBSIZE"]));
    }
    assert_eq!(seen[0], "20");
    assert_eq!(seen[1], seen[0]);
}

/// The master's CLUSTER SHARDS shows its replica as `loading` while the replica loads a full
/// sync (the replica announces offset 0 then, Redis's replicationGetSlaveOffset), and
/// `online` after (legacy suite 28-cluster-shards); compared with Redis.
#[test]
fn replica_loading_a_full_sync_shows_as_loading_in_cluster_shards() {
    if !tools_or_skip("replica_loading_a_full_sync_shows_as_loading_in_cluster_shards") {
        return;
    }
    for kind in [Kind::Redis, Kind::Ferrous] {
        let (master, replica) = master_and_replica(kind);
        let id = replica.id();
        // The first health word after the replica's id in the master's CLUSTER SHARDS.
        let health = || {
            let shards = master.cmd(&["CLUSTER", "SHARDS"]);
            let rest = &shards[shards.find(&id)?..];
            ["loading", "online", "fail"].into_iter().filter_map(|h| rest.find(h).map(|p| (p, h))).min().map(|x| x.1)
        };
        assert!(wait_until(Duration::from_secs(20), || health() == Some("online")), "{kind:?}");
        let mut c = master.raw();
        fill(&mut c, 4, 500, 100);
        assert_eq!(replica.cmd(&["CONFIG", "SET", "key-load-delay", "2000"]), "OK");
        assert_eq!(replica.cmd(&["CONFIG", "SET", "loading-process-events-interval-bytes", "1024"]), "OK");
        assert_eq!(master.cmd(&["CONFIG", "SET", "repl-backlog-size", "16384"]), "OK");
        c.cmd(&["MULTI"]);
        c.cmd(&["CLIENT", "KILL", "TYPE", "replica"]);
        for j in 0..100 {
            c.cmd(&["SET", &format!("{{t}}x{j}"), &"A".repeat(1024)]);
        }
        c.cmd(&["EXEC"]);
        assert!(wait_until(Duration::from_secs(20), || health() == Some("loading")), "{kind:?}");
        assert_eq!(replica.cmd(&["CONFIG", "SET", "key-load-delay", "0"]), "OK");
        assert!(wait_until(Duration::from_secs(30), || health() == Some("online")), "{kind:?}");
    }
}

/// A client blocked (BRPOP) on a key whose slot then moves to another node is unblocked with
/// the MOVED redirection (Redis's clusterRedirectBlockedClientIfNeeded; Redis 7.2
/// unit/cluster/cli "Verify command got unblocked after resharding"); compared with Redis.
#[test]
fn blocked_client_is_redirected_when_its_slot_moves() {
    if !tools_or_skip("blocked_client_is_redirected_when_its_slot_moves") {
        return;
    }
    let mut seen = Vec::new();
    for kind in [Kind::Redis, Kind::Ferrous] {
        let (master, other) = master_and_stranger(kind);
        meet(&master, &other);
        wait_known(&other, &master);
        let slot = key_hash_slot(b"blk").to_string();
        let (from, to) = (master.id(), other.id());
        let mut blocked = master.raw();
        blocked.send_cmd(&["BRPOP", "blk", "0"]);
        assert!(wait_until(Duration::from_secs(10), || master.info_field("clients", "blocked_clients") == "1"));
        assert_eq!(other.cmd(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from]), "OK");
        assert_eq!(master.cmd(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to]), "OK");
        // Still served here while migrating: the client waits on.
        assert!(blocked.try_read_reply(Duration::from_millis(300)).is_err());
        assert_eq!(other.cmd(&["CLUSTER", "SETSLOT", &slot, "NODE", &to]), "OK");
        assert_eq!(master.cmd(&["CLUSTER", "SETSLOT", &slot, "NODE", &to]), "OK");
        let reply = blocked.try_read_reply(Duration::from_secs(5)).expect("the blocked client is unblocked");
        let reply = String::from_utf8_lossy(&reply).replace(&other.port.to_string(), "P");
        assert!(wait_until(Duration::from_secs(5), || master.info_field("clients", "blocked_clients") == "0"));
        seen.push(reply);
    }
    assert_eq!(seen[0], format!("-MOVED {} 127.0.0.1:P\r\n", key_hash_slot(b"blk")));
    assert_eq!(seen[1], seen[0]);
}

/// The only master of a one-shard cluster is its own quorum: it marks a replica that stopped
/// answering FAIL, not only PFAIL (Redis 7.2.5, #12824; unit/cluster/failure-marking).
#[test]
fn a_lone_master_marks_its_unresponsive_replica_failed() {
    let (master, replica) = master_and_replica_timing_out_at(Kind::Ferrous, 500);
    let id = replica.id();
    let signal = |sig: &str| {
        let pid = replica.child.id().to_string();
        assert!(Command::new("kill").args([sig, &pid]).status().expect("kill").success());
    };
    signal("-STOP");
    let flags = || {
        let nodes = master.cmd(&["CLUSTER", "NODES"]);
        let line = nodes.lines().find(|l| l.starts_with(&id)).unwrap_or_default().to_string();
        line.split(' ').nth(2).unwrap_or_default().to_string()
    };
    let failed = wait_until(Duration::from_secs(20), || flags().split(',').any(|f| f == "fail"));
    signal("-CONT");
    assert!(failed, "the replica's flags stayed {}", flags());
}

/// SORT's BY and GET patterns name keys that may live on other nodes: a cluster node refuses
/// them (a constant BY, which sorts nothing, stays allowed); compared with Redis.
#[test]
fn sort_refuses_by_and_get_patterns_in_cluster_mode() {
    if !tools_or_skip("sort_refuses_by_and_get_patterns_in_cluster_mode") {
        return;
    }
    let mut seen = Vec::new();
    for kind in [Kind::Redis, Kind::Ferrous] {
        let master = lone_master(kind, 5000);
        let mut r = master.raw();
        let mut out = Vec::new();
        for args in [
            &["RPUSH", "{a}l", "3", "1", "2"][..],
            &["SORT", "{a}l", "BY", "{a}w*"],
            &["SORT", "{a}l", "BY", "nosort"],
            &["SORT", "{a}l", "BY", "nosort", "GET", "#"],
            &["SORT", "{a}l", "GET", "{a}g*"],
            &["SORT_RO", "{a}l", "BY", "{a}w*"],
            &["SORT_RO", "{a}l", "LIMIT", "0", "1", "GET", "#"],
            &["SORT", "{a}l", "DESC", "STORE", "{a}d"],
        ] {
            out.push(String::from_utf8_lossy(&r.cmd(args)).into_owned());
        }
        seen.push(out);
    }
    assert!(seen[0][1].starts_with("-ERR BY option of SORT denied in Cluster mode"), "{:?}", seen[0]);
    assert_eq!(seen[1], seen[0]);
}
