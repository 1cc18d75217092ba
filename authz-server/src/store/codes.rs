//! Authorization code records (`codes`, by the code's digest): what `/authorize` granted, until
//! the code is redeemed once at `/token`. A redeemed record is kept (with what it issued) until
//! the sweep, so a replayed code can still revoke its grant.

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

use super::{Store, StoredRecord, trees};
use crate::error::Result;

/// What `/authorize` granted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    /// The client the code was issued to.
    pub client_id: String,
    /// The exact redirect URI used.
    pub redirect_uri: String,
    /// The user who logged in.
    pub user_id: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Granted scope.
    pub scope: String,
    /// OIDC `nonce`.
    pub nonce: Option<String>,
    /// Values the `claims` parameter asked to see echoed in the ID token.
    pub claims: proto::wire_claims::AcmeClaims,
    /// `dpop_jkt` from the authorization request (RFC 9449 §10).
    pub dpop_jkt: Option<String>,
    /// Login time (`auth_time`).
    pub auth_time: UnixTime,
    /// How the user authenticated (`amr`); empty in records from before it was kept.
    #[serde(default)]
    pub amr: Vec<String>,
    /// The browser session the login is held by (`sid`).
    #[serde(default)]
    pub sid: Option<String>,
    /// Expiry.
    pub expires_at: UnixTime,
    /// Set once redeemed: the `jti`s of the access tokens it produced.
    pub redeemed: Option<Vec<String>>,
    /// Set once redeemed: the refresh token family it started.
    #[serde(default)]
    pub refresh_family: Option<String>,
}

/// A code record as read, for the compare-and-swap that redeems it ([`super::replace`]).
pub type StoredCode = StoredRecord<CodeGrant>;

/// Stores a grant under its code.
pub fn insert(store: &dyn Store, code: &str, grant: &CodeGrant) -> Result<()> {
    Ok(store.put_json(trees::CODES, &super::digest(code), grant)?)
}

/// The record of a code.
pub fn get(store: &dyn Store, code: &str) -> Result<Option<StoredCode>> {
    super::read(store, trees::CODES, super::digest(code))
}
