//! Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3):
//! `client_secret_basic` (HTTP Basic with form-urlencoded id and secret), `client_secret_post`,
//! or a public client naming itself with `client_id` only. Failures are `invalid_client`.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use base64::Engine;

use super::SharedState;
use crate::error::{Error, Result};
use crate::users::OAuthClient;

/// A client that identified itself, and whether it proved it with its secret.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// The client.
    pub client: OAuthClient,
    /// Whether it presented its secret (confidential clients always must).
    pub authenticated: bool,
}

fn form_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Identifies the client of a request.
pub fn authenticate_client(
    state: &SharedState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<ClientAuth> {
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
    let client = crate::users::client(state.store(), &id)?
        .ok_or_else(|| Error::InvalidClient("unknown client".into()))?;
    match (&secret, client.is_confidential()) {
        (Some(s), true) if client.secret_matches(s) => Ok(ClientAuth {
            client,
            authenticated: true,
        }),
        (Some(_), _) => Err(Error::InvalidClient("wrong client credentials".into())),
        (None, true) => Err(Error::InvalidClient(
            "a confidential client must authenticate".into(),
        )),
        (None, false) => Ok(ClientAuth {
            client,
            authenticated: false,
        }),
    }
}
