//! The device's side of the certificate: the CSR it sends (credential key, `O` = domain, the
//! display name as 2.16.840.1.113730.3.1.241, SAN = client-id and handle URIs), and the checks
//! on what comes back: the chain leads to the identity CA's root, is within its validity, and
//! the leaf certifies exactly this device of this user with this credential key.

use proto::clock::UnixTime;
use proto::wire_id::{ClientId, HandleUri};
use x509_parser::prelude::*;

/// What the certificate must say: the Wire identity (with the user's team when the backend
/// has one, for the DPoP proof's `team`).
pub use proto::wire_id::WireIdentity as Identity;

/// The DER CSR for `identity`, signed by the credential key.
pub fn csr(identity: &Identity, key: &rcgen::KeyPair) -> Result<Vec<u8>, String> {
    use rcgen::{CertificateParams, DnType, DnValue, SanType};
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, identity.domain());
    params.distinguished_name.push(
        DnType::CustomDnType(vec![2, 16, 840, 1, 113_730, 3, 1, 241]),
        DnValue::Utf8String(identity.name().to_owned()),
    );
    for uri in [identity.client_id().to_uri(), identity.handle().to_uri()] {
        params
            .subject_alt_names
            .push(SanType::URI(uri.try_into().map_err(|e| format!("{e}"))?));
    }
    Ok(params
        .serialize_request(key)
        .map_err(|e| e.to_string())?
        .der()
        .to_vec())
}

/// The certified identity and validity of a leaf, as read back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CertificateInfo {
    /// Subject, RFC 4514 style.
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// SAN URIs.
    pub uris: Vec<String>,
    /// Serial, hex.
    pub serial: String,
    /// Validity start.
    pub not_before: UnixTime,
    /// Validity end.
    pub not_after: UnixTime,
    /// Public key algorithm.
    pub key_algorithm: String,
}

impl CertificateInfo {
    /// Human-readable `label  value` lines (subject, SAN URIs, issuer, serial, validity with
    /// the days left at `now`, key algorithm), each starting with `indent`.
    pub fn describe(&self, indent: &str, now: UnixTime) -> String {
        let mut lines = vec![format!("subject    {}", self.subject)];
        lines.extend(self.uris.iter().map(|u| format!("SAN URI    {u}")));
        lines.push(format!("issuer     {}", self.issuer));
        lines.push(format!("serial     {}", self.serial));
        let left = if self.not_after < now {
            "expired".to_owned()
        } else {
            format!("{} days left", (self.not_after - now) / 86_400)
        };
        lines.push(format!(
            "validity   {} .. {} ({left})",
            proto::rfc3339::format(self.not_before),
            proto::rfc3339::format(self.not_after)
        ));
        lines.push(format!("key        {}", self.key_algorithm));
        lines.iter().map(|l| format!("{indent}{l}\n")).collect()
    }
}

fn parse_chain(chain_pem: &str) -> Result<Vec<Pem>, String> {
    let pems: Vec<Pem> = Pem::iter_from_buffer(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("chain PEM: {e}"))?;
    if pems.is_empty() {
        return Err("the chain is empty".into());
    }
    Ok(pems)
}

/// Reads the leaf of a chain.
pub fn info(chain_pem: &str) -> Result<CertificateInfo, String> {
    let pems = parse_chain(chain_pem)?;
    let leaf = pems[0].parse_x509().map_err(|e| format!("leaf: {e}"))?;
    let uris = leaf
        .subject_alternative_name()
        .map_err(|e| format!("SAN: {e}"))?
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some((*u).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let key_algorithm = match leaf
        .public_key()
        .algorithm
        .algorithm
        .to_id_string()
        .as_str()
    {
        "1.3.101.112" => "Ed25519".to_owned(),
        "1.2.840.10045.2.1" => {
            let curve = leaf
                .public_key()
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "ECDSA P-256".to_owned(),
                Some("1.3.132.0.34") => "ECDSA P-384".to_owned(),
                _ => "ECDSA".to_owned(),
            }
        }
        other => other.to_owned(),
    };
    Ok(CertificateInfo {
        subject: leaf.subject().to_string(),
        issuer: leaf.issuer().to_string(),
        uris,
        serial: leaf.raw_serial_as_string().replace(':', ""),
        not_before: leaf.validity().not_before.timestamp(),
        not_after: leaf.validity().not_after.timestamp(),
        key_algorithm,
    })
}

/// Verifies the chain up to `root_pem` at `now`, and that the leaf certifies `identity` with
/// the public key `credential_spki` (the raw subjectPublicKey bits).
pub fn verify(
    chain_pem: &str,
    root_pem: &str,
    identity: &Identity,
    credential_spki: &[u8],
    now: UnixTime,
    skew: i64,
) -> Result<CertificateInfo, String> {
    let pems = parse_chain(chain_pem)?;
    let (_, root) = parse_x509_pem(root_pem.as_bytes()).map_err(|e| format!("root: {e}"))?;
    let root = root.parse_x509().map_err(|e| format!("root: {e}"))?;
    let certs: Vec<X509Certificate<'_>> = pems
        .iter()
        .map(|p| p.parse_x509().map_err(|e| format!("chain: {e}")))
        .collect::<Result<_, _>>()?;
    for (i, cert) in certs.iter().enumerate() {
        let issuer = certs.get(i + 1).unwrap_or(&root);
        cert.verify_signature(Some(issuer.public_key()))
            .map_err(|_| format!("certificate {i} is not signed by its issuer"))?;
        if i > 0 && !cert.is_ca() {
            return Err(format!("certificate {i} is not a CA"));
        }
        let validity = cert.validity();
        let ahead = validity.not_before.timestamp() - now;
        if ahead > skew {
            return Err(format!(
                "certificate {i} is not valid yet: its notBefore is {ahead} s ahead of this \
                 device's clock, more than the {skew} s tolerated (check the clocks)"
            ));
        }
        let behind = now - validity.not_after.timestamp();
        if behind > skew {
            return Err(format!(
                "certificate {i} expired {behind} s ago by this device's clock"
            ));
        }
    }
    let last = certs.last().ok_or("the chain is empty")?;
    if last.issuer() != root.subject() {
        return Err("the chain does not end at the configured root".into());
    }
    let leaf = &certs[0];
    if &*leaf.public_key().subject_public_key.data != credential_spki {
        return Err("the leaf does not certify the credential key".into());
    }
    let info = info(chain_pem)?;
    let expected_subject = format!("O={}, CN={}", identity.domain(), identity.name());
    if info.subject != expected_subject {
        return Err(format!(
            "subject {:?}, expected {expected_subject:?}",
            info.subject
        ));
    }
    let mut client_ids = 0;
    let mut handles = 0;
    for uri in &info.uris {
        if ClientId::parse(uri).is_ok_and(|c| &c == identity.client_id()) {
            client_ids += 1;
        } else if HandleUri::parse(uri).is_ok_and(|h| &h == identity.handle()) {
            handles += 1;
        } else {
            return Err(format!("unexpected SAN URI {uri}"));
        }
    }
    if (client_ids, handles) != (1, 1) {
        return Err("the SAN does not hold exactly the client id and the handle".into());
    }
    let eku = leaf
        .extended_key_usage()
        .map_err(|e| e.to_string())?
        .ok_or("no extended key usage")?;
    if !eku.value.client_auth {
        return Err("the leaf is not for client authentication".into());
    }
    Ok(info)
}
