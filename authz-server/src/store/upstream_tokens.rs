//! The upstream tokens kept for token exchange (`upstream_tokens`, by `{upstream id}/{user
//! id}`): the last tokens an upstream issued at a login of the user through it (or at a
//! refresh), sealed ([`crate::federation::sealing`], with the record's key as associated data)
//! — the record holds no token in the clear, only the sealed blob and when the access token
//! expires, its scope, and whether a refresh token is sealed with it. Removed with the user;
//! swept once expired when there is no refresh token ([`super::cleanup`]).

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

use super::{Store, trees};
use crate::error::Result;

/// Sealed tokens and what may be known of them without opening them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedTokens {
    /// The access token and refresh token, sealed.
    pub sealed: String,
    /// When the access token expires, if the upstream said.
    pub expires_at: Option<UnixTime>,
    /// The scope the upstream granted, if it said.
    pub scope: Option<String>,
    /// Whether a refresh token is sealed with the access token.
    pub refreshable: bool,
}

/// The tokens of one user at one upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptTokens {
    /// The upstream's configured id.
    pub upstream: String,
    /// The local user.
    pub user_id: String,
    /// The tokens.
    #[serde(flatten)]
    pub tokens: SealedTokens,
    /// When they were stored.
    pub stored_at: UnixTime,
}

/// Kept tokens as read, for a removal that happens only if nobody replaced them meanwhile.
#[derive(Debug)]
pub struct ReadTokens {
    /// The record.
    pub record: KeptTokens,
    raw: Vec<u8>,
}

/// The key of the record of `user_id` at `upstream` (also the associated data of its seal).
pub fn key(upstream: &str, user_id: &str) -> String {
    format!("{upstream}/{user_id}")
}

/// The kept tokens of `user_id` at `upstream`, if any.
pub fn get(store: &dyn Store, upstream: &str, user_id: &str) -> Result<Option<ReadTokens>> {
    let Some(raw) = store.get(trees::UPSTREAM_TOKENS, &key(upstream, user_id))? else {
        return Ok(None);
    };
    let record = serde_json::from_slice(&raw)
        .map_err(|e| crate::error::Error::Storage(format!("upstream tokens: {e}")))?;
    Ok(Some(ReadTokens { record, raw }))
}

/// Stores (or replaces) kept tokens.
pub fn put(store: &dyn Store, record: &KeptTokens) -> Result<()> {
    Ok(store.put_json(
        trees::UPSTREAM_TOKENS,
        &key(&record.upstream, &record.user_id),
        record,
    )?)
}

/// Replaces tokens that are still exactly as read with `record`; false when they changed or
/// were removed meanwhile (a new login, an unlink), and then nothing is written.
pub fn replace_unchanged(
    store: &dyn Store,
    read: &ReadTokens,
    record: &KeptTokens,
) -> Result<bool> {
    let bytes = super::encode(record)?;
    Ok(store.compare_and_swap(
        trees::UPSTREAM_TOKENS,
        &key(&read.record.upstream, &read.record.user_id),
        Some(&read.raw),
        Some(&bytes),
    )?)
}

/// Removes tokens that are still exactly as read; false when they changed meanwhile.
pub fn remove_unchanged(store: &dyn Store, read: &ReadTokens) -> Result<bool> {
    Ok(store.compare_and_swap(
        trees::UPSTREAM_TOKENS,
        &key(&read.record.upstream, &read.record.user_id),
        Some(&read.raw),
        None,
    )?)
}

/// Removes the kept tokens of `user_id` from `upstream` (the identity was unlinked).
pub fn remove_of(store: &dyn Store, upstream: &str, user_id: &str) -> Result<()> {
    store.take(trees::UPSTREAM_TOKENS, &key(upstream, user_id))?;
    Ok(())
}

/// Removes every kept token of the user `user_id` (the user is being removed).
pub fn remove_all_of(store: &dyn Store, user_id: &str) -> Result<()> {
    for (key, raw) in store.scan_prefix(trees::UPSTREAM_TOKENS, "")? {
        let of_user =
            serde_json::from_slice::<KeptTokens>(&raw).is_ok_and(|r| r.user_id == user_id);
        if of_user {
            store.compare_and_swap(trees::UPSTREAM_TOKENS, &key, Some(&raw), None)?;
        }
    }
    Ok(())
}

/// Whether a stored record (its bytes) is useless at `cutoff`: its access token expired
/// before then and there is no refresh token to get another.
pub fn expired(value: &[u8], cutoff: UnixTime) -> bool {
    serde_json::from_slice::<KeptTokens>(value)
        .is_ok_and(|r| !r.tokens.refreshable && r.tokens.expires_at.is_some_and(|at| at < cutoff))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: &str, refreshable: bool, expires_at: Option<UnixTime>) -> KeptTokens {
        KeptTokens {
            upstream: "corp".into(),
            user_id: user.into(),
            tokens: SealedTokens {
                sealed: "c2VhbGVk".into(),
                expires_at,
                scope: Some("openid".into()),
                refreshable,
            },
            stored_at: 1,
        }
    }

    #[test]
    fn records_are_per_user_and_upstream_removed_with_the_user_and_only_if_unchanged() {
        let (_dir, store) = super::super::temporary();
        let store: &dyn Store = &store;
        put(store, &record("u1", true, Some(10))).unwrap();
        put(store, &record("u2", false, None)).unwrap();
        let read = get(store, "corp", "u1").unwrap().unwrap();
        assert_eq!(read.record, record("u1", true, Some(10)));
        assert!(get(store, "other", "u1").unwrap().is_none());
        // Replaced after it was read: the removal leaves the new tokens.
        put(store, &record("u1", true, Some(20))).unwrap();
        assert!(!remove_unchanged(store, &read).unwrap());
        let read = get(store, "corp", "u1").unwrap().unwrap();
        assert!(remove_unchanged(store, &read).unwrap());
        assert!(get(store, "corp", "u1").unwrap().is_none());
        remove_all_of(store, "u2").unwrap();
        assert!(get(store, "corp", "u2").unwrap().is_none());
    }

    #[test]
    fn only_expired_tokens_without_a_refresh_token_are_useless() {
        let bytes = |r: KeptTokens| super::super::encode(&r).unwrap();
        assert!(expired(&bytes(record("u", false, Some(5))), 6));
        assert!(!expired(&bytes(record("u", false, Some(5))), 5));
        assert!(!expired(&bytes(record("u", true, Some(5))), 6));
        assert!(!expired(&bytes(record("u", false, None)), 6));
        assert!(!expired(b"not json", 6));
    }
}
