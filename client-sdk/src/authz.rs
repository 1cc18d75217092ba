//! The authz-server as the device sees it: the authorization code login (with the `claims`
//! request for the ID token of `wire-oidc-01`), device registration, the backend nonce, and the
//! Wire access token for a DPoP proof.

use serde_json::{Value, json};

use crate::config::{Config, Login};
use crate::error::{Error, Result};
use crate::http::{json_of, refused, send};
use crate::login::{CodeGrant, Method, SessionJar};
use crate::step::Step;

/// What the token endpoint returned.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The user's access token (bearer).
    pub access_token: String,
    /// The ID token.
    pub id_token: Option<String>,
}

/// A device registered for the user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Device {
    /// Device id (hex).
    pub id: String,
    /// Client-id URI.
    pub client_id: String,
}

/// The authz-server client. Its logins share one session at the server: after the first
/// password login, the next (the ID token of `wire-oidc-01`) sends no password.
#[derive(Debug, Clone)]
pub struct Authz {
    http: reqwest::Client,
    base: String,
    session: std::sync::Arc<SessionJar>,
}

impl Authz {
    /// A client for the server at `base`.
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            session: std::sync::Arc::default(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Logs in with the configured method asking for `config.scope` (the device scope included,
    /// so the token may register the device and get its Wire access token) and exchanges the
    /// code; `claims` is the OIDC `claims` request (for `keyauth` / `acme_aud`).
    pub async fn login(
        &self,
        config: &Config,
        claims: Option<&Value>,
        step: Step,
    ) -> Result<Tokens> {
        let method = match &config.login {
            Login::Password { username, password } => Method::Password {
                username,
                password,
                redirect_uri: &config.redirect_uri,
                session: &self.session,
            },
            Login::Interactive(ui) => Method::Ui(ui.as_ref()),
        };
        let grant = CodeGrant {
            issuer: &self.base,
            authorization_endpoint: &self.url("/authorize"),
            token_endpoint: &self.url("/token"),
            client_id: &config.oauth_client_id,
            client_secret: None,
            scope: &config.scope,
            claims,
        };
        let body = grant.run(&self.http, method, step).await?.response;
        let access_token = body["access_token"]
            .as_str()
            .ok_or_else(|| Error::protocol(step, "no access_token"))?
            .to_owned();
        Ok(Tokens {
            access_token,
            id_token: body["id_token"].as_str().map(str::to_owned),
        })
    }

    /// Registers a new device of the logged-in user.
    pub async fn register_device(&self, bearer: &str) -> Result<Device> {
        let step = Step::RegisterDevice;
        let response = send(
            step,
            self.http
                .post(self.url("/clients"))
                .bearer_auth(bearer)
                .json(&json!({})),
        )
        .await?;
        if response.status() != reqwest::StatusCode::CREATED {
            return Err(refused(step, response).await);
        }
        serde_json::from_value(json_of(step, response).await?).map_err(|e| Error::protocol(step, e))
    }

    /// Removes the device `device` of the logged-in user (one already gone counts as removed).
    pub async fn remove_device(&self, bearer: &str, device: &str) -> Result<()> {
        let step = Step::RemoveDevice;
        let response = send(
            step,
            self.http
                .delete(self.url(&format!("/clients/{device}")))
                .bearer_auth(bearer),
        )
        .await?;
        match response.status() {
            reqwest::StatusCode::NO_CONTENT | reqwest::StatusCode::NOT_FOUND => Ok(()),
            _ => Err(refused(step, response).await),
        }
    }

    /// A backend nonce for `device`.
    pub async fn backend_nonce(&self, bearer: &str, device: &str) -> Result<String> {
        let step = Step::BackendNonce;
        let response = send(
            step,
            self.http
                .head(self.url(&format!("/clients/{device}/nonce")))
                .bearer_auth(bearer),
        )
        .await?;
        if !response.status().is_success() {
            return Err(refused(step, response).await);
        }
        response
            .headers()
            .get("replay-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| Error::protocol(step, "no Replay-Nonce"))
    }

    /// Exchanges a Wire DPoP proof for the backend's access token.
    pub async fn access_token(&self, bearer: &str, device: &str, proof: &str) -> Result<String> {
        let step = Step::AccessToken;
        let response = send(
            step,
            self.http
                .post(self.url(&format!("/clients/{device}/access-token")))
                .bearer_auth(bearer)
                .header("DPoP", proof),
        )
        .await?;
        if !response.status().is_success() {
            return Err(refused(step, response).await);
        }
        let body = json_of(step, response).await?;
        body["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::protocol(step, "no token"))
    }
}
