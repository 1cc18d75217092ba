//! Upstream identities waiting to be linked (`upstream_link_tickets`, by the SHA-256 of their
//! ticket): a verified upstream identity no account is linked to, under the `link` first-login
//! policy, with the upstream's tokens of that login (sealed), until the user logs in to the
//! local account it is to be linked to. Taken once; swept
//! once expired ([`super::cleanup`]).

use std::collections::HashMap;

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

use super::{Store, digest, trees};
use crate::error::Result;

/// A verified upstream identity waiting for the local login that links it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLink {
    /// The upstream's configured id.
    pub upstream: String,
    /// Its issuer.
    pub issuer: String,
    /// The user's subject there.
    pub subject: String,
    /// The parameters of our authorization request waiting for the login.
    pub params: HashMap<String, String>,
    /// Expiry.
    pub expires_at: UnixTime,
    /// What the upstream login was for.
    #[serde(default)]
    pub purpose: super::upstream_logins::Purpose,
    /// The roles and groups the upstream's claims give, for the account once linked.
    #[serde(default)]
    pub authorization: crate::federation::accounts::MappedAuthorization,
    /// The visas the upstream released (screened; `None` when its visas are not imported),
    /// for the account once linked.
    #[serde(default)]
    pub visas: Option<Vec<super::imported_visas::ImportedVisa>>,
    /// The upstream's tokens of the login, sealed for this ticket, kept for the account once
    /// linked.
    #[serde(default)]
    pub tokens: Option<super::upstream_tokens::SealedTokens>,
}

/// The associated data the tokens of the pending link of `ticket` are sealed with.
pub fn seal_key(ticket: &str) -> String {
    format!("link-ticket/{}", digest(ticket))
}

/// Stores a pending link under its ticket.
pub fn insert(store: &dyn Store, ticket: &str, pending: &PendingLink) -> Result<()> {
    Ok(store.put_json(trees::UPSTREAM_LINK_TICKETS, &digest(ticket), pending)?)
}

/// The pending link of `ticket`, left in place.
pub fn get(store: &dyn Store, ticket: &str) -> Result<Option<PendingLink>> {
    Ok(store.get_json(trees::UPSTREAM_LINK_TICKETS, &digest(ticket))?)
}

/// Takes the pending link of `ticket` (once).
pub fn take(store: &dyn Store, ticket: &str) -> Result<Option<PendingLink>> {
    Ok(store.take_json(trees::UPSTREAM_LINK_TICKETS, &digest(ticket))?)
}
