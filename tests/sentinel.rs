//! Sentinel mode: ferrous-server started with `--sentinel` monitoring ferrous data nodes.
//! The sentinel command set, SENTINEL's replies and state persisted in the config file, and a
//! failover by three Sentinels when the master is killed. Every wait is a bounded poll.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{query, wait_until, work_dir, Server};

/// A fresh sentinel.conf monitoring `mymaster` at `port` (quorum `quorum`).
fn sentinel_conf(port: u16, quorum: u32, extra: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path =
        work_dir().join(format!("sentinel-{}-{}.conf", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    fs::write(&path, format!("sentinel monitor mymaster 127.0.0.1 {port} {quorum}\n{extra}"))
        .expect("write sentinel.conf");
    path
}

fn start_sentinel(conf: &Path) -> Server {
    Server::start(&[conf.to_str().expect("utf-8 path"), "--sentinel"])
}

/// SENTINEL MASTER / a REPLICAS entry as a map.
fn fields(v: redis::Value) -> HashMap<String, String> {
    let items: Vec<String> = redis::from_redis_value(v).expect("a flat list of strings");
    items.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect()
}

fn master_fields(con: &mut redis::Connection) -> HashMap<String, String> {
    fields(query(con, &["SENTINEL", "MASTER", "mymaster"]))
}

fn master_port(con: &mut redis::Connection) -> Option<u16> {
    let addr: Option<(String, u16)> =
        redis::cmd("SENTINEL").arg(&["GET-MASTER-ADDR-BY-NAME", "mymaster"]).query(con).ok()?;
    addr.map(|a| a.1)
}

#[test]
fn sentinel_commands_replies_and_config() {
    let master = Server::start(&[]);
    let replica = Server::start(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let conf = sentinel_conf(master.port, 1, "sentinel down-after-milliseconds mymaster 5000\n");
    let s = start_sentinel(&conf);
    let mut con = s.conn();

    // Only the sentinel command set.
    let list: Vec<String> = query(&mut con, &["COMMAND", "LIST"]);
    assert!(list.contains(&"sentinel".to_string()) && list.contains(&"ping".to_string()));
    assert!(!list.contains(&"get".to_string()) && !list.contains(&"config".to_string()));
    let err = redis::cmd("SET").arg(&["k", "v"]).query::<String>(&mut con).unwrap_err();
    assert!(err.to_string().contains("unknown command"), "{err}");
    let err = redis::cmd("CLIENT").arg("NO-TOUCH").query::<String>(&mut con).unwrap_err();
    assert!(err.to_string().contains("unknown subcommand"), "{err}");

    // Redis 7.2's fields, in its order.
    let raw: Vec<String> = query(&mut con, &["SENTINEL", "MASTER", "mymaster"]);
    let names: Vec<&str> = raw.iter().step_by(2).map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "name",
            "ip",
            "port",
            "runid",
            "flags",
            "link-pending-commands",
            "link-refcount",
            "last-ping-sent",
            "last-ok-ping-reply",
            "last-ping-reply",
            "down-after-milliseconds",
            "info-refresh",
            "role-reported",
            "role-reported-time",
            "config-epoch",
            "num-slaves",
            "num-other-sentinels",
            "quorum",
            "failover-timeout",
            "parallel-syncs"
        ]
    );
    let myid: String = query(&mut con, &["SENTINEL", "MYID"]);
    assert_eq!(myid.len(), 40);
    let role: (String, Vec<String>) = query(&mut con, &["ROLE"]);
    assert_eq!(role, ("sentinel".to_string(), vec!["mymaster".to_string()]));

    // The replica is found through the master's INFO.
    assert!(wait_until(Duration::from_secs(20), || master_fields(&mut con)["num-slaves"] == "1"));
    let replicas: Vec<redis::Value> = query(&mut con, &["SENTINEL", "REPLICAS", "mymaster"]);
    let r = fields(replicas[0].clone());
    assert_eq!(r["name"], format!("127.0.0.1:{}", replica.port));
    assert!(wait_until(Duration::from_secs(20), || {
        let replicas: Vec<redis::Value> = query(&mut con, &["SENTINEL", "REPLICAS", "mymaster"]);
        fields(replicas[0].clone())["master-link-status"] == "ok"
    }));

    // INFO has Sentinel's sections only.
    let info: String = query(&mut con, &["INFO"]);
    assert!(info.contains("redis_mode:sentinel") && info.contains("sentinel_masters:1"));
    assert!(info
        .contains(&format!("master0:name=mymaster,status=ok,address=127.0.0.1:{},slaves=1,sentinels=1", master.port)));
    assert!(!info.contains("used_memory:"));

    // SET is persisted; errors as Redis's.
    let ok: String = query(&mut con, &["SENTINEL", "SET", "mymaster", "quorum", "2", "parallel-syncs", "3"]);
    assert_eq!(ok, "OK");
    let text = fs::read_to_string(&conf).unwrap();
    assert!(text.contains("sentinel parallel-syncs mymaster 3"), "{text}");
    assert!(text.contains(&format!("sentinel monitor mymaster 127.0.0.1 {} 2", master.port)), "{text}");
    assert!(text.contains(&format!("sentinel myid {myid}")), "{text}");
    assert!(text.contains(&format!("sentinel known-replica mymaster 127.0.0.1 {}", replica.port)), "{text}");
    let err = redis::cmd("SENTINEL").arg(&["SET", "mymaster", "quorum", "0"]).query::<String>(&mut con).unwrap_err();
    assert!(err.to_string().contains("Invalid argument '0' for SENTINEL SET 'quorum'"), "{err}");
    let err = redis::cmd("SENTINEL").arg(&["MASTER", "nope"]).query::<String>(&mut con).unwrap_err();
    assert!(err.to_string().contains("No such master with that name"), "{err}");
    let err = redis::cmd("SENTINEL")
        .arg(&["MONITOR", "mymaster", "127.0.0.1", "1", "1"])
        .query::<String>(&mut con)
        .unwrap_err();
    assert!(err.to_string().contains("Duplicate master name."), "{err}");
    // One Sentinel cannot reach the quorum of 2 just set.
    let err = redis::cmd("SENTINEL").arg(&["CKQUORUM", "mymaster"]).query::<String>(&mut con).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("NOQUORUM"), "{text}");
    assert!(
        text.contains(
            "1 usable Sentinels. Not enough available Sentinels to reach the specified quorum for this master"
        ),
        "{text}"
    );
    let _: String = query(&mut con, &["SENTINEL", "SET", "mymaster", "quorum", "1"]);
    let ckq: String = query(&mut con, &["SENTINEL", "CKQUORUM", "mymaster"]);
    assert_eq!(ckq, "OK 1 usable Sentinels. Quorum and failover authorization can be reached");

    // CONFIG GET/SET and DEBUG.
    let ok: String =
        query(&mut con, &["SENTINEL", "CONFIG", "SET", "announce-port", "1234", "resolve-hostnames", "yes"]);
    assert_eq!(ok, "OK");
    let got: Vec<String> = query(&mut con, &["SENTINEL", "CONFIG", "GET", "announce-*"]);
    assert_eq!(got, ["announce-hostnames", "no", "announce-ip", "", "announce-port", "1234"]);
    let ok: String = query(&mut con, &["SENTINEL", "DEBUG", "info-period", "500"]);
    assert_eq!(ok, "OK");
    let dbg: Vec<redis::Value> = query(&mut con, &["SENTINEL", "DEBUG"]);
    assert_eq!(redis::from_redis_value::<String>(dbg[0].clone()).unwrap(), "INFO-PERIOD");
    assert_eq!(redis::from_redis_value::<i64>(dbg[1].clone()).unwrap(), 500);

    // IS-MASTER-DOWN-BY-ADDR: [down, leader, epoch].
    let port = master.port.to_string();
    let down: (i64, String, i64) =
        query(&mut con, &["SENTINEL", "IS-MASTER-DOWN-BY-ADDR", "127.0.0.1", &port, "0", "*"]);
    assert_eq!(down, (0, "*".to_string(), 0));

    // REMOVE forgets the master, in the file too.
    let ok: String = query(&mut con, &["SENTINEL", "REMOVE", "mymaster"]);
    assert_eq!(ok, "OK");
    let text = fs::read_to_string(&conf).unwrap();
    assert!(!text.contains("sentinel monitor"), "{text}");
    assert!(text.contains("sentinel announce-port 1234"), "{text}");
}

#[test]
fn three_sentinels_fail_over_a_killed_master() {
    let master = Server::start(&[]);
    let mport = master.port.to_string();
    let r1 = Server::start(&["--replicaof", "127.0.0.1", &mport]);
    let r2 = Server::start(&["--replicaof", "127.0.0.1", &mport]);
    let opts = "sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 10000\n";
    let confs: Vec<PathBuf> = (0..3).map(|_| sentinel_conf(master.port, 2, opts)).collect();
    let sentinels: Vec<Server> = confs.iter().map(|c| start_sentinel(c)).collect();
    let mut cons: Vec<redis::Connection> = sentinels.iter().map(|s| s.conn()).collect();
    for con in cons.iter_mut() {
        let ready = wait_until(Duration::from_secs(30), || {
            let f = master_fields(con);
            f["num-other-sentinels"] == "2" && f["num-slaves"] == "2"
        });
        assert!(ready, "discovery: {:?}", master_fields(con));
    }
    // Replicas must have a recent INFO with their link up before one can be promoted.
    let mut r1c = r1.conn();
    let mut r2c = r2.conn();
    assert!(wait_until(Duration::from_secs(20), || {
        common::info_field(&mut r1c, "replication", "master_link_status") == "up"
            && common::info_field(&mut r2c, "replication", "master_link_status") == "up"
    }));
    // Watch the switch on one Sentinel's own channel.
    let mut sub = sentinels[0].client().get_connection().unwrap();
    let mut pubsub = sub.as_pubsub();
    pubsub.subscribe("+switch-master").unwrap();
    pubsub.set_read_timeout(Some(Duration::from_secs(60))).unwrap();

    drop(master);
    let msg = pubsub.get_message().expect("a +switch-master event");
    let payload: String = msg.get_payload().unwrap();
    assert!(payload.starts_with(&format!("mymaster 127.0.0.1 {mport} 127.0.0.1 ")), "{payload}");
    let new_port: u16 = payload.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(new_port == r1.port || new_port == r2.port);
    for con in cons.iter_mut() {
        assert!(wait_until(Duration::from_secs(30), || master_port(con) == Some(new_port)));
    }
    let (promoted, other) = if new_port == r1.port { (&r1, &r2) } else { (&r2, &r1) };
    let mut pc = promoted.conn();
    assert_eq!(common::info_field(&mut pc, "replication", "role"), "master");
    let mut oc = other.conn();
    assert!(wait_until(Duration::from_secs(30), || {
        common::info_field(&mut oc, "replication", "master_port") == new_port.to_string()
    }));
    // The new configuration is in every Sentinel's file, with the failover's epoch.
    for conf in &confs {
        assert!(wait_until(Duration::from_secs(10), || {
            let text = fs::read_to_string(conf).unwrap_or_default();
            text.contains(&format!("sentinel monitor mymaster 127.0.0.1 {new_port} 2"))
                && text.contains("sentinel config-epoch mymaster 1")
        }));
    }
}

#[test]
fn notification_script_runs_for_warning_events() {
    let master = Server::start(&[]);
    let out = work_dir().join(format!("sentinel-script-{}.out", std::process::id()));
    let _ = fs::remove_file(&out);
    let script = work_dir().join(format!("sentinel-script-{}.sh", std::process::id()));
    fs::write(&script, format!("#!/bin/sh\necho \"$@\" >> {}\n", out.display())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let conf = sentinel_conf(master.port, 1, &format!("sentinel notification-script mymaster {}\n", script.display()));
    let s = start_sentinel(&conf);
    let mut con = s.conn();
    // The master's fields show the script; scripts cannot be changed at run time by default.
    assert_eq!(master_fields(&mut con)["notification-script"], script.display().to_string());
    let err = redis::cmd("SENTINEL")
        .arg(&["SET", "mymaster", "notification-script", "/bin/true"])
        .query::<String>(&mut con)
        .unwrap_err();
    assert!(err.to_string().contains("Reconfiguration of scripts path is denied"), "{err}");
    // +set is a warning event: the script gets its type and text.
    let _: String = query(&mut con, &["SENTINEL", "SET", "mymaster", "quorum", "1"]);
    let expected = format!("+set master mymaster 127.0.0.1 {} quorum 1", master.port);
    assert!(wait_until(Duration::from_secs(10), || fs::read_to_string(&out).unwrap_or_default().contains(&expected)));
    // The start-up +monitor event ran it too.
    assert!(fs::read_to_string(&out)
        .unwrap()
        .contains(&format!("+monitor master mymaster 127.0.0.1 {} quorum 1", master.port)));
    // Every queued run finishes: PENDING-SCRIPTS drains. (Under load more warning events, such
    // as +tilt, may queue runs meanwhile, so the queue is awaited empty rather than counted.)
    assert!(wait_until(Duration::from_secs(10), || {
        query::<Vec<redis::Value>>(&mut con, &["SENTINEL", "PENDING-SCRIPTS"]).is_empty()
    }));
}

/// The lines a Sentinel's rewrite of a minimal sentinel.conf leaves, sorted (Redis writes new
/// options in its config dictionary's order, which is seeded at random), without blank lines
/// and the lines that differ by nature: `port`, `dir`, `sentinel myid`.
fn rewritten_lines(conf: &Path) -> Vec<String> {
    let text = fs::read_to_string(conf).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .filter(|l| !l.starts_with("port ") && !l.starts_with("dir ") && !l.starts_with("sentinel myid "))
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

/// A minimal sentinel.conf with a `save` line, rewritten after SENTINEL SET and FLUSHCONFIG:
/// no `save` line is left (Redis's rewriteConfigSaveOption writes none in sentinel mode and
/// drops the file's); with a redis-server at hand ($REDIS_SERVER or the PATH), the rewrite
/// leaves the same lines as its Sentinel's.
#[test]
fn a_rewrite_writes_no_save_line_as_redis() {
    let master = Server::start(&[]);
    let minimal = |name: &str, port: Option<u16>| {
        let dir = work_dir().join(format!("sentinel-rewrite-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("sentinel.conf");
        let port = port.map(|p| format!("port {p}\n")).unwrap_or_default();
        fs::write(&conf, format!("{port}sentinel monitor m 127.0.0.1 {} 1\nsave 900 1\n", master.port)).unwrap();
        (dir, conf)
    };
    let rewrite = |con: &mut redis::Connection| {
        let _: String = query(con, &["SENTINEL", "SET", "m", "down-after-milliseconds", "1000"]);
        let _: String = query(con, &["SENTINEL", "FLUSHCONFIG"]);
    };

    let (dir, conf) = minimal("ferrous", None);
    let s = Server::start(&[conf.to_str().unwrap(), "--sentinel"]);
    rewrite(&mut s.conn());
    let ours = rewritten_lines(&conf);
    assert!(!ours.iter().any(|l| l.starts_with("save")), "{ours:#?}");
    assert!(ours.contains(&"sentinel down-after-milliseconds m 1000".to_string()), "{ours:#?}");
    drop(s);
    let _ = fs::remove_dir_all(&dir);

    // Redis 7.2's rewrite, which Ferrous follows (7.0's `user` line has no sanitize-payload).
    let redis = common::find_redis_server().filter(|r| {
        let out = std::process::Command::new(r).arg("--version").output().map(|o| o.stdout).unwrap_or_default();
        let v = String::from_utf8_lossy(&out).split("v=").nth(1).unwrap_or("").to_string();
        let mut n = v.split(|c: char| !c.is_ascii_digit()).map(|x| x.parse::<u32>().unwrap_or(0));
        (n.next().unwrap_or(0), n.next().unwrap_or(0)) >= (7, 2)
    });
    let Some(redis) = redis else {
        eprintln!("SKIPPED: the comparison with Redis's Sentinel needs redis-server 7.2 or later ($REDIS_SERVER)");
        return;
    };
    let port = common::free_port();
    let (dir, conf) = minimal("redis", Some(port));
    let mut child = std::process::Command::new(redis)
        .args([conf.to_str().unwrap(), "--sentinel"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn redis-server --sentinel");
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let up =
        wait_until(Duration::from_secs(10), || common::listens_on(child.id(), port) && client.get_connection().is_ok());
    if up {
        rewrite(&mut client.get_connection().unwrap());
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "redis-server --sentinel did not start");
    let theirs = rewritten_lines(&conf);
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(ours, theirs);
}
