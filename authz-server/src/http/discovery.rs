//! OpenID Provider / OAuth authorization server metadata (OIDC Discovery, RFC 8414) and JWKS.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use proto::dpop::DpopPolicy;
use proto::jws::Algorithm;

use super::SharedState;

/// The metadata document, served at both well-known paths. Every list is taken from what the
/// code does: the grants of [`crate::provider::Provider::grant_types_supported`], the scopes of
/// [`crate::scopes::supported`], the claims of [`crate::identity::claims::RELEASED`] and the
/// algorithms of [`proto::jws::Algorithm::ALL`] (RFC 9864's `Ed25519` beside `EdDSA`).
pub async fn metadata(State(state): State<SharedState>) -> Json<Value> {
    let algorithms: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
    let dpop_algorithms: Vec<&str> = DpopPolicy::rfc9449()
        .algorithms
        .iter()
        .map(|a| a.name())
        .collect();
    let mut claims: Vec<&str> = crate::identity::claims::RELEASED.to_vec();
    claims.extend([
        "iss",
        "aud",
        "azp",
        "auth_time",
        "amr",
        "sid",
        "nonce",
        "at_hash",
        "keyauth",
        "acme_aud",
    ]);
    Json(json!({
        "issuer": state.base_url,
        "authorization_endpoint": state.url("/authorize"),
        "token_endpoint": state.url("/token"),
        "userinfo_endpoint": state.url("/userinfo"),
        "jwks_uri": state.url("/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": state.grant_types_supported(),
        "device_authorization_endpoint": state.url("/device_authorization"),
        "introspection_endpoint": state.url("/introspect"),
        "revocation_endpoint": state.url("/revoke"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [state.signing_key().algorithm().name()],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": algorithms,
        "scopes_supported": crate::scopes::supported(&state.config.device_access.scope),
        "claims_supported": claims,
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "dpop_signing_alg_values_supported": dpop_algorithms,
        "end_session_endpoint": state.url("/logout"),
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
    }))
}

/// The public signing keys: the current one, then retired ones whose tokens may still live.
pub async fn jwks(State(state): State<SharedState>) -> Json<Value> {
    let keys: Vec<Value> = state
        .verification_keys()
        .iter()
        .map(|k| {
            let mut key = k.to_json();
            if let Some(map) = key.as_object_mut() {
                map.insert("use".into(), "sig".into());
                map.insert("alg".into(), state.signing_key().algorithm().name().into());
            }
            key
        })
        .collect();
    Json(json!({ "keys": keys }))
}
