//! Client authentication (RFC 6749 §2.3) once the front end has read what the client presented
//! ([`ClientCredentials`]): a secret (`client_secret_basic`, `client_secret_post`), a signed
//! assertion (`private_key_jwt`, RFC 7523), or only its id (a public client). Failures are
//! `invalid_client`.

use proto::clock::UnixTime;
use proto::secret::SecretString;

use super::OAuthClient;
use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::store;

/// What a client presented to say who it is.
#[derive(Debug)]
pub enum ClientCredentials {
    /// Its id and secret (HTTP Basic or the form).
    Secret {
        /// `client_id`.
        client_id: String,
        /// `client_secret`.
        secret: SecretString,
    },
    /// A `private_key_jwt` assertion, and the `client_id` of the form if there was one.
    Assertion {
        /// `client_assertion`.
        assertion: String,
        /// `client_id`, which must then be the assertion's `iss`.
        client_id: Option<String>,
    },
    /// Its id only (public clients).
    Id {
        /// `client_id` (empty when absent).
        client_id: String,
    },
}

/// A client that identified itself, and whether it proved it with its secret or key.
#[derive(Debug, Clone)]
pub struct IdentifiedClient {
    /// The client.
    pub client: OAuthClient,
    /// Whether it authenticated (confidential clients always must).
    pub authenticated: bool,
}

/// Clock difference tolerated on top of `lifetimes.max_client_assertion_exp`, in seconds (a
/// client whose clock runs ahead signs an `exp` that is further ahead by as much).
const ASSERTION_SKEW: i64 = 60;

impl Provider {
    /// Identifies the client of a request from what it presented.
    pub fn authenticate_client(
        &self,
        credentials: ClientCredentials,
        now: UnixTime,
    ) -> Result<IdentifiedClient> {
        let (client_id, secret) = match credentials {
            ClientCredentials::Assertion {
                assertion,
                client_id,
            } => return self.assertion_client(&assertion, client_id.as_deref(), now),
            ClientCredentials::Secret { client_id, secret } => (client_id, Some(secret)),
            ClientCredentials::Id { client_id } => (client_id, None),
        };
        let client = super::get(self.store(), &client_id)?
            .ok_or_else(|| Error::InvalidClient("unknown client".into()))?;
        match (&secret, client.is_confidential()) {
            (Some(s), true) if client.secret_matches(s.expose()) => Ok(IdentifiedClient {
                client,
                authenticated: true,
            }),
            (Some(_), _) => Err(Error::InvalidClient("wrong client credentials".into())),
            (None, true) => Err(Error::InvalidClient(
                "a confidential client must authenticate".into(),
            )),
            (None, false) => Ok(IdentifiedClient {
                client,
                authenticated: false,
            }),
        }
    }

    /// `private_key_jwt` (RFC 7523 §3): the assertion is signed by one of the client's keys,
    /// `iss` = `sub` = the client id, `aud` names this server or its token endpoint, not
    /// expired nor expiring further ahead than `lifetimes.max_client_assertion_exp` (plus
    /// skew), and its `jti` is used once: it stays in the replay cache until the assertion's
    /// `exp`, after which the assertion is refused as expired anyway.
    fn assertion_client(
        &self,
        assertion: &str,
        form_id: Option<&str>,
        now: UnixTime,
    ) -> Result<IdentifiedClient> {
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
        if form_id.is_some_and(|f| f != id) {
            return Err(refuse("client_id differs from iss"));
        }
        let client = super::get(self.store(), &id)?.ok_or_else(|| refuse("unknown client"))?;
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
        let token_endpoint = self.url("/token");
        if !audiences
            .iter()
            .any(|a| *a == self.base_url || *a == token_endpoint)
        {
            return Err(refuse("aud does not name this server"));
        }
        let exp = claims.int("exp").map_err(|_| refuse("no exp"))?;
        if exp < now {
            return Err(refuse("expired"));
        }
        let max_lifetime = self.config.lifetimes.max_client_assertion_exp;
        if exp > now.saturating_add(max_lifetime.saturating_add(ASSERTION_SKEW)) {
            return Err(refuse(&format!(
                "exp is more than {max_lifetime} s ahead (lifetimes.max_client_assertion_exp)"
            )));
        }
        let jti = text("jti")?;
        if !store::replay::remember_assertion_jti(self.store(), &id, jti, exp)? {
            return Err(refuse("the assertion was already used"));
        }
        Ok(IdentifiedClient {
            client,
            authenticated: true,
        })
    }
}
