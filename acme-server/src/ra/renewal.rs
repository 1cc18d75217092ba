//! Renewal information (RFC 9773): the suggested renewal window of a certificate named by its
//! certID (`base64url(authorityKeyIdentifier) "." base64url(serial)`), and the `replaces` field
//! of newOrder: a claim on the certificate that one order at a time holds, for as long as that
//! order is not `invalid`.

use proto::acme::OrderStatus;
use proto::clock::UnixTime;

use super::{AuthenticatedAccount, RegistrationAuthority};
use crate::error::{Error, ProblemType, Result};
use crate::model::{CertificateRecord, OrderRecord};
use crate::sa::Decision;

/// How long clients wait before asking again, in seconds (the `Retry-After` of renewalInfo).
pub const RETRY_AFTER: u64 = 6 * 3600;

impl RegistrationAuthority {
    fn certificate_by_cert_id(&self, cert_id: &str) -> Result<CertificateRecord> {
        let malformed = || Error::malformed("a certID is base64url(AKI).base64url(serial)");
        let (aki, serial) = cert_id.split_once('.').ok_or_else(malformed)?;
        let aki = proto::b64::decode(aki, "certID").map_err(|_| malformed())?;
        let serial = proto::b64::decode(serial, "certID").map_err(|_| malformed())?;
        let hex: String = serial.iter().map(|b| format!("{b:02x}")).collect();
        let cert = self
            .sa
            .reader()
            .certificate_by_serial(&hex)?
            .ok_or_else(|| Error::NotFound("certificate".into()))?;
        if aki != self.issuer_of(&cert)?.key_id() {
            return Err(Error::NotFound("certificate of another issuer".into()));
        }
        Ok(cert)
    }

    /// The suggested window (start, end) of the certificate `cert_id`: the last third of its
    /// validity, or an hour ago if it is revoked (renew now).
    pub fn renewal_window(&self, cert_id: &str) -> Result<(UnixTime, UnixTime)> {
        let cert = self.certificate_by_cert_id(cert_id)?;
        if cert.revoked.is_some() {
            let now = self.now();
            return Ok((now - 2 * 3600, now - 3600));
        }
        let lifetime = cert.not_after - cert.not_before;
        Ok((cert.not_after - lifetime / 3, cert.not_after - lifetime / 6))
    }

    /// Claims the certificate `cert_id` for `order` (about to be stored) under RFC 9773 §5: the
    /// certificate must be the account's (`unauthorized`) and share an identifier with the order
    /// (`malformed`, as Boulder answers), and no other order that is not `invalid` may hold it
    /// (`alreadyReplaced`, 409). The claim is taken by compare-and-swap on the certificate
    /// record, so of concurrent orders exactly one holds it; an order that goes invalid (a
    /// failed challenge, deactivation, expiry) holds it no longer, and the next order takes it
    /// over.
    pub(super) fn claim_replacement(
        &self,
        account: &AuthenticatedAccount,
        order: &OrderRecord,
        cert_id: &str,
    ) -> Result<()> {
        let cert = self.certificate_by_cert_id(cert_id)?;
        self.sa
            .transition(&cert.id, |stored: Option<&CertificateRecord>| {
                let stored = stored.ok_or_else(|| Error::NotFound("certificate".into()))?;
                if stored.account_id != account.id() {
                    return Err(Error::unauthorized(
                        "replaces names a certificate of another account",
                    ));
                }
                self.check_shares_identifier(stored, order)?;
                if let Some(holder) = &stored.replaced_by
                    && self.holds_replacement(account, holder, stored.replacement_expires)?
                {
                    return Err(Error::problem(
                        ProblemType::AlreadyReplaced,
                        "the certificate is already being replaced by another order that is \
                         not invalid",
                    ));
                }
                let claimed = CertificateRecord {
                    replaced_by: Some(order.id.clone()),
                    replacement_expires: Some(order.expires),
                    ..stored.clone()
                };
                Ok(Decision::Write(claimed, ()))
            })
    }

    /// Refuses a replacement sharing no identifier with the order the certificate was issued
    /// for.
    fn check_shares_identifier(&self, cert: &CertificateRecord, order: &OrderRecord) -> Result<()> {
        let issued_for = self
            .sa
            .reader()
            .order(&cert.order_id)?
            .ok_or_else(|| Error::NotFound("the order of the replaced certificate".into()))?;
        let had = issued_for.identity_keys();
        if order.identity_keys().iter().any(|key| had.contains(key)) {
            Ok(())
        } else {
            Err(Error::malformed(
                "replaces names a certificate that shares no identifier with this order",
            ))
        }
    }

    /// Whether the order `holder` still holds its claim on a certificate: while it is not
    /// `invalid` (expiry applied). An order that is not stored holds it until `until`, the
    /// expiry it was created with: it may be being stored right now, or may never have been
    /// (its creation failed), or was removed by the sweep long after it expired.
    fn holds_replacement(
        &self,
        account: &AuthenticatedAccount,
        holder: &str,
        until: Option<UnixTime>,
    ) -> Result<bool> {
        match self.order(account, holder) {
            Ok(order) => Ok(order.status != OrderStatus::Invalid),
            Err(Error::NotFound(_)) => Ok(until.is_some_and(|until| self.now() <= until)),
            Err(e) => Err(e),
        }
    }
}
