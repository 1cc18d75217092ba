//! Device records (`devices`, by `{user id}/{device id}`): the Wire devices ("clients" in
//! Wire's API) a user registered.

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

use super::{Store, trees};
use crate::error::Result;

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

fn of_user(user_id: &str) -> String {
    format!("{user_id}/")
}

/// Stores a new device; false when its id is taken.
pub fn insert_new(store: &dyn Store, device: &Device) -> Result<bool> {
    Ok(store.insert_new_json(trees::DEVICES, &key(&device.user_id, &device.id), device)?)
}

/// The user's device with this id (none for an id that cannot be one).
pub fn get(store: &dyn Store, user_id: &str, device_id: &str) -> Result<Option<Device>> {
    if device_id.is_empty() || device_id.len() > 16 || device_id.contains('/') {
        return Ok(None);
    }
    Ok(store.get_json(trees::DEVICES, &key(user_id, device_id))?)
}

/// All devices of the user.
pub fn list(store: &dyn Store, user_id: &str) -> Result<Vec<Device>> {
    Ok(store.scan_json(trees::DEVICES, &of_user(user_id))?)
}

/// Removes the user's device; false if it was gone already (the record is taken, so of
/// concurrent removals exactly one succeeds).
pub fn remove(store: &dyn Store, user_id: &str, device_id: &str) -> Result<bool> {
    Ok(store
        .take(trees::DEVICES, &key(user_id, device_id))?
        .is_some())
}

/// Removes every device of the user.
pub fn remove_all_of(store: &dyn Store, user_id: &str) -> Result<()> {
    for (key, _) in store.scan_prefix(trees::DEVICES, &of_user(user_id))? {
        store.take(trees::DEVICES, &key)?;
    }
    Ok(())
}
