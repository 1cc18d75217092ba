//! `/userinfo` (OIDC Core §5.3), protected by our access tokens, DPoP-bound or bearer.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use serde_json::{Value, json};

use super::SharedState;
use crate::error::Result;
use crate::tokens::{ProofUse, authenticate};

/// `GET`/`POST /userinfo`.
pub async fn userinfo(
    State(state): State<SharedState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Json<Value>> {
    let htu = state.url("/userinfo");
    let proof_use = ProofUse::Resource {
        htm: method.as_str(),
        htu: &htu,
    };
    let auth = authenticate(
        state.store(),
        &state.issuer(),
        &headers,
        proof_use,
        state.clock.now(),
    )?;
    let user = auth.user;
    Ok(Json(json!({
        "sub": user.id,
        "name": user.name,
        "preferred_username": format!("{}@{}", user.handle, user.domain),
        "handle": user.handle_uri()?.to_uri(),
        "team": user.team,
        "domain": user.domain,
    })))
}
