//! `/userinfo` (OIDC Core §5.3), protected by our access tokens, DPoP-bound or bearer, issued
//! with the `openid` scope (a client-credentials token, or one granted only other scopes, gets
//! 403 `insufficient_scope`). It answers the claims the token's scope releases
//! ([`crate::claims`]), leaving out those without a value.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use serde_json::Value;

use super::SharedState;
use crate::error::Result;
use crate::tokens::ProofUse;

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
    let auth = super::access::authorized(
        &state,
        &headers,
        proof_use,
        super::access::Requirement {
            scope: "openid",
            first_party: false,
            what: "the userinfo endpoint",
        },
    )?;
    Ok(Json(Value::Object(crate::claims::user_claims(
        &auth.user,
        &auth.scope,
    )?)))
}
