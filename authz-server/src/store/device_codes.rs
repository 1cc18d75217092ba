//! Device authorizations of RFC 8628 (`device_codes`, by the device code's digest) and the user
//! codes that find them (`user_codes`, user code → that digest).

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

use super::{Store, StoredRecord, trees};
use crate::error::Result;

/// Where an authorization stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Waiting for the user.
    Pending,
    /// Approved by this user.
    Approved {
        /// The user's id.
        user_id: String,
        /// When the user signed in on the verification page to approve (the ID token's
        /// `auth_time`); absent in records stored before it was kept.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth_time: Option<UnixTime>,
        /// How the user signed in (`amr`); empty in records stored before it was kept.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        amr: Vec<String>,
    },
    /// Denied.
    Denied,
}

/// A device authorization.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceGrant {
    /// The client.
    pub client_id: String,
    /// Requested scope.
    pub scope: String,
    /// The user code (normalised, no dash).
    pub user_code: String,
    /// Decision.
    pub decision: Decision,
    /// Expiry.
    pub expires_at: UnixTime,
    /// Last poll.
    pub last_poll: Option<UnixTime>,
    /// Current polling interval.
    pub interval: i64,
}

/// An authorization as read, for a later compare-and-swap ([`super::replace`]) or removal.
pub type StoredDeviceGrant = StoredRecord<DeviceGrant>;

/// Stores an authorization under its device code and its user code; false (nothing stored)
/// when the user code is taken.
pub fn insert(store: &dyn Store, device_code: &str, grant: &DeviceGrant) -> Result<bool> {
    let key = super::digest(device_code);
    if !store.insert_new_json(trees::USER_CODES, &grant.user_code, &key)? {
        return Ok(false);
    }
    store.put_json(trees::DEVICE_CODES, &key, grant)?;
    Ok(true)
}

/// The authorization of a device code.
pub fn get(store: &dyn Store, device_code: &str) -> Result<Option<StoredDeviceGrant>> {
    super::read(store, trees::DEVICE_CODES, super::digest(device_code))
}

/// The authorization of a (normalised) user code.
pub fn by_user_code(store: &dyn Store, user_code: &str) -> Result<Option<StoredDeviceGrant>> {
    match store.get_json::<String>(trees::USER_CODES, user_code)? {
        Some(key) => super::read(store, trees::DEVICE_CODES, key),
        None => Ok(None),
    }
}

/// Removes an authorization and its user code (its device code is used once); false when
/// another request removed it first.
pub fn remove(store: &dyn Store, read: &StoredDeviceGrant) -> Result<bool> {
    if store.take(trees::DEVICE_CODES, &read.key)?.is_none() {
        return Ok(false);
    }
    store.take(trees::USER_CODES, &read.value().user_code)?;
    Ok(true)
}
