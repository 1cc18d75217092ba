//! The signing keys replicas share (on a shared store): one record holding every key with when
//! it signs from and until when it stays published. The private keys are in the database, as
//! the other secrets of the deployment are (protect its backups accordingly).

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

use super::{Store, StoredRecord, trees};
use crate::error::Result;

/// The record's key.
const SET: &str = "set";

/// One key.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredKey {
    /// The private key, PKCS#8 DER in base64url.
    pub pkcs8: String,
    /// When it signs from (the newest key whose time has come signs).
    pub active_from: UnixTime,
    /// Until when it stays published once a newer key signs; none while it is the newest.
    pub retire_after: Option<UnixTime>,
}

/// Never the private key.
impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("active_from", &self.active_from)
            .field("retire_after", &self.retire_after)
            .finish_non_exhaustive()
    }
}

/// Every key of the deployment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoredKeySet {
    /// The keys, oldest first.
    pub keys: Vec<StoredKey>,
    /// Retired keys known by their public half only (the `retired/` files of the replica
    /// that seeded the set), published until their time.
    #[serde(default)]
    pub retired_public: Vec<RetiredPublic>,
}

/// A retired key's public JWK and until when it stays published.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetiredPublic {
    /// The public JWK.
    pub jwk: serde_json::Value,
    /// When its last token expires.
    pub retire_after: UnixTime,
}

/// The set as stored, for a later [`replace`].
pub fn read(store: &dyn Store) -> Result<Option<StoredRecord<StoredKeySet>>> {
    super::read(store, trees::SIGNING_KEYS, SET.to_owned())
}

/// Stores the first set, unless a replica stored one first (false then).
pub fn create(store: &dyn Store, set: &StoredKeySet) -> Result<bool> {
    let created = store.insert_new_json(trees::SIGNING_KEYS, SET, set)?;
    super::flush(store)?;
    Ok(created)
}

/// Replaces the set read a moment ago; false when it changed meanwhile.
pub fn replace(
    store: &dyn Store,
    read: &StoredRecord<StoredKeySet>,
    new: &StoredKeySet,
) -> Result<bool> {
    let replaced = super::replace(store, read, new)?;
    super::flush(store)?;
    Ok(replaced)
}
