//! The HTTP front end: routes, shared state, and one structured log event per request.
//! Handlers parse and authenticate, call the domain modules, and return [`crate::Error`]s that
//! render themselves; none of them builds an error body by hand.

mod authorize;
mod devices;
mod discovery;
mod token;
mod userinfo;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use proto::clock::Clock;
use proto::jws::SigningKey;

use crate::config::Config;
use crate::store::Store;
use crate::tokens::Issuer;

/// What every handler can reach.
#[derive(Debug)]
pub struct AppState {
    /// Configuration.
    pub config: Config,
    /// Public base URL (the issuer), no trailing slash.
    pub base_url: String,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The token signing key.
    pub key: SigningKey,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl AppState {
    /// The token issuer view of this state.
    pub fn issuer(&self) -> Issuer<'_> {
        Issuer {
            url: &self.base_url,
            key: &self.key,
            access_lifetime: self.config.lifetimes.access_token,
            id_lifetime: self.config.lifetimes.id_token,
        }
    }

    /// The public URL of a path on this server (never derived from `Host`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The store as a trait object.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }
}

/// Shared state handle.
pub type SharedState = Arc<AppState>;

/// All routes.
pub fn router(state: SharedState) -> Router {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .route("/jwks", get(discovery::jwks))
        .route("/authorize", get(authorize::show).post(authorize::submit))
        .route("/token", post(token::token))
        .route(
            "/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route("/clients", get(devices::list).post(devices::register))
        .route("/clients/{device}/nonce", get(devices::nonce))
        .route(
            "/clients/{device}/access-token",
            post(devices::access_token),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            log_request,
        ))
        .with_state(state)
}

/// One event per request: method, path (never the query, which may carry codes), status, time.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::info!(
        target: "authz_server::request",
        %method,
        path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "request"
    );
    response
}
