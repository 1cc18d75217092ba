//! `POST /introspect` (RFC 7662, confidential clients) and `POST /revoke` (RFC 7009, any
//! client, of its own tokens): the client authenticated, the token judged and revoked by the
//! provider ([`crate::tokens::introspection`]).

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::{Value, json};

use super::SharedState;
use super::client_auth::authenticate_client;
use crate::error::{Error, Result};
use crate::tokens::introspection::Introspection;

/// The members of an active access token's claims an introspection answer repeats.
const ACCESS_TOKEN_MEMBERS: [&str; 9] = [
    "iss",
    "sub",
    "aud",
    "client_id",
    "scope",
    "jti",
    "iat",
    "exp",
    "cnf",
];

fn render(introspection: Introspection) -> Value {
    match introspection {
        Introspection::AccessToken(claims) => {
            // RFC 7662 §2.2: the token type of RFC 6749 §5.1 (`Bearer`, or `DPoP` for a
            // DPoP-bound token, RFC 9449 §5).
            let token_type = if claims.get("cnf").is_some() {
                "DPoP"
            } else {
                "Bearer"
            };
            let mut body = json!({"active": true, "token_type": token_type});
            for name in ACCESS_TOKEN_MEMBERS {
                if let Some(v) = claims.get(name) {
                    body[name] = v.clone();
                }
            }
            body
        }
        Introspection::RefreshToken(record) => {
            let mut body = json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": record.client_id,
                "sub": record.user_id,
                "scope": record.scope,
                "exp": record.expires_at,
            });
            if let Some(jkt) = record.jkt {
                body["cnf"] = json!({ "jkt": jkt });
            }
            body
        }
        Introspection::Inactive => json!({ "active": false }),
    }
}

/// `POST /introspect`.
pub async fn introspect(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response> {
    let client = authenticate_client(&state, &headers, &form)?;
    if !client.authenticated {
        return Err(Error::InvalidClient(
            "introspection is for confidential clients".into(),
        ));
    }
    let token = form.get("token").map(String::as_str).unwrap_or_default();
    let introspection = state.introspect(token, state.now())?;
    Ok(Json(render(introspection)).into_response())
}

/// `POST /revoke`: always 200 for a well-formed request (RFC 7009 §2.2).
pub async fn revoke(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response> {
    let client = authenticate_client(&state, &headers, &form)?;
    let token = form
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::invalid_request("token is missing"))?;
    state.revoke_token(&client.client.id, token, state.now())?;
    Ok(StatusCode::OK.into_response())
}
