//! The certificate authorities: two hierarchies, each a root and an intermediate (ECDSA P-256)
//! created by `acme-server ca init` (or dev mode) or supplied by the operator, and issuance from
//! CSRs that passed [`csr::validate`] (the only way to obtain a [`csr::ValidatedCsr`]).
//!
//! The identity hierarchy signs Wire identity certificates only; the name hierarchy (present only
//! when standard orders are enabled) signs certificates for DNS names and IP addresses only. They
//! share no key and no root, so a relying party that trusts the identity root for mutual TLS can
//! never be shown a name certificate that chains to it; each intermediate refuses to sign a CSR
//! of the other kind ([`Hierarchy`]). Intermediates `ca init` creates also say so themselves: the
//! identity intermediate carries EKU clientAuth only and name constraints excluding every IP
//! address; the name intermediate EKU serverAuth and clientAuth.
//!
//! Parameters in, signed certificate out: the CA knows nothing about ACME or storage.

pub mod crl;
pub mod csr;
pub mod issue;

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use server_kit::files::{
    create_dir, read_private, read_public, remove_durably, write_private, write_public,
};

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

/// Which hierarchy a CA is, and so what it may sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hierarchy {
    /// Wire identity certificates (clientAuth, URI SANs).
    Identity,
    /// Standard certificates for DNS names and IP addresses.
    Names,
}

impl Hierarchy {
    /// How its CAs are named in subjects and messages.
    pub fn label(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Names => "name",
        }
    }
}

/// The loaded issuing CA of one hierarchy.
pub struct CertificateAuthority {
    hierarchy: Hierarchy,
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

/// What [`init`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// A new CA.
    New,
    /// A new CA, after removing what an interrupted earlier `init` left.
    AfterInterrupted,
    /// Nothing: an earlier `init` had finished (only its marker was left, now removed).
    AlreadyComplete,
}

/// The marker an `init` writes before its first key and removes after its last file: while it
/// exists, the CA files beside it are an unfinished `init`'s, never a CA that issued anything.
pub fn pending_marker(paths: &CaPaths) -> PathBuf {
    let mut name = paths
        .intermediate_cert
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".init-pending");
    paths.intermediate_cert.with_file_name(name)
}

/// The files an `init` writes, in the order it writes them: the intermediate certificate last,
/// so that its presence means the CA is complete.
fn files_of(paths: &CaPaths) -> [&PathBuf; 4] {
    [
        &paths.root_key,
        &paths.root_cert,
        &paths.intermediate_key,
        &paths.intermediate_cert,
    ]
}

/// Creates a root and an intermediate of `hierarchy` under `paths` (keys 0600), their subjects
/// "{name} Root CA" and "{name} Intermediate CA" (identity) or "{name} Names Root CA" and
/// "{name} Names Intermediate CA". Either it completes or what it left is known for what it
/// is: a marker ([`pending_marker`]) is written durably first and removed after the last file,
/// every file is written durably, and the intermediate certificate — whose presence makes a CA
/// — comes last. A later `init` finding the marker removes the unfinished files and starts
/// again; one finding CA files without the marker refuses to touch them (and says what to do).
pub fn init(paths: &CaPaths, name: &str, hierarchy: Hierarchy) -> Result<Made> {
    let marker = pending_marker(paths);
    let interrupted = marker.exists();
    if paths.intermediate_cert.exists() {
        if interrupted {
            remove_durably(&marker)?;
            return Ok(Made::AlreadyComplete);
        }
        return Err(Error::Config(format!(
            "{} exists; refusing to overwrite a CA",
            paths.intermediate_cert.display()
        )));
    }
    if interrupted {
        for path in files_of(paths) {
            remove_durably(path)?;
        }
    } else if let Some(found) = files_of(paths).into_iter().find(|p| p.exists()) {
        return Err(Error::Config(format!(
            "{} exists but {} does not, and no unfinished `ca init` left {}: these files were not \
             made by an interrupted init of this server. A CA without its intermediate \
             certificate never issued anything; if they are not yours to keep, remove {} and run \
             `ca init` again",
            found.display(),
            paths.intermediate_cert.display(),
            marker.display(),
            files_of(paths)
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for path in files_of(paths) {
        if let Some(dir) = path.parent() {
            create_dir(dir)?;
        }
    }
    write_public(
        &marker,
        b"an unfinished `ca init`: the CA files beside this are not a CA\n",
    )?;
    server_kit::process::crash_point("ca-init:marker");
    let name = match hierarchy {
        Hierarchy::Identity => name.to_owned(),
        Hierarchy::Names => format!("{name} Names"),
    };
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(ca_error)?;
    let mut root = ca_params(&format!("{name} Root CA"), None)?;
    root.not_after = rcgen::date_time_ymd(2045, 1, 1);
    let root_cert = root.self_signed(&root_key).map_err(ca_error)?;
    let root_issuer = Issuer::new(root, root_key);

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(ca_error)?;
    let mut intermediate = ca_params(&format!("{name} Intermediate CA"), Some(0))?;
    intermediate.not_after = rcgen::date_time_ymd(2040, 1, 1);
    intermediate.use_authority_key_identifier_extension = true;
    match hierarchy {
        Hierarchy::Identity => {
            intermediate.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            // No IP address below it. (DNS names cannot be excluded the same way: verifiers
            // such as OpenSSL check a name constraint on dNSName against a subject CN that
            // looks like a host name, and a display name like "jane.doe" does.)
            intermediate.name_constraints = Some(NameConstraints {
                permitted_subtrees: Vec::new(),
                excluded_subtrees: vec![
                    GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix([0; 4], 0)),
                    GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix([0; 16], 0)),
                ],
            });
        }
        Hierarchy::Names => {
            intermediate.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
        }
    }
    let intermediate_cert = intermediate
        .signed_by(&key, &root_issuer)
        .map_err(ca_error)?;

    let crash_point = server_kit::process::crash_point;
    write_private(
        &paths.root_key,
        root_issuer.key().serialize_pem().as_bytes(),
    )?;
    crash_point("ca-init:root-key");
    write_public(&paths.root_cert, root_cert.pem().as_bytes())?;
    crash_point("ca-init:root-cert");
    write_private(&paths.intermediate_key, key.serialize_pem().as_bytes())?;
    crash_point("ca-init:intermediate-key");
    write_public(&paths.intermediate_cert, intermediate_cert.pem().as_bytes())?;
    crash_point("ca-init:intermediate-cert");
    remove_durably(&marker)?;
    Ok(if interrupted {
        Made::AfterInterrupted
    } else {
        Made::New
    })
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
    /// Loads the intermediate (certificate and key) and the root certificate of `hierarchy`.
    pub fn load(paths: &CaPaths, hierarchy: Hierarchy) -> Result<Self> {
        if !paths.intermediate_cert.exists() && pending_marker(paths).exists() {
            return Err(Error::Config(format!(
                "the {} CA is unfinished: an earlier `ca init` was interrupted (it left {}); run \
                 `acme-server ca init` again, which removes what it left and makes the CA",
                hierarchy.label(),
                pending_marker(paths).display()
            )));
        }
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
            hierarchy,
            issuer,
            intermediate_pem,
            root_pem,
            crl_url: None,
            key_id,
            alternates,
        })
    }

    /// Loads the CA, creating it first when none exists (dev mode).
    pub fn load_or_init(paths: &CaPaths, name: &str, hierarchy: Hierarchy) -> Result<Self> {
        if !paths.intermediate_cert.exists() || pending_marker(paths).exists() {
            init(paths, name, hierarchy)?;
        }
        Self::load(paths, hierarchy)
    }

    /// Its hierarchy.
    pub fn hierarchy(&self) -> Hierarchy {
        self.hierarchy
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

/// The identity CA and, when standard orders are enabled, the name CA.
#[derive(Debug)]
pub struct Authorities {
    identity: CertificateAuthority,
    names: Option<CertificateAuthority>,
}

impl Authorities {
    /// Both hierarchies; `names` is `None` while standard orders are disabled.
    pub fn new(
        identity: CertificateAuthority,
        names: Option<CertificateAuthority>,
    ) -> Result<Self> {
        if identity.hierarchy != Hierarchy::Identity
            || names
                .as_ref()
                .is_some_and(|n| n.hierarchy != Hierarchy::Names)
        {
            return Err(Error::Config("CA loaded as the wrong hierarchy".into()));
        }
        Ok(Self { identity, names })
    }

    /// The CA of `hierarchy` (`None`: the name CA while standard orders are disabled).
    pub fn get(&self, hierarchy: Hierarchy) -> Option<&CertificateAuthority> {
        match hierarchy {
            Hierarchy::Identity => Some(&self.identity),
            Hierarchy::Names => self.names.as_ref(),
        }
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
        init(&p, "Test", Hierarchy::Identity).unwrap();
        for key in [&p.root_key, &p.intermediate_key] {
            let mode = std::fs::metadata(key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
        let ca = CertificateAuthority::load(&p, Hierarchy::Identity).unwrap();
        assert!(ca.root_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(matches!(
            init(&p, "Test", Hierarchy::Identity),
            Err(Error::Config(_))
        ));

        let (_, pem) = x509_parser::pem::parse_x509_pem(ca.intermediate_pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        assert!(cert.is_ca());
        assert_eq!(cert.subject().to_string(), "CN=Test Intermediate CA");
        assert_eq!(cert.issuer().to_string(), "CN=Test Root CA");
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        let constraints = cert.name_constraints().unwrap().unwrap().value;
        assert!(constraints.permitted_subtrees.is_none());
        assert_eq!(constraints.excluded_subtrees.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn the_name_hierarchy_is_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let identity = paths(dir.path());
        let names = paths(&dir.path().join("names"));
        init(&identity, "Test", Hierarchy::Identity).unwrap();
        init(&names, "Test", Hierarchy::Names).unwrap();
        let ca = CertificateAuthority::load(&names, Hierarchy::Names).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(ca.intermediate_pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        assert_eq!(cert.issuer().to_string(), "CN=Test Names Root CA");
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && eku.server_auth);
        let identity_ca = CertificateAuthority::load(&identity, Hierarchy::Identity).unwrap();
        assert_ne!(ca.key_id(), identity_ca.key_id());
        assert!(Authorities::new(identity_ca, Some(ca)).is_ok());
        let swapped = Authorities::new(
            CertificateAuthority::load(&names, Hierarchy::Names).unwrap(),
            None,
        );
        assert!(swapped.is_err());
    }
}
