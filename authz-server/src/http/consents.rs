//! The user's consents: `GET /consents` lists the clients and scopes granted, `DELETE
//! /consents/{client_id}` revokes one (the next authorization asks again). Both need the
//! user's access token.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::SharedState;
use crate::error::{Error, Result};
use crate::tokens::{ProofUse, authenticate};

fn user(
    state: &SharedState,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
) -> Result<crate::users::User> {
    let htu = state.url(path);
    let auth = authenticate(
        state.store(),
        &state.issuer(),
        headers,
        ProofUse::Resource {
            htm: method.as_str(),
            htu: &htu,
        },
        state.clock.now(),
    )?;
    Ok(auth.user)
}

/// `GET /consents`.
pub async fn list(
    State(state): State<SharedState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Json<Value>> {
    let user = user(&state, &headers, &method, "/consents")?;
    Ok(Json(
        json!({ "consents": crate::consents::list(state.store(), &user.id)? }),
    ))
}

/// `DELETE /consents/{client_id}`.
pub async fn revoke(
    State(state): State<SharedState>,
    method: Method,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Result<StatusCode> {
    let user = user(&state, &headers, &method, &format!("/consents/{client_id}"))?;
    if crate::consents::revoke(state.store(), &user.id, &client_id)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found(
            "consent-not-found",
            "no consent for this client",
        ))
    }
}
