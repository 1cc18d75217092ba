//! The upstream's token endpoint: the authorization code (with the PKCE verifier, when the
//! login sent a challenge) or a kept refresh token exchanged for the upstream's tokens, this
//! server authenticating as `client_auth` says ([`super::client_auth`]). We ask for JSON; an
//! `application/x-www-form-urlencoded` answer (GitHub's without `Accept: application/json`) is
//! read too, and an `error` in a successful answer (GitHub's way) counts as a refusal. The
//! answer is read with a bound; the tokens go only into [`TokenAnswer`], whose `Debug` shows
//! none of them, and are never logged.

use proto::clock::UnixTime;
use proto::secret::SecretString;
use serde_json::{Map, Value};

use super::Upstream;
use crate::error::{Error, Result};

/// What the exchange needs (`Debug` shows only the redirect URI).
pub struct CodeExchange<'a> {
    /// The code from the callback.
    pub code: &'a str,
    /// Our callback URL, as sent to the authorization endpoint.
    pub redirect_uri: &'a str,
    /// The PKCE verifier of this login, when it sent a challenge.
    pub code_verifier: Option<&'a str>,
}

impl std::fmt::Debug for CodeExchange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeExchange")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// The upstream's tokens (`Debug` shows only whether each is there).
pub struct TokenAnswer {
    /// The access token, when it is a `Bearer` token.
    pub access_token: Option<SecretString>,
    /// The refresh token, if one was issued.
    pub refresh_token: Option<SecretString>,
    /// Seconds the access token lives, when said.
    pub expires_in: Option<i64>,
    /// The scope granted, when said.
    pub scope: Option<String>,
    /// The ID token (`oidc`).
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAnswer")
            .field("access_token", &self.access_token.is_some())
            .field("refresh_token", &self.refresh_token.is_some())
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("id_token", &self.id_token.is_some())
            .finish()
    }
}

/// Why a token request gave no tokens.
#[derive(Debug)]
pub enum TokenFailure {
    /// The upstream answered with an OAuth error (its code, printable).
    Refused {
        /// The HTTP status.
        status: u16,
        /// The `error` code.
        code: String,
    },
    /// It could not be reached or answered unusably (`temporarily_unavailable`).
    Unavailable(Error),
}

impl Upstream {
    /// Exchanges the code at `token_endpoint`.
    pub async fn exchange_code(
        &self,
        token_endpoint: &str,
        exchange: &CodeExchange<'_>,
        now: UnixTime,
    ) -> Result<TokenAnswer> {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", exchange.code.to_owned()),
            ("redirect_uri", exchange.redirect_uri.to_owned()),
        ];
        if let Some(verifier) = exchange.code_verifier {
            form.push(("code_verifier", verifier.to_owned()));
        }
        let name = &self.config.display_name;
        self.token_request(token_endpoint, form, now)
            .await
            .map_err(|failure| match failure {
                TokenFailure::Refused { status, code } => Error::upstream_denied(format!(
                    "the identity provider {name} refused the code ({status} {code})"
                )),
                TokenFailure::Unavailable(e) => e,
            })
    }

    /// Uses `refresh_token` at `token_endpoint`.
    pub async fn refresh(
        &self,
        token_endpoint: &str,
        refresh_token: &SecretString,
        now: UnixTime,
    ) -> std::result::Result<TokenAnswer, TokenFailure> {
        let form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.expose().to_owned()),
        ];
        self.token_request(token_endpoint, form, now).await
    }

    /// Posts a token request with this server's client authentication and reads the answer.
    async fn token_request(
        &self,
        token_endpoint: &str,
        mut form: Vec<(&'static str, String)>,
        now: UnixTime,
    ) -> std::result::Result<TokenAnswer, TokenFailure> {
        let name = &self.config.display_name;
        let unavailable =
            |what: String| TokenFailure::Unavailable(Error::upstream_unavailable(what));
        let auth = self
            .credentials()
            .authentication(&self.config.client_id, token_endpoint, now)
            .map_err(TokenFailure::Unavailable)?;
        form.extend(auth.fields);
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let mut request = self
            .http()
            .post(token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body);
        if let Some(authorization) = auth.authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.map_err(|e| {
            unavailable(format!(
                "the identity provider {name} could not be reached: {}",
                without_url(&e)
            ))
        })?;
        let status = response.status();
        let form_encoded = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let body = server_kit::fetch::read_body(response, super::MAX_UPSTREAM_BODY)
            .await
            .map_err(|e| unavailable(format!("the identity provider {name}'s answer: {e}")))?;
        let fields = if form_encoded {
            Some(form_fields(&body))
        } else {
            serde_json::from_slice::<Map<String, Value>>(&body).ok()
        }
        .ok_or_else(|| {
            unavailable(format!(
                "the identity provider {name} answered the token request with {status}, not JSON"
            ))
        })?;
        let error = fields.get("error").and_then(Value::as_str).map(printable);
        if !status.is_success() || error.is_some() {
            return Err(TokenFailure::Refused {
                status: status.as_u16(),
                code: error.unwrap_or_default(),
            });
        }
        Ok(answer_of(&fields))
    }
}

/// The fields of a form-encoded answer, as JSON strings.
fn form_fields(body: &[u8]) -> Map<String, Value> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect()
}

/// The tokens of a successful answer (RFC 6749 §5.1): an access token only when its type is
/// `Bearer` (any case), `expires_in` as a number or a numeric string.
fn answer_of(fields: &Map<String, Value>) -> TokenAnswer {
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let bearer = text("token_type").is_none_or(|t| t.eq_ignore_ascii_case("bearer"));
    let expires_in = match fields.get("expires_in") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    TokenAnswer {
        access_token: text("access_token")
            .filter(|_| bearer)
            .map(SecretString::new),
        refresh_token: text("refresh_token").map(SecretString::new),
        expires_in,
        scope: text("scope").map(str::to_owned),
        id_token: text("id_token").map(str::to_owned),
    }
}

/// A reqwest error without the URL (which could carry a code in a query).
pub fn without_url(e: &reqwest::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_form_answers_give_the_same_tokens() {
        let json: Map<String, Value> = serde_json::from_str(
            r#"{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt","scope":"read:user"}"#,
        )
        .unwrap();
        let form = form_fields(
            b"access_token=at&token_type=bearer&expires_in=3600&refresh_token=rt&scope=read%3Auser",
        );
        for fields in [json, form] {
            let answer = answer_of(&fields);
            assert_eq!(
                answer.access_token.as_ref().map(SecretString::expose),
                Some("at")
            );
            assert_eq!(
                answer.refresh_token.as_ref().map(SecretString::expose),
                Some("rt")
            );
            assert_eq!(answer.expires_in, Some(3600));
            assert_eq!(answer.scope.as_deref(), Some("read:user"));
            assert!(!format!("{answer:?}").contains("\"at\""));
        }
        let dpop = answer_of(&form_fields(b"access_token=at&token_type=DPoP"));
        assert!(dpop.access_token.is_none());
        let bare = answer_of(&form_fields(b"access_token=at&expires_in=soon"));
        assert!(bare.access_token.is_some() && bare.expires_in.is_none());
    }
}
