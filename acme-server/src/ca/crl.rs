//! The CRL (RFC 5280 §5) of the issuing intermediate: every revoked certificate with its
//! revocation time and reason, signed by the intermediate, with a CRL number that grows with
//! time. Issued certificates name its URL in their CRL distribution points.

use proto::clock::UnixTime;
use rcgen::{
    CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams, SerialNumber,
};

use super::CertificateAuthority;
use crate::error::{Error, Result};

/// How long a CRL is valid (`nextUpdate` − `thisUpdate`).
pub const CRL_LIFETIME: i64 = 24 * 3600;

/// One revoked certificate.
#[derive(Debug, Clone)]
pub struct RevokedEntry {
    /// Serial, lower-case hex.
    pub serial: String,
    /// Revocation time.
    pub at: UnixTime,
    /// RFC 5280 reason code.
    pub reason: u8,
}

fn reason_of(code: u8) -> Option<RevocationReason> {
    Some(match code {
        0 => return None,
        1 => RevocationReason::KeyCompromise,
        3 => RevocationReason::AffiliationChanged,
        4 => RevocationReason::Superseded,
        5 => RevocationReason::CessationOfOperation,
        9 => RevocationReason::PrivilegeWithdrawn,
        _ => return None,
    })
}

fn time(t: UnixTime) -> Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map_err(|e| Error::Internal(format!("CRL time: {e}")))
}

fn serial_bytes(hex: &str) -> Result<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::Storage(format!("serial {hex:?} is not hex")))
        })
        .collect()
}

impl CertificateAuthority {
    /// The DER CRL listing `revoked`, issued at `now`.
    pub fn crl(&self, revoked: &[RevokedEntry], now: UnixTime) -> Result<Vec<u8>> {
        let revoked_certs = revoked
            .iter()
            .map(|r| {
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&serial_bytes(&r.serial)?),
                    revocation_time: time(r.at)?,
                    reason_code: reason_of(r.reason),
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let params = CertificateRevocationListParams {
            this_update: time(now)?,
            next_update: time(now + CRL_LIFETIME)?,
            crl_number: SerialNumber::from(u64::try_from(now).unwrap_or_default()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params
            .signed_by(&self.issuer)
            .map_err(|e| Error::Internal(format!("CRL: {e}")))?;
        Ok(crl.der().to_vec())
    }
}
