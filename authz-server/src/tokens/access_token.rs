//! RFC 9068 JWT access tokens: `iss`, `sub`, `aud` (this server, or the RFC 8707 resource the
//! token was asked for), `client_id`, `scope`, `jti`, `iat`, `exp`, `cnf.jkt` when DPoP-bound
//! (RFC 9449 §6), with the `roles` scope the user's `roles` and `groups` (RFC 9068 §7.2), and
//! the claims of the permission sources ([`crate::claims_sources`]) — all read at each issue, so
//! a refresh carries what holds then.

use proto::clock::UnixTime;
use proto::jws::Claims;
use serde_json::json;

use super::Issuer;
use crate::error::Result;

/// What an access token is issued for.
#[derive(Debug, Clone, Copy)]
pub struct AccessGrant<'a> {
    /// `sub`: a user id, or the client id for client credentials.
    pub subject: &'a str,
    /// `client_id`.
    pub client_id: &'a str,
    /// `scope`.
    pub scope: &'a str,
    /// `cnf.jkt` when DPoP-bound.
    pub jkt: Option<&'a str>,
    /// `aud` when not this server: the RFC 8707 resource the token is for.
    pub audience: Option<&'a str>,
    /// The user's authorization claims the scope releases (`roles`, `groups`) and those the
    /// permission sources gave, if any.
    pub authorization: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// A signed access token and its `jti`.
#[derive(Debug)]
pub struct AccessToken {
    /// The token.
    pub token: String,
    /// Its `jti`.
    pub jti: String,
}

/// Signs an RFC 9068 access token.
pub fn issue(issuer: &Issuer<'_>, grant: &AccessGrant<'_>, now: UnixTime) -> Result<AccessToken> {
    let jti = proto::random::uuid_v4();
    let mut at = Claims::default();
    at.set("iss", issuer.url);
    at.set("sub", grant.subject);
    at.set("aud", grant.audience.unwrap_or(issuer.url));
    at.set("client_id", grant.client_id);
    at.set("scope", grant.scope);
    at.set("jti", jti.clone());
    at.set("iat", now);
    at.set("exp", now + issuer.access_lifetime);
    if let Some(jkt) = grant.jkt {
        at.set("cnf", json!({ "jkt": jkt }));
    }
    for (name, value) in grant.authorization.into_iter().flatten() {
        at.set(name, value.clone());
    }
    Ok(AccessToken {
        token: issuer.key.sign_jwt("at+jwt", false, &at.0)?,
        jti,
    })
}
