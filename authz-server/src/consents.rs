//! Consent (OIDC Core §3.1.2.4): third-party clients get codes only for scopes the user granted
//! them. Grants are remembered per user and client and can be revoked; between the login and
//! the user's answer the authorization waits under a single-use ticket.

use std::collections::HashMap;

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::store::{Store, trees};

/// How long the consent page may stay open, in seconds.
pub const TICKET_TTL: i64 = 600;

/// What a user granted a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// The client.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
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
}

fn key(user_id: &str, client_id: &str) -> String {
    format!("{user_id}/{client_id}")
}

fn scopes(scope: &str) -> Vec<String> {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether the user already granted the client every scope of `scope`.
pub fn covers(store: &dyn Store, user_id: &str, client_id: &str, scope: &str) -> Result<bool> {
    let Some(consent) = store.get_json::<Consent>(trees::CONSENTS, &key(user_id, client_id))?
    else {
        return Ok(false);
    };
    Ok(scopes(scope).iter().all(|s| consent.scopes.contains(s)))
}

/// Records a grant (adding to earlier ones).
pub fn grant(
    store: &dyn Store,
    user_id: &str,
    client_id: &str,
    scope: &str,
    now: UnixTime,
) -> Result<()> {
    let k = key(user_id, client_id);
    let mut consent = store
        .get_json::<Consent>(trees::CONSENTS, &k)?
        .unwrap_or(Consent {
            client_id: client_id.to_owned(),
            scopes: Vec::new(),
            granted_at: now,
        });
    for s in scopes(scope) {
        if !consent.scopes.contains(&s) {
            consent.scopes.push(s);
        }
    }
    consent.granted_at = now;
    store.put_json(trees::CONSENTS, &k, &consent)?;
    Ok(store.flush()?)
}

/// The user's grants.
pub fn list(store: &dyn Store, user_id: &str) -> Result<Vec<Consent>> {
    Ok(store.scan_json(trees::CONSENTS, &format!("{user_id}/"))?)
}

/// Withdraws the user's consent for a client: the consent goes (the next authorization asks
/// again), and so does everything already granted to the client for the user — its access
/// tokens and refresh families issued until `now` stop working (see [`withdrawn`]). False if
/// there was no consent.
pub fn revoke(store: &dyn Store, user_id: &str, client_id: &str, now: UnixTime) -> Result<bool> {
    let key = key(user_id, client_id);
    let existed = store.take(trees::CONSENTS, &key)?.is_some();
    if existed {
        store.put_json(trees::WITHDRAWALS, &key, &now)?;
    }
    store.flush()?;
    Ok(existed)
}

/// Whether what was granted to `client_id` for `user_id` at `granted_at` has been withdrawn
/// since.
pub fn withdrawn(
    store: &dyn Store,
    user_id: &str,
    client_id: &str,
    granted_at: UnixTime,
) -> Result<bool> {
    Ok(store
        .get_json::<UnixTime>(trees::WITHDRAWALS, &key(user_id, client_id))?
        .is_some_and(|at| granted_at <= at))
}

/// Parks an authorization until the user answers; returns the ticket.
pub fn park(store: &dyn Store, ticket: &Ticket) -> Result<String> {
    let id = proto::random::token(256);
    store.put_json(trees::CONSENT_TICKETS, &id, ticket)?;
    Ok(id)
}

/// Takes a parked authorization (once); `None` if unknown or expired.
pub fn take(store: &dyn Store, id: &str, now: UnixTime) -> Result<Option<Ticket>> {
    Ok(store
        .take_json::<Ticket>(trees::CONSENT_TICKETS, id)?
        .filter(|t| t.expires_at >= now))
}
