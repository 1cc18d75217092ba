//! The certificate record: the issued chain, its revocation and its RFC 9773 replacement claim.

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

/// A stored certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// Opaque id.
    pub id: String,
    /// Owner.
    pub account_id: String,
    /// The order it was issued for.
    pub order_id: String,
    /// Serial number, lower-case hex.
    pub serial: String,
    /// Leaf then intermediate(s), PEM.
    pub chain_pem: String,
    /// Validity.
    pub not_before: UnixTime,
    /// Validity.
    pub not_after: UnixTime,
    /// Set once revoked.
    #[serde(default)]
    pub revoked: Option<Revocation>,
    /// The order that claimed to replace it (RFC 9773 §5); it holds the claim while it is not
    /// `invalid`.
    #[serde(default)]
    pub replaced_by: Option<String>,
    /// When that order expires: an order not (or no longer) stored holds the claim until then.
    #[serde(default)]
    pub replacement_expires: Option<UnixTime>,
    /// Signed by the name CA (standard orders); otherwise by the identity CA, as was every
    /// certificate stored before the two were separated.
    #[serde(default)]
    pub names_ca: bool,
}

/// A revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// When.
    pub at: UnixTime,
    /// RFC 5280 §5.3.1 reason code.
    pub reason: u8,
}
