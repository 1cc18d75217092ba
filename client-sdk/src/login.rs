//! The authorization code grant with PKCE S256, `state` and `nonce` at an OpenID Provider — our
//! authz-server, or the third-party provider of [`crate::id_provider`] — and the code exchanged
//! at its token endpoint ([`CodeGrant`]). The user's authorization comes either from posting the
//! user's credentials (headless, our authz-server only) or through an [`AuthorizationUi`] the
//! application provides — [`LoopbackBrowser`] implements RFC 8252 §7.3 (a one-shot listener
//! on 127.0.0.1 receives the redirect).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use proto::pkce::Pkce;
use proto::secret::SecretString;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Cause, Error, Result};
use crate::http::{json_of, refused, send};
use crate::step::Step;

/// A boxed future (dyn-compatible async trait methods).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Builds the authorization URL for a redirect URI.
pub type UrlFor<'a> = &'a (dyn Fn(&str) -> String + Send + Sync);

/// Where the browser was sent back to.
#[derive(Debug, Clone)]
pub struct Redirect {
    /// The redirect URI the authorization request named.
    pub redirect_uri: String,
    /// The full URL the browser was redirected to (with `code`, `state`, `iss`).
    pub location: String,
}

/// An application's login UI.
pub trait AuthorizationUi: Send + Sync {
    /// Shows the user the authorization URL (made by `url_for` from the redirect URI the UI
    /// listens on) and returns the redirect once the user has logged in.
    fn authorize<'a>(&'a self, url_for: UrlFor<'a>) -> BoxFuture<'a, Result<Redirect, String>>;
}

/// RFC 8252 loopback redirect: listens on an ephemeral 127.0.0.1 port, hands the URL to `open`
/// (which starts a browser, or prints the URL), and takes the first redirect that arrives.
#[derive(Clone)]
pub struct LoopbackBrowser {
    open: Arc<dyn Fn(&str) + Send + Sync>,
}

impl std::fmt::Debug for LoopbackBrowser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopbackBrowser").finish_non_exhaustive()
    }
}

impl LoopbackBrowser {
    /// A loopback UI that shows the URL with `open`.
    pub fn new(open: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            open: Arc::new(open),
        }
    }
}

impl AuthorizationUi for LoopbackBrowser {
    fn authorize<'a>(&'a self, url_for: UrlFor<'a>) -> BoxFuture<'a, Result<Redirect, String>> {
        Box::pin(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| format!("loopback listener: {e}"))?;
            let port = listener.local_addr().map_err(|e| e.to_string())?.port();
            let redirect_uri = format!("http://127.0.0.1:{port}/callback");
            (self.open)(&url_for(&redirect_uri));
            loop {
                let (mut stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
                let mut head = vec![0u8; 8192];
                let n = stream.read(&mut head).await.map_err(|e| e.to_string())?;
                let head = String::from_utf8_lossy(&head[..n]);
                let target = head
                    .lines()
                    .next()
                    .and_then(|line| line.strip_prefix("GET "))
                    .and_then(|rest| rest.split(' ').next())
                    .unwrap_or_default()
                    .to_owned();
                let body = "<!doctype html><title>Logged in</title><p>You can close this window.";
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                if let Some(query) = target.strip_prefix("/callback?") {
                    return Ok(Redirect {
                        location: format!("{redirect_uri}?{query}"),
                        redirect_uri,
                    });
                }
            }
        })
    }
}

/// The name of the authz-server's session cookie.
const SESSION_COOKIE: &str = "__Host-session";

/// The authz-server's session of a headless login, kept for the next login of the same
/// enrollment, which then sends no password (`Debug` shows nothing).
#[derive(Default)]
pub(crate) struct SessionJar(std::sync::Mutex<Option<SecretString>>);

impl SessionJar {
    fn get(&self) -> Option<String> {
        self.0
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|c| c.expose().to_owned()))
    }

    /// Keeps the session cookie a response sets (or forgets it when the response clears it).
    fn keep(&self, response: &reqwest::Response) {
        let prefix = format!("{SESSION_COOKIE}=");
        let set = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&prefix))
            .map(|rest| rest.split(';').next().unwrap_or_default().to_owned());
        if let (Some(value), Ok(mut slot)) = (set, self.0.lock()) {
            *slot = (!value.is_empty()).then(|| SecretString::new(value));
        }
    }
}

impl std::fmt::Debug for SessionJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionJar(…)")
    }
}

/// How the user authorizes a [`CodeGrant`].
#[derive(Clone, Copy)]
pub(crate) enum Method<'a> {
    /// Our authz-server's headless login: inside the session of an earlier login, the request
    /// with `prompt=none` and the session cookie; otherwise (or when the session has ended) the
    /// credentials posted to its authorization endpoint with the request. The code is taken
    /// from the `303` to `redirect_uri`.
    Password {
        username: &'a str,
        password: &'a SecretString,
        redirect_uri: &'a str,
        session: &'a SessionJar,
    },
    /// The application's UI shows the authorization URL and returns the redirect.
    Ui(&'a dyn AuthorizationUi),
}

/// One authorization code grant (PKCE S256, `state`, `nonce`) at one provider.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CodeGrant<'a> {
    /// The provider's issuer identifier, which a redirect's `iss` (RFC 9207) must equal.
    pub issuer: &'a str,
    /// Its authorization endpoint.
    pub authorization_endpoint: &'a str,
    /// Its token endpoint.
    pub token_endpoint: &'a str,
    /// Our client id there.
    pub client_id: &'a str,
    /// The client secret (`client_secret_basic`); `None` for a public client.
    pub client_secret: Option<&'a SecretString>,
    /// The scope asked for.
    pub scope: &'a str,
    /// The OIDC `claims` request parameter, if any.
    pub claims: Option<&'a Value>,
}

/// What the token endpoint answered to a [`CodeGrant`].
#[derive(Debug, Clone)]
pub(crate) struct Granted {
    /// The token response (JSON object).
    pub response: Value,
    /// The `nonce` the authorization request carried.
    pub nonce: String,
}

impl CodeGrant<'_> {
    /// Gets a code by `method` and redeems it with the PKCE verifier.
    pub async fn run(
        &self,
        http: &reqwest::Client,
        method: Method<'_>,
        step: Step,
    ) -> Result<Granted> {
        let pkce = Pkce::new();
        let state = proto::random::token(128);
        let nonce = proto::random::token(128);
        let mut params: Vec<(&str, String)> = vec![
            ("response_type", "code".into()),
            ("client_id", self.client_id.to_owned()),
            ("scope", self.scope.to_owned()),
            ("state", state.clone()),
            ("nonce", nonce.clone()),
            ("code_challenge", pkce.challenge.clone()),
            ("code_challenge_method", "S256".into()),
        ];
        if let Some(claims) = self.claims {
            params.push(("claims", claims.to_string()));
        }
        let redirect = match method {
            Method::Password {
                username,
                password,
                redirect_uri,
                session,
            } => {
                let mut form = params.clone();
                form.push(("redirect_uri", redirect_uri.to_owned()));
                let in_session = match session.get() {
                    Some(cookie) => {
                        let mut query = form.clone();
                        query.push(("prompt", "none".into()));
                        let request = http.get(self.authorization_endpoint).query(&query).header(
                            reqwest::header::COOKIE,
                            format!("{SESSION_COOKIE}={cookie}"),
                        );
                        let response = send(step, request).await?;
                        // `login_required` (the session ended) falls back to the password.
                        location_of(&response).filter(|l| !has_error(l))
                    }
                    None => None,
                };
                let location = match in_session {
                    Some(location) => location,
                    None => {
                        form.push(("username", username.to_owned()));
                        form.push(("password", password.expose().to_owned()));
                        let response =
                            send(step, http.post(self.authorization_endpoint).form(&form)).await?;
                        if response.status() != reqwest::StatusCode::SEE_OTHER {
                            return Err(refused(step, response).await);
                        }
                        session.keep(&response);
                        location_of(&response)
                            .ok_or_else(|| Error::protocol(step, "no Location after login"))?
                    }
                };
                Redirect {
                    redirect_uri: redirect_uri.to_owned(),
                    location,
                }
            }
            Method::Ui(ui) => {
                let base = self.authorization_endpoint;
                let separator = if base.contains('?') { '&' } else { '?' };
                let url_for = |redirect_uri: &str| {
                    let query = url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
                        .append_pair("redirect_uri", redirect_uri)
                        .finish();
                    format!("{base}{separator}{query}")
                };
                ui.authorize(&url_for)
                    .await
                    .map_err(|e| Error::local(step, format!("login UI: {e}")))?
            }
        };
        let code = code_from(&redirect.location, &state, self.issuer, step)?;
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", redirect.redirect_uri),
            ("code_verifier", pkce.verifier),
        ];
        let mut request = http.post(self.token_endpoint);
        match self.client_secret {
            // RFC 6749 §2.3.1: both form-encoded, then Basic.
            Some(secret) => {
                let encode = |v: &str| {
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                };
                request = request.basic_auth(encode(self.client_id), Some(encode(secret.expose())));
            }
            None => form.push(("client_id", self.client_id.to_owned())),
        }
        let response = send(step, request.form(&form)).await?;
        if !response.status().is_success() {
            return Err(refused(step, response).await);
        }
        let response = json_of(step, response).await?;
        if !response.is_object() {
            return Err(Error::protocol(
                step,
                "the token response is not a JSON object",
            ));
        }
        Ok(Granted { response, nonce })
    }
}

/// The `Location` of a `303` answer.
fn location_of(response: &reqwest::Response) -> Option<String> {
    (response.status() == reqwest::StatusCode::SEE_OTHER)
        .then(|| response.headers().get(reqwest::header::LOCATION))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Whether a redirect carries an `error` instead of a code.
fn has_error(location: &str) -> bool {
    url::Url::parse(location).is_ok_and(|u| u.query_pairs().any(|(k, _)| k == "error"))
}

/// The code from a redirect, after checking `state` and (RFC 9207) `iss`.
fn code_from(location: &str, state: &str, issuer: &str, step: Step) -> Result<String> {
    let url = url::Url::parse(location).map_err(|e| Error::protocol(step, e))?;
    let params: std::collections::HashMap<String, String> =
        url.query_pairs().into_owned().collect();
    if let Some(error) = params.get("error") {
        return Err(Error::new(
            step,
            Cause::Server {
                status: 303,
                body: format!(
                    "{error}: {}",
                    params.get("error_description").map_or("", String::as_str)
                ),
            },
        ));
    }
    if params.get("state").map(String::as_str) != Some(state) {
        return Err(Error::protocol(step, "the redirect's state is not ours"));
    }
    if params.get("iss").is_some_and(|iss| iss != issuer) {
        return Err(Error::protocol(step, "the redirect names another issuer"));
    }
    params
        .get("code")
        .cloned()
        .ok_or_else(|| Error::protocol(step, "no code in the redirect"))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redirect_must_carry_our_state_and_issuer() {
        let issuer = "https://auth.test";
        let ok = "http://127.0.0.1:5/callback?code=c1&state=s1&iss=https%3A%2F%2Fauth.test";
        assert_eq!(code_from(ok, "s1", issuer, Step::Login).unwrap(), "c1");
        for bad in [
            "http://127.0.0.1:5/callback?code=c1&state=other",
            "http://127.0.0.1:5/callback?code=c1&state=s1&iss=https%3A%2F%2Fevil.test",
            "http://127.0.0.1:5/callback?state=s1",
        ] {
            assert!(matches!(
                code_from(bad, "s1", issuer, Step::Login).unwrap_err().cause,
                Cause::Protocol(_)
            ));
        }
        let denied = "http://127.0.0.1:5/callback?error=access_denied&state=s1";
        assert!(matches!(
            code_from(denied, "s1", issuer, Step::Login)
                .unwrap_err()
                .cause,
            Cause::Server { .. }
        ));
    }
}
