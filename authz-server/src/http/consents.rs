//! The user's consents: `GET /consents` lists the clients and scopes granted, `DELETE
//! /consents/{client_id}` revokes one (the next authorization asks again). Both need the
//! user's access token with `openid`. A first-party client's token manages every consent of
//! the user; a third-party client's token sees and revokes only its own (a "disconnect" button),
//! never what the user granted other apps.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::SharedState;
use crate::error::{Error, Result};
use crate::tokens::ProofUse;

/// The user, and the one client whose consent the caller may manage (`None`: every client).
fn user(
    state: &SharedState,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
) -> Result<(crate::users::User, Option<String>)> {
    let htu = state.url(path);
    let auth = super::access::authorized(
        state,
        headers,
        ProofUse::Resource {
            htm: method.as_str(),
            htu: &htu,
        },
        super::access::Requirement {
            scope: "openid",
            first_party: false,
            what: "the consent endpoints",
        },
    )?;
    let first_party =
        crate::users::client(state.store(), &auth.client_id)?.is_some_and(|c| c.is_first_party());
    let only = (!first_party).then_some(auth.client_id);
    Ok((auth.user, only))
}

/// `GET /consents`.
pub async fn list(
    State(state): State<SharedState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Json<Value>> {
    let (user, only) = user(&state, &headers, &method, "/consents")?;
    let consents: Vec<_> = crate::consents::list(state.store(), &user.id)?
        .into_iter()
        .filter(|c| only.as_ref().is_none_or(|id| *id == c.client_id))
        .collect();
    Ok(Json(json!({ "consents": consents })))
}

/// `DELETE /consents/{client_id}`.
pub async fn revoke(
    State(state): State<SharedState>,
    method: Method,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Result<StatusCode> {
    let (user, only) = user(&state, &headers, &method, &format!("/consents/{client_id}"))?;
    if only.as_ref().is_some_and(|id| *id != client_id) {
        return Err(Error::not_found(
            "consent-not-found",
            "no consent for this client",
        ));
    }
    if crate::consents::revoke(state.store(), &user.id, &client_id, state.clock.now())? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found(
            "consent-not-found",
            "no consent for this client",
        ))
    }
}
