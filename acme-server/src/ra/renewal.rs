//! Renewal information (RFC 9773): the suggested renewal window of a certificate named by its
//! certID (`base64url(authorityKeyIdentifier) "." base64url(serial)`), and the `replaces` field
//! of newOrder, which marks a certificate as replaced exactly once.

use proto::clock::UnixTime;
use server_kit::store::Versioned;

use super::{AuthenticatedAccount, RegistrationAuthority};
use crate::error::{Error, ProblemType, Result};
use crate::sa::CertificateRecord;

/// How long clients wait before asking again, in seconds (the `Retry-After` of renewalInfo).
pub const RETRY_AFTER: u64 = 6 * 3600;

impl RegistrationAuthority {
    fn certificate_by_cert_id(&self, cert_id: &str) -> Result<Versioned<CertificateRecord>> {
        let malformed = || Error::malformed("a certID is base64url(AKI).base64url(serial)");
        let (aki, serial) = cert_id.split_once('.').ok_or_else(malformed)?;
        let aki = proto::b64::decode(aki, "certID").map_err(|_| malformed())?;
        let serial = proto::b64::decode(serial, "certID").map_err(|_| malformed())?;
        let hex: String = serial.iter().map(|b| format!("{b:02x}")).collect();
        let cert = self
            .sa
            .certificate_by_serial(&hex)?
            .ok_or_else(|| Error::NotFound("certificate".into()))?;
        if aki != self.issuer_of(&cert.value)?.key_id() {
            return Err(Error::NotFound("certificate of another issuer".into()));
        }
        Ok(cert)
    }

    /// The suggested window (start, end) of the certificate `cert_id`: the last third of its
    /// validity, or an hour ago if it is revoked (renew now).
    pub fn renewal_window(&self, cert_id: &str) -> Result<(UnixTime, UnixTime)> {
        let cert = self.certificate_by_cert_id(cert_id)?.value;
        if cert.revoked.is_some() {
            let now = self.now();
            return Ok((now - 2 * 3600, now - 3600));
        }
        let lifetime = cert.not_after - cert.not_before;
        Ok((cert.not_after - lifetime / 3, cert.not_after - lifetime / 6))
    }

    /// Marks `cert_id` as replaced by `order_id`; only its account may, and only once.
    pub(super) fn claim_replacement(
        &self,
        account: &AuthenticatedAccount,
        cert_id: &str,
        order_id: &str,
    ) -> Result<()> {
        let stored = self.certificate_by_cert_id(cert_id)?;
        if stored.value.account_id != account.id() {
            return Err(Error::unauthorized(
                "replaces names a certificate of another account",
            ));
        }
        let already = || {
            Error::problem(
                ProblemType::AlreadyReplaced,
                "the certificate was already replaced by another order",
            )
        };
        if stored.value.replaced_by.is_some() {
            return Err(already());
        }
        let mut marked = stored.value.clone();
        marked.replaced_by = Some(order_id.to_owned());
        if !self.sa.replace_certificate(&stored, &marked)? {
            return Err(already());
        }
        Ok(())
    }
}
