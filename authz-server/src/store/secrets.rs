//! Secrets every replica of a deployment shares, drawn by the first to need one.

use proto::secret::SecretBytes;

use super::{Store, trees};
use crate::error::Result;

/// The MAC key of the server's DPoP nonces (RFC 9449 §8), shared so that a nonce one replica
/// issued is accepted by the others.
pub fn dpop_nonce_key(store: &dyn Store) -> Result<SecretBytes> {
    let key = server_kit::store::shared_secret(
        store,
        trees::SECRETS,
        "dpop-nonce-mac",
        proto::random::bytes(32),
    )?;
    Ok(SecretBytes::new(key))
}
