//! TLS with rustls (ring provider, no OpenSSL): the server configurations built from the
//! `tls-*` parameters (one per `tls-auth-clients` mode, chosen per connection as Redis sets
//! the verify mode per connection), reloaded by CONFIG SET; the client configuration for
//! `tls-replication`; and the mapping of a client certificate to an ACL user
//! (`tls-auth-clients-user CN`, the directive Redis 8.6 added: a client whose verified
//! certificate's Common Name names an enabled ACL user starts authenticated as that user).
//!
//! What OpenSSL does and rustls does not: TLS 1.0/1.1, CBC and RSA key-exchange cipher suites,
//! DH parameters (rustls uses ECDHE only: `tls-dh-params-file` is accepted and unused), PEM
//! keys encrypted in OpenSSL's legacy format (encrypted PKCS#8, what OpenSSL 3 writes, is
//! read).
//!
//! The library's memory is not counted in `used_memory` (Redis never counts OpenSSL's): the
//! configurations are built and dropped in a ledger scope of their own, and each connection's
//! stream lives in one too (`metrics::memory::Apart`, `Stream::Tls`).

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use rustls::client::Resumption;
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedCipherSuite};

use super::tls_sessions::SessionCache;
use super::tls_verify::{tlv, ClientVerifier, ServerVerifier, V1Chain};
use crate::config::Config;
use crate::metrics::memory::Apart;

/// `tls-auth-clients` values (the parameter's enum): no, yes, optional.
const AUTH_NO: usize = 0;
const AUTH_YES: usize = 1;
const AUTH_OPTIONAL: usize = 2;

/// The configurations built from one set of `tls-*` values, with the ledger of what building
/// them allocated.
pub struct Configs(Apart<Built>);

struct Built {
    /// Indexed by `tls-auth-clients`.
    servers: [Arc<ServerConfig>; 3],
    /// For connections this server makes (replication, the cluster bus, MIGRATE).
    client: Arc<ClientConfig>,
}

/// The TLS state of the server: None until TLS is configured.
#[derive(Default)]
pub struct Tls {
    configs: ArcSwapOption<Configs>,
}

impl Tls {
    pub fn install(&self, c: Configs) {
        self.configs.store(Some(Arc::new(c)));
    }

    pub fn is_configured(&self) -> bool {
        self.configs.load().is_some()
    }

    /// The acceptor for a new connection, per the current `tls-auth-clients`.
    pub fn acceptor(&self, auth_clients: u32) -> Option<tokio_rustls::TlsAcceptor> {
        let c = self.configs.load_full()?;
        let i = (auth_clients as usize).min(2);
        Some(tokio_rustls::TlsAcceptor::from(c.0.get().servers[i].clone()))
    }

    pub fn client(&self) -> Option<Arc<ClientConfig>> {
        self.configs.load().as_ref().map(|c| c.0.get().client.clone())
    }
}

/// Whether the configuration needs TLS set up (Redis configures it when any of these is on).
pub fn needed(cfg: &Config) -> bool {
    cfg.tls_port != 0 || cfg.tls_replication || cfg.tls_cluster
}

/// Whether a change between two configurations touches what [`configure`] builds.
pub fn settings_changed(a: &Config, b: &Config) -> Option<&'static str> {
    let fields: [(&str, bool); 16] = [
        ("tls-cert-file", a.tls_cert_file != b.tls_cert_file),
        ("tls-key-file", a.tls_key_file != b.tls_key_file),
        ("tls-key-file-pass", a.tls_key_file_pass != b.tls_key_file_pass),
        ("tls-client-cert-file", a.tls_client_cert_file != b.tls_client_cert_file),
        ("tls-client-key-file", a.tls_client_key_file != b.tls_client_key_file),
        ("tls-client-key-file-pass", a.tls_client_key_file_pass != b.tls_client_key_file_pass),
        ("tls-dh-params-file", a.tls_dh_params_file != b.tls_dh_params_file),
        ("tls-ca-cert-file", a.tls_ca_cert_file != b.tls_ca_cert_file),
        ("tls-ca-cert-dir", a.tls_ca_cert_dir != b.tls_ca_cert_dir),
        ("tls-protocols", a.tls_protocols != b.tls_protocols),
        ("tls-ciphers", a.tls_ciphers != b.tls_ciphers),
        ("tls-ciphersuites", a.tls_ciphersuites != b.tls_ciphersuites),
        ("tls-prefer-server-ciphers", a.tls_prefer_server_ciphers != b.tls_prefer_server_ciphers),
        ("tls-session-caching", a.tls_session_caching != b.tls_session_caching),
        ("tls-session-cache-size", a.tls_session_cache_size != b.tls_session_cache_size),
        ("tls-replication", a.tls_replication != b.tls_replication || a.tls_cluster != b.tls_cluster),
    ];
    fields.iter().find(|(_, changed)| *changed).map(|(n, _)| *n)
}

/// TLS 1.2 suites by OpenSSL name.
const TLS12: &[(&str, &SupportedCipherSuite)] = &[
    ("ECDHE-ECDSA-AES256-GCM-SHA384", &ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
    ("ECDHE-RSA-AES256-GCM-SHA384", &ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
    ("ECDHE-ECDSA-CHACHA20-POLY1305", &ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
    ("ECDHE-RSA-CHACHA20-POLY1305", &ring::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
    ("ECDHE-ECDSA-AES128-GCM-SHA256", &ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
    ("ECDHE-RSA-AES128-GCM-SHA256", &ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
];

/// TLS 1.3 suites by name.
const TLS13: &[(&str, &SupportedCipherSuite)] = &[
    ("TLS_AES_256_GCM_SHA384", &ring::cipher_suite::TLS13_AES_256_GCM_SHA384),
    ("TLS_CHACHA20_POLY1305_SHA256", &ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256),
    ("TLS_AES_128_GCM_SHA256", &ring::cipher_suite::TLS13_AES_128_GCM_SHA256),
];

/// The TLS 1.2 suites an OpenSSL cipher list selects, in its order (a subset of OpenSSL's
/// syntax: names, ALL/DEFAULT/HIGH, ECDHE, AESGCM, CHACHA20, aRSA, aECDSA, and `!`/`-` to
/// remove; other words select nothing). None when the list selects nothing.
pub fn tls12_suites(list: &str) -> Option<Vec<SupportedCipherSuite>> {
    let group = |w: &str| -> Vec<&'static str> {
        let all: Vec<&str> = TLS12.iter().map(|(n, _)| *n).collect();
        let w = w.to_ascii_uppercase();
        match w.as_str() {
            "ALL" | "DEFAULT" | "HIGH" | "ECDHE" | "EECDH" | "KEECDH" | "AECDH" => all,
            "AESGCM" | "AES" => all.into_iter().filter(|n| n.contains("GCM")).collect(),
            "CHACHA20" => all.into_iter().filter(|n| n.contains("CHACHA")).collect(),
            "ARSA" | "RSA" => all.into_iter().filter(|n| n.contains("-RSA-")).collect(),
            "AECDSA" | "ECDSA" => all.into_iter().filter(|n| n.contains("ECDSA")).collect(),
            _ => all.into_iter().filter(|n| n.eq_ignore_ascii_case(&w)).collect(),
        }
    };
    let mut chosen: Vec<&str> = Vec::new();
    let mut banned: Vec<&str> = Vec::new();
    for token in list.split([':', ',', ' ']).filter(|t| !t.is_empty()) {
        if let Some(w) = token.strip_prefix('!') {
            banned.extend(group(w));
            chosen.retain(|n| !banned.contains(n));
        } else if let Some(w) = token.strip_prefix('-') {
            let g = group(w);
            chosen.retain(|n| !g.contains(n));
        } else if token.starts_with('+') || token.starts_with('@') {
        } else {
            for n in group(token) {
                if !chosen.contains(&n) && !banned.contains(&n) {
                    chosen.push(n);
                }
            }
        }
    }
    let suites: Vec<SupportedCipherSuite> =
        chosen.iter().filter_map(|n| TLS12.iter().find(|(m, _)| m == n)).map(|(_, s)| **s).collect();
    (!suites.is_empty()).then_some(suites)
}

/// The TLS 1.3 suites of a `tls-ciphersuites` list (`:`-separated names). None when none is
/// known.
pub fn tls13_suites(list: &str) -> Option<Vec<SupportedCipherSuite>> {
    let suites: Vec<SupportedCipherSuite> = list
        .split(':')
        .filter_map(|w| TLS13.iter().find(|(n, _)| n.eq_ignore_ascii_case(w.trim())))
        .map(|(_, s)| **s)
        .collect();
    (!suites.is_empty()).then_some(suites)
}

/// `tls-protocols`: (TLS 1.2, TLS 1.3) enabled. Err is the log line.
fn protocols(spec: &str) -> Result<(bool, bool), String> {
    if spec.trim().is_empty() {
        return Ok((true, true));
    }
    let (mut v12, mut v13) = (false, false);
    for t in spec.split(' ').filter(|t| !t.is_empty()) {
        match t.to_ascii_lowercase().as_str() {
            "tlsv1.2" => v12 = true,
            "tlsv1.3" => v13 = true,
            "tlsv1" | "tlsv1.1" => {}
            _ => return Err(
                "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'."
                    .into(),
            ),
        }
    }
    if !v12 && !v13 {
        return Err("Ferrous supports only TLSv1.2 and TLSv1.3: tls-protocols enables neither".into());
    }
    Ok((v12, v13))
}

fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path).map_err(|e| e.to_string())?.collect();
    let certs = certs.map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no certificate found".into());
    }
    Ok(certs)
}

/// A private key from a PEM file; an encrypted PKCS#8 key needs its password.
fn load_key(path: &str, pass: &str) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| crate::config::kinds::strerror(&e))?;
    let text = String::from_utf8_lossy(&pem);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let start = text.find("-----BEGIN ENCRYPTED PRIVATE KEY-----").unwrap_or(0);
        let (_, der) = pkcs8::der::pem::decode_vec(text[start..].as_bytes()).map_err(|e| e.to_string())?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice()).map_err(|e| e.to_string())?;
        if pass.is_empty() {
            return Err("the key is encrypted and tls-key-file-pass is not set".into());
        }
        let doc = info.decrypt(pass.as_bytes()).map_err(|_| "bad decrypt".to_string())?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(doc.as_bytes().to_vec())));
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err("PEM keys encrypted in OpenSSL's legacy format are not supported (convert to PKCS#8)".into());
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| e.to_string())
}

/// The configured CA certificates (`tls-ca-cert-file`, then every readable PEM certificate of
/// `tls-ca-cert-dir`).
fn ca_certs(cfg: &Config) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certs = Vec::new();
    if !cfg.tls_ca_cert_file.is_empty() {
        certs.extend(load_certs(&cfg.tls_ca_cert_file)?);
    }
    if !cfg.tls_ca_cert_dir.is_empty() {
        let dir = std::fs::read_dir(&cfg.tls_ca_cert_dir).map_err(|e| crate::config::kinds::strerror(&e))?;
        for entry in dir.flatten() {
            // Hashed links and other files: every readable PEM certificate counts.
            if let Ok(c) = load_certs(&entry.path().to_string_lossy()) {
                certs.extend(c);
            }
        }
    }
    Ok(certs)
}

fn roots(cas: &[CertificateDer<'static>]) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    for c in cas {
        store.add(c.clone()).map_err(|e| e.to_string())?;
    }
    Ok(store)
}

/// Build the configurations from the `tls-*` parameters (Redis's tlsConfigure). Err is the log
/// line saying what is wrong.
pub fn configure(cfg: &Config) -> Result<Configs, String> {
    Apart::new(|| build(cfg)).transpose().map(Configs)
}

fn build(cfg: &Config) -> Result<Built, String> {
    if cfg.tls_cert_file.is_empty() {
        return Err("No tls-cert-file configured!".into());
    }
    if cfg.tls_key_file.is_empty() {
        return Err("No tls-key-file configured!".into());
    }
    let auth_clients = cfg.tls_auth_clients as usize;
    if (auth_clients != AUTH_NO || cfg.tls_cluster || cfg.tls_replication)
        && cfg.tls_ca_cert_file.is_empty()
        && cfg.tls_ca_cert_dir.is_empty()
    {
        return Err("Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, tls-replication or tls-auth-clients are enabled!".into());
    }
    let (v12, v13) = protocols(&cfg.tls_protocols)?;
    let certs = load_certs(&cfg.tls_cert_file)
        .map_err(|e| format!("Failed to load certificate: {}: {e}", cfg.tls_cert_file))?;
    let key = load_key(&cfg.tls_key_file, &cfg.tls_key_file_pass)
        .map_err(|e| format!("Failed to load private key: {}: {e}", cfg.tls_key_file))?;
    let cas = ca_certs(cfg).map_err(|e| format!("Failed to configure CA certificate(s) file/directory: {e}"))?;
    let roots =
        Arc::new(roots(&cas).map_err(|e| format!("Failed to configure CA certificate(s) file/directory: {e}"))?);
    let mut suites = Vec::new();
    if v13 {
        match cfg.tls_ciphersuites.as_str() {
            "" => suites.extend(TLS13.iter().map(|(_, s)| **s)),
            list => {
                suites.extend(tls13_suites(list).ok_or_else(|| format!("Failed to configure ciphersuites: {list}"))?)
            }
        }
    }
    if v12 {
        match cfg.tls_ciphers.as_str() {
            "" => suites.extend(TLS12.iter().map(|(_, s)| **s)),
            list => suites.extend(tls12_suites(list).ok_or_else(|| format!("Failed to configure ciphers: {list}"))?),
        }
    }
    let provider = Arc::new(CryptoProvider { cipher_suites: suites, ..ring::default_provider() });
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(v13, &rustls::version::TLS13), (v12, &rustls::version::TLS12)]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, v)| v)
            .collect();
    // The certificate is served as given (a resolver, not with_single_cert, which parses it with
    // webpki and refuses X.509 v1 certificates that OpenSSL-based clients accept).
    let signing = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| format!("Failed to load private key: {}: {e}", cfg.tls_key_file))?;
    let certified = rustls::sign::CertifiedKey::new(certs.clone(), signing);
    if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) = certified.keys_match() {
        return Err(format!("Failed to load private key: {}: it does not match the certificate", cfg.tls_key_file));
    }
    let server_key = Arc::new(OneKey(Arc::new(certified)));
    let v1 = Arc::new(V1Chain::new(&cas, provider.signature_verification_algorithms));
    let sessions: Arc<dyn rustls::server::StoresServerSessions> = if cfg.tls_session_caching {
        Arc::new(SessionCache::new(cfg.tls_session_cache_size as usize))
    } else {
        Arc::new(NoServerSessionStorage {})
    };
    let server = |mode: usize| -> Result<Arc<ServerConfig>, String> {
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| e.to_string())?;
        let builder = match mode {
            AUTH_NO => builder.with_no_client_auth(),
            _ => {
                let v = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
                let v = if mode == AUTH_OPTIONAL { v.allow_unauthenticated() } else { v };
                let inner = v.build().map_err(|e| e.to_string())?;
                builder.with_client_cert_verifier(Arc::new(ClientVerifier { inner, v1: v1.clone() }))
            }
        };
        let mut sc = builder.with_cert_resolver(server_key.clone());
        sc.ignore_client_order = cfg.tls_prefer_server_ciphers;
        sc.session_storage = sessions.clone();
        Ok(Arc::new(sc))
    };
    // With no CA configured only `tls-auth-clients no` is possible (checked above).
    let no = server(AUTH_NO)?;
    let (yes, optional) =
        if roots.is_empty() { (no.clone(), no.clone()) } else { (server(AUTH_YES)?, server(AUTH_OPTIONAL)?) };
    // Our own connections (replication): the client certificate, or the server's.
    let (ccert, ckey) = if !cfg.tls_client_cert_file.is_empty() && !cfg.tls_client_key_file.is_empty() {
        let c = load_certs(&cfg.tls_client_cert_file)
            .map_err(|e| format!("Failed to load certificate: {}: {e}", cfg.tls_client_cert_file))?;
        let k = load_key(&cfg.tls_client_key_file, &cfg.tls_client_key_file_pass)
            .map_err(|e| format!("Failed to load private key: {}: {e}", cfg.tls_client_key_file))?;
        (c, k)
    } else {
        (certs.clone(), key.clone_key())
    };
    let verifier = Arc::new(ServerVerifier {
        inner: rustls::client::WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| format!("Failed to configure CA certificate(s) file/directory: {e}"))?,
        v1,
    });
    let csigning =
        provider.key_provider.load_private_key(ckey).map_err(|e| format!("Failed to load private key: {e}"))?;
    let client_key = Arc::new(OneKey(Arc::new(rustls::sign::CertifiedKey::new(ccert, csigning))));
    let mut client = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(client_key);
    // As Redis's client context, which never resumes a session (and a session kept by the
    // configuration would be memory a connection allocated and left behind).
    client.resumption = Resumption::disabled();
    Ok(Built { servers: [no, yes, optional], client: Arc::new(client) })
}

/// One certificate and key, whatever the peer asks for.
#[derive(Debug)]
struct OneKey(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for OneKey {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl rustls::client::ResolvesClientCert for OneKey {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The Common Name of a certificate's subject (the last CN attribute), from its DER.
pub fn subject_common_name(der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let mut rest = tbs;
    // [0] version (optional), serial, signature algorithm, issuer, validity, subject.
    let (tag, _, r) = tlv(rest)?;
    if tag == 0xa0 {
        rest = r;
        let (_, _, r) = tlv(rest)?;
        rest = r;
    } else {
        rest = r;
    }
    for _ in 0..3 {
        let (_, _, r) = tlv(rest)?;
        rest = r;
    }
    let (_, mut subject, _) = tlv(rest)?;
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let mut found = None;
    while !subject.is_empty() {
        let (_, set, r) = tlv(subject)?;
        subject = r;
        let mut attrs = set;
        while !attrs.is_empty() {
            let (_, attr, r) = tlv(attrs)?;
            attrs = r;
            let (tag, oid, value) = tlv(attr)?;
            if tag == 0x06 && oid == CN {
                let (_, v, _) = tlv(value)?;
                found = Some(v.to_vec());
            }
        }
    }
    found
}

/// The link to our master (REPLICAOF), connected: over TLS with `tls-replication yes`.
pub async fn secure_master_link(
    server: &crate::server::Server,
    host: &str,
    tcp: tokio::net::TcpStream,
) -> Result<super::listen::Stream, String> {
    if !server.config.load().tls_replication {
        return Ok(super::listen::Stream::Tcp(tcp));
    }
    let client = server.tls.client().ok_or_else(|| "TLS is not configured".to_string())?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| format!("TLS server name {host}: {e}"))?;
    let connect = Apart::new(|| tokio_rustls::TlsConnector::from(client).connect(name, tcp));
    let tls = connect.await.transpose().map_err(|e| format!("TLS: {e}"))?;
    Ok(super::listen::Stream::TlsClient(tls.map(Box::new)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_lists() {
        let names = |v: Option<Vec<SupportedCipherSuite>>| v.map(|v| v.len());
        assert_eq!(names(tls12_suites("DEFAULT")), Some(6));
        assert_eq!(names(tls12_suites("DEFAULT:-AES128-SHA256")), Some(6));
        assert_eq!(names(tls12_suites("ECDHE-RSA-AES128-GCM-SHA256")), Some(1));
        assert_eq!(names(tls12_suites("HIGH:!CHACHA20")), Some(4));
        assert_eq!(names(tls12_suites("AES128-SHA256:AES256-SHA256")), None);
        assert_eq!(names(tls13_suites("TLS_AES_128_GCM_SHA256:TLS_NOPE")), Some(1));
        assert_eq!(names(tls13_suites("TLS_NOPE")), None);
        assert_eq!(protocols(""), Ok((true, true)));
        assert_eq!(protocols("TLSv1.2"), Ok((true, false)));
        assert!(protocols("TLSv1.1").is_err());
        assert!(protocols("SSLv3").is_err());
    }

    #[test]
    fn common_name_of_a_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Ferrous Test");
        params.distinguished_name.push(rcgen::DnType::CommonName, "alice");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(subject_common_name(cert.der()), Some(b"alice".to_vec()));
        assert_eq!(subject_common_name(b"\x30\x03\x02\x01"), None);
        assert_eq!(subject_common_name(b""), None);
    }
}
