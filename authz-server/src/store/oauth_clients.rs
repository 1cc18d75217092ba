//! OAuth client records (`clients`): the applications users log in to, public (no secret) or
//! confidential (a generated secret, stored as its SHA-256 — the secret has 256 random bits, so
//! no slow hash is needed — or a JWK Set for `private_key_jwt`).

use serde::{Deserialize, Serialize};

use super::{Store, trees};
use crate::error::Result;

/// A registered OAuth client.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OAuthClient {
    /// `client_id`.
    pub id: String,
    /// Exact redirect URIs; loopback IP redirects match on any port (RFC 8252 §7.3).
    pub redirect_uris: Vec<String>,
    /// base64url SHA-256 of the client secret, for confidential clients.
    #[serde(default)]
    pub secret_sha256: Option<String>,
    /// A third-party client: users see a consent page before it gets a code.
    #[serde(default)]
    pub consent_required: bool,
    /// Public keys (a JWK Set) for `private_key_jwt` client authentication (RFC 7523).
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// The scopes the client may be granted; `None` (records from before the lists existed,
    /// or `client add` without `--scope`) means [`crate::scopes::default_for`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Where RP-initiated logout may send the browser afterwards (exact match).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    /// The upstreams (by id) whose kept tokens this client may get by RFC 8693 token exchange
    /// (a confidential client only); none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_exchange: Vec<String>,
    /// The remote verifiers (`[[remote_auth]]`, by id) whose grant this client may use; none
    /// by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_auth: Vec<String>,
    /// The JWT-bearer issuers (`[[jwt_bearer_issuer]]`, by id) whose assertions this client may
    /// present as grants (a confidential client only); none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jwt_bearer: Vec<String>,
}

impl OAuthClient {
    /// Whether the client must authenticate (a secret or a key).
    pub fn is_confidential(&self) -> bool {
        self.secret_sha256.is_some() || self.jwks.is_some()
    }

    /// Checks a presented secret in constant time.
    pub fn secret_matches(&self, presented: &str) -> bool {
        self.secret_sha256.as_ref().is_some_and(|stored| {
            proto::secret::constant_time_eq(stored.as_bytes(), super::digest(presented).as_bytes())
        })
    }

    /// A first-party client: registered without `--third-party`, so users are not asked for
    /// consent.
    pub fn is_first_party(&self) -> bool {
        !self.consent_required
    }

    /// Whether the client may exchange a user's token for the kept tokens of `upstream`.
    pub fn may_exchange_for(&self, upstream: &str) -> bool {
        self.is_confidential() && self.token_exchange.iter().any(|u| u == upstream)
    }

    /// Whether the client may use the remote verifier `id`'s grant.
    pub fn may_use_remote_auth(&self, id: &str) -> bool {
        self.remote_auth.iter().any(|v| v == id)
    }

    /// Whether the client may present assertions of the JWT-bearer issuer `id`.
    pub fn may_use_jwt_bearer(&self, id: &str) -> bool {
        self.is_confidential() && self.jwt_bearer.iter().any(|i| i == id)
    }

    /// Whether `uri` is one of the registered redirect URIs.
    pub fn allows_redirect(&self, uri: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|r| r == uri || loopback_match(r, uri))
    }
}

fn loopback_match(registered: &str, presented: &str) -> bool {
    let (Ok(mut r), Ok(mut p)) = (url::Url::parse(registered), url::Url::parse(presented)) else {
        return false;
    };
    let loopback = matches!(r.host_str(), Some("127.0.0.1") | Some("[::1]"));
    if !loopback || r.scheme() != "http" {
        return false;
    }
    let (_, _) = (r.set_port(None), p.set_port(None));
    r == p
}

/// Stores (or replaces) a client.
pub fn put(store: &dyn Store, client: &OAuthClient) -> Result<()> {
    Ok(store.put_json(trees::CLIENTS, &client.id, client)?)
}

/// The client with this id.
pub fn get(store: &dyn Store, id: &str) -> Result<Option<OAuthClient>> {
    Ok(store.get_json(trees::CLIENTS, id)?)
}

/// All clients.
pub fn list(store: &dyn Store) -> Result<Vec<OAuthClient>> {
    Ok(store.scan_json(trees::CLIENTS, "")?)
}

/// Removes a client; false if there was none.
pub fn remove(store: &dyn Store, id: &str) -> Result<bool> {
    Ok(store.take(trees::CLIENTS, id)?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_matching_is_exact_except_loopback_port() {
        let c = OAuthClient {
            id: "c".into(),
            redirect_uris: vec![
                "http://127.0.0.1/cb".into(),
                "https://app.example/cb".into(),
            ],
            secret_sha256: None,
            consent_required: false,
            jwks: None,
            scopes: None,
            post_logout_redirect_uris: Vec::new(),
            token_exchange: Vec::new(),
            remote_auth: Vec::new(),
            jwt_bearer: Vec::new(),
        };
        assert!(c.allows_redirect("http://127.0.0.1:53211/cb"));
        assert!(c.allows_redirect("https://app.example/cb"));
        assert!(!c.allows_redirect("https://app.example/cb/"));
        assert!(!c.allows_redirect("https://app.example:444/cb"));
        assert!(!c.allows_redirect("http://127.0.0.1:5000/other"));
    }
}
