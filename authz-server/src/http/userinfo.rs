//! `/userinfo` (OIDC Core §5.3), protected by our access tokens, DPoP-bound or bearer, issued
//! with the `openid` scope (a client-credentials token, or one granted only other scopes, gets
//! 403 `insufficient_scope`). It answers the claims the token's scope releases
//! ([`crate::identity::claims`]), leaving out those without a value.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use serde_json::Value;

use super::SharedState;
use crate::error::Result;
use crate::tokens::resource::Requirement;

/// `GET`/`POST /userinfo`.
pub async fn userinfo(
    State(state): State<SharedState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Json<Value>> {
    let caller = super::access::authorized_at(
        &state,
        &headers,
        &method,
        "/userinfo",
        Requirement {
            scope: "openid",
            first_party: false,
            what: "the userinfo endpoint",
            role: None,
        },
    )?;
    Ok(Json(Value::Object(crate::identity::claims::user_claims(
        &caller.user,
        &caller.scope,
    )?)))
}
