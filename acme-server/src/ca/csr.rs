//! CSR checks for identity orders (DESIGN §4 step 8), with x509-parser: the signature verifies
//! with the CSR's own key (no SHA-1), the subject is exactly `O = domain` plus the display name
//! (OID 2.16.840.1.113730.3.1.241) and at most a `CN` equal to it, the only requested extension
//! that names anything is a SAN holding exactly the client-id URI and the handle URI, and the
//! key is a supported type and no ACME account's key.
//!
//! Passing yields a [`ValidatedCsr`], the only input [`super::issue`] accepts.

use proto::wire_id::{ClientId, HandleUri};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_PKCS1_SHA1WITHRSA, OID_SHA1_WITH_RSA, OID_X509_COMMON_NAME, OID_X509_ORGANIZATION_NAME,
};
use x509_parser::prelude::FromDer;

use crate::error::{Error, ProblemType, Result};

/// The Netscape/Wire display-name attribute OID.
pub const DISPLAY_NAME_OID: &str = "2.16.840.1.113730.3.1.241";

/// What the order says the certificate must name.
#[derive(Debug, Clone, Copy)]
pub struct ExpectedIdentity<'a> {
    /// Client-id URI.
    pub client_id: &'a ClientId,
    /// Handle URI.
    pub handle: &'a HandleUri,
    /// Display name.
    pub name: &'a str,
    /// Domain (`O`).
    pub domain: &'a str,
}

/// A CSR that passed every check, with what the certificate will carry.
#[derive(Debug, Clone)]
pub struct ValidatedCsr {
    pub(crate) spki_der: Vec<u8>,
    pub(crate) client_id: ClientId,
    pub(crate) handle: HandleUri,
    pub(crate) name: String,
    pub(crate) domain: String,
}

impl ValidatedCsr {
    /// The RFC 7638 thumbprint of the CSR's key.
    pub fn key_thumbprint(&self) -> Result<String> {
        Ok(proto::spki::jwk_from_spki_der(&self.spki_der)
            .map_err(|e| bad(format!("public key: {e}")))?
            .thumbprint())
    }
}

fn bad(detail: impl Into<String>) -> Error {
    Error::problem(ProblemType::BadCsr, detail)
}

/// Checks a DER CSR against the order's identity; `is_account_key` tells whether a key
/// thumbprint belongs to an ACME account.
pub fn validate(
    der: &[u8],
    expected: &ExpectedIdentity<'_>,
    is_account_key: impl Fn(&str) -> Result<bool>,
) -> Result<ValidatedCsr> {
    let (rest, csr) =
        X509CertificationRequest::from_der(der).map_err(|_| bad("the CSR is not valid DER"))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the CSR"));
    }
    let sig_alg = &csr.signature_algorithm.algorithm;
    if *sig_alg == OID_PKCS1_SHA1WITHRSA || *sig_alg == OID_SHA1_WITH_RSA {
        return Err(bad("SHA-1 signatures are not accepted"));
    }
    csr.verify_signature()
        .map_err(|_| bad("the CSR signature does not verify"))?;

    let info = &csr.certification_request_info;
    let key = proto::spki::jwk_from_spki(&info.subject_pki)
        .map_err(|e| bad(format!("unsupported public key: {e}")))?;
    if is_account_key(&key.thumbprint())? {
        return Err(bad(
            "the CSR key is an ACME account key; use a separate credential key",
        ));
    }

    check_subject(&info.subject, expected)?;
    check_extensions(&csr, expected)?;
    Ok(ValidatedCsr {
        spki_der: info.subject_pki.raw.to_vec(),
        client_id: expected.client_id.clone(),
        handle: expected.handle.clone(),
        name: expected.name.to_owned(),
        domain: expected.domain.to_owned(),
    })
}

fn check_subject(
    subject: &x509_parser::x509::X509Name<'_>,
    expected: &ExpectedIdentity<'_>,
) -> Result<()> {
    let (mut organization, mut display_name) = (Vec::new(), Vec::new());
    for attr in subject.iter_attributes() {
        let value = attr
            .as_str()
            .map_err(|_| bad("a subject attribute is not a string"))?;
        let oid = attr.attr_type();
        if *oid == OID_X509_ORGANIZATION_NAME {
            organization.push(value);
        } else if oid.to_id_string() == DISPLAY_NAME_OID {
            display_name.push(value);
        } else if *oid == OID_X509_COMMON_NAME {
            if value != expected.name {
                return Err(bad("the subject CN differs from the display name"));
            }
        } else {
            return Err(bad(format!(
                "subject attribute {} is not allowed",
                oid.to_id_string()
            )));
        }
    }
    match organization.as_slice() {
        [o] if *o == expected.domain => {}
        [] => return Err(bad("the subject has no O (the domain)")),
        _ => return Err(bad("the subject O is not the order's domain")),
    }
    match display_name.as_slice() {
        [n] if *n == expected.name => Ok(()),
        [] => Err(bad(
            "the subject has no display name (2.16.840.1.113730.3.1.241)",
        )),
        _ => Err(bad("the subject display name is not the order's name")),
    }
}

fn check_extensions(
    csr: &X509CertificationRequest<'_>,
    expected: &ExpectedIdentity<'_>,
) -> Result<()> {
    let mut sans: Option<Vec<&str>> = None;
    for ext in csr.requested_extensions().into_iter().flatten() {
        match ext {
            ParsedExtension::SubjectAlternativeName(san) => {
                if sans.is_some() {
                    return Err(bad("more than one subjectAltName extension"));
                }
                let mut uris = Vec::new();
                for name in &san.general_names {
                    match name {
                        GeneralName::URI(uri) => uris.push(*uri),
                        GeneralName::DNSName(_) => return Err(bad("DNS names are not allowed")),
                        GeneralName::IPAddress(_) => {
                            return Err(bad("IP addresses are not allowed"));
                        }
                        GeneralName::RFC822Name(_) => {
                            return Err(bad("e-mail addresses are not allowed"));
                        }
                        _ => return Err(bad("only URI subject alternative names are allowed")),
                    }
                }
                sans = Some(uris);
            }
            // What a client may ask for harmlessly; the profile decides the real values.
            ParsedExtension::KeyUsage(_)
            | ParsedExtension::ExtendedKeyUsage(_)
            | ParsedExtension::BasicConstraints(_)
            | ParsedExtension::SubjectKeyIdentifier(_) => {}
            ParsedExtension::UnsupportedExtension { .. } | ParsedExtension::ParseError { .. } => {
                return Err(bad("the CSR requests an unknown extension"));
            }
            _ => return Err(bad("the CSR requests an extension that is not allowed")),
        }
    }
    let uris = sans.ok_or_else(|| bad("the CSR has no subjectAltName"))?;
    let (mut client_ids, mut handles) = (0, 0);
    for uri in &uris {
        if let Ok(id) = ClientId::parse(uri) {
            if &id != expected.client_id {
                return Err(bad("the client-id URI is not the order's"));
            }
            client_ids += 1;
        } else if let Ok(handle) = HandleUri::parse(uri) {
            if &handle != expected.handle {
                return Err(bad("the handle URI is not the order's"));
            }
            handles += 1;
        } else {
            return Err(bad(format!("unexpected URI {uri:?} in subjectAltName")));
        }
    }
    if client_ids != 1 || handles != 1 || uris.len() != 2 {
        return Err(bad(
            "subjectAltName must hold exactly the client-id URI and the handle URI",
        ));
    }
    Ok(())
}
