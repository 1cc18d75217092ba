//! RFC 7523 §2.1: JWTs as authorization grants (`grant_type =
//! urn:ietf:params:oauth:grant-type:jwt-bearer`) from the trusted issuers of
//! `[[jwt_bearer_issuer]]` ([`config`]). An assertion is verified by the checks of §3
//! ([`assertion`]), its `jti` used once, and its subject linked to a local account like an
//! upstream identity, under the assertion's issuer ([`crate::federation::accounts`]).
//!
//! [`JwtBearerIssuers`] holds each issuer with its keys: read from `jwks_file` at start, or
//! fetched from `jwks_uri` with the issuer's HTTPS client (its trust anchors, its timeout),
//! read with a bound ([`crate::federation::MAX_UPSTREAM_BODY`]), cached for `cache_secs` and
//! fetched once however many requests need them, a failure remembered for
//! `failure_cache_secs` ([`server_kit::flight`]). An assertion naming a key id the
//! cached set lacks has the keys fetched again, at most every
//! [`crate::federation::discovery::MIN_KEY_REFETCH_SECS`].

pub mod assertion;
pub mod config;

use std::sync::Arc;

use proto::clock::UnixTime;
use proto::jwk::{Jwk, JwkSet};
use proto::jws::Algorithm;

pub use config::JwtBearerConfig;

use crate::error::{Error, Result};
use crate::federation::MAX_UPSTREAM_BODY;
use crate::federation::accounts::IdentitySource;
use crate::federation::discovery::{MIN_KEY_REFETCH_SECS, signing_keys_for};
use server_kit::flight::Flight;

/// Where an issuer's keys come from.
#[derive(Debug)]
enum Keys {
    /// Read from `jwks_file` at start.
    File(Arc<Vec<Jwk>>),
    /// Fetched from `jwks_uri` with this client, cached.
    Fetched {
        http: reqwest::Client,
        cache: Flight<Vec<Jwk>>,
    },
}

/// One trusted issuer, ready to verify with.
#[derive(Debug)]
pub struct JwtBearerIssuer {
    /// Its configuration.
    pub config: JwtBearerConfig,
    algorithms: Vec<Algorithm>,
    keys: Keys,
}

/// The keys of a JWK Set document that may verify signatures with `algorithms`.
fn parse_keys(document: &serde_json::Value, algorithms: &[Algorithm]) -> Result<Vec<Jwk>, String> {
    JwkSet::from_json(&signing_keys_for(document, algorithms))
        .map(|set| set.keys)
        .map_err(|e| e.to_string())
}

impl JwtBearerIssuer {
    /// Reads the key file or builds the HTTPS client of a validated issuer.
    fn load(config: JwtBearerConfig) -> Result<Self> {
        let unusable =
            |what: String| Error::Config(format!("jwt_bearer_issuer {:?}: {what}", config.id));
        let algorithms = config.algorithms();
        let keys = match (&config.jwks_file, &config.jwks_uri) {
            (Some(path), _) => {
                let bytes = server_kit::files::read_public(path)
                    .map_err(|e| unusable(format!("jwks_file: {e}")))?;
                if bytes.len() > MAX_UPSTREAM_BODY {
                    return Err(unusable(format!(
                        "jwks_file is larger than {MAX_UPSTREAM_BODY} bytes"
                    )));
                }
                let document = serde_json::from_slice(&bytes)
                    .map_err(|e| unusable(format!("jwks_file: {e}")))?;
                let keys = parse_keys(&document, &algorithms)
                    .map_err(|e| unusable(format!("jwks_file: {e}")))?;
                Keys::File(Arc::new(keys))
            }
            (None, _) => Keys::Fetched {
                http: server_kit::tls::https_client_trusting(
                    &config.trust_anchors,
                    config.trust_system_roots,
                    std::time::Duration::from_secs(config.timeout_secs),
                )
                .map_err(|e| unusable(format!("trust_anchors: {e}")))?,
                cache: Flight::default(),
            },
        };
        Ok(Self {
            config,
            algorithms,
            keys,
        })
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// The signature algorithms accepted.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// This issuer as a source of identities: linked under its `iss`.
    pub fn source(&self) -> IdentitySource<'_> {
        IdentitySource {
            id: &self.config.id,
            issuer: &self.config.issuer,
            display_name: self.config.name(),
            claims: &self.config.claims,
            first_login: self.config.first_login,
        }
    }

    /// The issuer's keys at `now`, from the cache while fresh; with `refresh` (an assertion
    /// named a key id the cached set lacks) fetched again unless fetched very recently.
    pub async fn keys(&self, now: UnixTime, refresh: bool) -> Result<Arc<Vec<Jwk>>> {
        let (http, cache) = match &self.keys {
            Keys::File(keys) => return Ok(keys.clone()),
            Keys::Fetched { http, cache } => (http, cache),
        };
        let cache_secs = self.config.cache_secs;
        let usable = |at: UnixTime| {
            let fresh = now - at < cache_secs;
            let recent = now - at < MIN_KEY_REFETCH_SECS;
            (fresh && !refresh) || recent
        };
        cache
            .get(now, self.config.failure_cache_secs, usable, || {
                self.fetch_keys(http)
            })
            .await
    }

    /// Fetches the JWK Set at `jwks_uri`.
    async fn fetch_keys(&self, http: &reqwest::Client) -> Result<Vec<Jwk>> {
        let uri = self.config.jwks_uri.as_deref().unwrap_or_default();
        let unavailable = |what: String| {
            Error::upstream_unavailable(format!(
                "the keys of the assertion issuer {} could not be used: {what}",
                self.config.name()
            ))
        };
        let document: serde_json::Value = server_kit::fetch::get_json(http, uri, MAX_UPSTREAM_BODY)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        parse_keys(&document, &self.algorithms).map_err(unavailable)
    }
}

/// The configured issuers, in configuration order.
#[derive(Debug, Default)]
pub struct JwtBearerIssuers {
    list: Vec<JwtBearerIssuer>,
}

impl JwtBearerIssuers {
    /// Loads every configured issuer (already validated by [`crate::Config::validate`]).
    pub fn load(configs: &[JwtBearerConfig]) -> Result<Self> {
        let list = configs
            .iter()
            .cloned()
            .map(JwtBearerIssuer::load)
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { list })
    }

    /// The issuer whose `iss` this is.
    pub fn by_issuer(&self, iss: &str) -> Option<&JwtBearerIssuer> {
        self.list.iter().find(|i| i.config.issuer == iss)
    }

    /// Whether any issuer is configured (the grant type is offered only then).
    pub fn any(&self) -> bool {
        !self.list.is_empty()
    }
}

/// Checks every issuer and that no two share an id or an `iss`.
pub fn validate_all(issuers: &[JwtBearerConfig]) -> Result<()> {
    for (i, issuer) in issuers.iter().enumerate() {
        issuer.validate()?;
        if let Some(other) = issuers[..i]
            .iter()
            .find(|o| o.id == issuer.id || o.issuer == issuer.issuer)
        {
            return Err(Error::Config(format!(
                "jwt_bearer_issuer {:?} and {:?} share an id or an issuer",
                other.id, issuer.id
            )));
        }
    }
    Ok(())
}
