//! An upstream's endpoints: for `oauth2` those of its configuration; for `oidc` its OpenID
//! Provider metadata (OpenID Connect Discovery 1.0, fetched from
//! `{issuer}/.well-known/openid-configuration`) and its signing keys (`jwks_uri`), fetched with
//! the upstream's HTTPS client (its timeout), read with a bound ([`super::MAX_UPSTREAM_BODY`]),
//! checked, and cached for `cache_secs` by the time of the injected clock. Keys are fetched
//! again at once when a token names a key id they lack, at most every
//! [`MIN_KEY_REFETCH_SECS`]. Concurrent logins that need a fetch share one, and a failed fetch
//! is remembered for `failure_cache_secs`: meanwhile logins fail at once ([`server_kit::flight`]).

use std::sync::Arc;

use proto::clock::UnixTime;
use proto::jwk::{Jwk, JwkSet};
use serde::Deserialize;

use super::Upstream;
use super::config::{UpstreamKind, acceptable_url};
use crate::error::{Error, Result};
use server_kit::flight::Flight;

/// The shortest time between two fetches of an upstream's keys.
pub const MIN_KEY_REFETCH_SECS: i64 = 30;

/// What this server uses of an upstream's metadata.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// The issuer; must equal the configured one exactly (Discovery §4.3).
    pub issuer: String,
    /// Where the browser is sent.
    pub authorization_endpoint: String,
    /// Where the code is exchanged.
    pub token_endpoint: String,
    /// The signing keys (`oidc`).
    #[serde(default)]
    pub jwks_uri: String,
    /// Where the user's claims are read with an access token.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// RFC 9207: the upstream names itself in `iss` on every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// The metadata and keys of one upstream, each cached and fetched one caller at a time, a
/// failed fetch remembered for `failure_cache_secs` ([`Flight`]).
#[derive(Debug, Default)]
pub struct Cache {
    metadata: Flight<Metadata>,
    keys: Flight<Vec<Jwk>>,
}

impl Upstream {
    fn unavailable(&self, what: impl std::fmt::Display) -> Error {
        Error::upstream_unavailable(format!(
            "the identity provider {} could not be used: {what}",
            self.config.display_name
        ))
    }

    /// The upstream's metadata: an `oauth2` upstream's configured endpoints, or an `oidc`
    /// upstream's discovery document, from the cache while fresh.
    pub async fn metadata(&self, now: UnixTime) -> Result<Arc<Metadata>> {
        if self.config.kind == UpstreamKind::Oauth2 {
            return Ok(Arc::new(self.configured_metadata()));
        }
        let cache_secs = self.config.cache_secs;
        self.cache
            .metadata
            .get(
                now,
                self.config.failure_cache_secs,
                |at| now - at < cache_secs,
                || self.fetch_metadata(),
            )
            .await
    }

    /// The upstream's signing keys, from the cache while fresh; with `refresh` (a token named
    /// a key id the cached set lacks) fetched again unless they were fetched very recently. The
    /// metadata naming them comes first (cached in a login, which has just read it), so its
    /// failure stays its own and is not remembered again as the keys'.
    pub async fn keys(&self, now: UnixTime, refresh: bool) -> Result<Arc<Vec<Jwk>>> {
        let metadata = self.metadata(now).await?;
        let cache_secs = self.config.cache_secs;
        let usable = |at: UnixTime| {
            let fresh = now - at < cache_secs;
            let recent = now - at < MIN_KEY_REFETCH_SECS;
            (fresh && !refresh) || recent
        };
        self.cache
            .keys
            .get(now, self.config.failure_cache_secs, usable, || {
                self.fetch_keys(&metadata)
            })
            .await
    }

    /// Fetches and checks the discovery document.
    async fn fetch_metadata(&self) -> Result<Metadata> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer().trim_end_matches('/')
        );
        let metadata: Metadata =
            server_kit::fetch::get_json(&self.http, &url, super::MAX_UPSTREAM_BODY)
                .await
                .map_err(|e| self.unavailable(format!("discovery: {e}")))?;
        check(&metadata, self.issuer()).map_err(|what| self.unavailable(what))?;
        Ok(metadata)
    }

    /// Fetches the JWKS named by the metadata, keeping the keys that may verify signatures.
    async fn fetch_keys(&self, metadata: &Metadata) -> Result<Vec<Jwk>> {
        let document: serde_json::Value =
            server_kit::fetch::get_json(&self.http, &metadata.jwks_uri, super::MAX_UPSTREAM_BODY)
                .await
                .map_err(|e| self.unavailable(format!("keys: {e}")))?;
        Ok(JwkSet::from_json(&signing_keys(&document))
            .map_err(|e| self.unavailable(format!("keys at {}: {e}", metadata.jwks_uri)))?
            .keys)
    }

    /// The HTTPS client of this upstream.
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The endpoints an `oauth2` upstream's configuration names (checked at start).
    fn configured_metadata(&self) -> Metadata {
        let config = &self.config;
        Metadata {
            issuer: self.issuer().to_owned(),
            authorization_endpoint: config.authorization_endpoint.clone().unwrap_or_default(),
            token_endpoint: config.token_endpoint.clone().unwrap_or_default(),
            jwks_uri: String::new(),
            userinfo_endpoint: config.userinfo_endpoint.clone(),
            authorization_response_iss_parameter_supported: false,
        }
    }
}

/// The keys of a JWK set document that may verify signatures: a key marked for encryption
/// (`use` other than `sig`), whose `key_ops` lack `verify`, or that names an algorithm other
/// than a signature algorithm we accept, is left out.
fn signing_keys(document: &serde_json::Value) -> serde_json::Value {
    signing_keys_for(document, &super::id_token::ALGORITHMS)
}

/// [`signing_keys`] for the signature algorithms `algorithms`.
pub fn signing_keys_for(
    document: &serde_json::Value,
    algorithms: &[proto::jws::Algorithm],
) -> serde_json::Value {
    let for_signatures = |key: &&serde_json::Value| {
        let text = |name: &str| key.get(name).and_then(serde_json::Value::as_str);
        let use_ok = text("use").is_none_or(|u| u == "sig");
        let ops_ok = key
            .get("key_ops")
            .and_then(serde_json::Value::as_array)
            .is_none_or(|ops| ops.iter().any(|op| op == "verify"));
        let alg_ok = text("alg").is_none_or(|alg| {
            proto::jws::Algorithm::from_name(alg).is_ok_and(|alg| algorithms.contains(&alg))
        });
        use_ok && ops_ok && alg_ok
    };
    let keys: Vec<serde_json::Value> = document
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .map(|keys| keys.iter().filter(for_signatures).cloned().collect())
        .unwrap_or_default();
    serde_json::json!({ "keys": keys })
}

/// Refuses metadata of another issuer or with endpoints that are not https (http only on
/// loopback).
fn check(metadata: &Metadata, issuer: &str) -> std::result::Result<(), String> {
    if metadata.issuer != issuer {
        return Err(format!(
            "discovery names the issuer {:?}, not {issuer:?}",
            metadata.issuer
        ));
    }
    for (name, url) in [
        (
            "authorization_endpoint",
            Some(&metadata.authorization_endpoint),
        ),
        ("token_endpoint", Some(&metadata.token_endpoint)),
        ("jwks_uri", Some(&metadata.jwks_uri)),
        ("userinfo_endpoint", metadata.userinfo_endpoint.as_ref()),
    ] {
        let Some(url) = url else { continue };
        if !acceptable_url(url) {
            return Err(format!("discovery's {name} {url:?} is not an https URL"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_of_another_issuer_or_with_plain_http_endpoints_is_refused() {
        let good = Metadata {
            issuer: "https://idp.test".into(),
            authorization_endpoint: "https://idp.test/auth".into(),
            token_endpoint: "https://idp.test/token".into(),
            jwks_uri: "https://idp.test/jwks".into(),
            userinfo_endpoint: Some("https://idp.test/me".into()),
            authorization_response_iss_parameter_supported: true,
        };
        check(&good, "https://idp.test").unwrap();
        assert!(
            check(&good, "https://idp.test/")
                .unwrap_err()
                .contains("issuer")
        );
        let plain_userinfo = Metadata {
            userinfo_endpoint: Some("http://idp.test/me".into()),
            ..good.clone()
        };
        assert!(
            check(&plain_userinfo, "https://idp.test")
                .unwrap_err()
                .contains("userinfo_endpoint")
        );
        let plain = Metadata {
            token_endpoint: "http://idp.test/token".into(),
            ..good
        };
        assert!(
            check(&plain, "https://idp.test")
                .unwrap_err()
                .contains("token_endpoint")
        );
    }

    #[test]
    fn only_keys_that_may_verify_signatures_are_kept() {
        let key = |extra: serde_json::Value| {
            let mut k = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
            k.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            k
        };
        let document = serde_json::json!({"keys": [
            key(serde_json::json!({"kid": "plain"})),
            key(serde_json::json!({"kid": "sig", "use": "sig", "alg": "EdDSA", "key_ops": ["verify"]})),
            key(serde_json::json!({"kid": "enc", "use": "enc"})),
            key(serde_json::json!({"kid": "wrap", "key_ops": ["wrapKey"]})),
            key(serde_json::json!({"kid": "oaep", "alg": "RSA-OAEP"})),
            key(serde_json::json!({"kid": "hs", "alg": "HS256"})),
        ]});
        let filtered = signing_keys(&document);
        let kept: Vec<&str> = filtered["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kept, ["plain", "sig"]);
    }
}
