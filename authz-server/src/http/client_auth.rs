//! What a client presents to say who it is at the token, introspection and revocation
//! endpoints (RFC 6749 §2.3), read from the request: HTTP Basic with form-urlencoded id and
//! secret (`client_secret_basic`), `client_id` and `client_secret` in the form
//! (`client_secret_post`), a `client_assertion` (`private_key_jwt`, RFC 7523), or `client_id`
//! alone. The provider checks them ([`crate::oauth_clients::authentication`]).

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use base64::Engine;
use proto::secret::SecretString;

use super::SharedState;
use crate::error::{Error, Result};
use crate::oauth_clients::authentication::{ClientCredentials, IdentifiedClient};

/// The `client_assertion_type` of RFC 7523 §2.2.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn form_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Reads the client's credentials from the request: one method only, and a `client_id` in the
/// form must name the same client.
pub fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<ClientCredentials> {
    if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
            return Err(Error::InvalidClient(
                "unsupported client_assertion_type".into(),
            ));
        }
        return Ok(ClientCredentials::Assertion {
            assertion: assertion.clone(),
            client_id: form.get("client_id").cloned(),
        });
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| rest.trim().to_owned())
        });
    let (id, secret) = match basic {
        Some(encoded) => {
            if form.contains_key("client_secret") {
                return Err(Error::invalid_request(
                    "use one client authentication method",
                ));
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| Error::InvalidClient("malformed Basic credentials".into()))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| Error::InvalidClient("malformed Basic credentials".into()))?;
            (form_decode(id), Some(form_decode(secret)))
        }
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned(),
        ),
    };
    if form.get("client_id").is_some_and(|f| *f != id) {
        return Err(Error::InvalidClient(
            "client_id differs from the credentials".into(),
        ));
    }
    Ok(match secret {
        Some(secret) => ClientCredentials::Secret {
            client_id: id,
            secret: SecretString::new(secret),
        },
        None => ClientCredentials::Id { client_id: id },
    })
}

/// Identifies the client of a request.
pub fn authenticate_client(
    state: &SharedState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<IdentifiedClient> {
    let credentials = client_credentials(headers, form)?;
    state.authenticate_client(credentials, state.now())
}
