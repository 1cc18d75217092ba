//! What the background sweep removes from the authorization server's store (see
//! [`server_kit::cleanup`]): every single-use or short-lived record once it has expired and
//! the configured grace has passed.
//!
//! - authorization codes, backend nonces, consent tickets, device codes, refresh tokens and
//!   refresh families, DPoP, client-assertion and grant-assertion `jti`s, upstream logins, link
//!   tickets and browser sessions, and visas (imported ones once the last of a login's has
//!   expired): by their `expires_at`;
//! - authorization codes are kept one access-token lifetime longer, so a replayed code still
//!   revokes the tokens it produced while those could be in use (RFC 6749 §4.1.2);
//! - token revocations once the revoked token has expired by itself, and consent withdrawals
//!   once everything granted before them has;
//! - the user code of each device authorization removed;
//! - kept upstream tokens whose access token expired, when no refresh token is kept with it,
//!   and leases on refreshing them left by a process that stopped before releasing one.
//!
//! Users, clients, devices, consents and upstream links are never removed.

use proto::clock::UnixTime;
use server_kit::cleanup::{json_time, remove_expired, remove_where};

use super::device_codes::DeviceGrant;
use super::{Store, trees};
use crate::config::Lifetimes;
use crate::error::Result;

/// Removes what expired before `now - keep`; returns how many records went.
pub fn sweep(store: &dyn Store, now: UnixTime, keep: i64, lifetimes: &Lifetimes) -> Result<usize> {
    let cutoff = now - keep;
    let longest_access = lifetimes.access_token.max(lifetimes.client_access_token);
    let mut removed = 0;
    for tree in [
        trees::BACKEND_NONCES,
        trees::CONSENT_TICKETS,
        trees::REFRESH_TOKENS,
        trees::REFRESH_FAMILIES,
        trees::DPOP_JTIS,
        trees::CLIENT_ASSERTION_JTIS,
        trees::JWT_BEARER_JTIS,
        trees::UPSTREAM_LOGINS,
        trees::UPSTREAM_LINK_TICKETS,
        trees::SESSIONS,
        trees::IMPORTED_VISAS,
        trees::ASSERTED_VISAS,
        trees::REFRESH_LEASES,
    ] {
        removed += remove_expired(store, tree, "expires_at", cutoff)?;
    }
    removed += remove_expired(store, trees::CODES, "expires_at", cutoff - longest_access)?;
    // Shared rate-limit buckets (replicas) once full again.
    removed += server_kit::rate_limit::sweep(store, now)?;
    removed += remove_expired(
        store,
        trees::REVOKED_TOKENS,
        "revoked_at",
        cutoff - longest_access,
    )?;
    // A withdrawal matters while something granted before it could still be used.
    let longest_grant = lifetimes.refresh_token.max(longest_access);
    removed += remove_where(store, trees::WITHDRAWALS, |_, value| {
        serde_json::from_slice::<UnixTime>(value).is_ok_and(|at| at < cutoff - longest_grant)
    })?
    .len();
    removed += remove_where(store, trees::UPSTREAM_TOKENS, |_, value| {
        super::upstream_tokens::expired(value, cutoff)
    })?
    .len();
    let grants = remove_where(store, trees::DEVICE_CODES, |_, value| {
        json_time(value, "expires_at").is_some_and(|t| t < cutoff)
    })?;
    for (grant_key, value) in &grants {
        if let Ok(grant) = serde_json::from_slice::<DeviceGrant>(value) {
            let points_here = super::encode(grant_key)?;
            store.compare_and_swap(
                trees::USER_CODES,
                &grant.user_code,
                Some(&points_here),
                None,
            )?;
        }
    }
    Ok(removed + grants.len())
}
