//! Visas imported from upstreams (`imported_visas`, by `{user id}/{upstream id}`): the visa JWTs
//! an upstream released in its `ga4gh_passport_v1` claim at the user's last login through it,
//! kept exactly as they came, each with its `exp`. The record of a login replaces the one
//! before; it goes with the link and with the user, and is swept once its last visa expired
//! ([`super::cleanup`], by `expires_at`).

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

use super::{Store, trees};
use crate::error::Result;

/// One imported visa: the JWT as the upstream sent it, and when it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedVisa {
    /// The visa, a compact JWS.
    pub jwt: String,
    /// Its `exp`.
    pub exp: UnixTime,
}

/// The visas of one user from one upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedVisas {
    /// The upstream's configured id.
    pub upstream: String,
    /// The local user.
    pub user_id: String,
    /// The visas.
    pub visas: Vec<ImportedVisa>,
    /// When the last of them expires (what the sweep reads).
    pub expires_at: UnixTime,
    /// When they were stored.
    pub stored_at: UnixTime,
}

fn key(user_id: &str, upstream: &str) -> String {
    format!("{user_id}/{upstream}")
}

/// Stores (or replaces) the visas of `record.user_id` from `record.upstream`.
pub fn put(store: &dyn Store, record: &ImportedVisas) -> Result<()> {
    Ok(store.put_json(
        trees::IMPORTED_VISAS,
        &key(&record.user_id, &record.upstream),
        record,
    )?)
}

/// The imported visas of `user_id`, one record per upstream.
pub fn of_user(store: &dyn Store, user_id: &str) -> Result<Vec<ImportedVisas>> {
    Ok(store.scan_json(trees::IMPORTED_VISAS, &format!("{user_id}/"))?)
}

/// Removes the visas of `user_id` from `upstream` (a new login brought none, or the identity
/// was unlinked).
pub fn remove_of(store: &dyn Store, upstream: &str, user_id: &str) -> Result<()> {
    store.take(trees::IMPORTED_VISAS, &key(user_id, upstream))?;
    Ok(())
}

/// Removes every imported visa of the user `user_id` (the user is being removed).
pub fn remove_all_of(store: &dyn Store, user_id: &str) -> Result<()> {
    for record in of_user(store, user_id)? {
        remove_of(store, &record.upstream, user_id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: &str, upstream: &str) -> ImportedVisas {
        ImportedVisas {
            upstream: upstream.into(),
            user_id: user.into(),
            visas: vec![ImportedVisa {
                jwt: "a.b.c".into(),
                exp: 10,
            }],
            expires_at: 10,
            stored_at: 1,
        }
    }

    #[test]
    fn records_are_per_user_and_upstream_and_go_with_either() {
        let (_dir, store) = super::super::temporary();
        let store: &dyn Store = &store;
        put(store, &record("u1", "corp")).unwrap();
        put(store, &record("u1", "partner")).unwrap();
        put(store, &record("u10", "corp")).unwrap();
        assert_eq!(of_user(store, "u1").unwrap().len(), 2);
        remove_of(store, "corp", "u1").unwrap();
        assert_eq!(of_user(store, "u1").unwrap(), [record("u1", "partner")]);
        remove_all_of(store, "u1").unwrap();
        assert!(of_user(store, "u1").unwrap().is_empty());
        assert_eq!(of_user(store, "u10").unwrap().len(), 1);
    }
}
