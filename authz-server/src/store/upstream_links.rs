//! Links of upstream identities to local accounts (`upstream_links`, by the SHA-256 of the
//! issuer and the subject): each (issuer, subject) belongs to exactly one local user, claimed by
//! compare-and-swap so two first logins of one identity cannot link it twice.

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

use super::{Store, digest, encode, trees};
use crate::error::Result;

/// An upstream identity linked to a local user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamLink {
    /// The upstream's issuer (`iss`).
    pub issuer: String,
    /// The user's subject there (`sub`).
    pub subject: String,
    /// The local user's id.
    pub user_id: String,
    /// The configured upstream it was linked through.
    pub upstream: String,
    /// When.
    pub linked_at: UnixTime,
}

/// The key of (issuer, subject): unambiguous whatever either holds.
fn key(issuer: &str, subject: &str) -> String {
    format!("{}.{}", digest(issuer), digest(subject))
}

/// The link of (issuer, subject), if any.
pub fn get(store: &dyn Store, issuer: &str, subject: &str) -> Result<Option<UpstreamLink>> {
    Ok(store.get_json(trees::UPSTREAM_LINKS, &key(issuer, subject))?)
}

/// Records a link unless (issuer, subject) is linked already; false when it was.
pub fn insert(store: &dyn Store, link: &UpstreamLink) -> Result<bool> {
    let bytes = encode(link)?;
    Ok(store.compare_and_swap(
        trees::UPSTREAM_LINKS,
        &key(&link.issuer, &link.subject),
        None,
        Some(&bytes),
    )?)
}

/// Removes a link that is still exactly `link` as read (compare-and-swap: every link is stored
/// as the encoding of its record, so the record read encodes to the bytes read); false when it
/// was changed or removed meanwhile.
pub fn remove(store: &dyn Store, link: &UpstreamLink) -> Result<bool> {
    let bytes = encode(link)?;
    Ok(store.compare_and_swap(
        trees::UPSTREAM_LINKS,
        &key(&link.issuer, &link.subject),
        Some(&bytes),
        None,
    )?)
}

/// Every link of the user `user_id`.
pub fn of_user(store: &dyn Store, user_id: &str) -> Result<Vec<UpstreamLink>> {
    Ok(store
        .scan_json::<UpstreamLink>(trees::UPSTREAM_LINKS, "")?
        .into_iter()
        .filter(|l| l.user_id == user_id)
        .collect())
}

/// Whether the user of `link` holds another identity of the same source (`upstream`), with
/// another subject: one identity per source and account.
pub fn another_of_source(store: &dyn Store, link: &UpstreamLink) -> Result<bool> {
    Ok(of_user(store, &link.user_id)?
        .iter()
        .any(|l| l.upstream == link.upstream && l.subject != link.subject))
}

/// Removes every link of the user `user_id` (the user is being removed).
pub fn remove_all_of(store: &dyn Store, user_id: &str) -> Result<()> {
    for link in of_user(store, user_id)? {
        remove(store, &link)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_links_to_one_user_only() {
        let (_dir, store) = super::super::temporary();
        let store: &dyn Store = &store;
        let link = UpstreamLink {
            issuer: "https://idp.test".into(),
            subject: "s1".into(),
            user_id: "u1".into(),
            upstream: "corp".into(),
            linked_at: 1,
        };
        assert!(insert(store, &link).unwrap());
        let rival = UpstreamLink {
            user_id: "u2".into(),
            ..link.clone()
        };
        assert!(!insert(store, &rival).unwrap());
        assert_eq!(
            get(store, "https://idp.test", "s1").unwrap(),
            Some(link.clone())
        );
        assert_eq!(get(store, "https://idp.test/", "s1").unwrap(), None);
        assert!(!remove(store, &rival).unwrap());
        assert!(get(store, "https://idp.test", "s1").unwrap().is_some());
        remove_all_of(store, "u1").unwrap();
        assert!(get(store, "https://idp.test", "s1").unwrap().is_none());
    }
}
