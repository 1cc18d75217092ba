//! The user's consents: `GET /consents` lists the clients and scopes granted, `DELETE
//! /consents/{client_id}` withdraws one (the next authorization asks again). Both need the
//! user's access token with `openid`. A first-party client's token manages every consent of
//! the user; a third-party client's token sees and withdraws only its own (a "disconnect"
//! button), never what the user granted other apps.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::SharedState;
use crate::error::{Error, Result};
use crate::tokens::resource::Requirement;
use crate::users::User;

/// The user, and the one client whose consent the caller may manage (`None`: every client).
fn user(
    state: &SharedState,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
) -> Result<(User, Option<String>)> {
    let caller = super::access::authorized_at(
        state,
        headers,
        method,
        path,
        Requirement {
            scope: "openid",
            first_party: false,
            what: "the consent endpoints",
            role: None,
        },
    )?;
    let only = state.consents_managed_by(&caller.client_id)?;
    Ok((caller.user, only))
}

fn not_found() -> Error {
    Error::not_found("consent-not-found", "no consent for this client")
}

/// `GET /consents`.
pub async fn list(
    State(state): State<SharedState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Json<Value>> {
    let (user, only) = user(&state, &headers, &method, "/consents")?;
    let consents = state.consents_of(&user.id, only.as_deref())?;
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
        return Err(not_found());
    }
    if state.withdraw_consent(&user.id, &client_id)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}
