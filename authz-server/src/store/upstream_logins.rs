//! Upstream logins in progress (`upstream_logins`, by the SHA-256 of their `state`): what a
//! login through an upstream identity provider needs when the browser comes back to the
//! callback — the upstream, the `nonce` and PKCE verifier sent, and the authorization request
//! waiting for the login. Taken once; swept once expired ([`super::cleanup`]).

use std::collections::HashMap;

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

use super::{Store, digest, trees};
use crate::error::Result;

/// A login sent to an upstream, waiting for its callback (`Debug` leaves out the nonce and the
/// PKCE verifier).
#[derive(Clone, Serialize, Deserialize)]
pub struct UpstreamLogin {
    /// The upstream's configured id.
    pub upstream: String,
    /// The `nonce` sent; the ID token must carry it.
    pub nonce: String,
    /// The PKCE verifier whose S256 challenge was sent.
    pub code_verifier: String,
    /// The parameters of our authorization request waiting for the login (empty for another
    /// purpose).
    pub params: HashMap<String, String>,
    /// Expiry.
    pub expires_at: UnixTime,
    /// What the login is for.
    #[serde(default)]
    pub purpose: Purpose,
}

/// What a login through an upstream is for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Purpose {
    /// Our authorization request (its `params`) waits for it.
    #[default]
    Authorize,
    /// A page of ours waits for it (the device page, the account page): a session, then back
    /// to `path`.
    Page {
        /// The local path to go back to.
        path: String,
    },
    /// The signed-in user `user_id` links this upstream identity to the account from the
    /// account page.
    Link {
        /// The account to link the identity to.
        user_id: String,
        /// The session of the account page that started the link: the link is made only
        /// while it lives.
        #[serde(default)]
        session_id: Option<String>,
    },
}

impl std::fmt::Debug for UpstreamLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamLogin")
            .field("upstream", &self.upstream)
            .field("params", &self.params)
            .field("expires_at", &self.expires_at)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

/// Stores a login under its `state`.
pub fn insert(store: &dyn Store, state: &str, login: &UpstreamLogin) -> Result<()> {
    Ok(store.put_json(trees::UPSTREAM_LOGINS, &digest(state), login)?)
}

/// Takes the login of `state` (once: a second take finds nothing).
pub fn take(store: &dyn Store, state: &str) -> Result<Option<UpstreamLogin>> {
    Ok(store.take_json(trees::UPSTREAM_LOGINS, &digest(state))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_taken_once_and_swept_once_expired() {
        let (_dir, store) = super::super::temporary();
        let store: &dyn Store = &store;
        let login = |expires_at| UpstreamLogin {
            upstream: "corp".into(),
            nonce: "n".into(),
            code_verifier: "v".into(),
            params: HashMap::new(),
            purpose: Purpose::default(),
            expires_at,
        };
        assert!(!format!("{:?}", login(1)).contains("\"v\""));
        insert(store, "s1", &login(100)).unwrap();
        assert!(take(store, "s1").unwrap().is_some());
        assert!(take(store, "s1").unwrap().is_none());
        insert(store, "s2", &login(100)).unwrap();
        insert(store, "s3", &login(1000)).unwrap();
        let lifetimes = crate::config::Lifetimes::default();
        super::super::cleanup::sweep(store, 200, 0, &lifetimes).unwrap();
        assert!(take(store, "s2").unwrap().is_none());
        assert!(take(store, "s3").unwrap().is_some());
    }
}
