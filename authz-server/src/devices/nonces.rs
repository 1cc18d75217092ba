//! Backend nonces: the single-use values a device fetches (`/clients/{device}/nonce`) and puts
//! in the DPoP proof it exchanges for a Wire access token, bound to the user and device they
//! were issued for and valid for `lifetimes.backend_nonce`. Redeeming one yields a
//! [`RedeemedNonce`], which the Wire access-token issuer requires; only a proof whose `jti` was
//! recorded first ([`crate::dpop::Remembered`]) can redeem one.

use proto::clock::UnixTime;

use super::Device;
use crate::dpop::Remembered;
use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::store::backend_nonces::NonceBinding;
use crate::store::users::User;
use crate::store::{self, Store};

/// Proof that the backend nonce of a proof was redeemed for this device, made only by
/// [`redeem`]; the Wire access-token issuer requires it.
#[derive(Debug)]
pub struct RedeemedNonce(());

impl Provider {
    /// Issues a backend nonce (128 bits, base64url) for the user's device `device_id`.
    pub fn issue_backend_nonce(&self, user: &User, device_id: &str) -> Result<String> {
        let device = super::owned(self.store(), user, device_id)?;
        let nonce = proto::random::token(128);
        let binding = NonceBinding {
            user_id: user.id.clone(),
            device_id: device.id,
            expires_at: self.now() + self.config.lifetimes.backend_nonce,
        };
        store::backend_nonces::put(self.store(), &nonce, &binding)?;
        Ok(nonce)
    }
}

/// Redeems the backend nonce of a proof whose `jti` was recorded, exactly once. A nonce
/// presented for another device, or too late, is burnt all the same. The removal is durable
/// before this returns.
pub fn redeem(
    store: &dyn Store,
    proof: &Remembered,
    user: &User,
    device: &Device,
    now: UnixTime,
) -> Result<RedeemedNonce> {
    let nonce = proof.proof().nonce().unwrap_or_default();
    if nonce.is_empty() || nonce.len() > 128 {
        return Err(Error::WireBadNonce);
    }
    let binding = store::backend_nonces::take(store, nonce)?;
    store::flush(store)?;
    match binding {
        Some(b) if b.user_id == user.id && b.device_id == device.id && now <= b.expires_at => {
            Ok(RedeemedNonce(()))
        }
        _ => Err(Error::WireBadNonce),
    }
}
