//! Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3):
//! `client_secret_basic` (HTTP Basic with form-urlencoded id and secret), `client_secret_post`,
//! `private_key_jwt` (RFC 7523), or a public client naming itself with `client_id` only.
//! Failures are `invalid_client`.

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

/// The `client_assertion_type` of RFC 7523 §2.2.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Clock difference tolerated on top of `lifetimes.max_client_assertion_exp`, in seconds (a
/// client whose clock runs ahead signs an `exp` that is further ahead by as much).
const ASSERTION_SKEW: i64 = 60;

/// `private_key_jwt` (RFC 7523 §3): the assertion is signed by one of the client's keys,
/// `iss` = `sub` = the client id, `aud` names this server or its token endpoint, not expired
/// nor expiring further ahead than `lifetimes.max_client_assertion_exp` (plus skew), and its
/// `jti` is used once: it stays in the replay cache until the assertion's `exp`, after which
/// the assertion is refused as expired anyway.
fn assertion_client(
    state: &SharedState,
    assertion: &str,
    form_id: Option<&String>,
) -> Result<ClientAuth> {
    let refuse = |d: &str| Error::InvalidClient(format!("client assertion: {d}"));
    let jws =
        proto::jws::UnverifiedJws::from_compact(assertion).map_err(|_| refuse("not a JWS"))?;
    // The client id, before the signature is known good, only picks the keys to try.
    let payload = assertion.split('.').nth(1).unwrap_or_default();
    let unverified: serde_json::Value = proto::b64::decode(payload, "assertion")
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| refuse("unreadable claims"))?;
    let id = unverified["iss"]
        .as_str()
        .ok_or_else(|| refuse("no iss"))?
        .to_owned();
    if form_id.is_some_and(|f| *f != id) {
        return Err(refuse("client_id differs from iss"));
    }
    let client =
        crate::users::client(state.store(), &id)?.ok_or_else(|| refuse("unknown client"))?;
    let keys = client
        .jwks
        .as_ref()
        .and_then(|j| proto::jwk::JwkSet::from_json(j).ok())
        .ok_or_else(|| refuse("the client has no keys"))?;
    let key = match jws.header().kid() {
        Some(kid) => keys.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or_else(|| refuse("no key of the client matches"))?
    .clone();
    let claims = jws
        .verify(&key)
        .and_then(|v| v.claims())
        .map_err(|_| refuse("bad signature"))?;
    let now = state.clock.now();
    let text = |n: &'static str| claims.string(n).map_err(|_| refuse("missing claims"));
    if text("sub")? != id {
        return Err(refuse("sub is not the client"));
    }
    let audiences: Vec<String> = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => vec![a.clone()],
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let token_endpoint = state.url("/token");
    if !audiences
        .iter()
        .any(|a| *a == state.base_url || *a == token_endpoint)
    {
        return Err(refuse("aud does not name this server"));
    }
    let exp = claims.int("exp").map_err(|_| refuse("no exp"))?;
    if exp < now {
        return Err(refuse("expired"));
    }
    let max_lifetime = state.config.lifetimes.max_client_assertion_exp;
    if exp > now.saturating_add(max_lifetime.saturating_add(ASSERTION_SKEW)) {
        return Err(refuse(&format!(
            "exp is more than {max_lifetime} s ahead (lifetimes.max_client_assertion_exp)"
        )));
    }
    let jti = text("jti")?;
    let fresh = state.store().insert_new_json(
        crate::store::trees::CLIENT_ASSERTION_JTIS,
        &format!("{id}:{jti}"),
        &serde_json::json!({ "expires_at": exp }),
    )?;
    if !fresh {
        return Err(refuse("the assertion was already used"));
    }
    Ok(ClientAuth {
        client,
        authenticated: true,
    })
}

/// Identifies the client of a request.
pub fn authenticate_client(
    state: &SharedState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<ClientAuth> {
    if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
            return Err(Error::InvalidClient(
                "unsupported client_assertion_type".into(),
            ));
        }
        return assertion_client(state, assertion, form.get("client_id"));
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
