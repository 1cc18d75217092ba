//! The `[[jwt_bearer_issuer]]` tables of the configuration: the issuers whose RFC 7523
//! assertions `/token` accepts as authorization grants — each with its `iss`, its keys (a JWKS
//! file, or a `jwks_uri` fetched over HTTPS on the configured trust anchors and cached), the
//! signature algorithms accepted (of proto's allow-list), the audiences the assertion must
//! name (default: our issuer URL and our token endpoint), the longest lifetime and the clock
//! leeway, which claims give a new account, and what the first login of a subject no account
//! is linked to does. Checked at start with errors that name the issuer and the key.

use std::path::PathBuf;

use proto::jws::Algorithm;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::federation::config::{acceptable_url, is_upstream_id};
use crate::federation::{ClaimMap, FirstLogin};

/// Seconds a fetch of the keys may take by default.
const DEFAULT_TIMEOUT_SECS: u64 = 10;

/// Seconds fetched keys are used by default.
const DEFAULT_CACHE_SECS: i64 = 300;

/// Seconds a failed fetch of the keys is remembered by default.
const DEFAULT_FAILURE_CACHE_SECS: i64 = 10;

/// The longest assertion lifetime accepted by default (seconds).
const DEFAULT_MAX_LIFETIME_SECS: i64 = 300;

/// Seconds of clock difference tolerated by default.
const DEFAULT_LEEWAY_SECS: i64 = 60;

/// One trusted issuer of JWT-bearer assertions (`[[jwt_bearer_issuer]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtBearerConfig {
    /// Short name (`[a-z0-9_-]`, 1–32), shared with upstreams and remote verifiers: the name
    /// clients are allowed by, the links', the audit log's.
    pub id: String,
    /// Its name in messages (default: the id).
    #[serde(default)]
    pub display_name: Option<String>,
    /// The `iss` of its assertions, exactly; its subjects are linked under it.
    pub issuer: String,
    /// A file holding its JWK Set.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// Where its JWK Set is fetched (`https`; `http` only on loopback).
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// PEM files of the roots `jwks_uri`'s TLS certificate must chain to.
    #[serde(default)]
    pub trust_anchors: Vec<PathBuf>,
    /// Trust the public roots of the Mozilla root program too.
    #[serde(default)]
    pub trust_system_roots: bool,
    /// Seconds a fetch of the keys may take.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Seconds fetched keys are used before they are fetched again.
    #[serde(default = "default_cache")]
    pub cache_secs: i64,
    /// Seconds a failed fetch of the keys is remembered (assertions fail at once meanwhile).
    #[serde(default = "default_failure_cache")]
    pub failure_cache_secs: i64,
    /// The signature algorithms accepted (names of proto's allow-list).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// The audiences of which an assertion must name one (default: our issuer URL and our
    /// token endpoint, RFC 7523 §3 item 3).
    #[serde(default)]
    pub audience: Vec<String>,
    /// The longest an assertion may live: `exp` at most this far ahead, `iat` at most this
    /// far back.
    #[serde(default = "default_max_lifetime")]
    pub max_lifetime_secs: i64,
    /// Seconds of clock difference tolerated in `exp`, `nbf` and `iat`.
    #[serde(default = "default_leeway")]
    pub leeway_secs: i64,
    /// Which claims give the subject (`sub` by default) and an account made at a first login.
    #[serde(default)]
    pub claims: ClaimMap,
    /// What the first login of a subject no account is linked to does: `create` or `refuse`.
    #[serde(default)]
    pub first_login: FirstLogin,
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

fn default_cache() -> i64 {
    DEFAULT_CACHE_SECS
}

fn default_failure_cache() -> i64 {
    DEFAULT_FAILURE_CACHE_SECS
}

fn default_algorithms() -> Vec<String> {
    ["ES256", "EdDSA", "RS256"].map(String::from).to_vec()
}

fn default_max_lifetime() -> i64 {
    DEFAULT_MAX_LIFETIME_SECS
}

fn default_leeway() -> i64 {
    DEFAULT_LEEWAY_SECS
}

impl JwtBearerConfig {
    /// Its name in messages.
    pub fn name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.id)
    }

    /// The algorithms accepted (checked at start).
    pub fn algorithms(&self) -> Vec<Algorithm> {
        self.algorithms
            .iter()
            .filter_map(|a| Algorithm::from_name(a).ok())
            .collect()
    }

    /// Checks one issuer; errors name it and the key.
    pub fn validate(&self) -> Result<()> {
        let refuse =
            |what: String| Error::Config(format!("jwt_bearer_issuer {:?}: {what}", self.id));
        if !is_upstream_id(&self.id) {
            return Err(refuse("id must be 1 to 32 of [a-z0-9_-]".into()));
        }
        if self
            .display_name
            .as_ref()
            .is_some_and(|n| n.trim().is_empty())
        {
            return Err(refuse("display_name is empty".into()));
        }
        if self.issuer.trim().is_empty() || self.issuer.len() > 255 {
            return Err(refuse("issuer must be 1 to 255 bytes".into()));
        }
        match (&self.jwks_file, &self.jwks_uri) {
            (Some(_), None) => {}
            (None, Some(uri)) if acceptable_url(uri) => {}
            (None, Some(uri)) => {
                return Err(refuse(format!(
                    "jwks_uri {uri:?} must be an https URL (http only on a loopback address)"
                )));
            }
            _ => {
                return Err(refuse(
                    "exactly one of jwks_file and jwks_uri is required".into(),
                ));
            }
        }
        if self.algorithms.is_empty() {
            return Err(refuse("algorithms is empty".into()));
        }
        if let Some(bad) = self
            .algorithms
            .iter()
            .find(|a| Algorithm::from_name(a).is_err())
        {
            let known: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
            return Err(refuse(format!(
                "algorithms: {bad:?} is not one of {}",
                known.join(", ")
            )));
        }
        if self.audience.iter().any(|a| a.trim().is_empty()) {
            return Err(refuse("audience lists an empty value".into()));
        }
        for (key, value, range) in [
            ("max_lifetime_secs", self.max_lifetime_secs, 1..=86_400),
            ("leeway_secs", self.leeway_secs, 0..=600),
            ("cache_secs", self.cache_secs, 0..=86_400),
            ("failure_cache_secs", self.failure_cache_secs, 0..=300),
        ] {
            if !range.contains(&value) {
                return Err(refuse(format!(
                    "{key} must be between {} and {}",
                    range.start(),
                    range.end()
                )));
            }
        }
        if !(1..=120).contains(&self.timeout_secs) {
            return Err(refuse("timeout_secs must be between 1 and 120".into()));
        }
        self.claims
            .validate(crate::federation::UpstreamKind::Oidc)
            .map_err(refuse)?;
        if self.first_login == FirstLogin::Link {
            return Err(refuse(
                "first_login = \"link\" needs a browser; use \"create\" or \"refuse\"".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "partner"
issuer = "https://partner.example"
jwks_uri = "https://partner.example/jwks.json"
"#;

    fn refusal(text: &str) -> String {
        match toml::from_str::<JwtBearerConfig>(text) {
            Ok(c) => c.validate().unwrap_err().to_string(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_apply_and_each_mistake_is_named() {
        let c: JwtBearerConfig = toml::from_str(GOOD).unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.algorithms(),
            vec![Algorithm::Es256, Algorithm::EdDsa, Algorithm::Rs256]
        );
        assert_eq!((c.max_lifetime_secs, c.leeway_secs), (300, 60));
        assert_eq!(c.claims.subject(), "sub");
        assert_eq!(c.first_login, FirstLogin::Refuse);
        for (extra, expected) in [
            ("jwks_file = \"/k.json\"\n", "exactly one of"),
            ("algorithms = [\"HS256\"]\n", "\"HS256\" is not one of"),
            ("algorithms = [\"none\"]\n", "\"none\" is not one of"),
            ("algorithms = []\n", "algorithms is empty"),
            ("max_lifetime_secs = 0\n", "max_lifetime_secs"),
            ("leeway_secs = -1\n", "leeway_secs"),
            ("first_login = \"link\"\n", "needs a browser"),
            ("audience = [\"\"]\n", "audience lists an empty value"),
        ] {
            let message = refusal(&format!("{GOOD}{extra}"));
            assert!(message.contains(expected), "{extra}: {message}");
        }
        let message = refusal(&GOOD.replace(
            "https://partner.example/jwks",
            "http://partner.example/jwks",
        ));
        assert!(message.contains("https URL"), "{message}");
        let message =
            refusal(&GOOD.replace("jwks_uri = \"https://partner.example/jwks.json\"\n", ""));
        assert!(message.contains("exactly one of"), "{message}");
    }
}
