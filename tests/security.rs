//! The classic attacks on an exposed Redis, each refused as Redis 7.0 refuses it: writing a
//! file of the client's choosing through CONFIG SET dir/dbfilename + SAVE (protected configs),
//! talking to a password-less server from another host (protected mode), DEBUG and MODULE
//! from afar, commands renamed away; plus users from the configuration and the ACL file.

mod common;

use common::{run_to_exit, work_dir, Raw, Server};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// A connection to `to` whose source address is `from` (127.0.0.2 needs no setup on Linux).
fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let stream = rt.block_on(async {
        let sock = if from.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        sock.bind(SocketAddr::new(from, 0))?;
        sock.connect(to).await
    })?;
    let std = stream.into_std()?;
    std.set_nonblocking(false)?;
    Ok(std)
}

fn raw_from(from: &str, port: u16) -> Raw {
    let from: IpAddr = from.parse().unwrap();
    Raw::new(connect_from(from, SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)).expect("connect"))
}

/// Send PING and read everything the server sends until it closes or 2 s pass.
fn ping_and_read_all(mut raw: Raw) -> String {
    raw.send(b"PING\r\n");
    raw.stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match raw.stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.ends_with(b"\r\n") && !out.starts_with(b"-DENIED") {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This machine's address on its default route, if it has one that is not loopback.
fn own_address() -> Option<Ipv4Addr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("10.255.255.255:9").ok()?;
    match s.local_addr().ok()?.ip() {
        IpAddr::V4(a) if !a.is_loopback() && !a.is_unspecified() => Some(a),
        _ => None,
    }
}

fn text(r: Vec<u8>) -> String {
    String::from_utf8_lossy(&r).into_owned()
}

/// An HTTP request sent to the server (cross-protocol scripting: a web page makes a browser
/// POST to it) closes the connection without a reply, not even to what preceded it, and is
/// logged, as Redis's securityWarningCommand.
#[test]
fn http_request_lines_close_the_connection_silently() {
    use std::io::Write;
    let server = Server::start(&[]);
    for request in [&b"PING\r\nPOST / HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], b"*1\r\n$5\r\nHOST:\r\n"] {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert!(got.is_empty(), "answered {:?}", String::from_utf8_lossy(&got));
    }
    let log = server.log();
    assert!(
        log.contains(
            "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands to Redis."
        ),
        "{log}"
    );
    assert_eq!(log.matches("SECURITY ATTACK").count(), 1, "logged once a minute");
    assert_eq!(server.raw().cmd(&["PING"]), b"+PONG\r\n");
}

#[test]
fn protected_configs_are_refused() {
    // Its own directory: the SAVE below must not leave a dump.rdb where other tests start.
    let home = work_dir().join("protected-configs");
    std::fs::create_dir_all(&home).unwrap();
    let s = Server::start(&["--dir", home.to_str().unwrap()]);
    let mut c = s.raw();
    for name in ["dir", "dbfilename"] {
        assert_eq!(
            text(c.cmd(&["CONFIG", "SET", name, "/tmp/ferrous-attack"])),
            format!("-ERR CONFIG SET failed (possibly related to argument '{name}') - can't set protected config\r\n")
        );
    }
    for name in ["appenddirname", "appendfilename", "logfile", "pidfile", "unixsocket", "aclfile"] {
        assert_eq!(
            text(c.cmd(&["CONFIG", "SET", name, "authorized_keys"])),
            format!("-ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config\r\n")
        );
    }
    // The attack: point the RDB file at ~/.ssh/authorized_keys and SAVE. Nothing changed.
    let attack = work_dir().join("attack-dir");
    let _ = std::fs::remove_dir_all(&attack);
    std::fs::create_dir_all(&attack).unwrap();
    let dir = attack.to_string_lossy().into_owned();
    assert!(text(c.cmd(&["CONFIG", "SET", "dir", &dir])).contains("can't set protected config"));
    assert!(text(c.cmd(&["CONFIG", "SET", "dbfilename", "authorized_keys"])).contains("can't set protected config"));
    assert!(text(c.cmd(&["CONFIG", "SET", "hz", "11", "dir", &dir])).contains("can't set protected config"));
    assert_eq!(text(c.cmd(&["CONFIG", "GET", "hz"])), "*2\r\n$2\r\nhz\r\n$2\r\n10\r\n", "all or nothing");
    assert_eq!(text(c.cmd(&["SET", "k", "ssh-rsa AAAA attacker"])), "+OK\r\n");
    assert_eq!(text(c.cmd(&["SAVE"])), "+OK\r\n");
    assert!(!attack.join("authorized_keys").exists());
    assert_eq!(std::fs::read_dir(&attack).unwrap().count(), 0);
    assert!(home.join("dump.rdb").exists(), "saved where the configuration says");
}

#[test]
fn protected_configs_follow_enable_protected_configs() {
    let dir = work_dir().to_string_lossy().into_owned();
    let s = Server::start(&["--enable-protected-configs", "yes"]);
    assert_eq!(text(s.raw().cmd(&["CONFIG", "SET", "dir", &dir])), "+OK\r\n");
    // `local`: only from 127.0.0.1 (or a Unix socket).
    let s = Server::start(&["--enable-protected-configs", "local", "--protected-mode", "no"]);
    assert_eq!(text(s.raw().cmd(&["CONFIG", "SET", "dbfilename", "x.rdb"])), "+OK\r\n");
    assert!(text(raw_from("127.0.0.2", s.port).cmd(&["CONFIG", "SET", "dbfilename", "y.rdb"]))
        .contains("can't set protected config"));
    assert_eq!(text(s.raw().cmd(&["CONFIG", "GET", "dbfilename"])), "*2\r\n$10\r\ndbfilename\r\n$5\r\nx.rdb\r\n");
    // The setting itself cannot be changed at run time.
    assert!(
        text(s.raw().cmd(&["CONFIG", "SET", "enable-protected-configs", "yes"])).contains("can't set immutable config")
    );
}

#[test]
fn protected_mode_denies_other_hosts_without_a_password() {
    let s = Server::start(&["--bind", "0.0.0.0"]);
    assert_eq!(text(s.raw().cmd(&["CONFIG", "GET", "protected-mode"])), "*2\r\n$14\r\nprotected-mode\r\n$3\r\nyes\r\n");
    assert_eq!(ping_and_read_all(s.raw()), "+PONG\r\n");
    // 127.0.0.2 is not 127.0.0.1: Redis 7.0 counts only 127.0.0.1, ::1 and Unix sockets as local.
    assert_eq!(ping_and_read_all(raw_from("127.0.0.2", s.port)), DENIED);
    if let Some(own) = own_address() {
        let stream = connect_from(IpAddr::V4(own), SocketAddr::new(IpAddr::V4(own), s.port)).unwrap();
        assert_eq!(ping_and_read_all(Raw::new(stream)), DENIED, "from {own}");
    }
    let mut admin = s.raw();
    assert_eq!(text(admin.cmd(&["INFO", "stats"])).contains("rejected_connections:1"), own_address().is_none());
    // A password for the default user lifts it (the client then has to authenticate).
    assert_eq!(text(admin.cmd(&["CONFIG", "SET", "requirepass", "secret"])), "+OK\r\n");
    assert_eq!(ping_and_read_all(raw_from("127.0.0.2", s.port)), "-NOAUTH Authentication required.\r\n");
    // ... whether it comes from requirepass or ACL SETUSER; nopass brings protection back.
    assert_eq!(text(admin.cmd(&["ACL", "SETUSER", "default", "nopass"])), "+OK\r\n");
    assert_eq!(ping_and_read_all(raw_from("127.0.0.2", s.port)), DENIED);
    assert_eq!(text(admin.cmd(&["ACL", "SETUSER", "default", "resetpass", ">pw"])), "+OK\r\n");
    assert_eq!(ping_and_read_all(raw_from("127.0.0.2", s.port)), "-NOAUTH Authentication required.\r\n");
    assert_eq!(text(admin.cmd(&["ACL", "SETUSER", "default", "nopass"])), "+OK\r\n");
    assert_eq!(text(admin.cmd(&["CONFIG", "SET", "protected-mode", "no"])), "+OK\r\n");
    assert_eq!(ping_and_read_all(raw_from("127.0.0.2", s.port)), "+PONG\r\n");
}

#[test]
fn debug_and_module_are_protected_commands() {
    let s = Server::start(&["--protected-mode", "no"]);
    assert_eq!(
        text(s.raw().cmd(&["DEBUG", "SLEEP", "0"])),
        "-ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.\r\n"
    );
    assert_eq!(
        text(s.raw().cmd(&["MODULE", "LOAD", "/tmp/evil.so"])),
        "-ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.\r\n"
    );
    assert_eq!(text(s.raw().cmd(&["MODULE", "LIST"])), "*0\r\n");
    let s = Server::start(&[
        "--protected-mode",
        "no",
        "--enable-debug-command",
        "local",
        "--enable-module-command",
        "local",
    ]);
    assert_eq!(text(s.raw().cmd(&["DEBUG", "SLEEP", "0"])), "+OK\r\n");
    assert!(
        text(raw_from("127.0.0.2", s.port).cmd(&["DEBUG", "SLEEP", "0"])).starts_with("-ERR DEBUG command not allowed")
    );
    assert_eq!(
        text(s.raw().cmd(&["MODULE", "LOAD", "/tmp/evil.so"])),
        "-ERR Error loading the extension. Please check the server logs.\r\n"
    );
    assert!(text(raw_from("127.0.0.2", s.port).cmd(&["MODULE", "UNLOAD", "x"]))
        .starts_with("-ERR MODULE command not allowed"));
    assert_eq!(
        text(s.raw().cmd(&["MODULE", "UNLOAD", "x"])),
        "-ERR Error unloading module: no such module with that name\r\n"
    );
}

#[test]
fn renamed_commands_are_gone_and_acls_use_the_original_names() {
    let conf = work_dir().join("rename.conf");
    std::fs::write(&conf, "rename-command CONFIG \"\"\nrename-command FLUSHALL my-flushall\n").unwrap();
    let s = Server::start(&[conf.to_str().unwrap()]);
    let mut c = s.raw();
    assert!(text(c.cmd(&["CONFIG", "GET", "dir"])).starts_with("-ERR unknown command 'CONFIG'"));
    assert!(text(c.cmd(&["FLUSHALL"])).starts_with("-ERR unknown command 'FLUSHALL'"));
    assert_eq!(text(c.cmd(&["MY-FLUSHALL"])), "+OK\r\n");
    assert_eq!(text(c.cmd(&["ACL", "SETUSER", "u", "on", "nopass", "-@all", "+flushall"])), "+OK\r\n");
    assert!(text(c.cmd(&["ACL", "SETUSER", "u", "+my-flushall"])).contains("Unknown command"));
    assert_eq!(text(c.cmd(&["AUTH", "u", "x"])), "+OK\r\n");
    assert_eq!(text(c.cmd(&["my-flushall"])), "+OK\r\n");
    assert_eq!(text(c.cmd(&["GET", "k"])), "-NOPERM User u has no permissions to run the 'get' command\r\n");
}

#[test]
fn users_from_the_configuration_and_the_acl_file() {
    let f = run_to_exit(&["--port", "0", "--user", "foo", "--user", "foo"], Duration::from_secs(20));
    assert!(!f.status.success());
    assert!(
        f.stderr.contains(
            "Error in user declaration 'foo': Duplicate user found. A user can only be defined once in config files"
        ),
        "{}",
        f.stderr
    );
    // As Redis, the word named is counted from the rules but taken from the whole directive.
    let f = run_to_exit(&["--port", "0", "--user", "foo", "bogus"], Duration::from_secs(20));
    assert!(f.stderr.contains("Error in user declaration 'user': Syntax error"), "{}", f.stderr);
    // Unknown commands are only found when the users are loaded.
    let f = run_to_exit(&["--port", "0", "--user", "foo", "+nosuch"], Duration::from_secs(20));
    assert!(
        f.stdout.contains(
            "Error loading ACL rule '+nosuch' for the user named 'foo': Unknown command or category name in ACL"
        ),
        "{}",
        f.stdout
    );
    let acl = work_dir().join("users.acl");
    std::fs::write(&acl, "user alice on >alice ~* &* +@all\nuser default on nopass ~* &* +@all -flushall\n").unwrap();
    let acl_path = acl.to_string_lossy().into_owned();
    let f = run_to_exit(&["--port", "0", "--aclfile", &acl_path, "--user", "bob"], Duration::from_secs(20));
    assert!(
        f.stdout.contains(
            "Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid"
        ),
        "{}",
        f.stdout
    );
    let s = Server::start(&["--aclfile", &acl_path]);
    let mut c = s.raw();
    assert_eq!(text(c.cmd(&["FLUSHALL"])), "-NOPERM User default has no permissions to run the 'flushall' command\r\n");
    assert_eq!(text(c.cmd(&["AUTH", "alice", "alice"])), "+OK\r\n");
    assert_eq!(text(c.cmd(&["ACL", "SETUSER", "carol", "on", ">c", "+get"])), "+OK\r\n");
    assert_eq!(text(c.cmd(&["ACL", "SAVE"])), "+OK\r\n");
    let saved = std::fs::read_to_string(&acl).unwrap();
    assert!(saved.starts_with("user alice on sanitize-payload #"), "{saved}");
    assert!(
        // A Redis 7.0 file loads; Redis 7.2 saves its users with sanitize-payload (the default).
        saved.contains("\nuser carol on sanitize-payload #")
            && saved.contains("\nuser default on nopass sanitize-payload ~* &* +@all -flushall\n"),
        "{saved}"
    );
    // ACL LOAD replaces the users and disconnects everyone but the default user's clients.
    std::fs::write(&acl, "user default on nopass ~* &* +@all\nuser dave on nopass +@all ~*\n").unwrap();
    assert_eq!(text(c.cmd(&["ACL", "LOAD"])), "+OK\r\n");
    assert!(c.try_read_reply(Duration::from_millis(200)).is_err());
    let mut d = s.raw();
    assert_eq!(text(d.cmd(&["ACL", "USERS"])), "*2\r\n$4\r\ndave\r\n$7\r\ndefault\r\n");
    std::fs::write(&acl, "user default on nopass\nuser dave bogus\n").unwrap();
    assert_eq!(
        text(d.cmd(&["ACL", "LOAD"])),
        format!("-ERR {acl_path}:2: Syntax error. WARNING: ACL errors detected, no change to the previously active ACL rules was performed\r\n")
    );
}

/// What Redis 7.2 changed in ACL: new users show `sanitize-payload`; command rules are
/// described in the order given; the NOPERM texts name the user; ACL LOG entries have ids and
/// times, and a refusal inside EXEC or a script shows the client running EXEC or EVAL; the
/// last AUTH and SETNAME of HELLO win; ACL SAVE / LOAD keep the descriptions.
#[test]
fn acl_behaves_as_redis_72() {
    let acl = work_dir().join("acl72.acl");
    // A file as Redis 7.0 writes it.
    std::fs::write(&acl, "user alice on #2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90 ~* &* +@all -@hash -@slow +hget\nuser default on nopass ~* &* +@all\n").unwrap();
    let acl_path = acl.to_string_lossy().into_owned();
    let s = Server::start(&["--aclfile", &acl_path]);
    let mut c = s.raw();
    let list = text(c.cmd(&["ACL", "LIST"]));
    assert!(list.contains("user alice on sanitize-payload #2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90 ~* &* +@all -@hash -@slow +hget\r\n"), "{list}");
    assert!(list.contains("user default on nopass sanitize-payload ~* &* +@all\r\n"), "{list}");
    assert_eq!(text(c.cmd(&["ACL", "SETUSER", "neu"])), "+OK\r\n");
    assert_eq!(text(c.cmd(&["ACL", "SETUSER", "sub", "+@all", "+client|id", "-@string", "+get"])), "+OK\r\n");
    let list = text(c.cmd(&["ACL", "LIST"]));
    assert!(list.contains("user neu off sanitize-payload resetchannels -@all\r\n"), "{list}");
    assert!(list.contains("user sub off sanitize-payload resetchannels +@all +client|id -@string +get\r\n"), "{list}");
    // ACL SAVE then ACL LOAD gives the same users back.
    assert_eq!(text(c.cmd(&["ACL", "SAVE"])), "+OK\r\n");
    assert_eq!(text(c.cmd(&["ACL", "LOAD"])), "+OK\r\n");
    assert_eq!(text(c.cmd(&["ACL", "LIST"])), list);

    // NOPERM texts (Redis 7.2's getAclErrorMessage), ACL DRYRUN's.
    let rules = ["on", ">pw", "-@all", "+get", "+publish", "+eval", "+multi", "+exec", "+incr", "~a", "resetchannels"];
    let mut setuser = vec!["ACL", "SETUSER", "bob"];
    setuser.extend_from_slice(&rules);
    assert_eq!(text(c.cmd(&setuser)), "+OK\r\n");
    assert_eq!(
        text(c.cmd(&["ACL", "DRYRUN", "bob", "get", "b"])),
        "$49\r\nUser bob has no permissions to access the 'b' key\r\n"
    );
    assert_eq!(
        text(c.cmd(&["ACL", "DRYRUN", "bob", "publish", "ch", "m"])),
        "$54\r\nUser bob has no permissions to access the 'ch' channel\r\n"
    );
    assert_eq!(text(c.cmd(&["ACL", "LOG", "RESET"])), "+OK\r\n");
    let mut b = s.raw();
    assert_eq!(text(b.cmd(&["AUTH", "bob", "pw"])), "+OK\r\n");
    assert_eq!(text(b.cmd(&["SET", "a", "1"])), "-NOPERM User bob has no permissions to run the 'set' command\r\n");
    assert_eq!(text(b.cmd(&["GET", "b"])), "-NOPERM No permissions to access a key\r\n");
    assert_eq!(text(b.cmd(&["PUBLISH", "ch", "m"])), "-NOPERM No permissions to access a channel\r\n");
    let e = text(b.cmd(&["EVAL", "return redis.call('get','b')", "0"]));
    assert!(e.starts_with("-ERR ACL failure in script: No permissions to access a key"), "{e}");
    // The script's refusal shows the client running EVAL.
    let log = text(c.cmd(&["ACL", "LOG", "1"]));
    assert!(log.contains("$3\r\nlua\r\n") && log.contains(" cmd=eval "), "{log}");
    for field in ["entry-id", "timestamp-created", "timestamp-last-updated"] {
        assert!(log.contains(&format!("${}\r\n{field}\r\n", field.len())), "{log}");
    }
    // Four entries so far: ids 0 to 3, the newest first.
    assert!(log.contains("$8\r\nentry-id\r\n:3\r\n"), "{log}");
    // A queued command refused at EXEC: the client runs EXEC.
    assert_eq!(text(b.cmd(&["MULTI"])), "+OK\r\n");
    assert_eq!(text(b.cmd(&["INCR", "a"])), "+QUEUED\r\n");
    assert_eq!(text(c.cmd(&["ACL", "SETUSER", "bob", "-incr"])), "+OK\r\n");
    let e = text(b.cmd(&["EXEC"]));
    assert!(e.contains("-NOPERM ACLs rules changed between the moment the transaction was accumulated"), "{e}");
    let log = text(c.cmd(&["ACL", "LOG", "1"]));
    assert!(log.contains("$5\r\nmulti\r\n") && log.contains(" cmd=exec "), "{log}");

    // HELLO: the last AUTH and the last SETNAME win; a bad name changes nothing.
    let mut h = s.raw();
    let r = text(h.cmd(&["HELLO", "2", "AUTH", "bob", "nope", "AUTH", "alice", "nope", "AUTH", "bob", "pw"]));
    assert!(r.starts_with("*14\r\n"), "{r}");
    assert_eq!(
        text(h.cmd(&["ACL", "WHOAMI"])),
        "-NOPERM User bob has no permissions to run the 'acl|whoami' command\r\n"
    );
    let r = text(h.cmd(&["HELLO", "2", "AUTH", "bob", "pw", "AUTH", "bob", "nope"]));
    assert!(r.starts_with("-WRONGPASS"), "{r}");
    let mut n = s.raw();
    assert!(text(n.cmd(&["HELLO", "2", "SETNAME", "a", "SETNAME", "b"])).starts_with("*14\r\n"));
    assert_eq!(text(n.cmd(&["CLIENT", "GETNAME"])), "$1\r\nb\r\n");
    assert_eq!(
        text(n.cmd(&["HELLO", "2", "SETNAME", "c", "SETNAME", "bad name"])),
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(text(n.cmd(&["CLIENT", "GETNAME"])), "$1\r\nb\r\n");
    // A failed AUTH: no name is set.
    assert!(text(n.cmd(&["HELLO", "2", "SETNAME", "d", "AUTH", "bob", "nope"])).starts_with("-WRONGPASS"));
    assert_eq!(text(n.cmd(&["CLIENT", "GETNAME"])), "$1\r\nb\r\n");

    // A blocked command refused when it is served again: no call, no time, one rejection.
    assert_eq!(text(c.cmd(&["CONFIG", "RESETSTAT"])), "+OK\r\n");
    assert_eq!(text(c.cmd(&["ACL", "SETUSER", "blocker", "on", "nopass", "+@all", "allkeys"])), "+OK\r\n");
    let mut w = s.raw();
    assert_eq!(text(w.cmd(&["AUTH", "blocker", "x"])), "+OK\r\n");
    w.send_cmd(&["BLPOP", "list1", "0"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(text(c.cmd(&["ACL", "SETUSER", "blocker", "resetkeys"])), "+OK\r\n");
    assert_eq!(text(c.cmd(&["LPUSH", "list1", "foo"])), ":1\r\n");
    assert_eq!(text(w.read_reply()), "-NOPERM No permissions to access a key\r\n");
    let stats = text(c.cmd(&["INFO", "commandstats"]));
    assert!(
        stats.contains("cmdstat_blpop:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0"),
        "{stats}"
    );
}
