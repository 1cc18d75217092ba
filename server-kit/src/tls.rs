//! TLS: a rustls server configuration (ring provider, HTTP/1.1) from PEM files, in dev mode a
//! small PKI generated once (a root CA and a server certificate for the loopback names) that
//! clients are told to trust, and the HTTPS client that trusts exactly the roots it is given.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::files::{create_dir, read_private, write_private, write_public};
use crate::{Error, Result};

/// Paths of the dev PKI.
#[derive(Debug, Clone)]
pub struct DevTls {
    /// The root CA certificate clients must trust.
    pub ca_cert: PathBuf,
    /// The server certificate chain.
    pub cert: PathBuf,
    /// The server private key.
    pub key: PathBuf,
}

/// Creates (once) a dev root CA and a server certificate for `localhost`, `127.0.0.1`, `::1`
/// and `extra_host`, in `dir/tls/`.
pub fn ensure_dev_tls(dir: &Path, extra_host: Option<&str>) -> Result<DevTls> {
    let tls = dir.join("tls");
    let paths = DevTls {
        ca_cert: tls.join("ca.pem"),
        cert: tls.join("server.pem"),
        key: tls.join("server-key.pem"),
    };
    if paths.ca_cert.exists() && paths.cert.exists() && paths.key.exists() {
        return Ok(paths);
    }
    create_dir(&tls)?;
    let (ca_pem, cert_pem, key_pem) =
        generate_dev_tls(extra_host).map_err(|e| Error::Config(format!("dev TLS: {e}")))?;
    write_public(&paths.ca_cert, ca_pem.as_bytes())?;
    write_private(&paths.key, key_pem.as_bytes())?;
    write_public(&paths.cert, cert_pem.as_bytes())?;
    Ok(paths)
}

fn generate_dev_tls(
    extra_host: Option<&str>,
) -> std::result::Result<(String, String, String), rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    // Every dev PKI's root has a name of its own (from its key), so a bundle holding several
    // (both servers' dev roots, say) lets a verifier find the right one by name; the server
    // certificate also names its root's key (AKI).
    let tag: String = ca_key.public_key_raw()[1..5]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    ca.distinguished_name
        .push(DnType::CommonName, format!("e2ei dev root CA {tag}"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(host) = extra_host.filter(|h| !names.iter().any(|n| n == h)) {
        names.push(host.to_owned());
    }
    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(names)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "e2ei dev server");
    server.is_ca = IsCa::ExplicitNoCa;
    server.use_authority_key_identifier_extension = true;
    let server_cert = server.signed_by(&server_key, &issuer)?;
    Ok((ca_cert.pem(), server_cert.pem(), server_key.serialize_pem()))
}

/// A rustls server configuration from a PEM certificate chain and a PEM private key (0600).
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::Config(format!("{}: {e}", cert.display())))?;
    let key_pem = read_private(key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| Error::Config(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Config(format!("TLS certificate: {e}")))?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

pub use io_kit::https::{client_config, https_client};

/// An HTTPS client trusting the PEM roots in `roots` and, with `system_roots`, also the roots
/// of the Mozilla root program (compiled in from `webpki-roots`, the same list wherever the
/// server runs), following no redirects, with a per-request `timeout`: for upstreams whose
/// certificates come from a public CA (`trust_system_roots`).
pub fn https_client_trusting(
    roots: &[PathBuf],
    system_roots: bool,
    timeout: std::time::Duration,
) -> Result<reqwest::Client> {
    let mut store = io_kit::https::root_store(roots)?;
    if system_roots {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    io_kit::https::https_client_with(store, timeout)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn system_roots_are_added_only_when_asked_for() {
        let timeout = std::time::Duration::from_secs(1);
        https_client_trusting(&[], true, timeout).unwrap();
        https_client_trusting(&[], false, timeout).unwrap();
        assert!(!webpki_roots::TLS_SERVER_ROOTS.is_empty());
        assert!(io_kit::https::root_store(&[]).unwrap().is_empty());
    }

    #[test]
    fn dev_tls_is_generated_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let a = ensure_dev_tls(dir.path(), Some("auth.test")).unwrap();
        let first = std::fs::read(&a.cert).unwrap();
        ensure_dev_tls(dir.path(), None).unwrap();
        assert_eq!(std::fs::read(&a.cert).unwrap(), first);
        assert_eq!(
            std::fs::metadata(&a.key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        server_config(&a.cert, &a.key).unwrap();
    }
}
