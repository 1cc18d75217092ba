//! The HTTPS client of the servers' outbound calls and of the device SDK: rustls with the ring
//! provider, trusting exactly the roots it is given (the PEM files named; no system roots unless
//! a caller adds them to the [`root_store`] itself), following no redirects.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{Error, Result};

/// The certificates of the PEM files in `roots`, as a root store.
pub fn root_store(roots: &[PathBuf]) -> Result<rustls::RootCertStore> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let unusable =
        |path: &Path, e: &dyn std::fmt::Display| Error::Config(format!("{}: {e}", path.display()));
    let mut store = rustls::RootCertStore::empty();
    for path in roots {
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| unusable(path, &e))? {
            let cert = cert.map_err(|e| unusable(path, &e))?;
            store.add(cert).map_err(|e| unusable(path, &e))?;
        }
    }
    Ok(store)
}

/// A rustls client configuration (ring provider) trusting exactly the roots of `store`.
pub fn client_config_with(store: rustls::RootCertStore) -> Result<rustls::ClientConfig> {
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Config(e.to_string()))?
    .with_root_certificates(store)
    .with_no_client_auth())
}

/// A rustls client configuration (ring provider) trusting exactly the PEM roots in `roots`.
pub fn client_config(roots: &[PathBuf]) -> Result<rustls::ClientConfig> {
    client_config_with(root_store(roots)?)
}

/// An HTTPS client trusting exactly the roots of `store`, following no redirects, with a
/// per-request `timeout`.
pub fn https_client_with(
    store: rustls::RootCertStore,
    timeout: std::time::Duration,
) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(client_config_with(store)?)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|e| Error::Config(format!("HTTP client: {e}")))
}

/// An HTTPS client trusting exactly the PEM roots in `roots` ([`client_config`]), following no
/// redirects, with a per-request `timeout`: outbound calls of the servers and the device SDK.
pub fn https_client(roots: &[PathBuf], timeout: std::time::Duration) -> Result<reqwest::Client> {
    https_client_with(root_store(roots)?, timeout)
}
