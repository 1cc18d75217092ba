//! Token introspection (RFC 7662) and revocation (RFC 7009). Introspection is for confidential
//! clients; revocation for any client, of its own tokens. Access tokens are our RFC 9068 JWTs
//! (revoked by `jti`), refresh tokens our opaque ones (revoked with their family).

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use proto::jws::UnverifiedJws;
use serde_json::json;

use super::SharedState;
use super::client_auth::authenticate_client;
use crate::error::{Error, Result};
use crate::store::trees;

/// The claims of one of our access tokens that is still active.
fn active_access_token(
    state: &SharedState,
    token: &str,
    now: i64,
) -> Result<Option<proto::jws::Claims>> {
    let Ok(jws) = UnverifiedJws::from_compact(token) else {
        return Ok(None);
    };
    if jws.header().typ() != Some("at+jwt") {
        return Ok(None);
    }
    let issuer = state.issuer();
    let Some(key) = issuer.key_for(jws.header().kid()).cloned() else {
        return Ok(None);
    };
    let Ok(claims) = jws.verify(&key).and_then(|v| v.claims()) else {
        return Ok(None);
    };
    let live = claims.string("iss").ok() == Some(state.base_url.as_str())
        && claims.int("exp").is_ok_and(|exp| exp >= now);
    let revoked = match claims.string("jti") {
        Ok(jti) => state.store().get(trees::REVOKED_TOKENS, jti)?.is_some(),
        Err(_) => true,
    };
    Ok((live && !revoked).then_some(claims))
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
    let now = state.clock.now();
    let body = if let Some(claims) = active_access_token(&state, token, now)? {
        // RFC 7662 §2.2: the token type of RFC 6749 §5.1 (`Bearer`, or `DPoP` for a
        // DPoP-bound token, RFC 9449 §5).
        let token_type = if claims.get("cnf").is_some() {
            "DPoP"
        } else {
            "Bearer"
        };
        let mut body = json!({"active": true, "token_type": token_type});
        for name in [
            "iss",
            "sub",
            "aud",
            "client_id",
            "scope",
            "jti",
            "iat",
            "exp",
            "cnf",
        ] {
            if let Some(v) = claims.get(name) {
                body[name] = v.clone();
            }
        }
        body
    } else if let Some(record) = crate::refresh::peek(state.store(), token, now)? {
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
    } else {
        json!({ "active": false })
    };
    Ok(Json(body).into_response())
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
    let now = state.clock.now();
    if let Some(claims) = active_access_token(&state, token, now)? {
        if claims.string("client_id").ok() == Some(client.client.id.as_str())
            && let Ok(jti) = claims.string("jti")
        {
            crate::tokens::revoke(state.store(), jti, now)?;
            state.store().flush()?;
        }
    } else {
        crate::refresh::revoke(state.store(), token, &client.client.id, now)?;
    }
    Ok(StatusCode::OK.into_response())
}
