//! The certificate authority: a root and an intermediate (ECDSA P-256) created by
//! `acme-server ca init` or supplied by the operator, and issuance of identity certificates from
//! CSRs that passed [`csr::validate`] (the only way to obtain a [`csr::ValidatedCsr`]).
//!
//! Parameters in, signed certificate out: the CA knows nothing about ACME or storage.

pub mod crl;
pub mod csr;
pub mod issue;

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use server_kit::files::{create_dir, read_private, read_public, write_private, write_public};

use crate::error::{Error, Result};

/// Where the CA's files are.
#[derive(Debug, Clone)]
pub struct CaPaths {
    /// Root certificate.
    pub root_cert: PathBuf,
    /// Root key (written by `ca init`; not needed to run).
    pub root_key: PathBuf,
    /// Intermediate certificate.
    pub intermediate_cert: PathBuf,
    /// Intermediate key.
    pub intermediate_key: PathBuf,
    /// Alternate chains (PEM).
    pub alternate_chains: Vec<PathBuf>,
}

/// The loaded issuing CA.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    intermediate_pem: String,
    root_pem: String,
    crl_url: Option<String>,
    key_id: Vec<u8>,
    alternates: Vec<String>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

fn ca_error(e: rcgen::Error) -> Error {
    Error::Config(format!("CA: {e}"))
}

/// Creates a root and an intermediate under `paths` (keys 0600). Refuses to overwrite.
pub fn init(paths: &CaPaths, name: &str) -> Result<()> {
    for path in [
        &paths.root_cert,
        &paths.intermediate_cert,
        &paths.intermediate_key,
    ] {
        if path.exists() {
            return Err(Error::Config(format!(
                "{} exists; refusing to overwrite a CA",
                path.display()
            )));
        }
    }
    for path in [
        &paths.root_cert,
        &paths.root_key,
        &paths.intermediate_cert,
        &paths.intermediate_key,
    ] {
        if let Some(dir) = path.parent() {
            create_dir(dir)?;
        }
    }
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(ca_error)?;
    let mut root = ca_params(&format!("{name} Root CA"), None)?;
    root.not_after = rcgen::date_time_ymd(2045, 1, 1);
    let root_cert = root.self_signed(&root_key).map_err(ca_error)?;
    let root_issuer = Issuer::new(root, root_key);

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(ca_error)?;
    let mut intermediate = ca_params(&format!("{name} Intermediate CA"), Some(0))?;
    intermediate.not_after = rcgen::date_time_ymd(2040, 1, 1);
    intermediate.use_authority_key_identifier_extension = true;
    let intermediate_cert = intermediate
        .signed_by(&key, &root_issuer)
        .map_err(ca_error)?;

    write_private(
        &paths.root_key,
        root_issuer.key().serialize_pem().as_bytes(),
    )?;
    write_public(&paths.root_cert, root_cert.pem().as_bytes())?;
    write_private(&paths.intermediate_key, key.serialize_pem().as_bytes())?;
    write_public(&paths.intermediate_cert, intermediate_cert.pem().as_bytes())?;
    Ok(())
}

fn ca_params(common_name: &str, path_len: Option<u8>) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    Ok(params)
}

impl CertificateAuthority {
    /// Loads the intermediate (certificate and key) and the root certificate.
    pub fn load(paths: &CaPaths) -> Result<Self> {
        let text = |path: &Path, bytes: Vec<u8>| {
            String::from_utf8(bytes)
                .map_err(|_| Error::Config(format!("{} is not PEM text", path.display())))
        };
        let intermediate_pem = text(
            &paths.intermediate_cert,
            read_public(&paths.intermediate_cert)?,
        )?;
        let root_pem = text(&paths.root_cert, read_public(&paths.root_cert)?)?;
        let key_pem = text(
            &paths.intermediate_key,
            read_private(&paths.intermediate_key)?,
        )?;
        let key = KeyPair::from_pem(&key_pem).map_err(ca_error)?;
        let issuer = Issuer::from_ca_cert_pem(&intermediate_pem, key).map_err(ca_error)?;
        let key_id = subject_key_id(&intermediate_pem)?;
        let alternates = paths
            .alternate_chains
            .iter()
            .map(|path| {
                let pem = text(path, read_public(path)?)?;
                if !pem.contains("-----BEGIN CERTIFICATE-----") {
                    return Err(Error::Config(format!(
                        "{} holds no certificate",
                        path.display()
                    )));
                }
                Ok(pem)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            issuer,
            intermediate_pem,
            root_pem,
            crl_url: None,
            key_id,
            alternates,
        })
    }

    /// Loads the CA, creating it first when none exists (dev mode).
    pub fn load_or_init(paths: &CaPaths, name: &str) -> Result<Self> {
        if !paths.intermediate_cert.exists() {
            init(paths, name)?;
        }
        Self::load(paths)
    }

    /// Names `url` as the CRL distribution point of every certificate issued from now on.
    pub fn with_crl_url(mut self, url: String) -> Self {
        self.crl_url = Some(url);
        self
    }

    /// The intermediate's key identifier: the authorityKeyIdentifier of every issued leaf (the
    /// first half of an ARI certID).
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// How many alternate chains are offered.
    pub fn alternate_count(&self) -> usize {
        self.alternates.len()
    }

    /// `chain_pem` (leaf first) with the certificates after the leaf replaced by alternate
    /// chain `index`.
    pub fn alternate_chain(&self, chain_pem: &str, index: usize) -> Option<String> {
        let alternate = self.alternates.get(index)?;
        let end = "-----END CERTIFICATE-----";
        let leaf_end = chain_pem.find(end)? + end.len();
        Some(format!(
            "{}\n{}",
            &chain_pem[..leaf_end],
            alternate.trim_start()
        ))
    }

    /// The root certificate (PEM), for relying parties.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }
}

fn subject_key_id(pem: &str) -> Result<Vec<u8>> {
    use x509_parser::extensions::ParsedExtension;
    let bad = || Error::Config("the intermediate certificate has no subjectKeyIdentifier".into());
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|_| bad())?;
    let cert = pem.parse_x509().map_err(|_| bad())?;
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn paths(dir: &Path) -> CaPaths {
        CaPaths {
            root_cert: dir.join("root.pem"),
            root_key: dir.join("root-key.pem"),
            intermediate_cert: dir.join("intermediate.pem"),
            intermediate_key: dir.join("intermediate-key.pem"),
            alternate_chains: Vec::new(),
        }
    }

    #[test]
    fn init_writes_owner_only_keys_loads_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        init(&p, "Test").unwrap();
        for key in [&p.root_key, &p.intermediate_key] {
            let mode = std::fs::metadata(key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
        let ca = CertificateAuthority::load(&p).unwrap();
        assert!(ca.root_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(matches!(init(&p, "Test"), Err(Error::Config(_))));

        let (_, pem) = x509_parser::pem::parse_x509_pem(ca.intermediate_pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        assert!(cert.is_ca());
        assert_eq!(cert.subject().to_string(), "CN=Test Intermediate CA");
        assert_eq!(cert.issuer().to_string(), "CN=Test Root CA");
    }
}
