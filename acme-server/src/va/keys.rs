//! Where the validators' trusted keys come from: keys fixed in the configuration, and/or a JWKS
//! fetched over HTTPS (directly, or through OpenID discovery) and cached. A token naming a key
//! the cache does not know triggers one refetch, at most every [`MIN_REFRESH_SECONDS`]. A
//! document is read through [`server_kit::fetch`], so at most [`MAX_DOCUMENT_BYTES`] of it.

use std::sync::Arc;

use proto::clock::UnixTime;
use proto::jwk::{Jwk, JwkSet};
use serde_json::Value;
use server_kit::flight::Flight;

use crate::error::{Error, Result};

/// How long fetched keys are used before they are fetched again.
pub const CACHE_SECONDS: i64 = 300;
/// The shortest interval between two fetches caused by an unknown key.
pub const MIN_REFRESH_SECONDS: i64 = 10;
/// How long a failed fetch is remembered (callers fail at once meanwhile).
pub const FAILURE_MEMORY_SECONDS: i64 = 10;
/// Largest JWKS or discovery document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Where remote keys are published.
#[derive(Debug, Clone)]
pub enum Remote {
    /// A JWKS URL.
    Jwks(String),
    /// An OpenID issuer: `{issuer}/.well-known/openid-configuration` names the `jwks_uri`, and
    /// its `issuer` must equal the configured one.
    Discovery(String),
}

/// A set of trusted keys.
#[derive(Debug)]
pub struct KeySource {
    fixed: Vec<Jwk>,
    remote: Option<Remote>,
    http: reqwest::Client,
    fetched: Flight<Vec<Jwk>>,
}

impl KeySource {
    /// Keys from configuration and/or a remote publication, fetched with `http` (whose timeout
    /// bounds one fetch).
    pub fn new(fixed: Vec<Jwk>, remote: Option<Remote>, http: reqwest::Client) -> Arc<Self> {
        Arc::new(Self {
            fixed,
            remote,
            http,
            fetched: Flight::default(),
        })
    }

    /// The trusted keys. `refresh` asks for a refetch (at most every [`MIN_REFRESH_SECONDS`])
    /// because a token named a key that is not among them. One fetch runs at a time; callers
    /// needing it wait for its outcome, not for a lock held across it. A failed fetch is
    /// remembered for [`FAILURE_MEMORY_SECONDS`]: meanwhile the keys fetched before are used if
    /// there are any, and otherwise callers get [`Error::Unavailable`] at once (503 with
    /// `Retry-After`) instead of waiting out another timeout.
    pub async fn keys(&self, now: UnixTime, refresh: bool) -> Result<Vec<Jwk>> {
        let Some(remote) = &self.remote else {
            return Ok(self.fixed.clone());
        };
        let max_age = if refresh {
            MIN_REFRESH_SECONDS
        } else {
            CACHE_SECONDS
        };
        let fetched = match self
            .fetched
            .get(
                now,
                FAILURE_MEMORY_SECONDS,
                |at| now - at < max_age,
                || self.fetch(remote),
            )
            .await
        {
            Ok(keys) => keys,
            // Keep serving the keys we have when a refresh fails.
            Err(e) => match self.fetched.last_value() {
                Some(keys) => {
                    tracing::warn!(error = %e, "key refresh failed; using the keys fetched before");
                    keys
                }
                None => return Err(e),
            },
        };
        let mut keys = self.fixed.clone();
        keys.extend(fetched.iter().cloned());
        Ok(keys)
    }

    /// The keys `remote` publishes now; a failure is [`Error::Unavailable`].
    async fn fetch(&self, remote: &Remote) -> Result<Vec<Jwk>> {
        self.fetch_keys(remote)
            .await
            .map_err(|e| Error::Unavailable {
                detail: format!("the keys could not be fetched: {e}"),
                retry_after_secs: FAILURE_MEMORY_SECONDS.unsigned_abs(),
            })
    }

    async fn fetch_keys(&self, remote: &Remote) -> Result<Vec<Jwk>> {
        let jwks_url = match remote {
            Remote::Jwks(url) => url.clone(),
            Remote::Discovery(issuer) => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                let doc = self.get_json(&url).await?;
                if doc.get("issuer").and_then(Value::as_str) != Some(issuer.as_str()) {
                    return Err(Error::Internal(format!(
                        "discovery at {url} names another issuer"
                    )));
                }
                doc.get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Error::Internal(format!("discovery at {url} has no jwks_uri")))?
                    .to_owned()
            }
        };
        let doc = self.get_json(&jwks_url).await?;
        let set = JwkSet::from_json(&doc)
            .map_err(|e| Error::Internal(format!("JWKS at {jwks_url}: {e}")))?;
        Ok(set.keys)
    }

    async fn get_json(&self, url: &str) -> Result<Value> {
        Ok(server_kit::fetch::get_json(&self.http, url, MAX_DOCUMENT_BYTES).await?)
    }
}
