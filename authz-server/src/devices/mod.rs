//! Wire devices — what Wire's API calls "clients" (the endpoints keep their paths `/clients…`)
//! — of a user: registration (within `caps.devices_per_user`), listing and removal, each
//! device's backend nonces ([`nonces`]) and the exchange of its DPoP proof for a Wire access
//! token ([`access_token`]); the identity a device proves is [`crate::identity`]'s. A device is always looked up among its user's
//! own: another user's device is not found. The records are kept by [`crate::store::devices`].

pub mod access_token;
pub mod nonces;

use axum::http::StatusCode;
use serde_json::json;

pub use crate::store::devices::Device;

use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::store::users::User;
use crate::store::{self, Store};

/// The user's device with this id: 404 `client-not-found` when the user has none (another
/// user's included).
fn owned(store: &dyn Store, user: &User, device_id: &str) -> Result<Device> {
    store::devices::get(store, &user.id, device_id)?.ok_or_else(not_found)
}

fn not_found() -> Error {
    Error::not_found("client-not-found", "no such device for this user")
}

/// All devices of the user.
fn list(store: &dyn Store, user: &User) -> Result<Vec<Device>> {
    store::devices::list(store, &user.id)
}

/// Registers a new device for `user`, with a fresh random 64-bit id, unless the user already
/// has `cap` devices (403 `too-many-clients`). The count is taken again after the insert and a
/// registration that raced others past the cap is undone, so the cap holds under concurrency.
/// Durable on return.
fn register(
    store: &dyn Store,
    user: &User,
    label: Option<String>,
    now: proto::clock::UnixTime,
    cap: usize,
) -> Result<Device> {
    let too_many = || Error::Wire {
        status: StatusCode::FORBIDDEN,
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
            status: StatusCode::BAD_REQUEST,
            label: "bad-request",
            message: "the label must be at most 128 printable characters".into(),
        });
    }
    loop {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&proto::random::bytes(8));
        let device = Device {
            id: format!("{:x}", u64::from_be_bytes(raw)),
            user_id: user.id.clone(),
            label: label.clone(),
            created_at: now,
        };
        if store::devices::insert_new(store, &device)? {
            if list(store, user)?.len() > cap {
                store::devices::remove(store, &user.id, &device.id)?;
                return Err(too_many());
            }
            store::flush(store)?;
            return Ok(device);
        }
    }
}

impl Provider {
    /// All devices of `user`.
    pub fn devices_of(&self, user: &User) -> Result<Vec<Device>> {
        list(self.store(), user)
    }

    /// Registers a device of `user` with an optional label.
    pub fn register_device(&self, user: &User, label: Option<String>) -> Result<Device> {
        let device = register(
            self.store(),
            user,
            label,
            self.now(),
            self.config.caps.devices_per_user,
        )?;
        tracing::info!(user = %user.id, device = %device.id, "device registered");
        self.audit.record(
            self.now(),
            "device.registered",
            json!({"user": user.id, "device": device.id}),
        );
        Ok(device)
    }

    /// Removes the device `device_id` of `user` with its backend nonces, at the request of the
    /// OAuth client `oauth_client_id` (for the audit log); its place under
    /// `caps.devices_per_user` is free again. The device goes first (the record is taken, so of
    /// concurrent removals exactly one succeeds): a nonce left behind by a crash in between is
    /// bound to a device that no longer exists, refused, and swept when it expires. Durable on
    /// return.
    pub fn remove_device(&self, user: &User, device_id: &str, oauth_client_id: &str) -> Result<()> {
        let store = self.store();
        let device = owned(store, user, device_id)?;
        if !store::devices::remove(store, &user.id, &device.id)? {
            return Err(not_found());
        }
        store::backend_nonces::remove_of_device(store, &user.id, &device.id)?;
        store::flush(store)?;
        tracing::info!(user = %user.id, device = %device.id, "device deleted");
        self.audit.record(
            self.now(),
            "device.deleted",
            json!({"user": user.id, "device": device.id, "client": oauth_client_id}),
        );
        Ok(())
    }
}
