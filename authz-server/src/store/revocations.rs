//! Revoked access tokens (`revoked_tokens`, by `jti`): our access tokens are JWTs checked
//! offline, so a revocation is a record every check looks up, kept until the token has expired
//! by itself.

use proto::clock::UnixTime;
use serde_json::json;

use super::{Store, trees};
use crate::error::Result;

/// Marks the access token `jti` revoked.
pub fn revoke(store: &dyn Store, jti: &str, now: UnixTime) -> Result<()> {
    Ok(store.put_json(trees::REVOKED_TOKENS, jti, &json!({ "revoked_at": now }))?)
}

/// Whether the access token `jti` was revoked.
pub fn is_revoked(store: &dyn Store, jti: &str) -> Result<bool> {
    Ok(store.get(trees::REVOKED_TOKENS, jti)?.is_some())
}
