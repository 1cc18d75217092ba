//! The HTTP front end: routes and shared state (request logging is added by [`server_kit::serve`]).
//! Handlers parse and authenticate, call the domain modules, and return [`crate::Error`]s that
//! render themselves; none of them builds an error body by hand.

mod access;
mod authorize;
mod client_auth;
mod consents;
mod device_flow;
mod devices;
mod discovery;
mod html;
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
    /// Server-issued DPoP nonces (RFC 9449 §8).
    pub dpop_nonces: proto::dpop_nonce::NonceSource,
    /// The password-check workers.
    pub passwords: crate::password_pool::PasswordPool,
    /// Retired signing keys, still accepted and published until their time.
    pub retired_keys: Vec<(proto::jwk::Jwk, proto::clock::UnixTime)>,
    /// Rate limits.
    pub limiters: crate::rate_limits::Limiters,
    /// The audit log.
    pub audit: server_kit::audit::AuditLog,
}

impl AppState {
    /// Checks a password on the password workers, within the failed-login limits of the
    /// user and of the client's address `ip`: their tokens are taken before the check and
    /// given back unless the password was wrong.
    pub async fn check_password(
        &self,
        ip: std::net::IpAddr,
        handle: String,
        password: proto::secret::SecretString,
    ) -> crate::Result<crate::users::User> {
        // A handle no user can have (or an absurdly long password) is refused like a wrong
        // password, without hashing, and counted under one shared name: what was typed is
        // neither kept as a limiter key nor logged (it may be a password typed in the wrong
        // field), so it cannot grow memory or the audit log.
        let plausible = proto::wire_id::validate_handle(&handle).is_ok()
            && password.expose().len() <= MAX_PASSWORD_BYTES;
        if !plausible {
            drop(self.limiters.reserve_login(IMPLAUSIBLE_HANDLE, ip)?);
            self.audit.record(
                self.clock.now(),
                "login.failed",
                serde_json::json!({"handle": null, "ip": ip.to_string()}),
            );
            return Err(crate::Error::BadCredentials);
        }
        let reservation = self.limiters.reserve_login(&handle, ip)?;
        let outcome = self
            .passwords
            .check(ip, self.store.clone(), handle.clone(), password)
            .await;
        let now = self.clock.now();
        match &outcome {
            Ok(user) => {
                reservation.refund();
                self.audit.record(
                    now,
                    "login.succeeded",
                    serde_json::json!({"user": user.id, "handle": handle, "ip": ip.to_string()}),
                );
            }
            Err(crate::Error::BadCredentials) => {
                drop(reservation);
                self.audit.record(
                    now,
                    "login.failed",
                    serde_json::json!({"handle": handle, "ip": ip.to_string()}),
                );
            }
            // Not checked (no room on the workers) or not the client's failure.
            Err(_) => reservation.refund(),
        }
        outcome
    }

    /// The keys tokens of this server verify with now: the current one and live retired ones.
    pub fn verification_keys(&self) -> Vec<proto::jwk::Jwk> {
        let now = self.clock.now();
        std::iter::once(self.key.public_jwk().clone())
            .chain(
                self.retired_keys
                    .iter()
                    .filter(|(_, until)| *until >= now)
                    .map(|(k, _)| k.clone()),
            )
            .collect()
    }

    /// The token issuer view of this state.
    pub fn issuer(&self) -> Issuer<'_> {
        Issuer {
            url: &self.base_url,
            key: &self.key,
            access_lifetime: self.config.lifetimes.access_token,
            id_lifetime: self.config.lifetimes.id_token,
            dpop_nonces: self.config.require_dpop_nonce.then_some(&self.dpop_nonces),
            verification_keys: self.verification_keys(),
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

/// The longest password a login form may carry.
const MAX_PASSWORD_BYTES: usize = 1024;

/// The failed-login bucket of every handle no user can have.
const IMPLAUSIBLE_HANDLE: &str = "(not a handle)";

/// Shared state handle.
pub type SharedState = Arc<AppState>;

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
        .route("/authorize", get(authorize::show).post(authorize::submit))
        .route("/authorize/consent", post(authorize::consent))
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
    let nonce = state.dpop_nonces.issue(state.clock.now());
    if let Ok(value) = axum::http::HeaderValue::from_str(&nonce) {
        response.headers_mut().insert("dpop-nonce", value);
    }
    response
}
