//! Consent (OIDC Core §3.1.2.4): third-party clients get codes only for scopes the user granted
//! them. Grants are remembered per user and client and can be withdrawn, which voids what the
//! client was granted for the user until then; between the login and the user's answer the
//! authorization waits under a single-use ticket. The records are kept by
//! [`crate::store::consents`].

use std::collections::HashMap;

use proto::clock::UnixTime;

pub use crate::store::consents::{Consent, Ticket};

use crate::error::Result;
use crate::provider::Provider;
use crate::sessions::Authentication;
use crate::store::{self, Store};

/// How long the consent page may stay open, in seconds.
pub const TICKET_TTL: i64 = 600;

/// Whether the user already granted the client every scope of `scope`.
pub fn covers(store: &dyn Store, user_id: &str, client_id: &str, scope: &str) -> Result<bool> {
    let Some(consent) = store::consents::get(store, user_id, client_id)? else {
        return Ok(false);
    };
    Ok(crate::scopes::split(scope).all(|s| consent.scopes.iter().any(|c| c == s)))
}

/// Records a grant (adding to earlier ones). Durable on return.
pub fn grant(
    store: &dyn Store,
    user_id: &str,
    client_id: &str,
    scope: &str,
    now: UnixTime,
) -> Result<()> {
    let mut consent = store::consents::get(store, user_id, client_id)?.unwrap_or(Consent {
        client_id: client_id.to_owned(),
        scopes: Vec::new(),
        granted_at: now,
    });
    for s in crate::scopes::split(scope) {
        if !consent.scopes.iter().any(|c| c == s) {
            consent.scopes.push(s.to_owned());
        }
    }
    consent.granted_at = now;
    store::consents::put(store, user_id, &consent)?;
    store::flush(store)
}

impl Provider {
    /// Which consents a token of `client_id` may see and withdraw: a first-party client's
    /// every consent of the user (`None`), a third-party client's only its own.
    pub fn consents_managed_by(&self, client_id: &str) -> Result<Option<String>> {
        let first_party = self
            .oauth_client(client_id)?
            .is_some_and(|c| c.is_first_party());
        Ok((!first_party).then(|| client_id.to_owned()))
    }

    /// The user's consents; with `only`, the consent of that client alone.
    pub fn consents_of(&self, user_id: &str, only: Option<&str>) -> Result<Vec<Consent>> {
        Ok(store::consents::list(self.store(), user_id)?
            .into_iter()
            .filter(|c| only.is_none_or(|id| id == c.client_id))
            .collect())
    }

    /// Withdraws the user's consent for a client ([`withdraw`]).
    pub fn withdraw_consent(&self, user_id: &str, client_id: &str) -> Result<bool> {
        withdraw(self.store(), user_id, client_id, self.now())
    }
}

/// Withdraws the user's consent for a client: the consent goes (the next authorization asks
/// again), and so does everything already granted to the client for the user — its access
/// tokens and refresh families issued until `now` stop working (see [`withdrawn`]). False if
/// there was no consent. Durable on return.
pub fn withdraw(store: &dyn Store, user_id: &str, client_id: &str, now: UnixTime) -> Result<bool> {
    let existed = store::consents::withdraw(store, user_id, client_id, now)?;
    store::flush(store)?;
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
    Ok(
        store::consents::withdrawn_at(store, user_id, client_id)?
            .is_some_and(|at| granted_at <= at),
    )
}

/// Parks an authorization (its request parameters) of the logged-in user until the user answers;
/// returns the ticket.
pub fn park(
    store: &dyn Store,
    auth: &Authentication,
    params: HashMap<String, String>,
    now: UnixTime,
) -> Result<String> {
    let id = proto::random::token(256);
    let ticket = Ticket {
        user_id: auth.user.id.clone(),
        params,
        expires_at: now + TICKET_TTL,
        auth_time: auth.auth_time,
        amr: auth.amr.clone(),
        sid: auth.session_id.clone(),
    };
    store::consents::park(store, &id, &ticket)?;
    Ok(id)
}

/// Takes a parked authorization (once); `None` if unknown or expired.
pub fn take(store: &dyn Store, id: &str, now: UnixTime) -> Result<Option<Ticket>> {
    Ok(store::consents::take_ticket(store, id)?.filter(|t| t.expires_at >= now))
}
