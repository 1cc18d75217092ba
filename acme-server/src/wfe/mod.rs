//! The web front end: routes, JWS intake ([`intake`]), request bodies within the size limit and
//! oversized ones discarded before their 413 ([`body`]), rendering of ACME objects ([`render`])
//! and of errors ([`problem`]), durability before any POST is answered (the storage authority's
//! group commit), and the headers every response carries (a fresh `Replay-Nonce`, `Link:
//! <directory>;rel="index"`, `Cache-Control: no-store`). Handlers authenticate, call the
//! registration authority, and render.
//!
//! Of the store the front end holds only a [`StorageReader`] (the account a `kid` names) and a
//! [`Durability`] handle: it cannot write.

pub mod body;
mod handlers;
pub mod intake;
pub mod problem;
pub mod render;
pub mod urls;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use proto::clock::Clock;

use crate::config::Config;
use crate::error::Error;
use crate::nonce::NonceService;
use crate::ra::RegistrationAuthority;
use crate::sa::{Durability, StorageReader};
use urls::{PREFIX, Urls};

/// What every handler can reach.
#[derive(Debug)]
pub struct AppState {
    /// Configuration.
    pub config: Arc<Config>,
    /// URL builder.
    pub urls: Urls,
    /// The registration authority.
    pub ra: RegistrationAuthority,
    /// Reads of the store.
    pub storage: StorageReader,
    /// The store's group commit.
    pub durability: Durability,
    /// Anti-replay nonces.
    pub nonces: Arc<dyn NonceService>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

/// Shared state handle.
pub type SharedState = Arc<AppState>;

/// A POST-only resource: other methods get a 405 problem document (RFC 8555 §6.3).
fn post_only<H, T>(handler: H) -> MethodRouter<SharedState>
where
    H: axum::handler::Handler<T, SharedState>,
    T: 'static,
{
    post(handler).fallback(|| async { Error::MethodNotAllowed })
}

/// All routes.
pub fn router(state: SharedState) -> Router {
    let p = |path: &str| format!("{PREFIX}{path}");
    let routes = Router::new()
        .route(&p("/directory"), get(handlers::directory))
        .route(
            &p("/new-nonce"),
            get(handlers::new_nonce_get)
                .head(handlers::new_nonce_head)
                .fallback(|| async { Error::MethodNotAllowed }),
        )
        .route(&p("/new-account"), post_only(handlers::new_account))
        .route(&p("/account/{id}"), post_only(handlers::account))
        .route(
            &p("/account/{id}/orders"),
            post_only(handlers::account_orders),
        )
        .route(&p("/new-order"), post_only(handlers::new_order))
        .route(&p("/order/{id}"), post_only(handlers::order))
        .route(&p("/order/{id}/finalize"), post_only(handlers::finalize))
        .route(&p("/authz/{id}"), post_only(handlers::authz))
        .route(
            &p("/challenge/{authz}/{id}"),
            post_only(handlers::challenge),
        )
        .route(&p("/certificate/{id}"), post_only(handlers::certificate))
        .route(
            &p("/certificate/{id}/{n}"),
            post_only(handlers::certificate_alternate),
        )
        .route(&p("/revoke-cert"), post_only(handlers::revoke_cert))
        .route(&p("/key-change"), post_only(handlers::key_change))
        .route(&p("/crl"), get(handlers::crl))
        .route(&p("/crl/names"), get(handlers::names_crl))
        .route(&p("/renewal-info/{id}"), get(handlers::renewal_info))
        .route("/readyz", get(ready))
        .fallback(|| async { Error::NotFound("resource".into()) });
    server_kit::limits::layer(routes, &state.config.limits, problem::render_refusal)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            body::discard_declared_oversize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            acme_headers,
        ))
        .with_state(state)
}

/// `GET /readyz`: whether the store takes a durable write now ([`server_kit::health`]).
async fn ready(State(state): State<SharedState>) -> Response {
    server_kit::health::response(state.ra.ready().await)
}

/// Holds every POST response until the writes before it are durable (one group flush serves
/// all requests waiting together), then adds a fresh nonce, the index link and `no-store` to it,
/// errors included.
async fn acme_headers(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let is_post = request.method() == axum::http::Method::POST;
    let mut response = next.run(request).await;
    if is_post && let Err(e) = state.durability.durable().await {
        tracing::error!(error = %e, "store flush failed; answering with a server error");
        response = e.into_response();
    }
    let nonce = state.nonces.issue(state.clock.now());
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&nonce) {
        headers.insert("replay-nonce", value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("<{}>;rel=\"index\"", state.urls.directory()))
    {
        headers.append(header::LINK, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
