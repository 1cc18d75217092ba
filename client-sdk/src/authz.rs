//! The authz-server as the device sees it: the authorization code login (with the `claims`
//! request for the ID token of `wire-oidc-01`), device registration, the backend nonce, and the
//! Wire access token for a DPoP proof.

use serde_json::{Value, json};

use crate::config::{Config, Login};
use crate::error::{Cause, Error, Result};
use crate::login::Redirect;
use crate::step::Step;
use proto::pkce::Pkce;

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

/// The authz-server client.
#[derive(Debug, Clone)]
pub struct Authz {
    http: reqwest::Client,
    base: String,
}

async fn send(step: Step, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
    request.send().await.map_err(|e| Error::network(step, &e))
}

async fn refused(step: Step, response: reqwest::Response) -> Error {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    Error::new(step, Cause::Server { status, body })
}

async fn json_of(step: Step, response: reqwest::Response) -> Result<Value> {
    response
        .json()
        .await
        .map_err(|e| Error::protocol(step, format!("not JSON: {e}")))
}

impl Authz {
    /// A client for the server at `base`.
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
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
        let pkce = Pkce::new();
        let state = proto::random::token(128);
        let nonce = proto::random::token(128);
        let mut params: Vec<(&str, String)> = vec![
            ("response_type", "code".into()),
            ("client_id", config.oauth_client_id.clone()),
            ("scope", config.scope.clone()),
            ("state", state.clone()),
            ("nonce", nonce),
            ("code_challenge", pkce.challenge.clone()),
            ("code_challenge_method", "S256".into()),
        ];
        if let Some(claims) = claims {
            params.push(("claims", claims.to_string()));
        }
        let redirect = match &config.login {
            Login::Password { username, password } => {
                let mut form = params.clone();
                form.push(("redirect_uri", config.redirect_uri.clone()));
                form.push(("username", username.clone()));
                form.push(("password", password.expose().to_owned()));
                let response =
                    send(step, self.http.post(self.url("/authorize")).form(&form)).await?;
                if response.status() != reqwest::StatusCode::SEE_OTHER {
                    return Err(refused(step, response).await);
                }
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| Error::protocol(step, "no Location after login"))?
                    .to_owned();
                Redirect {
                    redirect_uri: config.redirect_uri.clone(),
                    location,
                }
            }
            Login::Interactive(ui) => {
                let base = self.url("/authorize");
                let url_for = |redirect_uri: &str| {
                    let query = url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
                        .append_pair("redirect_uri", redirect_uri)
                        .finish();
                    format!("{base}?{query}")
                };
                ui.authorize(&url_for)
                    .await
                    .map_err(|e| Error::local(step, format!("login UI: {e}")))?
            }
        };
        let code = code_from(&redirect.location, &state, &self.base, step)?;
        let form = [
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", redirect.redirect_uri),
            ("client_id", config.oauth_client_id.clone()),
            ("code_verifier", pkce.verifier),
        ];
        let response = send(step, self.http.post(self.url("/token")).form(&form)).await?;
        if !response.status().is_success() {
            return Err(refused(step, response).await);
        }
        let body = json_of(step, response).await?;
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
