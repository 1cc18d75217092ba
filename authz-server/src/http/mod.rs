//! The HTTP front end: routes, and a fresh `DPoP-Nonce` on every response (request logging is
//! added by [`server_kit::serve`]). Handlers parse the request, authenticate the caller, call a
//! service of the [`Provider`], and render its answer; they return [`crate::Error`]s that
//! render themselves (none builds an error body by hand) and never reach the store.

mod access;
mod account;
mod admin;
mod authorize;
mod client_auth;
mod consent_page;
mod consents;
mod cookies;
mod device_flow;
mod devices;
mod discovery;
mod html;
mod introspect;
mod logout;
mod provenance;
mod signin;
mod token;
mod upstream;
mod userinfo;
mod visas;

use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{get, post};

use crate::provider::Provider;

/// Shared state handle: the provider whose services the handlers call.
pub type SharedState = Arc<Provider>;

/// The values of every `DPoP` header of a request.
fn dpop_headers(headers: &HeaderMap) -> Vec<&[u8]> {
    headers
        .get_all("dpop")
        .iter()
        .map(axum::http::HeaderValue::as_bytes)
        .collect()
}

/// All routes.
pub fn router(state: SharedState) -> Router {
    let routes = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .route("/jwks", get(discovery::jwks))
        .route("/readyz", get(ready))
        .route("/authorize", get(authorize::show).post(authorize::submit))
        .route("/authorize/consent", post(consent_page::answer))
        .route("/authorize/continue", post(authorize::continue_as))
        .route("/upstream/start", post(upstream::start))
        .route("/upstream/callback", get(upstream::callback))
        .route("/upstream/link", post(upstream::link))
        .route("/account", get(account::page))
        .route("/account/login", post(account::login))
        .route("/account/link", post(account::link))
        .route("/account/unlink", post(account::unlink))
        .route("/account/sessions/revoke", post(account::revoke_session))
        .route(
            "/account/consents/withdraw",
            post(account::withdraw_consent),
        )
        .route("/logout", get(logout::start).post(logout::confirm))
        .route("/admin/users", get(admin::users))
        .route(
            "/admin/users/{handle}/authorization",
            axum::routing::put(admin::set_authorization),
        )
        .route(
            "/admin/users/{handle}/visas",
            get(visas::list).post(visas::add),
        )
        .route(
            "/admin/users/{handle}/visas/{id}",
            axum::routing::delete(visas::remove),
        )
        .route("/consents", get(consents::list))
        .route(
            "/consents/{client_id}",
            axum::routing::delete(consents::revoke),
        )
        .route("/token", post(token::token))
        .route("/dpop-nonce", get(dpop_nonce).head(dpop_nonce))
        .route("/device_authorization", post(device_flow::start))
        .route("/device", get(device_flow::page).post(device_flow::decide))
        .route("/introspect", post(introspect::introspect))
        .route("/revoke", post(introspect::revoke))
        .route(
            "/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route("/clients", get(devices::list).post(devices::register))
        .route("/clients/{device}", axum::routing::delete(devices::remove))
        .route("/clients/{device}/nonce", get(devices::nonce))
        .route(
            "/clients/{device}/access-token",
            post(devices::access_token),
        );
    server_kit::limits::layer(routes, &state.config.limits, crate::error::render_refusal)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            add_dpop_nonce,
        ))
        .with_state(state)
}

/// `GET /readyz`: whether the store takes a durable write now ([`server_kit::health`]).
async fn ready(
    axum::extract::State(state): axum::extract::State<SharedState>,
) -> axum::response::Response {
    server_kit::health::response(state.ready().await)
}

/// `GET`/`HEAD /dpop-nonce`: a fresh DPoP nonce in `DPoP-Nonce` (added by [`add_dpop_nonce`]).
async fn dpop_nonce() -> axum::http::StatusCode {
    axum::http::StatusCode::OK
}

/// Every response carries a fresh `DPoP-Nonce` (RFC 9449 §8.2, §9).
async fn add_dpop_nonce(
    axum::extract::State(state): axum::extract::State<SharedState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    let nonce = state.dpop_nonces.issue(state.now());
    if let Ok(value) = axum::http::HeaderValue::from_str(&nonce) {
        response.headers_mut().insert("dpop-nonce", value);
    }
    response
}
