//! The HTTP front end: routes and shared state (request logging is added by [`server_kit::serve`]).
//! Handlers parse and authenticate, call the domain modules, and return [`crate::Error`]s that
//! render themselves; none of them builds an error body by hand.

mod authorize;
mod client_auth;
mod devices;
mod discovery;
mod introspect;
mod token;
mod userinfo;

use std::sync::Arc;

use axum::Router;
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
        .route("/introspect", post(introspect::introspect))
        .route("/revoke", post(introspect::revoke))
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
        .with_state(state)
}
