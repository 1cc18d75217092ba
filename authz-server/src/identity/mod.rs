//! Who the user is and what they get: the one place that turns the user id a grant or an access
//! token names into the user as this server knows them now ([`user_of_grant`],
//! [`user_of_token`]), and decides what is issued about them — the claims each scope releases
//! ([`claims`]) and the Wire identity their devices prove ([`wire_identity`], with the
//! device's client-id URI). A user becomes known by logging in ([`login`]). Upstream identity
//! providers (federation, account linking) and claims enrichment (roles, permission services)
//! belong here, behind these functions.

pub mod claims;
pub mod login;

use proto::wire_id::{ClientId, WireIdentity};

use crate::error::{Error, Result, Scheme};
use crate::store::devices::Device;
use crate::store::users::User;
use crate::store::{self, Store};

/// The user a grant was made for, at the token endpoint: `invalid_grant` when the user is gone.
pub fn user_of_grant(store: &dyn Store, user_id: &str) -> Result<User> {
    store::users::get(store, user_id)?
        .ok_or_else(|| Error::invalid_grant("the user no longer exists"))
}

/// The user an access token was issued for, at a resource presented with `scheme`: 401
/// `invalid_token` when the user is gone.
pub fn user_of_token(store: &dyn Store, user_id: &str, scheme: Scheme) -> Result<User> {
    store::users::get(store, user_id)?
        .ok_or_else(|| Error::invalid_token("the user no longer exists", scheme))
}

/// The client-id URI of a device of `user` (`wireapp://{user}!{device}@{domain}`).
pub fn device_client_id(user: &User, device: &Device) -> Result<ClientId> {
    ClientId::new(user.id_bytes()?, &device.id, &user.domain)
        .map_err(|e| Error::Internal(e.to_string()))
}

/// The Wire identity a device of `user` proves in its DPoP proofs and is certified for: its
/// client-id URI, the user's handle URI, display name and team.
pub fn wire_identity(user: &User, device: &Device) -> Result<WireIdentity> {
    WireIdentity::new(
        device_client_id(user, device)?,
        user.handle_uri()?,
        &user.name,
        user.team.clone(),
    )
    .map_err(|e| Error::Internal(format!("the user's own identity: {e}")))
}
