//! Devices (Wire "clients") of a user and their backend nonces: the single-use values a device
//! fetches before it asks for a DPoP access token, bound to that user and device. A user may
//! remove a device; its nonces go with it.

use proto::clock::UnixTime;
use proto::wire_id::ClientId;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::{Store, trees};
use crate::users::User;

/// A registered device.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Device {
    /// Device id, lower-case hex.
    pub id: String,
    /// Owner's user id.
    pub user_id: String,
    /// A label the device chose.
    pub label: Option<String>,
    /// Registration time.
    pub created_at: UnixTime,
}

fn key(user_id: &str, device_id: &str) -> String {
    format!("{user_id}/{device_id}")
}

/// Registers a new device for `user`, with a fresh random 64-bit id, unless the user already
/// has `cap` devices (403 `too-many-clients`). The count is taken again after the insert and a
/// registration that raced others past the cap is undone, so the cap holds under concurrency.
pub fn register(
    store: &dyn Store,
    user: &User,
    label: Option<String>,
    now: UnixTime,
    cap: usize,
) -> Result<Device> {
    let too_many = || Error::Wire {
        status: axum::http::StatusCode::FORBIDDEN,
        label: "too-many-clients",
        message: format!("a user may register at most {cap} devices"),
    };
    if list(store, user)?.len() >= cap {
        return Err(too_many());
    }
    if label
        .as_ref()
        .is_some_and(|l| l.len() > 128 || l.chars().any(char::is_control))
    {
        return Err(Error::Wire {
            status: axum::http::StatusCode::BAD_REQUEST,
            label: "bad-request",
            message: "the label must be at most 128 printable characters".into(),
        });
    }
    loop {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&proto::random::bytes(8));
        let id = format!("{:x}", u64::from_be_bytes(raw));
        let device = Device {
            id,
            user_id: user.id.clone(),
            label: label.clone(),
            created_at: now,
        };
        let device_key = key(&user.id, &device.id);
        if store.insert_new_json(trees::DEVICES, &device_key, &device)? {
            if list(store, user)?.len() > cap {
                store.take(trees::DEVICES, &device_key)?;
                return Err(too_many());
            }
            store.flush()?;
            return Ok(device);
        }
    }
}

/// The user's device with this id.
pub fn get(store: &dyn Store, user: &User, device_id: &str) -> Result<Option<Device>> {
    if device_id.is_empty() || device_id.len() > 16 || device_id.contains('/') {
        return Ok(None);
    }
    Ok(store.get_json(trees::DEVICES, &key(&user.id, device_id))?)
}

/// All devices of the user.
pub fn list(store: &dyn Store, user: &User) -> Result<Vec<Device>> {
    Ok(store.scan_json(trees::DEVICES, &format!("{}/", user.id))?)
}

/// Removes the user's device and every backend nonce bound to it; false if another request
/// removed it first (the record is taken, so exactly one removal succeeds). The device goes
/// first: a nonce left behind by a crash in between is bound to a device that no longer exists,
/// refused, and swept when it expires. Durable on return.
pub fn remove(store: &dyn Store, user: &User, device: &Device) -> Result<bool> {
    if store
        .take(trees::DEVICES, &key(&user.id, &device.id))?
        .is_none()
    {
        return Ok(false);
    }
    server_kit::cleanup::remove_where(store, trees::BACKEND_NONCES, |_, value| {
        serde_json::from_slice::<NonceBinding>(value)
            .is_ok_and(|b| b.user_id == user.id && b.device_id == device.id)
    })?;
    store.flush()?;
    Ok(true)
}

/// The device's client-id URI.
pub fn client_id(user: &User, device: &Device) -> Result<ClientId> {
    ClientId::new(user.id_bytes()?, &device.id, &user.domain)
        .map_err(|e| Error::Internal(e.to_string()))
}

#[derive(Debug, Serialize, Deserialize)]
struct NonceBinding {
    user_id: String,
    device_id: String,
    expires_at: UnixTime,
}

/// Issues a backend nonce for this user's device (128 bits, base64url).
pub fn issue_nonce(
    store: &dyn Store,
    user: &User,
    device: &Device,
    now: UnixTime,
    ttl: i64,
) -> Result<String> {
    let nonce = proto::random::token(128);
    let binding = NonceBinding {
        user_id: user.id.clone(),
        device_id: device.id.clone(),
        expires_at: now + ttl,
    };
    store.put_json(trees::BACKEND_NONCES, &nonce, &binding)?;
    Ok(nonce)
}

/// Proof that a backend nonce was redeemed for this device; the token issuer requires it.
#[derive(Debug)]
pub struct RedeemedNonce(());

/// Redeems a nonce exactly once. A nonce presented for another device, or too late, is burnt
/// all the same. The removal is durable before this returns.
pub fn redeem_nonce(
    store: &dyn Store,
    nonce: &str,
    user: &User,
    device: &Device,
    now: UnixTime,
) -> Result<RedeemedNonce> {
    if nonce.is_empty() || nonce.len() > 128 {
        return Err(Error::WireBadNonce);
    }
    let binding: Option<NonceBinding> = store.take_json(trees::BACKEND_NONCES, nonce)?;
    store.flush()?;
    match binding {
        Some(b) if b.user_id == user.id && b.device_id == device.id && now <= b.expires_at => {
            Ok(RedeemedNonce(()))
        }
        _ => Err(Error::WireBadNonce),
    }
}
