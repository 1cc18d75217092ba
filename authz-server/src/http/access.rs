//! Who may call a resource endpoint of this server: the request's `Authorization` and `DPoP`
//! headers, checked by the provider against the endpoint's [`Requirement`]
//! ([`crate::tokens::resource`]).

use axum::http::{HeaderMap, Method, header};

use super::SharedState;
use crate::error::Result;
use crate::tokens::resource::{AuthenticatedUser, PresentedToken, ProofUse, Requirement};

/// The user of a request whose access token meets `requirement`.
pub(super) fn authorized(
    state: &SharedState,
    headers: &HeaderMap,
    proof_use: ProofUse<'_>,
    requirement: Requirement<'_>,
) -> Result<AuthenticatedUser> {
    let dpop = super::dpop_headers(headers);
    let presented = PresentedToken {
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        dpop: &dpop,
    };
    state.authorize_token(presented, proof_use, requirement, state.now())
}

/// [`authorized`] for a resource request of `method` at `path` (a bound token's proof must be
/// for this method and URL).
pub(super) fn authorized_at(
    state: &SharedState,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    requirement: Requirement<'_>,
) -> Result<AuthenticatedUser> {
    let htu = state.url(path);
    let proof_use = ProofUse::Resource {
        htm: method.as_str(),
        htu: &htu,
    };
    authorized(state, headers, proof_use, requirement)
}
