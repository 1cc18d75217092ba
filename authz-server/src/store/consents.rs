//! Consents (`consents`, by `{user id}/{client id}`): the scopes a user granted a third-party
//! client; their withdrawals (`withdrawals`, same key: when the user last withdrew one); and
//! consent tickets (`consent_tickets`): authorizations waiting for the user's answer.

use std::collections::HashMap;

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

use super::{Store, trees};
use crate::error::Result;

/// What a user granted a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// The client.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Scopes the user withheld on the consent page: not asked again, never released.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<String>,
    /// When.
    pub granted_at: UnixTime,
}

/// An authorization waiting for the user's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ticket {
    /// The user who logged in.
    pub user_id: String,
    /// The authorization request parameters.
    pub params: HashMap<String, String>,
    /// Expiry.
    pub expires_at: UnixTime,
    /// When the user authenticated (`auth_time`).
    #[serde(default)]
    pub auth_time: UnixTime,
    /// How (`amr`).
    #[serde(default)]
    pub amr: Vec<String>,
    /// The browser session holding the login (`sid`).
    #[serde(default)]
    pub sid: Option<String>,
}

fn key(user_id: &str, client_id: &str) -> String {
    format!("{user_id}/{client_id}")
}

/// What the user granted the client.
pub fn get(store: &dyn Store, user_id: &str, client_id: &str) -> Result<Option<Consent>> {
    Ok(store.get_json(trees::CONSENTS, &key(user_id, client_id))?)
}

/// Stores what the user granted a client.
pub fn put(store: &dyn Store, user_id: &str, consent: &Consent) -> Result<()> {
    Ok(store.put_json(trees::CONSENTS, &key(user_id, &consent.client_id), consent)?)
}

/// Everything the user granted, by client.
pub fn list(store: &dyn Store, user_id: &str) -> Result<Vec<Consent>> {
    Ok(store.scan_json(trees::CONSENTS, &format!("{user_id}/"))?)
}

/// Removes the user's consent for a client and records when: false (nothing recorded) if
/// there was none.
pub fn withdraw(store: &dyn Store, user_id: &str, client_id: &str, now: UnixTime) -> Result<bool> {
    let key = key(user_id, client_id);
    let existed = store.take(trees::CONSENTS, &key)?.is_some();
    if existed {
        store.put_json(trees::WITHDRAWALS, &key, &now)?;
    }
    Ok(existed)
}

/// When the user last withdrew the client's consent, if ever.
pub fn withdrawn_at(store: &dyn Store, user_id: &str, client_id: &str) -> Result<Option<UnixTime>> {
    Ok(store.get_json(trees::WITHDRAWALS, &key(user_id, client_id))?)
}

/// Stores a ticket under its id.
pub fn park(store: &dyn Store, id: &str, ticket: &Ticket) -> Result<()> {
    Ok(store.put_json(trees::CONSENT_TICKETS, id, ticket)?)
}

/// Takes a ticket (once).
pub fn take_ticket(store: &dyn Store, id: &str) -> Result<Option<Ticket>> {
    Ok(store.take_json(trees::CONSENT_TICKETS, id)?)
}
