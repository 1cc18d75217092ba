//! Browser sessions at the authorization server (`sessions`, by `{user id}/{session id}`): who
//! logged in, when and how, until the user logs out, an operator or the user revokes it, or it
//! lapses. The cookie holds the user id, the session id and a 256-bit secret, of which only the
//! digest is stored. A session changes only by compare-and-swap, so a touch that races a
//! logout cannot bring the session back.

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

use super::{Store, StoredRecord, digest, trees};
use crate::error::Result;

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// base64url SHA-256 of the cookie's secret.
    pub secret_sha256: String,
    /// When the user authenticated (`auth_time`).
    pub auth_time: UnixTime,
    /// How (`amr`: `pwd`, `fed`).
    pub amr: Vec<String>,
    /// The upstream the user logged in through, if any.
    #[serde(default)]
    pub upstream: Option<String>,
    /// When the session was last used.
    pub last_seen: UnixTime,
    /// When it lapses: the earlier of its absolute end and `last_seen` plus the idle lifetime.
    pub expires_at: UnixTime,
    /// Its absolute end.
    pub absolute_end: UnixTime,
    /// The browser's `User-Agent` when it was made (at most 200 characters), for the list.
    #[serde(default)]
    pub user_agent: String,
}

/// A session as read, for a compare-and-swap.
pub type StoredSession = StoredRecord<SessionRecord>;

fn key(user_id: &str, session_id: &str) -> String {
    format!("{user_id}/{session_id}")
}

/// Stores a new session.
pub fn insert(
    store: &dyn Store,
    user_id: &str,
    session_id: &str,
    record: &SessionRecord,
) -> Result<()> {
    Ok(store.put_json(trees::SESSIONS, &key(user_id, session_id), record)?)
}

/// The session `session_id` of `user_id`, as read.
pub fn get(store: &dyn Store, user_id: &str, session_id: &str) -> Result<Option<StoredSession>> {
    super::read(store, trees::SESSIONS, key(user_id, session_id))
}

/// Every session of `user_id`, with its id.
pub fn of_user(store: &dyn Store, user_id: &str) -> Result<Vec<(String, SessionRecord)>> {
    let prefix = format!("{user_id}/");
    store
        .scan_prefix(trees::SESSIONS, &prefix)?
        .into_iter()
        .filter_map(|(k, v)| {
            let id = k.strip_prefix(&prefix)?.to_owned();
            Some(serde_json::from_slice(&v).map(|r| (id, r)))
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| crate::error::Error::Storage(format!("a session record: {e}")))
}

/// Removes the session `session_id` of `user_id`; whether it was there.
pub fn remove(store: &dyn Store, user_id: &str, session_id: &str) -> Result<bool> {
    Ok(store
        .take(trees::SESSIONS, &key(user_id, session_id))?
        .is_some())
}

/// Removes every session of `user_id` (the user is being removed, or signs out everywhere);
/// how many there were.
pub fn remove_all_of(store: &dyn Store, user_id: &str) -> Result<usize> {
    let prefix = format!("{user_id}/");
    let mut removed = 0;
    for (k, _) in store.scan_prefix(trees::SESSIONS, &prefix)? {
        removed += usize::from(store.take(trees::SESSIONS, &k)?.is_some());
    }
    Ok(removed)
}

/// Whether `secret` is the secret of `record` (constant time).
pub fn secret_matches(record: &SessionRecord, secret: &str) -> bool {
    proto::secret::constant_time_eq(record.secret_sha256.as_bytes(), digest(secret).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(secret: &str) -> SessionRecord {
        SessionRecord {
            secret_sha256: digest(secret),
            auth_time: 10,
            amr: vec!["pwd".into()],
            upstream: None,
            last_seen: 10,
            expires_at: 100,
            absolute_end: 1000,
            user_agent: String::new(),
        }
    }

    #[test]
    fn a_touch_after_a_removal_does_not_bring_the_session_back() {
        let (_dir, store) = super::super::temporary();
        let store: &dyn Store = &store;
        insert(store, "u1", "s1", &record("secret")).unwrap();
        insert(store, "u1", "s2", &record("other")).unwrap();
        insert(store, "u2", "s3", &record("third")).unwrap();
        let read = get(store, "u1", "s1").unwrap().unwrap();
        assert!(secret_matches(read.value(), "secret"));
        assert!(!secret_matches(read.value(), "secreT"));
        assert!(remove(store, "u1", "s1").unwrap());
        let mut touched = read.value().clone();
        touched.last_seen = 20;
        assert!(!super::super::replace(store, &read, &touched).unwrap());
        assert!(get(store, "u1", "s1").unwrap().is_none());
        assert_eq!(of_user(store, "u1").unwrap().len(), 1);
        assert_eq!(remove_all_of(store, "u1").unwrap(), 1);
        assert!(of_user(store, "u1").unwrap().is_empty());
        assert_eq!(of_user(store, "u2").unwrap().len(), 1);
    }
}
