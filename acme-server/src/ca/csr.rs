//! CSR checks with x509-parser, shared core and two profiles.
//!
//! Every CSR: valid DER, a signature that verifies with its own key (no SHA-1), a supported key
//! (RSA ≥ 2048, P-256, P-384, Ed25519) that is no ACME account's key, and no requested extension
//! beyond SAN, KU, EKU, basic constraints and SKI.
//!
//! Then the check of the order's profile ([`validate`] takes the [`OrderProfile`]). Identity
//! orders (DESIGN §4 step 8): subject exactly `O = domain` plus the display name (OID
//! 2.16.840.1.113730.3.1.241) and at most a `CN` equal to it; SAN exactly the client-id URI and
//! the handle URI. Standard orders: SAN exactly the order's DNS names and IP addresses, subject
//! at most a `CN` that is one of them.
//!
//! Passing yields a [`ValidatedCsr`], the only input [`super::issue`] accepts.

use std::collections::BTreeSet;
use std::net::IpAddr;

use proto::wire_id::{ClientId, HandleUri, WireIdentity};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_PKCS1_SHA1WITHRSA, OID_SHA1_WITH_RSA, OID_X509_COMMON_NAME, OID_X509_ORGANIZATION_NAME,
};
use x509_parser::prelude::FromDer;

use crate::error::{Error, ProblemType, Result};
use crate::model::{Name, OrderProfile};

/// The Netscape/Wire display-name attribute OID.
pub const DISPLAY_NAME_OID: &str = "2.16.840.1.113730.3.1.241";

/// What a certificate certifies.
#[derive(Debug, Clone)]
pub(crate) enum Certified {
    /// A Wire device of a user.
    Identity(WireIdentity),
    /// DNS names (wildcards as `*.name`) and IP addresses, for server and/or client use.
    Names {
        dns: Vec<String>,
        ips: Vec<IpAddr>,
        server_auth: bool,
        client_auth: bool,
    },
}

/// A CSR that passed every check, with what the certificate will carry.
#[derive(Debug, Clone)]
pub struct ValidatedCsr {
    pub(crate) spki_der: Vec<u8>,
    pub(crate) rsa: bool,
    pub(crate) certified: Certified,
}

impl ValidatedCsr {
    /// Restricts a name certificate's extended key usages (a profile's choice).
    pub(crate) fn with_usages(mut self, server: bool, client: bool) -> Self {
        if let Certified::Names {
            server_auth,
            client_auth,
            ..
        } = &mut self.certified
        {
            *server_auth = server;
            *client_auth = client;
        }
        self
    }

    /// The hierarchy that may sign it: identity CSRs the identity CA, name CSRs the name CA.
    pub fn hierarchy(&self) -> super::Hierarchy {
        match self.certified {
            Certified::Identity(_) => super::Hierarchy::Identity,
            Certified::Names { .. } => super::Hierarchy::Names,
        }
    }
}

fn bad(detail: impl Into<String>) -> Error {
    Error::problem(ProblemType::BadCsr, detail)
}

/// The checks every CSR passes; returns the parsed CSR and whether its key is RSA.
fn parse_verified<'a>(
    der: &'a [u8],
    is_account_key: &dyn Fn(&str) -> Result<bool>,
) -> Result<(X509CertificationRequest<'a>, bool)> {
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
    let key = proto::spki::jwk_from_spki(&csr.certification_request_info.subject_pki)
        .map_err(|e| bad(format!("unsupported public key: {e}")))?;
    if is_account_key(&key.thumbprint())? {
        return Err(bad(
            "the CSR key is an ACME account key; use a separate credential key",
        ));
    }
    let rsa = matches!(key.params, proto::jwk::JwkParams::Rsa { .. });
    Ok((csr, rsa))
}

/// The requested SAN entries, after refusing extensions a client may not ask for.
fn requested_names<'a>(csr: &'a X509CertificationRequest<'_>) -> Result<Vec<&'a GeneralName<'a>>> {
    let mut sans: Option<Vec<&GeneralName<'_>>> = None;
    for ext in csr.requested_extensions().into_iter().flatten() {
        match ext {
            ParsedExtension::SubjectAlternativeName(san) => {
                if sans.is_some() {
                    return Err(bad("more than one subjectAltName extension"));
                }
                sans = Some(san.general_names.iter().collect());
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
    sans.ok_or_else(|| bad("the CSR has no subjectAltName"))
}

/// Checks a DER CSR against what an order certifies; `is_account_key` tells whether a key
/// thumbprint belongs to an ACME account.
pub fn validate(
    der: &[u8],
    profile: &OrderProfile,
    is_account_key: impl Fn(&str) -> Result<bool>,
) -> Result<ValidatedCsr> {
    let (csr, rsa) = parse_verified(der, &is_account_key)?;
    match profile {
        OrderProfile::Identity(identity) => validate_identity(&csr, rsa, identity),
        OrderProfile::Names(names) => validate_names(&csr, rsa, names),
    }
}

/// The identity profile's checks.
fn validate_identity(
    csr: &X509CertificationRequest<'_>,
    rsa: bool,
    expected: &WireIdentity,
) -> Result<ValidatedCsr> {
    check_identity_subject(&csr.certification_request_info.subject, expected)?;
    let mut uris = Vec::new();
    for name in requested_names(csr)? {
        match name {
            GeneralName::URI(uri) => uris.push(*uri),
            GeneralName::DNSName(_) => return Err(bad("DNS names are not allowed")),
            GeneralName::IPAddress(_) => return Err(bad("IP addresses are not allowed")),
            GeneralName::RFC822Name(_) => return Err(bad("e-mail addresses are not allowed")),
            _ => return Err(bad("only URI subject alternative names are allowed")),
        }
    }
    let (mut client_ids, mut handles) = (0, 0);
    for uri in &uris {
        if let Ok(id) = ClientId::parse(uri) {
            if &id != expected.client_id() {
                return Err(bad("the client-id URI is not the order's"));
            }
            client_ids += 1;
        } else if let Ok(handle) = HandleUri::parse(uri) {
            if &handle != expected.handle() {
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
    Ok(ValidatedCsr {
        spki_der: csr.certification_request_info.subject_pki.raw.to_vec(),
        rsa,
        certified: Certified::Identity(expected.clone()),
    })
}

/// The name profile's checks.
fn validate_names(
    csr: &X509CertificationRequest<'_>,
    rsa: bool,
    names: &[Name],
) -> Result<ValidatedCsr> {
    let mut want_dns = BTreeSet::new();
    let mut want_ips = BTreeSet::new();
    for name in names {
        match name {
            Name::Dns { name, wildcard } => {
                want_dns.insert(if *wildcard {
                    format!("*.{name}")
                } else {
                    name.clone()
                });
            }
            Name::Ip(ip) => {
                want_ips.insert(*ip);
            }
        }
    }
    let (mut dns, mut ips) = (BTreeSet::new(), BTreeSet::new());
    for name in requested_names(csr)? {
        match name {
            GeneralName::DNSName(d) => {
                dns.insert(d.to_ascii_lowercase());
            }
            GeneralName::IPAddress(bytes) => {
                let ip = match bytes.len() {
                    4 => <[u8; 4]>::try_from(*bytes).map(IpAddr::from).ok(),
                    16 => <[u8; 16]>::try_from(*bytes).map(IpAddr::from).ok(),
                    _ => None,
                }
                .ok_or_else(|| bad("a malformed IP address SAN"))?;
                ips.insert(ip);
            }
            _ => return Err(bad("only DNS and IP subject alternative names are allowed")),
        }
    }
    if dns != want_dns || ips != want_ips {
        return Err(bad(
            "the CSR's names are not exactly the order's identifiers",
        ));
    }
    for attr in csr.certification_request_info.subject.iter_attributes() {
        let ok = *attr.attr_type() == OID_X509_COMMON_NAME
            && attr.as_str().is_ok_and(|cn| {
                want_dns.contains(&cn.to_ascii_lowercase())
                    || cn.parse::<IpAddr>().is_ok_and(|ip| want_ips.contains(&ip))
            });
        if !ok {
            return Err(bad(
                "the subject may hold only a CN that is one of the names",
            ));
        }
    }
    Ok(ValidatedCsr {
        spki_der: csr.certification_request_info.subject_pki.raw.to_vec(),
        rsa,
        certified: Certified::Names {
            dns: want_dns.into_iter().collect(),
            ips: want_ips.into_iter().collect(),
            server_auth: true,
            client_auth: true,
        },
    })
}

fn check_identity_subject(
    subject: &x509_parser::x509::X509Name<'_>,
    expected: &WireIdentity,
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
            if value != expected.name() {
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
        [o] if *o == expected.domain() => {}
        [] => return Err(bad("the subject has no O (the domain)")),
        _ => return Err(bad("the subject O is not the order's domain")),
    }
    match display_name.as_slice() {
        [n] if *n == expected.name() => Ok(()),
        [] => Err(bad(
            "the subject has no display name (2.16.840.1.113730.3.1.241)",
        )),
        _ => Err(bad("the subject display name is not the order's name")),
    }
}
