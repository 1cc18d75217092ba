//! revokeCert (RFC 8555 §7.6): by the account that owns the certificate, or by the
//! certificate's own key; reason codes of RFC 5280 §5.3.1 that a subscriber may give (0, 1, 3,
//! 4, 5, 9); a certificate is revoked once (compare-and-swap); and the CRLs that list them, one
//! per CA.

use proto::jwk::Jwk;
use x509_parser::prelude::*;

use super::{AuthenticatedAccount, RegistrationAuthority};
use crate::ca::Hierarchy;
use crate::ca::crl::RevokedEntry;
use crate::error::{Error, ProblemType, Result};
use crate::model::{CertificateRecord, Revocation};
use crate::sa::Decision;

/// Reason codes a subscriber may give.
pub const ALLOWED_REASONS: [u8; 6] = [0, 1, 3, 4, 5, 9];

/// Who asks for the revocation.
#[derive(Debug, Clone, Copy)]
pub enum Revoker<'a> {
    /// An account (it must own the certificate).
    Account(&'a AuthenticatedAccount),
    /// The holder of the certificate's key (the request's `jwk`).
    CertificateKey(&'a Jwk),
}

impl RegistrationAuthority {
    /// Revokes the DER certificate `der` for `reason`.
    pub fn revoke(&self, revoker: Revoker<'_>, der: &[u8], reason: Option<u8>) -> Result<()> {
        let reason = reason.unwrap_or(0);
        if !ALLOWED_REASONS.contains(&reason) {
            return Err(Error::problem(
                ProblemType::BadRevocationReason,
                format!("reason {reason} is not one a subscriber may give ({ALLOWED_REASONS:?})"),
            ));
        }
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|_| Error::malformed("the certificate is not valid DER"))?;
        let serial: String = cert
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let not_ours = || Error::NotFound("certificate".into());
        let stored = self
            .sa
            .reader()
            .certificate_by_serial(&serial)?
            .ok_or_else(not_ours)?;
        let leaf_pem = x509_parser::pem::Pem::iter_from_buffer(stored.chain_pem.as_bytes())
            .next()
            .and_then(|p| p.ok())
            .ok_or_else(|| Error::Storage("stored chain unreadable".into()))?;
        if leaf_pem.contents != der {
            return Err(not_ours());
        }
        match revoker {
            Revoker::Account(account) if account.id() == stored.account_id => {}
            Revoker::Account(_) => {
                return Err(Error::unauthorized(
                    "this account did not order the certificate",
                ));
            }
            Revoker::CertificateKey(jwk) => {
                let key = proto::spki::jwk_from_spki(cert.public_key())
                    .map_err(|e| Error::malformed(format!("certificate key: {e}")))?;
                if !key.same_key(jwk) {
                    return Err(Error::unauthorized(
                        "the request is not signed by the certificate's key",
                    ));
                }
            }
        }
        let at = self.now();
        self.sa
            .transition(&stored.id, |current: Option<&CertificateRecord>| {
                let current = current.ok_or_else(not_ours)?;
                if current.revoked.is_some() {
                    return Err(Error::problem(
                        ProblemType::AlreadyRevoked,
                        "the certificate is already revoked",
                    ));
                }
                let revoked = CertificateRecord {
                    revoked: Some(Revocation { at, reason }),
                    ..current.clone()
                };
                Ok(Decision::Write(revoked, ()))
            })?;
        tracing::info!(serial = %serial, reason, "certificate revoked");
        let by = match revoker {
            Revoker::Account(account) => serde_json::json!({"account": account.id()}),
            Revoker::CertificateKey(jwk) => {
                serde_json::json!({"certificate_key": jwk.thumbprint()})
            }
        };
        self.audit.record(
            self.now(),
            "certificate.revoked",
            serde_json::json!({"serial": serial, "reason": reason, "by": by,
                               "account": stored.account_id}),
        );
        Ok(())
    }

    /// The current CRL (DER) of `hierarchy`'s CA: the certificates it signed that are revoked.
    pub fn crl(&self, hierarchy: Hierarchy) -> Result<Vec<u8>> {
        let ca = self
            .ca
            .get(hierarchy)
            .ok_or_else(|| Error::NotFound("CRL of a disabled CA".into()))?;
        let names = hierarchy == Hierarchy::Names;
        let entries: Vec<RevokedEntry> = self
            .sa
            .reader()
            .revoked_certificates()?
            .into_iter()
            .filter(|c| c.names_ca == names)
            .filter_map(|c| {
                c.revoked.map(|r| RevokedEntry {
                    serial: c.serial,
                    at: r.at,
                    reason: r.reason,
                })
            })
            .collect();
        ca.crl(&entries, self.now())
    }
}
