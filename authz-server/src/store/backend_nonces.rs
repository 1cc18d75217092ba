//! Backend nonces (`backend_nonces`): each bound to the user and device it was issued for, until
//! it expires or is taken.

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

use super::{Store, trees};
use crate::error::Result;

/// Who a backend nonce was issued to, and until when it may be redeemed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NonceBinding {
    /// The user.
    pub user_id: String,
    /// The user's device.
    pub device_id: String,
    /// Expiry.
    pub expires_at: UnixTime,
}

/// Stores a nonce with its binding.
pub fn put(store: &dyn Store, nonce: &str, binding: &NonceBinding) -> Result<()> {
    Ok(store.put_json(trees::BACKEND_NONCES, nonce, binding)?)
}

/// Takes a nonce (once): its binding, or `None` when it is unknown or was taken before.
pub fn take(store: &dyn Store, nonce: &str) -> Result<Option<NonceBinding>> {
    Ok(store.take_json(trees::BACKEND_NONCES, nonce)?)
}

/// Removes every nonce bound to the user's device.
pub fn remove_of_device(store: &dyn Store, user_id: &str, device_id: &str) -> Result<()> {
    server_kit::cleanup::remove_where(store, trees::BACKEND_NONCES, |_, value| {
        serde_json::from_slice::<NonceBinding>(value)
            .is_ok_and(|b| b.user_id == user_id && b.device_id == device_id)
    })?;
    Ok(())
}
