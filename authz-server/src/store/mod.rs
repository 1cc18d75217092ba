//! The storage boundary of the authorization server: the only module that names the collections
//! it keeps in the shared key-value store ([`server_kit::store`]) and the only one that calls
//! the store. Each submodule keeps one kind of record, with the reads and writes the services
//! need and a compare-and-swap wherever a record changes state; nothing above it names a tree.
//!
//! Nothing here flushes on its own: a service that must not answer before its writes survive a
//! crash calls [`flush`] once they are all made (codes, redemptions, revocations, refresh
//! families, devices, users, clients, consents, device codes, upstream links, kept upstream tokens
//! and visas).

pub mod asserted_visas;
pub mod backend_nonces;
pub mod cleanup;
pub mod codes;
pub mod consents;
pub mod device_codes;
pub mod devices;
pub mod imported_visas;
pub mod oauth_clients;
pub mod refresh_leases;
pub mod refresh_tokens;
pub mod replay;
pub mod revocations;
pub mod secrets;
pub mod sessions;
pub mod signing_keys;
pub mod upstream_link_tickets;
pub mod upstream_links;
pub mod upstream_logins;
pub mod upstream_tokens;
pub mod users;

use serde::Serialize;
use serde::de::DeserializeOwned;
use server_kit::store::Versioned;
use sha2::{Digest, Sha256};

pub use server_kit::store::{Store, Tree, encode};

use crate::error::Result;

/// The collections the server keeps.
pub mod trees {
    use super::Tree;

    /// User id → user record.
    pub const USERS: Tree = Tree::new("users");
    /// Handle → user id (uniqueness index).
    pub const HANDLES: Tree = Tree::new("handles");
    /// OAuth client id → client record.
    pub const CLIENTS: Tree = Tree::new("clients");
    /// `{user id}/{device id}` → device record.
    pub const DEVICES: Tree = Tree::new("devices");
    /// SHA-256 of an authorization code → code record.
    pub const CODES: Tree = Tree::new("codes");
    /// Backend nonce → binding (user, device, expiry).
    pub const BACKEND_NONCES: Tree = Tree::new("backend_nonces");
    /// Access-token `jti` → revocation record.
    pub const REVOKED_TOKENS: Tree = Tree::new("revoked_tokens");
    /// SHA-256 of a refresh token → its record.
    pub const REFRESH_TOKENS: Tree = Tree::new("refresh_tokens");
    /// Refresh token family → revocation state and access tokens.
    pub const REFRESH_FAMILIES: Tree = Tree::new("refresh_families");
    /// SHA-256 of a device code → device authorization (RFC 8628).
    pub const DEVICE_CODES: Tree = Tree::new("device_codes");
    /// User code → SHA-256 of its device code.
    pub const USER_CODES: Tree = Tree::new("user_codes");
    /// `{user id}/{client id}` → the scopes the user granted the client.
    pub const CONSENTS: Tree = Tree::new("consents");
    /// `{user id}/{client id}` → when the user last withdrew the client's consent: what was
    /// granted to the client for the user at or before then is void.
    pub const WITHDRAWALS: Tree = Tree::new("withdrawals");
    /// Consent ticket → an authorization waiting for the user's answer.
    pub const CONSENT_TICKETS: Tree = Tree::new("consent_tickets");
    /// `{client id}:{jti}` of `private_key_jwt` assertions → expiry: used once.
    pub const CLIENT_ASSERTION_JTIS: Tree = Tree::new("client_assertion_jtis");
    /// `{issuer id}:{jti}` of RFC 7523 grant assertions → expiry: used once.
    pub const JWT_BEARER_JTIS: Tree = Tree::new("jwt_bearer_jtis");
    /// DPoP proof `jti` (with key thumbprint) → expiry: the replay cache.
    pub const DPOP_JTIS: Tree = Tree::new("dpop_jtis");
    /// SHA-256 of an upstream login's `state` → the login waiting for its callback.
    pub const UPSTREAM_LOGINS: Tree = Tree::new("upstream_logins");
    /// SHA-256 of an upstream identity's issuer and subject → the local user it is linked to.
    pub const UPSTREAM_LINKS: Tree = Tree::new("upstream_links");
    /// SHA-256 of a link ticket → a verified upstream identity waiting for the local login
    /// that links it (`first_login = "link"`).
    pub const UPSTREAM_LINK_TICKETS: Tree = Tree::new("upstream_link_tickets");
    /// `{user id}/{session id}` → a browser session (the digest of its cookie's secret).
    pub const SESSIONS: Tree = Tree::new("sessions");
    /// `{upstream id}/{user id}` → the upstream's tokens of the user, sealed (token exchange).
    pub const UPSTREAM_TOKENS: Tree = Tree::new("upstream_tokens");
    /// Kept upstream tokens' key → the lease of the one process refreshing them.
    pub const REFRESH_LEASES: Tree = Tree::new("refresh_leases");
    /// `{user id}/{upstream id}` → the visas the upstream released at the user's last login
    /// through it (GA4GH Passports).
    pub const IMPORTED_VISAS: Tree = Tree::new("imported_visas");
    /// `{user id}/{visa id}` → a visa an operator or admin asserts for the user.
    pub const ASSERTED_VISAS: Tree = Tree::new("asserted_visas");
    /// Name → a secret all replicas share (the DPoP server nonces' MAC key).
    pub const SECRETS: Tree = Tree::new("secrets");
    /// `set` → every token signing key of the deployment (replicas on a shared store).
    pub const SIGNING_KEYS: Tree = Tree::new("signing_keys");
}

/// Makes every write so far durable.
pub fn flush(store: &dyn Store) -> Result<()> {
    Ok(store.flush()?)
}

/// The key of a record found by a secret (authorization code, refresh token, device code) and
/// the stored form of a client secret: base64url SHA-256 of the secret, so the store never
/// holds the secret itself.
pub fn digest(secret: &str) -> String {
    proto::b64::encode(Sha256::digest(secret.as_bytes()))
}

/// A record as it was read, with where it was read from: a later [`replace`] succeeds only if
/// nobody changed it in between (compare-and-swap against the exact bytes read).
#[derive(Debug)]
pub struct StoredRecord<T> {
    tree: Tree,
    key: String,
    record: Versioned<T>,
}

impl<T> StoredRecord<T> {
    /// The record.
    pub fn value(&self) -> &T {
        &self.record.value
    }
}

/// The record under `key` in `tree`, for a later [`replace`].
fn read<T: DeserializeOwned>(
    store: &dyn Store,
    tree: Tree,
    key: String,
) -> Result<Option<StoredRecord<T>>> {
    Ok(store
        .get_versioned(tree, &key)?
        .map(|record| StoredRecord { tree, key, record }))
}

/// Replaces a record with `new` unless it changed since it was read; false when another writer
/// got there first.
pub fn replace<T: Serialize>(store: &dyn Store, read: &StoredRecord<T>, new: &T) -> Result<bool> {
    Ok(store.replace_json(read.tree, &read.key, &read.record, new)?)
}

/// The record read a moment ago as it is now (after a lost [`replace`]); `None` once removed.
pub fn reread<T: DeserializeOwned>(
    store: &dyn Store,
    earlier: &StoredRecord<T>,
) -> Result<Option<StoredRecord<T>>> {
    self::read(store, earlier.tree, earlier.key.clone())
}

/// A store in a temporary directory, for unit tests.
#[cfg(test)]
pub fn temporary() -> (tempfile::TempDir, server_kit::store::SqliteStore) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = server_kit::store::SqliteStore::open(dir.path()).expect("store");
    (dir, store)
}
