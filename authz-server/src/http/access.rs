//! Who may call a resource endpoint of this server: a valid access token (bearer or DPoP, see
//! [`crate::tokens::authenticate`]) is not enough. Each endpoint names a [`Requirement`] — the
//! scope the token must carry, and whether its client must be first-party — and the client must
//! still be registered and still allowed that scope. Anything else is 403 `insufficient_scope`
//! (RFC 6750 §3.1) naming the scope, before the token's user is even looked up.

use axum::http::HeaderMap;

use super::SharedState;
use crate::error::{Error, Result};
use crate::tokens::{AuthenticatedUser, ProofUse, authenticate};

/// What an endpoint asks of the token.
#[derive(Debug, Clone, Copy)]
pub(super) struct Requirement<'a> {
    /// The scope the token must carry.
    pub scope: &'a str,
    /// Only tokens of first-party clients.
    pub first_party: bool,
    /// What the endpoints are, for the refusal ("the device endpoints").
    pub what: &'static str,
}

/// The user of a request whose access token meets `requirement`.
pub(super) fn authorized(
    state: &SharedState,
    headers: &HeaderMap,
    proof_use: ProofUse<'_>,
    requirement: Requirement<'_>,
) -> Result<AuthenticatedUser> {
    let auth = authenticate(
        state.store(),
        &state.issuer(),
        headers,
        proof_use,
        state.clock.now(),
    )?;
    let Requirement {
        scope,
        first_party,
        what,
    } = requirement;
    let refuse = |label: &'static str, description: String| Error::InsufficientScope {
        scope: scope.to_owned(),
        description,
        label,
        scheme: auth.scheme,
    };
    if !crate::scopes::has(&auth.scope, scope) {
        return Err(refuse(
            "insufficient-scope",
            format!("{what} need an access token with the {scope} scope"),
        ));
    }
    let device_scope = &state.config.device_access.scope;
    let client = crate::users::client(state.store(), &auth.client_id)?;
    if !client
        .as_ref()
        .is_some_and(|c| c.allowed_scopes(device_scope).iter().any(|s| s == scope))
    {
        return Err(refuse(
            "insufficient-scope",
            format!(
                "the client {} is no longer allowed the {scope} scope",
                auth.client_id
            ),
        ));
    }
    if first_party && !client.is_some_and(|c| c.is_first_party()) {
        return Err(refuse(
            "first-party-client-required",
            format!(
                "{what} accept tokens of first-party clients only, not of {}",
                auth.client_id
            ),
        ));
    }
    auth.into_user(state.store())
}
