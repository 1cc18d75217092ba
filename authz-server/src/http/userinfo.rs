//! `/userinfo` (OIDC Core §5.3), protected by our access tokens, DPoP-bound or bearer, issued
//! with the `openid` scope (a client-credentials token, or one granted only other scopes, gets
//! 403 `insufficient_scope`). It answers the claims the token's scope releases
//! ([`crate::identity::claims`]), leaving out those without a value, and with the
//! `ga4gh_passport_v1` scope — while the client is still allowed it — the user's Passport:
//! `ga4gh_passport_v1`, an array of visas
//! ([`crate::passports`]; AAI profile v1.2, "Visas provided by a Broker via UserInfo Endpoint").

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
    let mut claims = crate::identity::claims::user_claims(&caller.user, &caller.scope)?;
    // The Passport only while the client is still allowed its scope (`client set-scopes` takes
    // it away at once, as for the scope an endpoint needs): its visas are minted at each call.
    let passport = crate::scopes::GA4GH_PASSPORT;
    let still_allowed =
        crate::oauth_clients::get(state.store(), &caller.client_id)?.is_some_and(|c| {
            crate::scopes::allowed(&c, state.device_scope())
                .iter()
                .any(|s| s == passport)
        });
    if crate::scopes::has(&caller.scope, passport) && still_allowed {
        claims.insert(
            proto::visa::PASSPORT_CLAIM.into(),
            state.passport(&caller.user)?.into(),
        );
    }
    Ok(Json(Value::Object(claims)))
}
