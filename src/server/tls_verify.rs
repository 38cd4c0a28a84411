//! Certificate verification for TLS connections, both ways: the client certificates a TLS port
//! asks for (`tls-auth-clients`) and the master's certificate a replica checks
//! (`tls-replication`). Both delegate to rustls's webpki verifiers, with two differences that
//! make Ferrous accept what OpenSSL (and so Redis) accepts:
//!
//! - X.509 **v1** end-entity certificates (what `openssl x509 -req` writes without extensions,
//!   e.g. the `redis.crt` of Redis's utils/gen-test-certs.sh) are verified here, because webpki
//!   refuses every certificate that is not v3: the issuer must be the subject of a configured CA,
//!   the CA's key must have signed the certificate (checked with the crypto provider's signature
//!   algorithms, as webpki does), and the certificate must be within its validity dates. Only a
//!   chain of one link is followed (a v1 certificate issued by an intermediate is refused).
//! - The master's host name is not checked (OpenSSL, as Redis configures it, checks no host
//!   name either: masters are often reached by IP address).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, PeerMisbehaved, SignatureScheme};
use x509_parser::prelude::{FromDer, X509Certificate, X509Version};

/// One DER element: (tag, content, rest).
pub(super) fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)? as usize;
    let (len, hdr) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    Some((tag, b.get(hdr..end)?, b.get(end..)?))
}

/// Whether a certificate is older than X.509 v3 (its TBSCertificate has no explicit version 2,
/// i.e. v3): the certificates webpki refuses with UnsupportedCertVersion.
fn before_v3(der: &[u8]) -> bool {
    let Some((_, cert, _)) = tlv(der) else { return false };
    let Some((_, tbs, _)) = tlv(cert) else { return false };
    match tlv(tbs) {
        Some((0xa0, version, _)) => !matches!(tlv(version), Some((0x02, [2], _))),
        Some(_) => true,
        None => false,
    }
}

/// The `AlgorithmIdentifier` contents (what rustls's algorithms name themselves by) of a
/// certificate's signature.
fn signature_alg_id(cert_der: &[u8]) -> Option<&[u8]> {
    let (_, cert, _) = tlv(cert_der)?;
    let (_, _tbs, rest) = tlv(cert)?;
    let (0x30, alg, _) = tlv(rest)? else { return None };
    Some(alg)
}

/// The algorithm contents and key bits of a SubjectPublicKeyInfo.
fn spki_parts(spki: &[u8]) -> Option<(&[u8], &[u8])> {
    let (0x30, spki, _) = tlv(spki)? else { return None };
    let (0x30, alg, rest) = tlv(spki)? else { return None };
    let (0x03, bits, _) = tlv(rest)? else { return None };
    let (0, key) = bits.split_first()? else { return None };
    Some((alg, key))
}

fn bad(e: CertificateError) -> Error {
    Error::InvalidCertificate(e)
}

/// A configured CA as the v1 path needs it.
#[derive(Debug)]
struct Ca {
    /// The DER of its subject Name.
    subject: Vec<u8>,
    /// The DER of its SubjectPublicKeyInfo.
    spki: Vec<u8>,
}

/// The verification of certificates older than v3 against the configured CAs.
#[derive(Debug)]
pub struct V1Chain {
    cas: Vec<Ca>,
    algs: WebPkiSupportedAlgorithms,
}

impl V1Chain {
    /// From the configured CA certificates (those that do not parse are left out, as the root
    /// store leaves them out) and the signature algorithms of the crypto provider in use.
    pub fn new(cas: &[CertificateDer<'_>], algs: WebPkiSupportedAlgorithms) -> V1Chain {
        let cas = cas
            .iter()
            .filter_map(|der| X509Certificate::from_der(der).ok())
            .map(|(_, c)| Ca { subject: c.subject().as_raw().to_vec(), spki: c.public_key().raw.to_vec() })
            .collect();
        V1Chain { cas, algs }
    }

    /// Verify a v1 (or v2) end-entity certificate: issued and signed by a configured CA, and
    /// valid now.
    fn verify(&self, der: &[u8], now: UnixTime) -> Result<(), Error> {
        let (rest, cert) = X509Certificate::from_der(der).map_err(|_| bad(CertificateError::BadEncoding))?;
        if !rest.is_empty() || cert.version() == X509Version::V3 {
            return Err(bad(CertificateError::BadEncoding));
        }
        let sig_alg = signature_alg_id(der).ok_or(bad(CertificateError::BadEncoding))?;
        let tbs: &[u8] = cert.tbs_certificate.as_ref();
        let signature: &[u8] = &cert.signature_value.data;
        let issuer = cert.issuer().as_raw();
        let mut result = Err(bad(CertificateError::UnknownIssuer));
        for ca in self.cas.iter().filter(|ca| ca.subject == issuer) {
            let Some((key_alg, key)) = spki_parts(&ca.spki) else { continue };
            let signed = self
                .algs
                .all
                .iter()
                .filter(|a| a.signature_alg_id().as_ref() == sig_alg && a.public_key_alg_id().as_ref() == key_alg)
                .any(|a| a.verify_signature(key, tbs, signature).is_ok());
            if signed {
                result = Ok(());
                break;
            }
            result = Err(bad(CertificateError::BadSignature));
        }
        result?;
        let now = now.as_secs() as i64;
        let validity = cert.validity();
        if now < validity.not_before.timestamp() {
            return Err(bad(CertificateError::NotValidYet));
        }
        if now > validity.not_after.timestamp() {
            return Err(bad(CertificateError::Expired));
        }
        Ok(())
    }

    /// A handshake signature: by [`V1Chain::verify_signature`] for a certificate older than
    /// v3, by `webpki` (the wrapped verifier's check) otherwise.
    fn signature_or(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
        webpki: impl FnOnce() -> Result<HandshakeSignatureValid, Error>,
    ) -> Result<HandshakeSignatureValid, Error> {
        if before_v3(cert) {
            self.verify_signature(message, cert, dss, tls13)
        } else {
            webpki()
        }
    }

    /// A handshake signature made with the key of a certificate older than v3 (webpki cannot
    /// read such a certificate): checked on its SubjectPublicKeyInfo with the provider's
    /// algorithms for the scheme.
    fn verify_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, Error> {
        let (_, parsed) = X509Certificate::from_der(cert).map_err(|_| bad(CertificateError::BadEncoding))?;
        let spki = parsed.public_key().raw;
        if tls13 {
            // rustls's own check (scheme allowed in TLS 1.3, bound to one algorithm) on the key.
            let spki = SubjectPublicKeyInfoDer::from(spki);
            return rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algs);
        }
        // TLS 1.2: each algorithm of the scheme for the key's type, as rustls tries them.
        let (key_alg, key) = spki_parts(spki).ok_or(bad(CertificateError::BadEncoding))?;
        let algs = (self.algs.mapping.iter().find(|(s, _)| *s == dss.scheme))
            .map(|(_, a)| *a)
            .ok_or(Error::PeerMisbehaved(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme))?;
        let verified = (algs.iter())
            .filter(|a| a.public_key_alg_id().as_ref() == key_alg)
            .any(|a| a.verify_signature(key, message, dss.signature()).is_ok());
        if verified {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(bad(CertificateError::BadSignature))
        }
    }
}

/// The verifier of the master's certificate (a replica's connection): webpki for v3
/// certificates, [`V1Chain`] for older ones; the name is not checked.
#[derive(Debug)]
pub struct ServerVerifier {
    pub inner: Arc<WebPkiServerVerifier>,
    pub v1: Arc<V1Chain>,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if before_v3(end_entity) {
            return self.v1.verify(end_entity, now).map(|()| ServerCertVerified::assertion());
        }
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(Error::InvalidCertificate(CertificateError::NotValidForName))
            | Err(Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.v1.signature_or(message, cert, dss, false, || self.inner.verify_tls12_signature(message, cert, dss))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.v1.signature_or(message, cert, dss, true, || self.inner.verify_tls13_signature(message, cert, dss))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The verifier of client certificates (`tls-auth-clients yes|optional`): webpki's for v3
/// certificates, [`V1Chain`] for older ones.
#[derive(Debug)]
pub struct ClientVerifier {
    pub inner: Arc<dyn ClientCertVerifier>,
    pub v1: Arc<V1Chain>,
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        if before_v3(end_entity) {
            return self.v1.verify(end_entity, now).map(|()| ClientCertVerified::assertion());
        }
        self.inner.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.v1.signature_or(message, cert, dss, false, || self.inner.verify_tls12_signature(message, cert, dss))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.v1.signature_or(message, cert, dss, true, || self.inner.verify_tls13_signature(message, cert, dss))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_der_pieces() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().self_signed(&key).unwrap();
        let der = cert.der();
        assert!(!before_v3(der), "rcgen writes v3");
        // A TBSCertificate that starts with its serial number (no [0] version) is v1.
        assert!(before_v3(&[0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x07]));
        // An explicit version 1 (v2) is older than v3 too.
        assert!(before_v3(&[0x30, 0x07, 0x30, 0x05, 0xa0, 0x03, 0x02, 0x01, 0x01]));
        assert!(!before_v3(b""));
        // ecdsa-with-SHA256 (no parameters) and id-ecPublicKey + P-256.
        assert_eq!(signature_alg_id(der), Some(&[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02][..]));
        let (_, parsed) = X509Certificate::from_der(der).unwrap();
        let (alg, key_bits) = spki_parts(parsed.public_key().raw).unwrap();
        assert_eq!(alg[..9], [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
        assert_eq!(key_bits.len(), 65);
    }
}
