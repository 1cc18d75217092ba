//! OpenID Provider / OAuth authorization server metadata (OIDC Discovery, RFC 8414) and JWKS.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::SharedState;

/// The metadata document, served at both well-known paths.
pub async fn metadata(State(state): State<SharedState>) -> Json<Value> {
    Json(json!({
        "issuer": state.base_url,
        "authorization_endpoint": state.url("/authorize"),
        "token_endpoint": state.url("/token"),
        "userinfo_endpoint": state.url("/userinfo"),
        "jwks_uri": state.url("/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"],
        "device_authorization_endpoint": state.url("/device_authorization"),
        "introspection_endpoint": state.url("/introspect"),
        "revocation_endpoint": state.url("/revoke"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [state.key.algorithm().name()],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384", "EdDSA", "RS256"],
        "scopes_supported": ["openid", "profile", "offline_access", "wire_client_id", state.config.device_access.scope],
        "claims_supported": ["sub", "iss", "aud", "name", "preferred_username", "handle", "team", "keyauth", "acme_aud"],
        "claims_parameter_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "dpop_signing_alg_values_supported": ["ES256", "ES384", "EdDSA", "RS256"],
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
                map.insert("alg".into(), state.key.algorithm().name().into());
            }
            key
        })
        .collect();
    Json(json!({ "keys": keys }))
}
