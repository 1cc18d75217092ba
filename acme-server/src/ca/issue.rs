//! Issuing a certificate from a [`ValidatedCsr`]. Identity certificates: subject
//! `O=domain, CN=name`, SAN URIs (handle, then client id with `!` percent-encoded, as Wire's
//! certificates have them), EKU clientAuth. Name certificates: CN = the first DNS name, SAN DNS
//! names and IP addresses, EKU serverAuth + clientAuth (keyEncipherment too for RSA keys). Both:
//! KU digitalSignature (critical), CA:false, SKI and AKI, a 126-bit random serial, and the
//! validity the caller computed from the profile. A CA signs only CSRs of its own
//! [`super::Hierarchy`].

use proto::clock::UnixTime;
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType,
    SerialNumber, SubjectPublicKeyInfo,
};

use super::CertificateAuthority;
use super::csr::{Certified, ValidatedCsr};
use crate::error::{Error, Result};

/// A signed certificate with its chain.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// Serial number, lower-case hex.
    pub serial: String,
    /// Leaf, then the intermediate (PEM).
    pub chain_pem: String,
    /// Start of validity.
    pub not_before: UnixTime,
    /// End of validity.
    pub not_after: UnixTime,
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("issuance: {e}"))
}

fn time_of(t: UnixTime) -> Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(t).map_err(internal)
}

/// The SAN form of a client-id URI: `!` percent-encoded.
pub fn client_id_san(uri: &str) -> String {
    uri.replacen('!', "%21", 1)
}

impl CertificateAuthority {
    /// Signs a certificate for `csr`, valid from `not_before` to `not_after`.
    pub fn issue(
        &self,
        csr: &ValidatedCsr,
        not_before: UnixTime,
        not_after: UnixTime,
    ) -> Result<IssuedCertificate> {
        if not_after <= not_before {
            return Err(Error::Internal("empty validity period".into()));
        }
        if csr.hierarchy() != self.hierarchy() {
            return Err(Error::Internal(format!(
                "the {} CA does not sign {} certificates",
                self.hierarchy().label(),
                csr.hierarchy().label()
            )));
        }
        let public_key = SubjectPublicKeyInfo::from_der(&csr.spki_der).map_err(internal)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let uri = |text: String| -> Result<SanType> {
            Ok(SanType::URI(text.try_into().map_err(internal)?))
        };
        match &csr.certified {
            Certified::Identity(identity) => {
                params
                    .distinguished_name
                    .push(DnType::OrganizationName, identity.domain());
                params
                    .distinguished_name
                    .push(DnType::CommonName, identity.name());
                params.subject_alt_names = vec![
                    uri(identity.handle().to_uri())?,
                    uri(client_id_san(&identity.client_id().to_uri()))?,
                ];
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
            Certified::Names {
                dns,
                ips,
                server_auth,
                client_auth,
            } => {
                if let Some(first) = dns.first() {
                    params
                        .distinguished_name
                        .push(DnType::CommonName, first.as_str());
                }
                for name in dns {
                    params.subject_alt_names.push(SanType::DnsName(
                        name.as_str().try_into().map_err(internal)?,
                    ));
                }
                params
                    .subject_alt_names
                    .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
                params.extended_key_usages = [
                    (*server_auth, ExtendedKeyUsagePurpose::ServerAuth),
                    (*client_auth, ExtendedKeyUsagePurpose::ClientAuth),
                ]
                .into_iter()
                .filter_map(|(on, usage)| on.then_some(usage))
                .collect();
                if csr.rsa {
                    params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
                }
            }
        }
        if let Some(url) = &self.crl_url {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![url.clone()],
            }];
        }
        let mut serial = proto::random::bytes(16);
        if let Some(first) = serial.first_mut() {
            // Top bit clear (positive) and lowest bit set (never a zero first byte, so always 16
            // bytes in DER): 126 random bits.
            *first = (*first & 0x7f) | 0x01;
        }
        let serial_hex: String = serial.iter().map(|b| format!("{b:02x}")).collect();
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.not_before = time_of(not_before)?;
        params.not_after = time_of(not_after)?;
        let leaf = params
            .signed_by(&public_key, &self.issuer)
            .map_err(internal)?;
        Ok(IssuedCertificate {
            serial: serial_hex,
            chain_pem: format!("{}{}", leaf.pem(), self.intermediate_pem),
            not_before,
            not_after,
        })
    }
}
