//! The `[[claims_source]]` tables of the configuration: which HTTP JSON services are asked for
//! claims when a user's access token is issued, for which tokens (scopes, RFC 8707 resources),
//! which fields of the answer become which access-token claims, and what a failure does.
//! Checked at start with errors that name the source and the key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Milliseconds a source may take to answer by default (connect, send, read).
const DEFAULT_TIMEOUT_MS: u64 = 2_000;

/// Seconds an answer is reused by default for the same question.
const DEFAULT_CACHE_SECS: i64 = 10;

/// Seconds a failed call is remembered by default (meanwhile the same question fails at once).
const DEFAULT_FAILURE_CACHE_SECS: i64 = 2;

/// The most bytes of an answer read by default.
const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Access-token claims a source may not set: the token's own (RFC 9068 §2.2, RFC 9449 §6, OIDC
/// `azp`/`sid`), delegation's (RFC 8693 §4.1, §4.4: `act`, `may_act`) and those the server
/// releases from the account (`roles`, `groups`).
pub const RESERVED_CLAIMS: [&str; 19] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "client_id",
    "scope",
    "cnf",
    "auth_time",
    "acr",
    "amr",
    "azp",
    "sid",
    "act",
    "may_act",
    "roles",
    "groups",
];

/// One permission service (`[[claims_source]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsSourceConfig {
    /// Short name, in logs and the audit log (`[a-z0-9_-]`, 1–32).
    pub id: String,
    /// Where the question is POSTed (`https`; `http` only on a loopback address).
    pub url: String,
    /// PEM files of the roots the service's TLS certificate must chain to.
    #[serde(default)]
    pub trust_anchors: Vec<PathBuf>,
    /// Trust the public roots of the Mozilla root program too.
    #[serde(default)]
    pub trust_system_roots: bool,
    /// A file (0600) holding a token sent as `Authorization: Bearer` to the service.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// An environment variable holding that token.
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    /// Ask the source only for tokens whose granted scope has one of these (empty: every
    /// user's access token).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The RFC 8707 resources the source answers for: a token request naming one of them asks
    /// it (and one naming none asks only sources without `resources`). An entry ending in `/`
    /// covers every resource under it; any other entry only itself.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Access-token claim name → JSON pointer (RFC 6901) into the answer. A pointer the answer
    /// does not have leaves the claim out.
    pub claims: BTreeMap<String, String>,
    /// Milliseconds the call may take.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Seconds an answer is reused for the same question (user, client, scope, resource).
    #[serde(default = "default_cache")]
    pub cache_secs: i64,
    /// Seconds a failed call is remembered.
    #[serde(default = "default_failure_cache")]
    pub failure_cache_secs: i64,
    /// The most bytes of an answer read.
    #[serde(default = "default_max_response")]
    pub max_response_bytes: usize,
    /// What a token request does when the source fails.
    #[serde(default)]
    pub on_failure: OnFailure,
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}

fn default_cache() -> i64 {
    DEFAULT_CACHE_SECS
}

fn default_failure_cache() -> i64 {
    DEFAULT_FAILURE_CACHE_SECS
}

fn default_max_response() -> usize {
    DEFAULT_MAX_RESPONSE_BYTES
}

/// What a token request does when a source cannot answer (down, too slow, a bad answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Fail closed: the request is answered 503 `temporarily_unavailable`, nothing is issued
    /// and nothing consumed (the code or refresh token still works on a retry).
    #[default]
    Deny,
    /// Issue the token without this source's claims (logged as a warning).
    Omit,
}

impl ClaimsSourceConfig {
    /// Checks one source; errors name it and the key.
    pub fn validate(&self) -> Result<()> {
        let refuse = |what: String| Error::Config(format!("claims_source {:?}: {what}", self.id));
        if !crate::federation::config::is_upstream_id(&self.id) {
            return Err(refuse("id must be 1 to 32 of [a-z0-9_-]".into()));
        }
        if !crate::federation::config::acceptable_url(&self.url) {
            return Err(refuse(format!(
                "url {:?} must be an https URL (http only on a loopback address)",
                self.url
            )));
        }
        if self.bearer_token_file.is_some() && self.bearer_token_env.is_some() {
            return Err(refuse(
                "bearer_token_file and bearer_token_env exclude each other".into(),
            ));
        }
        if let Some(scope) = self
            .scopes
            .iter()
            .find(|s| !crate::scopes::is_scope_token(s))
        {
            return Err(refuse(format!("scopes: {scope:?} is not a scope-token")));
        }
        if let Some(resource) = self.resources.iter().find(|r| !is_resource(r)) {
            return Err(refuse(format!(
                "resources: {resource:?} must be an absolute URI without a fragment (RFC 8707 §2)"
            )));
        }
        if self.claims.is_empty() {
            return Err(refuse("claims maps no claim".into()));
        }
        for (claim, pointer) in &self.claims {
            if RESERVED_CLAIMS.contains(&claim.as_str()) || claim.is_empty() {
                return Err(refuse(format!(
                    "claims: {claim:?} may not be set by a source (reserved: {})",
                    RESERVED_CLAIMS.join(", ")
                )));
            }
            if !(pointer.is_empty() || pointer.starts_with('/')) {
                return Err(refuse(format!(
                    "claims.{claim}: {pointer:?} is not a JSON pointer (RFC 6901: empty or \
                     starting with /)"
                )));
            }
        }
        if !(1..=60_000).contains(&self.timeout_ms) {
            return Err(refuse("timeout_ms must be between 1 and 60000".into()));
        }
        if !(0..=3_600).contains(&self.cache_secs) {
            return Err(refuse("cache_secs must be between 0 and 3600".into()));
        }
        if !(0..=300).contains(&self.failure_cache_secs) {
            return Err(refuse(
                "failure_cache_secs must be between 0 and 300".into(),
            ));
        }
        if !(1..=1024 * 1024).contains(&self.max_response_bytes) {
            return Err(refuse(
                "max_response_bytes must be between 1 and 1048576".into(),
            ));
        }
        Ok(())
    }

    /// Whether the source answers for tokens of `scope` and `resource`.
    pub fn applies(&self, scope: &str, resource: Option<&str>) -> bool {
        let scoped =
            self.scopes.is_empty() || self.scopes.iter().any(|s| crate::scopes::has(scope, s));
        let aimed = match resource {
            None => self.resources.is_empty(),
            Some(resource) => self.covers(resource),
        };
        scoped && aimed
    }

    /// Whether `resource` is one of the source's resources.
    pub fn covers(&self, resource: &str) -> bool {
        self.resources.iter().any(|entry| {
            entry == resource || (entry.ends_with('/') && resource.starts_with(entry.as_str()))
        })
    }
}

/// Whether `value` can be an RFC 8707 resource indicator: an absolute URI without a fragment,
/// of RFC 3986's characters only, and without dot segments or encoded dots and slashes (which
/// would let a resource that only starts like a configured one — `…/servers/../admin` — pass a
/// prefix match while naming another place). The character check keeps out what URL parsers
/// rewrite before they resolve dot segments: a backslash (a path separator in `http(s)` URLs
/// for WHATWG parsers, so `…/servers/x\..\..\admin` is `/admin`), tabs and newlines (removed,
/// so `.<TAB>.` is `..`), spaces.
pub fn is_resource(value: &str) -> bool {
    let uri_characters = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b));
    let lower = value.to_ascii_lowercase();
    let dotted = lower
        .split(['/', '?'])
        .any(|segment| segment == "." || segment == "..")
        || lower.contains("%2e")
        || lower.contains("%2f");
    value.len() <= 2048
        && uri_characters
        && !dotted
        && url::Url::parse(value).is_ok_and(|u| u.fragment().is_none())
}

/// Checks every source, and that no two share an id or set the same claim.
pub fn validate_all(sources: &[ClaimsSourceConfig]) -> Result<()> {
    let mut claims: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, source) in sources.iter().enumerate() {
        source.validate()?;
        if sources[..i].iter().any(|s| s.id == source.id) {
            return Err(Error::Config(format!(
                "claims_source {:?} is configured twice",
                source.id
            )));
        }
        for claim in source.claims.keys() {
            if let Some(other) = claims.insert(claim, &source.id) {
                return Err(Error::Config(format!(
                    "claims_source {:?}: claim {claim:?} is set by claims_source {other:?} too",
                    source.id
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(extra: &str) -> std::result::Result<ClaimsSourceConfig, String> {
        let text = format!(
            "id = \"perms\"\nurl = \"https://perms.test/q\"\n{extra}\n[claims]\nentitlements = \"/permissions\"\n"
        );
        let config: ClaimsSourceConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    #[test]
    fn defaults_fail_closed_with_a_short_cache() {
        let s = source("").unwrap();
        assert_eq!(s.on_failure, OnFailure::Deny);
        assert_eq!((s.timeout_ms, s.cache_secs), (2_000, 10));
        assert!(s.applies("openid", None));
        assert!(!s.applies("openid", Some("https://game.test/")));
    }

    #[test]
    fn resources_match_exactly_or_under_a_slash() {
        let s = source("resources = [\"https://game.test/servers/\", \"urn:ns:lobby\"]").unwrap();
        assert!(s.applies("openid", Some("https://game.test/servers/eu-1")));
        assert!(s.applies("openid", Some("urn:ns:lobby")));
        assert!(!s.applies("openid", Some("https://game.test/servers")));
        assert!(!s.applies("openid", Some("https://game.test/serversX")));
        assert!(!s.applies("openid", Some("urn:ns:lobby2")));
        assert!(!s.applies("openid", None));
        let scoped = source("scopes = [\"perms\"]").unwrap();
        assert!(scoped.applies("openid perms", None));
        assert!(!scoped.applies("openid", None));
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        for (extra, expected) in [
            ("url = \"http://perms.test/q\"", "duplicate key"),
            ("on_failure = \"maybe\"", "unknown variant"),
            ("timeout_ms = 0", "timeout_ms"),
            ("cache_secs = -1", "cache_secs"),
            ("resources = [\"https://game.test/#frag\"]", "RFC 8707"),
            ("resources = [\"relative/path\"]", "RFC 8707"),
            ("resources = [\"https://g.test/a/../b\"]", "RFC 8707"),
            ("resources = [\"https://g.test/a/%2E%2E/b\"]", "RFC 8707"),
            ("resources = [\"https://g.test/a\\\\..\\\\b\"]", "RFC 8707"),
            ("resources = [\"https://g.test/a/.\\t./b\"]", "RFC 8707"),
            ("scopes = [\"bad scope\"]", "scope-token"),
            (
                "bearer_token_file = \"/t\"\nbearer_token_env = \"T\"",
                "exclude each other",
            ),
        ] {
            let e = source(extra).unwrap_err();
            assert!(e.contains(expected), "{extra}: {e}");
        }
        let plain_http: ClaimsSourceConfig =
            toml::from_str("id = \"p\"\nurl = \"http://perms.test/q\"\n[claims]\nx = \"/x\"\n")
                .unwrap();
        assert!(
            plain_http
                .validate()
                .unwrap_err()
                .to_string()
                .contains("https")
        );
        for (claim, expected) in [("sub", "may not be set"), ("roles", "may not be set")] {
            let reserved: ClaimsSourceConfig = toml::from_str(&format!(
                "id = \"p\"\nurl = \"https://p.test\"\n[claims]\n{claim} = \"/x\"\n"
            ))
            .unwrap();
            let e = reserved.validate().unwrap_err().to_string();
            assert!(e.contains(expected), "{claim}: {e}");
        }
        let not_a_pointer: ClaimsSourceConfig =
            toml::from_str("id = \"p\"\nurl = \"https://p.test\"\n[claims]\nx = \"x\"\n").unwrap();
        assert!(
            not_a_pointer
                .validate()
                .unwrap_err()
                .to_string()
                .contains("JSON pointer")
        );
    }

    #[test]
    fn two_sources_may_not_set_one_claim_or_share_an_id() {
        let a = source("").unwrap();
        let mut b = a.clone();
        b.id = "other".into();
        let e = validate_all(&[a.clone(), b]).unwrap_err().to_string();
        assert!(e.contains("set by claims_source \"perms\""), "{e}");
        let e = validate_all(&[a.clone(), a]).unwrap_err().to_string();
        assert!(e.contains("configured twice"), "{e}");
    }
}
