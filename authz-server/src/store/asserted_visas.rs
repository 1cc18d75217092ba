//! Visas an operator or an admin asserts for a user (`asserted_visas`, by `{user id}/{visa
//! id}`): the assertion (type, value, source, by, conditions, when asserted, until when), not a
//! signed visa — this server signs one each time it releases it. Removed by the operator, with
//! the user, or by the sweep once expired ([`super::cleanup`], by `expires_at`).

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

use super::{Store, trees};
use crate::error::Result;

/// One asserted visa.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssertedVisa {
    /// Its id (a UUID), to remove it by.
    pub id: String,
    /// The user it is about.
    pub user_id: String,
    /// `type`.
    pub visa_type: String,
    /// `value`.
    pub value: String,
    /// `source`.
    pub source: String,
    /// `by`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// `conditions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<serde_json::Value>,
    /// `asserted`.
    pub asserted: UnixTime,
    /// Until when it holds: no visa of it is released after, none expires later.
    pub expires_at: UnixTime,
    /// When it was recorded.
    pub added_at: UnixTime,
    /// Who recorded it: `operator`, or the admin's user id.
    pub added_by: String,
}

fn key(user_id: &str, id: &str) -> String {
    format!("{user_id}/{id}")
}

/// Records a visa.
pub fn insert(store: &dyn Store, visa: &AssertedVisa) -> Result<()> {
    Ok(store.put_json(trees::ASSERTED_VISAS, &key(&visa.user_id, &visa.id), visa)?)
}

/// The asserted visas of `user_id`.
pub fn of_user(store: &dyn Store, user_id: &str) -> Result<Vec<AssertedVisa>> {
    Ok(store.scan_json(trees::ASSERTED_VISAS, &format!("{user_id}/"))?)
}

/// Removes the visa `id` of `user_id`; false when there was none.
pub fn remove(store: &dyn Store, user_id: &str, id: &str) -> Result<bool> {
    Ok(store
        .take(trees::ASSERTED_VISAS, &key(user_id, id))?
        .is_some())
}

/// Removes every asserted visa of the user `user_id` (the user is being removed).
pub fn remove_all_of(store: &dyn Store, user_id: &str) -> Result<()> {
    for visa in of_user(store, user_id)? {
        remove(store, user_id, &visa.id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visa(user: &str, id: &str) -> AssertedVisa {
        AssertedVisa {
            id: id.into(),
            user_id: user.into(),
            visa_type: "ControlledAccessGrants".into(),
            value: "https://ega.example/datasets/1".into(),
            source: "https://ega.example/dacs/1".into(),
            by: Some("dac".into()),
            conditions: None,
            asserted: 1,
            expires_at: 100,
            added_at: 2,
            added_by: "operator".into(),
        }
    }

    #[test]
    fn visas_are_listed_per_user_and_removed_one_by_one_or_all() {
        let (_dir, store) = super::super::temporary();
        let store: &dyn Store = &store;
        insert(store, &visa("u1", "a")).unwrap();
        insert(store, &visa("u1", "b")).unwrap();
        insert(store, &visa("u10", "c")).unwrap();
        assert_eq!(of_user(store, "u1").unwrap().len(), 2);
        assert!(remove(store, "u1", "a").unwrap());
        assert!(!remove(store, "u1", "a").unwrap());
        assert!(!remove(store, "u1", "c").unwrap(), "only the user's own");
        assert_eq!(of_user(store, "u1").unwrap(), [visa("u1", "b")]);
        remove_all_of(store, "u1").unwrap();
        assert!(of_user(store, "u1").unwrap().is_empty());
        assert_eq!(of_user(store, "u10").unwrap().len(), 1);
    }
}
