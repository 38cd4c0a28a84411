//! TLS end to end: a plain and a TLS port at once, client certificates (`tls-auth-clients`),
//! pipelining and Pub/Sub over TLS with the `redis` crate (rustls), a plain-text client refused
//! on the TLS port, certificates reloaded by CONFIG SET, and `tls-auth-clients-user CN`
//! mapping a client certificate to an ACL user, and the Lua debugger (SCRIPT DEBUG) over TLS.
//! Certificates are made with rcgen.

mod common;

use common::{work_dir, Raw, Server};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

struct Pki {
    dir: PathBuf,
    ca_pem: String,
}

impl Pki {
    /// A CA, a server certificate for 127.0.0.1 and client certificates (CN alice and bob).
    fn new(name: &str) -> Pki {
        let dir = work_dir().join(format!("tls-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "Ferrous Test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca_key_pem = ca_key.serialize_pem();
        let ca = CertifiedIssuer::self_signed(ca, ca_key).unwrap();
        let pki = Pki { dir, ca_pem: ca.pem() };
        std::fs::write(pki.path("ca.crt"), &pki.ca_pem).unwrap();
        std::fs::write(pki.path("ca.key"), ca_key_pem).unwrap();
        for (file, cn, sans) in [
            ("server", "Server", vec!["127.0.0.1".to_string(), "localhost".to_string()]),
            ("server2", "Server two", vec!["127.0.0.1".to_string()]),
            ("alice", "alice", vec![]),
            ("bob", "bob", vec![]),
        ] {
            let mut p = CertificateParams::new(sans).unwrap();
            p.distinguished_name.push(DnType::OrganizationName, "Ferrous Test");
            p.distinguished_name.push(DnType::CommonName, cn);
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, &ca).unwrap();
            std::fs::write(pki.path(&format!("{file}.crt")), cert.pem()).unwrap();
            std::fs::write(pki.path(&format!("{file}.key")), key.serialize_pem()).unwrap();
        }
        pki
    }

    /// An X.509 **v1** certificate (RSA key) as Redis's utils/gen-test-certs.sh makes its
    /// redis.crt: `openssl x509 -req` with no extensions, signed by `issuer`'s CA (this PKI's
    /// or another's). Written as `<name>.crt` and `<name>.key` in this PKI's directory.
    fn v1_cert(&self, name: &str, cn: &str, issuer: &Pki) {
        let sh = |cmd: String| {
            let out = std::process::Command::new("sh").arg("-c").arg(&cmd).output().unwrap();
            assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let (key, crt) = (self.path(&format!("{name}.key")), self.path(&format!("{name}.crt")));
        sh(format!("openssl genrsa -out {key} 2048 2>/dev/null"));
        sh(format!(
            "openssl req -new -sha256 -subj '/O=Ferrous Test/CN={cn}' -key {key} | openssl x509 -req -sha256 \
             -CA {} -CAkey {} -CAcreateserial -days 2 -out {crt}",
            issuer.path("ca.crt"),
            issuer.path("ca.key")
        ));
        let text = sh(format!("openssl x509 -in {crt} -noout -text"));
        assert!(text.contains("Version: 1 (0x0)"), "not a v1 certificate: {text}");
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_string_lossy().into_owned()
    }

    fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.path(file)).unwrap()
    }

    /// A `redis` crate client over TLS, with this client certificate (or none).
    fn client(&self, port: u16, cert: Option<&str>) -> redis::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client_tls = cert.map(|c| redis::ClientTlsConfig {
            client_cert: self.read(&format!("{c}.crt")),
            client_key: self.read(&format!("{c}.key")),
        });
        redis::Client::build_with_tls(
            format!("rediss://127.0.0.1:{port}/"),
            redis::TlsCertificates { client_tls, root_cert: Some(self.ca_pem.clone().into_bytes()) },
        )
        .unwrap()
    }

    fn server_args(&self, tls_port: u16) -> Vec<String> {
        vec![
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            self.path("server.crt"),
            "--tls-key-file".into(),
            self.path("server.key"),
            "--tls-ca-cert-file".into(),
            self.path("ca.crt"),
        ]
    }
}

/// The Common Name the server presents, read with a bare rustls client.
fn server_cn(pki: &Pki, port: u16) -> String {
    let mut tls = tls_wire(pki, port);
    tls.send_cmd(&["PING"]);
    assert_eq!(tls.read_reply(), "+PONG\r\n");
    let cert = tls.s.conn.peer_certificates().unwrap()[0].to_vec();
    String::from_utf8(ferrous::server::tls::subject_common_name(&cert).unwrap()).unwrap()
}

/// A TLS handshake with a bare rustls client presenting this certificate (served as given, so
/// that a v1 certificate can be presented), then PING; the reply or the error.
fn ping_with_cert(pki: &Pki, port: u16, cert: &str) -> Result<String, String> {
    use rustls::pki_types::pem::PemObject;
    #[derive(Debug)]
    struct Present(Arc<rustls::sign::CertifiedKey>);
    impl rustls::client::ResolvesClientCert for Present {
        fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(self.0.clone())
        }
        fn has_certs(&self) -> bool {
            true
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap()).unwrap();
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(pki.path(&format!("{cert}.crt")))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(pki.path(&format!("{cert}.key"))).unwrap();
    let signing = provider.key_provider.load_private_key(key).unwrap();
    let present = Arc::new(Present(Arc::new(rustls::sign::CertifiedKey::new(certs, signing))));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(present);
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
    let mut buf = [0u8; 7];
    tls.read_exact(&mut buf).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn tls_port() -> u16 {
    common::free_port()
}

#[test]
fn plain_and_tls_ports_serve_the_same_data() {
    let pki = Pki::new("ports");
    let port = tls_port();
    let args = pki.server_args(port);
    let s = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut plain = s.conn();
    let _: () = redis::cmd("SET").arg("k").arg("over tcp").query(&mut plain).unwrap();
    let mut tls = pki.client(port, Some("alice")).get_connection().unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut tls).unwrap();
    assert_eq!(v, "over tcp");
    // Pipelining over TLS: 1000 commands in one write, their replies in order.
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.cmd("INCR").arg("counter").ignore();
        pipe.cmd("RPUSH").arg("list").arg(i).ignore();
    }
    pipe.cmd("GET").arg("counter").cmd("LLEN").arg("list");
    let (counter, len): (i64, i64) = pipe.query(&mut tls).unwrap();
    assert_eq!((counter, len), (1000, 1000));
    let big = "x".repeat(1 << 20);
    let _: () = redis::cmd("SET").arg("big").arg(&big).query(&mut tls).unwrap();
    let back: String = redis::cmd("GET").arg("big").query(&mut plain).unwrap();
    assert_eq!(back.len(), big.len());
    // Pub/Sub: a TLS subscriber receives what a plain client publishes.
    let mut sub_conn = pki.client(port, Some("alice")).get_connection().unwrap();
    let mut sub = sub_conn.as_pubsub();
    sub.subscribe("news").unwrap();
    let n: i64 = redis::cmd("PUBLISH").arg("news").arg("hello").query(&mut plain).unwrap();
    assert_eq!(n, 1);
    sub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let msg = sub.get_message().unwrap();
    assert_eq!(msg.get_payload::<String>().unwrap(), "hello");
    // CLIENT LIST shows the TLS clients like any other.
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut plain).unwrap();
    assert_eq!(list.lines().count(), 3, "{list}");
}

#[test]
fn client_certificates_follow_tls_auth_clients() {
    let pki = Pki::new("auth");
    let port = tls_port();
    let args = pki.server_args(port);
    let s = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut admin = s.conn();
    // yes (the default): a client without a certificate cannot even complete the handshake.
    assert!(pki
        .client(port, None)
        .get_connection()
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_err());
    assert_eq!(
        redis::cmd("PING").query::<String>(&mut pki.client(port, Some("bob")).get_connection().unwrap()).unwrap(),
        "PONG"
    );
    let _: () = redis::cmd("CONFIG").arg("SET").arg("tls-auth-clients").arg("optional").query(&mut admin).unwrap();
    assert_eq!(
        redis::cmd("PING").query::<String>(&mut pki.client(port, None).get_connection().unwrap()).unwrap(),
        "PONG"
    );
    let _: () = redis::cmd("CONFIG").arg("SET").arg("tls-auth-clients").arg("no").query(&mut admin).unwrap();
    assert_eq!(
        redis::cmd("PING").query::<String>(&mut pki.client(port, None).get_connection().unwrap()).unwrap(),
        "PONG"
    );
    // A plain-text client on the TLS port is closed without a reply.
    let mut raw = Raw::new(TcpStream::connect(("127.0.0.1", port)).unwrap());
    raw.send(b"PING\r\n");
    raw.stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(raw.stream.read(&mut buf), Ok(0) | Err(_)));
}

#[test]
fn certificates_reload_on_config_set() {
    let pki = Pki::new("reload");
    let port = tls_port();
    let args = pki.server_args(port);
    let s = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut admin = s.conn();
    assert_eq!(server_cn(&pki, port), "Server");
    let set =
        |c: &mut redis::Connection, k: &str, v: &str| redis::cmd("CONFIG").arg("SET").arg(k).arg(v).query::<()>(c);
    // A key that does not match the certificate is refused; nothing changes.
    let err = set(&mut admin, "tls-cert-file", &pki.path("server2.crt")).unwrap_err();
    assert!(err.to_string().contains("Unable to update TLS configuration. Check server logs."), "{err}");
    assert_eq!(server_cn(&pki, port), "Server");
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("tls-cert-file")
        .arg(pki.path("server2.crt"))
        .arg("tls-key-file")
        .arg(pki.path("server2.key"))
        .query::<()>(&mut admin)
        .unwrap();
    assert_eq!(server_cn(&pki, port), "Server two");
    let err = set(&mut admin, "tls-key-file", &pki.path("nosuch.key")).unwrap_err();
    assert!(err.to_string().contains("Unable to update TLS configuration"), "{err}");
    assert!(s.log().contains("Failed to load private key"));
    // The TLS port moves (and closes with 0) at run time.
    let port2 = tls_port();
    set(&mut admin, "tls-port", &port2.to_string()).unwrap();
    assert_eq!(server_cn(&pki, port2), "Server two");
    set(&mut admin, "tls-port", "0").unwrap();
    // The listener task is cancelled by CONFIG SET; its socket closes when the task unwinds.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port2)).is_ok() {
        assert!(std::time::Instant::now() < deadline, "TLS port {port2} still accepting");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn client_certificate_common_name_selects_the_acl_user() {
    let pki = Pki::new("cn");
    let port = tls_port();
    let mut args = pki.server_args(port);
    args.extend(["--tls-auth-clients-user".to_string(), "CN".to_string()]);
    let s = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut admin = s.conn();
    let _: () =
        redis::cmd("ACL").arg("SETUSER").arg("alice").arg("on").arg("+@all").arg("~*").query(&mut admin).unwrap();
    let _: () =
        redis::cmd("ACL").arg("SETUSER").arg("bob").arg("off").arg("+@all").arg("~*").query(&mut admin).unwrap();
    let mut alice = pki.client(port, Some("alice")).get_connection().unwrap();
    assert_eq!(redis::cmd("ACL").arg("WHOAMI").query::<String>(&mut alice).unwrap(), "alice");
    // A disabled user: the connection stays the default user's.
    let mut bob = pki.client(port, Some("bob")).get_connection().unwrap();
    assert_eq!(redis::cmd("ACL").arg("WHOAMI").query::<String>(&mut bob).unwrap(), "default");
    // Off (the default): certificates select nobody.
    let _: () = redis::cmd("CONFIG").arg("SET").arg("tls-auth-clients-user").arg("off").query(&mut admin).unwrap();
    let mut alice = pki.client(port, Some("alice")).get_connection().unwrap();
    assert_eq!(redis::cmd("ACL").arg("WHOAMI").query::<String>(&mut alice).unwrap(), "default");
    // The directive is Ferrous's (Redis 8.6's): CONFIG GET * does not list it.
    let all: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("*").query(&mut admin).unwrap();
    assert!(!all.iter().any(|n| n == "tls-auth-clients-user"));
}

#[test]
fn encrypted_private_keys_need_their_password() {
    let pki = Pki::new("encrypted");
    // An encrypted PKCS#8 key as `openssl rsa -aes256` (OpenSSL 3) writes it: PBES2 with
    // PBKDF2-SHA256 (2048 rounds) and AES-256-CBC.
    let key = pkcs8::PrivateKeyInfo::try_from(
        rustls::pki_types::pem::PemObject::from_pem_file(pki.path("server.key"))
            .map(|k: rustls::pki_types::PrivatePkcs8KeyDer| k.secret_pkcs8_der().to_vec())
            .unwrap()
            .as_slice(),
    )
    .unwrap()
    .encrypt_with_params(
        pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, b"saltsalt", &[7; 16]).unwrap(),
        b"1234",
    )
    .unwrap();
    let pem = pkcs8::der::pem::encode_string("ENCRYPTED PRIVATE KEY", pkcs8::der::pem::LineEnding::LF, key.as_bytes())
        .unwrap();
    std::fs::write(pki.path("server.key.encrypted"), pem).unwrap();
    let port = tls_port();
    let args = pki.server_args(port);
    let s = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut admin = s.conn();
    let set =
        |c: &mut redis::Connection, k: &str, v: &str| redis::cmd("CONFIG").arg("SET").arg(k).arg(v).query::<()>(c);
    assert!(set(&mut admin, "tls-key-file", &pki.path("server.key.encrypted")).is_err());
    set(&mut admin, "tls-key-file-pass", "1234").unwrap();
    set(&mut admin, "tls-key-file", &pki.path("server.key.encrypted")).unwrap();
    assert_eq!(server_cn(&pki, port), "Server");
}

/// tls-replication: a replica connects to its master's TLS port (with the server certificate as
/// its client certificate), gets the snapshot and the stream over TLS.
#[test]
fn a_replica_syncs_over_tls_with_tls_replication() {
    let pki = Pki::new("replication");
    let master_tls = tls_port();
    let args = pki.server_args(master_tls);
    let master = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut m = master.conn();
    let _: () = redis::cmd("SET").arg("before").arg("snapshot").query(&mut m).unwrap();
    let mut args = pki.server_args(tls_port());
    args.extend(["--tls-replication", "yes", "--dbfilename", "tls-replica.rdb"].map(String::from));
    let replica = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut r = replica.conn();
    replicate_from(&mut r, master_tls, &replica, &master);
    let _: () = redis::cmd("SET").arg("after").arg("stream").query(&mut m).unwrap();
    let acked: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut m).unwrap();
    assert_eq!(acked, 1);
    let got: Vec<String> = redis::cmd("MGET").arg("before").arg("after").query(&mut r).unwrap();
    assert_eq!(got, ["snapshot", "stream"]);
}

/// With tls-cluster, MIGRATE connects to the target over TLS (Redis's connTypeOfCluster), so
/// a key moves to the target's TLS port.
#[test]
fn migrate_uses_tls_with_tls_cluster() {
    let pki = Pki::new("migrate");
    let mut args = pki.server_args(tls_port());
    args.extend(["--tls-cluster", "yes"].map(String::from));
    let source = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let target_tls = tls_port();
    let target = Server::start(&pki.server_args(target_tls).iter().map(String::as_str).collect::<Vec<_>>());
    let mut s = source.conn();
    let _: () = redis::cmd("SET").arg("k").arg("moved over tls").query(&mut s).unwrap();
    let reply: String =
        redis::cmd("MIGRATE").arg("127.0.0.1").arg(target_tls).arg("k").arg(0).arg(5000).query(&mut s).unwrap();
    assert_eq!(reply, "OK");
    let there: String = redis::cmd("GET").arg("k").query(&mut target.conn()).unwrap();
    assert_eq!(there, "moved over tls");
    let here: Option<String> = redis::cmd("GET").arg("k").query(&mut s).unwrap();
    assert_eq!(here, None);
}

/// Over maxclients a TLS connection is refused before its handshake (Redis's refusal cannot
/// be written on a TLS connection not yet set up): the client's handshake fails, and the
/// refusal counts in rejected_connections. A plain client still reads the error.
#[test]
fn maxclients_refuses_a_tls_connection_before_its_handshake() {
    let pki = Pki::new("maxclients");
    let port = tls_port();
    let mut args = pki.server_args(port);
    args.extend(["--maxclients", "1"].map(String::from));
    let s = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // The one slot, once the start-up check's connection has given it back.
    let mut first = None;
    assert!(common::wait_until(Duration::from_secs(10), || {
        let mut c = Raw::new(TcpStream::connect(("127.0.0.1", s.port)).unwrap());
        let admitted = c.cmd(&["PING"]) == b"+PONG\r\n";
        first = admitted.then_some(c);
        admitted
    }));
    let mut first = first.unwrap();
    let rejected = |c: &mut Raw| -> u64 {
        let info = String::from_utf8_lossy(&c.cmd(&["INFO", "stats"])).into_owned();
        let line = info.lines().find_map(|l| l.strip_prefix("rejected_connections:")).map(str::to_owned);
        line.and_then(|v| v.trim().parse().ok()).expect("rejected_connections")
    };
    let before = rejected(&mut first);
    assert!(ping_with_cert(&pki, port, "alice").is_err());
    let mut second = Raw::new(TcpStream::connect(("127.0.0.1", s.port)).unwrap());
    second.send_cmd(&["PING"]);
    assert_eq!(second.read_reply(), b"-ERR max number of clients reached\r\n");
    assert_eq!(rejected(&mut first), before + 2);
}

/// With tls-cluster the bus is TLS: two nodes meet and form a cluster over it. Clients are told
/// the ports of their own connection type (Redis 7.2): a plain client's MOVED names the other
/// node's plain port, CLUSTER SHARDS shows both ports.
#[test]
fn a_cluster_forms_over_a_tls_bus() {
    let pki = Pki::new("tls-cluster");
    let nodes: Vec<(Server, u16, u16)> = (0..2)
        .map(|i| {
            let (tls, bus) = (tls_port(), common::free_port());
            let conf = work_dir().join(format!("nodes-tls-{}-{i}.conf", std::process::id()));
            let _ = std::fs::remove_file(&conf);
            let mut args = pki.server_args(tls);
            let extra = ["--tls-cluster", "yes", "--tls-replication", "yes", "--cluster-enabled", "yes"];
            args.extend(extra.map(String::from));
            args.extend(["--cluster-port".into(), bus.to_string(), "--cluster-config-file".into()]);
            args.push(conf.to_string_lossy().into_owned());
            (Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>()), tls, bus)
        })
        .collect();
    let (a, a_tls, _) = &nodes[0];
    let (b, b_tls, b_bus) = &nodes[1];
    let cmd = |s: &Server, args: &[&str]| -> String {
        let r: redis::Value = redis::cmd(args[0])
            .arg(&args[1..])
            .query(&mut s.conn())
            .unwrap_or_else(|e| redis::Value::SimpleString(e.to_string()));
        format!("{r:?}")
    };
    cmd(a, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    cmd(a, &["CLUSTER", "MEET", "127.0.0.1", &b_tls.to_string(), &b_bus.to_string()]);
    let formed = common::wait_until(Duration::from_secs(20), || {
        cmd(b, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
            && cmd(a, &["CLUSTER", "INFO"]).contains("cluster_known_nodes:2")
    });
    assert!(formed, "no cluster over TLS: {}", cmd(b, &["CLUSTER", "NODES"]));
    let mut raw = Raw::new(TcpStream::connect(("127.0.0.1", b.port)).unwrap());
    let moved = String::from_utf8_lossy(&raw.cmd(&["GET", "foo"])).into_owned();
    assert_eq!(moved, format!("-MOVED 12182 127.0.0.1:{}\r\n", a.port));
    let shards = cmd(b, &["CLUSTER", "SHARDS"]);
    assert!(shards.contains(&format!("int({})", a.port)) && shards.contains(&format!("int({a_tls})")), "{shards}");
    assert!(cmd(b, &["CLUSTER", "NODES"]).contains(&format!("127.0.0.1:{}@", a.port)));
    // A script's CLUSTER SLOTS answers for its caller's connection too (Redis 7.2, #12569).
    let mut tls_con = pki.client(*b_tls, Some("alice")).get_connection().unwrap();
    let direct: redis::Value = redis::cmd("CLUSTER").arg("SLOTS").query(&mut tls_con).unwrap();
    let scripted: redis::Value =
        redis::cmd("EVAL").arg("return redis.call('CLUSTER', 'SLOTS')").arg(0).query(&mut tls_con).unwrap();
    assert!(format!("{direct:?}").contains(&format!("int({a_tls})")), "{direct:?}");
    assert_eq!(format!("{scripted:?}"), format!("{direct:?}"));
    // The bus port speaks TLS only: the start of a plain bus message ends the connection.
    let mut plain = TcpStream::connect(("127.0.0.1", *b_bus)).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    plain.write_all(b"RCmb\0\0\x08\xd0").unwrap();
    let mut buf = [0u8; 64];
    let read = plain.read(&mut buf);
    let refused = match &read {
        Ok(0) => true,
        Ok(_) => buf[0] == 0x15, // a TLS alert
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    };
    assert!(refused, "a plain bus message was taken: {read:?}");
    // Both parameters are applied, so neither is reported as accepted but not applied.
    for (s, _, _) in &nodes {
        assert!(!s.log().contains("does not apply"), "{}", s.log());
    }
    // cluster-announce-tls-port is announced on the bus: the other node learns it (and a TLS
    // client would be sent there).
    let announced = common::free_port().to_string();
    cmd(a, &["CONFIG", "SET", "cluster-announce-tls-port", &announced]);
    let learned = common::wait_until(Duration::from_secs(20), || {
        cmd(b, &["CLUSTER", "SHARDS"]).contains(&format!("int({announced})"))
    });
    assert!(learned, "{}", cmd(b, &["CLUSTER", "SHARDS"]));
    assert!(cmd(a, &["CONFIG", "GET", "cluster-announce-tls-port"]).contains(&announced));
}

/// X.509 v1 client certificates (Redis's gen-test-certs.sh makes redis.crt so, and OpenSSL
/// accepts it): one signed by the configured CA is accepted, and its CN selects the ACL user;
/// one signed by another CA is refused.
#[test]
fn v1_client_certificates_are_verified_against_the_ca() {
    let pki = Pki::new("v1-client");
    let rogue = Pki::new("v1-client-rogue");
    pki.v1_cert("v1", "alice", &pki);
    pki.v1_cert("v1-rogue", "alice", &rogue);
    let port = tls_port();
    let mut args = pki.server_args(port);
    args.extend(["--tls-auth-clients-user".to_string(), "CN".to_string()]);
    let s = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(ping_with_cert(&pki, port, "v1").unwrap(), "+PONG\r\n");
    assert_eq!(ping_with_cert(&pki, port, "alice").unwrap(), "+PONG\r\n");
    let refused = ping_with_cert(&pki, port, "v1-rogue");
    assert!(refused.is_err(), "a v1 certificate of another CA was accepted: {refused:?}");
    // optional: a certificate that is presented is still verified.
    let mut admin = s.conn();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("tls-auth-clients").arg("optional").query(&mut admin).unwrap();
    assert!(ping_with_cert(&pki, port, "v1-rogue").is_err());
    assert_eq!(ping_with_cert(&pki, port, "v1").unwrap(), "+PONG\r\n");
}

/// The TCL test 'tls-cert-file is also used as a client cert if none specified', with v1
/// certificates both ways: the replica presents its v1 server certificate as its client
/// certificate, and the master serves a v1 certificate that the replica verifies. A master whose
/// v1 certificate comes from another CA is refused.
#[test]
fn replication_with_v1_certificates() {
    let pki = Pki::new("v1-repl");
    let rogue = Pki::new("v1-repl-rogue");
    pki.v1_cert("master", "Generic-cert", &pki);
    pki.v1_cert("replica", "Generic-cert", &pki);
    pki.v1_cert("impostor", "Generic-cert", &rogue);
    let v1_args = |port: u16, name: &str| -> Vec<String> {
        let mut a = pki.server_args(port);
        a[3] = pki.path(&format!("{name}.crt"));
        a[5] = pki.path(&format!("{name}.key"));
        a
    };
    let master_tls = tls_port();
    let master = Server::start(&v1_args(master_tls, "master").iter().map(String::as_str).collect::<Vec<_>>());
    let mut m = master.conn();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut m).unwrap();
    let mut args = v1_args(tls_port(), "replica");
    args.extend(["--tls-replication", "yes", "--dbfilename", "tls-v1-replica.rdb"].map(String::from));
    let replica = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut r = replica.conn();
    replicate_from(&mut r, master_tls, &replica, &master);
    assert_eq!(redis::cmd("GET").arg("k").query::<String>(&mut r).unwrap(), "v");
    // A master presenting a v1 certificate of another CA (with the same name as ours, so only the
    // signature tells them apart): the replica refuses the handshake.
    let impostor_tls = tls_port();
    let mut args = v1_args(impostor_tls, "impostor");
    args.extend(["--tls-auth-clients", "no"].map(String::from));
    let _impostor = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(impostor_tls).query(&mut r).unwrap();
    assert!(
        common::wait_until(Duration::from_secs(10), || replica
            .log()
            .contains("TLS: invalid peer certificate: BadSignature")),
        "no certificate error in the replica's log:\n{}",
        replica.log()
    );
    assert!(replication_info(&mut r).contains("master_link_status:down"));
}

/// REPLICAOF the master's TLS port, then wait for the link to come up (both logs if it does not).
fn replicate_from(r: &mut redis::Connection, master_tls: u16, replica: &Server, master: &Server) {
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(master_tls).query(r).unwrap();
    assert!(
        common::wait_until(common::BACKGROUND_WORK, || replication_info(r).contains("master_link_status:up")),
        "the link never came up: {}\n{}\n{}",
        replication_info(r),
        replica.log(),
        master.log()
    );
}

fn replication_info(c: &mut redis::Connection) -> String {
    redis::cmd("INFO").arg("replication").query(c).unwrap()
}

/// A raw RESP connection on any transport (TCP, or TLS with a bare rustls client), to drive
/// the Lua debugger byte by byte over both.
struct Wire<S: Read + Write> {
    s: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Wire<S> {
    fn send_cmd(&mut self, args: &[&str]) {
        self.s.write_all(&common::encode(args)).unwrap();
        self.s.flush().unwrap();
    }

    /// One complete reply (the socket's read timeout bounds the wait).
    fn read_reply(&mut self) -> String {
        loop {
            if let Some(len) = common::reply_len(&self.buf, 0) {
                return String::from_utf8_lossy(&self.buf.drain(..len).collect::<Vec<_>>()).into_owned();
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.s.read(&mut chunk) {
                Ok(n) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                r => panic!("no complete reply: {r:?} (buffered {:?})", String::from_utf8_lossy(&self.buf)),
            }
        }
    }

    /// Whether the server closed the connection (with nothing more to read) before the read
    /// timeout.
    fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 1024];
        match self.s.read(&mut chunk) {
            Ok(0) => true,
            Ok(n) => panic!("unexpected data: {:?}", String::from_utf8_lossy(&chunk[..n])),
            Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        }
    }

    /// Each step's command, then its replies (how many each gets); the replies in order.
    fn session(&mut self, steps: &[(&[&str], usize)]) -> Vec<String> {
        let mut replies = Vec::new();
        for (cmd, n) in steps {
            self.send_cmd(cmd);
            replies.extend((0..*n).map(|_| self.read_reply()));
        }
        replies
    }
}

type TlsWire = Wire<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

fn tcp_wire(port: u16) -> Wire<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    Wire { s, buf: Vec::new() }
}

/// A TLS connection presenting alice's certificate.
fn tls_wire(pki: &Pki, port: u16) -> TlsWire {
    use rustls::pki_types::pem::PemObject;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap()).unwrap();
    let certs =
        rustls::pki_types::CertificateDer::pem_file_iter(pki.path("alice.crt")).unwrap().map(|c| c.unwrap()).collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(pki.path("alice.key")).unwrap();
    let config =
        rustls::ClientConfig::builder().with_root_certificates(roots).with_client_auth_cert(certs, key).unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    Wire { s: rustls::StreamOwned::new(conn, sock), buf: Vec::new() }
}

/// A session touching what the debugger writes and reads: stepping, printing, `maxlen` with a
/// reply it truncates, redis.debug, redis.breakpoint, a command from the prompt, its end.
const LDB_SCRIPT: &str = "local big = string.rep('x', 100)
redis.debug('hi', 7)
redis.call('set', KEYS[1], big)
redis.breakpoint()
return redis.call('strlen', KEYS[1])
";

fn ldb_steps() -> Vec<(&'static [&'static str], usize)> {
    vec![
        (&["SCRIPT", "DEBUG", "SYNC"], 1),
        (&["EVAL", LDB_SCRIPT, "1", "dbg"], 1),
        (&["maxlen", "70"], 1),
        (&["s"], 1),
        (&["p", "big"], 1),
        (&["c"], 1),
        (&["r", "get", "dbg"], 1),
        (&["l", "5", "0"], 1),
        (&["c"], 2),
    ]
}

/// SCRIPT DEBUG over TLS: the debugger's log and its reads go through the connection's TLS
/// session, so a session is byte for byte what it is over TCP, in SYNC and YES modes, and a
/// client leaving mid-session lets the script finish and the server go on.
#[test]
fn lua_debugger_works_over_tls() {
    let pki = Pki::new("ldb");
    let port = tls_port();
    let args = pki.server_args(port);
    let s = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let steps = ldb_steps();
    let mut tcp = tcp_wire(s.port);
    let over_tcp = tcp.session(&steps);
    assert!(tcp.closed(), "a SYNC session closes the connection after the EVAL reply");
    let mut tls = tls_wire(&pki, port);
    let over_tls = tls.session(&steps);
    assert!(tls.closed(), "a SYNC session over TLS closes the connection after the EVAL reply");
    assert_eq!(over_tls, over_tcp);
    let want_start = [
        "+OK\r\n",
        "*2\r\n+* Stopped at 1, stop reason = step over\r\n+-> 1   local big = string.rep('x', 100)\r\n",
        "*1\r\n+<value> replies are truncated at 70 bytes.\r\n",
        "*2\r\n+* Stopped at 2, stop reason = step over\r\n+-> 2   redis.debug('hi', 7)\r\n",
    ];
    assert_eq!(over_tls[..4], want_start);
    assert!(over_tls[4].starts_with("*1\r\n+<value> \"xxxxxxxx"), "{}", over_tls[4]);
    assert_eq!(
        over_tls[5],
        "*3\r\n+<debug> line 2: \"hi\", 7\r\n+* Stopped at 5, stop reason = redis.breakpoint() called\r\n\
         +-> 5   return redis.call('strlen', KEYS[1])\r\n"
    );
    // The reply as the debugger shows it, cut at 70 bytes.
    assert_eq!(over_tls[6], format!("*2\r\n+<redis> get dbg\r\n+<reply> \"{} ...\r\n", "x".repeat(61)));
    assert_eq!(over_tls[7], "*1\r\n+-> 5   return redis.call('strlen', KEYS[1])\r\n");
    assert_eq!(over_tls[8..], ["*1\r\n+<endsession>\r\n", ":100\r\n"]);

    // SCRIPT DEBUG YES: the script's writes are refused, over TLS as over TCP.
    let mut tls = tls_wire(&pki, port);
    let yes = tls.session(&[
        (&["SCRIPT", "DEBUG", "YES"], 1),
        (&["EVAL", "return redis.pcall('set', 'yes', '1')['err']", "0"], 1),
        (&["c"], 2),
    ]);
    assert!(yes[2].contains("+<endsession>"), "{yes:?}");
    assert!(yes[3].contains("Write commands are not allowed in a SCRIPT DEBUG YES session"), "{yes:?}");
    assert!(tls.closed());

    // Clients leaving mid-session, with a TLS close_notify and without: the script runs on
    // (its write kept), and nothing waits for them.
    let mut plain = tcp_wire(s.port);
    for (n, notify) in [(1, true), (2, false)] {
        let mut tls = tls_wire(&pki, port);
        let script = format!("redis.call('incr', 'left')\nredis.breakpoint()\nreturn {n}");
        let started = tls.session(&[(&["SCRIPT", "DEBUG", "SYNC"], 1), (&["EVAL", &script, "0"], 1)]);
        assert!(started[1].starts_with("*2\r\n+* Stopped at 1"), "{started:?}");
        if notify {
            tls.s.conn.send_close_notify();
            let _ = tls.s.flush();
        }
        drop(tls);
        plain.send_cmd(&["GET", "left"]);
        assert_eq!(plain.read_reply(), format!("${}\r\n{n}\r\n", n.to_string().len()));
    }
    let mut tls = pki.client(port, Some("alice")).get_connection().unwrap();
    let pong: String = redis::cmd("PING").query(&mut tls).unwrap();
    assert_eq!(pong, "PONG");
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

/// What rustls allocates is not `used_memory`, as Redis never counts OpenSSL's memory:
/// configuring TLS adds next to nothing to the figure (three session caches reserved in full
/// added 6 MB), a TLS connection counts what a plain one does (its query and reply buffers),
/// and the sessions cached for resumption, kept after their connections close, are not counted
/// (they added ~10 KB per connection ever made).
#[test]
fn the_tls_library_memory_is_not_used_memory() {
    let pki = Pki::new("memory");
    let port = tls_port();
    let args = pki.server_args(port);
    let s = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let plain_server = Server::start(&[]);
    let used = |c: &mut redis::Connection| -> i64 { common::info_field(c, "memory", "used_memory").parse().unwrap() };
    let mut ctl = s.conn();
    let configured = used(&mut ctl) - used(&mut plain_server.conn());
    assert!(configured.abs() < 512 << 10, "configuring TLS added {configured} bytes");
    const N: usize = 40;
    let connect = |tls: bool| -> Vec<redis::Connection> {
        (0..N)
            .map(|_| {
                let mut c = if tls { pki.client(port, Some("alice")).get_connection().unwrap() } else { s.conn() };
                let _: String = common::query(&mut c, &["PING"]);
                c
            })
            .collect()
    };
    let all_gone = |ctl: &mut redis::Connection| {
        assert!(common::wait_until(Duration::from_secs(10), || common::info_field(
            ctl,
            "clients",
            "connected_clients"
        ) == "1"));
    };
    // Once, for what the first connections set up for good.
    drop(connect(true));
    drop(connect(false));
    all_gone(&mut ctl);
    let mut each = |tls: bool| -> i64 {
        let before = used(&mut ctl);
        let conns = connect(tls);
        let during = used(&mut ctl);
        drop(conns);
        all_gone(&mut ctl);
        let left = used(&mut ctl) - before;
        assert!(left.abs() < 16 << 10, "{N} connections (tls {tls}) left {left} bytes counted");
        (during - before) / N as i64
    };
    let (tls, plain) = (each(true), each(false));
    assert!(tls < plain + 2048, "a TLS connection counts {tls} bytes, a plain one {plain}");
}
