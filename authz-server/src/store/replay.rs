//! The replay caches: the `jti` of every DPoP proof (`dpop_jtis`, with the proof key's
//! thumbprint), of every `private_key_jwt` client assertion (`client_assertion_jtis`, with
//! the client id) and of every RFC 7523 grant assertion (`jwt_bearer_jtis`, with the issuer's
//! id) this server accepted, each kept until the proof or assertion could no longer be
//! accepted anyway (then swept). Each is claimed by an insert that succeeds only where nothing
//! is stored (compare-and-swap), so of simultaneous uses exactly one wins.

use proto::clock::UnixTime;
use serde_json::json;

use super::{Store, trees};
use crate::error::Result;

fn dpop_key(thumbprint: &str, jti: &str) -> String {
    format!("{thumbprint}:{jti}")
}

/// Records a DPoP proof's `jti` (with its key) until `expires_at`; false when it was recorded
/// before.
pub fn remember_dpop_jti(
    store: &dyn Store,
    thumbprint: &str,
    jti: &str,
    expires_at: UnixTime,
) -> Result<bool> {
    let expires = json!({ "expires_at": expires_at });
    Ok(store.insert_new_json(trees::DPOP_JTIS, &dpop_key(thumbprint, jti), &expires)?)
}

/// Takes back [`remember_dpop_jti`].
pub fn forget_dpop_jti(store: &dyn Store, thumbprint: &str, jti: &str) -> Result<()> {
    store.take(trees::DPOP_JTIS, &dpop_key(thumbprint, jti))?;
    Ok(())
}

/// Records a client assertion's `jti` until `expires_at`; false when the client used it before.
pub fn remember_assertion_jti(
    store: &dyn Store,
    client_id: &str,
    jti: &str,
    expires_at: UnixTime,
) -> Result<bool> {
    Ok(store.insert_new_json(
        trees::CLIENT_ASSERTION_JTIS,
        &format!("{client_id}:{jti}"),
        &json!({ "expires_at": expires_at }),
    )?)
}

/// Records a grant assertion's `jti` of the issuer `issuer_id` until `expires_at`; false when
/// it was used before.
pub fn remember_bearer_jti(
    store: &dyn Store,
    issuer_id: &str,
    jti: &str,
    expires_at: UnixTime,
) -> Result<bool> {
    Ok(store.insert_new_json(
        trees::JWT_BEARER_JTIS,
        &format!("{issuer_id}:{jti}"),
        &json!({ "expires_at": expires_at }),
    )?)
}
