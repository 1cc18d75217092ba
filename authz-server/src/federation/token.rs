//! The upstream's token endpoint: the authorization code and PKCE verifier exchanged for the
//! upstream's tokens, this server authenticating with `client_secret_basic` (RFC 6749 §2.3.1:
//! id and secret form-encoded, then Basic). The answer is read with a bound and only its
//! `id_token` is kept; the upstream's access and refresh tokens are dropped unread and never
//! logged.

use base64::Engine;

use super::Upstream;
use crate::error::{Error, Result};

/// What the exchange needs (`Debug` shows only the redirect URI).
pub struct CodeExchange<'a> {
    /// The code from the callback.
    pub code: &'a str,
    /// Our callback URL, as sent to the authorization endpoint.
    pub redirect_uri: &'a str,
    /// The PKCE verifier of this login.
    pub code_verifier: &'a str,
}

impl std::fmt::Debug for CodeExchange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeExchange")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// Exchanges the code at `token_endpoint`; returns the ID token.
    pub async fn exchange_code(
        &self,
        token_endpoint: &str,
        exchange: &CodeExchange<'_>,
    ) -> Result<String> {
        let name = &self.config.display_name;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", exchange.code)
            .append_pair("redirect_uri", exchange.redirect_uri)
            .append_pair("code_verifier", exchange.code_verifier)
            .finish();
        let encode =
            |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let credentials = format!(
            "{}:{}",
            encode(&self.config.client_id),
            encode(self.secret.expose())
        );
        let authorization = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        );
        let response = self
            .http()
            .post(token_endpoint)
            .header("authorization", authorization)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(form)
            .send()
            .await
            .map_err(|e| {
                Error::upstream_unavailable(format!(
                    "the identity provider {name} could not be reached: {}",
                    without_url(&e)
                ))
            })?;
        let status = response.status();
        let body = server_kit::fetch::read_body(response, super::MAX_UPSTREAM_BODY)
            .await
            .map_err(|e| {
                Error::upstream_unavailable(format!("the identity provider {name}'s answer: {e}"))
            })?;
        let json: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            Error::upstream_unavailable(format!(
                "the identity provider {name} answered the token request with {status}, not JSON"
            ))
        })?;
        if !status.is_success() {
            let code = json
                .get("error")
                .and_then(serde_json::Value::as_str)
                .map(printable)
                .unwrap_or_default();
            return Err(Error::upstream_denied(format!(
                "the identity provider {name} refused the code ({status} {code})"
            )));
        }
        json.get("id_token")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::upstream_denied(format!("the identity provider {name} sent no ID token"))
            })
    }
}

/// A reqwest error without the URL (which could carry a code in a query).
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

/// An upstream's error code as it may be shown: at most 64 printable ASCII characters.
pub fn printable(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect()
}
