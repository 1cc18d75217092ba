//! tls-alpn-01 (RFC 8737; RFC 8738 §6 for IP addresses): a TLS handshake offering only ALPN
//! `acme-tls/1` must present a certificate naming exactly the identifier, with a critical
//! acmeIdentifier extension (1.3.6.1.5.5.7.1.31) holding SHA-256(key authorization). The
//! certificate is self-signed by design, so only the handshake signature is verified (TLS 1.3,
//! against the certificate's public key), not a chain. The connection goes to the one address the
//! validation authority admitted under its address policy.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

use crate::error::{Error, ProblemType, Result};

/// The ALPN protocol of the challenge.
pub const ACME_TLS_1: &[u8] = b"acme-tls/1";
/// The acmeIdentifier extension.
pub const ACME_IDENTIFIER_OID: &str = "1.3.6.1.5.5.7.1.31";

/// Accepts any certificate (checked afterwards) but still verifies the handshake signature.
#[derive(Debug)]
struct ChallengeCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for ChallengeCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        // The client offers TLS 1.3 only.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        // webpki refuses the critical acmeIdentifier extension, so the handshake signature is
        // checked against the certificate's public key alone.
        let (_, parsed) = X509Certificate::from_der(cert).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        let spki = rustls::pki_types::SubjectPublicKeyInfoDer::from(parsed.public_key().raw);
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &spki,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The SNI of an IP identifier (RFC 8738 §6): its reverse-mapping name.
fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let nibbles: Vec<String> = v6
                .octets()
                .iter()
                .rev()
                .flat_map(|b| [b & 0x0f, b >> 4])
                .map(|n| format!("{n:x}"))
                .collect();
            format!("{}.ip6.arpa", nibbles.join("."))
        }
    }
}

/// What the certificate must name.
#[derive(Debug, Clone, Copy)]
pub enum Expected<'a> {
    /// A DNS name.
    Dns(&'a str),
    /// An IP address.
    Ip(IpAddr),
}

fn tls_problem(detail: String) -> Error {
    Error::problem(ProblemType::Tls, detail)
}

/// Connects to `addr` and checks the challenge certificate.
pub async fn check(addr: SocketAddr, expected: Expected<'_>, keyauth: &str) -> Result<()> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Internal(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChallengeCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![ACME_TLS_1.to_vec()];
    let sni = match expected {
        Expected::Dns(name) => name.to_owned(),
        Expected::Ip(ip) => reverse_name(ip),
    };
    let server_name = ServerName::try_from(sni.clone())
        .map_err(|_| Error::malformed(format!("{sni} is not a valid SNI name")))?;
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| {
        Error::problem(
            ProblemType::Connection,
            format!("connecting to {addr}: {e}"),
        )
    })?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| tls_problem(format!("TLS handshake with {addr} for {sni}: {e}")))?;
    let (_, session) = tls.get_ref();
    if session.alpn_protocol() != Some(ACME_TLS_1) {
        return Err(Error::unauthorized(format!(
            "{addr} did not negotiate ALPN acme-tls/1"
        )));
    }
    let cert = session
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| tls_problem(format!("{addr} presented no certificate")))?;
    check_certificate(cert, expected, keyauth)
}

fn check_certificate(der: &[u8], expected: Expected<'_>, keyauth: &str) -> Result<()> {
    let unauthorized =
        |detail: &str| Error::unauthorized(format!("tls-alpn-01 certificate: {detail}"));
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|_| unauthorized("not a valid certificate"))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|_| unauthorized("unreadable subjectAltName"))?
        .ok_or_else(|| unauthorized("no subjectAltName"))?;
    let names_ok = match (san.value.general_names.as_slice(), expected) {
        ([GeneralName::DNSName(d)], Expected::Dns(name)) => d.eq_ignore_ascii_case(name),
        ([GeneralName::IPAddress(bytes)], Expected::Ip(ip)) => match ip {
            IpAddr::V4(v4) => *bytes == v4.octets().as_slice(),
            IpAddr::V6(v6) => *bytes == v6.octets().as_slice(),
        },
        _ => false,
    };
    if !names_ok {
        return Err(unauthorized("the SAN is not exactly the identifier"));
    }
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == ACME_IDENTIFIER_OID)
        .ok_or_else(|| unauthorized("no acmeIdentifier extension"))?;
    if !ext.critical {
        return Err(unauthorized("the acmeIdentifier extension is not critical"));
    }
    let digest = Sha256::digest(keyauth.as_bytes());
    let mut expected_value = vec![0x04, 0x20];
    expected_value.extend_from_slice(&digest);
    if ext.value != expected_value.as_slice() {
        return Err(Error::problem(
            ProblemType::IncorrectResponse,
            "the acmeIdentifier does not hold this challenge's digest",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_follow_rfc_8738() {
        assert_eq!(
            reverse_name("127.0.0.1".parse().unwrap()),
            "1.0.0.127.in-addr.arpa"
        );
        assert!(reverse_name("::1".parse().unwrap()).starts_with("1.0.0.0."));
        assert!(reverse_name("::1".parse().unwrap()).ends_with(".ip6.arpa"));
    }
}
