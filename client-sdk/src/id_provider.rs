//! The ID token of `wire-oidc-01` from a third-party OpenID Provider: the organisation's own
//! identity provider (Keycloak with Wire's mapper, or any provider that echoes the requested
//! claims) instead of the authz-server. The ACME server names it as the `wire-oidc-01`
//! challenge's `target` (its `wire_oidc.issuer`).
//!
//! [`IdTokenProvider`] says where it is (issuer, found by OpenID discovery), which client the
//! device is there (a public client with PKCE, or a confidential one with a secret), which roots
//! its TLS certificate leads to, and the [`AuthorizationUi`] that lets the user log in there.
//! The authorization request carries the same `claims` parameter (`keyauth`, `acme_aud`) as at
//! the authz-server; the provider must echo both into the ID token. Everything else — the user's
//! login for the device, the backend nonce, the DPoP access token — stays with the authz-server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use proto::secret::SecretString;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::MAX_RESPONSE_BYTES;
use crate::login::{AuthorizationUi, CodeGrant, Method};
use crate::step::Step;

/// The scope asked of a third-party provider by default: the identity the ACME server compares
/// with the order (`name`, `preferred_username`).
pub const DEFAULT_PROVIDER_SCOPE: &str = "openid profile";

/// Where the ID token for `wire-oidc-01` comes from when it is not the authz-server.
#[derive(Clone)]
pub struct IdTokenProvider {
    /// The provider's issuer identifier (`https`); its metadata is read from
    /// `{issuer}/.well-known/openid-configuration` and must name exactly this issuer.
    pub issuer: String,
    /// The device application's client id at the provider (the ACME server's
    /// `wire_oidc.client_id`, which the ID token's `aud` must hold).
    pub client_id: String,
    /// The client secret of a confidential client (`client_secret_basic`); `None` for a public
    /// client, which PKCE alone protects (the usual case for an application on a device).
    pub client_secret: Option<SecretString>,
    /// PEM roots trusted for HTTPS to the provider (and only to it).
    pub tls_roots: Vec<PathBuf>,
    /// The scope asked for ([`DEFAULT_PROVIDER_SCOPE`] by default).
    pub scope: String,
    /// How the user logs in at the provider: its pages in a browser, e.g.
    /// [`crate::login::LoopbackBrowser`] (RFC 8252).
    pub ui: Arc<dyn AuthorizationUi>,
}

impl std::fmt::Debug for IdTokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenProvider")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("tls_roots", &self.tls_roots)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// The parts of the provider's metadata (OpenID Connect Discovery 1.0 §3) the code flow needs.
#[derive(Debug, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
}

impl IdTokenProvider {
    /// A public client `client_id` at `issuer`, the user logging in through `ui`.
    pub fn new(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        ui: Arc<dyn AuthorizationUi>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: None,
            tls_roots: Vec::new(),
            scope: DEFAULT_PROVIDER_SCOPE.into(),
            ui,
        }
    }

    /// Whether `issuer` (a challenge's `target`) names this provider.
    pub fn is_issuer(&self, issuer: &str) -> bool {
        self.issuer.trim_end_matches('/') == issuer.trim_end_matches('/')
    }

    /// The provider's metadata: exactly our issuer, `https` endpoints.
    async fn metadata(&self, http: &reqwest::Client, step: Step) -> Result<Metadata> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let metadata: Metadata = io_kit::fetch::get_json(http, &url, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| Error::protocol(step, format!("OpenID discovery: {e}")))?;
        if metadata.issuer != self.issuer {
            return Err(Error::protocol(
                step,
                format!("the discovery document at {url} names another issuer"),
            ));
        }
        for endpoint in [&metadata.authorization_endpoint, &metadata.token_endpoint] {
            if !endpoint.starts_with("https://") {
                return Err(Error::protocol(
                    step,
                    format!("the provider's endpoint {endpoint} is not https"),
                ));
            }
        }
        Ok(metadata)
    }

    /// An ID token for the `claims` request: the user logs in at the provider through the UI,
    /// the code is redeemed at its token endpoint, and the ID token it returns (directly, over
    /// TLS) must be issued by this provider to this client for this request's `nonce`. Whether
    /// it echoes `keyauth` and `acme_aud` is for the ACME server to judge.
    pub(crate) async fn id_token(
        &self,
        claims: &Value,
        timeout: Duration,
        step: Step,
    ) -> Result<String> {
        if !self.issuer.starts_with("https://") {
            return Err(Error::local(
                step,
                format!("the ID token provider {} is not https", self.issuer),
            ));
        }
        let http = io_kit::https::https_client(&self.tls_roots, timeout)
            .map_err(|e| Error::local(step, e))?;
        let metadata = self.metadata(&http, step).await?;
        let grant = CodeGrant {
            issuer: &self.issuer,
            authorization_endpoint: &metadata.authorization_endpoint,
            token_endpoint: &metadata.token_endpoint,
            client_id: &self.client_id,
            client_secret: self.client_secret.as_ref(),
            scope: &self.scope,
            claims: Some(claims),
        };
        let granted = grant.run(&http, Method::Ui(self.ui.as_ref()), step).await?;
        let id_token = granted.response["id_token"]
            .as_str()
            .ok_or_else(|| Error::protocol(step, "the provider returned no id_token"))?
            .to_owned();
        let payload = crate::enroll::unverified_claims(&id_token, step)?;
        if payload["iss"].as_str() != Some(self.issuer.as_str()) {
            return Err(Error::protocol(step, "the ID token names another issuer"));
        }
        let audience_holds_us = match &payload["aud"] {
            Value::String(aud) => aud == &self.client_id,
            Value::Array(list) => list.iter().any(|a| a.as_str() == Some(&self.client_id)),
            _ => false,
        };
        if !audience_holds_us {
            return Err(Error::protocol(step, "the ID token is for another client"));
        }
        if payload["nonce"].as_str() != Some(granted.nonce.as_str()) {
            return Err(Error::protocol(
                step,
                "the ID token's nonce is not this request's",
            ));
        }
        Ok(id_token)
    }
}
