//! The provider: what the services of this server share — configuration, the store, the
//! signing keys, the clock, the server's DPoP nonces, the password workers, the rate limits,
//! the audit log, the upstreams, remote verifiers and assertion issuers — assembled once at start ([`crate::server`]) and called by the HTTP front end.
//! Each service adds its operations in its own module (`impl Provider` in [`crate::grants`],
//! [`crate::devices`], [`crate::identity`], …); none of them knows about HTTP.

use std::sync::Arc;

use proto::clock::{Clock, UnixTime};
use proto::jwk::Jwk;
use proto::jws::SigningKey;

use crate::config::Config;
use crate::store::Store;

/// The services' shared state.
#[derive(Debug)]
pub struct Provider {
    /// Configuration.
    pub config: Config,
    /// Public base URL (the issuer), no trailing slash.
    pub base_url: String,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The token signing keys.
    pub keys: crate::keys::KeyRing,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Server-issued DPoP nonces (RFC 9449 §8).
    pub dpop_nonces: proto::dpop_nonce::NonceSource,
    /// The password-check workers.
    pub passwords: crate::password_pool::PasswordPool,
    /// Rate limits.
    pub limiters: crate::rate_limits::Limiters,
    /// The audit log.
    pub audit: server_kit::audit::AuditLog,
    /// The upstream identity providers (`[[upstream]]`).
    pub upstreams: crate::federation::Upstreams,
    /// Readiness (`/readyz`): the store probed at most once a second.
    pub readiness: server_kit::health::Readiness,
    /// The permission services (`[[claims_source]]`).
    pub claims_sources: crate::claims_sources::ClaimsSources,
    /// The remote verifiers (`[[remote_auth]]`).
    pub remote_verifiers: crate::remote_auth::RemoteVerifiers,
    /// The trusted issuers of grant assertions (`[[jwt_bearer_issuer]]`).
    pub jwt_issuers: crate::jwt_bearer::JwtBearerIssuers,
}

impl Provider {
    /// The store as a trait object.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The time now.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The public URL of a path on this server (never derived from `Host`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The keys tokens of this server verify with now (and the JWKS): the signing one, one
    /// about to sign, and retired ones until their tokens have expired.
    pub fn verification_keys(&self) -> Vec<Jwk> {
        self.keys.current().published(self.now())
    }

    /// The key that signs now.
    pub fn signing_key(&self) -> std::sync::Arc<SigningKey> {
        self.keys.current().signing(self.now())
    }

    /// Whether the store takes a durable write now (`/readyz`), probed at most once a second.
    pub async fn ready(&self) -> Result<(), server_kit::health::NotReady> {
        let now = self.now();
        self.readiness
            .check(now, || server_kit::health::probe(self.store(), now))
            .await
    }

    /// The device scope (`device_access.scope`).
    pub fn device_scope(&self) -> &str {
        &self.config.device_access.scope
    }
}
